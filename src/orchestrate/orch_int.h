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
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/map.h"

/* Ladder steps and reminders. */
#define STEP_KINDS(X)                                                                              \
    X(HIGH_NO_RESPONSE, "followup_no_response")                                                    \
    X(HIGH_UNRESOLVED_L2, "escalate_l2_unresolved")                                                \
    X(HIGH_PERSIST_L2, "escalate_l2_persisting")                                                   \
    X(CRITICAL_PAGE, "page_engineering")                                                           \
    X(CRITICAL_NO_RESPONSE, "sms_no_response")                                                     \
    X(FOLLOWUP_REMINDER, "followup_reminder")                                                      \
    X(OUTAGE_FOLLOWUP, "outage_followup")

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
    size_t sig;       /* signal index; (size_t)-1 for a follow-up reminder */
    int64_t fired_at; /* the episode (or the resolved ticket's time) */
    enum step_kind kind;
    char *key;
    char *detail; /* JSON for the task row */
    int64_t created_at;
    int64_t origin; /* the message a "no response" step follows up (the cap does not count it) */
    struct ladder *next;
};

struct outreach {
    const char *root_cause; /* borrowed from the rules, or a static string */
    int64_t at;
    int notice; /* an outage notice: de-duplicates, but the frequency cap does not count it */
};

/* The moment a customer's caught-up detections are decided (see sink_detection). */
struct hold {
    struct engine_timer t; /* first: the engine hands it back */
    struct orch *o;
    struct ocust *c;
};

/* A signal waiting for its decision, and when it fired. */
struct pend {
    size_t sig;
    int64_t at;
};

/* What went out to the customer about one signal (facts templates may state). */
struct sent {
    int64_t at;          /* FW_TIME_NONE: nothing went out */
    const char *channel; /* static string */
};

struct ocust {
    char *key; /* owned by the map */
    struct outreach *hist;
    size_t nhist, caphist;
    struct pend *pending; /* fired live, decided when the merge window closes */
    size_t npending, cappending;
    int64_t merge_close; /* when the merge window closes (FW_TIME_NONE: none open) */
    size_t *held;        /* signals found firing while catching up, decided when the hold ends */
    size_t nheld, capheld;
    int held_new;     /* the current pass added to held */
    struct hold hold; /* the decision timer: merge window or catch-up hold */
    struct ladder *tasks;
    int64_t first_outreach, last_outreach;
    struct sent *sent; /* per signal index (rules->nsignals), allocated on first outreach */
    /* Outages (outreach: outage signals): what the customer was told, what waits for the end. */
    int64_t outage_told; /* when the outage message went out, or FW_TIME_NONE */
    size_t *oheld;       /* signals held back by the outage */
    size_t noheld, capoheld;
    struct kwake *kwake; /* known.c: when an open issue's segment may next come true; or NULL */
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

struct kissue; /* one known issue or maintenance, private to known.c */
struct kwake;  /* one customer's known-issue wake-up, private to known.c */

struct orch {
    const struct orch_config *cfg;
    const struct comms *tmpl;
    struct orch_sink sink;
    struct engine_sink next;
    struct engine *engine;
    const struct rules *rules;
    int *pack_var; /* per rules->context: the variable's id (comms_var_id), -1 for none */
    struct strmap customers;
    struct strmap zones; /* time zone name -> struct tz * (NULL: unknown, read as UTC) */
    struct strmap qzones; /* the same for quiet hours, loaded without a log line (NULL: unknown) */
    regex_t phone_re;
    int quiet; /* see orch_set_quiet */
    int bare;  /* see orch_set_bare: quiet, but unrendered records still reach the sink */
    int text_only; /* see orch_set_text_only: no HTML part is rendered */
    struct orch_failures failures; /* failures.c */
    struct {
        struct kissue **v; /* in the order they were declared */
        size_t n, cap;
    } known; /* known.c */
};

#define NO_RESPONSE_KINDS ((1u << STEP_HIGH_NO_RESPONSE) | (1u << STEP_CRITICAL_NO_RESPONSE))
#define ALL_SIGNAL_KINDS                                                                           \
    ((1u << STEP_HIGH_NO_RESPONSE) | (1u << STEP_HIGH_UNRESOLVED_L2) |                             \
     (1u << STEP_HIGH_PERSIST_L2) | (1u << STEP_CRITICAL_PAGE) |                                   \
     (1u << STEP_CRITICAL_NO_RESPONSE))
#define NOSIG ((size_t)-1) /* a task about no one signal (reminders, outage follow-ups) */

/* A message about to be rendered and recorded (emit.c). */
struct draft {
    const char *audience, *channel, *customer;
    const char *kind; /* what the message is for: "alert", "ladder", "incident", "followup" */
    const char *tmpl_name;
    struct comms_ctx *ctx; /* borrowed; emit sets and clears unsubscribe_url in it */
    json_t *signals; /* borrowed array of ids */
    json_t *explain; /* borrowed; copied into the record */
    /* explain as text (borrowed), when the caller dumped it once for several records; the
       record's text is this, then guards, then the template's path. */
    const char *explain_txt;
    const char *guards; /* borrowed or NULL: this channel's guardrails (orch__guard's text), the
                           explanation's "guardrails" list */
    json_t *meta;    /* borrowed or NULL */
    const char *recipient;
    const char *status;
    const char *reason;
    int64_t at, send_at;
    const char *key_extra; /* distinguishes records otherwise alike */
    const size_t *sig_idx; /* customer messages: the signals it tells of (facts) */
    size_t nsig_idx;
    /* Already rendered from this template and ctx (borrowed; copied), so that one
       decision renders a template once; pre_rc is what that rendering returned. */
    const struct comms_rendered *pre;
    int pre_rc;
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
    OUT_NOTICE,    /* an outage message or its update: no de-duplication, not capped */
};

/* ---- small JSON builders (guardrails.c) ----
 *
 * What json_pack built on the message path, without parsing a format per
 * object (a third of a decision's json_pack cost was the format): keys are
 * the callers' literals and set unchecked; values keep json_string's UTF-8
 * check unless the caller passes a literal (the _lit forms).
 */

/* o[key] = v as a string; null when v is NULL (json_pack's "s?", which writes null). */
void orch__jset_str(json_t *o, const char *key, const char *v);
/* o[key] = v, a literal of ours (ASCII, not checked). */
void orch__jset_lit(json_t *o, const char *key, const char *v);
/*
 * Append s as a JSON string exactly as fw_json_dumps writes one (plain ASCII
 * escaped here, anything else through jansson): 0, or -1 with nothing
 * appended when s is not valid UTF-8 (json_string would refuse it).
 */
int orch__json_str(struct buf *out, const char *s);
/*
 * Append {"guardrail": name, "result": result}, one line of a message's
 * checks, to guards: the text of a JSON array's elements, comma-separated,
 * without the brackets.  Nothing is appended when result is not valid
 * UTF-8 (json_pack refused such an element).
 */
void orch__guard(struct buf *guards, const char *name, const char *result);

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
void orch__lower_copy(const char *s, char *out, size_t n);
/* One of the rule pack's template variables for a customer (copied into buf), or NULL. */
const char *orch__pack_var(struct orch *o, json_t *snap, const char *var, char *buf, size_t n);
/*
 * Everything templates may say about the customer now, as a typed context
 * (comms.h; empty when quiet).  The caller frees it with comms_ctx_free.
 */
struct comms_ctx *orch__customer_context(struct orch *o, struct ocust *c, json_t *snap,
                                         int64_t now);
/* The signal's variables (signal.*, priority, group, sla.*, response_within). */
void orch__signal_context(struct orch *o, struct comms_ctx *x, const struct rule_signal *s);
json_t *orch__signals_array(struct orch *o, const size_t *idx, size_t n);
/*
 * issues: one element per signal, its customer-facing headline the subject
 * of its own email template rendered with x as it is before the call.
 */
void orch__issues_list(struct orch *o, struct comms_ctx *x, const size_t *idx, size_t n);

/* ---- matrix.c ---- */

void orch__matrix_defaults(struct orch_config *c);
/*
 * The customer channels of a matrix row (enum severity or ORCH_ROW_OUTAGE)
 * for the ticket state, at most max; *note is "internal_note" when the cell
 * asks for a note on the open ticket instead.
 */
size_t orch__matrix_pick(const struct orch *o, int row, int ticket, const char **out, size_t max,
                         const char **note);
/* The team's name for people, from the rule pack's teams ("esim" -> "eSIM specialists"). */
const char *orch__group_of(const struct orch *o, const char *team);
/* A channel in a customer's words ("sms" -> "text message"). */
const char *orch__channel_words(const char *channel);
/* The static string for a channel name (for records that outlive the decision). */
const char *orch__channel_static(const char *channel);

/* ---- outage.c ---- */

/* The firing outage signal that explains signal s for this customer, or NOSIG. */
size_t orch__outage_covering(struct orch *o, json_t *snap, size_t s);
/* Decide an outage signal's firing: the customer's one outage message. */
void orch__outage_decide(struct orch *o, struct ocust *c, size_t osig, json_t *snap);
/* Signal s is held back by the outage (once): followed up when it ends, if it still fires. */
void orch__outage_hold(struct ocust *c, size_t s);
/* A detection resolved: the outage update, or one held-back problem fewer. */
void orch__outage_signal_resolved(struct orch *o, struct ocust *c, size_t s);
/* The outage follow-up step fired: problems still firing are decided now. */
void orch__outage_followup(struct orch *o, struct ocust *c);

/* ---- known.c ---- */

/*
 * Whether a known_issue.changed event's data may apply to the registry as
 * it is: 0, or FW_EINVAL/FW_ESTATE with the field named in why.
 */
int orch__known_validate(const struct orch *o, const struct rules *rules, json_t *data, char *why,
                         size_t n);
/* A known_issue.changed event was applied: declare, update, resolve; tell whom it concerns. */
void orch__known_event(struct orch *o, const struct event *ev);
/*
 * An event of this customer was applied, or their wake-up passed: the open
 * issues that now affect them tell them, and the customer is woken again at
 * the earliest instant time alone can make another one affect them.
 */
void orch__known_customer(struct orch *o, const char *customer);
/* Cancel and free the customer's known-issue wake-up (orch_free, before c goes). */
void orch__known_forget(struct orch *o, struct ocust *c);
/* Cancel the timers and free the registry (orch_free, before the engine goes). */
void orch__known_cleanup(struct orch *o);

/* ---- snapshots (snap.c and the files whose state they write) ---- */

struct wire_rd;
/* Connectors' failure state (failures.c); reading needs a fresh registry. */
void orch__failures_write(const struct orch *o, struct buf *out);
void orch__failures_read(struct orch *o, struct wire_rd *in);
/* A customer's known-issue wake-up, and the registry (known.c). */
void orch__kwake_write(const struct orch *o, const struct ocust *c, struct buf *out);
void orch__kwake_read(struct orch *o, struct ocust *c, struct wire_rd *in);
void orch__known_write(const struct orch *o, struct buf *out);
void orch__known_read(struct orch *o, struct wire_rd *in);

/* ---- mask.c ---- */

/* All digits but the last four starred. */
void orch__mask_phone(const char *phone, char *out, size_t n);
/* Mask other people's phone numbers in customer text; own (the customer's number) stays. */
char *orch__mask_numbers(struct orch *o, const char *text, const char *own);

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
/* origin: the message a ladder follow-up follows (not counted by the cap), or FW_TIME_NONE. */
struct verdict orch__outreach_verdict(struct orch *o, struct ocust *c, json_t *snap,
                                      enum severity sev, const char *const *roots, size_t nroots,
                                      int64_t now, struct buf *guards, enum outreach_kind kind,
                                      int64_t origin);
/* Remember an outreach (dedup, cap, tone); a notice (outage) is not counted by the cap. */
void orch__note_outreach(struct ocust *c, const char *const *roots, size_t nroots, int64_t now,
                         int notice);
/* Where a channel reaches the customer (email, phone, open ticket, push token), or NULL. */
const char *orch__address(const struct ocust *c, json_t *snap, const char *chan, char *tmp,
                          size_t n);
/* One customer message per channel with its own checks; returns how many count as outreach. */
int orch__customer_messages(struct orch *o, struct ocust *c, json_t *snap, const char *const *chans,
                            size_t nchans, struct draft *base, const struct verdict *v,
                            const struct buf *guards, struct comms_rendered *draft_out);

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
/*
 * The decision a held-back problem gets once the outage that held it is
 * over: the customer's messages (and the chatbot's context) only, since its
 * internal alerts and internal ladder steps went when it fired.  note: the
 * explanation's line saying why now.
 */
void orch__decide_followup(struct orch *o, struct ocust *c, json_t *snap, const size_t *idx,
                           size_t n, const char *note);

/* ---- facts.c ---- */

/* What went out about a signal: remembered when a customer message is decided to go. */
void orch__fact_sent(struct orch *o, struct ocust *c, size_t sig, const char *channel, int64_t at);
/* When the last message about any of these signals went out (FW_TIME_NONE: none). */
int64_t orch__fact_last(const struct ocust *c, const size_t *idx, size_t n, const char **channel);
/* last_message.* and contacted_since.* for a message about these signals. */
void orch__facts_context(struct orch *o, struct ocust *c, struct comms_ctx *ctx, json_t *snap,
                         const size_t *idx, size_t n, int64_t now);

/* ---- followup.c ---- */

void orch__on_ticket_resolved(struct orch *o, struct ocust *c, const struct event *ev);
void orch__on_contact(struct orch *o, struct ocust *c, const struct event *ev);

/* ---- orchestrate.c ---- */

/* The orchestrator's record of a customer, created on first use. */
struct ocust *orch__cust(struct orch *o, const char *key);

void orch__hold_fire(struct engine_timer *t, int64_t due);

/* ---- localtime.c ---- */

/* Minutes after local midnight at t in zone tz. FW_ENOTFOUND for an unknown zone. */
int orch__local_minutes(int64_t t, const char *tz, int *minutes);
/*
 * When t falls inside the quiet window [start, end) (minutes, may wrap
 * midnight) in zone tz: the time the window ends.  Otherwise FW_TIME_NONE
 * (also for a zone orch__local_minutes refuses).  UTC and zones util/tz
 * reads (cached in o->qzones) are converted without the process's TZ.
 */
int64_t orch__quiet_until(struct orch *o, int64_t t, const char *tz, int start, int end);

#endif
