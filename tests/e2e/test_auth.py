"""test_auth.py -- people, roles, tokens and the audit trail, end to end:
the CLI writes users and tokens into the database, a running server
checks them on every request (401 / 403), and the audit trail records who
read or changed which message, from where, with what answer."""
import os
import re
import sqlite3
import subprocess

from server import BIN, Server, ev

TOKEN_RE = re.compile(r"^fw_[A-Za-z0-9_-]{43}$")


def cli(db, *args, ok=True):
    p = subprocess.run([BIN] + list(args) + ["--db", db], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    out, err = p.stdout.decode(), p.stderr.decode()
    if ok:
        assert p.returncode == 0, (args, p.returncode, err)
    return p.returncode, out, err


def add_user(db, name, role, *extra):
    """`user add` prints the first token alone on stdout."""
    _, out, _ = cli(db, "user", "add", name, "--role", role, *extra)
    token = out.strip()
    assert TOKEN_RE.match(token), out
    return token


def bearer(token):
    return {"Authorization": "Bearer " + token}


def tokens_table(db):
    with sqlite3.connect(db) as c:
        return c.execute("SELECT id, user, sha256, expires_at, revoked_at FROM tokens ORDER BY id").fetchall()


def file_bytes(path):
    data = b""
    for suffix in ("", "-wal"):
        if os.path.exists(path + suffix):
            with open(path + suffix, "rb") as f:
                data += f.read()
    return data


def test_without_users_or_shared_token_everyone_is_anonymous_admin():
    with Server() as s:
        status, me = s.request("GET", "/v1/me")
        assert status == 200 and me == {"name": "anonymous", "role": "admin", "authenticated": False}, me
        assert s.request("GET", "/v1/detections")[0] == 200
        assert s.request("GET", "/v1/audit")[0] == 200


def test_roles_tokens_401_and_403():
    with Server() as s:
        db = s.db
        tok = {role: add_user(db, "u-" + role, role) for role in ("viewer", "agent", "lead", "admin", "service")}
        assert len(set(tok.values())) == 5
        # A user now exists on the running server: authentication is on at once.
        status, body, hdrs = s.request("GET", "/v1/detections", raw=True)
        assert status == 401 and "Bearer" in hdrs.get("WWW-Authenticate", ""), (status, body)
        assert s.request("GET", "/v1/detections", headers=bearer("fw_" + "A" * 43))[0] == 401
        assert s.request("GET", "/v1/detections", headers={"Authorization": "Basic " + tok["admin"]})[0] == 401
        # The scheme is case-insensitive (RFC 7235): "bearer" and "BEARER" carry a token too.
        for scheme in ("bearer ", "BEARER ", "Bearer  "):
            st, me = s.request("GET", "/v1/me", headers={"Authorization": scheme + tok["agent"]})
            assert st == 200 and me["name"] == "u-agent", (scheme, st, me)
        assert s.request("GET", "/v1/detections", headers={"Authorization": "Bearertoken" + tok["admin"]})[0] == 401
        for role, t in tok.items():
            status, me = s.request("GET", "/v1/me", headers=bearer(t))
            assert status == 200 and me == {"name": "u-" + role, "role": role, "authenticated": True}, me
        # Health and metrics stay open by default.
        for path in ("/healthz", "/readyz", "/metrics"):
            assert s.request("GET", path, raw=True)[0] == 200, path
        # A viewer may read but not post events; a service may post but not read.
        e = ev("customer.updated", "auth@example.com", "2026-01-01T00:00:00Z", name="A")
        status, err = s.post_events([e], headers=bearer(tok["viewer"]))
        assert status == 403, err
        assert "viewer" in err["error"] and "service" in err["error"] and "admin" in err["error"], err
        assert s.request("GET", "/v1/detections", headers=bearer(tok["viewer"]))[0] == 200
        status, err = s.request("GET", "/v1/detections", headers=bearer(tok["service"]))
        assert status == 403 and "has the role service" in err["error"], err
        assert s.post_events([e], headers=bearer(tok["service"]))[0] == 200
        # The clock is admin's; users are for leads.
        assert s.request("GET", "/v1/admin/clock", headers=bearer(tok["lead"]))[0] == 403
        assert s.request("GET", "/v1/admin/clock", headers=bearer(tok["admin"]))[0] == 200
        assert s.request("GET", "/v1/users", headers=bearer(tok["agent"]))[0] == 403
        status, users = s.request("GET", "/v1/users", headers=bearer(tok["lead"]))
        assert status == 200 and {u["name"]: u["role"] for u in users["users"]}["u-service"] == "service", users
        # A role change takes effect on the next request.
        cli(db, "user", "set-role", "u-viewer", "--role", "service")
        assert s.request("GET", "/v1/detections", headers=bearer(tok["viewer"]))[0] == 403
        # Revoked by the CLI while serve runs: refused on the next request.
        t2 = cli(db, "token", "create", "--user", "u-agent")[1].strip()
        assert TOKEN_RE.match(t2), t2
        assert s.request("GET", "/v1/detections", headers=bearer(t2))[0] == 200
        tid = [r[0] for r in tokens_table(db)][-1]
        cli(db, "token", "revoke", str(tid))
        assert s.request("GET", "/v1/detections", headers=bearer(t2))[0] == 401
        assert cli(db, "token", "revoke", str(tid), ok=False)[0] == 1  # already revoked
        assert s.request("GET", "/v1/detections", headers=bearer(tok["agent"]))[0] == 200  # the other still works
        # Expired: a token whose expiry has passed is refused.
        t3 = cli(db, "token", "create", "--user", "u-agent", "--expires", "2020-01-01T00:00:00Z")[1].strip()
        assert s.request("GET", "/v1/detections", headers=bearer(t3))[0] == 401
        t4 = cli(db, "token", "create", "--user", "u-agent", "--expires", "90d")[1].strip()
        assert s.request("GET", "/v1/detections", headers=bearer(t4))[0] == 200
        # Removing a user ends their tokens.
        cli(db, "user", "remove", "u-lead")
        assert s.request("GET", "/v1/detections", headers=bearer(tok["lead"]))[0] == 401
        # Unknown role, unknown user, duplicate user: refused, nothing printed on stdout.
        rc, out, err = cli(db, "user", "add", "x", "--role", "boss", ok=False)
        assert rc == 2 and out == "" and "boss" in err, (rc, out, err)
        rc, out, _ = cli(db, "token", "create", "--user", "nobody", ok=False)
        assert rc == 1 and out == "", out
        rc, out, _ = cli(db, "user", "add", "u-agent", "--role", "agent", ok=False)
        assert rc == 1 and out == "", out
        # The database holds digests only; list never prints a secret.
        secrets = list(tok.values()) + [t2, t3, t4]
        rows = tokens_table(db)
        assert all(isinstance(r[2], bytes) and len(r[2]) == 32 for r in rows), rows
        data = file_bytes(db)
        for t in secrets:
            assert t.encode() not in data and t[3:].encode() not in data, "secret found in the database file"
        _, listing, _ = cli(db, "token", "list")
        for t in secrets:
            assert t not in listing and t[3:] not in listing
        assert "revoked" in listing and "expired" in listing and "u-service" in listing, listing
        lines = {l.split()[0]: l for l in listing.splitlines()[1:]}
        assert "revoked" in lines[str(tid)], lines


def test_shared_config_token_is_admin_and_metrics_can_be_closed():
    shared = "shared-secret-0123456789"
    with Server(env={"FOREWARN_API_TOKEN": shared}) as s:
        status, me = s.request("GET", "/v1/me", headers=bearer(shared))
        assert status == 200 and me == {"name": "admin", "role": "admin", "authenticated": True}, me
        assert s.request("GET", "/v1/admin/clock", headers=bearer(shared))[0] == 200
        assert s.request("GET", "/v1/me")[0] == 401
        assert s.request("GET", "/v1/me", headers=bearer(shared + "x"))[0] == 401
        # User tokens work beside it.
        v = add_user(s.db, "val", "viewer")
        assert s.request("GET", "/v1/me", headers=bearer(v))[1]["name"] == "val"
    s = Server()
    cfg = os.path.join(s.dir, "closed.yaml")
    with open(cfg, "w") as f:
        f.write("public_metrics: false\n")
    s.args = ["--config", cfg]
    with s:
        v = add_user(s.db, "prom", "viewer")
        assert s.request("GET", "/metrics", raw=True)[0] == 401
        assert s.request("GET", "/metrics", headers=bearer(v), raw=True)[0] == 200
        assert s.request("GET", "/healthz", raw=True)[0] == 200


def test_audit_records_reads_and_approvals_with_who_role_address_status():
    with Server() as s:
        db = s.db
        svc = add_user(db, "producer", "service")
        lead = add_user(db, "lena", "lead")
        agent = add_user(db, "arno", "agent")
        c = "ceo@bigcorp.example"
        events = [ev("customer.updated", c, "2026-01-01T12:00:00Z", name="Pat Lee", email=c, tier="enterprise",
                     timezone="UTC"),
                  ev("portin.status_changed", c, "2026-01-01T13:00:00Z", status="REJECTED", response="REJECTED: PIN")]
        assert s.post_events(events, headers=bearer(svc))[0] == 200
        root = add_user(db, "root", "admin")
        assert s.request("POST", "/v1/admin/clock", {"now": "2026-01-01T13:00:05Z"},
                         headers=bearer(root))[0] == 200  # the merge window closes: decided
        status, page = s.request("GET", "/v1/messages?status=awaiting_approval", headers=bearer(agent))
        assert status == 200 and page["messages"], page
        mid = page["messages"][0]["id"]
        assert s.request("GET", "/v1/messages/" + mid, headers=bearer(agent))[0] == 200
        # An agent may not approve (403, audited), a lead may.
        assert s.request("POST", "/v1/messages/%s/approve" % mid, headers=bearer(agent))[0] == 403
        status, m = s.request("POST", "/v1/messages/%s/approve" % mid, headers=bearer(lead))
        assert status == 200 and m["status"] == "scheduled", m
        assert s.request("GET", "/v1/messages/m_nope", headers=bearer(agent))[0] == 404
        # The trail: agents may not read it, leads may.
        assert s.request("GET", "/v1/audit", headers=bearer(agent))[0] == 403
        status, trail = s.request("GET", "/v1/audit?object=message:" + mid, headers=bearer(lead))
        assert status == 200, trail
        rows = [(r["user"], r["role"], r["action"], r["object_kind"], r["object_id"], r["address"], r["status"])
                for r in trail["audit"]]
        assert rows == [
            ("arno", "agent", "GET /v1/messages/" + mid, "message", mid, "127.0.0.1", 200),
            ("arno", "agent", "POST /v1/messages/%s/approve" % mid, "message", mid, "127.0.0.1", 403),
            ("lena", "lead", "POST /v1/messages/%s/approve" % mid, "message", mid, "127.0.0.1", 200),
        ], rows
        assert all(r["at"].endswith("Z") for r in trail["audit"])
        # Filters and pages.
        status, mine = s.request("GET", "/v1/audit?user=arno&limit=2", headers=bearer(lead))
        assert status == 200 and len(mine["audit"]) == 2 and mine["next_cursor"], mine
        status, rest = s.request("GET", "/v1/audit?user=arno&cursor=" + mine["next_cursor"], headers=bearer(lead))
        assert [r["status"] for r in rest["audit"]] == [403, 404], rest
        assert all(r["user"] == "arno" for r in mine["audit"] + rest["audit"])
        assert s.request("GET", "/v1/audit?since=yesterday", headers=bearer(lead))[0] == 400
        status, none = s.request("GET", "/v1/audit?since=2999-01-01T00:00:00Z", headers=bearer(lead))
        assert status == 200 and none["audit"] == [], none
        # Posting events and reading the trail are not audited; the list read is.
        status, allrows = s.request("GET", "/v1/audit", headers=bearer(lead))
        actions = [r["action"] for r in allrows["audit"]]
        assert "GET /v1/messages" in actions and not any("events" in a or "audit" in a for a in actions), actions
        # The trail is append-only in the database itself.
        with sqlite3.connect(db) as conn:
            n = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
            for sql in ("UPDATE audit SET user = 'x'", "DELETE FROM audit"):
                try:
                    conn.execute(sql)
                    raise AssertionError(sql + " was allowed")
                except sqlite3.DatabaseError as e:
                    assert "append-only" in str(e), e
            assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == n


def _headers_only(s, token=None):
    """A POST that announces a 20 MB body and sends none of it: the answer can only come from
    the headers."""
    import socket
    host, port = s.base.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as c:
        auth = "Authorization: Bearer %s\r\n" % token if token else ""
        c.sendall(("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 20000000\r\n%s\r\n" % auth).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_unauthenticated_and_oversized_uploads_are_refused_at_the_headers():
    """Issue 18: authorization is checked when the headers arrive, before any body is read,
    and a body announced over the limit is refused then too."""
    with Server() as s:
        svc = add_user(s.db, "producer", "service")
        assert _headers_only(s) == 401
        assert _headers_only(s, "fw_" + "B" * 43) == 401
        assert _headers_only(s, svc) == 413  # authenticated: the size is what is wrong
        # A normal request still works afterwards.
        st, body = s.post_events([ev("customer.updated", "hdr@example.com", "2026-01-01T00:00:00Z",
                                    name="H")], headers=bearer(svc))
        assert st == 200, body
