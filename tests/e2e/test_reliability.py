

def test_crash_trials_short():
    """Five kill -9 trials of serve under ingest load with messages flowing to the webhook
    and SMTP receivers (bench/crash_trials.py; bench/run does 100): nothing acknowledged is
    lost, nothing fires or is decided twice, nothing is delivered under two ids, everything
    is delivered in the end."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
    import crash_trials
    res = crash_trials.run(trials=5, log=None)
    assert res["ok"], res
    assert res["events_acknowledged"] > 0 and res["deliveries_webhook"] > 0 \
        and res["deliveries_smtp"] > 0, res
