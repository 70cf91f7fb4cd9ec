/*
 * part.c -- one partition owned by this node (cluster_int.h): its engine
 * and orchestrator, fed from the partition's subject of the stream.
 *
 * Taking it over: bump the partition's epoch (every later write checks
 * it, so a former owner that is still running can write nothing), load
 * its checkpoint, subscribe from the stream position after it, and replay
 * quietly up to the position the former owner's committed work covers
 * (applied_seq): what that replay decides again is already stored, so it
 * only rebuilds memory, at the times the groups were applied (fw_groups)
 * or, with a virtual clock, at event time.  Then live: each fetched group
 * of events is applied and what it decides written in one transaction
 * together with the new applied_seq, and only then acknowledged; wake-ups
 * that fall due between groups are committed the same way.  A timer that
 * fell due while nobody owned the partition fires once, at takeover.
 * Writes are idempotent (detections keyed by what they are, messages by
 * their idempotency key), so a decision made again after a failover is
 * stored once and delivered once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster_int.h"
#include "cluster/pgx.h"
#include "delivery/delivery.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "orchestrate/orchestrate.h"
#include "rules/rules.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/log.h"
#include "util/map.h"
#include "util/util.h"
#include "util/wire.h"

#define CLOCK_TYPE "forewarn.clock" /* a move of the virtual clock, sent to every partition */
#define CKPT_MAGIC "FWCKPT01"
#define CKPT_FORMAT 1u
#define FETCH_MAX 256

struct group {
    uint64_t last_seq;
    int64_t applied_at;
};

struct cpart {
    struct cnode *nd;
    unsigned p;
    pthread_t thread;
    atomic_int stop, running;
    pthread_mutex_t mu; /* guards st */
    struct cpart_stats st;
    /* The thread's own. */
    PGconn *db;
    struct rules rules;
    int have_rules;
    struct engine *e;
    struct orch *o;
    int64_t epoch;
    int quiet;             /* replaying what the former owner committed: write nothing */
    int failed;            /* a write of the open transaction failed */
    int scheduled;         /* the open transaction stored a message to send */
    int64_t last_applied;  /* wall clock: group times never go backwards */
    uint64_t replay_to;    /* events up to this stream position are replayed quietly */
    uint64_t checkpoint_seq;
    struct group *groups;  /* wall clock: groups after the checkpoint, in order */
    size_t ngroups, gi;
    struct buf line;
    /* Incidents (global.c) hear of systemic firings through fw_systemic, in commit order. */
    int64_t pseq;          /* the partition's last fw_systemic row */
    struct strmap views;   /* customers that fired a systemic signal -> their last view (text) */
    int64_t idle_commit;   /* wall clock: when an idle partition last moved its clock (mono ns) */
    const char *applying;  /* the subject of the event being applied (its factor moves' customer) */
};

/* ---- the sinks: rows in the open transaction ---- */

static void sql_fail(struct cpart *c, const char *what)
{
    if (!c->failed)
        log_error("cluster: partition %u: %s", c->p, what);
    c->failed = 1;
}

static void sink_detection(void *ctx, const struct detection *d)
{
    struct cpart *c = ctx;
    if (c->quiet)
        return;
    char at[24], fired[24], p[16];
    snprintf(at, sizeof at, "%" PRId64, d->at);
    snprintf(fired, sizeof fired, "%" PRId64, d->fired_at);
    snprintf(p, sizeof p, "%u", c->p);
    buf_reset(&c->line);
    detection_json(d, &c->line);
    const char *v[] = {d->signal->id, d->customer, d->firing ? "firing" : "resolved",
                       at,           fired,       p,
                       c->nd->cc->node, c->line.data};
    if (pgx_run(c->db,
                "INSERT INTO fw_detections (signal, customer, state, at, fired_at, p, node, line) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                8, v))
        sql_fail(c, "a detection was not stored");
}

static void sink_retract(void *ctx, const struct detection *d)
{
    struct cpart *c = ctx;
    if (c->quiet)
        return;
    char at[24];
    snprintf(at, sizeof at, "%" PRId64, d->at);
    const char *v[] = {d->signal->id, d->customer, d->firing ? "firing" : "resolved", at};
    if (pgx_run(c->db,
                "DELETE FROM fw_detections WHERE signal = $1 AND customer = $2 AND state = $3 "
                "AND at = $4",
                4, v))
        sql_fail(c, "a withdrawn detection was not removed");
}

static void sink_message(void *ctx, const struct outbox_msg *m)
{
    struct cpart *c = ctx;
    if (c->quiet)
        return;
    int scheduled = 0;
    if (pgx_outbox_insert(c->db, &c->nd->cfg->delivery, m, (int)c->p, c->nd->cc->node,
                          &scheduled))
        sql_fail(c, "a message was not stored");
    else if (scheduled)
        c->scheduled = 1;
}

static int sink_stored_status(void *ctx, const char *key, char *status, size_t n)
{
    struct cpart *c = ctx;
    const char *v[] = {key};
    PGresult *r = pgx_exec(c->db, "SELECT status FROM fw_outbox WHERE key = $1", 1, v);
    int rc = r && PQntuples(r) == 1 ? 0 : FW_ENOTFOUND;
    if (!rc)
        snprintf(status, n, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

/*
 * Incidents span partitions: a partition keeps none.  What would feed them
 * (systemic firings and resolutions with the factor values, new customers,
 * moves of a factor value, and each member's view for the engineering
 * alert) becomes fw_systemic rows in the open transaction, numbered per
 * partition; the node holding the global role (global.c) feeds them to one
 * struct incidents in time order.  A row a takeover derives again (a
 * wake-up's firing) has the same dedup key and is stored once; rows that
 * come from events are never derived twice, and are keyed by their number.
 */
static void sys_row(struct cpart *c, const char *kind, long sig, const char *customer, int64_t at,
                    const char *vals, const char *was, const char *now, const char *view,
                    int natural)
{
    if (c->quiet)
        return;
    char p[16], ps[24], a[24], sg[24], key[600];
    c->pseq++;
    snprintf(p, sizeof p, "%u", c->p);
    snprintf(ps, sizeof ps, "%" PRId64, c->pseq);
    snprintf(a, sizeof a, "%" PRId64, at);
    snprintf(sg, sizeof sg, "%ld", sig);
    if (natural)
        snprintf(key, sizeof key, "%s|%ld|%s|%" PRId64, kind, sig, customer ? customer : "", at);
    else
        snprintf(key, sizeof key, "%s|%u|%" PRId64, kind, c->p, c->pseq);
    const char *v[] = {p, ps, a, kind, sig >= 0 ? sg : NULL, customer, vals, was, now, view, key};
    if (pgx_run(c->db,
                "INSERT INTO fw_systemic (p, pseq, at, kind, signal, customer, vals, was, now, view,"
                " dedup) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                "ON CONFLICT (dedup) DO NOTHING",
                11, v))
        sql_fail(c, "a systemic row was not stored");
}

/* The customer's view for an incident alert, as JSON text, or NULL without an orchestrator. */
static char *view_text(struct cpart *c, const char *customer)
{
    if (!c->o)
        return NULL;
    struct orch_view v;
    orch_member_view(c->o, customer, &v);
    json_t *j = json_pack("{s:s?, s:s?}", "order", v.has_order ? v.order : NULL, "status",
                          v.has_status ? v.status : NULL);
    char *t = fw_json_dumps(j);
    json_decref(j);
    return t;
}

static void tr_begin(void *ctx, uint32_t cust, int64_t due) { (void)ctx, (void)cust, (void)due; }
static void tr_armed(void *ctx, uint32_t cust) { (void)ctx, (void)cust; }

static void tr_added(void *ctx, uint32_t cust)
{
    struct cpart *c = ctx;
    const char *key = engine_customer_key(c->e, cust);
    sys_row(c, "added", -1, key, engine_now(c->e), NULL, NULL, NULL, NULL, 1);
    if (c->quiet)
        return;
    /* Where the customer was first seen: one engine's order of a global event's passes. */
    char p[16], ps[24], a[24];
    snprintf(p, sizeof p, "%u", c->p);
    snprintf(ps, sizeof ps, "%" PRId64, c->pseq);
    snprintf(a, sizeof a, "%" PRId64, engine_now(c->e));
    const char *v[] = {key, a, p, ps};
    if (pgx_run(c->db,
                "INSERT INTO fw_first (customer, at, p, pseq) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING",
                4, v))
        sql_fail(c, "a first sighting was not stored");
}

static void tr_fired(void *ctx, size_t s, const char *customer, char **values, int64_t now)
{
    struct cpart *c = ctx;
    json_t *a = json_array();
    for (size_t i = 0; i < c->rules.signals[s].nfactors; i++) {
        json_array_append_new(a, values[i] ? json_string(values[i]) : json_null());
        free(values[i]); /* one per factor key, NULL where the customer has none */
    }
    free(values);
    char *vals = fw_json_dumps(a), *view = view_text(c, customer);
    json_decref(a);
    sys_row(c, "fired", (long)s, customer, now, vals, NULL, NULL, view, 1);
    if (view) { /* a member from now on: its view follows its events (sink_step) */
        int created;
        struct strmap_entry *me = strmap_upsert(&c->views, customer, strlen(customer), &created);
        free(me->value);
        me->value = view;
    }
    free(vals);
}

static void tr_resolved(void *ctx, size_t s, const char *customer, int64_t now)
{
    sys_row(ctx, "resolved", (long)s, customer, now, NULL, NULL, NULL, NULL, 1);
}

static void tr_factor(void *ctx, size_t k, char *was, char *now)
{
    struct cpart *c = ctx;
    sys_row(c, "factor", (long)k, c->applying, engine_now(c->e), NULL, was, now, NULL, 0);
    free(was);
    free(now);
}

/* engine_sink.step: after a member's event, its view if it changed. */
static void sink_step(void *ctx, const struct event *ev, const char *customer)
{
    struct cpart *c = ctx;
    if (!ev || !customer)
        return;
    struct strmap_entry *me = strmap_find(&c->views, customer, strlen(customer));
    if (!me)
        return;
    char *view = view_text(c, customer);
    if (view && me->value && !strcmp(view, me->value)) {
        free(view);
        return;
    }
    sys_row(c, "view", -1, customer, engine_now(c->e), NULL, NULL, NULL, view, 0);
    free(me->value);
    me->value = view;
}

/* ---- the chain ---- */

static int chain_new(struct cpart *c)
{
    const struct config *cfg = c->nd->cfg;
    rules_init(&c->rules);
    c->have_rules = 1;
    if (c->nd->nrule_files == 0)
        rules_add_builtin(&c->rules);
    for (size_t i = 0; i < c->nd->nrule_files; i++)
        rules_add_file(&c->rules, c->nd->rule_files[i]);
    if (rules_finish(&c->rules)) {
        log_error("cluster: partition %u: the rules do not load", c->p);
        return -1;
    }
    struct engine_sink sink = {.ctx = c, .detection = sink_detection, .retract = sink_retract,
                               .step = sink_step};
    if (c->nd->templates) {
        struct orch_sink os = {.ctx = c, .message = sink_message,
                               .stored_status = sink_stored_status};
        c->o = orch_new(&cfg->orch, c->nd->templates, &os);
        sink = orch_engine_sink(c->o, &sink);
    }
    c->e = engine_new(&c->rules, 0, &sink);
    engine_set_health(c->e, &cfg->health);
    struct engine_trace tr = {.ctx = c,
                              .begin = tr_begin,
                              .armed = tr_armed,
                              .added = tr_added,
                              .fired = tr_fired,
                              .resolved = tr_resolved,
                              .factor = tr_factor};
    engine_set_trace(c->e, &tr);
    if (c->o)
        orch_bind(c->o, c->e);
    return 0;
}

static void views_clear(struct cpart *c)
{
    for (size_t i = 0; i < c->views.len; i++)
        free(c->views.entries[i].value);
    strmap_cleanup(&c->views);
    strmap_init(&c->views);
}

static void chain_free(struct cpart *c)
{
    views_clear(c);
    orch_free(c->o); /* cancels its timers: before the engine goes */
    engine_free(c->e);
    c->o = NULL;
    c->e = NULL;
    if (c->have_rules)
        rules_cleanup(&c->rules);
    c->have_rules = 0;
}

/* ---- checkpoints ---- */

static void ckpt_write(struct cpart *c, uint64_t seq)
{
    struct buf b;
    buf_init(&b, 0); /* no cap: a checkpoint is as large as the state */
    buf_append(&b, CKPT_MAGIC, 8);
    wire_put_u32(&b, CKPT_FORMAT);
    wire_put_u64(&b, c->nd->fingerprint);
    wire_put_u64(&b, seq);
    wire_put_i64(&b, c->last_applied);
    engine_snapshot(c->e, &b);
    wire_put_u8(&b, c->o != NULL);
    if (c->o)
        orch_snapshot(c->o, &b);
    engine_snapshot_end(c->e);
    wire_put_u64(&b, c->views.len); /* incident members and the view last sent of each */
    for (size_t i = 0; i < c->views.len; i++) {
        wire_put_str(&b, c->views.entries[i].key);
        wire_put_str(&b, c->views.entries[i].value ? c->views.entries[i].value : "");
    }
    wire_put_u32(&b, crc32c(0, b.data, b.len));
    char p[16], s[24], at[24], ep[24];
    snprintf(p, sizeof p, "%u", c->p);
    snprintf(s, sizeof s, "%" PRIu64, seq);
    snprintf(at, sizeof at, "%" PRId64, fw_wall_now());
    snprintf(ep, sizeof ep, "%" PRId64, c->epoch);
    const char *v[] = {b.data, s, at, p, ep};
    int lens[] = {(int)b.len, 0, 0, 0, 0}, fmts[] = {1, 0, 0, 0, 0};
    PGresult *r = PQexecParams(c->db,
                               "UPDATE fw_partitions SET checkpoint = $1, checkpoint_seq = $2,"
                               " checkpoint_at = $3 WHERE p = $4 AND epoch = $5",
                               5, NULL, v, lens, fmts, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        log_error("cluster: partition %u: checkpoint not written: %s", c->p,
                  PQerrorMessage(c->db));
    else if (strcmp(PQcmdTuples(r), "1"))
        log_warn("cluster: partition %u: checkpoint not written: another node owns it", c->p);
    else {
        c->checkpoint_seq = seq;
        log_info("cluster: partition %u: checkpoint at stream position %" PRIu64 " (%zu bytes, "
                 "%zu customers)",
                 c->p, seq, b.len, engine_customer_count(c->e));
    }
    PQclear(r);
    buf_cleanup(&b);
}

/* Load a checkpoint into the fresh chain: 0 with its stream position, or -1 with why. */
static int ckpt_load(struct cpart *c, const char *data, size_t len, uint64_t *seq, char *why,
                     size_t n)
{
    if (len < 8 + 4 + 8 + 8 + 8 + 4 || memcmp(data, CKPT_MAGIC, 8)) {
        snprintf(why, n, "not a checkpoint");
        return -1;
    }
    struct wire_rd tail;
    wire_rd_init(&tail, data + len - 4, 4);
    if (crc32c(0, data, len - 4) != wire_get_u32(&tail)) {
        snprintf(why, n, "its checksum does not match (torn or corrupt)");
        return -1;
    }
    struct wire_rd in;
    wire_rd_init(&in, data + 8, len - 12);
    if (wire_get_u32(&in) != CKPT_FORMAT) {
        snprintf(why, n, "written by another version");
        return -1;
    }
    if (wire_get_u64(&in) != c->nd->fingerprint) {
        snprintf(why, n, "written under other rules or configuration");
        return -1;
    }
    *seq = wire_get_u64(&in);
    c->last_applied = wire_get_i64(&in);
    if (engine_restore(c->e, &in, why, n))
        return -1;
    if (wire_get_u8(&in) != (c->o != NULL)) {
        snprintf(why, n, "written with outreach %s", c->o ? "off" : "on");
        return -1;
    }
    if (c->o && orch_restore(c->o, &in, why, n))
        return -1;
    uint64_t nviews = wire_get_u64(&in);
    for (uint64_t i = 0; i < nviews && !in.err; i++) {
        char *k = wire_get_str(&in), *v = wire_get_str(&in);
        if (!k || !v) {
            free(k);
            free(v);
            in.err = 1;
            break;
        }
        strmap_upsert(&c->views, k, strlen(k), NULL)->value = v;
        free(k);
    }
    if (in.err || in.off != in.n) {
        snprintf(why, n, "malformed");
        return -1;
    }
    engine_restore_end(c->e, 1);
    return 0;
}

/* ---- taking over ---- */

static int take(struct cpart *c, uint64_t *from)
{
    char p[16];
    snprintf(p, sizeof p, "%u", c->p);
    const char *v[] = {p, c->nd->cc->node};
    PGresult *r = pgx_exec(c->db,
                           "UPDATE fw_partitions SET epoch = epoch + 1, owner = $2 WHERE p = $1 "
                           "RETURNING epoch, applied_seq",
                           2, v);
    if (!r || PQntuples(r) != 1) {
        PQclear(r);
        return -1;
    }
    c->epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    c->replay_to = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    r = pgx_exec(c->db, "SELECT coalesce(max(pseq), 0) FROM fw_systemic WHERE p = $1", 1, v);
    if (!r)
        return -1;
    c->pseq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (chain_new(c))
        return -1;
    /* The checkpoint, as bytes. */
    const char *v1[] = {p};
    r = PQexecParams(c->db, "SELECT checkpoint FROM fw_partitions WHERE p = $1", 1, NULL, v1,
                     NULL, NULL, 1);
    uint64_t seq = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        char why[256];
        if (ckpt_load(c, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), &seq, why,
                      sizeof why)) {
            log_warn("cluster: partition %u: checkpoint not used: %s; replaying the stream from "
                     "its start",
                     c->p, why);
            chain_free(c);
            seq = 0;
            c->last_applied = FW_TIME_NONE;
            if (chain_new(c)) {
                PQclear(r);
                return -1;
            }
        }
    }
    PQclear(r);
    c->checkpoint_seq = seq;
    /* With the wall clock: when each group after the checkpoint was applied. */
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, seq);
    const char *v2[] = {p, s};
    r = pgx_exec(c->db,
                 "SELECT last_seq, applied_at FROM fw_groups WHERE p = $1 AND last_seq > $2 "
                 "ORDER BY last_seq",
                 2, v2);
    if (!r)
        return -1;
    c->ngroups = (size_t)PQntuples(r);
    c->groups = xcalloc(c->ngroups + 1, sizeof *c->groups);
    for (size_t i = 0; i < c->ngroups; i++) {
        c->groups[i].last_seq = strtoull(PQgetvalue(r, (int)i, 0), NULL, 10);
        c->groups[i].applied_at = strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
    }
    PQclear(r);
    *from = seq + 1;
    log_info("cluster: partition %u taken (epoch %" PRId64 "): checkpoint at %" PRIu64
             ", replaying to %" PRIu64,
             c->p, c->epoch, seq, c->replay_to);
    return 0;
}

/* ---- applying ---- */

/* The time a replayed event was applied at (wall clock: its group's), or FW_TIME_NONE. */
static int64_t replay_time(struct cpart *c, uint64_t seq)
{
    while (c->gi < c->ngroups && c->groups[c->gi].last_seq < seq)
        c->gi++;
    return c->gi < c->ngroups ? c->groups[c->gi].applied_at : FW_TIME_NONE;
}

/* Apply one message of the stream at `at` (FW_TIME_NONE: virtual clock, event time). */
static void apply_msg(struct cpart *c, natsMsg *m, int64_t at)
{
    json_error_t jerr;
    json_t *j = fw_json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, &jerr);
    if (!j) {
        log_warn("cluster: partition %u: a message of the stream is not JSON: %s", c->p,
                 jerr.text);
        return;
    }
    const char *type = json_string_value(json_object_get(j, "type"));
    if (type && !strcmp(type, CLOCK_TYPE) && !json_object_get(j, "subject")) {
        const char *ts = json_string_value(json_object_get(j, "time"));
        int64_t t;
        if (ts && !fw_time_parse(ts, strlen(ts), &t))
            engine_advance(c->e, t);
        json_decref(j);
        return;
    }
    struct ingest_globals g = {.ctx = &c->rules, .is_global = rules_is_global,
                               .declared = rules_declared};
    struct event ev;
    struct ingest_error ierr;
    if (ingest_validate(j, NULL, &g, &ev, &ierr)) {
        log_warn("cluster: partition %u: an event of the stream is not valid: %s: %s", c->p,
                 ierr.field, ierr.msg);
        json_decref(j);
        return;
    }
    json_decref(j);
    if (at == FW_TIME_NONE)
        at = ev.time > engine_now(c->e) ? ev.time : engine_now(c->e);
    engine_prepare(c->e, at);
    c->applying = ev.subject;
    engine_apply(c->e, &ev);
    c->applying = NULL;
    event_cleanup(&ev);
    pthread_mutex_lock(&c->mu);
    c->st.events++;
    c->st.replayed += c->quiet;
    pthread_mutex_unlock(&c->mu);
}

/* The open transaction's end: the partition's position, fenced by its epoch. */
static int commit(struct cpart *c, uint64_t seq, int64_t group_at)
{
    char p[16], s[24], clk[24], ep[24], at[24];
    snprintf(p, sizeof p, "%u", c->p);
    snprintf(s, sizeof s, "%" PRIu64, seq);
    snprintf(clk, sizeof clk, "%" PRId64, engine_now(c->e));
    snprintf(ep, sizeof ep, "%" PRId64, c->epoch);
    snprintf(at, sizeof at, "%" PRId64, group_at);
    const char *v[] = {p, s, clk, ep};
    PGresult *r = pgx_exec(c->db,
                           "UPDATE fw_partitions SET applied_seq = GREATEST(applied_seq, $2::bigint),"
                           " clock = $3 WHERE p = $1 AND epoch = $4",
                           4, v);
    int fenced = !r || strcmp(PQcmdTuples(r), "1");
    PQclear(r);
    if (fenced) {
        if (r)
            log_warn("cluster: partition %u: another node took it over; stopping here", c->p);
        c->failed = 1;
    }
    if (!c->failed && group_at != FW_TIME_NONE) {
        const char *g[] = {p, s, at};
        if (pgx_run(c->db,
                    "INSERT INTO fw_groups (p, last_seq, applied_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT DO NOTHING",
                    3, g))
            c->failed = 1;
    }
    if (!c->failed && c->scheduled && pgx_run(c->db, "NOTIFY fw_outbox", 0, NULL))
        c->failed = 1;
    if (c->failed || pgx_run(c->db, "COMMIT", 0, NULL)) {
        pgx_run(c->db, "ROLLBACK", 0, NULL);
        return -1;
    }
    c->scheduled = 0;
    pthread_mutex_lock(&c->mu);
    c->st.applied_seq = seq > c->st.applied_seq ? seq : c->st.applied_seq;
    c->st.clock = engine_now(c->e);
    c->st.customers = engine_customer_count(c->e);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static int begin(struct cpart *c)
{
    c->failed = c->scheduled = 0;
    return pgx_run(c->db, "BEGIN", 0, NULL);
}

static void go_live(struct cpart *c, int64_t t0)
{
    pthread_mutex_lock(&c->mu);
    c->st.live = 1;
    c->st.takeover_s = (double)(fw_mono_ns() - t0) / 1e9;
    pthread_mutex_unlock(&c->mu);
    if (c->o)
        orch_set_quiet(c->o, 0);
    c->quiet = 0;
    log_info("cluster: partition %u live after %.3f s: %zu customers, %zu pending wake-ups",
             c->p, (double)(fw_mono_ns() - t0) / 1e9, engine_customer_count(c->e),
             engine_pending_timers(c->e));
}

static void *part_main(void *arg)
{
    struct cpart *c = arg;
    const int virt = c->nd->cfg->virtual_clock;
    int64_t t0 = fw_mono_ns();
    uint64_t from = 1, seq = 0;
    struct bus_sub *sub = NULL;
    char why[512];
    c->db = pgx_connect(c->nd->cc->postgres);
    if (!c->db || take(c, &from))
        goto out;
    sub = bus_subscribe(c->nd->bus, c->p, from, why, sizeof why);
    if (!sub) {
        log_error("cluster: partition %u: %s", c->p, why);
        goto out;
    }
    seq = c->checkpoint_seq;
    c->quiet = c->replay_to > c->checkpoint_seq;
    if (c->o)
        orch_set_quiet(c->o, c->quiet);
    if (!c->quiet) {
        /* Nothing to replay: what fell due while nobody owned it fires now, for real. */
        if (begin(c))
            goto out;
        if (!virt)
            engine_prepare(c->e, fw_wall_now());
        if (commit(c, c->replay_to, FW_TIME_NONE))
            goto out;
        go_live(c, t0);
    }
    int64_t last_ckpt = fw_mono_ns();
    while (!atomic_load(&c->stop)) {
        int64_t wait = 100;
        if (!c->quiet && !virt) {
            int64_t next = engine_next_wakeup(c->e), now = fw_wall_now();
            if (next != INT64_MAX && next - now + 1 < wait)
                wait = next - now + 1 > 1 ? next - now + 1 : 1;
        }
        natsMsgList list;
        if (bus_fetch(sub, &list, FETCH_MAX, c->quiet ? 500 : wait))
            break;
        int i = 0;
        /* The former owner's committed events: replayed quietly, then live. */
        while (c->quiet && i < list.Count) {
            int64_t stored;
            uint64_t s = bus_msg_seq(list.Msgs[i], &stored);
            if (s > c->replay_to)
                break;
            apply_msg(c, list.Msgs[i], virt ? FW_TIME_NONE : replay_time(c, s));
            seq = s;
            if (s == c->replay_to) {
                /* Caught up: what falls due from here on is decided for real, at takeover. */
                c->quiet = 0;
                if (c->o)
                    orch_set_quiet(c->o, 0);
                if (begin(c))
                    goto out_list;
                if (!virt)
                    engine_prepare(c->e, fw_wall_now() > c->last_applied ? fw_wall_now()
                                                                         : c->last_applied);
                if (commit(c, seq, FW_TIME_NONE))
                    goto out_list;
                go_live(c, t0);
            }
            i++;
        }
        /*
         * Events to apply, or (wall clock) a wake-up due: one transaction.
         * Idle, one a second, moving the partition's clock: incidents wait
         * for every partition's clock to pass a firing (global.c).
         */
        if (i < list.Count ||
            (!c->quiet && !virt &&
             (engine_next_wakeup(c->e) <= fw_wall_now() ||
              fw_mono_ns() - c->idle_commit >= (int64_t)1000000000))) {
            c->idle_commit = fw_mono_ns();
            if (begin(c))
                goto out_list;
            int64_t at = FW_TIME_NONE;
            if (!virt) {
                at = fw_wall_now();
                if (c->last_applied != FW_TIME_NONE && at < c->last_applied)
                    at = c->last_applied; /* the wall clock stepped back: hold time still */
                engine_prepare(c->e, at);
            }
            int any = i < list.Count;
            for (; i < list.Count; i++) {
                seq = bus_msg_seq(list.Msgs[i], NULL);
                apply_msg(c, list.Msgs[i], at);
            }
            if (any && !virt)
                c->last_applied = at;
            if (commit(c, seq, any && !virt ? at : FW_TIME_NONE))
                goto out_list;
        }
        if (list.Count)
            bus_ack(list.Msgs[list.Count - 1]);
        natsMsgList_Destroy(&list);
        if (!c->quiet && seq != c->checkpoint_seq &&
            fw_mono_ns() - last_ckpt >= c->nd->cc->checkpoint_every * (int64_t)1000000) {
            ckpt_write(c, seq);
            last_ckpt = fw_mono_ns();
        }
        continue;
    out_list:
        natsMsgList_Destroy(&list);
        goto out;
    }
    if (atomic_load(&c->stop) && !c->quiet && !c->failed && seq != c->checkpoint_seq)
        ckpt_write(c, seq); /* handing it over: the next owner replays nothing */
out:
    bus_unsubscribe(sub);
    atomic_store(&c->running, 0);
    return NULL;
}

struct cpart *cpart_start(struct cnode *nd, unsigned p)
{
    struct cpart *c = xcalloc(1, sizeof *c);
    c->nd = nd;
    c->p = p;
    c->st.p = p;
    c->last_applied = FW_TIME_NONE;
    buf_init(&c->line, 0);
    strmap_init(&c->views);
    pthread_mutex_init(&c->mu, NULL);
    atomic_store(&c->running, 1);
    if (pthread_create(&c->thread, NULL, part_main, c)) {
        log_error("cluster: partition %u: cannot start its thread", p);
        abort();
    }
    return c;
}

int cpart_running(struct cpart *c) { return atomic_load(&c->running); }

void cpart_stop(struct cpart *c)
{
    atomic_store(&c->stop, 1);
    pthread_join(c->thread, NULL);
    chain_free(c);
    strmap_cleanup(&c->views);
    if (c->db)
        PQfinish(c->db);
    free(c->groups);
    buf_cleanup(&c->line);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void cpart_stats(struct cpart *c, struct cpart_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    out->epoch = c->epoch;
    pthread_mutex_unlock(&c->mu);
}
