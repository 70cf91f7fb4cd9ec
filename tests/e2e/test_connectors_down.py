"""A connector that is down (issue 17): one alert per outage through another
channel, counted summaries at most every connector_alert_repeat, no alert
storm; and the message figures of /metrics, counted exactly.

The replay tests feed message.failed / message.sent events straight to the
orchestrator (deterministic, virtual clock, timers); the serve tests use the
real receivers of receivers.py, Slack or Zendesk answering 503."""
import json
import os
import re
import tempfile
import time

import fw
from receivers import start_all
from server import Server, ev

RETRY = {"max_attempts": 2, "backoff_base": "20ms", "backoff_max": "50ms", "timeout": "2s"}


# ---- the orchestrator alone, through replay ----

def _outcome(type_, n, at, channel, connector, kind, customer="c%d@example.com", error="HTTP 503"):
    data = {"message_id": "m_%d" % n, "channel": channel, "connector": connector,
            "audience": "l2" if channel == "slack" else "l1", "kind": kind, "attempts": 2}
    if type_ == "message.failed":
        data["error"] = error
    return {"specversion": "1.0", "id": "%s-%d" % (type_, n), "source": "/e2e", "type": type_,
            "subject": customer % n, "time": fw.T(at), "data": data}


def _connector_msgs(lines):
    return [m for m in lines if m.get("kind") == "message" and m["subject"]
            and m["subject"].split(": ")[0].split("] ")[-1] in
            ("Connector down", "Connector still down", "Connector recovered")]


def _replay_failures():
    evs = [_outcome("message.failed", i, "%dm" % (10 * i), "slack", "slack", "alert") for i in range(6)]
    # The connector-down alert went to Zendesk, which is down too: it dies, and raises nothing.
    evs.append(_outcome("message.failed", 50, "61m", "ticket", "zendesk", "connector_down",
                        error="HTTP 500"))
    # Two more Slack failures after four hours, then Slack delivers, then fails again.
    evs.append(_outcome("message.failed", 60, "5h", "slack", "slack", "alert"))
    evs.append(_outcome("message.failed", 61, "13h", "slack", "slack", "escalation"))
    evs.append(_outcome("message.sent", 70, "14h", "slack", "slack", "alert"))
    evs.append(_outcome("message.sent", 71, "14h1m", "ticket", "zendesk", "alert"))
    evs.append(_outcome("message.failed", 80, "15h", "slack", "slack", "alert"))
    return evs


def test_replay_one_alert_per_outage_then_summaries_doubling_then_recovery():
    lines = fw.replay(_replay_failures(), "--messages", *fw.until("2d"))
    got = [(m["subject"], m["channel"], m["status"], m["at"]) for m in _connector_msgs(lines)]
    assert got == [
        # The first failure: one alert, through the L1 ticket (Slack is the one failing).
        ("[FOREWARN] Connector down: slack", "ticket", "scheduled", fw.T("0")),
        # Five more by 50m, summarised after the 4h repeat.  Zendesk died meanwhile (its alert
        # failed, raising nothing), so no channel is left: recorded, suppressed, with the reason.
        ("Connector still down: slack", "slack", "suppressed", fw.T("4h")),
        # The next waits 8h (doubling): the failure at 5h is summarised at 12h; the one at 13h
        # would wait until 28h, but Slack delivers at 14h and ends the outage.
        ("Connector still down: slack", "slack", "suppressed", fw.T("12h")),
        ("Connector recovered: slack", "slack", "scheduled", fw.T("14h")),
        # Zendesk's delivery at 14h01 ends its outage silently (it never had an alert of its
        # own); a new Slack outage gets a new alert at once, through Zendesk again.
        ("[FOREWARN] Connector down: slack", "ticket", "scheduled", fw.T("15h")),
    ], got
    msgs = _connector_msgs(lines)
    assert "5 more messages failed on slack since %s" % fw.T("10m") in msgs[1]["body"], msgs[1]["body"]
    assert "no_failure_channel" in msgs[1]["reason"], msgs[1]
    assert "1 more message failed on slack since %s" % fw.T("5h") in msgs[2]["body"], msgs[2]["body"]
    # Nothing was raised about the failed alert, and nothing ever went through Slack while down.
    assert not any("zendesk" in m["subject"] for m in msgs), msgs
    # Replaying the same journal gives the same alerts with the same ids (idempotency keys).
    again = fw.replay(_replay_failures(), "--messages", *fw.until("2d"))
    assert [m["id"] for m in _connector_msgs(again)] == [m["id"] for m in msgs]
