"""Message decisions through `forewarn replay --messages`: the channel
matrix, tone, merging, de-duplication, guardrails, the escalation ladder and
post-ticket follow-ups.  Each test fails if the rule it names is removed."""

from fw import ev, replay, D, T, until


def messages(lines, audience=None, channel=None, customer=None, status=None):
    return [
        m for m in lines
        if m.get("kind") == "message"
        and (audience is None or m["audience"] == audience)
        and (channel is None or m["channel"] == channel)
        and (customer is None or m["customer"] == customer)
        and (status is None or m["status"] == status)
    ]


def chans(lines, customer, audience="customer"):
    return sorted((m["channel"], m["status"]) for m in messages(lines, audience, customer=customer))


def profile(c, t="0", **extra):
    data = dict(name="Jodi Example", email=c, phone="+1 415 555 0199", zip="94105", timezone="UTC",
                push_token="device-" + c)
    data.update(extra)
    return ev("customer.updated", c, t, **data)


def test_critical_without_ticket_goes_to_email_sms_push_and_internal_audiences():
    c = "jodi@example.com"
    out = replay([profile(c), ev("esim.status_changed", c, "10h", order_id="o1", status="FAILED", individual_id="ind-7")],
                 "--messages")
    assert chans(out, c) == [("email", "scheduled"), ("push", "scheduled"), ("sms", "scheduled")], chans(out, c)
    email = messages(out, "customer", "email", c)[0]
    assert email["at"] == D("10h") and email["send_at"] == D("10h"), email
    assert email["signals"] == ["SIG-002"]
    assert "SIG-" not in email["body"] and "Jodi" in email["body"], email["body"]
    assert "0199" in messages(out, "customer", "sms", c)[0]["recipient"]
    ticket = messages(out, "l1", "ticket", c)
    assert len(ticket) == 1, ticket
    assert ticket[0]["subject"] == "[PROACTIVE] eSIM provisioning FAILED \u2014 Jodi Example (jodi@example.com)", ticket[0]["subject"]
    assert ticket[0]["meta"]["priority"] == "urgent"
    assert ticket[0]["meta"]["tags"] == ["proactive_alert", "signal_sig-002", "severity_critical"], ticket[0]["meta"]
    assert ticket[0]["meta"]["group"] == "eSIM specialists"
    assert "ind-7" in ticket[0]["body"], ticket[0]["body"]
    assert len(messages(out, "l2", "slack", c)) == 1
    assert len(messages(out, "chatbot", "chatbot", c)) == 1


def test_critical_with_open_ticket_replies_on_the_ticket_and_texts():
    c = "t@example.com"
    out = replay([profile(c, email=c), ev("ticket.created", c, "1h", ticket_id="Z-1", subject="help"),
                  ev("esim.status_changed", c, "2h", status="ERROR")], "--messages")
    assert chans(out, c) == [("sms", "scheduled"), ("ticket_reply", "scheduled")], chans(out, c)
    reply = messages(out, "customer", "ticket_reply", c)[0]
    assert reply["recipient"] == "Z-1" and reply["meta"]["ticket_id"] == "Z-1", reply


def test_high_and_medium_follow_the_matrix():
    a, b, m1, m2 = "a@example.com", "b@example.com", "m1@example.com", "m2@example.com"
    events = [profile(x, email=x) for x in (a, b, m1, m2)]
    events += [ev("ticket.created", b, "1h", ticket_id="Z-2", subject="port"),
               ev("ticket.created", m2, "1h", ticket_id="Z-3", subject="order")]
    for x in (a, b):
        events.append(ev("portin.status_changed", x, "2h", status="REJECTED", response="REJECTED: PIN", carrier="Verizon"))
    for x in (m1, m2):
        events.append(ev("order.created", x, "2h", order_id="o-" + x[:2]))
    out = replay(events, "--messages", *until("5h"))
    assert chans(out, a) == [("email", "scheduled")], chans(out, a)          # HIGH, no ticket
    assert chans(out, b) == [("ticket_reply", "scheduled")], chans(out, b)   # HIGH, open ticket
    assert chans(out, m1) == [("email", "scheduled")], chans(out, m1)        # MEDIUM (SIG-003), no ticket: soft touch
    assert chans(out, m2) == [], chans(out, m2)                             # MEDIUM with ticket: agent follows up
    note = messages(out, "l1", "internal_note", m2)
    assert len(note) == 1 and note[0]["recipient"] == "Z-3", note
    why = messages(out, "customer", "email", a)[0]["explanation"]["decided_by"]
    assert any(w.startswith("channel_matrix: HIGH without an open ticket -> email") for w in why), why


def test_tone_follows_the_touch_count():
    levels = {}
    bodies = {}
    for touches in (0, 1, 2, 3, 4):
        c = "tone%d@example.com" % touches
        events = [profile(c, email=c)]
        for i in range(touches):
            events.append(ev("chat.started", c, "%dm" % (i + 1), conversation_id="cv%d" % i, topic="esim"))
        events.append(ev("esim.status_changed", c, "1h", status="FAILED"))
        out = replay(events, "--messages")
        email = [m for m in messages(out, "customer", "email", c) if "SIG-002" in m["signals"]][0]
        why = " ".join(email["explanation"]["decided_by"])
        levels[touches] = why
        bodies[touches] = email["body"]
    assert "tone: level 1 (0 contacts" in levels[0], levels[0]
    assert "tone: level 1 (1 contacts" in levels[1], levels[1]
    assert "tone: level 2 (2 contacts" in levels[2], levels[2]
    assert "tone: level 3 (3 contacts" in levels[3], levels[3]
    assert "tone: level 4 (4 contacts" in levels[4], levels[4]
    assert bodies[1] != bodies[2] != bodies[3] != bodies[4], bodies


def test_signals_firing_together_make_one_message():
    c = "merge@example.com"
    # SIG-008 fires on the third contact; then the eSIM fails: ONE message addresses both.
    events = [profile(c, email=c)]
    for i in range(3):
        events.append(ev("chat.started", c, "%dh" % (i + 1), conversation_id="c%d" % i, topic="esim"))
    events.append(ev("esim.status_changed", c, "5h", status="FAILED"))
    out = replay(events, "--messages")
    later = [m for m in messages(out, "customer", "email", c) if m["at"] == D("5h")]
    assert len(later) == 1, later
    assert later[0]["signals"] == ["SIG-002", "SIG-008"], later[0]
    assert any(w.startswith("merge: 2 problems") for w in later[0]["explanation"]["decided_by"])
    assert later[0]["explanation"]["template"].endswith("customer/email/merged.tmpl"), later[0]["explanation"]


def test_same_root_cause_is_not_messaged_twice_within_24h():
    c = "dup@example.com"
    events = [profile(c, email=c),
              ev("esim.status_changed", c, "1h", status="FAILED"),
              ev("esim.status_changed", c, "2h", status="ACTIVE"),
              ev("esim.status_changed", c, "3h", status="FAILED"),    # same root cause, 2h later
              ev("esim.status_changed", c, "4h", status="ACTIVE"),
              ev("esim.status_changed", c, "26h", status="FAILED")]   # 25h after the first message
    out = replay(events, "--messages")
    emails = messages(out, "customer", "email", c)
    assert [(m["at"], m["status"]) for m in emails] == [
        (D("1h"), "scheduled"), (D("3h"), "suppressed"), (D("26h"), "scheduled")], emails
    assert emails[1]["reason"].startswith("duplicate:"), emails[1]
    # Internal alerts are not de-duplicated: the L1 ticket is raised each time.
    assert len(messages(out, "l1", "ticket", c)) == 3


def test_opt_out_holds_back_that_channel_only():
    c = "optout@example.com"
    out = replay([profile(c, email=c, opt_out=["sms"]), ev("esim.status_changed", c, "1h", status="FAILED")],
                 "--messages")
    assert chans(out, c) == [("email", "scheduled"), ("push", "scheduled"), ("sms", "suppressed")], chans(out, c)
    sms = messages(out, "customer", "sms", c)[0]
    assert sms["reason"] == "opt_out: the customer refuses sms", sms


def test_frequency_cap_one_proactive_message_a_week_critical_bypasses():
    c = "cap@example.com"
    events = [profile(c, email=c),
              ev("portin.status_changed", c, "1h", status="REJECTED", response="REJECTED"),  # HIGH: email
              ev("chat.escalated", c, "2d", conversation_id="x", topic="bill"),              # SIG-007 at 2d2h: HIGH
              ev("esim.status_changed", c, "3d", status="FAILED")]                           # CRITICAL
    out = replay(events, "--messages", *until("4d"))
    emails = [m for m in messages(out, "customer", "email", c)
              if not m["explanation"]["template"].endswith("followup_no_response.tmpl")]
    by_sig = {m["signals"][0]: m for m in emails}
    assert by_sig["SIG-004"]["status"] == "scheduled", emails
    assert by_sig["SIG-007"]["status"] == "suppressed", emails
    assert by_sig["SIG-007"]["reason"].startswith("frequency_cap:"), by_sig["SIG-007"]
    assert by_sig["SIG-002"]["status"] == "scheduled", emails
    guards = by_sig["SIG-002"]["explanation"]["guardrails"]
    assert {"guardrail": "frequency_cap", "result": "bypassed: CRITICAL"} in guards, guards


def test_quiet_hours_hold_until_the_window_ends_in_the_customer_zone():
    c, k = "night@example.com", "nightcrit@example.com"
    # 08:00Z on BASE (Monday 2 March 2026) is 03:00 in New York (EST, UTC-5).
    events = [profile(c, email=c, timezone="America/New_York"), profile(k, email=k, timezone="America/New_York"),
              ev("portin.status_changed", c, "8h", status="REJECTED", response="REJECTED"),
              ev("esim.status_changed", k, "8h", status="FAILED")]
    out = replay(events, "--messages")
    held = messages(out, "customer", "email", c)[0]
    assert held["status"] == "scheduled" and held["send_at"] == T("13h"), held  # 08:00 EST
    assert held["reason"].startswith("quiet_hours: held until " + T("13h")), held
    crit = messages(out, "customer", "email", k)[0]
    assert crit["send_at"] == D("8h"), crit
    # A customer's own quiet hours override the default.
    d = "own@example.com"
    out = replay([profile(d, email=d, quiet_hours={"start": "06:00", "end": "09:00"}),
                  ev("portin.status_changed", d, "7h", status="REJECTED", response="REJECTED")], "--messages")
    assert messages(out, "customer", "email", d)[0]["send_at"] == T("9h")


def test_enterprise_customers_wait_for_approval():
    c = "big@example.com"
    out = replay([profile(c, email=c, tier="enterprise"), ev("portin.status_changed", c, "10h", status="REJECTED", response="x REJECTED")],
                 "--messages")
    email = messages(out, "customer", "email", c)[0]
    assert email["status"] == "awaiting_approval", email
    assert "approval" in email["reason"], email
    # Internal alerts do not wait.
    assert messages(out, "l1", "ticket", c)[0]["status"] == "scheduled"


def test_contact_after_outreach_says_we_already_reached_out():
    c = "reach@example.com"
    out = replay([profile(c, email=c), ev("esim.status_changed", c, "1h", status="FAILED"),
                  ev("ticket.created", c, "3h", ticket_id="Z-9", subject="my esim")], "--messages")
    notes = messages(out, "l1", "internal_note", c)
    assert len(notes) == 1 and notes[0]["recipient"] == "Z-9", notes
    assert "already" in notes[0]["body"].lower() or "reached out" in notes[0]["body"].lower(), notes[0]["body"]


def test_ladder_high_follow_up_after_24h_without_response_and_l2_after_4h():
    c = "ladder@example.com"
    out = replay([profile(c, email=c), ev("portin.status_changed", c, "1h", status="REJECTED", response="REJECTED")],
                 "--messages", *until("60h"))
    l2 = messages(out, "l2", "slack", c)
    assert [m["at"] for m in l2] == [T("5h"), T("49h")], l2  # unresolved 4h, persisting 48h
    follow = [m for m in messages(out, "customer", "email", c) if m["at"] == D("25h")]  # 24h after our message
    assert len(follow) == 1 and follow[0]["explanation"]["template"].endswith("followup_no_response.tmpl"), follow


def test_ladder_steps_cancelled_by_reply_and_by_resolution():
    c = "reply@example.com"
    msgs = replay([profile(c, email=c), ev("portin.status_changed", c, "1h", status="REJECTED", response="REJECTED")],
                  "--messages")
    first = messages(msgs, "customer", "email", c)[0]
    out = replay([profile(c, email=c), ev("portin.status_changed", c, "1h", status="REJECTED", response="REJECTED"),
                  ev("message.replied", c, "3h", message_id=first["id"])], "--messages", *until("30h"))
    assert [m for m in messages(out, "customer", "email", c) if m["at"] == D("25h")] == []
    assert [m["at"] for m in messages(out, "l2", "slack", c)] == [T("5h")]  # unresolved still escalates
    # Resolution cancels every step: CRITICAL fixed within 2h pages nobody.
    k = "fixed@example.com"
    out = replay([profile(k, email=k), ev("esim.status_changed", k, "1h", status="FAILED"),
                  ev("esim.status_changed", k, "2h", status="ACTIVE")], "--messages", *until("10h"))
    assert messages(out, "engineering", "slack", k) == []
    assert [m for m in messages(out, "customer", "sms", k) if m["at"] != D("1h")] == []
    out = replay([profile(k, email=k), ev("esim.status_changed", k, "1h", status="FAILED")], "--messages", *until("10h"))
    assert [m["at"] for m in messages(out, "engineering", "slack", k)] == [T("3h")]
    assert [m["at"] for m in messages(out, "customer", "sms", k)] == [D("1h"), D("5h")]  # 4h after our SMS


def test_post_ticket_follow_up_level_by_severity_waits_for_approval():
    major, minor = "major@example.com", "minor@example.com"
    out = replay([profile(major, email=major), profile(minor, email=minor),
                  ev("ticket.created", major, "1h", ticket_id="TF-1", subject="API sync failures"),
                  ev("ticket.resolved", major, "4d", ticket_id="TF-1", severity="high", resolution="Rate limits raised"),
                  ev("ticket.created", minor, "1h", ticket_id="TF-2", subject="Invoice copy"),
                  ev("ticket.resolved", minor, "2h", ticket_id="TF-2", severity="low", resolution="Sent the invoice")],
                 "--messages", *until("8d"))
    m = messages(out, "customer", "email", major)
    assert len(m) == 1 and m[0]["explanation"]["template"].endswith("followup_relationship_repair.tmpl"), m
    assert m[0]["status"] == "awaiting_approval", m[0]
    assert "TF-1" in m[0]["body"] and "Rate limits raised" in m[0]["body"], m[0]["body"]
    n = messages(out, "customer", "email", minor)
    assert len(n) == 1 and n[0]["explanation"]["template"].endswith("followup_acknowledgment.tmpl"), n


def test_incident_raises_one_systemic_alert():
    events = []
    for i in range(4):
        c = "inc%d@example.com" % i
        events += [profile(c, email=c, carrier="Verizon"), ev("esim.status_changed", c, "%dm" % (10 + i), status="FAILED")]
    out = replay(events, "--messages")
    alerts = messages(out, "engineering", "slack")
    assert len(alerts) == 1, alerts
    assert alerts[0]["customer"] is None and "inc0@example.com" in alerts[0]["body"], alerts[0]


def test_messages_are_deterministic():
    c = "det@example.com"
    events = [profile(c, email=c), ev("esim.status_changed", c, "1h", status="FAILED"),
              ev("portin.status_changed", c, "2h", status="REJECTED", response="REJECTED")]
    a = replay(events, "--messages", *until("3d"))
    b = replay(events, "--messages", *until("3d"))
    assert a == b and messages(a), a


def test_outage_decides_for_the_customers_it_hits_at_its_time():
    """SIG-010 fires from a global event; its decision is made then, not at the
    customer's next event (regression: it waited for one)."""
    c = "ann@example.com"
    lines = replay([profile(c, "0", zip="94107"),
                    ev("ticket.created", c, "10m", ticket_id="T1", subject="no signal"),
                    ev("outage.started", None, "1h", outage_id="X", zips=["94107"])],
                   "--messages", *until("2h"))
    l1 = [m for m in messages(lines, "l1", customer=c) if "SIG-010" in m["signals"]]
    assert l1, lines
    assert l1[0]["at"] == D("1h"), l1[0]
