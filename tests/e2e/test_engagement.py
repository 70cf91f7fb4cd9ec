"""The engagement pack (rules/engagement.yaml) end to end through `replay`.

Each signal fires at the exact instant its figure crosses the line: a usage
decline at the UTC midnight that completes the 7-day window (31% fires, 29%
does not), an adoption gap 14 days after signup only for a feature the
customer bought, onboarding stalled at 7 days, risk indicators on the third
touch or a negative sentiment score, the milestone on the last step.
`replay --messages` shows the seed 001 message each one sends, and the
guardrails (one proactive message a week, quiet hours) still hold.
"""

import json
import os

from fw import ROOT, T, detections, ev, replay, replay_raw, run

PACK = os.path.join(ROOT, "rules", "engagement.yaml")
TELECOM = os.path.join(ROOT, "rules", "telecom.yaml")


def _replay(events, until, *extra):
    return replay(events, "--rules", PACK, "--until", T(until), *extra)


def _usage(subject, days, value_of, metric="data_mb"):
    """One usage.reported per day at noon for days 0 .. days-1."""
    return [ev("usage.reported", subject, "%dd12h" % d, metric=metric, value=value_of(d))
            for d in range(days)]


def _customer(subject, name="Ann Lee"):
    return ev("customer.updated", subject, "0", name=name, email=subject)


def _firings(lines, signal, customer=None):
    return [d["at"] for d in detections(lines, signal, customer, "firing")]


def _customer_messages(lines, customer):
    return [m for m in lines if m.get("kind") == "message" and m["audience"] == "customer"
            and m["customer"] == customer]


def test_decline_31_fires_at_midnight_29_does_not():
    evs = [_customer("a@example.com"), _customer("b@example.com")]
    evs += _usage("a@example.com", 42, lambda d: 100 if d < 35 else 69)
    evs += _usage("b@example.com", 42, lambda d: 100 if d < 35 else 71)
    # At 42d the window is days 35..41 (today, day 42, is never in it). Through 42d23h59m only:
    # at 43d day 42, with no report, would count as a day of no use (0) for both.
    lines = _replay(sorted(evs, key=lambda e: e["time"]), "42d23h59m")
    assert _firings(lines, "ENG-001", "a@example.com") == [T("42d")], lines
    assert _firings(lines, "ENG-001", "b@example.com") == []


def test_decline_of_exactly_30_fires():
    # 100 -> 70 is 30.0, not 29.999999999999996: the rule's ">= 30" holds on the line itself.
    evs = [_customer("x@example.com")] + _usage("x@example.com", 42, lambda d: 100 if d < 35 else 70)
    lines = _replay(evs, "42d23h59m")
    assert _firings(lines, "ENG-001", "x@example.com") == [T("42d")], lines


def test_decline_needs_35_days_of_history():
    # 28 days of 100 then nothing: a 100% drop, but only once the 28-day base is all known.
    evs = [_customer("c@example.com")] + _usage("c@example.com", 28, lambda d: 100)
    lines = _replay(evs, "60d")
    assert _firings(lines, "ENG-001") == [T("35d")]
    # With 27 days the base never fills: no decline, ever (not enough history).
    evs = [_customer("d@example.com")] + _usage("d@example.com", 27, lambda d: 100)
    evs = [e for e in evs if e["type"] != "usage.reported" or e["time"] >= T("1d")]
    lines = _replay(evs, "60d")
    assert _firings(lines, "ENG-001") == [T("36d")]


def test_decline_message_is_a_check_in_after_quiet_hours():
    evs = [_customer("a@example.com")] + _usage("a@example.com", 42,
                                               lambda d: 100 if d < 35 else 60)
    # 100 -> 60: at 41d the window is six days of 60 and one of 100, already 34% down.
    lines = _replay(evs, "42d12h", "--messages")
    assert _firings(lines, "ENG-001") == [T("41d")]
    msgs = _customer_messages(lines, "a@example.com")
    assert len(msgs) == 1, msgs
    m = msgs[0]
    assert m["signals"] == ["ENG-001"] and m["channel"] == "email"
    assert m["subject"].startswith("Checking in"), m["subject"]
    assert m["send_at"] == T("41d8h"), m  # quiet hours 21:00-08:00 UTC
    assert "using your line a bit less" in m["body"]


def _subscriber(subject, features, steps=()):
    evs = [_customer(subject),
           ev("subscription.changed", subject, "0", plan="Unlimited", features=list(features))]
    evs += [ev("onboarding.step_completed", subject, "1h", step=s) for s in steps]
    return evs


ALL_STEPS = ["activate_esim", "install_app", "set_up_voicemail", "enable_autopay"]


def test_adoption_gap_only_for_purchased_features():
    evs = _subscriber("buyer@example.com", ["hotspot"], ALL_STEPS)
    evs += _subscriber("other@example.com", ["wifi_calling"], ALL_STEPS)
    # other@ uses a hotspot it never bought (say, a trial): still no tip about it.
    evs.append(ev("feature.used", "other@example.com", "2d", feature="wifi_calling"))
    lines = _replay(sorted(evs, key=lambda e: e["time"]), "30d", "--messages")
    assert _firings(lines, "ENG-002", "buyer@example.com") == [T("14d")]
    assert _firings(lines, "ENG-002", "other@example.com") == []
    assert _firings(lines, "ENG-003") == []  # other@ used what they bought
    tips = [m for m in _customer_messages(lines, "buyer@example.com") if m["signals"] == ["ENG-002"]]
    assert len(tips) == 1 and "hotspot" in tips[0]["subject"], tips
    assert not [m for m in lines if m.get("kind") == "message" and m["customer"] == "other@example.com"
                and "hotspot" in (m.get("subject") or "") + m["body"]]


def test_adoption_gap_boundary_and_use_ends_it():
    evs = _subscriber("e@example.com", ["hotspot", "wifi_calling"], ALL_STEPS)
    evs.append(ev("feature.used", "e@example.com", "13d23h59m", feature="hotspot"))
    lines = _replay(evs, "20d")
    assert _firings(lines, "ENG-002") == []            # used one minute before the line
    assert _firings(lines, "ENG-003") == [T("14d")]    # never used: fires at exactly 14 days


def test_onboarding_stall_and_milestone():
    evs = _subscriber("s@example.com", [], ALL_STEPS[:2])
    evs += _subscriber("m@example.com", [], ALL_STEPS[:3])
    evs.append(ev("onboarding.step_completed", "m@example.com", "6d23h", step="enable_autopay"))
    lines = _replay(sorted(evs, key=lambda e: e["time"]), "10d", "--messages")
    assert _firings(lines, "ENG-004", "s@example.com") == [T("7d")]
    assert _firings(lines, "ENG-004", "m@example.com") == []
    assert _firings(lines, "ENG-006", "m@example.com") == [T("6d23h")]
    assert _firings(lines, "ENG-006", "s@example.com") == []
    ended = detections(lines, "ENG-006", "m@example.com", "resolved")
    assert [d["at"] for d in ended] == [T("7d23h")]  # a day after the last step
    won = _customer_messages(lines, "m@example.com")
    assert [m["subject"] for m in won] == ["You're all set up"], won


def test_risk_indicators_third_touch_or_negative_sentiment():
    evs = [_customer("t@example.com"), _customer("n@example.com")]
    evs += [ev("ticket.created", "t@example.com", "%dd" % d, ticket_id="t%d" % d) for d in (1, 10, 29)]
    evs.append(ev("sentiment.scored", "n@example.com", "3d", score=-0.49))
    evs.append(ev("sentiment.scored", "n@example.com", "4d", score=-0.5))
    lines = _replay(sorted(evs, key=lambda e: e["time"]), "40d")
    assert _firings(lines, "ENG-005", "t@example.com") == [T("29d")]
    resolved = detections(lines, "ENG-005", "t@example.com", "resolved")
    assert [d["at"] for d in resolved] == [T("31d")]   # the first touch leaves its 30 days
    assert _firings(lines, "ENG-005", "n@example.com") == [T("4d")]


def test_one_proactive_message_a_week():
    # Onboarding stalls at day 7 (adoption help); the third touch at day 9 is a check-in
    # (ENG-005), two days later: the weekly cap holds it back.
    subj = "w@example.com"
    evs = _subscriber(subj, [], ALL_STEPS[:1])
    evs += [ev("ticket.created", subj, t, ticket_id=t) for t in ("8d", "8d12h", "9d")]
    lines = _replay(evs, "16d", "--messages")
    assert _firings(lines, "ENG-004") == [T("7d")]
    assert _firings(lines, "ENG-005") == [T("9d")]
    msgs = [(m["signals"], m["status"], (m.get("reason") or "").split(":")[0])
            for m in _customer_messages(lines, subj)]
    # The check-in is about the touches alone: the adoption help is another outreach type.
    assert msgs == [(["ENG-004"], "scheduled", "quiet_hours"),
                    (["ENG-005"], "suppressed", "frequency_cap")], msgs


def test_adoption_tips_together_are_one_adoption_message():
    # Both features bought, neither used: ENG-002 and ENG-003 fire at the same instant and
    # make one in-app adoption message listing each tip, never "we're fixing" wording.
    subj = "two@example.com"
    lines = _replay(_subscriber(subj, ["hotspot", "wifi_calling"], ALL_STEPS), "15d", "--messages")
    tips = [m for m in _customer_messages(lines, subj) if "ENG-002" in m["signals"]]
    assert len(tips) == 1, tips
    m = tips[0]
    assert sorted(m["signals"]) == ["ENG-002", "ENG-003"] and m["channel"] == "in_app", m
    assert m["explanation"]["template"].endswith("in_app/adoption_help.tmpl"), m["explanation"]
    assert m["subject"] == "A few tips to get more from your plan", m
    assert "Personal Hotspot" in m["body"] and "Wi-Fi calling on your plan" in m["body"], m["body"]
    assert "fixing" not in (m["subject"] + m["body"]).lower(), m


def test_a_journey_problem_and_a_check_in_are_not_merged():
    # The third chat in a day fires telecom's SIG-008 (repeat contact) and the engagement
    # pack's ENG-005 (three touches) together: the journey alert is one message about SIG-008
    # alone; the check-in is decided on its own, and the weekly cap holds it back.
    subj = "both@example.com"
    evs = [_customer(subj)]
    evs += [ev("chat.started", subj, "1d%dh" % h, conversation_id="c%d" % h, topic="esim")
            for h in (9, 10, 11)]
    lines = replay(evs, "--rules", TELECOM, "--rules", PACK, "--until", T("3d"), "--messages")
    assert _firings(lines, "SIG-008") == [T("1d11h")] and _firings(lines, "ENG-005") == [T("1d11h")]
    msgs = [m for m in _customer_messages(lines, subj) if m["at"] < T("2d")]  # not the ladder's
    got = [(m["signals"], m["status"], (m.get("reason") or "").split(":")[0]) for m in msgs]
    assert got == [(["SIG-008"], "scheduled", ""), (["ENG-005"], "suppressed", "frequency_cap")], got
    assert not msgs[0]["explanation"]["template"].endswith("merged.tmpl"), msgs[0]["explanation"]
    assert ("merge: one outreach type per message (journey_alert); decided on their own: "
            "check_in") in msgs[0]["explanation"]["decided_by"], msgs[0]["explanation"]
    assert msgs[1]["subject"].startswith("Checking in"), msgs[1]
    # The chatbot keeps explaining the journey problem: the check-in does not replace its context.
    bot = [m for m in lines if m.get("kind") == "message" and m["audience"] == "chatbot"]
    assert [m["signals"] for m in bot] == [["SIG-008"]], bot


def test_opted_out_customer_gets_no_engagement_message():
    subj = "o@example.com"
    evs = _subscriber(subj, [], ALL_STEPS[:1])
    evs.insert(1, ev("customer.updated", subj, "0", opt_out=["in_app", "email"]))
    lines = _replay(evs, "8d", "--messages")
    assert _firings(lines, "ENG-004") == [T("7d")]
    msgs = _customer_messages(lines, subj)
    assert [m["status"] for m in msgs] == ["suppressed"], msgs
    assert msgs[0]["reason"].startswith("opt_out"), msgs


def test_health_in_rules_and_customer_view():
    # Contacts, a failed payment and a falling usage: health drops below 40 (ENG-007).
    subj = "h@example.com"
    evs = _subscriber(subj, ["hotspot", "wifi_calling"], ALL_STEPS)
    evs += _usage(subj, 42, lambda d: 100 if d < 35 else 40)
    evs += [ev("ticket.created", subj, "%dd" % d, ticket_id="t%d" % d) for d in (36, 37, 38, 39)]
    evs.append(ev("payment.failed", subj, "40d", order_id="o1", reason="card_declined"))
    evs.append(ev("sentiment.scored", subj, "40d1h", score=-0.8))
    evs.sort(key=lambda e: e["time"])
    lines = _replay(evs, "41d")
    # At 39d: usage (days 32..38: 3 x 100 + 4 x 40) is 34.3% down, 30 x (1 - 34.3/50) = 9.4;
    # adoption 0 of 2 features = 0; 3 touches in 30 days 15 x 1/4 = 3.8; sentiment none yet 15;
    # no failed payment 10; ENG-001, ENG-002, ENG-003 firing: 0.  9.4 + 3.8 + 15 + 10 = 38.2.
    fired = _firings(lines, "ENG-007", subj)
    assert fired == [T("39d")], fired
    assert _firings(lines, "ENG-001", subj) == [T("39d")]  # 34.3% down, first counted here


def test_unknown_metric_is_a_rule_error_with_its_place():
    src = open(PACK).read().replace('usage_decline("data_mb", 7, 28)', 'usage_decline("data_gb", 7, 28)')
    path = "/tmp/fw-e2e-engagement-bad.yaml"
    with open(path, "w") as f:
        f.write(src)
    rc, out, err = run(["rules", "check", path])
    assert rc != 0
    assert "unknown metric" in err and "data_gb" in err, err
    line = src.splitlines().index('    condition: usage_decline("data_gb", 7, 28) >= 30') + 1
    assert "%s:%d:" % (path, line) in err, err
    os.unlink(path)


def test_window_beyond_horizon_is_refused():
    src = open(PACK).read().replace("horizon_days: 90", "horizon_days: 30")
    path = "/tmp/fw-e2e-engagement-horizon.yaml"
    with open(path, "w") as f:
        f.write(src)
    rc, out, err = run(["rules", "check", path])
    assert rc != 0 and "ENG-001 reads 35 days of usage history" in err and "keeps 30" in err, err
    os.unlink(path)


def test_beside_the_telecom_pack():
    evs = _subscriber("x@example.com", ["hotspot"], ALL_STEPS)
    lines = replay(evs, "--rules", TELECOM, "--rules", PACK, "--until", T("15d"))
    assert _firings(lines, "ENG-002") == [T("14d")]


def _view(server, subj):
    import urllib.parse
    status, body = server.request("GET", "/v1/customers/" + urllib.parse.quote(subj))
    assert status == 200, body
    return body


def test_customer_view_shows_health_components_that_sum_to_the_score():
    from server import Server
    subj = "v@example.com"
    evs = _subscriber(subj, ["hotspot", "wifi_calling"], ALL_STEPS[:2])
    evs.append(ev("feature.used", subj, "2d", feature="hotspot"))
    evs += [ev("ticket.created", subj, "3d", ticket_id="t1"),
            ev("sentiment.scored", subj, "3d1h", score=-0.2)]
    evs += _usage(subj, 5, lambda d: 10 * (d + 1))
    evs.sort(key=lambda e: e["time"])
    with Server("--rules", PACK) as s:
        assert s.post_events(evs)[0] == 200
        s.clock(T("6d"))
        v = _view(s, subj)
    h = v["health"]
    parts = {p["name"]: p for p in h["components"]}
    assert set(parts) == {"usage", "adoption", "contacts", "sentiment", "payments", "detections"}
    assert abs(sum(p["contribution"] for p in parts.values()) - h["score"]) < 1e-9, h
    assert abs(sum(p["weight"] for p in parts.values()) - 100) < 1e-9
    assert parts["usage"]["detail"] == "not enough usage history" and parts["usage"]["score"] == 1
    assert parts["adoption"]["detail"] == "1 of 2 purchased features used in 30 days"
    assert parts["contacts"]["detail"] == "1 contact in 30 days"
    assert parts["sentiment"]["score"] == 0.4
    # 30 + 20 x 1/2 + 15 x 3/4 + 15 x 0.4 + 10 + 10 (nothing firing at 6d) = 77.3 (11.3 rounded)
    assert h["score"] == 77.3, h
    eng = v["engagement"]
    assert eng["onboarding_left"] == ALL_STEPS[2:] and eng["onboarding_done"] == ALL_STEPS[:2]
    m = eng["metrics"]["data_mb"]
    assert m["first_day"] == "2026-03-02" and m["last_day"] == "2026-03-06"
    assert m["last_7_days"] == 150 and m["decline_7_28"] is None  # 5 days: not enough history
    assert eng["features"]["hotspot"] == {"purchased": True, "last_used": T("2d")}


def test_health_weights_from_config():
    from server import Server
    subj = "k@example.com"
    evs = _subscriber(subj, ["hotspot", "wifi_calling"], ALL_STEPS)
    cfg = "/tmp/fw-e2e-health.yaml"
    with open(cfg, "w") as f:
        f.write("health:\n  weights: {usage: 0, adoption: 50, contacts: 0, sentiment: 0, "
                "payments: 50, detections: 0}\n")
    with Server("--rules", PACK, "--config", cfg) as s:
        assert s.post_events(evs)[0] == 200
        s.clock(T("1d"))
        h = _view(s, subj)["health"]
    parts = {p["name"]: p for p in h["components"]}
    assert parts["adoption"]["weight"] == 50 and parts["usage"]["weight"] == 0
    assert h["score"] == 50, h  # neither purchased feature used: adoption 0, payments 50
    with open(cfg, "w") as f:
        f.write("health:\n  weights: {usage: -1}\n")
    rc, out, err = run(["replay", "--config", cfg, "/dev/null"])
    assert rc != 0 and "%s:2:" % cfg in err and "from 0 to 100" in err, err
    os.unlink(cfg)


def test_queue_churn_risk_is_what_health_lacks():
    """With the engagement pack loaded, the queue's churn-risk component is 100 minus the
    customer's health score (the same figure GET /v1/customers shows), named as such."""
    from server import Server
    subj = "q@example.com"
    evs = _subscriber(subj, ["hotspot", "wifi_calling"], ALL_STEPS[:2])
    evs += [ev("ticket.created", subj, "3d", ticket_id="t1"),
            ev("ticket.created", subj, "3d1h", ticket_id="t2"),
            ev("ticket.created", subj, "3d2h", ticket_id="t3")]
    evs.sort(key=lambda e: e["time"])
    with Server("--rules", PACK) as s:
        assert s.post_events(evs)[0] == 200
        s.clock(T("4d"))
        health = _view(s, subj)["health"]["score"]
        st, q = s.request("GET", "/v1/queue")
    assert st == 200, q
    cards = [c for c in q["cases"] if c["customer"] == subj]
    assert cards, q
    risk = cards[0]["priority"]["components"]["churn_risk"]
    assert risk["basis"]["model"] == "health" and risk["basis"]["health"] == health, risk
    assert abs(risk["score"] - (100 - health) / 100) < 1e-9, (risk, health)
    assert health < 100 and risk["why"].startswith("health %.1f of 100" % health), risk


def test_queue_churn_risk_without_the_engagement_pack():
    from server import Server
    subj = "n@example.com"
    evs = [ev("customer.updated", subj, "0", name="Nia", email=subj)]
    evs += [ev("ticket.created", subj, "3d%dh" % i, ticket_id="t%d" % i) for i in range(3)]
    with Server() as s:
        assert s.post_events(evs)[0] == 200
        s.clock(T("4d"))
        st, q = s.request("GET", "/v1/queue")
    assert st == 200, q
    cards = [c for c in q["cases"] if c["customer"] == subj]
    assert cards, q
    risk = cards[0]["priority"]["components"]["churn_risk"]
    assert risk["basis"]["model"] == "none" and risk["basis"]["contacts_7d"] == 3, risk

# Bad engagement input is refused where it enters, naming the field, instead of being dropped
# in silence by the engine: (data, field, words of the reason).
BAD_ENGAGEMENT = [
    ("usage.reported", {"value": 3}, "data.metric", "required: the metric"),
    ("usage.reported", {"metric": "minutes_x", "value": 3}, "data.metric",
     '"minutes_x" is not a metric the loaded rule packs declare (engagement.metrics)'),
    ("usage.reported", {"metric": "data_mb"}, "data.value", "required"),
    ("usage.reported", {"metric": "data_mb", "value": -5}, "data.value", "must be 0 or more"),
    ("usage.reported", {"metric": "data_mb", "value": "812"}, "data.value",
     "must be a number, got string"),
    ("usage.reported", {"metric": "data_mb", "value": 1, "date": "2026-13-01"}, "data.date",
     "must be a day, YYYY-MM-DD"),
    ("feature.used", {}, "data.feature", "required: the feature used"),
    ("onboarding.step_completed", {}, "data.step", "required: the onboarding step done"),
    ("onboarding.step_completed", {"step": "install_ap"}, "data.step",
     '"install_ap" is not a step the loaded rule packs declare (engagement.onboarding_steps)'),
    ("subscription.changed", {"features": "hotspot"}, "data.features", "must be a list"),
    ("sentiment.scored", {"score": 2}, "data.score", "must be from -1 to 1"),
]


def test_bad_engagement_input_is_refused_in_replay_with_its_line():
    subj = "bad@example.com"
    good = _customer(subj)
    evs = [good] + [ev(t, subj, "1h", data=d) for t, d, _, _ in BAD_ENGAGEMENT]
    rc, out, err = replay_raw(evs, "--rules", PACK)
    assert rc != 0 and out == "", (rc, out)
    for i, (_, _, field, words) in enumerate(BAD_ENGAGEMENT):
        line = [l for l in err.splitlines() if l.startswith("line %d: " % (i + 2))]
        assert len(line) == 1 and line[0].startswith("line %d: %s: " % (i + 2, field)), (line, err)
        assert words in line[0], (words, line)
    assert "%d invalid line(s); nothing replayed" % len(BAD_ENGAGEMENT) in err, err
    # Without a pack that declares metrics, a metric name is anyone's: only the shape is checked.
    rc, out, err = replay_raw([good, ev("usage.reported", subj, "1h", metric="minutes_x", value=1)],
                              "--rules", TELECOM)
    assert rc == 0 and " 0 invalid" in err, err


def test_bad_engagement_input_is_refused_over_http_and_nothing_is_stored():
    from server import Server
    subj = "bad@example.com"
    with Server("--rules", PACK) as s:
        for t, d, field, words in BAD_ENGAGEMENT:
            status, resp = s.post_events([_customer(subj), ev(t, subj, "1h", data=d)])
            assert status == 400, (t, d, resp)
            errs = resp["errors"]
            assert len(errs) == 1 and errs[0]["field"] == field and words in errs[0]["message"], \
                (field, errs)
        # All or nothing: the good customer.updated beside each bad event was not stored either.
        status, _ = s.request("GET", "/v1/customers/" + subj)
        assert status == 404, status
        assert s.post_events([_customer(subj)] + _usage(subj, 1, lambda d: 5))[0] == 200


def test_customer_json_matches_its_openapi_schema():
    """GET /v1/customers/{id} against docs/openapi.yaml's Customer, engagement and health
    included: every field the server sends is documented, with its type."""
    from openapi_check import errors, schema
    from server import Server
    subj = "api@example.com"
    evs = _subscriber(subj, ["hotspot", "wifi_calling"], ALL_STEPS[:2])
    evs.append(ev("feature.used", subj, "2d", feature="hotspot"))
    evs += _usage(subj, 40, lambda d: 100 if d < 35 else 50)
    evs.append(ev("customer.churned", subj, "40d1h", reason="moved"))
    evs.sort(key=lambda e: e["time"])
    with Server("--rules", PACK) as s:
        assert s.post_events(evs)[0] == 200
        s.clock(T("41d"))
        v = _view(s, subj)
    assert v["engagement"]["metrics"]["data_mb"]["decline_7_28"] is not None  # a number is checked
    assert v["engagement"]["churned"] == T("40d1h") and v["active_detections"], v
    assert errors(v, schema("Customer")) == []
    # The checker does catch what it should: an undocumented field, a wrong type.
    v["health"]["components"][0]["colour"] = "red"
    v["engagement"]["features"]["hotspot"]["purchased"] = "yes"
    assert len(errors(v, schema("Customer"))) == 2, errors(v, schema("Customer"))
    # Without an engagement section there is neither field.
    with Server() as s:
        assert s.post_events([_customer(subj)])[0] == 200
        v = _view(s, subj)
    assert "engagement" not in v and "health" not in v and errors(v, schema("Customer")) == []
