/*
 * store_int.h -- private to the store module: the connection record, and
 * lazily prepared statements for the module's other files (outbox.c,
 * comms.c), so each file keeps its SQL next to its code.
 */
#ifndef FW_STORE_INT_H
#define FW_STORE_INT_H

#include <sqlite3.h>

#define STORE__EXT_SLOTS 64

struct store {
    sqlite3 *db;
    sqlite3_stmt **st; /* store.c's statements, prepared at open */
    sqlite3_stmt *ext[STORE__EXT_SLOTS]; /* other files' statements, prepared on first use */
    int readonly;
};

/*
 * The statement for `slot` (0..STORE__EXT_SLOTS-1, each file owns a range:
 * outbox.c 0-31, comms.c 32-63), prepared from sql on first use.  NULL on
 * a prepare error (logged).  The statement is reset by the caller after use.
 */
sqlite3_stmt *store__stmt(struct store *s, int slot, const char *sql);
/* Step a no-row statement, reset it and clear its bindings: 0 or FW_EDB (logged). */
int store__run(struct store *s, sqlite3_stmt *st);
/* The message columns in the order store__row_to_msg reads them (seq last). */
#define STORE__MSG_COLUMNS                                                                         \
    "id, key, customer, audience, channel, status, reason, created_at, send_at, "                  \
    "next_attempt_at, attempts, last_error, recipient, subject, body, html, signals, explain, "    \
    "meta, sent_at, read_at, updated_at, seq"

struct outbox_msg;
/* Fill *m (owned copies) from a row of STORE__MSG_COLUMNS. */
void store__row_to_msg(sqlite3_stmt *st, struct outbox_msg *m);

/* Bind a string or NULL. */
void store__bind_text(sqlite3_stmt *st, int i, const char *v);

#endif
