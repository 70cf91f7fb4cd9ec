/*
 * test_auth.c -- roles and tokens (http/auth.c) and the store's users,
 * tokens and audit trail (store/auth.c) on a temporary database: role
 * names both ways, the token's format and randomness, digests and their
 * constant-time comparison, round trips, revocation, the append-only
 * audit table and its pages.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "http/auth.h"
#include "http/http_int.h"
#include "store/auth.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

#define T0 1767434400000LL /* 2026-01-03T10:00:00Z */

static void roles_parse_and_name(void)
{
    static const char *const names[] = {"viewer", "agent", "lead", "admin", "service"};
    static const enum role want[] = {ROLE_VIEWER, ROLE_AGENT, ROLE_LEAD, ROLE_ADMIN, ROLE_SERVICE};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        enum role r = 0;
        ASSERT_EQ(role_parse(names[i], &r), 0);
        ASSERT_EQ(r, want[i]);
        ASSERT_STREQ(role_name(r), names[i]);
    }
    enum role r = ROLE_VIEWER;
    ASSERT_EQ(role_parse("Admin", &r), FW_EINVAL); /* exact names only */
    ASSERT_EQ(role_parse("", &r), FW_EINVAL);
    ASSERT_EQ(role_parse("root", &r), FW_EINVAL);
    ASSERT_EQ(role_parse(NULL, &r), FW_EINVAL);
    ASSERT_EQ(r, ROLE_VIEWER); /* untouched on error */
    ASSERT_STREQ(role_name(0), "?");
    ASSERT_STREQ(role_name(ROLE_LEAD | ROLE_ADMIN), "?");
}

static void role_sets_and_names(void)
{
    ASSERT(!(ROLES_READ & ROLE_SERVICE));
    ASSERT(!(ROLES_INGEST & (ROLE_VIEWER | ROLE_AGENT | ROLE_LEAD)));
    ASSERT(!(ROLES_WORK & ROLE_VIEWER));
    ASSERT_EQ(ROLES_LEAD, ROLE_LEAD | ROLE_ADMIN);
    char s[64];
    role_mask_names(ROLES_INGEST, s, sizeof s);
    ASSERT_STREQ(s, "admin or service");
    role_mask_names(ROLES_WORK, s, sizeof s);
    ASSERT_STREQ(s, "agent, lead or admin");
    role_mask_names(ROLE_ADMIN, s, sizeof s);
    ASSERT_STREQ(s, "admin");
}

static void token_format_and_digest(void)
{
    char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1];
    unsigned char da[AUTH_DIGEST_LEN], db[AUTH_DIGEST_LEN], again[AUTH_DIGEST_LEN];
    ASSERT_EQ(auth_token_new(a, da), 0);
    ASSERT_EQ(auth_token_new(b, db), 0);
    ASSERT_EQ(strlen(a), AUTH_TOKEN_LEN);
    ASSERT(!strncmp(a, "fw_", 3));
    ASSERT(auth_token_wellformed(a, strlen(a)));
    ASSERT(strcmp(a, b) != 0); /* 256 random bits: never the same twice */
    for (size_t i = 3; i < AUTH_TOKEN_LEN; i++)
        ASSERT(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
    /* The digest is SHA-256 of the whole text, prefix included. */
    auth_token_digest(a, strlen(a), again);
    ASSERT(auth_digest_equal(da, again));
    ASSERT(!auth_digest_equal(da, db));
    unsigned char abc[AUTH_DIGEST_LEN];
    auth_token_digest("abc", 3, abc);
    static const unsigned char sha_abc[4] = {0xba, 0x78, 0x16, 0xbf}; /* FIPS 180-2 example */
    ASSERT(!memcmp(abc, sha_abc, 4));
    ASSERT(!auth_token_wellformed("fw_short", 8));
    char bad[AUTH_TOKEN_LEN + 1];
    memcpy(bad, a, sizeof bad);
    bad[10] = '+'; /* not base64url */
    ASSERT(!auth_token_wellformed(bad, AUTH_TOKEN_LEN));
    bad[10] = a[10];
    bad[0] = 'x';
    ASSERT(!auth_token_wellformed(bad, AUTH_TOKEN_LEN));
}

static void digest_compare_is_total(void)
{
    unsigned char x[AUTH_DIGEST_LEN], y[AUTH_DIGEST_LEN];
    memset(x, 0x5a, sizeof x);
    memcpy(y, x, sizeof y);
    ASSERT(auth_digest_equal(x, y));
    /* A difference anywhere, first byte or last, is seen. */
    for (size_t i = 0; i < AUTH_DIGEST_LEN; i++) {
        y[i] ^= 1;
        ASSERT(!auth_digest_equal(x, y));
        y[i] ^= 1;
    }
    ASSERT_EQ(fw_consttime_cmp("abc", 3, "abc", 3), 0);
    ASSERT(fw_consttime_cmp("abc", 3, "abd", 3) != 0);
    ASSERT(fw_consttime_cmp("abc", 3, "abcd", 4) != 0);
}

static void names_checked(void)
{
    ASSERT(auth_name_valid("alice"));
    ASSERT(auth_name_valid("ops-bot_2@example.com"));
    ASSERT(!auth_name_valid(""));
    ASSERT(!auth_name_valid("has space"));
    ASSERT(!auth_name_valid("semi;colon"));
    char longname[80];
    memset(longname, 'a', sizeof longname);
    longname[64] = '\0';
    ASSERT(!auth_name_valid(longname));
    longname[63] = '\0';
    ASSERT(auth_name_valid(longname));
}

/* ---- the store ---- */

struct tmp {
    char dir[64], path[96];
};

static struct store *tmp_open(struct tmp *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/fw-auth-XXXXXX");
    if (!mkdtemp(t->dir))
        return NULL;
    snprintf(t->path, sizeof t->path, "%s/fw.db", t->dir);
    struct store *s = NULL;
    char err[256];
    if (store_open(t->path, 0, &s, err, sizeof err)) {
        fprintf(stderr, "    %s\n", err);
        return NULL;
    }
    return s;
}

static void tmp_cleanup(struct tmp *t)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    char p[128];
    for (size_t i = 0; i < ARRAY_SIZE(suffix); i++) {
        snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
        unlink(p);
    }
    rmdir(t->dir);
}

static void users_round_trip(void)
{
    struct tmp t;
    struct store *s = tmp_open(&t);
    ASSERT(s != NULL);
    int any = -1;
    ASSERT_EQ(store_users_any(s, &any), 0);
    ASSERT_EQ(any, 0);
    ASSERT_EQ(store_user_add(s, "bob", "agent", T0), 0);
    ASSERT_EQ(store_user_add(s, "alice", "lead", T0 + 1), 0);
    ASSERT_EQ(store_user_add(s, "bob", "admin", T0 + 2), FW_EEXISTS);
    ASSERT_EQ(store_users_any(s, &any), 0);
    ASSERT_EQ(any, 1);
    struct store_user u;
    ASSERT_EQ(store_user_get(s, "bob", &u), 0);
    ASSERT_STREQ(u.role, "agent"); /* the failed re-add changed nothing */
    ASSERT_EQ(u.created_at, T0);
    ASSERT_EQ(store_user_set_role(s, "bob", "viewer"), 0);
    ASSERT_EQ(store_user_get(s, "bob", &u), 0);
    ASSERT_STREQ(u.role, "viewer");
    ASSERT_EQ(store_user_set_role(s, "carol", "viewer"), FW_ENOTFOUND);
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ(store_users_json(s, &b), 0);
    ASSERT_STREQ(b.data, "{\"users\":[{\"name\":\"alice\",\"role\":\"lead\",\"created_at\":"
                         "\"2026-01-03T10:00:00.001Z\"},{\"name\":\"bob\",\"role\":\"viewer\","
                         "\"created_at\":\"2026-01-03T10:00:00Z\"}]}");
    buf_cleanup(&b);
    ASSERT_EQ(store_user_remove(s, "bob", T0), 0);
    ASSERT_EQ(store_user_remove(s, "bob", T0), FW_ENOTFOUND);
    ASSERT_EQ(store_user_get(s, "bob", &u), FW_ENOTFOUND);
    store_close(s);
    tmp_cleanup(&t);
}

static int count_tokens(void *ctx, const struct store_token *tk)
{
    (void)tk;
    (*(int *)ctx)++;
    return 0;
}

static void tokens_round_trip(void)
{
    struct tmp t;
    struct store *s = tmp_open(&t);
    ASSERT(s != NULL);
    char tok[AUTH_TOKEN_LEN + 1];
    unsigned char d[AUTH_DIGEST_LEN], other[AUTH_DIGEST_LEN];
    ASSERT_EQ(auth_token_new(tok, d), 0);
    int64_t id = 0, id2 = 0;
    ASSERT_EQ(store_token_add(s, "nobody", d, T0, FW_TIME_NONE, &id), FW_ENOTFOUND);
    ASSERT_EQ(store_user_add(s, "svc", "service", T0), 0);
    ASSERT_EQ(store_token_add(s, "svc", d, T0, T0 + FW_HOUR, &id), 0);
    ASSERT(id > 0);
    ASSERT_EQ(store_token_add(s, "svc", d, T0, FW_TIME_NONE, &id2), FW_EEXISTS);
    struct store_token k;
    ASSERT_EQ(store_token_by_digest(s, d, &k), 0);
    ASSERT_EQ(k.id, id);
    ASSERT_STREQ(k.user, "svc");
    ASSERT_STREQ(k.role, "service");
    ASSERT_EQ(k.created_at, T0);
    ASSERT_EQ(k.expires_at, T0 + FW_HOUR);
    ASSERT_EQ(k.revoked_at, FW_TIME_NONE);
    ASSERT_EQ(k.last_used_at, FW_TIME_NONE);
    auth_token_digest(tok, AUTH_TOKEN_LEN - 1, other); /* one character short: another digest */
    ASSERT_EQ(store_token_by_digest(s, other, &k), FW_ENOTFOUND);
    /* Last use only moves forward. */
    ASSERT_EQ(store_token_touch(s, id, T0 + 5), 0);
    ASSERT_EQ(store_token_touch(s, id, T0 + 2), 0);
    ASSERT_EQ(store_token_by_digest(s, d, &k), 0);
    ASSERT_EQ(k.last_used_at, T0 + 5);
    /* The role follows the user. */
    ASSERT_EQ(store_user_set_role(s, "svc", "viewer"), 0);
    ASSERT_EQ(store_token_by_digest(s, d, &k), 0);
    ASSERT_STREQ(k.role, "viewer");
    ASSERT_EQ(store_token_revoke(s, id, T0 + 10), 0);
    ASSERT_EQ(store_token_revoke(s, id, T0 + 11), FW_ESTATE);
    ASSERT_EQ(store_token_revoke(s, id + 100, T0 + 11), FW_ENOTFOUND);
    ASSERT_EQ(store_token_by_digest(s, d, &k), 0);
    ASSERT_EQ(k.revoked_at, T0 + 10);
    /* Removing the user revokes the rest and the look-up no longer finds them. */
    ASSERT_EQ(auth_token_new(tok, d), 0);
    ASSERT_EQ(store_token_add(s, "svc", d, T0, FW_TIME_NONE, &id2), 0);
    ASSERT_EQ(store_user_remove(s, "svc", T0 + 20), 0);
    ASSERT_EQ(store_token_by_digest(s, d, &k), FW_ENOTFOUND);
    int n = 0;
    ASSERT_EQ(store_tokens_each(s, count_tokens, &n), 0);
    ASSERT_EQ(n, 2); /* rows stay for the record */
    /* Only digests are stored: the token's text is nowhere in the table. */
    sqlite3 *raw;
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_open_v2(t.path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT count(*) FROM tokens WHERE instr(CAST(sha256 AS TEXT), ?1) "
                                      "OR length(sha256) != 32", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, tok + 3, -1, SQLITE_STATIC);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(raw);
    store_close(s);
    tmp_cleanup(&t);
}

static void audit_append_only_and_pages(void)
{
    struct tmp t;
    struct store *s = tmp_open(&t);
    ASSERT(s != NULL);
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "m-%d", i % 2);
        struct audit_record a = {.at = T0 + i, .user = i < 3 ? "ann" : "ben", .role = "lead",
                                 .action = "GET /v1/messages/x", .object_kind = "message",
                                 .object_id = id, .address = "127.0.0.1", .status = 200};
        ASSERT_EQ(store_audit_append(s, &a), 0);
    }
    struct buf b;
    buf_init(&b, 0);
    struct audit_query q = {.since = FW_TIME_NONE, .limit = 2};
    ASSERT_EQ(store_audit_json(s, &q, &b), 0);
    ASSERT_CONTAINS(b.data, "{\"audit\":[{\"seq\":1,\"at\":\"2026-01-03T10:00:00Z\",\"user\":\"ann\","
                            "\"role\":\"lead\",\"action\":\"GET /v1/messages/x\",\"object_kind\":"
                            "\"message\",\"object_id\":\"m-0\",\"address\":\"127.0.0.1\",\"status\":200}");
    ASSERT_CONTAINS(b.data, "\"next_cursor\":\"2\"}");
    buf_reset(&b);
    q.after = 4;
    ASSERT_EQ(store_audit_json(s, &q, &b), 0);
    ASSERT_CONTAINS(b.data, "\"seq\":5");
    ASSERT_CONTAINS(b.data, "\"next_cursor\":null}");
    buf_reset(&b);
    struct audit_query f = {.user = "ben", .object_kind = "message", .object_id = "m-1",
                            .since = FW_TIME_NONE, .limit = 10};
    ASSERT_EQ(store_audit_json(s, &f, &b), 0);
    ASSERT_CONTAINS(b.data, "\"seq\":4,");
    ASSERT(!strstr(b.data, "\"seq\":5,")); /* m-0 */
    buf_reset(&b);
    struct audit_query since = {.since = T0 + 3, .limit = 10};
    ASSERT_EQ(store_audit_json(s, &since, &b), 0);
    ASSERT(!strstr(b.data, "\"seq\":3,"));
    ASSERT_CONTAINS(b.data, "\"seq\":4,");
    buf_cleanup(&b);
    store_close(s);
    /* Nobody may rewrite the trail, not even with SQL of their own. */
    sqlite3 *raw;
    ASSERT_EQ(sqlite3_open(t.path, &raw), SQLITE_OK);
    ASSERT(sqlite3_exec(raw, "UPDATE audit SET user = 'x'", NULL, NULL, NULL) != SQLITE_OK);
    ASSERT(sqlite3_exec(raw, "DELETE FROM audit", NULL, NULL, NULL) != SQLITE_OK);
    sqlite3_stmt *st;
    ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT count(*) FROM audit WHERE user != 'x'", -1, &st, NULL),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(st, 0), 5);
    sqlite3_finalize(st);
    sqlite3_close(raw);
    tmp_cleanup(&t);
}

/* Requests per token: a burst, then one per 1/rate seconds; Retry-After in whole seconds. */
static void rate_limit_buckets(void)
{
    unsigned char a[AUTH_DIGEST_LEN], b[AUTH_DIGEST_LEN];
    auth_token_digest("fw_a", 4, a);
    auth_token_digest("fw_b", 4, b);
    ASSERT(http__ratelimit_new(0, 10) == NULL); /* rate 0: no limit */
    ASSERT_EQ(http__ratelimit_take(NULL, a, T0), 0);
    struct ratelimit *rl = http__ratelimit_new(2, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(http__ratelimit_take(rl, a, T0), 0);
    ASSERT_EQ(http__ratelimit_take(rl, a, T0), 1); /* half a second to the next: says 1 */
    ASSERT_EQ(http__ratelimit_take(rl, b, T0), 0); /* another token has its own */
    ASSERT_EQ(http__ratelimit_take(rl, a, T0 + 499), 1);
    ASSERT_EQ(http__ratelimit_take(rl, a, T0 + 500), 0); /* earned one */
    ASSERT_EQ(http__ratelimit_take(rl, a, T0 + 500), 1);
    /* Credit never grows past the burst, however long the token was idle. */
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(http__ratelimit_take(rl, a, T0 + 3600000), 0);
    ASSERT_EQ(http__ratelimit_take(rl, a, T0 + 3600000), 1);
    struct ratelimit *slow = http__ratelimit_new(1, 1);
    ASSERT_EQ(http__ratelimit_take(slow, a, T0), 0);
    ASSERT_EQ(http__ratelimit_take(slow, a, T0 + 100), 1);
    http__ratelimit_free(slow);
    http__ratelimit_free(rl);
    http__ratelimit_free(NULL);
}

const struct test auth_tests[] = {
    {"rate_limit_buckets", rate_limit_buckets},
    {"roles_parse_and_name", roles_parse_and_name},
    {"role_sets_and_names", role_sets_and_names},
    {"token_format_and_digest", token_format_and_digest},
    {"digest_compare_is_total", digest_compare_is_total},
    {"names_checked", names_checked},
    {"users_round_trip", users_round_trip},
    {"tokens_round_trip", tokens_round_trip},
    {"audit_append_only_and_pages", audit_append_only_and_pages},
    {NULL, NULL},
};
