#!/usr/bin/env python3
"""Holdout ROC AUC of `forewarn model train` + `model score` over random splits.

For each seed the table's rows are split 80/20, stratified by the label
(each class shuffled with the seed, its first 80% trained on), the model is
trained on the 80% with `forewarn model train` and the 20% scored with
`forewarn model score`; the ROC AUC of those scores is computed here (ties
count half).  Prints each seed's figure, then the mean, min and max, and the
CPU time of the training runs (user + system, from getrusage of the
children).  The table is read from the path given, so a data file that must
stay out of the repository (the IBM Telco table) can be measured:

    bench/model_splits.py --csv /tmp/model-data/telco.csv --label Churn \
        --positive Yes --id customerID --seeds 10 --jobs 2

Options: --seeds K (K seeds from --start, default 10 from 1), --grid quick|full (passed to
train), --jobs J (splits run in parallel), --bin PATH (default
build/forewarn), --keep DIR (leave the split files and models there).
"""
import argparse
import bisect
import csv
import os
import random
import resource
import shutil
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
    r = subprocess.run([a.bin, "model", "train", "--csv", tr, "--label", a.label, "--positive",
                        a.positive, "--out", model, "--grid", a.grid] + idopt,
                       capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode:
        sys.exit("seed %d: train failed (%d): %s" % (seed, r.returncode, r.stderr))
    with open(os.path.join(d, "train.txt"), "w") as f:
        f.write(r.stdout)
    chosen = [l for l in r.stdout.splitlines() if l.startswith("chosen:") or "scores:" in l]
    s = subprocess.run([a.bin, "model", "score", "--model", model, "--csv", te] + idopt,
                       capture_output=True, text=True)
    if s.returncode:
        sys.exit("seed %d: score failed (%d): %s" % (seed, s.returncode, s.stderr))
    scores = [float(l.rsplit(",", 1)[1]) for l in s.stdout.splitlines()]
    labels = [is_pos(r) for r in test]
    assert len(scores) == len(labels)
    return seed, roc_auc(scores, labels), len(test), sum(labels), wall, chosen


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
    p.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                 "forewarn"))
    p.add_argument("--keep")
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
    for seed, auc, n, npos, wall, chosen in res:
        print("seed %2d: ROC AUC %.4f (%d rows, %d positive; %.0f s wall)  %s"
              % (seed, auc, n, npos, wall, " | ".join(c.strip() for c in chosen)))
    aucs = [r[1] for r in res]
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru.ru_utime + ru.ru_stime
    print("%s: %d splits, holdout ROC AUC mean %.4f min %.4f max %.4f; CPU %.0f s in all, "
          "%.1f s per split" % (os.path.basename(a.csv), len(aucs), sum(aucs) / len(aucs),
                                min(aucs), max(aucs), cpu, cpu / len(aucs)))


if __name__ == "__main__":
    main()
