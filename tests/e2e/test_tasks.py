"""Follow-up tasks after proactive outreach (docs/cases.md, "Follow-up tasks").

Replay: a task per outreach that goes out, due exactly +3d (or as
configured), closed by the customer's reply, by a contact, by the detection
resolving, reminded when due, none for a message held back.  Serve: the
task API with roles and audit, the reminder on the virtual clock, a
restart in between, and bad input refused with nothing changed.
"""

import json
import os
import sqlite3
import tempfile

import fw
from fw import T
from server import Server

A = "ana@example.com"


def _port_rejected(who=A, email=True, at="10h"):
    data = {"name": "Ana"}
    if email:
        data["email"] = who
    return [
        fw.ev("customer.updated", who, "0", **data),
        fw.ev("portin.status_changed", who, at, status="REJECTED", carrier="T-Mobile"),
    ]


def _tasks(lines, event=None):
    return [l for l in lines if l.get("kind") == "task" and (event is None or l["event"] == event)]


# ---------------------------------------------------------------- replay

def test_task_created_due_three_days_after_the_outreach():
    lines = fw.replay(_port_rejected(), "--cases", "--messages", "--until", T("11h"))
    emails = [l for l in lines if l.get("kind") == "message" and l["audience"] == "customer"]
    assert len(emails) == 1 and emails[0]["status"] == "scheduled", emails
    created = _tasks(lines, "created")
    assert len(created) == 1, _tasks(lines)
    t = created[0]
    case = [l for l in lines if l.get("kind") == "case" and l["event"] == "opened"][0]["case"]
    # Decided when the merge window closed (10h + 5s); due 3 days after, to the millisecond.
    assert t["at"] == T("10h5s") and t["due"] == T("82h5s"), t
    assert t["state"] == "open" and t["case"] == case and t["customer"] == A, t
    # Nobody has the case: the task is the signal's team's.
    assert t["assignee"] is None and t["team"] == "porting", t
    assert t["messages"] == [emails[0]["id"]] and t["signals"] == ["SIG-004"], t
    assert t["severity"] == "HIGH" and t["outreach"] == "alert", t
    # Only the customer message makes a task: the L1 ticket and chatbot context do not.
    assert len(_tasks(lines)) == 1, _tasks(lines)
    # At 01:00 the email waits for the end of quiet hours (08:00): due 3 days after it goes out.
    lines = fw.replay(_port_rejected(at="1h"), "--cases", "--until", T("9h"))
    created = _tasks(lines, "created")
    assert len(created) == 1 and created[0]["at"] == T("1h5s"), created
    assert created[0]["due"] == T("80h"), created


def test_reply_closes_the_task_and_no_reminder_follows():
    ev = _port_rejected() + [fw.ev("message.replied", A, "30h", text="thanks, new PIN is 1234")]
    lines = fw.replay(ev, "--cases", "--until", T("100h"))
    done = _tasks(lines, "done")
    assert len(done) == 1 and done[0]["reason"] == "customer_replied: message.replied", done
    assert done[0]["at"] == T("30h") and done[0]["state"] == "done" and done[0]["by"] is None
    assert not _tasks(lines, "reminder"), _tasks(lines)


def test_contact_closes_the_task():
    ev = _port_rejected() + [fw.ev("ticket.created", A, "20h", ticket_id="t-1", subject="PIN")]
    lines = fw.replay(ev, "--cases", "--until", T("100h"))
    done = _tasks(lines, "done")
    assert len(done) == 1 and done[0]["reason"] == "customer_contact: ticket.created", done


def test_resolved_detection_closes_the_task():
    ev = _port_rejected() + [fw.ev("portin.status_changed", A, "20h", status="COMPLETED")]
    lines = fw.replay(ev, "--cases", "--until", T("100h"))
    done = _tasks(lines, "done")
    assert len(done) == 1 and done[0]["reason"] == "detection_resolved: SIG-004", done
    assert done[0]["at"] == T("20h"), done
    assert not _tasks(lines, "reminder")


def test_reminder_when_due_goes_to_the_team_then_to_the_owner():
    lines = fw.replay(_port_rejected(), "--cases", "--messages", "--until", T("90h"))
    rem = _tasks(lines, "reminder")
    assert len(rem) == 1 and rem[0]["at"] == T("82h5s") and rem[0]["state"] == "open", rem
    notices = [l for l in lines if l.get("kind") == "message" and l["channel"] == "slack"
               and "Follow-up due" in (l.get("subject") or "")]
    assert len(notices) == 1, notices
    assert notices[0]["audience"] == "l1" and notices[0]["at"] == T("82h5s"), notices[0]
    assert rem[0]["task"] in notices[0]["body"], notices[0]["body"]
    # Once someone takes the case, the task (and its reminder) is theirs.
    ev = _port_rejected() + [fw.ev("case.assigned", A, "11h", agent="ann")]
    lines = fw.replay(ev, "--cases", "--messages", "--until", T("90h"))
    assigned = _tasks(lines, "assigned")
    assert len(assigned) == 1 and assigned[0]["assignee"] == "ann" and assigned[0]["at"] == T("11h")
    notices = [l for l in lines if l.get("kind") == "message" and "Follow-up due" in (l.get("subject") or "")]
    assert len(notices) == 1 and notices[0]["audience"] == "agent", notices
    assert notices[0]["recipient"] == "ann", notices


def test_no_task_for_a_message_held_back():
    # No email address: the email is suppressed (no_address), so nothing went out.
    lines = fw.replay(_port_rejected("cust-17", email=False), "--cases", "--messages", "--until", T("100h"))
    emails = [l for l in lines if l.get("kind") == "message" and l["audience"] == "customer"]
    assert emails and all(m["status"] == "suppressed" for m in emails), emails
    assert not _tasks(lines), _tasks(lines)
    # An enterprise customer's message waits for approval: no task until it is sent.
    ev = [fw.ev("customer.updated", A, "0", name="Ana", email=A, tier="enterprise"),
          fw.ev("portin.status_changed", A, "10h", status="REJECTED")]
    lines = fw.replay(ev, "--cases", "--messages", "--until", T("100h"))
    held = [l for l in lines if l.get("kind") == "message" and l["audience"] == "customer"]
    assert held and held[0]["status"] == "awaiting_approval", held
    assert not _tasks(lines), _tasks(lines)
    # ... and it gets one when the dispatcher reports it sent (after a person approved it).
    ev.append(fw.ev("message.sent", A, "15h", message_id=held[0]["id"], channel="email",
                    audience="customer", kind="alert"))
    lines = fw.replay(ev, "--cases", "--until", T("100h"))
    created = _tasks(lines, "created")
    assert len(created) == 1 and created[0]["at"] == T("15h") and created[0]["due"] == T("87h"), created


def _config(text):
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def test_followup_task_delay_per_severity_and_off():
    cfg = _config("outreach:\n  followup_task: {HIGH: 1d, MEDIUM: 0}\n")
    try:
        lines = fw.replay(_port_rejected(), "--cases", "--config", cfg, "--until", T("11h"))
        created = _tasks(lines, "created")
        assert len(created) == 1 and created[0]["due"] == T("34h5s"), created
        off = _config("outreach:\n  followup_task: 0\n")
        lines = fw.replay(_port_rejected(), "--cases", "--config", off, "--until", T("100h"))
        assert not _tasks(lines), _tasks(lines)
        os.unlink(off)
        bad = _config("outreach:\n  followup_task: {URGENT: 1d}\n")
        rc, out, err = fw.replay_raw(_port_rejected(), "--cases", "--config", bad)
        os.unlink(bad)
        assert rc != 0 and "followup_task" in err and "URGENT" in err and ":2:" in err, err
    finally:
        os.unlink(cfg)


def test_task_actions_in_a_replayed_journal():
    lines = fw.replay(_port_rejected(), "--cases", "--until", T("11h"))
    tid = _tasks(lines, "created")[0]["task"]
    ev = _port_rejected() + [
        fw.ev("case.task_cancelled", A, "12h", task=tid, agent="ann", note="she called us"),
        # A second action on the closed task is ignored (logged), not applied twice.
        fw.ev("case.task_completed", A, "13h", task=tid, agent="bob"),
    ]
    lines = fw.replay(ev, "--cases", "--until", T("100h"))
    closed = [l for l in _tasks(lines) if l["event"] in ("done", "cancelled")]
    assert len(closed) == 1, closed
    c = closed[0]
    assert c["event"] == "cancelled" and c["state"] == "cancelled" and c["by"] == "ann", c
    assert c["note"] == "she called us" and c["at"] == T("12h"), c
    assert not _tasks(lines, "reminder")


# ---------------------------------------------------------------- serve

ROLES = [("vic", "viewer"), ("ann", "agent"), ("bob", "agent"), ("lee", "lead"),
         ("ada", "admin"), ("svc", "service")]


def _users(s):
    toks = {}
    for name, role in ROLES:
        rc, out, err = fw.run(["user", "add", name, "--role", role, "--db", s.db])
        assert rc == 0, (name, err)
        rc, out, err = fw.run(["token", "create", "--user", name, "--db", s.db])
        assert rc == 0, (name, err)
        toks[name] = {"Authorization": "Bearer " + out.strip()}
    return toks


def test_serve_tasks_api_roles_audit_and_reminder():
    s = Server()
    toks = _users(s)
    s.start()
    req = lambda who, m, p, b=None: s.request(m, p, b, headers=toks[who])
    try:
        st, body = req("svc", "POST", "/v1/events", _port_rejected() + _port_rejected(
            "ben@example.com"))
        assert st == 200, body
        assert req("ada", "POST", "/v1/admin/clock", {"now": T("11h")})[0] == 200
        st, lst = req("vic", "GET", "/v1/tasks?state=open&kind=outreach_followup")
        assert st == 200 and len(lst["tasks"]) == 2, lst
        byc = {t["customer"]: t for t in lst["tasks"]}
        ta, tb = byc[A], byc["ben@example.com"]
        assert ta["due_at"] == T("82h5s") and ta["status"] == "open" and not ta["overdue"], ta
        assert ta["detail"]["team"] == "porting" and ta["case"], ta
        # Filters: customer, team, due_before, a page of one with its cursor.
        st, one = req("vic", "GET", "/v1/tasks?kind=outreach_followup&customer=" + A)
        assert st == 200 and [t["id"] for t in one["tasks"]] == [ta["id"]], one
        st, one = req("vic", "GET", "/v1/tasks?kind=outreach_followup&team=porting&due_before=" + T("83h"))
        assert st == 200 and len(one["tasks"]) == 2, one
        st, none = req("vic", "GET", "/v1/tasks?kind=outreach_followup&due_before=" + T("82h"))
        assert st == 200 and none["tasks"] == [], none
        st, p1 = req("vic", "GET", "/v1/tasks?limit=1&kind=outreach_followup")
        assert st == 200 and len(p1["tasks"]) == 1 and p1["next_cursor"], p1
        st, p2 = req("vic", "GET", "/v1/tasks?limit=1&kind=outreach_followup&cursor=" +
                     p1["next_cursor"])
        assert st == 200 and len(p2["tasks"]) == 1 and p2["next_cursor"] is None, p2
        assert {p1["tasks"][0]["id"], p2["tasks"][0]["id"]} == {ta["id"], tb["id"]}
        # The case shows its task, and the task line in its timeline.
        st, case = req("vic", "GET", "/v1/cases/" + ta["case"])
        assert st == 200, case
        assert [t["id"] for t in case["tasks"]] == [ta["id"]], case.get("tasks")
        assert any(e["kind"] == "task" and e["what"] == "created" for e in case["timeline"]), \
            case["timeline"]

        # Bad input: each refused with the field named, nothing changed.
        for who, path, bodyx, code, words in [
            ("vic", "/v1/tasks/%s/complete" % ta["id"], {}, 403, "role"),
            ("ann", "/v1/tasks/%s/cancel" % ta["id"], {}, 400, "note"),
            ("ann", "/v1/tasks/%s/complete" % ta["id"], {"note": 5}, 400, "note"),
            ("ann", "/v1/tasks/%s/finish" % ta["id"], {}, 404, "complete, cancel"),
            ("ann", "/v1/tasks/t_0000000000000000/complete", {}, 404, "no task"),
        ]:
            st, b = req(who, "POST", path, bodyx)
            assert st == code and words in b["error"], (path, st, b)
        for q, words in [("state=later", "state"), ("due_before=tomorrow", "due_before"),
                         ("mine=maybe", "mine"), ("cursor=abc", "cursor"),
                         ("limit=0", "limit")]:
            st, b = req("vic", "GET", "/v1/tasks?" + q)
            assert st == 400 and words in b["error"], (q, st, b)
        st, again = req("vic", "GET", "/v1/tasks?state=open&kind=outreach_followup")
        assert len(again["tasks"]) == 2, again

        # Lee gives Ana's case to Bob: the task is Bob's; Ann may not close it.
        st, b = req("lee", "POST", "/v1/cases/%s/assign" % ta["case"], {"agent": "bob"})
        assert st == 200, b
        st, mine = req("bob", "GET", "/v1/tasks?mine=true")
        assert st == 200 and [t["id"] for t in mine["tasks"]] == [ta["id"]], mine
        st, b = req("ann", "POST", "/v1/tasks/%s/complete" % ta["id"], {"note": "x"})
        assert st == 403 and "bob" in b["error"], b
        st, b = req("bob", "POST", "/v1/tasks/%s/complete" % ta["id"],
                    {"note": "called her, PIN fixed"})
        assert st == 200 and b["status"] == "done", b
        assert b["detail"]["closed_by"] == "bob" and b["detail"]["note"] == "called her, PIN fixed"
        st, b = req("bob", "POST", "/v1/tasks/%s/cancel" % ta["id"], {"note": "again"})
        assert st == 409 and "done" in b["error"], b

        # A restart between now and the due time: the reminder still fires, once.
        s.kill9()
        s.start()
        assert req("ada", "POST", "/v1/admin/clock", {"now": T("83h")})[0] == 200
        st, open_ = req("vic", "GET", "/v1/tasks?state=open&kind=outreach_followup")
        assert [t["id"] for t in open_["tasks"]] == [tb["id"]] and open_["tasks"][0]["overdue"]
        assert open_["tasks"][0]["detail"]["reminded_at"] == T("82h5s"), open_
        st, msgs = req("lee", "GET", "/v1/messages?limit=1000")
        notices = [m for m in msgs["messages"] if (m.get("subject") or "").startswith("Follow-up due")]
        assert len(notices) == 1 and notices[0]["customer"] == "ben@example.com", notices
        assert notices[0]["audience"] == "l1" and notices[0]["channel"] == "slack", notices[0]
        st, b = req("ann", "POST", "/v1/tasks/%s/cancel" % tb["id"], {"note": "duplicate"})
        assert st == 200 and b["status"] == "cancelled", b

        st, aud = req("lee", "GET", "/v1/audit?limit=1000")
        rows = [(a["user"], a["action"], a["object_id"], a["status"]) for a in aud["audit"]
                if a.get("object_kind") == "task"]
        assert ("bob", "case.task_completed", ta["id"], 200) in rows, rows
        assert ("vic", "POST /v1/tasks/%s/complete" % ta["id"], ta["id"], 403) in rows, rows
        assert ("ann", "case.task_cancelled", tb["id"], 200) in rows, rows
        assert any(r[0] == "vic" and r[2] == "list" for r in rows), rows
    finally:
        s.stop()

    # The journal replayed gives the same task lines as the cases' histories.
    db = sqlite3.connect(s.db)
    journal = [json.loads(r[0]) for r in db.execute("SELECT body FROM events ORDER BY seq")]
    stored = {r[0]: json.loads(r[1]) for r in
              db.execute("SELECT key, detail FROM tasks WHERE kind = 'outreach_followup'")}
    db.close()
    kept = "".join(json.dumps(e) + "\n" for e in journal if e["type"] != "forewarn.clock")
    lines = fw.replay(kept, "--cases", "--until", T("83h"))
    final = {}
    for l in _tasks(lines):
        final[l["task"]] = l
    assert set(final) == set(stored), (sorted(final), sorted(stored))
    for k, l in final.items():
        assert l["state"] == stored[k]["state"] and l["assignee"] == stored[k]["assignee"], (l, stored[k])
