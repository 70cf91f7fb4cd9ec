"""receivers.py -- real receivers for the connector end-to-end tests: an SMTP
server and HTTP endpoints in the shape of Slack, Zendesk, Twilio, Standard
Webhooks, a push service and a chatbot, all on 127.0.0.1 with ports picked
by the system.  Python 3 standard library plus Debian's python3-aiosmtpd.

    from receivers import start_all
    r = start_all()
    cfg = r.connectors_yaml(max_attempts=5, backoff_base="50ms")  # for forewarn's config
    ...  # start `forewarn serve`, feed it events
    assert r.wait_for(lambda: len(r.received("smtp")) == 1), r.summary()
    mail = r.received("smtp")[0]
    assert mail["headers"]["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
    r.stop()

Kinds: "smtp", "slack", "zendesk", "twilio", "webhook", "push", "chatbot".

What a receiver does with a request:
  * records it: method, path, headers (lower-case names), body, parsed JSON
    or form, basic-auth credentials, the idempotency key, and whether its
    Standard Webhooks signature verified (webhook, chatbot);
  * honours the idempotency key (Idempotency-Key for Zendesk and push,
    I-Twilio-Idempotency-Token for Twilio, webhook-id for webhooks and the
    chatbot; Message-ID for mail): a repeat gets the first answer again and
    is counted in duplicates(kind), not delivered twice;
  * answers like the real service would (Twilio 201 with a sid, Zendesk 201
    with a ticket id, 401 on a bad signature or missing credentials, 400/422
    on a malformed request);
  * can be down: set_down(kind, True) answers 503 (SMTP: 451 at RCPT), and
    set_down(kind, True, refuse=True) stops listening altogether; set_down(kind,
    False) brings it back on the same port.  set_slow(kind, seconds) delays
    each answer (a slow receiver must not hold up the other channels).

received(kind) lists deliveries (first arrivals); attempts(kind) lists
every request, refused ones included; duplicates(kind) counts repeats.
wait_for(predicate, timeout) waits on a condition that every request
notifies; it never sleeps-and-polls.

Run as a script it starts everything, prints the URLs as JSON and serves
until interrupted (handy for poking forewarn by hand).
"""

import base64
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

KINDS = ("smtp", "slack", "zendesk", "twilio", "webhook", "push", "chatbot")
HTTP_KINDS = KINDS[1:]

# Where each HTTP kind is mounted; base_urls[kind] is what forewarn's config names.
PATHS = {
    "slack": "/services/T000/B000/forewarn",
    "zendesk": "",
    "twilio": "",
    "webhook": "/forewarn",
    "push": "/send",
    "chatbot": "/context",
}

# The header that carries each kind's idempotency key.
KEY_HEADER = {
    "zendesk": "idempotency-key",
    "push": "idempotency-key",
    "twilio": "i-twilio-idempotency-token",
    "webhook": "webhook-id",
    "chatbot": "webhook-id",
}

TOLERANCE = 5 * 60  # seconds of clock skew a Standard Webhooks receiver accepts


def new_secret():
    """A fresh Standard Webhooks secret: whsec_ + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def sign(secret, msg_id, timestamp, body):
    """The v1 signature of body (bytes) as the Standard Webhooks specification defines it."""
    key = secret[6:] if secret.startswith("whsec_") else secret
    mac = hmac.new(base64.b64decode(key), b"%s.%s." % (msg_id.encode(), str(timestamp).encode()) + body,
                   hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(secret, headers, body, now=None):
    """True when the webhook-* headers carry a valid, fresh v1 signature of body (bytes)."""
    msg_id, ts, sigs = (headers.get("webhook-id"), headers.get("webhook-timestamp"),
                        headers.get("webhook-signature"))
    if not (msg_id and ts and sigs):
        return False
    try:
        ts_i = int(ts)
    except ValueError:
        return False
    if abs((now or time.time()) - ts_i) > TOLERANCE:
        return False
    expected = sign(secret, msg_id, ts_i, body)
    return any(hmac.compare_digest(s, expected) for s in sigs.split(" "))


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # come back up on the same port right after going down

    def handle_error(self, request, client_address):
        # A client that died mid-request (kill -9 tests) is expected, not news.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so "down" really means no more answers.
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):  # quiet: the tests look at the records
        pass

    def _any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        res = self.server.receivers._handle_http(self.server.kind, self, body)
        status, ctype, answer = res[:3]
        extra = res[3] if len(res) > 3 else {}
        if status is None:  # refuse: drop the connection without an answer
            self.close_connection = True
            return
        data = answer if isinstance(answer, bytes) else answer.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def do_HEAD(self):
        """A health probe (forewarn's dispatcher, docs/operations.md): recorded apart from
        deliveries (probes(kind)); 503 while down, 200 with no body when up."""
        status = self.server.receivers._probe(self.server.kind)
        if status is None:
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _HttpReceiver:
    def __init__(self, receivers, kind):
        self.receivers, self.kind, self.port = receivers, kind, 0
        self.server = self.thread = None

    def start(self):
        self.server = _Server(("127.0.0.1", self.port), _Handler)
        self.server.kind, self.server.receivers = self.kind, self.receivers
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       kwargs={"poll_interval": 0.05})
        self.thread.start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()
            self.server = self.thread = None


class _SmtpHandler:
    def __init__(self, receivers):
        self.receivers = receivers

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.receivers._is_down("smtp"):
            self.receivers._note_attempt("smtp", {"refused": True, "rcpt": address})
            return "451 4.3.2 receiver is down, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.receivers._arrive("smtp")
        self.receivers._slow("smtp")
        return self.receivers._mail(envelope)


class Receivers:
    """All receivers; see the module comment.  Use start_all() to make one."""

    def __init__(self):
        self.cond = threading.Condition(threading.RLock())
        self._records = {k: [] for k in KINDS}
        self._attempts = {k: [] for k in KINDS}
        self._dups = {k: 0 for k in KINDS}
        self._probes = {k: [] for k in KINDS}  # HEAD requests: the answer each got
        self._arrivals = {k: 0 for k in KINDS}  # requests that got past "down", answered or not
        self._seen_keys = {k: {} for k in KINDS}  # key -> (status, ctype, answer)
        self._down = {k: False for k in KINDS}
        self._delay = {k: 0.0 for k in KINDS}
        self._redirect = {k: None for k in KINDS}  # (status, Location) answered to every request
        self._stopping = threading.Event()
        self._next_ticket = 1000
        self.webhook_secret = new_secret()
        self.chatbot_secret = new_secret()
        self.zendesk_email, self.zendesk_token = "agent@example.com", "zendesk-token"
        self.twilio_sid, self.twilio_token = "AC0123456789abcdef0123456789abcdef", "twilio-token"
        self.push_token = "push-token"
        self._http = {k: _HttpReceiver(self, k) for k in HTTP_KINDS}
        self._smtp = None
        self.smtp_port = 0

    # ---- life cycle ----

    def start(self):
        for r in self._http.values():
            r.start()
        self.smtp_port = _free_port()
        self._start_smtp()
        return self

    def _start_smtp(self):
        from aiosmtpd.controller import Controller
        self._smtp = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.smtp_port)
        self._smtp.start()

    def stop(self):
        self._stopping.set()
        for r in self._http.values():
            r.stop()
        if self._smtp:
            self._smtp.stop()
            self._smtp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- where things are ----

    @property
    def smtp_url(self):
        return "smtp://127.0.0.1:%d" % self.smtp_port

    @property
    def base_urls(self):
        return {k: "http://127.0.0.1:%d%s" % (r.port, PATHS[k]) for k, r in self._http.items()}

    def connectors(self, **retry):
        """The `connectors:` settings for forewarn, every connector pointed here.

        Keyword arguments go to the retry section (max_attempts=3, backoff_base="50ms",
        backoff_max="1s", timeout="2s")."""
        u = self.base_urls
        c = {
            "email": {"url": self.smtp_url, "from": "alerts@example.com", "from_name": "Example Mobile",
                      "unsubscribe_mailto": "unsubscribe@example.com"},
            "sms": {"base_url": u["twilio"], "account_sid": self.twilio_sid,
                    "auth_token": self.twilio_token, "from": "+15005550006"},
            "slack": {"webhook_url": u["slack"]},
            "zendesk": {"base_url": u["zendesk"], "email": self.zendesk_email,
                        "api_token": self.zendesk_token},
            "webhook": {"url": u["webhook"], "secret": self.webhook_secret},
            "push": {"url": u["push"], "token": self.push_token},
            "chatbot": {"url": u["chatbot"], "secret": self.chatbot_secret},
        }
        if retry:
            c["retry"] = dict(retry)
        return c

    def connectors_yaml(self, only=None, **retry):
        """connectors() as YAML text (JSON is YAML), ready to append to a config file.

        only: an iterable of connector names to keep (the others stay unconfigured)."""
        c = self.connectors(**retry)
        if only is not None:
            c = {k: v for k, v in c.items() if k in set(only) | {"retry"}}
        return "connectors: " + json.dumps(c) + "\n"

    # ---- what arrived ----

    def received(self, kind):
        """Deliveries of kind, first arrivals only (list of dicts, copies)."""
        with self.cond:
            return list(self._records[kind])

    def attempts(self, kind):
        """Every request of kind, including refused ones and duplicates."""
        with self.cond:
            return list(self._attempts[kind])

    def arrived(self, kind):
        """Requests that reached the service (not refused as down), counted on arrival,
        before a slow answer: with set_slow, a rise tells that a request is being held."""
        with self.cond:
            return self._arrivals[kind]

    def duplicates(self, kind):
        """Repeats of an already delivered idempotency key (or Message-ID)."""
        with self.cond:
            return self._dups[kind]

    def summary(self):
        """One line per kind: deliveries, duplicates, attempts (for assertion messages)."""
        with self.cond:
            return "; ".join("%s: %d received, %d duplicates, %d attempts" % (
                k, len(self._records[k]), self._dups[k], len(self._attempts[k])) for k in KINDS)

    def wait_for(self, predicate, timeout=10.0):
        """Wait until predicate() is true (re-checked after every request); False on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def wait_count(self, kind, n, timeout=10.0):
        """Wait until kind has at least n deliveries; False on timeout."""
        return self.wait_for(lambda: len(self._records[kind]) >= n, timeout)

    # ---- faults ----

    def set_down(self, kind, down=True, refuse=False):
        """Take kind down (503, or SMTP 451; refuse=True: stop listening), or bring it back up."""
        with self.cond:
            self._down[kind] = "refuse" if down and refuse else bool(down)
        if kind == "smtp":
            if down and refuse and self._smtp:
                self._smtp.stop()
                self._smtp = None
            elif not (down and refuse) and not self._smtp:
                self._start_smtp()
        else:
            r = self._http[kind]
            if down and refuse and r.server:
                r.stop()
            elif not (down and refuse) and not r.server:
                r.start()

    def set_redirect(self, kind, location, status=307):
        """Answer every request of kind with a redirect to location (None: stop)."""
        with self.cond:
            self._redirect[kind] = (status, location) if location else None

    def set_slow(self, kind, seconds):
        """Delay each answer of kind by seconds (0: answer at once)."""
        with self.cond:
            self._delay[kind] = float(seconds)

    # ---- internals ----

    def _is_down(self, kind):
        with self.cond:
            return self._down[kind]

    def _slow(self, kind):
        with self.cond:
            d = self._delay[kind]
        if d:
            self._stopping.wait(d)  # a simulated slow service; returns early at stop()

    def _probe(self, kind):
        with self.cond:
            down = self._down[kind]
            status = None if down == "refuse" else 503 if down else 200
            self._probes[kind].append(status)
            self.cond.notify_all()
        return status

    def probes(self, kind):
        """The answers of every HEAD (health probe) kind got, in order (None: dropped)."""
        with self.cond:
            return list(self._probes[kind])

    def _arrive(self, kind):
        with self.cond:
            self._arrivals[kind] += 1
            self.cond.notify_all()

    def _note_attempt(self, kind, rec):
        with self.cond:
            self._attempts[kind].append(rec)
            self.cond.notify_all()

    def _mail(self, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        headers = {k.lower(): str(v) for k, v in msg.items()}
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        rec = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "headers": headers,
            "raw_headers": {k.lower(): v for k, v in email.message_from_bytes(raw).items()},
            "subject": headers.get("subject"),
            "message_id": headers.get("message-id"),
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "raw": raw,
            "message": msg,
        }
        with self.cond:
            self._attempts["smtp"].append(rec)
            if rec["message_id"] and rec["message_id"] in self._seen_keys["smtp"]:
                self._dups["smtp"] += 1
            else:
                self._seen_keys["smtp"][rec["message_id"]] = True
                self._records["smtp"].append(rec)
            self.cond.notify_all()
        return "250 Message accepted for delivery"

    def _handle_http(self, kind, req, body):
        """Handle one request: (status, content type, answer), status None to drop it."""
        headers = {k.lower(): v for k, v in req.headers.items()}
        rec = {"kind": kind, "method": req.command, "path": urllib.parse.urlsplit(req.path).path,
               "query": urllib.parse.urlsplit(req.path).query, "headers": headers, "raw": body,
               "body": body.decode("utf-8", "replace"), "json": None, "form": None, "auth": None,
               "key": headers.get(KEY_HEADER.get(kind, ""), None), "verified": None}
        ctype = headers.get("content-type", "")
        if ctype.startswith("application/json"):
            try:
                rec["json"] = json.loads(body)
            except ValueError:
                pass
        elif ctype.startswith("application/x-www-form-urlencoded"):
            rec["form"] = dict(urllib.parse.parse_qsl(rec["body"], keep_blank_values=True))
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                rec["auth"] = (user, pw)
            except ValueError:
                pass
        elif auth.startswith("Bearer "):
            rec["auth"] = ("Bearer", auth[7:])

        down = self._is_down(kind)
        if down:
            rec["status"] = None if down == "refuse" else 503
            self._note_attempt(kind, rec)
            if down == "refuse":
                return None, "", ""
            return 503, "application/json", '{"error":"service unavailable"}'
        with self.cond:
            redirect = self._redirect[kind]
        if redirect:
            rec["status"] = redirect[0]
            self._note_attempt(kind, rec)
            return redirect[0], "text/plain", "moved", {"Location": redirect[1]}
        self._arrive(kind)
        self._slow(kind)

        with self.cond:
            self._attempts[kind].append(rec)
            # Credentials and signatures first, as the real services do: a repeat
            # with bad credentials is refused, not answered from the first time.
            refused = self._check(kind, rec)
            if refused:
                rec["status"] = refused[0]
                self.cond.notify_all()
                return refused
            key = rec["key"]
            if key and key in self._seen_keys[kind]:
                # A repeat: the first answer again; nothing new happens.
                self._dups[kind] += 1
                rec["status"], rec["duplicate"] = self._seen_keys[kind][key][0], True
                self.cond.notify_all()
                return self._seen_keys[kind][key]
            status, rctype, answer = getattr(self, "_answer_" + kind)(rec)
            rec["status"] = status
            if 200 <= status < 300:
                self._records[kind].append(rec)
                if key:
                    self._seen_keys[kind][key] = (status, rctype, answer)
            self.cond.notify_all()
            return status, rctype, answer

    def _check(self, kind, rec):
        """Authentication: None when the request may proceed, else the refusal."""
        if kind == "zendesk" and rec["auth"] != ("%s/token" % self.zendesk_email, self.zendesk_token):
            return 401, "application/json", '{"error":"Couldn\'t authenticate you"}'
        if kind == "twilio" and rec["auth"] != (self.twilio_sid, self.twilio_token):
            return 401, "application/json", '{"code":20003,"message":"Authenticate"}'
        if kind == "push" and rec["auth"] != ("Bearer", self.push_token):
            return 401, "application/json", '{"error":"unauthorized"}'
        if kind == "webhook" or (kind == "chatbot" and "webhook-signature" in rec["headers"]):
            secret = self.webhook_secret if kind == "webhook" else self.chatbot_secret
            rec["verified"] = verify(secret, rec["headers"], rec["raw"])
            if not rec["verified"]:
                return 401, "application/json", '{"error":"bad signature"}'
        return None

    # Each service's answer.  Called with the lock held after _check; rec is the request.

    def _answer_slack(self, rec):
        j = rec["json"]
        if not isinstance(j, dict) or not isinstance(j.get("text"), str):
            return 400, "text/plain", "invalid_payload"
        for b in j.get("blocks", []):
            if b.get("type") == "header" and len(b["text"]["text"]) > 150:
                return 400, "text/plain", "invalid_blocks"
        return 200, "text/plain", "ok"

    def _answer_zendesk(self, rec):
        t = (rec["json"] or {}).get("ticket") if isinstance(rec["json"], dict) else None
        if not isinstance(t, dict) or not isinstance(t.get("comment"), dict):
            return 422, "application/json", '{"error":"RecordInvalid"}'
        if rec["method"] == "POST" and rec["path"] == "/api/v2/tickets.json":
            self._next_ticket += 1
            rec["ticket_id"] = self._next_ticket
            return 201, "application/json", json.dumps(
                {"ticket": {"id": self._next_ticket, "subject": t.get("subject"),
                            "priority": t.get("priority"), "tags": t.get("tags", [])}})
        parts = rec["path"].split("/")
        if rec["method"] == "PUT" and len(parts) == 5 and parts[:4] == ["", "api", "v2", "tickets"] \
                and parts[4].endswith(".json") and parts[4][:-5].isdigit():
            rec["ticket_id"] = int(parts[4][:-5])
            return 200, "application/json", json.dumps({"ticket": {"id": rec["ticket_id"]}})
        return 404, "application/json", '{"error":"InvalidEndpoint"}'

    def _answer_twilio(self, rec):
        sid = self.twilio_sid
        if rec["path"] != "/2010-04-01/Accounts/%s/Messages.json" % sid or rec["method"] != "POST":
            return 404, "application/json", '{"code":20404,"message":"not found"}'
        f = rec["form"] or {}
        if not f.get("To") or not f.get("From") or "Body" not in f:
            return 400, "application/json", '{"code":21604,"message":"A \'To\' phone number is required."}'
        msid = "SM" + hashlib.sha256((rec["key"] or rec["body"]).encode()).hexdigest()[:32]
        rec["sid"] = msid
        return 201, "application/json", json.dumps(
            {"sid": msid, "status": "queued", "to": f["To"], "from": f["From"], "body": f["Body"]})

    def _answer_webhook(self, rec):
        return 200, "application/json", '{"ok":true}'

    def _answer_push(self, rec):
        j = rec["json"]
        if not isinstance(j, dict) or not {"customer", "title", "body", "message_id"} <= set(j):
            return 400, "application/json", '{"error":"missing fields"}'
        return 200, "application/json", '{"ok":true}'

    def _answer_chatbot(self, rec):
        return 200, "application/json", '{"ok":true}'


def start_all():
    """Start every receiver; returns the Receivers (call .stop(), or use it in a with block)."""
    return Receivers().start()


if __name__ == "__main__":
    r = start_all()
    print(json.dumps({"smtp_url": r.smtp_url, "base_urls": r.base_urls,
                      "connectors": r.connectors()}, indent=2))
    sys.stdout.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        r.stop()
