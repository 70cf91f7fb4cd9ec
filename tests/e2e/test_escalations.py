"""Seed 002's automatic escalations (docs/guidance.md, "Escalations"), as
rules in the playbook file, each firing through `replay --cases`: a cancel,
competitor or legal threat; three touches; value at risk; a sentiment drop.
Each fires once per case, raises and re-plays the case as it says, and tells
the lead; a bad rule is refused with its place."""

import os
import tempfile

from fw import ev, replay, replay_raw, D, T, until

C = "esc@example.com"


def _profile(c=C, **extra):
    data = dict(name="Eve Escalate", email=c, timezone="UTC")
    data.update(extra)
    return ev("customer.updated", c, "0", **data)


def _order_stuck(c=C):
    """SIG-006 (MEDIUM): an order not completed 24 hours after it was created."""
    return [ev("order.created", c, "1h", order_id="o-1"),
            ev("payment.completed", c, "1h1m", order_id="o-1", amount=45)]


def _lines(events, *args):
    return replay(events, "--cases", "--messages", *args)


def _case(lines, event):
    return [l for l in lines if l.get("kind") == "case" and l["event"] == event]


def test_a_cancel_threat_raises_the_case_gives_it_retention_and_tells_the_lead():
    events = [_profile()] + _order_stuck() + [
        ev("ticket.created", C, "26h", ticket_id="t-1",
           subject="Still no phone. Sort it out today or I cancel and go to Verizon."),
        ev("ticket.created", C, "27h", ticket_id="t-2", subject="I will cancel, I said."),
    ]
    lines = _lines(events, *until("28h"))
    opened = _case(lines, "opened")
    assert len(opened) == 1 and opened[0]["severity"] == "MEDIUM", opened
    esc = _case(lines, "escalated")
    assert [(e["escalation"], e.get("raised_from"), e["severity"], e["at"]) for e in esc] == [
        ("retention-threat", "MEDIUM", "HIGH", T("26h"))], esc  # once, though he wrote twice
    pb = _case(lines, "playbook_set")
    assert pb[-1]["playbook"] == "retention" and pb[-1]["why"].startswith("escalation "), pb
    told = [l for l in lines if l.get("kind") == "message" and l["subject"]
            and l["subject"].startswith("Escalated: ")]
    assert len(told) == 1 and told[0]["audience"] == "l1" and told[0]["channel"] == "slack", told
    assert told[0]["meta"]["notify"] == "lead", told[0]


def test_three_touches_value_at_risk_and_a_sentiment_drop_each_fire():
    touches = [_profile()] + _order_stuck() + [
        ev("chat.started", C, "%dh" % h, conversation_id="c%d" % h, summary="Any news on my order?")
        for h in (25, 26, 27)]
    esc = _case(_lines(touches, *until("28h")), "escalated")
    assert [e["escalation"] for e in esc] == ["repeat-touches"], esc
    assert esc[0]["at"] == T("27h"), esc

    rich = "big@example.com"
    esc = _case(_lines([_profile(rich, value=8000)] + _order_stuck(rich), *until("26h")), "escalated")
    assert [(e["escalation"], e["at"]) for e in esc] == [("value-at-risk", T("25h"))], esc
    small = "small@example.com"
    assert _case(_lines([_profile(small, value=4000)] + _order_stuck(small), *until("26h")),
                 "escalated") == []

    mood = [_profile()] + _order_stuck() + [
        ev("chat.started", C, "25h", conversation_id="m1", summary="Is there any update on my order?"),
        ev("chat.message", C, "30h", conversation_id="m1", text="OK, I will wait for the update."),
        ev("ticket.comment_added", C, "40h", ticket_id="t-9",
           text="This is terrible. Useless. Nobody has fixed it.")]
    esc = _case(_lines(mood, *until("41h")), "escalated")
    assert [(e["escalation"], e["at"]) for e in esc] == [("sentiment-drop", T("40h"))], esc


def test_a_bad_escalation_is_refused_with_its_place():
    d = tempfile.mkdtemp(prefix="fw-esc-")
    path = os.path.join(d, "pb.yaml")
    with open(path, "w") as f:
        f.write("playbooks:\n"
                "  - {id: p1, name: P, signals: [SIG-001], steps: [{action_type: call, description: Call}]}\n"
                "escalations:\n"
                "  - {id: e1, reason: R, when: 'contacts >= 3', playbook: nowhere}\n"
                "  - {id: e2, reason: R, when: 'contacts >= 3', notify: everyone}\n"
                "  - {id: e3, reason: R, when: 'mood < 0'}\n")
    rc, out, err = replay_raw([_profile()], "--cases", "--playbooks", path)
    assert rc != 0 and out == "", (rc, out)
    assert path + ":4:" in err and "no playbook 'nowhere'" in err, err
    assert path + ":5:" in err and "notify must be lead, assignee or team" in err, err
    assert path + ":6:" in err and "mood" in err, err
