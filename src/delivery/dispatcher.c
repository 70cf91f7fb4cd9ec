/*
 * dispatcher.c -- one worker thread per connector (email, sms, push,
 * slack, zendesk for its three ticket channels, webhook, in_app, chatbot),
 * each with its own read-write SQLite connection and libcurl handle, so a
 * slow or failing receiver only ever delays its own channel.
 *
 * A worker claims one due message at a time (store_outbox_claim marks it
 * `sending`), makes one attempt through its connector and records the
 * outcome: `sent` (and a message.sent event), or `retrying` with a backoff
 * (capped at backoff_max, for retry_for after the first failure: hours, so
 * a receiver's deploy or outage delays messages and drops none), or `dead`
 * when that window has passed (gave_up "expired") or the receiver refused
 * it for good ("refused"), with a message.failed event.
 *
 * Dead letters are re-driven automatically: the first delivery a worker
 * makes through its connector (in this process, and after each expiry)
 * puts its channels' expired dead letters back to `retrying`, with the
 * same idempotency key; refused ones wait for a person (the API).  A channel without a configured connector marks
 * its messages `stored`: rendered and kept, nothing leaves the machine.
 *
 * Waiting: no polling.  When nothing is due a worker sleeps on its
 * condition variable until dispatcher_kick (new messages, or the engine
 * clock moved) or until the earliest due time it knows of.  Retry times
 * are wall-clock (engine-clock with hooks->retry_on_engine_clock, and then
 * they are waited for like send_at), so a timed wait reaches them.  send_at is engine time:
 * in production that clock is the wall clock and a timed wait reaches it
 * too; a virtual clock moves only when told, so when a timed wait for it
 * ends with the engine clock where it was, the worker waits for a kick
 * instead of waking again (one spurious wake-up per kick at most).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "delivery/delivery_int.h"
#include "store/messages.h"
#include "store/store.h"
#include "util/fwtime.h"
#include "util/log.h"
#include "util/util.h"

#define DB_RETRY_MS 1000 /* after a database error, look again this much later */
#define WAIT_MAX_MS FW_DAY
#define STUCK_MAX 64 /* rows whose outcome could not be recorded, kept to requeue */

struct worker {
    struct dispatcher *d;
    const struct connector *conn;
    int configured; /* the connector has its settings */
    pthread_t thread;
    int started;
    pthread_mutex_t mu; /* guards kicks, stop and engine_due */
    pthread_cond_t cv;  /* signalled by kick and stop; waits on CLOCK_MONOTONIC */
    uint64_t kicks;
    int stop;
    int64_t engine_due; /* earliest send_at of its waiting messages (engine time), or INT64_MAX */
    struct store *db; /* this worker's own connection */
    CURL *curl;
    uint64_t rng; /* xorshift64* state, for jitter */
    int redrive;  /* expired dead letters may exist: re-drive them at the next delivery */
    int64_t probe_at; /* retry clock: when to probe the receiver (redrive set); 0: not yet set */
    /*
     * Messages this worker attempted but could not record the outcome of
     * (disk full, I/O error): left `sending`, they are requeued as soon as
     * the database takes writes again, not only at the next start, and
     * sent again under the same key (the receiver drops a repeat).
     */
    char *stuck[STUCK_MAX];
    int nstuck;
};

struct dispatcher {
    const struct delivery_config *cfg;
    const struct delivery_hooks *hooks;
    struct worker *w;
    size_t n;
};

int64_t delivery__backoff(const struct delivery_config *c, int attempts, uint64_t rnd)
{
    int64_t d = c->backoff_base > 0 ? c->backoff_base : 1;
    for (int i = 1; i < attempts && d < c->backoff_max; i++)
        d *= 2;
    if (d > c->backoff_max)
        d = c->backoff_max;
    /* Uniform in [d/2, d], rounding the lower bound up so it never falls below 50%. */
    int64_t lo = (d + 1) / 2;
    int64_t v = lo + (int64_t)(rnd % (uint64_t)(d - lo + 1));
    return v > 0 ? v : 1;
}

int64_t delivery__retry_at(const struct delivery_config *c, int attempts, int64_t first,
                           int64_t now, uint64_t rnd)
{
    if (c->max_attempts > 0 && attempts >= c->max_attempts)
        return 0;
    int64_t limit = (first ? first : now) + c->retry_for;
    if (now >= limit)
        return 0;
    int64_t at = now + delivery__backoff(c, attempts, rnd);
    return at < limit ? at : limit;
}

static uint64_t next_random(struct worker *w)
{
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int64_t clock_engine(const struct worker *w)
{
    const struct delivery_hooks *h = w->d->hooks;
    return h && h->engine_now ? h->engine_now(h->ctx) : fw_wall_now();
}

/* The clock retry times are on: the wall clock, or the engine clock when told (virtual). */
static int64_t clock_retry(const struct worker *w)
{
    const struct delivery_hooks *h = w->d->hooks;
    return h && h->retry_on_engine_clock ? clock_engine(w) : fw_wall_now();
}

static int stopping(struct worker *w)
{
    pthread_mutex_lock(&w->mu);
    int s = w->stop;
    pthread_mutex_unlock(&w->mu);
    return s;
}

/* A CloudEvent about a delivery outcome, handed to the server's report hook. */
static void report(struct worker *w, const char *type, const char *id,
                   const struct outbox_msg *m, json_t *data)
{
    const struct delivery_hooks *h = w->d->hooks;
    if (!h || !h->report) {
        json_decref(data);
        return;
    }
    char when[FW_TIME_MAXLEN];
    fw_time_format(clock_engine(w), when);
    json_t *ev = json_object();
    json_object_set_new(ev, "specversion", json_string("1.0"));
    json_object_set_new(ev, "id", delivery__jstr(id));
    json_object_set_new(ev, "source", json_string("/forewarn/delivery"));
    json_object_set_new(ev, "type", json_string(type));
    if (m->customer)
        json_object_set_new(ev, "subject", delivery__jstr(m->customer));
    json_object_set_new(ev, "time", json_string(when));
    json_object_set_new(ev, "data", data);
    h->report(h->ctx, ev);
}

/*
 * What both outcome events say about the message: which one, on which
 * channel and connector, to which audience, what kind of message it is
 * (the orchestrator's kind, the first field of its key: "alert",
 * "connector_down" ...; null for a key of another shape), after how many
 * attempts.  The orchestrator tells its own failure alerts apart by kind,
 * and aggregates failures per connector.
 */
static json_t *outcome_data(const struct worker *w, const struct outbox_msg *m)
{
    json_t *data = json_object();
    json_object_set_new(data, "message_id", delivery__jstr(m->id));
    json_object_set_new(data, "channel", delivery__jstr(m->channel));
    json_object_set_new(data, "connector", json_string(w->conn->name));
    json_object_set_new(data, "audience", delivery__jstr(m->audience));
    const char *bar = m->key ? strchr(m->key, '|') : NULL;
    json_object_set_new(data, "kind",
                        bar ? json_stringn(m->key, (size_t)(bar - m->key)) : json_null());
    json_object_set_new(data, "attempts", json_integer(m->attempts));
    return data;
}

static void report_sent(struct worker *w, const struct outbox_msg *m)
{
    char id[256];
    snprintf(id, sizeof id, "sent:%s", m->id);
    report(w, "message.sent", id, m, outcome_data(w, m));
}

static void report_failed(struct worker *w, const struct outbox_msg *m, const char *error,
                          int64_t wall_now)
{
    /* A dead letter can be retried through the API and die again: a new event each time. */
    char id[256];
    snprintf(id, sizeof id, "failed:%s:%lld", m->id, (long long)wall_now);
    json_t *data = outcome_data(w, m);
    json_object_set_new(data, "error", delivery__jstr(error));
    report(w, "message.failed", id, m, data);
}

static void remember_stuck(struct worker *w, const char *id)
{
    if (w->nstuck < STUCK_MAX)
        w->stuck[w->nstuck++] = xstrdup(id);
    else
        log_error("delivery: %s: too many unrecorded outcomes; %s waits for the next start",
                  w->conn->name, id);
}

/* Requeue what could not be recorded; 0 when all are done, FW_EDB while the database refuses. */
static int requeue_stuck(struct worker *w)
{
    while (w->nstuck) {
        char *id = w->stuck[w->nstuck - 1];
        int rc = store_outbox_requeue_one(w->db, id, fw_wall_now());
        if (rc == FW_EDB)
            return rc;
        log_info("delivery: %s %s requeued: its outcome could not be recorded", w->conn->name,
                 id);
        free(id);
        w->nstuck--;
    }
    return 0;
}

/*
 * The connector just delivered: it is healthy, so the dead letters that
 * died of it being down go out again, under their own idempotency keys.
 * Refused ones stay (the receiver said no; a person decides).
 */
static void redrive(struct worker *w)
{
    struct redrive_filter f = {.channels = w->conn->channels, .expired_only = 1};
    int n = store_outbox_redrive(w->db, &f, fw_wall_now());
    if (n < 0) {
        log_error("delivery: %s delivered again, but its dead letters cannot be re-driven",
                  w->conn->name);
        return; /* the flag stays: the next delivery tries again */
    }
    w->redrive = 0;
    if (n)
        log_info("delivery: %s delivers again: %d dead letter%s re-driven", w->conn->name, n,
                 n == 1 ? "" : "s");
}

/*
 * Probes.  A connector that gets no traffic would keep its expired dead
 * letters until its next message, however long ago its receiver came back.
 * So while a worker may have some (redrive), every probe_interval on the
 * retry clock it asks the receiver whether it is there with its
 * connector's probe (HTTP HEAD of its URL, SMTP EHLO + NOOP; nothing is
 * delivered), if dead letters that expired are still waiting; when the
 * receiver answers, they are re-driven (redrive(), the same path as after
 * a delivery), and go out at once.  Returns 1 when it re-drove some.
 */
static int probe(struct worker *w)
{
    const struct delivery_config *cfg = w->d->cfg;
    if (!w->redrive || !w->configured || !w->conn->probe || cfg->probe_interval <= 0)
        return 0;
    int64_t now = clock_retry(w);
    if (!w->probe_at || now < w->probe_at) {
        if (!w->probe_at)
            w->probe_at = now + cfg->probe_interval;
        return 0;
    }
    w->probe_at = now + cfg->probe_interval;
    int n = store_outbox_expired_count(w->db, w->conn->channels);
    if (n <= 0) {
        if (n == 0) {
            w->redrive = 0; /* none: a new expiry sets it again */
            w->probe_at = 0;
        }
        return 0;
    }
    struct dattempt a = {.cfg = cfg, .curl = w->curl, .wall_now = fw_wall_now()};
    if (w->conn->probe(&a) != DRESULT_OK) {
        log_info("delivery: %s is still down (probe: %s); %d dead letter%s wait", w->conn->name,
                 a.err, n, n == 1 ? "" : "s");
        return 0;
    }
    log_info("delivery: %s answers its probe", w->conn->name);
    redrive(w);
    if (w->redrive)
        return 0; /* the database refused: the next probe tries again */
    w->probe_at = 0;
    return 1;
}

/* One attempt at one claimed message, and its outcome recorded. */
static void deliver(struct worker *w, const struct outbox_msg *m)
{
    const struct connector *c = w->conn;
    const struct delivery_config *cfg = w->d->cfg;
    struct dattempt a = {.cfg = cfg, .curl = w->curl, .wall_now = fw_wall_now()};
    int rc;

    if (!w->configured && !c->delivered_by_storing) {
        rc = store_outbox_sent(w->db, m->id, a.wall_now, "stored");
        if (rc)
            log_error("delivery: %s %s: cannot mark it stored: %s", m->channel, m->id,
                      fw_strerror(rc));
        return;
    }
    enum dresult res = w->configured && c->send ? c->send(&a, m) : DRESULT_OK;
    int64_t now = fw_wall_now(), rnow = clock_retry(w);
    if (res == DRESULT_OK) {
        rc = store_outbox_sent(w->db, m->id, now, "sent");
        if (rc) {
            /* Left `sending`: requeued at the next start and re-sent under the same key. */
            log_error("delivery: %s %s was delivered but cannot be marked sent: %s", m->channel,
                      m->id, fw_strerror(rc));
            remember_stuck(w, m->id);
            return;
        }
        log_debug("delivery: %s %s sent (attempt %d)", m->channel, m->id, m->attempts);
        delivery_metrics_count(DELIVERY_SENT, m->audience, m->channel, NULL);
        delivery_metrics_connector(c->name, c->channels, 0);
        report_sent(w, m);
        if (w->redrive && w->configured && c->send)
            redrive(w);
        return;
    }
    if (!a.err[0])
        snprintf(a.err, sizeof a.err, "delivery failed");
    int64_t retry_at = res == DRESULT_PERMANENT
                           ? 0
                           : delivery__retry_at(cfg, m->attempts, m->first_failed_at, rnow,
                                                next_random(w));
    int dead = retry_at == 0;
    const char *gave_up = !dead ? NULL : res == DRESULT_PERMANENT ? "refused" : "expired";
    rc = store_outbox_failed(w->db, m->id, a.err, retry_at, gave_up, rnow, now);
    if (rc) {
        log_error("delivery: %s %s: cannot record the failure: %s", m->channel, m->id,
                  fw_strerror(rc));
        remember_stuck(w, m->id);
        return;
    }
    delivery_metrics_count(DELIVERY_FAILED, m->audience, m->channel, NULL);
    if (dead) {
        delivery_metrics_count(DELIVERY_DEAD, m->audience, m->channel, NULL);
        delivery_metrics_connector(c->name, c->channels, 1);
        if (!strcmp(gave_up, "expired")) {
            w->redrive = 1;
            w->probe_at = 0; /* the first probe one interval from now */
        }
        log_error("delivery: %s %s is dead (%s) after %d attempt%s: %s", m->channel, m->id,
                  gave_up, m->attempts, m->attempts == 1 ? "" : "s", a.err);
        report_failed(w, m, a.err, now);
    } else {
        log_warn("delivery: %s %s attempt %d failed, retrying in %lldms: %s", m->channel, m->id,
                 m->attempts, (long long)(retry_at - rnow), a.err);
    }
}

/*
 * Claim and deliver until nothing is due.  *E and *W are left at the clock
 * readings of the last (empty) claim, which is what the next due times are
 * compared against.  Returns the number delivered, or FW_EDB.
 */
static int drain(struct worker *w, int64_t *E, int64_t *W)
{
    int total = 0;
    *E = clock_engine(w);
    *W = clock_retry(w);
    if (requeue_stuck(w))
        return FW_EDB;
    for (;;) {
        int got = 0;
        *E = clock_engine(w);
        *W = clock_retry(w);
        for (const char *const *ch = w->conn->channels; *ch; ch++) {
            if (stopping(w))
                return total;
            struct outbox_msg m;
            int n = store_outbox_claim(w->db, *ch, *E, *W, &m, 1);
            if (n < 0)
                return FW_EDB;
            if (n == 1) {
                deliver(w, &m);
                outbox_msg_cleanup(&m);
                got++;
            }
        }
        if (!got)
            return total;
        total += got;
    }
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[16]; /* the kernel keeps 15 characters */
    snprintf(name, sizeof name, "fw-deliver-%s", w->conn->name);
    pthread_setname_np(pthread_self(), name);
    uint64_t seen = 0;
    /* The engine time that stood still through a whole timed wait for it (virtual clock). */
    int64_t stalled = FW_TIME_NONE;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int stop = w->stop;
        if (w->kicks != seen) {
            seen = w->kicks;
            stalled = FW_TIME_NONE;
        }
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;

        int64_t E, W, deadline = INT64_MAX, e_next = INT64_MAX;
        int engine_armed = 0;
        int rc = drain(w, &E, &W);
        if (rc < 0 || w->nstuck) {
            /* The database refused a write: look again soon, and requeue what is stuck then
               (no kick may come: the stuck rows are `sending`, due for no one). */
            deadline = fw_wall_now() + DB_RETRY_MS;
        }
        if (rc >= 0 && probe(w))
            continue; /* re-driven: due now */
        if (rc >= 0) {
            int64_t e_at = INT64_MAX, w_at = INT64_MAX;
            if (w->redrive && w->probe_at)
                w_at = w->probe_at; /* the next probe is on the retry clock */
            for (const char *const *ch = w->conn->channels; *ch; ch++) {
                int64_t e, wl;
                if (store_outbox_next(w->db, *ch, &e, &wl)) {
                    deadline = fw_wall_now() + DB_RETRY_MS;
                    continue;
                }
                e_at = min64(e_at, e);
                w_at = min64(w_at, wl);
            }
            /* Retries on the engine clock are waited for as send_at is. */
            if (w->d->hooks && w->d->hooks->retry_on_engine_clock) {
                e_at = min64(e_at, w_at);
                w_at = INT64_MAX;
            }
            /*
             * Times at or before the last claim's clocks were due then and
             * not claimable (a row in an unexpected state): a kick looks
             * again; waking for them would spin.
             */
            if (w_at != INT64_MAX && w_at > W)
                deadline = min64(deadline, W + min64(w_at - W, WAIT_MAX_MS));
            if (e_at != INT64_MAX && e_at > E)
                e_next = e_at;
            if (e_at != INT64_MAX && e_at > E && E != stalled) {
                /* W is the wall clock here unless retries are on the engine clock. */
                int64_t base = w->d->hooks && w->d->hooks->retry_on_engine_clock ? fw_wall_now() : W;
                int64_t at = base + min64(e_at - E, WAIT_MAX_MS);
                if (at < deadline) {
                    deadline = at;
                    engine_armed = 1;
                }
            }
        }

        /*
         * Publish the engine time we wait for, then read the clock: a
         * notify that ran before we published saw the clock already moved,
         * so the read sees it too; one that runs after sees engine_due.
         */
        int64_t due = e_next;
        pthread_mutex_lock(&w->mu);
        w->engine_due = due;
        pthread_mutex_unlock(&w->mu);
        if (due != INT64_MAX && clock_engine(w) >= due)
            continue;
        int timed_out = 0;
        pthread_mutex_lock(&w->mu);
        while (!w->stop && w->kicks == seen) {
            if (deadline == INT64_MAX) {
                pthread_cond_wait(&w->cv, &w->mu);
                continue;
            }
            int64_t left = deadline - fw_wall_now();
            if (left <= 0) {
                timed_out = 1;
                break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += left / 1000;
            ts.tv_nsec += (left % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT) {
                timed_out = 1;
                break;
            }
        }
        pthread_mutex_unlock(&w->mu);
        if (timed_out && engine_armed)
            stalled = E;
    }
    return NULL;
}

static void worker_cleanup(struct worker *w)
{
    for (int i = 0; i < w->nstuck; i++)
        free(w->stuck[i]); /* still `sending` in the database: requeued at the next start */
    if (w->curl)
        curl_easy_cleanup(w->curl);
    store_close(w->db);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

int dispatcher_start(struct dispatcher **out, const struct delivery_config *cfg,
                     const char *db_path, const struct delivery_hooks *hooks)
{
    char err[512];
    size_t n = 0, i;
    *out = NULL;
    while (delivery__connectors[n])
        n++;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("delivery: cannot initialise libcurl");
        return FW_EIO;
    }
    struct dispatcher *d = xcalloc(1, sizeof *d);
    d->cfg = cfg;
    d->hooks = hooks;
    d->w = xcalloc(n, sizeof *d->w);
    for (i = 0; i < n; i++) {
        struct worker *w = &d->w[i];
        w->d = d;
        w->conn = delivery__connectors[i];
        w->configured = !w->conn->configured || w->conn->configured(cfg);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cv, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_init(&w->mu, NULL);
        w->engine_due = INT64_MAX;
        w->redrive = 1; /* dead letters of an earlier run: re-driven at the first delivery */
        d->n = i + 1;
        if (store_open(db_path, 0, &w->db, err, sizeof err)) {
            log_error("delivery: %s worker: %s", w->conn->name, err);
            goto fail;
        }
        w->curl = curl_easy_init();
        if (!w->curl) {
            log_error("delivery: %s worker: cannot create a libcurl handle", w->conn->name);
            goto fail;
        }
        if (getrandom(&w->rng, sizeof w->rng, 0) != sizeof w->rng || !w->rng)
            w->rng = (uint64_t)fw_mono_ns() ^ ((uint64_t)i << 32) ^ 0x9E3779B97F4A7C15ULL;
    }
    /* Rows a crash left in flight go out again, under the same idempotency key. */
    int requeued = store_outbox_requeue(d->w[0].db, fw_wall_now());
    if (requeued < 0) {
        log_error("delivery: cannot requeue messages left sending");
        goto fail;
    }
    if (requeued)
        log_info("delivery: %d message%s left sending by the last run will be sent again",
                 requeued, requeued == 1 ? "" : "s");
    for (i = 0; i < n; i++) {
        struct worker *w = &d->w[i];
        if (w->configured && w->conn->send)
            delivery_metrics_connector(w->conn->name, w->conn->channels, 0);
        if (!w->configured && !w->conn->delivered_by_storing)
            log_info("delivery: %s is not configured; its messages are stored, not sent",
                     w->conn->name);
        if (pthread_create(&w->thread, NULL, worker_main, w)) {
            log_error("delivery: cannot start the %s worker", w->conn->name);
            goto fail;
        }
        w->started = 1;
    }
    *out = d;
    return 0;
fail:
    dispatcher_stop(d);
    return FW_EIO;
}

void dispatcher_kick(struct dispatcher *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        struct worker *w = &d->w[i];
        pthread_mutex_lock(&w->mu);
        w->kicks++;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
}

void dispatcher_notify(struct dispatcher *d, const char *const *channels, size_t nchannels,
                       int64_t engine_now)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        struct worker *w = &d->w[i];
        int wake = 0;
        for (const char *const *ch = w->conn->channels; *ch && !wake; ch++)
            for (size_t k = 0; k < nchannels && !wake; k++)
                wake = !strcmp(*ch, channels[k]);
        pthread_mutex_lock(&w->mu);
        if (wake || engine_now >= w->engine_due) {
            w->kicks++;
            pthread_cond_signal(&w->cv);
        }
        pthread_mutex_unlock(&w->mu);
    }
}

void dispatcher_stop(struct dispatcher *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        struct worker *w = &d->w[i];
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    for (size_t i = 0; i < d->n; i++) {
        if (d->w[i].started)
            pthread_join(d->w[i].thread, NULL);
        worker_cleanup(&d->w[i]);
    }
    free(d->w);
    free(d);
    curl_global_cleanup();
}
