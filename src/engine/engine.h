/*
 * engine.h -- customer journey state, rule evaluation, detections and
 * incidents, driven by events and by a timer wheel.
 *
 * The engine is single-threaded by contract: one thread owns it (the
 * partition owner of DESIGN.md section 5) and calls engine_advance and
 * engine_apply; anything else that wants to read it must hold the lock its
 * owner provides.  Time never goes backwards: engine_advance(t) first fires
 * every wake-up due at or before t, in due order, each evaluated at its
 * own due time, then moves the clock to t.  An event is then applied at the
 * engine's now.  Output (detections, incidents) goes to a sink as it
 * happens, in time order, so replaying the same input gives the same output
 * byte for byte.
 */
#ifndef FW_ENGINE_H
#define FW_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tw.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "util/buf.h"

struct engine; /* opaque */

/* A detection transition: an episode of (signal, customer) fired or resolved. */
struct detection {
    const struct rule_signal *signal;
    const char *customer; /* borrowed; valid during the sink call */
    int firing;           /* 1 fired, 0 resolved */
    int64_t at;           /* when the transition happened (engine time) */
    int64_t fired_at;     /* the episode's start (== at when firing); `at` before the engine's
                             clock: found while catching up with late events (engine_apply) */
};

/* An incident change: opened, a customer added, or resolved. */
struct incident {
    uint64_t id; /* 1, 2, ... in opening order */
    const struct rule_signal *signal;
    const char *update;         /* "opened", "customer_added", "resolved" */
    const char *const *customers; /* affected customers, in order of firing */
    size_t ncustomers;
    const char *added;          /* "customer_added": the newcomer; else NULL */
    int64_t opened_at;
    int64_t at;                 /* time of this change */
    const char *factor_key;     /* common factor, or NULL when none stands out */
    const char *factor_value;
    double factor_share;        /* share of affected customers with the value */
    double factor_baseline;     /* share of all customers with the value */
};

/*
 * Where output goes.  Callbacks may be NULL.  They may read the engine
 * (engine_customer_json, engine_count) and arm or cancel engine timers, but
 * must not apply events or advance the clock.
 */
struct engine_sink {
    void *ctx;
    void (*detection)(void *ctx, const struct detection *d);
    void (*incident)(void *ctx, const struct incident *i);
    /*
     * One evaluation pass is over: after an event was applied (ev != NULL;
     * customer is its subject, NULL for a global event) or after a
     * customer's wake-up (ev == NULL).  Detections of one pass "fire together".
     */
    void (*step)(void *ctx, const struct event *ev, const char *customer);
    /*
     * A transition reported earlier never happened: an event dated before
     * it arrived since, and the journey as of that event does not reach it
     * (see engine_apply).  d is the transition as it was reported.
     */
    void (*retract)(void *ctx, const struct detection *d);
};

/*
 * A timer on the engine clock for components downstream of the engine
 * (escalation ladders).  Embed it, set fire, arm it; it fires in due order
 * with the engine's own wake-ups, with the clock at its due time.
 */
struct engine_timer {
    struct tw_entry _tw; /* first: the engine tells its own timers apart by fire == NULL */
    void (*fire)(struct engine_timer *t, int64_t due);
};

void engine_timer_arm(struct engine *e, struct engine_timer *t, int64_t due);
void engine_timer_cancel(struct engine *e, struct engine_timer *t);

/*
 * The health score's weights and inputs (docs/engagement.md, config key
 * `health`).  Weights are shares: they are scaled to sum to 100.  Strings
 * are borrowed and must outlive the engine; NULL picks the default.
 */
struct engine_health {
    double usage, adoption, contacts, sentiment, payments, detections;
    const char *metric;        /* the usage metric (default: the first declared) */
    const char *contact_class; /* the class counted as contacts (default "touch") */
    const char *sentiment_key; /* state key with a score in -1..1 (default "sentiment.score") */
};

/* The defaults: 30, 20, 15, 15, 10, 10. */
extern const struct engine_health engine_health_default;
/* Use other weights (copied) from now on; a health check is recomputed at its next evaluation. */
void engine_set_health(struct engine *e, const struct engine_health *h);

/*
 * A churn model scoring customers (the config key churn_model:,
 * docs/model.md "Scoring customers live"; serve/churn.h builds it).  The
 * engine evaluates exprs[i] against the customer (no triggering event) and
 * hands the n values to score.  Everything is borrowed and must outlive
 * the engine.
 */
struct engine_churn {
    size_t n;                   /* model feature columns */
    const char *const *columns; /* n column names */
    struct expr *const *exprs;  /* n compiled expressions, one per column */
    void *ctx;
    /*
     * Score one customer from its feature values (vals[i] for column i,
     * borrowed during the call): 0 and *score in 0..1, or non-zero when it
     * cannot be computed (then churn_risk is null).  Appends to cells the
     * text the model saw for each column, each followed by a NUL.  Called
     * on the engine's thread, or under the lock that guards the engine.
     */
    int (*score)(void *ctx, const struct value *vals, size_t n, double *score,
                 struct buf *cells);
    const char *file;    /* the model file, for the queue's basis */
    const char *trained; /* when it was trained (RFC 3339), or NULL */
    int reads_health;    /* some expression reads health (which reads detections) */
};

/*
 * Score customers with a churn model from now on (copied; NULL: none, and
 * churn_risk is null).  Call before the first event.
 */
void engine_set_churn(struct engine *e, const struct engine_churn *c);

/*
 * The customer's churn score now (0..1) in *score: 0; FW_ENOTFOUND when no
 * churn model is configured or the customer is unknown; FW_EIO when the
 * model could not score.  A score is computed when first asked for and
 * kept until the customer's next event, detection change or global event,
 * or until one of its features can change with the clock (the next UTC
 * midnight for a value moving with the clock, such as age()): the cost of
 * the model is paid only when a rule or the queue reads it.  *model
 * (may be NULL) receives the churn model's description (borrowed); *cells
 * (may be NULL) the text the model saw for each column, model->n strings
 * one after the other (valid until the engine next changes).
 */
int engine_churn(const struct engine *e, const char *customer, double *score,
                 const struct engine_churn **model, const char **cells);

/*
 * A partition's report (DESIGN.md section 5, "Partitions").  With a trace
 * set, the engine keeps no incidents of its own: what would move them goes
 * to the trace, together with what places its work among the work of
 * other partitions, so that one merger can feed a single set of incidents
 * and print in the order one engine would have.  Customers are named by
 * their index in this engine (0, 1, ... first seen first).  Callbacks run
 * on the engine's thread; strings handed over as char * are the callee's.
 */
struct engine_trace {
    void *ctx;
    /* A customer's pass starts: its wake-up due at `due`, or (due FW_TIME_NONE) its turn
       in a global event's pass over every customer, in index order. */
    void (*begin)(void *ctx, uint32_t customer, int64_t due);
    /* Its wake-up was armed (behind any other armed for the same millisecond). */
    void (*armed)(void *ctx, uint32_t customer);
    /* A new customer. */
    void (*added)(void *ctx, uint32_t customer);
    /* A systemic signal fired (values: the signal's factor values as text, nfactors of them,
       in a new array) or resolved for a customer (borrowed key), at engine time `now`. */
    void (*fired)(void *ctx, size_t signal, const char *customer, char **values, int64_t now);
    void (*resolved)(void *ctx, size_t signal, const char *customer, int64_t now);
    /* A customer's value of the k-th factor key of all signals moved from `was` to `now`
       (either NULL: none): the baseline shares follow. */
    void (*factor)(void *ctx, size_t k, char *was, char *now);
    /* A downstream timer (engine_timer) was armed, or is about to fire (its due time): the
       timer is named by its address (may be NULL: downstream timers are not traced). */
    void (*timer_armed)(void *ctx, const struct engine_timer *t);
    void (*timer_begin)(void *ctx, const struct engine_timer *t, int64_t due);
};

/* Report to t (copied) instead of keeping incidents: before the first event. */
void engine_set_trace(struct engine *e, const struct engine_trace *t);

/* Counters for /metrics. */
struct engine_stats {
    uint64_t events;        /* events applied */
    uint64_t evaluations;   /* condition evaluations */
    uint64_t wakeups;       /* timer wake-ups processed */
    uint64_t *fired;        /* per signal index: episodes fired */
    uint64_t *resolved;     /* per signal index: episodes resolved */
    uint64_t incidents;     /* incidents opened */
    uint64_t late;          /* events applied at their own time, before the clock */
    uint64_t retracted;     /* transitions withdrawn by a late event */
    uint64_t churn_scores;  /* churn model evaluations (cached scores not counted) */
};

/*
 * A new engine over a finished rule set (which must outlive it; the engine
 * interns new state keys and event types into it) with its clock at `now`.
 */
struct engine *engine_new(struct rules *rules, int64_t now, const struct engine_sink *sink);
void engine_free(struct engine *e);

/* Fire every wake-up due at or before t, then set the clock to t (if later). */
void engine_advance(struct engine *e, int64_t t);
/*
 * Prepare to apply events at time t: fire every wake-up due strictly
 * before t, then set the clock to t.  Wake-ups due exactly at t wait until
 * the events at t are applied, because a condition holds for the instant
 * just after now: an event at t decides what is true after t, so a
 * threshold crossed at the very instant an event ends the problem gives no
 * episode at all, not one of zero length.
 */
void engine_prepare(struct engine *e, int64_t t);
/*
 * Apply one validated event: update state, evaluate the signals it can
 * affect, emit transitions, re-arm wake-ups.
 *
 * An event dated at or after the clock is applied at the clock.  A
 * customer's event dated before the clock (late: a batch of history, a
 * producer catching up) is applied at its own time when the customer's
 * journey has no event after that time: the wake-up transitions the
 * customer had after it are undone, the event is applied as of its time,
 * and the customer is brought back to the clock, firing its wake-ups at
 * their due instants, as replay would have.  What differs from what was
 * reported is reported: new transitions (late, with their own times) and
 * retractions of those that no longer happen.  An event dated before the
 * customer's latest event (out of order) is applied at the clock, with its
 * own time for state, windows and last().  Global events always apply at
 * the clock.
 */
void engine_apply(struct engine *e, const struct event *ev);

int64_t engine_now(const struct engine *e);
/* Earliest pending wake-up, or INT64_MAX. */
int64_t engine_next_wakeup(const struct engine *e);
size_t engine_pending_timers(const struct engine *e);
size_t engine_customer_count(const struct engine *e);
const struct engine_stats *engine_stats(const struct engine *e);
/* Approximate heap bytes held for customer state (for the memory benchmark). */
size_t engine_state_bytes(const struct engine *e);
/* Where the engine's memory sits: its slab (customers and their blocks: bytes in use, on free
   lists waiting for a block of their size, and in chunks held) and its customers map. */
struct engine_memory {
    size_t slab_used, slab_free, slab_chunks, map;
};
void engine_memory(const struct engine *e, struct engine_memory *out);

/*
 * Append a JSON object describing a customer: state keys with values and
 * since-times, last event time per type, open entities, active detections.
 * Returns FW_ENOTFOUND when the customer is unknown.
 */
int engine_customer_json(const struct engine *e, const char *key, struct buf *out);

/*
 * Events of a class for a customer in (now - window, now]; 0 when the
 * customer or class is unknown.  Only as much history as the rules count
 * over is kept (the longest count() window of the class).
 */
int64_t engine_count(const struct engine *e, const char *customer, const char *cls, int64_t window);
/*
 * The customer's health score now (0-100, docs/engagement.md) in *score, and
 * in *weakest the name of the component that lost the most points ("usage",
 * ...; NULL when none lost any): 0, or FW_ENOTFOUND when no loaded pack has
 * `engagement:` (no health score) or the customer is unknown.
 */
int engine_health(const struct engine *e, const char *customer, double *score,
                  const char **weakest);
/*
 * The same view as engine_customer_json, as a new jansson object (the caller
 * owns the reference): for in-process readers such as the orchestrator, with
 * no text round trip.  NULL when the customer is unknown.  Times are RFC 3339
 * strings, as in the JSON.
 */
json_t *engine_customer_object(const struct engine *e, const char *key);
/*
 * A narrower view for the orchestrator, built once per decision and so
 * kept cheap: {"state": {"k": v}, "last_event": {"type": ms}, "open":
 * [{"entity", "id"}], "active_detections": [{"signal": id}]}.  State values
 * are as in engine_customer_object without their "since" wrapper; last
 * events are integers (ms since the epoch), not text.  The caller owns the
 * reference; NULL when the customer is unknown.
 */
json_t *engine_customer_view(const struct engine *e, const char *key);
/* The global state as a new object {"outage.zips": [...], ...}. */
json_t *engine_global_object(const struct engine *e);

/* Append the global state as one JSON object {"outage.zips": [...], ...}. */
int engine_global_json(const struct engine *e, struct buf *out);
/* The rules the engine runs. */
const struct rules *engine_rules(const struct engine *e);
/*
 * Compile a condition against the engine's rules (rules_compile: on the
 * engine's thread only).  The caller owns *out (expr_free).
 */
int engine_compile(struct engine *e, const char *src, size_t len, struct expr **out,
                   struct expr_error *err);
/*
 * A compiled condition for one customer at the engine's now: 1 true, 0
 * false, null or unknown customer.  *next (may be NULL) as expr_test.
 */
int engine_test(struct engine *e, const char *customer, const struct expr *x, int64_t *next);
/* The key of the i-th customer (0 .. engine_customer_count - 1, first seen first), or NULL. */
const char *engine_customer_key(const struct engine *e, size_t i);
/* The index of a customer (0, 1, ... first seen first), or SIZE_MAX when unknown. */
size_t engine_customer_index(const struct engine *e, const char *customer);

/*
 * JSON lines for the replay contract (no trailing newline).  An incident's
 * "customers" lists every affected customer when it opens or resolves; a
 * "customer_added" update lists only the newcomer (with "customer_count"
 * the total), so a large incident costs output proportional to its size,
 * not to its square.  full != 0 always lists everyone (the stored record).
 */
void detection_json(const struct detection *d, struct buf *out);
void incident_json(const struct incident *i, int full, struct buf *out);

/*
 * Snapshots (snap.c): append everything the engine holds -- customers,
 * windows, episodes, late-event undo lists, engagement rollups, the global
 * state and its history, incidents, counters, the clock and the wake-ups --
 * to out, in the encoding of util/wire.h.  engine_restore loads it into a
 * fresh engine (engine_new over rules built as the writer's were, before
 * any event or timer): 0, or FW_EPARSE with the reason in why (n bytes)
 * when the bytes are malformed or were written under other rules; the
 * engine is then half-loaded and must be freed.  Interns into the rules
 * the names the snapshot's state uses.
 *
 * Timers of components downstream (orchestrate, cases) are written with
 * engine_timer_write after engine_snapshot and before engine_snapshot_end:
 * each as its due time and its place among all armed timers, so that two
 * timers due at the same millisecond pop in the restored engine in the
 * order they would have in the original (the wheel pops ties in arming
 * order).  engine_timer_read, after engine_restore, reads one back and arms
 * it; engine_restore_end(e, 1) then re-arms every timer of the restore in
 * the original order (0: forgets them, when the restore failed and their
 * owners go; call it before freeing them).
 */
struct wire_rd;
void engine_snapshot(struct engine *e, struct buf *out);
void engine_snapshot_end(struct engine *e);
int engine_restore(struct engine *e, struct wire_rd *in, char *why, size_t n);
void engine_timer_write(const struct engine *e, const struct engine_timer *t, struct buf *out);
/* The due time read (FW_TIME_NONE: not armed); a malformed input sets in->err. */
int64_t engine_timer_read(struct engine *e, struct engine_timer *t, struct wire_rd *in);
void engine_restore_end(struct engine *e, int ok);

#endif
