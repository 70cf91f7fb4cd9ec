"""The receivers themselves (receivers.py), checked with independent clients
(smtplib, urllib): a test that passes because its receiver is broken would
prove nothing.  Also the Standard Webhooks test vector, so the receiver's
verification and forewarn's signing are held to the same reference."""
import base64
import json
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage

from receivers import sign, start_all, verify


def _post(url, body, headers=None, method="POST"):
    req = urllib.request.Request(url, data=body if isinstance(body, bytes) else body.encode(),
                                 headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError) as e:
        return None, str(e)


def _basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def test_standard_webhooks_vector():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig
    h = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
         "webhook-signature": "v1,bogus " + sig}
    assert verify(secret, h, body, now=1614265330)
    assert not verify(secret, h, body + b" ", now=1614265330)
    assert not verify(secret, h, body, now=1614265330 + 3600)  # stale


def test_smtp_records_and_counts_duplicates_by_message_id():
    with start_all() as r:
        port = int(r.smtp_url.rsplit(":", 1)[1])
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = "a@example.com", "jodi@example.com", "Caf\u00e9"
        m["Message-ID"] = "<abc@forewarn>"
        m.set_content("plain text")
        m.add_alternative("<p>html</p>", subtype="html")
        with smtplib.SMTP("127.0.0.1", port) as s:
            s.send_message(m)
            s.send_message(m)  # the same Message-ID again
        assert r.wait_for(lambda: len(r.attempts("smtp")) == 2), r.summary()
        got = r.received("smtp")
        assert len(got) == 1 and r.duplicates("smtp") == 1, r.summary()
        assert got[0]["subject"] == "Caf\u00e9"
        assert got[0]["content_type"] == "multipart/alternative"
        assert got[0]["text"].strip() == "plain text" and got[0]["html"].strip() == "<p>html</p>"
        assert got[0]["rcpt_tos"] == ["jodi@example.com"]


def test_smtp_down_then_up():
    with start_all() as r:
        port = int(r.smtp_url.rsplit(":", 1)[1])
        r.set_down("smtp", True)
        try:
            with smtplib.SMTP("127.0.0.1", port) as s:
                s.sendmail("a@example.com", ["b@example.com"], "Subject: x\r\n\r\nhi\r\n")
            raise AssertionError("a down SMTP receiver accepted mail")
        except smtplib.SMTPRecipientsRefused as e:
            assert e.recipients["b@example.com"][0] == 451
        r.set_down("smtp", True, refuse=True)
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=5).quit()
            raise AssertionError("a refusing SMTP receiver answered")
        except OSError:
            pass
        r.set_down("smtp", False)
        with smtplib.SMTP("127.0.0.1", port) as s:
            s.sendmail("a@example.com", ["b@example.com"], "Subject: x\r\nMessage-ID: <1@x>\r\n\r\nhi\r\n")
        assert r.wait_count("smtp", 1), r.summary()


def test_webhook_signature_and_idempotency():
    with start_all() as r:
        url = r.base_urls["webhook"]
        body = json.dumps({"type": "forewarn.message", "data": {}}).encode()
        import time
        ts = int(time.time())
        good = {"Content-Type": "application/json", "webhook-id": "k-1", "webhook-timestamp": str(ts),
                "webhook-signature": sign(r.webhook_secret, "k-1", ts, body)}
        assert _post(url, body, good)[0] == 200
        assert _post(url, body, good)[0] == 200  # a repeat: the first answer, not a new delivery
        bad = dict(good, **{"webhook-id": "k-2"})  # signature was made for k-1
        assert _post(url, body, bad)[0] == 401
        assert len(r.received("webhook")) == 1 and r.duplicates("webhook") == 1, r.summary()
        assert r.received("webhook")[0]["verified"] is True
        assert len(r.attempts("webhook")) == 3


def test_twilio_shape_and_down_then_up():
    with start_all() as r:
        url = r.base_urls["twilio"] + "/2010-04-01/Accounts/%s/Messages.json" % r.twilio_sid
        form = "To=%2B15550002222&From=%2B15005550006&Body=hi"
        h = {"Content-Type": "application/x-www-form-urlencoded",
             "Authorization": _basic(r.twilio_sid, r.twilio_token), "I-Twilio-Idempotency-Token": "t-1"}
        r.set_down("twilio", True)
        assert _post(url, form, h)[0] == 503
        r.set_down("twilio", True, refuse=True)
        assert _post(url, form, h)[0] is None  # nobody listening
        r.set_down("twilio", False)
        status, answer = _post(url, form, h)
        assert status == 201, answer
        sid = json.loads(answer)["sid"]
        assert _post(url, form, h) == (201, answer)  # same token, same answer
        assert _post(url, form, dict(h, Authorization=_basic(r.twilio_sid, "wrong")))[0] == 401
        assert _post(url, "To=&From=x&Body=y", dict(h, **{"I-Twilio-Idempotency-Token": "t-2"}))[0] == 400
        got = r.received("twilio")
        assert len(got) == 1 and got[0]["form"]["To"] == "+15550002222" and got[0]["sid"] == sid
        assert r.duplicates("twilio") == 1


def test_zendesk_create_and_update():
    with start_all() as r:
        base = r.base_urls["zendesk"]
        h = {"Content-Type": "application/json", "Authorization": _basic(r.zendesk_email + "/token", r.zendesk_token),
             "Idempotency-Key": "z-1"}
        t = json.dumps({"ticket": {"subject": "s", "comment": {"body": "b", "public": False}}})
        status, answer = _post(base + "/api/v2/tickets.json", t, h)
        assert status == 201, answer
        tid = json.loads(answer)["ticket"]["id"]
        note = json.dumps({"ticket": {"comment": {"body": "n", "public": False}}})
        status, _ = _post(base + "/api/v2/tickets/%d.json" % tid, note, dict(h, **{"Idempotency-Key": "z-2"}), "PUT")
        assert status == 200
        assert _post(base + "/api/v2/tickets.json", "{}", dict(h, **{"Idempotency-Key": "z-3"}))[0] == 422
        assert _post(base + "/api/v2/tickets.json", t, dict(h, Authorization=_basic("x", "y")))[0] == 401
        got = r.received("zendesk")
        assert [g["method"] for g in got] == ["POST", "PUT"] and got[1]["ticket_id"] == tid


def test_wait_for_times_out_without_requests():
    with start_all() as r:
        assert r.wait_for(lambda: len(r.received("slack")) > 0, timeout=0.2) is False
        assert _post(r.base_urls["slack"], json.dumps({"text": "x", "blocks": []}),
                     {"Content-Type": "application/json"})[0] == 200
        assert r.wait_count("slack", 1, timeout=5)
