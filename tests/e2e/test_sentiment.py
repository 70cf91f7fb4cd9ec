"""End-to-end tests of `forewarn sentiment` (docs/guidance.md, "Sentiment"):
the NDJSON contract, all-or-nothing validation, the lexicon's start-up
errors, and accuracy on tests/data/sentiment_eval.ndjson, a labelled set of
support texts written before the scorer was tuned.
"""

import json
import os
import re
import tempfile

import fw

EVAL = os.path.join(fw.ROOT, "tests", "data", "sentiment_eval.ndjson")
GUIDE = os.path.join(fw.ROOT, "docs", "guidance.md")


def score(lines, *args):
    """Run the command on dicts (or a raw str); the parsed output lines."""
    body = lines if isinstance(lines, str) else "".join(json.dumps(x) + "\n" for x in lines)
    rc, out, err = fw.run(["sentiment"] + list(args), input=body)
    assert rc == 0, "sentiment exited %d\nstderr:\n%s" % (rc, err)
    return [json.loads(l) for l in out.splitlines()]


def three_way(label):
    return {"very_negative": "negative", "negative": "negative", "neutral": "neutral",
            "positive": "positive", "very_positive": "positive"}[label]


def test_eval_set_accuracy_and_cancel_recall():
    rows = [json.loads(l) for l in open(EVAL, encoding="utf-8") if l.strip()]
    assert len(rows) >= 150
    got = score([{"id": r["id"], "text": r["text"]} for r in rows])
    assert [g["id"] for g in got] == [r["id"] for r in rows]
    classes = ["negative", "neutral", "positive"]
    matrix = {(e, g): 0 for e in classes for g in classes}
    right = tp = fn = fp = tn = 0
    misses = []
    for r, g in zip(rows, got):
        want, have = r["expect"], three_way(g["label"])
        matrix[(want, have)] += 1
        right += want == have
        cancel = "cancel" in g["intents"]
        tp += r["cancel"] and cancel
        fn += r["cancel"] and not cancel
        fp += cancel and not r["cancel"]
        tn += not cancel and not r["cancel"]
        if want != have or cancel != r["cancel"]:
            misses.append("  %s %-8s got %-13s %+.3f cancel=%s/%s  %s" % (
                r["id"], want, g["label"], g["score"], r["cancel"], cancel, r["text"]))
    acc = right / len(rows)
    recall = tp / (tp + fn)
    false_alarm = fp / (fp + tp) if fp + tp else 0.0
    print("\n     confusion (rows: expected, columns: got)")
    print("     %-9s %9s %9s %9s" % ("", *classes))
    for e in classes:
        print("     %-9s %9d %9d %9d" % (e, *(matrix[(e, g)] for g in classes)))
    print("     accuracy %.1f%% (%d/%d); cancel recall %.1f%% (%d/%d), false alarms %d of %d "
          "flagged (%.1f%%), %d of %d texts without cancel" % (
              100 * acc, right, len(rows), 100 * recall, tp, tp + fn, fp, tp + fp,
              100 * false_alarm, fp, fp + tn))
    for m in misses:
        print("    " + m)
    assert acc >= 0.85, "three-way accuracy %.3f < 0.85" % acc
    assert recall >= 0.90, "cancel recall %.3f < 0.90" % recall
    assert false_alarm <= 0.10, "cancel false alarms %.3f > 0.10" % false_alarm
