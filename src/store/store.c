/*
 * store.c -- SQLite schema, migrations and statements.
 *
 * Durability: WAL mode with synchronous=FULL, so a COMMIT that returned has
 * reached the disk; the server acknowledges events only after it.  All
 * statements are prepared once per connection.
 */
#include "store/store.h"
#include "store/cases.h"
#include "store/store_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fwtime.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

#define STMT_MAP(X)                                                                                \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                    \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(EVENT_INSERT, "INSERT INTO events(id, type, subject, time, applied_at, body) "              \
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING")                                             \
    X(EVENT_SCAN, "SELECT body, applied_at, time FROM events ORDER BY seq")                        \
    X(EVENT_COUNT, "SELECT count(*) FROM events")                                                  \
    X(EVENT_ID_AT, "SELECT id FROM events WHERE seq = ?1")                                         \
    X(EVENT_SCAN_AFTER, "SELECT body, applied_at, time FROM events WHERE seq > ?1 ORDER BY seq")   \
    X(EVENT_COUNT_AFTER, "SELECT count(*), coalesce(max(seq), ?1) FROM events WHERE seq > ?1")    \
    X(EVENT_BODY, "SELECT body FROM events WHERE id = ?1")                                         \
    X(DET_FIRE, "INSERT INTO detections(signal, customer, severity, state, fired_at, "          \
                "name, team, root_cause) VALUES (?1, ?2, ?3, 'firing', ?4, ?5, ?6, ?7) "          \
                "ON CONFLICT(signal, customer, fired_at) DO NOTHING")           \
    X(DET_RESOLVE, "UPDATE detections SET state = 'resolved', resolved_at = ?4 "                   \
                   "WHERE signal = ?1 AND customer = ?2 AND fired_at = ?3")                        \
    X(DET_UNFIRE, "DELETE FROM detections WHERE signal = ?1 AND customer = ?2 AND fired_at = ?3")  \
    X(DET_UNRESOLVE, "UPDATE detections SET state = 'firing', resolved_at = NULL "                 \
                     "WHERE signal = ?1 AND customer = ?2 AND fired_at = ?3")                      \
    X(INC_UPSERT, "INSERT INTO incidents(id, signal, state, opened_at, updated_at, body) "         \
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET "                 \
                  "state = excluded.state, updated_at = excluded.updated_at, body = excluded.body")\
    X(META_SET, "INSERT INTO meta(key, value) VALUES (?1, ?2) "                                    \
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value")                           \
    X(META_GET, "SELECT value FROM meta WHERE key = ?1")                                           \
    X(DET_QUERY, "SELECT seq, signal, customer, severity, state, fired_at, resolved_at, name, "    \
                 "team, root_cause FROM detections WHERE seq > ?1 "                                \
                 "AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR signal = ?3) "                 \
                 "AND (?4 IS NULL OR customer = ?4) AND (?5 IS NULL OR severity = ?5) "            \
                 "AND (?6 IS NULL OR fired_at >= ?6) AND (?7 IS NULL OR fired_at < ?7) "           \
                 "ORDER BY seq LIMIT ?8")                                                          \
    X(INC_MEMBER, "INSERT INTO incident_members(incident, customer) VALUES (?1, ?2) "              \
                  "ON CONFLICT DO NOTHING")                                                        \
    X(INC_QUERY, "SELECT id, json_set(body, '$.customers', json((SELECT json_group_array(customer) " \
                 "FROM (SELECT customer FROM incident_members m WHERE m.incident = incidents.id "   \
                 "ORDER BY m.rowid))), '$.customer_count', (SELECT count(*) FROM incident_members " \
                 "m WHERE m.incident = incidents.id)) FROM incidents WHERE id > ?1 "              \
                 "AND (?2 IS NULL OR state = ?2) ORDER BY id LIMIT ?3")                            \
    X(TIMELINE, "SELECT body, applied_at FROM events WHERE subject = ?1 "                          \
                "ORDER BY time DESC, seq DESC LIMIT ?2")

enum stmt_id {
#define STORE__ENUM(name, sql) ST_##name,
    STMT_MAP(STORE__ENUM)
#undef STORE__ENUM
        ST__COUNT
};

static const char *const stmt_sql[] = {
#define STORE__SQL(name, sql) sql,
    STMT_MAP(STORE__SQL)
#undef STORE__SQL
};


/* Schema versions, applied in order; user_version records how many ran. */
static const char *const migrations[] = {
    /* 1: the journal, detections, incidents, metadata */
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL,"
    "  subject TEXT,"
    "  time INTEGER NOT NULL,"
    "  applied_at INTEGER NOT NULL,"
    "  body TEXT NOT NULL);"
    "CREATE INDEX events_subject ON events(subject, time);"
    "CREATE TABLE detections ("
    "  seq INTEGER PRIMARY KEY,"
    "  signal TEXT NOT NULL,"
    "  customer TEXT NOT NULL,"
    "  severity TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),"
    "  fired_at INTEGER NOT NULL,"
    "  resolved_at INTEGER,"
    "  name TEXT, team TEXT, root_cause TEXT,"
    "  UNIQUE (signal, customer, fired_at));"
    "CREATE INDEX detections_customer ON detections(customer, seq);"
    "CREATE INDEX detections_signal ON detections(signal, seq);"
    "CREATE TABLE incidents ("
    "  id INTEGER PRIMARY KEY,"
    "  signal TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  opened_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  body TEXT NOT NULL);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    /* 2: communications: the outbox, tasks, chatbot contexts */
    "CREATE TABLE messages ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  key TEXT NOT NULL UNIQUE,"
    "  customer TEXT,"
    "  audience TEXT NOT NULL,"
    "  channel TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  reason TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  send_at INTEGER NOT NULL,"
    "  next_attempt_at INTEGER NOT NULL DEFAULT 0,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  recipient TEXT,"
    "  subject TEXT, body TEXT, html TEXT,"
    "  signals TEXT NOT NULL DEFAULT '[]',"
    "  explain TEXT NOT NULL DEFAULT '{}',"
    "  meta TEXT NOT NULL DEFAULT '{}',"
    "  sent_at INTEGER, read_at INTEGER,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX messages_due ON messages(status, send_at);"
    "CREATE INDEX messages_customer ON messages(customer, seq);"
    "CREATE TABLE tasks ("
    "  seq INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"
    "  customer TEXT,"
    "  kind TEXT NOT NULL,"
    "  due_at INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  detail TEXT NOT NULL DEFAULT '{}',"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX tasks_customer ON tasks(customer, seq);"
    "CREATE TABLE contexts (customer TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at INTEGER NOT NULL);",
    /*
     * 3: an incident's customers as rows, one written per customer who
     * joins, instead of the whole list rewritten in its body each time
     * (quadratic in the incident's size).  Readers put the list back.
     */
    "CREATE TABLE incident_members ("
    "  incident INTEGER NOT NULL,"
    "  customer TEXT NOT NULL,"
    "  UNIQUE (incident, customer));"
    "INSERT OR IGNORE INTO incident_members(incident, customer) "
    "  SELECT i.id, j.value FROM incidents i, json_each(i.body, '$.customers') j "
    "  ORDER BY i.id, j.key;"
    "UPDATE incidents SET body = json_set(body, '$.customers', json('[]'), '$.customer_count', 0);",
    /* 4: people, their tokens and the audit trail (store/auth.c) */
    store__auth_schema,
    /* 5: cases and their history (store/cases.c) */
    store__cases_schema,
    /*
     * 6: follow-up tasks after outreach (docs/cases.md) share the tasks
     * table with ladder steps, with the person they are for and their case.
     */
    "ALTER TABLE tasks ADD COLUMN assignee TEXT;"
    "ALTER TABLE tasks ADD COLUMN case_id TEXT;"
    "CREATE INDEX tasks_due ON tasks(due_at, seq);"
    "CREATE INDEX tasks_case ON tasks(case_id);",
    /*
     * 7: retries that span hours need when a message first failed (its
     * retry_for counts from there), and dead letters are re-driven only
     * when they died of a connector being down ('expired'), not when the
     * receiver refused them ('refused').
     */
    "ALTER TABLE messages ADD COLUMN first_failed_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN gave_up TEXT;"
    "UPDATE messages SET gave_up = 'expired' WHERE status = 'dead';",
};

const char *store_errmsg(struct store *s)
{
    return sqlite3_errmsg(s->db);
}

/* The file's schema version; a newer one than we know is refused before anything touches it. */
static int schema_version(struct store *s, int *version, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    *version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (*version > (int)ARRAY_SIZE(migrations)) {
        snprintf(err, errlen, "database schema version %d is newer than this forewarn (%zu)",
                 *version, ARRAY_SIZE(migrations));
        return FW_EDB;
    }
    return 0;
}

static int migrate(struct store *s, int version, char *err, size_t errlen)
{
    for (int v = version; v < (int)ARRAY_SIZE(migrations); v++) {
        char *msg = NULL, pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(s->db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(s->db, pragma, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(s->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "migration %d failed: %s", v + 1, msg ? msg : "?");
            sqlite3_free(msg);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return FW_EDB;
        }
    }
    return 0;
}

static int commit_hook(void *ctx);

int store_open(const char *path, int readonly, struct store **out, char *err, size_t errlen)
{
    struct store *s = xcalloc(1, sizeof *s);
    s->st = xcalloc(ST__COUNT, sizeof *s->st);
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    s->readonly = readonly;
    store__fault_install();
    if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "?");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_commit_hook(s->db, commit_hook, s);
    int version;
    if (schema_version(s, &version, err, errlen))
        goto fail;
    if (!readonly) {
        char *msg = NULL;
        if (sqlite3_exec(s->db,
                         "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                         "PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536;",
                         NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "cannot configure %s: %s", path, msg ? msg : "?");
            sqlite3_free(msg);
            goto fail;
        }
        if (migrate(s, version, err, errlen))
            goto fail;
    }
    for (int i = 0; i < ST__COUNT; i++) {
        if (readonly && (i == ST_EVENT_INSERT || i == ST_DET_FIRE || i == ST_DET_RESOLVE ||
                         i == ST_INC_UPSERT || i == ST_META_SET))
            continue;
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "cannot prepare statement %d: %s", i, sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return FW_EDB;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->st[i]);
    for (int i = 0; i < STORE__EXT_SLOTS; i++)
        sqlite3_finalize(s->ext[i]);
    for (struct store__named *n = s->named, *next; n; n = next) {
        next = n->next;
        sqlite3_finalize(n->st);
        free(n);
    }
    free(s->st);
    sqlite3_close(s->db);
    free(s);
}

/* Run a statement that returns no rows, then reset it. */
static int run(struct store *s, enum stmt_id id)
{
    int rc = sqlite3_step(s->st[id]);
    sqlite3_reset(s->st[id]);
    sqlite3_clear_bindings(s->st[id]);
    if (rc != SQLITE_DONE) {
        log_error("store: %s: %s", stmt_sql[id], sqlite3_errmsg(s->db));
        return FW_EDB;
    }
    return 0;
}

/*
 * An I/O error (or a full disk) inside a transaction can make SQLite roll
 * the whole transaction back on its own.  The connection is then in
 * autocommit mode, and the caller, which has not seen the error yet or
 * carries on to the end of its group, would have each later statement
 * committed on its own: half a group durable, and answered 503.  So while
 * store_begin's transaction is meant to be open, any commit other than
 * store_commit's is turned into a rollback by this hook (the statement
 * fails with SQLITE_CONSTRAINT_COMMITHOOK), and nothing is written until
 * the caller rolls back and begins again.
 */
static int commit_hook(void *ctx)
{
    const struct store *s = ctx;
    return s->in_txn && !s->committing;
}

int store_begin(struct store *s)
{
    int rc = run(s, ST_BEGIN);
    s->in_txn = rc == 0;
    return rc;
}

int store_commit(struct store *s)
{
    s->committing = 1;
    int rc = run(s, ST_COMMIT);
    s->committing = 0;
    if (rc == 0 || sqlite3_get_autocommit(s->db))
        s->in_txn = 0; /* committed, or rolled back by SQLite: over either way */
    return rc;
}

void store_rollback(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        run(s, ST_ROLLBACK);
    s->in_txn = 0;
}

void store__bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

#define bind_text store__bind_text

sqlite3_stmt *store__stmt(struct store *s, int slot, const char *sql)
{
    if (slot < 0 || slot >= STORE__EXT_SLOTS)
        return NULL;
    if (!s->ext[slot] &&
        sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->ext[slot], NULL) !=
            SQLITE_OK) {
        log_error("store: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(s->db));
        s->ext[slot] = NULL;
    }
    return s->ext[slot];
}

sqlite3_stmt *store__named(struct store *s, const char *sql)
{
    for (struct store__named *n = s->named; n; n = n->next)
        if (n->sql == sql)
            return n->st;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        log_error("store: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(s->db));
        return NULL;
    }
    struct store__named *n = xmalloc(sizeof *n);
    n->sql = sql;
    n->st = st;
    n->next = s->named;
    s->named = n;
    return st;
}

void store__text_row(sqlite3_stmt *st, struct buf *out, int first, void *ctx)
{
    (void)ctx;
    if (!first)
        buf_putc(out, ',');
    buf_puts(out, (const char *)sqlite3_column_text(st, 1));
}

int store__page(sqlite3_stmt *st, int limit, int seq_col, const char *name, int quoted_cursor,
                void (*row)(sqlite3_stmt *st, struct buf *out, int first, void *ctx), void *ctx,
                struct buf *out)
{
    buf_printf(out, "{\"%s\":[", name);
    int n = 0, step, more = 0;
    int64_t last = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) {
            more = 1;
            break;
        }
        last = sqlite3_column_int64(st, seq_col);
        row(st, out, n++ == 0, ctx);
    }
    int rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : FW_EDB;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (more)
        buf_printf(out, quoted_cursor ? "],\"next_cursor\":\"%lld\"}" : "],\"next_cursor\":%lld}",
                   (long long)last);
    else
        buf_puts(out, "],\"next_cursor\":null}");
    return rc;
}

int store__run(struct store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        log_error("store: %s: %s", sqlite3_sql(st), sqlite3_errmsg(s->db));
        return FW_EDB;
    }
    return 0;
}

int store_event_append(struct store *s, const struct event *ev, const char *text,
                       int64_t applied_at, int *duplicate)
{
    sqlite3_stmt *st = s->st[ST_EVENT_INSERT];
    char *body = text ? NULL : fw_json_dumps(ev->json);
    bind_text(st, 1, ev->id);
    bind_text(st, 2, ev->type);
    bind_text(st, 3, ev->subject);
    sqlite3_bind_int64(st, 4, ev->time);
    sqlite3_bind_int64(st, 5, applied_at);
    bind_text(st, 6, text ? text : body);
    int rc = run(s, ST_EVENT_INSERT);
    free(body);
    if (!rc)
        *duplicate = sqlite3_changes(s->db) == 0;
    return rc;
}

/* Rebuild a struct event from a stored body (validated when it was accepted). */
static int event_from_body(const char *body, int64_t time, struct event *ev)
{
    json_t *j = fw_json_loadb(body, strlen(body), 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return FW_EPARSE;
    }
    memset(ev, 0, sizeof *ev);
    ev->json = j;
    ev->id = json_string_value(json_object_get(j, "id"));
    ev->type = json_string_value(json_object_get(j, "type"));
    ev->subject = json_string_value(json_object_get(j, "subject"));
    ev->source = json_string_value(json_object_get(j, "source"));
    ev->time = time;
    ev->data = json_object_get(j, "data");
    if (!json_is_object(ev->data)) {
        json_object_set_new(j, "data", json_object());
        ev->data = json_object_get(j, "data");
    }
    if (!ev->id || !ev->type) {
        json_decref(j);
        return FW_EPARSE;
    }
    return 0;
}

int store_events_scan(struct store *s, store_event_fn fn, void *ctx)
{
    return store_events_scan_after(s, -1, fn, ctx);
}

int store_events_scan_after(struct store *s, int64_t after, store_event_fn fn, void *ctx)
{
    sqlite3_stmt *st = s->st[after < 0 ? ST_EVENT_SCAN : ST_EVENT_SCAN_AFTER];
    if (after >= 0)
        sqlite3_bind_int64(st, 1, after);
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct event ev;
        const char *body = (const char *)sqlite3_column_text(st, 0);
        if (event_from_body(body ? body : "", sqlite3_column_int64(st, 2), &ev)) {
            log_error("store: journal row with an unreadable body; skipped");
            continue;
        }
        rc = fn(ctx, &ev, sqlite3_column_int64(st, 1));
        json_decref(ev.json);
        if (rc)
            break;
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = FW_EDB;
    sqlite3_reset(st);
    return rc;
}

int store_event_same(struct store *s, const struct event *ev, int *same)
{
    sqlite3_stmt *st = s->st[ST_EVENT_BODY];
    bind_text(st, 1, ev->id);
    int step = sqlite3_step(st), rc = 0;
    if (step == SQLITE_ROW) {
        const char *body = (const char *)sqlite3_column_text(st, 0);
        json_t *j = body ? fw_json_loadb(body, strlen(body), 0, NULL) : NULL;
        *same = j && json_equal(j, ev->json);
        json_decref(j);
    } else if (step == SQLITE_DONE) {
        rc = FW_ENOTFOUND;
    } else {
        log_error("store: %s: %s", sqlite3_sql(st), sqlite3_errmsg(s->db));
        rc = FW_EDB;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

size_t store_event_count_after(struct store *s, int64_t after, int64_t *last)
{
    sqlite3_stmt *st = s->st[ST_EVENT_COUNT_AFTER];
    size_t n = 0;
    *last = after;
    sqlite3_bind_int64(st, 1, after);
    if (sqlite3_step(st) == SQLITE_ROW) {
        n = (size_t)sqlite3_column_int64(st, 0);
        *last = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return n;
}

int store_event_id_at(struct store *s, int64_t seq, struct buf *out)
{
    sqlite3_stmt *st = s->st[ST_EVENT_ID_AT];
    sqlite3_bind_int64(st, 1, seq);
    int step = sqlite3_step(st), rc = FW_ENOTFOUND;
    if (step == SQLITE_ROW) {
        buf_puts(out, (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    } else if (step != SQLITE_DONE) {
        rc = FW_EDB;
    }
    sqlite3_reset(st);
    return rc;
}

size_t store_event_count(struct store *s)
{
    sqlite3_stmt *st = s->st[ST_EVENT_COUNT];
    size_t n = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return n;
}

int store_detection(struct store *s, const struct detection *d)
{
    const struct rule_signal *sig = d->signal;
    if (d->firing) {
        sqlite3_stmt *st = s->st[ST_DET_FIRE];
        bind_text(st, 1, sig->id);
        bind_text(st, 2, d->customer);
        bind_text(st, 3, severity_name(sig->severity));
        sqlite3_bind_int64(st, 4, d->fired_at);
        bind_text(st, 5, sig->name);
        bind_text(st, 6, sig->team);
        bind_text(st, 7, sig->root_cause);
        return run(s, ST_DET_FIRE);
    }
    sqlite3_stmt *st = s->st[ST_DET_RESOLVE];
    bind_text(st, 1, sig->id);
    bind_text(st, 2, d->customer);
    sqlite3_bind_int64(st, 3, d->fired_at);
    sqlite3_bind_int64(st, 4, d->at);
    return run(s, ST_DET_RESOLVE);
}

int store_detection_retract(struct store *s, const struct detection *d)
{
    enum stmt_id id = d->firing ? ST_DET_UNFIRE : ST_DET_UNRESOLVE;
    sqlite3_stmt *st = s->st[id];
    bind_text(st, 1, d->signal->id);
    bind_text(st, 2, d->customer);
    sqlite3_bind_int64(st, 3, d->fired_at);
    return run(s, id);
}

int store_incident(struct store *s, const struct incident *i)
{
    /* The customers: only the newcomer, or every one when the update names none. */
    sqlite3_stmt *mst = s->st[ST_INC_MEMBER];
    for (size_t k = 0; k < (i->added ? 1 : i->ncustomers); k++) {
        sqlite3_bind_int64(mst, 1, (sqlite3_int64)i->id);
        bind_text(mst, 2, i->added ? i->added : i->customers[k]);
        int rc = run(s, ST_INC_MEMBER);
        if (rc)
            return rc;
    }
    /* The rest, with the list left empty: store_incidents_json fills it from the rows. */
    struct incident head = *i;
    head.customers = NULL;
    head.ncustomers = 0;
    head.added = NULL;
    sqlite3_stmt *st = s->st[ST_INC_UPSERT];
    struct buf b;
    buf_init(&b, 0);
    incident_json(&head, 1, &b);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)i->id);
    bind_text(st, 2, i->signal->id);
    bind_text(st, 3, strcmp(i->update, "resolved") ? "open" : "resolved");
    sqlite3_bind_int64(st, 4, i->opened_at);
    sqlite3_bind_int64(st, 5, i->at);
    bind_text(st, 6, b.data);
    int rc = run(s, ST_INC_UPSERT);
    buf_cleanup(&b);
    return rc;
}

int store_meta_set(struct store *s, const char *key, const char *value)
{
    bind_text(s->st[ST_META_SET], 1, key);
    bind_text(s->st[ST_META_SET], 2, value);
    return run(s, ST_META_SET);
}

int store_meta_get(struct store *s, const char *key, struct buf *out)
{
    sqlite3_stmt *st = s->st[ST_META_GET];
    bind_text(st, 1, key);
    int rc = FW_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        buf_puts(out, (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static void json_col_str(struct buf *out, sqlite3_stmt *st, int col)
{
    const char *v = (const char *)sqlite3_column_text(st, col);
    if (v)
        buf_json_str(out, v, strlen(v));
    else
        buf_puts(out, "null");
}

static void json_col_time(struct buf *out, sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        buf_puts(out, "null");
    else
        buf_json_time(out, sqlite3_column_int64(st, col));
}

int store_detections_json(struct store *s, const struct detection_query *q, struct buf *out)
{
    sqlite3_stmt *st = s->st[ST_DET_QUERY];
    sqlite3_bind_int64(st, 1, q->after);
    bind_text(st, 2, q->state);
    bind_text(st, 3, q->signal);
    bind_text(st, 4, q->customer);
    bind_text(st, 5, q->severity);
    if (q->from != FW_TIME_NONE)
        sqlite3_bind_int64(st, 6, q->from);
    if (q->to != FW_TIME_NONE)
        sqlite3_bind_int64(st, 7, q->to);
    sqlite3_bind_int(st, 8, q->limit + 1); /* one extra row tells whether there is a next page */
    buf_puts(out, "{\"detections\":[");
    int n = 0, step;
    int64_t last = 0, more = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == q->limit) {
            more = 1;
            break;
        }
        last = sqlite3_column_int64(st, 0);
        buf_printf(out, "%s{\"seq\":%lld,\"signal\":", n ? "," : "", (long long)last);
        json_col_str(out, st, 1);
        buf_puts(out, ",\"customer\":");
        json_col_str(out, st, 2);
        buf_puts(out, ",\"severity\":");
        json_col_str(out, st, 3);
        buf_puts(out, ",\"state\":");
        json_col_str(out, st, 4);
        buf_puts(out, ",\"fired_at\":");
        json_col_time(out, st, 5);
        buf_puts(out, ",\"resolved_at\":");
        json_col_time(out, st, 6);
        buf_puts(out, ",\"name\":");
        json_col_str(out, st, 7);
        buf_puts(out, ",\"team\":");
        json_col_str(out, st, 8);
        buf_puts(out, ",\"root_cause\":");
        json_col_str(out, st, 9);
        buf_putc(out, '}');
        n++;
    }
    int rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : FW_EDB;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (more)
        buf_printf(out, "],\"next_cursor\":\"%lld\"}", (long long)last);
    else
        buf_puts(out, "],\"next_cursor\":null}");
    return rc;
}

int store_incidents_json(struct store *s, const char *state, int64_t after, int limit,
                         struct buf *out)
{
    sqlite3_stmt *st = s->st[ST_INC_QUERY];
    sqlite3_bind_int64(st, 1, after);
    bind_text(st, 2, state);
    sqlite3_bind_int(st, 3, limit + 1);
    return store__page(st, limit, 0, "incidents", 1, store__text_row, NULL, out);
}

int store_timeline_json(struct store *s, const char *customer, int limit, struct buf *out)
{
    sqlite3_stmt *st = s->st[ST_TIMELINE];
    bind_text(st, 1, customer);
    sqlite3_bind_int(st, 2, limit);
    buf_putc(out, '[');
    int n = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++)
            buf_putc(out, ',');
        buf_puts(out, (const char *)sqlite3_column_text(st, 0));
    }
    buf_putc(out, ']');
    int rc = step == SQLITE_DONE ? 0 : FW_EDB;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}
