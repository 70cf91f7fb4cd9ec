"""Cluster mode (`forewarn serve --cluster`, docs/operations.md "Cluster"):
real nats-server and PostgreSQL on loopback (cluster_servers.py), forewarn
nodes sharing 8 partitions, and the same events replayed by one engine
(`forewarn replay --messages`) as the reference.

What a cluster decides must equal what one node decides on the same events:
the same detections and the same messages (ids are content hashes, so "the
same" is exact), none lost and none twice, whatever node is killed when.
Incidents span partitions: one node at a time keeps them (the global role),
and they are compared too."""
import json
import os
import random
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import openapi_check
from cluster_servers import Nats, Postgres, available
from fw import BIN, run, until
from receivers import start_all
from test_replay import _mixed_stream

PARTITIONS = 8


def _ms_key(e):
    """An event's time as a sortable string (T() writes whole seconds without ".000")."""
    return e["time"] if "." in e["time"] else e["time"][:-1] + ".000Z"


class Cluster:
    def __init__(self, connectors="", extra="", virtual=True, checkpoint="300ms"):
        why = available()
        assert why is None, "the cluster tests need real servers: " + why
        self.dir = tempfile.mkdtemp(prefix="fw-cluster-")
        self.nats = Nats().start()
        self.pg = Postgres().start()
        self.config = os.path.join(self.dir, "cluster.yaml")
        with open(self.config, "w") as f:
            f.write("cluster:\n  nats: %s\n  postgres: \"%s\"\n  partitions: %d\n"
                    "  checkpoint_every: %s\n  ownership_every: 100ms\n" % (
                        self.nats.url, self.pg.conninfo, PARTITIONS, checkpoint))
            f.write("brand:\n  name: Example Mobile\n")
            f.write(connectors + extra)
        self.nodes = {}  # name -> (process, base url)
        self.crashed = []  # (name, signal) of nodes that died before the test killed them
        self.virtual = virtual

    def start(self, name):
        ready = os.path.join(self.dir, "ready-" + name)
        if os.path.exists(ready):
            os.unlink(ready)
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        p = subprocess.Popen([os.path.abspath(BIN), "serve", "--cluster", self.config, "--node", name, "--listen",
                              "127.0.0.1:0", "--ready-file", ready] +
                             (["--virtual-clock"] if self.virtual else []),
                             stdout=log, stderr=log, cwd=self.dir, preexec_fn=_allow_core)
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            assert p.poll() is None, "node %s exited: %s" % (name, self.log(name, 10000))
            assert time.monotonic() < deadline, "node %s not ready: %s" % (name, self.log(name))
            time.sleep(0.01)  # polling for the ready file
        with open(ready) as f:
            self.nodes[name] = (p, "http://" + f.read().strip())
        return self.nodes[name][1]

    def log(self, name, tail=3000):
        with open(os.path.join(self.dir, name + ".log"), "rb") as f:
            return f.read().decode(errors="replace")[-tail:]

    def kill(self, name):
        p, _ = self.nodes.pop(name)
        if p.poll() is not None and p.returncode < 0 and p.returncode != -signal.SIGKILL:
            self.crashed.append((name, -p.returncode))  # died before the test killed it
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self, name):
        p, _ = self.nodes.pop(name)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 0, self.log(name)

    def post(self, path, body, prefer=None):
        """POST to a live node (prefer one); on a dead connection, the next node. The JSON reply."""
        names = sorted(self.nodes)
        if prefer in names:
            names.remove(prefer)
            names.insert(0, prefer)
        last = None
        for name in names:
            req = urllib.request.Request(self.nodes[name][1] + path, data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return json.loads(r.read())
            except (urllib.error.URLError, ConnectionError, OSError) as e:
                if isinstance(e, urllib.error.HTTPError) and e.code < 500:
                    raise AssertionError("%s: %s" % (e.code, e.read().decode()))
                last = e
        raise AssertionError("no node took the POST: %s" % last)

    def get(self, name, path):
        try:
            with urllib.request.urlopen(self.nodes[name][1] + path, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code != 503:  # /readyz before the node's first look at who owns what
                raise
            return json.loads(e.read())

    def wait(self, what, cond, timeout=120):
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, "timed out waiting for %s; logs: %s" % (
                what, {n: self.log(n)[-1500:] for n in self.nodes})
            time.sleep(0.05)  # polling PostgreSQL for the condition

    def caught_up(self, clock_ms):
        """Every partition has applied the clock move to clock_ms (so everything before it)."""
        self.wait("every partition at the clock", lambda: int(self.pg.sql(
            "SELECT count(*) FROM fw_partitions WHERE clock >= %d" % clock_ms)[0][0]) == PARTITIONS)

    def incidents_settled(self, n):
        """The node holding the global role has written n incident lines (one engine's count):
        a wait, not the check; the lines themselves are compared after it."""
        self.wait("%d incident lines" % n, lambda: int(self.pg.sql(
            "SELECT count(*) FROM fw_incidents")[0][0]) >= n)

    def close(self):
        for name in list(self.nodes):
            self.kill(name)
        self.nats.stop()
        self.pg.stop()
        # No node may die of a signal the test did not send (a core is left in self.dir).
        assert not self.crashed, "nodes died: %s" % self.crashed
        # A node's log must hold no sanitizer report and no sign of one libpq connection used by
        # two threads at once (libpq says "... arrived from server while idle").
        bad = ("runtime error", "AddressSanitizer", "LeakSanitizer", "arrived from server while idle",
               "is out of range")
        for fn in sorted(os.listdir(self.dir)):
            if fn.endswith(".log"):
                with open(os.path.join(self.dir, fn), "rb") as f:
                    text = f.read().decode(errors="replace")
                hits = [line for line in text.splitlines() if any(b in line for b in bad)]
                assert not hits, "%s: %s" % (fn, hits[:3])


def _allow_core():
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _reference(evs, end, config):
    """One engine's detections (lines), messages ({id: message}) and incident lines on the same
    events, under the same config file."""
    body = "".join(json.dumps(e) + "\n" for e in evs)
    rc, out, err = run(["replay", "--messages", "--config", config, "--until", end], input=body)
    assert rc == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    dets = {json.dumps(x, sort_keys=True) for x in lines if x["kind"] == "detection"}
    msgs = {x["id"]: x for x in lines if x["kind"] == "message"}
    incs = [json.dumps(x, sort_keys=True) for x in lines if x["kind"] == "incident"]
    return dets, msgs, incs


def _cluster_outputs(cl):
    dets = {json.dumps(json.loads(r[0]), sort_keys=True) for r in cl.pg.sql("SELECT line FROM fw_detections")}
    msgs = {r[0]: dict(json.loads(r[1]), _key=r[2]) for r in cl.pg.sql("SELECT id, line, key FROM fw_outbox")}
    incs = [json.dumps(json.loads(r[0]), sort_keys=True)
            for r in cl.pg.sql("SELECT line FROM fw_incidents ORDER BY n")]
    return dets, msgs, incs


def _same_messages(got, want):
    """The same decisions: ids, and what each says (status aside: a stored message is one no
    connector was configured for)."""
    lost, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    show = lambda m: {k: m[k] for k in ("customer", "audience", "channel", "signals", "status", "at")}
    if lost and os.environ.get("FW_CLUSTER_DEBUG"):
        c = want[lost[0]]["customer"]
        for name, side in (("one", want), ("cluster", got)):
            with open("/tmp/fwdbg-%s.txt" % name, "w") as f:
                for m in sorted(side.values(), key=lambda m: (m["at"], m["id"])):
                    if m["customer"] == c:
                        print(m["id"], m["at"], m["audience"], m["channel"], m["signals"], m["status"],
                              (m.get("reason") or "")[:80], m.get("_key"), file=f)
    assert not lost and not extra, "lost %d %s, extra %d %s" % (
        len(lost), [show(want[k]) for k in lost[:4]], len(extra), [show(got[k]) for k in extra[:4]])
    for k, m in want.items():
        g = got[k]
        for field in ("customer", "audience", "channel", "signals", "at", "send_at", "subject", "body"):
            assert g[field] == m[field], (k, field, g[field], m[field])


def _events(n, seed):
    evs = sorted(_mixed_stream(n, seed=seed), key=_ms_key)
    end = until("12d")[1]
    end_ms = int(subprocess.run(["date", "-d", end, "+%s"], capture_output=True, text=True).stdout) * 1000
    return evs, end, end_ms


def test_cluster_two_nodes_decide_as_one_engine():
    # Two nodes share 8 partitions; events go to either node in batches, in
    # time order.  Once every partition has applied the final clock move, the
    # stored detections and messages are exactly one engine's.
    evs, end, end_ms = _events(3000, 21)
    cl = Cluster()
    try:
        cl.start("a")
        cl.start("b")
        cl.wait("both nodes owning partitions", lambda: all(
            cl.get(n, "/readyz")["partitions"] for n in ("a", "b")))
        for k in range(0, len(evs), 100):
            r = cl.post("/v1/events", evs[k:k + 100], prefer="ab"[(k // 100) % 2])
            assert r["accepted"] + r["duplicates"] == len(evs[k:k + 100]), r
        # A repeated batch is dropped by the stream's duplicate window.
        r = cl.post("/v1/events", evs[:50], prefer="b")
        assert r == {"accepted": 0, "duplicates": 50, "results": r["results"]}, r
        # An event twice in one body (published together, acknowledged together): once.
        extra = dict(evs[-1], id="twice-in-one-body")
        r = cl.post("/v1/events", [extra, extra], prefer="a")
        assert (r["accepted"], r["duplicates"], [x["status"] for x in r["results"]]) == (
            1, 1, ["accepted", "duplicate"]), r
        evs = evs + [extra]
        cl.post("/v1/admin/clock", {"now": end})
        cl.caught_up(end_ms)
        owners = {r[0] for r in cl.pg.sql("SELECT owner FROM fw_partitions")}
        assert owners == {"a", "b"}, owners
        want_d, want_m, want_i = _reference(evs, end, cl.config)
        cl.incidents_settled(len(want_i))
        got_d, got_m, got_i = _cluster_outputs(cl)
        assert len(want_d) > 300 and len(want_m) > 300 and len(want_i) > 3, (
            len(want_d), len(want_m), len(want_i))
        assert got_d == want_d, "detections differ: lost %d, extra %d" % (
            len(want_d - got_d), len(got_d - want_d))
        # Incidents span partitions: the node holding the global role keeps them, in time order,
        # customers firing at one millisecond (an outage) in the order they were first seen.
        first = next((k for k in range(min(len(got_i), len(want_i))) if got_i[k] != want_i[k]),
                     min(len(got_i), len(want_i)))
        assert got_i == want_i, "incidents differ at line %d of %d/%d:\n%s\n%s" % (
            first, len(got_i), len(want_i), got_i[first:first + 2], want_i[first:first + 2])
        _same_messages(got_m, want_m)
        # Readiness and metrics name the partitions each node owns.
        ra, rb = cl.get("a", "/readyz"), cl.get("b", "/readyz")
        for body in (ra, rb):  # as docs/openapi.yaml documents them
            assert not openapi_check.errors(body, openapi_check.schema("ClusterReady")), body
        whole = cl.get("a", "/v1/cluster")
        sch = openapi_check.doc()["paths"]["/v1/cluster"]["get"]["responses"]["200"]["content"]
        assert not openapi_check.errors(whole, sch["application/json"]["schema"]), whole
        owned = sorted(p["partition"] for p in ra["partitions"] + rb["partitions"])
        assert owned == list(range(PARTITIONS)), (ra, rb)
        with urllib.request.urlopen(cl.nodes["a"][1] + "/metrics") as m:
            text = m.read().decode()
        assert "forewarn_cluster_partition_owned{partition=\"%d\"} 1" % ra["partitions"][0]["partition"] in text
        # Draining a node: SIGTERM checkpoints its partitions and hands them over; the other node
        # takes them without replaying an event, and the node exits cleanly (0: no leak under ASan).
        cl.stop("a")
        cl.wait("b owning every partition", lambda: len(cl.get("b", "/readyz")["partitions"]) == PARTITIONS
                and all(p["live"] for p in cl.get("b", "/readyz")["partitions"]))
        moved = [p for p in cl.get("b", "/readyz")["partitions"] if p["partition"] in
                 {q["partition"] for q in ra["partitions"]}]
        assert moved and all(p["replayed"] == 0 for p in moved), (moved, cl.log("b"), cl.log("a"))
        assert _cluster_outputs(cl) == (got_d, got_m, got_i), "the handover decided something again"
        cl.stop("b")
        # A corrupt checkpoint is detected (checksum) and not used: its partition is rebuilt from
        # the whole stream, with a line saying so, and decides nothing new.
        cl.pg.sql("UPDATE fw_partitions SET checkpoint = overlay(checkpoint placing '\\xdeadbeef'::bytea "
                  "from 200) WHERE p = 0")
        cl.start("a")
        cl.wait("a owning every partition", lambda: len(cl.get("a", "/readyz")["partitions"]) == PARTITIONS
                and all(p["live"] for p in cl.get("a", "/readyz")["partitions"]))
        p0 = [p for p in cl.get("a", "/readyz")["partitions"] if p["partition"] == 0][0]
        assert p0["replayed"] > 100, p0
        assert "partition 0: checkpoint not used: its checksum does not match" in cl.log("a", 100000)
        assert _cluster_outputs(cl) == (got_d, got_m, got_i), "the rebuilt partition decided something again"
    finally:
        cl.close()


def test_cluster_failover_loses_nothing_and_repeats_nothing():
    # Twenty kill -9 trials under load: events go to the nodes in batches
    # while, at a random batch of each trial, one node is killed; the batch
    # it did not answer goes to the other node (the stream drops what it
    # already had), and the dead node comes back for the next trial.  At the
    # end: the detections and messages equal one engine's (none lost, none
    # decided twice), and every message reached its receiver exactly once
    # by id (a send cut by the kill is repeated under the same id, which the
    # receivers drop).
    rnd = random.Random(2026)
    evs, end, end_ms = _events(4000, 33)
    recv = start_all()
    # Zendesk is left out: the generated tickets ("z3") are not Zendesk ticket numbers, so its
    # messages would be refused for good; without it they are stored.
    cl = Cluster(connectors=recv.connectors_yaml(only=("email", "sms", "slack", "webhook", "push",
                                                       "chatbot"),
                                                 max_attempts=50, backoff_base="50ms",
                                                 backoff_max="200ms", timeout="1s"),
                 extra="outreach:\n  webhook: true\n")
    try:
        cl.start("a")
        cl.start("b")
        chunk = len(evs) // 20
        kills = 0
        for trial in range(20):
            part = evs[trial * chunk:(trial + 1) * chunk if trial < 19 else len(evs)]
            kill_at = rnd.randrange(0, len(part), 25)
            victim = rnd.choice(sorted(cl.nodes))
            for k in range(0, len(part), 25):
                if k == kill_at:
                    cl.kill(victim)
                    kills += 1
                r = cl.post("/v1/events", part[k:k + 25], prefer=rnd.choice("ab"))
                assert r["accepted"] + r["duplicates"] == len(part[k:k + 25]), r
            cl.start(victim)
        assert kills == 20
        cl.post("/v1/admin/clock", {"now": end})
        cl.caught_up(end_ms)
        cl.wait("the outbox drained", lambda: cl.pg.sql(
            "SELECT count(*) FROM fw_outbox WHERE status = 'scheduled'")[0][0] == "0", timeout=180)
        want_d, want_m, want_i = _reference(evs, end, cl.config)
        cl.incidents_settled(len(want_i))
        got_d, got_m, got_i = _cluster_outputs(cl)
        assert got_d == want_d, "detections differ: lost %d, extra %d" % (
            len(want_d - got_d), len(got_d - want_d))
        # The node holding the global role was killed too, now and then: its successor went on
        # from the position it had committed.
        takes = sum(cl.log(n, 10**8).count("this node keeps the incidents") for n in ("a", "b"))
        assert takes >= 3, takes
        first = next((k for k in range(min(len(got_i), len(want_i))) if got_i[k] != want_i[k]),
                     min(len(got_i), len(want_i)))
        assert got_i == want_i, "incidents differ at line %d of %d/%d:\n%s\n%s" % (
            first, len(got_i), len(want_i), got_i[first:first + 2], want_i[first:first + 2])
        _same_messages(got_m, want_m)
        # Deliveries: every sent message arrived, once by id.
        sent = cl.pg.sql("SELECT id, channel FROM fw_outbox WHERE status = 'sent'")
        assert len(sent) > 100, len(sent)
        dead = cl.pg.sql("SELECT id, last_error FROM fw_outbox WHERE status = 'dead'")
        assert not dead, dead[:3]
        got = recv.received("webhook")
        assert all(g["verified"] for g in got), "a webhook's signature did not verify"
        webhook_ids = [g["json"]["data"]["id"] for g in got]
        assert len(webhook_ids) == len(set(webhook_ids)), "a message delivered twice"
        want_webhook = {r[0] for r in sent if r[1] == "webhook"}
        assert want_webhook and set(webhook_ids) == want_webhook, (
            len(want_webhook), len(set(webhook_ids)))
        # Partitions moved: every kill handed the victim's partitions over (epochs went up).
        epochs = [int(r[0]) for r in cl.pg.sql("SELECT epoch FROM fw_partitions")]
        assert sum(epochs) > PARTITIONS * 5, epochs
    finally:
        cl.close()
        recv.stop()


def test_cluster_wall_clock_takeover_decides_once():
    # On the wall clock an event is applied at the time its group was
    # applied, which only the partition's owner knew: it records it
    # (fw_groups) with the work it commits, and a new owner replays each
    # event at that time.  Events here are dated 30 s before they arrive:
    # history being caught up, decided late_hold (5 s) after it stops
    # arriving, which is a time only the group's time gives.  Two takeovers:
    #  1. the owner dies inside the merge window, and nobody owns the
    #     partitions when it closes: the new owner decides at takeover, once;
    #  2. the owner dies after deciding: the new owner replays and fires the
    #     same holds again; what it decides has the same keys (the same
    #     times) and is stored once.  Replayed at the events' own times,
    #     each decision would have come back under another key: a second row.
    import datetime
    cl = Cluster(virtual=False, checkpoint="1h")  # no checkpoint: takeovers replay it all
    try:
        cl.start("a")
        custs = ["wall%02d@example.com" % k for k in range(24)]

        def dated():
            t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=30)
            return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

        def burst(cs):
            for c in cs:
                cl.post("/v1/events", [{"specversion": "1.0", "id": "wall-%s" % c, "source": "e2e",
                                        "type": "portin.status_changed", "subject": c, "time": dated(),
                                        "data": {"carrier": "AT&T", "status": "REJECTED",
                                                 "response": "FAILED"}}])

        def count(sql, cs):
            return {r[0] for r in cl.pg.sql(sql)} >= set(cs)

        detected = "SELECT customer FROM fw_detections WHERE signal = 'SIG-004'"
        decided = "SELECT customer FROM fw_outbox WHERE audience = 'customer'"
        burst(custs[:12])
        cl.wait("the first detections", lambda: count(detected, custs[:12]))
        posted = time.time()
        cl.kill("a")  # inside the 5 s wait for the end of the catch-up
        assert not cl.pg.sql(decided), "decided before the catch-up was over"
        while time.time() < posted + 5.5:  # the waits end while nobody owns the partitions
            time.sleep(0.1)
        cl.start("b")
        cl.wait("the first decisions, at takeover", lambda: count(decided, custs[:12]))
        burst(custs[12:])
        cl.wait("the second decisions", lambda: count(decided, custs))
        cl.start("a")
        cl.kill("b")  # everything it decided is replayed by a
        cl.wait("a owning every partition, live", lambda: len(cl.get("a", "/readyz")["partitions"])
                == PARTITIONS and all(p["live"] for p in cl.get("a", "/readyz")["partitions"]))
        replayed = sum(p["replayed"] for p in cl.get("a", "/readyz")["partitions"])
        assert replayed >= 12, replayed
        dets = cl.pg.sql("SELECT customer, count(*) FROM fw_detections WHERE signal = 'SIG-004' "
                         "AND state = 'firing' GROUP BY customer")
        assert sorted(r[0] for r in dets) == sorted(custs) and all(r[1] == "1" for r in dets), dets
        msgs = cl.pg.sql("SELECT customer, channel, count(*) FROM fw_outbox WHERE audience = 'customer' "
                         "GROUP BY customer, channel")
        assert {r[0] for r in msgs} == set(custs), msgs
        assert all(r[2] == "1" for r in msgs), [r for r in msgs if r[2] != "1"]
    finally:
        cl.close()


def test_cluster_docs_example_config_runs():
    # docs/operations.md, "Cluster": the config example, pointed at this test's servers,
    # starts a node that owns all 8 partitions it declares.
    import re
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "../../docs/operations.md")) as f:
        doc = f.read()
    section = doc[doc.index("## Cluster"):]
    example = re.search(r"```yaml\n(cluster:.*?)```", section, re.S).group(1)
    assert "partitions: 8" in example, example
    cl = Cluster()
    try:
        text = re.sub(r"nats: \S+", "nats: " + cl.nats.url, example)
        text = re.sub(r'postgres: "[^"]*"', 'postgres: "%s"' % cl.pg.conninfo, text)
        with open(cl.config, "w") as f:
            f.write(text)
        cl.start("n1")
        cl.wait("n1 owning the partitions", lambda: [p["owner"] for p in cl.get(
            "n1", "/v1/cluster")["partitions"]] == ["n1"] * 8)
        ready = cl.get("n1", "/readyz")
        assert ready["ready"] and len(ready["partitions"]) == 8, (ready, cl.log("n1", 6000))
    finally:
        cl.close()
