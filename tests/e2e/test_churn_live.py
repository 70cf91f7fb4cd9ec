"""Scoring customers live with the churn model (docs/model.md, "Scoring customers live").

A small table is generated here (400 rows, a fixed seed, churn driven by contacts, plan,
international plan and tenure), a model is trained on it with `forewarn model train`, and
serve runs with `churn_model:` mapping the model's four columns to rule-language
expressions.  Two customers whose mapped features differ: the rule `churn_risk > 0.7` fires
for the risky one only, the queue's churn_risk component shows the model as its basis with
the values the model saw, and `forewarn model score` on a CSV row of those values gives the
same score.  Then each bad configuration is refused, located, with the server not started.
"""
import atexit
import csv
import math
import os
import random
import re
import shutil
import subprocess
import tempfile

from fw import BIN, T, ev, run
from server import Server

PACK = """pack: churn
version: 1
classes:
  contact: [ticket.created, chat.started]
signals:
  - id: CHURN-001
    name: Churn risk high
    severity: HIGH
    team: retention
    condition: churn_risk > 0.7
  - id: PLAN-001
    name: Has a plan
    severity: MEDIUM
    team: retention
    condition: plan.name is not null
"""

FEATURES = """    calls: count("contact", 30d)
    tenure_days: {expr: 'age(last("plan.changed"))', unit: 1d}
    intl_plan: plan.international
    plan: plan.name
"""

_model = {}


def model():
    """(dir, model path, tree weight): trained once for the module."""
    if _model:
        return _model["v"]
    d = tempfile.mkdtemp(prefix="fw-churn-live-")
    atexit.register(shutil.rmtree, d, True)
    rnd = random.Random(2)
    rows = []
    for _ in range(400):
        calls, tenure = rnd.randint(0, 8), rnd.randint(1, 1000)
        intl, plan = rnd.random() < 0.3, rnd.choice(["basic", "plus", "unlimited"])
        z = (-2.5 + (2.5 if calls >= 4 else 0) + 0.3 * calls - 0.002 * tenure + (1.2 if intl else 0)
             + (0.8 if plan == "basic" else 0))
        churn = rnd.random() < 1 / (1 + math.exp(-z))
        rows.append([calls, tenure, "yes" if intl else "no", plan, "yes" if churn else "no"])
    with open(os.path.join(d, "train.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["calls", "tenure_days", "intl_plan", "plan", "churn"])
        w.writerows(rows)
    path = os.path.join(d, "churn.model")
    rc, out, err = run(["model", "train", "--csv", os.path.join(d, "train.csv"), "--label", "churn",
                        "--positive", "yes", "--out", path, "--grid", "quick", "--folds", "3"])
    assert rc == 0, out + err
    m = re.search(r"scores: ([0-9.]+) x trees \+ ([0-9.]+) x baseline", out)
    assert m, out
    with open(os.path.join(d, "churn.yaml"), "w") as f:
        f.write(PACK)
    _model["v"] = (d, path, float(m.group(1)))
    return _model["v"]


def config(d, path, features=FEATURES, name="fw.yaml"):
    cfg = os.path.join(d, name)
    with open(cfg, "w") as f:
        # No messages: their delivery reports are events of the customer too, and would make
        # the counts of model evaluations below depend on the dispatcher's timing.
        f.write("messages: false\nrules: [%s]\nchurn_model:\n  file: %s\n  features:\n%s" % (
            os.path.join(d, "churn.yaml"), path, features))
    return cfg


def journeys():
    """Ann: basic plan, international, four contacts in a week.  Bob: unlimited, no contact."""
    evs = [ev("plan.changed", "ann@example.com", "0", name="basic", international="yes"),
           ev("plan.changed", "bob@example.com", "0", name="unlimited", international="no")]
    evs += [ev("ticket.created", "ann@example.com", "%dd" % (i + 1), ticket_id="t%d" % i)
            for i in range(4)]
    return evs


def model_score(d, path, features):
    """`forewarn model score` on one CSV row of the given column values."""
    csvp = os.path.join(d, "row.csv")
    with open(csvp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(features))
        w.writerow(list(features.values()))
    rc, out, err = run(["model", "score", "--model", path, "--csv", csvp])
    assert rc == 0, err
    return float(out.strip().split(",")[1])


def metric(s, name):
    st, text, _ = s.request("GET", "/metrics", raw=True)
    assert st == 200
    return int(re.search(r"^%s (\d+)$" % name, text, re.M).group(1))


def test_rule_fires_for_the_risky_customer_and_the_queue_shows_the_model():
    d, path, w = model()
    assert 0 < w < 1, "the blend must use both the trees and the baseline here (w = %s)" % w
    with Server("--config", config(d, path)) as s:
        assert s.post_events(journeys())[0] == 200
        fired = {(x["signal"], x["customer"]) for x in s.detections(state="firing")}
        assert ("CHURN-001", "ann@example.com") in fired, fired
        assert ("CHURN-001", "bob@example.com") not in fired, fired
        assert ("PLAN-001", "bob@example.com") in fired, fired  # a case for each of them
        assert s.clock(T("5d"))[0] == 200
        st, q = s.request("GET", "/v1/queue")
        assert st == 200, q
        scored = metric(s, "forewarn_churn_scores_total")
        st, q2 = s.request("GET", "/v1/queue")
        # Nothing changed since: the second reading comes from the cache.
        assert metric(s, "forewarn_churn_scores_total") == scored
    risk = {c["customer"]: c["priority"]["components"]["churn_risk"] for c in q["cases"]}
    assert set(risk) == {"ann@example.com", "bob@example.com"}, risk
    ann, bob = risk["ann@example.com"], risk["bob@example.com"]
    for r in (ann, bob):
        assert r["basis"]["model"] == "churn_model" and r["basis"]["file"] == path, r
        assert r["basis"]["trained"] and r["why"].startswith("churn model score"), r
        assert r["score"] == r["basis"]["score"]
    assert ann["score"] > 0.7 > bob["score"], (ann, bob)
    # The values the model saw are those the mapping computes from the journeys.
    fa, fb = ann["basis"]["features"], bob["basis"]["features"]
    assert fa["calls"] == "4" and fa["plan"] == "basic" and fa["intl_plan"] == "yes", fa
    assert fb["calls"] == "0" and fb["plan"] == "unlimited" and fb["intl_plan"] == "no", fb
    assert abs(float(fa["tenure_days"]) - 5) < 1e-9 and abs(float(fb["tenure_days"]) - 5) < 1e-9
    # The invariant: a live score is `model score`'s on a CSV row of the same values.
    for r in (ann, bob):
        assert abs(r["score"] - model_score(d, path, r["basis"]["features"])) < 1e-6, r
    assert [c["priority"]["components"]["churn_risk"] for c in q2["cases"]] == \
        [c["priority"]["components"]["churn_risk"] for c in q["cases"]]


def test_a_value_of_the_wrong_kind_is_missing_as_in_a_csv_cell():
    """Text in the numeric column calls, a number in the boolean column intl_plan, a category
    the model never saw: each becomes missing as `model score` treats that cell, and the
    scores agree."""
    d, path, _ = model()
    feats = FEATURES.replace('count("contact", 30d)', "plan.calls")
    with Server("--config", config(d, path, feats, "wrong.yaml")) as s:
        evs = [ev("plan.changed", "cy@example.com", "0", name="gold", international=3,
                  calls="many"),
               ev("plan.changed", "dee@example.com", "0", name="basic", international=True,
                  calls=2.5)]
        assert s.post_events(evs)[0] == 200
        assert s.clock(T("1d"))[0] == 200
        st, q = s.request("GET", "/v1/queue")
    assert st == 200, q
    risk = {c["customer"]: c["priority"]["components"]["churn_risk"] for c in q["cases"]}
    cy, dee = risk["cy@example.com"], risk["dee@example.com"]
    assert cy["basis"]["features"] == {"calls": "many", "tenure_days": "1", "intl_plan": "3",
                                       "plan": "gold"}, cy
    assert dee["basis"]["features"] == {"calls": "2.5", "tenure_days": "1", "intl_plan": "true",
                                        "plan": "basic"}, dee
    for r in (cy, dee):
        assert abs(r["score"] - model_score(d, path, r["basis"]["features"])) < 1e-6, r
    # And missing is not a default: with every value missing the score differs from Cy's.
    assert abs(model_score(d, path, {"calls": "", "tenure_days": "", "intl_plan": "",
                                     "plan": ""}) - cy["score"]) > 1e-6


def test_no_scoring_when_nothing_reads_churn_risk():
    """Without a rule reading churn_risk, events cost no model evaluation; the queue scores
    on demand, once per customer while nothing changes."""
    d, path, _ = model()
    pack = os.path.join(d, "plan.yaml")
    with open(pack, "w") as f:
        f.write(PACK.split("  - id: CHURN-001")[0] + PACK.split("condition: churn_risk > 0.7\n")[1])
    cfg = os.path.join(d, "lazy.yaml")
    with open(cfg, "w") as f:
        f.write("messages: false\nrules: [%s]\nchurn_model:\n  file: %s\n  features:\n%s" % (
            pack, path, FEATURES))
    with Server("--config", cfg) as s:
        assert s.post_events(journeys())[0] == 200
        assert metric(s, "forewarn_churn_scores_total") == 0
        st, q = s.request("GET", "/v1/queue")
        assert st == 200 and len(q["cases"]) == 2, q  # PLAN-001 opened a case for each
        assert metric(s, "forewarn_churn_scores_total") == 2
        for c in q["cases"]:
            assert c["priority"]["components"]["churn_risk"]["basis"]["model"] == "churn_model"
        # A new event of Ann's makes her score stale: the next reading scores her alone again
        # (the same day: at the next midnight Bob's tenure moves, and his score is due too).
        assert s.post_events([ev("chat.started", "ann@example.com", "4d1h", conversation_id="c1")])[0] == 200
        st, q = s.request("GET", "/v1/queue")
        assert metric(s, "forewarn_churn_scores_total") == 3, q


def test_replay_with_the_config_reproduces_the_detections():
    d, path, _ = model()
    from fw import ndjson
    p = subprocess.run([BIN, "replay", "--config", config(d, path), "-"], input=ndjson(journeys()),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    churn = [l for l in p.stdout.splitlines() if '"CHURN-001"' in l]
    assert len(churn) == 1 and '"ann@example.com"' in churn[0], p.stdout


def refused(d, cfg_text, name):
    """Start serve with a config; it must exit non-zero without listening.  Its stderr."""
    cfg = os.path.join(d, name)
    with open(cfg, "w") as f:
        f.write(cfg_text)
    s = Server("--config", cfg)
    rc = s.start(expect_fail=True)
    assert rc not in (0, None), "serve started with %s" % name
    assert s.base is None
    return cfg, s.logtext()


def test_bad_configs_are_refused_located_and_serve_does_not_start():
    d, path, _ = model()
    rules = "rules: [%s]\n" % os.path.join(d, "churn.yaml")
    head = rules + "churn_model:\n  file: %s\n  features:\n" % path
    # An unmapped column: named, at the features: mapping.
    cfg, log = refused(d, head + FEATURES.replace("    plan: plan.name\n", ""), "unmapped.yaml")
    assert "%s:5:5: error: churn_model.features: 1 column of the model" % cfg in log, log
    assert "plan (categorical)" in log and "or to null to leave it missing" in log, log
    # An unknown column: at its key.
    cfg, log = refused(d, head + FEATURES + "    plann: plan.name\n", "unknown.yaml")
    assert "%s:9:5: error: churn_model.features: 'plann' is not a column of the model" % cfg in log
    # A missing model file: at the file: value.
    cfg, log = refused(d, rules + "churn_model:\n  file: %s/nope.model\n  features:\n%s" % (d, FEATURES),
                       "nofile.yaml")
    assert "%s:3:9: error: churn_model.file: " % cfg in log and "nope.model" in log, log
    # A model file of another format version.
    old = os.path.join(d, "v1.model")
    with open(path, "rb") as f:
        data = f.read()
    with open(old, "wb") as f:
        f.write(data.replace(b"forewarn-model 2\n", b"forewarn-model 1\n", 1))
    cfg, log = refused(d, rules + "churn_model:\n  file: %s\n  features:\n%s" % (old, FEATURES),
                       "v1.yaml")
    assert "%s:3:9: error: churn_model.file: " % cfg in log, log
    assert "model file format version 1; this forewarn reads version 2" in log, log
    # An expression that does not compile: at the mistake.
    cfg, log = refused(d, head + FEATURES.replace('count("contact", 30d)', 'count("contakt", 30d)'),
                       "badexpr.yaml")
    assert re.search(r"%s:5:\d+: error: churn_model.features.calls: .*contakt" % re.escape(cfg), log), log
    # A duration without a unit for a numeric column.
    cfg, log = refused(d, head + FEATURES.replace(
        """{expr: 'age(last("plan.changed"))', unit: 1d}""", """'age(last("plan.changed"))'"""),
        "nounit.yaml")
    assert "%s:6:19: error: churn_model.features.tenure_days: a duration needs a unit" % cfg in log, log
    # A rule reading churn_risk with no churn model configured.
    cfg, log = refused(d, rules, "nomodel.yaml")
    assert re.search(r"churn\.yaml:\d+:\d+: error: CHURN-001 reads churn_risk, and no churn model "
                     r"is configured", log), log


def test_rules_check_with_and_without_the_config():
    d, path, _ = model()
    pack = os.path.join(d, "churn.yaml")
    rc, out, err = run(["rules", "check", pack])
    assert rc == 1 and "CHURN-001 reads churn_risk, and no churn model is configured" in err, err
    rc, out, err = run(["rules", "check", "--config", config(d, path), pack])
    assert rc == 0 and "OK, 2 signal(s)" in out, out + err
    bad = config(d, path, FEATURES.replace("plan.name", "event.data.plan"), "event.yaml")
    rc, out, err = run(["rules", "check", "--config", bad, pack])
    assert rc == 1 and "%s:9:11: error: churn_model.features.plan: a feature is the customer's" % bad in err, err


def _fences(doc, heading):
    """The fenced blocks of one section of a page: [(lang, text)]."""
    from fw import ROOT
    text = open(os.path.join(ROOT, "docs", doc)).read()
    i = text.index(heading)
    j = text.find("\n## ", i + len(heading))
    section = text[i:j if j > 0 else len(text)]
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", section, re.M | re.S)]


def test_docs_example_config_and_rule_run_as_shown():
    """docs/model.md "Scoring customers live": its churn_model: block and its rule, run
    through replay with the journeys above, fire for Ann only; the queue JSON it shows has the
    basis keys serve writes; docs/configuration.md shows the same mapping."""
    d, path, _ = model()
    fences = _fences("model.md", "## Scoring customers live")
    cfg_block = next(t for lang, t in fences if lang == "yaml" and "churn_model:" in t)
    rule_block = next(t for lang, t in fences if lang == "yaml" and "signals:" in t)
    pack = os.path.join(d, "docs_pack.yaml")
    with open(pack, "w") as f:
        f.write("pack: docs\nversion: 1\nclasses:\n  contact: [ticket.created, chat.started]\n"
                + rule_block)
    cfg = os.path.join(d, "docs_cfg.yaml")
    with open(cfg, "w") as f:
        f.write("rules: [%s]\n" % pack + cfg_block.replace("file: churn.model", "file: " + path))
    from fw import ndjson
    p = subprocess.run([BIN, "replay", "--config", cfg, "-"], input=ndjson(journeys()),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    fired = [l for l in p.stdout.splitlines() if '"CHURN-001"' in l]
    assert len(fired) == 1 and '"ann@example.com"' in fired[0], p.stdout
    import json
    shown = json.loads("{" + next(t for lang, t in fences if lang == "json") + "}")["churn_risk"]
    with Server("--config", config(d, path)) as s:
        assert s.post_events(journeys())[0] == 200
        st, q = s.request("GET", "/v1/queue")
    live = q["cases"][0]["priority"]["components"]["churn_risk"]
    assert set(shown) == set(live) and set(shown["basis"]) == set(live["basis"]), (shown, live)
    assert set(shown["basis"]["features"]) == set(live["basis"]["features"])
    conf = next(t for lang, t in _fences("configuration.md", "## Churn model") if "churn_model:" in t)
    strip = lambda t: [l.split("  #")[0].rstrip() for l in t.strip().splitlines()]
    assert strip(conf) == strip(cfg_block), (conf, cfg_block)
