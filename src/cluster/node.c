/*
 * node.c -- one cluster node (cluster.h): its HTTP API, the ownership of
 * partitions, and delivery from the shared outbox.
 *
 * Ownership: every node holds an advisory lock naming itself for as long
 * as its PostgreSQL session lives, so the live nodes are the holders of
 * those locks; each node aims at its fair share, ceil(partitions / live
 * nodes), taking free partitions with pg_try_advisory_lock and giving back
 * one partition per look when it holds more (after a checkpoint, so the
 * next owner replays nothing).  A node that dies loses its session and so
 * its locks: the others see fewer live nodes and take its partitions at
 * their next look.  The epoch in fw_partitions fences a former owner that
 * is still running (a lost session it has not noticed yet): its writes
 * match no row.
 *
 * Delivery: a worker claims due outbox rows (FOR UPDATE SKIP LOCKED, with
 * a lease), sends each through its connector and records the outcome; a
 * node that dies mid-send leaves a lease that expires, and the message is
 * sent again under the same id (receivers dedupe by it).  It wakes on
 * NOTIFY fw_outbox, which commits that stored a message send.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/cluster_int.h"
#include "cluster/pgx.h"
#include "delivery/delivery.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "serve/serve.h"
#include "store/messages.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_PARTITIONS 1024
#define CLOCK_TYPE "forewarn.clock"

struct node {
    struct cnode cn;
    struct rules rules; /* for validation at ingest (never handed to an engine) */
    PGconn *own;        /* the ownership session: its locks are this node's partitions; only the
                           ownership thread uses it (a libpq connection is one thread's at a time) */
    PGconn *api;        /* the HTTP API's reads, under api_mu (NULL until first needed) */
    pthread_mutex_t api_mu;
    pthread_mutex_t mu; /* guards parts */
    struct cpart *parts[MAX_PARTITIONS];
    pthread_t owner_thread, deliver_thread;
    struct cglobal *global; /* the incidents, when this node holds the global role */
    atomic_int stop;
    atomic_int looked; /* the ownership loop ran once: ready */
    struct MHD_Daemon *http;
    uint64_t published, duplicates, rejected, sent, retried, dead;
    pthread_mutex_t cmu; /* guards the counters */
};

/* ---- ownership ---- */

static int lock_partition(PGconn *c, unsigned p, int take)
{
    char q[128];
    snprintf(q, sizeof q, "SELECT pg_%s(%d, %u)", take ? "try_advisory_lock" : "advisory_unlock",
             PGX_LOCK_PARTITION, p);
    PGresult *r = pgx_exec(c, q, 0, NULL);
    int ok = r && PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return ok;
}

static int live_nodes(PGconn *c)
{
    char q[192];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %d "
             "AND objsubid = 2 AND granted",
             PGX_LOCK_NODE);
    PGresult *r = pgx_exec(c, q, 0, NULL);
    int n = r && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return n;
}

static void release(struct node *nd, unsigned p, const char *why)
{
    pthread_mutex_lock(&nd->mu);
    struct cpart *c = nd->parts[p];
    nd->parts[p] = NULL;
    pthread_mutex_unlock(&nd->mu);
    if (!c)
        return;
    cpart_stop(c);
    lock_partition(nd->own, p, 0);
    log_info("cluster: partition %u released (%s)", p, why);
}

static void *owner_main(void *arg)
{
    struct node *nd = arg;
    unsigned P = nd->cn.cc->partitions;
    unsigned start = (unsigned)(fw_hash(nd->cn.cc->node, strlen(nd->cn.cc->node)) % P);
    while (!atomic_load(&nd->stop)) {
        if (PQstatus(nd->own) != CONNECTION_OK) {
            /* Our locks went with the session: stop everything at once (the epoch fences us). */
            log_error("cluster: the ownership session to PostgreSQL is lost; stopping");
            kill(getpid(), SIGTERM);
            break;
        }
        for (unsigned p = 0; p < P; p++) {
            pthread_mutex_lock(&nd->mu);
            struct cpart *c = nd->parts[p];
            pthread_mutex_unlock(&nd->mu);
            if (c && !cpart_running(c))
                release(nd, p, "its worker stopped");
        }
        int live = live_nodes(nd->own);
        if (live > 0) {
            unsigned target = (P + (unsigned)live - 1) / (unsigned)live, owned = 0;
            for (unsigned p = 0; p < P; p++)
                owned += nd->parts[p] != NULL;
            for (unsigned k = 0; k < P && owned < target && !atomic_load(&nd->stop); k++) {
                unsigned p = (start + k) % P;
                if (nd->parts[p] || !lock_partition(nd->own, p, 1))
                    continue;
                struct cpart *c = cpart_start(&nd->cn, p);
                pthread_mutex_lock(&nd->mu);
                nd->parts[p] = c;
                pthread_mutex_unlock(&nd->mu);
                owned++;
            }
            if (owned > target) /* a node joined: give one back per look, checkpointed */
                for (unsigned k = P; k-- > 0;) {
                    unsigned p = (start + k) % P;
                    if (nd->parts[p]) {
                        release(nd, p, "rebalancing");
                        break;
                    }
                }
        }
        atomic_store(&nd->looked, 1);
        struct timespec ts = {.tv_sec = nd->cn.cc->ownership_every / 1000,
                              .tv_nsec = (nd->cn.cc->ownership_every % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (unsigned p = 0; p < P; p++)
        release(nd, p, "stopping");
    return NULL;
}

/* ---- delivery ---- */

static char *col(PGresult *r, int row, int c)
{
    return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

static void deliver_one(struct node *nd, PGconn *db, void **curl, PGresult *r, int row)
{
    struct outbox_msg m = {
        .id = col(r, row, 0),        .key = col(r, row, 1),      .customer = col(r, row, 2),
        .audience = col(r, row, 3),  .channel = col(r, row, 4),  .recipient = col(r, row, 5),
        .subject = col(r, row, 6),   .body = col(r, row, 7),     .html = col(r, row, 8),
        .signals = col(r, row, 9),   .meta = col(r, row, 10),    .explain = col(r, row, 11),
        .status = "sending",
    };
    m.created_at = strtoll(PQgetvalue(r, row, 12), NULL, 10);
    m.send_at = strtoll(PQgetvalue(r, row, 13), NULL, 10);
    m.attempts = atoi(PQgetvalue(r, row, 14));
    char err[512], wall[24], until[24];
    enum delivery_outcome o = delivery_attempt(&nd->cn.cfg->delivery, curl, &m, err, sizeof err);
    int64_t now = fw_wall_now();
    snprintf(wall, sizeof wall, "%" PRId64, now);
    const char *node = nd->cn.cc->node;
    if (o == DELIVERY_OUT_SENT || o == DELIVERY_OUT_STORED) {
        const char *v[] = {m.id, node, wall, o == DELIVERY_OUT_SENT ? "sent" : "stored"};
        pgx_run(db,
                "UPDATE fw_outbox SET status = $4, sent_at = $3, sent_by = $2, claimed_until = "
                "NULL WHERE id = $1 AND claimed_by = $2",
                4, v);
        pthread_mutex_lock(&nd->cmu);
        nd->sent++;
        pthread_mutex_unlock(&nd->cmu);
        return;
    }
    int64_t retry = o == DELIVERY_OUT_PERMANENT ? 0
                                                : delivery_retry_at(&nd->cn.cfg->delivery,
                                                                    m.attempts, now, now);
    snprintf(until, sizeof until, "%" PRId64, retry);
    const char *v[] = {m.id, node, err, until};
    if (retry) /* the lease becomes the backoff: nobody claims it before then */
        pgx_run(db,
                "UPDATE fw_outbox SET claimed_until = $4, last_error = $3 WHERE id = $1 AND "
                "claimed_by = $2",
                4, v);
    else
        pgx_run(db,
                "UPDATE fw_outbox SET status = 'dead', last_error = $3, claimed_until = NULL "
                "WHERE id = $1 AND claimed_by = $2",
                3, v);
    log_warn("cluster: delivery of %s on %s failed (attempt %d): %s%s", m.id, m.channel,
             m.attempts, err, retry ? "" : "; given up");
    pthread_mutex_lock(&nd->cmu);
    if (retry)
        nd->retried++;
    else
        nd->dead++;
    pthread_mutex_unlock(&nd->cmu);
}

static void *deliver_main(void *arg)
{
    struct node *nd = arg;
    PGconn *db = NULL;
    void *curl = NULL;
    const int64_t lease = nd->cn.cfg->delivery.timeout + 5000;
    while (!atomic_load(&nd->stop)) {
        if (!db) { /* (re)connect: a database that went away is waited for, not given up on */
            db = pgx_connect(nd->cn.cc->postgres);
            if (db && pgx_run(db, "LISTEN fw_outbox", 0, NULL)) {
                PQfinish(db);
                db = NULL;
            }
            if (!db) {
                sleep(1);
                continue;
            }
        }
        int64_t wall = fw_wall_now();
        char now[24], until[24], w[24];
        snprintf(w, sizeof w, "%" PRId64, wall);
        snprintf(until, sizeof until, "%" PRId64, wall + lease);
        if (nd->cn.cfg->virtual_clock) { /* due on the engine clocks, which move with events */
            PGresult *r = pgx_exec(db, "SELECT coalesce(max(clock), 0) FROM fw_partitions", 0, NULL);
            snprintf(now, sizeof now, "%s", r && PQntuples(r) ? PQgetvalue(r, 0, 0) : "0");
            PQclear(r);
        } else {
            snprintf(now, sizeof now, "%" PRId64, wall);
        }
        const char *v[] = {nd->cn.cc->node, until, now, w};
        PGresult *r = pgx_exec(
            db,
            "UPDATE fw_outbox SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1 "
            "WHERE id IN (SELECT id FROM fw_outbox WHERE status = 'scheduled' AND send_at <= $3 "
            "AND (claimed_until IS NULL OR claimed_until < $4) ORDER BY send_at, id LIMIT 16 "
            "FOR UPDATE SKIP LOCKED) RETURNING id, key, customer, audience, channel, recipient, "
            "subject, body, html, signals, meta, explain, created_at, send_at, attempts",
            4, v);
        int n = r ? PQntuples(r) : 0;
        for (int i = 0; i < n && !atomic_load(&nd->stop); i++)
            deliver_one(nd, db, &curl, r, i);
        PQclear(r);
        if (n)
            continue;
        if (!r) {
            if (PQstatus(db) != CONNECTION_OK) { /* the database went away: a new session */
                PQfinish(db);
                db = NULL;
            }
            sleep(1);
            continue;
        }
        /* Nothing due: wait for a commit that stores a message, or a lease or retry to expire. */
        struct pollfd pfd = {.fd = PQsocket(db), .events = POLLIN};
        poll(&pfd, 1, 200);
        PQconsumeInput(db);
        PGnotify *note;
        while ((note = PQnotifies(db)) != NULL)
            PQfreemem(note);
    }
    delivery_curl_free(curl);
    if (db)
        PQfinish(db);
    return NULL;
}

/* ---- HTTP ---- */

struct req {
    struct buf body;
    int too_big;
};

static enum MHD_Result reply(struct MHD_Connection *con, unsigned code, const char *type,
                             const char *text, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(con, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *con, unsigned code, const char *msg)
{
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"error\":");
    buf_json_str(&b, msg, strlen(msg));
    buf_printf(&b, ",\"status\":%u}", code);
    enum MHD_Result ret = reply(con, code, "application/json", b.data, b.len);
    buf_cleanup(&b);
    return ret;
}

static int authorized(struct node *nd, struct MHD_Connection *con)
{
    const char *token = nd->cn.cfg->api_token;
    if (!token)
        return 1;
    const char *h = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7))
        return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(token);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a && i < b; i++)
        diff |= (unsigned)(h[i] ^ token[i]);
    return diff == 0;
}

static enum MHD_Result post_events(struct node *nd, struct MHD_Connection *con, struct req *q)
{
    const struct config *cfg = nd->cn.cfg;
    struct ingest_limits lim = ingest_default_limits;
    lim.max_body = cfg->max_body;
    lim.max_events = cfg->max_events;
    lim.max_members = cfg->max_event_members;
    lim.max_data = cfg->max_event_data;
    lim.time_min = cfg->event_time_min;
    struct ingest_globals g = {.ctx = &nd->rules, .is_global = rules_is_global,
                               .declared = rules_declared};
    struct ingest_batch batch;
    memset(&batch, 0, sizeof batch);
    int rc = ingest_parse(q->body.data ? q->body.data : "", q->body.len, &lim, &g, &batch);
    struct buf o;
    buf_init(&o, 0);
    enum MHD_Result ret;
    if (rc) {
        buf_printf(&o, "{\"error\":\"%s\",\"status\":%d,\"errors\":[",
                   rc == FW_ETOOBIG ? "request too large" : "invalid events; nothing was stored",
                   rc == FW_ETOOBIG ? 413 : 400);
        for (size_t i = 0; i < batch.nerrors; i++) {
            const struct ingest_error *e = &batch.errors[i];
            buf_puts(&o, i ? ",{\"where\":" : "{\"where\":");
            buf_json_str(&o, e->where, strlen(e->where));
            buf_puts(&o, ",\"field\":");
            buf_json_str(&o, e->field, strlen(e->field));
            buf_puts(&o, ",\"message\":");
            buf_json_str(&o, e->msg, strlen(e->msg));
            buf_putc(&o, '}');
        }
        buf_puts(&o, "]}");
        pthread_mutex_lock(&nd->cmu);
        nd->rejected += batch.nerrors ? batch.nerrors : 1;
        pthread_mutex_unlock(&nd->cmu);
        ret = reply(con, rc == FW_ETOOBIG ? 413 : 400, "application/json", o.data, o.len);
        goto out;
    }
    for (size_t i = 0; i < batch.n; i++)
        if (!strncmp(batch.events[i].type, "forewarn.", 9)) {
            char msg[160];
            snprintf(msg, sizeof msg, "event %zu: type '%s': the forewarn. prefix is reserved; "
                                      "nothing was stored", i, batch.events[i].type);
            ret = reply_error(con, 400, msg);
            goto out;
        }
    /*
     * In the order given: the stream keeps it, and each partition applies it
     * so.  The whole body is published before any acknowledgement is waited
     * for (one round trip, not one per event); a global event goes to every
     * partition, and is a duplicate when every partition's copy is.
     */
    size_t acc = 0, dups = 0;
    int *dup = xcalloc(batch.n + 1, sizeof *dup);
    unsigned P = nd->cn.cc->partitions;
    size_t nm = 0, capm = 0;
    struct bus_msg *m = NULL;
    char **texts = xcalloc(batch.n + 1, sizeof *texts), **gids = NULL;
    size_t ngids = 0, capgids = 0;
    size_t *first = xcalloc(batch.n + 1, sizeof *first); /* each event's first message */
    for (size_t i = 0; i < batch.n; i++) {
        const struct event *ev = &batch.events[i];
        texts[i] = fw_json_dumps(ev->json);
        first[i] = nm;
        int global = !ev->subject || rules_is_global(&nd->rules, ev->type);
        for (unsigned p = 0; p < (global ? P : 1); p++) {
            m = xgrow(m, &capm, nm + 1, sizeof *m);
            const char *id = ev->id;
            if (global) {
                char gid[600];
                snprintf(gid, sizeof gid, "g%u:%s", p, ev->id);
                gids = xgrow(gids, &capgids, ngids + 1, sizeof *gids);
                id = gids[ngids++] = xstrdup(gid);
            }
            m[nm++] = (struct bus_msg){.p = global ? p : cluster_partition_of(ev->subject, P),
                                       .msg_id = id, .json = texts[i], .len = strlen(texts[i])};
        }
    }
    char why[512];
    int prc = bus_publish_batch(nd->cn.bus, m, nm, why, sizeof why);
    for (size_t i = 0; i < batch.n && !prc; i++) {
        size_t end = i + 1 < batch.n ? first[i + 1] : nm;
        dup[i] = 1;
        for (size_t k = first[i]; k < end; k++)
            dup[i] &= m[k].dup;
        dup[i] ? dups++ : acc++;
    }
    for (size_t i = 0; i < batch.n; i++)
        free(texts[i]);
    for (size_t k = 0; k < ngids; k++)
        free(gids[k]);
    free(texts);
    free(gids);
    free(first);
    free(m);
    if (prc) {
        /* Some events of the body may be in the stream: resending the body is safe. */
        log_error("cluster: %s", why);
        free(dup);
        char msg[640];
        snprintf(msg, sizeof msg, "the event log did not take the body (%s); some events may be "
                                  "kept: resend the whole body", why);
        ret = reply_error(con, 503, msg);
        goto out;
    }
    pthread_mutex_lock(&nd->cmu);
    nd->published += acc;
    nd->duplicates += dups;
    pthread_mutex_unlock(&nd->cmu);
    buf_printf(&o, "{\"accepted\":%zu,\"duplicates\":%zu,\"results\":[", acc, dups);
    for (size_t i = 0; i < batch.n; i++) {
        buf_puts(&o, i ? ",{\"id\":" : "{\"id\":");
        buf_json_str(&o, batch.events[i].id, strlen(batch.events[i].id));
        buf_printf(&o, ",\"status\":\"%s\"}", dup[i] ? "duplicate" : "accepted");
    }
    buf_puts(&o, "]}");
    free(dup);
    ret = reply(con, 200, "application/json", o.data, o.len);
out:
    buf_cleanup(&o);
    ingest_batch_cleanup(&batch);
    return ret;
}

/* POST /v1/admin/clock {"now": ...} (virtual clock): a clock move through the log, to every partition. */
static enum MHD_Result post_clock(struct node *nd, struct MHD_Connection *con, struct req *q)
{
    if (!nd->cn.cfg->virtual_clock)
        return reply_error(con, 409, "the clock is the wall clock (virtual_clock is off)");
    json_t *j = fw_json_loadb(q->body.data ? q->body.data : "", q->body.len, 0, NULL);
    const char *ts = json_string_value(json_object_get(j, "now"));
    int64_t t;
    if (!ts || fw_time_parse(ts, strlen(ts), &t)) {
        json_decref(j);
        return reply_error(con, 400, "expected {\"now\": RFC 3339}");
    }
    char id[128], tbuf[FW_TIME_MAXLEN], why[512];
    fw_time_format(t, tbuf);
    snprintf(id, sizeof id, "forewarn-clock:%s", tbuf);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{}}", "specversion", "1.0", "id", id,
                           "source", "forewarn", "type", CLOCK_TYPE, "time", tbuf, "data");
    char *txt = fw_json_dumps(ev);
    int rc = 0;
    for (unsigned p = 0; p < nd->cn.cc->partitions && !rc; p++) {
        char mid[160];
        int d;
        snprintf(mid, sizeof mid, "g%u:%s", p, id);
        rc = bus_publish(nd->cn.bus, p, mid, txt, strlen(txt), &d, &(uint64_t){0}, why,
                         sizeof why);
    }
    free(txt);
    json_decref(ev);
    json_decref(j);
    if (rc)
        return reply_error(con, 503, why);
    char out[96];
    int n = snprintf(out, sizeof out, "{\"now\":\"%s\"}", tbuf);
    return reply(con, 200, "application/json", out, (size_t)n);
}

/* What this node owns, for /readyz and /v1/cluster. */
static void owned_json(struct node *nd, struct buf *o, int64_t last)
{
    buf_puts(o, "[");
    int first = 1;
    pthread_mutex_lock(&nd->mu);
    for (unsigned p = 0; p < nd->cn.cc->partitions; p++) {
        if (!nd->parts[p])
            continue;
        struct cpart_stats st;
        cpart_stats(nd->parts[p], &st);
        buf_printf(o,
                   "%s{\"partition\":%u,\"epoch\":%" PRId64 ",\"live\":%s,\"applied_seq\":%" PRIu64
                   ",\"lag\":%" PRId64 ",\"events\":%" PRIu64 ",\"replayed\":%" PRIu64
                   ",\"customers\":%zu,\"takeover_s\":%.3f}",
                   first ? "" : ",", p, st.epoch, st.live ? "true" : "false", st.applied_seq,
                   last > (int64_t)st.applied_seq ? last - (int64_t)st.applied_seq : 0, st.events,
                   st.replayed, st.customers, st.takeover_s);
        first = 0;
    }
    pthread_mutex_unlock(&nd->mu);
    buf_puts(o, "]");
}

static enum MHD_Result get_ready(struct node *nd, struct MHD_Connection *con)
{
    struct buf o;
    buf_init(&o, 0);
    int ready = atomic_load(&nd->looked);
    buf_printf(&o, "{\"ready\":%s,\"incidents\":%s,\"node\":", ready ? "true" : "false",
               nd->global && cglobal_held(nd->global) ? "true" : "false");
    buf_json_str(&o, nd->cn.cc->node, strlen(nd->cn.cc->node));
    buf_puts(&o, ",\"partitions\":");
    /* The lag is against the stream's last position: an upper bound (other partitions' events). */
    owned_json(nd, &o, bus_last_seq(nd->cn.bus));
    buf_puts(&o, "}");
    enum MHD_Result ret = reply(con, ready ? 200 : 503, "application/json", o.data, o.len);
    buf_cleanup(&o);
    return ret;
}

static enum MHD_Result get_metrics(struct node *nd, struct MHD_Connection *con)
{
    struct buf o;
    buf_init(&o, 0);
    pthread_mutex_lock(&nd->cmu);
    buf_printf(&o,
               "# HELP forewarn_cluster_events_published_total Events this node put in the "
               "stream.\n# TYPE forewarn_cluster_events_published_total counter\n"
               "forewarn_cluster_events_published_total %" PRIu64 "\n"
               "# HELP forewarn_cluster_events_duplicate_total Events the stream already had.\n"
               "# TYPE forewarn_cluster_events_duplicate_total counter\n"
               "forewarn_cluster_events_duplicate_total %" PRIu64 "\n"
               "# HELP forewarn_cluster_deliveries_total Outbox messages this node delivered "
               "(or stored), retried, gave up.\n# TYPE forewarn_cluster_deliveries_total counter\n"
               "forewarn_cluster_deliveries_total{outcome=\"sent\"} %" PRIu64 "\n"
               "forewarn_cluster_deliveries_total{outcome=\"retry\"} %" PRIu64 "\n"
               "forewarn_cluster_deliveries_total{outcome=\"dead\"} %" PRIu64 "\n",
               nd->published, nd->duplicates, nd->sent, nd->retried, nd->dead);
    pthread_mutex_unlock(&nd->cmu);
    int64_t last = bus_last_seq(nd->cn.bus);
    buf_puts(&o, "# HELP forewarn_cluster_partition_owned 1 for each partition this node owns.\n"
                 "# TYPE forewarn_cluster_partition_owned gauge\n"
                 "# HELP forewarn_cluster_partition_applied_seq The stream position the "
                 "partition's committed work covers.\n"
                 "# TYPE forewarn_cluster_partition_applied_seq gauge\n"
                 "# HELP forewarn_cluster_partition_lag Stream positions after it (all "
                 "partitions' events: an upper bound).\n"
                 "# TYPE forewarn_cluster_partition_lag gauge\n"
                 "# HELP forewarn_cluster_partition_events_total Events applied since it was "
                 "taken.\n# TYPE forewarn_cluster_partition_events_total counter\n");
    pthread_mutex_lock(&nd->mu);
    for (unsigned p = 0; p < nd->cn.cc->partitions; p++) {
        if (!nd->parts[p])
            continue;
        struct cpart_stats st;
        cpart_stats(nd->parts[p], &st);
        buf_printf(&o,
                   "forewarn_cluster_partition_owned{partition=\"%u\"} 1\n"
                   "forewarn_cluster_partition_applied_seq{partition=\"%u\"} %" PRIu64 "\n"
                   "forewarn_cluster_partition_lag{partition=\"%u\"} %" PRId64 "\n"
                   "forewarn_cluster_partition_events_total{partition=\"%u\"} %" PRIu64 "\n",
                   p, p, st.applied_seq, p,
                   last > (int64_t)st.applied_seq ? last - (int64_t)st.applied_seq : 0, p,
                   st.events);
    }
    pthread_mutex_unlock(&nd->mu);
    enum MHD_Result ret = reply(con, 200, "text/plain; version=0.0.4", o.data, o.len);
    buf_cleanup(&o);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    struct node *nd = cls;
    (void)version;
    if (!*con_cls) {
        struct req *q = xcalloc(1, sizeof *q);
        buf_init(&q->body, 0);
        *con_cls = q;
        return MHD_YES;
    }
    struct req *q = *con_cls;
    if (*size) {
        if (q->body.len + *size > nd->cn.cfg->max_body)
            q->too_big = 1;
        else
            buf_append(&q->body, data, *size);
        *size = 0;
        return MHD_YES;
    }
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (get && !strcmp(url, "/healthz"))
        return reply(con, 200, "text/plain", "ok\n", 3);
    if (get && !strcmp(url, "/readyz"))
        return get_ready(nd, con);
    if (get && !strcmp(url, "/metrics") && (nd->cn.cfg->public_metrics || authorized(nd, con)))
        return get_metrics(nd, con);
    if (!authorized(nd, con))
        return reply_error(con, 401, "a valid bearer token is required");
    if (q->too_big)
        return reply_error(con, 413, "request body too large");
    if (post && !strcmp(url, "/v1/events"))
        return post_events(nd, con, q);
    if (post && !strcmp(url, "/v1/admin/clock"))
        return post_clock(nd, con, q);
    if (get && !strcmp(url, "/v1/cluster")) {
        struct buf o;
        buf_init(&o, 0);
        pthread_mutex_lock(&nd->api_mu);
        if (nd->api && PQstatus(nd->api) != CONNECTION_OK) {
            PQfinish(nd->api);
            nd->api = NULL;
        }
        if (!nd->api)
            nd->api = pgx_connect(nd->cn.cc->postgres);
        PGresult *r = nd->api ? pgx_exec(nd->api,
                                         "SELECT p, epoch, coalesce(owner, ''), applied_seq, "
                                         "checkpoint_seq FROM fw_partitions ORDER BY p",
                                         0, NULL)
                              : NULL;
        pthread_mutex_unlock(&nd->api_mu);
        if (r && PQnfields(r) != 5) {
            PQclear(r);
            r = NULL;
        }
        buf_puts(&o, "{\"partitions\":[");
        for (int i = 0; r && i < PQntuples(r); i++) {
            buf_printf(&o, "%s{\"partition\":%s,\"epoch\":%s,\"owner\":", i ? "," : "",
                       PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
            buf_json_str(&o, PQgetvalue(r, i, 2), strlen(PQgetvalue(r, i, 2)));
            buf_printf(&o, ",\"applied_seq\":%s,\"checkpoint_seq\":%s}", PQgetvalue(r, i, 3),
                       PQgetvalue(r, i, 4));
        }
        PQclear(r);
        buf_puts(&o, "]}");
        enum MHD_Result ret = reply(con, r ? 200 : 503, "application/json", o.data, o.len);
        buf_cleanup(&o);
        return ret;
    }
    return reply_error(con, 404, "no such endpoint on a cluster node");
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)con, (void)toe;
    struct req *q = *con_cls;
    if (q) {
        buf_cleanup(&q->body);
        free(q);
    }
    *con_cls = NULL;
}

/* ---- the node ---- */

int cluster_serve(const struct config *cfg, const char *const *rule_files, size_t nrule_files)
{
    struct node *nd = xcalloc(1, sizeof *nd);
    struct comms *templates = NULL;
    struct buf diag;
    int rc = 1;
    buf_init(&diag, 0);
    pthread_mutex_init(&nd->mu, NULL);
    pthread_mutex_init(&nd->cmu, NULL);
    pthread_mutex_init(&nd->api_mu, NULL);
    nd->cn.cfg = cfg;
    nd->cn.cc = &cfg->cluster;
    nd->cn.rule_files = rule_files;
    nd->cn.nrule_files = nrule_files;
    rules_init(&nd->rules);
    if (nrule_files == 0)
        rules_add_builtin(&nd->rules);
    for (size_t i = 0; i < nrule_files; i++)
        rules_add_file(&nd->rules, rule_files[i]);
    if (rules_finish(&nd->rules)) {
        fputs(nd->rules.diag.data ? nd->rules.diag.data : "", stderr);
        goto out_rules;
    }
    if (cfg->messages && comms_load(cfg->templates, &templates, &diag)) {
        fputs(diag.data ? diag.data : "templates failed to load\n", stderr);
        goto out_rules;
    }
    nd->cn.templates = templates;
    unsigned char fp[32];
    serve_config_fingerprint(cfg, fp);
    memcpy(&nd->cn.fingerprint, fp, sizeof nd->cn.fingerprint);
    if (!cfg->api_token && !cfg->allow_open && strncmp(cfg->listen_addr, "127.", 4)) {
        fprintf(stderr, "serve: listening on %s without authentication would let anyone on the "
                        "network write events; set api_token, or allow_unauthenticated: true\n",
                cfg->listen_addr);
        goto out_rules;
    }
    sigset_t stop_signals;
    serve_block_stop_signals(&stop_signals);

    char why[512];
    nd->own = pgx_connect(cfg->cluster.postgres);
    if (!nd->own) {
        fprintf(stderr, "serve: cannot reach PostgreSQL (cluster.postgres)\n");
        goto out_rules;
    }
    if (pgx_schema(nd->own, cfg->cluster.partitions, why, sizeof why)) {
        fprintf(stderr, "serve: PostgreSQL: %s\n", why);
        goto out_db;
    }
    nd->cn.bus = bus_open(&cfg->cluster, why, sizeof why);
    if (!nd->cn.bus) {
        fprintf(stderr, "serve: %s\n", why);
        goto out_db;
    }
    char q[128];
    snprintf(q, sizeof q, "SELECT pg_advisory_lock(%d, %d)", PGX_LOCK_NODE,
             (int)(uint32_t)fw_hash(cfg->cluster.node, strlen(cfg->cluster.node)));
    if (pgx_run(nd->own, q, 0, NULL)) {
        fprintf(stderr, "serve: cannot register the node\n");
        goto out_bus;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->listen_port)};
    if (inet_pton(AF_INET, cfg->listen_addr, &addr.sin_addr) != 1) {
        fprintf(stderr, "serve: listen address %s is not an IPv4 address\n", cfg->listen_addr);
        goto out_bus;
    }
    nd->http = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, cfg->listen_port,
        NULL, NULL, on_request, nd, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->http_threads ? cfg->http_threads : 4),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, nd, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)60, MHD_OPTION_END);
    if (!nd->http) {
        fprintf(stderr, "serve: cannot listen on %s:%u\n", cfg->listen_addr, cfg->listen_port);
        goto out_bus;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(nd->http, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di ? di->port : cfg->listen_port;
    nd->global = cglobal_start(&nd->cn);
    if (pthread_create(&nd->owner_thread, NULL, owner_main, nd) ||
        pthread_create(&nd->deliver_thread, NULL, deliver_main, nd)) {
        fprintf(stderr, "serve: cannot start the node's threads\n");
        abort();
    }
    log_info("cluster node %s: listening on %s:%u, %u partitions, stream %s, %s clock",
             cfg->cluster.node, cfg->listen_addr, port, cfg->cluster.partitions,
             cfg->cluster.stream, cfg->virtual_clock ? "virtual" : "wall");
    if (cfg->ready_file)
        serve_write_ready(cfg->ready_file, cfg->listen_addr, port, NULL);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    log_info("cluster node %s: stopping on signal %d (its partitions are checkpointed and "
             "handed over)",
             cfg->cluster.node, sig);
    MHD_stop_daemon(nd->http);
    atomic_store(&nd->stop, 1);
    pthread_join(nd->owner_thread, NULL);
    pthread_join(nd->deliver_thread, NULL);
    cglobal_stop(nd->global);
    rc = 0;
out_bus:
    bus_close(nd->cn.bus);
out_db:
    PQfinish(nd->own);
    if (nd->api)
        PQfinish(nd->api);
out_rules:
    comms_free(templates);
    rules_cleanup(&nd->rules);
    buf_cleanup(&diag);
    pthread_mutex_destroy(&nd->mu);
    pthread_mutex_destroy(&nd->cmu);
    pthread_mutex_destroy(&nd->api_mu);
    free(nd);
    return rc;
}
