/*
 * orch_int.h -- private to the orchestrate module: its state and the
 * functions its files share.
 *
 * The module's files, one job each:
 *   orchestrate.c  the engine sink, life cycle, configuration defaults
 *   decide.c       one decision for a customer's new detections
 *   matrix.c       the channel matrix and team routing (configuration data)
 *   guardrails.c   de-duplication, frequency cap, approval, quiet hours,
 *                  opt-out and addresses, per outreach and per channel
 *   ladder.c       escalation steps and reminders: armed, cancelled, fired
 *   followup.c     what customer events decide: post-ticket follow-ups,
 *                  "we already reached out"
 *   failures.c     dead messages: one alert per connector down, summaries
 *   context.c      what templates may say about a customer and a signal
 *   emit.c         rendering a draft into a message record
 *   mask.c         phone numbers masked in customer text
 *   localtime.c    quiet hours in the customer's zone
 */
#ifndef FW_ORCH_INT_H
#define FW_ORCH_INT_H

#include <regex.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "orchestrate/orchestrate.h"
#include "util/fwtime.h"
#include "util/map.h"

/* Ladder steps and reminders. */
#define STEP_KINDS(X)                                                                              \
    X(HIGH_NO_RESPONSE, "followup_no_response")                                                    \
    X(HIGH_UNRESOLVED_L2, "escalate_l2_unresolved")                                                \
    X(HIGH_PERSIST_L2, "escalate_l2_persisting")                                                   \
    X(CRITICAL_PAGE, "page_engineering")                                                           \
    X(CRITICAL_NO_RESPONSE, "sms_no_response")                                                     \
    X(FOLLOWUP_REMINDER, "followup_reminder")

enum step_kind {
#define ORCH__STEP(name, str) STEP_##name,
    STEP_KINDS(ORCH__STEP)
#undef ORCH__STEP
};

extern const char *const orch__step_names[];

struct ocust;

struct ladder {
    struct engine_timer t; /* first: the engine hands it back */
    struct orch *o;
    struct ocust *c;
    size_t sig;        /* signal index; (size_t)-1 for a follow-up reminder */
    int64_t fired_at;  /* the episode (or the resolved ticket's time) */
    enum step_kind kind;
    char *key;
    char *detail; /* JSON for the task row */
    int64_t created_at;
    struct ladder *next;
};

struct outreach {
    const char *root_cause; /* borrowed from the rules, or a static string */
    int64_t at;
};

/* The moment a customer's caught-up detections are decided (see sink_detection). */
struct hold {
    struct engine_timer t; /* first: the engine hands it back */
    struct orch *o;
    struct ocust *c;
};

struct ocust {
    char *key; /* owned by the map */
    struct outreach *hist;
    size_t nhist, caphist;
    size_t *pending; /* signal indexes fired in the current pass */
    size_t npending, cappending;
    size_t *held; /* signals found firing while catching up, decided when the hold ends */
    size_t nheld, capheld;
    int held_new; /* the current pass added to held */
    struct hold hold;
    struct ladder *tasks;
    int64_t first_outreach, last_outreach;
};

/* ==== failures.c: dead messages per connector (issue 17) ==== */

struct oconn; /* one connector's outage, private to failures.c */

struct orch_failures {
    struct oconn **conns; /* in the order the journal first named them */
    size_t n, cap;
};

/*
 * A message.sent or message.failed event, customer or not: the connector's
 * outage state moves, and at most the alerts failures.c describes are
 * emitted.  Quiet orchestrators update the state the same way.
 */
void orch__on_delivery(struct orch *o, const struct event *ev);
/* Cancel the timers and free the state (orch_free, before the engine goes). */
void orch__failures_cleanup(struct orch *o);

/* ==== end failures.c ==== */

struct orch {
    const struct orch_config *cfg;
    const struct comms *tmpl;
    struct orch_sink sink;
    struct engine_sink next;
    struct engine *engine;
    const struct rules *rules;
    struct strmap customers;
    struct strmap zones; /* time zone name -> struct tz * (NULL: unknown, read as UTC) */
    regex_t phone_re;
    int quiet; /* see orch_set_quiet */
    int bare;  /* see orch_set_bare: quiet, but unrendered records still reach the sink */
    struct orch_failures failures; /* failures.c */
};

#define NO_RESPONSE_KINDS ((1u << STEP_HIGH_NO_RESPONSE) | (1u << STEP_CRITICAL_NO_RESPONSE))
#define ALL_SIGNAL_KINDS                                                                           \
    ((1u << STEP_HIGH_NO_RESPONSE) | (1u << STEP_HIGH_UNRESOLVED_L2) |                             \
     (1u << STEP_HIGH_PERSIST_L2) | (1u << STEP_CRITICAL_PAGE) | (1u << STEP_CRITICAL_NO_RESPONSE))

/* A message about to be rendered and recorded (emit.c). */
struct draft {
    const char *audience, *channel, *customer;
    const char *kind; /* what the message is for: "alert", "ladder", "incident", "followup" */
    const char *tmpl_name;
    json_t *ctx;      /* borrowed */
    json_t *signals;  /* borrowed array of ids */
    json_t *explain;  /* borrowed; copied into the record */
    json_t *meta;     /* borrowed or NULL */
    const char *recipient;
    const char *status;
    const char *reason;
    int64_t at, send_at;
    const char *key_extra; /* distinguishes records otherwise alike */
};


/* What the outreach guardrails concluded (guardrails.c). */
struct verdict {
    const char *status; /* scheduled, awaiting_approval, suppressed */
    char reason[320];
    int64_t send_at;
};

/* What a customer message is: decides which guardrails apply. */
enum outreach_kind {
    OUT_PROACTIVE, /* about a detection: every guardrail */
    OUT_LADDER,    /* a ladder follow-up of an outreach that already passed dedup and the cap */
    OUT_FOLLOWUP,  /* after a resolved ticket (seed 004): approval by default */
};

/* ---- context.c ---- */

/*
 * Times in words in a customer's zone ("Mar 2, 2026 at 9:14 AM (New York
 * time)"; UTC without one), dates ("Mar 2, 2026") and durations ("3 days",
 * "1 hour 30 minutes").  orch__zone caches loaded zones; NULL means UTC.
 */
const struct tz *orch__zone(struct orch *o, const char *name);
void orch__human_time(struct orch *o, const char *zone, int64_t t, char *out, size_t n);
void orch__human_date(struct orch *o, const char *zone, int64_t t, char *out, size_t n);
void orch__human_duration(int64_t ms, char *out, size_t n);
/* The engine's view of a customer (engine_customer_object; never NULL). */
json_t *orch__snapshot(struct orch *o, const char *customer);
/* A state value from a snapshot, or NULL; as a string; as text ("" never: NULL when absent). */
json_t *orch__sv(json_t *snap, const char *key);
const char *orch__svs(json_t *snap, const char *key);
const char *orch__sv_text(json_t *snap, const char *key, char *tmp, size_t n);
/* When the customer's last event of this type happened, or FW_TIME_NONE. */
int64_t orch__last_at(json_t *snap, const char *type);
/* The id of an open ticket, or NULL. */
const char *orch__open_ticket(json_t *snap);
/* Whether the customer refuses this channel (customer.opt_out). */
int orch__opted_out(json_t *snap, const char *channel);
const char *orch__priority_of(enum severity s);
/* The team's name for people ("esim" -> "eSIM specialists"). */
const char *orch__group_of(const char *team);
void orch__lower_copy(const char *s, char *out, size_t n);
/* Set a value at a dotted path, creating objects on the way; set_str(NULL) sets nothing. */
void orch__set_json(json_t *obj, const char *dotted, json_t *v);
void orch__set_str(json_t *obj, const char *dotted, const char *v);
/* Everything templates may say about the customer now (empty when quiet). */
json_t *orch__customer_context(struct orch *o, struct ocust *c, json_t *snap, int64_t now);
void orch__signal_context(struct orch *o, json_t *x, const struct rule_signal *s);
json_t *orch__signals_array(struct orch *o, const size_t *idx, size_t n);
/* One customer-facing headline per signal (the subject of its own email template). */
json_t *orch__issues_list(struct orch *o, json_t *ctx, const size_t *idx, size_t n);

/* ---- mask.c ---- */

/* All digits but the last four starred. */
void orch__mask_phone(const char *phone, char *out, size_t n);
/* Mask phone numbers in customer text; known is the customer's own number or NULL. */
char *orch__mask_numbers(struct orch *o, const char *text, const char *known);

/* ---- emit.c ---- */

/*
 * Render and emit one message record.  Returns 1 when the record counts as
 * an outreach to the customer (a customer message not suppressed), else 0.
 * keep (may be NULL) receives the rendering of a message not suppressed.
 */
int orch__emit(struct orch *o, const struct draft *d, struct comms_rendered *keep);
void orch__emit_task(struct orch *o, struct ladder *l, const char *status);

/* ---- guardrails.c ---- */

int orch__in_list(const char *v, char **list, size_t n);
/* The guardrails of a whole outreach, in order; each check is appended to guards. */
struct verdict orch__outreach_verdict(struct orch *o, struct ocust *c, json_t *snap,
                                      enum severity sev, const char *const *roots, size_t nroots,
                                      int64_t now, json_t *guards, enum outreach_kind kind);
/* Remember an outreach (dedup, cap, tone). */
void orch__note_outreach(struct ocust *c, const char *const *roots, size_t nroots, int64_t now);
/* One customer message per channel with its own checks; returns how many count as outreach. */
int orch__customer_messages(struct orch *o, struct ocust *c, json_t *snap,
                            const char *const *chans, size_t nchans, struct draft *base,
                            const struct verdict *v, json_t *guards,
                            struct comms_rendered *draft_out);

/* ---- ladder.c ---- */

void orch__ladder_arm(struct orch *o, struct ocust *c, size_t sig, int64_t fired_at,
                      enum step_kind kind, int64_t delay, int64_t now, json_t *detail);
void orch__ladder_free(struct ladder *l);
/* Cancel a customer's tasks matching (kind set, signal); (size_t)-2 matches any signal. */
void orch__ladder_cancel(struct orch *o, struct ocust *c, unsigned kinds, size_t sig,
                         const char *why);
void orch__fire(struct engine_timer *t, int64_t due);

/* ---- decide.c ---- */

/* One decision for every signal pending for the customer; clears the pending list. */
void orch__decide(struct orch *o, struct ocust *c);

/* ---- followup.c ---- */

void orch__on_ticket_resolved(struct orch *o, struct ocust *c, const struct event *ev);
void orch__on_contact(struct orch *o, struct ocust *c, const struct event *ev);

/* ---- orchestrate.c ---- */

void orch__hold_fire(struct engine_timer *t, int64_t due);

/* ---- localtime.c ---- */

/* Minutes after local midnight at t in zone tz. FW_ENOTFOUND for an unknown zone. */
int orch__local_minutes(int64_t t, const char *tz, int *minutes);
/*
 * When t falls inside the quiet window [start, end) (minutes, may wrap
 * midnight) in zone tz: the time the window ends.  Otherwise FW_TIME_NONE.
 */
int64_t orch__quiet_until(int64_t t, const char *tz, int start, int end);

#endif
