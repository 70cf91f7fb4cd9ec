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
    struct store__named *named;          /* statements from files' own tables (store__named) */
    int readonly;
    int in_txn;     /* store_begin's transaction is meant to be open (see commit_hook) */
    int committing; /* store_commit is committing it */
};

/* One statement prepared from a file's own table, keyed by its SQL text's address. */
struct store__named {
    const char *sql;
    sqlite3_stmt *st;
    struct store__named *next;
};

/*
 * The statement for sql, prepared on first use on this connection and kept
 * until store_close.  sql must be a string with static storage (an entry
 * of the calling file's own name -> SQL table): the cache is keyed by its
 * address, so files need no hand-numbered slots.  NULL on a prepare error
 * (logged).  The caller resets the statement after use.
 */
sqlite3_stmt *store__named(struct store *s, const char *sql);

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
    "meta, sent_at, read_at, updated_at, seq, first_failed_at, gave_up"

struct outbox_msg;
/* Fill *m (owned copies) from a row of STORE__MSG_COLUMNS. */
void store__row_to_msg(sqlite3_stmt *st, struct outbox_msg *m);

/* Migration 4, the tables of store/auth.c (users, tokens, audit), kept beside their SQL. */
extern const char store__auth_schema[];

/*
 * One page of a list: step st (bound with limit + 1 as its LIMIT, sequence
 * in column seq_col), write `{"<name>":[row,row...],"next_cursor":...}`,
 * each row by row(st, out, first, ctx).  next_cursor is the last row's
 * sequence when more rows follow (quoted when quoted_cursor), else null.
 * Resets st and clears its bindings.  0 or FW_EDB.
 */
struct buf;
int store__page(sqlite3_stmt *st, int limit, int seq_col, const char *name, int quoted_cursor,
                void (*row)(sqlite3_stmt *st, struct buf *out, int first, void *ctx), void *ctx,
                struct buf *out);

/* A row for store__page: column 1 is the whole JSON text of the row. */
void store__text_row(sqlite3_stmt *st, struct buf *out, int first, void *ctx);

/*
 * Tests only: when FOREWARN_TEST_IO_FAULTS names a control file, register
 * the fault-injecting VFS (faultvfs.c) as the default, once per process.
 * Called before every sqlite3_open_v2 of the module; does nothing otherwise.
 */
void store__fault_install(void);

/* Bind a string or NULL. */
void store__bind_text(sqlite3_stmt *st, int i, const char *v);

#endif
