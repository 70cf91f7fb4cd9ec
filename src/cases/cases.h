/*
 * cases.h -- the unit of human work: cases about customers, their SLA
 * clocks, their priority, and the queue that says what to do next.
 *
 * A case is derived from the journal and nothing else.  Detections (from
 * the engine's sink) open and update cases; a person's actions arrive as
 * `case.*` events applied like any other event (the API writes them to the
 * journal); the orchestrator's messages for the customer attach to the
 * case.  So replaying the journal reproduces every case, clock and change,
 * and serve and replay run the same code.
 *
 * Clocks: each case has three (first_response, customer_contact,
 * resolution), each a target in calendar time under the policy that
 * matched the case.  A running clock arms one engine timer, for the warning
 * and then for the breach, so both fire at their exact instant on the
 * engine's clock (virtual in replay, wall in serve) with no polling; a
 * restart re-derives the same timers from the journal.
 *
 * Threading: like the engine, owned by the engine's thread; readers hold
 * the engine's lock (pipeline_with_cases).
 */
#ifndef FW_CASES_H
#define FW_CASES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct sentiment;

#include "cases/sla_config.h"
#include "engine/engine.h"
#include "orchestrate/orchestrate.h"
#include "util/buf.h"

enum case_metric { CASE_FIRST_RESPONSE, CASE_CUSTOMER_CONTACT, CASE_RESOLUTION, CASE_NMETRICS };
const char *case_metric_name(int metric);

/* Priority weights (seed 001's matrix); they need not sum to 1, the score is normalised. */
struct case_weights {
    double value, severity, churn, timeliness; /* default .30 .25 .25 .20 */
};

struct cases_config {
    const struct sla_config *sla; /* may be NULL: 24x7 with the severity defaults */
    struct case_weights weights;
    int lean;          /* nobody reads documents or cards (replay): skip customer snapshots */
    const struct playbooks *playbooks; /* may be NULL: cases get no playbook */
    size_t min_history; /* resolved cases a figure needs before it is shown (default 5) */
    const struct sentiment *sentiment; /* scores the customer's words; NULL: not analysed */
    double drop;        /* a sentiment drop: the latest text this far below the one 2 texts before (0.5) */
    /*
     * Follow-up tasks after a proactive outreach, per enum severity of what
     * it was about: due this long after the message goes out (default 3d,
     * seed 001's "+3d"; outreach.followup_task); 0: no task.
     */
    int64_t followup_task[4];
};

void cases_config_init(struct cases_config *c);

/*
 * Where changes go.  `line` receives each replay-contract line ({"kind":
 * "case"...} or {"kind":"sla"...}, no newline) in time order, with the case
 * it is about, its time and its event name: replay prints it, serve keeps it
 * as the case's history.  `save` (may be NULL) receives the whole case
 * document after every change, for the store.  `withdraw` (may be NULL):
 * the case never existed after all (a late event withdrew the only
 * detection that opened it).  `notice` (may be NULL): an SLA warning or
 * breach for the assignee or the team, as an outbox message.  Records are
 * valid during the call only.
 */
struct case_sink {
    void *ctx;
    void (*line)(void *ctx, const char *case_id, int64_t at, const char *event, const char *json,
                 size_t len);
    void (*save)(void *ctx, const char *id, const char *customer, int open, const char *doc);
    void (*withdraw)(void *ctx, const char *id);
    void (*notice)(void *ctx, const struct outbox_msg *m);
    /*
     * task (may be NULL): a follow-up task was created or changed, as the
     * store keeps it (kind "outreach_followup", detail: the task document).
     * Its lines ({"kind":"task"...}) go to `line`, with the case it belongs
     * to or a NULL case id when the customer had none.
     */
    void (*task)(void *ctx, const struct task_row *t);
};

struct cases;
struct playbooks;

/*
 * A new module.  Policy conditions are compiled against the case fields
 * (docs/cases.md); a condition that does not compile is reported in diag
 * with the place it came from and NULL is returned.  cfg (and the SLA
 * config it points to) and sink must outlive it.
 */
struct cases *cases_new(const struct cases_config *cfg, const struct case_sink *sink,
                        struct buf *diag);
void cases_free(struct cases *cs);

/*
 * The engine sink that feeds cases and passes everything on to `next`;
 * the orchestrator sink that attaches messages to cases and passes them on.
 * Call cases_bind once the engine exists.
 */
struct engine_sink cases_engine_sink(struct cases *cs, const struct engine_sink *next);
struct orch_sink cases_orch_sink(struct cases *cs, const struct orch_sink *next);
void cases_bind(struct cases *cs, struct engine *e);

/*
 * The history cases read from the engine: 7 days of the `contact` class
 * (recent contacts weigh on churn risk), kept even when no rule counts it.
 * Call on the finished rules before the engine is created.
 */
void cases_require(struct rules *rules);

/* Recovery: state is rebuilt but nothing reaches the sink (it is stored already). */
/*
 * Whether the cases module holds nothing a journal replay would have built
 * (no case, open or resolved, no task, no customer's value or words, no
 * resolved-case history, all counters zero); see orch_idle.
 */
int cases_idle(const struct cases *cs);

/*
 * Snapshots (snap.c): append everything the module holds that a quiet
 * replay of the journal would rebuild -- case ids, open cases with their
 * clocks and playbooks, customers' values and words, the resolved-case
 * history, counters, follow-up tasks and held outreach -- to out, in the
 * encoding of util/wire.h, its timers with engine_timer_write (so between
 * engine_snapshot and engine_snapshot_end).  cases_restore loads it into a
 * fresh module bound to an engine restored from the same snapshot, under
 * the same SLA policies and playbooks: 0, or FW_EPARSE (malformed, other
 * rules or configuration) / FW_ESTATE (not fresh, not bound) with the
 * reason in why; then call engine_restore_end.  On failure the module is
 * half-loaded and must be freed (cases_free cancels what it armed).
 */
struct wire_rd;
void cases_snapshot(const struct cases *cs, struct buf *out);
int cases_restore(struct cases *cs, struct wire_rd *in, char *why, size_t n);
void cases_set_quiet(struct cases *cs, int quiet);

/*
 * Would this `case.*` event act on a case now?  0, or FW_ENOTFOUND (no
 * such case; the customer has no open case) or FW_ESTATE (the case is
 * resolved, belongs to another customer, ...) with the reason in why.
 * *case_id (may be NULL, 24 bytes) receives the case it would act on.
 */
int cases_check(const struct cases *cs, const struct event *ev, char *why, size_t n,
                char *case_id);

/* The open case of a customer, or NULL: its id (valid until the next change). */
const char *cases_open_id(const struct cases *cs, const char *customer);

/*
 * The queue as the API shows it: open cases visible to `who` (role mask
 * from http/auth.h semantics: agents see theirs and the unassigned ones),
 * ordered by priority, then nearest due.  filter: NULL, "mine",
 * "unassigned", "breaching_soon", "breached"; severity: NULL or a name.
 */
struct queue_query {
    const char *user;     /* the caller */
    int all;              /* the caller may see every case (not only theirs and unassigned) */
    const char *filter;
    const char *severity;
    int limit;
    int virtual_clock;    /* say "clock":"virtual" (time moves only when told) instead of "wall" */
};
/*
 * The queue document: now, clock, warn_before_ms (when a clock turns to
 * its warning), counts and the cards.  The console counts time left down
 * from `now` and each card's due time, so it never trusts the page's clock.
 */
void cases_queue_json(const struct cases *cs, const struct queue_query *q, int64_t now,
                      struct buf *out);
/*
 * Guided mode: the case `user` should take now (the first of the queue
 * that is theirs, or unassigned and not skipped by them), or NULL.
 */
const char *cases_next_for(const struct cases *cs, const char *user, int64_t now);
/* The live view of an open case (card, clocks, priority now) as JSON; FW_ENOTFOUND when not open. */
int cases_live_json(const struct cases *cs, const char *id, int64_t now, struct buf *out);

/*
 * Guidance for an open case (docs/guidance.md): summary, sentiment,
 * recommended action with its measured success, the script rendered for
 * this customer, what not to do, win condition, the next playbook step and
 * similar resolved cases.  FW_ENOTFOUND when the case is not open.
 */
int cases_guidance_json(const struct cases *cs, const char *id, int64_t now, struct buf *out);
/* The playbooks with their measured success ({"playbooks": [...], "min_history": n}). */
void cases_playbooks_json(const struct cases *cs, struct buf *out);

/* Counters for /metrics. */
struct cases_stats {
    uint64_t opened, resolved, auto_resolved, warnings, breaches, ignored;
    size_t open;
};
void cases_stats(const struct cases *cs, struct cases_stats *out);

#endif
