"""A connector that is down (issue 17): one alert per outage through another
channel, counted summaries at most every connector_alert_repeat, no alert
storm; and the message figures of /metrics, counted exactly.

The replay tests feed message.failed / message.sent events straight to the
orchestrator (deterministic, virtual clock, timers); the serve tests use the
real receivers of receivers.py, Slack or Zendesk answering 503."""
import json
import os
import re
import tempfile
import time

import fw
from receivers import start_all
from server import Server, ev

RETRY = {"max_attempts": 2, "backoff_base": "20ms", "backoff_max": "50ms", "timeout": "2s"}


# ---- the orchestrator alone, through replay ----

def _outcome(type_, n, at, channel, connector, kind, customer="c%d@example.com", error="HTTP 503"):
    data = {"message_id": "m_%d" % n, "channel": channel, "connector": connector,
            "audience": "l2" if channel == "slack" else "l1", "kind": kind, "attempts": 2}
    if type_ == "message.failed":
        data["error"] = error
    return {"specversion": "1.0", "id": "%s-%d" % (type_, n), "source": "/e2e", "type": type_,
            "subject": customer % n, "time": fw.T(at), "data": data}


def _connector_msgs(lines):
    return [m for m in lines if m.get("kind") == "message" and m["subject"]
            and m["subject"].split(": ")[0].split("] ")[-1] in
            ("Connector down", "Connector still down", "Connector recovered")]


def _replay_failures():
    evs = [_outcome("message.failed", i, "%dm" % (10 * i), "slack", "slack", "alert") for i in range(6)]
    # The connector-down alert went to Zendesk, which is down too: it dies, and raises nothing.
    evs.append(_outcome("message.failed", 50, "61m", "ticket", "zendesk", "connector_down",
                        error="HTTP 500"))
    # Two more Slack failures after four hours, then Slack delivers, then fails again.
    evs.append(_outcome("message.failed", 60, "5h", "slack", "slack", "alert"))
    evs.append(_outcome("message.failed", 61, "13h", "slack", "slack", "escalation"))
    evs.append(_outcome("message.sent", 70, "14h", "slack", "slack", "alert"))
    evs.append(_outcome("message.sent", 71, "14h1m", "ticket", "zendesk", "alert"))
    evs.append(_outcome("message.failed", 80, "15h", "slack", "slack", "alert"))
    return evs


def test_replay_one_alert_per_outage_then_summaries_doubling_then_recovery():
    lines = fw.replay(_replay_failures(), "--messages", *fw.until("2d"))
    got = [(m["subject"], m["channel"], m["status"], m["at"]) for m in _connector_msgs(lines)]
    assert got == [
        # The first failure: one alert, through the L1 ticket (Slack is the one failing).
        ("[FOREWARN] Connector down: slack", "ticket", "scheduled", fw.T("0")),
        # Five more by 50m, summarised after the 4h repeat.  Zendesk died meanwhile (its alert
        # failed, raising nothing), so no channel is left: recorded, suppressed, with the reason.
        ("Connector still down: slack", "slack", "suppressed", fw.T("4h")),
        # The next waits 8h (doubling): the failure at 5h is summarised at 12h; the one at 13h
        # would wait until 28h, but Slack delivers at 14h and ends the outage.
        ("Connector still down: slack", "slack", "suppressed", fw.T("12h")),
        ("Connector recovered: slack", "slack", "scheduled", fw.T("14h")),
        # Zendesk's delivery at 14h01 ends its outage silently (it never had an alert of its
        # own); a new Slack outage gets a new alert at once, through Zendesk again.
        ("[FOREWARN] Connector down: slack", "ticket", "scheduled", fw.T("15h")),
    ], got
    msgs = _connector_msgs(lines)
    assert "5 more messages failed on slack since %s" % fw.T("10m") in msgs[1]["body"], msgs[1]["body"]
    assert "no_failure_channel" in msgs[1]["reason"], msgs[1]
    assert "1 more message failed on slack since %s" % fw.T("5h") in msgs[2]["body"], msgs[2]["body"]
    # Each says which connector and why, in its explanation.
    for m in msgs:
        assert m["explanation"]["connector"]["name"] == "slack", m
        assert m["explanation"]["decided_by"][0].startswith("connector_"), m
    # Nothing was raised about the failed alert, and nothing ever went through Slack while down.
    assert not any("zendesk" in m["subject"] for m in msgs), msgs
    # Replaying the same journal gives the same alerts with the same ids (idempotency keys).
    again = fw.replay(_replay_failures(), "--messages", *fw.until("2d"))
    assert [m["id"] for m in _connector_msgs(again)] == [m["id"] for m in msgs]


# ---- serve, with real receivers ----

def _config(r, only=("slack", "zendesk"), extra=""):
    d = tempfile.mkdtemp(prefix="fw-conn-")
    path = os.path.join(d, "forewarn.yaml")
    with open(path, "w") as f:
        f.write(r.connectors_yaml(only=only, **RETRY))
        f.write(extra)
    return d, path


def _critical(customer, at):
    """Events that make SIG-002 (CRITICAL: an L1 ticket and an L2 Slack alert) fire at `at`."""
    return [
        ev("customer.updated", customer, at, name="Pat Doe", email=customer, timezone="UTC",
           push_token="device-" + customer),
        ev("order.created", customer, at, order_id="o-" + customer[:2]),
        ev("payment.completed", customer, at, order_id="o-" + customer[:2], amount=45),
        ev("esim.status_changed", customer, at, order_id="o-" + customer[:2], status="FAILED",
           individual_id="ind-1"),
    ]


def _messages(s, **q):
    q.setdefault("limit", 1000)
    status, body = s.request("GET", "/v1/messages?" + "&".join("%s=%s" % kv for kv in q.items()))
    assert status == 200, body
    return body["messages"]


def _wait(pred, timeout=20):
    """Poll a condition read through the API (the outbox has nothing to wait on)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


CONN = re.compile(r"^(\[FOREWARN\] )?Connector (down|still down|recovered): ")


def _is_conn(m, what=""):
    """A connector alert (failures.c), by its subject; what narrows it: "down", "recovered"."""
    g = CONN.match(m.get("subject") or "")
    return bool(g) and (not what or g.group(2) == what)


def _settled(s, redriven=0):
    """Nothing due is waiting or in flight, and every outcome is back as an event (a dead
    letter re-driven has two: its failure, then its delivery)."""
    ms = _messages(s)
    if any(m["status"] in ("scheduled", "sending", "retrying") for m in ms):
        return False
    with_subject = sum(1 for m in ms if m["customer"] and m["status"] in ("sent", "dead"))
    st, text, _ = s.request("GET", "/metrics", raw=True)
    got = int(re.search(r"^forewarn_delivery_outcomes_total (\d+)$", text, re.M).group(1))
    return got == with_subject + redriven


def test_slack_down_for_an_hour_one_alert_through_zendesk_no_storm():
    r = start_all()
    try:
        r.set_down("slack", True)  # answers 503
        d, cfg = _config(r)
        with Server("--config", cfg, workdir=d) as s:
            for i, c in enumerate(("ann@example.com", "bob@example.com")):
                assert s.post_decided(_critical(c, "2026-03-02T10:0%d:00Z" % i))[0] == 200
            assert _wait(lambda: _settled(s)), _messages(s)
            ms = _messages(s)
            slack = [m for m in ms if m["channel"] == "slack"]
            assert len(slack) >= 2 and all(m["status"] == "dead" for m in slack), slack
            conn = [m for m in ms if _is_conn(m)]
            assert len(conn) == 1 and conn[0]["channel"] == "ticket", conn
            # An hour of virtual time, with one more customer's Slack alert dying on the way.
            for k in range(1, 7):
                assert s.clock("2026-03-02T1%d:%d0:00Z" % (0 if k < 6 else 1, k % 6))[0] == 200
                if k == 3:
                    assert s.post_decided(_critical("cat@example.com", "2026-03-02T10:31:00Z"))[0] == 200
                assert _wait(lambda: _settled(s)), _messages(s)
            ms = _messages(s)
            slack = [m for m in ms if m["channel"] == "slack"]
            # Three customers' L2 alerts, their SLA breach notices and the incident: all dead,
            # two attempts each, and not one of them an alert about failures (no growth).
            assert len(slack) >= 3 + 1 and all(m["status"] == "dead" for m in slack), slack
            assert not any(_is_conn(m) for m in slack), slack
            assert len(r.attempts("slack")) == 2 * len(slack), r.summary()
            conn = [m for m in ms if _is_conn(m)]
            assert len(conn) == 1, conn
            tickets = [t["json"]["ticket"]["subject"] for t in r.received("zendesk")]
            assert tickets.count("[FOREWARN] Connector down: slack") == 1, tickets
            body = [t for t in r.received("zendesk")
                    if t["json"]["ticket"]["subject"].startswith("[FOREWARN]")][0]["json"]["ticket"]
            # The first message to die names the alert: Ann's or Bob's, whichever Slack refused
            # last (the two retry on their own backoff, so either can be first).
            assert "HTTP 503" in body["comment"]["body"], body
            assert "ann@example.com" in body["comment"]["body"] or "bob@example.com" in body["comment"]["body"], body
            assert "requester" not in body, body  # about forewarn, not addressed to a customer
            # Slack comes back and delivers; the outage ends with one note, and the dead letters
            # that expired while it was down are re-driven and delivered, once each.
            dead_before = {m["id"]: m for m in ms if m["channel"] == "slack" and m["customer"]}
            r.set_down("slack", False)
            assert s.post_decided(_critical("dan@example.com", "2026-03-02T11:05:00Z"))[0] == 200
            assert _wait(lambda: _settled(s, redriven=len(dead_before)) and
                         any(_is_conn(m, "recovered") for m in _messages(s))), _messages(s)
            assert any("Connector recovered: slack" in json.dumps(x["json"]) for x in r.received("slack")), \
                r.summary()
            now = {m["id"]: m for m in _messages(s)}
            assert all(now[i]["status"] == "sent" for i in dead_before), [now[i] for i in dead_before]
            assert r.duplicates("slack") == 0, r.summary()
            # Down again: the next failure is a new outage with a new alert.
            r.set_down("slack", True)
            assert s.post_decided(_critical("eve@example.com", "2026-03-02T11:10:00Z"))[0] == 200
            assert _wait(lambda: _settled(s, redriven=len(dead_before))), _messages(s)
            downs = [m for m in _messages(s) if _is_conn(m, "down")]
            assert len(downs) == 2 and all(m["channel"] == "ticket" for m in downs), downs
            assert not any(_is_conn(m) and m["channel"] == "slack" and m["status"] == "dead"
                           for m in _messages(s))
    finally:
        r.stop()


def _metric(text, name, **labels):
    """The value of one series, or None when absent."""
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^(\w+)\{([^}]*)\} (\d+)$", line)
        if m and m.group(1) == name and ",".join(sorted(m.group(2).split(","))) == want:
            return int(m.group(3))
    return None


def _series(text, name):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)\{([^}]*)\} (\d+)$", line)
        if m and m.group(1) == name:
            out[tuple(sorted(m.group(2).split(",")))] = int(m.group(3))
    return out


def test_metrics_count_decisions_and_delivery_outcomes_exactly():
    r = start_all()
    try:
        r.set_down("zendesk", True)  # the L1 ticket dies after two attempts
        d, cfg = _config(r, only=("email", "slack", "zendesk"))
        with Server("--config", cfg, workdir=d) as s:
            text = s.request("GET", "/metrics", raw=True)[1]
            for name, typ in (("forewarn_messages_decided_total", "counter"),
                              ("forewarn_messages_sent_total", "counter"),
                              ("forewarn_message_attempts_failed_total", "counter"),
                              ("forewarn_messages_dead_total", "counter"),
                              ("forewarn_connector_down", "gauge")):
                assert "# HELP %s " % name in text and "# TYPE %s %s\n" % (name, typ) in text, text
            assert _metric(text, "forewarn_connector_down", connector="zendesk", channel="ticket") == 0
            assert s.post_decided(_critical("jodi@example.com", "2026-03-02T10:00:00Z"))[0] == 200
            assert _wait(lambda: _settled(s) and any(_is_conn(m) for m in _messages(s))), _messages(s)
            assert _wait(lambda: _settled(s)), _messages(s)
            ms = _messages(s)
            text = s.request("GET", "/metrics", raw=True)[1]
            # What the receivers got, and what the figures say, exactly.
            assert len(r.received("smtp")) == 1 and len(r.attempts("zendesk")) == 2, r.summary()
            assert _metric(text, "forewarn_messages_sent_total", audience="customer", channel="email") == 1
            assert _metric(text, "forewarn_messages_dead_total", audience="l1", channel="ticket") == 1
            assert _metric(text, "forewarn_message_attempts_failed_total", audience="l1", channel="ticket") == 2
            assert _metric(text, "forewarn_messages_decided_total", audience="customer", channel="push",
                           status="stored") == 1, text  # no push service configured
            assert _metric(text, "forewarn_messages_decided_total", audience="customer", channel="sms",
                           status="suppressed") == 1, text  # no phone number
            assert _metric(text, "forewarn_messages_decided_total", audience="l1", channel="ticket",
                           status="scheduled") == 1, text
            # The connector alert about Zendesk went through Slack, and was delivered.
            assert _metric(text, "forewarn_messages_sent_total", audience="l2", channel="slack") == \
                len([m for m in ms if m["audience"] == "l2" and m["channel"] == "slack"]) >= 2, text
            assert _metric(text, "forewarn_connector_down", connector="zendesk", channel="ticket") == 1
            assert _metric(text, "forewarn_connector_down", connector="zendesk", channel="internal_note") == 1
            assert _metric(text, "forewarn_connector_down", connector="slack", channel="slack") == 0
            # Every figure against the outbox: decided by status at decision, outcomes by row.
            decided, sent, dead = {}, {}, {}
            for m in ms:
                at_decision = "scheduled" if m["status"] in ("sent", "dead", "scheduled", "sending",
                                                             "retrying") else m["status"]
                k = ('audience="%s"' % m["audience"], 'channel="%s"' % m["channel"])
                dk = tuple(sorted(k + ('status="%s"' % at_decision,)))
                decided[dk] = decided.get(dk, 0) + 1
                if m["status"] == "sent":
                    sent[k] = sent.get(k, 0) + 1
                if m["status"] == "dead":
                    dead[k] = dead.get(k, 0) + 1
            assert _series(text, "forewarn_messages_decided_total") == decided, (text, decided)
            assert _series(text, "forewarn_messages_sent_total") == sent, (text, sent)
            assert _series(text, "forewarn_messages_dead_total") == dead, (text, dead)
            # Zendesk back: its next delivery turns the gauge off.
            r.set_down("zendesk", False)
            assert s.post_decided(_critical("kim@example.com", "2026-03-02T10:05:00Z"))[0] == 200
            assert _wait(lambda: _metric(s.request("GET", "/metrics", raw=True)[1], "forewarn_connector_down",
                                         connector="zendesk", channel="ticket") == 0)
    finally:
        r.stop()
