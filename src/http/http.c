/*
 * http.c -- server plumbing: request bodies with a cap, the route table,
 * authentication, JSON responses.  Handlers live in routes.c.
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

/* Bearer-token check in constant time. Roles come later: every token holder is "admin". */
static int authorized(struct req *r)
{
    const char *token = r->env->cfg->api_token;
    if (!token)
        return 1;
    const char *h = http_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    return fw_consttime_cmp(h, strlen(h), token, strlen(token)) == 0;
}

static void route(struct req *r)
{
    const struct route *best = NULL;
    int path_known = 0;
    for (const struct route *rt = http_routes; rt->path; rt++) {
        size_t n = strlen(rt->path);
        int match = rt->prefix ? strncmp(r->path, rt->path, n) == 0 && r->path[n]
                               : strcmp(r->path, rt->path) == 0;
        if (!match)
            continue;
        path_known = 1;
        if (!strcmp(rt->method, r->method)) {
            best = rt;
            r->tail = rt->prefix ? r->path + n : NULL;
            break;
        }
    }
    if (!best) {
        if (path_known)
            http_error(r, 405, "method %s not allowed on %s", r->method, r->path);
        else
            http_error(r, 404, "no such endpoint: %s", r->path);
        return;
    }
    if (!best->public && !authorized(r)) {
        http_error(r, 401, "missing or wrong bearer token");
        r->www_authenticate = 1;
        return;
    }
    best->handler(r);
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
        buf_init(&cs->body, s->env.cfg->max_body);
        *con_cls = cs;
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
        http_error(&r, 413, "request body larger than %zu bytes", s->env.cfg->max_body);
    else
        route(&r);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r.out.len, r.out.data ? r.out.data : (char *)"",
                                        MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r.content_type ? r.content_type : "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r.www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"forewarn\"");
    enum MHD_Result ret = MHD_queue_response(conn, r.status ? r.status : 500, resp);
    MHD_destroy_response(resp);
    buf_cleanup(&r.out);
    return ret;
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

int http_start(struct http_server **out, const struct config *cfg, struct pipeline *p)
{
    struct http_server *s = xcalloc(1, sizeof *s);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->listen_port)};
    if (inet_pton(AF_INET, cfg->listen_addr, &addr.sin_addr) != 1) {
        log_error("listen address '%s' is not an IPv4 address", cfg->listen_addr);
        free(s);
        return FW_EINVAL;
    }
    s->env.cfg = cfg;
    s->env.pipeline = p;
    s->env.started = fw_wall_now();
    http__readers_init(&s->env.readers, cfg->database);
    s->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)cfg->listen_port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60, MHD_OPTION_END);
    if (!s->daemon) {
        log_error("cannot listen on %s:%u", cfg->listen_addr, cfg->listen_port);
        http__readers_cleanup(&s->env.readers);
        free(s);
        return FW_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->listen_port;
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
    http__readers_cleanup(&s->env.readers);
    free(s);
}
