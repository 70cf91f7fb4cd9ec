/*
 * session.c -- the console's sign-in: a token exchanged for a session
 * cookie (docs/console.md, docs/security.md).
 *
 *   POST   /v1/session   {"token": "fw_..."} -> Set-Cookie fw_session=...; the CSRF value
 *   GET    /v1/session   who the cookie (or token) is, and the CSRF value the page must send
 *   DELETE /v1/session   sign out (the session is forgotten, the cookie cleared)
 *
 * A session names the token its user signed in with (by digest), so each
 * request through the cookie is authenticated by that token's current row:
 * revoking it, removing the user or changing their role applies to the
 * session at the next request, as with the bearer token.  The table keeps
 * the SHA-256 of each session id, never the id; it lives in memory, so a
 * restart signs everyone out (they sign in again with their token).
 *
 * CSRF: the cookie is HttpOnly and SameSite=Strict, and every change made
 * through it must also carry X-Forewarn-CSRF equal to the session's random
 * CSRF value, which only a page of ours can read (GET /v1/session answers
 * same-origin reads only: no CORS headers are ever sent).  The router
 * (http.c) refuses a cookie change without it with 403.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"

#define SESSION_TTL_MS (12LL * 3600 * 1000) /* a working day; then sign in again */
#define SESSIONS_MAX 4096                    /* the oldest-expiring goes when full */

struct session {
    unsigned char id_digest[AUTH_DIGEST_LEN];    /* SHA-256 of the cookie's value */
    unsigned char token_digest[AUTH_DIGEST_LEN]; /* the token signed in with */
    char csrf[AUTH_TOKEN_LEN + 1];
    int64_t expires_at; /* wall time; 0: free slot */
};

struct sessions {
    pthread_mutex_t mu;
    struct session s[SESSIONS_MAX];
};

struct sessions *http__sessions_new(void)
{
    struct sessions *ss = xcalloc(1, sizeof *ss);
    pthread_mutex_init(&ss->mu, NULL);
    return ss;
}

void http__sessions_free(struct sessions *ss)
{
    if (!ss)
        return;
    pthread_mutex_destroy(&ss->mu);
    free(ss);
}

/* The live slot for this id digest, or NULL.  Caller holds mu. */
static struct session *find(struct sessions *ss, const unsigned char d[AUTH_DIGEST_LEN], int64_t now)
{
    for (size_t i = 0; i < SESSIONS_MAX; i++)
        if (ss->s[i].expires_at > now && auth_digest_equal(ss->s[i].id_digest, d))
            return &ss->s[i];
    return NULL;
}

int http__session_lookup(struct sessions *ss, const char *id, unsigned char digest[AUTH_DIGEST_LEN],
                         char csrf[64])
{
    if (!ss || !auth_token_wellformed(id, strlen(id)))
        return FW_ENOTFOUND;
    unsigned char d[AUTH_DIGEST_LEN];
    auth_token_digest(id, strlen(id), d);
    pthread_mutex_lock(&ss->mu);
    struct session *s = find(ss, d, fw_wall_now());
    if (s) {
        memcpy(digest, s->token_digest, AUTH_DIGEST_LEN);
        snprintf(csrf, 64, "%s", s->csrf);
    }
    pthread_mutex_unlock(&ss->mu);
    return s ? 0 : FW_ENOTFOUND;
}

/* Store a new session; the slot of an expired one, else the one expiring first. */
static void put(struct sessions *ss, const struct session *n)
{
    int64_t now = fw_wall_now();
    pthread_mutex_lock(&ss->mu);
    struct session *slot = &ss->s[0];
    for (size_t i = 0; i < SESSIONS_MAX; i++) {
        if (ss->s[i].expires_at <= now) {
            slot = &ss->s[i];
            break;
        }
        if (ss->s[i].expires_at < slot->expires_at)
            slot = &ss->s[i];
    }
    *slot = *n;
    pthread_mutex_unlock(&ss->mu);
}

static void forget(struct sessions *ss, const char *id)
{
    unsigned char d[AUTH_DIGEST_LEN];
    auth_token_digest(id, strlen(id), d);
    pthread_mutex_lock(&ss->mu);
    struct session *s = find(ss, d, fw_wall_now());
    if (s)
        memset(s, 0, sizeof *s);
    pthread_mutex_unlock(&ss->mu);
}

/* {"name":..,"role":..,"authenticated":..,"csrf":..|null} */
static void reply_who(struct req *r, unsigned status, const char *csrf)
{
    buf_reset(&r->out);
    buf_puts(&r->out, "{\"name\":");
    buf_json_str(&r->out, r->who.name, strlen(r->who.name));
    const char *role = role_name(r->who.role);
    buf_puts(&r->out, ",\"role\":");
    buf_json_str(&r->out, role, strlen(role));
    buf_printf(&r->out, ",\"authenticated\":%s,\"csrf\":", r->who.authenticated ? "true" : "false");
    if (csrf && *csrf)
        buf_json_str(&r->out, csrf, strlen(csrf));
    else
        buf_puts(&r->out, "null");
    buf_puts(&r->out, "}");
    http_reply_json(r, status, &r->out);
}

static void post_session(struct req *r)
{
    json_error_t err;
    json_t *j = r->body_len ? fw_json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err) : NULL;
    const char *token = json_string_value(json_object_get(j, "token"));
    if (!token) {
        http_error(r, 400, "the body must be {\"token\": \"fw_...\"}");
        json_decref(j);
        return;
    }
    unsigned char td[AUTH_DIGEST_LEN];
    auth_token_digest(token, strlen(token), td);
    json_decref(j);
    struct principal who;
    int rc = http__principal_for(r->env, td, &who);
    if (rc == FW_EDB) {
        http_error(r, 503, "database unavailable");
        return;
    }
    if (rc) {
        http_error(r, 401, "that token is wrong, expired or revoked");
        return;
    }
    r->who = who;
    if (!who.authenticated) {
        /* Authentication is off: nothing to sign in to; the console works as admin. */
        reply_who(r, 200, NULL);
        return;
    }
    snprintf(r->audit_id, sizeof r->audit_id, "%s", who.name);
    if (who.role == ROLE_SERVICE) {
        http_error(r, 403, "%s has the role service: service tokens post events and cannot sign in "
                           "to the console", who.name);
        return;
    }
    struct session s = {0};
    char id[AUTH_TOKEN_LEN + 1];
    unsigned char unused[AUTH_DIGEST_LEN];
    if (auth_token_new(id, s.id_digest) || auth_token_new(s.csrf, unused)) {
        http_error(r, 503, "no randomness for a session");
        return;
    }
    memcpy(s.token_digest, td, sizeof td);
    s.expires_at = fw_wall_now() + SESSION_TTL_MS;
    put(r->env->sessions, &s);
    snprintf(r->set_cookie, sizeof r->set_cookie,
             "%s=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%lld", HTTP_SESSION_COOKIE, id,
             SESSION_TTL_MS / 1000);
    reply_who(r, 200, s.csrf);
}

static void get_session(struct req *r)
{
    reply_who(r, 200, r->via_cookie ? r->session_csrf : NULL);
}

static void delete_session(struct req *r)
{
    if (r->via_cookie)
        forget(r->env->sessions, r->session_id);
    snprintf(r->audit_id, sizeof r->audit_id, "%s", r->who.name);
    snprintf(r->set_cookie, sizeof r->set_cookie,
             "%s=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0", HTTP_SESSION_COOKIE);
    buf_reset(&r->out);
    buf_puts(&r->out, "{\"signed_out\":true}");
    http_reply_json(r, 200, &r->out);
}

const struct route http_session_routes[] = {
    /* Public: the token in the body is the credential; audited once it is known. */
    {.method = "POST", .path = "/v1/session", .public = ROUTE_PUBLIC, .audit = "session",
     .handler = post_session},
    {.method = "GET", .path = "/v1/session", .roles = ROLES_READ, .handler = get_session},
    {.method = "DELETE", .path = "/v1/session", .roles = ROLES_READ, .audit = "session",
     .handler = delete_session},
    {0},
};
