#!/usr/bin/python3
"""polling.py -- the seed's polling approach on SQLite, on the same data.

The seed ("Implementation: Databricks Detection Queries") keeps journey data
in tables (stripe_customers, mvno_order, user_onboarding_flow, conversations,
zendesk_tickets, zendesk_users) and runs one detection query per signal on a
schedule: every 15 minutes, 30 minutes, hour or day.  bench/gen folds the
generated events into those tables as they stand at each snapshot instant
(TSV files); this loads them into an in-memory SQLite database (no disk I/O,
which favours the poller), with indexes on every join and filter column,
and for each snapshot:

  - runs the ten queries with CURRENT_TIMESTAMP = the snapshot instant,
    timing each (process CPU time, best of --repeat) on the last snapshot;
  - writes the matching customers per signal, for bench/run to compare with
    the detections forewarn has active at that instant.

The seed gives SQL for SIG-001, 002, 008 and 009; the others follow the
seed's table of rules, written the same way.  Adaptations, so that both
approaches answer the same question: DATEDIFF/DATEADD become julianday()
arithmetic on the exact instant (DATEDIFF(HOUR) would truncate to whole
hours); SIG-009 follows the seed's table and the telecom pack ("no contact,
ticket or chat, in 7+ days"), not its query's 3-day chat-only look-back;
SIG-010's "recent Mochi chat" is 24 hours, as in the pack.

  polling.py DIR SNAPSHOT_MS[,SNAPSHOT_MS...] OUT.json [--repeat N]

Prints one JSON line with load time, per-query CPU seconds and the scan
schedule; OUT.json gets the matches.
"""
import json
import sqlite3
import sys
import time
from datetime import datetime, timezone

SCHEMA = """
CREATE TABLE stripe_customers (user_id INTEGER PRIMARY KEY, customer_email TEXT,
  customer_name TEXT, zip TEXT, carrier TEXT);
CREATE TABLE zendesk_users (id INTEGER PRIMARY KEY, email TEXT);
CREATE TABLE mvno_order (order_id TEXT PRIMARY KEY, user_id INTEGER, status TEXT,
  esim_status TEXT, created_at TEXT, portin_status TEXT, portin_response TEXT,
  portin_updated_at TEXT);
CREATE TABLE user_onboarding_flow (order_id TEXT PRIMARY KEY, payment_completed_time TEXT,
  activation_completed_time TEXT);
CREATE TABLE conversations (id TEXT PRIMARY KEY, user_id INTEGER, created_at TEXT,
  escalated_at TEXT);
CREATE TABLE zendesk_tickets (id TEXT PRIMARY KEY, requester_id INTEGER, created_at TEXT,
  solved_at TEXT);
CREATE TABLE network_outages (outage_id TEXT, zip TEXT, started_at TEXT, resolved_at TEXT);
"""

INDEXES = """
CREATE INDEX mvno_order_user ON mvno_order(user_id);
CREATE INDEX zendesk_users_email ON zendesk_users(email);
CREATE INDEX conversations_user ON conversations(user_id, created_at);
CREATE INDEX conversations_escalated ON conversations(escalated_at) WHERE escalated_at IS NOT NULL;
CREATE INDEX zendesk_tickets_requester ON zendesk_tickets(requester_id, created_at);
CREATE INDEX stripe_customers_zip ON stripe_customers(zip);
"""

TABLES = ["stripe_customers", "zendesk_users", "mvno_order", "user_onboarding_flow",
          "conversations", "zendesk_tickets", "network_outages"]

# signal -> (the seed's schedule, scans per day, query).  ":now" is CURRENT_TIMESTAMP.
QUERIES = {
    "SIG-001": ("every 15 min", 96, """
SELECT sc.customer_email
FROM stripe_customers sc
JOIN mvno_order o ON sc.user_id = o.user_id
JOIN user_onboarding_flow uf ON o.order_id = uf.order_id
WHERE UPPER(o.esim_status) = 'PENDING'
  AND uf.payment_completed_time IS NOT NULL
  AND uf.activation_completed_time IS NULL
  AND (julianday(:now) - julianday(uf.payment_completed_time)) * 24 > 48"""),
    "SIG-002": ("real-time on status change (polled every 15 min)", 96, """
SELECT sc.customer_email
FROM stripe_customers sc
JOIN mvno_order o ON sc.user_id = o.user_id
WHERE UPPER(o.esim_status) IN ('ERROR', 'FAILED')
  AND julianday(o.created_at) > julianday(:now) - 7"""),
    "SIG-003": ("every 30 min", 48, """
SELECT sc.customer_email
FROM stripe_customers sc
JOIN mvno_order o ON sc.user_id = o.user_id
LEFT JOIN user_onboarding_flow uf ON o.order_id = uf.order_id
WHERE uf.payment_completed_time IS NULL
  AND (julianday(:now) - julianday(o.created_at)) * 24 > 2"""),
    "SIG-004": ("real-time on status change (polled every 15 min)", 96, """
SELECT sc.customer_email
FROM stripe_customers sc
JOIN mvno_order o ON sc.user_id = o.user_id
WHERE UPPER(o.portin_response) LIKE '%FAILED%'
   OR UPPER(o.portin_response) LIKE '%REJECTED%'
   OR UPPER(o.portin_status) IN ('FAILED', 'REJECTED')"""),
    "SIG-005": ("every 1 h", 24, """
SELECT sc.customer_email
FROM stripe_customers sc
JOIN mvno_order o ON sc.user_id = o.user_id
WHERE UPPER(o.portin_status) = 'SUBMITTED'
  AND (julianday(:now) - julianday(o.portin_updated_at)) * 24 > 72"""),
    "SIG-006": ("every 1 h", 24, """
SELECT sc.customer_email
FROM stripe_customers sc
JOIN mvno_order o ON sc.user_id = o.user_id
WHERE (o.status IS NULL OR UPPER(o.status) != 'COMPLETED')
  AND (julianday(:now) - julianday(o.created_at)) * 24 > 24"""),
    "SIG-007": ("every 30 min", 48, """
WITH esc AS (
  SELECT user_id, MAX(escalated_at) AS escalated_at
  FROM conversations WHERE escalated_at IS NOT NULL GROUP BY user_id)
SELECT sc.customer_email
FROM esc JOIN stripe_customers sc ON sc.user_id = esc.user_id
WHERE (julianday(:now) - julianday(esc.escalated_at)) * 24 > 2
  AND NOT EXISTS (
    SELECT 1 FROM zendesk_tickets zt
    WHERE zt.requester_id IN (SELECT id FROM zendesk_users zu WHERE zu.email = sc.customer_email)
      AND julianday(zt.created_at) >= julianday(esc.escalated_at))"""),
    "SIG-008": ("on every new contact (polled every 15 min)", 96, """
WITH touches AS (
  SELECT sc.customer_email, sc.customer_name,
    (SELECT COUNT(*) FROM zendesk_tickets zt
     WHERE zt.requester_id IN (SELECT id FROM zendesk_users zu WHERE zu.email = sc.customer_email)
     AND julianday(zt.created_at) > julianday(:now) - 7) AS ticket_count,
    (SELECT COUNT(*) FROM conversations c
     WHERE c.user_id = sc.user_id
     AND julianday(c.created_at) > julianday(:now) - 7) AS mochi_count
  FROM stripe_customers sc
)
SELECT customer_email
FROM touches
WHERE (ticket_count + mochi_count) >= 3"""),
    "SIG-009": ("daily", 1, """
SELECT sc.customer_email
FROM stripe_customers sc
JOIN mvno_order o ON sc.user_id = o.user_id
JOIN user_onboarding_flow uf ON o.order_id = uf.order_id
WHERE uf.payment_completed_time IS NOT NULL
  AND uf.activation_completed_time IS NULL
  AND julianday(:now) - julianday(uf.payment_completed_time) >= 7
  AND NOT EXISTS (
    SELECT 1 FROM conversations c
    WHERE c.user_id = sc.user_id
    AND julianday(c.created_at) > julianday(:now) - 7)
  AND NOT EXISTS (
    SELECT 1 FROM zendesk_tickets zt
    WHERE zt.requester_id IN (SELECT id FROM zendesk_users zu WHERE zu.email = sc.customer_email)
    AND julianday(zt.created_at) > julianday(:now) - 7)"""),
    "SIG-010": ("on outage detection (polled every 15 min)", 96, """
SELECT sc.customer_email
FROM stripe_customers sc
JOIN network_outages n ON n.zip = sc.zip
WHERE julianday(n.started_at) <= julianday(:now)
  AND (n.resolved_at IS NULL OR julianday(n.resolved_at) > julianday(:now))
  AND (EXISTS (
         SELECT 1 FROM zendesk_tickets zt
         WHERE zt.requester_id IN (SELECT id FROM zendesk_users zu WHERE zu.email = sc.customer_email)
           AND zt.solved_at IS NULL)
       OR EXISTS (
         SELECT 1 FROM conversations c
         WHERE c.user_id = sc.user_id
           AND julianday(c.created_at) > julianday(:now) - 1))"""),
}


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        "%03dZ" % (ms % 1000)


def load(db, directory, snap):
    for t in TABLES:
        with open("%s/%s.%d.tsv" % (directory, t, snap)) as f:
            rows = ([None if v == "\\N" else v for v in line.rstrip("\n").split("\t")] for line in f)
            ncols = len(db.execute("SELECT * FROM %s LIMIT 0" % t).description)
            db.executemany("INSERT INTO %s VALUES (%s)" % (t, ",".join("?" * ncols)), rows)


def main():
    directory, snaps_arg, out_path = sys.argv[1:4]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    snaps = [int(s) for s in snaps_arg.split(",")]
    matches, result = {}, {"sqlite": sqlite3.sqlite_version, "snapshots": {}}
    for i, snap in enumerate(snaps):
        db = sqlite3.connect(":memory:")
        db.executescript(SCHEMA)
        t0 = time.perf_counter()
        load(db, directory, snap)
        db.executescript(INDEXES)
        db.execute("ANALYZE")
        load_s = time.perf_counter() - t0
        rows = {t: db.execute("SELECT count(*) FROM %s" % t).fetchone()[0] for t in TABLES}
        m, cpu, wall = {}, {}, {}
        for sig, (_, _, sql) in QUERIES.items():
            best_c = best_w = None
            runs = repeat if i == len(snaps) - 1 else 1
            for _ in range(runs):
                c0, w0 = time.process_time(), time.perf_counter()
                got = [r[0] for r in db.execute(sql, {"now": iso(snap)})]
                c1, w1 = time.process_time() - c0, time.perf_counter() - w0
                best_c = c1 if best_c is None else min(best_c, c1)
                best_w = w1 if best_w is None else min(best_w, w1)
            m[sig] = got
            cpu[sig], wall[sig] = best_c, best_w
        matches[str(snap)] = m
        result["snapshots"][str(snap)] = {"load_s": load_s, "rows": rows, "cpu_s": cpu,
                                          "wall_s": wall}
        db.close()
    last = result["snapshots"][str(snaps[-1])]
    result["scan_cpu_s"] = sum(last["cpu_s"].values())
    result["scan_wall_s"] = sum(last["wall_s"].values())
    result["schedule"] = {s: {"when": q[0], "scans_per_day": q[1]} for s, q in QUERIES.items()}
    result["cpu_per_day_s"] = sum(QUERIES[s][1] * last["cpu_s"][s] for s in QUERIES)
    result["scans_per_day"] = sum(q[1] for q in QUERIES.values())
    with open(out_path, "w") as f:
        json.dump(matches, f)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
