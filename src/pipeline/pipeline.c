/*
 * pipeline.c -- the engine thread and its group commit.  See pipeline.h.
 *
 * Locking: `mu` guards the work queue and the metrics; `engine_mu` guards
 * the engine against readers.  The engine thread takes engine_mu for the
 * whole of a group's processing; readers take it briefly.  Neither lock is
 * held while another is awaited in the opposite order (mu is never taken
 * while engine_mu is held, except for metrics updates, which are leaf work).
 */
#include "pipeline/pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fcntl.h>
#include <unistd.h>

#include "store/cases.h"
#include "util/fwtime.h"
#include "util/wire.h"
#include "util/log.h"
#include "util/util.h"

const double pipeline_lat_bounds[PIPELINE_LAT_BUCKETS] = {
    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
    0.0005,   0.001,   0.0025,   0.005,   0.01,   0.1,
};

enum work_kind { WORK_EVENTS, WORK_CLOCK, WORK_RUN };

struct work {
    enum work_kind kind;
    const struct ingest_batch *batch;
    char *const *bodies; /* the events' journal text, or NULL */
    enum ingest_outcome *outcomes;
    int64_t clock;
    int (*fn)(void *ctx, struct store *db, int64_t engine_now);
    void *fn_ctx;
    int check;      /* a person's case action: refused, unjournaled, when it cannot apply now */
    int refused;    /* it was: rc says why */
    char *why;      /* the reason, for check (why_len bytes) */
    size_t why_len;
    char *case_id;  /* for check: the case it acted on (24 bytes) */
    int done, rc;
    pthread_cond_t done_cv; /* its submitter waits here, so a group wakes only its own */
    struct work *next;
};

struct pipeline {
    struct rules *rules;
    struct store *db;
    struct engine *engine;
    struct orch *orch;
    struct cases *cases;
    struct cases_config ccfg;
    struct pipeline_opts opts;
    int virtual_clock;
    int64_t last_applied; /* applied_at times never go backwards */
    pthread_t thread;
    pthread_mutex_t mu, engine_mu;
    pthread_cond_t work_cv;
    struct work *head, *tail;
    int stop;
    int sink_failed; /* a store write from the sink failed in the current group */
    int quiet;       /* recovery is replaying what is already stored: the sinks write nothing */
    char rebuild_error[256]; /* why the last rebuild failed (SQLite's words) */
    int stale;       /* the last rebuild failed (I/O error): memory may hold less than the
                        journal, so nothing is applied until a rebuild succeeds */
    uint64_t group_outcomes; /* delivery outcomes applied in the current group */
    struct pipeline_commit commit; /* what the current group made claimable */
    struct pipeline_metrics m;
    int64_t snap_seq;     /* the journal row the newest snapshot (loaded or written) covers */
    int64_t snap_mono;    /* when it was written or loaded (fw_mono_ns) */
    int snap_current;     /* the file at snapshot_path is the one covering snap_seq */
};

/* ---- the sink: detections and incidents go to the store in the open transaction ---- */

static void sink_detection(void *ctx, const struct detection *d)
{
    struct pipeline *p = ctx;
    if (p->quiet)
        return;
    if (store_detection(p->db, d))
        p->sink_failed = 1;
    log_debug("detection %s %s %s", d->signal->id, d->customer, d->firing ? "firing" : "resolved");
}

static void sink_retract(void *ctx, const struct detection *d)
{
    struct pipeline *p = ctx;
    if (p->quiet)
        return;
    if (store_detection_retract(p->db, d))
        p->sink_failed = 1;
    char at[FW_TIME_MAXLEN];
    fw_time_format(d->at, at);
    log_debug("detection %s %s: the %s at %s is withdrawn, an event dated before it arrived",
             d->signal->id, d->customer, d->firing ? "firing" : "resolution", at);
}

static void sink_incident(void *ctx, const struct incident *i)
{
    struct pipeline *p = ctx;
    if (p->quiet)
        return;
    if (store_incident(p->db, i))
        p->sink_failed = 1;
}

/* Remember that `channel` got a claimable message in this group. */
static void note_channel(struct pipeline_commit *c, const char *channel)
{
    for (size_t i = 0; i < c->nchannels; i++)
        if (!strcmp(c->channels[i], channel))
            return;
    if (c->nchannels == PIPELINE_MAX_CHANNELS || strlen(channel) >= sizeof c->channels[0]) {
        c->all = 1; /* cannot say which: every worker looks */
        return;
    }
    strcpy(c->channels[c->nchannels++], channel);
}

/* Remember that case `id` changed in this group (the console's stream names it). */
static void note_case(struct pipeline_commit *c, const char *id)
{
    for (size_t i = 0; i < c->ncases; i++)
        if (!strcmp(c->cases[i], id))
            return;
    if (c->ncases == PIPELINE_MAX_CASES || strlen(id) >= sizeof c->cases[0]) {
        c->cases_overflow = 1;
        return;
    }
    strcpy(c->cases[c->ncases++], id);
}

/* The orchestrator's decisions go to the outbox in the same transaction. */
static void sink_message(void *ctx, const struct outbox_msg *m)
{
    struct pipeline *p = ctx;
    struct outbox_msg local = *m;
    char why[128];
    /* No connector for the channel: recorded as stored now, with no work for the dispatcher. */
    if (p->opts.delivery && !strcmp(m->status, "scheduled") &&
        !delivery_channel_active(p->opts.delivery, m->channel)) {
        local.status = "stored";
        snprintf(why, sizeof why, "no connector configured for %s: rendered and kept, not sent",
                 m->channel);
        local.reason = why;
    }
    int inserted = 0;
    p->commit.messages = 1;
    if (store_message_insert(p->db, &local, &inserted))
        p->sink_failed = 1;
    else if (inserted) /* a decision re-made after recovery is stored, and counted, once */
        delivery_metrics_count(DELIVERY_DECIDED, local.audience, local.channel, local.status);
    if (!strcmp(local.status, "scheduled"))
        note_channel(&p->commit, local.channel);
}

static void sink_task(void *ctx, const struct task_row *t)
{
    struct pipeline *p = ctx;
    if (store_task_upsert(p->db, t, engine_now(p->engine)))
        p->sink_failed = 1;
}

static int sink_stored_status(void *ctx, const char *key, char *status, size_t n)
{
    struct pipeline *p = ctx;
    return store_message_status_by_key(p->db, key, status, n);
}

static void sink_context(void *ctx, const char *customer, const char *json)
{
    struct pipeline *p = ctx;
    if (store_context_put(p->db, customer, json, engine_now(p->engine)))
        p->sink_failed = 1;
}

/* Cases: their documents and history go to the store in the same transaction. */
static void case_line(void *ctx, const char *id, int64_t at, const char *event, const char *json,
                      size_t len)
{
    struct pipeline *p = ctx;
    (void)len;
    if (!id)
        return; /* a follow-up task of a customer without a case: its row is the record */
    if (store_case_log(p->db, id, at, event, json))
        p->sink_failed = 1;
}

static void case_save(void *ctx, const char *id, const char *customer, int open, const char *doc)
{
    struct pipeline *p = ctx;
    note_case(&p->commit, id);
    if (store_case_save(p->db, id, customer, open, doc, engine_now(p->engine)))
        p->sink_failed = 1;
}

static void case_withdraw(void *ctx, const char *id)
{
    struct pipeline *p = ctx;
    note_case(&p->commit, id);
    if (store_case_delete(p->db, id))
        p->sink_failed = 1;
}


/* ---- snapshots ---- */

/*
 * A snapshot file: a header, the body (the engine's section, a flag saying
 * whether the orchestrator's follows, the orchestrator's section, the
 * cases module's section), and a CRC-32C of everything before it:
 *
 *   "FWSNAP\0\n"  u32 format  [32] config hash  i64 journal seq
 *   str id of that journal row  i64 last applied_at  i64 written (wall ms)
 *   u64 body length  body  u32 crc
 *
 *   body: engine_snapshot  u8 orchestrator  [orch_snapshot]  cases_snapshot
 *
 * All three sections are written in one pause of the engine thread,
 * between groups, when every row up to `journal seq` is applied and no
 * transaction is open: they are the state a quiet replay of the journal up
 * to that row would rebuild, and nothing in them is pending a commit.
 *
 * Written whole to `<path>.tmp`, fsynced, then the current one becomes
 * `<path>.prev` and the new one `<path>` (rename, then fsync of the
 * directory): a crash leaves the old pair or the new one, and a reader
 * sees no partial file under either name.
 */
#define SNAP_MAGIC "FWSNAP\0\n"
#define SNAP_FORMAT 2u /* 2: the orchestrator's and the cases module's sections */

static int write_whole(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd)) {
        close(fd);
        return -1;
    }
    return close(fd);
}

static void fsync_dir_of(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/*
 * Write a snapshot of the engine as of the journal's last row, on the engine
 * thread between groups (no transaction open).  `why` is for the log.
 */
static void snapshot_write(struct pipeline *p, const char *why)
{
    if (!p->opts.snapshot_path)
        return;
    int64_t t0 = fw_mono_ns();
    pthread_mutex_lock(&p->engine_mu);
    int64_t seq;
    store_event_count_after(p->db, p->snap_seq, &seq);
    if (seq == p->snap_seq && p->snap_current) {
        pthread_mutex_unlock(&p->engine_mu);
        p->snap_mono = t0;
        return; /* nothing journaled since the one on disk */
    }
    struct buf id, b;
    buf_init(&id, 0);
    buf_init(&b, 0);
    if (seq > 0 && store_event_id_at(p->db, seq, &id)) {
        pthread_mutex_unlock(&p->engine_mu);
        log_error("snapshot not written: journal row %" PRId64 " cannot be read", seq);
        buf_cleanup(&id);
        return;
    }
    buf_append(&b, SNAP_MAGIC, 8);
    wire_put_u32(&b, SNAP_FORMAT);
    buf_append(&b, p->opts.config_hash, 32);
    wire_put_i64(&b, seq);
    wire_put_str(&b, id.data ? id.data : "");
    wire_put_i64(&b, p->last_applied);
    wire_put_i64(&b, fw_wall_now());
    size_t at_len = b.len;
    wire_put_u64(&b, 0); /* the body's length, filled in below */
    size_t body = b.len;
    engine_snapshot(p->engine, &b);
    wire_put_u8(&b, p->orch != NULL);
    if (p->orch)
        orch_snapshot(p->orch, &b);
    cases_snapshot(p->cases, &b);
    engine_snapshot_end(p->engine);
    size_t customers = engine_customer_count(p->engine);
    pthread_mutex_unlock(&p->engine_mu);
    int64_t t1 = fw_mono_ns();
    uint64_t blen = b.len - body;
    for (int i = 0; i < 8; i++)
        b.data[at_len + (size_t)i] = (char)(blen >> (8 * i));
    wire_put_u32(&b, crc32c(0, b.data, b.len));

    char tmp[4096], prev[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", p->opts.snapshot_path);
    snprintf(prev, sizeof prev, "%s.prev", p->opts.snapshot_path);
    int ok = write_whole(tmp, b.data, b.len) == 0;
    if (ok && access(p->opts.snapshot_path, F_OK) == 0)
        ok = rename(p->opts.snapshot_path, prev) == 0;
    if (ok)
        ok = rename(tmp, p->opts.snapshot_path) == 0;
    if (ok)
        fsync_dir_of(p->opts.snapshot_path);
    int64_t t2 = fw_mono_ns();
    if (ok) {
        p->snap_seq = seq;
        p->snap_current = 1;
        pthread_mutex_lock(&p->mu);
        p->m.snapshots++;
        p->m.snapshot_bytes = b.len;
        p->m.snapshot_pause = (double)(t1 - t0) / 1e9;
        p->m.snapshot_write = (double)(t2 - t1) / 1e9;
        pthread_mutex_unlock(&p->mu);
        log_info("snapshot written (%s): journal row %" PRId64 ", %zu customers, %zu bytes; "
                 "engine paused %.3f s to serialise, file written in %.3f s",
                 why, seq, customers, b.len, (double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9);
    } else {
        log_error("snapshot not written: %s: %s", tmp, strerror(errno));
        unlink(tmp);
    }
    p->snap_mono = t2;
    buf_cleanup(&id);
    buf_cleanup(&b);
}

/*
 * Load the snapshot at `path` into the fresh engine: its journal row in
 * *seq, 0; or -1 with the reason in why.
 */
static int snapshot_load_one(struct pipeline *p, const char *path, int64_t *seq, char *why,
                             size_t n)
{
    struct buf f;
    buf_init(&f, 0);
    int rc = -1;
    if (buf_read_file(&f, path)) {
        snprintf(why, n, "%s", errno == ENOENT ? "there is none" : strerror(errno));
        goto out;
    }
    if (f.len < 8 + 4 + 32 + 4 || memcmp(f.data, SNAP_MAGIC, 8)) {
        snprintf(why, n, "not a snapshot file");
        goto out;
    }
    uint32_t want;
    struct wire_rd tail;
    wire_rd_init(&tail, f.data + f.len - 4, 4);
    want = wire_get_u32(&tail);
    if (crc32c(0, f.data, f.len - 4) != want) {
        snprintf(why, n, "its checksum does not match (torn or corrupt)");
        goto out;
    }
    struct wire_rd in;
    wire_rd_init(&in, f.data + 8, f.len - 12);
    uint32_t format = wire_get_u32(&in);
    if (format != SNAP_FORMAT) {
        snprintf(why, n, "format %u, this build reads %u", format, SNAP_FORMAT);
        goto out;
    }
    size_t hl;
    const unsigned char *hash = (const unsigned char *)f.data + 12;
    in.off += 32;
    hl = 32;
    if (memcmp(hash, p->opts.config_hash, hl)) {
        snprintf(why, n, "it was written under other rules or configuration");
        goto out;
    }
    *seq = wire_get_i64(&in);
    char *id = wire_get_str(&in);
    int64_t last_applied = wire_get_i64(&in);
    (void)wire_get_i64(&in); /* when it was written */
    uint64_t blen = wire_get_u64(&in);
    if (in.err || !id || blen != in.n - in.off) {
        free(id);
        snprintf(why, n, "its header is malformed");
        goto out;
    }
    /* The journal must still hold the row it covers, with the same event: same database. */
    struct buf jid;
    buf_init(&jid, 0);
    int idrc = *seq > 0 ? store_event_id_at(p->db, *seq, &jid) : 0;
    int same = *seq == 0 ? 1 : !idrc && !strcmp(jid.data ? jid.data : "", id);
    buf_cleanup(&jid);
    free(id);
    if (!same) {
        snprintf(why, n, "journal row %" PRId64 " is not the event it covers (another or an "
                 "older database)", *seq);
        goto out;
    }
    if (engine_restore(p->engine, &in, why, n))
        goto out;
    if (wire_get_u8(&in) != (p->orch != NULL)) {
        snprintf(why, n, "it was written with outreach %s", p->orch ? "off" : "on");
        goto out;
    }
    if (p->orch && orch_restore(p->orch, &in, why, n))
        goto out;
    if (cases_restore(p->cases, &in, why, n))
        goto out;
    if (in.off != in.n) {
        snprintf(why, n, "bytes left over after the cases' state");
        goto out;
    }
    engine_restore_end(p->engine, 1); /* every timer again, in its original order */
    p->last_applied = last_applied;
    rc = 0;
out:
    buf_cleanup(&f);
    return rc;
}

/* A fresh engine for chain_new() over the pipeline's rules and the chain's sink. */
static struct engine *fresh_engine(struct pipeline *p, const struct engine_sink *sink)
{
    struct engine *e = engine_new(p->rules, 0, sink);
    if (p->opts.health)
        engine_set_health(e, p->opts.health);
    engine_set_churn(e, p->opts.churn);
    return e;
}

static void chain_free(struct pipeline *p)
{
    orch_free(p->orch); /* both cancel their engine timers: before the engine goes */
    cases_free(p->cases);
    engine_free(p->engine);
    p->orch = NULL;
    p->cases = NULL;
    p->engine = NULL;
}

/*
 * A fresh chain, engine -> orchestrator -> cases -> store (see DESIGN.md),
 * bound together: 0, or FW_EPARSE when the SLA policies do not compile.
 */
static int chain_new(struct pipeline *p)
{
    struct engine_sink sink = {.ctx = p, .detection = sink_detection, .incident = sink_incident,
                               .retract = sink_retract};
    struct orch_sink os = {.ctx = p, .message = sink_message, .task = sink_task,
                           .context = sink_context, .stored_status = sink_stored_status};
    struct case_sink cks = {.ctx = p, .line = case_line, .save = case_save,
                            .withdraw = case_withdraw, .notice = sink_message, .task = sink_task};
    struct buf diag;
    buf_init(&diag, 0);
    p->cases = cases_new(&p->ccfg, &cks, &diag);
    if (!p->cases) {
        log_error("SLA policies: %s", diag.data ? diag.data : "failed to compile");
        buf_cleanup(&diag);
        return FW_EPARSE;
    }
    buf_cleanup(&diag);
    sink = cases_engine_sink(p->cases, &sink);
    os = cases_orch_sink(p->cases, &os);
    if (p->opts.orch) {
        p->orch = orch_new(p->opts.orch, p->opts.templates, &os);
        sink = orch_engine_sink(p->orch, &sink);
    }
    p->engine = fresh_engine(p, &sink);
    if (p->orch)
        orch_bind(p->orch, p->engine);
    cases_bind(p->cases, p->engine);
    return 0;
}

/*
 * Load the newest snapshot that is valid, else the one before: the journal
 * row it covers, or -1 (none: replay everything).  Each refusal is logged
 * with its reason.  The chain is fresh on entry, and loaded or fresh on
 * return.
 */
static int64_t snapshot_load(struct pipeline *p)
{
    if (!p->opts.snapshot_path || !p->opts.snapshot_load)
        return -1;
    char prev[4096];
    snprintf(prev, sizeof prev, "%s.prev", p->opts.snapshot_path);
    const char *paths[2] = {p->opts.snapshot_path, prev};
    for (int i = 0; i < 2; i++) {
        char why[512];
        int64_t seq = -1, t0 = fw_mono_ns();
        if (snapshot_load_one(p, paths[i], &seq, why, sizeof why) == 0) {
            log_info("loaded snapshot %s at journal row %" PRId64 ": %zu customers, %zu pending "
                     "wake-ups and timers in %.3f s", paths[i], seq,
                     engine_customer_count(p->engine), engine_pending_timers(p->engine),
                     (double)(fw_mono_ns() - t0) / 1e9);
            p->snap_current = i == 0;
            return seq;
        }
        if (i == 0 && !strcmp(why, "there is none") && access(prev, F_OK) != 0)
            return -1; /* never written: nothing to say */
        log_warn("snapshot %s not used: %s; %s", paths[i], why,
                 i == 0 ? "trying the previous one" : "replaying the whole journal");
        chain_free(p); /* it may be half-loaded */
        chain_new(p);  /* compiled once already: cannot fail now */
        p->last_applied = FW_TIME_NONE;
    }
    return -1;
}

/* ---- recovery ---- */

/* Journal rows that record a move of the virtual clock (not customer events). */
#define CLOCK_TYPE "forewarn.clock"

static int recover_one(void *ctx, const struct event *ev, int64_t applied_at)
{
    struct pipeline *p = ctx;
    if (!ev->subject && !strcmp(ev->type, CLOCK_TYPE)) {
        engine_advance(p->engine, applied_at); /* as POST /v1/admin/clock did */
    } else {
        engine_prepare(p->engine, applied_at);
        engine_apply(p->engine, ev);
    }
    if (applied_at > p->last_applied)
        p->last_applied = applied_at;
    return p->sink_failed ? FW_EDB : 0;
}

/* The persisted virtual clock, or FW_TIME_NONE. */
static int64_t stored_clock(struct pipeline *p)
{
    struct buf b;
    int64_t t = FW_TIME_NONE;
    buf_init(&b, 64);
    if (store_meta_get(p->db, "virtual_clock", &b) == 0)
        t = strtoll(b.data, NULL, 10);
    buf_cleanup(&b);
    return t;
}

static int save_clock(struct pipeline *p)
{
    char v[32];
    snprintf(v, sizeof v, "%" PRId64, engine_now(p->engine));
    return store_meta_set(p->db, "virtual_clock", v);
}

/*
 * (Re)build the engine from the journal: replay every event at its
 * applied_at, then bring the clock to now, firing what fell due meanwhile.
 *
 * The replay is quiet: every journal row was committed in the same
 * transaction as everything the engine and the orchestrator did up to and
 * including it (one thread, in order, one transaction per group), so what
 * the replay repeats is already stored, and it only rebuilds memory.  What
 * fires after the last row (wake-ups that fell due while we were down, or
 * whose group never committed) is decided and written for real; those
 * writes are idempotent, so a transition that did commit is left as it is.
 */
static int rebuild(struct pipeline *p)
{
    chain_free(p);
    cases_require(p->rules);
    int crc = chain_new(p);
    if (crc)
        return crc;
    /* The clock starts at the epoch and jumps to the first applied_at: jumps are cheap. */
    p->last_applied = FW_TIME_NONE;
    int64_t started = fw_mono_ns();
    p->snap_current = 0;
    int64_t from = snapshot_load(p);
    p->sink_failed = 0;
    p->stale = 1; /* until the journal has been read to its end */
    int64_t last_seq;
    size_t n = store_event_count_after(p->db, from < 0 ? 0 : from, &last_seq);
    p->snap_seq = last_seq;
    /* The file on disk covers last_seq only when nothing after it is replayed; otherwise the
       next clean stop or interval must write one even if nothing more is journaled. */
    p->snap_current = p->snap_current && n == 0;
    p->snap_mono = fw_mono_ns();
    int rc = store_begin(p->db);
    if (!rc) {
        p->quiet = 1;
        if (p->orch)
            orch_set_quiet(p->orch, 1);
        cases_set_quiet(p->cases, 1);
        rc = store_events_scan_after(p->db, from, recover_one, p);
        p->quiet = 0;
        if (p->orch)
            orch_set_quiet(p->orch, 0);
        cases_set_quiet(p->cases, 0);
    }
    if (!rc) {
        int64_t now;
        if (p->virtual_clock) {
            int64_t saved = stored_clock(p);
            now = saved != FW_TIME_NONE ? saved : engine_now(p->engine);
        } else {
            now = fw_wall_now();
            if (p->last_applied != FW_TIME_NONE && p->last_applied > now)
                now = p->last_applied;
        }
        engine_prepare(p->engine, now); /* wake-ups that fell due while we were down */
        if (p->virtual_clock)
            rc = save_clock(p);
    }
    if (!rc && p->sink_failed)
        rc = FW_EDB;
    if (!rc)
        rc = store_commit(p->db);
    if (rc) {
        /* The connection's error, before the rollback replaces it. */
        snprintf(p->rebuild_error, sizeof p->rebuild_error, "%s", store_errmsg(p->db));
        store_rollback(p->db);
        log_error("recovery failed: %s", p->rebuild_error);
        return rc;
    }
    p->stale = 0;
    if (from >= 0)
        log_info("recovered from the snapshot at journal row %" PRId64 " and replayed %zu rows "
                 "after it: %zu customers, %zu pending wake-ups in %.3f s", from, n,
                 engine_customer_count(p->engine), engine_pending_timers(p->engine),
                 (double)(fw_mono_ns() - started) / 1e9);
    else
        log_info("recovered %zu events, %zu customers, %zu pending wake-ups in %.3f s", n,
                 engine_customer_count(p->engine), engine_pending_timers(p->engine),
                 (double)(fw_mono_ns() - started) / 1e9);
    return 0;
}

/* ---- the engine thread ---- */

static void observe_latency(struct pipeline *p, double secs)
{
    size_t b = 0;
    while (b < PIPELINE_LAT_BUCKETS && secs > pipeline_lat_bounds[b])
        b++;
    p->m.lat_count[b]++;
    p->m.lat_sum += secs;
    p->m.lat_n++;
}

/* An API write, in a transaction of its own, so a refusal rolls back only itself. */
static void run_one(struct pipeline *p, struct work *w)
{
    int rc = store_begin(p->db);
    if (rc) {
        w->rc = rc;
        return;
    }
    pthread_mutex_lock(&p->engine_mu);
    int64_t now = engine_now(p->engine);
    pthread_mutex_unlock(&p->engine_mu);
    w->rc = w->fn(w->fn_ctx, p->db, now);
    if (w->rc)
        store_rollback(p->db);
    else if ((w->rc = store_commit(p->db)))
        store_rollback(p->db);
}

/* Apply one group of work inside one transaction. Returns 0 or FW_EDB. */
/* The dispatcher's reports of its deliveries (counted apart from producers' events). */
static int is_delivery_outcome(const char *type)
{
    return !strcmp(type, "message.sent") || !strcmp(type, "message.failed");
}

/*
 * A producer's batch whose ids were stored before with other payloads is
 * refused whole, before anything of it is journaled or applied: each such
 * event's outcome says OUTCOME_CONFLICT.  Returns 0 or FW_EDB.
 */
static int conflicts(struct pipeline *p, struct work *w)
{
    for (size_t i = 0; i < w->batch->n; i++) {
        int same = 1, rc = store_event_same(p->db, &w->batch->events[i], &same);
        if (rc == FW_EDB)
            return rc;
        if (!rc && !same) {
            w->outcomes[i] = OUTCOME_CONFLICT;
            w->refused = 1;
            w->rc = FW_EEXISTS;
        }
    }
    return 0;
}

static int process(struct pipeline *p, struct work *group, size_t *accepted, size_t *dups)
{
    if (p->stale) {
        /*
         * A rebuild after a failed commit could not read the journal (the
         * I/O error went on): what the engine holds may be short of the
         * journal, and deciding on it could fire a detection twice or miss
         * one.  Try again now; until it works nothing is applied (503).
         */
        pthread_mutex_lock(&p->engine_mu);
        int rrc = rebuild(p);
        pthread_mutex_unlock(&p->engine_mu);
        if (rrc)
            return FW_EDB;
        log_info("the engine is rebuilt from the journal; accepting events again");
    }
    int rc = store_begin(p->db);
    if (rc)
        return rc;
    pthread_mutex_lock(&p->engine_mu);
    p->sink_failed = 0;
    int64_t now = p->virtual_clock ? engine_now(p->engine) : fw_wall_now();
    if (!p->virtual_clock) {
        if (p->last_applied != FW_TIME_NONE && now < p->last_applied)
            now = p->last_applied; /* the wall clock stepped back: hold time still */
        /* Strictly before now, as recovery does before the events applied at now. */
        engine_prepare(p->engine, now);
    }
    for (struct work *w = group; w && !rc; w = w->next) {
        if (w->kind == WORK_RUN)
            continue; /* run_one did it, in its own transaction */
        if (w->kind == WORK_CLOCK) {
            /* Journal the move so that recovery repeats it at the same point. */
            char id[FW_TIME_MAXLEN + 32], ts[FW_TIME_MAXLEN];
            fw_time_format(w->clock, ts);
            snprintf(id, sizeof id, "forewarn-clock:%s", ts);
            json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:{}}", "specversion", "1.0", "id", id,
                                  "type", CLOCK_TYPE, "time", ts, "data");
            struct event ev = {.id = id, .type = CLOCK_TYPE, .time = w->clock, .json = j,
                               .data = json_object_get(j, "data")};
            int dup;
            rc = store_event_append(p->db, &ev, NULL, w->clock, &dup);
            json_decref(j);
            engine_advance(p->engine, w->clock);
            continue;
        }
        if (w->bodies && !w->check && w->outcomes && (rc = conflicts(p, w)))
            break;
        if (w->refused)
            continue; /* an id reused with another payload: nothing of it is written */
        /* A batch is history as a whole, journaled and applied in event-time order
           (engine_apply judges each customer's events as of their times); the journal keeps
           this order, so recovery repeats it. */
        size_t *order = ingest_time_order(w->batch);
        for (size_t k = 0; k < w->batch->n && !rc; k++) {
            size_t i = order[k];
            const struct event *ev = &w->batch->events[i];
            int64_t at = now;
            if (p->virtual_clock && ev->time > engine_now(p->engine))
                at = ev->time; /* the virtual clock follows event time, as in replay */
            else if (p->virtual_clock)
                at = engine_now(p->engine);
            if (w->check) {
                /* A person's action is judged against the cases as they are at its moment. */
                engine_prepare(p->engine, at);
                int crc;
                if (!strcmp(ev->type, RULES_KNOWN_ISSUE_TYPE)) {
                    crc = p->orch ? orch_known_check(p->orch, ev, w->why, w->why_len) : FW_ESTATE;
                    if (!p->orch)
                        snprintf(w->why, w->why_len, "outreach is off: known issues need it");
                } else {
                    crc = cases_check(p->cases, ev, w->why, w->why_len, w->case_id);
                }
                if (crc) {
                    w->refused = 1;
                    w->rc = crc;
                    break; /* nothing of it is journaled */
                }
            }
            int dup = 0;
            rc = store_event_append(p->db, ev, w->bodies ? w->bodies[i] : NULL, at, &dup);
            if (rc)
                break;
            if (w->outcomes)
                w->outcomes[i] = dup ? OUTCOME_DUPLICATE : OUTCOME_ACCEPTED;
            if (dup) {
                (*dups)++;
                continue;
            }
            int64_t t0 = fw_mono_ns();
            engine_prepare(p->engine, at);
            engine_apply(p->engine, ev);
            observe_latency(p, (double)(fw_mono_ns() - t0) / 1e9);
            p->last_applied = at;
            if (is_delivery_outcome(ev->type)) {
                p->group_outcomes++;      /* our own report, not a producer's event */
                p->commit.messages = 1;   /* a message's status changed (the console shows it) */
            } else
                (*accepted)++;
        }
        free(order);
    }
    if (!rc && p->virtual_clock)
        rc = save_clock(p);
    if (!rc && p->sink_failed)
        rc = FW_EDB;
    if (!rc)
        rc = store_commit(p->db);
    if (rc) {
        log_error("transaction failed (%s); rebuilding the engine from the journal",
                  store_errmsg(p->db));
        store_rollback(p->db);
        rebuild(p);
    }
    pthread_mutex_unlock(&p->engine_mu);
    return rc;
}

static void *engine_thread(void *arg)
{
    struct pipeline *p = arg;
    pthread_setname_np(pthread_self(), "fw-engine"); /* for top -H, gdb and the fault VFS */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop) {
            int64_t next = FW_TIME_MAX;
            if (p->stale) {
                /* Rebuild again in a second (wake-ups too wait for a whole engine). */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                if (pthread_cond_timedwait(&p->work_cv, &p->mu, &ts) == ETIMEDOUT)
                    break;
                continue;
            }
            if (!p->virtual_clock) {
                pthread_mutex_lock(&p->engine_mu);
                next = engine_next_wakeup(p->engine);
                pthread_mutex_unlock(&p->engine_mu);
            }
            if (next == FW_TIME_MAX) {
                pthread_cond_wait(&p->work_cv, &p->mu);
                continue;
            }
            /*
             * Wake-ups fire once the clock is past their due time (events at
             * exactly that millisecond come first, see engine_prepare).
             */
            if (next < fw_wall_now())
                break; /* a wake-up is due: process an empty group */
            next++;
            struct timespec ts = {.tv_sec = (time_t)(next / 1000),
                                  .tv_nsec = (long)(next % 1000) * 1000000L};
            pthread_cond_timedwait(&p->work_cv, &p->mu, &ts); /* CLOCK_REALTIME */
        }
        if (p->stop && !p->head)
            break;
        struct work *group = p->head;
        p->head = p->tail = NULL;
        pthread_mutex_unlock(&p->mu);

        size_t accepted = 0, dups = 0, nother = 0;
        p->group_outcomes = 0;
        memset(&p->commit, 0, sizeof p->commit);
        for (struct work *w = group; w; w = w->next) {
            if (w->kind == WORK_RUN) {
                run_one(p, w);
                p->commit.all = 1; /* a person's action: approved, retried... */
            } else {
                nother++;
            }
        }
        /* No work at all means a wake-up fell due: process the empty group to fire it. */
        int rc = nother || !group ? process(p, group, &accepted, &dups) : 0;
        if (rc)
            p->commit.all = 1; /* rolled back and rebuilt */
        p->commit.engine_now = pipeline_now(p);
        if (p->opts.committed)
            p->opts.committed(p->opts.committed_ctx, &p->commit);

        pthread_mutex_lock(&p->mu);
        if (rc) {
            p->m.commit_failures++;
        } else {
            p->m.commits++;
            p->m.accepted += accepted;
            p->m.outcomes += p->group_outcomes;
            p->m.duplicates += dups;
        }
        for (struct work *w = group; w;) {
            struct work *next = w->next;
            if (w->kind != WORK_RUN && !(w->refused && !rc))
                w->rc = rc;
            w->done = 1;
            /* Signalled under mu: its submitter sees done (and frees w) only after we unlock. */
            pthread_cond_signal(&w->done_cv);
            w = next;
        }
        if (p->opts.snapshot_every > 0 &&
            fw_mono_ns() - p->snap_mono >= p->opts.snapshot_every * 1000000) {
            pthread_mutex_unlock(&p->mu);
            snapshot_write(p, "every");
            pthread_mutex_lock(&p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    snapshot_write(p, "clean stop");
    return NULL;
}

static int submit(struct pipeline *p, struct work *w)
{
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
        pthread_mutex_unlock(&p->mu);
        return FW_ESTATE;
    }
    w->next = NULL;
    pthread_cond_init(&w->done_cv, NULL);
    if (p->tail)
        p->tail->next = w;
    else
        p->head = w;
    p->tail = w;
    pthread_cond_signal(&p->work_cv);
    while (!w->done)
        pthread_cond_wait(&w->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&w->done_cv);
    return w->rc;
}

int pipeline_ingest(struct pipeline *p, const struct ingest_batch *batch,
                    char *const *bodies, enum ingest_outcome *outcomes)
{
    struct work w = {.kind = WORK_EVENTS, .batch = batch, .bodies = bodies, .outcomes = outcomes};
    return submit(p, &w);
}

int pipeline_act(struct pipeline *p, const struct event *ev, char *body, char *why,
                 size_t why_len, char case_id[24])
{
    struct ingest_batch batch = {.events = (struct event *)ev, .n = 1};
    char *bodies[1] = {body};
    enum ingest_outcome outcome;
    why[0] = 0;
    struct work w = {.kind = WORK_EVENTS, .batch = &batch, .bodies = bodies,
                     .outcomes = &outcome, .check = 1, .why = why, .why_len = why_len,
                     .case_id = case_id};
    return submit(p, &w);
}

json_t *pipeline_known_json(struct pipeline *p)
{
    pthread_mutex_lock(&p->engine_mu);
    json_t *list = orch_known_json(p->orch);
    pthread_mutex_unlock(&p->engine_mu);
    return list;
}

int pipeline_known_check(struct pipeline *p, const struct event *ev, char *why, size_t why_len)
{
    if (!p->orch) {
        snprintf(why, why_len, "outreach is off: known issues need it");
        return FW_ESTATE;
    }
    pthread_mutex_lock(&p->engine_mu);
    int rc = orch_known_check(p->orch, ev, why, why_len);
    pthread_mutex_unlock(&p->engine_mu);
    return rc;
}

void pipeline_with_cases(struct pipeline *p,
                         void (*fn)(void *ctx, const struct cases *cs, const struct engine *e),
                         void *ctx)
{
    pthread_mutex_lock(&p->engine_mu);
    fn(ctx, p->cases, p->engine);
    pthread_mutex_unlock(&p->engine_mu);
}

int pipeline_set_clock(struct pipeline *p, int64_t t)
{
    if (!p->virtual_clock)
        return FW_ESTATE;
    pthread_mutex_lock(&p->engine_mu);
    int64_t now = engine_now(p->engine);
    pthread_mutex_unlock(&p->engine_mu);
    if (t < now)
        return FW_EINVAL;
    struct work w = {.kind = WORK_CLOCK, .clock = t};
    return submit(p, &w);
}

int pipeline_virtual(const struct pipeline *p)
{
    return p->virtual_clock;
}

void pipeline_note_rejected(struct pipeline *p, size_t n)
{
    pthread_mutex_lock(&p->mu);
    p->m.rejected += n;
    pthread_mutex_unlock(&p->mu);
}

void pipeline_with_engine(struct pipeline *p, void (*fn)(void *ctx, const struct engine *e),
                          void *ctx)
{
    pthread_mutex_lock(&p->engine_mu);
    fn(ctx, p->engine);
    pthread_mutex_unlock(&p->engine_mu);
}

void pipeline_metrics(struct pipeline *p, struct pipeline_metrics *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->m;
    pthread_mutex_unlock(&p->mu);
}

const struct rules *pipeline_rules(const struct pipeline *p)
{
    return p->rules;
}

int pipeline_run(struct pipeline *p, int (*fn)(void *ctx, struct store *db, int64_t engine_now),
                 void *ctx)
{
    struct work w = {.kind = WORK_RUN, .fn = fn, .fn_ctx = ctx};
    return submit(p, &w);
}

int64_t pipeline_now(struct pipeline *p)
{
    if (!p->virtual_clock)
        return fw_wall_now();
    pthread_mutex_lock(&p->engine_mu);
    int64_t now = engine_now(p->engine);
    pthread_mutex_unlock(&p->engine_mu);
    return now;
}

int pipeline_start(struct pipeline **out, char *err, size_t errlen, struct rules *rules,
                   struct store *writer, const struct pipeline_opts *opts)
{
    struct pipeline *p = xcalloc(1, sizeof *p);
    p->rules = rules;
    p->db = writer;
    p->opts = *opts;
    p->virtual_clock = opts->virtual_clock;
    cases_config_init(&p->ccfg);
    p->ccfg.sla = opts->sla;
    p->ccfg.playbooks = opts->playbooks;
    p->ccfg.sentiment = opts->sentiment;
    if (opts->min_history)
        p->ccfg.min_history = opts->min_history;
    if (opts->weights)
        p->ccfg.weights = *opts->weights;
    if (opts->orch) /* follow-up tasks after outreach: outreach.followup_task */
        memcpy(p->ccfg.followup_task, opts->orch->followup_task, sizeof p->ccfg.followup_task);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->engine_mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    int rc = rebuild(p);
    if (rc) {
        snprintf(err, errlen, "%s", p->rebuild_error[0] ? p->rebuild_error : fw_strerror(rc));
        pipeline_stop(p);
        return rc;
    }
    if (pthread_create(&p->thread, NULL, engine_thread, p)) {
        log_error("cannot start the engine thread: %s", strerror(errno));
        pipeline_stop(p);
        return FW_ESTATE;
    }
    *out = p;
    return 0;
}

void pipeline_stop(struct pipeline *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    int running = p->thread != 0;
    p->stop = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    if (running)
        pthread_join(p->thread, NULL);
    orch_free(p->orch); /* cancels its engine timers first */
    cases_free(p->cases);
    engine_free(p->engine);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->engine_mu);
    pthread_cond_destroy(&p->work_cv);
    free(p);
}
