/*
 * auth_routes.c -- the API of people and the trail: GET /v1/me (who the
 * token belongs to, for the console), GET /v1/users (for leads assigning
 * work), GET /v1/audit (the audit trail, leads and admins only).  There is
 * deliberately no endpoint that changes or deletes audit rows.
 */
#include <stdio.h>
#include <string.h>

#include "http/http_int.h"
#include "store/auth.h"
#include "util/fwtime.h"
#include "util/util.h"

static void get_me(struct req *r)
{
    buf_reset(&r->out);
    buf_puts(&r->out, "{\"name\":");
    buf_json_str(&r->out, r->who.name, strlen(r->who.name));
    buf_puts(&r->out, ",\"role\":");
    const char *role = role_name(r->who.role);
    buf_json_str(&r->out, role, strlen(role));
    buf_printf(&r->out, ",\"authenticated\":%s}", r->who.authenticated ? "true" : "false");
    http_reply_json(r, 200, &r->out);
}

static void get_users(struct req *r)
{
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    buf_reset(&r->out);
    int rc = store_users_json(s, &r->out);
    http__reader_release(&r->env->readers, s);
    if (rc)
        http_error(r, 500, "could not read users");
    else
        http_reply_json(r, 200, &r->out);
}

/* GET /v1/audit?user=&object=KIND[:ID]&since=&limit=&cursor= */
static void get_audit(struct req *r)
{
    struct audit_query q = {0};
    long limit, after;
    if (http__query_time(r, "since", &q.since) ||
        http__query_int(r, "limit", 1, 1000, 100, &limit) ||
        http__query_int(r, "cursor", 0, 0x7fffffffffffffffL, 0, &after))
        return;
    q.user = http_query(r, "user");
    q.limit = (int)limit;
    q.after = after;
    const char *object = http_query(r, "object");
    char kind[64] = "";
    if (object) {
        /* "message" (every message) or "message:m-1" (that one). */
        const char *colon = strchr(object, ':');
        size_t n = colon ? (size_t)(colon - object) : strlen(object);
        if (n == 0 || n >= sizeof kind) {
            http_error(r, 400, "query parameter object: expected KIND or KIND:ID, e.g. message:m-1");
            return;
        }
        memcpy(kind, object, n);
        kind[n] = '\0';
        q.object_kind = kind;
        q.object_id = colon ? colon + 1 : NULL;
    }
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    buf_reset(&r->out);
    int rc = store_audit_json(s, &q, &r->out);
    http__reader_release(&r->env->readers, s);
    if (rc)
        http_error(r, 500, "could not read the audit trail");
    else
        http_reply_json(r, 200, &r->out);
}

const struct route http_auth_routes[] = {
    {.method = "GET", .path = "/v1/me", .roles = ROLES_READ | ROLE_SERVICE, .handler = get_me},
    {.method = "GET", .path = "/v1/users", .roles = ROLES_LEAD, .handler = get_users},
    {.method = "GET", .path = "/v1/audit", .roles = ROLES_LEAD, .handler = get_audit},
    {0},
};
