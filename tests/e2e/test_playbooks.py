"""Playbooks, measured success and guidance, end to end (docs/guidance.md):
`forewarn playbooks check|test` on good and bad files, `replay --cases`
with playbook and step events, and the HTTP API with real users and
tokens: a history of resolved cases gives each playbook its measured
success (or "not enough history"), and seed 002's scenarios get their
guidance.  Bad input is refused with a clear error and changes nothing.

Time moves only with event time (serve --virtual-clock), so every instant
is exact."""
import json
import os
import re
import tempfile

import fw
from fw import T
from server import Server

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLAYBOOKS = os.path.join(ROOT, "playbooks", "telecom.yaml")
PLAYBOOK_TESTS = os.path.join(ROOT, "playbooks", "telecom.test.yaml")

DOUG = "doug@example.com"
NEW = "nina@example.com"
EXEC = "vp@bigcorp.example"


def _case(lines, event):
    return [l for l in lines if l.get("kind") == "case" and l["event"] == event]


# ---------------------------------------------------------------- 1. the CLI

def test_playbooks_check_accepts_the_shipped_file():
    rc, out, err = fw.run(["playbooks", "check", PLAYBOOKS])
    assert rc == 0, err
    assert re.search(r"OK, 15 playbook\(s\)", out), out


def test_playbooks_check_refuses_a_bad_file_with_its_places():
    bad = ("playbooks:\n"
           "  - id: x\n"
           "    name: X\n"
           "    when: severity == \"HIGH\" and sentimnt < 0\n"
           "    recommend: {action_type: phone, urgency: today, reason: r}\n"
           "    script:\n"
           "      opening: \"Hi {{customer.first_name}}, your plan {{customer.plan}}\"\n"
           "      closing: bye\n"
           "    win_condition: w\n"
           "    signals: [SIG-999]\n"
           "    steps:\n"
           "      - {action_type: call, description: d, follow_up: soon}\n")
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "bad.yaml")
        open(p, "w").write(bad)
        rc, out, err = fw.run(["playbooks", "check", p])
    assert rc == 1, (out, err)
    for place, what in [("4:34", "unknown state key 'sentimnt'"),
                        ("5:30", "recommend.action_type"),
                        ("7:57", "'customer.plan' is internal"),
                        ("10:15", "unknown signal 'SIG-999'"),
                        ("12:56", "follow_up must be a duration")]:
        assert "bad.yaml:%s: error: " % place in err and what in err, (place, what, err)
    assert "bad.yaml: 5 error(s)" in err, err


def test_playbooks_test_passes_and_a_wrong_expectation_fails():
    rc, out, err = fw.run(["playbooks", "test", PLAYBOOK_TESTS])
    assert rc == 0, out + err
    assert re.search(r"18 test\(s\), 0 failed", out), out
    wrong = ("playbook_files: [%s]\n"
             "tests:\n"
             "  - name: a cancel threat is not a billing dispute\n"
             "    case: {severity: HIGH, signals: [SIG-004], texts: [\"I will cancel\"]}\n"
             "    expect: billing-dispute\n" % PLAYBOOKS)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "t.yaml")
        open(p, "w").write(wrong)
        rc, out, err = fw.run(["playbooks", "test", p])
    assert rc == 1, out
    assert "FAIL 1" in out and "expected billing-dispute, got retention" in out, out


# ---------------------------------------------------------------- 2. replay --cases

def _doug(base="0"):
    """Seed 002's Doug, in telecom: six years with us, three failed activations, leaving."""
    b = fw.dur(base)
    at = lambda off: fw.fmt(fw.BASE + b + fw.dur(off))  # noqa: E731
    return [
        fw.ev("customer.updated", DOUG, at("0"), name="Doug Carter", email=DOUG, value=4200,
              tier="gold", signup_date="2020-01-15"),
        fw.ev("esim.status_changed", DOUG, at("1h"), status="FAILED"),
        fw.ev("ticket.created", DOUG, at("1h10m"), ticket_id="t1", subject="activation failed"),
        fw.ev("ticket.created", DOUG, at("1h20m"), ticket_id="t2",
              subject="third failed activation"),
        fw.ev("ticket.created", DOUG, at("1h30m"), ticket_id="t3",
              subject="Fix it today or I'm switching to T-Mobile"),
    ]


def test_replay_cases_shows_the_playbook_and_its_steps():
    events = _doug() + [
        fw.ev("case.assigned", DOUG, "1h40m", agent="sarah"),
        fw.ev("case.step_completed", DOUG, "1h45m", agent="sarah", step=1),
        fw.ev("case.step_skipped", DOUG, "1h50m", agent="sarah", step=3),  # needs a reason
        fw.ev("case.step_skipped", DOUG, "1h51m", agent="sarah", step=3,
              reason="the eSIM swap already fixed it"),
        fw.ev("case.step_completed", DOUG, "2h", agent="sarah", step=4),
        fw.ev("case.resolved", DOUG, "30h", agent="sarah", outcome="saved", csat=5),
    ]
    rc, out, err = fw.replay_raw(events, "--cases")
    assert rc == 0, err
    lines = [json.loads(l) for l in out.splitlines()]
    ps = _case(lines, "playbook_set")
    assert [(p["playbook"], p["by"], p["at"]) for p in ps] == [
        ("esim-failed", None, T("1h")), ("retention", None, T("1h30m"))], ps
    # Doug's threat to switch fires the retention-threat escalation, which gives the case the
    # retention playbook (the keyword trigger would have chosen it too).
    assert ps[1]["why"].startswith("escalation retention-threat: "), ps[1]
    esc = _case(lines, "escalated")
    assert [(e["escalation"], e["notify"]) for e in esc] == [
        ("repeat-touches", "lead"), ("retention-threat", "lead")], esc
    done = _case(lines, "step_completed")
    assert [(d["step"], d["action_type"], d["agent"], d["at"]) for d in done] == [
        (1, "call", "sarah", T("1h45m")), (4, "credit", "sarah", T("2h"))], done
    assert done[1]["follow_up_due"] == T("26h"), done[1]
    sk = _case(lines, "step_skipped")
    assert len(sk) == 1 and sk[0]["step"] == 3 and sk[0]["at"] == T("1h51m") \
        and sk[0]["reason"] == "the eSIM swap already fixed it", sk
    assert "step 3" in err and "needs a reason to be skipped" in err, err
    rem = _case(lines, "reminder")
    assert [(r["step"], r["at"]) for r in rem] == [(4, T("26h"))], rem
    # The same input gives the same lines.
    rc2, out2, _ = fw.replay_raw(events, "--cases")
    assert rc2 == 0 and out2 == out


def test_replay_with_a_bad_playbook_file_is_refused():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "p.yaml")
        open(p, "w").write("playbooks:\n  - id: x\n")
        rc, out, err = fw.replay_raw(_doug(), "--cases", "--playbooks", p)
    assert rc == 1 and out == "", out
    assert "p.yaml:2:5: error: a playbook needs 'name'" in err, err


# ---------------------------------------------------------------- 3. the API

ROLES = [("vic", "viewer"), ("sarah", "agent"), ("lee", "lead"), ("ada", "admin"),
         ("svc", "service")]


def _users(s):
    toks = {}
    for name, role in ROLES:
        rc, out, err = fw.run(["user", "add", name, "--role", role, "--db", s.db])
        assert rc == 0, (name, err)
        rc, out, err = fw.run(["token", "create", "--user", name, "--db", s.db])
        assert rc == 0, (name, err)
        toks[name] = {"Authorization": "Bearer " + out.strip()}
    return toks


def _history():
    """Resolved cases before today: six retention cases (four saved, one resolved, one
    churned), three billing disputes.  Each opens with a failed eSIM (SIG-002)."""
    evs = []
    outcomes = [("saved", 5, "3h"), ("saved", 4, "5h"), ("resolved", 4, "2h"),
                ("saved", 5, "4h"), ("churned", 1, "9h"), ("saved", None, "6h")]
    for i, (outcome, csat, took) in enumerate(outcomes):
        c = "h%d@example.com" % i
        t0 = fw.dur("%dh" % (i * 10))
        at = lambda off, t0=t0: fw.fmt(fw.BASE + t0 + fw.dur(off))  # noqa: E731
        evs += [fw.ev("customer.updated", c, at("0"), name="H%d" % i, value=1000 + 500 * i,
                      signup_date="2021-06-01"),
                fw.ev("esim.status_changed", c, at("10m"), status="FAILED"),
                fw.ev("ticket.created", c, at("20m"), ticket_id="h%d" % i,
                      subject="I want to cancel my line")]
        data = {"agent": "sarah", "outcome": outcome}
        if csat:
            data["csat"] = csat
        evs.append(fw.ev("case.resolved", c, fw.fmt(fw.BASE + t0 + fw.dur("10m") + fw.dur(took)),
                         data=data))
    for i in range(3):
        c = "b%d@example.com" % i
        t0 = fw.dur("%dh" % (60 + i * 10))
        at = lambda off, t0=t0: fw.fmt(fw.BASE + t0 + fw.dur(off))  # noqa: E731
        evs += [fw.ev("customer.updated", c, at("0"), name="B%d" % i, value=300),
                fw.ev("esim.status_changed", c, at("10m"), status="FAILED"),
                fw.ev("ticket.created", c, at("20m"), ticket_id="b%d" % i,
                      subject="charged twice this month"),
                fw.ev("case.resolved", c, at("2h"), agent="sarah", outcome="resolved", csat=4)]
    return evs


def _by_id(playbooks):
    return {p["id"]: p for p in playbooks["playbooks"]}


def test_measured_success_guidance_and_refusals():
    s = Server()
    toks = _users(s)
    s.start()
    try:
        # History is imported by an admin (case actions in /v1/events need that role).
        st, body = s.request("POST", "/v1/events", _history(), headers=toks["ada"])
        assert st == 200, (st, body)

        # Measured success: from the nine resolved cases, nothing invented.
        st, pl = s.request("GET", "/v1/playbooks", headers=toks["vic"])
        assert st == 200 and pl["min_history"] == 5 and pl["resolved_cases"] == 9, pl
        pb = _by_id(pl)
        ret = pb["retention"]["success"]
        # saved 4 + resolved 1 of 6; times 2h 3h 4h 5h 6h 9h -> median 4.5h = 270 min;
        # CSAT 5 4 4 5 1 over 5 scored cases = 3.8.
        assert ret == {"n": 6, "successes": 5, "success_rate": 0.83,
                       "median_resolution_minutes": 270.0, "csat": {"mean": 3.8, "n": 5}}, ret
        assert pb["billing-dispute"]["success"] == {
            "n": 3, "status": "not enough history", "needed": 5}, pb["billing-dispute"]
        assert pb["esim-failed"]["success"]["n"] == 0

        # Seed 002 scenario 1: Doug, six years with us, after three failed activations.
        st, body = s.request("POST", "/v1/events", _doug("200h"), headers=toks["svc"])
        assert st == 200, body
        st, cases = s.request("GET", "/v1/cases?state=open&customer=" + DOUG, headers=toks["lee"])
        assert st == 200 and len(cases["cases"]) == 1, cases
        cid = cases["cases"][0]["id"]
        st, g = s.request("GET", "/v1/cases/%s/guidance" % cid, headers=toks["vic"])
        assert st == 200, g
        assert g["playbook"]["id"] == "retention" and g["playbook"]["by"] is None, g["playbook"]
        assert g["summary"].startswith("Doug Carter (gold, a customer for 6 years, $4200 a year): "
                                       "eSIM provisioning FAILED (CRITICAL), also Repeat contact; "
                                       "3 contacts in 7 days; latest words: "), g["summary"]
        ra = g["recommended_action"]
        assert ra["type"] == "call" and ra["urgency"] == "immediate", ra
        assert ra["predicted_success"]["n"] == 6 and ra["predicted_success"]["success_rate"] == 0.83
        assert g["script"]["opening"].startswith("Hi Doug, I saw your message"), g["script"]
        assert len(g["script"]["key_points"]) == 3 and g["script"]["closing"]
        assert "Don't offer a discount before you've fixed the problem." in g["what_not_to_do"]
        assert g["win_condition"].startswith("Service working")
        assert g["next_step"]["step"] == 1 and g["next_step"]["action_type"] == "call" \
            and g["next_step"]["skip_requires_reason"] is True, g["next_step"]
        # Scored from Doug's words: his last, a threat to switch, is negative, with its intents.
        se = g["sentiment"]
        assert se["n"] == 3 and se["label"] == "negative" and se["score"] <= -0.3, se
        assert se["intents"] == ["cancel", "competitor"], se
        sim = g["similar_cases"]["cases"]
        assert len(sim) == 3, sim
        assert all(c["signals"] == ["SIG-002"] for c in sim), sim
        assert sim[0]["similarity"] >= sim[1]["similarity"] >= sim[2]["similarity"], sim
        assert {"case", "outcome", "approach", "resolution_minutes", "playbook"} <= set(sim[0])

        # Bad input: refused with a clear error, nothing changed.
        path = "/v1/cases/" + cid
        st, before = s.request("GET", path, headers=toks["lee"])
        for body_, step_path, code, words in [
                ({"playbook": "no-such"}, "/playbook", 400, "no playbook 'no-such'"),
                ({}, "/steps/1/skip", 400, "needs a reason to be skipped"),
                ({}, "/steps/99/complete", 400, "has steps 1 to 5"),
                ({}, "/steps/x/complete", 404, "no such step action")]:
            st, err = s.request("POST", path + step_path, body_, headers=toks["sarah"])
            assert st == code and words in err["error"] and "nothing was changed" in err["error"] \
                or (code == 404 and st == 404 and words in err["error"]), (step_path, st, err)
        st, err = s.request("POST", path + "/steps/1/complete", {}, headers=toks["vic"])
        assert st == 403, (st, err)
        st, after = s.request("GET", path, headers=toks["lee"])
        assert after["history"] == before["history"] and after["playbook"] == before["playbook"]

        # Steps through the API: complete step 1, the next step is 2; switch the playbook.
        st, doc = s.request("POST", path + "/steps/1/complete", {}, headers=toks["sarah"])
        assert st == 200 and doc["playbook"]["steps"][0]["state"] == "completed", doc
        st, doc = s.request("POST", path + "/steps/1/complete", {}, headers=toks["sarah"])
        assert st == 409 and "already completed" in doc["error"], doc
        st, g = s.request("GET", path + "/guidance", headers=toks["sarah"])
        assert g["next_step"]["step"] == 2, g["next_step"]
        st, doc = s.request("POST", path + "/playbook", {"playbook": "esim-failed"},
                            headers=toks["sarah"])
        assert st == 200 and doc["playbook"]["id"] == "esim-failed" \
            and doc["playbook"]["by"] == "sarah", doc["playbook"]
        hist = [h for h in doc["history"] if h["event"] in ("playbook_set", "step_completed")]
        assert [(h["event"], h.get("playbook"), h.get("by")) for h in hist][-2:] == [
            ("step_completed", "retention", None), ("playbook_set", "esim-failed", "sarah")], hist
        st, audit = s.request("GET", "/v1/audit?limit=1000", headers=toks["lee"])
        if st == 200:
            acts = [a.get("action") for a in audit["audit"]]
            assert "case.playbook_set" in acts and "case.step_completed" in acts, acts

        # Seed 002 scenario 2: a new customer, double-charged, contacts us three times.
        evs = [fw.ev("customer.updated", NEW, "300h", name="Nina New", value=300,
                     signup_date="2026-03-12"),
               fw.ev("ticket.created", NEW, "300h10m", ticket_id="n1",
                     subject="I was charged twice for my first month"),
               fw.ev("ticket.created", NEW, "300h20m", ticket_id="n2", subject="hello?"),
               fw.ev("ticket.created", NEW, "300h30m", ticket_id="n3", subject="still no refund")]
        st, body = s.request("POST", "/v1/events", evs, headers=toks["svc"])
        assert st == 200, body
        st, cases = s.request("GET", "/v1/cases?state=open&customer=" + NEW, headers=toks["lee"])
        assert len(cases["cases"]) == 1, cases
        st, g = s.request("GET", "/v1/cases/%s/guidance" % cases["cases"][0]["id"],
                          headers=toks["vic"])
        assert st == 200 and g["playbook"]["id"] == "billing-dispute", g
        assert g["recommended_action"]["predicted_success"] == {
            "n": 3, "status": "not enough history", "needed": 5}, g["recommended_action"]
        assert g["script"]["opening"].startswith("Hi Nina,"), g["script"]
        assert "a customer for 2 days" in g["summary"], g["summary"]

        # Seed 002 scenario 4: an executive escalation (an enterprise account).
        evs = [fw.ev("customer.updated", EXEC, "320h", name="Vera Vice", value=90000,
                     tier="enterprise"),
               fw.ev("portin.status_changed", EXEC, "320h5m", status="REJECTED",
                     carrier="Verizon")]
        st, body = s.request("POST", "/v1/events", evs, headers=toks["svc"])
        assert st == 200, body
        st, cases = s.request("GET", "/v1/cases?state=open&customer=" + EXEC, headers=toks["lee"])
        st, g = s.request("GET", "/v1/cases/%s/guidance" % cases["cases"][0]["id"],
                          headers=toks["vic"])
        assert st == 200 and g["playbook"]["id"] == "executive-escalation", g
        assert g["recommended_action"]["type"] == "internal" \
            and g["recommended_action"]["urgency"] == "immediate", g["recommended_action"]
        assert g["next_step"]["description"] == "Notify the duty manager within 15 minutes"

        # Guidance for a resolved case, and for an unknown one.
        st, cases = s.request("GET", "/v1/cases?state=resolved&limit=1", headers=toks["lee"])
        st, err = s.request("GET", "/v1/cases/%s/guidance" % cases["cases"][0]["id"],
                            headers=toks["vic"])
        assert st == 409 and "resolved" in err["error"], (st, err)
        st, err = s.request("GET", "/v1/cases/c_0000000000000000/guidance", headers=toks["vic"])
        assert st == 404, (st, err)
    finally:
        s.stop()


def test_min_history_is_configurable():
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "c.yaml")
        open(cfg, "w").write("guidance: {min_history: 3}\n")
        s = Server("--config", cfg)
        s.start()
        try:
            st, body = s.request("POST", "/v1/events", _history())
            assert st == 200, body
            st, pl = s.request("GET", "/v1/playbooks")
            b = _by_id(pl)["billing-dispute"]["success"]
            assert pl["min_history"] == 3 and b["n"] == 3 and b["success_rate"] == 1.0, pl
        finally:
            s.stop()
        open(cfg, "w").write("guidance: {min_history: none}\n")
        s = Server("--config", cfg)
        assert s.start(expect_fail=True) != 0
        assert "c.yaml:1:25: error: guidance.min_history must be a whole number" in s.logtext(), \
            s.logtext()
