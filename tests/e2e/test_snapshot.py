"""test_snapshot.py -- restarts from a snapshot (DESIGN.md, recovery;
docs/operations.md): a clean stop writes one, start-up loads it and replays
only the journal rows after it, and the state is the one a replay of the
whole journal gives; a corrupt snapshot or one written under other rules is
refused with a log line and the journal replayed instead."""
import json
import os
import re
import shutil
import tempfile
import time

from receivers import start_all
from server import Server, ev

ROOT = os.path.join(os.path.dirname(__file__), "../..")


def _hours(h):
    secs = int(round(h * 3600)) + 10 * 3600
    d, rem = divmod(secs, 86400)
    return "2026-01-%02dT%02d:%02d:%02dZ" % (1 + d, rem // 3600, rem // 60 % 60, rem % 60)


CUSTOMERS = ["snap%02d@example.com" % i for i in range(8)]


def _pending(first, n, base=0.0):
    """Customers paid with an eSIM left PENDING: nothing fires yet, a wake-up waits at +48h."""
    out = []
    for i, c in enumerate(CUSTOMERS[first:first + n]):
        out.append(ev("customer.updated", c, _hours(base), name="S%d" % i, zip="9410%d" % (i % 3)))
        out.append(ev("payment.completed", c, _hours(base + 0.1 * (i + 1)), order_id="o%d" % i))
        out.append(ev("esim.status_changed", c, _hours(base + 0.1 * (i + 1) + 0.05),
                      order_id="o%d" % i, status="PENDING"))
    return out


def _state(s):
    """Everything restart must give back: each customer's view, counts, wake-ups, clock."""
    out = {}
    for c in CUSTOMERS:
        st, body = s.request("GET", "/v1/customers/" + c)
        out[c] = (st, body)
    st, text, _ = s.request("GET", "/metrics", raw=True)
    for name in ("forewarn_customers", "forewarn_pending_timers", "forewarn_detections_firing"):
        m = re.search(r"^%s (\S+)$" % name, text, re.M)
        out[name] = m.group(1) if m else None
    out["clock"] = s.request("GET", "/v1/admin/clock")[1]
    return out


def _log_since(s, mark):
    return s.logtext_full()[mark:]


def _copy_db(src_dir, name="full"):
    """The database alone (no snapshot files beside it): a restart from it replays everything."""
    d = tempfile.mkdtemp(prefix="fw-e2e-%s-" % name)
    for suffix in ("", "-wal", "-shm"):
        p = os.path.join(src_dir, "fw.db" + suffix)
        if os.path.exists(p):
            shutil.copy(p, os.path.join(d, "fw.db" + suffix))
    return d


def test_clean_stop_snapshot_then_kill9_replays_only_the_rest():
    s = Server()
    s.start()
    try:
        first = _pending(0, 5)
        st, body = s.post_events(first)
        assert st == 200 and body["accepted"] == len(first), body
        s.stop()
        log = s.logtext_full()
        m = re.search(r"snapshot written \(clean stop\): journal row (\d+), 5 customers", log)
        assert m, log[-2000:]
        row = int(m.group(1))
        assert row == len(first)
        # (a) The restart loads it and replays nothing.
        mark = len(log)
        s.start()
        log = s.logtext_full()[mark:]
        assert "loaded snapshot %s.snapshot at journal row %d: 5 customers, 5 pending wake-ups" % (
            s.db, row) in log, log
        assert "replayed 0 rows after it" in log, log
        # (b) More events after it, then a crash: the snapshot plus the rows after it.
        more = _pending(5, 3, base=1.0)
        st, body = s.post_events(more)
        assert st == 200 and body["accepted"] == len(more), body
        before = _state(s)
        s.kill9()
        mark = len(s.logtext_full())
        s.start()
        log = s.logtext_full()[mark:]
        assert "loaded snapshot %s.snapshot at journal row %d" % (s.db, row) in log, log
        assert "replayed %d rows after it: 8 customers, 8 pending wake-ups" % len(more) in log, log
        after = _state(s)
        assert after == before
        s.stop()
        # The same database without its snapshot: a whole-journal replay gives the same state.
        full = Server(workdir=_copy_db(s.dir))
        s.start()
        full.start()
        try:
            assert "recovered %d events" % (len(first) + len(more) + 0) in full.logtext_full() or \
                "recovered" in full.logtext_full()
            assert "loaded snapshot" not in full.logtext_full()
            a, b = _state(s), _state(full)
            assert a == b
            assert a["forewarn_pending_timers"] == "8", a
            # And what happens next happens the same: every wake-up fires once, at its time.
            for srv in (s, full):
                st, body = srv.clock(_hours(60))
                assert st == 200, body
            ds = sorted((d["signal"], d["customer"], d["fired_at"]) for d in s.detections())
            df = sorted((d["signal"], d["customer"], d["fired_at"]) for d in full.detections())
            assert ds == df
            assert len([d for d in ds if d[0] == "SIG-001"]) == 8, ds
            assert len(set(ds)) == len(ds)  # no detection twice
            # The journey state (not the messages' delivery reports, which arrive on their own
            # time) is the same too.
            for c in CUSTOMERS:
                a = s.request("GET", "/v1/customers/" + c)[1]
                b = full.request("GET", "/v1/customers/" + c)[1]
                assert a["state"] == b["state"] and a.get("next_wakeup") == b.get("next_wakeup"), (a, b)
        finally:
            full.stop()
    finally:
        s.stop()


def _flip(path, at):
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0x40]))


def test_corrupt_snapshot_falls_back_to_the_previous_then_the_journal():
    s = Server()
    s.start()
    try:
        st, body = s.post_events(_pending(0, 4))
        assert st == 200, body
        s.stop()  # snapshot at row 12
        s.start()
        st, body = s.post_events(_pending(4, 2, base=1.0))
        assert st == 200, body
        want = _state(s)
        s.stop()  # snapshot at row 18; the one at 12 becomes .prev
        snap = s.db + ".snapshot"
        assert os.path.exists(snap) and os.path.exists(snap + ".prev")
        _flip(snap, os.path.getsize(snap) // 2)
        mark = len(s.logtext_full())
        s.start()
        log = s.logtext_full()[mark:]
        assert "snapshot %s not used: its checksum does not match (torn or corrupt); trying the " \
               "previous one" % snap in log, log
        assert "loaded snapshot %s.prev at journal row 12" % snap in log, log
        assert "replayed 6 rows after it" in log, log
        assert _state(s) == want
        s.stop()  # writes a good snapshot again
        # Both bad: the whole journal.
        _flip(snap, 40)
        _flip(snap + ".prev", os.path.getsize(snap + ".prev") - 1)
        mark = len(s.logtext_full())
        s.start()
        log = s.logtext_full()[mark:]
        assert "trying the previous one" in log and "replaying the whole journal" in log, log
        assert "recovered 18 events" in log, log
        assert _state(s) == want
    finally:
        s.stop()


def test_snapshot_from_other_rules_is_not_used():
    s = Server()
    s.start()
    try:
        st, body = s.post_events(_pending(0, 3))
        assert st == 200, body
        want = _state(s)
        s.stop()
        assert os.path.exists(s.db + ".snapshot")
        # The same pack read from a file counts as other rules (its text is the fingerprint's,
        # with its name): refused, and the journal replayed.
        s.args = ["--rules", os.path.join(ROOT, "rules/telecom.yaml")]
        mark = len(s.logtext_full())
        s.start()
        log = s.logtext_full()[mark:]
        assert "not used: it was written under other rules or configuration" in log, log
        assert "recovered 9 events" in log, log
        assert _state(s) == want
    finally:
        s.stop()


def test_full_replay_flag_ignores_the_snapshot():
    s = Server()
    s.start()
    try:
        st, body = s.post_events(_pending(0, 2))
        assert st == 200, body
        s.stop()
        s.args = ["--full-replay"]
        mark = len(s.logtext_full())
        s.start()
        log = s.logtext_full()[mark:]
        assert "loaded snapshot" not in log and "recovered 6 events" in log, log
    finally:
        s.stop()


def _cfg(r):
    d = tempfile.mkdtemp(prefix="fw-e2e-snapmsg-")
    path = os.path.join(d, "forewarn.yaml")
    with open(path, "w") as f:
        f.write("brand: {name: Meow Mobile}\n")
        f.write(r.connectors_yaml(max_attempts=2, backoff_base="50ms", backoff_max="100ms",
                                  timeout="5s"))
    return d, path


MSG_CUSTOMERS = ["snapmsg%d@example.com" % i for i in range(4)]


def _failed_esim(first, n, base):
    """Customers whose eSIM fails: SIG-002 (CRITICAL) fires, a case opens, messages go out on
    every channel, and the ladder (page at +2h, SMS at +4h) and follow-up tasks wait."""
    out = []
    for i, c in enumerate(MSG_CUSTOMERS[first:first + n]):
        t = base + 0.01 * i
        out.append(ev("customer.updated", c, _hours(t), name="M%d" % i, email=c,
                      phone="+1415555%04d" % (first + i), zip="94105", timezone="UTC"))
        out.append(ev("order.created", c, _hours(t + 0.001), order_id="m%d" % (first + i)))
        out.append(ev("payment.completed", c, _hours(t + 0.002), order_id="m%d" % (first + i)))
        out.append(ev("esim.status_changed", c, _hours(t + 0.003), order_id="m%d" % (first + i),
                      status="FAILED", individual_id="ind-%d" % (first + i)))
    return out


def _all(s, path, key):
    out, cursor = [], None
    while True:
        q = "?limit=500" + ("&cursor=" + cursor if cursor else "")
        st, body = s.request("GET", path + q)
        assert st == 200, body
        out += body[key]
        cursor = body.get("next_cursor")
        if not cursor:
            return out


MSG_FIELDS = ("id", "audience", "channel", "customer", "status", "subject", "body", "send_at")


def _outreach(s):
    """Every message (its decision and text, and whether it went) and every case and task."""
    msgs = sorted(tuple(m.get(k) for k in MSG_FIELDS) for m in _all(s, "/v1/messages", "messages"))
    cases = sorted(json.dumps(c, sort_keys=True) for c in _all(s, "/v1/cases", "cases"))
    tasks = sorted(json.dumps(t, sort_keys=True) for t in _all(s, "/v1/tasks", "tasks"))
    return {"messages": msgs, "cases": cases, "tasks": tasks}


def _diff(a, b):
    """What differs between two _outreach results, field by field (for the failure message)."""
    out = []
    for what in ("cases", "tasks"):
        xa = {json.loads(x)["id"]: json.loads(x) for x in a[what]}
        xb = {json.loads(x)["id"]: json.loads(x) for x in b[what]}
        for k in sorted(set(xa) | set(xb)):
            if k not in xa or k not in xb:
                out.append((what, k, "only in one"))
                continue
            for f in sorted(set(xa[k]) | set(xb[k])):
                if xa[k].get(f) != xb[k].get(f):
                    out.append((what, k, f, xa[k].get(f), xb[k].get(f)))
    return out


def _case_messages(o):
    return sorted((json.loads(c)["id"], json.loads(c)["messages"]) for c in o["cases"])


def _without_case_messages(o):
    o = dict(o)
    o["cases"] = sorted(json.dumps(dict(json.loads(c), messages=None), sort_keys=True)
                        for c in o["cases"])
    return o


def _settled(s, timeout=20):
    """Wait until no message is waiting to go (each check is an API read)."""
    deadline = time.monotonic() + timeout
    while True:
        busy = [m for m in _all(s, "/v1/messages", "messages")
                if m["status"] in ("scheduled", "sending", "retrying")]
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(0.05)


def _no_double_sends(r):
    assert all(r.duplicates(k) == 0 for k in ("smtp", "twilio", "zendesk", "slack")), r.summary()
    keys = [x.get("key") for x in r.received("twilio")]
    assert len(keys) == len(set(keys)), keys


def test_snapshot_with_messages_and_cases_restarts_as_a_full_replay():
    """Messages, cases, ladders and tasks are in the snapshot: a clean stop writes it, a restart
    loads it and replays only the rows after it, and after a kill -9 the snapshot plus the rest
    of the journal give the cases, tasks and messages a whole-journal replay gives; what happens
    next (ladder steps, SLA breaches, task reminders) is the same, and nothing is sent twice."""
    r = start_all()
    r2 = start_all()
    full = None
    try:
        d, cfg = _cfg(r)
        s = Server("--config", cfg, workdir=d)
        s.start()
        st, body = s.post_decided(_failed_esim(0, 2, 0.0))
        assert st == 200, body
        assert not _settled(s)
        s.stop()
        log = s.logtext_full()
        m = re.search(r"snapshot written \(clean stop\): journal row (\d+)", log)
        assert m, log[-3000:]
        assert "snapshot not written" not in log, log
        row = int(m.group(1))
        mark = len(log)
        s.start()
        log = _log_since(s, mark)
        assert "loaded snapshot %s.snapshot at journal row %d" % (s.db, row) in log, log
        assert "replayed 0 rows after it" in log, log
        # More customers, and the ladder's page for the first two (+2h); then a crash.
        st, body = s.post_decided(_failed_esim(2, 2, 1.0))
        assert st == 200, body
        st, body = s.clock(_hours(2.5))
        assert st == 200, body
        assert not _settled(s)
        before = _outreach(s)
        assert len(before["cases"]) == 4 and len(before["tasks"]) >= 4, before
        assert any(m[1] == "engineering" for m in before["messages"]), before["messages"]
        s.kill9()
        fd = _copy_db(s.dir)
        mark = len(s.logtext_full())
        s.start()
        log = _log_since(s, mark)
        assert "loaded snapshot %s.snapshot at journal row %d" % (s.db, row) in log, log
        m = re.search(r"replayed (\d+) rows after it", log)
        assert m and int(m.group(1)) > 0, log
        assert _outreach(s) == before
        # The same database without its snapshot, delivering to receivers of its own.
        fcfg = os.path.join(fd, "forewarn.yaml")
        with open(fcfg, "w") as f:
            f.write("brand: {name: Meow Mobile}\n")
            f.write(r2.connectors_yaml(max_attempts=2, backoff_base="50ms", backoff_max="100ms",
                                       timeout="5s"))
        full = Server("--config", fcfg, "--full-replay", workdir=fd)
        full.start()
        assert "loaded snapshot" not in full.logtext_full()
        assert _outreach(full) == before
        # What comes next: the SMS step (+4h), SLA breaches and task reminders (days later).
        for t in (5.0, 30.0, 24 * 4.0):
            for srv in (s, full):
                st, body = srv.clock(_hours(t))
                assert st == 200, body
                assert not _settled(srv)
            a, b = _outreach(s), _outreach(full)
            # A whole-journal replay re-attaches to a case only the customer messages that
            # count as outreach (a quiet orchestrator renders nothing else), so a case saved
            # after it lists fewer messages than the process that decided them; the snapshot
            # keeps the whole list.  Everything else is the same.
            for x, y in zip(_case_messages(a), _case_messages(b)):
                assert x[0] == y[0] and set(y[1]) <= set(x[1]), (x, y)
            a, b = _without_case_messages(a), _without_case_messages(b)
            assert a == b, (t, set(a["messages"]) ^ set(b["messages"]), _diff(a, b))
        assert len(a["messages"]) > len(before["messages"]), a["messages"]
        _no_double_sends(r)
        _no_double_sends(r2)
        s.stop()
    finally:
        if full:
            full.stop()
        r.stop()
        r2.stop()
