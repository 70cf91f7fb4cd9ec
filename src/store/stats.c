/*
 * store/stats.c -- what the outcome figures are computed from, read from
 * the tables serve keeps (analytics/stats.h): every case document, the
 * proactive customer messages that went out (one per decision), and the
 * tickets customers opened (journaled events).
 */
#include "store/stats.h"

#include <sqlite3.h>

#include "store/store_int.h"
#include "util/json.h"
#include "util/util.h"

static const char SQL_CASES[] = "SELECT doc FROM cases ORDER BY seq";
/* An alert or an outage message to the customer that was not held back; one per decision. */
static const char SQL_OUTREACH[] =
    "SELECT customer, created_at FROM messages WHERE audience = 'customer' AND customer IS NOT "
    "NULL AND status <> 'suppressed' AND (key LIKE 'alert|%' OR key LIKE 'outage|%') "
    "GROUP BY customer, created_at ORDER BY created_at, customer";
static const char SQL_TICKETS[] = "SELECT subject, time FROM events WHERE type = 'ticket.created' "
                                  "AND subject IS NOT NULL ORDER BY time";

/* Rows of a two-column (text, integer) query as [{"customer":..., "at":...}]. */
static int pairs(struct store *s, const char *sql, json_t *into)
{
    sqlite3_stmt *st = store__named(s, sql);
    if (!st)
        return FW_EDB;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(into, json_pack("{s:s, s:I}", "customer",
                                              (const char *)sqlite3_column_text(st, 0), "at",
                                              (json_int_t)sqlite3_column_int64(st, 1)));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : FW_EDB;
}

int store_stats_input(struct store *s, json_t **cases, json_t **outreach, json_t **contacts)
{
    *cases = json_array();
    *outreach = json_array();
    *contacts = json_array();
    sqlite3_stmt *st = store__named(s, SQL_CASES);
    if (!st)
        return FW_EDB;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *doc = (const char *)sqlite3_column_text(st, 0);
        json_t *d = doc ? json_loads(doc, 0, NULL) : NULL;
        if (d)
            json_array_append_new(*cases, d);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return FW_EDB;
    if (pairs(s, SQL_OUTREACH, *outreach) || pairs(s, SQL_TICKETS, *contacts))
        return FW_EDB;
    return 0;
}
