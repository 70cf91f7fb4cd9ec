/*
 * outbox.c -- the dispatcher's half of the outbox: claiming due messages,
 * recording outcomes, requeueing what a crash left in flight, and telling
 * a worker when to look again.  Statement slots 0-31 of store__stmt.
 *
 * Invariant: a row is `sending` only while one worker owns it.  Claiming
 * is one UPDATE ... RETURNING (atomic, so two connections never claim the
 * same row); outcomes are compare-and-set on status = 'sending'.  A crash
 * between claim and outcome leaves the row `sending`; store_outbox_requeue
 * at the next start makes it `retrying`, and it is sent again under the
 * same idempotency key.
 *
 * Two clocks: send_at is engine time (virtual in tests), next_attempt_at
 * is the retry clock's: wall time, or engine time when the dispatcher is
 * told to retry on the engine clock (a virtual clock).  A row that has never failed has next_attempt_at 0 and
 * waits on the engine clock only; a failed row was claimed, so its send_at
 * has passed, and it waits on the wall clock only.  store_outbox_next
 * reports each kind's earliest time separately, so a worker can sleep on
 * the right clock.
 */
#include <stdlib.h>
#include <string.h>

#include "store/messages.h"
#include "store/store_int.h"
#include "util/log.h"
#include "util/util.h"

enum {
    SL_CLAIM = 0,
    SL_SENT,
    SL_FAILED,
    SL_REQUEUE,
    SL_NEXT,
    SL_REDRIVE,
    SL_REQUEUE_ONE,
    SL_DEAD_COUNT,
};



int store_outbox_claim(struct store *s, const char *channel, int64_t engine_now, int64_t wall_now,
                       struct outbox_msg *out, int max)
{
    if (max <= 0)
        return 0;
    sqlite3_stmt *st = store__stmt(
        s, SL_CLAIM,
        "UPDATE messages SET status = 'sending', attempts = attempts + 1, updated_at = ?4 "
        "WHERE seq IN (SELECT seq FROM messages WHERE channel = ?1 "
        "AND status IN ('scheduled', 'retrying') AND send_at <= ?2 AND next_attempt_at <= ?3 "
        "ORDER BY send_at, seq LIMIT ?5) RETURNING " STORE__MSG_COLUMNS);
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, channel);
    sqlite3_bind_int64(st, 2, engine_now);
    sqlite3_bind_int64(st, 3, wall_now);
    sqlite3_bind_int64(st, 4, wall_now);
    sqlite3_bind_int(st, 5, max);
    /* RETURNING yields rows in no particular order; keep seq to put them in due order. */
    int64_t *seq = xmalloc((size_t)max * sizeof *seq);
    int n = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == max)
            continue; /* cannot happen (LIMIT), but never write past out[] */
        store__row_to_msg(st, &out[n]);
        seq[n] = sqlite3_column_int64(st, 22);
        n++;
    }
    int rc = step == SQLITE_DONE ? n : FW_EDB;
    if (rc < 0) {
        log_error("store: claiming %s messages: %s", channel, sqlite3_errmsg(s->db));
        for (int i = 0; i < n; i++)
            outbox_msg_cleanup(&out[i]);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    /* Insertion sort by (send_at, seq): max is small. */
    for (int i = 1; rc > 0 && i < n; i++) {
        for (int j = i; j > 0; j--) {
            struct outbox_msg *a = &out[j - 1], *b = &out[j];
            if (a->send_at < b->send_at || (a->send_at == b->send_at && seq[j - 1] < seq[j]))
                break;
            struct outbox_msg tm = *a;
            *a = *b;
            *b = tm;
            int64_t ts = seq[j - 1];
            seq[j - 1] = seq[j];
            seq[j] = ts;
        }
    }
    free(seq);
    return rc;
}

/* 0 when the compare-and-set changed the row, FW_ESTATE when it was not `sending`. */
static int cas(struct store *s, int rc)
{
    if (rc)
        return rc;
    return sqlite3_changes(s->db) ? 0 : FW_ESTATE;
}

int store_outbox_sent(struct store *s, const char *id, int64_t wall_now, const char *status)
{
    if (!status || (strcmp(status, "sent") && strcmp(status, "stored")))
        return FW_EINVAL;
    /*
     * `stored` means no attempt was made (no connector is configured), so
     * the claim's attempt is given back and sent_at stays unset.
     */
    sqlite3_stmt *st = store__stmt(
        s, SL_SENT,
        "UPDATE messages SET status = ?3, "
        "sent_at = CASE WHEN ?3 = 'sent' THEN ?2 ELSE sent_at END, "
        "attempts = CASE WHEN ?3 = 'stored' THEN max(attempts - 1, 0) ELSE attempts END, "
        "last_error = NULL, next_attempt_at = 0, updated_at = ?2 "
        "WHERE id = ?1 AND status = 'sending'");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, wall_now);
    store__bind_text(st, 3, status);
    return cas(s, store__run(s, st));
}

int store_outbox_failed(struct store *s, const char *id, const char *error, int64_t retry_at,
                        const char *gave_up, int64_t failed_at, int64_t wall_now)
{
    /* next_attempt_at > 0 marks a row that waits on the retry clock (see the top). */
    sqlite3_stmt *st = store__stmt(
        s, SL_FAILED,
        "UPDATE messages SET status = CASE WHEN ?4 IS NOT NULL THEN 'dead' ELSE 'retrying' END, "
        "last_error = ?2, next_attempt_at = CASE WHEN ?4 IS NOT NULL THEN 0 ELSE max(?3, 1) END, "
        "gave_up = ?4, "
        "first_failed_at = CASE WHEN first_failed_at = 0 THEN ?6 ELSE first_failed_at END, "
        "updated_at = ?5 WHERE id = ?1 AND status = 'sending'");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    store__bind_text(st, 2, error);
    sqlite3_bind_int64(st, 3, retry_at);
    store__bind_text(st, 4, gave_up);
    sqlite3_bind_int64(st, 5, wall_now);
    sqlite3_bind_int64(st, 6, failed_at);
    return cas(s, store__run(s, st));
}

int store_outbox_redrive(struct store *s, const struct redrive_filter *f, int64_t wall_now)
{
    /* The channel list travels as one JSON array, so one prepared statement serves any filter. */
    struct buf chans;
    buf_init(&chans, 0);
    if (f->channels) {
        buf_putc(&chans, '[');
        for (const char *const *c = f->channels; *c; c++) {
            if (c != f->channels)
                buf_putc(&chans, ',');
            buf_json_str(&chans, *c, strlen(*c));
        }
        buf_putc(&chans, ']');
    }
    sqlite3_stmt *st = store__stmt(
        s, SL_REDRIVE,
        "UPDATE messages SET status = 'retrying', attempts = 0, next_attempt_at = 0, "
        "first_failed_at = 0, gave_up = NULL, updated_at = ?1 "
        "WHERE status = 'dead' "
        "AND (?2 IS NULL OR channel IN (SELECT value FROM json_each(?2))) "
        "AND (?3 = 0 OR gave_up = 'expired') AND (?4 = 0 OR updated_at >= ?4) "
        "AND (?5 = 0 OR updated_at < ?5)");
    if (!st) {
        buf_cleanup(&chans);
        return FW_EDB;
    }
    sqlite3_bind_int64(st, 1, wall_now);
    if (f->channels)
        sqlite3_bind_text(st, 2, chans.data, (int)chans.len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int(st, 3, f->expired_only ? 1 : 0);
    sqlite3_bind_int64(st, 4, f->since);
    sqlite3_bind_int64(st, 5, f->until);
    int rc = store__run(s, st);
    buf_cleanup(&chans);
    return rc ? rc : sqlite3_changes(s->db);
}

int store_outbox_requeue(struct store *s, int64_t wall_now)
{
    sqlite3_stmt *st = store__stmt(s, SL_REQUEUE,
                                   "UPDATE messages SET status = 'retrying', next_attempt_at = 0, "
                                   "updated_at = ?1 WHERE status = 'sending'");
    if (!st)
        return FW_EDB;
    sqlite3_bind_int64(st, 1, wall_now);
    int rc = store__run(s, st);
    return rc ? rc : sqlite3_changes(s->db);
}

int store_outbox_requeue_one(struct store *s, const char *id, int64_t wall_now)
{
    sqlite3_stmt *st = store__stmt(s, SL_REQUEUE_ONE,
                                   "UPDATE messages SET status = 'retrying', next_attempt_at = 0, "
                                   "updated_at = ?2 WHERE id = ?1 AND status = 'sending'");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, wall_now);
    return cas(s, store__run(s, st));
}

int store_outbox_next(struct store *s, const char *channel, int64_t *engine_at, int64_t *wall_at)
{
    *engine_at = *wall_at = INT64_MAX;
    sqlite3_stmt *st = store__stmt(
        s, SL_NEXT,
        "SELECT min(CASE WHEN next_attempt_at = 0 THEN send_at END), "
        "min(CASE WHEN next_attempt_at > 0 THEN next_attempt_at END) "
        "FROM messages WHERE channel = ?1 AND status IN ('scheduled', 'retrying')");
    if (!st)
        return FW_EDB;
    store__bind_text(st, 1, channel);
    int rc = 0, step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (sqlite3_column_type(st, 0) != SQLITE_NULL)
            *engine_at = sqlite3_column_int64(st, 0);
        if (sqlite3_column_type(st, 1) != SQLITE_NULL)
            *wall_at = sqlite3_column_int64(st, 1);
    } else {
        log_error("store: next due %s message: %s", channel, sqlite3_errmsg(s->db));
        rc = FW_EDB;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int store_outbox_expired_count(struct store *s, const char *const *channels)
{
    struct buf chans;
    buf_init(&chans, 0);
    buf_putc(&chans, '[');
    for (const char *const *c = channels; *c; c++) {
        if (c != channels)
            buf_putc(&chans, ',');
        buf_json_str(&chans, *c, strlen(*c));
    }
    buf_putc(&chans, ']');
    sqlite3_stmt *st = store__stmt(s, SL_DEAD_COUNT,
                                   "SELECT count(*) FROM messages WHERE status = 'dead' "
                                   "AND gave_up = 'expired' "
                                   "AND channel IN (SELECT value FROM json_each(?1))");
    if (!st) {
        buf_cleanup(&chans);
        return FW_EDB;
    }
    sqlite3_bind_text(st, 1, chans.data, (int)chans.len, SQLITE_TRANSIENT);
    int step = sqlite3_step(st), n = step == SQLITE_ROW ? sqlite3_column_int(st, 0) : FW_EDB;
    if (step != SQLITE_ROW)
        log_error("store: counting dead letters: %s", sqlite3_errmsg(s->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    buf_cleanup(&chans);
    return n;
}
