"""docs/tasks.md stays true: its replay example prints what the page shows
(each shown line is a subset of a real task line, in the same order), and
its config example loads."""

import json
import os
import re
import tempfile

from fw import ROOT, run

DOC = os.path.join(ROOT, "docs", "tasks.md")


def _fences():
    with open(DOC) as f:
        text = f.read()
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)]


def _replay(ndjson, *args):
    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as f:
        f.write(ndjson)
        path = f.name
    try:
        rc, out, err = run(["replay"] + list(args) + [path])
    finally:
        os.unlink(path)
    assert rc == 0, err
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def test_replay_example_prints_what_the_page_shows():
    text = open(DOC).read()
    m = re.search(r"<!-- replay: (.*?) -->", text)
    assert m, "the replay arguments of the example are missing"
    fences = _fences()
    events = [t for lang, t in fences if lang == "ndjson"]
    assert len(events) == 1, "one ndjson example expected"
    i = [t for _, t in fences].index(events[0])
    shown = [json.loads(l) for l in fences[i + 1][1].splitlines() if l.strip()]
    assert len(shown) == 5, shown
    lines = [l for l in _replay(events[0], *m.group(1).split()) if l["kind"] == "task"]
    pos = 0
    for want in shown:
        while pos < len(lines) and not all(k in lines[pos] and lines[pos][k] == v
                                           for k, v in want.items()):
            pos += 1
        assert pos < len(lines), "docs/tasks.md shows %s, which replay does not print (in order)" % want
        pos += 1
    # Nothing else happened to the tasks than the page says.
    assert len(lines) == len(shown), lines


def test_config_example_loads():
    blocks = [t for lang, t in _fences() if lang == "yaml" and t.startswith("outreach:")]
    assert blocks, "the outreach: example is missing"
    events = [t for lang, t in _fences() if lang == "ndjson"][0]
    for block, want in ((blocks[0], "2026-03-05T10:00:05Z"),
                        (blocks[0].replace("followup_task: 3d", "followup_task: 1d"),
                         "2026-03-03T10:00:05Z")):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(block)
            cfg = f.name
        try:
            lines = _replay(events, "--cases", "--config", cfg, "--until", "2026-03-06T00:00:00Z")
        finally:
            os.unlink(cfg)
        created = [l for l in lines if l["kind"] == "task" and l["event"] == "created"]
        assert created and created[0]["due"] == want, (block, created)
