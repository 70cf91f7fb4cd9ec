/*
 * store/cases.h -- cases and their history in SQLite.
 *
 * The cases module (src/cases) decides; this keeps what it decided, in
 * the same transaction as the journal rows that caused it: the case
 * document after each change (one row per case, replaced), and one history
 * row per change (the replay-contract line), append-only.  Recovery
 * re-derives everything quietly and writes nothing (see pipeline.c).
 */
#ifndef FW_STORE_CASES_H
#define FW_STORE_CASES_H

#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

/* Insert or replace the document of a case. */
int store_case_save(struct store *s, const char *id, const char *customer, int open,
                    const char *doc, int64_t at);
/* Append one history entry (event name and its JSON line). */
int store_case_log(struct store *s, const char *id, int64_t at, const char *event,
                   const char *json);
/* The case never existed (a late event withdrew its only detection): row and history go. */
int store_case_delete(struct store *s, const char *id);

/* The document of a case into out: 0 or FW_ENOTFOUND. */
int store_case_get(struct store *s, const char *id, struct buf *out);
/* The history lines of a case, oldest first, as a JSON array. */
int store_case_history_json(struct store *s, const char *id, struct buf *out);

struct case_query {
    const char *state;    /* "open", "resolved" or NULL */
    const char *customer; /* NULL: any */
    const char *severity; /* NULL: any */
    const char *assignee; /* NULL: any; "" unassigned */
    int64_t after;        /* cursor (row sequence) */
    int limit;
};
/* {"cases":[doc...],"next_cursor":n|null} */
int store_cases_json(struct store *s, const struct case_query *q, struct buf *out);

extern const char store__cases_schema[];

#endif
