/*
 * store.h -- SQLite persistence; the only module that speaks SQL.
 *
 * One `struct store` is one connection.  The engine thread owns the single
 * writer; HTTP threads read through their own read-only connections (WAL
 * lets readers run beside the writer).  The journal (events) is the source
 * of truth: detections and incidents are derived from it and written with
 * idempotent statements, so re-deriving them after a crash never duplicates
 * a row.
 */
#ifndef FW_STORE_H
#define FW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "ingest/ingest.h"
#include "util/buf.h"

struct store;

/*
 * Open (creating and migrating if needed) the database at path.  A
 * read-only store never writes and never migrates.  On failure returns
 * FW_EDB with a reason in err.
 */
int store_open(const char *path, int readonly, struct store **out, char *err, size_t errlen);
void store_close(struct store *s);
/*
 * A thread with its own connection that checkpoints the WAL of the
 * database at path (see checkpoint.c).  Start it after the database
 * exists; stop it after the connections that use it are closed or detached.
 * On failure returns FW_EDB with a reason in err.
 */
struct store_checkpointer;
int store_checkpointer_start(const char *path, struct store_checkpointer **out, char *err,
                             size_t errlen);
void store_checkpointer_stop(struct store_checkpointer *c); /* NULL: nothing */
/*
 * Leave this connection's checkpoints to c: its commits only signal c once
 * the WAL passes 1000 pages.  c NULL: back to SQLite's autocheckpoint.
 */
void store_use_checkpointer(struct store *s, struct store_checkpointer *c);
/* Tests: hold c's checkpoints back (held 1) or let them run again (0). */
void store_checkpointer_hold(struct store_checkpointer *c, int held);
/* How many checkpoints c has run (for tests). */
unsigned long store_checkpointer_runs(struct store_checkpointer *c);

/* The last SQLite error text of this connection. */
const char *store_errmsg(struct store *s);

int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/*
 * Append an event to the journal unless its id is already there.
 * *duplicate is set to 1 when it was (nothing written).  body is the
 * event's JSON text as it will be journaled, or NULL to serialize ev->json
 * here (callers on other threads serialize ahead, off the writer's thread).
 */
int store_event_append(struct store *s, const struct event *ev, const char *body,
                       int64_t applied_at, int *duplicate);

/*
 * Is an event with ev's id in the journal, and is it the same event?  0
 * with *same set (1: equal as JSON values, whatever the order of members
 * and the spacing; 0: a different payload under the same id), FW_ENOTFOUND
 * when the id is new, FW_EDB.
 */
int store_event_same(struct store *s, const struct event *ev, int *same);

/* Called for each journal event in append order; a non-zero return stops the scan. */
typedef int (*store_event_fn)(void *ctx, const struct event *ev, int64_t applied_at);
/* Read the whole journal in append order (recovery). Events are freed after each call. */
int store_events_scan(struct store *s, store_event_fn fn, void *ctx);
size_t store_event_count(struct store *s);
/* The same for the rows after journal row `after` (seq; -1: all), as a snapshot needs. */
int store_events_scan_after(struct store *s, int64_t after, store_event_fn fn, void *ctx);
/* Rows after `after`, and in *last the journal's last seq (`after` when there are none). */
size_t store_event_count_after(struct store *s, int64_t after, int64_t *last);
/* Append the id of journal row `seq` to out: 0, FW_ENOTFOUND or FW_EDB. */
int store_event_id_at(struct store *s, int64_t seq, struct buf *out);

/* Record a detection transition; idempotent on (signal, customer, fired_at). */
int store_detection(struct store *s, const struct detection *d);
/*
 * Withdraw a transition recorded by store_detection (the engine's retract):
 * a firing is deleted, a resolution undone (the episode is firing again).
 */
int store_detection_retract(struct store *s, const struct detection *d);
/* Record an incident change (the incident's latest JSON); idempotent per id. */
int store_incident(struct store *s, const struct incident *i);

/* Key/value metadata (the virtual clock). Get returns FW_ENOTFOUND when absent. */
int store_meta_set(struct store *s, const char *key, const char *value);
int store_meta_get(struct store *s, const char *key, struct buf *out);

struct detection_query {
    const char *state;    /* "firing" | "resolved" | NULL */
    const char *signal;   /* NULL: any */
    const char *customer; /* NULL: any */
    const char *severity; /* NULL: any */
    int64_t from, to;     /* fired_at range [from, to); FW_TIME_NONE: open */
    int64_t after;        /* cursor: rows with seq > after */
    int limit;
};

/*
 * Append {"detections":[...],"next_cursor":"<n>"|null} to out.
 */
int store_detections_json(struct store *s, const struct detection_query *q, struct buf *out);
/* Append {"incidents":[...],"next_cursor":...}; state "open"/"resolved"/NULL. */
int store_incidents_json(struct store *s, const char *state, int64_t after, int limit,
                         struct buf *out);
/* Append a JSON array of a customer's most recent events, newest first. */
int store_timeline_json(struct store *s, const char *customer, int limit, struct buf *out);

#endif
