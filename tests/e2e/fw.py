"""fw.py -- helpers for the end-to-end tests: run the real binary, build
events, parse its NDJSON output.  Python 3 standard library only.

The binary is $FOREWARN_BIN (the Makefile passes an absolute path), or
build/forewarn under the repository root.  Event times are written as
offsets from BASE ("48h1m" means BASE + 48 hours 1 minute) so that a test
reads like the rule it checks; T() turns an offset into the RFC 3339 string
the engine prints, which is what the assertions compare against.
"""

import datetime as _dt
import itertools as _it
import json as _json
import os as _os
import re as _re
import subprocess as _sp

ROOT = _os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))))
BIN = _os.environ.get("FOREWARN_BIN") or _os.path.join(ROOT, "build", "forewarn")
RULES_DIR = _os.path.join(ROOT, "tests", "rules")

# Every test's clock starts here (a Monday, far from any DST change).
BASE = _dt.datetime(2026, 3, 2, 0, 0, 0, tzinfo=_dt.timezone.utc)

_UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 7 * 86400000}
_DUR = _re.compile(r"(\d+)(ms|s|m|h|d|w)")


def dur(text):
    """A duration such as "48h", "6d23h59m" or "90s" as a timedelta."""
    pos, ms = 0, 0
    if text in ("0", ""):
        return _dt.timedelta(0)
    for m in _DUR.finditer(text):
        if m.start() != pos:
            break
        ms += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ValueError("bad duration %r" % text)
    return _dt.timedelta(milliseconds=ms)


def fmt(t):
    """A datetime as the engine prints it: UTC, "Z", milliseconds only when non-zero."""
    t = t.astimezone(_dt.timezone.utc)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        s += ".%03d" % (t.microsecond // 1000)
    return s + "Z"


def T(offset="0"):
    """BASE + offset (a duration string, or a timedelta) as the engine prints it."""
    if isinstance(offset, _dt.timedelta):
        return fmt(BASE + offset)
    if isinstance(offset, str) and "T" in offset:
        return offset  # already absolute
    return fmt(BASE + dur(offset))


# The default merge window (outreach.merge_window): what fires is decided this long after.
MERGE = "5s"


def D(offset="0"):
    """When a firing at BASE + offset is decided: after the default merge window."""
    return fmt(BASE + (offset if isinstance(offset, _dt.timedelta) else dur(offset)) + dur(MERGE))


_ids = _it.count(1)


def ev(type, subject, time, /, **data):
    """A complete CloudEvents 1.0 event with a fresh id.

    subject None makes a global event (outage.*).  time is an offset from
    BASE ("48h") or an absolute RFC 3339 string.  Keyword arguments are the
    data fields (the first three parameters are positional-only, so a data
    field may be called `subject`, as ticket.created's is); pass
    data={"...": ...} for names that are not identifiers.
    """
    extra = data.pop("data", None)
    if extra:
        data.update(extra)
    e = {
        "specversion": "1.0",
        "id": "e2e-%06d" % next(_ids),
        "source": "/e2e",
        "type": type,
        "time": T(time),
        "data": data,
    }
    if subject is not None:
        e["subject"] = subject
    return e


def run(args, input=None):
    """Run the binary with args; input is str/bytes for stdin.  Returns (rc, stdout, stderr) as str."""
    if isinstance(input, str):
        input = input.encode()
    p = _sp.run([BIN] + list(args), input=input, stdout=_sp.PIPE, stderr=_sp.PIPE, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def ndjson(events):
    """Events as an NDJSON body (compact, one per line, in the order given)."""
    return "".join(_json.dumps(e, separators=(",", ":")) + "\n" for e in events)


def replay_raw(events, *args):
    """Replay events (a list of dicts, or an already-built str body); (rc, stdout, stderr)."""
    body = events if isinstance(events, (str, bytes)) else ndjson(events)
    return run(["replay"] + list(args), input=body)


def replay(events, *args):
    """Replay and return the output lines parsed as JSON; fails the test on a non-zero exit."""
    rc, out, err = replay_raw(events, *args)
    assert rc == 0, "replay exited %d\nstderr:\n%s" % (rc, err)
    lines = []
    for i, line in enumerate(out.splitlines(), 1):
        try:
            lines.append(_json.loads(line))
        except ValueError as x:
            raise AssertionError("replay output line %d is not JSON (%s): %r" % (i, x, line))
    return lines


def detections(lines, signal=None, customer=None, state=None):
    """The detection records, optionally filtered."""
    return [
        d for d in lines
        if d.get("kind") == "detection"
        and (signal is None or d["signal"] == signal)
        and (customer is None or d["customer"] == customer)
        and (state is None or d["state"] == state)
    ]


def incidents(lines, signal=None):
    return [d for d in lines if d.get("kind") == "incident" and (signal is None or d["signal"] == signal)]


def transitions(lines, signal=None):
    """Detections as comparable tuples (signal, customer, state, at)."""
    return [(d["signal"], d["customer"], d["state"], d["at"]) for d in detections(lines, signal)]


def until(offset):
    """The --until argument for BASE + offset."""
    return ["--until", T(offset)]
