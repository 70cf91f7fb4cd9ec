"""The examples in docs/engagement.md and the health section of
docs/configuration.md are real: the replay example prints exactly the
documented lines, the pack section loads, and the documented config loads
(and a copy with a bad weight is refused with its place)."""
import os
import re
import tempfile

from fw import ROOT, run

DOC = os.path.join(ROOT, "docs", "engagement.md")
CONF = os.path.join(ROOT, "docs", "configuration.md")
PACK = os.path.join(ROOT, "rules", "engagement.yaml")


def _text(path):
    with open(path) as f:
        return f.read()


def test_replay_example_prints_the_documented_lines():
    doc = _text(DOC)
    events = re.search(r"```ndjson\n(.*?)```", doc, re.S).group(1)
    want = re.search(r"```text\n(.*?)```", doc, re.S).group(1).splitlines()
    cmd = re.search(r"`forewarn replay (--rules rules/engagement.yaml --until \S+)`", doc).group(1)
    args = cmd.split()
    args[1] = PACK
    rc, out, err = run(["replay"] + args, input=events)
    assert rc == 0, err
    assert out.splitlines() == want, (out, want)


def test_pack_section_loads():
    doc = _text(DOC)
    section = re.search(r"## The pack section\n\n```yaml\n(.*?)```", doc, re.S).group(1)
    d = tempfile.mkdtemp(prefix="fw-docs-")
    path = os.path.join(d, "p.yaml")
    with open(path, "w") as f:
        f.write(section + "signals:\n  - {id: X, name: x, severity: LOW, "
                          "condition: 'usage_decline(\"data_mb\", 7, 28) >= 30'}\n")
    rc, out, err = run(["rules", "check", path])
    assert rc == 0, err


def test_health_config_example_loads():
    conf = _text(CONF)
    block = re.search(r"## Health score weights\n\n```yaml\n(.*?)```", conf, re.S).group(1)
    d = tempfile.mkdtemp(prefix="fw-docs-")
    path = os.path.join(d, "c.yaml")
    with open(path, "w") as f:
        f.write(block)
    rc, out, err = run(["replay", "--config", path, "--rules", PACK, "/dev/null"])
    assert rc == 0, err
    with open(path, "w") as f:
        f.write(block.replace("payments: 10", "payments: 101"))
    rc, out, err = run(["replay", "--config", path, "--rules", PACK, "/dev/null"])
    assert rc != 0 and "%s:2:" % path in err and "health.weights.payments" in err, err
