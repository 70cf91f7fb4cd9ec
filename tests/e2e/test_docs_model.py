"""docs/model.md stays true: its train command, run (with `--grid quick`
added, to keep the suite fast), prints lines of the shapes the page shows,
numbers aside; its score command, run on a table with the page's ids,
prints `id,score` lines like the page's."""
import csv
import os
import re
import shlex
import shutil
import subprocess
import tempfile

from fw import BIN, ROOT

DOC = os.path.join(ROOT, "docs", "model.md")
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "mlc_churn.csv")
if not os.path.exists(DATA):
    DATA = "/work/shared/data/mlc_churn.csv"


def _fences():
    text = open(DOC).read()
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)]


def _shape(line):
    """A line with its numbers (and the data path) replaced, for comparing shapes."""
    line = line.replace("../shared/data/mlc_churn.csv", "DATA").replace(DATA, "DATA")
    return re.sub(r"\d+(\.\d+)?", "N", line).replace("N settings", "N setting")


def _cmd(fence):
    return shlex.split(fence.strip().replace("build/forewarn", BIN).replace(
        "../shared/data/mlc_churn.csv", DATA))


def test_the_train_example_prints_what_the_page_shows():
    fences = _fences()
    i = next(i for i, (lang, t) in enumerate(fences) if "model train" in t)
    shown = fences[i + 1][1].splitlines()  # the next fence: what it prints
    assert fences[i + 1][0] == "text" and shown[0].startswith("data: "), shown
    d = tempfile.mkdtemp(prefix="fw-docs-model-")
    try:
        p = subprocess.run(_cmd(fences[i][1]) + ["--grid", "quick"], cwd=d, capture_output=True,
                           text=True, timeout=900)
        assert p.returncode == 0, p.stdout + p.stderr
        got = {_shape(l) for l in p.stdout.splitlines()}
        for line in shown:
            assert _shape(line) in got, "docs/model.md shows\n  %s\nwhich train does not print:\n%s" % (
                line, p.stdout)
        assert os.path.exists(os.path.join(d, "churn.model.card.md"))
        # The score example: the page's ids on two customers of the table.
        j = next(j for j, (lang, t) in enumerate(fences) if "model score" in t)
        ids = [l.split(",")[0] for l in fences[j + 1][1].splitlines()]
        with open(DATA, newline="") as f:
            rows = list(csv.reader(f))
        with open(os.path.join(d, "customers.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["phone"] + rows[0])
            w.writerows([ids[k]] + rows[1 + k] for k in range(len(ids)))
        p = subprocess.run(_cmd(fences[j][1]), cwd=d, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert [l.split(",")[0] for l in lines] == ids
        for line, want in zip(lines, fences[j + 1][1].splitlines()):
            assert re.fullmatch(r"[^,]+,[01]\.\d{6}", line) and re.fullmatch(r"[^,]+,[01]\.\d{6}", want)
    finally:
        shutil.rmtree(d)
