/*
 * orchestrate.h -- from detections to decided messages: audiences,
 * channels, tone, merging, de-duplication, guardrails, escalation ladders
 * and post-ticket follow-ups.
 *
 * The orchestrator runs on the engine's thread, fed by the engine's sink
 * (detections, incidents, and a `step` after each evaluation pass).  It
 * decides; it never sends.  Every decision is a message record handed to
 * its own sink (the outbox in serve, a JSON line in replay), with the
 * reasons that made it: which detection, which matrix row, which tone,
 * which guardrail held it back.  Its state (outreach history, pending
 * ladder steps) is derived only from what the engine reports, so replaying
 * the journal re-derives the same decisions with the same idempotency keys.
 */
#ifndef FW_ORCHESTRATE_H
#define FW_ORCHESTRATE_H

#include <stddef.h>
#include <stdint.h>

#include "comms/comms.h"
#include "engine/engine.h"
#include "store/messages.h"
#include "util/buf.h"

/* Configuration, with the documented defaults from orch_config_init. */
struct orch_config {
    struct {
        char *name, *sender_name, *support_url, *app_name, *unsubscribe_url;
    } brand;
    /*
     * Seed 000 disagrees with itself about MEDIUM signals with no open
     * ticket: its channel matrix emails the customer ("soft touch"), its
     * escalation ladder keeps MEDIUM internal.  Default: follow the matrix
     * (1); 0 keeps MEDIUM internal.
     */
    int medium_email;
    int webhook;  /* also send each decision's alert to the generic (Standard Webhooks) endpoint */
    int freq_cap; /* proactive customer outreaches per window (default 1) */
    int64_t freq_window;     /* default 7d */
    int cap_bypass_critical; /* CRITICAL ignores the cap (default 1) */
    int64_t dedup_window;    /* one outreach per root cause per customer (default 24h) */
    int quiet_start,
        quiet_end;             /* default quiet hours, minutes after local midnight (21:00-08:00) */
    int quiet_bypass_critical; /* default 1 */
    char **approval_tiers;     /* default {"enterprise"} */
    size_t napproval_tiers;
    int approval_severity[4];   /* per enum severity: 1 = needs approval (default none) */
    int followup_approval;      /* post-ticket follow-ups wait for a person (seed 004; default 1) */
    int64_t followup_reminder;  /* default 3d */
    /*
     * The follow-up task after a proactive outreach, per severity of what it
     * was about (docs/cases.md; the cases module keeps the tasks): due this
     * long after the message goes out, 0 for none.  Default 3d (seed 001).
     */
    int64_t followup_task[4];
    int64_t reached_out_window; /* "we already reached out" if our outreach was this recent (7d) */
    /* Escalation ladder delays. */
    int64_t high_no_response;     /* 24h: follow up with the customer */
    int64_t high_unresolved_l2;   /* 4h: alert L2 */
    int64_t high_persist_l2;      /* 48h: escalate to L2 */
    int64_t critical_page;        /* 2h: page engineering */
    int64_t critical_no_response; /* 4h: SMS the customer */
    /*
     * Catching up (docs/events.md, "Late events"): a detection found more
     * than late_after after its time is decided late_hold after the last
     * late event of its customer, once, with everything still firing; one
     * that resolved meanwhile is never announced.  Event-driven outreach
     * (post-ticket follow-ups, "we already reached out" notes) is skipped for
     * events older than stale_after when they arrive.
     */
    int64_t late_after;  /* default 10s */
    int64_t late_hold;   /* default 5s */
    int64_t stale_after; /* default 24h */
    /*
     * Merge window, per severity: what fires for one customer within this
     * long of the first firing becomes one decision (default 5s each; 0
     * decides at once).  A window closes at the earliest close of the
     * severities it holds, so a CRITICAL with a shorter window is not kept
     * waiting by a LOW.
     */
    int64_t merge_window[4];
    /*
     * The channel matrix: customer channels per severity (and one row for
     * outage messages, ORCH_ROW_OUTAGE), without [0] and with [1] an open
     * ticket.  "internal_note" is not a customer channel: it puts a note on
     * the open ticket for the agent instead.  Defaults: seed 000's table.
     */
    struct orch_channels {
        char **names;
        size_t n;
    } matrix[5][2];
    /* Team -> the name people know it by ("esim" -> "eSIM specialists"). */
    struct orch_team {
        char *team, *group;
    } * teams;
    size_t nteams;
    /*
     * Where the alert about a message that failed for good goes: the first
     * of these channels that is not the one that failed (default slack,
     * ticket).  One alert per connector, then at most one summary per
     * connector_alert_repeat (doubling, up to 24h) until it delivers again.
     */
    char **failure_channels;
    size_t nfailure_channels;
    int64_t connector_alert_repeat; /* default 4h */
    /* After an outage ends, a problem it held back is followed up if it persists this long (1h). */
    int64_t outage_followup;
};

#define ORCH_ROW_OUTAGE 4

/* Whether name is a channel the matrix may hold. */
int orch_matrix_channel_ok(const char *name);
/* Replace a matrix cell with a copy of names. */
void orch_matrix_set(struct orch_channels *cell, const char *const *names, size_t n);

void orch_config_init(struct orch_config *c);
void orch_config_cleanup(struct orch_config *c);

/* Where decisions go.  Records are valid during the call only. */
struct orch_sink {
    void *ctx;
    void (*message)(void *ctx, const struct outbox_msg *m);
    void (*task)(void *ctx, const struct task_row *t);
    void (*context)(void *ctx, const char *customer, const char *json);
    /*
     * Quiet orchestrators only (may be NULL): the status stored for the
     * record with this key, so that recovery counts an outreach exactly as
     * the first decision did (a message suppressed when rendered does not
     * count).  Returns 0 and fills status, or non-zero when none is stored.
     */
    int (*stored_status)(void *ctx, const char *key, char *status, size_t n);
    /*
     * May be NULL.  After a global event, each customer's turn to be
     * decided (in the order customers were first seen), before its
     * decision: replay's partitions key what follows by it.
     */
    void (*turn)(void *ctx, const char *customer);
};

struct orch;

/*
 * A new orchestrator.  cfg, templates and sink must outlive it.  Attach it
 * to an engine with orch_engine_sink (which forwards detections to `next`
 * as well, e.g. the store).
 */
struct orch *orch_new(const struct orch_config *cfg, const struct comms *templates,
                      const struct orch_sink *sink);
void orch_free(struct orch *o);

/*
 * The engine sink that feeds this orchestrator and also passes every
 * detection and incident to `next` (may be NULL).  Call orch_bind once the
 * engine exists (the orchestrator reads customer state and arms ladder
 * timers through it).
 */
struct engine_sink orch_engine_sink(struct orch *o, const struct engine_sink *next);
void orch_bind(struct orch *o, struct engine *e);

/*
 * The engineering alert when an incident opens (replay's partitions, whose
 * merger keeps the incidents; a bound orchestrator sends it itself).  A
 * member's view is what the alert says of it: its order and journey
 * status as the rule pack's context packs them (has_*: 0 for none).
 * orch_member_view fills one from the bound engine now; orch_views_local
 * says whether a view can change only with the customer's own events (not
 * with the clock or global state), so that one taken after its latest
 * event is the view at any later moment.  orch_bind_rules gives an
 * orchestrator that is bound to no engine the rules it names signals by:
 * it can send incident alerts and nothing else.
 */
struct orch_view {
    char order[128], status[128];
    int has_order, has_status;
};
int orch_member_view(struct orch *o, const char *customer, struct orch_view *v);
int orch_views_local(const struct rules *r);
void orch_incident_alert(struct orch *o, const struct incident *i, const struct orch_view *views);
void orch_bind_rules(struct orch *o, const struct rules *rules);

/*
 * Snapshots (snap.c): append everything the orchestrator holds that a
 * quiet replay of the journal would rebuild -- each customer's outreach
 * history, merge window and held signals, ladder steps, facts, outage
 * state and known-issue wake-up; connectors' failure state; the known-issue
 * registry -- to out, in the encoding of util/wire.h, its timers with
 * engine_timer_write (so between engine_snapshot and engine_snapshot_end).
 * orch_restore loads it into a fresh orchestrator bound to an engine that
 * engine_restore loaded from the same snapshot: 0, or FW_EPARSE (malformed,
 * other rules) / FW_ESTATE (not fresh, not bound) with the reason in why;
 * then call engine_restore_end.  On failure the orchestrator is
 * half-loaded and must be freed (orch_free cancels what it armed).
 */
struct wire_rd;
void orch_snapshot(const struct orch *o, struct buf *out);
int orch_restore(struct orch *o, struct wire_rd *in, char *why, size_t n);

/*
 * Quiet: decisions still update the orchestrator's own state (outreach
 * history and tone, de-duplication, ladder timers) but nothing is rendered,
 * and only customer messages that count as outreach reach the sink's
 * `message`, as bare records (see orch_set_bare), so that what follows them
 * downstream (a case's contact clock, a follow-up task) is rebuilt too; a
 * quiet sink stores nothing.  Recovery replays the journal quietly,
 * because every decision it repeats was committed with its journal rows.
 */
void orch_set_quiet(struct orch *o, int quiet);

/*
 * Bare (replay --cases without --messages): quiet, except that every
 * decision still reaches the sink's `message`, as a record without text
 * (nothing is rendered, no explanation), so that what follows decisions
 * (a case's contact clock) sees them at the cost of deciding only.
 */
void orch_set_bare(struct orch *o);

/*
 * Text only: message records carry no HTML part (replay prints none, so
 * rendering it is wasted).  Status, text and everything else are unchanged:
 * the HTML is derived from the capped text and cannot fail on its own.
 */
void orch_set_text_only(struct orch *o);

/*
 * When the last open merge window closes (the latest decision still
 * waiting), or FW_TIME_NONE.  Replay lets it close before it ends.
 */
int64_t orch_open_until(const struct orch *o);

/*
 * Known issues and maintenance (docs/known-issues.md).  orch_known_check:
 * whether a known_issue.changed event would apply now (on the engine's
 * thread, before it is journaled): 0, or FW_EINVAL/FW_ESTATE with the
 * field named in why.  orch_known_json: the registry as a new JSON array
 * (caller owns it), each record with its counts of affected and told
 * customers; internal_notes included (for people, never for customers).
 */
int orch_known_check(struct orch *o, const struct event *ev, char *why, size_t n);
json_t *orch_known_json(const struct orch *o);

/*
 * A signal's outreach type (seed 001), from its root cause:
 * "check_in" (usage_decline, risk_indicators, low_health), "adoption_help"
 * (adoption_*, onboarding_stall), "success_milestone" (milestone_*), else
 * "journey_alert".  One customer message is about problems of one type
 * only (docs/messages.md, "Merge").  A static string.
 */
const char *orch_outreach_type(const struct rule_signal *s);

/* One decided message as a replay JSON line (no newline). */
void orch_message_json(const struct outbox_msg *m, struct buf *out);

#endif
