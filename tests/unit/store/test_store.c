/*
 * test_store.c -- the SQLite store on a temporary file: schema and
 * migrations, the journal (append, duplicates, scan order, applied_at),
 * idempotent detection and incident writes, metadata, the query pages the
 * HTTP API serves, and what a read-only connection sees.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

#define T0 1767434400000LL /* 2026-01-03T10:00:00Z */
#define M FW_MINUTE
#define H FW_HOUR

/* ---- fixture: a fresh database file in its own temporary directory ---- */

struct tmpdb {
    char dir[64];
    char path[96];
};

static int tmpdb_init(struct tmpdb *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/fw-store-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->path, sizeof t->path, "%s/forewarn.db", t->dir);
    return 0;
}

static void tmpdb_cleanup(struct tmpdb *t)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[128];
    for (size_t i = 0; i < ARRAY_SIZE(suffix); i++) {
        snprintf(p, sizeof p, "%s%s", t->path, suffix[i]);
        unlink(p);
    }
    rmdir(t->dir);
}

static struct store *open_rw(const struct tmpdb *t)
{
    struct store *s = NULL;
    char err[256] = "";
    if (store_open(t->path, 0, &s, err, sizeof err)) {
        fprintf(stderr, "    store_open: %s\n", err);
        return NULL;
    }
    return s;
}

/* PRAGMA user_version of a database file, read behind the store's back. */
static int user_version(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

/* The first column of the first row of a query, or -1. */
static long long query_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static int exec_sql(const char *path, const char *sql)
{
    sqlite3 *db;
    int rc = sqlite3_open(path, &db) == SQLITE_OK ? sqlite3_exec(db, sql, NULL, NULL, NULL) : -1;
    sqlite3_close(db);
    return rc;
}

static int every_type_global(void *ctx, const char *type)
{
    (void)ctx;
    (void)type;
    return 1;
}

/* A validated event (caller cleans up; zeroed when invalid); subject NULL makes a global one. */
static struct event mkevent(const char *id, const char *type, const char *subject, int64_t t,
                            const char *data)
{
    static const struct ingest_globals globals = {.ctx = NULL, .is_global = every_type_global};
    char ts[FW_TIME_MAXLEN];
    fw_time_format(t, ts);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o*}", "specversion", "1.0", "id", id, "type",
                          type, "time", ts, "data", json_loads(data ? data : "{}", 0, NULL));
    if (subject)
        json_object_set_new(j, "subject", json_string(subject));
    struct event ev;
    ingest_validate(j, NULL, subject ? NULL : &globals, &ev, NULL);
    json_decref(j);
    return ev;
}

static int append(struct store *s, const char *id, const char *type, const char *subject,
                  int64_t t, int64_t applied_at, const char *data)
{
    struct event ev = mkevent(id, type, subject, t, data);
    int dup = -1;
    int rc = ev.json ? store_event_append(s, &ev, NULL, applied_at, &dup) : FW_EINVAL;
    event_cleanup(&ev);
    return rc ? rc : dup;
}

static const struct rule_signal sig_a = {
    .id = "SIG-A", .name = "Signal A", .severity = SEV_HIGH, .team = "esim", .root_cause = "prov"};
static const struct rule_signal sig_b = {.id = "SIG-B", .name = "Signal B", .severity = SEV_LOW};

static int detect(struct store *s, const struct rule_signal *sig, const char *customer, int firing,
                  int64_t at, int64_t fired_at)
{
    struct detection d = {
        .signal = sig, .customer = customer, .firing = firing, .at = at, .fired_at = fired_at};
    return store_detection(s, &d);
}

/* The detections page for q as text, into b (reset first). */
static const char *detections(struct store *s, const struct detection_query *q, struct buf *b)
{
    buf_reset(b);
    if (store_detections_json(s, q, b))
        return "(error)";
    return b->data;
}

static struct detection_query all(void)
{
    struct detection_query q = {.from = FW_TIME_NONE, .to = FW_TIME_NONE, .limit = 100};
    return q;
}

/* Comma-separated "customer/signal/state" of a detections page, into out. */
static const char *summary(const char *page, char *out, size_t len)
{
    json_t *j = json_loads(page, 0, NULL);
    size_t i, used = 0;
    json_t *row;
    out[0] = '\0';
    json_array_foreach(json_object_get(j, "detections"), i, row)
    {
        used += (size_t)snprintf(out + used, len - used, "%s%s/%s/%s", i ? "," : "",
                                 json_string_value(json_object_get(row, "customer")),
                                 json_string_value(json_object_get(row, "signal")),
                                 json_string_value(json_object_get(row, "state")));
    }
    json_decref(j);
    return out;
}

static const char *next_cursor(const char *page, char *out, size_t len)
{
    json_t *j = json_loads(page, 0, NULL);
    json_t *c = json_object_get(j, "next_cursor");
    snprintf(out, len, "%s", json_is_string(c) ? json_string_value(c) : "null");
    json_decref(j);
    return out;
}

/* ---- schema ---- */

static void open_creates_and_migrates(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    int v = user_version(t.path);
    ASSERT(v >= 1);
    /* The journal, detections, incidents and metadata of schema version 1. */
    ASSERT_EQ(exec_sql(t.path, "SELECT seq, id, type, subject, time, applied_at, body FROM events;"
                               "SELECT seq, signal, customer, severity, state, fired_at, "
                               "resolved_at, name, team, root_cause FROM detections;"
                               "SELECT id, signal, state, opened_at, updated_at, body FROM incidents;"
                               "SELECT key, value FROM meta;"),
              SQLITE_OK);
    ASSERT_EQ(append(s, "e1", "order.created", "c1", T0, T0, NULL), 0);
    store_close(s);
    /* Opening again migrates nothing and keeps the data. */
    s = open_rw(&t);
    ASSERT(s != NULL);
    ASSERT_EQ(user_version(t.path), v);
    ASSERT_EQ(store_event_count(s), 1);
    store_close(s);
    tmpdb_cleanup(&t);
}

static void newer_schema_refused(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    store_close(s);
    int v = user_version(t.path);
    char sql[64], want[128], err[256] = "";
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
    ASSERT_EQ(exec_sql(t.path, sql), SQLITE_OK);
    s = NULL;
    ASSERT_EQ(store_open(t.path, 0, &s, err, sizeof err), FW_EDB);
    ASSERT(s == NULL);
    snprintf(want, sizeof want, "database schema version %d is newer than this forewarn (%d)", v + 1,
             v);
    ASSERT_STREQ(err, want);
    ASSERT_EQ(user_version(t.path), v + 1); /* left as it was */
    tmpdb_cleanup(&t);
}

static void open_failure_says_why(void)
{
    struct store *s = NULL;
    char err[256] = "";
    ASSERT_EQ(store_open("/nonexistent-dir/x/forewarn.db", 0, &s, err, sizeof err), FW_EDB);
    ASSERT(s == NULL);
    ASSERT_CONTAINS(err, "cannot open /nonexistent-dir/x/forewarn.db: ");
}

/* ---- the journal ---- */

static void events_append_and_duplicates(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    ASSERT_EQ(store_event_count(s), 0);
    ASSERT_EQ(append(s, "e1", "order.created", "c1", T0, T0, "{\"order_id\":\"o1\"}"), 0);
    ASSERT_EQ(append(s, "e2", "order.created", "c2", T0, T0, NULL), 0);
    /* The same id again, even with other contents, is a duplicate and writes nothing. */
    ASSERT_EQ(append(s, "e1", "payment.completed", "c9", T0 + H, T0 + H, NULL), 1);
    ASSERT_EQ(store_event_count(s), 2);
    store_close(s);
    tmpdb_cleanup(&t);
}

struct seen {
    struct buf b;
    int stop_after; /* 0: never */
    int n;
};

static int collect(void *ctx, const struct event *ev, int64_t applied_at)
{
    struct seen *x = ctx;
    char *data = json_dumps(ev->data, JSON_COMPACT | JSON_SORT_KEYS);
    char ts[FW_TIME_MAXLEN], at[FW_TIME_MAXLEN];
    fw_time_format(ev->time, ts);
    fw_time_format(applied_at, at);
    buf_printf(&x->b, "%s %s %s %s applied %s %s\n", ev->id, ev->type,
               ev->subject ? ev->subject : "-", ts, at, data);
    free(data);
    return ++x->n == x->stop_after ? 42 : 0;
}

/* Scan gives every event in append order (not event time), with its applied_at. */
static void events_scan_in_order(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    ASSERT_EQ(append(s, "e1", "order.created", "c1", T0 + H, T0 + H, "{\"order_id\":\"o1\"}"), 0);
    ASSERT_EQ(append(s, "e2", "esim.status_changed", "c2", T0, T0 + H, "{\"status\":\"FAILED\"}"),
              0);
    ASSERT_EQ(append(s, "e3", "outage.started", NULL, T0 + 2 * H, T0 + 3 * H,
                     "{\"zips\":[\"94107\"]}"),
              0);
    struct seen x = {.n = 0};
    buf_init(&x.b, 0);
    ASSERT_EQ(store_events_scan(s, collect, &x), 0);
    ASSERT_STREQ(x.b.data,
                 "e1 order.created c1 2026-01-03T11:00:00Z applied 2026-01-03T11:00:00Z "
                 "{\"order_id\":\"o1\"}\n"
                 "e2 esim.status_changed c2 2026-01-03T10:00:00Z applied 2026-01-03T11:00:00Z "
                 "{\"status\":\"FAILED\"}\n"
                 "e3 outage.started - 2026-01-03T12:00:00Z applied 2026-01-03T13:00:00Z "
                 "{\"zips\":[\"94107\"]}\n");
    /* A non-zero return stops the scan and is passed back; the next scan starts over. */
    buf_reset(&x.b);
    x.n = 0;
    x.stop_after = 2;
    ASSERT_EQ(store_events_scan(s, collect, &x), 42);
    ASSERT_EQ(x.n, 2);
    x.n = 0;
    x.stop_after = 0;
    ASSERT_EQ(store_events_scan(s, collect, &x), 0);
    ASSERT_EQ(x.n, 3);
    buf_cleanup(&x.b);
    store_close(s);
    tmpdb_cleanup(&t);
}

static void rollback_discards(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    ASSERT_EQ(store_begin(s), 0);
    ASSERT_EQ(append(s, "e1", "order.created", "c1", T0, T0, NULL), 0);
    ASSERT_EQ(store_commit(s), 0);
    ASSERT_EQ(store_begin(s), 0);
    ASSERT_EQ(append(s, "e2", "order.created", "c1", T0, T0, NULL), 0);
    ASSERT_EQ(detect(s, &sig_a, "c1", 1, T0, T0), 0);
    ASSERT_EQ(store_meta_set(s, "virtual_clock", "1"), 0);
    store_rollback(s);
    store_rollback(s); /* no transaction: nothing to do */
    ASSERT_EQ(store_event_count(s), 1);
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ(store_meta_get(s, "virtual_clock", &b), FW_ENOTFOUND);
    struct detection_query q = all();
    ASSERT_STREQ(detections(s, &q, &b), "{\"detections\":[],\"next_cursor\":null}");
    buf_cleanup(&b);
    store_close(s);
    tmpdb_cleanup(&t);
}

/* ---- detections and incidents ---- */

/* Firing is idempotent on (signal, customer, fired_at); resolving updates that row. */
static void detection_fire_and_resolve(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    struct buf b;
    buf_init(&b, 0);
    struct detection_query q = all();
    ASSERT_EQ(detect(s, &sig_a, "c1", 1, T0, T0), 0);
    ASSERT_EQ(detect(s, &sig_a, "c1", 1, T0, T0), 0); /* recovery writes it again */
    ASSERT_STREQ(detections(s, &q, &b),
                 "{\"detections\":[{\"seq\":1,\"signal\":\"SIG-A\",\"customer\":\"c1\","
                 "\"severity\":\"HIGH\",\"state\":\"firing\",\"fired_at\":\"2026-01-03T10:00:00Z\","
                 "\"resolved_at\":null,\"name\":\"Signal A\",\"team\":\"esim\","
                 "\"root_cause\":\"prov\"}],\"next_cursor\":null}");
    ASSERT_EQ(detect(s, &sig_a, "c1", 0, T0 + 90 * M, T0), 0);
    ASSERT_EQ(detect(s, &sig_a, "c1", 0, T0 + 90 * M, T0), 0);
    /* A firing written again after the resolve (a replay) does not undo it. */
    ASSERT_EQ(detect(s, &sig_a, "c1", 1, T0, T0), 0);
    ASSERT_STREQ(detections(s, &q, &b),
                 "{\"detections\":[{\"seq\":1,\"signal\":\"SIG-A\",\"customer\":\"c1\","
                 "\"severity\":\"HIGH\",\"state\":\"resolved\",\"fired_at\":\"2026-01-03T10:00:00Z\","
                 "\"resolved_at\":\"2026-01-03T11:30:00Z\",\"name\":\"Signal A\",\"team\":\"esim\","
                 "\"root_cause\":\"prov\"}],\"next_cursor\":null}");
    /* A new episode is a new row; another signal or customer too. */
    ASSERT_EQ(detect(s, &sig_a, "c1", 1, T0 + 2 * H, T0 + 2 * H), 0);
    ASSERT_EQ(detect(s, &sig_b, "c1", 1, T0 + 2 * H, T0 + 2 * H), 0);
    ASSERT_EQ(detect(s, &sig_a, "c2", 1, T0 + 2 * H, T0 + 2 * H), 0);
    char sum[512];
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum),
                 "c1/SIG-A/resolved,c1/SIG-A/firing,c1/SIG-B/firing,c2/SIG-A/firing");
    ASSERT_CONTAINS(b.data, "\"severity\":\"LOW\",\"state\":\"firing\",\"fired_at\":"
                            "\"2026-01-03T12:00:00Z\",\"resolved_at\":null,\"name\":\"Signal B\","
                            "\"team\":null,\"root_cause\":null}");
    buf_cleanup(&b);
    store_close(s);
    tmpdb_cleanup(&t);
}

static void detection_query_filters_and_pages(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    ASSERT_EQ(detect(s, &sig_a, "c1", 1, T0, T0), 0);          /* seq 1 */
    ASSERT_EQ(detect(s, &sig_b, "c1", 1, T0 + H, T0 + H), 0);  /* 2 */
    ASSERT_EQ(detect(s, &sig_a, "c2", 1, T0 + 2 * H, T0 + 2 * H), 0); /* 3 */
    ASSERT_EQ(detect(s, &sig_a, "c3", 1, T0 + 3 * H, T0 + 3 * H), 0); /* 4 */
    ASSERT_EQ(detect(s, &sig_b, "c2", 1, T0 + 4 * H, T0 + 4 * H), 0); /* 5 */
    ASSERT_EQ(detect(s, &sig_a, "c1", 0, T0 + 5 * H, T0), 0);
    struct buf b;
    buf_init(&b, 0);
    char sum[512], cur[32];
    struct detection_query q = all();
    q.state = "firing";
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum),
                 "c1/SIG-B/firing,c2/SIG-A/firing,c3/SIG-A/firing,c2/SIG-B/firing");
    q = all();
    q.state = "resolved";
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c1/SIG-A/resolved");
    q = all();
    q.signal = "SIG-A";
    q.customer = "c2";
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c2/SIG-A/firing");
    q = all();
    q.severity = "LOW";
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c1/SIG-B/firing,c2/SIG-B/firing");
    /* fired_at in [from, to). */
    q = all();
    q.from = T0 + H;
    q.to = T0 + 3 * H;
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c1/SIG-B/firing,c2/SIG-A/firing");
    q = all();
    q.to = T0 + H;
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c1/SIG-A/resolved");
    q = all();
    q.customer = "nobody";
    ASSERT_STREQ(detections(s, &q, &b), "{\"detections\":[],\"next_cursor\":null}");
    /* Pages of two: the cursor is the last seq of a page, null on the last page. */
    q = all();
    q.limit = 2;
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c1/SIG-A/resolved,c1/SIG-B/firing");
    ASSERT_STREQ(next_cursor(b.data, cur, sizeof cur), "2");
    q.after = 2;
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c2/SIG-A/firing,c3/SIG-A/firing");
    ASSERT_STREQ(next_cursor(b.data, cur, sizeof cur), "4");
    q.after = 4;
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c2/SIG-B/firing");
    ASSERT_STREQ(next_cursor(b.data, cur, sizeof cur), "null");
    /* A page that ends exactly at the last row says so. */
    q.after = 3;
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c3/SIG-A/firing,c2/SIG-B/firing");
    ASSERT_STREQ(next_cursor(b.data, cur, sizeof cur), "null");
    /* Filters and cursor together: the bindings of one query do not leak into the next. */
    q = all();
    q.signal = "SIG-A";
    q.limit = 1;
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c1/SIG-A/resolved");
    ASSERT_STREQ(next_cursor(b.data, cur, sizeof cur), "1");
    q.after = 1;
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum), "c2/SIG-A/firing");
    q = all();
    ASSERT_STREQ(summary(detections(s, &q, &b), sum, sizeof sum),
                 "c1/SIG-A/resolved,c1/SIG-B/firing,c2/SIG-A/firing,c3/SIG-A/firing,"
                 "c2/SIG-B/firing");
    buf_cleanup(&b);
    store_close(s);
    tmpdb_cleanup(&t);
}

static int incident(struct store *s, uint64_t id, const char *update, int64_t opened, int64_t at,
                    const char *const *customers, size_t n)
{
    struct incident i = {.id = id,
                         .signal = &sig_a,
                         .update = update,
                         .customers = customers,
                         .ncustomers = n,
                         .opened_at = opened,
                         .at = at};
    return store_incident(s, &i);
}

/* One row per incident id, holding its latest JSON; queried by state with a cursor. */
static void incident_upsert_and_query(void)
{
    static const char *const cs[] = {"c1", "c2", "c3", "c4"};
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    struct buf b, want;
    buf_init(&b, 0);
    buf_init(&want, 0);
    ASSERT_EQ(incident(s, 1, "opened", T0, T0, cs, 3), 0);
    ASSERT_EQ(incident(s, 1, "opened", T0, T0, cs, 3), 0); /* recovery: the same again */
    ASSERT_EQ(incident(s, 1, "customer_added", T0, T0 + H, cs, 4), 0);
    ASSERT_EQ(incident(s, 2, "opened", T0 + 2 * H, T0 + 2 * H, cs + 1, 3), 0);
    ASSERT_EQ(incident(s, 1, "resolved", T0, T0 + 3 * H, cs, 4), 0);
    /* The body is incident_json of the latest change. */
    struct incident last = {.id = 1,
                            .signal = &sig_a,
                            .update = "resolved",
                            .customers = cs,
                            .ncustomers = 4,
                            .opened_at = T0,
                            .at = T0 + 3 * H};
    buf_puts(&want, "{\"incidents\":[");
    incident_json(&last, 1, &want);
    buf_puts(&want, "],\"next_cursor\":null}");
    ASSERT_EQ(store_incidents_json(s, "resolved", 0, 10, &b), 0);
    ASSERT_STREQ(b.data, want.data);
    buf_reset(&b);
    ASSERT_EQ(store_incidents_json(s, "open", 0, 10, &b), 0);
    ASSERT_CONTAINS(b.data, "{\"incidents\":[{\"kind\":\"incident\",\"id\":2,\"update\":\"opened\","
                            "\"state\":\"open\"");
    ASSERT_CONTAINS(b.data, "\"customers\":[\"c2\",\"c3\",\"c4\"]");
    ASSERT_CONTAINS(b.data, "],\"next_cursor\":null}");
    ASSERT(strstr(b.data, "\"id\":1,") == NULL);
    buf_reset(&b);
    ASSERT_EQ(store_incidents_json(s, NULL, 0, 1, &b), 0);
    ASSERT_CONTAINS(b.data, "{\"incidents\":[{\"kind\":\"incident\",\"id\":1,");
    ASSERT_CONTAINS(b.data, "],\"next_cursor\":\"1\"}");
    buf_reset(&b);
    ASSERT_EQ(store_incidents_json(s, NULL, 1, 1, &b), 0);
    ASSERT_CONTAINS(b.data, "{\"incidents\":[{\"kind\":\"incident\",\"id\":2,");
    ASSERT_CONTAINS(b.data, "],\"next_cursor\":null}");
    ASSERT_EQ(query_int(t.path, "SELECT count(*) FROM incidents"), 2);
    ASSERT_EQ(query_int(t.path, "SELECT count(*) FROM incidents WHERE id = 1 AND signal = 'SIG-A' "
                                "AND state = 'resolved' AND opened_at = 1767434400000 AND "
                                "updated_at = 1767445200000"),
              1);
    buf_cleanup(&want);
    buf_cleanup(&b);
    store_close(s);
    tmpdb_cleanup(&t);
}

/*
 * A customer joining writes one member row, not the whole list again; the
 * list reads back in join order, with its count.
 */
static void incident_members_one_row_per_join(void)
{
    static const char *const cs[] = {"c1", "c2", "c3", "c4", "c5"};
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    ASSERT_EQ(incident(s, 7, "opened", T0, T0, cs, 3), 0);
    struct incident j = {.id = 7, .signal = &sig_a, .update = "customer_added", .customers = cs,
                         .ncustomers = 5, .opened_at = T0, .at = T0 + H, .added = "c5"};
    ASSERT_EQ(store_incident(s, &j), 0);
    /* Only the newcomer was written: c4, in the list but not added, has no row. */
    ASSERT_EQ(query_int(t.path, "SELECT count(*) FROM incident_members WHERE incident = 7"), 4);
    ASSERT_EQ(query_int(t.path, "SELECT count(*) FROM incident_members WHERE customer = 'c4'"), 0);
    ASSERT_EQ(query_int(t.path, "SELECT count(*) FROM incidents WHERE body LIKE '%c1%'"), 0);
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ(store_incidents_json(s, NULL, 0, 10, &b), 0);
    ASSERT_CONTAINS(b.data, "\"customers\":[\"c1\",\"c2\",\"c3\",\"c5\"],\"customer_count\":4,");
    buf_cleanup(&b);
    store_close(s);
    tmpdb_cleanup(&t);
}

/* A database of schema 2 keeps its incidents' lists: migration 3 moves them into rows. */
static void incident_lists_migrate_to_rows(void)
{
    static const char *const cs[] = {"c1", "c2", "c3"};
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    struct buf b, want;
    buf_init(&b, 0);
    buf_init(&want, 0);
    struct incident i = {.id = 3, .signal = &sig_a, .update = "opened", .customers = cs,
                         .ncustomers = 3, .opened_at = T0, .at = T0};
    buf_puts(&want, "{\"incidents\":[");
    incident_json(&i, 1, &want);
    buf_puts(&want, "],\"next_cursor\":null}");
    store_close(s);
    /* As schema 2 stored it: the whole list in the body, no member rows. */
    struct buf sql;
    buf_init(&sql, 0);
    buf_puts(&sql, "DROP TABLE incident_members; DROP TABLE users; DROP TABLE tokens; "
                   "DROP TABLE audit; DROP TABLE cases; DROP TABLE case_history; "
                   "DROP INDEX tasks_due; DROP INDEX tasks_case; "
                   "ALTER TABLE tasks DROP COLUMN assignee; ALTER TABLE tasks DROP COLUMN case_id; "
                   "ALTER TABLE messages DROP COLUMN first_failed_at; "
                   "ALTER TABLE messages DROP COLUMN gave_up; "
                   "PRAGMA user_version = 2; "
                   "INSERT INTO incidents(id, signal, state, opened_at, updated_at, body) "
                   "VALUES (3, 'SIG-A', 'open', 1767434400000, 1767434400000, '");
    incident_json(&i, 1, &sql);
    buf_puts(&sql, "');");
    ASSERT_EQ(exec_sql(t.path, sql.data), SQLITE_OK);
    s = open_rw(&t);
    ASSERT(s != NULL);
    ASSERT(user_version(t.path) >= 3);
    ASSERT_EQ(query_int(t.path, "SELECT count(*) FROM incident_members WHERE incident = 3"), 3);
    ASSERT_EQ(store_incidents_json(s, NULL, 0, 10, &b), 0);
    ASSERT_STREQ(b.data, want.data);
    buf_cleanup(&sql);
    buf_cleanup(&want);
    buf_cleanup(&b);
    store_close(s);
    tmpdb_cleanup(&t);
}

/* ---- metadata and the timeline ---- */

static void meta_get_set(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ(store_meta_get(s, "virtual_clock", &b), FW_ENOTFOUND);
    ASSERT(b.len == 0);
    ASSERT_EQ(store_meta_set(s, "virtual_clock", "1767434400000"), 0);
    ASSERT_EQ(store_meta_set(s, "other", "x"), 0);
    ASSERT_EQ(store_meta_get(s, "virtual_clock", &b), 0);
    ASSERT_STREQ(b.data, "1767434400000");
    ASSERT_EQ(store_meta_set(s, "virtual_clock", "1767438000000"), 0);
    buf_reset(&b);
    ASSERT_EQ(store_meta_get(s, "virtual_clock", &b), 0);
    ASSERT_STREQ(b.data, "1767438000000");
    buf_reset(&b);
    ASSERT_EQ(store_meta_get(s, "other", &b), 0);
    ASSERT_STREQ(b.data, "x");
    buf_cleanup(&b);
    store_close(s);
    tmpdb_cleanup(&t);
}

/* A customer's events, newest (by event time) first; ties by arrival, latest first. */
static void timeline_newest_first(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    ASSERT_EQ(append(s, "e1", "order.created", "c1", T0 + H, T0 + H, NULL), 0);
    ASSERT_EQ(append(s, "e2", "order.created", "c2", T0 + 2 * H, T0 + 2 * H, NULL), 0);
    ASSERT_EQ(append(s, "e3", "payment.completed", "c1", T0, T0 + 2 * H, NULL), 0); /* late */
    ASSERT_EQ(append(s, "e4", "esim.status_changed", "c1", T0 + 3 * H, T0 + 3 * H, NULL), 0);
    ASSERT_EQ(append(s, "e5", "esim.status_changed", "c1", T0 + 3 * H, T0 + 3 * H, NULL), 0);
    ASSERT_EQ(append(s, "e6", "outage.started", NULL, T0 + 4 * H, T0 + 4 * H, NULL), 0);
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ(store_timeline_json(s, "c1", 10, &b), 0);
    json_t *j = json_loads(b.data, 0, NULL);
    ASSERT(json_is_array(j));
    char ids[64] = "";
    size_t i;
    json_t *ev;
    json_array_foreach(j, i, ev)
    {
        strcat(ids, json_string_value(json_object_get(ev, "id")));
        strcat(ids, " ");
    }
    ASSERT_STREQ(ids, "e5 e4 e1 e3 ");
    /* Each entry is the stored CloudEvent. */
    ev = json_array_get(j, 2);
    ASSERT_STREQ(json_string_value(json_object_get(ev, "type")), "order.created");
    ASSERT_STREQ(json_string_value(json_object_get(ev, "time")), "2026-01-03T11:00:00Z");
    ASSERT_STREQ(json_string_value(json_object_get(ev, "subject")), "c1");
    json_decref(j);
    buf_reset(&b);
    ASSERT_EQ(store_timeline_json(s, "c1", 2, &b), 0);
    ASSERT_EQ(json_array_size(j = json_loads(b.data, 0, NULL)), 2);
    json_decref(j);
    buf_reset(&b);
    ASSERT_EQ(store_timeline_json(s, "nobody", 10, &b), 0);
    ASSERT_STREQ(b.data, "[]");
    buf_cleanup(&b);
    store_close(s);
    tmpdb_cleanup(&t);
}

/* ---- readers ---- */

/* A read-only connection to the same file sees what the writer committed, and only that. */
static void readonly_sees_committed(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *w = open_rw(&t), *r = NULL;
    ASSERT(w != NULL);
    char err[256] = "";
    ASSERT_EQ(store_open(t.path, 1, &r, err, sizeof err), 0);
    ASSERT(r != NULL);
    struct buf b;
    buf_init(&b, 0);
    struct detection_query q = all();
    ASSERT_EQ(store_begin(w), 0);
    ASSERT_EQ(append(w, "e1", "order.created", "c1", T0, T0, NULL), 0);
    ASSERT_EQ(detect(w, &sig_a, "c1", 1, T0, T0), 0);
    /* Not yet committed: the reader sees nothing. */
    ASSERT_EQ(store_event_count(r), 0);
    ASSERT_STREQ(detections(r, &q, &b), "{\"detections\":[],\"next_cursor\":null}");
    ASSERT_EQ(store_commit(w), 0);
    ASSERT_EQ(store_event_count(r), 1);
    char sum[128];
    ASSERT_STREQ(summary(detections(r, &q, &b), sum, sizeof sum), "c1/SIG-A/firing");
    buf_reset(&b);
    ASSERT_EQ(store_timeline_json(r, "c1", 10, &b), 0);
    ASSERT_CONTAINS(b.data, "\"id\":\"e1\"");
    buf_reset(&b);
    ASSERT_EQ(store_meta_set(w, "virtual_clock", "5"), 0);
    ASSERT_EQ(store_meta_get(r, "virtual_clock", &b), 0);
    ASSERT_STREQ(b.data, "5");
    buf_cleanup(&b);
    store_close(r);
    store_close(w);
    tmpdb_cleanup(&t);
}

/* A read-only open of a file that is not there fails instead of creating it. */
static void readonly_needs_a_database(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *r = NULL;
    char err[256] = "";
    ASSERT_EQ(store_open(t.path, 1, &r, err, sizeof err), FW_EDB);
    ASSERT(r == NULL);
    ASSERT_CONTAINS(err, t.path);
    ASSERT(access(t.path, F_OK) != 0);
    tmpdb_cleanup(&t);
}

/* A reader refuses a newer schema too. */
static void readonly_newer_schema_refused(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    store_close(s);
    int v = user_version(t.path);
    char sql[64], err[256] = "";
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
    ASSERT_EQ(exec_sql(t.path, sql), SQLITE_OK);
    s = NULL;
    int rc = store_open(t.path, 1, &s, err, sizeof err);
    store_close(s);
    tmpdb_cleanup(&t);
    ASSERT_EQ(rc, FW_EDB);
    ASSERT_CONTAINS(err, "is newer than this forewarn");
}

/* A failed insert is an error, not a duplicate. */
static void failed_insert_is_not_a_duplicate(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    struct event ev = {.id = "e1", .type = "order.created", .subject = "c1", .time = T0}; /* no json */
    int dup = -1;
    int rc = store_event_append(s, &ev, NULL, T0, &dup);
    store_close(s);
    tmpdb_cleanup(&t);
    ASSERT(rc != 0 || dup == 0);
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long long)st.st_size;
}

/*
 * With a checkpointer attached, a commit that leaves more than 1000 pages
 * in the WAL is not checkpointed by the writer (SQLite's autocheckpoint
 * would have grown the database file inside the commit): the
 * checkpointer's thread copies it back once it may.
 */
static void checkpointer_moves_the_wal(void)
{
    struct tmpdb t;
    ASSERT_EQ(tmpdb_init(&t), 0);
    struct store *s = open_rw(&t);
    ASSERT(s != NULL);
    struct store_checkpointer *c = NULL;
    char err[256] = "";
    ASSERT_EQ(store_checkpointer_start(t.path, &c, err, sizeof err), 0);
    store_use_checkpointer(s, c);
    store_checkpointer_hold(c, 1);
    long long before = file_size(t.path);
    char data[1100], id[32];
    memset(data, 0, sizeof data);
    strcpy(data, "{\"pad\":\"");
    memset(data + 8, 'x', 1000);
    strcpy(data + 1008, "\"}");
    ASSERT_EQ(store_begin(s), 0);
    for (int i = 0; i < 6000; i++) { /* about 6 MB: well past 1000 pages of 4 KB */
        snprintf(id, sizeof id, "e%d", i);
        ASSERT_EQ(append(s, id, "order.created", "c1", T0 + i, T0 + i, data), 0);
    }
    ASSERT_EQ(store_commit(s), 0);
    /* The commit left everything in the WAL: the writer did not checkpoint. */
    ASSERT(file_size(t.path) < before + 1000000);
    char wal[128];
    snprintf(wal, sizeof wal, "%s-wal", t.path);
    ASSERT(file_size(wal) >= 5000000);
    ASSERT_EQ(store_checkpointer_runs(c), 0);
    store_checkpointer_hold(c, 0);
    /* Wait for the checkpointer (bounded), not for a fixed time. */
    struct timespec tick = {0, 2000000};
    for (int i = 0; i < 5000 && (store_checkpointer_runs(c) == 0 || file_size(t.path) < before +
                                                                        5000000);
         i++)
        nanosleep(&tick, NULL);
    ASSERT(store_checkpointer_runs(c) > 0);
    ASSERT(file_size(t.path) >= before + 5000000);
    ASSERT_EQ(store_event_count(s), 6000);
    store_close(s);
    store_checkpointer_stop(c);
    tmpdb_cleanup(&t);
}

const struct test store_tests[] = {
    {"checkpointer_moves_the_wal", checkpointer_moves_the_wal},
    {"readonly_newer_schema_refused", readonly_newer_schema_refused},
    {"failed_insert_is_not_a_duplicate", failed_insert_is_not_a_duplicate},
    {"open_creates_and_migrates", open_creates_and_migrates},
    {"newer_schema_refused", newer_schema_refused},
    {"open_failure_says_why", open_failure_says_why},
    {"events_append_and_duplicates", events_append_and_duplicates},
    {"events_scan_in_order", events_scan_in_order},
    {"rollback_discards", rollback_discards},
    {"detection_fire_and_resolve", detection_fire_and_resolve},
    {"detection_query_filters_and_pages", detection_query_filters_and_pages},
    {"incident_upsert_and_query", incident_upsert_and_query},
    {"incident_members_one_row_per_join", incident_members_one_row_per_join},
    {"incident_lists_migrate_to_rows", incident_lists_migrate_to_rows},
    {"meta_get_set", meta_get_set},
    {"timeline_newest_first", timeline_newest_first},
    {"readonly_sees_committed", readonly_sees_committed},
    {"readonly_needs_a_database", readonly_needs_a_database},
    {NULL, NULL},
};
