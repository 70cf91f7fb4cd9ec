/*
 * ingest.h -- CloudEvents 1.0 structured-mode JSON in, validated events out.
 *
 * A body is one JSON object, a JSON array of objects, or NDJSON (one object
 * per line; blank lines ignored).  Each event must have specversion "1.0",
 * a non-empty string id, type and source-less is allowed (source optional,
 * a string when present), time (RFC 3339 with an offset), subject (string,
 * required unless the type is global) and data (an object; optional, an
 * empty object when absent).  Unknown top-level attributes are kept (CloudEvents
 * extensions) when they are strings, numbers or booleans, per the spec.
 * Case actions and the engagement vocabulary (usage.reported,
 * feature.used, onboarding.step_completed, subscription.changed,
 * sentiment.scored) have their data fields checked too (docs/events.md).
 *
 * Batch rule: a batch is all or nothing.  If any event is invalid, every
 * invalid event is reported with its position and nothing is returned for
 * storage.  The caller writes a valid batch in one transaction.
 */
#ifndef FW_INGEST_H
#define FW_INGEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct event {
    const char *id;      /* borrowed from json */
    const char *type;    /* borrowed from json */
    const char *subject; /* borrowed; NULL for a global event */
    const char *source;  /* borrowed; NULL when absent */
    int64_t time;        /* ms since the epoch, UTC */
    json_t *data;        /* borrowed: always an object */
    json_t *json;        /* owned reference: the whole event object */
};

struct ingest_limits {
    size_t max_body;   /* bytes in one body */
    size_t max_events; /* events in one body */
    size_t max_string; /* bytes in any one string value */
    size_t max_depth;  /* nesting depth of data */
    size_t max_members; /* object members and array items in one event, all levels (0: no limit) */
    size_t max_data;    /* bytes of an event's data as compact JSON (0: no limit) */
    int64_t time_min;   /* the earliest event time accepted (FW_TIME_NONE: no bound) */
    int64_t time_max;   /* the latest event time accepted (FW_TIME_NONE: no bound) */
    const char *time_max_why; /* what time_max is, for the message ("the server clock plus
                                 event_time_skew"); NULL: nothing said */
};

/*
 * The documented defaults: 4 MiB body, 10,000 events, 8 KiB strings, depth
 * 16, 1,000 members, 64 KiB of data, times from 2000-01-01T00:00:00Z
 * (INGEST_TIME_MIN) up to, not including, 9999-01-01T00:00:00Z
 * (INGEST_TIME_CEILING: the last year is left free so that every time
 * computed from an event still prints as RFC 3339).  The server narrows
 * time_max to its clock plus a skew.
 */
#define INGEST_TIME_MIN 946684800000LL       /* 2000-01-01T00:00:00Z */
#define INGEST_TIME_CEILING 253370764800000LL /* 9999-01-01T00:00:00Z */
extern const struct ingest_limits ingest_default_limits;
/*
 * The same without a time window, for events forewarn makes itself (case
 * actions, delivery outcomes, known issues), dated by its own clock: 1970
 * on a fresh virtual one.
 */
extern const struct ingest_limits ingest_own_limits;

/* At most this many errors are listed; one more entry then says "and N more errors". */
#define INGEST_MAX_ERRORS 100

/*
 * One rejected event.  For people, print "<where>: <field>: <msg>" (the
 * field part only when non-empty): msg does not repeat the field.
 */
struct ingest_error {
    size_t index;    /* 0-based array index, or 1-based NDJSON line; see `where` */
    char where[32];  /* "index 3", "line 4" or "body" */
    char field[64];  /* attribute at fault ("time", "data.status") or "" */
    char msg[192];   /* the reason, for people */
};

struct ingest_batch {
    struct event *events; /* owned array */
    size_t n;
    struct ingest_error *errors; /* owned array */
    size_t nerrors;
};

/*
 * Is `type` a global event type (no subject required)?  Supplied by the
 * caller from the loaded rule packs.  May be NULL: nothing is global.
 */
struct ingest_globals {
    void *ctx;
    int (*is_global)(void *ctx, const char *type);
    /*
     * May be NULL (no vocabulary): whether `name` is in the loaded packs'
     * vocabulary `what` ("metric", "step"): 1 declared, 0 not, -1 when no
     * pack declares one (then any name is accepted).  rules_declared.
     */
    int (*declared)(void *ctx, const char *what, const char *name);
};

/*
 * Parse and validate a body.  Returns 0 when every event is valid (batch->n
 * events), FW_EPARSE when any is not (batch->errors lists each one; the
 * events array is empty), FW_ETOOBIG when the body or an event count exceeds
 * a limit (one error).  Always call ingest_batch_cleanup afterwards.
 *
 * The shape is detected: a first non-space '[' is an array; otherwise one
 * object, or NDJSON when more content follows the first value (CRLF line
 * ends and blank lines are fine).  A string or data depth over its limit
 * is an error of that event (FW_EPARSE).  Duplicate keys within an object
 * are malformed JSON; duplicate event ids are not an error here.  lim may be
 * NULL (defaults); batch need not be initialised.
 */
int ingest_parse(const char *body, size_t len, const struct ingest_limits *lim,
                 const struct ingest_globals *globals, struct ingest_batch *batch);

/*
 * Validate one already-parsed object (used by replay and rules test).  On
 * success *out holds a new reference to obj (the caller keeps its own) and,
 * when obj has no "data", an empty object is added to obj.  On failure *out
 * is zeroed and *err (may be NULL) gets field and msg; err->where is left
 * empty for the caller, who knows the position.  lim may be NULL.
 */
int ingest_validate(json_t *obj, const struct ingest_limits *lim,
                    const struct ingest_globals *globals, struct event *out,
                    struct ingest_error *err);

/*
 * The batch's event indexes in event-time order, ties in body order: the
 * order a batch is history in (docs/events.md, "Event time").  A new array
 * of batch->n entries; the caller frees it.
 */
size_t *ingest_time_order(const struct ingest_batch *batch);

/* Release the events' references and the arrays. */
void ingest_batch_cleanup(struct ingest_batch *batch);
void event_cleanup(struct event *e);

#endif
