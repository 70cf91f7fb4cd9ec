"""SQLite I/O errors other than a full disk (issue 18, item 5; docs/reliability.md).

The server runs with FOREWARN_TEST_IO_FAULTS naming a control file: a test-only SQLite VFS
(src/store/faultvfs.c) then fails the N-th read, write or sync after the file last changed,
curl-torture style.  Under ingest and under delivery, with each N in turn and with a fault
that lasts: a refused request is 503 with Retry-After, nothing acknowledged is lost (every
acknowledged event is in the journal after a restart), nothing fires or is decided twice,
every message reaches its receiver under one id, and the server accepts again once the
faults stop.  And an I/O error (or a full disk) during recovery at start-up: serve refuses to
start with a clear message, changes nothing, and the next start is fine.

Real serve, real receivers (receivers.py), loopback only."""
import os
import sqlite3
import sys
import tempfile

from receivers import start_all
from server import Server

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import crash_trials  # noqa: E402  (Load: customers whose events make SIG-002 fire; _count)


def _arm(ctl, spec):
    """Replace the control file whole (rename), so the VFS sees the change at its next op."""
    tmp = ctl + ".tmp"
    with open(tmp, "w") as f:
        f.write(spec + "\n")
    os.replace(tmp, ctl)


def _setup(r):
    d = tempfile.mkdtemp(prefix="fw-ioerr-")
    cfg = os.path.join(d, "forewarn.yaml")
    with open(cfg, "w") as f:
        f.write(r.connectors_yaml(only=("email", "webhook"), backoff_base="20ms",
                                  backoff_max="200ms", timeout="5s"))
        f.write("outreach: {webhook: true}\n")
    ctl = os.path.join(d, "faults")
    _arm(ctl, "off")
    return d, cfg, ctl


class _Run:
    """Posts whole customers (crash_trials.Load's events) and keeps what was acknowledged."""

    def __init__(self, s):
        self.s = s
        self.load = crash_trials.Load(1)
        self.n = 0
        self.refused = []  # (spec, ids) of refused batches

    def post(self, customers=2, spec=None, expect=None):
        evs = [e for k in range(self.n, self.n + customers) for e in self.load._events(k)]
        first = self.n
        self.n += customers
        st, body, hdrs = self.s.request("POST", "/v1/events", evs, raw=True)
        if expect is not None:
            assert st == expect, (spec, st, body)
        if st == 200:
            self.load.acked.update(e["id"] for e in evs)
            self.load.customers_acked.update(range(first, self.n))
        else:
            # The rule: 503, Retry-After, and a body that says nothing was kept.
            assert st == 503, (spec, st, body)
            assert hdrs.get("Retry-After") == "5", (spec, hdrs)
            # From the engine's commit, or from the token check reading the users table
            # before the body was looked at: either way nothing of it was stored.
            assert "nothing was kept" in body or "database unavailable" in body, (spec, body)
            self.refused.append((spec, [e["id"] for e in evs]))
        return st


def _faults(s):
    return s.logtext_all().count("fault-vfs: failing")


def _logtext_all(self):
    self.log.flush()
    with open(os.path.join(self.dir, "server.log"), "rb") as f:
        return f.read().decode(errors="replace")


Server.logtext_all = _logtext_all


def _check_journal(db, run, r, label):
    res = crash_trials._count(db, r, run.load, 0, 0)
    for k in ("lost", "fired_twice", "double_decided", "dup_deliveries", "undelivered"):
        assert res[k] == 0, (label, k, res)
    assert res["deliveries_webhook"] > 0 and res["deliveries_smtp"] > 0, (label, res)
    return res


def test_io_errors_under_ingest_503_nothing_acknowledged_lost_recovers():
    """Faults on the engine's writes, syncs and reads while batches arrive (the dispatcher
    delivering beside them): first a fault that lasts (every write, every sync), then each
    N-th operation in turn.  Refusals are 503 + Retry-After; after the faults stop the next
    batch is 200; after a restart every acknowledged event is in the journal."""
    r = start_all()
    try:
        d, cfg, ctl = _setup(r)
        db = os.path.join(d, "fw.db")
        with Server("--config", cfg, workdir=d, env={"FOREWARN_TEST_IO_FAULTS": ctl}) as s:
            run = _Run(s)
            assert "fault-vfs: test-only I/O fault injection is on" in s.logtext_all()
            run.post(expect=200)
            # A fault that lasts: nothing is accepted, /healthz answers, then it recovers.
            for spec in ("write 1 0", "sync 1 0", "write 1 0 full"):
                _arm(ctl, spec)
                before = _faults(s)
                for _ in range(2):
                    run.post(spec=spec, expect=503)
                assert _faults(s) > before, spec
                assert s.request("GET", "/healthz")[0] == 200
                _arm(ctl, "off")
                run.post(spec=spec + " then off", expect=200)
            # Reads of the engine thread fail: its transaction fails, and so does the rebuild
            # from the journal that follows; the half-built engine is not used (503 until a
            # rebuild works, retried each second and before each group), then all is well.
            # (The first reads are BEGIN's, which fails before anything is applied: start the
            # lasting fault a few reads later, so that it hits the transaction's own reads.)
            for nth in range(2, 12):
                spec = "read %d 0 thread=fw-engine" % nth
                _arm(ctl, spec)
                run.post(spec=spec)
                if "recovery failed: disk I/O error" in s.logtext_all():
                    break
                _arm(ctl, "off")
            assert "recovery failed: disk I/O error" in s.logtext_all(), s.logtext()
            for _ in range(2):
                run.post(spec=spec + " (stale)", expect=503)
            _arm(ctl, "off")
            run.post(spec="reads back", expect=200)
            assert "the engine is rebuilt from the journal; accepting events again" in \
                s.logtext_all(), s.logtext()
            # Torture: the N-th operation of each kind in the engine thread fails, once.
            outcomes = {}
            for op in ("write", "sync", "read"):
                for nth in range(1, 13):
                    spec = "%s %d 1 thread=fw-engine" % (op, nth)
                    _arm(ctl, spec)
                    outcomes[spec] = run.post(spec=spec)
                    _arm(ctl, "off")
            run.post(spec="after torture", expect=200)
            crash_trials._settle(s, r, timeout=60)
            injected = _faults(s)
        # Restart: recovery reads the journal; then count.
        with Server("--config", cfg, workdir=d) as s2:
            crash_trials._settle(s2, r, timeout=60)
        res = _check_journal(db, run, r, "ingest")
        con = sqlite3.connect(db)
        journal = {row[0] for row in con.execute("SELECT id FROM events")}
        con.close()
        kept = [spec for spec, ids in run.refused if set(ids) & journal]
        # A refused write never reached the file; a refused sync or read may have written
        # frames that a later commit replaced: none of them may be in the journal either.
        assert not kept, kept
        refused = sum(1 for v in outcomes.values() if v == 503)
        assert refused >= 6, outcomes  # the torture did hit the engine's transactions
        print("    io faults under ingest: %d faults injected, %d events acknowledged, "
              "%d batches refused (torture: %d of %d), webhook %d, smtp %d, resent same id %d" % (
                  injected, res["events_acknowledged"], len(run.refused), refused, len(outcomes),
                  res["deliveries_webhook"], res["deliveries_smtp"], res["resent_same_id"]))
    finally:
        r.stop()


def test_io_errors_under_delivery_deliver_once_and_recover():
    """Faults while the dispatcher delivers: each N-th write or sync after a webhook that was
    down comes back (claims, `sent` marks, outcome events and re-drives fail in turn), then a
    fault that lasts while messages are due.  Every message reaches its receiver under one id
    (a repeat after an unrecorded `sent` has the same id), nothing acknowledged is lost."""
    r = start_all()
    try:
        d, cfg, ctl = _setup(r)
        db = os.path.join(d, "fw.db")
        with Server("--config", cfg, workdir=d, env={"FOREWARN_TEST_IO_FAULTS": ctl}) as s:
            run = _Run(s)
            clock = crash_trials.T0
            import datetime as dt
            for op in ("write", "sync"):
                for nth in range(1, 9):
                    r.set_down("webhook", True)
                    r.set_down("smtp", True)
                    run.post(customers=1, expect=200)
                    clock += dt.timedelta(hours=1)
                    st, b = s.clock(crash_trials._t(clock))  # past the merge window: due
                    assert st == 200, b
                    assert r.wait_for(lambda: r.attempts("webhook") and r.attempts("smtp"), 20)
                    spec = "%s %d 1 thread=fw-deliver" % (op, nth)
                    _arm(ctl, spec)
                    r.set_down("webhook", False)
                    r.set_down("smtp", False)
                    # Delivered, whatever the fault hit (a claim is retried, an unrecorded
                    # outcome requeued): the receivers get this customer's messages.
                    want = "cust%05d@example.com" % (run.n - 1)
                    assert r.wait_for(lambda: any(want in str(a.get("json") or a.get("body"))
                                                  for a in r.received("webhook")), 20), \
                        (spec, r.summary(), s.logtext())
                    _arm(ctl, "off")
            # A fault that lasts on the dispatcher's writes while messages are due: no claim can
            # be made, so nothing is sent (a send needs its claim recorded first); ingest goes
            # on; once the fault stops every message goes out, once.
            r.set_down("webhook", True)
            run.post(customers=3, expect=200)
            clock += dt.timedelta(hours=1)
            assert s.clock(crash_trials._t(clock))[0] == 200
            assert r.wait_for(lambda: len(r.attempts("webhook")) > 0, 20)
            before = _faults(s)
            _arm(ctl, "write 1 0 thread=fw-deliver")
            # Three failed writes on the dispatcher's thread: it is making claims that fail, so
            # a send whose claim was recorded before the fault has had its attempt (503, the
            # receiver is down) -- counting before that raced with it.
            assert r.wait_for(lambda: _faults(s) >= before + 3, 20), s.logtext()
            got = len(r.received("webhook"))
            before = _faults(s)
            r.set_down("webhook", False)
            assert r.wait_for(lambda: _faults(s) >= before + 3, 20), s.logtext()
            assert len(r.received("webhook")) == got, r.summary()
            run.post(customers=1, spec="ingest beside a delivery fault", expect=200)
            assert s.request("GET", "/healthz")[0] == 200
            _arm(ctl, "off")
            crash_trials._settle(s, r, timeout=60)
            injected = _faults(s)
            log = s.logtext_all()
        with Server("--config", cfg, workdir=d) as s2:
            crash_trials._settle(s2, r, timeout=60)
        res = _check_journal(db, run, r, "delivery")
        print("    io faults under delivery: %d faults injected, %d events acknowledged, "
              "webhook %d, smtp %d, resent same id %d, %d outcomes requeued" % (
                  injected, res["events_acknowledged"], res["deliveries_webhook"],
                  res["deliveries_smtp"], res["resent_same_id"],
                  log.count("requeued: its outcome")))
    finally:
        r.stop()


def test_io_error_or_full_disk_during_recovery_refuses_start_changes_nothing():
    """A journal to recover, then a start whose reads fail (and one whose writes fail as a
    full disk would): serve exits non-zero with a message that says recovery failed and why,
    the file is unchanged, and the next start without faults recovers everything."""
    r = start_all()
    try:
        d, cfg, ctl = _setup(r)
        db = os.path.join(d, "fw.db")
        with Server("--config", cfg, workdir=d) as s:
            run = _Run(s)
            for _ in range(3):
                run.post(expect=200)
        # The server was down for a day: the stored virtual clock moves on, so recovery has
        # wake-ups to fire and decisions to write (the merge windows close).  With nothing due,
        # recovery writes nothing, and a start on a full disk is fine (ingest then gets 503).
        con = sqlite3.connect(db)
        (clock,) = con.execute("SELECT value FROM meta WHERE key = 'virtual_clock'").fetchone()
        con.execute("UPDATE meta SET value = ? WHERE key = 'virtual_clock'",
                    (str(int(clock) + 86400 * 1000),))
        con.commit()
        before = con.execute("SELECT count(*), (SELECT count(*) FROM detections), "
                             "(SELECT count(*) FROM messages) FROM events").fetchone()
        con.close()
        for spec, words in (("read 1 0", "I/O error"), ("write 1 0 full", "full"),
                            ("sync 1 0", "I/O error")):
            _arm(ctl, spec)
            s = Server("--config", cfg, workdir=d, env={"FOREWARN_TEST_IO_FAULTS": ctl})
            rc = s.start(expect_fail=True, timeout=30)
            assert rc != 0, (spec, s.logtext())
            s.proc.wait(timeout=30)
            log = s.logtext()
            assert "cannot start" in log and words in log, (spec, log)
            assert "nothing was changed" in log, (spec, log)
            con = sqlite3.connect(db)
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", spec
            now = con.execute("SELECT count(*), (SELECT count(*) FROM detections), "
                              "(SELECT count(*) FROM messages) FROM events").fetchone()
            con.close()
            assert now == before, (spec, before, now)
        _arm(ctl, "off")
        with Server("--config", cfg, workdir=d) as s:
            # The whole journal, or the clean stop's snapshot (which covers all of it) and
            # nothing after it.
            log = s.logtext_all()
            assert ("recovered %d events" % before[0] in log or
                    "recovered from the snapshot at journal row %d and replayed 0 rows" % before[0]
                    in log), s.logtext()
            run.s = s
            run.post(expect=200)
        con = sqlite3.connect(db)
        (messages,) = con.execute("SELECT count(*) FROM messages").fetchone()
        con.close()
        assert messages > before[2], (before, messages)  # recovery did have writes to make
    finally:
        r.stop()
