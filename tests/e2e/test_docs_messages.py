"""docs/messages.md stays true: each replay example (an `<!-- replay: ARGS -->`
comment, an ndjson block, then a jsonl block) prints what the page shows.
Each shown line is a subset of a real message line (nested objects compared
by their own subsets), in the same order among the lines it could match."""

import json
import os
import re
import tempfile

from fw import ROOT, run

DOC = os.path.join(ROOT, "docs", "messages.md")


def _examples():
    with open(DOC) as f:
        text = f.read()
    pat = re.compile(r"<!-- replay:([^>]*)-->\s*```ndjson\n(.*?)^```$.*?```jsonl\n(.*?)^```$", re.M | re.S)
    return [(m.group(1).split(), m.group(2), m.group(3)) for m in pat.finditer(text)]


def _subset(small, big):
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _subset(v, big[k]) for k, v in small.items())
    return small == big


def _replay(ndjson, args):
    with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as f:
        f.write(ndjson)
        path = f.name
    try:
        rc, out, err = run(["replay", "--messages"] + args + [path])
    finally:
        os.unlink(path)
    assert rc == 0, err
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def test_the_page_has_its_three_examples():
    assert len(_examples()) == 3, [a for a, _, _ in _examples()]


def test_every_replay_example_prints_what_the_page_shows():
    for args, events, shown in _examples():
        want = [json.loads(l) for l in shown.splitlines() if l.strip()]
        got = [l for l in _replay(events, args) if l["kind"] == "message"]
        # The lines the page could be showing: those of the audiences and channels it names.
        kinds = {(w.get("audience", "customer"), w.get("channel")) for w in want}
        got = [l for l in got if (l["audience"], l["channel"]) in kinds
               or ("customer", None) in kinds and l["audience"] == "customer"]
        for w in want:
            w.setdefault("audience", "customer")
        pos = 0
        for w in want:
            while pos < len(got) and not _subset(w, got[pos]):
                pos += 1
            assert pos < len(got), "docs/messages.md shows %s, which replay does not print (in order): %s" % (
                w, [{k: l[k] for k in ("customer", "channel", "signals", "status", "at")} for l in got])
            pos += 1
        # Nothing left out: the shown lines are all the messages there are of those kinds.
        assert len(got) == len(want), [{k: l[k] for k in ("customer", "channel", "status", "at")} for l in got]
