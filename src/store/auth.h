/*
 * store/auth.h -- people, their API tokens and the audit trail, in the
 * same SQLite file as everything else (see store/auth.c).
 *
 * Tokens are stored as the SHA-256 of the whole token text ("fw_..."),
 * never the token itself.  The audit table is append-only: this API has
 * no call that changes or deletes a row, and triggers refuse UPDATE and
 * DELETE on it from anyone else.
 */
#ifndef FW_STORE_AUTH_H
#define FW_STORE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct store;

#define STORE_DIGEST_LEN 32 /* SHA-256 */

struct store_user {
    char name[64];
    char role[16];
    int64_t created_at;
};

struct store_token {
    int64_t id;
    char user[64];
    char role[16];        /* the user's role now (tokens carry no role of their own) */
    int64_t created_at;
    int64_t expires_at;   /* FW_TIME_NONE: never */
    int64_t revoked_at;   /* FW_TIME_NONE: not revoked */
    int64_t last_used_at; /* FW_TIME_NONE: never used; kept to the minute (http/auth.c) */
};

/* Add a user; FW_EEXISTS when the name is taken, FW_EDB on other errors. */
int store_user_add(struct store *s, const char *name, const char *role, int64_t now);
/* Change a user's role (its tokens follow at once); FW_ENOTFOUND for an unknown name. */
int store_user_set_role(struct store *s, const char *name, const char *role);
/*
 * Remove a user and revoke every token of theirs at `now` (the token rows
 * stay, for `token list` and the audit trail).  FW_ENOTFOUND when unknown.
 * Run it inside a transaction so both happen or neither.
 */
int store_user_remove(struct store *s, const char *name, int64_t now);
/* Fill *out; FW_ENOTFOUND when unknown. */
int store_user_get(struct store *s, const char *name, struct store_user *out);
/* *any = 1 when at least one user exists (authentication is then on). */
int store_users_any(struct store *s, int *any);

/* Called per row in name order; a non-zero return stops the walk and is returned. */
typedef int (*store_user_fn)(void *ctx, const struct store_user *u);
int store_users_each(struct store *s, store_user_fn fn, void *ctx);
/* Append {"users":[{"name":..,"role":..,"created_at":..},...]} to out. */
int store_users_json(struct store *s, struct buf *out);

/*
 * Record a token for user by its digest; *id receives its id.  expires_at
 * FW_TIME_NONE: it never expires.  FW_ENOTFOUND for an unknown user,
 * FW_EEXISTS when the digest is already stored (a repeated secret).
 */
int store_token_add(struct store *s, const char *user, const unsigned char digest[STORE_DIGEST_LEN],
                    int64_t now, int64_t expires_at, int64_t *id);
/*
 * The token with this digest whose user still exists; FW_ENOTFOUND
 * otherwise.  Revoked and expired tokens are returned: the caller decides.
 */
int store_token_by_digest(struct store *s, const unsigned char digest[STORE_DIGEST_LEN],
                          struct store_token *out);
/* Revoke token id at now; FW_ENOTFOUND when unknown, FW_ESTATE when already revoked. */
int store_token_revoke(struct store *s, int64_t id, int64_t now);
/* Note that token id was used at now (only ever moves forward). */
int store_token_touch(struct store *s, int64_t id, int64_t now);
/* Called per token in id order, revoked and expired ones included. */
typedef int (*store_token_fn)(void *ctx, const struct store_token *t);
int store_tokens_each(struct store *s, store_token_fn fn, void *ctx);

/* One audit row.  Strings are borrowed; NULL is stored as "". */
struct audit_record {
    int64_t at;              /* wall time */
    const char *user, *role; /* the principal */
    const char *action;      /* "GET /v1/messages/m-1", or a handler's own name */
    const char *object_kind; /* "message", "customer", "case", ... */
    const char *object_id;   /* "" when the call named no one object */
    const char *address;     /* the client's IP address */
    int status;              /* the HTTP status answered */
};
int store_audit_append(struct store *s, const struct audit_record *a);

struct audit_query {
    const char *user;        /* NULL: anyone */
    const char *object_kind; /* NULL: any */
    const char *object_id;   /* NULL: any (only with a kind) */
    int64_t since;           /* FW_TIME_NONE: from the start; else rows with at >= since */
    int64_t after;           /* cursor: rows with seq > after */
    int limit;
};
/* Append {"audit":[...],"next_cursor":"<seq>"|null} to out, oldest first. */
int store_audit_json(struct store *s, const struct audit_query *q, struct buf *out);

#endif
