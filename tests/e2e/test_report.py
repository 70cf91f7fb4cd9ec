"""The outreach report (seed 001's "Proactive Outreach Report", docs/known-issues.md).

Rendered from a committed events file (a replay) and compared with golden
files in md and json; the html is checked for its sections, inline SVG and
no external requests; --segment filters every section; --db reports on a
live store's journal the same as the file; no history says so.
"""

import json
import os
import re

from fw import ROOT, run

FIX = os.path.join(ROOT, "tests", "e2e", "fixtures")
EVENTS = os.path.join(FIX, "outreach_events.ndjson")
ARGS = ["--rules", os.path.join(ROOT, "rules", "telecom.yaml"),
        "--rules", os.path.join(ROOT, "rules", "engagement.yaml"), "--until", "2026-04-16T00:00:00Z"]
SECTIONS = ["Executive Summary", "Known Issues Affecting Customers", "Outreach Candidates",
            "Adoption Gaps Identified", "Usage Decline Alerts", "Impact Projection",
            "Actions Taken", "Follow-up Tasks Created"]


def _report(*extra):
    rc, out, err = run(["report", "outreach", "--events", EVENTS] + ARGS + list(extra))
    assert rc == 0, err
    return out


def _golden(name):
    with open(os.path.join(FIX, name)) as f:
        return f.read()


def test_markdown_matches_the_golden_file_in_seed_order():
    out = _report()
    assert out == _golden("outreach_report.md")
    pos = [out.index("### " + s) for s in SECTIONS]
    assert pos == sorted(pos)
    assert "SECRET" not in out


def test_json_matches_the_golden_file():
    out = _report("--format", "json")
    assert json.loads(out) == json.loads(_golden("outreach_report.json"))
    m = json.loads(out)
    ki = {k["id"]: k for k in m["known_issues"]}
    # KI-7: Unlimited and hotspot used within 14 days: bob only (ann's use was 18 days before).
    assert (ki["KI-7"]["affected"], ki["KI-7"]["told"]) == (1, 1)
    assert (ki["MW-1"]["affected"], ki["MW-1"]["told"]) == (2, 2)
    imp = {i["type"]: i for i in m["impact_projection"]}
    # No issue alert is 7 days old at the report date: no rate is invented.
    assert imp["issue_alert"]["history"] == 0 and imp["issue_alert"]["response_rate"] is None
    assert imp["adoption_help"]["history"] == 3


def test_no_history_says_so():
    import tempfile
    with open(EVENTS) as f:
        first = [l for l in f if json.loads(l)["time"] < "2026-03-02T12:00:00Z"]
    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as t:
        t.writelines(first)
    rc, out, err = run(["report", "outreach", "--events", t.name] + ARGS[:4] +
                       ["--until", "2026-03-04T00:00:00Z"])
    os.unlink(t.name)
    assert rc == 0, err
    assert "| Expected Ticket Prevention | not enough history |" in out
    assert out.count("not enough history") >= 4


def test_html_has_the_sections_and_inline_charts_only():
    out = _report("--format", "html")
    assert out.startswith("<!DOCTYPE html>")
    for s in SECTIONS:
        assert "<h3>%s</h3>" % s in out
    assert out.count("<svg") == 2
    assert not re.search(r'(src|href)\s*=\s*"https?:', out), "external request"
    assert "<script" not in out and "SECRET" not in out


def test_segment_filters_every_section():
    m = json.loads(_report("--format", "json", "--segment", 'customer.plan == "Basic"'))
    assert m["segment"] == 'customer.plan == "Basic"' and m["customers"] == 2
    who = {c["customer"] for c in m["candidates"]} | {a["customer"] for a in m["actions_taken"]}
    who |= {t["customer"] for t in m["followup_tasks"]}
    assert who == {"cy@example.com", "eve@example.com"}, who
    ki = {k["id"]: k for k in m["known_issues"]}
    assert ki["KI-7"]["affected"] == 0 and ki["MW-1"]["affected"] == 2
    assert m["usage_declines"] == []
    rc, out, err = run(["report", "outreach", "--events", EVENTS, "--segment", "plan ==",
                        "--format", "json"] + ARGS)
    assert rc != 0 and "--segment:1:" in err, err


def test_report_on_a_live_store_matches_the_file():
    from server import Server
    with open(EVENTS) as f:
        evs = [json.loads(l) for l in f]
    s = Server(*ARGS[:4])
    s.start()
    try:
        assert s.post_events(evs)[0] == 200
    finally:
        s.stop()
    rc, out, err = run(["report", "outreach", "--db", s.db] + ARGS)
    assert rc == 0, err
    assert out == _golden("outreach_report.md")


# ---- honest dates (issue 13): no 1970, every date RFC 3339, empty stores say so ----

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z")


def _dates_are_rfc3339(text):
    """Every date-looking token in text is a whole RFC 3339 UTC time, and none is 1970."""
    assert "1970" not in text
    for m in re.finditer(r"\d{4}-\d\d-\d\d", text):
        assert RFC3339.match(text, m.start()), text[m.start() - 20:m.start() + 40]


def _empty_file():
    import tempfile
    t = tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False)
    t.close()
    return t.name


def test_an_empty_replay_says_no_events_yet_in_every_format():
    path = _empty_file()
    try:
        outs = {}
        for fmt in ("md", "html", "json"):
            rc, outs[fmt], err = run(["report", "outreach", "--events", path] + ARGS[:4] +
                                     ["--format", fmt])
            assert rc == 0, err
            _dates_are_rfc3339(outs[fmt])
    finally:
        os.unlink(path)
    assert "**Report Date**: no events yet" in outs["md"]
    assert "No events yet: there is no history" in outs["md"]
    assert "<b>Report Date</b>: no events yet" in outs["html"]
    m = json.loads(outs["json"])
    assert m["report_date"] is None and m["period"] == {"from": None, "to": None}
    assert m["customers"] == 0 and m["candidates"] == [] and m["actions_taken"] == []
    assert m["summary"]["expected_ticket_prevention"] is None
    assert all(i["history"] == 0 and i["response_rate"] is None for i in m["impact_projection"])
    assert outs["md"].count("not enough history (0 past)") == 6


def test_every_date_in_the_fixture_report_is_rfc3339_and_the_period_is_stated():
    for fmt in ("md", "html", "json"):
        _dates_are_rfc3339(_report("--format", fmt))
    out = _report("--from", "2026-04-01T00:00:00Z", "--to", "2026-04-12T00:00:00Z")
    assert "**Period**: 2026-04-01T00:00:00Z to 2026-04-12T00:00:00Z\n" in out
    assert "**Period**: all history (no --from or --to)\n" in _report()
    m = json.loads(_report("--format", "json", "--from", "2026-04-01T00:00:00Z"))
    assert m["period"] == {"from": "2026-04-01T00:00:00Z", "to": None}
    assert all(a["at"] >= "2026-04-01T00:00:00Z" for a in m["actions_taken"])
    assert m["actions_taken"]


def test_report_on_an_empty_virtual_clock_store_then_after_the_clock_moved():
    from server import Server
    s = Server(*ARGS[:4])
    s.start()
    s.stop()
    rc, out, err = run(["report", "outreach", "--db", s.db] + ARGS[:4])
    assert rc == 0, err
    assert "**Report Date**: no events yet" in out and "1970" not in out
    # A clock move is a journal row: the report must replay around it and be dated by it.
    s.start()
    try:
        assert s.clock("2026-05-01T12:00:00Z")[0] == 200
    finally:
        s.stop()
    rc, out, err = run(["report", "outreach", "--db", s.db] + ARGS[:4] + ["--format", "json"])
    assert rc == 0, err
    assert json.loads(out)["report_date"] == "2026-05-01T12:00:00Z"


def test_report_on_an_empty_wall_clock_store_is_dated_now():
    import datetime as dt
    from server import Server
    s = Server(*ARGS[:4], virtual=False)
    s.start()
    s.stop()
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    rc, out, err = run(["report", "outreach", "--db", s.db] + ARGS[:4] + ["--format", "json"])
    after = dt.datetime.now(dt.timezone.utc)
    assert rc == 0, err
    got = dt.datetime.fromisoformat(json.loads(out)["report_date"].replace("Z", "+00:00"))
    assert before <= got <= after, (before, got, after)
