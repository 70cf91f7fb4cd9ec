"""Guardrail edges that mutation testing found unguarded (issue #3).

Each test here was written against a mutant of src/orchestrate/ that the rest
of the suite let survive; the mutant is named in the test's docstring.  They
go through `forewarn replay --messages` (or the API when the rule is only
reachable through configuration) and pin the exact boundary of each rule:
the 24h de-duplication window, the 7-day frequency-cap window, the 7-day
touch count behind the tone, per-root-cause de-duplication, quiet hours and
approval on ladder follow-ups, phone masking, and the internal-detail check.
"""

import os
import tempfile

from fw import ev, replay, D, T, until
from server import Server
from test_messages import chans, messages, profile

PHONE = "+1 415 555 0199"
PHONE_MASKED = "+* *** *** 0199"


def _guard(msg, name):
    return [g["result"] for g in msg["explanation"]["guardrails"] if g["guardrail"] == name]


def _alerts(out, c, channel="email"):
    """(at, status) of the customer's proactive alerts on a channel (ladder follow-ups excluded)."""
    return [(m["at"], m["status"]) for m in messages(out, "customer", channel, c)
            if not m["explanation"]["template"].endswith("followup_no_response.tmpl")]


def test_tone_counts_touches_over_seven_days_only():
    """Kills: tone's touch count window changed from 7 days (1d, 8d)."""
    seen = {}
    for name, fail_at in (("recent", "6d"), ("stale", "7d3m")):
        c = "tone-%s@example.com" % name
        out = replay([profile(c, email=c),
                      ev("chat.started", c, "1m", conversation_id="a", topic="esim"),
                      ev("chat.started", c, "2m", conversation_id="b", topic="esim"),
                      ev("esim.status_changed", c, fail_at, status="FAILED")], "--messages")
        email = messages(out, "customer", "email", c)
        assert len(email) == 1, email
        seen[name] = email[0]["explanation"]["decided_by"]
    # Two chats 6 days before: both count.  7 days and 1 minute later: neither does.
    assert "tone: level 2 (2 contacts in 7 days)" in seen["recent"], seen["recent"]
    assert "tone: level 1 (0 contacts in 7 days)" in seen["stale"], seen["stale"]


def test_dedup_window_is_exactly_24_hours():
    """Kills: `now - at < dedup_window` made `<=`; the window widened to 25h."""
    c = "dedup-edge@example.com"
    out = replay([profile(c, email=c),
                  ev("esim.status_changed", c, "1h", status="FAILED"),
                  ev("esim.status_changed", c, "2h", status="ACTIVE"),
                  ev("esim.status_changed", c, "24h59m", status="FAILED"),   # 23h59m after the message
                  ev("esim.status_changed", c, "24h59m30s", status="ACTIVE"),
                  ev("esim.status_changed", c, "25h", status="FAILED")],     # exactly 24h after it
                 "--messages")
    emails = messages(out, "customer", "email", c)
    assert [(m["at"], m["status"]) for m in emails] == [
        (D("1h"), "scheduled"), (D("24h59m"), "suppressed"), (D("25h"), "scheduled")], emails
    assert emails[1]["reason"].startswith("duplicate:"), emails[1]
    assert _guard(emails[2], "dedup") == ["pass"], emails[2]["explanation"]


def test_dedup_is_per_root_cause():
    """Kills: de-duplication matching any earlier outreach regardless of its root cause."""
    c = "dedup-roots@example.com"
    out = replay([profile(c, email=c),
                  ev("portin.status_changed", c, "10h", status="REJECTED", response="REJECTED"),  # portin
                  ev("esim.status_changed", c, "12h", status="FAILED")],                          # esim_provisioning
                 "--messages")
    emails = messages(out, "customer", "email", c)
    assert [(m["at"], m["status"]) for m in emails] == [(D("10h"), "scheduled"), (D("12h"), "scheduled")], emails
    second = emails[1]
    assert "SIG-002" in second["signals"], second
    assert _guard(second, "dedup") == ["pass"], second["explanation"]
    # A second message within the week goes only because CRITICAL bypasses the cap.
    assert _guard(second, "frequency_cap") == ["bypassed: CRITICAL"], second["explanation"]


def test_frequency_cap_window_is_exactly_seven_days():
    """Kills: the cap's window shortened (3d), made `<=`, or ignored (every past message counts)."""
    c = "cap-edge@example.com"
    events = [profile(c, email=c)]
    for at, done in (("10h", "11h"), ("4d10h", "4d11h"), ("7d9h59m", "7d9h59m30s")):
        events += [ev("portin.status_changed", c, at, status="REJECTED", response="REJECTED"),
                   ev("portin.status_changed", c, done, status="COMPLETED")]
    events.append(ev("portin.status_changed", c, "7d10h", status="REJECTED", response="REJECTED"))
    out = replay(events, "--messages")
    emails = messages(out, "customer", "email", c)
    assert [(m["at"], m["status"]) for m in emails] == [
        (D("10h"), "scheduled"),
        (D("4d10h"), "suppressed"),    # 4 days after the first: capped
        (D("7d9h59m"), "suppressed"),  # one minute short of a week: still capped
        (D("7d10h"), "scheduled"),     # exactly a week after the only message sent
    ], emails
    for m in emails[1:3]:
        assert m["reason"].startswith("frequency_cap: 1 proactive message(s) in the last 7d"), m
    assert _guard(emails[3], "frequency_cap") == ["pass"], emails[3]["explanation"]


def test_opt_out_given_as_one_channel_string():
    """Kills: opt_out as a single string (not a list) being ignored."""
    c = "optout-str@example.com"
    out = replay([profile(c, email=c, opt_out="sms"), ev("esim.status_changed", c, "1h", status="FAILED")],
                 "--messages")
    assert chans(out, c) == [("email", "scheduled"), ("push", "scheduled"), ("sms", "suppressed")], chans(out, c)
    assert messages(out, "customer", "sms", c)[0]["reason"] == "opt_out: the customer refuses sms"


def test_quiet_hours_hold_the_no_response_follow_up():
    """Kills: quiet hours skipped for ladder follow-ups (OUT_LADDER)."""
    c = "ladder-night@example.com"
    # The alert goes at 10:00 UTC; the customer then moves to Los Angeles (PST, UTC-8), so the
    # no-response follow-up due 24h later (10:00 UTC = 02:00 PST) waits until 08:00 PST = 16:00 UTC.
    out = replay([profile(c, email=c),
                  ev("portin.status_changed", c, "10h", status="REJECTED", response="REJECTED"),
                  ev("customer.updated", c, "12h", timezone="America/Los_Angeles")],
                 "--messages", *until("41h"))
    emails = messages(out, "customer", "email", c)
    assert [(m["at"], m["send_at"]) for m in emails] == [(D("10h"), D("10h")), (D("34h"), T("40h"))], emails
    follow = emails[1]
    assert follow["explanation"]["template"].endswith("followup_no_response.tmpl"), follow
    assert follow["status"] == "scheduled", follow
    assert follow["reason"].startswith("quiet_hours: held until " + T("40h")), follow


def test_approval_holds_the_no_response_follow_up():
    """Kills: the approval guardrail skipped for ladder follow-ups."""
    c = "ladder-vip@example.com"
    out = replay([profile(c, email=c, tier="enterprise"),
                  ev("portin.status_changed", c, "10h", status="REJECTED", response="REJECTED")],
                 "--messages", *until("35h"))
    emails = messages(out, "customer", "email", c)
    assert [(m["at"], m["status"]) for m in emails] == [
        (D("10h"), "awaiting_approval"), (D("34h"), "awaiting_approval")], emails
    assert emails[1]["explanation"]["template"].endswith("followup_no_response.tmpl"), emails[1]
    assert _guard(emails[1], "approval") == ["required: customer tier"], emails[1]["explanation"]


def test_approval_by_severity_through_the_api():
    """Kills: outreach.approval_severities ignored."""
    d = tempfile.mkdtemp(prefix="fw-guard-")
    cfg = os.path.join(d, "forewarn.yaml")
    with open(cfg, "w") as f:
        f.write("outreach:\n  approval_severities: [HIGH]\n")
    high, crit = "sev-high@example.com", "sev-crit@example.com"
    with Server("--config", cfg, workdir=d) as s:
        events = []
        for c in (high, crit):
            events.append(ev("customer.updated", c, "2026-01-01T09:00:00Z", name="Pat Lee", email=c, timezone="UTC"))
        events += [ev("portin.status_changed", high, "2026-01-01T10:00:00Z", status="REJECTED", response="REJECTED"),
                   ev("esim.status_changed", crit, "2026-01-01T10:00:00Z", status="FAILED")]
        status, body = s.post_events(events)
        assert status == 200, body
        s.clock("2026-01-01T10:00:05Z")  # the merge window closes: decided
        status, body = s.request("GET", "/v1/messages?audience=customer")
        assert status == 200, body
        by = {}
        for m in body["messages"]:
            by.setdefault(m["customer"], []).append(m)
    assert [(m["channel"], m["status"]) for m in by[high]] == [("email", "awaiting_approval")], by[high]
    assert by[high][0]["reason"] == "approval required: severity", by[high][0]
    # CRITICAL is not listed: its messages do not wait.
    assert by[crit] and all(m["status"] != "awaiting_approval" for m in by[crit]), by[crit]


OTHER = "+1 212 555 0142"
OTHER_MASKED = "+* *** *** 0142"


def test_phone_numbers_in_customer_text_are_masked():
    """Kills: mask_phone keeping every digit; mask_numbers not applied to the rendered text.
    The customer's own number is theirs: a message to them shows it as given (issue 17)."""
    c = "mask@example.com"
    out = replay([profile(c, email=c, phone=PHONE),
                  ev("portin.status_changed", c, "10h", status="REJECTED", response="REJECTED")], "--messages")
    body = messages(out, "customer", "email", c)[0]["body"]
    assert "move your number " + PHONE in body and PHONE_MASKED not in body, body
    # A number that reaches the text through event data (not a masked field) is masked too.
    k = "mask-followup@example.com"
    out = replay([profile(k, email=k, phone=PHONE),
                  ev("ticket.created", k, "1h", ticket_id="TF-7", subject="Line dead"),
                  ev("ticket.resolved", k, "2h", ticket_id="TF-7", severity="low",
                     resolution="We called %s and reset the line; you are on %s" % (OTHER, PHONE))],
                 "--messages")
    follow = messages(out, "customer", "email", k)
    assert len(follow) == 1, follow
    body = follow[0]["body"]
    assert "We called " + OTHER_MASKED + " and reset the line; you are on " + PHONE in body, body
    assert "212" not in body, body


def _with_template(text):
    """A template directory overriding customer/email/SIG-004.tmpl with text."""
    d = tempfile.mkdtemp(prefix="fw-tmpl-")
    os.makedirs(os.path.join(d, "customer", "email"))
    with open(os.path.join(d, "customer", "email", "SIG-004.tmpl"), "w") as f:
        f.write(text)
    return d


def test_internal_signal_ids_never_reach_customer_text():
    """Kills: the internal-detail check removed, or not applied to the subject.

    Template compilation already refuses {{signal.id}} in customer templates, so a
    literal id in an overriding template stands in for a leak the compiler cannot see."""
    c = "leak@example.com"
    events = [profile(c, email=c),
              ev("portin.status_changed", c, "10h", status="REJECTED", response="REJECTED")]
    for where, text in (("body", "subject: Your number transfer\n---\nHi, about SIG-004.\n"),
                        ("subject", "subject: Your number transfer (SIG-004)\n---\nHi, about your number.\n")):
        out = replay(events, "--messages", "--templates", _with_template(text))
        email = messages(out, "customer", "email", c)
        assert len(email) == 1, (where, email)
        assert email[0]["status"] == "suppressed", (where, email[0])
        assert email[0]["reason"] == "internal_detail: the text names an internal signal id", (where, email[0])
        # Internal audiences may name the signal.
        assert messages(out, "l1", "ticket", c)[0]["status"] == "scheduled", where


# ---- found by the same audit: product bugs, fixed ----

_LEAKY = "subject: Your number transfer\n---\nHi, about SIG-004.\n"


def _leak_then_escalation(c):
    return [profile(c, email=c),
            ev("portin.status_changed", c, "10h", status="REJECTED", response="REJECTED"),
            ev("chat.escalated", c, "1d", conversation_id="x", topic="bill")]


def _escalation_email(msgs, c):
    return [m for m in msgs if m["audience"] == "customer" and m["channel"] == "email"
            and "SIG-007" in m["signals"]]


def test_a_message_suppressed_when_rendered_is_not_an_outreach():
    """Bug: the frequency cap counted a message that the internal-detail check held back."""
    c = "notsent@example.com"
    out = replay(_leak_then_escalation(c), "--messages", "--templates", _with_template(_LEAKY),
                 *until("2d"))
    first = [m for m in messages(out, "customer", "email", c) if m["signals"] == ["SIG-004"]]
    assert first and first[0]["status"] == "suppressed", first
    second = _escalation_email(messages(out), c)
    assert len(second) == 1 and second[0]["status"] == "scheduled", second
    assert _guard(second[0], "frequency_cap") == ["pass"], second[0]


def test_a_suppressed_message_still_does_not_count_after_kill9():
    """Recovery replays decisions quietly (no rendering): it must count the outreach as the
    stored record says, not as decided before rendering."""
    c = "notsent-restart@example.com"
    d = tempfile.mkdtemp(prefix="fw-guard-")
    cfg = os.path.join(d, "forewarn.yaml")
    with open(cfg, "w") as f:
        f.write("templates: %s\n" % _with_template(_LEAKY))
    s = Server("--config", cfg, workdir=d)
    s.start()
    try:
        events = _leak_then_escalation(c)
        for e in events:  # the fw helpers give offsets; serve wants RFC 3339 times
            e["time"] = T(e["time"])
        assert s.post_events(events[:2])[0] == 200
        s.kill9()
        s.start()
        assert s.post_events(events[2:])[0] == 200
        s.clock(T("2d"))
        msgs = s.request("GET", "/v1/messages?customer=" + c)[1]["messages"]
        second = _escalation_email(msgs, c)
        assert len(second) == 1 and second[0]["status"] != "suppressed", msgs
        assert _guard(second[0], "frequency_cap") == ["pass"], second[0]
    finally:
        s.stop()


def test_masking_leaves_ids_amounts_and_dates_alone():
    """Bug: every run of 7+ digits was masked, so ticket and order numbers and dates were too."""
    c = "ids@example.com"
    out = replay([profile(c, email=c, phone=PHONE),
                  ev("ticket.created", c, "1h", ticket_id="12345678", subject="Refund"),
                  ev("ticket.resolved", c, "2h", ticket_id="12345678", severity="low",
                     resolution="Refunded order 98765432 on 2026-03-02 10:00; questions: 415-555-0123")],
                 "--messages")
    follow = messages(out, "customer", "email", c)
    assert len(follow) == 1, follow
    body, subject = follow[0]["body"], follow[0]["subject"]
    assert "#12345678" in subject, subject
    assert "Refunded order 98765432 on 2026-03-02 10:00; questions: ***-***-0123" in body, body


def test_masking_covers_the_subject():
    """Bug: the subject (and a push title) went out unmasked."""
    c = "subj@example.com"
    out = replay([profile(c, email=c, phone=PHONE),
                  ev("ticket.created", c, "1h", ticket_id=OTHER, subject="Line dead"),
                  ev("ticket.resolved", c, "2h", ticket_id=OTHER, severity="low", resolution="Reset")],
                 "--messages")
    follow = messages(out, "customer", "email", c)
    assert len(follow) == 1, follow
    subject = follow[0]["subject"]
    assert "0142" in subject and "212" not in subject and "555" not in subject, subject
