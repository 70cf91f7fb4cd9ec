"""`forewarn replay` end to end: events in, NDJSON detections and incidents out.

Each signal SIG-001 ... SIG-010 is checked through the real CLI and its JSON
output with events only: it fires at the exact threshold instant with the
pack's severity, stays silent on the near miss one minute earlier, and
resolves when its condition ends.  These mirror a subset of
rules/telecom.test.yaml, but through the replay contract other programs
rely on (output format, --until, exit status, error reporting).
"""

import datetime as _dt
import json
import random
import re

import os
import tempfile

from fw import BIN, T, detections, ev, incidents, ndjson, replay, replay_raw, run, transitions, until

SEVERITY = {
    "SIG-001": "HIGH", "SIG-002": "CRITICAL", "SIG-003": "MEDIUM", "SIG-004": "HIGH",
    "SIG-005": "MEDIUM", "SIG-006": "MEDIUM", "SIG-007": "HIGH", "SIG-008": "HIGH",
    "SIG-009": "MEDIUM", "SIG-010": "HIGH",
}


def _fires_once(lines, signal, customer, at):
    """Exactly one transition of signal for customer, a firing at `at`, with the right record."""
    got = detections(lines, signal, customer)
    assert [(d["state"], d["at"]) for d in got] == [("firing", T(at))], \
        "%s for %s: expected one firing at %s, got %s" % (signal, customer, T(at), got)
    d = got[0]
    assert d["severity"] == SEVERITY[signal], "%s severity %s" % (signal, d["severity"])
    assert d["fired_at"] == d["at"], d
    assert d["kind"] == "detection" and d["name"], d
    return d


def _silent(lines, signal):
    got = detections(lines, signal)
    assert got == [], "%s should not fire, got %s" % (signal, got)


def _fires_then_resolves(lines, signal, customer, fired, resolved):
    got = [(d["state"], d["at"], d["fired_at"]) for d in detections(lines, signal, customer)]
    want = [("firing", T(fired), T(fired)), ("resolved", T(resolved), T(fired))]
    assert got == want, "%s for %s: expected %s, got %s" % (signal, customer, want, got)


# ---- SIG-001: eSIM PENDING more than 48h after payment ----

def _sig001_events():
    return [
        ev("customer.updated", "c1", "0", name="Ana", email="ana@example.com", carrier="Verizon"),
        ev("payment.completed", "c1", "0", order_id="o1", amount=45),
        ev("esim.status_changed", "c1", "10m", order_id="o1", status="PENDING", individual_id="i1"),
    ]


def test_sig001_fires_exactly_48h_after_payment():
    lines = replay(_sig001_events(), *until("48h1m"))
    _fires_once(lines, "SIG-001", "c1", "48h")


def test_sig001_near_miss_47h59m():
    lines = replay(_sig001_events(), *until("47h59m"))
    _silent(lines, "SIG-001")


def test_sig001_resolves_when_installed():
    evs = _sig001_events() + [
        ev("esim.status_changed", "c1", "50h", order_id="o1", status="INSTALLED", individual_id="i1")]
    lines = replay(evs, *until("4d"))
    _fires_then_resolves(lines, "SIG-001", "c1", "48h", "50h")


def test_sig001_resolves_on_activation_completed():
    evs = _sig001_events() + [ev("activation.completed", "c1", "53h", order_id="o1")]
    lines = replay(evs, *until("4d"))
    _fires_then_resolves(lines, "SIG-001", "c1", "48h", "53h")


# ---- SIG-002: eSIM FAILED or ERROR ----

def test_sig002_fires_at_the_failure_and_resolves_on_sim_swap():
    evs = [
        ev("esim.status_changed", "c1", "1h", order_id="o1", status="PENDING", individual_id="i1"),
        ev("esim.status_changed", "c1", "3h17m", order_id="o1", status="FAILED", individual_id="i1"),
        ev("esim.status_changed", "c1", "4h", order_id="o1", status="ERROR", individual_id="i1"),
        ev("esim.status_changed", "c1", "6h", order_id="o1", status="INSTALLED", individual_id="i2"),
    ]
    lines = replay(evs)
    _fires_then_resolves(lines, "SIG-002", "c1", "3h17m", "6h")
    assert detections(lines, "SIG-002")[0]["severity"] == "CRITICAL"


def test_sig002_near_miss_other_statuses():
    evs = [ev("esim.status_changed", "c1", "1h", order_id="o1", status=s, individual_id="i1")
           for s in ("PENDING", "ERRORED", "FAILED_RETRY", "INSTALLED")]
    for i, e in enumerate(evs):
        e["time"] = T("%dh" % (i + 1))
    _silent(replay(evs, *until("2d")), "SIG-002")


# ---- SIG-003: order unpaid 2h after creation ----

def test_sig003_fires_2h_after_unpaid_order():
    evs = [ev("order.created", "c1", "0", order_id="o1"),
           ev("payment.failed", "c1", "5m", order_id="o1", reason="card_declined")]
    _fires_once(replay(evs, *until("2h1m")), "SIG-003", "c1", "2h")
    _silent(replay(evs, *until("1h59m")), "SIG-003")


def test_sig003_near_miss_paid_at_1h59m():
    evs = [ev("order.created", "c1", "0", order_id="o1"),
           ev("payment.completed", "c1", "1h59m", order_id="o1", amount=45)]
    _silent(replay(evs, *until("1d")), "SIG-003")


def test_sig003_resolves_when_paid():
    evs = [ev("order.created", "c1", "0", order_id="o1"),
           ev("payment.completed", "c1", "3h", order_id="o1", amount=45)]
    _fires_then_resolves(replay(evs, *until("1d")), "SIG-003", "c1", "2h", "3h")


# ---- SIG-004: port-in rejected ----

def test_sig004_fires_on_rejection_and_resolves_on_completion():
    evs = [
        ev("portin.status_changed", "c1", "0", status="SUBMITTED", response="Accepted", carrier="AT&T"),
        ev("portin.status_changed", "c1", "5h", status="ERROR",
           response="Port request FAILED: account number mismatch", carrier="AT&T"),
        ev("portin.status_changed", "c1", "9h", status="COMPLETED", response="Port complete", carrier="AT&T"),
    ]
    lines = replay(evs)
    _fires_then_resolves(lines, "SIG-004", "c1", "5h", "9h")
    assert detections(lines, "SIG-004")[0]["severity"] == "HIGH"


def test_sig004_near_miss_accepted_response():
    evs = [ev("portin.status_changed", "c1", "0", status="SUBMITTED",
              response="Accepted for processing", carrier="AT&T")]
    _silent(replay(evs, *until("1h")), "SIG-004")


# ---- SIG-005: port-in SUBMITTED more than 72h ----

def test_sig005_fires_at_72h_not_at_71h59m():
    evs = [ev("portin.status_changed", "c1", "0", status="SUBMITTED", carrier="Verizon")]
    _silent(replay(evs, *until("71h59m")), "SIG-005")
    _fires_once(replay(evs, *until("72h1m")), "SIG-005", "c1", "72h")


def test_sig005_resolves_when_port_completes():
    evs = [ev("portin.status_changed", "c1", "0", status="SUBMITTED", carrier="Verizon"),
           ev("portin.status_changed", "c1", "80h", status="COMPLETED", response="done", carrier="Verizon")]
    _fires_then_resolves(replay(evs, *until("5d")), "SIG-005", "c1", "72h", "80h")


# ---- SIG-006: order not COMPLETED 24h after creation ----

def test_sig006_fires_at_24h_not_at_23h59m():
    evs = [ev("order.created", "c1", "0", order_id="o1"),
           ev("order.status_changed", "c1", "1h", order_id="o1", status="PROCESSING")]
    _silent(replay(evs, *until("23h59m")), "SIG-006")
    _fires_once(replay(evs, *until("24h1m")), "SIG-006", "c1", "24h")


def test_sig006_near_miss_completed_at_23h59m():
    evs = [ev("order.created", "c1", "0", order_id="o1"),
           ev("order.status_changed", "c1", "23h59m", order_id="o1", status="COMPLETED")]
    _silent(replay(evs, *until("3d")), "SIG-006")


def test_sig006_resolves_when_completed():
    evs = [ev("order.created", "c1", "0", order_id="o1"),
           ev("order.status_changed", "c1", "30h", order_id="o1", status="COMPLETED")]
    _fires_then_resolves(replay(evs, *until("3d")), "SIG-006", "c1", "24h", "30h")


# ---- SIG-007: Mochi escalation without a ticket within 2h ----

def test_sig007_fires_2h_after_escalation():
    evs = [ev("chat.escalated", "c1", "0", conversation_id="m1", topic="esim", summary="QR fails")]
    _silent(replay(evs, *until("1h59m")), "SIG-007")
    _fires_once(replay(evs, *until("2h1m")), "SIG-007", "c1", "2h")


def test_sig007_near_miss_ticket_at_1h59m():
    evs = [ev("chat.escalated", "c1", "0", conversation_id="m1", topic="esim", summary="QR fails"),
           ev("ticket.created", "c1", "1h59m", ticket_id="z1", subject="QR fails")]
    _silent(replay(evs, *until("1d")), "SIG-007")


def test_sig007_resolves_when_ticket_created():
    evs = [ev("chat.escalated", "c1", "0", conversation_id="m1", topic="esim", summary="QR fails"),
           ev("ticket.created", "c1", "3h", ticket_id="z1", subject="QR fails")]
    _fires_then_resolves(replay(evs, *until("1d")), "SIG-007", "c1", "2h", "3h")


# ---- SIG-008: 3+ contacts within 7 days ----

def test_sig008_third_contact_fires_and_resolves_when_first_leaves_window():
    evs = [ev("chat.started", "c1", "0", conversation_id="m1", topic="esim"),
           ev("ticket.created", "c1", "1d", ticket_id="z1", subject="eSIM"),
           ev("chat.started", "c1", "2d", conversation_id="m2", topic="esim")]
    lines = replay(evs, *until("10d"))
    _fires_then_resolves(lines, "SIG-008", "c1", "2d", "7d")
    assert detections(lines, "SIG-008")[0]["severity"] == "HIGH"


def test_sig008_near_miss_third_contact_at_7d():
    evs = [ev("chat.started", "c1", "0", conversation_id="m1", topic="esim"),
           ev("ticket.created", "c1", "3d", ticket_id="z1", subject="eSIM"),
           ev("chat.started", "c1", "7d", conversation_id="m2", topic="esim")]
    _silent(replay(evs, *until("20d")), "SIG-008")


# ---- SIG-009: paid 7+ days ago, never activated, no contact in 7 days ----

def test_sig009_fires_at_7d_not_at_6d23h59m():
    evs = [ev("payment.completed", "c1", "0", order_id="o1", amount=45)]
    _silent(replay(evs, *until("6d23h59m")), "SIG-009")
    _fires_once(replay(evs, *until("7d1m")), "SIG-009", "c1", "7d")


def test_sig009_resolves_on_contact():
    evs = [ev("payment.completed", "c1", "0", order_id="o1", amount=45),
           ev("chat.started", "c1", "8d", conversation_id="m1", topic="install help")]
    _fires_then_resolves(replay(evs, *until("9d")), "SIG-009", "c1", "7d", "8d")


def test_sig009_near_miss_activated():
    evs = [ev("payment.completed", "c1", "0", order_id="o1", amount=45),
           ev("activation.completed", "c1", "6d", order_id="o1")]
    _silent(replay(evs, *until("30d")), "SIG-009")


# ---- SIG-010: outage in the customer's ZIP, open ticket or recent chat ----

def _outage(at, *zips):
    return ev("outage.started", None, at, outage_id="out1", zips=list(zips), impact="no service", eta="unknown")


def test_sig010_fires_on_outage_and_resolves_on_outage_resolved():
    evs = [
        ev("customer.updated", "c1", "0", zip="10001"),
        ev("ticket.created", "c1", "1h", ticket_id="z1", subject="No signal"),
        ev("customer.updated", "c2", "0", zip="10002"),
        ev("chat.started", "c2", "1h", conversation_id="m1", topic="no signal"),
        _outage("2h", "10001", "10002"),
        ev("outage.resolved", None, "8h", outage_id="out1"),
    ]
    lines = replay(evs)
    _fires_then_resolves(lines, "SIG-010", "c1", "2h", "8h")
    _fires_then_resolves(lines, "SIG-010", "c2", "2h", "8h")
    assert detections(lines, "SIG-010")[0]["severity"] == "HIGH"


def test_sig010_near_miss_other_zip_and_stale_chat():
    evs = [
        ev("customer.updated", "c1", "0", zip="10003"),           # open ticket, wrong ZIP
        ev("ticket.created", "c1", "0", ticket_id="z1", subject="No signal"),
        ev("customer.updated", "c2", "0", zip="10001"),           # right ZIP, chat exactly 24h old
        ev("chat.started", "c2", "0", conversation_id="m1", topic="no signal"),
        _outage("24h", "10001", "10002"),
    ]
    _silent(replay(evs, *until("3d")), "SIG-010")


def test_sig010_resolves_when_chat_stops_being_recent():
    evs = [ev("customer.updated", "c1", "0", zip="10001"),
           ev("chat.started", "c1", "0", conversation_id="m1", topic="no signal"),
           _outage("23h59m", "10001")]
    _fires_then_resolves(replay(evs, *until("2d")), "SIG-010", "c1", "23h59m", "24h")


# ---- the seed's two examples ----

def test_seed_example_1_jodi_esim_failed_is_sig002_critical():
    who = "jodi@example.com"
    evs = [ev("customer.updated", who, "0", name="Jodi", email=who, zip="10001", carrier="Verizon")]
    evs += [ev("order.created", who, "0", order_id="o-jodi"),
            ev("payment.completed", who, "5m", order_id="o-jodi", amount=45),
            ev("order.status_changed", who, "10m", order_id="o-jodi", status="COMPLETED"),
            ev("esim.status_changed", who, "15m", order_id="o-jodi", status="PENDING", individual_id="ind-1")]
    # "5 Mochi chats" before the failure, one a day.
    evs += [ev("chat.started", who, "%dh" % (10 + 14 * k), conversation_id="m%d" % k, topic="esim")
            for k in range(5)]
    failed = ev("esim.status_changed", who, "3d5m", order_id="o-jodi", status="FAILED", individual_id="ind-1")
    lines = replay(evs + [failed])
    d = _fires_once(lines, "SIG-002", who, "3d5m")
    assert d["at"] == failed["time"] and d["severity"] == "CRITICAL", d
    assert d["team"] == "esim" and d["root_cause"] == "esim_provisioning", d


def _twelve_pending():
    """Seed example 2: 12 customers PENDING past 48h, payments 20 minutes apart, mostly on Verizon."""
    carriers = ["Verizon"] * 9 + ["T-Mobile", "Verizon", "AT&T"]
    plans = ["Unlimited", "Basic", "Plus"]
    evs, due = [], {}
    for i in range(12):
        c = "stuck%02d@example.com" % (i + 1)
        evs.append(ev("customer.updated", c, "0", name="Stuck %d" % i, zip="%05d" % (10001 + i),
                      plan=plans[i % 3], tier="standard", carrier=carriers[i]))
        paid = "%dm" % (20 * i) if i else "0"
        evs.append(ev("payment.completed", c, paid, order_id="o-%d" % i, amount=45))
        evs.append(ev("esim.status_changed", c, "%dm" % (20 * i + 5), order_id="o-%d" % i,
                      status="PENDING", individual_id="ind-%d" % i))
        due[c] = T("48h%dm" % (20 * i) if i else "48h")
    # Customers who are fine, mostly on other carriers: their eSIMs install in time.
    for j, carrier in enumerate(["AT&T", "T-Mobile", "AT&T", "Mint Mobile", "T-Mobile", "Verizon"]):
        c = "fine%02d@example.com" % (j + 1)
        evs.append(ev("customer.updated", c, "0", name="Fine %d" % j, zip="%05d" % (20001 + j),
                      plan=plans[j % 3], tier="standard", carrier=carrier))
        evs.append(ev("payment.completed", c, "%dm" % (15 + 30 * j), order_id="f-%d" % j, amount=45))
        evs.append(ev("esim.status_changed", c, "%dm" % (20 + 30 * j), order_id="f-%d" % j,
                      status="PENDING", individual_id="find-%d" % j))
        evs.append(ev("esim.status_changed", c, "%dh" % (10 + j), order_id="f-%d" % j,
                      status="INSTALLED", individual_id="find-%d" % j))
    return evs, due


def test_seed_example_2_twelve_stuck_esims_one_incident():
    evs, due = _twelve_pending()
    random.Random(7).shuffle(evs)  # producers do not send in order; replay sorts by time
    lines = replay(evs, *until("52h"))
    fired = detections(lines, "SIG-001", state="firing")
    assert sorted((d["customer"], d["at"]) for d in fired) == sorted(due.items()), \
        "expected one SIG-001 per stuck customer at payment+48h, got %s" % fired
    assert all(d["severity"] == "HIGH" for d in fired)
    assert not [d for d in detections(lines) if not d["customer"].startswith("stuck")], \
        "customers whose eSIM installed must not be detected"
    incs = incidents(lines)
    ids = {i["id"] for i in incs}
    assert len(ids) == 1, "expected exactly one incident id, got %s in %s" % (ids, incs)
    opened = [i for i in incs if i["update"] == "opened"]
    assert len(opened) == 1, incs
    third = sorted(due.values())[2]
    assert opened[0]["at"] == third and opened[0]["signal"] == "SIG-001", opened[0]
    assert opened[0]["customers"] == ["stuck01@example.com", "stuck02@example.com", "stuck03@example.com"]
    added = [i for i in incs if i["update"] == "customer_added"]
    assert len(added) == 9, "each of the other 9 customers joins the open incident: %s" % added
    assert [i["customers"] for i in added] == [["stuck%02d@example.com" % k] for k in range(4, 13)], added
    last = incs[-1]
    assert last["customer_count"] == 12 and last["state"] == "open", last
    for i in incs:
        cf = i["common_factor"]
        assert cf and cf["key"] == "customer.carrier" and cf["value"] == "Verizon", i
    # The incident is reported as it happens: each update after the firing that caused it.
    pos = {id(x): k for k, x in enumerate(lines)}
    for i in added:
        cause = [d for d in fired if d["customer"] == i["customers"][-1]][0]
        assert pos[id(cause)] < pos[id(i)] and cause["at"] == i["at"], (cause, i)


def test_seed_example_2_incident_resolves_when_every_customer_recovers():
    evs, due = _twelve_pending()
    stuck = sorted(due)
    # Engineering fixes the pipeline: the eSIMs install one per hour from 60h on.
    for k, c in enumerate(stuck):
        evs.append(ev("esim.status_changed", c, "%dh" % (60 + k), order_id="x", status="INSTALLED",
                      individual_id="x"))
    lines = replay(evs, *until("4d"))
    resolved = detections(lines, "SIG-001", state="resolved")
    assert sorted(d["customer"] for d in resolved) == stuck, resolved
    updates = [(i["id"], i["update"]) for i in incidents(lines)]
    assert updates[0] == (1, "opened") and updates[-1] == (1, "resolved"), updates
    assert [u for _, u in updates].count("resolved") == 1, updates
    last = incidents(lines)[-1]
    assert last["state"] == "resolved" and last["at"] == T("%dh" % (60 + len(stuck) - 1)), last


# ---- determinism and --until ----

def _mixed_stream(n, seed):
    """n events of every telecom type over 150 customers and ~10 days, each at a distinct ms."""
    rnd = random.Random(seed)
    custs = ["cust%03d@example.com" % k for k in range(150)]
    evs = []
    t_ms = set()
    for k in range(n):
        while True:
            ms = rnd.randrange(0, 10 * 86400 * 1000)
            if ms not in t_ms:
                t_ms.add(ms)
                break
        at = "%dms" % ms if ms else "0"
        c = rnd.choice(custs)
        o = "o-%s" % c[4:7]
        kind = rnd.randrange(16)
        if kind == 0:
            e = ev("customer.updated", c, at, zip=rnd.choice(["10001", "10002", "94105"]),
                   carrier=rnd.choice(["Verizon", "AT&T", "T-Mobile"]), plan=rnd.choice(["Basic", "Plus"]))
        elif kind == 1:
            e = ev("order.created", c, at, order_id=o)
        elif kind == 2:
            e = ev("order.status_changed", c, at, order_id=o, status=rnd.choice(["PROCESSING", "COMPLETED"]))
        elif kind in (3, 4):
            e = ev("payment.completed", c, at, order_id=o, amount=45)
        elif kind == 5:
            e = ev("payment.failed", c, at, order_id=o, reason="card_declined")
        elif kind in (6, 7):
            e = ev("esim.status_changed", c, at, order_id=o, individual_id="i",
                   status=rnd.choice(["PENDING", "PENDING", "FAILED", "INSTALLED", "ERROR"]))
        elif kind == 8:
            e = ev("activation.completed", c, at, order_id=o)
        elif kind == 9:
            e = ev("portin.status_changed", c, at, carrier="AT&T",
                   status=rnd.choice(["SUBMITTED", "REJECTED", "COMPLETED"]), response=rnd.choice(["", "FAILED"]))
        elif kind in (10, 11):
            e = ev("chat.started", c, at, conversation_id="m%d" % k, topic="esim")
        elif kind == 12:
            e = ev("chat.escalated", c, at, conversation_id="m%d" % k, topic="esim", summary="help")
        elif kind == 13:
            e = ev("ticket.created", c, at, ticket_id="z%d" % (k % 40), subject="help")
        elif kind == 14:
            e = ev("ticket.resolved", c, at, ticket_id="z%d" % (k % 40), severity="low", resolution="ok")
        else:
            if rnd.random() < 0.5:
                e = ev("outage.started", None, at, outage_id="out%d" % k, zips=["10001", "10002"],
                       impact="no service", eta="unknown")
            else:
                e = ev("outage.resolved", None, at, outage_id="out%d" % k)
        evs.append(e)
    return evs


def test_replay_is_deterministic_byte_for_byte():
    evs = _mixed_stream(2000, seed=2026)
    body = ndjson(evs)
    rc1, out1, err1 = replay_raw(body, *until("12d"))
    rc2, out2, err2 = replay_raw(body, *until("12d"))
    assert rc1 == 0 and rc2 == 0, err1 + err2
    assert out1 == out2, "two replays of the same input differ"
    assert err1 == err2, "the summary line differs between runs:\n%s\n%s" % (err1, err2)
    lines = [json.loads(l) for l in out1.splitlines()]
    fired = {d["signal"] for d in detections(lines, state="firing")}
    assert len(fired) >= 8, "the stream should exercise most signals, fired only %s" % sorted(fired)
    assert detections(lines, state="resolved"), "the stream should resolve some detections"
    assert re.search(r"replay: 2000 events, 0 duplicate\(s\), 0 invalid", err1), err1
    # Output is in time order.
    ats = [l["at"] for l in lines]
    assert ats == sorted(ats), "output is not in time order"
    # Input order does not matter when times are distinct: replay sorts by time.
    shuffled = list(evs)
    random.Random(1).shuffle(shuffled)
    rc3, out3, err3 = replay_raw(ndjson(shuffled), *until("12d"))
    assert rc3 == 0 and out3 == out1, "a shuffled copy of the same events gives different output"


def test_file_and_stdin_in_or_out_of_order_give_the_same_output():
    # In-order input is applied as it is read; input that goes back in time is
    # sorted and parsed again.  A file is mapped, stdin is read: all four agree,
    # and a bad line on either side of the first step back is reported once.
    evs = _mixed_stream(600, seed=11)
    in_order = ndjson(evs)
    shuffled = list(evs)
    random.Random(3).shuffle(shuffled)
    out_of_order = ndjson(shuffled)
    rc, want, err = replay_raw(in_order, *until("12d"))
    assert rc == 0 and want.count("\n") > 20, err
    with tempfile.TemporaryDirectory() as d:
        for name, body in (("sorted", in_order), ("shuffled", out_of_order)):
            path = os.path.join(d, name + ".ndjson")
            with open(path, "w") as f:
                f.write(body)
            for args in ([path], []):
                rc, out, err = run(["replay"] + list(until("12d")) + args,
                                   input=None if args else body)
                assert rc == 0 and out == want, "%s via %s differs" % (name, args or "stdin")
        lines = out_of_order.splitlines(True)
        bad = "".join(["{not json\n"] + lines[:300] + ['{"specversion":"1.0"}\n'] + lines[300:])
        path = os.path.join(d, "bad.ndjson")
        with open(path, "w") as f:
            f.write(bad)
        rc, out, err = run(["replay"] + list(until("12d")) + [path])
        assert rc != 0 and out == "", "an invalid input must print nothing"
        assert err.count("line 1: malformed JSON") == 1, err
        assert err.count("line 302: id: required attribute is missing") == 1, err
        assert "2 invalid line(s); nothing replayed" in err, err
        rc, out, err = run(["replay", "--skip-invalid"] + list(until("12d")) + [path])
        assert rc == 0 and out == want, "--skip-invalid should replay the valid lines in time order"
        assert err.count("line 1: malformed JSON") == 1 and err.count("line 302:") == 1, err


def test_reader_thread_output_equals_serial():
    # With more than one CPU a reader thread parses blocks of 256 lines while
    # the engine applies the block before (four blocks in flight).  On 5,000
    # events the ring wraps many times; with invalid lines, a step back in
    # time after the wrap (the input is then sorted and parsed again) and the
    # whole pipeline on (--messages --cases), stdout and stderr are
    # byte-identical to --serial.
    assert len(os.sched_getaffinity(0)) > 1, "one CPU allowed: replay would not start its thread"
    evs = sorted(_mixed_stream(5000, seed=7), key=lambda e: e["time"])  # one format: text order is time order
    lines = ndjson(evs).splitlines(True)
    stepped = lines[:4000] + [lines[10]] + lines[4000:]  # an earlier event, repeated id
    back = json.loads(lines[20])
    back["id"] = "back-in-time"
    stepped.insert(4500, json.dumps(back) + "\n")
    bodies = {
        "in order": "".join(lines),
        "invalid lines": "".join(lines[:1500] + ["{not json\n"] + lines[1500:3000] +
                                 ['{"specversion":"1.0"}\n'] + lines[3000:]),
        "back in time": "".join(stepped),
    }
    for name, body in bodies.items():
        for flags in ([], ["--skip-invalid"], ["--messages", "--cases"]):
            args = ["replay"] + flags + list(until("12d"))
            threaded = run(args, input=body)
            serial = run(args[:1] + ["--serial"] + args[1:], input=body)
            assert threaded == serial, "%s %s: the reader thread changed the output" % (name, flags)
            rc, out, err = threaded
            if name == "invalid lines" and "--skip-invalid" not in flags:
                assert rc != 0 and out == "" and "2 invalid line(s)" in err, err
            else:
                assert rc == 0 and out.count("\n") > 100, (name, flags, err)


def _partition(subject, n):
    """replay --partitions' assignment: fw_hash (FNV-1a as util.c has it) of the subject, mod n."""
    h = 1469598103934665603
    for b in subject.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % n


def test_partitions_output_equals_one_engine():
    # --partitions N runs N engines on threads of their own, customers split
    # by a hash of their key; a merger puts their detections back into one
    # engine's order and keeps the incidents (which span partitions).  On the
    # same inputs as the reader-thread test (global events, incidents,
    # invalid lines, a step back in time: that input is replayed sorted on
    # one engine) stdout and stderr are byte-identical to one engine.
    evs = sorted(_mixed_stream(5000, seed=7), key=lambda e: e["time"])
    lines = ndjson(evs).splitlines(True)
    assert any(json.loads(x)["type"].startswith("outage.") for x in lines), "no global event"
    back = json.loads(lines[20])
    back["id"] = "back-in-time"
    bodies = {
        "in order": "".join(lines),
        "invalid lines": "".join(lines[:1500] + ["{not json\n"] + lines[1500:]),
        # a repeated id, then an earlier event: replayed sorted, on one engine
        "back in time": "".join(lines[:4000] + [lines[3990]] + lines[4000:4500] +
                                [json.dumps(back) + "\n"] + lines[4500:]),
    }
    for name, body in bodies.items():
        for flags in ([], ["--skip-invalid"]):
            args = ["replay"] + flags + list(until("12d"))
            one = run(args, input=body)
            if name == "in order":
                assert one[0] == 0 and len(incidents([json.loads(x) for x in one[1].splitlines()])) > 3, one[2]
            for n in (2, 3):
                rc, out, err = run(args[:1] + ["--partitions", str(n)] + args[1:], input=body)
                # The partitions add one line: each thread's CPU time (when they ran).
                cpu = re.findall(r"replay: CPU time per thread: reader [\d.]+ s, partitions"
                                 r"( [\d.]+){%d} s, merger [\d.]+ s\n" % n, err)
                assert len(cpu) == (name != "back in time" and rc == 0), err
                err = re.sub(r"replay: CPU time per thread: .*\n", "", err)
                assert (rc, out, err) == one, "%s %s, %d partitions: output differs" % (name, flags, n)


def test_partitions_keep_the_order_of_wake_ups_due_together():
    # One engine fires wake-ups due at the same millisecond in the order their
    # timers were last armed.  Here each pair of customers pays at the same
    # instant (both wake up 48 h later, together), but the one seen second
    # re-arms first: one engine fires it first.  With the pair split across
    # partitions that order is neither first seen nor partition order; the
    # merger restores it by numbering the arms as it merges them.
    evs = []
    pairs = 0
    for k in range(40):
        a, b = "tieA%02d@example.com" % k, "tieB%02d@example.com" % k
        if _partition(a, 2) == _partition(b, 2):
            continue
        pairs += 1
        base = k * 3600 * 1000
        evs += [ev("payment.completed", a, "%dms" % base, order_id="oa%d" % k, amount=45),
                ev("payment.completed", b, "%dms" % base, order_id="ob%d" % k, amount=45),
                ev("esim.status_changed", b, "%dms" % (base + 1000), order_id="ob%d" % k,
                   status="PENDING", individual_id="i"),
                ev("esim.status_changed", a, "%dms" % (base + 2000), order_id="oa%d" % k,
                   status="PENDING", individual_id="i")]
    assert pairs >= 10, pairs
    body = ndjson(evs)
    args = ["replay"] + list(until("100h"))
    rc, out, err = one = run(args, input=body)
    got = [t for t in transitions([json.loads(x) for x in out.splitlines()], "SIG-001") if t[2] == "firing"]
    assert len(got) == 2 * pairs, (got, err)
    # Each pair fires together, the customer that re-armed first (b) first.
    for i in range(0, len(got), 2):
        assert got[i][3] == got[i + 1][3] and got[i][1].startswith("tieB"), got[i:i + 2]
    # ... and among them some put partition 1's customer first, some partition 0's.
    firsts = {_partition(got[i][1], 2) for i in range(0, len(got), 2)}
    assert firsts == {0, 1}, firsts
    for n in (2, 3):
        rc, out, err = run(args[:1] + ["--partitions", str(n)] + args[1:], input=body)
        assert (rc, out, re.sub(r"replay: CPU time per thread: .*\n", "", err)) == one, n


def _log_lines(err):
    """stderr with its log lines (a person's action refused, say) told apart from replay's own:
    those as a sorted list without their wall-clock stamps (partitions log from their own
    threads, each in its own order), the rest as it is."""
    logs, rest = [], []
    for line in err.splitlines(True):
        m = re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z (forewarn\[\w+\] .*)", line, re.S)
        (logs if m else rest).append(m.group(1) if m else line)
    return sorted(logs), "".join(rest)


def _same_on_partitions(args, body, parted=True):
    """Replay body on one engine and on 2 and 3 partitions: the same stdout, stderr and status.
    parted: the partitions ran (their CPU-time line), else the input fell back to one engine."""
    one = run(args, input=body)
    for n in (2, 3):
        rc, out, err = run(args[:1] + ["--partitions", str(n)] + args[1:], input=body)
        cpu = re.findall(r"replay: CPU time per thread: .*\n", err)
        assert len(cpu) == (1 if parted else 0), (n, err)
        err = re.sub(r"replay: CPU time per thread: .*\n", "", err)
        assert (rc, out) == one[:2], "%s, %d partitions: output differs" % (args, n)
        assert _log_lines(err) == _log_lines(one[2]), "%s, %d partitions: stderr differs" % (args, n)
    return one


def test_partitions_decide_messages_as_one_engine():
    # With --messages each partition decides for its own customers (an
    # orchestrator per partition); the merger keeps the incidents, sends
    # their engineering alerts from each member's view, and prints every
    # decision where one engine would have.  Holds, ladder steps and the
    # decisions after a global event are ordered with the wake-ups.
    evs = sorted(_mixed_stream(5000, seed=7), key=lambda e: e["time"])
    body = ndjson(evs)
    for extra in ([], list(until("12d"))):
        rc, out, err = _same_on_partitions(["replay", "--messages"] + extra, body)
        lines = [json.loads(x) for x in out.splitlines()]
        msgs = [x for x in lines if x["kind"] == "message"]
        assert rc == 0 and len(msgs) > 500, err
        alerts = [m for m in msgs if m["audience"] == "engineering" and m["explanation"].get("incident")]
        assert len(alerts) > 3, "no incident alert"
        # The alert names its members' orders, from views the partitions sent.
        assert any(re.search(r"o-\d\d\d", a["body"] or "") for a in alerts), alerts[0]["body"]
        outages = {e["time"] for e in evs if e["type"] == "outage.started"}
        assert any(T(m["at"]) in {T(t) for t in outages} for m in msgs) or extra, "nothing decided at an outage"


def test_partitions_order_holds_and_turns_as_one_engine():
    # Pairs of customers on different partitions fire at the same millisecond,
    # so their merge windows close together: one engine decides them in the
    # order their hold timers were last armed.  In half the pairs the first
    # customer's hold is re-armed by a later event, so the second is decided
    # first.  Then an outage opens for customers of both partitions at once:
    # their decisions after the global event come in first-seen order.
    evs, pairs = [], 0
    for k in range(30):
        a, b = "holdA%02d@example.com" % k, "holdB%02d@example.com" % k
        if _partition(a, 2) == _partition(b, 2):
            continue
        pairs += 1
        base = k * 3600 * 1000
        for c in (a, b):
            evs.append(ev("portin.status_changed", c, "%dms" % base, carrier="AT&T",
                          status="REJECTED", response="FAILED"))
        if k % 2:
            evs.append(ev("chat.started", a, "%dms" % (base + 2), conversation_id="m%d" % k, topic="esim"))
    assert pairs >= 8, pairs
    t0 = 40 * 3600 * 1000
    zips = []
    for k in range(12):
        c = "zone%02d@example.com" % k
        evs += [ev("customer.updated", c, "%dms" % (t0 + k), zip="10001", plan="Basic"),
                ev("ticket.created", c, "%dms" % (t0 + 100 + k), ticket_id="zt%d" % k, subject="no signal")]
        zips.append(_partition(c, 2))
    assert set(zips) == {0, 1}
    evs.append(ev("outage.started", None, "%dms" % (t0 + 1000), outage_id="o1", zips=["10001"],
                  impact="no service", eta="unknown"))
    # In time order (stable: ties keep their order); T() writes whole seconds without ".000".
    body = ndjson(sorted(evs, key=lambda e: e["time"] if "." in e["time"] else e["time"][:-1] + ".000Z"))
    rc, out, err = _same_on_partitions(["replay", "--messages"], body)
    msgs = [json.loads(x) for x in out.splitlines() if '"kind":"message"' in x]
    firsts = []
    for m in msgs:
        if m["customer"] and m["customer"].startswith("hold") and m["customer"] not in firsts:
            firsts.append(m["customer"])
    assert len(firsts) == 2 * pairs, firsts
    for i in range(0, len(firsts), 2):
        k = int(firsts[i][5:7])
        want = "holdB" if k % 2 else "holdA"  # re-armed later: decided second
        assert firsts[i].startswith(want) and firsts[i + 1][5:7] == firsts[i][5:7], firsts[i:i + 2]
    told = []
    for m in msgs:
        if m["customer"] and m["customer"].startswith("zone") and "SIG-011" in m["signals"] \
                and m["customer"] not in told:
            told.append(m["customer"])
    assert told == sorted(told) and len(told) == 12, told


def test_partitions_alert_incidents_from_members_latest_views():
    # The engineering alert when an incident opens says each member's order
    # and journey status as they are then.  v1 fired first and moved on
    # (its eSIM is now PENDING) on one partition; the incident opens when
    # v3 fires on another: the merger has v1's latest view, not the one it
    # had when it fired.  v3's rejection is the last event, on a partition
    # other than the first: its merge window is let close before the end.
    def pick(prefix, want2, not3):
        return next(c for c in ("%s%d@example.com" % (prefix, k) for k in range(200))
                    if _partition(c, 2) == want2 and _partition(c, 3) != not3)
    v1, v2, v3 = pick("view", 0, 3), pick("vtwo", 1, 3), pick("vthree", 1, 0)
    rej = dict(carrier="AT&T", status="REJECTED", response="FAILED")
    evs = [ev("order.created", v1, "0", order_id="ord-v1"),
           ev("portin.status_changed", v1, "1m", **rej),
           ev("esim.status_changed", v1, "2m", order_id="ord-v1", status="PENDING", individual_id="i"),
           ev("portin.status_changed", v2, "3m", **rej),
           ev("portin.status_changed", v3, "4m", **rej)]
    rc, out, err = _same_on_partitions(["replay", "--messages"], ndjson(evs))
    msgs = [json.loads(x) for x in out.splitlines() if '"kind":"message"' in x]
    alert = [m for m in msgs if m["audience"] == "engineering" and m["explanation"].get("incident")]
    assert len(alert) == 1, msgs
    row = [x for x in alert[0]["body"].splitlines() if v1 in x]
    assert row and "ord-v1" in row[0] and "PENDING" in row[0] and "REJECTED" not in row[0], alert[0]["body"]
    assert any(m["customer"] == v3 and m["audience"] == "customer" for m in msgs), "v3 never decided"


def test_partitions_leave_cross_customer_decisions_to_one_engine():
    # message.sent/failed (connector failure state) and known_issue.changed
    # (the registry) are decided across customers: such an input is replayed
    # on one engine, with the same output, and says so by having no per-thread line.
    evs = sorted(_mixed_stream(600, seed=11), key=lambda e: e["time"])
    evs.insert(300, ev("message.failed", "cust001@example.com", evs[300]["time"], message_id="m_1",
                       channel="slack", connector="slack", audience="l2", kind="alert",
                       attempts=2, error="HTTP 503"))
    _same_on_partitions(["replay", "--messages"], ndjson(evs), parted=False)
    # Detections alone do not decide anything: partitions still run.
    _same_on_partitions(["replay"], ndjson(evs), parted=True)


def test_partitions_end_an_input_with_no_events():
    # Nothing to replay, with and without --until: the partitions still meet
    # at the end (a partition without an engine once waited there forever).
    for body in ("", "\n\n"):
        for extra in ([], list(until("1h"))):
            for flags in ([], ["--messages"]):
                rc, out, err = _same_on_partitions(["replay"] + flags + extra, body)
                assert rc == 0 and out == "" and "0 events" in err, (flags, extra, err)


def _with_case_actions(evs, seed):
    """evs plus people working cases: assigned, responded, on hold and back, noted, resolved,
    each for a customer a little after one of its events (most have an open case by then)."""
    rnd = random.Random(seed)
    taken = {e["time"] for e in evs}
    out = list(evs)
    custs = sorted({e["subject"] for e in evs if e.get("subject")})
    for k, c in enumerate(rnd.sample(custs, 60)):
        mine = [e for e in evs if e.get("subject") == c]
        base = _dt.datetime.fromisoformat(mine[len(mine) // 2]["time"].replace("Z", "+00:00"))
        acts = [("case.assigned", {"agent": "ana", "by": "lead"}),
                ("case.responded", {"agent": "ana", "channel": rnd.choice(["call", "internal"])}),
                ("case.status_changed", {"status": "pending"}),
                ("case.status_changed", {"status": "open"}),
                ("case.note_added", {"agent": "ana", "text": "called, will retry"}),
                ("case.resolved", {"agent": "ana", "outcome": rnd.choice(["saved", "resolved"]), "csat": 4})]
        for j, (typ, data) in enumerate(acts[:rnd.randint(1, len(acts))]):
            t = base + _dt.timedelta(hours=j + 1, milliseconds=k)
            while t.isoformat(timespec="milliseconds").replace("+00:00", "Z") in taken:
                t += _dt.timedelta(milliseconds=1)
            at = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            taken.add(at)
            out.append(ev(typ, c, at, **data))
    return sorted(out, key=lambda e: e["time"])


def test_partitions_follow_cases_as_one_engine():
    # With --cases each partition keeps its customers' cases and SLA clocks
    # (their warnings and breaches are engine timers, ordered with the
    # wake-ups); the merger attaches each incident to its members' open
    # cases from the case lines it has printed, where one engine's cases
    # would have: after the incident line, before its alert.
    evs = _with_case_actions(sorted(_mixed_stream(5000, seed=7), key=lambda e: e["time"]), seed=3)
    body = ndjson(evs)
    for flags in (["--cases"], ["--cases", "--messages"]):
        for extra in ([], list(until("12d"))):
            rc, out, err = _same_on_partitions(["replay"] + flags + extra, body)
            lines = [json.loads(x) for x in out.splitlines()]
            cases = [x for x in lines if x["kind"] == "case"]
            assert rc == 0 and len(cases) > 500, err
            assert sum(1 for x in cases if x.get("change") == "incident") > 20, "no incident attached"
            assert any(x["kind"] == "sla" and x["event"] == "breached" for x in lines), "no breach"
            assert any(x["event"] == "assigned" for x in cases) and any(
                x["event"] == "resolved" and x.get("agent") == "ana" for x in cases), "no action"
            assert ("--messages" in flags) == any(x["kind"] == "message" for x in lines)
            # The attachment follows its incident line and carries the case as it stands.
            for k, x in enumerate(lines):
                if x["kind"] == "case" and x.get("change") == "incident":
                    inc = [y for y in lines[:k] if y["kind"] == "incident" and y["id"] == x["incident"]]
                    assert inc, x
                    prev = [y for y in lines[:k] if y["kind"] == "case" and y["case"] == x["case"]]
                    assert prev and all(x[f] == prev[-1][f] for f in ("severity", "signals", "assignee")), x
                    break


def test_partitions_leave_cases_to_one_engine_when_a_policy_could_see_an_attachment():
    # A policy's condition is judged at the case's last update, which an
    # incident attached by the merger would move where a partition cannot
    # see it: with such a policy (and systemic signals) one engine runs.
    evs = sorted(_mixed_stream(600, seed=11), key=lambda e: e["time"])
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "c.yaml")
        with open(cfg, "w") as f:
            f.write("sla:\n  policies:\n    - {match: \"severity == 'HIGH'\", resolution: 24h}\n")
        _same_on_partitions(["replay", "--cases", "--config", cfg], ndjson(evs), parted=False)
        with open(cfg, "w") as f:
            f.write("sla:\n  policies:\n    - {resolution: 24h}\n")
        _same_on_partitions(["replay", "--cases", "--config", cfg], ndjson(evs), parted=True)


def test_partitions_refuse_what_they_do_not_do_yet():
    body = ndjson([ev("payment.completed", "c1", "0", order_id="o1", amount=45)])
    for flags in (["--stats"], ["--stats", "--messages"]):
        rc, out, err = run(["replay", "--partitions", "2"] + flags, input=body)
        assert rc == 2 and out == "" and "--partitions replays detections" in err, (flags, err)
    for bad in ("0", "65", "x", "2x"):
        rc, out, err = run(["replay", "--partitions", bad], input=body)
        assert rc == 2 and "--partitions %s: a number from 1 to 64" % bad in err, (bad, err)


def test_piped_input_is_spooled_and_a_failed_spool_loses_nothing():
    # A pipe is copied into an unlinked temporary file and mapped, like a
    # file; when that file cannot grow (here RLIMIT_FSIZE, as on a full
    # disk) the bytes it took come back into memory with the rest of the
    # pipe.  Either way the output equals the file's, byte for byte.
    import resource
    import signal
    import subprocess
    evs = sorted(_mixed_stream(300, seed=5), key=lambda e: e["time"])
    # Then quiet updates (no signal fires): a large input with a small output.
    evs += [ev("customer.updated", "filler%04d@example.com" % (k % 2000), "%dms" % (10 * 86400000 + k),
               name="Filler %d" % k, plan="Basic") for k in range(4000)]
    body = ndjson(evs).encode()
    assert len(body) > 4 * 65536, "the input must span several read chunks"
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "in.ndjson")
        with open(path, "wb") as f:
            f.write(body)
        rc, want, err = run(["replay"] + list(until("12d")) + [path])
        assert rc == 0 and want.count("\n") > 100, err
        limit = len(want.encode()) + 8192  # the output's own spool must still fit
        assert len(body) > limit + 2 * 65536, "the input spool must fail part way"

        def small_files():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        for name, pre in (("spooled", None), ("spool failed part way", small_files)):
            p = subprocess.run([BIN, "replay"] + list(until("12d")),
                               input=body, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=pre, timeout=120)
            assert p.returncode == 0, (name, p.stderr)
            assert p.stdout.decode() == want, "%s: piped input gave different output" % name
            assert p.stderr.decode() == err, (name, p.stderr)


def test_until_fires_due_timers_at_their_own_time():
    evs = [ev("payment.completed", "c1", "0", order_id="o1", amount=45),
           ev("esim.status_changed", "c1", "1m", order_id="o1", status="PENDING", individual_id="i1")]
    # Without --until the clock stops at the last event: nothing is due yet.
    rc, out, err = replay_raw(evs)
    assert rc == 0 and out == "", "nothing is due at the last event, got %r" % out
    assert re.search(r"[1-9]\d* pending wake-ups", err), "a wake-up should be pending: %s" % err
    # With --until far ahead, each wake-up fires at its due time, in order, not at --until.
    lines = replay(evs, *until("30d"))
    assert transitions(lines) == [("SIG-001", "c1", "firing", T("48h")),
                                  ("SIG-009", "c1", "firing", T("7d"))], transitions(lines)
    # --until before the first threshold fires nothing.
    assert replay(evs, *until("47h")) == []


def test_until_rejects_a_time_without_offset():
    rc, out, err = replay_raw([ev("payment.completed", "c1", "0", order_id="o1")],
                              "--until", "2026-03-10T00:00:00")
    assert rc != 0 and out == "", (rc, out)
    assert "--until" in err, err


# ---- bad input: refused whole, with line and field ----

def _good_failed_line():
    # A valid event that would print a detection if anything were replayed.
    return ndjson([ev("esim.status_changed", "c1", "1h", order_id="o1", status="FAILED", individual_id="i1")])


def _bad(body_after, line, field, reason_re):
    body = _good_failed_line() + body_after
    rc, out, err = replay_raw(body)
    assert rc != 0, "replay accepted bad input:\n%s" % body_after
    assert out == "", "nothing may be replayed from a bad batch, stdout: %r" % out
    pat = r"^line %d: %s%s" % (line, re.escape(field) + ": " if field else "", reason_re)
    assert re.search(pat, err, re.M), "stderr does not match %r:\n%s" % (pat, err)
    assert "nothing replayed" in err, err


def test_bad_malformed_json_line():
    _bad('{"specversion":"1.0","id":"x","type":"a.b",\n', 2, "", r"malformed JSON")


def test_bad_missing_field():
    e = ev("payment.completed", "c1", "2h", order_id="o1")
    del e["time"]
    _bad(ndjson([e]), 2, "time", r"required attribute is missing")


def test_bad_wrong_type():
    e = ev("payment.completed", "c1", "2h", order_id="o1")
    e["type"] = 42
    _bad(ndjson([e]), 2, "type", r"must be a string")


def test_bad_data_not_object():
    e = ev("payment.completed", "c1", "2h")
    e["data"] = ["o1"]
    _bad(ndjson([e]), 2, "data", r"must be an object")


def test_bad_time():
    for bad in ("2026-03-02 10:00", "2026-03-02T10:00:00", "yesterday", "2026-02-30T10:00:00Z"):
        e = ev("payment.completed", "c1", "2h", order_id="o1")
        e["time"] = bad
        _bad(ndjson([e]), 2, "time", r".*RFC 3339")


def test_bad_subject_missing_on_customer_event():
    e = ev("payment.completed", None, "2h", order_id="o1")
    _bad(ndjson([e]), 2, "subject", r"required attribute is missing")
    # ...while a global event without subject is fine.
    lines = replay([_outage("1h", "10001")])
    assert lines == [], lines


def test_bad_every_error_is_listed_with_its_line():
    good = ev("payment.completed", "c2", "2h", order_id="o2")
    no_id = ev("order.created", "c3", "3h", order_id="o3")
    del no_id["id"]
    bad_spec = ev("order.created", "c3", "3h", order_id="o3")
    bad_spec["specversion"] = "0.3"
    body = ndjson([good]) + "\n" + ndjson([no_id]) + "not json\n" + ndjson([bad_spec])
    rc, out, err = replay_raw(_good_failed_line() + body)
    assert rc != 0 and out == "", (rc, out)
    # Line numbers count the blank line too: they are the producer's line numbers.
    assert re.search(r"^line 4: id: required attribute is missing", err, re.M), err
    assert re.search(r"^line 5: malformed JSON", err, re.M), err
    assert re.search(r"^line 6: specversion: .*1\.0", err, re.M), err
    assert re.search(r"3 invalid line\(s\); nothing replayed", err), err
    assert not re.search(r"^line [123]:", err, re.M), "valid lines reported as errors:\n" + err


def test_skip_invalid_replays_the_valid_lines():
    body = _good_failed_line() + "garbage\n"
    rc, out, err = replay_raw(body, "--skip-invalid")
    assert rc == 0, err
    assert re.search(r"^line 2: malformed JSON", err, re.M), err
    assert [d["signal"] for d in map(json.loads, out.splitlines())] == ["SIG-002"], out


def test_repeated_id_is_accepted_but_ignored():
    first = ev("esim.status_changed", "c1", "1h", order_id="o1", status="FAILED", individual_id="i1")
    again = ev("esim.status_changed", "c1", "2h", order_id="o1", status="INSTALLED", individual_id="i1")
    again["id"] = first["id"]  # same id: a resend, whatever its content
    rc, out, err = replay_raw([first, again])
    assert rc == 0, err
    lines = [json.loads(l) for l in out.splitlines()]
    assert transitions(lines) == [("SIG-002", "c1", "firing", T("1h"))], \
        "the duplicate must be ignored (no resolution): %s" % lines
    assert re.search(r"replay: 1 events, 1 duplicate\(s\), 0 invalid", err), err
