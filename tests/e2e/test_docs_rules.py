"""The rule-pack examples in docs/rules.md are real: the example pack is
refused exactly as the page says, loads once the class is added, and the
example rule test passes."""
import os
import re
import subprocess
import tempfile

from server import BIN

DOC = os.path.join(os.path.dirname(__file__), "../../docs/rules.md")
ROOT = os.path.join(os.path.dirname(__file__), "../..")


def _yaml_blocks():
    with open(DOC) as f:
        text = f.read()
    section = text[text.index("## Rule packs"):]
    return re.findall(r"```yaml\n(.*?)```", section, re.S), section


def _run(*args):
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_example_pack_error_is_the_documented_one():
    blocks, section = _yaml_blocks()
    pack = blocks[0]
    d = tempfile.mkdtemp(prefix="fw-docs-")
    path = os.path.join(d, "example.yaml")
    with open(path, "w") as f:
        f.write(pack)
    rc, out, err = _run("rules", "check", path)
    assert rc != 0, out
    documented = re.search(r"```\n(example\.yaml:\d+:\d+: error: .*)\n```", section).group(1)
    assert documented.replace("example.yaml", path) in err, (documented, err)
    fixed = pack.replace("  contact: [ticket.created, chat.started]\n",
                         "  contact: [ticket.created, chat.started]\n  refund: [refund.requested]\n")
    with open(path, "w") as f:
        f.write(fixed)
    rc, out, err = _run("rules", "check", path)
    assert rc == 0 and "OK, 2 signal(s)" in out, (out, err)


def test_example_rule_test_passes():
    blocks, _ = _yaml_blocks()
    path = os.path.join(ROOT, "rules", ".docs-example.test.yaml")
    with open(path, "w") as f:
        f.write(blocks[1])
    try:
        rc, out, err = _run("rules", "test", path)
    finally:
        os.unlink(path)
    assert rc == 0, (out, err)
    assert "2 passed, 0 failed" in out, out
