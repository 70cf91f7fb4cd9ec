/*
 * store/cases.c -- cases and their history (see store/cases.h).
 */
#include "store/cases.h"

#include <string.h>

#include "store/store_int.h"
#include "util/util.h"

const char store__cases_schema[] =
    "CREATE TABLE cases ("
    "  seq INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  customer TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('open', 'resolved')),"
    "  severity TEXT NOT NULL,"
    "  assignee TEXT,"
    "  opened_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  doc TEXT NOT NULL);"
    "CREATE INDEX cases_customer ON cases(customer, seq);"
    "CREATE INDEX cases_state ON cases(state, seq);"
    "CREATE TABLE case_history ("
    "  seq INTEGER PRIMARY KEY,"
    "  case_id TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  event TEXT NOT NULL,"
    "  line TEXT NOT NULL);"
    "CREATE INDEX case_history_case ON case_history(case_id, seq);";

/* The file's statements: each prepared once per connection (store__named). */
static const char SQL_SAVE[] =
    "INSERT INTO cases(id, customer, state, severity, assignee, opened_at, updated_at, doc) "
    "VALUES (?1, ?2, ?3, json_extract(?4, '$.severity'), json_extract(?4, '$.assignee'), "
    "  ?5, ?5, ?4) "
    "ON CONFLICT(id) DO UPDATE SET state = excluded.state, severity = excluded.severity, "
    "  assignee = excluded.assignee, updated_at = excluded.updated_at, doc = excluded.doc";
static const char SQL_LOG[] =
    "INSERT INTO case_history(case_id, at, event, line) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_DELETE[] = "DELETE FROM cases WHERE id = ?1";
static const char SQL_DELETE_LOG[] = "DELETE FROM case_history WHERE case_id = ?1";
static const char SQL_GET[] = "SELECT doc FROM cases WHERE id = ?1";
static const char SQL_HISTORY[] =
    "SELECT line FROM case_history WHERE case_id = ?1 ORDER BY seq";
static const char SQL_QUERY[] =
    "SELECT seq, doc FROM cases WHERE seq > ?1 AND (?2 IS NULL OR state = ?2) "
    "AND (?3 IS NULL OR customer = ?3) AND (?4 IS NULL OR severity = ?4) "
    "AND (?5 IS NULL OR (?5 = '' AND assignee IS NULL) OR assignee = ?5) "
    "ORDER BY seq LIMIT ?6";

int store_case_save(struct store *s, const char *id, const char *customer, int open,
                    const char *doc, int64_t at)
{
    sqlite3_stmt *st = store__named(s, SQL_SAVE);
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    store__bind_text(st, 2, customer);
    store__bind_text(st, 3, open ? "open" : "resolved");
    store__bind_text(st, 4, doc);
    sqlite3_bind_int64(st, 5, at);
    return store__run(s, st);
}

int store_case_log(struct store *s, const char *id, int64_t at, const char *event,
                   const char *json)
{
    sqlite3_stmt *st = store__named(s, SQL_LOG);
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, at);
    store__bind_text(st, 3, event);
    store__bind_text(st, 4, json);
    return store__run(s, st);
}

int store_case_delete(struct store *s, const char *id)
{
    sqlite3_stmt *a = store__named(s, SQL_DELETE), *b = store__named(s, SQL_DELETE_LOG);
    if (!a || !b)
        return FW_EDB;
    store__bind_text(a, 1, id);
    store__bind_text(b, 1, id);
    int rc = store__run(s, a);
    return rc ? rc : store__run(s, b);
}

int store_case_get(struct store *s, const char *id, struct buf *out)
{
    sqlite3_stmt *st = store__named(s, SQL_GET);
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    int step = sqlite3_step(st), rc = FW_ENOTFOUND;
    if (step == SQLITE_ROW) {
        buf_puts(out, (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    } else if (step != SQLITE_DONE) {
        rc = FW_EDB;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int store_case_history_json(struct store *s, const char *id, struct buf *out)
{
    sqlite3_stmt *st = store__named(s, SQL_HISTORY);
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    buf_putc(out, '[');
    int n = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n++)
            buf_putc(out, ',');
        buf_puts(out, (const char *)sqlite3_column_text(st, 0));
    }
    buf_putc(out, ']');
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return step == SQLITE_DONE ? 0 : FW_EDB;
}

int store_cases_json(struct store *s, const struct case_query *q, struct buf *out)
{
    sqlite3_stmt *st = store__named(s, SQL_QUERY);
    if (!st)
        return FW_EDB;
    sqlite3_bind_int64(st, 1, q->after);
    store__bind_text(st, 2, q->state);
    store__bind_text(st, 3, q->customer);
    store__bind_text(st, 4, q->severity);
    store__bind_text(st, 5, q->assignee);
    sqlite3_bind_int(st, 6, q->limit + 1); /* one extra row tells whether there is a next page */
    return store__page(st, q->limit, 0, "cases", 0, store__text_row, NULL, out);
}
