"""cluster_bench.py -- cluster mode's figures for bench/run: events/s through
one node and through two nodes (`forewarn serve --cluster`, 8 partitions,
a real nats-server and PostgreSQL on loopback, the servers of
tests/e2e/cluster_servers.py), and the failover time after kill -9.

Events are POSTed in batches by 4 client threads, round-robin over the
nodes, on the virtual clock (the bench data is history).  Each thread
posts the events of its own partitions, in input order, and a global event
(an outage) is posted alone once everything before it is in: so every
partition sees its events in the order one engine does.  The clock then
moves to the last event, and a run ends when every partition has applied
it.  Two rates: acknowledged (in the stream) and applied (decided and
committed to PostgreSQL).  The detections stored must equal `forewarn
replay`'s on the same events (tests/e2e/test_cluster.py compares incidents and messages too).
Failover: with two nodes, once every partition's checkpoint covers its
last event, one node is killed; the figure is the time until the other
owns every partition and each is live again."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from cluster_servers import Nats, Postgres, available  # noqa: E402

PARTITIONS = 8
THREADS = 4


def fw_hash_partition(subject, n):
    """cluster_partition_of: FNV-1a over 64 bits with forewarn's offset basis, mod n."""
    h = 1469598103934665603
    for b in subject.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % n


def _segments(lines):
    """[(per-thread lists of lines, the global event that ends the segment or None)]."""
    segs, cur = [], [[] for _ in range(THREADS)]
    for line in lines:
        ev = json.loads(line)
        if "subject" not in ev or ev["type"].startswith("outage."):
            segs.append((cur, line))
            cur = [[] for _ in range(THREADS)]
        else:
            cur[fw_hash_partition(ev["subject"], PARTITIONS) % THREADS].append(line)
    segs.append((cur, None))
    return segs


def _post(base, path, body):
    req = urllib.request.Request(base + path, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def _get(base, path):
    try:
        with urllib.request.urlopen(base + path, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def _wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.02)  # polling for the condition


def _start_node(bin_path, config, name, workdir):
    ready = os.path.join(workdir, "ready-" + name)
    log = open(os.path.join(workdir, name + ".log"), "ab")
    p = subprocess.Popen([bin_path, "serve", "--cluster", config, "--node", name, "--listen",
                          "127.0.0.1:0", "--ready-file", ready, "--virtual-clock"],
                         stdout=log, stderr=log)
    _wait(lambda: os.path.exists(ready) or p.poll() is not None, 60, "node " + name)
    if p.poll() is not None:
        raise RuntimeError("node %s exited" % name)
    with open(ready) as f:
        return p, "http://" + f.read().strip()


def _one_run(bin_path, lines, end_iso, end_ms, nodes, batch, failover):
    nats, pg = Nats().start(), Postgres().start()
    work = tempfile.mkdtemp(prefix="fw-cluster-bench-")
    config = os.path.join(work, "cluster.yaml")
    with open(config, "w") as f:
        f.write("cluster:\n  nats: %s\n  postgres: \"%s\"\n  partitions: %d\n"
                "  ownership_every: 100ms\n  checkpoint_every: 1s\n" % (nats.url, pg.conninfo, PARTITIONS))
    procs = {}
    try:
        for k in range(nodes):
            procs["n%d" % k] = _start_node(bin_path, config, "n%d" % k, work)
        owners = lambda: [r[0] for r in pg.sql("SELECT owner FROM fw_partitions ORDER BY p")]  # noqa: E731
        _wait(lambda: len(owners()) == PARTITIONS and all(owners()) and
              len(set(owners())) == nodes, 60, "every partition owned, shared by the nodes")
        bases = [b for _, b in procs.values()]
        errors = []

        def post_all(k, lines_k):
            for i in range(0, len(lines_k), batch):
                b = lines_k[i:i + batch]
                try:
                    r = _post(bases[(k + i // batch) % len(bases)], "/v1/events",
                              ("[" + ",".join(b) + "]").encode())
                    if r["accepted"] + r["duplicates"] != len(b):
                        errors.append(r)
                except Exception as e:  # noqa: BLE001
                    errors.append(str(e))

        t0 = time.monotonic()
        for per_thread, glob in _segments(lines):
            threads = [threading.Thread(target=post_all, args=(k, per_thread[k]))
                       for k in range(THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if glob:
                post_all(0, [glob])
        t_ack = time.monotonic()
        if errors:
            raise RuntimeError("POSTs failed: %s" % errors[:3])
        _post(bases[0], "/v1/admin/clock", json.dumps({"now": end_iso}).encode())
        _wait(lambda: int(pg.sql("SELECT count(*) FROM fw_partitions WHERE clock >= %d" % end_ms)[0][0])
              == PARTITIONS, 600, "every partition at the end")
        t_done = time.monotonic()
        res = {"nodes": nodes, "events": len(lines), "ack_s": t_ack - t0, "applied_s": t_done - t0,
               "events_per_s_acknowledged": len(lines) / (t_ack - t0),
               "events_per_s_applied": len(lines) / (t_done - t0),
               "detections": sorted(json.dumps(json.loads(r[0]), sort_keys=True)
                                    for r in pg.sql("SELECT line FROM fw_detections")),
               "messages": int(pg.sql("SELECT count(*) FROM fw_outbox")[0][0])}
        if failover and nodes > 1:
            _wait(lambda: int(pg.sql("SELECT count(*) FROM fw_partitions WHERE checkpoint_seq = "
                                     "applied_seq")[0][0]) == PARTITIONS, 120, "every checkpoint current")
            victim = sorted(procs)[-1]
            p, _ = procs.pop(victim)
            t_kill = time.monotonic()
            p.send_signal(signal.SIGKILL)
            p.wait()
            survivor = procs[sorted(procs)[0]][1]

            def all_live():
                r = _get(survivor, "/readyz")
                return len(r["partitions"]) == PARTITIONS and all(x["live"] for x in r["partitions"])

            _wait(all_live, 120, "the survivor owning every partition")
            res["failover_s"] = time.monotonic() - t_kill
            r = _get(survivor, "/readyz")
            res["failover_replayed"] = sum(x["replayed"] for x in r["partitions"])
            res["failover_takeover_s_max"] = max(x["takeover_s"] for x in r["partitions"])
        return res
    finally:
        for p, _ in procs.values():
            p.send_signal(signal.SIGKILL)
            p.wait()
        nats.stop()
        pg.stop()


def run(bin_path, events_path, end_iso, end_ms, batch=500):
    """{"1": {...}, "2": {...}, "replay_detections": n} or {"skipped": why}."""
    why = available()
    if why:
        return {"skipped": why}
    with open(events_path) as f:
        lines = [line.strip() for line in f if line.strip()]
    out = {}
    for nodes in (1, 2):
        out[str(nodes)] = _one_run(bin_path, lines, end_iso, end_ms, nodes, batch, failover=True)
    # The reference: one engine's detections on the same events.
    p = subprocess.run([bin_path, "replay", "--until", end_iso, events_path], capture_output=True,
                       text=True)
    want = sorted(json.dumps(json.loads(line), sort_keys=True) for line in p.stdout.splitlines()
                  if line.startswith('{"kind":"detection"'))
    out["replay_detections"] = len(want)
    for nodes in ("1", "2"):
        got = out[nodes].pop("detections")
        out[nodes]["detections"] = len(got)
        out[nodes]["same_detections_as_replay"] = got == want
    return out
