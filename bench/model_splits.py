#!/usr/bin/env python3
"""Holdout ROC AUC of `forewarn model train` + `model score` over random splits.

For each seed the table's rows are split 80/20, stratified by the label
(each class shuffled with the seed, its first 80% trained on), the model is
trained on the 80% with `forewarn model train` and the 20% scored with
`forewarn model score`; the ROC AUC of those scores is computed here (ties
count half).  The same model is also scored with its blend weight set to 1
(the trees alone) and to 0 (the logistic baseline alone), by rewriting the
weight in a copy of the model file, so each split gives the holdout AUC of
trees, baseline and blend.  Prints each seed's figures, then the mean, min,
max and the count below --floor (0.84) of each, the sampling standard error
of one holdout's AUC (Hanley-McNeil: the spread the holdout draw alone
causes), and the training time: CPU (user + system of each `model train`,
from wait4) and wall clock.  The
table is read from the path given, so a data file that must stay out of the
repository (the IBM Telco table) can be measured:

    bench/model_splits.py --csv /tmp/model-data/telco.csv --label Churn \\
        --positive Yes --id customerID --seeds 20 --jobs 2

Options: --seeds K (K seeds from --start, default 10 from 1), --grid quick|full (passed to
train), --jobs J (splits run in parallel), --bin PATH (default build/forewarn), --keep DIR
(leave the split files and models there), --json FILE (the per-split figures, to compare
two runs split by split), --floor F.
"""
import argparse
import bisect
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor


def roc_auc(scores, labels):
    neg = sorted(s for s, t in zip(scores, labels) if not t)
    pos = [s for s, t in zip(scores, labels) if t]
    total = 0.0
    for p in pos:
        lo, hi = bisect.bisect_left(neg, p), bisect.bisect_right(neg, p)
        total += lo + (hi - lo) / 2
    return total / (len(pos) * len(neg))


def hanley_mcneil_sd(auc, npos, nneg):
    """The standard error of a ROC AUC measured on npos + nneg rows (Hanley and McNeil, 1982):
    how far one holdout's AUC strays from the model's true AUC by the luck of the draw alone."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    return ((auc * (1 - auc) + (npos - 1) * (q1 - auc * auc) + (nneg - 1) * (q2 - auc * auc))
            / (npos * nneg)) ** 0.5


def fnv1a64(data):
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def reweighted(model, path, w):
    """Copy the model file to path with the blend's weight on the trees set to w."""
    with open(model, "rb") as f:
        data = f.read()
    first, rest = data.split(b"\n", 1)
    head, rest = rest.split(b"\n", 1)
    slen = int(head.split()[1])
    schema, body = json.loads(rest[:slen]), rest[slen + 1:-25]
    schema["tree_weight"] = w
    js = json.dumps(schema, separators=(",", ":"), ensure_ascii=True).encode()
    out = first + b"\n" + b"schema %d\n" % len(js) + js + b"\n" + body
    out += b"fnv1a64 %016x\n" % fnv1a64(out)
    with open(path, "wb") as f:
        f.write(out)


def run(cmd, outpath):
    """Run cmd with stdout to outpath; (exit status, stdout, stderr, CPU seconds of the child)."""
    with open(outpath, "w") as o, open(outpath + ".err", "w") as e:
        p = subprocess.Popen(cmd, stdout=o, stderr=e)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    with open(outpath) as o, open(outpath + ".err") as e:
        return p.returncode, o.read(), e.read(), ru.ru_utime + ru.ru_stime


def split(data, is_pos, seed):
    """Stratified 80/20: each class shuffled with the seed, its first 80% to train."""
    rnd = random.Random(seed)
    train, test = [], []
    for cls in (True, False):
        rows = [r for r in data if is_pos(r) == cls]
        rnd.shuffle(rows)
        cut = int(round(len(rows) * 0.8))
        train += rows[:cut]
        test += rows[cut:]
    return train, test


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def score(a, model, te, d, name, labels, idopt):
    rc, out, err, _ = run([a.bin, "model", "score", "--model", model, "--csv", te] + idopt,
                          os.path.join(d, name))
    if rc:
        sys.exit("%s: score failed (%d): %s" % (model, rc, err))
    scores = [float(l.rsplit(",", 1)[1]) for l in out.splitlines()]
    assert len(scores) == len(labels)
    return roc_auc(scores, labels)


def run_seed(a, header, data, li, seed, work):
    is_pos = lambda r: r[li].strip() == a.positive
    train, test = split(data, is_pos, seed)
    d = os.path.join(work, "seed%d" % seed)
    os.makedirs(d, exist_ok=True)
    tr, te, model = (os.path.join(d, n) for n in ("train.csv", "test.csv", "m.model"))
    write(tr, header, train)
    write(te, header, test)
    idopt = ["--id", a.id] if a.id else []
    t0 = time.time()
    rc, out, err, cpu = run([a.bin, "model", "train", "--csv", tr, "--label", a.label,
                             "--positive", a.positive, "--out", model, "--grid", a.grid] + idopt,
                            os.path.join(d, "train.txt"))
    wall = time.time() - t0
    if rc:
        sys.exit("seed %d: train failed (%d): %s" % (seed, rc, err))
    chosen = [l.strip() for l in out.splitlines() if l.startswith("chosen:") or "scores:" in l]
    labels = [is_pos(r) for r in test]
    res = {"seed": seed, "rows": len(test), "positive": sum(labels), "cpu": cpu, "wall": wall,
           "chosen": chosen, "blend": score(a, model, te, d, "blend.txt", labels, idopt)}
    for who, w in (("trees", 1.0), ("baseline", 0.0)):
        reweighted(model, model + "." + who, w)
        res[who] = score(a, model + "." + who, te, d, who + ".txt", labels, idopt)
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--positive", required=True)
    p.add_argument("--id")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--start", type=int, default=1, help="the first seed (default 1)")
    p.add_argument("--grid", default="full", choices=("quick", "full"))
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--floor", type=float, default=0.84)
    p.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                 "forewarn"))
    p.add_argument("--keep")
    p.add_argument("--json")
    a = p.parse_args()
    a.bin = os.path.abspath(a.bin)
    with open(a.csv, newline="") as f:
        rows = list(csv.reader(f))
    header, data = rows[0], rows[1:]
    li = header.index(a.label)
    work = a.keep or tempfile.mkdtemp(prefix="model_splits.")
    os.makedirs(work, exist_ok=True)
    try:
        with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            res = list(ex.map(lambda s: run_seed(a, header, data, li, s, work),
                              range(a.start, a.start + a.seeds)))
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    for r in res:
        print("seed %2d: blend %.4f  trees %.4f  baseline %.4f  (%d rows, %d positive; train "
              "%.1f s CPU, %.0f s wall)  %s" % (r["seed"], r["blend"], r["trees"], r["baseline"],
                                                r["rows"], r["positive"], r["cpu"], r["wall"],
                                                " | ".join(r["chosen"])))
    name = os.path.basename(a.csv)
    for who in ("blend", "trees", "baseline"):
        v = [r[who] for r in res]
        print("%s %-8s: %d splits, holdout ROC AUC mean %.4f sd %.4f min %.4f max %.4f, %d below "
              "%.2f" % (name, who, len(v), statistics.mean(v), statistics.pstdev(v), min(v),
                        max(v), sum(x < a.floor for x in v), a.floor))
    v = [r["blend"] for r in res]
    print("%s blend: the sampling sd of one holdout's AUC at the mean (Hanley-McNeil, %d rows, %d "
          "positive) is %.4f: splits spread that much even when the model does not change"
          % (name, res[0]["rows"], res[0]["positive"],
             hanley_mcneil_sd(statistics.mean(v), res[0]["positive"],
                              res[0]["rows"] - res[0]["positive"])))
    cpu = [r["cpu"] for r in res]
    wall = [r["wall"] for r in res]
    print("%s training: CPU %.1f s per split (min %.1f, max %.1f), wall %.1f s per split"
          % (name, statistics.mean(cpu), min(cpu), max(cpu), statistics.mean(wall)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
