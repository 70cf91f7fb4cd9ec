/*
 * users_cli.c -- `forewarn user ...` and `forewarn token ...`: people,
 * roles and API tokens, written straight into the database serve uses.
 *
 * The store is opened as serve opens it (--db FILE, else the config
 * file's `database`, else the default), read-write; SQLite's busy timeout
 * lets this run beside a live server.  A token's secret is printed once,
 * on stdout alone (so `TOKEN=$(forewarn token create ...)` works), and is
 * never stored or printed again: the store keeps its SHA-256 only.  A
 * running server sees every change on its next request (http/auth.c).
 */
#include "serve/users_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/auth.h"
#include "serve/config.h"
#include "store/auth.h"
#include "store/store.h"
#include "util/fwtime.h"
#include "util/util.h"

struct cli {
    const char *db;       /* --db */
    const char *config;   /* --config */
    const char *role;     /* --role */
    const char *user;     /* --user */
    const char *expires;  /* --expires */
    const char *args[4];  /* positional arguments after the verb */
    size_t nargs;
};

/* Parse the options shared by every verb; 2 (usage) on anything unknown. */
static int parse(int argc, char **argv, int first, struct cli *c, const char *cmd)
{
    memset(c, 0, sizeof *c);
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = !strcmp(a, "--db")        ? &c->db
                            : !strcmp(a, "--config")  ? &c->config
                            : !strcmp(a, "--role")    ? &c->role
                            : !strcmp(a, "--user")    ? &c->user
                            : !strcmp(a, "--expires") ? &c->expires
                                                      : NULL;
        if (slot && v) {
            *slot = v;
            i++;
        } else if (a[0] != '-' && c->nargs < ARRAY_SIZE(c->args)) {
            c->args[c->nargs++] = a;
        } else {
            fprintf(stderr, "%s: unknown or incomplete argument '%s'\n", cmd, a);
            return 2;
        }
    }
    return 0;
}

/* Open the database serve would use. Prints the reason on failure. */
static int open_store(const struct cli *c, struct store **out)
{
    struct config cfg;
    struct buf diag;
    config_init(&cfg);
    buf_init(&diag, 0);
    int rc = c->config ? config_load_file(&cfg, c->config, &diag) : 0;
    if (rc) {
        fputs(diag.data ? diag.data : "", stderr);
    } else {
        char err[512];
        if ((rc = store_open(c->db ? c->db : cfg.database, 0, out, err, sizeof err)))
            fprintf(stderr, "%s\n", err);
    }
    buf_cleanup(&diag);
    config_cleanup(&cfg);
    return rc;
}

/* --expires: a duration from now ("90d") or an RFC 3339 time; none: never. */
static int parse_expires(const char *s, int64_t now, int64_t *out)
{
    int64_t d;
    *out = FW_TIME_NONE;
    if (!s || !strcmp(s, "never"))
        return 0;
    if (!fw_duration_parse(s, strlen(s), &d) && d > 0) {
        *out = now + d;
        return 0;
    }
    if (!fw_time_parse(s, strlen(s), out))
        return 0;
    fprintf(stderr, "token: --expires %s: expected a duration (90d, 12h) or an RFC 3339 time\n", s);
    return FW_EINVAL;
}

/* Create a token for user inside the caller's transaction and print it. */
static int issue(struct store *db, const char *user, int64_t now, int64_t expires)
{
    char token[AUTH_TOKEN_LEN + 1];
    unsigned char digest[AUTH_DIGEST_LEN];
    int64_t id = 0;
    int rc = auth_token_new(token, digest);
    if (rc) {
        fprintf(stderr, "token: no randomness available; no token created\n");
        return rc;
    }
    rc = store_token_add(db, user, digest, now, expires, &id);
    if (rc == FW_ENOTFOUND)
        fprintf(stderr, "token: no user '%s' (forewarn user add %s --role ROLE)\n", user, user);
    else if (rc)
        fprintf(stderr, "token: could not store the token: %s\n", store_errmsg(db));
    if (!rc) {
        char when[FW_TIME_MAXLEN] = "never";
        if (expires != FW_TIME_NONE)
            fw_time_format(expires, when);
        printf("%s\n", token);
        fprintf(stderr, "token %lld for %s (expires: %s); it is shown only this once\n",
                (long long)id, user, when);
        if (expires != FW_TIME_NONE && expires <= now)
            fprintf(stderr, "warning: that expiry is in the past; the token is already expired\n");
    }
    memset(token, 0, sizeof token);
    return rc;
}

static int user_print(void *ctx, const struct store_user *u)
{
    char created[FW_TIME_MAXLEN];
    (void)ctx;
    fw_time_format(u->created_at, created);
    printf("%-24s %-8s %s\n", u->name, u->role, created);
    return 0;
}

static const char user_usage[] =
    "usage: forewarn user add NAME --role ROLE [--expires DUR|TIME] [--db FILE] [--config FILE]\n"
    "       forewarn user list [--db FILE] [--config FILE]\n"
    "       forewarn user set-role NAME --role ROLE [--db FILE] [--config FILE]\n"
    "       forewarn user remove NAME [--db FILE] [--config FILE]\n"
    "ROLE is viewer, agent, lead, admin or service.\n";

int users_cli_user(int argc, char **argv)
{
    struct cli c;
    if (argc < 2 || parse(argc, argv, 2, &c, "user")) {
        fputs(user_usage, stderr);
        return 2;
    }
    const char *verb = argv[1];
    enum role role;
    int needs_name = strcmp(verb, "list") != 0;
    int needs_role = !strcmp(verb, "add") || !strcmp(verb, "set-role");
    if ((strcmp(verb, "add") && strcmp(verb, "list") && strcmp(verb, "set-role") &&
         strcmp(verb, "remove")) ||
        c.nargs != (size_t)needs_name || (needs_role && !c.role)) {
        fputs(user_usage, stderr);
        return 2;
    }
    if (needs_role && role_parse(c.role, &role)) {
        fprintf(stderr, "user: unknown role '%s' (viewer, agent, lead, admin or service)\n", c.role);
        return 2;
    }
    const char *name = c.args[0];
    if (needs_name && !auth_name_valid(name)) {
        fprintf(stderr, "user: '%s' is not a valid name (1-63 of A-Z a-z 0-9 . _ @ -)\n", name);
        return 2;
    }
    int64_t now = fw_wall_now(), expires = FW_TIME_NONE;
    if (parse_expires(c.expires, now, &expires))
        return 2;
    struct store *db = NULL;
    if (open_store(&c, &db))
        return 1;
    int rc = 0;
    if (!strcmp(verb, "list")) {
        rc = store_users_each(db, user_print, NULL);
    } else if ((rc = store_begin(db)) == 0) {
        if (!strcmp(verb, "add")) {
            rc = store_user_add(db, name, c.role, now);
            if (rc == FW_EEXISTS)
                fprintf(stderr, "user: '%s' already exists\n", name);
            if (!rc)
                rc = issue(db, name, now, expires);
        } else if (!strcmp(verb, "set-role")) {
            rc = store_user_set_role(db, name, c.role);
        } else {
            rc = store_user_remove(db, name, now);
        }
        if (rc == FW_ENOTFOUND)
            fprintf(stderr, "user: no user '%s'\n", name);
        rc = rc ? rc : store_commit(db);
        if (rc)
            store_rollback(db);
        else if (!strcmp(verb, "add"))
            fprintf(stderr, "user %s added as %s\n", name, c.role);
        else if (!strcmp(verb, "set-role"))
            fprintf(stderr, "user %s is now %s\n", name, c.role);
        else
            fprintf(stderr, "user %s removed; their tokens are revoked\n", name);
    }
    if (rc == FW_EDB)
        fprintf(stderr, "user: database error: %s\n", store_errmsg(db));
    store_close(db);
    return rc ? 1 : 0;
}

static void print_time(int64_t t, const char *none)
{
    char s[FW_TIME_MAXLEN];
    if (t == FW_TIME_NONE) {
        printf(" %-24s", none);
        return;
    }
    fw_time_format(t, s);
    printf(" %-24s", s);
}

static int token_print(void *ctx, const struct store_token *t)
{
    int64_t now = *(const int64_t *)ctx;
    printf("%-5lld %-24s %-8s", (long long)t->id, t->user, *t->role ? t->role : "-");
    print_time(t->created_at, "-");
    print_time(t->expires_at, "never");
    print_time(t->last_used_at, "never");
    print_time(t->revoked_at, "-");
    printf(" %s\n", t->revoked_at != FW_TIME_NONE                           ? "revoked"
                    : !*t->role                                            ? "user removed"
                    : t->expires_at != FW_TIME_NONE && t->expires_at <= now ? "expired"
                                                                            : "active");
    return 0;
}

static const char token_usage[] =
    "usage: forewarn token create --user NAME [--expires DUR|TIME] [--db FILE] [--config FILE]\n"
    "       forewarn token list [--db FILE] [--config FILE]\n"
    "       forewarn token revoke ID [--db FILE] [--config FILE]\n";

int users_cli_token(int argc, char **argv)
{
    struct cli c;
    if (argc < 2 || parse(argc, argv, 2, &c, "token")) {
        fputs(token_usage, stderr);
        return 2;
    }
    const char *verb = argv[1];
    int64_t now = fw_wall_now(), expires, id = 0;
    if (!strcmp(verb, "create")) {
        if (!c.user || c.nargs) {
            fputs(token_usage, stderr);
            return 2;
        }
        if (parse_expires(c.expires, now, &expires))
            return 2;
    } else if (!strcmp(verb, "revoke")) {
        char *end = NULL;
        id = c.nargs == 1 ? strtoll(c.args[0], &end, 10) : 0;
        if (c.nargs != 1 || *end || id <= 0) {
            fputs(token_usage, stderr);
            return 2;
        }
    } else if (strcmp(verb, "list") || c.nargs) {
        fputs(token_usage, stderr);
        return 2;
    }
    struct store *db = NULL;
    if (open_store(&c, &db))
        return 1;
    int rc;
    if (!strcmp(verb, "list")) {
        printf("%-5s %-24s %-8s %-24s %-24s %-24s %-24s %s\n", "ID", "USER", "ROLE", "CREATED",
               "EXPIRES", "LAST USED", "REVOKED", "STATE");
        rc = store_tokens_each(db, token_print, &now);
    } else if ((rc = store_begin(db)) == 0) {
        rc = !strcmp(verb, "create") ? issue(db, c.user, now, expires)
                                     : store_token_revoke(db, id, now);
        if (rc == FW_ENOTFOUND && id)
            fprintf(stderr, "token: no token %lld\n", (long long)id);
        else if (rc == FW_ESTATE)
            fprintf(stderr, "token: token %lld was already revoked\n", (long long)id);
        rc = rc ? rc : store_commit(db);
        if (rc)
            store_rollback(db);
        else if (id)
            fprintf(stderr, "token %lld revoked\n", (long long)id);
    }
    if (rc == FW_EDB)
        fprintf(stderr, "token: database error: %s\n", store_errmsg(db));
    store_close(db);
    return rc ? 1 : 0;
}
