"""docs/cases.md stays true: its replay example prints what the page says
(each shown line is a subset of a real line, in the same order), its
config example loads and moves the due times as the page says, and the
default targets in its table are the ones replay uses."""

import json
import os
import re
import tempfile

from fw import ROOT, run
from server import Server

DOC = os.path.join(ROOT, "docs", "cases.md")


def _fences():
    """(language, text) of every fenced block, in page order."""
    with open(DOC) as f:
        text = f.read()
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)]


def _replay(ndjson, *args):
    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as f:
        f.write(ndjson)
        path = f.name
    try:
        rc, out, err = run(["replay", "--cases"] + list(args) + [path])
    finally:
        os.unlink(path)
    assert rc == 0, err
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def _subset(small, big):
    return all(k in big and big[k] == v for k, v in small.items())


def test_replay_example_prints_what_the_page_shows():
    fences = _fences()
    events = [t for lang, t in fences if lang == "ndjson"]
    assert len(events) == 1, "one ndjson example expected"
    i = [t for _, t in fences].index(events[0])
    shown = [json.loads(l) for l in fences[i + 2][1].splitlines() if l.strip()]
    assert len(shown) >= 5, shown
    lines = [l for l in _replay(events[0]) if l["kind"] in ("case", "sla")]
    pos = 0
    for want in shown:
        while pos < len(lines) and not _subset(want, lines[pos]):
            pos += 1
        assert pos < len(lines), "docs/cases.md shows %s, which replay does not print (in order)" % want
        pos += 1


def _medium_case_on_friday():
    # A MEDIUM order-stuck case (SIG-006): the order 24h before Friday 2 January 2026 05:00 New York.
    evs = [
        {"specversion": "1.0", "id": "o1", "type": "order.created", "subject": "f@example.com",
         "time": "2026-01-01T10:00:00Z", "data": {"order_id": "o-1"}},
        {"specversion": "1.0", "id": "o2", "type": "payment.completed", "subject": "f@example.com",
         "time": "2026-01-01T10:01:00Z", "data": {"order_id": "o-1", "amount": 1}},
    ]
    return "".join(json.dumps(e) + "\n" for e in evs)


def test_config_example_applies_business_hours():
    yaml_blocks = [t for lang, t in _fences() if lang == "yaml" and t.startswith("sla:")]
    assert yaml_blocks, "the sla: example is missing"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(yaml_blocks[0])
        cfg = f.name
    try:
        lines = _replay(_medium_case_on_friday(), "--config", cfg, "--until", "2026-01-03T00:00:00Z")
    finally:
        os.unlink(cfg)
    opened = [l for l in lines if l["kind"] == "case" and l["event"] == "opened"]
    assert len(opened) == 1, lines
    o = opened[0]
    # As the page says: opened Friday 05:00 New York (10:00 UTC), first response due 17:00 New York.
    assert o["at"] == "2026-01-02T10:00:00Z" and o["severity"] == "MEDIUM", o
    assert o["due"]["first_response"] == "2026-01-02T22:00:00Z", o
    assert o["policy"] == 0 and o["calendar"] == "support", o


def test_default_targets_are_the_table():
    with open(DOC) as f:
        text = f.read()
    row = re.search(r"^\| MEDIUM \| (\w+) \| (\w+) \| (\w+) \|$", text, re.M)
    assert row, "the MEDIUM row of the defaults table is missing"
    hours = [int(x.rstrip("h")) for x in row.groups()]
    o = [l for l in _replay(_medium_case_on_friday(), "--until", "2026-01-03T00:00:00Z")
         if l["kind"] == "case"][0]
    base = 1767348000  # 2026-01-02T10:00:00Z
    import datetime as dt
    want = [dt.datetime.fromtimestamp(base + h * 3600, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            for h in hours]
    got = [o["due"][m] for m in ("first_response", "customer_contact", "resolution")]
    assert got == want, (got, want)


def test_priority_weights_example_sets_the_queue_weights():
    block = [t for lang, t in _fences() if lang == "yaml" and t.startswith("priority:")]
    assert len(block) == 1, "the priority: example is missing"
    want = {k: float(v) for k, v in re.findall(r"(\w+): ([0-9.]+)", block[0])}
    d = tempfile.mkdtemp(prefix="fw-docs-cases-")
    cfg = os.path.join(d, "priority.yaml")
    with open(cfg, "w") as f:
        f.write(block[0])
    with Server("--config", cfg, workdir=d) as s:
        evs = [json.loads(l) for l in _medium_case_on_friday().splitlines()]
        assert s.post_events(evs)[0] == 200
        s.clock("2026-01-02T12:00:00Z")
        status, q = s.request("GET", "/v1/queue")
        assert status == 200 and q["cases"], q
        comps = q["cases"][0]["priority"]["components"]
        total = sum(want.values())
        for name, w in want.items():
            assert abs(comps[name]["weight"] - w / total) < 1e-9, (name, comps[name], want)
    bad = os.path.join(d, "bad.yaml")
    with open(bad, "w") as f:
        f.write("priority:\n  weights: {value: lots}\n")
    rc, out, err = run(["replay", "--cases", "--config", bad, "/dev/null"])
    assert rc != 0 and "bad.yaml:2:" in err and "priority.weights.value" in err, (rc, err)
