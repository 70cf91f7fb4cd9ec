/*
 * stream.c -- GET /v1/stream: the console's live updates as Server-Sent
 * Events (text/event-stream).
 *
 * The engine thread calls http_notify after every group it commits (serve
 * passes its pipeline_commit on); a group that changed a case or stored a
 * message becomes one `change` event naming the cases, and on the virtual
 * clock a group that only moved the clock becomes a `clock` event.  Each
 * event carries the engine clock (`now`), so the page's countdowns follow
 * the server's time.  The page re-reads what it shows; events carry ids
 * and times, never customer data.
 *
 * Events live in a bounded ring (STREAM_RING) with ids "<boot>-<seq>": a
 * reconnect whose Last-Event-ID is in the ring gets what it missed, in
 * order; one from another process (boot differs) or older than the ring
 * gets a `reset` event, which tells the page to re-read everything.  The
 * journal is not used: most of what the console shows (SLA states,
 * messages' status) is not a journal row.
 *
 * Threads: libmicrohttpd serves many connections on each thread of its
 * pool, so a stream's content callback never blocks.  With nothing to
 * send it suspends its connection (MHD_suspend_connection, which MHD
 * allows from a content reader) and returns 0; whoever has something for
 * it resumes it: publish (a new event), the hub's ticker thread (a
 * keepalive comment every STREAM_KEEPALIVE_MS, which also finds clients
 * that went away, and the end of the response after STREAM_MAX_AGE_MS;
 * the browser reconnects on its own, resuming by id), and
 * http__stream_close (every stream ends before the daemon stops, which
 * must find no connection suspended).  Suspending and resuming happen
 * under the hub's mutex, so a wake-up is never lost between "nothing to
 * send" and the suspension.  At most STREAM_MAX_CLIENTS streams are open
 * at once (503 beyond).
 */
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http_int.h"
#include "util/fwtime.h"
#include "util/log.h"
#include "util/util.h"

#define STREAM_RING 256                 /* events kept for reconnects */
#define STREAM_DATA_MAX 1024            /* one event's JSON */
#define STREAM_MAX_CLIENTS 32           /* open streams */
#define STREAM_KEEPALIVE_MS 15000       /* a comment this often when nothing happens */
#define STREAM_MAX_AGE_MS (10 * 60000)  /* then the response ends and the browser reconnects */
#define STREAM_RETRY_MS 2000            /* the browser's reconnect delay */

struct stream_event {
    uint64_t seq;
    char type[12];
    char data[STREAM_DATA_MAX];
};

struct stream_hub {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the ticker's: signalled on close */
    pthread_t ticker;  /* resumes parked streams for keepalives and their age */
    int has_ticker;
    char boot[24];     /* this process's id prefix (start time, hex) */
    uint64_t last;     /* seq of the newest event (0: none yet) */
    struct stream_event ring[STREAM_RING]; /* seq s at ring[s % STREAM_RING] */
    int64_t last_now;  /* engine clock of the last published group */
    int virtual_clock;
    int clients;       /* open streams */
    int closing;
    struct stream_client *parked; /* streams whose connection is suspended */
};

/* One open stream: where it is in the ring, and the bytes not yet handed to MHD. */
struct stream_client {
    struct stream_hub *hub;
    uint64_t sent;      /* seq of the last event written */
    int reset;          /* the next thing to write is a reset */
    int hello;          /* the first chunk (retry, hello) is still to write */
    int64_t opened;     /* monotonic ms */
    int64_t keepalive;  /* monotonic ms of the next keepalive comment */
    struct MHD_Connection *conn;
    int is_parked;      /* on hub->parked, its connection suspended */
    struct stream_client *next_parked;
    char out[STREAM_DATA_MAX + 128];
    size_t len, off;
};

static int64_t mono_ms(void)
{
    return fw_mono_ns() / 1000000;
}

/* Resume every parked stream for which `due` holds (mu held); all when due is NULL. */
static void wake(struct stream_hub *h, int (*due)(const struct stream_client *, int64_t), int64_t t)
{
    struct stream_client **pp = &h->parked;
    while (*pp) {
        struct stream_client *c = *pp;
        if (due && !due(c, t)) {
            pp = &c->next_parked;
            continue;
        }
        *pp = c->next_parked;
        c->next_parked = NULL;
        c->is_parked = 0;
        MHD_resume_connection(c->conn);
    }
}

/* A parked stream owes a keepalive comment, or has reached its age. */
static int timer_due(const struct stream_client *c, int64_t t)
{
    return t >= c->keepalive || t - c->opened >= STREAM_MAX_AGE_MS;
}

/* The ticker: once a second, resume the parked streams whose timer is due. */
static void *ticker(void *arg)
{
    struct stream_hub *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->closing) {
        int64_t until = mono_ms() + 1000;
        struct timespec ts = {.tv_sec = (time_t)(until / 1000),
                              .tv_nsec = (long)(until % 1000) * 1000000L};
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        wake(h, timer_due, mono_ms());
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

struct stream_hub *http__stream_new(int virtual_clock, int64_t now)
{
    struct stream_hub *h = xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(h->boot, sizeof h->boot, "%" PRIx64, (uint64_t)fw_wall_now());
    h->virtual_clock = virtual_clock;
    h->last_now = now;
    h->has_ticker = !pthread_create(&h->ticker, NULL, ticker, h);
    if (!h->has_ticker) /* streams still get events; keepalives and the age limit wait for one */
        log_warn("http: cannot start the stream ticker thread");
    return h;
}

void http__stream_close(struct stream_hub *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->closing = 1;
    pthread_cond_broadcast(&h->cv);
    wake(h, NULL, 0); /* each ends at its next read */
    pthread_mutex_unlock(&h->mu);
    if (h->has_ticker)
        pthread_join(h->ticker, NULL);
    h->has_ticker = 0;
}

void http__stream_free(struct stream_hub *h)
{
    if (!h)
        return;
    if (!h->closing)
        http__stream_close(h);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

/* Append the event to the ring (mu held). */
static void publish(struct stream_hub *h, const char *type, const char *data)
{
    struct stream_event *e = &h->ring[++h->last % STREAM_RING];
    e->seq = h->last;
    snprintf(e->type, sizeof e->type, "%s", type);
    snprintf(e->data, sizeof e->data, "%s", data);
    wake(h, NULL, 0);
}

void http__stream_commit(struct stream_hub *h, const struct pipeline_commit *c)
{
    if (!h)
        return;
    int changed = c->all || c->ncases || c->cases_overflow || c->messages;
    pthread_mutex_lock(&h->mu);
    int moved = h->virtual_clock && c->engine_now != h->last_now;
    h->last_now = c->engine_now;
    if (!changed && !moved) {
        pthread_mutex_unlock(&h->mu);
        return;
    }
    char now[FW_TIME_MAXLEN];
    fw_time_format(c->engine_now, now);
    struct buf b;
    buf_init(&b, STREAM_DATA_MAX);
    buf_printf(&b, "{\"now\":\"%s\",\"clock\":\"%s\"", now, h->virtual_clock ? "virtual" : "wall");
    if (changed) {
        /* "any": a rolled-back group, a person's action on a message, or too many cases to list. */
        buf_printf(&b, ",\"any\":%s,\"messages\":%s,\"cases\":[",
                   c->all || c->cases_overflow ? "true" : "false", c->messages ? "true" : "false");
        for (size_t i = 0; i < c->ncases; i++) {
            if (i)
                buf_puts(&b, ",");
            buf_json_str(&b, c->cases[i], strlen(c->cases[i]));
        }
        buf_puts(&b, "]");
    }
    buf_puts(&b, "}");
    publish(h, changed ? "change" : "clock", b.data ? b.data : "{}");
    buf_cleanup(&b);
    pthread_mutex_unlock(&h->mu);
}

/*
 * Where a Last-Event-ID lets a stream resume: 0 and *after set when it
 * names an event of this process still in the ring (or the newest one);
 * 1 when the page must re-read (another process's id, too old, or
 * malformed).  mu held.
 */
static int resume_point(struct stream_hub *h, const char *id, uint64_t *after)
{
    size_t n = strlen(h->boot);
    if (strncmp(id, h->boot, n) || id[n] != '-')
        return 1;
    char *end = NULL;
    unsigned long long seq = strtoull(id + n + 1, &end, 10);
    if (!end || *end || end == id + n + 1 || seq > h->last)
        return 1;
    uint64_t oldest = h->last >= STREAM_RING ? h->last - STREAM_RING + 1 : 1;
    if (seq + 1 < oldest) /* the next event it needs is gone */
        return 1;
    *after = seq;
    return 0;
}

/* Format one event into c->out (mu held). */
static void put_event(struct stream_client *c, const char *type, uint64_t seq, const char *data)
{
    int n = snprintf(c->out, sizeof c->out, "event: %s\nid: %s-%" PRIu64 "\ndata: %s\n\n", type,
                     c->hub->boot, seq, data);
    c->len = n < 0 ? 0 : (size_t)n >= sizeof c->out ? sizeof c->out - 1 : (size_t)n;
    c->off = 0;
}

/* The hub's present as event data (mu held). */
static void now_data(struct stream_hub *h, const char *extra, char *out, size_t cap)
{
    char now[FW_TIME_MAXLEN];
    fw_time_format(h->virtual_clock ? h->last_now : fw_wall_now(), now);
    snprintf(out, cap, "{\"now\":\"%s\",\"clock\":\"%s\"%s}", now,
             h->virtual_clock ? "virtual" : "wall", extra);
}

/*
 * Fill c->out with the next thing to send: 0; 1 when the stream should end
 * (closing, or it reached its age); 2 when there is nothing to send yet, in
 * which case the connection is parked (suspended) until something wakes it.
 */
static int next_chunk(struct stream_client *c)
{
    struct stream_hub *h = c->hub;
    char data[256];
    int rc = 0;
    pthread_mutex_lock(&h->mu);
    if (c->hello) {
        /* retry: the reconnect delay; hello carries the id to resume from. */
        now_data(h, "", data, sizeof data);
        int n = snprintf(c->out, sizeof c->out, "retry: %d\n\n", STREAM_RETRY_MS);
        c->len = (size_t)n;
        c->off = 0;
        c->hello = 0;
        if (!c->reset) {
            int m = snprintf(c->out + c->len, sizeof c->out - c->len,
                             "event: hello\nid: %s-%" PRIu64 "\ndata: %s\n\n", h->boot,
                             c->sent, data);
            c->len += m < 0 ? 0 : (size_t)m;
        }
        goto out;
    }
    for (;;) {
        if (h->closing) {
            rc = 1;
            goto out;
        }
        if (c->reset) {
            now_data(h, ",\"reason\":\"the stream could not resume; read everything again\"",
                     data, sizeof data);
            put_event(c, "reset", h->last, data);
            c->sent = h->last;
            c->reset = 0;
            goto out;
        }
        if (c->sent < h->last) {
            uint64_t want = c->sent + 1;
            if (h->last - want >= STREAM_RING) { /* overrun while it was writing */
                c->reset = 1;
                continue;
            }
            const struct stream_event *e = &h->ring[want % STREAM_RING];
            put_event(c, e->type, e->seq, e->data);
            c->sent = want;
            goto out;
        }
        int64_t t = mono_ms();
        if (t - c->opened >= STREAM_MAX_AGE_MS) {
            rc = 1;
            goto out;
        }
        if (t >= c->keepalive) {
            c->len = (size_t)snprintf(c->out, sizeof c->out, ": keepalive\n\n");
            c->off = 0;
            goto out;
        }
        /* Nothing yet: park until publish, the ticker or close resumes it. */
        c->is_parked = 1;
        c->next_parked = h->parked;
        h->parked = c;
        MHD_suspend_connection(c->conn);
        rc = 2;
        goto out;
    }
out:
    if (rc == 0) /* something goes out: the next keepalive is due that long after it */
        c->keepalive = mono_ms() + STREAM_KEEPALIVE_MS;
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* MHD's content reader: never blocks; 0 bytes when the stream is parked until there is more. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_client *c = cls;
    (void)pos;
    if (c->off == c->len) {
        int rc = next_chunk(c);
        if (rc == 1)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (rc == 2)
            return 0;
    }
    size_t n = c->len - c->off < max ? c->len - c->off : max;
    memcpy(buf, c->out + c->off, n);
    c->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct stream_client *c = cls;
    pthread_mutex_lock(&c->hub->mu);
    c->hub->clients--;
    pthread_mutex_unlock(&c->hub->mu);
    free(c);
}

struct MHD_Response *http__stream_response(struct req *r)
{
    struct stream_client *c = r->stream;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, sizeof c->out, stream_read, c,
                                          stream_free);
    if (!resp) {
        stream_free(c);
        return NULL;
    }
    r->stream = NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* a proxy must not hold events */
    return resp;
}

/*
 * GET /v1/stream: open a stream (r->stream, answered by respond() through
 * http__stream_response), or 503 when closing or at STREAM_MAX_CLIENTS.
 */
static void get_stream(struct req *r)
{
    struct stream_hub *h = r->env->stream;
    const char *last = http_header(r, "Last-Event-ID");
    pthread_mutex_lock(&h->mu);
    if (h->closing || h->clients >= STREAM_MAX_CLIENTS) {
        int closing = h->closing;
        pthread_mutex_unlock(&h->mu);
        if (closing)
            http_error(r, 503, "the server is stopping");
        else
            http_error(r, 503, "too many live streams open (%d); the console falls back to "
                               "re-reading every 30 seconds", STREAM_MAX_CLIENTS);
        r->retry_after = 30;
        return;
    }
    struct stream_client *c = xcalloc(1, sizeof *c);
    c->hub = h;
    c->hello = 1;
    c->opened = mono_ms();
    c->keepalive = c->opened + STREAM_KEEPALIVE_MS;
    c->conn = r->conn;
    c->sent = h->last;
    if (last && *last && resume_point(h, last, &c->sent))
        c->reset = 1;
    h->clients++;
    pthread_mutex_unlock(&h->mu);
    r->stream = c;
    r->status = 200;
}

const struct route http_stream_routes[] = {
    /* Not audited: it carries case ids and times only, and reconnects would flood the trail. */
    {.method = "GET", .path = "/v1/stream", .roles = ROLES_READ, .handler = get_stream},
    {0},
};
