/*
 * comms.c -- the outbox as the API and the orchestrator see it: inserting
 * decided messages, listing and reading them, people's status changes,
 * tasks and chatbot contexts.  (The dispatcher's half is outbox.c.)
 * Statement slots 32-63 of store__stmt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/messages.h"
#include "store/store_int.h"
#include "util/fwtime.h"
#include "util/log.h"
#include "util/util.h"

enum {
    SL_INSERT = 32,
    SL_GET,
    SL_LIST,
    SL_APPROVE,
    SL_REJECT,
    SL_EDIT,
    SL_RETRY,
    SL_READ,
    SL_STATUS,
    SL_TASK_UPSERT,
    SL_TASK_LIST,
    SL_CTX_PUT,
    SL_CTX_GET,
    SL_INAPP_OWNED,
    SL_KEY_STATUS,
};


void outbox_msg_cleanup(struct outbox_msg *m)
{
    char **strs[] = {&m->id,        &m->key,     &m->customer, &m->audience, &m->channel,
                     &m->status,    &m->reason,  &m->last_error, &m->recipient, &m->subject,
                     &m->body,      &m->html,    &m->signals,  &m->explain,  &m->meta};
    for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
}

int store_message_insert(struct store *s, const struct outbox_msg *m, int *inserted)
{
    sqlite3_stmt *st = store__stmt(
        s, SL_INSERT,
        "INSERT INTO messages(id, key, customer, audience, channel, status, reason, "
        "created_at, send_at, recipient, subject, body, html, signals, explain, meta, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) "
        "ON CONFLICT(key) DO NOTHING");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, m->id);
    store__bind_text(st, 2, m->key);
    store__bind_text(st, 3, m->customer);
    store__bind_text(st, 4, m->audience);
    store__bind_text(st, 5, m->channel);
    store__bind_text(st, 6, m->status);
    store__bind_text(st, 7, m->reason);
    sqlite3_bind_int64(st, 8, m->created_at);
    sqlite3_bind_int64(st, 9, m->send_at);
    store__bind_text(st, 10, m->recipient);
    store__bind_text(st, 11, m->subject);
    store__bind_text(st, 12, m->body);
    store__bind_text(st, 13, m->html);
    store__bind_text(st, 14, m->signals ? m->signals : "[]");
    store__bind_text(st, 15, m->explain ? m->explain : "{}");
    store__bind_text(st, 16, m->meta ? m->meta : "{}");
    sqlite3_bind_int64(st, 17, m->updated_at ? m->updated_at : fw_wall_now());
    int rc = store__run(s, st);
    if (!rc && inserted)
        *inserted = sqlite3_changes(s->db) > 0;
    return rc;
}

static char *col_dup(sqlite3_stmt *st, int c)
{
    const char *v = (const char *)sqlite3_column_text(st, c);
    return v ? xstrdup(v) : NULL;
}


void store__row_to_msg(sqlite3_stmt *st, struct outbox_msg *m)
{
    memset(m, 0, sizeof *m);
    m->id = col_dup(st, 0);
    m->key = col_dup(st, 1);
    m->customer = col_dup(st, 2);
    m->audience = col_dup(st, 3);
    m->channel = col_dup(st, 4);
    m->status = col_dup(st, 5);
    m->reason = col_dup(st, 6);
    m->created_at = sqlite3_column_int64(st, 7);
    m->send_at = sqlite3_column_int64(st, 8);
    m->next_attempt_at = sqlite3_column_int64(st, 9);
    m->attempts = sqlite3_column_int(st, 10);
    m->last_error = col_dup(st, 11);
    m->recipient = col_dup(st, 12);
    m->subject = col_dup(st, 13);
    m->body = col_dup(st, 14);
    m->html = col_dup(st, 15);
    m->signals = col_dup(st, 16);
    m->explain = col_dup(st, 17);
    m->meta = col_dup(st, 18);
    m->sent_at = sqlite3_column_int64(st, 19);
    m->read_at = sqlite3_column_int64(st, 20);
    m->updated_at = sqlite3_column_int64(st, 21);
}

int store_message_get(struct store *s, const char *id, struct outbox_msg *out)
{
    sqlite3_stmt *st = store__stmt(s, SL_GET, "SELECT " STORE__MSG_COLUMNS " FROM messages WHERE id = ?1");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    int rc = FW_ENOTFOUND, step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        store__row_to_msg(st, out);
        rc = 0;
    } else if (step != SQLITE_DONE) {
        rc = FW_EDB;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static void json_field_str(struct buf *o, const char *name, const char *v, int first)
{
    buf_printf(o, "%s\"%s\":", first ? "" : ",", name);
    if (v)
        buf_json_str(o, v, strlen(v));
    else
        buf_puts(o, "null");
}

static void json_field_time(struct buf *o, const char *name, int64_t v)
{
    buf_printf(o, ",\"%s\":", name);
    if (v)
        buf_json_time(o, v);
    else
        buf_puts(o, "null");
}

/* Embed a stored JSON text as a value (it was produced by us; fall back to a string). */
static void json_field_raw(struct buf *o, const char *name, const char *v, const char *dflt)
{
    buf_printf(o, ",\"%s\":%s", name, v && *v ? v : dflt);
}

void store_message_json(const struct outbox_msg *m, struct buf *o)
{
    buf_putc(o, '{');
    json_field_str(o, "id", m->id, 1);
    json_field_str(o, "idempotency_key", m->key, 0);
    json_field_str(o, "customer", m->customer, 0);
    json_field_str(o, "audience", m->audience, 0);
    json_field_str(o, "channel", m->channel, 0);
    json_field_str(o, "status", m->status, 0);
    json_field_str(o, "reason", m->reason, 0);
    json_field_time(o, "created_at", m->created_at);
    json_field_time(o, "send_at", m->send_at);
    buf_printf(o, ",\"attempts\":%d", m->attempts);
    json_field_str(o, "last_error", m->last_error, 0);
    json_field_time(o, "next_attempt_at", m->next_attempt_at);
    json_field_str(o, "recipient", m->recipient, 0);
    json_field_str(o, "subject", m->subject, 0);
    json_field_str(o, "body", m->body, 0);
    json_field_str(o, "html", m->html, 0);
    json_field_raw(o, "signals", m->signals, "[]");
    json_field_raw(o, "explanation", m->explain, "{}");
    json_field_raw(o, "meta", m->meta, "{}");
    json_field_time(o, "sent_at", m->sent_at);
    json_field_time(o, "read_at", m->read_at);
    json_field_time(o, "updated_at", m->updated_at);
    buf_putc(o, '}');
}

static void message_row(sqlite3_stmt *st, struct buf *out, int first, void *ctx)
{
    (void)ctx;
    struct outbox_msg m;
    store__row_to_msg(st, &m);
    if (!first)
        buf_putc(out, ',');
    store_message_json(&m, out);
    outbox_msg_cleanup(&m);
}

int store_messages_json(struct store *s, const struct message_query *q, struct buf *out)
{
    sqlite3_stmt *st = store__stmt(
        s, SL_LIST,
        "SELECT " STORE__MSG_COLUMNS " FROM messages WHERE seq > ?1 AND (?2 IS NULL OR customer = ?2) "
        "AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR channel = ?4) "
        "AND (?5 IS NULL OR audience = ?5) ORDER BY seq LIMIT ?6");
    if (!st)
        return FW_EDB;
    sqlite3_bind_int64(st, 1, q->after);
    store__bind_text(st, 2, q->customer);
    store__bind_text(st, 3, q->status);
    store__bind_text(st, 4, q->channel);
    store__bind_text(st, 5, q->audience);
    sqlite3_bind_int(st, 6, q->limit + 1);
    return store__page(st, q->limit, 22, "messages", 1, message_row, NULL, out);
}

int store_message_status_by_key(struct store *s, const char *key, char *status, size_t n)
{
    sqlite3_stmt *st = store__stmt(s, SL_KEY_STATUS, "SELECT status FROM messages WHERE key = ?1");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, key);
    int rc = FW_ENOTFOUND, step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        snprintf(status, n, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    } else if (step != SQLITE_DONE) {
        rc = FW_EDB;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Tell "unknown id" from "wrong state" after a compare-and-set touched no row. */
static int why_unchanged(struct store *s, const char *id)
{
    sqlite3_stmt *st = store__stmt(s, SL_STATUS, "SELECT status FROM messages WHERE id = ?1");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    int rc = sqlite3_step(st) == SQLITE_ROW ? FW_ESTATE : FW_ENOTFOUND;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int cas_result(struct store *s, int rc, const char *id)
{
    if (rc)
        return rc;
    return sqlite3_changes(s->db) ? 0 : why_unchanged(s, id);
}

int store_message_approve(struct store *s, const char *id, int64_t now_engine, int64_t now_wall)
{
    sqlite3_stmt *st = store__stmt(
        s, SL_APPROVE,
        "UPDATE messages SET status = 'scheduled', send_at = max(send_at, ?2), reason = NULL, "
        "updated_at = ?3 WHERE id = ?1 AND status = 'awaiting_approval'");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, now_engine);
    sqlite3_bind_int64(st, 3, now_wall);
    return cas_result(s, store__run(s, st), id);
}

int store_message_reject(struct store *s, const char *id, const char *why, int64_t now_wall)
{
    sqlite3_stmt *st = store__stmt(
        s, SL_REJECT,
        "UPDATE messages SET status = 'rejected', reason = ?2, updated_at = ?3 "
        "WHERE id = ?1 AND status = 'awaiting_approval'");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    store__bind_text(st, 2, why);
    sqlite3_bind_int64(st, 3, now_wall);
    return cas_result(s, store__run(s, st), id);
}

int store_message_edit(struct store *s, const char *id, const char *subject, const char *body,
                       const char *html, int64_t now_wall)
{
    sqlite3_stmt *st = store__stmt(
        s, SL_EDIT,
        "UPDATE messages SET subject = coalesce(?2, subject), body = coalesce(?3, body), "
        "html = coalesce(?4, html), updated_at = ?5 "
        "WHERE id = ?1 AND status = 'awaiting_approval'");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    store__bind_text(st, 2, subject);
    store__bind_text(st, 3, body);
    store__bind_text(st, 4, html);
    sqlite3_bind_int64(st, 5, now_wall);
    return cas_result(s, store__run(s, st), id);
}

int store_message_retry(struct store *s, const char *id, int64_t now_wall)
{
    sqlite3_stmt *st = store__stmt(
        s, SL_RETRY,
        "UPDATE messages SET status = 'retrying', attempts = 0, next_attempt_at = 0, "
        "last_error = NULL, updated_at = ?2 WHERE id = ?1 AND status = 'dead'");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, now_wall);
    return cas_result(s, store__run(s, st), id);
}

int store_inapp_read(struct store *s, const char *customer, const char *id, int64_t now_wall)
{
    sqlite3_stmt *st = store__stmt(
        s, SL_READ,
        "UPDATE messages SET read_at = coalesce(read_at, ?3), updated_at = ?3 "
        "WHERE id = ?1 AND customer = ?2 AND channel = 'in_app' AND status = 'sent'");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    store__bind_text(st, 2, customer);
    sqlite3_bind_int64(st, 3, now_wall);
    int rc = store__run(s, st);
    if (rc || sqlite3_changes(s->db))
        return rc;
    /* Another customer's message, or not in-app, is "not found" for this customer. */
    st = store__stmt(s, SL_INAPP_OWNED,
                     "SELECT 1 FROM messages WHERE id = ?1 AND customer = ?2 AND channel = 'in_app'");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    store__bind_text(st, 2, customer);
    rc = sqlite3_step(st) == SQLITE_ROW ? FW_ESTATE : FW_ENOTFOUND;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int store_task_upsert(struct store *s, const struct task_row *t, int64_t now)
{
    sqlite3_stmt *st = store__stmt(
        s, SL_TASK_UPSERT,
        "INSERT INTO tasks(key, customer, kind, due_at, status, detail, created_at, updated_at, "
        "assignee, case_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(key) DO "
        "UPDATE SET status = excluded.status, detail = excluded.detail, updated_at = "
        "excluded.updated_at, assignee = excluded.assignee, due_at = excluded.due_at");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, t->key);
    store__bind_text(st, 2, t->customer);
    store__bind_text(st, 3, t->kind);
    sqlite3_bind_int64(st, 4, t->due_at);
    store__bind_text(st, 5, t->status);
    store__bind_text(st, 6, t->detail ? t->detail : "{}");
    sqlite3_bind_int64(st, 7, t->created_at);
    sqlite3_bind_int64(st, 8, now);
    store__bind_text(st, 9, t->assignee);
    store__bind_text(st, 10, t->case_id);
    return store__run(s, st);
}

#define TASK_COLUMNS                                                                               \
    "SELECT seq, key, customer, kind, due_at, status, detail, created_at, updated_at, assignee, "  \
    "case_id FROM tasks "

/* One row of the tasks list (the statement's columns are TASK_COLUMNS). */
static void task_row_json(sqlite3_stmt *st, int64_t now, struct buf *out)
{
    const char *status = (const char *)sqlite3_column_text(st, 5);
    int64_t due = sqlite3_column_int64(st, 4);
    buf_printf(out, "{\"seq\":%lld", (long long)sqlite3_column_int64(st, 0));
    json_field_str(out, "key", (const char *)sqlite3_column_text(st, 1), 0);
    json_field_str(out, "id", (const char *)sqlite3_column_text(st, 1), 0);
    json_field_str(out, "customer", (const char *)sqlite3_column_text(st, 2), 0);
    json_field_str(out, "kind", (const char *)sqlite3_column_text(st, 3), 0);
    json_field_time(out, "due_at", due);
    json_field_str(out, "status", status, 0);
    json_field_str(out, "case", (const char *)sqlite3_column_text(st, 10), 0);
    json_field_str(out, "assignee", (const char *)sqlite3_column_text(st, 9), 0);
    /* Overdue: still to do and past its due time on the engine's clock. */
    int open = status && (!strcmp(status, "open") || !strcmp(status, "pending"));
    buf_printf(out, ",\"overdue\":%s", open && due <= now ? "true" : "false");
    json_field_raw(out, "detail", (const char *)sqlite3_column_text(st, 6), "{}");
    json_field_time(out, "created_at", sqlite3_column_int64(st, 7));
    json_field_time(out, "updated_at", sqlite3_column_int64(st, 8));
    buf_putc(out, '}');
}

int store_tasks_json(struct store *s, const struct task_query *q, struct buf *out)
{
    /* Keyset pages on (due_at, seq), the order shown. */
    sqlite3_stmt *st = store__named(
        s, TASK_COLUMNS
        "WHERE (due_at > ?1 OR (due_at = ?1 AND seq > ?2)) AND (?3 IS NULL OR customer = ?3) "
        "AND (?4 IS NULL OR status = ?4) AND (?5 IS NULL OR kind = ?5) "
        "AND (?6 IS NULL OR assignee = ?6) AND (?7 = 0 OR status IN ('open', 'pending')) "
        "AND (?8 IS NULL OR due_at < ?8) AND (?9 IS NULL OR case_id = ?9) "
        "AND (?10 IS NULL OR json_extract(detail, '$.team') = ?10) "
        "ORDER BY due_at, seq LIMIT ?11");
    if (!st)
        return FW_EDB;
    sqlite3_bind_int64(st, 1, q->after_seq ? q->after_due : INT64_MIN);
    sqlite3_bind_int64(st, 2, q->after_seq);
    store__bind_text(st, 3, q->customer);
    store__bind_text(st, 4, q->status);
    store__bind_text(st, 5, q->kind);
    store__bind_text(st, 6, q->assignee);
    sqlite3_bind_int(st, 7, q->open);
    if (q->due_before != FW_TIME_NONE)
        sqlite3_bind_int64(st, 8, q->due_before);
    store__bind_text(st, 9, q->case_id);
    store__bind_text(st, 10, q->team);
    sqlite3_bind_int(st, 11, q->limit + 1);
    buf_puts(out, "{\"tasks\":[");
    int n = 0, step, more = 0;
    int64_t last = 0, last_due = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == q->limit) {
            more = 1;
            break;
        }
        if (n++)
            buf_putc(out, ',');
        last = sqlite3_column_int64(st, 0);
        last_due = sqlite3_column_int64(st, 4);
        task_row_json(st, q->now, out);
    }
    int rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : FW_EDB;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (more)
        buf_printf(out, "],\"next_cursor\":\"%lld.%lld\"}", (long long)last_due, (long long)last);
    else
        buf_puts(out, "],\"next_cursor\":null}");
    return rc;
}

int store_task_get(struct store *s, const char *key, int64_t now, struct buf *out)
{
    sqlite3_stmt *st = store__named(s, TASK_COLUMNS "WHERE key = ?1");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, key);
    int step = sqlite3_step(st), rc = 0;
    if (step == SQLITE_ROW)
        task_row_json(st, now, out);
    else
        rc = step == SQLITE_DONE ? FW_ENOTFOUND : FW_EDB;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int store_context_put(struct store *s, const char *customer, const char *json, int64_t now)
{
    sqlite3_stmt *st = store__stmt(
        s, SL_CTX_PUT,
        "INSERT INTO contexts(customer, body, updated_at) VALUES (?1, ?2, ?3) "
        "ON CONFLICT(customer) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, customer);
    store__bind_text(st, 2, json);
    sqlite3_bind_int64(st, 3, now);
    return store__run(s, st);
}

int store_context_get(struct store *s, const char *customer, struct buf *out)
{
    sqlite3_stmt *st = store__stmt(s, SL_CTX_GET, "SELECT body FROM contexts WHERE customer = ?1");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, customer);
    int rc = FW_ENOTFOUND;
    if (sqlite3_step(st) == SQLITE_ROW) {
        buf_puts(out, (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}
