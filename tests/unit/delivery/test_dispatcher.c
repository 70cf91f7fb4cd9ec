/*
 * test_dispatcher.c -- the dispatcher's state machine with real threads,
 * a real database and a real (tiny) HTTP receiver on loopback: delivered,
 * stored, sent by storing, retried with backoff, dead, held for the engine
 * clock without polling, and re-sent under the same key after a crash.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../test.h"
#include "delivery/delivery_int.h"
#include "dtest.h"
#include "store/messages.h"
#include "store/store.h"
#include "util/fwtime.h"
#include "util/log.h"
#include "util/util.h"

/*
 * The workers log every retry and dead letter; the tests assert on the
 * rows and events instead, so the log is silenced while they run.
 */
static void quiet(int on)
{
    log_set_level(on ? (enum log_level)(LOG_ERROR + 1) : LOG_INFO);
}

/* ---- the receiver ---- */

static void *serve(void *arg)
{
    struct dhttp_server *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) {
            pthread_mutex_lock(&s->mu);
            int stop = s->stop;
            pthread_mutex_unlock(&s->mu);
            if (stop || (errno != EINTR && errno != ECONNABORTED))
                return NULL;
            continue;
        }
        char req[16384];
        size_t len = 0;
        char *eoh = NULL;
        while (len < sizeof req - 1 && !eoh) {
            ssize_t r = read(c, req + len, sizeof req - 1 - len);
            if (r <= 0)
                break;
            len += (size_t)r;
            req[len] = '\0';
            eoh = strstr(req, "\r\n\r\n");
        }
        if (!eoh) {
            close(c);
            continue;
        }
        size_t clen = 0;
        char *cl = strcasestr(req, "\r\ncontent-length:");
        if (cl && cl < eoh)
            clen = strtoul(cl + 17, NULL, 10);
        size_t have = len - (size_t)(eoh + 4 - req);
        while (have < clen && len < sizeof req - 1) {
            ssize_t r = read(c, req + len, sizeof req - 1 - len);
            if (r <= 0)
                break;
            len += (size_t)r;
            have += (size_t)r;
        }
        req[len] = '\0';
        pthread_mutex_lock(&s->mu);
        int i = s->n < DHTTP_MAX ? s->n : DHTTP_MAX - 1;
        struct dhttp_seen *seen = &s->seen[i];
        sscanf(req, "%7s %255s", seen->method, seen->path);
        snprintf(seen->headers, sizeof seen->headers, "%.*s", (int)(eoh - req), req);
        snprintf(seen->body, sizeof seen->body, "%s", eoh + 4);
        int status = s->statuses[i] ? s->statuses[i] : 200;
        s->n++;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        char resp[256];
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: 13\r\n"
                         "Connection: close\r\n\r\n{\"ok\":\"test\"}",
                         status);
        if (write(c, resp, (size_t)n) < 0)
            perror("dhttp write");
        close(c);
    }
}

int dhttp_start(struct dhttp_server *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) || listen(s->fd, 16) ||
        getsockname(s->fd, (struct sockaddr *)&a, &al))
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, serve, s) ? -1 : 0;
}

void dhttp_stop(struct dhttp_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_mutex_unlock(&s->mu);
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int dhttp_wait(struct dhttp_server *s, int n)
{
    struct timespec ts;
    deadline_in(&ts, 10000);
    pthread_mutex_lock(&s->mu);
    while (s->n < n && pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0)
        ;
    int got = s->n;
    pthread_mutex_unlock(&s->mu);
    return got;
}

const char *dhttp_header(struct dhttp_server *s, int i, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = s->seen[i].headers; p && *p; p = strstr(p, "\r\n")) {
        if (*p == '\r')
            p += 2;
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            p += n + 1;
            while (*p == ' ')
                p++;
            size_t vl = strcspn(p, "\r\n");
            snprintf(out, len, "%.*s", (int)vl, p);
            return out;
        }
    }
    return NULL;
}

/* ---- hooks: a virtual engine clock and collected outcome events ---- */

struct fake_server {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t clock;
    long clock_reads;
    json_t *events; /* array */
};

static int64_t fake_now(void *ctx)
{
    struct fake_server *f = ctx;
    pthread_mutex_lock(&f->mu);
    int64_t t = f->clock;
    f->clock_reads++;
    pthread_mutex_unlock(&f->mu);
    return t;
}

static void fake_report(void *ctx, json_t *ev)
{
    struct fake_server *f = ctx;
    pthread_mutex_lock(&f->mu);
    json_array_append_new(f->events, ev);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void fake_init(struct fake_server *f, int64_t clock)
{
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->clock = clock;
    f->clock_reads = 0;
    f->events = json_array();
}

static void fake_cleanup(struct fake_server *f)
{
    json_decref(f->events);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
}

/* Wait until n events were reported (or 10 s); returns the count. */
static size_t wait_events(struct fake_server *f, size_t n)
{
    struct timespec ts;
    deadline_in(&ts, 10000);
    pthread_mutex_lock(&f->mu);
    while (json_array_size(f->events) < n && pthread_cond_timedwait(&f->cv, &f->mu, &ts) == 0)
        ;
    size_t got = json_array_size(f->events);
    pthread_mutex_unlock(&f->mu);
    return got;
}

/* The reported event with this id, or NULL (borrowed). */
static json_t *event(struct fake_server *f, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(f->events, i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "id")), id))
            return e;
    }
    return NULL;
}

/*
 * Status of a message, waiting up to 10 s for it to become `want`.  The
 * outcomes that report no event (stored, retrying) have nothing to wait on
 * but the row itself, so this looks every few milliseconds (tests only).
 */
static int wait_status(struct store *s, const char *id, const char *want, struct outbox_msg *out)
{
    for (int i = 0; i < 2000; i++) {
        if (store_message_get(s, id, out) == 0) {
            if (!strcmp(out->status, want))
                return 1;
            outbox_msg_cleanup(out);
        }
        struct timespec d = {0, 5 * 1000000};
        nanosleep(&d, NULL);
    }
    store_message_get(s, id, out);
    return 0;
}

static struct store *open_db(char *path, size_t len)
{
    char err[256];
    struct store *s = NULL;
    dtest_tmpdb(path, len);
    return store_open(path, 0, &s, err, sizeof err) ? NULL : s;
}

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static char *url(int port, const char *path)
{
    char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d%s", port, path);
    return xstrdup(u);
}

void dispatcher_states(void)
{
    quiet(1);
    char path[256], h[512];
    struct dhttp_server srv;
    struct fake_server f;
    struct dispatcher *d = NULL;
    struct outbox_msg m;
    ASSERT_EQ(dhttp_start(&srv), 0);
    fake_init(&f, 1772445600000LL);
    struct store *s = open_db(path, sizeof path);
    ASSERT(s != NULL);
    ASSERT_EQ(dtest_insert(s, "wh", "webhook", 1000, NULL, NULL), 0);
    ASSERT_EQ(dtest_insert(s, "push", "push", 1000, NULL, "{\"title\":\"Heads up\"}"), 0);
    ASSERT_EQ(dtest_insert(s, "app", "in_app", 1000, NULL, NULL), 0);
    ASSERT_EQ(dtest_insert(s, "bot", "chatbot", 1000, NULL, NULL), 0);
    ASSERT_EQ(dtest_insert(s, "mail", "email", 1000, "jodi@example.com", NULL), 0);

    struct delivery_config cfg;
    delivery_config_init(&cfg);
    cfg.webhook.url = url(srv.port, "/wh");
    cfg.webhook.secret = xstrdup(SECRET);
    cfg.push.url = url(srv.port, "/push");
    cfg.push.token = xstrdup("push-token");
    struct delivery_hooks hooks = {.ctx = &f, .engine_now = fake_now, .report = fake_report};
    ASSERT_EQ(dispatcher_start(&d, &cfg, path, &hooks), 0);

    /* webhook, push, in_app and chatbot report message.sent; email is only stored. */
    ASSERT_EQ(wait_events(&f, 4), 4);
    ASSERT_EQ(dhttp_wait(&srv, 2), 2);
    ASSERT(wait_status(s, "m_mail", "stored", &m));
    ASSERT_EQ(m.attempts, 0);
    outbox_msg_cleanup(&m);
    dispatcher_stop(d);

    json_t *e = event(&f, "sent:m_wh");
    ASSERT(e != NULL);
    ASSERT_STREQ(json_string_value(json_object_get(e, "type")), "message.sent");
    ASSERT_STREQ(json_string_value(json_object_get(e, "subject")), "jodi@example.com");
    ASSERT_STREQ(json_string_value(json_object_get(e, "time")), "2026-03-02T10:00:00Z");
    json_t *data = json_object_get(e, "data");
    ASSERT_STREQ(json_string_value(json_object_get(data, "message_id")), "m_wh");
    ASSERT_STREQ(json_string_value(json_object_get(data, "channel")), "webhook");
    ASSERT_STREQ(json_string_value(json_object_get(data, "audience")), "customer");
    ASSERT_EQ(json_integer_value(json_object_get(data, "attempts")), 1);
    ASSERT(event(&f, "sent:m_app") != NULL);
    ASSERT(event(&f, "sent:m_bot") != NULL); /* no chatbot URL: the pull API is the delivery */
    ASSERT(event(&f, "sent:m_mail") == NULL);

    /* The receivers saw what the specification and the connector say. */
    for (int i = 0; i < 2; i++) {
        if (!strcmp(srv.seen[i].path, "/wh")) {
            ASSERT_STREQ(srv.seen[i].method, "POST");
            /* The id is a hash of the key (no personal data), the signature made over it. */
            ASSERT_STREQ(dhttp_header(&srv, i, "webhook-id", h, sizeof h),
                         "msg_b73bb345911774b1bf5e6fa0e1d52c1f");
            char ts[32], sig[64], want[64];
            ASSERT(dhttp_header(&srv, i, "webhook-timestamp", ts, sizeof ts) != NULL);
            ASSERT(dhttp_header(&srv, i, "webhook-signature", sig, sizeof sig) != NULL);
            const char *body = srv.seen[i].body;
            ASSERT_EQ(delivery_sign(SECRET, h, strtoll(ts, NULL, 10), body, strlen(body),
                                    want, sizeof want),
                      0);
            ASSERT_STREQ(sig, want);
            json_t *j = json_loads(body, 0, NULL);
            ASSERT(j != NULL);
            ASSERT_STREQ(json_string_value(json_object_get(j, "type")), "forewarn.message");
            ASSERT_STREQ(json_string_value(json_object_get(json_object_get(j, "data"), "id")),
                         "m_wh");
            json_decref(j);
        } else {
            ASSERT_STREQ(srv.seen[i].path, "/push");
            ASSERT_STREQ(dhttp_header(&srv, i, "authorization", h, sizeof h), "Bearer push-token");
            char wid[DELIVERY_WIRE_ID_LEN];
            delivery__wire_id("k-push", wid);
            ASSERT_STREQ(dhttp_header(&srv, i, "idempotency-key", h, sizeof h), wid);
            json_t *j = json_loads(srv.seen[i].body, 0, NULL);
            ASSERT_STREQ(json_string_value(json_object_get(j, "title")), "Heads up");
            ASSERT_STREQ(json_string_value(json_object_get(j, "customer")), "jodi@example.com");
            ASSERT_STREQ(json_string_value(json_object_get(j, "message_id")), "m_push");
            ASSERT_STREQ(json_string_value(json_object_get(j, "body")), "Hello Jodi,\nwe are on it.");
            json_decref(j);
        }
    }
    ASSERT(wait_status(s, "m_wh", "sent", &m));
    ASSERT(m.sent_at > 0);
    outbox_msg_cleanup(&m);
    store_close(s);
    dhttp_stop(&srv);
    fake_cleanup(&f);
    delivery_config_cleanup(&cfg);
    dtest_rmdb(path);
    quiet(0);
}

void dispatcher_retries_then_dead(void)
{
    quiet(1);
    char path[256], h[256];
    struct dhttp_server srv;
    struct fake_server f;
    struct dispatcher *d = NULL;
    struct outbox_msg m;
    ASSERT_EQ(dhttp_start(&srv), 0);
    /* SMS: overloaded, rate limited, then accepted; the next one refused for good. */
    srv.statuses[0] = 503;
    srv.statuses[1] = 429;
    srv.statuses[2] = 201;
    srv.statuses[3] = 400;
    fake_init(&f, 5000);
    struct store *s = open_db(path, sizeof path);
    ASSERT(s != NULL);
    ASSERT_EQ(dtest_insert(s, "s1", "sms", 1000, "+15550002222", NULL), 0);
    ASSERT_EQ(dtest_insert(s, "p1", "push", 1000, NULL, NULL), 0);

    struct delivery_config cfg;
    delivery_config_init(&cfg);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/", srv.port);
    cfg.sms.base_url = xstrdup(base);
    cfg.sms.account_sid = xstrdup("AC42");
    cfg.sms.auth_token = xstrdup("tok");
    cfg.sms.from = xstrdup("+15550001111");
    /* Push to a port nobody listens on: connection refused on every attempt. */
    cfg.push.url = xstrdup("http://127.0.0.1:1/push");
    cfg.max_attempts = 3;
    cfg.backoff_base = 5;
    cfg.backoff_max = 20;
    cfg.timeout = 2000;
    struct delivery_hooks hooks = {.ctx = &f, .engine_now = fake_now, .report = fake_report};
    ASSERT_EQ(dispatcher_start(&d, &cfg, path, &hooks), 0);

    /* sent:m_s1 after three attempts, failed:m_p1 after max_attempts. */
    ASSERT_EQ(wait_events(&f, 2), 2);
    ASSERT_EQ(dhttp_wait(&srv, 3), 3);
    ASSERT(event(&f, "sent:m_s1") != NULL);
    ASSERT_EQ(json_integer_value(
                  json_object_get(json_object_get(event(&f, "sent:m_s1"), "data"), "attempts")),
              3);
    ASSERT(wait_status(s, "m_p1", "dead", &m));
    ASSERT_EQ(m.attempts, 3);
    ASSERT_CONTAINS(m.last_error, "127.0.0.1:1");
    outbox_msg_cleanup(&m);
    json_t *failed = json_array_get(f.events, 0);
    if (strcmp(json_string_value(json_object_get(failed, "type")), "message.failed"))
        failed = json_array_get(f.events, 1);
    ASSERT_STREQ(json_string_value(json_object_get(failed, "type")), "message.failed");
    ASSERT_STREQ(json_string_value(json_object_get(json_object_get(failed, "data"), "message_id")),
                 "m_p1");
    ASSERT_CONTAINS(json_string_value(json_object_get(json_object_get(failed, "data"), "error")),
                    "127.0.0.1:1");

    /* Twilio's shape: the path, basic auth, the form, the idempotency token on every attempt. */
    for (int i = 0; i < 3; i++) {
        ASSERT_STREQ(srv.seen[i].path, "/2010-04-01/Accounts/AC42/Messages.json");
        ASSERT_STREQ(dhttp_header(&srv, i, "authorization", h, sizeof h), "Basic QUM0Mjp0b2s=");
        char wid[DELIVERY_WIRE_ID_LEN];
        delivery__wire_id("k-s1", wid);
        ASSERT_STREQ(dhttp_header(&srv, i, "i-twilio-idempotency-token", h, sizeof h), wid);
        ASSERT_STREQ(srv.seen[i].body, "To=%2B15550002222&From=%2B15550001111&Body=Hello%20Jodi%2C%0Awe%20are%20on%20it.");
    }
    ASSERT(wait_status(s, "m_s1", "sent", &m));
    outbox_msg_cleanup(&m);

    /* A 4xx other than 429 is permanent: dead after one attempt. */
    ASSERT_EQ(dtest_insert(s, "s2", "sms", 1000, "+15550003333", NULL), 0);
    dispatcher_kick(d);
    ASSERT_EQ(wait_events(&f, 3), 3);
    ASSERT(wait_status(s, "m_s2", "dead", &m));
    ASSERT_EQ(m.attempts, 1);
    ASSERT_CONTAINS(m.last_error, "HTTP 400");
    outbox_msg_cleanup(&m);
    dispatcher_stop(d);
    store_close(s);
    dhttp_stop(&srv);
    fake_cleanup(&f);
    delivery_config_cleanup(&cfg);
    dtest_rmdb(path);
    quiet(0);
}

void dispatcher_engine_clock(void)
{
    quiet(1);
    char path[256];
    struct dhttp_server srv;
    struct fake_server f;
    struct dispatcher *d = NULL;
    struct outbox_msg m;
    ASSERT_EQ(dhttp_start(&srv), 0);
    fake_init(&f, 1000);
    struct store *s = open_db(path, sizeof path);
    ASSERT(s != NULL);
    /* Due in 300 ms of engine time; the virtual clock stands still until the test moves it. */
    ASSERT_EQ(dtest_insert(s, "q", "webhook", 1300, NULL, NULL), 0);
    struct delivery_config cfg;
    delivery_config_init(&cfg);
    cfg.webhook.url = url(srv.port, "/wh");
    cfg.webhook.secret = xstrdup(SECRET);
    struct delivery_hooks hooks = {.ctx = &f, .engine_now = fake_now, .report = fake_report};
    ASSERT_EQ(dispatcher_start(&d, &cfg, path, &hooks), 0);

    /*
     * Nothing is sent while the clock stands still, and the workers sleep:
     * in 700 ms of wall time (past the 300 ms a timed wait for send_at
     * takes) the clock is read a handful of times, not thousands.
     */
    struct timespec pause = {0, 700 * 1000000};
    nanosleep(&pause, NULL);
    pthread_mutex_lock(&f.mu);
    long reads = f.clock_reads;
    pthread_mutex_unlock(&f.mu);
    ASSERT_EQ(dhttp_wait(&srv, 0), 0);
    ASSERT(reads < 40);
    ASSERT(wait_status(s, "m_q", "scheduled", &m));
    outbox_msg_cleanup(&m);

    /* The clock moves short of send_at: still nothing.  Then to it: sent. */
    pthread_mutex_lock(&f.mu);
    f.clock = 1299;
    pthread_mutex_unlock(&f.mu);
    dispatcher_kick(d);
    pthread_mutex_lock(&f.mu);
    f.clock = 1300;
    pthread_mutex_unlock(&f.mu);
    dispatcher_kick(d);
    ASSERT_EQ(wait_events(&f, 1), 1);
    ASSERT_EQ(dhttp_wait(&srv, 1), 1);
    dispatcher_stop(d);
    store_close(s);
    dhttp_stop(&srv);
    fake_cleanup(&f);
    delivery_config_cleanup(&cfg);
    dtest_rmdb(path);
    quiet(0);
}

/*
 * dispatcher_notify wakes the worker of a channel that got messages, and a
 * worker whose waiting message the engine clock reached -- with no kick to
 * every worker.
 */
void dispatcher_notify_wakes_whom_it_concerns(void)
{
    quiet(1);
    char path[256];
    struct dhttp_server srv;
    struct fake_server f;
    struct dispatcher *d = NULL;
    struct outbox_msg m;
    ASSERT_EQ(dhttp_start(&srv), 0);
    fake_init(&f, 1000);
    struct store *s = open_db(path, sizeof path);
    ASSERT(s != NULL);
    /* Due a day of engine time later: a worker's own timed wait would not reach it in the test. */
    ASSERT_EQ(dtest_insert(s, "later", "webhook", 1000 + FW_DAY, NULL, NULL), 0);
    struct delivery_config cfg;
    delivery_config_init(&cfg);
    cfg.webhook.url = url(srv.port, "/wh");
    cfg.webhook.secret = xstrdup(SECRET);
    struct delivery_hooks hooks = {.ctx = &f, .engine_now = fake_now, .report = fake_report};
    ASSERT_EQ(dispatcher_start(&d, &cfg, path, &hooks), 0);
    ASSERT(wait_status(s, "m_later", "scheduled", &m));
    outbox_msg_cleanup(&m);

    /* A commit added a webhook message due now: notifying its channel sends it. */
    ASSERT_EQ(dtest_insert(s, "now", "webhook", 1000, NULL, NULL), 0);
    const char *chans[] = {"sms", "webhook"};
    dispatcher_notify(d, chans, 2, 1000);
    ASSERT_EQ(wait_events(&f, 1), 1);
    ASSERT(event(&f, "sent:m_now") != NULL);
    ASSERT(wait_status(s, "m_later", "scheduled", &m));
    outbox_msg_cleanup(&m);

    /* A commit moved the engine clock to the waiting message's send_at: no channel named. */
    pthread_mutex_lock(&f.mu);
    f.clock = 1000 + FW_DAY;
    pthread_mutex_unlock(&f.mu);
    dispatcher_notify(d, NULL, 0, 1000 + FW_DAY);
    ASSERT_EQ(wait_events(&f, 2), 2);
    ASSERT(event(&f, "sent:m_later") != NULL);
    ASSERT_EQ(dhttp_wait(&srv, 2), 2);
    dispatcher_stop(d);
    store_close(s);
    dhttp_stop(&srv);
    fake_cleanup(&f);
    delivery_config_cleanup(&cfg);
    dtest_rmdb(path);
    quiet(0);
}

void dispatcher_requeue_same_key(void)
{
    quiet(1);
    char path[256], h[128];
    struct dhttp_server srv;
    struct fake_server f;
    struct dispatcher *d = NULL;
    struct outbox_msg m;
    ASSERT_EQ(dhttp_start(&srv), 0);
    fake_init(&f, 9000);
    struct store *s = open_db(path, sizeof path);
    ASSERT(s != NULL);
    ASSERT_EQ(dtest_insert(s, "crash", "webhook", 1000, NULL, NULL), 0);
    /* A previous run claimed it and died before recording the outcome. */
    ASSERT_EQ(store_outbox_claim(s, "webhook", 9000, fw_wall_now(), &m, 1), 1);
    outbox_msg_cleanup(&m);
    struct delivery_config cfg;
    delivery_config_init(&cfg);
    cfg.webhook.url = url(srv.port, "/wh");
    cfg.webhook.secret = xstrdup(SECRET);
    struct delivery_hooks hooks = {.ctx = &f, .engine_now = fake_now, .report = fake_report};
    ASSERT_EQ(dispatcher_start(&d, &cfg, path, &hooks), 0);
    ASSERT_EQ(wait_events(&f, 1), 1);
    dispatcher_stop(d);
    ASSERT_EQ(dhttp_wait(&srv, 1), 1);
    char wid[DELIVERY_WIRE_ID_LEN];
    delivery__wire_id("k-crash", wid);
    ASSERT_STREQ(dhttp_header(&srv, 0, "webhook-id", h, sizeof h), wid);
    ASSERT(wait_status(s, "m_crash", "sent", &m));
    ASSERT_EQ(m.attempts, 2);
    outbox_msg_cleanup(&m);
    store_close(s);
    dhttp_stop(&srv);
    fake_cleanup(&f);
    delivery_config_cleanup(&cfg);
    dtest_rmdb(path);
    quiet(0);
}
