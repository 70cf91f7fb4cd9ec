"""Delivery end to end: outbox rows written into the database, `forewarn serve`
started on it with every connector pointed at the real receivers of
receivers.py (an SMTP server and HTTP services in the shape of Twilio,
Slack, Zendesk, Standard Webhooks, push and a chatbot), and what arrives
compared field by field.  Then the faults: receivers down then up, a slow
receiver, the attempt limit and dead letters, and kill -9 mid-delivery.

The rows are inserted with plain SQL while the server is stopped (the
first start creates the schema), so these tests need only the dispatcher,
not the orchestrator's decisions; the scenarios that start from events are
in the orchestrator's tests and use the same receivers."""
import email.utils
import hashlib
import json
import os
import sqlite3
import tempfile
import time

from receivers import start_all
from server import Server

BODY = "Hi Jodi,\n\nYour eSIM activation failed. We are fixing it now.\n.\nNothing for you to do."
HTML = "<p>Hi Jodi,</p><p>Your eSIM activation failed. We are fixing it now.</p>"



def _wid(key):
    """The id receivers see for an idempotency key: a hash, never the key (docs/messages.md)."""
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]

def _server(r, only=None, extra="", **retry):
    """A stopped Server whose database exists, configured for the receivers."""
    d = tempfile.mkdtemp(prefix="fw-delivery-")
    cfg = os.path.join(d, "fw.yaml")
    with open(cfg, "w") as f:
        f.write(extra or "log_level: info\n")  # a config file may not be empty
        if r is not None:
            f.write(r.connectors_yaml(only=only, **retry))
    s = Server("--config", cfg, workdir=d)
    s.start()
    s.stop()
    return s


def _insert(s, name, channel, recipient=None, meta=None, audience="customer", subject="Your eSIM",
            body=BODY, html=HTML, customer="jodi@example.com"):
    with sqlite3.connect(s.db) as db:
        db.execute(
            "INSERT INTO messages(id, key, customer, audience, channel, status, created_at, send_at, "
            "recipient, subject, body, html, signals, meta, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 'scheduled', ?, 0, ?, ?, ?, ?, '[\"SIG-002\"]', ?, 0)",
            ("m_" + name, "key:" + name, customer, audience, channel, 1767270896000, recipient, subject,
             body, html, json.dumps(meta or {})))


def _rows(s):
    with sqlite3.connect(s.db) as db:
        return {r[0]: {"status": r[1], "attempts": r[2], "last_error": r[3]}
                for r in db.execute("SELECT id, status, attempts, last_error FROM messages")}


def _wait_rows(s, pred, timeout=10.0):
    """Wait until pred(rows) holds; for outcomes no receiver sees (stored), so it looks every 10 ms."""
    deadline = time.monotonic() + timeout
    while not pred(_rows(s)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _events(s, type_):
    with sqlite3.connect(s.db) as db:
        return [json.loads(r[0]) for r in db.execute("SELECT body FROM events WHERE type = ? ORDER BY seq",
                                                     (type_,))]


def _one(r, kind):
    got = r.received(kind)
    assert len(got) == 1, "%s: %s" % (kind, r.summary())
    return got[0]


def test_every_connector_delivers_once_with_its_shape():
    with start_all() as r:
        s = _server(r, max_attempts=3, backoff_base="50ms", timeout="5s")
        _insert(s, "mail", "email", "jodi@example.com",
                {"unsubscribe_url": "https://example.com/unsubscribe/abc123"},
                subject="Your eSIM \u2014 we are on it")
        _insert(s, "sms", "sms", "+15550002222", body="Example Mobile: your eSIM failed; we are fixing it.")
        _insert(s, "slack", "slack", audience="l2", subject="[CRITICAL] SIG-002 eSIM failed \u2014 Jodi")
        _insert(s, "ticket", "ticket", audience="l1",
                meta={"priority": "urgent", "tags": ["proactive_alert", "signal_SIG-002", "severity_critical"],
                      "group": "eSIM Provisioning", "requester": {"email": "jodi@example.com", "name": "Jodi"}},
                subject="[PROACTIVE] eSIM Activation Failed \u2014 Jodi (jodi@example.com)")
        _insert(s, "note", "internal_note", audience="l1", meta={"ticket_id": 4242})
        _insert(s, "reply", "ticket_reply", recipient="4243")
        _insert(s, "wh", "webhook")
        _insert(s, "push", "push", meta={"title": "eSIM problem"})
        _insert(s, "bot", "chatbot", audience="chatbot", body=json.dumps({"proactive_context": {"signal": "SIG-002"}}))
        _insert(s, "app", "in_app")
        s.start()
        try:
            want = {"smtp": 1, "twilio": 1, "slack": 1, "zendesk": 3, "webhook": 1, "push": 1, "chatbot": 1}
            assert r.wait_for(lambda: all(len(r.received(k)) >= n for k, n in want.items()), 15), r.summary()
        finally:
            s.stop()  # a clean stop finishes and records every send in progress
        assert all(r.duplicates(k) == 0 for k in want), r.summary()

        # Email: multipart/alternative, the headers, a Message-ID derived from the key.
        m = _one(r, "smtp")
        h = m["headers"]
        assert m["rcpt_tos"] == ["jodi@example.com"] and m["mail_from"] == "alerts@example.com"
        assert h["from"] == "Example Mobile <alerts@example.com>" and h["to"] == "jodi@example.com", h
        assert m["subject"] == "Your eSIM \u2014 we are on it", h
        assert m["raw_headers"]["subject"].startswith("=?UTF-8?B?")  # RFC 2047 on the wire
        assert h["message-id"] == "<%s@forewarn>" % hashlib.sha256(b"key:mail").hexdigest()[:32], h
        assert h["mime-version"] == "1.0"
        assert email.utils.parsedate_to_datetime(h["date"]) is not None
        assert h["list-unsubscribe"] == "<https://example.com/unsubscribe/abc123>, <mailto:unsubscribe@example.com>"
        assert h["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
        assert m["content_type"] == "multipart/alternative"
        assert m["text"].replace("\r\n", "\n").rstrip("\n") == BODY, repr(m["text"])
        assert m["html"].strip() == HTML

        # SMS: Twilio's path, form, basic auth and idempotency token.
        t = _one(r, "twilio")
        assert t["form"] == {"To": "+15550002222", "From": "+15005550006",
                             "Body": "Example Mobile: your eSIM failed; we are fixing it."}, t["form"]
        assert t["auth"] == (r.twilio_sid, r.twilio_token) and t["key"] == _wid("key:sms")

        # Slack: Block Kit header, mrkdwn section, context; text as the fallback.
        sl = _one(r, "slack")["json"]
        assert [b["type"] for b in sl["blocks"]] == ["header", "section", "context"], sl
        assert sl["blocks"][0]["text"] == {"type": "plain_text", "text": "[CRITICAL] SIG-002 eSIM failed \u2014 Jodi"}
        assert sl["blocks"][1]["text"] == {"type": "mrkdwn", "text": BODY}
        assert "SIG-002" in sl["blocks"][2]["elements"][0]["text"]
        assert sl["text"].startswith("[CRITICAL] SIG-002")

        # Zendesk: the alert ticket, a private note, a public reply; token auth, idempotency keys.
        z = {rec["key"]: rec for rec in r.received("zendesk")}
        assert set(z) == {_wid("key:ticket"), _wid("key:note"), _wid("key:reply")}, z.keys()
        tk = z[_wid("key:ticket")]
        assert (tk["method"], tk["path"]) == ("POST", "/api/v2/tickets.json")
        assert tk["auth"] == (r.zendesk_email + "/token", r.zendesk_token)
        ticket = tk["json"]["ticket"]
        assert ticket["subject"] == "[PROACTIVE] eSIM Activation Failed \u2014 Jodi (jodi@example.com)"
        assert ticket["comment"] == {"body": BODY, "public": False}
        assert ticket["priority"] == "urgent"
        assert ticket["tags"] == ["proactive_alert", "signal_sig-002", "severity_critical", "esim_provisioning"]
        assert ticket["requester"] == {"email": "jodi@example.com", "name": "Jodi"}
        assert (z[_wid("key:note")]["method"], z[_wid("key:note")]["path"]) == ("PUT", "/api/v2/tickets/4242.json")
        assert z[_wid("key:note")]["json"] == {"ticket": {"comment": {"body": BODY, "public": False}}}
        assert z[_wid("key:reply")]["path"] == "/api/v2/tickets/4243.json"
        assert z[_wid("key:reply")]["json"]["ticket"]["comment"]["public"] is True

        # Standard Webhooks: id is a hash of the key, the signature verifies, the body is the message.
        w = _one(r, "webhook")
        assert w["verified"] is True and w["key"] == _wid("key:wh")
        assert w["json"]["type"] == "forewarn.message"
        data = w["json"]["data"]
        assert (data["id"], data["channel"], data["body"], data["signals"]) == ("m_wh", "webhook", BODY, ["SIG-002"])

        p = _one(r, "push")
        assert p["auth"] == ("Bearer", r.push_token) and p["key"] == _wid("key:push")
        assert p["json"] == {"customer": "jodi@example.com", "title": "eSIM problem", "body": BODY,
                             "message_id": "m_push"}

        b = _one(r, "chatbot")
        assert b["verified"] is True and b["json"]["type"] == "forewarn.chatbot_context"
        assert b["json"]["data"]["context"] == {"proactive_context": {"signal": "SIG-002"}}

        # Every row is sent, and each outcome came back as a message.sent event.
        rows = _rows(s)
        assert all(v["status"] == "sent" and v["attempts"] == 1 for v in rows.values()), rows
        sent = {e["data"]["message_id"]: e for e in _events(s, "message.sent")}
        assert set(sent) == set(rows), sent.keys()
        e = sent["m_sms"]
        assert e["id"] == "sent:m_sms" and e["subject"] == "jodi@example.com"
        assert e["data"] == {"message_id": "m_sms", "channel": "sms", "connector": "sms", "audience": "customer",
                         "kind": None, "attempts": 1}


def test_without_connectors_messages_are_stored_and_nothing_leaves():
    with start_all() as r:
        s = _server(None)
        for ch in ("email", "sms", "slack", "ticket", "webhook", "push"):
            _insert(s, ch, ch, recipient="jodi@example.com" if ch == "email" else None)
        _insert(s, "app", "in_app")
        s.start()
        try:
            # Nothing leaves the machine, so there is no receiver to wait on: watch the rows.
            assert _wait_rows(s, lambda rows: all(v["status"] != "scheduled" for v in rows.values())), _rows(s)
        finally:
            s.stop()
        rows = _rows(s)
        assert rows["m_app"]["status"] == "sent", rows
        for ch in ("email", "sms", "slack", "ticket", "webhook", "push"):
            assert rows["m_" + ch] == {"status": "stored", "attempts": 0, "last_error": None}, rows
        assert all(not r.attempts(k) for k in ("smtp", "twilio", "slack", "zendesk", "webhook", "push")), r.summary()


def test_receivers_down_then_up_every_message_arrives_exactly_once():
    with start_all() as r:
        s = _server(r, max_attempts=50, backoff_base="20ms", backoff_max="200ms", timeout="2s")
        for i in range(3):
            _insert(s, "wh%d" % i, "webhook")
            _insert(s, "mail%d" % i, "email", "jodi%d@example.com" % i)
            _insert(s, "sms%d" % i, "sms", "+1555000000%d" % i)
        r.set_down("webhook", True)               # answers 503
        r.set_down("smtp", True)                  # 451 at RCPT
        r.set_down("twilio", True, refuse=True)   # not listening at all
        s.start()
        try:
            # Every message is refused at least twice before the receivers come back.
            def refused_twice():
                wh = [a["key"] for a in r.attempts("webhook")]
                rc = [a.get("rcpt") for a in r.attempts("smtp")]
                return all(wh.count(_wid("key:wh%d" % i)) >= 2 and rc.count("jodi%d@example.com" % i) >= 2
                           for i in range(3))
            assert r.wait_for(refused_twice, 15), r.summary()
            assert not r.received("webhook") and not r.received("smtp")
            r.set_down("webhook", False)
            r.set_down("smtp", False)
            r.set_down("twilio", False)
            assert r.wait_for(lambda: all(len(r.received(k)) == 3 for k in ("webhook", "smtp", "twilio")), 15), \
                r.summary()
        finally:
            s.stop()
        assert all(r.duplicates(k) == 0 for k in ("webhook", "smtp", "twilio")), r.summary()
        assert sorted(x["key"] for x in r.received("webhook")) == sorted(_wid("key:wh%d" % i) for i in range(3))
        assert sorted(x["rcpt_tos"][0] for x in r.received("smtp")) == ["jodi%d@example.com" % i for i in range(3)]
        rows = _rows(s)
        assert all(v["status"] == "sent" for v in rows.values()), rows
        assert all(rows["m_wh%d" % i]["attempts"] >= 3 for i in range(3)), rows
        assert all(rows["m_mail%d" % i]["attempts"] >= 3 for i in range(3)), rows


def test_a_slow_receiver_does_not_hold_up_the_others():
    with start_all() as r:
        s = _server(r, timeout="20s")
        r.set_slow("slack", 4)
        _insert(s, "slack", "slack", audience="l2")
        _insert(s, "mail", "email", "jodi@example.com")
        _insert(s, "sms", "sms", "+15550002222")
        _insert(s, "wh", "webhook")
        s.start()
        try:
            assert r.wait_for(lambda: r.arrived("slack") == 1, 10), r.summary()
            # While Slack holds its answer, the other channels are delivered.
            assert r.wait_for(lambda: all(len(r.received(k)) == 1 for k in ("smtp", "twilio", "webhook")), 3), \
                r.summary()
            assert not r.received("slack")
            assert r.wait_count("slack", 1, 15), r.summary()
        finally:
            r.set_slow("slack", 0)
            s.stop()
        assert _rows(s)["m_slack"]["status"] == "sent"


def test_attempt_limit_then_dead_letter_and_message_failed():
    with start_all() as r:
        c = r.connectors(max_attempts=3, backoff_base="20ms", backoff_max="50ms", timeout="2s")
        c["sms"]["auth_token"] = "not-the-token"  # Twilio answers 401: permanent
        s = _server(None, extra="connectors: " + json.dumps(c) + "\n")
        r.set_down("push", True)
        _insert(s, "push", "push")
        _insert(s, "sms", "sms", "+15550002222")
        _insert(s, "note", "internal_note", audience="l1")  # no ticket to add it to
        s.start()
        try:
            assert r.wait_for(lambda: len(r.attempts("push")) == 3 and len(r.attempts("twilio")) == 1, 10), \
                r.summary()
            # The last attempt's outcome is recorded after the receiver answered: wait for the rows.
            def dead():
                st, body = s.request("GET", "/v1/messages?status=dead")
                return st == 200 and {m["id"] for m in body["messages"]} >= {"m_push", "m_sms", "m_note"}
            deadline = time.monotonic() + 10
            while not dead() and time.monotonic() < deadline:
                time.sleep(0.02)  # a read of the outbox each time; it has no change feed
            assert dead(), s.request("GET", "/v1/messages")
        finally:
            s.stop()
        rows = _rows(s)
        assert rows["m_push"]["status"] == "dead" and rows["m_push"]["attempts"] == 3, rows
        assert "HTTP 503" in rows["m_push"]["last_error"], rows
        assert rows["m_sms"]["status"] == "dead" and rows["m_sms"]["attempts"] == 1, rows
        assert "HTTP 401" in rows["m_sms"]["last_error"], rows
        assert rows["m_note"]["status"] == "dead" and "no ticket" in rows["m_note"]["last_error"], rows
        assert not r.attempts("zendesk")
        failed = {e["data"]["message_id"]: e for e in _events(s, "message.failed")}
        assert set(failed) == {"m_push", "m_sms", "m_note"}, failed.keys()
        assert failed["m_push"]["data"]["channel"] == "push" and "HTTP 503" in failed["m_push"]["data"]["error"]
        assert len(r.attempts("push")) == 3  # nothing after the limit


def test_kill9_mid_delivery_loses_nothing_and_delivers_nothing_twice():
    with start_all() as r:
        s = _server(r, timeout="20s")
        _insert(s, "wh", "webhook")
        _insert(s, "mail", "email", "jodi@example.com")
        _insert(s, "sms", "sms", "+15550002222")
        # The webhook and SMTP receivers take the message but hold their answers.
        r.set_slow("webhook", 2)
        r.set_slow("smtp", 2)
        s.start()
        assert r.wait_for(lambda: r.arrived("webhook") == 1 and r.arrived("smtp") == 1, 10), r.summary()
        s.kill9()  # mid-delivery: the rows are left `sending`
        # The receivers finish taking them (as a real service would).
        assert r.wait_for(lambda: len(r.received("webhook")) == 1 and len(r.received("smtp")) == 1, 10), \
            r.summary()
        assert _rows(s)["m_wh"]["status"] == "sending"
        r.set_slow("webhook", 0)
        r.set_slow("smtp", 0)
        s.start()  # requeues what was left sending; it goes out again under the same key
        try:
            assert r.wait_for(lambda: r.duplicates("webhook") == 1 and r.duplicates("smtp") == 1, 10), r.summary()
        finally:
            s.stop()
        assert len(r.received("webhook")) == 1 and len(r.received("smtp")) == 1, r.summary()
        assert len(r.received("twilio")) == 1, r.summary()
        assert [a["key"] for a in r.attempts("webhook")] == [_wid("key:wh"), _wid("key:wh")]
        ids = [a["message_id"] for a in r.attempts("smtp")]
        assert len(ids) == 2 and ids[0] == ids[1], ids
        rows = _rows(s)
        assert all(v["status"] == "sent" for v in rows.values()), rows
        assert rows["m_wh"]["attempts"] == 2 and rows["m_mail"]["attempts"] == 2, rows


def test_bad_connector_url_refused_at_start_with_its_place():
    d = tempfile.mkdtemp(prefix="fw-delivery-")
    cfg = os.path.join(d, "fw.yaml")
    with open(cfg, "w") as f:
        f.write("connectors:\n  slack:\n    webhook_url: ftp://hooks.example.com/x\n"
                "  sms: {account_sid: AC1, auth_token: t, from: \"+1\", base_url: api.twilio.com}\n")
    s = Server("--config", cfg, workdir=d)
    assert s.start(expect_fail=True) != 0
    log = s.logtext()
    assert "fw.yaml:3:18: error: connectors.slack.webhook_url must be an http:// or https:// URL" in log, log
    assert "fw.yaml:4:64: error: connectors.sms.base_url must start with its scheme" in log, log
    assert not os.path.exists(s.db)  # nothing changed
