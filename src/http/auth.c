/*
 * auth.c -- roles, tokens, and who a request comes from.
 *
 * Authentication is on when the config has a shared token or the store
 * has at least one user; it is decided per request, so the first
 * `forewarn user add` on a running server closes it at once.  Off, every
 * caller is the principal "anonymous" with the admin role.
 *
 * Token look-ups read the tokens table on one of the read-only pool's
 * connections on every request, with no cache: a token revoked (or a user
 * removed, or a role changed) by the CLI while serve runs takes effect on
 * the next request.  The cost is one indexed SELECT on a connection the
 * request would mostly take anyway.  Only `last_used_at` is written, at
 * most once a minute per token, through the audit writer (audit.c).
 */
#include "http/auth.h"

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "http/http_int.h"
#include "store/auth.h"
#include "util/fwtime.h"
#include "util/log.h"
#include "util/util.h"

#define TOUCH_EVERY_MS 60000 /* last_used_at is kept to the minute */

static const struct {
    enum role role;
    const char *name;
} roles[] = {
    {ROLE_VIEWER, "viewer"}, {ROLE_AGENT, "agent"},     {ROLE_LEAD, "lead"},
    {ROLE_ADMIN, "admin"},   {ROLE_SERVICE, "service"},
};

const char *role_name(enum role r)
{
    for (size_t i = 0; i < ARRAY_SIZE(roles); i++)
        if (roles[i].role == r)
            return roles[i].name;
    return "?";
}

int role_parse(const char *s, enum role *out)
{
    for (size_t i = 0; s && i < ARRAY_SIZE(roles); i++)
        if (!strcmp(s, roles[i].name)) {
            *out = roles[i].role;
            return 0;
        }
    return FW_EINVAL;
}

void role_mask_names(int mask, char *out, size_t cap)
{
    size_t n = 0, total = 0, len = 0;
    for (size_t i = 0; i < ARRAY_SIZE(roles); i++)
        total += (mask & (int)roles[i].role) != 0;
    out[0] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(roles) && len < cap; i++) {
        if (!(mask & (int)roles[i].role))
            continue;
        const char *sep = n == 0 ? "" : n + 1 == total ? " or " : ", ";
        int w = snprintf(out + len, cap - len, "%s%s", sep, roles[i].name);
        len += w > 0 ? (size_t)w : 0;
        n++;
    }
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int auth_token_new(char out[AUTH_TOKEN_LEN + 1], unsigned char digest[AUTH_DIGEST_LEN])
{
    unsigned char secret[33]; /* 32 random bytes; one zero byte pads the last group of three */
    size_t got = 0;
    while (got < 32) {
        ssize_t n = getrandom(secret + got, 32 - got, 0);
        if (n <= 0) {
            log_error("getrandom: no randomness for a token");
            return FW_EIO;
        }
        got += (size_t)n;
    }
    secret[32] = 0;
    memcpy(out, AUTH_TOKEN_PREFIX, 3);
    char *o = out + 3;
    for (size_t i = 0; i < 33; i += 3) {
        unsigned v = (unsigned)secret[i] << 16 | (unsigned)secret[i + 1] << 8 | secret[i + 2];
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
        *o++ = b64url[v >> 6 & 63];
        if (i + 3 < 33)
            *o++ = b64url[v & 63]; /* the last group holds 2 bytes: 3 characters */
    }
    *o = '\0';
    OPENSSL_cleanse(secret, sizeof secret);
    auth_token_digest(out, AUTH_TOKEN_LEN, digest);
    return 0;
}

void auth_token_digest(const char *token, size_t n, unsigned char digest[AUTH_DIGEST_LEN])
{
    unsigned int len = 0;
    EVP_Digest(token, n, digest, &len, EVP_sha256(), NULL);
}

int auth_digest_equal(const unsigned char a[AUTH_DIGEST_LEN], const unsigned char b[AUTH_DIGEST_LEN])
{
    return CRYPTO_memcmp(a, b, AUTH_DIGEST_LEN) == 0;
}

int auth_token_wellformed(const char *text, size_t n)
{
    if (n != AUTH_TOKEN_LEN || strncmp(text, AUTH_TOKEN_PREFIX, 3))
        return 0;
    for (size_t i = 3; i < n; i++)
        if (!strchr(b64url, text[i]) || !text[i])
            return 0;
    return 1;
}

int auth_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return 0;
    }
    return 1;
}

static void set_principal(struct principal *p, const char *name, enum role role, int authed)
{
    snprintf(p->name, sizeof p->name, "%s", name);
    p->role = role;
    p->authenticated = authed;
}

int http__principal_for(struct http_env *env, const unsigned char *digest, struct principal *who)
{
    set_principal(who, "anonymous", ROLE_ADMIN, 0);
    if (digest && env->has_shared && auth_digest_equal(digest, env->shared_digest)) {
        set_principal(who, "admin", ROLE_ADMIN, 1);
        return 0;
    }
    if (!digest && env->has_shared)
        return FW_EINVAL;
    struct store *s = http__reader_acquire(&env->readers);
    if (!s)
        return FW_EDB;
    struct store_token t;
    int any = 0, rc = digest ? store_token_by_digest(s, digest, &t) : FW_ENOTFOUND;
    if (rc == FW_ENOTFOUND && !env->has_shared && !(rc = store_users_any(s, &any)) && !any) {
        /* No users and no shared token: authentication is off, whatever was sent. */
        http__reader_release(&env->readers, s);
        return 0;
    }
    http__reader_release(&env->readers, s);
    if (rc == FW_EDB)
        return FW_EDB;
    if (rc || !digest)
        return FW_EINVAL;
    int64_t now = fw_wall_now();
    enum role role;
    if (t.revoked_at != FW_TIME_NONE || (t.expires_at != FW_TIME_NONE && now >= t.expires_at) ||
        role_parse(t.role, &role))
        return FW_EINVAL;
    set_principal(who, t.user, role, 1);
    if (t.last_used_at == FW_TIME_NONE || now - t.last_used_at >= TOUCH_EVERY_MS)
        http__audit_touch(env->audit, t.id, now);
    return 0;
}

/*
 * A bearer token wins over the cookie: API clients never carry the
 * cookie's CSRF duty.  Without either, the caller is anonymous (admin
 * while authentication is off).
 */
int http__authenticate(struct req *r)
{
    const char *h = http_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *token = http__bearer_token(h);
    unsigned char digest[AUTH_DIGEST_LEN];
    const unsigned char *d = NULL;
    if (token) {
        auth_token_digest(token, strlen(token), digest);
        d = digest;
    } else {
        const char *sid = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE);
        if (sid && !http__session_lookup(r->env->sessions, sid, digest, r->session_csrf)) {
            d = digest;
            r->via_cookie = 1;
            snprintf(r->session_id, sizeof r->session_id, "%s", sid);
        }
        /* A stale cookie is no credential: the caller is as if it had sent nothing. */
    }
    if (d) {
        memcpy(r->token_digest, d, AUTH_DIGEST_LEN);
        r->has_token = 1;
    }
    return http__principal_for(r->env, d, &r->who);
}
