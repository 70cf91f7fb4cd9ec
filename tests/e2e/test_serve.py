"""End-to-end tests of `forewarn serve`: the real binary, a real SQLite file,
HTTP over loopback, kill -9 restarts."""
import json
import os
import tempfile
import time

from server import Server, ev, BIN
import subprocess

T0 = "2026-01-01T10:00:00Z"


def _hours(h, base_hour=10, day=1):
    """An RFC 3339 time h hours after 2026-01-0<day>T<base_hour>:00Z (h may be fractional)."""
    secs = int(round(h * 3600)) + base_hour * 3600 + (day - 1) * 86400
    d, rem = divmod(secs, 86400)
    return "2026-01-%02dT%02d:%02d:%02dZ" % (1 + d, rem // 3600, rem // 60 % 60, rem % 60)


def test_seed_example_esim_failed_gives_sig002_critical():
    with Server() as s:
        events = [
            ev("customer.updated", "jodi@example.com", "2025-12-29T09:00:00Z", name="Jodi", email="jodi@example.com"),
            ev("payment.completed", "jodi@example.com", "2025-12-29T10:00:00Z", order_id="o-1", amount=25),
            ev("esim.status_changed", "jodi@example.com", "2026-01-01T12:34:56Z", order_id="o-1", status="FAILED", individual_id="ind-9"),
        ]
        status, body = s.post_events(events)
        assert status == 200, body
        assert body["accepted"] == 3 and body["duplicates"] == 0, body
        dets = s.detections(customer="jodi@example.com", signal="SIG-002")
        assert len(dets) == 1, dets
        d = dets[0]
        assert d["severity"] == "CRITICAL" and d["state"] == "firing", d
        assert d["fired_at"] == "2026-01-01T12:34:56Z", d
        status, cust = s.request("GET", "/v1/customers/jodi@example.com")
        assert status == 200, cust
        assert cust["state"]["esim.status"]["value"] == "FAILED", cust
        assert [a["signal"] for a in cust["active_detections"]] == ["SIG-002"], cust
        # Delivery outcomes (message.sent) join the timeline as they happen; the journey is the rest.
        journey = [e for e in cust["timeline"] if not e["type"].startswith("message.")]
        assert len(journey) == 3 and journey[0]["type"] == "esim.status_changed", cust


def _twelve_pending(s):
    events = []
    for i in range(12):
        c = "cust%02d@example.com" % i
        events.append(ev("customer.updated", c, _hours(0), name="C%d" % i, email=c, carrier="Verizon"))
        events.append(ev("payment.completed", c, _hours(i * 0.5), order_id="o%d" % i))
        events.append(ev("esim.status_changed", c, _hours(i * 0.5 + 0.1), order_id="o%d" % i, status="PENDING"))
    for i in range(20):  # unaffected customers on other carriers
        c = "other%02d@example.com" % i
        events.append(ev("customer.updated", c, _hours(0), name="O%d" % i, email=c, carrier="T-Mobile" if i % 2 else "AT&T"))
    return events


def test_seed_example_twelve_pending_esims_and_one_incident():
    with Server() as s:
        status, body = s.post_events(_twelve_pending(s))
        assert status == 200 and body["accepted"] == 12 * 3 + 20, body
        assert s.detections(signal="SIG-001") == []
        status, clk = s.clock(_hours(60))
        assert status == 200, clk
        dets = s.detections(signal="SIG-001", limit=100)
        assert len(dets) == 12, dets
        got = sorted((d["customer"], d["fired_at"]) for d in dets)
        want = sorted(("cust%02d@example.com" % i, _hours(i * 0.5 + 48)) for i in range(12))
        assert got == want, (got, want)
        assert all(d["severity"] == "HIGH" for d in dets)
        status, inc = s.request("GET", "/v1/incidents")
        assert status == 200, inc
        sig1 = [i for i in inc["incidents"] if i["signal"] == "SIG-001"]
        assert len(sig1) == 1, inc
        assert sorted(sig1[0]["customers"]) == sorted("cust%02d@example.com" % i for i in range(12)), sig1
        assert sig1[0]["common_factor"]["key"] == "customer.carrier", sig1
        assert sig1[0]["common_factor"]["value"] == "Verizon", sig1


def test_restart_after_kill9_keeps_events_timers_and_detections():
    s = Server()
    s.start()
    try:
        events = _twelve_pending(s)
        status, body = s.post_events(events)
        assert status == 200, body
        # Half the customers cross 48h before the crash.
        s.clock(_hours(48 + 2.8))
        before = s.detections(signal="SIG-001")
        assert len(before) == 6, before
        msgs_before = sorted(m["id"] for m in s.request("GET", "/v1/messages?limit=1000")[1]["messages"])
        assert len(msgs_before) >= 6, msgs_before
        s.kill9()
        s.start()
        # Nothing acknowledged is missing: re-posting everything is all duplicates.
        status, body = s.post_events(events)
        assert status == 200 and body["accepted"] == 0 and body["duplicates"] == len(events), body
        # The virtual clock survived, and no detection fired twice at recovery.
        status, clk = s.request("GET", "/v1/admin/clock")
        assert clk["now"] == _hours(48 + 2.8), clk
        after = s.detections(signal="SIG-001")
        assert [(d["customer"], d["fired_at"]) for d in after] == [(d["customer"], d["fired_at"]) for d in before]
        # The decisions made before the crash are there once each, and none was added by recovery.
        assert sorted(m["id"] for m in s.request("GET", "/v1/messages?limit=1000")[1]["messages"]) == msgs_before
        # Armed timers still fire, each at its own due time.
        s.clock(_hours(60))
        dets = s.detections(signal="SIG-001")
        assert len(dets) == 12, dets
        got = sorted((d["customer"], d["fired_at"]) for d in dets)
        want = sorted(("cust%02d@example.com" % i, _hours(i * 0.5 + 48)) for i in range(12))
        assert got == want
        # And once more: a second crash right after changes nothing.
        s.kill9()
        s.start()
        again = s.detections(signal="SIG-001")
        assert sorted((d["customer"], d["fired_at"]) for d in again) == want
        status, inc = s.request("GET", "/v1/incidents")
        assert len([i for i in inc["incidents"] if i["signal"] == "SIG-001"]) == 1, inc
    finally:
        s.stop()


def test_orchestrator_memory_survives_kill9():
    """Outreach history (frequency cap) and escalation-ladder steps outlive a crash: recovery
    rebuilds them from the journal without re-deciding what was already stored."""
    c = "memo@example.com"
    s = Server()
    s.start()
    try:
        status, body = s.post_events([
            ev("customer.updated", c, _hours(0), name="Mo Memo", email=c, timezone="UTC"),
            ev("portin.status_changed", c, _hours(1), status="REJECTED", response="REJECTED"),
        ])
        assert status == 200, body
        s.clock(_hours(1 + 5 / 3600))  # the merge window (5s) closes: decided
        def msgs():
            return s.request("GET", "/v1/messages?customer=" + c)[1]["messages"]
        before = msgs()
        first = [m for m in before if m["audience"] == "customer" and m["channel"] == "email"]
        assert [m["status"] for m in first] == ["stored"], before  # no connector: kept, not sent
        s.kill9()
        s.start()
        assert sorted(m["id"] for m in msgs()) == sorted(m["id"] for m in before)
        # The ladder armed before the crash: HIGH still unresolved 4h after detection -> L2.
        s.clock(_hours(6))
        l2 = [m for m in msgs() if m["audience"] == "l2" and m["explanation"]["decided_by"] == ["escalate_l2_unresolved"]]
        assert len(l2) == 1 and l2[0]["signals"] == ["SIG-004"], msgs()
        assert l2[0]["created_at"] == _hours(5), l2[0]
        assert "open since Jan 1, 2026 at 11:00 AM (UTC)" in l2[0]["body"], l2[0]["body"]  # detected, not now
        # The outreach before the crash still counts: a second HIGH problem within the week is capped.
        status, body = s.post_events([ev("chat.escalated", c, _hours(48), conversation_id="x", topic="bill")])
        assert status == 200, body
        s.clock(_hours(51))
        capped = [m for m in msgs() if m["audience"] == "customer" and "SIG-007" in m["signals"]]
        assert len(capped) == 1 and capped[0]["status"] == "suppressed", capped
        assert capped[0]["reason"].startswith("frequency_cap:"), capped[0]
    finally:
        s.stop()


def test_wall_clock_timer_that_fell_due_while_down_fires_at_startup():
    s = Server(virtual=False)
    s.start()
    try:
        def fmt(ms):
            base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
            return base + (".%03dZ" % (ms % 1000) if ms % 1000 else "Z")
        pay = int(time.time() * 1000) - 48 * 3600 * 1000 + 1500  # SIG-001 falls due 1.5 s from now
        c = "late@example.com"
        status, body = s.post_events([
            ev("payment.completed", c, fmt(pay), order_id="o1"),
            ev("esim.status_changed", c, fmt(pay + 1), order_id="o1", status="PENDING"),
        ])
        assert status == 200, body
        assert s.detections(signal="SIG-001") == []
        s.kill9()
        due = pay + 48 * 3600 * 1000
        while time.time() * 1000 < due + 200:  # let wall time pass the due time while the server is down
            time.sleep(0.05)
        s.start()
        dets = s.detections(signal="SIG-001")
        assert len(dets) == 1, dets
        assert dets[0]["fired_at"] == fmt(due), (dets, fmt(due))
        # Recovery replays the journal quietly, but what fell due after it is decided for real:
        # the L1 ticket and the chatbot context for this detection are written once the merge
        # window (5s of wall time) that opened at start-up closes.
        deadline = time.monotonic() + 30
        while True:
            status, msgs = s.request("GET", "/v1/messages?customer=" + c)
            assert status == 200, msgs
            kinds = sorted((m["audience"], m["channel"]) for m in msgs["messages"])
            if ("l1", "ticket") in kinds or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert ("l1", "ticket") in kinds and ("chatbot", "chatbot") in kinds, kinds
        status, ctx = s.request("GET", "/v1/customers/%s/context" % c)
        assert status == 200 and ctx["proactive_context"]["signal"] == "SIG-001", ctx
    finally:
        s.stop()


def test_bad_input_is_refused_whole_with_positions():
    with Server() as s:
        good = ev("order.created", "bad@example.com", T0, order_id="x")
        cases = [
            ('{"specversion":"1.0",', 400, "line 1"),
            ([good, {"specversion": "1.0", "id": "b1", "type": "order.created", "subject": "bad@example.com"}], 400, "time"),
            ([good, dict(ev("order.created", "bad@example.com", T0), specversion=1)], 400, "specversion"),
            ([good, ev("order.created", "bad@example.com", "2026-01-01 10:00")], 400, "time"),
            ([good, dict(ev("order.created", "bad@example.com", T0), data=[1, 2])], 400, "data"),
            ([good, ev("order.created", None, T0)], 400, "subject"),
        ]
        for body, code, needle in cases:
            status, resp = s.post_events(body)
            assert status == code, (body, status, resp)
            text = json.dumps(resp)
            assert needle in text, (needle, resp)
            if isinstance(body, list):
                assert any(e.get("where") == "index 1" for e in resp["errors"]), resp
        # NDJSON errors name the line.
        nd = json.dumps(good) + "\n" + json.dumps(ev("order.created", "bad@example.com", "yesterday")) + "\n"
        status, resp = s.post_events(nd, headers={"Content-Type": "application/x-ndjson"})
        assert status == 400 and any(e["where"] == "line 2" for e in resp["errors"]), resp
        # Oversized body: refused as soon as its announced length is read, before the body is
        # (a client that goes on sending finds the connection closed, so read the answer first).
        import socket
        host, port = s.base.split("//")[1].split(":")
        with socket.create_connection((host, int(port)), timeout=5) as c:
            c.sendall(("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n" % (5 << 20)).encode())
            c.sendall(json.dumps([good]).encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = c.recv(4096)
                if not chunk:
                    break
                answer += chunk
        assert answer.split(b" ", 2)[1] == b"413", answer
        # Nothing of any refused batch was written.
        status, _ = s.request("GET", "/v1/customers/bad@example.com")
        assert status == 404
        status, metrics, _ = s.request("GET", "/metrics", raw=True)
        assert "forewarn_events_accepted_total 0\n" in metrics, metrics
        assert "forewarn_events_rejected_total 0\n" not in metrics
        # A duplicate id is accepted but ignored and counted.
        status, body = s.post_events([good])
        assert status == 200 and body["accepted"] == 1
        status, body = s.post_events([good])
        assert status == 200 and body["duplicates"] == 1 and body["results"][0]["status"] == "duplicate", body
        status, metrics, _ = s.request("GET", "/metrics", raw=True)
        assert "forewarn_events_duplicate_total 1\n" in metrics
        # Unsupported content type.
        status, resp = s.post_events(json.dumps(good), headers={"Content-Type": "text/plain"})
        assert status == 415, resp


def test_api_token_required_except_health_and_metrics():
    token = "s3cret-token-0123456789"
    with Server(env={"FOREWARN_API_TOKEN": token}) as s:
        status, resp = s.request("GET", "/v1/detections")
        assert status == 401, resp
        status, resp = s.request("GET", "/v1/detections", headers={"Authorization": "Bearer wrong-token-0123456789"})
        assert status == 401
        status, resp = s.request("GET", "/v1/detections", headers={"Authorization": "Bearer " + token})
        assert status == 200, resp
        for path in ("/healthz", "/readyz", "/metrics"):
            status, _, _ = s.request("GET", path, raw=True)
            assert status == 200, path
    # Never on the command line.
    s = Server("--api-token", token)
    assert s.start(expect_fail=True) != 0


def test_admin_clock_refused_without_virtual_clock():
    with Server(virtual=False) as s:
        status, resp = s.clock("2030-01-01T00:00:00Z")
        assert status == 409, resp
    with Server() as s:
        assert s.clock("2026-01-02T00:00:00Z")[0] == 200
        status, resp = s.clock("2026-01-01T00:00:00Z")
        assert status == 409 and "backwards" in resp["error"], resp
        status, resp = s.request("POST", "/v1/admin/clock", {"now": "soon"})
        assert status == 400, resp


def test_detection_filters_and_pagination():
    with Server() as s:
        events = []
        for i in range(5):
            c = "f%d@example.com" % i
            events.append(ev("esim.status_changed", c, _hours(i), status="FAILED"))
        events.append(ev("portin.status_changed", "p@example.com", _hours(1), status="REJECTED", response="REJECTED: PIN"))
        assert s.post_events(events)[0] == 200
        assert len(s.detections(severity="CRITICAL")) == 5
        assert len(s.detections(signal="SIG-004")) == 1
        assert len(s.detections(**{"from": _hours(2), "to": _hours(4)})) == 2
        status, page = s.request("GET", "/v1/detections?limit=2")
        assert status == 200 and len(page["detections"]) == 2 and page["next_cursor"], page
        seen = [d["seq"] for d in page["detections"]]
        while page["next_cursor"]:
            status, page = s.request("GET", "/v1/detections?limit=2&cursor=" + page["next_cursor"])
            seen += [d["seq"] for d in page["detections"]]
        assert len(seen) == 6 and len(set(seen)) == 6, seen
        for bad in ("state=on", "severity=SEVERE", "limit=0", "from=yesterday", "signal=SIG-999"):
            status, resp = s.request("GET", "/v1/detections?" + bad)
            assert status == 400 and bad.split("=")[0] in resp["error"], (bad, resp)
        # Resolution is recorded on the same row.
        assert s.post_events([ev("esim.status_changed", "f0@example.com", _hours(6), status="ACTIVE")])[0] == 200
        d = s.detections(customer="f0@example.com")
        assert len(d) == 1 and d[0]["state"] == "resolved" and d[0]["resolved_at"] == _hours(6), d


def test_metrics_exposition():
    with Server() as s:
        s.post_events([ev("esim.status_changed", "m@example.com", T0, status="ERROR"),
                       ev("order.created", "m@example.com", T0, order_id="o")])
        s.clock("2026-01-01T10:00:05Z")  # the merge window closes: the messages are decided
        # The chatbot context is delivered by storing it, and its message.sent outcome comes back
        # as an event of our own, asynchronously: wait for it, so that the figures below are
        # settled.  It is counted apart from the two events the producer posted.
        deadline = time.monotonic() + 10
        while True:
            status, text, hdrs = s.request("GET", "/metrics", raw=True)
            if "forewarn_delivery_outcomes_total 1\n" in text or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert status == 200 and hdrs["Content-Type"].startswith("text/plain"), hdrs
        assert "forewarn_events_accepted_total 2\n" in text, text
        assert "forewarn_delivery_outcomes_total 1\n" in text, text
        assert 'forewarn_detections_total{signal="SIG-002",severity="CRITICAL",state="firing"} 1' in text
        # One customer wake-up (SIG-003/SIG-006 wait on the order), the two CRITICAL
        # ladder steps of SIG-002 (page engineering at 2h, SMS at 4h), and the case's two
        # running SLA clocks (first response 30m, resolution 4h; the customer was written to
        # at once, which met the third), and the follow-up task of that outreach (due in 3d).
        assert "forewarn_pending_timers 6\n" in text, text
        assert "forewarn_cases_open 1\n" in text, text
        assert 'forewarn_evaluation_seconds_bucket{le="+Inf"} 3' in text, text
        assert "forewarn_evaluation_seconds_count 3" in text, text


def test_bad_config_and_rules_are_refused_at_startup():
    d = tempfile.mkdtemp(prefix="fw-cfg-")
    cfg = os.path.join(d, "forewarn.yaml")
    with open(cfg, "w") as f:
        f.write("listen: 127.0.0.1:0\nvirtual_clok: true\n")
    s = Server("--config", cfg, workdir=d)
    assert s.start(expect_fail=True) != 0
    assert cfg + ":2:1: error: unknown setting 'virtual_clok'" in s.logtext(), s.logtext()
    bad = os.path.join(d, "bad.yaml")
    with open(bad, "w") as f:
        f.write("signals:\n  - id: X\n    name: x\n    severity: SEVERE\n    condition: true\n")
    s = Server("--rules", bad, workdir=d)
    assert s.start(expect_fail=True) != 0
    assert bad + ":4:15: error: unknown severity 'SEVERE'" in s.logtext(), s.logtext()


def test_example_config_starts_the_server():
    example = os.path.join(os.path.dirname(__file__), "../../docs/forewarn.example.yaml")
    with Server("--config", example) as s:
        status, body = s.request("GET", "/readyz")
        assert status == 200, body
        status, clk = s.request("GET", "/v1/admin/clock")
        assert clk["virtual"] is True  # the --virtual-clock flag overrides the file's false


def test_openapi_documents_every_route():
    """Every route in the server's tables appears in docs/openapi.yaml with its methods."""
    import re
    here = os.path.dirname(__file__)
    routes = []
    src = os.path.join(here, "../../src/http")
    for name in sorted(n for n in os.listdir(src) if n.endswith(".c")):  # every route table
        with open(os.path.join(src, name)) as f:
            routes += re.findall(r'\{\.method = "(\w+)", \.path = "([^"]+)"', f.read())
    with open(os.path.join(here, "../../docs/openapi.yaml")) as f:
        doc = f.read()
    paths = {}
    current = None
    for line in doc.splitlines():
        m = re.match(r"^  (/\S*):$", line)
        if m:
            current = m.group(1)
            paths[current] = set()
        elif current and re.match(r"^    (get|post|put|delete|patch):", line):
            paths[current].add(line.strip()[:-1].upper())
        elif re.match(r"^\S", line):
            current = None
    assert routes, "no routes found"
    for method, path in routes:
        if path.endswith("/"):  # a prefix route: some documented path under it has the method
            under = [p for p in paths if p.startswith(path)]
            assert under, "%s... missing from openapi.yaml" % path
            assert any(method in paths[p] for p in under), "%s %s... missing" % (method, path)
        else:
            assert path in paths, "%s missing from openapi.yaml" % path
            assert method in paths[path], "%s %s missing from openapi.yaml" % (method, path)


def test_wall_clock_wakeup_fires_while_running():
    """A threshold crossed while the server runs is detected at its exact instant, without a
    new event (the engine thread sleeps until the wake-up is due)."""
    d = tempfile.mkdtemp(prefix="fw-wall-")
    pack = os.path.join(d, "quick.yaml")
    with open(pack, "w") as f:
        f.write("signals:\n  - id: QUICK-1\n    name: Quiet for a second\n    severity: LOW\n"
                "    condition: last(\"ping.sent\") is not null and age(last(\"ping.sent\")) > 1s\n")
    s = Server("--rules", pack, virtual=False, workdir=d)
    s.start()
    try:
        now_ms = int(time.time() * 1000)
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms // 1000)) + ".%03dZ" % (now_ms % 1000)
        assert s.post_events([ev("ping.sent", "w@example.com", t)])[0] == 200
        due = now_ms + 1000
        deadline = time.monotonic() + 10
        dets = []
        while not dets and time.monotonic() < deadline:  # observe through the API as it happens
            dets = s.detections(signal="QUICK-1")
            if not dets:
                time.sleep(0.05)
        assert len(dets) == 1, "the wake-up never fired: %s" % s.logtext()
        fired = dets[0]["fired_at"]
        want = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(due // 1000))
        want += (".%03dZ" % (due % 1000)) if due % 1000 else "Z"
        assert fired == want, (fired, want)
    finally:
        s.stop()


def test_a_merge_window_open_at_a_crash_closes_after_restart_and_decides_once():
    """The merge window is an engine timer: recovery re-arms it from the journal, it closes on
    the clock after the restart, and a second crash re-decides nothing."""
    c = "window@example.com"
    s = Server()
    s.start()
    try:
        status, body = s.post_events([
            ev("customer.updated", c, _hours(0), name="Wim", email=c, timezone="UTC"),
            ev("portin.status_changed", c, _hours(1), status="REJECTED", response="REJECTED")])
        assert status == 200, body
        def msgs():
            return s.request("GET", "/v1/messages?customer=" + c)[1]["messages"]
        assert msgs() == []  # the window (5s) is still open
        s.kill9()
        s.start()
        assert msgs() == []
        s.clock(_hours(1 + 5 / 3600))
        first = sorted((m["audience"], m["channel"], m["created_at"]) for m in msgs())
        assert first == [("chatbot", "chatbot", _hours(1 + 5 / 3600)), ("customer", "email", _hours(1 + 5 / 3600)),
                         ("l1", "ticket", _hours(1 + 5 / 3600))], first
        s.kill9()
        s.start()
        s.clock(_hours(1 + 10 / 3600))
        assert sorted((m["audience"], m["channel"], m["created_at"]) for m in msgs()) == first
    finally:
        s.stop()


def test_listening_beyond_loopback_without_authentication_is_refused():
    d = tempfile.mkdtemp(prefix="fw-open-")
    s = Server("--listen", "0.0.0.0:0", workdir=d)
    assert s.start(expect_fail=True) != 0
    assert "without authentication would let anyone on the network" in s.logtext(), s.logtext()
    cfg = os.path.join(d, "forewarn.yaml")
    with open(cfg, "w") as f:
        f.write("allow_unauthenticated: true\n")
    s = Server("--listen", "0.0.0.0:0", "--config", cfg, workdir=d)
    s.start()
    try:
        assert s.request("GET", "/healthz", raw=True)[0] == 200
    finally:
        s.stop()
