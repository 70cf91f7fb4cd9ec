/*
 * pipeline.h -- the server's engine thread: group commit of ingested
 * events, their evaluation, durable detections, wake-ups on the clock.
 *
 * HTTP threads validate a body, then hand the batch to the pipeline and
 * wait.  The engine thread takes every batch waiting at that moment, and in
 * ONE transaction appends the events to the journal (duplicates skipped),
 * applies them to the engine and records the detections and incidents they
 * cause; only after COMMIT returns are the waiting requests answered.  So an
 * acknowledged event is on disk, and many concurrent requests share one
 * fsync.  If a transaction fails the engine is rebuilt from the journal
 * (the same recovery as at start-up) and the requests get an error.
 *
 * Time: with the wall clock, an event is applied at the wall time of its
 * group (its `applied_at`, stored in the journal), and the thread sleeps
 * until the next wake-up is due.  With the virtual clock (tests) time moves
 * only with event time and POST /v1/admin/clock, like replay.  Recovery
 * replays the journal at the stored applied_at times, so the engine's state
 * after a restart equals the state before it, and detections re-derived
 * from it match the stored ones row for row.
 */
#ifndef FW_PIPELINE_H
#define FW_PIPELINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "cases/cases.h"
#include "comms/comms.h"
#include "delivery/delivery.h"
#include "engine/engine.h"
#include "orchestrate/orchestrate.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "store/store.h"

/* Evaluation latency histogram buckets (upper bounds, seconds). */
#define PIPELINE_LAT_BUCKETS 12
extern const double pipeline_lat_bounds[PIPELINE_LAT_BUCKETS];

struct pipeline_metrics {
    uint64_t accepted, duplicates, rejected; /* producers' events */
    uint64_t outcomes; /* delivery outcomes (message.sent, message.failed) applied */
    uint64_t commits, commit_failures;
    uint64_t lat_count[PIPELINE_LAT_BUCKETS + 1]; /* per bucket; last is +Inf */
    double lat_sum;                               /* seconds */
    uint64_t lat_n;
    uint64_t snapshots;      /* snapshots written since start */
    uint64_t snapshot_bytes; /* the last one's size */
    double snapshot_pause;   /* seconds the engine was held to serialise the last one */
    double snapshot_write;   /* seconds writing and syncing its file took */
};

struct pipeline;

/*
 * What a commit may have made claimable, for the dispatcher: the channels
 * that got new scheduled messages, the engine clock after it (due times
 * of messages already waiting are engine time), or `all` when anything may
 * have changed (a person's action on a message, a failed group).
 */
#define PIPELINE_MAX_CHANNELS 16
#define PIPELINE_MAX_CASES 16
struct pipeline_commit {
    int all;
    int64_t engine_now;
    size_t nchannels;
    char channels[PIPELINE_MAX_CHANNELS][24];
    /* For the console's live stream: the cases saved or withdrawn in the group. */
    size_t ncases;
    int cases_overflow; /* more than PIPELINE_MAX_CASES changed: say "any case" */
    char cases[PIPELINE_MAX_CASES][24];
    int messages;       /* a message was stored, or a delivery outcome applied, in the group */
};

struct pipeline_opts {
    int virtual_clock;
    const struct orch_config *orch;  /* NULL: detect only, decide no messages */
    const struct comms *templates;   /* required with orch */
    const struct delivery_config *delivery; /* which channels can send; NULL: all */
    const struct sla_config *sla;    /* SLA policies and calendars; NULL: the defaults */
    const struct case_weights *weights; /* priority weights; NULL: the defaults */
    const struct engine_health *health; /* health score weights; NULL: the defaults */
    const struct engine_churn *churn;   /* the churn model (churn_model:); NULL: none */
    const struct playbooks *playbooks;  /* playbooks for cases; NULL: none */
    const struct sentiment *sentiment;  /* scores customers' words for cases; NULL: none */
    size_t min_history; /* resolved cases a success figure needs; 0: the default (5) */
    /*
     * Snapshots (DESIGN.md, recovery): the file the engine's state is
     * written to (and `.prev` beside it, the one before), NULL for none;
     * how often while running (ms; 0: only at a clean stop); whether
     * start-up may load one (0: replay the whole journal); and the SHA-256
     * of the rules and configuration the state depends on (a snapshot
     * written under others is refused).
     */
    const char *snapshot_path;
    int64_t snapshot_every;
    int snapshot_load;
    unsigned char config_hash[32];
    /* After each group, committed or not, with what it may have made claimable. */
    void (*committed)(void *ctx, const struct pipeline_commit *c);
    void *committed_ctx;
};

/*
 * Open the engine over `rules` and recover it from the store's journal.
 * Returns 0 or an error with a reason logged and written to err (errlen
 * bytes, e.g. SQLite's "disk I/O error"); recovery's writes are one
 * transaction, rolled back on failure.  The store is owned by the
 * pipeline's thread from now on; opts' pointers must outlive the pipeline.
 */
int pipeline_start(struct pipeline **out, char *err, size_t errlen, struct rules *rules,
                   struct store *writer,
                   const struct pipeline_opts *opts);
/* Stop the thread (finishing queued work) and free everything but the store. */
void pipeline_stop(struct pipeline *p);

/* Per-event outcome of a submitted batch. */
enum ingest_outcome {
    OUTCOME_ACCEPTED,
    OUTCOME_DUPLICATE, /* the id was stored before with the same event: ignored */
    OUTCOME_CONFLICT,  /* the id was stored before with a different event: the batch refused */
};

/*
 * Append, apply and commit a validated batch; blocks until durable.
 * outcomes (may be NULL) receives batch->n entries.  bodies (may be NULL)
 * holds each event's JSON text for the journal, serialized by the caller so
 * that the engine thread does not.  Returns 0, or FW_EDB when the
 * transaction failed (nothing of the batch was kept).  A producer's batch
 * (bodies given) whose id was stored before with a different payload is
 * refused whole before anything of it is written: FW_EEXISTS, and those
 * events' outcomes say OUTCOME_CONFLICT (Stripe's idempotency rule: a key
 * reused with other content is the producer's bug, not a duplicate).
 */
int pipeline_ingest(struct pipeline *p, const struct ingest_batch *batch,
                    char *const *bodies, enum ingest_outcome *outcomes);

/*
 * Virtual clock only: advance to t, firing what falls due, durably.
 * FW_ESTATE without a virtual clock; FW_EINVAL when t is before now.
 */
int pipeline_set_clock(struct pipeline *p, int64_t t);
int pipeline_virtual(const struct pipeline *p);

/*
 * A person's action on a case (a validated `case.*` event, and its journal
 * text): on the engine thread, at the moment it would apply, it is checked
 * against the live cases (cases_check); refused, nothing is journaled and
 * FW_ENOTFOUND or FW_ESTATE is returned with the reason in why.  Accepted,
 * it is journaled and applied like any event, durably, before this returns;
 * case_id receives the case it acted on.
 */
int pipeline_act(struct pipeline *p, const struct event *ev, char *body, char *why,
                 size_t why_len, char case_id[24]);
/*
 * The known issues and maintenance as orch_known_json gives them (a new
 * array, the caller owns it; empty when outreach is off).  A
 * known_issue.changed event given to pipeline_act is checked by
 * orch_known_check instead of the cases (FW_EINVAL, FW_ESTATE).
 */
json_t *pipeline_known_json(struct pipeline *p);
/*
 * Whether a known_issue.changed event would apply to the registry as it is
 * now (orch_known_check, under the engine lock), without journaling it: 0,
 * or FW_EINVAL/FW_ESTATE with the field named in why.  For checking a
 * whole file before any of it is applied.
 */
int pipeline_known_check(struct pipeline *p, const struct event *ev, char *why, size_t why_len);
/* Run fn with the cases and the engine locked against the engine thread (reads only). */
void pipeline_with_cases(struct pipeline *p,
                         void (*fn)(void *ctx, const struct cases *cs, const struct engine *e),
                         void *ctx);

/* Count events refused by validation (for /metrics). */
void pipeline_note_rejected(struct pipeline *p, size_t n);

/*
 * Run fn with the engine locked against the engine thread (for reads:
 * customer views, metrics).  fn must not keep pointers into the engine.
 */
void pipeline_with_engine(struct pipeline *p, void (*fn)(void *ctx, const struct engine *e),
                          void *ctx);
/*
 * Run fn on the engine thread inside a transaction of its own (API writes
 * that must not race the group commit: approvals, edits).  fn returns 0 to
 * commit, anything else to roll back; that value is returned.
 */
int pipeline_run(struct pipeline *p, int (*fn)(void *ctx, struct store *db, int64_t engine_now),
                 void *ctx);
/* The engine clock (virtual or wall), safe from any thread. */
int64_t pipeline_now(struct pipeline *p);

/* A copy of the counters. */
void pipeline_metrics(struct pipeline *p, struct pipeline_metrics *out);
const struct rules *pipeline_rules(const struct pipeline *p);

#endif
