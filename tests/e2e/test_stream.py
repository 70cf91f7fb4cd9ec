"""GET /v1/stream (docs/console.md, "Live updates"): the console's Server-Sent
Events.  A committed change to a case is one `change` event naming it, a move of
the virtual clock a `clock` event; every event has an id, a reconnect with
Last-Event-ID resumes in order, and one that cannot resume (another process's
id, or older than the ring) gets a `reset`.  Streams are role-checked, capped,
and end when the server stops.  Every read waits on the socket with a deadline,
never on a sleep."""
import http.client
import json
import os
import re
import tempfile
import time

import fw
from fw import T
from server import Server

C = "jodi@example.com"


def _journey():
    return [
        fw.ev("customer.updated", C, "0", name="Jodi", email=C, carrier="Verizon"),
        fw.ev("order.created", C, "1h", order_id="o-17"),
        fw.ev("payment.completed", C, "1h5m", order_id="o-17", amount=25),
        fw.ev("esim.status_changed", C, "1h6m", order_id="o-17", status="PENDING"),
    ]


class Stream:
    """One open GET /v1/stream, read event by event."""

    def __init__(self, s, headers=None, timeout=10):
        host, port = s.base[len("http://"):].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.conn.request("GET", "/v1/stream", headers=dict(headers or {}))
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = dict(self.resp.getheaders())

    def next(self):
        """The next event as a dict (event, id, data; retry); comments are skipped."""
        ev = {}
        while True:
            line = self.resp.readline()
            if not line:
                raise EOFError("the stream ended")
            line = line.decode().rstrip("\n")
            if line == "":
                if "event" in ev or "data" in ev:
                    if "data" in ev:
                        ev["data"] = json.loads(ev["data"])
                    return ev
                continue
            if line.startswith(":"):
                continue
            k, _, v = line.partition(": ")
            ev[k] = v

    def until(self, pred, limit=50):
        seen = []
        for _ in range(limit):
            e = self.next()
            seen.append(e)
            if pred(e):
                return e, seen
        raise AssertionError("no such event in %r" % seen)

    def close(self):
        self.conn.close()


def _tokens(s):
    toks = {}
    for name, role in (("ann", "agent"), ("vic", "viewer"), ("svc", "service"), ("ada", "admin")):
        rc, out, err = fw.run(["user", "add", name, "--role", role, "--db", s.db])
        assert rc == 0, err
        toks[name] = {"Authorization": "Bearer " + out.strip()}
    return toks


def test_stream_roles_events_and_resume():
    # 260 clock moves in a row from one admin token below: no per-token rate limit here.
    d = tempfile.mkdtemp(prefix="fw-stream-")
    cfg = os.path.join(d, "fw.yaml")
    with open(cfg, "w") as f:
        f.write("rate_limit: 0\n")
    s = Server("--config", cfg, workdir=d)
    toks = _tokens(s)
    s.start()
    try:
        st, body = s.request("GET", "/v1/stream")
        assert st == 401, (st, body)
        st, body = s.request("GET", "/v1/stream", headers=toks["svc"])
        assert st == 403 and "service" in body["error"], body
        v = Stream(s, toks["vic"])
        assert v.status == 200 and v.headers["Content-Type"] == "text/event-stream", v.headers
        assert v.headers["Cache-Control"] == "no-store", v.headers
        hello = v.next()
        assert hello["retry"] == "2000" and hello["event"] == "hello", hello
        assert re.fullmatch(r"[0-9a-f]+-0", hello["id"]), hello
        assert hello["data"]["clock"] == "virtual", hello

        # Events that open a case, then the clock past SIG-006's 24h: the case opens.
        st, body = s.request("POST", "/v1/events", _journey(), headers=toks["svc"])
        assert st == 200, body
        st, body = s.request("POST", "/v1/admin/clock", {"now": T("26h")}, headers=toks["ada"])
        assert st == 200, body
        st, cases = s.request("GET", "/v1/cases?state=open", headers=toks["vic"])
        cid = cases["cases"][0]["id"]
        opened, seen = v.until(lambda e: e["event"] == "change" and cid in e["data"]["cases"])
        assert opened["data"]["now"] == T("26h"), opened
        ids = [int(e["id"].split("-")[1]) for e in [hello] + seen]
        assert ids == list(range(ids[0], ids[0] + len(ids))), ids  # one per event, in order

        # Another agent takes the case: a change naming it.
        st, body = s.request("POST", "/v1/cases/%s/assign" % cid, {}, headers=toks["ann"])
        assert st == 200, body
        taken, _ = v.until(lambda e: e["event"] == "change" and cid in e["data"]["cases"])

        # The clock alone moves: a clock event with the new time, no case named.
        st, body = s.request("POST", "/v1/admin/clock", {"now": T("26h1m")}, headers=toks["ada"])
        tick, _ = v.until(lambda e: e["event"] == "clock")
        assert tick["data"] == {"now": T("26h1m"), "clock": "virtual"}, tick

        # A reconnect with the id of `opened` gets what came after it, in order.
        r = Stream(s, dict(toks["vic"], **{"Last-Event-ID": opened["id"]}))
        h = r.next()
        assert h["event"] == "hello" and h["id"] == opened["id"], h
        again = [r.next() for _ in range(int(tick["id"].split("-")[1]) - int(opened["id"].split("-")[1]))]
        assert again[0]["id"] == taken["id"] or int(again[0]["id"].split("-")[1]) == int(opened["id"].split("-")[1]) + 1
        assert again[-1] == tick, (again, tick)
        r.close()

        # Another process's id, or garbage: reset, with the present.
        for bad in ("deadbeef-3", "nonsense", hello["id"].split("-")[0] + "-99999"):
            r = Stream(s, dict(toks["vic"], **{"Last-Event-ID": bad}))
            e = r.next()
            assert e["event"] == "reset" and e["id"] == tick["id"], (bad, e)
            assert e["data"]["now"] == T("26h1m"), e
            r.close()

        # Older than the ring (256 events): reset too.  The stream open all along is read
        # meanwhile, as the console reads it: a reader that stops for 256 events is overrun
        # and gets a reset by design (stream.c), which a loaded machine made happen here.
        import threading
        got = []
        reader = threading.Thread(target=lambda: got.extend(v.next() for _ in range(260)),
                                  daemon=True)
        reader.start()
        for i in range(2, 262):
            st, body = s.request("POST", "/v1/admin/clock", {"now": T("26h%dm" % i)},
                                 headers=toks["ada"])
            assert st == 200, body
        r = Stream(s, dict(toks["vic"], **{"Last-Event-ID": opened["id"]}))
        e = r.next()
        assert e["event"] == "reset", e
        r.close()
        # The stream open all along got every one of them, in order, with no gap.
        reader.join(60)
        rest = list(got)
        assert [e["data"].get("now") for e in rest] == [T("26h%dm" % i) for i in range(2, 262)], \
            [(e["event"], e["id"], e["data"]) for e in rest if e["event"] != "clock"][:5] or len(rest)
        assert int(rest[0]["id"].split("-")[1]) == int(tick["id"].split("-")[1]) + 1, rest[0]
        v.close()
    finally:
        s.stop()


def test_streams_are_capped_and_end_when_the_server_stops():
    # Two threads in the pool: 32 open streams must park their connections, not hold
    # the threads, or nothing else would be answered.
    d = tempfile.mkdtemp(prefix="fw-stream-")
    cfg = os.path.join(d, "fw.yaml")
    with open(cfg, "w") as f:
        f.write("http_threads: 2\n")
    with Server("--config", cfg, workdir=d) as s:
        open_ = [Stream(s) for _ in range(32)]
        for o in open_:
            assert o.status == 200 and o.next()["event"] == "hello"
        t0 = time.monotonic()
        st, body = s.request("GET", "/v1/cases")
        assert st == 200 and time.monotonic() - t0 < 2.0, (st, time.monotonic() - t0)
        st, text, h = s.request("GET", "/v1/stream", raw=True)
        assert st == 503 and h["Retry-After"] == "30" and "too many" in text, (st, h, text)
        # A closed stream's slot comes back once the server notices, at its next write:
        # move the clock (an event for every stream), then wait for a stream to get in.
        for o in open_[:4]:
            o.close()
        del open_[:4]
        # (A first write to a socket the peer closed still succeeds; the second fails.)
        for t in ("1m", "2m"):
            assert s.clock(T(t))[0] == 200
            for o in open_:
                assert o.next()["event"] == "clock"
        deadline = time.monotonic() + 10
        while True:  # polling for the condition, with a deadline
            got = Stream(s)
            if got.status == 200 or time.monotonic() > deadline:
                break
            got.close()
            time.sleep(0.02)
        assert got.status == 200 and got.next()["event"] == "hello", got.status
        open_.append(got)
        s.stop()  # streams open: it must still stop, and cleanly (stop checks exit 0)
        for o in open_:
            try:
                while True:
                    o.next()
            except (EOFError, http.client.HTTPException, ConnectionError, ValueError):
                pass


def test_a_delivery_outcome_is_a_change_event():
    """A message the dispatcher sends comes back as message.sent: the console's message
    states follow it, so the stream says so (messages: true) with the message's case."""
    from receivers import start_all
    import os
    import tempfile
    jodi = "jodi@example.com"
    r = start_all()
    try:
        d = tempfile.mkdtemp(prefix="fw-stream-")
        cfg = os.path.join(d, "forewarn.yaml")
        with open(cfg, "w") as f:
            f.write(r.connectors_yaml(max_attempts=2, backoff_base="50ms", backoff_max="100ms",
                                      timeout="5s"))
        with Server("--config", cfg, workdir=d) as s:
            v = Stream(s)
            assert v.next()["event"] == "hello"
            evs = [fw.ev("customer.updated", jodi, "0", name="Jodi", email=jodi, phone="+14155550143"),
                   fw.ev("order.created", jodi, "1h", order_id="o-17"),
                   fw.ev("payment.completed", jodi, "1h5m", order_id="o-17", amount=45),
                   fw.ev("esim.status_changed", jodi, "2h", order_id="o-17", status="FAILED")]
            st, body = s.post_decided(evs)
            assert st == 200, body
            assert r.wait_for(lambda: len(r.received("smtp")) >= 1, timeout=20), r.summary()
            # The group that decided the messages stored them (messages: true); the sends
            # come back later as message.sent, each group of them a change with messages
            # true as well: so there are at least two.
            n = [0]

            def second(e):
                n[0] += e["event"] == "change" and e["data"].get("messages") is True
                return n[0] >= 2
            e, seen = v.until(second, limit=200)
            ids = [int(x["id"].split("-")[1]) for x in seen]
            assert ids == sorted(ids), ids
            v.close()
    finally:
        r.stop()
