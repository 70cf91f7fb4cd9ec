/*
 * http.c -- server plumbing: request bodies with a cap, the route tables,
 * authentication and role checks (auth.c says who), the audit of calls
 * that touch cases, messages and customers (audit.c writes it), JSON
 * responses.  Handlers live in routes.c, case_routes.c, auth_routes.c.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/http_int.h"
#include "util/fwtime.h"
#include "web/web.h"
#include "util/log.h"
#include "util/util.h"

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_env env;
    unsigned port;
};

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
                                                http_session_routes, NULL};

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
        /* Nothing but our own files, and no framing by other sites. */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                "base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    }
    if (r.set_cookie[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r.set_cookie);
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
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    char *end = NULL;
    unsigned long long len = cl ? strtoull(cl, &end, 10) : 0;
    if (rt && cl && end && !*end && len > s->env.opt.max_body) {
        http_error(&r, 413, "request body larger than %zu bytes", s->env.opt.max_body);
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
        http_error(&r, 413, "request body larger than %zu bytes", s->env.opt.max_body);
    else
        route(&r);
    return respond(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct conn_state *cs = *con_cls;
    if (cs) {
        buf_cleanup(&cs->body);
        free(cs);
        *con_cls = NULL;
    }
}

int http_start(struct http_server **out, const struct http_options *opt, struct pipeline *p)
{
    struct http_server *s = xcalloc(1, sizeof *s);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt->listen_port)};
    if (inet_pton(AF_INET, opt->listen_addr, &addr.sin_addr) != 1) {
        log_error("listen address '%s' is not an IPv4 address", opt->listen_addr);
        free(s);
        return FW_EINVAL;
    }
    s->env.opt = *opt;
    s->env.pipeline = p;
    s->env.started = fw_wall_now();
    if (opt->api_token) {
        s->env.has_shared = 1;
        auth_token_digest(opt->api_token, strlen(opt->api_token), s->env.shared_digest);
    }
    if (http__audit_start(&s->env.audit, opt->database)) {
        free(s);
        return FW_EDB;
    }
    http__readers_init(&s->env.readers, opt->database);
    s->env.sessions = http__sessions_new();
    s->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)opt->listen_port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60, MHD_OPTION_END);
    if (!s->daemon) {
        log_error("cannot listen on %s:%u", opt->listen_addr, opt->listen_port);
        http__readers_cleanup(&s->env.readers);
        http__audit_stop(s->env.audit);
        http__sessions_free(s->env.sessions);
        free(s);
        return FW_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : opt->listen_port;
    *out = s;
    return 0;
}

unsigned http_port(const struct http_server *s)
{
    return s->port;
}

void http_set_ready(struct http_server *s, int ready)
{
    __atomic_store_n(&s->env.ready, ready, __ATOMIC_RELEASE);
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    http__audit_stop(s->env.audit); /* after the daemon: no request is waiting on it */
    http__readers_cleanup(&s->env.readers);
    http__sessions_free(s->env.sessions);
    free(s);
}
