"""docs/guidance.md stays true: its playbook example passes `playbooks check`,
its test example passes `playbooks test`, and its replay example prints
the lines the page shows (each a subset of a real line, in order)."""
import json
import os
import re
import tempfile

from fw import ROOT, run

DOC = os.path.join(ROOT, "docs", "guidance.md")


def _fences():
    with open(DOC) as f:
        text = f.read()
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)]


def _tmp(text, suffix):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


def test_the_playbook_example_loads_and_the_test_example_passes():
    yamls = [t for lang, t in _fences() if lang == "yaml"]
    pb = [t for t in yamls if t.startswith("playbooks:")]
    tests = [t for t in yamls if t.startswith("tests:")]
    assert len(pb) == 1 and len(tests) == 1, yamls
    p = _tmp(pb[0], ".yaml")
    try:
        rc, out, err = run(["playbooks", "check", p])
        assert rc == 0 and "OK, 1 playbook(s)" in out, err
    finally:
        os.unlink(p)
    t = _tmp(tests[0], ".yaml")
    try:
        rc, out, err = run(["playbooks", "test", t])
        assert rc == 0 and "3 test(s), 0 failed" in out, out + err
    finally:
        os.unlink(t)


def test_the_replay_example_prints_what_the_page_shows():
    fences = _fences()
    # The playbook section's replay example (the sentiment section's ndjson is test_sentiment's).
    nd = [i for i, (lang, text) in enumerate(fences) if lang == "ndjson" and '"type"' in text]
    assert len(nd) == 1, nd
    shown = [json.loads(l) for l in fences[nd[0] + 2][1].splitlines() if l.strip()]
    assert len(shown) == 6, shown
    p = _tmp(fences[nd[0]][1], ".ndjson")
    try:
        rc, out, err = run(["replay", "--cases", "--until", "2026-03-04T00:00:00Z", p])
    finally:
        os.unlink(p)
    assert rc == 0, err
    lines = [json.loads(l) for l in out.splitlines()]
    pos = 0
    for want in shown:
        while pos < len(lines) and not all(lines[pos].get(k) == v for k, v in want.items()):
            pos += 1
        assert pos < len(lines), "docs/guidance.md shows %s, which replay does not print" % want
        pos += 1
