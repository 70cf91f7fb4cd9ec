/*
 * store/auth.c -- users, tokens and the audit trail (see store/auth.h).
 *
 * The file keeps its SQL in its own name -> SQL table, prepared per
 * connection on first use through store__named, rather than in store.c's
 * numbered slots.  Invariant: no statement here updates or deletes an
 * audit row, and the schema's triggers refuse it from anywhere else, so
 * the trail is append-only for every client of the file.
 */
#include "store/auth.h"
#include "store/store.h"
#include "store/store_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "util/fwtime.h"
#include "util/log.h"
#include "util/util.h"

const char store__auth_schema[] =
    "CREATE TABLE users ("
    "  name TEXT PRIMARY KEY,"
    "  role TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  user TEXT NOT NULL,"
    "  sha256 BLOB NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER,"
    "  revoked_at INTEGER,"
    "  last_used_at INTEGER);"
    "CREATE INDEX tokens_user ON tokens(user);"
    "CREATE TABLE audit ("
    "  seq INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  user TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  object_kind TEXT NOT NULL,"
    "  object_id TEXT NOT NULL,"
    "  address TEXT NOT NULL,"
    "  status INTEGER NOT NULL);"
    "CREATE INDEX audit_user ON audit(user, seq);"
    "CREATE INDEX audit_object ON audit(object_kind, object_id, seq);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
    "  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
    "  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;";

#define AUTH_STMTS(X)                                                                              \
    X(USER_ADD, "INSERT INTO users(name, role, created_at) VALUES (?1, ?2, ?3) "                   \
                "ON CONFLICT(name) DO NOTHING")                                                    \
    X(USER_ROLE, "UPDATE users SET role = ?2 WHERE name = ?1")                                     \
    X(USER_DEL, "DELETE FROM users WHERE name = ?1")                                               \
    X(USER_TOKENS_REVOKE, "UPDATE tokens SET revoked_at = ?2 WHERE user = ?1 "                     \
                          "AND revoked_at IS NULL")                                                \
    X(USER_GET, "SELECT name, role, created_at FROM users WHERE name = ?1")                        \
    X(USERS_ANY, "SELECT EXISTS (SELECT 1 FROM users)")                                            \
    X(USERS_ALL, "SELECT name, role, created_at FROM users ORDER BY name")                         \
    X(TOKEN_ADD, "INSERT INTO tokens(user, sha256, created_at, expires_at) "                       \
                 "SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM users WHERE name = ?1) "       \
                 "ON CONFLICT(sha256) DO NOTHING")                                                 \
    X(TOKEN_BY_DIGEST, "SELECT t.id, t.user, u.role, t.created_at, t.expires_at, t.revoked_at, "   \
                       "t.last_used_at FROM tokens t JOIN users u ON u.name = t.user "             \
                       "WHERE t.sha256 = ?1")                                                      \
    X(TOKEN_REVOKE, "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")      \
    X(TOKEN_EXISTS, "SELECT 1 FROM tokens WHERE id = ?1")                                          \
    X(TOKEN_TOUCH, "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1 "                            \
                   "AND (last_used_at IS NULL OR last_used_at < ?2)")                              \
    X(TOKENS_ALL, "SELECT t.id, t.user, coalesce(u.role, ''), t.created_at, t.expires_at, "        \
                  "t.revoked_at, t.last_used_at FROM tokens t LEFT JOIN users u "                  \
                  "ON u.name = t.user ORDER BY t.id")                                              \
    X(AUDIT_ADD, "INSERT INTO audit(at, user, role, action, object_kind, object_id, address, "     \
                 "status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")                                \
    X(AUDIT_QUERY, "SELECT seq, at, user, role, action, object_kind, object_id, address, status "  \
                   "FROM audit WHERE seq > ?1 AND (?2 IS NULL OR user = ?2) "                      \
                   "AND (?3 IS NULL OR object_kind = ?3) AND (?4 IS NULL OR object_id = ?4) "      \
                   "AND (?5 IS NULL OR at >= ?5) ORDER BY seq LIMIT ?6")

enum auth_stmt {
#define AUTH__ENUM(name, sql) AS_##name,
    AUTH_STMTS(AUTH__ENUM)
#undef AUTH__ENUM
};

static const char *const auth_sql[] = {
#define AUTH__SQL(name, sql) sql,
    AUTH_STMTS(AUTH__SQL)
#undef AUTH__SQL
};

static sqlite3_stmt *stmt(struct store *s, enum auth_stmt id)
{
    return store__named(s, auth_sql[id]);
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Copy a text column into a fixed field, truncating (names are checked to fit on the way in). */
static void col_copy(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const char *v = (const char *)sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", v ? v : "");
}

static int64_t col_time(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? FW_TIME_NONE
                                                       : sqlite3_column_int64(st, col);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
    if (t == FW_TIME_NONE)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, t);
}

int store_user_add(struct store *s, const char *name, const char *role, int64_t now)
{
    sqlite3_stmt *st = stmt(s, AS_USER_ADD);
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, name);
    store__bind_text(st, 2, role);
    sqlite3_bind_int64(st, 3, now);
    int rc = store__run(s, st);
    return rc ? rc : sqlite3_changes(s->db) ? 0 : FW_EEXISTS;
}

int store_user_set_role(struct store *s, const char *name, const char *role)
{
    sqlite3_stmt *st = stmt(s, AS_USER_ROLE);
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, name);
    store__bind_text(st, 2, role);
    int rc = store__run(s, st);
    return rc ? rc : sqlite3_changes(s->db) ? 0 : FW_ENOTFOUND;
}

int store_user_remove(struct store *s, const char *name, int64_t now)
{
    sqlite3_stmt *del = stmt(s, AS_USER_DEL), *rev = stmt(s, AS_USER_TOKENS_REVOKE);
    if (!del || !rev)
        return FW_EDB;
    store__bind_text(del, 1, name);
    int rc = store__run(s, del);
    if (rc)
        return rc;
    if (!sqlite3_changes(s->db))
        return FW_ENOTFOUND;
    store__bind_text(rev, 1, name);
    sqlite3_bind_int64(rev, 2, now);
    return store__run(s, rev);
}

static void row_user(sqlite3_stmt *st, struct store_user *u)
{
    col_copy(u->name, sizeof u->name, st, 0);
    col_copy(u->role, sizeof u->role, st, 1);
    u->created_at = sqlite3_column_int64(st, 2);
}

int store_user_get(struct store *s, const char *name, struct store_user *out)
{
    sqlite3_stmt *st = stmt(s, AS_USER_GET);
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, name);
    int step = sqlite3_step(st), rc = FW_ENOTFOUND;
    if (step == SQLITE_ROW) {
        row_user(st, out);
        rc = 0;
    } else if (step != SQLITE_DONE) {
        rc = FW_EDB;
    }
    done(st);
    return rc;
}

int store_users_any(struct store *s, int *any)
{
    sqlite3_stmt *st = stmt(s, AS_USERS_ANY);
    if (!st)
        return FW_EDB;
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : FW_EDB;
    *any = rc ? 0 : sqlite3_column_int(st, 0);
    done(st);
    return rc;
}

int store_users_each(struct store *s, store_user_fn fn, void *ctx)
{
    sqlite3_stmt *st = stmt(s, AS_USERS_ALL);
    if (!st)
        return FW_EDB;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_user u;
        row_user(st, &u);
        if ((rc = fn(ctx, &u)))
            break;
    }
    if (!rc && step != SQLITE_DONE)
        rc = FW_EDB;
    done(st);
    return rc;
}

static int user_json(void *ctx, const struct store_user *u)
{
    struct buf *out = ctx;
    if (out->data[out->len - 1] != '[')
        buf_putc(out, ',');
    buf_puts(out, "{\"name\":");
    buf_json_str(out, u->name, strlen(u->name));
    buf_puts(out, ",\"role\":");
    buf_json_str(out, u->role, strlen(u->role));
    buf_puts(out, ",\"created_at\":");
    buf_json_time(out, u->created_at);
    buf_putc(out, '}');
    return 0;
}

int store_users_json(struct store *s, struct buf *out)
{
    buf_puts(out, "{\"users\":[");
    int rc = store_users_each(s, user_json, out);
    buf_puts(out, "]}");
    return rc;
}

int store_token_add(struct store *s, const char *user, const unsigned char digest[STORE_DIGEST_LEN],
                    int64_t now, int64_t expires_at, int64_t *id)
{
    struct store_user u;
    int rc = store_user_get(s, user, &u);
    if (rc)
        return rc;
    sqlite3_stmt *st = stmt(s, AS_TOKEN_ADD);
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, user);
    sqlite3_bind_blob(st, 2, digest, STORE_DIGEST_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    bind_time(st, 4, expires_at);
    if ((rc = store__run(s, st)))
        return rc;
    if (!sqlite3_changes(s->db))
        return FW_EEXISTS;
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

static void row_token(sqlite3_stmt *st, struct store_token *t)
{
    t->id = sqlite3_column_int64(st, 0);
    col_copy(t->user, sizeof t->user, st, 1);
    col_copy(t->role, sizeof t->role, st, 2);
    t->created_at = sqlite3_column_int64(st, 3);
    t->expires_at = col_time(st, 4);
    t->revoked_at = col_time(st, 5);
    t->last_used_at = col_time(st, 6);
}

int store_token_by_digest(struct store *s, const unsigned char digest[STORE_DIGEST_LEN],
                          struct store_token *out)
{
    sqlite3_stmt *st = stmt(s, AS_TOKEN_BY_DIGEST);
    if (!st)
        return FW_EDB;
    sqlite3_bind_blob(st, 1, digest, STORE_DIGEST_LEN, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = FW_ENOTFOUND;
    if (step == SQLITE_ROW) {
        row_token(st, out);
        rc = 0;
    } else if (step != SQLITE_DONE) {
        rc = FW_EDB;
    }
    done(st);
    return rc;
}

int store_token_revoke(struct store *s, int64_t id, int64_t now)
{
    sqlite3_stmt *st = stmt(s, AS_TOKEN_REVOKE), *ex = stmt(s, AS_TOKEN_EXISTS);
    if (!st || !ex)
        return FW_EDB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    int rc = store__run(s, st);
    if (rc || sqlite3_changes(s->db))
        return rc;
    /* Nothing changed: unknown, or revoked before. */
    sqlite3_bind_int64(ex, 1, id);
    int step = sqlite3_step(ex);
    done(ex);
    return step == SQLITE_ROW ? FW_ESTATE : step == SQLITE_DONE ? FW_ENOTFOUND : FW_EDB;
}

int store_token_touch(struct store *s, int64_t id, int64_t now)
{
    sqlite3_stmt *st = stmt(s, AS_TOKEN_TOUCH);
    if (!st)
        return FW_EDB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    return store__run(s, st);
}

int store_tokens_each(struct store *s, store_token_fn fn, void *ctx)
{
    sqlite3_stmt *st = stmt(s, AS_TOKENS_ALL);
    if (!st)
        return FW_EDB;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_token t;
        row_token(st, &t);
        if ((rc = fn(ctx, &t)))
            break;
    }
    if (!rc && step != SQLITE_DONE)
        rc = FW_EDB;
    done(st);
    return rc;
}

int store_audit_append(struct store *s, const struct audit_record *a)
{
    sqlite3_stmt *st = stmt(s, AS_AUDIT_ADD);
    if (!st)
        return FW_EDB;
    sqlite3_bind_int64(st, 1, a->at);
    store__bind_text(st, 2, a->user ? a->user : "");
    store__bind_text(st, 3, a->role ? a->role : "");
    store__bind_text(st, 4, a->action ? a->action : "");
    store__bind_text(st, 5, a->object_kind ? a->object_kind : "");
    store__bind_text(st, 6, a->object_id ? a->object_id : "");
    store__bind_text(st, 7, a->address ? a->address : "");
    sqlite3_bind_int(st, 8, a->status);
    return store__run(s, st);
}

static void json_col(struct buf *out, const char *key, sqlite3_stmt *st, int col)
{
    const char *v = (const char *)sqlite3_column_text(st, col);
    buf_printf(out, ",\"%s\":", key);
    buf_json_str(out, v ? v : "", v ? strlen(v) : 0);
}

static void audit_row(sqlite3_stmt *st, struct buf *out, int first, void *ctx)
{
    (void)ctx;
    buf_printf(out, "%s{\"seq\":%lld,\"at\":", first ? "" : ",",
               (long long)sqlite3_column_int64(st, 0));
    buf_json_time(out, sqlite3_column_int64(st, 1));
    json_col(out, "user", st, 2);
    json_col(out, "role", st, 3);
    json_col(out, "action", st, 4);
    json_col(out, "object_kind", st, 5);
    json_col(out, "object_id", st, 6);
    json_col(out, "address", st, 7);
    buf_printf(out, ",\"status\":%d}", sqlite3_column_int(st, 8));
}

int store_audit_json(struct store *s, const struct audit_query *q, struct buf *out)
{
    sqlite3_stmt *st = stmt(s, AS_AUDIT_QUERY);
    if (!st)
        return FW_EDB;
    sqlite3_bind_int64(st, 1, q->after);
    store__bind_text(st, 2, q->user);
    store__bind_text(st, 3, q->object_kind);
    store__bind_text(st, 4, q->object_id);
    bind_time(st, 5, q->since);
    sqlite3_bind_int(st, 6, q->limit + 1); /* one extra row tells whether there is a next page */
    return store__page(st, q->limit, 0, "audit", 1, audit_row, NULL, out);
}
