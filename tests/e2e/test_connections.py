"""test_connections.py -- connection abuse (issue 18, item 3), TLS (item 6)
and the console's security headers (item 7), against a real server on
loopback: 1,500 connections dripping a header line at a time from one
address leave a normal client answered within 1 s and are all closed
within the request deadline; a token over its rate gets 429 with
Retry-After; listen_tls serves HTTPS to curl with a certificate made here
by openssl; the console's pages carry CSP, nosniff, frame-ancestors and
Referrer-Policy."""
import http.client
import json
import os
import re
import resource
import select
import socket
import subprocess
import time

from server import Server, ev
from test_auth import add_user, bearer

T = "2026-01-05T10:00:00Z"


def server_with(text, *args):
    s = Server(*args)
    path = os.path.join(s.dir, "forewarn.yaml")
    with open(path, "w") as f:
        f.write(text)
    s.args += ["--config", path]
    return s


def host_port(s):
    host, port = s.base.split("//")[1].split(":")
    return host, int(port)


def timed_get(s, path, source="127.0.0.2"):
    """GET on a new connection from another loopback address: (status, seconds)."""
    c = http.client.HTTPConnection(*host_port(s), timeout=5, source_address=(source, 0))
    t0 = time.monotonic()
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, time.monotonic() - t0


def test_dripping_connections_are_closed_by_the_deadline():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4096)
    assert want >= 1700, "the test needs 1,700 descriptors; the hard limit is %d" % hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    deadline = 2.0
    drips = []
    try:
        with server_with("request_deadline: 2s\n") as s:
            host, port = host_port(s)
            opened = time.monotonic()
            for _ in range(1500):
                c = socket.create_connection((host, port), timeout=5)
                c.setblocking(False)
                drips.append(c)
            live = {c.fileno(): c for c in drips}
            closed_at = {}
            worst, answered, n = 0.0, 0, 0

            def reap(wait):
                """Note the drip connections the server has closed (EOF or reset)."""
                if not live:
                    return
                poller = select.poll()  # select() stops at descriptor 1,024, as the old server did
                for fd in live:
                    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
                for fd, _ in poller.poll(wait * 1000):
                    c = live[fd]
                    try:
                        data = c.recv(4096)
                    except (ConnectionResetError, BlockingIOError):
                        data = b""
                    if not data:
                        closed_at[c.fileno()] = time.monotonic()
                        del live[c.fileno()]

            # Each drip connection starts a request and sends a little every 0.25 s, so an
            # inactivity timeout never fires: half drip header lines, half a body after whole
            # headers.  A normal client asks meanwhile.
            line = 0
            body_drip = set(c.fileno() for c in drips[::2])
            while live and time.monotonic() - opened < deadline + 3:
                for fd, c in list(live.items()):
                    if line == 0 and fd in body_drip:
                        data = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                b"application/json\r\nContent-Length: 100000\r\n\r\n[")
                    elif line == 0:
                        data = b"POST /v1/events HTTP/1.1\r\n"
                    else:
                        data = b" " if fd in body_drip else b"X-Drip-%d: x\r\n" % line
                    try:
                        c.send(data)
                    except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                        pass
                line += 1
                status, took = timed_get(s, "/healthz")
                assert status == 200
                worst, answered = max(worst, took), answered + 1
                reap(0.25)
            alive_after = len(live)
            status, text, _ = s.request("GET", "/metrics", raw=True)
            closed_by_deadline = int(re.search(r"forewarn_http_deadline_closed_total (\d+)", text).group(1))
    finally:
        for c in drips:
            c.close()
    assert answered >= 5, answered
    assert worst < 1.0, "a normal request took %.2f s during the drip" % worst
    assert alive_after == 0, "%d dripping connections still open %.1f s after the deadline" % (
        alive_after, time.monotonic() - opened - deadline)
    # Beyond the 128 an address may hold, connections are closed at once; the others by the
    # deadline (measured from when the last was opened, plus the watcher's reaction).
    assert 0 < closed_by_deadline <= 128, closed_by_deadline
    latest = max(closed_at.values()) - opened
    assert latest < deadline + 1.5, "the last drip closed %.2f s after opening" % latest


def test_a_token_over_its_rate_gets_429_with_retry_after():
    with server_with("rate_limit: 2\nrate_burst: 3\n") as s:
        fast = add_user(s.db, "fast", "service")
        calm = add_user(s.db, "calm", "service")
        codes = []
        for i in range(4):
            status, body, headers = s.request("POST", "/v1/events",
                                              [ev("order.created", "r@example.com", T)],
                                              headers=bearer(fast), raw=True)
            codes.append(status)
        assert codes[:3] == [200, 200, 200] and codes[3] == 429, codes
        retry = int(headers["Retry-After"])
        assert 1 <= retry <= 2, headers
        err = json.loads(body)
        assert err["status"] == 429 and "fast has made more than 2 requests a second" in err["error"], err
        # Another token has its own budget; open endpoints have none.
        status, _ = s.post_events([ev("order.created", "r@example.com", T)], headers=bearer(calm))
        assert status == 200
        assert s.request("GET", "/healthz")[0] == 200
        # Refused at the headers: the refused body was never stored.
        status, text, _ = s.request("GET", "/metrics", raw=True)
        assert "forewarn_http_rate_limited_total 1\n" in text, text
        assert "forewarn_events_accepted_total 4\n" in text, text


def test_listen_tls_serves_https_with_a_certificate_made_here():
    s = Server()
    cert, key = os.path.join(s.dir, "cert.pem"), os.path.join(s.dir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    path = os.path.join(s.dir, "forewarn.yaml")
    with open(path, "w") as f:
        f.write("listen_tls: 127.0.0.1:0\ntls_cert: %s\ntls_key: %s\n" % (cert, key))
    s.args += ["--config", path]
    with s:
        with open(os.path.join(s.dir, "ready")) as f:
            lines = f.read().split()
        s.base = "http://" + lines[0]  # plain HTTP stays (loopback)
        https = lines[1]
        assert https.startswith("https://127.0.0.1:"), lines
        body = json.dumps(ev("order.created", "tls@example.com", T))
        out = subprocess.run(["curl", "-sS", "--cacert", cert, "-H", "Content-Type: application/json",
                              "--data-binary", body, "-w", "\n%{http_code} %{ssl_verify_result}",
                              https + "/v1/events"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        answer, code = out.stdout.rsplit("\n", 1)
        assert code == "200 0" and json.loads(answer)["accepted"] == 1, out.stdout
        # Without the certificate curl refuses the server: it is really TLS with that certificate.
        out = subprocess.run(["curl", "-sS", https + "/healthz"], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 60, (out.returncode, out.stderr)
        # Plain HTTP on the TLS port is not served.
        out = subprocess.run(["curl", "-sS", "-m", "5", https.replace("https", "http") + "/healthz"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 or not out.stdout.startswith("{"), out
        assert s.request("GET", "/v1/customers/tls@example.com")[0] == 200
        # The console's session cookie is Secure over TLS, and only there.
        token = add_user(s.db, "lena", "lead")
        out = subprocess.run(["curl", "-sS", "-i", "--cacert", cert, "-H", "Content-Type: application/json",
                              "--data-binary", json.dumps({"token": token}), https + "/v1/session"],
                             capture_output=True, text=True, timeout=30)
        cookie = [l for l in out.stdout.splitlines() if l.lower().startswith("set-cookie:")]
        assert len(cookie) == 1 and "fw_session=" in cookie[0] and "; Secure" in cookie[0], out.stdout
        status, _, headers = s.request("POST", "/v1/session", {"token": token}, raw=True)
        assert status == 200 and "Secure" not in headers["Set-Cookie"], headers


def test_listen_tls_without_its_files_is_refused():
    s = server_with("listen_tls: 127.0.0.1:0\n")
    assert s.start(expect_fail=True) != 0
    assert "listen_tls needs tls_cert and tls_key" in s.logtext()


def test_console_pages_carry_the_security_headers():
    with Server() as s:
        status, text, headers = s.request("GET", "/", raw=True)
        assert status == 200 and "<html" in text.lower()
        csp = headers["Content-Security-Policy"]
        directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";"))
        assert directives["frame-ancestors"] == "'none'", csp
        assert directives["default-src"] == "'self'", csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
        # The page itself has no inline script or style that the policy would block.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text, re.I), "inline script"
        assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", text, re.I), "inline style or handler"
        # API answers: nosniff too, and never framed.
        status, text, headers = s.request("GET", "/healthz", raw=True)
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_the_deadline_does_not_cut_a_response_that_takes_longer():
    """The deadline is for receiving a request: a request being answered (here a drafting
    model that holds its answer past the deadline; a stream would be the same) is not cut."""
    import threading
    from test_drafting import FakeModel, _case
    model = FakeModel()
    try:
        s = server_with("request_deadline: 1s\ndrafting:\n  url: http://127.0.0.1:%d/v1\n"
                        "  model: fake-1\n  api_key_env: FW_TEST_MODEL_KEY\n  timeout: 20s\n"
                        % model.port)
        s.env["FW_TEST_MODEL_KEY"] = "sk-test-1"
        with s:
            cid = _case(s)
            model.mode = "hold"
            result = {}

            def draft():
                try:
                    result["draft"] = s.request("POST", "/v1/cases/%s/draft" % cid)
                except OSError as e:  # cut by the server
                    result["draft"] = (None, repr(e))

            t = threading.Thread(target=draft)
            t.start()
            waited = time.monotonic() + 10
            while not model.requests and time.monotonic() < waited:
                time.sleep(0.01)  # polling for the model's call, not standing in for it
            assert model.requests, "the server never called the model"
            # A connection opened after the draft's, and closed by the deadline: so the draft's
            # connection is past its deadline too.
            with socket.create_connection(host_port(s), timeout=10) as c:
                c.sendall(b"GET /healthz HTTP/1.1\r\n")
                assert c.recv(100) == b""
            model.release.set()
            t.join(30)
            status, out = result["draft"]
            assert status == 200 and out["source"] == "model", out
            status, text, _ = s.request("GET", "/metrics", raw=True)
            assert "forewarn_http_deadline_closed_total 1\n" in text, text
    finally:
        model.stop()
