"""test_input_limits.py -- input that cannot hurt (issue 18, item 4), against a
real server on loopback: a 250,000-key event is refused at validation while
another client's event is answered within 50 ms (and, under a raised limit,
applied in linear time); event times outside the plausibility window are
refused naming `time`; an id reused with another payload is 409; the 413
for an oversized body has the `errors` list of its schema."""
import http.client
import json
import os
import socket
import threading
import time

from server import Server, ev

T = "2026-01-05T10:00:00Z"


def config(s, text):
    path = os.path.join(s.dir, "forewarn.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def server_with(text):
    s = Server()
    s.args += ["--config", config(s, text)]
    return s


def wide_event(n, id_="wide-1"):
    data = ",".join('"k%d":%d' % (i, i % 10) for i in range(n))
    return ('{"specversion":"1.0","id":"%s","type":"usage.sampled","subject":"wide@example.com",'
            '"time":"%s","data":{%s}}' % (id_, T, data)).encode()


def post(base, body, headers=None):
    """POST /v1/events on a connection of its own: (status, parsed body, seconds)."""
    host, port = base.split("//")[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    t0 = time.monotonic()
    c.request("POST", "/v1/events", body=body,
              headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    r = c.getresponse()
    text = r.read()
    took = time.monotonic() - t0
    c.close()
    return r.status, json.loads(text) if text else None, took


def test_wide_event_refused_while_others_are_answered():
    with Server() as s:
        body = wide_event(250000)
        assert len(body) < 4 << 20  # under the body limit: the member limit refuses it
        result = {}

        def wide():
            result["wide"] = post(s.base, body)

        t = threading.Thread(target=wide)
        t.start()
        # Another client's small events while the wide one is in flight, each a real request
        # with its own connection and durable commit (fsync).
        took_all = []
        while t.is_alive() or len(took_all) < 10:
            status, resp, took = post(s.base, json.dumps(ev("order.created", "small@example.com", T)))
            assert status == 200, resp
            took_all.append(took)
        t.join()
        status, resp, took = result["wide"]
        assert status == 400, (status, resp)
        err = resp["errors"][0]
        assert err["where"] == "body" or err["where"].startswith(("index", "line")), err
        assert "more than 1000 members" in err["message"], err
        # Answered within 50 ms; the machine is shared (even alone, one fsync in 30 can take
        # 48 ms here), so 9 in 10 within 50 ms and none beyond 0.5 s.
        took_all.sort()
        assert took_all[len(took_all) * 9 // 10 - 1] < 0.05, took_all
        assert took_all[-1] < 0.5, took_all
        # Nothing of it is state.
        status, cust = s.request("GET", "/v1/customers/wide@example.com")
        assert status == 404, cust


def test_wide_event_under_a_raised_limit_applies_in_linear_time():
    with server_with("max_event_members: 300000\nmax_event_data: 8MiB\nmax_body: 8MiB\n") as s:
        status, resp, small = post(s.base, wide_event(25000, "wide-0"))
        assert status == 200 and resp["accepted"] == 1, resp
        status, resp, took = post(s.base, wide_event(250000))
        assert status == 200 and resp["accepted"] == 1, resp
        # Quadratic mapping took 10.4 s here (issue 18), 100 times the tenth of the keys;
        # linear is parse + journal + apply, about 10 times (30 allows for a shared machine
        # and the sanitizers).
        assert took < 8.0 and took < 30 * small, "25,000 keys %.2f s, 250,000 keys %.2f s" % (small, took)


def test_member_and_data_limits_are_configurable_and_name_the_field():
    with server_with("max_event_members: 10\nmax_event_data: 200\n") as s:
        many = ev("order.created", "m@example.com", T, **{"k%d" % i: i for i in range(11)})
        status, resp = s.post_events([many])
        assert status == 400, resp
        assert resp["errors"][0]["where"] == "index 0", resp
        assert "more than 10 members" in resp["errors"][0]["message"], resp
        big = ev("order.created", "m@example.com", T, note="x" * 300)
        status, resp = s.post_events([big])
        assert status == 400, resp
        assert resp["errors"][0]["field"] == "data", resp
        assert "exceed the 200-byte limit" in resp["errors"][0]["message"], resp
        status, _ = s.request("GET", "/v1/customers/m@example.com")
        assert status == 404


def _iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + "Z"


def test_event_time_window():
    with Server() as s:
        for t in ("0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1999-12-31T23:59:59Z"):
            e = ev("order.created", "t@example.com", t)
            status, resp = s.post_events([ev("order.created", "ok@example.com", T), e])
            assert status == 400, (t, resp)
            assert [x["field"] for x in resp["errors"]] == ["time"], resp
            assert resp["errors"][0]["where"] == "index 1", resp
        status, resp = s.post_events([ev("order.created", "t@example.com", "0000-01-01T00:00:00Z")])
        assert "is before 2000-01-01T00:00:00Z" in resp["errors"][0]["message"], resp
        # The server's clock is the wall clock (the virtual one is behind it here): a day ahead.
        now = int(time.time() * 1000)
        status, resp = s.post_events([ev("order.created", "t@example.com", _iso(now + 2 * 86400000))])
        assert status == 400 and "server clock plus event_time_skew" in resp["errors"][0]["message"], resp
        status, resp = s.post_events([ev("order.created", "t@example.com", _iso(now + 3600000))])
        assert status == 200, resp
        status, cust = s.request("GET", "/v1/customers/ok@example.com")
        assert status == 404  # nothing of a refused batch was stored
        # Every time the server prints is RFC 3339 (no year 10000 anywhere in the answer).
        status, text, _ = s.request("GET", "/v1/customers/t@example.com", raw=True)
        assert status == 200 and "10000-" not in text, text


def test_event_time_window_is_configurable():
    with server_with("event_time_min: 1990-01-01T00:00:00Z\nevent_time_skew: 0\n") as s:
        assert s.post_events([ev("order.created", "t@example.com", "1995-06-01T00:00:00Z")])[0] == 200
        now = int(time.time() * 1000)
        status, resp = s.post_events([ev("order.created", "t@example.com", _iso(now + 60000))])
        assert status == 400 and resp["errors"][0]["field"] == "time", resp


def test_same_id_with_another_payload_is_a_conflict():
    with Server() as s:
        first = ev("order.created", "c@example.com", T, order_id="o1", amount=10)
        assert s.post_events([first])[0] == 200
        # The same event again, members in another order and spaced: a duplicate, as before.
        again = json.dumps(dict(reversed(list(first.items()))), indent=2)
        status, resp = s.post_events(again)
        assert status == 200 and resp["duplicates"] == 1, resp
        # The same id with another payload: 409, naming it, and nothing of the batch is kept.
        changed = dict(first, data={"order_id": "o1", "amount": 11})
        other = ev("order.created", "other@example.com", T)
        status, resp = s.post_events([other, changed])
        assert status == 409, resp
        assert resp["status"] == 409 and resp["errors"] == [
            {"where": "index 1", "field": "id",
             "message": "%s was stored before with a different payload; send the same event "
                        "again, or a new id" % first["id"]}], resp
        status, _ = s.request("GET", "/v1/customers/other@example.com")
        assert status == 404
        status, cust = s.request("GET", "/v1/customers/c@example.com")
        assert cust["state"]["order.amount"]["value"] == 10, cust
        # One id twice in one batch with two payloads: the same.
        a = ev("order.created", "d@example.com", T, n=1)
        b = dict(a, data={"n": 2})
        status, resp = s.post_events([a, b])
        assert status == 409 and resp["errors"][0]["where"] == "index 1", resp
        # The other event of the refused batch goes in on its own afterwards.
        status, resp = s.post_events([other])
        assert status == 200 and resp["accepted"] == 1, resp


def test_body_too_large_has_the_errors_list():
    with server_with("max_body: 64KiB\n") as s:
        host, port = s.base.split("//")[1].split(":")
        # Announced: refused at the headers.
        with socket.create_connection((host, int(port)), timeout=5) as c:
            c.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100000\r\n\r\n")
            answer = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                answer += chunk
                head, _, rest = answer.partition(b"\r\n\r\n")
                if rest and b"Content-Length: %d" % len(rest) in head:
                    break
        assert answer.split(b" ", 2)[1] == b"413", answer
        resp = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert resp["status"] == 413 and resp["error"], resp
        assert resp["errors"][0]["where"] == "body" and "65536" in resp["errors"][0]["message"], resp
        # Chunked (no length announced): refused once it passes the limit, same shape.
        big = json.dumps([ev("order.created", "b@example.com", T, pad="x" * 8000) for _ in range(10)])
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request("POST", "/v1/events", body=iter([big.encode()]), encode_chunked=True,
                  headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        r = c.getresponse()
        resp = json.loads(r.read())
        c.close()
        assert r.status == 413 and resp["errors"][0]["where"] == "body", resp


def test_replay_honours_the_config_file_limits():
    """`forewarn replay --config` refuses what serve with the same file refuses: too many
    members, too much data, a time before event_time_min or past the wall clock plus
    event_time_skew; each named by its line and field, and nothing is written.  Without
    --config the same defaults as serve apply; with --skip-invalid the good lines replay."""
    import tempfile
    from fw import replay_raw
    d = tempfile.mkdtemp(prefix="fw-replay-limits-")
    cfg = os.path.join(d, "forewarn.yaml")
    with open(cfg, "w") as f:
        f.write("max_event_members: 10\nmax_event_data: 200\n"
                "event_time_min: 2020-01-01T00:00:00Z\nevent_time_skew: 1h\n")
    now = int(time.time() * 1000)
    good = ev("order.created", "ok@example.com", T, order_id="o-1")
    lines = [
        good,
        ev("order.created", "m@example.com", T, **{"k%d" % i: i for i in range(11)}),
        ev("order.created", "m@example.com", T, note="x" * 300),
        ev("order.created", "m@example.com", "2019-12-31T23:59:59Z"),
        ev("order.created", "m@example.com", _iso(now + 2 * 3600000)),
    ]
    rc, out, err = replay_raw(lines, "--config", cfg)
    assert rc == 1 and out == "", (rc, out, err)
    assert "line 2: " in err and "more than 10 members" in err, err
    assert "line 3: data: " in err and "exceed the 200-byte limit" in err, err
    assert "line 4: time: " in err and "is before 2020-01-01T00:00:00Z" in err, err
    assert "line 5: time: " in err and "the wall clock plus event_time_skew" in err, err
    assert "line 1:" not in err, err
    # The same file with the defaults (no --config): 2019 and two hours ahead are fine, the
    # wide and big events too (1,000 members, 64 KiB); a year-0000 time is not.
    rc, out, err = replay_raw(lines + [ev("order.created", "m@example.com", "0000-01-01T00:00:00Z")])
    assert rc == 1 and "line 6: time: " in err and "line 5:" not in err and "line 2:" not in err, err
    # --skip-invalid: the good line replays, the four are reported.
    rc, out, err = replay_raw(lines, "--config", cfg, "--skip-invalid")
    assert rc == 0, err
    assert sum(1 for x in ("line 2:", "line 3:", "line 4:", "line 5:") if x in err) == 4, err
