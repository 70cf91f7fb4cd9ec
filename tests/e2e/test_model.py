"""End-to-end tests of `forewarn model train|score` (docs/model.md) on
../shared/data/mlc_churn.csv, a public telecom churn table (5,000
customers, label `churn`, yes/no): the table is split here into training
rows and holdout rows, the model is trained on the first and scores the
second, and the holdout ROC AUC is computed by this test from the
`id,score` lines.  Then each kind of bad input, refused by name with
nothing written.
"""

import atexit
import csv
import os
import re
import shutil
import subprocess
import tempfile

from fw import BIN, ROOT

DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "mlc_churn.csv")
if not os.path.exists(DATA):
    DATA = "/work/shared/data/mlc_churn.csv"


def run(args, timeout=900):
    p = subprocess.run([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        w.writerow(header)
        w.writerows(rows)


def table():
    with open(DATA, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def auc(scores, labels):
    """Mann-Whitney ROC AUC, ties counted half (written here, independently of the binary)."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    won = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return won / (len(pos) * len(neg))


def figures(out, who):
    m = re.search(r"^\s+%s\s+ROC AUC ([0-9.]+)\s+PR AUC ([0-9.]+)\s+accuracy ([0-9.]+) \((\d+)/(\d+)\)" % who,
                  out, re.M)
    assert m, "no %s line in:\n%s" % (who, out)
    return float(m.group(1)), float(m.group(2)), float(m.group(3)), int(m.group(4)), int(m.group(5))


_trained = {}


def trained():
    """Train once on 4 of every 5 rows (every 5th row held out); (dir, header, holdout, stdout)."""
    if _trained:
        return _trained["v"]
    header, rows = table()
    d = tempfile.mkdtemp(prefix="fw-model-")
    atexit.register(shutil.rmtree, d, True)
    train = [r for i, r in enumerate(rows) if i % 5 != 4]
    hold = [r for i, r in enumerate(rows) if i % 5 == 4]
    write_csv(os.path.join(d, "train.csv"), header, train)
    write_csv(os.path.join(d, "hold.csv"), header, hold)
    rc, out, err = run(["model", "train", "--csv", os.path.join(d, "train.csv"), "--label", "churn",
                        "--positive", "yes", "--out", os.path.join(d, "churn.model"), "--grid", "quick"])
    assert rc == 0, "train exited %d\n%s%s" % (rc, out, err)
    _trained["v"] = (d, header, hold, out)
    return _trained["v"]


def test_train_prints_cv_figures_and_trees_beat_the_baseline():
    d, header, hold, out = trained()
    n = sum(1 for i in range(5000) if i % 5 != 4)
    pos = sum(1 for i, r in enumerate(table()[1]) if i % 5 != 4 and r[-1] == "yes")
    assert "%d rows, %d positive (churn = 'yes'" % (n, pos) in out, out
    troc, tpr, tacc, tok, tn = figures(out, "trees")
    broc, bpr, bacc, _, _ = figures(out, "baseline")
    assert tn == n and abs(tacc - tok / tn) < 1e-4
    assert troc >= 0.88, out
    assert troc > broc and tpr > bpr, "trees must beat the logistic baseline:\n" + out
    m = re.search(r"majority accuracy ([0-9.]+) \((\d+)/(\d+)\)", out)
    assert m and int(m.group(2)) == n - pos and int(m.group(3)) == n, out
    assert tacc > float(m.group(1)), "trees must beat always-no:\n" + out
    card = open(os.path.join(d, "churn.model.card.md")).read()
    assert "%d rows: %d positive" % (n, pos) in card and "| trees |" in card and "max_depth" in card


def test_holdout_auc_from_the_scores():
    d, header, hold, _ = trained()
    rc, out, err = run(["model", "score", "--model", os.path.join(d, "churn.model"),
                        "--csv", os.path.join(d, "hold.csv")])
    assert rc == 0, err
    lines = [l.split(",") for l in out.splitlines()]
    assert [int(l[0]) for l in lines] == list(range(1, len(hold) + 1))  # row numbers as ids
    scores = [float(l[1]) for l in lines]
    assert all(0 <= s <= 1 for s in scores)
    labels = [r[header.index("churn")] == "yes" for r in hold]
    a = auc(scores, labels)
    assert a >= 0.88, "holdout ROC AUC %.4f over %d rows" % (a, len(hold))
    acc = sum((s >= 0.5) == y for s, y in zip(scores, labels)) / len(labels)
    majority = max(sum(labels), len(labels) - sum(labels)) / len(labels)
    assert acc > majority + 0.05, (acc, majority)


def test_score_by_id_column_ignores_the_label_and_column_order():
    d, header, hold, _ = trained()
    # Columns reversed, an id column added in front, the label dropped: the same scores.
    ids = ["c%04d" % i for i in range(len(hold))]
    li = header.index("churn")
    cols = [i for i in reversed(range(len(header))) if i != li]
    write_csv(os.path.join(d, "ids.csv"), ["cust"] + [header[i] for i in cols],
              [[ids[k]] + [r[i] for i in cols] for k, r in enumerate(hold)])
    rc, a, err = run(["model", "score", "--model", os.path.join(d, "churn.model"),
                      "--csv", os.path.join(d, "hold.csv")])
    assert rc == 0, err
    rc, b, err = run(["model", "score", "--model", os.path.join(d, "churn.model"),
                      "--csv", os.path.join(d, "ids.csv"), "--id", "cust"])
    assert rc == 0, err
    assert [l.split(",")[0] for l in b.splitlines()] == ids
    assert [l.split(",")[1] for l in a.splitlines()] == [l.split(",")[1] for l in b.splitlines()]


def test_full_grid_and_determinism():
    """The whole grid on a small table: every setting reported, the same model twice."""
    header, rows = table()
    d = tempfile.mkdtemp(prefix="fw-model-grid-")
    try:
        write_csv(os.path.join(d, "t.csv"), header, rows[:600])
        outs = []
        for name in ("a", "b"):
            rc, out, err = run(["model", "train", "--csv", os.path.join(d, "t.csv"), "--label", "churn",
                                "--positive", "yes", "--out", os.path.join(d, name), "--folds", "3"])
            assert rc == 0, out + err
            outs.append(out)
        settings = re.findall(r"^  max_depth (\d+) eta", outs[0], re.M)
        assert len(settings) >= 4 and set(settings) >= {"2", "3", "4", "6"}, outs[0]
        assert "3 folds, 600 rows" in outs[0]
        strip = lambda o: re.sub(r"\([0-9.]+ s\)|[0-9.]+ s in all", "", o)
        assert strip(outs[0]).replace("/a", "/x") == strip(outs[1]).replace("/b", "/x")
        # The booster section (the schema holds the training date, and the checksum covers it).
        body = lambda p: open(os.path.join(d, p), "rb").read().split(b"\nbooster ", 1)[1].rsplit(b"fnv1a64", 1)[0]
        assert body("a") == body("b"), "same data, same booster"
    finally:
        shutil.rmtree(d)


def refused(args, *needles, out_path=None):
    rc, out, err = run(args)
    assert rc == 1, "exit %d\n%s%s" % (rc, out, err)
    for n in needles:
        assert n in err, "%r not in %r" % (n, err)
    if out_path:
        assert not os.path.exists(out_path), "a refused train wrote " + out_path
        assert not os.path.exists(out_path + ".card.md")
        assert not [f for f in os.listdir(os.path.dirname(out_path)) if ".tmp." in f]
    return out


def test_bad_training_input_is_refused_by_name():
    header, rows = table()
    d = tempfile.mkdtemp(prefix="fw-model-bad-")
    try:
        out = os.path.join(d, "m.model")
        ragged = os.path.join(d, "ragged.csv")
        write_csv(ragged, header, rows[:50])
        lines = open(ragged).read().splitlines()
        lines[30] = lines[30].rsplit(",", 1)[0]  # data row 30 loses its last field
        open(ragged, "w").write("\n".join(lines) + "\n")
        refused(["model", "train", "--csv", ragged, "--label", "churn", "--positive", "yes", "--out", out],
                "ragged.csv:31: 19 fields, header has 20 (data row 30)", out_path=out)
        good = os.path.join(d, "good.csv")
        write_csv(good, header, rows[:200])
        refused(["model", "train", "--csv", good, "--label", "churned", "--positive", "yes", "--out", out],
                "no column 'churned' (the --label column)", out_path=out)
        refused(["model", "train", "--csv", good, "--label", "churn", "--positive", "Yes", "--out", out],
                "column 'churn' (the label) has no row equal to --positive", "'no' (", "'yes' (",
                out_path=out)
        single = os.path.join(d, "single.csv")
        write_csv(single, header, [r for r in rows[:200] if r[-1] == "no"])
        refused(["model", "train", "--csv", single, "--label", "churn", "--positive", "no", "--out", out],
                "column 'churn' (the label) has one class only", out_path=out)
        refused(["model", "train", "--csv", good, "--label", "churn", "--positive", "yes", "--id", "cust",
                 "--out", out], "no column 'cust' (the --id column)", out_path=out)
        empty_label = os.path.join(d, "empty_label.csv")
        write_csv(empty_label, header, rows[:20] + [rows[20][:-1] + [""]] + rows[21:40])
        refused(["model", "train", "--csv", empty_label, "--label", "churn", "--positive", "yes",
                 "--out", out], "empty_label.csv:22: column 'churn' (the label) is empty in data row 21",
                out_path=out)
    finally:
        shutil.rmtree(d)


def test_bad_model_and_score_input_is_refused():
    d, header, hold, _ = trained()
    model = os.path.join(d, "churn.model")
    data = open(model, "rb").read()
    other = os.path.join(d, "v2.model")
    open(other, "wb").write(data.replace(b"forewarn-model 2\n", b"forewarn-model 1\n", 1))
    refused(["model", "score", "--model", other, "--csv", os.path.join(d, "hold.csv")],
            "model file format version 1; this forewarn reads version 2")
    bad = os.path.join(d, "flipped.model")
    mid = len(data) // 2
    open(bad, "wb").write(data[:mid] + bytes([data[mid] ^ 0x20]) + data[mid + 1:])
    out = refused(["model", "score", "--model", bad, "--csv", os.path.join(d, "hold.csv")],
                  "corrupted model file: checksum mismatch")
    assert out == ""
    cut = os.path.join(d, "cut.model")
    open(cut, "wb").write(data[: len(data) - 40])
    refused(["model", "score", "--model", cut, "--csv", os.path.join(d, "hold.csv")], "corrupted model file")
    refused(["model", "score", "--model", os.path.join(d, "hold.csv"), "--csv", os.path.join(d, "hold.csv")],
            "not a forewarn model file")
    # A scoring table without a feature column, named.
    li = header.index("total_day_minutes")
    write_csv(os.path.join(d, "lacking.csv"), [h for i, h in enumerate(header) if i != li],
              [[v for i, v in enumerate(r) if i != li] for r in hold[:10]])
    out = refused(["model", "score", "--model", model, "--csv", os.path.join(d, "lacking.csv")],
                  "lacking.csv: no column 'total_day_minutes', a feature of the model (numeric)")
    assert out == ""
    refused(["model", "score", "--model", model, "--csv", os.path.join(d, "hold.csv"), "--id", "nope"],
            "no column 'nope' (the --id column)")
    # Usage errors are status 2.
    rc, _, err = run(["model", "train", "--csv", "x.csv"])
    assert rc == 2 and "are required" in err
    rc, _, err = run(["model", "frobnicate"])
    assert rc == 2 and "usage: forewarn model train" in err
