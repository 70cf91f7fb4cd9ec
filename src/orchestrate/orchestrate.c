/*
 * orchestrate.c -- decisions: who hears about a detection, on which
 * channel, in which words, and when.
 *
 * Flow per evaluation pass of one customer (the engine's `step`): the
 * signals that fired in the pass are merged into one decision.  Internal
 * audiences first (L1 ticket, L2 Slack for CRITICAL, the chatbot context),
 * then the customer: seed 000's channel matrix (severity x open ticket),
 * tone from the customer's touch count, and the guardrails in a fixed order
 * (duplicate root cause, frequency cap, opt-out, missing address, approval,
 * quiet hours, internal detail).  Every outcome, sent or held back, is a
 * message record with its explanation.  Ladder steps become engine timers
 * and task rows; the business event that ends the problem cancels them.
 *
 * Invariants: decisions depend only on what the engine reported and the
 * engine clock, so a replay makes the same ones; every record's key is a
 * pure function of what it is about, so re-deriving never duplicates.
 */
#include "orchestrate/orchestrate.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/log.h"
#include "util/map.h"
#include "util/tz.h"
#include "util/util.h"

/* ---- small helpers ---- */

/* Remove v from a list of signal indexes; 1 when it was there. */
static int list_remove(size_t *list, size_t *n, size_t v)
{
    for (size_t i = 0; i < *n; i++)
        if (list[i] == v) {
            memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof *list);
            (*n)--;
            return 1;
        }
    return 0;
}

static int pend_remove(struct ocust *c, size_t sig)
{
    for (size_t i = 0; i < c->npending; i++)
        if (c->pending[i].sig == sig) {
            memmove(&c->pending[i], &c->pending[i + 1], (c->npending - i - 1) * sizeof *c->pending);
            c->npending--;
            return 1;
        }
    return 0;
}

/*
 * A signal joins the customer's next decision.  The merge window opens at
 * the first firing and closes at the earliest close of the severities it
 * holds (outreach.merge_window), so a CRITICAL is not kept waiting by a LOW.
 */
static void pend_add(struct orch *o, struct ocust *c, size_t sig, int64_t at)
{
    for (size_t i = 0; i < c->npending; i++)
        if (c->pending[i].sig == sig)
            return;
    c->pending = xgrow(c->pending, &c->cappending, c->npending + 1, sizeof *c->pending);
    c->pending[c->npending++] = (struct pend){.sig = sig, .at = at};
    int64_t close = at + o->cfg->merge_window[o->rules->signals[sig].severity];
    if (c->merge_close == FW_TIME_NONE || close < c->merge_close)
        c->merge_close = close;
}

/* Whether something dated `at` reached us late enough to be history being caught up. */
static int is_late(const struct orch *o, int64_t at)
{
    return o->engine && at < engine_now(o->engine) - o->cfg->late_after;
}

struct ocust *orch__cust(struct orch *o, const char *key)
{
    int created;
    struct strmap_entry *me = strmap_upsert(&o->customers, key, strlen(key), &created);
    if (created) {
        struct ocust *c = xcalloc(1, sizeof *c);
        c->key = me->key;
        c->first_outreach = c->last_outreach = FW_TIME_NONE;
        c->merge_close = c->outage_told = FW_TIME_NONE;
        tw_entry_init(&c->hold.t._tw);
        c->hold.t.fire = orch__hold_fire;
        c->hold.o = o;
        c->hold.c = c;
        me->value = c;
    }
    return me->value;
}

/* Nothing waits for a decision any more: the decision timer stops. */
static void idle_check(struct orch *o, struct ocust *c)
{
    if (!c->nheld && !c->npending) {
        engine_timer_cancel(o->engine, &c->hold.t);
        c->merge_close = FW_TIME_NONE;
    }
}

/* ---- engine sink ---- */

/* The chatbot hears that a problem is fixed (and whether we had told the customer). */
static void context_resolved(struct orch *o, struct ocust *c, const struct detection *d, size_t s)
{
    char when[FW_TIME_MAXLEN];
    fw_time_format(d->at, when);
    int told = c->sent && c->sent[s].at != FW_TIME_NONE;
    json_t *pc = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "customer_email", d->customer,
                           "proactive_context", "signal", d->signal->id, "resolution_status",
                           "resolved", "resolved_at", when, "what_to_tell_customer",
                           told ? "Good news: the issue we contacted you about has been fixed."
                                : "Good news: the issue has been fixed.");
    char *txt = fw_json_dumps(pc);
    if (o->sink.context)
        o->sink.context(o->sink.ctx, d->customer, txt);
    free(txt);
    json_decref(pc);
}

static void sink_detection(void *ctx, const struct detection *d)
{
    struct orch *o = ctx;
    if (o->next.detection)
        o->next.detection(o->next.ctx, d);
    struct ocust *c = orch__cust(o, d->customer);
    size_t s = (size_t)(d->signal - o->rules->signals);
    if (d->firing && is_late(o, d->at)) {
        /* Caught up from history: decided when the catch-up is over, if still firing. */
        if (!list_remove(c->held, &c->nheld, s))
            c->held_new = 1;
        c->held = xgrow(c->held, &c->capheld, c->nheld + 1, sizeof *c->held);
        c->held[c->nheld++] = s;
        return;
    }
    if (d->firing) {
        pend_add(o, c, s, d->at);
        return;
    }
    if (list_remove(c->held, &c->nheld, s) || pend_remove(c, s)) {
        /* Fired and resolved before its decision: never announced. */
        idle_check(o, c);
        return;
    }
    /* The problem ended: its ladder steps end with it; the chatbot hears it is fixed. */
    orch__ladder_cancel(o, c, ALL_SIGNAL_KINDS, s, "detection resolved");
    orch__outage_signal_resolved(o, c, s);
    if (!o->quiet)
        context_resolved(o, c, d, s);
}

/* The held signals join the pending ones (each once), for one decision. */
static void take_held(struct orch *o, struct ocust *c, int64_t now)
{
    for (size_t i = 0; i < c->nheld; i++)
        pend_add(o, c, c->held[i], now);
    c->nheld = 0;
}

/* A transition reported earlier never happened (engine_sink.retract). */
static void sink_retract(void *ctx, const struct detection *d)
{
    struct orch *o = ctx;
    if (o->next.retract)
        o->next.retract(o->next.ctx, d);
    if (!d->firing)
        return; /* an episode thought over goes on: nothing was said about its end */
    struct ocust *c = orch__cust(o, d->customer);
    size_t s = (size_t)(d->signal - o->rules->signals);
    if (list_remove(c->held, &c->nheld, s) || pend_remove(c, s)) {
        idle_check(o, c);
        return; /* not decided yet: nothing to take back */
    }
    /* Already decided: what was said cannot be unsaid, but its ladder stops. */
    orch__ladder_cancel(o, c, ALL_SIGNAL_KINDS, s, "detection withdrawn by a late event");
}

/* Decide now if the merge window has closed, else when it closes. */
static void decide_or_wait(struct orch *o, struct ocust *c)
{
    int64_t now = engine_now(o->engine);
    if (c->merge_close == FW_TIME_NONE || c->merge_close <= now) {
        engine_timer_cancel(o->engine, &c->hold.t);
        orch__decide(o, c);
    } else {
        engine_timer_arm(o->engine, &c->hold.t, c->merge_close);
    }
}

/* The decision timer: a merge window closed, or a catch-up is over. */
void orch__hold_fire(struct engine_timer *t, int64_t due)
{
    struct hold *h = (struct hold *)t;
    struct ocust *c = h->c;
    take_held(h->o, c, due);
    if (c->npending)
        orch__decide(h->o, c);
}

int orch_member_view(struct orch *o, const char *customer, struct orch_view *v)
{
    json_t *snap = orch__snapshot(o, customer);
    const char *order = orch__pack_var(o, snap, "order.id", v->order, sizeof v->order);
    const char *status = orch__pack_var(o, snap, "journey.status", v->status, sizeof v->status);
    json_decref(snap);
    v->has_order = order != NULL;
    v->has_status = status != NULL;
    if (!v->has_order)
        v->order[0] = '\0';
    if (!v->has_status)
        v->status[0] = '\0';
    return 0;
}

int orch_views_local(const struct rules *r)
{
    static const char *const vars[] = {"order.id", "journey.status"};
    for (size_t i = 0; i < r->ncontext; i++)
        for (size_t k = 0; k < sizeof vars / sizeof *vars; k++) {
            const struct rule_context *rc = &r->context[i];
            if (strcmp(rc->var, vars[k]) || rc->nlatest)
                continue;
            if (rc->last || rc->as != RCTX_TEXT)
                return 0; /* a time, written relative to the clock */
            for (size_t j = 0; j < rc->nkeys; j++)
                if (!strncmp(rc->keys[j], "global.", 7))
                    return 0;
        }
    return 1;
}

void orch_incident_alert(struct orch *o, const struct incident *i, const struct orch_view *views)
{
    struct comms_ctx *x = comms_ctx_new();
    orch__signal_context(o, x, i->signal);
    char tmp[64];
    comms_ctx_set_str(x, COMMS_V_brand_name, o->cfg->brand.name);
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)i->id);
    comms_ctx_set_str(x, COMMS_V_incident_id, tmp);
    comms_ctx_set_int(x, COMMS_V_incident_count, (long long)i->ncustomers);
    fw_duration_format(i->signal->window, tmp);
    comms_ctx_set_str(x, COMMS_V_incident_window, tmp);
    comms_ctx_set_str(x, COMMS_V_incident_factor_key, i->factor_key);
    comms_ctx_set_str(x, COMMS_V_incident_factor_value, i->factor_value);
    comms_ctx_set_list(x, COMMS_V_incident_customers, i->ncustomers);
    for (size_t k = 0; k < i->ncustomers; k++) {
        const struct orch_view *v = &views[k];
        comms_ctx_item_str(x, COMMS_V_incident_customers_customer, k, i->customers[k]);
        comms_ctx_item_str(x, COMMS_V_incident_customers_order, k,
                           v->has_order ? v->order : NULL);
        comms_ctx_item_str(x, COMMS_V_incident_customers_status, k,
                           v->has_status ? v->status : NULL);
        comms_ctx_item_str(x, COMMS_V_incident_customers_since, k, "just now");
    }
    json_t *sigs = json_pack("[s]", i->signal->id);
    json_t *explain = json_pack("{s:{s:I, s:i}, s:[s]}", "incident", "id", (json_int_t)i->id,
                                "customers", (int)i->ncustomers, "decided_by",
                                "systemic_alert: any signal affecting 3+ customers");
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)i->id);
    struct draft d = {.audience = "engineering",
                      .channel = "slack",
                      .customer = NULL,
                      .kind = "incident",
                      .tmpl_name = "incident",
                      .ctx = x,
                      .signals = sigs,
                      .explain = explain,
                      .status = "scheduled",
                      .at = i->at,
                      .send_at = i->at,
                      .key_extra = tmp};
    orch__emit(o, &d, NULL);
    json_decref(explain);
    json_decref(sigs);
    comms_ctx_free(x);
}

static void sink_incident(void *ctx, const struct incident *i)
{
    struct orch *o = ctx;
    if (o->next.incident)
        o->next.incident(o->next.ctx, i);
    if (strcmp(i->update, "opened") || o->quiet)
        return; /* the systemic alert is the only thing an incident decides */
    struct orch_view *views = xcalloc(i->ncustomers ? i->ncustomers : 1, sizeof *views);
    for (size_t k = 0; k < i->ncustomers; k++)
        orch_member_view(o, i->customers[k], &views[k]);
    orch_incident_alert(o, i, views);
    free(views);
}

static int is_contact(struct orch *o, const char *type)
{
    return rules_type_in_class(o->rules, type, "contact");
}

static void sink_step(void *ctx, const struct event *ev, const char *customer)
{
    struct orch *o = ctx;
    if (o->next.step)
        o->next.step(o->next.ctx, ev, customer);
    if (ev && (!strcmp(ev->type, "message.failed") || !strcmp(ev->type, "message.sent")))
        orch__on_delivery(o, ev); /* per connector, with a customer or not (failures.c) */
    if (ev && !customer && !strcmp(ev->type, RULES_KNOWN_ISSUE_TYPE))
        orch__known_event(o, ev);
    if (!customer) {
        /* A global event (an outage): every customer it made fire, each with its own window. */
        for (size_t i = 0; i < o->customers.len; i++) {
            struct ocust *gc = o->customers.entries[i].value;
            if (!gc->npending)
                continue;
            if (o->sink.turn)
                o->sink.turn(o->sink.ctx, gc->key);
            decide_or_wait(o, gc);
        }
        return;
    }
    struct ocust *c = orch__cust(o, customer);
    int64_t now = engine_now(o->engine);
    int stale = ev && ev->time < now - o->cfg->stale_after;
    if (c->nheld && c->npending) {
        /* Something fired live: it and what was caught up make one decision. */
        take_held(o, c, now);
    } else if (c->nheld && (c->held_new || (ev && is_late(o, ev->time)))) {
        /* Still catching up: the decision waits until the history stops arriving. */
        engine_timer_arm(o->engine, &c->hold.t, now + o->cfg->late_hold);
    }
    c->held_new = 0;
    /* A stale event is history: what it would have us say to the customer has passed. */
    if (ev && !stale) {
        if (!strcmp(ev->type, "message.replied"))
            orch__ladder_cancel(o, c, NO_RESPONSE_KINDS, (size_t)-2, "message.replied");
        else if (is_contact(o, ev->type))
            orch__on_contact(o, c, ev);
    }
    if (c->npending)
        decide_or_wait(o, c);
    if (ev && !stale && !strcmp(ev->type, "ticket.resolved"))
        orch__on_ticket_resolved(o, c, ev);
    if (o->known.n)
        orch__known_customer(o, customer); /* wake-ups too: a segment may read health */
}

struct engine_sink orch_engine_sink(struct orch *o, const struct engine_sink *next)
{
    if (next)
        o->next = *next;
    struct engine_sink s = {.ctx = o,
                            .detection = sink_detection,
                            .incident = sink_incident,
                            .step = sink_step,
                            .retract = sink_retract};
    return s;
}

void orch_bind_rules(struct orch *o, const struct rules *rules)
{
    o->rules = rules;
}

void orch_bind(struct orch *o, struct engine *e)
{
    o->engine = e;
    o->rules = engine_rules(e);
    /* The pack's context variables by id, once: contexts are filled per decision. */
    free(o->pack_var);
    o->pack_var = xcalloc(o->rules->ncontext ? o->rules->ncontext : 1, sizeof *o->pack_var);
    for (size_t i = 0; i < o->rules->ncontext; i++)
        o->pack_var[i] = comms_var_id(o->rules->context[i].var, strlen(o->rules->context[i].var));
}

int64_t orch_open_until(const struct orch *o)
{
    int64_t until = FW_TIME_NONE;
    for (size_t i = 0; i < o->customers.len; i++) {
        const struct ocust *c = o->customers.entries[i].value;
        if (c->npending && c->merge_close != FW_TIME_NONE &&
            (until == FW_TIME_NONE || c->merge_close > until))
            until = c->merge_close;
    }
    return until;
}

void orch_set_quiet(struct orch *o, int quiet) { o->quiet = quiet; }

void orch_set_bare(struct orch *o) { o->quiet = o->bare = 1; }

void orch_set_text_only(struct orch *o) { o->text_only = 1; }

/* ---- lifecycle ---- */

struct orch *orch_new(const struct orch_config *cfg, const struct comms *templates,
                      const struct orch_sink *sink)
{
    struct orch *o = xcalloc(1, sizeof *o);
    o->cfg = cfg;
    o->tmpl = templates;
    if (sink)
        o->sink = *sink;
    strmap_init(&o->customers);
    strmap_init(&o->zones);
    strmap_init(&o->qzones);
    /* A North American number written with separators, optionally with its +1. */
    if (regcomp(&o->phone_re,
                "^(\\+?1[ .-]?)?(\\([0-9]{3}\\)|[0-9]{3})[ .-]?[0-9]{3}[ .-][0-9]{4}$",
                REG_EXTENDED | REG_NOSUB))
        abort();
    return o;
}

void orch_free(struct orch *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->customers.len; i++) {
        struct ocust *c = o->customers.entries[i].value;
        if (o->engine)
            engine_timer_cancel(o->engine, &c->hold.t);
        free(c->held);
        while (c->tasks) {
            struct ladder *l = c->tasks;
            c->tasks = l->next;
            if (o->engine)
                engine_timer_cancel(o->engine, &l->t);
            orch__ladder_free(l);
        }
        orch__known_forget(o, c);
        free(c->hist);
        free(c->pending);
        free(c->sent);
        free(c->oheld);
        free(c);
    }
    strmap_cleanup(&o->customers);
    free(o->pack_var);
    orch__failures_cleanup(o);
    orch__known_cleanup(o);
    for (size_t i = 0; i < o->zones.len; i++)
        tz_free(o->zones.entries[i].value);
    strmap_cleanup(&o->zones);
    for (size_t i = 0; i < o->qzones.len; i++)
        tz_free(o->qzones.entries[i].value);
    strmap_cleanup(&o->qzones);
    regfree(&o->phone_re);
    free(o);
}

void orch_config_init(struct orch_config *c)
{
    memset(c, 0, sizeof *c);
    c->brand.name = NULL; /* no brand: templates read naturally without one */
    c->brand.sender_name = xstrdup("The support team");
    c->brand.support_url = xstrdup("https://support.example.com");
    c->brand.app_name = xstrdup("the app");
    c->brand.unsubscribe_url = xstrdup("https://support.example.com/unsubscribe");
    c->medium_email = 1;
    c->freq_cap = 1;
    c->freq_window = 7 * FW_DAY;
    c->cap_bypass_critical = 1;
    c->dedup_window = 24 * FW_HOUR;
    c->quiet_start = 21 * 60;
    c->quiet_end = 8 * 60;
    c->quiet_bypass_critical = 1;
    c->approval_tiers = xcalloc(1, sizeof *c->approval_tiers);
    c->approval_tiers[0] = xstrdup("enterprise");
    c->napproval_tiers = 1;
    c->followup_approval = 1;
    c->followup_reminder = 3 * FW_DAY;
    for (int i = 0; i < 4; i++)
        c->followup_task[i] = 3 * FW_DAY;
    c->reached_out_window = 7 * FW_DAY;
    c->high_no_response = 24 * FW_HOUR;
    c->high_unresolved_l2 = 4 * FW_HOUR;
    c->high_persist_l2 = 48 * FW_HOUR;
    c->critical_page = 2 * FW_HOUR;
    c->critical_no_response = 4 * FW_HOUR;
    c->late_after = 10 * FW_SECOND;
    c->late_hold = 5 * FW_SECOND;
    c->stale_after = 24 * FW_HOUR;
    for (int i = 0; i < 4; i++)
        c->merge_window[i] = 5 * FW_SECOND;
    orch__matrix_defaults(c);
    c->outage_followup = FW_HOUR;
    c->failure_channels = xcalloc(2, sizeof *c->failure_channels);
    c->failure_channels[0] = xstrdup("slack");
    c->failure_channels[1] = xstrdup("ticket");
    c->nfailure_channels = 2;
    c->connector_alert_repeat = 4 * FW_HOUR;
}

void orch_config_cleanup(struct orch_config *c)
{
    free(c->brand.name);
    free(c->brand.sender_name);
    free(c->brand.support_url);
    free(c->brand.app_name);
    free(c->brand.unsubscribe_url);
    for (size_t i = 0; i < c->napproval_tiers; i++)
        free(c->approval_tiers[i]);
    free(c->approval_tiers);
    for (int r = 0; r < 5; r++)
        for (int t = 0; t < 2; t++)
            orch_matrix_set(&c->matrix[r][t], NULL, 0);
    for (size_t i = 0; i < c->nfailure_channels; i++)
        free(c->failure_channels[i]);
    free(c->failure_channels);
    memset(c, 0, sizeof *c);
}

void orch_message_json(const struct outbox_msg *m, struct buf *out)
{
    buf_puts(out, "{\"kind\":\"message\",\"id\":");
    buf_json_str(out, m->id, strlen(m->id));
    buf_puts(out, ",\"audience\":");
    buf_json_str(out, m->audience, strlen(m->audience));
    buf_puts(out, ",\"channel\":");
    buf_json_str(out, m->channel, strlen(m->channel));
    buf_puts(out, ",\"customer\":");
    if (m->customer)
        buf_json_str(out, m->customer, strlen(m->customer));
    else
        buf_puts(out, "null");
    /* Pieces are appended, not printed: meta and explanation are long, and
       printf would scan each twice (once to size, once to copy). */
    buf_puts(out, ",\"signals\":");
    buf_puts(out, m->signals ? m->signals : "[]");
    buf_puts(out, ",\"status\":");
    buf_json_str(out, m->status, strlen(m->status));
    if (m->reason) {
        buf_puts(out, ",\"reason\":");
        buf_json_str(out, m->reason, strlen(m->reason));
    }
    buf_puts(out, ",\"at\":");
    buf_json_time(out, m->created_at);
    buf_puts(out, ",\"send_at\":");
    buf_json_time(out, m->send_at);
    buf_puts(out, ",\"recipient\":");
    if (m->recipient)
        buf_json_str(out, m->recipient, strlen(m->recipient));
    else
        buf_puts(out, "null");
    buf_puts(out, ",\"subject\":");
    if (m->subject)
        buf_json_str(out, m->subject, strlen(m->subject));
    else
        buf_puts(out, "null");
    buf_puts(out, ",\"body\":");
    if (m->body)
        buf_json_str(out, m->body, strlen(m->body));
    else
        buf_puts(out, "null");
    buf_puts(out, ",\"meta\":");
    buf_puts(out, m->meta ? m->meta : "{}");
    buf_puts(out, ",\"explanation\":");
    buf_puts(out, m->explain ? m->explain : "{}");
    buf_putc(out, '}');
}

const char *const orch__step_names[] = {
#define ORCH__STEPSTR(name, str) str,
    STEP_KINDS(ORCH__STEPSTR)
#undef ORCH__STEPSTR
};
