"""POST /v1/cases/{id}/draft: a reply draft from a language model behind an
OpenAI-compatible endpoint, grounded in the case, with the template draft as
the answer when no model is configured, when it is too slow and when it
fails.  The model here is a local HTTP server speaking the same API."""

import http.server
import json
import os
import tempfile
import threading

from fw import ev
from server import Server

C = "pat@example.com"


class FakeModel:
    """/v1/chat/completions: answers, fails with 500, or holds the answer until released."""

    def __init__(self):
        self.mode = "ok"
        self.requests = []
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                       "json": json.loads(body)})
                if outer.mode == "hold":
                    outer.release.wait(10)  # the client's own timeout ends the wait first
                if outer.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b'{"error":"overloaded"}')
                    return
                out = json.dumps({"choices": [{"index": 0, "message": {
                    "role": "assistant", "content": "Hi Pat, a new PIN request is on its way."}}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(out.encode())

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.httpd.shutdown()


def _config(model):
    d = tempfile.mkdtemp(prefix="fw-draft-")
    path = os.path.join(d, "forewarn.yaml")
    with open(path, "w") as f:
        f.write("drafting:\n  url: http://127.0.0.1:%d/v1\n  model: fake-1\n"
                "  api_key_env: FW_TEST_MODEL_KEY\n  timeout: 400ms\n" % model.port)
    return d, path


def _case(s):
    status, body = s.post_events([
        ev("customer.updated", C, "2026-03-02T09:00:00Z", name="Pat Lee", email=C, timezone="UTC"),
        ev("portin.status_changed", C, "2026-03-02T10:00:00Z", status="REJECTED",
           response="REJECTED: PIN", carrier="Verizon")])
    assert status == 200, body
    assert s.clock("2026-03-02T10:00:05Z")[0] == 200
    st, cases = s.request("GET", "/v1/cases?state=open")
    assert st == 200 and len(cases["cases"]) == 1, cases
    return cases["cases"][0]["id"]


def test_the_model_drafts_from_the_case_and_the_template():
    model = FakeModel()
    d, cfg = _config(model)
    try:
        with Server("--config", cfg, workdir=d, env={"FW_TEST_MODEL_KEY": "sk-test-1"}) as s:
            cid = _case(s)
            st, out = s.request("POST", "/v1/cases/%s/draft" % cid, {"instructions": "mention the PIN"})
            assert st == 200, out
            assert out["source"] == "model" and out["model"] == "fake-1", out
            assert out["body"] == "Hi Pat, a new PIN request is on its way.", out
            assert out["template"]["channel"] == "email" and "Verizon" in out["template"]["body"], out
            assert len(model.requests) == 1, model.requests
            req = model.requests[0]
            assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test-1", req
            assert req["json"]["model"] == "fake-1", req["json"]
            user = req["json"]["messages"][-1]["content"]
            # Grounded in the case: who, what fired, the template draft, and the agent's words.
            assert "Pat Lee" in user and "SIG-004" in user and "Verizon" in user, user
            assert "mention the PIN" in user, user
    finally:
        model.stop()


def test_a_slow_or_failing_model_falls_back_to_the_template_and_says_why():
    model = FakeModel()
    d, cfg = _config(model)
    try:
        with Server("--config", cfg, workdir=d, env={"FW_TEST_MODEL_KEY": "sk-test-1"}) as s:
            cid = _case(s)
            model.mode = "hold"
            st, out = s.request("POST", "/v1/cases/%s/draft" % cid)
            assert st == 200, out
            assert out["source"] == "template", out
            assert "did not answer within 400 ms" in out["fallback_reason"], out
            assert "Verizon" in out["body"], out  # the template's text
            model.release.set()
            model.mode = "error"
            st, out = s.request("POST", "/v1/cases/%s/draft" % cid)
            assert st == 200 and out["source"] == "template", out
            assert out["fallback_reason"] == "the model answered HTTP 500", out
    finally:
        model.stop()


def test_without_a_model_the_template_is_the_draft_and_bad_input_is_refused():
    with Server() as s:
        cid = _case(s)
        st, out = s.request("POST", "/v1/cases/%s/draft" % cid)
        assert st == 200 and out["source"] == "template", out
        assert "no drafting model is configured" in out["fallback_reason"], out
        assert out["subject"] and out["body"], out
        st, out = s.request("POST", "/v1/cases/c_0000000000000000/draft")
        assert st == 404, out
        st, out = s.request("POST", "/v1/cases/%s/draft" % cid, {"instructions": 7})
        assert st == 400 and "instructions" in out["error"], out


def test_a_bad_drafting_config_is_refused_with_its_place():
    d = tempfile.mkdtemp(prefix="fw-draft-bad-")
    path = os.path.join(d, "forewarn.yaml")
    with open(path, "w") as f:
        f.write("drafting:\n  url: ftp://model\n  temperature: 2\n")
    s = Server("--config", path, workdir=d)
    assert s.start(expect_fail=True) != 0
    log = s.logtext()
    assert path + ":2:8: error: drafting.url must be an http(s) URL" in log, log
    assert path + ":3:3: error: unknown drafting setting 'temperature'" in log, log
