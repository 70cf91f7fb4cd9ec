"""The README's tour is real: its journey replays to the detections it shows,
--messages adds message decisions, and the rule commands it names succeed."""
import json
import os
import re

from fw import run, ROOT


def _readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def _journey():
    m = re.search(r"<<'NDJSON'\n(.*?)NDJSON\n", _readme(), re.S)
    assert m, "the README's journey heredoc is missing"
    return m.group(1)


def test_tour_replay_prints_the_detections_shown():
    text = _readme()
    shown = re.findall(r'^(\{"kind":"detection".*?),\.\.\.\}$', text, re.M)
    assert len(shown) == 2, shown
    until = re.search(r"replay --until (\S+) /tmp/journey.ndjson", text).group(1)
    rc, out, err = run(["replay", "--until", until], input=_journey())
    assert rc == 0, err
    lines = out.splitlines()
    for s in shown:
        assert any(l.startswith(s) for l in lines), (s, out)


def test_tour_messages_and_rule_commands():
    rc, out, err = run(["replay", "--messages", "--until", "2026-01-04T00:00:00Z"], input=_journey())
    assert rc == 0, err
    msgs = [json.loads(l) for l in out.splitlines() if '"kind":"message"' in l]
    assert {(m["audience"], m["channel"]) for m in msgs} >= {("customer", "email"), ("l1", "ticket"), ("chatbot", "chatbot")}, msgs
    rc, out, err = run(["rules", "check", os.path.join(ROOT, "rules/telecom.yaml")])
    assert rc == 0 and "OK, 11 signal(s)" in out, (out, err)
    rc, out, err = run(["rules", "test", os.path.join(ROOT, "rules/telecom.test.yaml")])
    assert rc == 0 and out.strip().endswith("0 failed"), (out, err)


def test_tour_demo_commands_give_the_figures_described():
    text = _readme()
    m = re.search(r"(build/forewarn demo [^\n]*)\n(build/forewarn replay --stats [^\n|]*)\| tail -1", text)
    assert m, "the README's demo commands are missing"
    demo = m.group(1).replace("build/forewarn ", "").split()
    replay = m.group(2).replace("build/forewarn ", "").split()
    rc, out, err = run(demo)
    assert rc == 0, err
    rc, out, err = run(replay)
    assert rc == 0, err
    last = json.loads(out.splitlines()[-1])
    assert last["kind"] == "stats", last
    team = last["outcomes"]["team"]
    assert team["cases_resolved"] >= 72 and team["csat"]["n"] > 0, team
    assert all(k in team for k in ("sla", "resolution_ms", "first_contact_resolution", "saved", "prevention"))
    assert last["outcomes"]["playbooks"] and len(last["leaderboard"]) == 5, last["leaderboard"]
    assert all("streak" in a and "achievements" in a for a in last["leaderboard"])


def test_tour_engagement_and_report_steps_are_there_and_run():
    # Steps 10 (the engagement pack beside telecom's) and 12 (known issues, the report):
    # present, and their commands work on the tour's journey, served on the wall clock.
    text = _readme()
    assert "**10. Watch the quiet ones.**" in text and "**12. Tell the affected, and report.**" in text
    packs = re.search(r"\(`(--rules rules/telecom.yaml --rules rules/engagement.yaml)`\)", text)
    assert packs, "step 10's --rules pair is missing"
    rules = [a if not a.startswith("rules/") else os.path.join(ROOT, a) for a in packs.group(1).split()]
    rc, out, err = run(["replay", "--until", "2026-01-04T00:00:00Z"] + rules, input=_journey())
    assert rc == 0 and '"signal":"SIG-001"' in out, err
    cmd = re.search(r"`forewarn (report outreach --db)\s+forewarn.db (--format md)`", text)
    assert cmd, "step 12's report command is missing"
    from server import Server
    s = Server(virtual=False)
    s.start()
    try:
        assert s.post_events([json.loads(l) for l in _journey().splitlines()])[0] == 200
    finally:
        s.stop()
    rc, out, err = run(cmd.group(1).split() + [s.db] + cmd.group(2).split())
    assert rc == 0, err
    assert out.startswith("## Proactive Outreach Report\n\n**Report Date**: 20"), out[:200]
    assert "| jodi@example.com | Journey Alert |" in out, out
