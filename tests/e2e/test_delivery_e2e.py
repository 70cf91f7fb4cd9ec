"""Communications end to end: `forewarn serve` with every connector pointed at
real local receivers (an SMTP server, HTTP endpoints shaped like Zendesk,
Slack, Twilio, a push service, a chatbot and a Standard Webhooks consumer).
"""
import json
import os
import tempfile

from receivers import start_all, verify
from server import Server, ev

JODI = "jodi@example.com"


def _config(r, extra="", **retry):
    d = tempfile.mkdtemp(prefix="fw-deliv-")
    path = os.path.join(d, "forewarn.yaml")
    with open(path, "w") as f:
        f.write("brand: {name: Meow Mobile, sender_name: Sam from Meow Mobile, "
                "unsubscribe_url: 'https://meow.example.com/unsubscribe'}\n")
        f.write(r.connectors_yaml(**(retry or {"max_attempts": 4, "backoff_base": "50ms",
                                               "backoff_max": "200ms", "timeout": "5s"})))
        f.write(extra)
    return d, path


def _jodi_events():
    return [
        ev("customer.updated", JODI, "2026-01-01T09:00:00Z", name="Jodi Park", email=JODI,
           phone="+14155550143", zip="94105", timezone="UTC", push_token="device-jodi-1"),
        ev("order.created", JODI, "2026-01-01T09:30:00Z", order_id="o-17"),
        ev("payment.completed", JODI, "2026-01-01T10:00:00Z", order_id="o-17", amount=45),
        ev("order.status_changed", JODI, "2026-01-01T10:01:00Z", order_id="o-17", status="COMPLETED"),
        ev("esim.status_changed", JODI, "2026-01-04T12:00:00Z", order_id="o-17", status="FAILED",
           individual_id="ind-42"),
    ]


def _messages(s, **q):
    qs = "&".join("%s=%s" % kv for kv in q.items())
    status, body = s.request("GET", "/v1/messages" + ("?" + qs if qs else ""))
    assert status == 200, body
    return body["messages"]


def _wait_messages(s, pred, timeout=20, **q):
    """Read /v1/messages until pred(messages) holds or the deadline passes (the outbox has no
    push notification to wait on; each read is a real API call)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        msgs = _messages(s, **q)
        if pred(msgs) or time.monotonic() > deadline:
            return msgs
        time.sleep(0.02)


def test_seed_example_jodi_reaches_every_receiver_once_with_the_right_content():
    r = start_all()
    try:
        d, cfg = _config(r)
        with Server("--config", cfg, workdir=d) as s:
            status, body = s.post_decided(_jodi_events())
            assert status == 200, body
            assert r.wait_for(lambda: len(r.received("smtp")) >= 1 and len(r.received("twilio")) >= 1
                              and len(r.received("zendesk")) >= 1 and len(r.received("slack")) >= 1
                              and len(r.received("chatbot")) >= 1 and len(r.received("push")) >= 1,
                              timeout=20), r.summary()
            # The customer email: multipart text + HTML, correct headers, one-click unsubscribe.
            mails = r.received("smtp")
            assert len(mails) == 1, r.summary()
            m = mails[0]
            assert m["rcpt_tos"] == [JODI], m["rcpt_tos"]
            assert m["content_type"] == "multipart/alternative", m["content_type"]
            assert m["text"] and m["html"] and "Jodi" in m["text"], m["text"]
            assert "<html" in m["html"].lower(), m["html"]
            h = m["headers"]
            assert h["from"] == "Example Mobile <alerts@example.com>", h["from"]
            assert h["to"] == JODI and h["mime-version"] == "1.0" and h["date"], h
            assert h["message-id"].endswith("@forewarn>"), h["message-id"]
            assert "https://meow.example.com/unsubscribe?m=" in h["list-unsubscribe"], h["list-unsubscribe"]
            assert "mailto:unsubscribe@example.com" in h["list-unsubscribe"], h["list-unsubscribe"]
            assert h["list-unsubscribe-post"] == "List-Unsubscribe=One-Click", h
            assert "SIG-" not in m["text"] and "ind-42" not in m["text"], m["text"]
            # The SMS, Twilio-shaped.
            sms = r.received("twilio")
            assert len(sms) == 1, r.summary()
            assert sms[0]["form"]["To"] == "+14155550143" and sms[0]["form"]["From"] == "+15005550006", sms[0]
            assert sms[0]["key"], sms[0]
            # The L1 alert ticket in Zendesk.
            tickets = [t for t in r.received("zendesk") if t["method"] == "POST"]
            assert len(tickets) == 1, r.summary()
            t = tickets[0]["json"]["ticket"]
            assert t["subject"] == "[PROACTIVE] eSIM provisioning FAILED \u2014 Jodi Park (jodi@example.com)", t["subject"]
            assert t["priority"] == "urgent", t
            assert {"proactive_alert", "signal_sig-002", "severity_critical"} <= set(t["tags"]), t["tags"]
            assert "ind-42" in t["comment"]["body"] and t["comment"]["public"] is False, t["comment"]
            # The L2 Slack alert.
            slack = r.received("slack")
            assert len(slack) == 1, [x["json"] for x in slack]
            assert slack[0]["json"]["blocks"] and "CRITICAL" in json.dumps(slack[0]["json"]), slack[0]["json"]
            # The chatbot context: pulled through the API and pushed, signed.
            status, ctx = s.request("GET", "/v1/customers/%s/context" % JODI)
            assert status == 200, ctx
            pc = ctx["proactive_context"]
            assert pc["signal"] == "SIG-002" and pc["what_to_tell_customer"], pc
            pushed = r.received("chatbot")
            assert pushed[0]["verified"] is True, pushed[0]
            # Every message was sent exactly once, and the outcomes came back as events.
            assert all(r.duplicates(k) == 0 for k in ("smtp", "twilio", "zendesk", "slack")), r.summary()
            # The receivers answered; the outbox rows turn `sent` once forewarn has the answers.
            want = {("customer", "email"), ("customer", "sms"), ("l1", "ticket"), ("l2", "slack")}
            sent = _wait_messages(s, lambda ms: {(x["audience"], x["channel"]) for x in ms
                                                 if x["status"] == "sent"} >= want, customer=JODI)
            assert {(x["audience"], x["channel"]) for x in sent if x["status"] == "sent"} >= want, sent
            status, cust = s.request("GET", "/v1/customers/%s" % JODI)
            assert any(e["type"] == "message.sent" for e in cust["timeline"]), cust["timeline"]
    finally:
        r.stop()


def test_signed_webhook_verifies_per_standard_webhooks():
    r = start_all()
    try:
        d, cfg = _config(r, extra="outreach: {webhook: true}\n")
        with Server("--config", cfg, workdir=d) as s:
            assert s.post_decided(_jodi_events())[0] == 200
            assert r.wait_count("webhook", 1, timeout=20), r.summary()
            w = r.received("webhook")[0]
            assert w["verified"] is True, w
            assert w["headers"]["webhook-id"] and w["headers"]["webhook-timestamp"], w["headers"]
            body = w["body"].encode() if isinstance(w["body"], str) else w["body"]
            assert b"SIG-002" in body, body
            assert verify(r.webhook_secret, w["headers"], body) is True
            assert verify(r.webhook_secret, w["headers"], body.replace(b"SIG-002", b"SIG-003")) is False
    finally:
        r.stop()


def test_receiver_down_then_up_delivers_exactly_once():
    r = start_all()
    try:
        r.set_down("smtp", True)
        r.set_down("twilio", True)
        d, cfg = _config(r, max_attempts=20, backoff_base="50ms", backoff_max="200ms", timeout="5s")
        with Server("--config", cfg, workdir=d) as s:
            assert s.post_decided(_jodi_events())[0] == 200
            # Refused attempts happen, and the other channels are not held up.
            assert r.wait_for(lambda: len(r.attempts("smtp")) >= 2 and len(r.attempts("twilio")) >= 2,
                              timeout=20), r.summary()
            assert r.wait_count("zendesk", 1, timeout=20), r.summary()
            assert r.received("smtp") == [] and r.received("twilio") == []
            retrying = _messages(s, customer=JODI, channel="email")
            # Between attempts it is `retrying`; during one, `sending` (the worker holds it).
            assert retrying[0]["status"] in ("retrying", "sending") and retrying[0]["attempts"] >= 1, retrying
            assert retrying[0]["status"] == "sending" or retrying[0]["last_error"], retrying
            r.set_down("smtp", False)
            r.set_down("twilio", False)
            assert r.wait_for(lambda: len(r.received("smtp")) == 1 and len(r.received("twilio")) == 1,
                              timeout=20), r.summary()
            assert r.duplicates("smtp") == 0 and r.duplicates("twilio") == 0, r.summary()
    finally:
        r.stop()


def test_a_redirecting_receiver_is_not_followed():
    """A receiver that answers 307 cannot bounce forewarn to another address (security.md,
    API7): the redirect is not followed but a permanent failure (a moved endpoint is a
    configuration to fix, not an outage to wait out), a dead letter whose error names the
    status, and the Location it names never sees a request.  Retried by a person once the
    endpoint answers again, it is delivered once, to the configured URL."""
    r = start_all()
    try:
        target = r.base_urls["push"] + "/redirected-here"
        r.set_redirect("zendesk", target)
        d, cfg = _config(r, max_attempts=20, backoff_base="50ms", backoff_max="200ms", timeout="5s")
        with Server("--config", cfg, workdir=d) as s:
            assert s.post_decided(_jodi_events())[0] == 200

            def dead():
                return [m for m in _messages(s, status="dead") if m["channel"] == "ticket"]
            assert r.wait_for(lambda: bool(dead()), timeout=20) or dead(), _messages(s, customer=JODI)
            dl = dead()[0]
            assert dl["attempts"] == 1 and "307" in dl["last_error"], dl
            assert [a["status"] for a in r.attempts("zendesk")] == [307], r.summary()
            # The other channels are delivered meanwhile, push among them; the redirect's
            # target is never asked.
            assert r.wait_count("push", 1, timeout=20), r.summary()
            assert [x for x in r.attempts("push") if x["path"].endswith("/redirected-here")] == [], \
                r.attempts("push")
            r.set_redirect("zendesk", None)
            status, m = s.request("POST", "/v1/messages/%s/retry" % dl["id"])
            assert status == 200 and m["status"] == "retrying", m
            assert r.wait_count("zendesk", 1, timeout=20), r.summary()
            assert r.duplicates("zendesk") == 0, r.summary()
            assert [x for x in r.attempts("push") if x["path"].endswith("/redirected-here")] == []
    finally:
        r.stop()


def test_kill9_mid_delivery_loses_nothing_and_duplicates_nothing():
    r = start_all()
    try:
        r.set_slow("twilio", 3.0)  # the SMS request is in flight when the server dies
        d, cfg = _config(r)
        s = Server("--config", cfg, workdir=d)
        s.start()
        assert s.post_decided(_jodi_events())[0] == 200
        assert r.wait_for(lambda: len(r.attempts("twilio")) >= 1, timeout=20), r.summary()
        s.kill9()
        r.set_slow("twilio", 0)
        s.start()
        assert r.wait_for(lambda: len(r.received("twilio")) == 1 and len(r.received("smtp")) == 1
                          and len(r.received("zendesk")) >= 1, timeout=20), r.summary()
        # The resend carried the same idempotency key: the receiver kept one copy.
        assert len(r.received("twilio")) == 1, r.summary()
        keys = {a["key"] for a in r.attempts("twilio")}
        assert len(keys) == 1, keys
        # Recovery re-derived the decisions without adding messages.
        msgs = _messages(s, customer=JODI, channel="sms")
        assert len([m for m in msgs if m["created_at"] == "2026-01-04T12:00:05Z"]) == 1, msgs  # merge window
        s.stop()
    finally:
        r.stop()


def test_approval_edit_reject_and_dead_letter_retry_through_the_api():
    r = start_all()
    try:
        d, cfg = _config(r, max_attempts=2, backoff_base="50ms", backoff_max="100ms", timeout="5s")
        with Server("--config", cfg, workdir=d) as s:
            big, other = "ceo@bigcorp.example", "cfo@bigcorp.example"
            events = []
            for c in (big, other):
                events += [ev("customer.updated", c, "2026-01-01T12:00:00Z", name="Pat Lee", email=c, tier="enterprise", timezone="UTC"),
                           ev("portin.status_changed", c, "2026-01-01T13:00:00Z", status="REJECTED", response="REJECTED: PIN")]
            assert s.post_decided(events)[0] == 200
            waiting = _messages(s, status="awaiting_approval")
            by = {m["customer"]: m for m in waiting}
            assert set(by) == {big, other}, waiting
            assert "approval" in by[big]["reason"], by[big]
            # Nothing goes out while it waits.
            assert r.received("smtp") == []
            # Edit, then approve: the edited text is what arrives.
            mid = by[big]["id"]
            status, m = s.request("POST", "/v1/messages/%s/edit" % mid, {"body": "Hi Pat, a person checked this note."})
            assert status == 200 and m["body"] == "Hi Pat, a person checked this note.", m
            status, m = s.request("POST", "/v1/messages/%s/approve" % mid)
            assert status == 200 and m["status"] == "scheduled", m
            assert r.wait_count("smtp", 1, timeout=20), r.summary()
            assert "a person checked this note" in r.received("smtp")[0]["text"]
            assert "a person checked this note" in r.received("smtp")[0]["html"]
            # Reject the other; it never goes.
            status, m = s.request("POST", "/v1/messages/%s/reject" % by[other]["id"], {"reason": "wrong account"})
            assert status == 200 and m["status"] == "rejected" and m["reason"] == "wrong account", m
            # Clear errors, nothing changed.
            assert s.request("POST", "/v1/messages/m_0000000000000000/approve")[0] == 404
            status, err = s.request("POST", "/v1/messages/%s/approve" % by[other]["id"])
            assert status == 409, err
            status, err = s.request("POST", "/v1/messages/%s/edit" % mid, {"bodyy": "x"})
            assert status == 400 and "bodyy" in err["error"], err
            status, m = s.request("GET", "/v1/messages/%s" % by[other]["id"])
            assert m["status"] == "rejected"
            # A dead letter: the SMS receiver refuses connections; two attempts, then dead.
            r.set_down("twilio", True, refuse=True)
            assert s.post_decided([ev("customer.updated", "sms@example.com", "2026-01-02T00:00:00Z", name="Sam", phone="+14155550100", email="sms@example.com"),
                                  ev("esim.status_changed", "sms@example.com", "2026-01-02T01:00:00Z", status="FAILED")])[0] == 200
            assert r.wait_count("smtp", 2, timeout=20), r.summary()

            def dead():
                return [m for m in _messages(s, status="dead") if m["channel"] == "sms"]
            assert r.wait_for(lambda: bool(dead()), timeout=20) or dead(), _messages(s, channel="sms")
            dl = dead()[0]
            assert dl["attempts"] == 2 and dl["last_error"], dl
            r.set_down("twilio", False)
            status, m = s.request("POST", "/v1/messages/%s/retry" % dl["id"])
            assert status == 200 and m["status"] == "retrying", m
            assert r.wait_count("twilio", 1, timeout=20), r.summary()
    finally:
        r.stop()


def test_without_connectors_messages_are_stored_and_nothing_leaves():
    r = start_all()
    try:
        with Server() as s:  # no config: no connectors
            assert s.post_decided(_jodi_events())[0] == 200
            msgs = _wait_messages(s, lambda ms: ms and all(m["status"] == "stored" for m in ms),
                                  customer=JODI, audience="customer")
            assert msgs and all(m["status"] == "stored" for m in msgs), msgs
            assert all(len(r.attempts(k)) == 0 for k in ("smtp", "twilio", "zendesk", "slack")), r.summary()
            assert all(m["body"] for m in msgs)
    finally:
        r.stop()


def test_bad_connector_url_and_bad_template_are_refused_at_startup():
    d = tempfile.mkdtemp(prefix="fw-bad-")
    cfg = os.path.join(d, "forewarn.yaml")
    with open(cfg, "w") as f:
        f.write("connectors:\n  slack:\n    webhook_url: ftp://hooks.example.com/x\n")
    s = Server("--config", cfg, workdir=d)
    assert s.start(expect_fail=True) != 0
    assert cfg + ":3:18: error:" in s.logtext(), s.logtext()
    tdir = os.path.join(d, "templates", "customer", "email")
    os.makedirs(tdir)
    with open(os.path.join(tdir, "SIG-001.tmpl"), "w") as f:
        f.write("subject: Hello\n---\nHi {{customer.frist_name}},\n")
    with open(cfg, "w") as f:
        f.write("templates: %s\n" % os.path.join(d, "templates"))
    s = Server("--config", cfg, workdir=d)
    assert s.start(expect_fail=True) != 0
    assert "SIG-001.tmpl:3:6: error: unknown variable 'customer.frist_name'" in s.logtext(), s.logtext()


def test_in_app_messages_are_listed_and_marked_read():
    d = tempfile.mkdtemp(prefix="fw-inapp-")
    pack = os.path.join(d, "adoption.yaml")
    with open(pack, "w") as f:
        f.write("signals:\n"
                "  - id: ADOPT-001\n"
                "    name: Core feature unused\n"
                "    severity: LOW\n"
                "    root_cause: adoption\n"
                "    condition: upper(usage.level) == \"LOW\"\n")
    with Server("--rules", pack, workdir=d) as s:
        c = "quiet@example.com"
        assert s.post_decided([ev("customer.updated", c, "2026-01-01T10:00:00Z", name="Quinn", email=c),
                              ev("usage.changed", c, "2026-01-01T12:00:00Z", level="low")])[0] == 200
        inapp = _wait_messages(s, lambda ms: any(m["status"] == "sent" for m in ms),
                               customer=c, channel="in_app")
        assert len(inapp) == 1 and inapp[0]["status"] == "sent", inapp
        assert _messages(s, customer=c, channel="email") == []  # LOW: in-app only
        status, body = s.request("GET", "/v1/customers/%s/inapp" % c)
        assert status == 200 and [m["id"] for m in body["messages"]] == [inapp[0]["id"]], body
        assert body["messages"][0]["read_at"] is None
        status, m = s.request("POST", "/v1/customers/%s/inapp/%s/read" % (c, inapp[0]["id"]))
        assert status == 200 and m["read_at"], m
        assert s.request("POST", "/v1/customers/%s/inapp/m_0000000000000000/read" % c)[0] == 404
        assert s.request("POST", "/v1/customers/other@example.com/inapp/%s/read" % inapp[0]["id"])[0] == 404


def test_ladder_tasks_are_listed_and_cancelled_by_resolution():
    with Server() as s:
        c = "tasks@example.com"
        assert s.post_decided([ev("customer.updated", c, "2026-01-01T10:00:00Z", name="Tess", email=c),
                              ev("portin.status_changed", c, "2026-01-01T11:00:00Z", status="REJECTED",
                                 response="REJECTED: PIN")])[0] == 200
        status, body = s.request("GET", "/v1/tasks?customer=%s" % c)
        assert status == 200, body
        got = sorted((t["kind"], t["due_at"], t["status"]) for t in body["tasks"])
        assert got == [("escalate_l2_persisting", "2026-01-03T11:00:00Z", "pending"),
                       ("escalate_l2_unresolved", "2026-01-01T15:00:00Z", "pending"),
                       ("followup_no_response", "2026-01-02T11:00:05Z", "pending"),  # 24h after our message
                       # and the people's follow-up task of that outreach, 3 days after it (docs/tasks.md)
                       ("outreach_followup", "2026-01-04T11:00:05Z", "open")], got
        # The 4h step fires on the clock; then the port completes and the rest are cancelled.
        assert s.clock("2026-01-01T16:00:00Z")[0] == 200
        assert s.post_decided([ev("portin.status_changed", c, "2026-01-01T17:00:00Z", status="COMPLETED",
                                 response="OK")])[0] == 200
        status, body = s.request("GET", "/v1/tasks?customer=%s" % c)
        got = sorted((t["kind"], t["status"]) for t in body["tasks"])
        assert got == [("escalate_l2_persisting", "cancelled"), ("escalate_l2_unresolved", "done"),
                       ("followup_no_response", "cancelled"), ("outreach_followup", "done")], got
        cancelled = [t for t in body["tasks"] if t["status"] == "cancelled"]
        assert all(t["detail"]["cancelled_by"] == "detection resolved" for t in cancelled), cancelled
        assert s.request("GET", "/v1/tasks?status=maybe")[0] == 400
