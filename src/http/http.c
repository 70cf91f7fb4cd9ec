/*
 * http.c -- server plumbing: request bodies with a cap, the route tables,
 * authentication and role checks (auth.c says who), the audit of calls
 * that touch cases, messages and customers (audit.c writes it), JSON
 * responses.  Handlers live in routes.c, case_routes.c, auth_routes.c.
 *
 * Connections (issue 18): libmicrohttpd's epoll with a pool of threads, so
 * open connections are bounded by max_connections, not by select()'s 1,024
 * descriptors; at most max_per_address of them from one IP address, so a
 * flood from one address leaves room for the others.  A connection must
 * deliver a whole request (headers and body) within request_deadline of
 * being opened or of its previous response, however slowly it drips: the
 * watcher thread shuts down the ones that have not (an inactivity timeout
 * would restart on every byte).  Once a request is received its response
 * is not subject to the deadline, so a long-lived (streaming) response
 * lives as long as it needs.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <errno.h>
#include <stdio.h>

#include "http/http_int.h"
#include "util/fwtime.h"
#include "web/web.h"
#include "util/log.h"
#include "util/util.h"

/*
 * A connection's place in the deadline list: linked from the moment it
 * opens (or its previous response completes) until its request is
 * received.  The list is in deadline order because every entry gets the
 * same deadline from the time it is appended.
 */
struct conn_watch {
    struct conn_watch *prev, *next; /* in watcher.list while listed */
    int listed;
    int fd;           /* the connection's socket (libmicrohttpd closes it) */
    int64_t deadline; /* monotonic ms */
};

struct watcher {
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* on CLOCK_MONOTONIC */
    struct conn_watch list; /* sentinel */
    int64_t deadline_ms; /* request_deadline */
    int stop;
    pthread_t thread;
    uint64_t *closed; /* env.deadline_closed */
};

struct http_server {
    struct MHD_Daemon *daemon;
    struct MHD_Daemon *tls_daemon; /* listen_tls, or NULL */
    struct http_env env;
    struct watcher watch;
    unsigned port, tls_port;
    struct buf tls_cert, tls_key; /* PEM text, kept while the TLS daemon runs */
};

static int64_t mono_ms(void)
{
    return fw_mono_ns() / 1000000;
}

static void watch_unlink(struct conn_watch *cw)
{
    if (!cw->listed)
        return;
    cw->prev->next = cw->next;
    cw->next->prev = cw->prev;
    cw->listed = 0;
}

/* (Re)start cw's deadline: from now, at the tail. */
static void watch_arm(struct watcher *w, struct conn_watch *cw)
{
    pthread_mutex_lock(&w->mu);
    watch_unlink(cw);
    cw->deadline = mono_ms() + w->deadline_ms;
    cw->prev = w->list.prev;
    cw->next = &w->list;
    w->list.prev->next = cw;
    w->list.prev = cw;
    cw->listed = 1;
    if (cw->prev == &w->list)
        pthread_cond_signal(&w->cv); /* the list was empty: the watcher sleeps without end */
    pthread_mutex_unlock(&w->mu);
}

static void watch_disarm(struct watcher *w, struct conn_watch *cw)
{
    pthread_mutex_lock(&w->mu);
    watch_unlink(cw);
    pthread_mutex_unlock(&w->mu);
}

/*
 * The watcher: sleeps until the earliest deadline, then shuts down every
 * connection past it.  shutdown(2), not close(2): the descriptor stays
 * libmicrohttpd's, which sees the end of the stream, closes it and tells
 * on_connection (which unlinks under the same mutex, so a descriptor is
 * never touched after it was closed).
 */
static void *watch_main(void *arg)
{
    struct watcher *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct conn_watch *first = w->list.next;
        if (first == &w->list) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        int64_t now = mono_ms();
        if (first->deadline > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = (int64_t)ts.tv_nsec + (first->deadline - now) * 1000000;
            ts.tv_sec += (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
            continue;
        }
        watch_unlink(first);
        shutdown(first->fd, SHUT_RDWR);
        __atomic_add_fetch(w->closed, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int watch_start(struct watcher *w, int64_t deadline_ms, uint64_t *closed)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&w->mu, NULL);
    w->list.next = w->list.prev = &w->list;
    w->deadline_ms = deadline_ms > 0 ? deadline_ms : 30000;
    w->closed = closed;
    if (pthread_create(&w->thread, NULL, watch_main, w)) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        return FW_EIO;
    }
    return 0;
}

static void watch_stop(struct watcher *w)
{
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* libmicrohttpd: a connection opened or closed. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *s = cls;
    struct conn_watch *cw = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        cw = xcalloc(1, sizeof *cw);
        cw->fd = ci ? ci->connect_fd : -1;
        *socket_context = cw;
        if (cw->fd >= 0)
            watch_arm(&s->watch, cw);
    } else if (cw) {
        watch_disarm(&s->watch, cw);
        free(cw);
        *socket_context = NULL;
    }
}

/* The connection's deadline entry (NULL when it has none). */
static struct conn_watch *conn_watch_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Per-request state kept across MHD's calls for one request. */
struct conn_state {
    struct buf body;
    int too_big;
};

void http_reply(struct req *r, unsigned status, const char *content_type, const char *body,
                size_t len)
{
    r->status = status;
    r->content_type = content_type;
    buf_reset(&r->out);
    buf_append(&r->out, body, len);
}

void http_reply_json(struct req *r, unsigned status, struct buf *json)
{
    r->status = status;
    r->content_type = "application/json";
    if (json != &r->out) {
        buf_reset(&r->out);
        buf_append(&r->out, json->data ? json->data : "", json->len);
    }
}

void http_error(struct req *r, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    buf_reset(&r->out);
    buf_puts(&r->out, "{\"error\":");
    buf_json_str(&r->out, msg, strlen(msg));
    buf_printf(&r->out, ",\"status\":%u}", status);
    r->status = status;
    r->content_type = "application/json";
}

const char *http_query(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const struct route *const http_route_tables[] = {http_routes,       http_case_routes,
                                                http_auth_routes,  http_stats_routes,
                                                http_session_routes, http_redrive_routes,
                                                http_stream_routes, http_known_routes,
                                                NULL};

/*
 * The console's files (web/, embedded): GET and HEAD of a path no route
 * knows.  Open to anyone (they hold no data; the API behind them asks for
 * the session).  Cached by validation: "no-cache" with a strong ETag, so
 * a browser keeps the bytes and asks each time whether they changed (304),
 * and a new binary is picked up at once.  Returns 1 when it answered.
 */
static int serve_static(struct req *r)
{
    if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
        return 0;
    const struct web_asset *a = web_asset_find(r->path);
    if (!a)
        return 0;
    r->content_type = a->content_type;
    r->cache_control = "no-cache";
    r->etag = a->etag;
    r->is_page = !strncmp(a->content_type, "text/html", 9);
    const char *inm = http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && strstr(inm, a->etag)) {
        r->status = 304;
        return 1;
    }
    r->status = 200;
    r->static_body = a->data;
    r->static_len = a->len;
    return 1;
}

/*
 * 413 for a body over max_body, in the shape of the ingest errors (an
 * `errors` list naming the body), which is what POST /v1/events documents
 * and what every other route's Error schema allows.
 */
static void reply_too_big(struct req *r, size_t max_body)
{
    char msg[96];
    snprintf(msg, sizeof msg, "request body larger than %zu bytes (max_body)", max_body);
    buf_reset(&r->out);
    buf_puts(&r->out, "{\"error\":\"request too large; nothing was stored\",\"status\":413,"
                      "\"errors\":[{\"where\":\"body\",\"field\":\"\",\"message\":");
    buf_json_str(&r->out, msg, strlen(msg));
    buf_puts(&r->out, "}]}");
    r->status = 413;
    r->content_type = "application/json";
}

/* Changes (anything but GET and HEAD) made through the session cookie need the CSRF header. */
static int csrf_ok(struct req *r)
{
    if (!r->via_cookie || !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"))
        return 1;
    const char *h = http_header(r, HTTP_CSRF_HEADER);
    unsigned char a[AUTH_DIGEST_LEN], b[AUTH_DIGEST_LEN];
    if (!h || !*r->session_csrf)
        return 0;
    auth_token_digest(h, strlen(h), a);
    auth_token_digest(r->session_csrf, strlen(r->session_csrf), b);
    return auth_digest_equal(a, b);
}

/* The client's IP address as text ("" when MHD cannot tell). */
static void client_address(struct req *r, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

/*
 * Record the call in the audit trail once its status is known.  The row is
 * durable before the response goes out; if it cannot be written, a read's
 * answer is replaced by a 503 (what was read is not handed out unrecorded),
 * while a change, already committed, keeps its answer and the failure is
 * logged.
 */
static void audit(struct req *r, const struct route *rt)
{
    char addr[64], action[512];
    const char *id = r->audit_id;
    char tail_id[160];
    if (!*id && r->tail) {
        size_t n = strcspn(r->tail, "/");
        snprintf(tail_id, sizeof tail_id, "%.*s", (int)n, r->tail);
        id = tail_id;
    }
    client_address(r, addr, sizeof addr);
    snprintf(action, sizeof action, "%s %s", r->method, r->path);
    struct audit_record rec = {
        .at = fw_wall_now(),
        .user = r->who.name,
        .role = role_name(r->who.role),
        .action = r->audit_action ? r->audit_action : action,
        .object_kind = rt->audit,
        .object_id = id,
        .address = addr,
        .status = (int)(r->status ? r->status : 500),
    };
    if (http__audit_record(r->env->audit, &rec) && !strcmp(r->method, "GET"))
        http_error(r, 503, "the audit trail could not be written; nothing was read");
}

/* 403, naming the roles that may and the caller's. */
static void forbidden(struct req *r, int roles)
{
    char need[128];
    role_mask_names(roles, need, sizeof need);
    http_error(r, 403, "%s %s needs the role %s; %s has the role %s", r->method, r->path, need,
               r->who.name, role_name(r->who.role));
}

/* The route for the request's method and path (NULL: none); *path_known: some method has it. */
static const struct route *find_route(struct req *r, int *path_known)
{
    return http__route_find(r->method, r->path, path_known, &r->tail);
}

static int is_open(const struct req *r, const struct route *rt)
{
    return rt->public == ROUTE_PUBLIC ||
           (rt->public == ROUTE_PUBLIC_METRICS && r->env->opt.public_metrics);
}

static void route(struct req *r)
{
    int path_known;
    const struct route *best = find_route(r, &path_known);
    if (!best && !path_known && serve_static(r))
        return;
    if (!best) {
        if (path_known)
            http_error(r, 405, "method %s not allowed on %s", r->method, r->path);
        else
            http_error(r, 404, "no such endpoint: %s", r->path);
        return;
    }
    if (is_open(r, best)) {
        snprintf(r->who.name, sizeof r->who.name, "anonymous");
        r->who.role = ROLE_ADMIN;
        r->who.authenticated = 0;
        best->handler(r);
        if (best->audit && r->who.authenticated) /* e.g. a sign-in, once it is known whose */
            audit(r, best);
        return;
    }
    int rc = http__authenticate(r);
    if (rc == FW_EDB) {
        http_error(r, 503, "database unavailable");
        return;
    }
    if (rc) {
        /* Not audited: who it was is unknown, and a flood of them would fill the trail. */
        http_error(r, 401, "missing or wrong bearer token");
        r->www_authenticate = 1;
        return;
    }
    if (!(best->roles & (int)r->who.role))
        forbidden(r, best->roles);
    else if (!csrf_ok(r))
        http_error(r, 403, "%s %s through the session cookie needs the %s header (the console "
                           "sends it; see docs/console.md)", r->method, r->path, HTTP_CSRF_HEADER);
    else
        best->handler(r);
    if (best->audit)
        audit(r, best);
}

/* Queue the answer a request's handling left in r (and free what it holds). */
static enum MHD_Result respond(struct MHD_Connection *conn, struct req *rp)
{
    struct req r = *rp;
    if (r.stream) {
        struct MHD_Response *sr = http__stream_response(&r);
        buf_cleanup(&r.out);
        if (!sr)
            return MHD_NO;
        enum MHD_Result sret = MHD_queue_response(conn, 200, sr);
        MHD_destroy_response(sr);
        return sret;
    }
    struct MHD_Response *resp =
        r.static_body ? MHD_create_response_from_buffer(r.static_len, (void *)r.static_body,
                                                        MHD_RESPMEM_PERSISTENT)
        : r.status == 304
            ? MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT)
            : MHD_create_response_from_buffer(r.out.len, r.out.data ? r.out.data : (char *)"",
                                              MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r.content_type ? r.content_type : "application/json");
    /* API answers are never cached; static assets say so themselves (serve_static). */
    MHD_add_response_header(resp, "Cache-Control", r.cache_control ? r.cache_control : "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r.etag)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r.etag);
    if (r.is_page) {
        /* Nothing but our own files (no inline script or style), and no framing by any site;
           X-Frame-Options for browsers that predate frame-ancestors. */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                "base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    } else {
        /* JSON and assets are never documents: nothing may run or load from them, or frame them. */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; frame-ancestors 'none'");
    }
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (r.set_cookie[0]) {
        /* Over TLS the session cookie is Secure: a browser never sends it in the clear. */
        char cookie[sizeof r.set_cookie + 16];
        int tls = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION) != NULL;
        snprintf(cookie, sizeof cookie, "%s%s", r.set_cookie, tls ? "; Secure" : "");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    }
    /* A 503 without its own figure is the store refusing (disk full, I/O
     * error): nothing was kept; try again soon. */
    if (r.status == 503 && !r.retry_after)
        r.retry_after = 5;
    if (r.retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", r.retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (r.www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"forewarn\"");
    enum MHD_Result ret = MHD_queue_response(conn, r.status ? r.status : 500, resp);
    MHD_destroy_response(resp);
    buf_cleanup(&r.out);
    return ret;
}

/*
 * At the headers, before any body is read: a call that needs a token and
 * has none that works is refused 401 at once, and a body announced larger
 * than the limit 413, so an unauthenticated or oversized upload costs the
 * server nothing.  Returns 1 when an answer was queued.
 */
static int early_answer(struct http_server *s, struct MHD_Connection *conn, const char *url,
                        const char *method, enum MHD_Result *ret)
{
    struct req r = {.env = &s->env, .conn = conn, .method = method, .path = url, .body = ""};
    buf_init(&r.out, 0);
    int path_known;
    const struct route *rt = find_route(&r, &path_known);
    if (rt && !is_open(&r, rt)) {
        int rc = http__authenticate(&r);
        if (rc && rc != FW_EDB) {
            http_error(&r, 401, "missing or wrong bearer token");
            r.www_authenticate = 1;
            *ret = respond(conn, &r);
            return 1;
        }
        /* Per token, counted once per request, here at the headers: a refused request's body
           is never read. */
        unsigned wait = !rc && r.has_token
                            ? http__ratelimit_take(s->env.ratelimit, r.token_digest, mono_ms())
                            : 0;
        if (wait) {
            __atomic_add_fetch(&s->env.rate_limited, 1, __ATOMIC_RELAXED);
            http_error(&r, 429, "%s has made more than %u requests a second (burst %u); retry "
                       "after %u s", r.who.name, s->env.opt.rate_limit, s->env.opt.rate_burst,
                       wait);
            r.retry_after = wait;
            *ret = respond(conn, &r);
            return 1;
        }
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    char *end = NULL;
    unsigned long long len = cl ? strtoull(cl, &end, 10) : 0;
    if (rt && cl && end && !*end && len > s->env.opt.max_body) {
        reply_too_big(&r, s->env.opt.max_body);
        *ret = respond(conn, &r);
        return 1;
    }
    buf_cleanup(&r.out);
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct http_server *s = cls;
    struct conn_state *cs = *con_cls;
    (void)version;
    if (!cs) {
        cs = xcalloc(1, sizeof *cs);
        buf_init(&cs->body, s->env.opt.max_body);
        *con_cls = cs;
        enum MHD_Result ret;
        if (early_answer(s, conn, url, method, &ret))
            return ret;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cs->too_big && buf_append(&cs->body, upload, *upload_size))
            cs->too_big = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    /* The request is in: from here on the deadline no longer applies (a response may stream
       for as long as it needs). */
    struct conn_watch *cw = conn_watch_of(conn);
    if (cw)
        watch_disarm(&s->watch, cw);
    struct req r = {
        .env = &s->env,
        .conn = conn,
        .method = method,
        .path = url,
        .body = cs->body.data ? cs->body.data : "",
        .body_len = cs->body.len,
    };
    buf_init(&r.out, 0);
    if (cs->too_big)
        reply_too_big(&r, s->env.opt.max_body);
    else
        route(&r);
    return respond(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    /* A kept-alive connection has the deadline again for its next request. */
    struct conn_watch *cw = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? conn_watch_of(conn) : NULL;
    if (cw)
        watch_arm(&s->watch, cw);
    struct conn_state *cs = *con_cls;
    if (cs) {
        buf_cleanup(&cs->body);
        free(cs);
        *con_cls = NULL;
    }
}

/*
 * libmicrohttpd's own messages, through our log.  A live stream the
 * browser closed (a tab shut, a page left) is reported by MHD as a failed
 * send at our next write: normal for GET /v1/stream, so it is debug there
 * and a warning anywhere else.
 */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    if (strstr(msg, "`/v1/stream'"))
        log_debug("http: %s", msg);
    else
        log_warn("http: %s", msg);
}

/*
 * Enough descriptors for the connections: the soft RLIMIT_NOFILE is raised
 * to the hard one, and what still does not fit (two listeners' worth, and
 * room for the database, logs and connectors) lowers max_connections, said
 * in the log.
 */
static unsigned fit_descriptors(unsigned want, int listeners)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return want;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t reserve = 128, need = (rlim_t)want * (rlim_t)listeners + reserve;
    if (rl.rlim_cur == RLIM_INFINITY || need <= rl.rlim_cur)
        return want;
    unsigned fit = rl.rlim_cur > reserve + (rlim_t)listeners
                       ? (unsigned)((rl.rlim_cur - reserve) / (rlim_t)listeners)
                       : 1;
    log_warn("max_connections %u does not fit the %llu descriptors this process may open; "
             "serving at most %u per listener (raise the limit with ulimit -n or LimitNOFILE=)",
             want, (unsigned long long)rl.rlim_cur, fit);
    return fit;
}

/* One listener: plain HTTP, or TLS when cert and key are given. */
static struct MHD_Daemon *listen_on(struct http_server *s, const char *host, unsigned port,
                                    const char *cert, const char *key, unsigned *bound)
{
    const struct http_options *o = &s->env.opt;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        log_error("listen address '%s' is not an IPv4 address", host);
        return NULL;
    }
    /*
     * epoll with a pool of threads: a handler that waits (for the group commit, the audit
     * trail, the drafting model) holds its thread, so the pool is wider than the cores.
     * Suspend/resume is on so that a long-lived response can park its connection instead
     * of a thread (MHD_suspend_connection) until it has something to send.
     */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
                     (cert ? MHD_USE_TLS : 0);
    struct MHD_OptionItem tls[] = {
        {cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)o->threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)o->max_per_address,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        s,
        /* Idle kept-alive connections, and responses the client stopped reading. */
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!d) {
        log_error("cannot listen on %s:%u%s", host, port, cert ? " (TLS)" : "");
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = info && info->port ? info->port : port;
    return d;
}

/* Read listen_tls's certificate and key: 0, or FW_EIO / FW_EINVAL (logged). */
static int read_tls_files(struct http_server *s)
{
    const struct http_options *o = &s->env.opt;
    if (!o->tls_cert || !o->tls_key) {
        log_error("listen_tls needs tls_cert and tls_key (PEM files)");
        return FW_EINVAL;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        log_error("listen_tls: this libmicrohttpd was built without TLS");
        return FW_EINVAL;
    }
    buf_init(&s->tls_cert, 1 << 20);
    buf_init(&s->tls_key, 1 << 20);
    const char *bad = buf_read_file(&s->tls_cert, o->tls_cert) ? o->tls_cert
                      : buf_read_file(&s->tls_key, o->tls_key) ? o->tls_key
                                                               : NULL;
    if (bad) {
        log_error("listen_tls: cannot read %s: %s", bad, strerror(errno));
        return FW_EIO;
    }
    buf_putc(&s->tls_cert, '\0');
    buf_putc(&s->tls_key, '\0');
    return 0;
}

int http_start(struct http_server **out, const struct http_options *opt, struct pipeline *p)
{
    struct http_server *s = xcalloc(1, sizeof *s);
    int rc = FW_EIO;
    s->env.opt = *opt;
    struct http_options *o = &s->env.opt;
    if (!o->threads)
        o->threads = 16;
    if (!o->max_connections)
        o->max_connections = 1024;
    if (!o->max_per_address)
        o->max_per_address = 128;
    if (!o->request_deadline)
        o->request_deadline = 30 * FW_SECOND;
    o->max_connections = fit_descriptors(o->max_connections, o->tls_addr ? 2 : 1);
    if (o->max_connections < o->threads)
        o->max_connections = o->threads; /* libmicrohttpd shares the limit among the threads */
    s->env.pipeline = p;
    s->env.started = fw_wall_now();
    if (opt->api_token) {
        s->env.has_shared = 1;
        auth_token_digest(opt->api_token, strlen(opt->api_token), s->env.shared_digest);
    }
    if (o->tls_addr && (rc = read_tls_files(s)))
        goto fail_tls;
    if (http__audit_start(&s->env.audit, opt->database)) {
        rc = FW_EDB;
        goto fail_tls;
    }
    if (watch_start(&s->watch, o->request_deadline, &s->env.deadline_closed))
        goto fail_audit;
    http__readers_init(&s->env.readers, opt->database);
    s->env.sessions = http__sessions_new();
    s->env.stream = http__stream_new(pipeline_virtual(p), pipeline_now(p));
    s->env.ratelimit = http__ratelimit_new(o->rate_limit, o->rate_burst);
    s->daemon = listen_on(s, o->listen_addr, o->listen_port, NULL, NULL, &s->port);
    if (!s->daemon)
        goto fail;
    if (o->tls_addr) {
        s->tls_daemon = listen_on(s, o->tls_addr, o->tls_port, s->tls_cert.data, s->tls_key.data,
                                  &s->tls_port);
        if (!s->tls_daemon) {
            MHD_stop_daemon(s->daemon);
            goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    http__stream_free(s->env.stream);
    http__ratelimit_free(s->env.ratelimit);
    http__readers_cleanup(&s->env.readers);
    http__sessions_free(s->env.sessions);
    watch_stop(&s->watch);
fail_audit:
    http__audit_stop(s->env.audit);
fail_tls:
    buf_cleanup(&s->tls_cert);
    buf_cleanup(&s->tls_key);
    free(s);
    return rc;
}

unsigned http_port(const struct http_server *s)
{
    return s->port;
}

unsigned http_tls_port(const struct http_server *s)
{
    return s->tls_daemon ? s->tls_port : 0;
}

void http_set_ready(struct http_server *s, int ready)
{
    __atomic_store_n(&s->env.ready, ready, __ATOMIC_RELEASE);
}

void http_notify(struct http_server *s, const struct pipeline_commit *c)
{
    if (s)
        http__stream_commit(s->env.stream, c);
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    http__stream_close(s->env.stream); /* open streams end, so their threads can be joined */
    MHD_stop_daemon(s->daemon);
    if (s->tls_daemon)
        MHD_stop_daemon(s->tls_daemon);
    watch_stop(&s->watch); /* after the daemons: every connection is closed and unlinked */
    http__stream_free(s->env.stream);
    http__audit_stop(s->env.audit); /* after the daemon: no request is waiting on it */
    http__readers_cleanup(&s->env.readers);
    http__sessions_free(s->env.sessions);
    http__ratelimit_free(s->env.ratelimit);
    buf_cleanup(&s->tls_cert);
    buf_cleanup(&s->tls_key);
    free(s);
}
