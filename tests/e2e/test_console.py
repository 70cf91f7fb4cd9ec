"""The console (docs/console.md): the page served by forewarn itself, sign-in
sessions and their CSRF rule, checked over HTTP here; then the browser suite
(tests/browser/console.test.mjs) in a real headless Chromium driven by
playwright-core, both installed by scripts/install-deps.  A missing browser
fails the test: it is never skipped silently."""
import os
import re
import subprocess

import fw
from server import Server

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PW = os.environ.get("PLAYWRIGHT_CORE", "/usr/local/share/forewarn/node_modules/playwright-core")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _cookie(headers):
    c = headers.get("Set-Cookie", "")
    m = re.match(r"fw_session=([^;]*)", c)
    return c, (m.group(1) if m else None)


def test_console_assets_are_served_with_types_and_etags_and_the_api_stays_no_store():
    with Server() as s:
        st, text, h = s.request("GET", "/", raw=True)
        assert st == 200 and "<script type=\"module\" src=\"/app.js\">" in text, (st, text[:200])
        assert h["Content-Type"] == "text/html; charset=utf-8" and h["Cache-Control"] == "no-cache"
        assert "default-src 'self'" in h["Content-Security-Policy"], h
        for path, ctype in (("/app.js", "text/javascript"), ("/app.css", "text/css"),
                            ("/favicon.svg", "image/svg+xml")):
            st, body, h = s.request("GET", path, raw=True)
            assert st == 200 and h["Content-Type"].startswith(ctype), (path, st, h)
            assert re.fullmatch(r'"[0-9a-f]{16}"', h["ETag"]), h
            st, body, h2 = s.request("GET", path, headers={"If-None-Match": h["ETag"]}, raw=True)
            assert st == 304 and body == "", (path, st)
        st, body, h = s.request("GET", "/v1/queue", raw=True)
        assert st == 200 and h["Cache-Control"] == "no-store", h
        assert s.request("GET", "/nothing-here.js")[0] == 404
        assert s.request("GET", "/../etc/passwd")[0] == 404
        assert s.request("POST", "/")[0] == 404


def test_sign_in_sessions_roles_and_csrf():
    s = Server()
    toks = {}
    for name, role in (("ann", "agent"), ("vic", "viewer"), ("svc", "service")):
        rc, out, err = fw.run(["user", "add", name, "--role", role, "--db", s.db])
        assert rc == 0, err
        toks[name] = out.strip()
    s.start()
    try:
        assert s.request("POST", "/v1/session", {"token": "fw_" + "x" * 43})[0] == 401
        assert s.request("POST", "/v1/session", {"nope": 1})[0] == 400
        st, body = s.request("POST", "/v1/session", {"token": toks["svc"]})
        assert st == 403 and "service" in body["error"], body
        st, text, h = s.request("POST", "/v1/session", {"token": toks["ann"]}, raw=True)
        assert st == 200, text
        cookie, sid = _cookie(h)
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="):
            assert attr in cookie, cookie
        assert sid and sid != toks["ann"]
        import json
        me = json.loads(text)
        assert me["name"] == "ann" and me["role"] == "agent" and me["csrf"], me
        jar = {"Cookie": "fw_session=" + sid}
        st, body = s.request("GET", "/v1/session", headers=jar)
        assert st == 200 and body["csrf"] == me["csrf"], body
        assert s.request("GET", "/v1/queue", headers=jar)[0] == 200
        # A change through the cookie needs the CSRF header, with the session's value.
        st, body = s.request("POST", "/v1/queue/next", headers=jar)
        assert st == 403 and "X-Forewarn-CSRF" in body["error"], body
        st, body = s.request("POST", "/v1/queue/next", headers=dict(jar, **{"X-Forewarn-CSRF": "x"}))
        assert st == 403, body
        st, body = s.request("POST", "/v1/queue/next",
                             headers=dict(jar, **{"X-Forewarn-CSRF": me["csrf"]}))
        assert st == 200, body
        # Audited as ann, like her bearer token.
        rc, out, err = fw.run(["user", "add", "lee", "--role", "lead", "--db", s.db])
        lead = {"Authorization": "Bearer " + out.strip()}
        st, audit = s.request("GET", "/v1/audit?user=ann&limit=1000", headers=lead)
        actions = [(a["action"], a["status"]) for a in audit["audit"]]
        assert ("POST /v1/session", 200) in actions and ("POST /v1/queue/next", 200) in actions, actions
        assert ("POST /v1/queue/next", 403) in actions, actions
        # A viewer's session keeps the viewer's role.
        st, text, h = s.request("POST", "/v1/session", {"token": toks["vic"]}, raw=True)
        vjar = {"Cookie": "fw_session=" + _cookie(h)[1]}
        vcsrf = json.loads(text)["csrf"]
        st, body = s.request("POST", "/v1/queue/next", headers=dict(vjar, **{"X-Forewarn-CSRF": vcsrf}))
        assert st == 403 and "viewer" in body["error"], body
        # Revoking the token signs its sessions out at the next request.
        rc, out, err = fw.run(["token", "revoke", "2", "--db", s.db])
        assert rc == 0, err
        assert s.request("GET", "/v1/session", headers=vjar)[0] == 401
        # Sign out: CSRF-protected too, then the session is gone.
        assert s.request("DELETE", "/v1/session", headers=jar)[0] == 403
        st, text, h = s.request("DELETE", "/v1/session", headers=dict(jar, **{"X-Forewarn-CSRF": me["csrf"]}),
                                raw=True)
        assert st == 200 and "Max-Age=0" in h["Set-Cookie"], h
        assert s.request("GET", "/v1/session", headers=jar)[0] == 401
        assert s.request("GET", "/v1/queue", headers=jar)[0] == 401
    finally:
        s.stop()


def test_without_users_the_console_is_admin_and_sign_in_is_a_no_op():
    with Server() as s:
        st, text, h = s.request("POST", "/v1/session", {"token": "anything"}, raw=True)
        assert st == 200 and "Set-Cookie" not in h, (st, h)
        st, body = s.request("GET", "/v1/session")
        assert st == 200 and body == {"name": "anonymous", "role": "admin", "authenticated": False,
                                      "csrf": None}, body


def test_the_console_in_headless_chromium():
    """tests/browser/console.test.mjs: sign in, counts and order, the countdown on the
    virtual clock, guided next, skip with a reason, a viewer's buttons, CSRF, the
    12-year-old test, screenshots under build/screenshots."""
    assert os.access(CHROMIUM, os.X_OK), CHROMIUM + " missing: run scripts/install-deps"
    assert os.path.isdir(PW), PW + " missing: run scripts/install-deps"
    env = dict(os.environ, FOREWARN_BIN=os.path.abspath(fw.BIN),
               FOREWARN_SCREENSHOTS=os.path.join(ROOT, "build", "screenshots"))
    p = subprocess.run(["node", os.path.join(ROOT, "tests", "browser", "console.test.mjs")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    assert p.returncode == 0 and re.fullmatch(r"\d+ passed, 0 failed", last), p.stdout + p.stderr
