"""`forewarn rules check` and `forewarn rules test` through the real binary.

Each broken pack under tests/rules/ has exactly one mistake; the test
asserts the exact file:line:col of the report (the place a person must
edit), the reason, the quoted source line with its caret, and a failing
exit status.
"""

import json
import os
import re

from fw import ROOT, RULES_DIR, detections, ev, replay_raw, run

TELECOM = os.path.join(ROOT, "rules", "telecom.yaml")
TELECOM_TESTS = os.path.join(ROOT, "rules", "telecom.test.yaml")


def _check_fails(fixture, line, col, reason, source_snippet):
    path = os.path.join(RULES_DIR, fixture)
    rc, out, err = run(["rules", "check", path])
    assert rc != 0, "rules check %s should fail, exited 0; stdout:\n%s" % (fixture, out)
    assert "OK" not in out, "a broken pack must not be reported OK:\n%s" % out
    where = "%s:%d:%d: error: " % (path, line, col)
    assert where in err, "expected the error at %s:%d:%d, got:\n%s" % (fixture, line, col, err)
    first = [l for l in err.splitlines() if where in l][0]
    assert reason in first, "reason %r missing from %r" % (reason, first)
    # The report quotes line `line` of the file and puts a caret under column `col`.
    lines = err.splitlines()
    i = lines.index(first)
    assert i + 2 < len(lines), "no quoted source line after the error:\n%s" % err
    with open(path) as f:
        src_line = f.read().split("\n")[line - 1]
    assert source_snippet in src_line, "fixture line %d is %r (test out of date?)" % (line, src_line)
    assert lines[i + 1] == "    " + src_line, "quoted %r, expected line %d %r" % (lines[i + 1], line, src_line)
    assert lines[i + 2] == " " * (4 + col - 1) + "^", "caret line %r is not under column %d" % (lines[i + 2], col)
    # Exactly one mistake per fixture: one error, counted once.
    assert err.count(": error: ") == 1, "expected exactly one error:\n%s" % err
    assert re.search(r": 1 error\(s\)$", err.strip()), "no error count line:\n%s" % err


def test_telecom_pack_checks_ok():
    rc, out, err = run(["rules", "check", TELECOM])
    assert rc == 0, "rules check telecom.yaml failed (%d):\n%s" % (rc, err)
    assert out.strip() == "%s: OK, 11 signal(s)" % TELECOM, "unexpected output: %r" % out


def test_check_unknown_function():
    _check_fails("bad_unknown_function.yaml", 7, 16, "SIG-T01: unknown function 'trim'",
                 'condition: trim(esim.status) == "FAILED"')


def test_check_type_mismatch():
    # Points at the comparison whose operands cannot be compared, on the second
    # line of a folded (>-) condition: line and column are mapped back into the file.
    _check_fails("bad_type_mismatch.yaml", 9, 42, "SIG-T02: type mismatch: duration > string",
                 'and age(last("payment.completed")) > "48 hours"')


def test_check_unknown_severity():
    _check_fails("bad_severity.yaml", 6, 15, "unknown severity 'URGENT'", "severity: URGENT")


def test_check_duplicate_id():
    # The second declaration is the one reported.
    _check_fails("bad_duplicate_id.yaml", 8, 9, "duplicate signal id 'SIG-T04'", "- id: SIG-T04")


def test_check_bad_systemic_window():
    _check_fails("bad_window.yaml", 8, 42, "bad duration '1 day'",
                 "systemic: {min_customers: 3, window: 1 day}")


def test_check_yaml_syntax_error():
    # The flow mapping opened on line 7 is never closed; libyaml notices on line 8
    # where it expected ',' or '}'.
    _check_fails("bad_yaml_syntax.yaml", 8, 14, "YAML syntax: did not find expected ',' or '}'",
                 'condition: upper(esim.status) == "FAILED"')


def test_check_unknown_field():
    _check_fails("bad_unknown_field.yaml", 7, 5, "unknown field 'serverity' in a signal",
                 "serverity: LOW")


def test_check_unknown_class():
    _check_fails("bad_unknown_class.yaml", 9, 22, "SIG-T08: unknown event class 'contacts'",
                 'condition: count("contacts", 7d) >= 3')


def test_check_reports_every_file():
    # Several files in one run: the good one is OK, the bad one fails, and the exit status says so.
    bad = os.path.join(RULES_DIR, "bad_severity.yaml")
    rc, out, err = run(["rules", "check", TELECOM, bad])
    assert rc != 0, "one bad file must fail the run"
    assert "%s: OK, 11 signal(s)" % TELECOM in out, out
    assert "%s:6:15: error:" % bad in err, err


def test_telecom_rule_tests_pass():
    with open(TELECOM_TESTS) as f:
        ntests = sum(1 for l in f if re.match(r"^  - name: ", l))
    assert ntests >= 50, "telecom.test.yaml has only %d tests" % ntests
    rc, out, err = run(["rules", "test", TELECOM_TESTS])
    assert rc == 0, "rules test failed (%d):\n%s\n%s" % (rc, out, err)
    last = out.strip().splitlines()[-1]
    assert last == "%d passed, 0 failed" % ntests, "closing line %r, expected %d passed" % (last, ntests)
    assert out.count("\nok   ") + out.startswith("ok   ") == ntests, out
    # Every signal of the pack is exercised by name.
    for n in range(1, 11):
        assert re.search(r"^ok   SIG-%03d " % n, out, re.M), "no passing test named SIG-%03d" % n


def test_failing_rule_test_reports_missing_and_unexpected():
    path = os.path.join(RULES_DIR, "failing.test.yaml")
    rc, out, err = run(["rules", "test", path])
    assert rc != 0, "a failing rule test must exit non-zero:\n%s" % out
    assert out.strip().splitlines()[-1] == "1 passed, 3 failed", out
    assert "ok   passes -- SIG-002 fires at the failure" in out, out
    assert "FAIL wrong time -- SIG-001 fires at 48h, not 47h" in out, out
    # The wrong time is reported both ways: what was expected and what happened.
    assert "missing:    SIG-001 c1 firing at 2026-03-03T23:00:00Z" in out, out
    assert "unexpected: SIG-001 c1 firing at 2026-03-04T00:00:00Z" in out, out
    assert "missing:    SIG-003 c2 resolved at 2026-03-02T05:00:00Z" in out, out
    assert "unexpected: SIG-002 c3 firing at 2026-03-02T00:00:00Z" in out, out
    # The expected firing of SIG-003 did happen, so it is neither missing nor unexpected.
    assert "SIG-003 c2 firing" not in out, out


def test_check_regex_bomb_refused_at_the_byte():
    # Issue 18: POSIX regcomp spent seconds and gigabytes on this pattern.
    # PCRE2 refuses it at once, at the third '+' (a quantifier after the
    # possessive '++'); run() has a timeout, so a hang would fail too.
    _check_fails("bad_regex_bomb.yaml", 8, 44,
                 "SIG-T10: bad regex '------++++", 'portin.response =~ "------+++')
    rc, out, err = run(["rules", "check", os.path.join(RULES_DIR, "bad_regex_bomb.yaml")])
    assert "quantifier does not follow a repeatable item" in err, err


def test_check_count_window_over_limit():
    _check_fails("bad_count_window.yaml", 9, 33, "SIG-T11: count() window over the limit of 366d",
                 'count("contact", 3650d)')


def test_check_systemic_window_over_limit():
    _check_fails("bad_systemic_window.yaml", 8, 42, "systemic window over the limit of 30d",
                 "window: 90d")


def test_backtracking_regex_stops_at_its_limit_and_counts_as_null():
    # (a+)+$ on 3,000 a's and a '!' backtracks exponentially; the match
    # limit stops it, the search counts as null (so neither the match nor
    # its negation fires), and the log names the pattern's place in the
    # pack.  A short subject still matches normally.
    pack = os.path.join(RULES_DIR, "regex_backtrack.yaml")
    events = [ev("note.added", "c-long", "0", text="a" * 3000 + "!"),
              ev("note.added", "c-short", "1m", text="hello")]
    rc, out, err = replay_raw(events, "--rules", pack)
    assert rc == 0, err
    lines = [json.loads(l) for l in out.splitlines()]
    fired = sorted((d["signal"], d["customer"]) for d in detections(lines, state="firing"))
    assert fired == [("SIG-B02", "c-short"), ("SIG-B03", "c-long")], fired
    assert "%s:9:20 (SIG-B01): regex match on a 3001-byte subject stopped: match limit exceeded" % pack in err, err
    assert "%s:13:34 (SIG-B02): regex match" % pack in err, err
