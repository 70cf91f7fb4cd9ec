"""Issue 17, "communications second pass", through `forewarn replay --messages`:
the merge window, the channel matrix as configuration, ladder follow-ups
re-decided at send time, outage-aware outreach, and customer text in which
every word is true (brandless, times in the customer's zone, no claim of a
message that never went, no promise without a step behind it).

Each test names the rule it pins; each fails if that rule is removed."""

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile

from fw import ev, replay, D, T, ROOT, BASE, dur, until
from test_messages import messages, profile

TMP = tempfile.mkdtemp(prefix="fw-pass2-")


def _file(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def config(text, name="forewarn.yaml"):
    """A --config file with text; returns the two arguments."""
    return ["--config", _file(name, text)]


def customer_msgs(lines, c=None):
    return [m for m in messages(lines, "customer") if c is None or m["customer"] == c]


def tmpl(m):
    return m["explanation"].get("template") or ""


def is_followup(m):
    return tmpl(m).endswith("followup_no_response.tmpl") or any(
        w in ("followup_no_response", "sms_no_response") for w in m["explanation"]["decided_by"])


def decisions(lines, c):
    """The customer's customer-audience decisions as (at, sorted signals), in order, once each."""
    seen = []
    for m in customer_msgs(lines, c):
        key = (m["at"], tuple(sorted(m["signals"])))
        if key not in seen:
            seen.append(key)
    return seen


def chats(c, *times):
    return [ev("chat.started", c, t, conversation_id="cv-%s-%d" % (t, i), topic="esim")
            for i, t in enumerate(times)]


# ---------------------------------------------------------------- 1. merge window

def _third_contact_and_failure(c, contact_at, fail_at, fail_first=False):
    """Two chats earlier; at contact_at the third (SIG-008, HIGH), at fail_at the eSIM fails (SIG-002)."""
    third = ev("chat.started", c, contact_at, conversation_id="cv-3", topic="esim")
    fail = ev("esim.status_changed", c, fail_at, status="FAILED")
    tail = [fail, third] if fail_first else [third, fail]
    return [profile(c, email=c)] + chats(c, "1h", "2h") + tail


def test_two_signals_at_one_instant_make_one_message_per_channel():
    c = "same-instant@example.com"
    out = replay(_third_contact_and_failure(c, "10h", "10h"), "--messages")
    cm = customer_msgs(out, c)
    # CRITICAL without a ticket: email + sms + push, ONE of each, each naming both problems.
    assert sorted(m["channel"] for m in cm) == ["email", "push", "sms"], [(m["channel"], m["signals"]) for m in cm]
    for m in cm:
        assert sorted(m["signals"]) == ["SIG-002", "SIG-008"], m
        assert m["at"] == D("10h") and m["status"] == "scheduled", m
        assert any(w.startswith("merge: 2 problems") for w in m["explanation"]["decided_by"]), m["explanation"]
    email = messages(out, "customer", "email", c)[0]
    assert tmpl(email).endswith("customer/email/merged.tmpl"), email["explanation"]
    assert "Your eSIM activation failed on our side" in email["body"], email["body"]
    assert "You've had to contact us several times" in email["body"], email["body"]
    # One decision: one L1 ticket, for both.
    l1 = messages(out, "l1", "ticket", c)
    assert len(l1) == 1 and sorted(l1[0]["signals"]) == ["SIG-002", "SIG-008"], l1


def test_signals_seconds_apart_inside_the_window_make_one_decision():
    c = "three-s@example.com"
    out = replay(_third_contact_and_failure(c, "10h", "10h3s"), "--messages")
    # The window opened at the first firing (10h) and closes 5s later; the failure at +3s joins it.
    assert decisions(out, c) == [(D("10h"), ("SIG-002", "SIG-008"))], decisions(out, c)
    assert sorted(m["channel"] for m in customer_msgs(out, c)) == ["email", "push", "sms"]
    assert len(messages(out, "l1", "ticket", c)) == 1


def test_signals_outside_the_window_make_two_decisions():
    for gap in ("10h6s", "10h10m"):
        c = "gap-%s@example.com" % gap
        out = replay(_third_contact_and_failure(c, "10h", gap), "--messages")
        got = decisions(out, c)
        # First SIG-008 alone at 10h + 5s; then the failure's own window (it is merged with the
        # problem already firing, but it is a second decision).
        assert got == [(D("10h"), ("SIG-008",)), (D(gap), ("SIG-002", "SIG-008"))], (gap, got)
        first = [m for m in customer_msgs(out, c) if m["at"] == D("10h")]
        assert [m["channel"] for m in first] == ["email"], (gap, first)  # HIGH: email only
        assert len(messages(out, "l1", "ticket", c)) == 2, gap


def test_merge_window_zero_decides_each_event_on_its_own():
    c = "zero@example.com"
    events = _third_contact_and_failure(c, "10h", "10h", fail_first=True)
    out = replay(events, "--messages", *config("outreach:\n  merge_window: 0\n", "mw0.yaml"))
    emails = messages(out, "customer", "email", c)
    # Two decisions at the same instant, one per event, and none waits for a window.
    assert [(m["at"], sorted(m["signals"])) for m in emails] == [
        (T("10h"), ["SIG-002"]), (T("10h"), ["SIG-002", "SIG-008"])], emails
    assert not any(w.startswith("merge:") for w in emails[0]["explanation"]["decided_by"]), emails[0]
    assert len(messages(out, "l1", "ticket", c)) == 2
    # The same input with the default window: one decision.
    out = replay(events, "--messages")
    assert decisions(out, c) == [(D("10h"), ("SIG-002", "SIG-008"))], decisions(out, c)


def test_merge_window_per_severity_closes_at_the_earliest_close():
    cfg = config("outreach:\n  merge_window: {CRITICAL: 1s}\n", "mwcrit.yaml")
    c = "crit1s@example.com"
    out = replay(_third_contact_and_failure(c, "10h", "10h"), "--messages", *cfg)
    # CRITICAL's 1s closes the window before HIGH's default 5s: decided at 10h + 1s.
    assert decisions(out, c) == [(T("10h1s"), ("SIG-002", "SIG-008"))], decisions(out, c)
    # A HIGH firing 3s after a CRITICAL one missed the (1s) window: a decision of its own,
    # 5s (HIGH's default) after it fired.
    k = "crit1s-late@example.com"
    out = replay(_third_contact_and_failure(k, "10h3s", "10h", fail_first=True), "--messages", *cfg)
    assert decisions(out, k) == [(T("10h1s"), ("SIG-002",)), (D("10h3s"), ("SIG-002", "SIG-008"))], \
        decisions(out, k)


# ---------------------------------------------------------------- 2. re-decided at send time

def _portin(c, at="10h"):
    return ev("portin.status_changed", c, at, status="REJECTED", response="REJECTED", carrier="Verizon")


def _pack_without_ticket_contacts():
    """The telecom pack with tickets taken out of the `contact` class: a ticket then opens
    without cancelling the "no response" step (as a ticket an agent opens would)."""
    src = open(os.path.join(ROOT, "rules", "telecom.yaml")).read()
    line = "contact: [ticket.created, chat.started]"
    assert line in src, "the telecom pack's contact class changed"
    return _file("pack-agent-tickets.yaml", src.replace(line, "contact: [chat.started]"))


def test_ladder_follow_up_after_a_ticket_opened_replies_on_the_ticket():
    c = "redecide@example.com"
    events = [profile(c, email=c), _portin(c, "10h"),
              ev("ticket.created", c, "20h", ticket_id="Z-5", subject="my number")]
    # Shipped pack: the customer opening a ticket is a response; the follow-up is cancelled.
    out = replay(events, "--messages", *until("40h"))
    assert [m for m in customer_msgs(out, c) if is_followup(m)] == [], customer_msgs(out, c)
    # With a ticket that is not the customer's contact, the step fires 24h after our email and
    # is decided again: the matrix for HIGH with an open ticket says ticket_reply, not email.
    out = replay(events, "--messages", "--rules", _pack_without_ticket_contacts(), *until("40h"))
    cm = customer_msgs(out, c)
    assert [(m["channel"], m["at"], m["status"]) for m in cm] == [
        ("email", D("10h"), "scheduled"), ("ticket_reply", D("34h"), "scheduled")], cm
    follow = cm[1]
    assert follow["recipient"] == "Z-5", follow
    why = follow["explanation"]["decided_by"]
    assert any(w.startswith("re-decided at send time: ticket Z-5 opened since the first message: "
                            "replying on the ticket instead of email") for w in why), why
    # The frequency cap does not count the message the follow-up follows.
    assert {"guardrail": "frequency_cap", "result": "pass"} in follow["explanation"]["guardrails"], follow


def test_ladder_follow_up_after_an_opt_out_is_suppressed():
    c = "redecide-optout@example.com"
    out = replay([profile(c, email=c), _portin(c, "10h"),
                  ev("customer.updated", c, "20h", opt_out=["email"])], "--messages", *until("40h"))
    cm = customer_msgs(out, c)
    assert [(m["channel"], m["at"], m["status"]) for m in cm] == [
        ("email", D("10h"), "scheduled"), ("email", D("34h"), "suppressed")], cm
    assert is_followup(cm[1]), cm[1]
    assert cm[1]["reason"] == "opt_out: the customer refuses email", cm[1]


def _followups(out, c):
    return [(m["channel"], m["at"]) for m in customer_msgs(out, c) if is_followup(m)]


def test_no_follow_up_for_a_message_the_cap_held_back():
    c = "capped-nofollow@example.com"
    events = [profile(c, email=c), _portin(c, "10h"),
              ev("portin.status_changed", c, "11h", status="COMPLETED"),  # ends SIG-004 and its steps
              ev("chat.escalated", c, "1d", conversation_id="x", topic="bill")]  # SIG-007 at 1d2h
    out = replay(events, "--messages", *until("4d"))
    sig7 = [m for m in customer_msgs(out, c) if m["signals"] == ["SIG-007"]]
    assert [(m["at"], m["status"]) for m in sig7] == [(D("1d2h"), "suppressed")], sig7
    assert sig7[0]["reason"].startswith("frequency_cap:"), sig7[0]
    assert _followups(out, c) == [], customer_msgs(out, c)
    # Control: when the SIG-007 email goes, its follow-up comes 24h later.
    out = replay(events, "--messages", *until("4d"), *config("outreach:\n  frequency_cap: 5\n", "cap5.yaml"))
    assert _followups(out, c) == [("email", D("2d2h"))], customer_msgs(out, c)


def test_no_follow_up_for_a_message_dedup_held_back():
    c = "dedup-nofollow@example.com"
    events = [profile(c, email=c), _portin(c, "10h"),
              ev("portin.status_changed", c, "11h", status="COMPLETED"),
              _portin(c, "12h")]  # the same root cause again, 2h later
    out = replay(events, "--messages", *until("3d"))
    first = [m for m in customer_msgs(out, c) if not is_followup(m)]
    assert [(m["at"], m["status"]) for m in first] == [(D("10h"), "scheduled"), (D("12h"), "suppressed")], first
    assert first[1]["reason"].startswith("duplicate:"), first[1]
    assert _followups(out, c) == [], customer_msgs(out, c)
    # Control: a 1h de-duplication window (and a looser cap) lets the second go, and it is followed up.
    out = replay(events, "--messages", *until("3d"),
                 *config("outreach:\n  dedup_window: 1h\n  frequency_cap: 5\n", "dedup1h.yaml"))
    assert _followups(out, c) == [("email", D("36h"))], customer_msgs(out, c)
