/*
 * pgx.c -- the cluster's PostgreSQL helpers and schema (pgx.h).
 */
#include "cluster/pgx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/delivery.h"
#include "orchestrate/orchestrate.h"
#include "store/messages.h"
#include "util/buf.h"
#include "util/log.h"

PGconn *pgx_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        log_error("cluster: PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    return c;
}

PGresult *pgx_exec(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        log_error("cluster: PostgreSQL: %s", PQerrorMessage(c));
        PQclear(r);
        return NULL;
    }
    return r;
}

int pgx_run(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = pgx_exec(c, sql, n, params);
    PQclear(r);
    return r ? 0 : -1;
}

static const char *const schema[] = {
    "CREATE TABLE IF NOT EXISTS fw_meta (k text PRIMARY KEY, v text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fw_partitions ("
    " p int PRIMARY KEY, epoch bigint NOT NULL DEFAULT 0, owner text,"
    " applied_seq bigint NOT NULL DEFAULT 0, clock bigint,"
    " checkpoint_seq bigint NOT NULL DEFAULT 0, checkpoint bytea, checkpoint_at bigint)",
    "CREATE TABLE IF NOT EXISTS fw_groups ("
    " p int NOT NULL, last_seq bigint NOT NULL, applied_at bigint NOT NULL,"
    " PRIMARY KEY (p, last_seq))",
    "CREATE TABLE IF NOT EXISTS fw_detections ("
    " signal text NOT NULL, customer text NOT NULL, state text NOT NULL, at bigint NOT NULL,"
    " fired_at bigint NOT NULL, p int NOT NULL, node text NOT NULL, line text NOT NULL,"
    " PRIMARY KEY (signal, customer, state, at))",
    "CREATE TABLE IF NOT EXISTS fw_outbox ("
    " id text PRIMARY KEY, key text NOT NULL UNIQUE, p int NOT NULL, customer text,"
    " audience text NOT NULL, channel text NOT NULL, status text NOT NULL, reason text,"
    " created_at bigint NOT NULL, send_at bigint NOT NULL, recipient text, subject text,"
    " body text, html text, signals text, meta text, explain text, line text NOT NULL,"
    " decided_by text NOT NULL, attempts int NOT NULL DEFAULT 0, claimed_by text,"
    " claimed_until bigint, sent_at bigint, sent_by text, last_error text)",
    "CREATE INDEX IF NOT EXISTS fw_outbox_due ON fw_outbox (send_at) WHERE status = 'scheduled'",
    "CREATE TABLE IF NOT EXISTS fw_systemic ("
    " p int NOT NULL, pseq bigint NOT NULL, at bigint NOT NULL, kind text NOT NULL,"
    " signal int, customer text, vals text, was text, now text, view text,"
    " dedup text NOT NULL UNIQUE, PRIMARY KEY (p, pseq))",
    "CREATE INDEX IF NOT EXISTS fw_systemic_order ON fw_systemic (at, p, pseq)",
    "CREATE TABLE IF NOT EXISTS fw_first (customer text PRIMARY KEY, at bigint NOT NULL,"
    " p int NOT NULL, pseq bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fw_global ("
    " id int PRIMARY KEY, pos text NOT NULL, lines bigint NOT NULL, state bytea)",
    "CREATE TABLE IF NOT EXISTS fw_views (customer text PRIMARY KEY, view text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fw_incidents (n bigint PRIMARY KEY, id bigint NOT NULL,"
    " update text NOT NULL, at bigint NOT NULL, line text NOT NULL)",
};

#define SCHEMA_VERSION "3"

/* Whether the tables of this version exist already (then no DDL: see pgx_schema). */
static int schema_current(PGconn *c)
{
    PGresult *r = pgx_exec(c, "SELECT to_regclass('fw_meta') IS NOT NULL", 0, NULL);
    int have = r && PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (!have)
        return 0;
    r = pgx_exec(c, "SELECT v FROM fw_meta WHERE k = 'schema'", 0, NULL);
    have = r && PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), SCHEMA_VERSION);
    PQclear(r);
    return have;
}

int pgx_schema(PGconn *c, unsigned partitions, char *why, size_t n)
{
    char lock[64], np[16];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%d, 0)", PGX_LOCK_SCHEMA);
    snprintf(np, sizeof np, "%u", partitions);
    /*
     * A node joining a running cluster runs no DDL: CREATE INDEX IF NOT
     * EXISTS takes a share lock on its table even when the index exists,
     * and with partitions writing to two such tables it could deadlock
     * with them (PostgreSQL then aborted the joining node's start).
     */
    int current = schema_current(c);
    if (pgx_run(c, "BEGIN", 0, NULL) || pgx_run(c, lock, 0, NULL))
        goto fail;
    for (size_t i = 0; !current && i < sizeof schema / sizeof *schema; i++)
        if (pgx_run(c, schema[i], 0, NULL))
            goto fail;
    const char *pv[] = {SCHEMA_VERSION};
    if (!current && pgx_run(c,
                            "INSERT INTO fw_meta (k, v) VALUES ('schema', $1) ON CONFLICT (k) DO "
                            "UPDATE SET v = $1",
                            1, pv))
        goto fail;
    const char *p1[] = {np};
    if (pgx_run(c, "INSERT INTO fw_meta (k, v) VALUES ('partitions', $1) ON CONFLICT DO NOTHING",
                1, p1))
        goto fail;
    PGresult *r = pgx_exec(c, "SELECT v FROM fw_meta WHERE k = 'partitions'", 0, NULL);
    if (!r)
        goto fail;
    int same = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), np);
    if (!same)
        snprintf(why, n, "the database was set up for %s partitions; this node says %u",
                 PQntuples(r) ? PQgetvalue(r, 0, 0) : "?", partitions);
    PQclear(r);
    if (!same) {
        pgx_run(c, "ROLLBACK", 0, NULL);
        return -1;
    }
    if (pgx_run(c,
                "INSERT INTO fw_partitions (p) SELECT g FROM generate_series(0, $1::int - 1) g "
                "ON CONFLICT DO NOTHING",
                1, p1) ||
        pgx_run(c, "COMMIT", 0, NULL))
        goto fail;
    return 0;
fail:
    snprintf(why, n, "%s", PQerrorMessage(c));
    pgx_run(c, "ROLLBACK", 0, NULL);
    return -1;
}

int pgx_outbox_insert(PGconn *c, const struct delivery_config *dc, const struct outbox_msg *m,
                      int p, const char *node, int *scheduled)
{
    struct outbox_msg local = *m;
    char why[128];
    if (!strcmp(m->status, "scheduled") && !delivery_channel_active(dc, m->channel)) {
        local.status = "stored";
        snprintf(why, sizeof why, "no connector configured for %s: rendered and kept, not sent",
                 m->channel);
        local.reason = why;
    }
    struct buf line;
    buf_init(&line, 0);
    orch_message_json(&local, &line);
    char ps[16], created[24], send[24];
    snprintf(ps, sizeof ps, "%d", p);
    snprintf(created, sizeof created, "%lld", (long long)local.created_at);
    snprintf(send, sizeof send, "%lld", (long long)local.send_at);
    const char *v[] = {local.id,      local.key,     ps,           local.customer,
                       local.audience, local.channel, local.status, local.reason,
                       created,       send,          local.recipient, local.subject,
                       local.body,    local.html,    local.signals, local.meta,
                       local.explain, line.data,     node};
    int rc = pgx_run(c,
                     "INSERT INTO fw_outbox (id, key, p, customer, audience, channel, status,"
                     " reason, created_at, send_at, recipient, subject, body, html, signals, meta,"
                     " explain, line, decided_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
                     " $11, $12, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT DO NOTHING",
                     19, v);
    buf_cleanup(&line);
    if (!rc && scheduled)
        *scheduled = !strcmp(local.status, "scheduled");
    return rc;
}
