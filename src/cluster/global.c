/*
 * global.c -- the cluster's incidents (cluster_int.h, "The global role").
 *
 * A systemic incident spans partitions, so one node keeps them: whichever
 * holds the advisory lock PGX_LOCK_GLOBAL (every node tries; when its holder
 * dies, its session and the lock go with it, and another takes the role).
 * Partitions write what would feed incidents as fw_systemic rows in their
 * own transactions (part.c); the holder reads them in time order, ties in
 * the order the customers were first seen (one engine's order of a global
 * event's passes; fw_first), then partition and number, but only below the
 * watermark, the oldest clock of all partitions: a partition's clock is
 * where its committed work stands, so no row can still come that sorts
 * before it.  Each batch is one transaction:
 * the incident lines (fw_incidents), the engineering alert of each incident
 * that opens (fw_outbox), the members' views (fw_views), the position
 * reached and the incidents' state (fw_global), so a new holder goes on
 * exactly where the last one committed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster_int.h"
#include "cluster/pgx.h"
#include "delivery/delivery.h"
#include "engine/incident.h"
#include "orchestrate/orchestrate.h"
#include "rules/rules.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"
#include "util/wire.h"

struct cglobal {
    struct cnode *nd;
    pthread_t thread;
    atomic_int stop, held;
    PGconn *db;
    struct rules rules;
    struct orch *o;
    struct incidents inc;
    int have_inc;
    /* The position reached: the order key of the last row fed (below), and lines written. */
    int64_t pos[6], lines;
    int failed;
    struct buf line;
};

static void fail(struct cglobal *g, const char *what)
{
    if (!g->failed)
        log_error("cluster: incidents: %s", what);
    g->failed = 1;
}

/* ---- what an incident change writes ---- */

static void g_message(void *ctx, const struct outbox_msg *m)
{
    struct cglobal *g = ctx;
    if (pgx_outbox_insert(g->db, &g->nd->cfg->delivery, m, -1, g->nd->cc->node, NULL))
        fail(g, "an incident alert was not stored");
}

static void g_incident(void *ctx, const struct incident *i)
{
    struct cglobal *g = ctx;
    buf_reset(&g->line);
    incident_json(i, 0, &g->line);
    char n[24], id[24], at[24];
    snprintf(n, sizeof n, "%" PRId64, ++g->lines);
    snprintf(id, sizeof id, "%" PRIu64, i->id);
    snprintf(at, sizeof at, "%" PRId64, i->at);
    const char *v[] = {n, id, i->update, at, g->line.data};
    if (pgx_run(g->db,
                "INSERT INTO fw_incidents (n, id, update, at, line) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT DO NOTHING",
                5, v))
        fail(g, "an incident line was not stored");
    if (!g->o || strcmp(i->update, "opened"))
        return;
    /* The alert names each member with its view as its partition last sent it. */
    struct orch_view *views = xcalloc(i->ncustomers + 1, sizeof *views);
    for (size_t k = 0; k < i->ncustomers; k++) {
        const char *c1[] = {i->customers[k]};
        PGresult *r = pgx_exec(g->db, "SELECT view FROM fw_views WHERE customer = $1", 1, c1);
        json_t *j = r && PQntuples(r) ? fw_json_loadb(PQgetvalue(r, 0, 0),
                                                      (size_t)PQgetlength(r, 0, 0), 0, NULL)
                                      : NULL;
        const char *o = json_string_value(json_object_get(j, "order"));
        const char *s = json_string_value(json_object_get(j, "status"));
        if (o) {
            snprintf(views[k].order, sizeof views[k].order, "%s", o);
            views[k].has_order = 1;
        }
        if (s) {
            snprintf(views[k].status, sizeof views[k].status, "%s", s);
            views[k].has_status = 1;
        }
        json_decref(j);
        PQclear(r);
    }
    orch_incident_alert(g->o, i, views);
    free(views);
}

/* ---- state ---- */

static void drop(struct cglobal *g)
{
    if (g->have_inc)
        incidents_cleanup(&g->inc);
    g->have_inc = 0;
}

/* Load the position and the incidents' state the last holder committed. */
static int load(struct cglobal *g)
{
    drop(g);
    incidents_init(&g->inc, &g->rules);
    g->have_inc = 1;
    for (int k = 0; k < 6; k++)
        g->pos[k] = k ? -1 : INT64_MIN;
    g->lines = 0;
    PGresult *r = PQexecParams(g->db, "SELECT pos, lines::text, state FROM fw_global WHERE id = 1",
                               0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    int rc = 0;
    if (PQntuples(r) == 1) {
        char text[200];
        snprintf(text, sizeof text, "%.*s", PQgetlength(r, 0, 0), PQgetvalue(r, 0, 0));
        char *q = text;
        for (int k = 0; k < 6; k++)
            g->pos[k] = strtoll(q, &q, 10), q += *q == ',';
        char lines[32];
        snprintf(lines, sizeof lines, "%.*s", PQgetlength(r, 0, 1), PQgetvalue(r, 0, 1));
        g->lines = strtoll(lines, NULL, 10);
        struct wire_rd in;
        wire_rd_init(&in, PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2));
        if (incidents_read(&g->inc, &in) || incidents_read_counts(&g->inc, &in) ||
            in.off != in.n) {
            log_error("cluster: incidents: the stored state does not load");
            rc = -1;
        }
    }
    PQclear(r);
    return rc;
}

static int save(struct cglobal *g)
{
    struct buf b;
    buf_init(&b, 0);
    incidents_write(&g->inc, &b);
    incidents_write_counts(&g->inc, &b);
    char pos[200], ln[24];
    snprintf(pos, sizeof pos, "%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64,
             g->pos[0], g->pos[1], g->pos[2], g->pos[3], g->pos[4], g->pos[5]);
    snprintf(ln, sizeof ln, "%" PRId64, g->lines);
    const char *v[] = {pos, ln, b.data ? b.data : ""};
    int lens[] = {0, 0, (int)b.len}, fmts[] = {0, 0, 1};
    PGresult *r = PQexecParams(g->db,
                               "INSERT INTO fw_global (id, pos, lines, state) VALUES (1, $1, $2, $3) "
                               "ON CONFLICT (id) DO UPDATE SET pos = $1, lines = $2, state = $3",
                               3, NULL, v, lens, fmts, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        log_error("cluster: incidents: state not saved: %s", PQerrorMessage(g->db));
    PQclear(r);
    buf_cleanup(&b);
    return ok ? 0 : -1;
}

/* ---- one batch ---- */

static void feed(struct cglobal *g, PGresult *r, int row)
{
    const char *kind = PQgetvalue(r, row, 3);
    int has_sig = !PQgetisnull(r, row, 4);
    long s = has_sig ? atol(PQgetvalue(r, row, 4)) : -1;
    const char *customer = PQgetisnull(r, row, 5) ? NULL : PQgetvalue(r, row, 5);
    int64_t at = strtoll(PQgetvalue(r, row, 0), NULL, 10);
    struct engine_sink sink = {.ctx = g, .incident = g_incident};
    if (!PQgetisnull(r, row, 9) && customer) {
        const char *v[] = {customer, PQgetvalue(r, row, 9)};
        if (pgx_run(g->db,
                    "INSERT INTO fw_views (customer, view) VALUES ($1, $2) ON CONFLICT (customer) "
                    "DO UPDATE SET view = $2",
                    2, v))
            fail(g, "a view was not stored");
    }
    if (!strcmp(kind, "added")) {
        incidents_customer_added(&g->inc);
    } else if (!strcmp(kind, "factor") && s >= 0) {
        incidents_count_change(&g->inc, (size_t)s,
                               PQgetisnull(r, row, 7) ? NULL : PQgetvalue(r, row, 7),
                               PQgetisnull(r, row, 8) ? NULL : PQgetvalue(r, row, 8));
    } else if (!strcmp(kind, "fired") && s >= 0 && (size_t)s < g->rules.nsignals && customer) {
        const struct rule_signal *sig = &g->rules.signals[s];
        char **values = xcalloc(sig->nfactors + 1, sizeof *values);
        json_t *a = fw_json_loadb(PQgetvalue(r, row, 6), (size_t)PQgetlength(r, row, 6), 0, NULL);
        for (size_t f = 0; f < sig->nfactors; f++) {
            const char *t = json_string_value(json_array_get(a, f));
            values[f] = t ? xstrdup(t) : NULL;
        }
        json_decref(a);
        incidents_fired_values(&g->inc, &sink, sig, (size_t)s, customer, values, at);
    } else if (!strcmp(kind, "resolved") && s >= 0 && (size_t)s < g->rules.nsignals && customer) {
        incidents_resolved(&g->inc, &sink, &g->rules.signals[s], (size_t)s, customer, at);
    }
}

/* Feed what lies below the watermark: 1 when rows were fed, 0 when none, -1 on failure. */
static int step(struct cglobal *g)
{
    PGresult *w = pgx_exec(g->db,
                           "SELECT min(coalesce(clock, -9223372036854775808))::text, count(*) "
                           "FROM fw_partitions",
                           0, NULL);
    if (!w)
        return -1;
    char mark[32];
    snprintf(mark, sizeof mark, "%s", PQgetvalue(w, 0, 0));
    PQclear(w);
    char k[6][24];
    for (int i = 0; i < 6; i++)
        snprintf(k[i], sizeof k[i], "%" PRId64, g->pos[i]);
    const char *v[] = {k[0], k[1], k[2], k[3], k[4], k[5], mark};
    PGresult *r = pgx_exec(
        g->db,
        "SELECT s.at, s.p, s.pseq, s.kind, s.signal, s.customer, s.vals, s.was, s.now, s.view, "
        "coalesce(f.at, s.at), coalesce(f.p, s.p), coalesce(f.pseq, s.pseq) "
        "FROM fw_systemic s LEFT JOIN fw_first f ON f.customer = s.customer "
        "WHERE s.at >= $1::bigint AND s.at < $7::bigint AND (s.at, coalesce(f.at, s.at), "
        "coalesce(f.p, s.p), coalesce(f.pseq, s.pseq), s.p, s.pseq) > ($1::bigint, $2::bigint, "
        "$3::bigint, $4::bigint, $5::bigint, $6::bigint) "
        "ORDER BY 1, 11, 12, 13, 2, 3 LIMIT 2000",
        7, v);
    if (!r)
        return -1;
    int n = PQntuples(r);
    if (!n) {
        PQclear(r);
        return 0;
    }
    g->failed = 0;
    if (pgx_run(g->db, "BEGIN", 0, NULL)) {
        PQclear(r);
        return -1;
    }
    for (int i = 0; i < n && !g->failed; i++) {
        feed(g, r, i);
        static const int col[6] = {0, 10, 11, 12, 1, 2}; /* the order key, as selected */
        for (int j = 0; j < 6; j++)
            g->pos[j] = strtoll(PQgetvalue(r, i, col[j]), NULL, 10);
    }
    PQclear(r);
    /* Still the holder?  The lock is this session's: a lost session rolls back. */
    if (g->failed || save(g) || pgx_run(g->db, "NOTIFY fw_outbox", 0, NULL) ||
        pgx_run(g->db, "COMMIT", 0, NULL)) {
        pgx_run(g->db, "ROLLBACK", 0, NULL);
        return -1;
    }
    return 1;
}

static void nap(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *global_main(void *arg)
{
    struct cglobal *g = arg;
    while (!atomic_load(&g->stop)) {
        if (!g->db || PQstatus(g->db) != CONNECTION_OK) {
            if (g->db)
                PQfinish(g->db);
            atomic_store(&g->held, 0);
            g->db = pgx_connect(g->nd->cc->postgres);
            if (!g->db) {
                nap(1000);
                continue;
            }
        }
        if (!atomic_load(&g->held)) {
            char q[96];
            snprintf(q, sizeof q, "SELECT pg_try_advisory_lock(%d, 0)", PGX_LOCK_GLOBAL);
            PGresult *r = pgx_exec(g->db, q, 0, NULL);
            int got = r && PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
            PQclear(r);
            if (!got) {
                nap(500);
                continue;
            }
            if (load(g)) {
                /* Not able to go on from where the last holder stopped: let another try. */
                PQfinish(g->db);
                g->db = NULL;
                nap(1000);
                continue;
            }
            atomic_store(&g->held, 1);
            log_info("cluster: this node keeps the incidents (%" PRId64 " lines so far)", g->lines);
        }
        int rc = step(g);
        if (rc < 0) {
            log_warn("cluster: incidents: a batch failed; starting again from the stored state");
            if (g->db && PQstatus(g->db) == CONNECTION_OK && load(g) == 0)
                continue;
            PQfinish(g->db);
            g->db = NULL;
            atomic_store(&g->held, 0);
        }
        if (rc == 0)
            nap(100);
    }
    drop(g);
    if (g->db)
        PQfinish(g->db);
    g->db = NULL;
    return NULL;
}

struct cglobal *cglobal_start(struct cnode *nd)
{
    struct cglobal *g = xcalloc(1, sizeof *g);
    g->nd = nd;
    buf_init(&g->line, 0);
    rules_init(&g->rules);
    if (nd->nrule_files == 0)
        rules_add_builtin(&g->rules);
    for (size_t i = 0; i < nd->nrule_files; i++)
        rules_add_file(&g->rules, nd->rule_files[i]);
    if (rules_finish(&g->rules))
        abort(); /* the same files loaded a moment ago */
    if (nd->templates) {
        struct orch_sink os = {.ctx = g, .message = g_message};
        g->o = orch_new(&nd->cfg->orch, nd->templates, &os);
        orch_bind_rules(g->o, &g->rules);
    }
    if (pthread_create(&g->thread, NULL, global_main, g))
        abort();
    return g;
}

int cglobal_held(struct cglobal *g) { return atomic_load(&g->held); }

void cglobal_stop(struct cglobal *g)
{
    if (!g)
        return;
    atomic_store(&g->stop, 1);
    pthread_join(g->thread, NULL);
    orch_free(g->o);
    rules_cleanup(&g->rules);
    buf_cleanup(&g->line);
    free(g);
}
