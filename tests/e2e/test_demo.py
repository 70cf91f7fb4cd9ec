"""`forewarn demo` (seed 002, Track F): a deterministic journal with weeks of
worked cases and seed 002's live scenarios, which a server loads with
`ingest --backfill` into a working queue, measured outcomes and a
leaderboard, and which `replay --stats` measures the same way."""

import json
import os
import tempfile

from fw import run
from server import Server

NOW = "2026-12-07T12:00:00Z"


def _demo(*args):
    rc, out, err = run(["demo"] + list(args))
    assert rc == 0, err
    return out


def test_the_same_seed_and_now_give_the_same_journal_and_another_seed_another():
    a = _demo("--seed", "7", "--now", NOW)
    assert a == _demo("--seed", "7", "--now", NOW)
    assert a != _demo("--seed", "8", "--now", NOW)
    events = [json.loads(l) for l in a.splitlines()]
    assert len(events) > 500 and len({e["id"] for e in events}) == len(events)
    assert all(e["time"] <= NOW for e in events), max(e["time"] for e in events)
    assert not any(e["type"].startswith("detection") for e in events)  # forewarn finds those


def test_bad_options_are_refused():
    for args, want in ((["--cases", "10"], "--cases"), (["--now", "yesterday"], "--now"),
                       (["--seed", "x"], "--seed"), (["--colour"], "unknown argument")):
        rc, out, err = run(["demo"] + args)
        assert rc == 2 and out == "" and want in err, (args, rc, err)


def test_replay_measures_the_history_and_leaves_the_live_cases_open():
    d = tempfile.mkdtemp(prefix="fw-demo-")
    path = os.path.join(d, "demo.ndjson")
    with open(path, "w") as f:
        f.write(_demo("--now", NOW))
    rc, out, err = run(["replay", "--stats", "--until", NOW, path])
    assert rc == 0, err
    lines = [json.loads(l) for l in out.splitlines()]
    opened = {l["case"]: l for l in lines if l.get("kind") == "case" and l["event"] == "opened"}
    resolved = {l["case"] for l in lines if l.get("kind") == "case" and l["event"] == "resolved"}
    still_open = [opened[c]["signals"] for c in opened if c not in resolved]
    assert len(still_open) == 4, still_open  # seed 002's four live scenarios
    stats = [l for l in lines if l.get("kind") == "stats"][0]
    team = stats["outcomes"]["team"]
    assert team["cases_resolved"] >= 60, team
    assert 0 < team["saved"] < team["cases_resolved"], team
    assert team["csat"]["n"] > 30 and 1 <= team["csat"]["mean"] <= 5, team["csat"]
    assert 0 < team["first_contact_resolution"]["rate"] < 1, team["first_contact_resolution"]
    assert len(stats["leaderboard"]) == 5, [a["agent"] for a in stats["leaderboard"]]


def test_a_server_loaded_with_the_demo_shows_a_queue_outcomes_and_a_leaderboard():
    """Loaded into a server on its virtual clock (time moves with the journal, as in replay),
    the demo gives a queue of the four live cases and the replay's figures exactly."""
    d = tempfile.mkdtemp(prefix="fw-demo-srv-")
    path = os.path.join(d, "demo.ndjson")
    with open(path, "w") as f:
        f.write(_demo("--now", NOW, "--seed", "3"))
    with Server() as s:
        rc, out, err = run(["ingest", "--backfill", path, "--url", s.base, "--batch", "500"])
        assert rc == 0, err
        assert s.clock(NOW)[0] == 200
        st, q = s.request("GET", "/v1/queue")
        assert st == 200, q
        assert len(q["cases"]) == 4, [c.get("reason") for c in q["cases"]]
        st, o = s.request("GET", "/v1/stats/outcomes")
        assert st == 200 and o["team"]["cases_resolved"] >= 60, o["team"]
        st, b = s.request("GET", "/v1/leaderboard")
        assert st == 200 and len(b["leaderboard"]) == 5, b
    rc, rout, err = run(["replay", "--stats", "--until", NOW, path])
    assert rc == 0, err
    stats = [json.loads(l) for l in rout.splitlines() if '"kind":"stats"' in l][0]
    assert stats["outcomes"] == o, (stats["outcomes"]["team"], o["team"])
    assert stats["leaderboard"] == b["leaderboard"]
