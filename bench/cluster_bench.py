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
owns every partition and each is live again.

The messages stored (fw_outbox), read once the node holding the global
role has written as many incident lines as one engine prints (its alerts
are messages too, and it works behind the partitions), must equal
`forewarn replay --messages`'s
too, and so must those of the restart runs: one node on 1 and on 2
partitions, the events posted in three parts, the node drained (SIGTERM:
checkpoints written) after the first and killed (-9) after the second,
each time started again: it loads the checkpoints and replays the stream
after them (the second time, the whole second part) before the next part
is posted.  That is issue 14's "messages identical with 1 and 2
partitions, with and without a restart from a checkpoint" on the backend
where partitions keep checkpoints (replay's in-process partitions keep
none)."""
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
    if os.path.exists(ready):
        os.remove(ready)  # a restart's: wait for the new process's address
    log = open(os.path.join(workdir, name + ".log"), "ab")
    # A node that crashes leaves a core in the run's directory (core_pattern "core"), for a look.
    p = subprocess.Popen([os.path.abspath(bin_path), "serve", "--cluster", config, "--node", name, "--listen",
                          "127.0.0.1:0", "--ready-file", ready, "--virtual-clock"],
                         stdout=log, stderr=log, cwd=workdir, preexec_fn=_allow_core)
    _wait(lambda: os.path.exists(ready) or p.poll() is not None, 60, "node " + name)
    if p.poll() is not None:
        raise RuntimeError("node %s exited" % name)
    with open(ready) as f:
        return p, "http://" + f.read().strip()


def _allow_core():
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


CRASHES = []  # nodes that died of a signal the bench did not send: (run directory, name, signal)


def _reap(procs, work):
    """Kill what still runs; note a node that had died of anything but the bench's SIGKILL."""
    for name, (p, _) in procs.items():
        if p.poll() is not None and p.returncode < 0 and p.returncode != -signal.SIGKILL:
            CRASHES.append((work, name, -p.returncode))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()


def _ms(iso):
    """Milliseconds since the epoch of an RFC 3339 time (the bench data's: UTC, milliseconds)."""
    import datetime
    d = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(round(d.timestamp() * 1000))


def _write_config(work, nats, pg, partitions, checkpoint_every):
    config = os.path.join(work, "cluster.yaml")
    with open(config, "w") as f:
        f.write("cluster:\n  nats: %s\n  postgres: \"%s\"\n  partitions: %d\n"
                "  ownership_every: 100ms\n  checkpoint_every: %s\n" % (nats.url, pg.conninfo, partitions,
                                                                       checkpoint_every))
    return config


def _messages(pg):
    """The stored messages, {id: what the message says} (status aside: no connector is set)."""
    out = {}
    for mid, line in pg.sql("SELECT id, line FROM fw_outbox"):
        m = json.loads(line)
        out[mid] = {k: m.get(k) for k in MESSAGE_FIELDS}
    return out


MESSAGE_FIELDS = ("customer", "audience", "channel", "signals", "at", "send_at", "subject", "body")


def _settled(pg, incidents):
    """The node holding the global role has written one engine's incident lines (it works behind
    the partitions: its alerts are messages too): a wait, not the check."""
    _wait(lambda: int(pg.sql("SELECT count(*) FROM fw_incidents")[0][0]) >= incidents, 120,
          "%d incident lines" % incidents)


def _one_run(bin_path, lines, end_iso, end_ms, nodes, batch, failover, incidents):
    nats, pg = Nats().start(), Postgres().start()
    work = tempfile.mkdtemp(prefix="fw-cluster-bench-")
    config = _write_config(work, nats, pg, PARTITIONS, "1s")
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
        _settled(pg, incidents)
        res = {"nodes": nodes, "events": len(lines), "ack_s": t_ack - t0, "applied_s": t_done - t0,
               "events_per_s_acknowledged": len(lines) / (t_ack - t0),
               "events_per_s_applied": len(lines) / (t_done - t0),
               "detections": sorted(json.dumps(json.loads(r[0]), sort_keys=True)
                                    for r in pg.sql("SELECT line FROM fw_detections")),
               "messages": _messages(pg)}
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
        _reap(procs, work)
        nats.stop()
        pg.stop()


def _restart_run(bin_path, lines, end_iso, end_ms, partitions, batch, incidents):
    """One node on `partitions`: three parts of the events, a drain and restart after the first, a
    kill -9 and restart after the second; the messages stored, and what each restart replayed."""
    nats, pg = Nats().start(), Postgres().start()
    work = tempfile.mkdtemp(prefix="fw-cluster-restart-")
    # No periodic checkpoints: the drain writes them, and the kill finds them a part behind.
    config = _write_config(work, nats, pg, partitions, "1h")
    proc = None
    try:
        def start():
            p, base = _start_node(bin_path, config, "n0", work)
            _wait(lambda: all(x["live"] for x in _get(base, "/readyz")["partitions"]) and
                  len(_get(base, "/readyz")["partitions"]) == partitions, 120, "every partition live")
            return p, base

        def post(base, part):
            for i in range(0, len(part), batch):
                b = part[i:i + batch]
                r = _post(base, "/v1/events", ("[" + ",".join(b) + "]").encode())
                if r["accepted"] + r["duplicates"] != len(b):
                    raise RuntimeError("POST refused events: %s" % r)

        def settle(base, part):
            # The clock to the part's last event, after its events in every partition's stream:
            # once each partition has committed that clock, it has applied the part.  Parts end
            # where the time moves on, so no later event shares that instant (wake-ups due then
            # fire after the events at it, as one engine has them).
            at = json.loads(part[-1])["time"]
            ms = _ms(at)
            _post(base, "/v1/admin/clock", json.dumps({"now": at}).encode())
            _wait(lambda: int(pg.sql("SELECT count(*) FROM fw_partitions WHERE clock >= %d" % ms)[0][0])
                  == partitions, 300, "every partition at the part's end")

        def cut(i):  # the first index at or after i whose event is later than the one before it
            t = lambda k: _ms(json.loads(lines[k])["time"])  # noqa: E731
            while 0 < i < len(lines) and t(i) == t(i - 1):
                i += 1
            return i

        a, b = cut(len(lines) // 3), cut(2 * len(lines) // 3)
        thirds = [lines[:a], lines[a:b], lines[b:]]
        res = {"partitions": partitions, "events": len(lines), "replayed": []}
        proc, base = start()
        post(base, thirds[0])
        settle(base, thirds[0])
        proc.send_signal(signal.SIGTERM)  # drain: checkpoints, then exit 0
        res["drain_exit"] = proc.wait(timeout=120)
        proc, base = start()
        res["replayed"].append(sum(x["replayed"] for x in _get(base, "/readyz")["partitions"]))
        post(base, thirds[1])
        settle(base, thirds[1])
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc, base = start()
        res["replayed"].append(sum(x["replayed"] for x in _get(base, "/readyz")["partitions"]))
        post(base, thirds[2])
        _post(base, "/v1/admin/clock", json.dumps({"now": end_iso}).encode())
        _wait(lambda: int(pg.sql("SELECT count(*) FROM fw_partitions WHERE clock >= %d" % end_ms)[0][0])
              == partitions, 600, "every partition at the end")
        _settled(pg, incidents)
        res["messages"] = _messages(pg)
        return res
    finally:
        if proc:
            _reap({"n0": (proc, None)}, work)
        nats.stop()
        pg.stop()


def run(bin_path, events_path, end_iso, end_ms, batch=500):
    """{"1": {...}, "2": {...}, "restart1": {...}, "restart2": {...}, "replay_detections": n,
    "replay_messages": n} or {"skipped": why}."""
    why = available()
    if why:
        return {"skipped": why}
    with open(events_path) as f:
        lines = [line.strip() for line in f if line.strip()]
    out = {}
    # The reference first: one engine's detections, messages and incident lines on the same events.
    p = subprocess.run([bin_path, "replay", "--messages", "--until", end_iso, events_path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("replay failed: " + p.stderr[-300:])
    incidents = sum(1 for line in p.stdout.splitlines() if line.startswith('{"kind":"incident"'))
    for nodes in (1, 2):
        out[str(nodes)] = _one_run(bin_path, lines, end_iso, end_ms, nodes, batch, True, incidents)
    for partitions in (1, 2):
        out["restart%d" % partitions] = _restart_run(bin_path, lines, end_iso, end_ms, partitions,
                                                     batch, incidents)
    want = sorted(json.dumps(json.loads(line), sort_keys=True) for line in p.stdout.splitlines()
                  if line.startswith('{"kind":"detection"'))
    want_msgs = {}
    for line in p.stdout.splitlines():
        if line.startswith('{"kind":"message"'):
            m = json.loads(line)
            want_msgs[m["id"]] = {k: m.get(k) for k in MESSAGE_FIELDS}
    out["node_crashes"] = [list(c) for c in CRASHES]
    out["replay_detections"] = len(want)
    out["replay_messages"] = len(want_msgs)
    for nodes in ("1", "2"):
        got = out[nodes].pop("detections")
        out[nodes]["detections"] = len(got)
        out[nodes]["same_detections_as_replay"] = got == want
    for run_name in ("1", "2", "restart1", "restart2"):
        got = out[run_name].pop("messages")
        out[run_name]["messages"] = len(got)
        out[run_name]["same_messages_as_replay"] = got == want_msgs
        out[run_name]["messages_lost"] = len(set(want_msgs) - set(got))
        out[run_name]["messages_extra"] = len(set(got) - set(want_msgs))
        out[run_name]["messages_differing"] = sum(1 for k in set(got) & set(want_msgs)
                                                  if got[k] != want_msgs[k])
    return out


if __name__ == "__main__":
    # bench/cluster_bench.py BIN EVENTS END_ISO END_MS: the figures as JSON, for a look by hand.
    print(json.dumps(run(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])), indent=1))
