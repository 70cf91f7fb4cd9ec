"""docs/events.md stays true: every ```json and ```ndjson example is a valid
event (or array of events) that `forewarn replay` accepts, every type of the
telecom vocabulary table has an example, and the behaviour the page states
for its examples is what replay does."""

import json
import os
import re

from fw import ROOT, replay, replay_raw, transitions

DOC = os.path.join(ROOT, "docs", "events.md")

VOCABULARY = [
    "customer.updated", "order.created", "order.status_changed", "payment.completed",
    "payment.failed", "esim.status_changed", "activation.completed", "portin.status_changed",
    "chat.started", "chat.escalated", "ticket.created", "ticket.resolved",
    "outage.started", "outage.resolved",
]


def _no_dup_keys(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    assert not dup, "duplicate keys %s in a docs example (replay refuses them)" % dup
    return dict(pairs)


def _blocks():
    """(kind, first line number, text, preceding heading) of every json/ndjson fence."""
    with open(DOC) as f:
        lines = f.read().split("\n")
    out, heading, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        m = re.match(r"^```(json|ndjson)\s*$", line)
        if m:
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            assert j < len(lines), "unclosed code fence at docs/events.md:%d" % (i + 1)
            out.append((m.group(1), i + 2, "\n".join(lines[i + 1:j]), heading))
            i = j
        i += 1
    return out


def _as_ndjson(kind, lineno, text):
    """The block as replay input, one event per line (a json block is re-serialised compactly)."""
    if kind == "ndjson":
        for k, line in enumerate(text.split("\n")):
            if line.strip():
                json.loads(line, object_pairs_hook=_no_dup_keys)  # one complete object per line
        return text + "\n"
    try:
        v = json.loads(text, object_pairs_hook=_no_dup_keys)
    except ValueError as x:
        raise AssertionError("docs/events.md:%d: json block does not parse: %s" % (lineno, x))
    events = v if isinstance(v, list) else [v]
    assert events and all(isinstance(e, dict) for e in events), \
        "docs/events.md:%d: a json block must be an event or an array of events" % lineno
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)


def _events(kind, lineno, text):
    return [json.loads(l) for l in _as_ndjson(kind, lineno, text).splitlines() if l.strip()]


def test_docs_has_examples():
    blocks = _blocks()
    assert len(blocks) >= len(VOCABULARY) + 4, "only %d examples in docs/events.md" % len(blocks)
    assert any(k == "ndjson" for k, _, _, _ in blocks), "no NDJSON example"
    assert any(t.lstrip().startswith("[") for k, _, t, _ in blocks if k == "json"), "no array example"


def test_every_docs_example_is_accepted_by_replay():
    for kind, lineno, text, _ in _blocks():
        body = _as_ndjson(kind, lineno, text)
        rc, out, err = replay_raw(body)
        assert rc == 0, "docs/events.md:%d: example refused (exit %d):\n%s" % (lineno, rc, err)
        n = len([l for l in body.splitlines() if l.strip()])
        assert re.search(r"replay: %d events, 0 duplicate\(s\), 0 invalid" % n, err), \
            "docs/events.md:%d: expected %d events accepted, got: %s" % (lineno, n, err)


def test_all_docs_examples_together_are_one_valid_stream():
    body = "".join(_as_ndjson(k, n, t) for k, n, t, _ in _blocks())
    rc, out, err = replay_raw(body)
    assert rc == 0, "the examples together are refused:\n%s" % err
    assert "0 invalid" in err, err


def test_vocabulary_table_and_one_example_per_type():
    with open(DOC) as f:
        doc = f.read()
    section = doc[doc.index("## The telecom vocabulary"):]
    section = section[:section.index("\n## ", 1)]  # the engagement vocabulary has its own table
    table_types = re.findall(r"^\| `([a-z]+\.[a-z_]+)` \|", section, re.M)
    assert table_types == VOCABULARY, "vocabulary table lists %s" % table_types
    examples = {}
    for kind, lineno, text, heading in _blocks():
        if heading in VOCABULARY:
            evs = _events(kind, lineno, text)
            assert [e["type"] for e in evs] == [heading], \
                "docs/events.md:%d: the example under '### %s' is of type %s" % (
                    lineno, heading, [e["type"] for e in evs])
            examples[heading] = evs[0]
    missing = [t for t in VOCABULARY if t not in examples]
    assert not missing, "no example event for %s" % missing
    for t, e in examples.items():
        is_global = t.startswith("outage.")
        assert ("subject" in e) != is_global, "%s example: subject %s" % (t, "present" if is_global else "missing")
    # The fields the table promises appear in the examples.
    assert sorted(examples["customer.updated"]["data"]) == sorted(
        ["name", "email", "phone", "zip", "plan", "value", "tier", "timezone", "carrier"])
    assert isinstance(examples["outage.started"]["data"]["zips"], list)


def _block_under(heading_prefix, contains):
    for kind, lineno, text, heading in _blocks():
        if heading.startswith(heading_prefix) and contains in text:
            return _events(kind, lineno, text)
    raise AssertionError("no example under %r containing %r" % (heading_prefix, contains))


def test_docs_time_offset_example_is_printed_in_utc():
    # The +02:00 payment: SIG-009 fires 7 days later, printed in UTC with its milliseconds.
    evs = _block_under("The envelope", "+02:00")
    lines = replay(evs, "--until", "2026-03-12T00:00:00Z")
    assert transitions(lines) == [("SIG-009", "anna@example.de", "firing", "2026-03-11T07:45:00.250Z")], lines


def test_docs_replace_example_resolves_sig004():
    evs = _block_under("From events to state", "RESUBMITTED")
    lines = replay(evs)
    assert transitions(lines, "SIG-004") == [
        ("SIG-004", "sam@example.com", "firing", "2026-03-02T10:00:00Z"),
        ("SIG-004", "sam@example.com", "resolved", "2026-03-02T13:00:00Z"),
    ], lines


def test_docs_journey_example_matches_its_description():
    evs = _block_under("A journey, end to end", "FAILED")
    lines = replay(evs)
    assert transitions(lines) == [
        ("SIG-001", "jodi@example.com", "firing", "2026-03-03T08:07:12Z"),
        ("SIG-001", "jodi@example.com", "resolved", "2026-03-04T08:30:00Z"),
        ("SIG-002", "jodi@example.com", "firing", "2026-03-04T08:30:00Z"),
    ], lines
    assert [d["severity"] for d in lines if d["signal"] == "SIG-002"] == ["CRITICAL"]
