#!/usr/bin/python3
"""crash_trials.py -- kill -9 trials of `forewarn serve` under ingest load, with
messages flowing to real local receivers (a Standard Webhooks endpoint and an
SMTP server, tests/e2e/receivers.py), and the counts that must be zero.

    bench/crash_trials.py [--trials 100] [--writers 4] [--json]

One database for the whole run.  Each trial starts serve on it (recovery
included), lets writers post batches of events (each customer's four events
make SIG-002 fire: a customer email, a webhook copy, an L1 ticket ...), and
kills the server with SIGKILL after a random 0.2-1.2 s, with requests and
deliveries in flight.  A writer remembers every event the server
acknowledged (HTTP 200).  After the last trial a final serve moves the
virtual clock past every merge window and runs until the outbox is quiet,
then it is stopped cleanly and the database and the receivers are compared:

  lost            acknowledged events missing from the journal        (must be 0)
  fired_twice     customers with more than one SIG-002 detection      (must be 0)
  double_decided  one decision (kind, customer, signals, audience, channel) stored
                  as two email or webhook messages                       (must be 0)
  dup_deliveries  messages that reached a receiver under two ids, or
                  receiver arrivals that match no message              (must be 0)
  undelivered     email/webhook messages not sent at the end           (must be 0)
  resent_same_id  repeats a receiver dropped by their id: the documented
                  at-least-once (a crash between send and mark), counted apart

Prints one line per trial and a JSON summary; exit status 1 when a count
that must be zero is not.  tests/e2e/test_reliability.py runs 5 trials in
the suite; bench/run runs 100 and docs/reliability.md has the figures.
"""
import argparse
import datetime as dt
import hashlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

from receivers import start_all  # noqa: E402
from server import Server  # noqa: E402

T0 = dt.datetime(2026, 2, 1, 8, 0, 0, tzinfo=dt.timezone.utc)


def _t(x):
    return x.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (x.microsecond // 1000)


def wire_id(key):
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def message_id(key):
    return "<" + hashlib.sha256(key.encode()).hexdigest()[:32] + "@forewarn>"


class Load:
    """Writers posting batches of whole customers; every acknowledged id is kept."""

    def __init__(self, writers, batch_customers=1, pause=0.05):
        self.lock = threading.Lock()
        self.next_customer = 0
        self.acked = set()
        self.customers_acked = set()
        self.writers = writers
        self.batch = batch_customers
        self.refused = 0
        self.pause = pause

    def _customers(self):
        with self.lock:
            first = self.next_customer
            self.next_customer += self.batch
        return range(first, first + self.batch)

    def _events(self, n):
        c = "cust%05d@example.com" % n
        # Event time moves 2 s per customer, so later customers close earlier merge windows.
        at = _t(T0 + dt.timedelta(seconds=2 * n))
        base = {"specversion": "1.0", "source": "crash-trials", "subject": c, "time": at}
        oid = "o-%d" % n
        return [dict(base, id="c%d-1" % n, type="customer.updated",
                     data={"name": "Pat %d" % n, "email": c, "timezone": "UTC"}),
                dict(base, id="c%d-2" % n, type="order.created", data={"order_id": oid}),
                dict(base, id="c%d-3" % n, type="payment.completed",
                     data={"order_id": oid, "amount": 45}),
                dict(base, id="c%d-4" % n, type="esim.status_changed",
                     data={"order_id": oid, "status": "FAILED", "individual_id": "i-%d" % n})]

    def run(self, base, stop):
        def writer():
            while not stop.is_set():
                nums = list(self._customers())
                evs = [e for n in nums for e in self._events(n)]
                req = urllib.request.Request(base + "/v1/events", data=json.dumps(evs).encode(),
                                             method="POST",
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        ok = r.status == 200
                except (urllib.error.URLError, ConnectionError, OSError):
                    ok = False  # killed mid-request: not acknowledged, may or may not be stored
                with self.lock:
                    if ok:
                        self.acked.update(e["id"] for e in evs)
                        self.customers_acked.update(nums)
                    else:
                        self.refused += 1
                if not ok:
                    return
                stop.wait(self.pause)  # paced: the dispatcher must keep up over a whole run
        ts = [threading.Thread(target=writer) for _ in range(self.writers)]
        for t in ts:
            t.start()
        return ts


def _settle(s, r, timeout=600):
    """Move the clock past every merge window and wait until no email/webhook message is due,
    in flight or retrying.  Reads the database through the API only."""
    far = _t(T0 + dt.timedelta(days=1))
    st, b = s.clock(far)
    assert st == 200, b
    deadline = time.monotonic() + timeout
    while True:
        st, body = s.request("GET", "/v1/messages?limit=1000&status=retrying")
        busy = body["messages"]
        for status in ("scheduled", "sending"):
            st, b2 = s.request("GET", "/v1/messages?limit=1000&status=" + status)
            busy += [m for m in b2["messages"] if m["channel"] in ("email", "webhook")]
        if not busy:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the outbox did not settle: %s" % busy[:3])
        time.sleep(0.05)


def run(trials=100, writers=2, seed=1, log=print, bin_path=None):
    if bin_path:
        os.environ["FOREWARN_BIN"] = bin_path
    rnd = random.Random(seed)
    r = start_all()
    work = tempfile.mkdtemp(prefix="fw-crash-")
    db = os.path.join(work, "fw.db")
    cfg = os.path.join(work, "forewarn.yaml")
    with open(cfg, "w") as f:
        f.write(r.connectors_yaml(only=("email", "webhook"), backoff_base="20ms",
                                  backoff_max="200ms", timeout="5s"))
        f.write("outreach: {webhook: true}\n")
    load = Load(writers)
    kills_in_flight = 0
    started = time.monotonic()
    try:
        for i in range(trials):
            s = Server("--config", cfg, db=db, workdir=work)
            s.start(timeout=120)
            stop = threading.Event()
            ts = load.run(s.base, stop)
            time.sleep(rnd.uniform(0.2, 1.2))  # the load runs; the kill comes at a random moment
            s.kill9()
            stop.set()
            for t in ts:
                t.join()
            kills_in_flight += 1
            if log:
                log("trial %3d: %6d events acknowledged, %5d customers, %4d received (webhook), "
                    "%4d (smtp)" % (i + 1, len(load.acked), len(load.customers_acked),
                                    len(r.received("webhook")), len(r.received("smtp"))))
        s = Server("--config", cfg, db=db, workdir=work)
        s.start(timeout=300)
        _settle(s, r)
        s.stop()
        return _count(db, r, load, trials, time.monotonic() - started)
    finally:
        r.stop()


def _count(db, r, load, trials, seconds):
    con = sqlite3.connect(db)
    journal = {row[0] for row in con.execute("SELECT id FROM events")}
    lost = sorted(load.acked - journal)
    fired = con.execute("SELECT customer, count(*) FROM detections WHERE signal = 'SIG-002' "
                        "GROUP BY customer HAVING count(*) > 1").fetchall()
    rows = con.execute("SELECT key, customer, channel, status FROM messages "
                       "WHERE channel IN ('email', 'webhook')").fetchall()
    # One decision is (kind, customer, signals, audience, channel, ...) whatever its time: the
    # key without its last field.  Two rows for one decision = a decision made twice.
    per = {}
    for key, cust, chan, status in rows:
        per.setdefault(key.rsplit("|", 1)[0], []).append(key)
    double_decided = [k for k, v in per.items() if len(v) > 1]
    sent = {(chan, key) for key, cust, chan, status in rows if status == "sent"}
    undelivered = [(chan, key, status) for key, cust, chan, status in rows if status != "sent"]
    # What the receivers got, first arrivals by id, against the messages by their keys.
    want = {("webhook", wire_id(k)): k for c, k in sent if c == "webhook"}
    want.update({("smtp", message_id(k)): k for c, k in sent if c == "email"})
    got_webhook = [a["key"] for a in r.received("webhook")]
    got_smtp = [a["message_id"] for a in r.received("smtp")]
    got = [("webhook", k) for k in got_webhook] + [("smtp", k) for k in got_smtp]
    stray = [g for g in got if g not in want]  # an id that no sent message has
    missing = [w for w in want if w not in set(got)]
    # Every webhook delivery is one message; a second id for one key would show as a stray.
    acked_customers = len(load.customers_acked)
    con.close()
    out = {
        "trials": trials,
        "seconds": round(seconds, 1),
        "events_acknowledged": len(load.acked),
        "customers_acknowledged": acked_customers,
        "events_in_journal": len(journal),
        "messages_email_webhook": len(rows),
        "deliveries_webhook": len(got_webhook),
        "deliveries_smtp": len(got_smtp),
        "lost": len(lost),
        "fired_twice": len(fired),
        "double_decided": len(double_decided),
        "dup_deliveries": len(stray),
        "undelivered": len(undelivered) + len(missing),
        "resent_same_id": r.duplicates("webhook") + r.duplicates("smtp"),
        "examples": {"lost": lost[:5], "fired_twice": fired[:5], "double_decided": double_decided[:5],
                     "stray": stray[:5], "undelivered": (undelivered + missing)[:5]},
    }
    out["ok"] = all(out[k] == 0 for k in ("lost", "fired_twice", "double_decided",
                                           "dup_deliveries", "undelivered"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print only the JSON summary")
    a = ap.parse_args()
    os.environ.setdefault("FOREWARN_BIN", os.path.join(HERE, "..", "build", "forewarn"))
    res = run(a.trials, a.writers, a.seed, log=None if a.json else print)
    print(json.dumps(res, indent=None if a.json else 2))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
