"""Cases, SLA clocks and the work queue, end to end: `replay --cases` (the
replay contract), SLA calendars from the config, the cases and queue API
with real users and tokens, kill -9 restarts on the virtual clock, and
replay of serve's own journal giving the history serve stored.

Time moves only with event time and POST /v1/admin/clock (serve
--virtual-clock), so every instant asserted here is exact; nothing waits
on a sleep.

The journey is the README tour's: SIG-006 (order stuck, MEDIUM) fires 24h
after the order, at BASE+25h, which opens the case; SIG-001 (eSIM pending
48h after payment, HIGH) would follow at BASE+49h5m.  MEDIUM's 24x7
defaults are first_response 8h, customer_contact 24h, resolution 72h, and
warn_before is 30m."""
import datetime as dt
import json
import os
import re
import sqlite3
import tempfile
import zoneinfo

import fw
from fw import T
from server import Server

C = "jodi@example.com"
OPEN_AT = "25h"  # SIG-006: order.created (1h) + 24h


def _journey():
    return [
        fw.ev("customer.updated", C, "0", name="Jodi", email=C, carrier="Verizon"),
        fw.ev("order.created", C, "1h", order_id="o-17"),
        fw.ev("payment.completed", C, "1h5m", order_id="o-17", amount=25),
        fw.ev("esim.status_changed", C, "1h6m", order_id="o-17", status="PENDING"),
    ]


def _case_lines(lines, case=None):
    return [l for l in lines if l.get("kind") in ("case", "sla")
            and (case is None or l["case"] == case)]


def _sla(lines, event, metric=None):
    return [l for l in lines if l.get("kind") == "sla" and l["event"] == event
            and (metric is None or l["metric"] == metric)]


def _case(lines, event):
    return [l for l in lines if l.get("kind") == "case" and l["event"] == event]


# ---------------------------------------------------------------- 1. replay --cases

def _scenario():
    return _journey() + [
        fw.ev("case.assigned", C, "34h", agent="ann"),
        fw.ev("case.responded", C, "35h", agent="ann", channel="internal"),
        fw.ev("case.status_changed", C, "36h", agent="ann", status="pending"),
        fw.ev("case.status_changed", C, "37h", agent="ann", status="open"),
        fw.ev("case.status_changed", C, "38h", agent="ann", status="on_hold"),
        fw.ev("ticket.created", C, "40h", ticket_id="ZD-1", subject="eSIM will not install"),
        fw.ev("case.note_added", C, "41h", agent="ann", text="called the carrier"),
        fw.ev("case.resolved", C, "45h", agent="ann", outcome="saved", csat=5),
    ]


def test_replay_cases_contract_lines():
    body = fw.ndjson(_scenario())
    lines = fw.replay(body, "--cases", *fw.until("48h"))
    cl = _case_lines(lines)
    assert cl, "replay --cases printed no case lines"

    opened = _case(cl, "opened")
    assert len(opened) == 1, opened
    o = opened[0]
    cid = o["case"]
    assert re.fullmatch(r"c_[0-9a-f]{16}", cid), cid
    assert o["customer"] == C and o["severity"] == "MEDIUM" and o["signals"] == ["SIG-006"]
    assert o["status"] == "open" and o["assignee"] is None
    assert o["at"] == T(OPEN_AT)
    assert o["calendar"] == "24x7" and o["policy"] is None
    assert o["due"] == {"first_response": T("33h"), "customer_contact": T("49h"),
                        "resolution": T("97h")}, o["due"]
    assert all(l["case"] == cid and l["customer"] == C for l in cl)

    # Warning exactly warn_before (30m) before the due instant, breach at it.
    w = _sla(cl, "warning", "first_response")
    b = _sla(cl, "breached", "first_response")
    assert len(w) == 1 and w[0]["due"] == T("33h") and w[0]["at"] == T("32h30m"), w
    assert len(b) == 1 and b[0]["due"] == T("33h") and b[0]["at"] == T("33h"), b

    a = _case(cl, "assigned")
    assert len(a) == 1 and a[0]["agent"] == "ann" and a[0]["assignee"] == "ann" \
        and a[0]["at"] == T("34h"), a

    # Responding on an internal channel meets first_response (late: it was breached).
    met_fr = _sla(cl, "met", "first_response")
    assert len(met_fr) == 1 and met_fr[0]["at"] == T("35h") \
        and met_fr[0]["within_target"] is False, met_fr

    upd = _case(cl, "updated")
    changes = [(u["change"], u["status"], u["at"]) for u in upd]
    assert changes == [("responded", "open", T("35h")), ("status", "pending", T("36h")),
                       ("status", "open", T("37h")), ("status", "on_hold", T("38h")),
                       ("status", "open", T("40h")), ("note", "open", T("41h"))], changes
    assert upd[4].get("by_event") == "ticket.created", upd[4]
    assert upd[5]["text"] == "called the carrier"

    # Resolution pauses while waiting on the customer, resumes with the remaining time.
    pr = [(l["event"], l["at"], l["due"]) for l in cl
          if l["kind"] == "sla" and l["event"] in ("paused", "resumed")]
    # consumed 25h..36h = 11h of 72h -> due 37h+61h; consumed 12h -> due 40h+60h
    assert pr == [("paused", T("36h"), T("97h")), ("resumed", T("37h"), T("98h")),
                  ("paused", T("38h"), T("98h")), ("resumed", T("40h"), T("100h"))], pr
    assert all(l["metric"] == "resolution" for l in cl
               if l["kind"] == "sla" and l["event"] in ("paused", "resumed"))

    met_res = _sla(cl, "met", "resolution")
    assert len(met_res) == 1 and met_res[0]["at"] == T("45h") \
        and met_res[0]["within_target"] is True and met_res[0]["due"] == T("100h"), met_res
    r = _case(cl, "resolved")
    assert len(r) == 1 and r[0]["outcome"] == "saved" and r[0]["csat"] == 5 \
        and r[0]["at"] == T("45h") and r[0]["status"] == "resolved", r
    assert r[0]["open_ms"] == 20 * 3600 * 1000, r[0]
    # Nothing after the resolution for this case: no warning/breach of a stopped clock.
    assert cl[-1] is r[0] or all(
        l["at"] <= T("45h") for l in cl if l["case"] == cid), cl[-3:]
    assert not [l for l in _sla(cl, "warning") + _sla(cl, "breached") if l["metric"] == "resolution"]

    # Lines are in time order, and two runs print the same bytes.
    ats = [l["at"] for l in cl]
    assert ats == sorted(ats), ats
    rc1, out1, _ = fw.replay_raw(body, "--cases", *fw.until("48h"))
    rc2, out2, _ = fw.replay_raw(body, "--cases", *fw.until("48h"))
    assert rc1 == rc2 == 0 and out1 == out2 and out1


# ---------------------------------------------------------------- 2. calendars

NY = zoneinfo.ZoneInfo("America/New_York")
HOLIDAY = dt.date(2026, 3, 3)  # a Tuesday

SLA_YAML = """\
sla:
  warn_before: 30m
  calendars:
    support:
      timezone: America/New_York
      hours:
        mon: "09:00-17:00"
        tue: "09:00-17:00"
        wed: "09:00-17:00"
        thu: "09:00-17:00"
        fri: "09:00-17:00"
      holidays: ["2026-03-03"]
  policies:
    - match: "severity == 'MEDIUM' or severity == 'HIGH'"
      calendar: support
      first_response: 8h
      customer_contact: 4h
      resolution: 40h
"""


def _business_add(start, hours):
    """start (aware UTC) plus `hours` of Mon-Fri 09:00-17:00 New York time, skipping
    HOLIDAY; computed here from zoneinfo, independently of the product."""
    left = dt.timedelta(hours=hours)
    day = start.astimezone(NY).date()
    while True:
        if day.weekday() < 5 and day != HOLIDAY:
            lo = dt.datetime.combine(day, dt.time(9), NY).astimezone(dt.timezone.utc)
            hi = dt.datetime.combine(day, dt.time(17), NY).astimezone(dt.timezone.utc)
            lo = max(lo, start)
            if hi > lo:
                if hi - lo >= left:
                    return lo + left
                left -= hi - lo
        day += dt.timedelta(days=1)


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def test_replay_cases_business_calendar():
    d = tempfile.mkdtemp(prefix="fw-e2e-cal-")
    cfg = _write(os.path.join(d, "sla.yaml"), SLA_YAML)
    lines = fw.replay(_journey(), "--cases", "--config", cfg, *fw.until("10d"))
    cl = _case_lines(lines)
    opened = _case(cl, "opened")
    assert len(opened) == 1, cl
    o = opened[0]
    assert o["calendar"] == "support" and o["policy"] == 0, o
    start = fw.BASE + fw.dur(OPEN_AT)  # Monday 20:00 in New York, after hours
    exp = {m: fw.fmt(_business_add(start, h)) for m, h in
           (("first_response", 8), ("customer_contact", 4), ("resolution", 40))}
    # Tuesday is the holiday: the clock starts Wednesday 09:00; resolution crosses the
    # US DST change (Sunday 2026-03-08), so its instant is an hour earlier in UTC.
    assert exp["first_response"] == "2026-03-04T22:00:00Z", exp
    assert exp["resolution"] == "2026-03-10T21:00:00Z", exp
    assert o["due"] == exp, (o["due"], exp)
    for m in ("first_response", "resolution"):
        due = dt.datetime.fromisoformat(exp[m].replace("Z", "+00:00"))
        local = due.astimezone(NY)
        assert local.weekday() < 5 and dt.time(9) < local.time() <= dt.time(17), local
        w, b = _sla(cl, "warning", m), _sla(cl, "breached", m)
        assert [x["at"] for x in w] == [fw.fmt(due - dt.timedelta(minutes=30))], (m, w)
        assert [x["at"] for x in b] == [exp[m]], (m, b)
    # The severity raise (SIG-001, HIGH) matches the same policy: no due moves.
    upd = _case(cl, "updated")
    assert upd and upd[0]["severity"] == "HIGH" and \
        upd[0]["due"]["first_response"] == exp["first_response"] and \
        upd[0]["due"]["resolution"] == exp["resolution"], upd


def test_replay_cases_config_errors_are_refused_with_place():
    d = tempfile.mkdtemp(prefix="fw-e2e-cal-")
    body = fw.ndjson(_journey())
    bad = {
        "badtz.yaml": (SLA_YAML.replace("America/New_York", "America/Nowhere"), 5,
                       r"time zone"),
        "overlap.yaml": (SLA_YAML.replace('tue: "09:00-17:00"', 'tue: "09:00-12:00, 11:00-17:00"'),
                         8, r"overlap"),
    }
    for name, (text, line, word) in bad.items():
        path = _write(os.path.join(d, name), text)
        rc, out, err = fw.replay_raw(body, "--cases", "--config", path, *fw.until("3d"))
        assert rc != 0, (name, rc, err)
        assert out == "", (name, out[:500])
        m = re.search(re.escape(path) + r":(\d+):(\d+): error: (.*)", err)
        if not m:  # the diagnostic may name the file as given or by its base name
            m = re.search(re.escape(name) + r":(\d+):(\d+): error: (.*)", err)
        assert m, (name, err)
        assert int(m.group(1)) == line and int(m.group(2)) > 0, (name, m.group(0))
        assert re.search(word, m.group(3)), (name, m.group(0))


# ---------------------------------------------------------------- 3. HTTP, roles, tokens

ROLES = [("vic", "viewer"), ("ann", "agent"), ("bob", "agent"), ("lee", "lead"),
         ("ada", "admin"), ("svc", "service")]


def _users(s):
    """Add the users with the CLI (before the server starts) and one token each."""
    toks = {}
    for name, role in ROLES:
        rc, out, err = fw.run(["user", "add", name, "--role", role, "--db", s.db])
        assert rc == 0, (name, err)
        rc, out, err = fw.run(["token", "create", "--user", name, "--db", s.db])
        assert rc == 0, (name, err)
        tok = out.strip()
        assert re.fullmatch(r"fw_[A-Za-z0-9_-]{20,}", tok), out
        toks[name] = {"Authorization": "Bearer " + tok}
    return toks


def _req(s, who, method, path, body=None):
    return s.request(method, path, body, headers=who)


def _open_case(s, toks, at="26h"):
    st, body = _req(s, toks["svc"], "POST", "/v1/events", _journey())
    assert st == 200 and body["accepted"] == 4, (st, body)
    st, body = _req(s, toks["ada"], "POST", "/v1/admin/clock", {"now": T(at)})
    assert st == 200 and body["now"] == T(at), (st, body)
    st, body = _req(s, toks["lee"], "GET", "/v1/cases?state=open")
    assert st == 200 and len(body["cases"]) == 1, (st, body)
    return body["cases"][0]["id"]


def _audit(s, toks):
    st, body = _req(s, toks["lee"], "GET", "/v1/audit?limit=1000")
    assert st == 200, (st, body)
    return body["audit"]


def test_serve_cases_api_roles_and_actions():
    s = Server()
    toks = _users(s)
    s.start()
    try:
        cid = _open_case(s, toks)
        path = "/v1/cases/" + cid

        # 401: no token, a wrong token.
        assert s.request("GET", "/v1/queue")[0] == 401
        assert s.request("GET", "/v1/queue",
                         headers={"Authorization": "Bearer fw_" + "x" * 43})[0] == 401
        assert s.request("POST", path + "/respond", {"channel": "email"})[0] == 401

        # 403: a viewer may not work a case; a service token may not read the queue.
        st, body = _req(s, toks["vic"], "POST", path + "/respond", {"channel": "email"})
        assert st == 403, (st, body)
        st, body = _req(s, toks["svc"], "GET", "/v1/queue")
        assert st == 403, (st, body)
        st, body = _req(s, toks["vic"], "GET", "/v1/queue")
        assert st == 200 and [c["id"] for c in body["cases"]] == [cid], (st, body)

        # Guided mode: the case goes to the caller, whatever the body says.
        st, body = _req(s, toks["ann"], "POST", "/v1/queue/next", {"agent": "bob"})
        assert st == 200 and body["id"] == cid and body["assignee"] == "ann", (st, body)
        st, doc = _req(s, toks["lee"], "GET", path)
        assert st == 200 and doc["assignee"] == "ann", doc
        assigned = _case(doc["history"], "assigned")
        assert len(assigned) == 1 and assigned[0]["agent"] == "ann" \
            and assigned[0]["by"] == "ann", assigned
        st, q = _req(s, toks["ann"], "GET", "/v1/queue?filter=mine")
        assert st == 200 and [c["id"] for c in q["cases"]] == [cid], q
        st, q = _req(s, toks["bob"], "GET", "/v1/queue?filter=mine")
        assert st == 200 and q["cases"] == [], q

        # An agent may not act on another agent's case, nor assign to someone else.
        st, body = _req(s, toks["bob"], "POST", path + "/respond", {"channel": "email"})
        assert st == 403, (st, body)
        st, body = _req(s, toks["ann"], "POST", path + "/assign", {"agent": "bob"})
        assert st == 403, (st, body)
        # A lead may.
        st, body = _req(s, toks["lee"], "POST", path + "/assign", {"agent": "bob"})
        assert st == 200 and body["assignee"] == "bob", (st, body)
        st, body = _req(s, toks["lee"], "POST", path + "/assign", {"agent": "ann"})
        assert st == 200 and body["assignee"] == "ann", (st, body)

        # skip without a reason: 400, nothing changed.
        st, before = _req(s, toks["lee"], "GET", path)
        st, body = _req(s, toks["ann"], "POST", path + "/skip", {})
        assert st == 400 and "reason" in body["error"], (st, body)
        st, after = _req(s, toks["lee"], "GET", path)
        assert after["history"] == before["history"] and after["assignee"] == "ann" \
            and after["skipped_by"] == before["skipped_by"], (before["history"], after["history"])

        # resolve with an unknown outcome: 400, nothing changed.
        st, body = _req(s, toks["ann"], "POST", path + "/resolve", {"outcome": "fixed"})
        assert st == 400 and "outcome" in body["error"], (st, body)
        st, after = _req(s, toks["lee"], "GET", path)
        assert after["state"] == "open" and after["history"] == before["history"], after["state"]

        st, body = _req(s, toks["ann"], "POST", path + "/respond", {"channel": "call"})
        assert st == 200, (st, body)
        st, body = _req(s, toks["ann"], "POST", path + "/resolve", {"outcome": "saved", "csat": 5})
        assert st == 200 and body["state"] == "resolved" and body["outcome"] == "saved" \
            and body["csat"] == 5, (st, body)
        resolved = _case(body["history"], "resolved")
        assert len(resolved) == 1 and resolved[0]["agent"] == "ann", body["history"]

        # A resolved case takes no more actions: 409, and nothing is added.
        n = len(body["history"])
        st, err = _req(s, toks["ann"], "POST", path + "/note", {"text": "one more thing"})
        assert st == 409, (st, err)
        st, err = _req(s, toks["lee"], "POST", path + "/assign", {"agent": "bob"})
        assert st == 409, (st, err)
        st, doc = _req(s, toks["lee"], "GET", path)
        assert len(doc["history"]) == n and doc["assignee"] == "ann", doc["history"][n:]

        # Unknown case: 404 for a read and an action.
        assert _req(s, toks["lee"], "GET", "/v1/cases/c_0000000000000000")[0] == 404
        assert _req(s, toks["ann"], "POST", "/v1/cases/c_0000000000000000/note",
                    {"text": "x"})[0] == 404

        # The audit trail: who, role, what, which case, and the status each call got.
        rows = _audit(s, toks)
        mine = [r for r in rows if r["object_kind"] == "case"]

        # A call refused before its action is known is recorded by its route
        # ("POST /v1/cases/{id}/skip"), a checked one by its event type ("case.skipped").
        def has(user, role, status, actions=None, obj=cid):
            return any(r["user"] == user and r["role"] == role and r["status"] == status
                       and (actions is None or any(a in r["action"] for a in actions))
                       and (obj is None or r["object_id"] == obj) for r in mine)

        assert has("ann", "agent", 200, ["queue.next"]), mine
        assert has("lee", "lead", 200, ["GET /v1/cases/" + cid]), mine  # a case read
        assert has("lee", "lead", 200, ["case.assigned"]), mine
        assert has("ann", "agent", 403, ["case.assigned", cid + "/assign"]), mine
        assert has("bob", "agent", 403, ["case.responded", cid + "/respond"]), mine
        assert has("vic", "viewer", 403, [cid + "/respond"]), mine
        assert has("svc", "service", 403, ["GET /v1/queue"], None), mine
        assert has("ann", "agent", 400, ["case.skipped", cid + "/skip"]), mine
        assert has("ann", "agent", 400, ["case.resolved", cid + "/resolve"]), mine
        assert has("ann", "agent", 200, ["case.resolved"]), mine
        assert has("ann", "agent", 409, ["case.note_added", cid + "/note"]), mine
        assert has("lee", "lead", 404, ["GET"], "c_0000000000000000"), mine
        assert has("ann", "agent", 404, ["case.note_added", "/note"], "c_0000000000000000"), mine
        assert not any(r["status"] == 401 for r in rows), "401s are not audited"
    finally:
        s.stop()


# ---------------------------------------------------------------- 4. restart

def test_sla_warning_fires_once_across_kill9():
    s = Server()
    toks = _users(s)
    s.start()
    cid = _open_case(s, toks, at="26h")
    path = "/v1/cases/" + cid
    # first_response is due at 33h, its warning at 32h30m; move to just before.
    st, body = _req(s, toks["ada"], "POST", "/v1/admin/clock", {"now": T("30h")})
    assert st == 200, (st, body)
    st, before = _req(s, toks["lee"], "GET", path)
    assert st == 200 and before["sla"]["first_response"]["warned"] is False, before["sla"]
    audit_before = _audit(s, toks)
    assert any(r["object_id"] == cid and r["user"] == "lee" for r in audit_before)
    s.kill9()

    s.start()
    try:
        st, clk = _req(s, toks["ada"], "GET", "/v1/admin/clock")
        assert st == 200 and clk["now"] == T("30h"), clk
        st, doc = _req(s, toks["lee"], "GET", path)
        assert st == 200 and doc["history"] == before["history"], (doc["history"], before["history"])
        assert doc["state"] == "open" and doc["sla"] == before["sla"], doc["sla"]
        rows = _audit(s, toks)
        seqs = {r["seq"] for r in rows}
        assert all(r["seq"] in seqs for r in audit_before), "audit rows lost in the restart"

        def warnings():
            st, d = _req(s, toks["lee"], "GET", path)
            assert st == 200, (st, d)
            return _sla(d["history"], "warning", "first_response")

        def notices():
            st, m = _req(s, toks["lee"], "GET", "/v1/messages?limit=1000")
            assert st == 200, (st, m)
            return [x for x in m["messages"] if x.get("audience") in ("l1", "agent")
                    and (x.get("subject") or "").startswith("SLA warning")]

        _req(s, toks["ada"], "POST", "/v1/admin/clock", {"now": T("32h29m")})
        assert warnings() == [] and notices() == []
        _req(s, toks["ada"], "POST", "/v1/admin/clock", {"now": T("32h45m")})
        w = warnings()
        assert len(w) == 1 and w[0]["at"] == T("32h30m") and w[0]["due"] == T("33h"), w
        n = notices()
        assert len(n) == 1 and n[0]["audience"] == "l1" and n[0]["customer"] == C, n
        assert "first response" in n[0]["subject"], n
        _req(s, toks["ada"], "POST", "/v1/admin/clock", {"now": T("32h50m")})
        assert len(warnings()) == 1 and len(notices()) == 1

        # And again after a second kill -9: recovery re-derives the timers quietly.
        s.kill9()
        s.start()
        assert len(warnings()) == 1 and len(notices()) == 1
        _req(s, toks["ada"], "POST", "/v1/admin/clock", {"now": T("33h1m")})
        st, d = _req(s, toks["lee"], "GET", path)
        assert [x["at"] for x in _sla(d["history"], "breached", "first_response")] == [T("33h")]
        assert len(warnings()) == 1 and len(notices()) == 1
    finally:
        s.stop()


# ---------------------------------------------------------------- 5. replay equals live

def _replay_equals_live(config=None):
    s = Server(*(["--config", config] if config else []))
    toks = _users(s)
    s.start()
    try:
        cid = _open_case(s, toks, at="26h")
        path = "/v1/cases/" + cid
        clock = lambda t: _req(s, toks["ada"], "POST", "/v1/admin/clock", {"now": T(t)})
        st, body = _req(s, toks["ann"], "POST", "/v1/queue/next", {})
        assert st == 200 and body["assignee"] == "ann", body
        clock("30h")
        assert _req(s, toks["ann"], "POST", path + "/respond", {"channel": "internal"})[0] == 200
        clock("31h")
        assert _req(s, toks["ann"], "POST", path + "/status", {"status": "pending"})[0] == 200
        st, body = _req(s, toks["svc"], "POST", "/v1/events", [
            fw.ev("ticket.created", C, "33h", ticket_id="ZD-9", subject="still no eSIM")])
        assert st == 200, body
        clock("34h")
        assert _req(s, toks["ann"], "POST", path + "/note", {"text": "asked the carrier"})[0] == 200
        assert _req(s, toks["lee"], "POST", path + "/assign", {"agent": "bob"})[0] == 200
        clock("36h")
        assert _req(s, toks["bob"], "POST", path + "/skip", {"reason": "not my area"})[0] == 200
        clock("40h")
        st, body = _req(s, toks["ann"], "POST", path + "/resolve", {"outcome": "resolved", "csat": 4})
        assert st == 200 and body["state"] == "resolved", (st, body)
        final = "52h"  # past SIG-001 (49h5m), which opens a second case
        clock(final)

        st, lst = _req(s, toks["lee"], "GET", "/v1/cases?limit=500")
        assert st == 200, lst
        live = {}
        for c in lst["cases"]:
            st, d = _req(s, toks["lee"], "GET", "/v1/cases/" + c["id"])
            assert st == 200, d
            live[c["id"]] = d["history"]
        assert cid in live and len(live[cid]) >= 8, live
        assert len(live) == 2, sorted(live)
        # The list pages: one case a page, both seen once.
        st, p1 = _req(s, toks["lee"], "GET", "/v1/cases?limit=1")
        assert st == 200 and len(p1["cases"]) == 1 and p1["next_cursor"], p1
        st, p2 = _req(s, toks["lee"], "GET", "/v1/cases?limit=1&cursor=%s" % p1["next_cursor"])
        assert st == 200 and len(p2["cases"]) == 1, p2
        assert {p1["cases"][0]["id"], p2["cases"][0]["id"]} == set(live), (p1, p2)
        st, res = _req(s, toks["lee"], "GET", "/v1/cases?state=resolved")
        assert st == 200 and [c["id"] for c in res["cases"]] == [cid], res
        st, outcomes = _req(s, toks["ann"], "GET", "/v1/stats/outcomes")
        assert st == 200 and outcomes["team"]["cases_resolved"] == 1, outcomes
        st, board = _req(s, toks["lee"], "GET", "/v1/leaderboard")
        assert st == 200 and [a["agent"] for a in board["leaderboard"]] == ["ann"], board
        st, me = _req(s, toks["ann"], "GET", "/v1/stats/me")
        assert st == 200 and me["agent"] == "ann" and me["csat"] == {"n": 1, "mean": 4.0}, me
    finally:
        s.stop()

    db = sqlite3.connect(s.db)
    rows = [r[0] for r in db.execute("SELECT body FROM events ORDER BY seq")]
    db.close()
    journal = [json.loads(b) for b in rows]
    kept = [e for e in journal if e.get("type") != "forewarn.clock"]
    assert len(kept) < len(journal), "no clock rows in the journal?"
    assert any(e["type"].startswith("case.") for e in kept)
    body = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in kept)
    lines = fw.replay(body, "--cases", "--stats", *(["--config", config] if config else []),
                      "--until", T(final))
    # The figures: replay's closing stats line equals what serve's API gave.
    stats = [l for l in lines if l.get("kind") == "stats"]
    assert len(stats) == 1, lines[-3:]
    assert stats[0]["outcomes"] == outcomes, (stats[0]["outcomes"], outcomes)
    assert stats[0]["leaderboard"] == board["leaderboard"], (stats[0]["leaderboard"], board)
    replayed = {}
    # A case's history holds its follow-up tasks' lines too (docs/cases.md, "Follow-up tasks").
    for l in lines:
        if l.get("kind") in ("case", "sla", "task") and l.get("case"):
            replayed.setdefault(l["case"], []).append(l)
    assert set(replayed) == set(live), (sorted(replayed), sorted(live))
    for k in live:
        assert replayed[k] == live[k], "case %s:\nreplay: %s\nserve:  %s" % (
            k, json.dumps(replayed[k], indent=0), json.dumps(live[k], indent=0))


def test_replay_of_serve_journal_equals_case_history():
    _replay_equals_live()


def test_replay_of_serve_journal_equals_case_history_with_calendar():
    d = tempfile.mkdtemp(prefix="fw-e2e-cal-")
    _replay_equals_live(_write(os.path.join(d, "sla.yaml"), SLA_YAML))


# ---------------------------------------------------------------- 6. ingest validation

def test_case_event_with_bad_status_is_refused():
    with Server() as s:
        st, body = s.post_events(_journey())
        assert st == 200, body
        s.clock(T("26h"))
        bad = fw.ev("case.status_changed", C, "26h", agent="ann", status="closed")
        st, body = s.post_events([bad])
        assert st == 400, (st, body)
        text = json.dumps(body)
        assert "data.status" in text and "closed" in text, body
        # Nothing was journaled: the case's history has no status change.
        st, lst = s.request("GET", "/v1/cases")
        assert st == 200 and len(lst["cases"]) == 1, lst
        st, d = s.request("GET", "/v1/cases/" + lst["cases"][0]["id"])
        assert not [l for l in d["history"] if l.get("change") == "status"], d["history"]


# ---------------------------------------------------------------- notices for the assignee

def test_sla_notice_for_an_assigned_case_goes_to_the_agent():
    """An assigned case's warning is addressed to its agent (audience "agent"), and
    the messages API can list that audience like any other."""
    s = Server()
    toks = _users(s)
    s.start()
    try:
        cid = _open_case(s, toks, at="26h")
        st, body = _req(s, toks["ann"], "POST", "/v1/cases/%s/assign" % cid, {})
        assert st == 200 and body["assignee"] == "ann", (st, body)
        _req(s, toks["ada"], "POST", "/v1/admin/clock", {"now": T("32h45m")})
        st, m = _req(s, toks["lee"], "GET", "/v1/messages?limit=1000")
        assert st == 200, (st, m)
        sla = [x for x in m["messages"] if (x.get("subject") or "").startswith("SLA warning")]
        assert len(sla) == 1 and sla[0]["audience"] == "agent" \
            and sla[0].get("recipient") == "ann", sla
        st, m = _req(s, toks["lee"], "GET", "/v1/messages?limit=1000&audience=agent")
        assert st == 200, ("GET /v1/messages?audience=agent", st, m)
        assert [x["id"] for x in m["messages"]] == [sla[0]["id"]], m
    finally:
        s.stop()


def test_incident_links_the_cases_of_its_customers():
    """Three eSIM failures within the hour make an incident; each customer's case lists it."""
    evs = [{"specversion": "1.0", "id": "inc%d" % i, "type": "esim.status_changed",
            "subject": "u%d@example.com" % i, "time": "2026-02-01T10:0%d:00Z" % i,
            "data": {"status": "ERROR"}} for i in range(3)]
    rc, out, err = fw.run(["replay", "--cases", "-"], input="".join(json.dumps(e) + "\n" for e in evs))
    assert rc == 0, err
    lines = [json.loads(l) for l in out.splitlines()]
    opened = {l["customer"]: l["case"] for l in lines if l["kind"] == "case" and l["event"] == "opened"}
    inc = [l for l in lines if l["kind"] == "incident" and l["update"] == "opened"]
    assert len(opened) == 3 and len(inc) == 1, lines
    linked = {l["case"]: l["incident"] for l in lines
              if l["kind"] == "case" and l.get("change") == "incident"}
    assert linked == {c: inc[0]["id"] for c in opened.values()}, (linked, opened)


def test_case_actions_refuse_unknown_fields_and_change_nothing():
    """Mass assignment (OWASP API3, docs/security.md): a case action takes only its own fields.
    A body that tries to set who acted, when, or the case's owner is refused with the field
    named, and the case's history is unchanged; the acting person is the token's."""
    s = Server()
    toks = _users(s)
    s.start()
    try:
        cid = _open_case(s, toks)
        path = "/v1/cases/" + cid
        st, before = _req(s, toks["lee"], "GET", path)
        assert st == 200, before
        for action, body, field in (("note", {"text": "hi", "by": "lee"}, "by"),
                                    ("respond", {"channel": "call", "at": "2026-01-01T00:00:00Z"}, "at"),
                                    ("resolve", {"outcome": "saved", "assignee": "bob"}, "assignee"),
                                    ("assign", {"agent": "ann", "role": "admin"}, "role"),
                                    ("steps/1/skip", {"reason": "n/a", "done": True}, "done")):
            st, b = _req(s, toks["ann"], "POST", path + "/" + action, body)
            assert st == 400 and "unknown field '%s'" % field in b["error"], (action, st, b)
            assert "nothing was changed" in b["error"], b
        st, after = _req(s, toks["lee"], "GET", path)
        assert after["history"] == before["history"] and after["assignee"] == before["assignee"], after
        # The same action with only its own fields works, as the token's user.
        st, b = _req(s, toks["ann"], "POST", path + "/note", {"text": "hi"})
        assert st == 200, b
        st, after = _req(s, toks["lee"], "GET", path)
        notes = [h for h in after["history"] if h.get("change") == "note"]
        assert len(notes) == 1 and notes[0]["agent"] == "ann" and notes[0]["text"] == "hi", notes
    finally:
        s.stop()
