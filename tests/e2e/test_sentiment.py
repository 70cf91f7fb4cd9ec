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
    check_set(EVAL, 150)


def test_second_set_accuracy_and_cancel_recall():
    """A second set, written after the first had shaped the support lexicon."""
    check_set(os.path.join(fw.ROOT, "tests", "data", "sentiment_holdout.ndjson"), 40)


def check_set(path, at_least):
    rows = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    assert len(rows) >= at_least
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


def doc_block(lang, after):
    """The first ```lang block after the text `after` in docs/guidance.md."""
    text = open(GUIDE, encoding="utf-8").read()
    start = text.index(after)
    m = re.compile(r"```%s\n(.*?)```" % re.escape(lang), re.S).search(text, start)
    assert m, "no ```%s block after %r in docs/guidance.md" % (lang, after)
    return m.group(1)


def test_doc_example_is_the_real_output():
    body = doc_block("ndjson", "Example input")
    want = doc_block("json-lines", "prints:")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "example.ndjson")
        with open(path, "w") as f:
            f.write(body)
        rc, out, err = fw.run(["sentiment", path])
    assert rc == 0, err
    assert out == want, "docs/guidance.md's example output differs:\n%s\nreal:\n%s" % (want, out)


def test_contract_one_line_per_input_in_order():
    texts = [{"id": "n%d" % i, "text": t, "extra": i} for i, t in enumerate(
        ["ok", "", "NOT HAPPY!!!", "\u00e9\u00e8 \u2019 \ud83d\ude00", "a" * 20000, "Cancel it."])]
    body = "\n".join(json.dumps(x) for x in texts[:3]) + "\n\n  \n" + \
        "\r\n".join(json.dumps(x) for x in texts[3:]) + "\n"
    got = score(body)
    assert [g["id"] for g in got] == [t["id"] for t in texts]
    for g in got:
        assert set(g) == {"id", "score", "label", "intents"}
        assert isinstance(g["score"], (int, float)) and -1 <= g["score"] <= 1
        assert g["score"] == round(g["score"], 4)
    assert got[1] == {"id": "n1", "score": 0, "label": "neutral", "intents": []}
    assert got[2]["label"] in ("negative", "very_negative")
    assert got[5]["intents"] == ["cancel"]
    # stdin and "-" are the same input.
    assert score(body, "-") == got


def test_bad_lines_are_reported_and_nothing_is_written():
    body = ('{"id":"a","text":"fine"}\n'
            '{"id":"b","txt":"x"}\n'
            '{"id":7,"text":"x"}\n'
            '{"id":"c","text":["x"]}\n'
            '{"id":"d" "text":"y"}\n'
            '[1,2]\n'
            '{"id":"e","text":"a","text":"b"}\n'
            '{"id":"f","text":"the last line is good"}\n')
    rc, out, err = fw.run(["sentiment"], input=body)
    assert rc == 2, (rc, err)
    assert out == ""
    assert '<stdin>:2:1: error: "text" is missing' in err
    assert '<stdin>:3:2: error: "id" must be a non-empty string' in err
    assert '<stdin>:4:11: error: "text" must be a string' in err
    assert "<stdin>:5:" in err and "malformed JSON" in err
    assert "<stdin>:6:1: error: each line must be a JSON object" in err
    assert "<stdin>:7:" in err and "duplicate" in err
    assert "6 bad line(s); nothing was scored" in err
    # The line is quoted with a caret under the column.
    assert '    {"id":"c","text":["x"]}\n              ^\n' in err
    rc, out, err = fw.run(["sentiment", "/nonexistent/input.ndjson"])
    assert rc == 2 and out == "" and "cannot read /nonexistent/input.ndjson" in err
    rc, out, err = fw.run(["sentiment", "--bogus"])
    assert rc == 2 and "unknown option --bogus" in err


def test_missing_lexicon_is_an_error_at_start_not_a_neutral_score():
    body = '{"id":"a","text":"I love it"}\n'
    rc, out, err = fw.run(["sentiment", "--lexicon", "/nonexistent/vader.txt"], input=body)
    assert rc == 1 and out == ""
    assert "/nonexistent/vader.txt" in err and "(--lexicon)" in err and "install-deps" in err
    env = dict(os.environ, FOREWARN_LEXICON="/nonexistent/env.txt")
    p = fw._sp.run([fw.BIN, "sentiment"], input=body.encode(), capture_output=True, env=env)
    assert p.returncode == 1 and p.stdout == b""
    assert b"/nonexistent/env.txt (FOREWARN_LEXICON)" in p.stderr
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "fw.yaml")
        with open(cfg, "w") as f:
            f.write("sentiment:\n  lexicon: /nonexistent/cfg.txt\n")
        rc, out, err = fw.run(["sentiment", "--config", cfg], input=body)
        assert rc == 1 and out == "" and "/nonexistent/cfg.txt (sentiment.lexicon)" in err
        with open(cfg, "w") as f:
            f.write("sentiment:\n  lexcon: x\n")
        rc, out, err = fw.run(["sentiment", "--config", cfg], input=body)
        assert rc == 1 and "fw.yaml:2:3: error: unknown key lexcon in sentiment" in err
        # A malformed lexicon: every bad line with its place, nothing scored.
        bad = os.path.join(d, "lex.txt")
        with open(bad, "w") as f:
            f.write("good\t1.9\t0.9\t[2, 2]\nbad\tminus two\t0.6\t[-2]\n")
        rc, out, err = fw.run(["sentiment", "--lexicon", bad], input=body)
        assert rc == 1 and out == ""
        assert bad + ":2:5: error: the mean valence must be a number" in err
        # A good lexicon named by the environment is used.
        with open(bad, "w") as f:
            f.write("love\t-3.0\t0.5\t[-3, -3]\n")
        env = dict(os.environ, FOREWARN_LEXICON=bad)
        p = fw._sp.run([fw.BIN, "sentiment"], input=body.encode(), capture_output=True, env=env)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["label"] == "very_negative"


def test_domain_lexicon_errors_and_replacement():
    body = '{"id":"a","text":"I will cancel and call my lawyer"}\n'
    with tempfile.TemporaryDirectory() as d:
        dom = os.path.join(d, "dom.txt")
        with open(dom, "w") as f:
            f.write("[cancel]\nCancel\n")
        rc, out, err = fw.run(["sentiment", "--domain", dom], input=body)
        assert rc == 1 and out == ""
        assert dom + ":2:1: error: phrases are written in lower case" in err
        with open(dom, "w") as f:
            f.write("[legal]\nmy lawyer\n")
        got = score(body, "--domain", dom)
        assert got[0]["intents"] == ["legal"]
