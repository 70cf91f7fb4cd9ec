"""server.py -- start `forewarn serve` for a test: a temporary database, a
free port (the server binds port 0 and writes the port to a ready file),
and helpers to call the API.  The ready file is written only once the
server listens, so tests wait on it, not on a sleep."""
import datetime as _dt
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

BIN = os.environ.get("FOREWARN_BIN", os.path.join(os.path.dirname(__file__), "../../build/forewarn"))


class Server:
    def __init__(self, *args, db=None, env=None, virtual=True, workdir=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="fw-e2e-")
        self.db = db or os.path.join(self.dir, "fw.db")
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.virtual = virtual
        self.proc = None
        self.base = None

    def start(self, expect_fail=False, timeout=30):
        ready = os.path.join(self.dir, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        cmd = [BIN, "serve", "--db", self.db, "--listen", "127.0.0.1:0", "--ready-file", ready]
        if self.virtual:
            cmd.append("--virtual-clock")
        cmd += self.args
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=self.env)
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                if expect_fail:
                    return self.proc.returncode
                raise AssertionError("server exited with %d: %s" % (self.proc.returncode, self.logtext()))
            if time.monotonic() > deadline:
                raise AssertionError("server did not become ready: " + self.logtext())
            time.sleep(0.01)  # polling for the ready file, not synchronising on time
        with open(ready) as f:
            self.base = "http://" + f.read().strip()
        return 0

    def logtext(self):
        self.log.flush()
        with open(os.path.join(self.dir, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def logtext_full(self):
        """The whole log of every start of this server (logtext keeps only the tail)."""
        self.log.flush()
        with open(os.path.join(self.dir, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM and wait; a clean shutdown exits 0 (under the sanitizers, a leak or an
        error report makes it non-zero, and that fails the test)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            assert self.proc.returncode == 0, "server exited %d: %s" % (
                self.proc.returncode, self.logtext())
        return self.proc.returncode if self.proc else None

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def request(self, method, path, body=None, headers=None, raw=False):
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, text, rh = r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            status, text, rh = e.code, e.read().decode(), dict(e.headers)
        if raw:
            return status, text, rh
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def post_events(self, events, **kw):
        return self.request("POST", "/v1/events", events, **kw)

    def clock(self, t):
        return self.request("POST", "/v1/admin/clock", {"now": t})

    def post_decided(self, events, merge_window_s=5):
        """Post events, then (virtual clock) move the clock past the merge window that the
        latest of them opened, so that what they fired is decided (docs/messages.md)."""
        status, body = self.post_events(events)
        times = [e["time"] for e in (events if isinstance(events, list) else [events]) if "time" in e]
        if status == 200 and self.virtual and times:
            latest = max(_dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times)
            after = latest + _dt.timedelta(seconds=merge_window_s)
            st, b = self.clock(after.strftime("%Y-%m-%dT%H:%M:%S") + (".%03dZ" % (after.microsecond // 1000) if after.microsecond else "Z"))
            assert st == 200, b
        return status, body

    def detections(self, **q):
        qs = "&".join("%s=%s" % (k, urllib.request.quote(str(v))) for k, v in q.items())
        status, body = self.request("GET", "/v1/detections" + ("?" + qs if qs else ""))
        assert status == 200, (status, body)
        return body["detections"]

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


_seq = [0]


def ev(type_, subject, time_, **data):
    """A CloudEvent with a fresh id."""
    _seq[0] += 1
    e = {"specversion": "1.0", "id": "ev-%d-%d" % (os.getpid(), _seq[0]), "type": type_,
         "time": time_, "source": "e2e", "data": data}
    if subject is not None:
        e["subject"] = subject
    return e
