/*
 * ladder.c -- the escalation ladder and reminders: steps armed as engine
 * timers (exact on the virtual and wall clocks) with a task row each,
 * cancelled by the event that ends their reason, and decided again when
 * they fire.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

void orch__ladder_arm(struct orch *o, struct ocust *c, size_t sig, int64_t fired_at,
                      enum step_kind kind, int64_t delay, int64_t now, json_t *detail)
{
    struct ladder *l = xcalloc(1, sizeof *l);
    l->o = o;
    l->c = c;
    l->sig = sig;
    l->fired_at = fired_at;
    l->kind = kind;
    l->created_at = l->origin = now;
    struct buf k;
    buf_init(&k, 0);
    buf_printf(&k, "%s|%s|%s|%lld", orch__step_names[kind], c->key,
               sig == (size_t)-1 ? "-" : o->rules->signals[sig].id, (long long)fired_at);
    l->key = buf_steal(&k);
    l->detail = fw_json_dumps(detail);
    tw_entry_init(&l->t._tw);
    l->t.fire = orch__fire;
    engine_timer_arm(o->engine, &l->t, now + delay);
    l->next = c->tasks;
    c->tasks = l;
    orch__emit_task(o, l, "pending");
}

void orch__ladder_free(struct ladder *l)
{
    free(l->key);
    free(l->detail);
    free(l);
}

/* Cancel a customer's tasks matching (kind set, signal); -1 matches any signal. */
void orch__ladder_cancel(struct orch *o, struct ocust *c, unsigned kinds, size_t sig,
                         const char *why)
{
    for (struct ladder **pp = &c->tasks; *pp;) {
        struct ladder *l = *pp;
        if ((kinds & (1u << l->kind)) && (sig == (size_t)-2 || l->sig == sig)) {
            *pp = l->next;
            engine_timer_cancel(o->engine, &l->t);
            json_t *d = json_loads(l->detail, 0, NULL);
            if (!d)
                d = json_object();
            json_object_set_new(d, "cancelled_by", json_string(why));
            free(l->detail);
            l->detail = fw_json_dumps(d);
            json_decref(d);
            orch__emit_task(o, l, "cancelled");
            orch__ladder_free(l);
        } else {
            pp = &l->next;
        }
    }
}

/* ---- ladder steps firing ---- */

/* What the step is, in words, from the configured delay (the ticket never contradicts the config).
 */
static void step_text(const struct orch *o, enum step_kind k, char *out, size_t n)
{
    const struct orch_config *cfg = o->cfg;
    char d[64] = "";
    int64_t delay = k == STEP_HIGH_NO_RESPONSE       ? cfg->high_no_response
                    : k == STEP_HIGH_UNRESOLVED_L2   ? cfg->high_unresolved_l2
                    : k == STEP_HIGH_PERSIST_L2      ? cfg->high_persist_l2
                    : k == STEP_CRITICAL_PAGE        ? cfg->critical_page
                    : k == STEP_CRITICAL_NO_RESPONSE ? cfg->critical_no_response
                                                     : 0;
    if (delay)
        orch__human_duration(delay, d, sizeof d);
    switch (k) {
    case STEP_HIGH_NO_RESPONSE:
    case STEP_CRITICAL_NO_RESPONSE:
        snprintf(out, n, "no reply from the customer %s after our message", d);
        break;
    case STEP_HIGH_UNRESOLVED_L2:
    case STEP_HIGH_PERSIST_L2:
        snprintf(out, n, "still unresolved %s after detection", d);
        break;
    case STEP_CRITICAL_PAGE:
        snprintf(out, n, "CRITICAL and unresolved %s after detection", d);
        break;
    default:
        snprintf(out, n, "%s", orch__step_names[k]);
        break;
    }
}

/*
 * A "no response" follow-up, decided again as things stand now: the channel
 * matrix for the customer's ticket state (the step prefers email for HIGH,
 * SMS for CRITICAL, as seed 000's ladder says), opt-outs, the frequency cap
 * (not counting the message it follows) and quiet hours.  What changed since
 * the first decision goes into the explanation.
 */
static void followup_customer(struct orch *o, struct ladder *l, json_t *snap, struct draft *d,
                              const struct rule_signal *s)
{
    struct ocust *c = l->c;
    const char *pref = l->kind == STEP_HIGH_NO_RESPONSE ? "email" : "sms";
    const char *tid = orch__open_ticket(snap), *note, *cell[8];
    size_t n = orch__matrix_pick(o, s->severity, tid != NULL, cell, ARRAY_SIZE(cell), &note);
    /* The preferred channel if it reaches the customer, else the first of the cell that does. */
    const char *ch = NULL;
    char tmp[128];
    for (size_t i = 0; i < n && !ch; i++)
        if (!strcmp(cell[i], pref) && orch__address(c, snap, pref, tmp, sizeof tmp))
            ch = pref;
    for (size_t i = 0; i < n && !ch; i++)
        if (orch__address(c, snap, cell[i], tmp, sizeof tmp))
            ch = cell[i];
    if (!ch && n)
        ch = cell[0]; /* none reaches them: recorded as held back, with the reason */
    json_t *detail = json_loads(l->detail, 0, NULL);
    const char *then = json_string_value(json_object_get(detail, "ticket_at_decision"));
    char line[320];
    if (ch && strcmp(ch, pref) && tid && !then)
        snprintf(line, sizeof line,
                 "re-decided at send time: ticket %s opened since the first message: replying "
                 "on the ticket instead of %s",
                 tid, pref);
    else if (ch && strcmp(ch, pref))
        snprintf(line, sizeof line,
                 "re-decided at send time: %s, not %s (the channel matrix and "
                 "the customer's addresses now)",
                 ch, pref);
    else
        snprintf(line, sizeof line, "re-decided at send time: %s, as the channel matrix says",
                 ch ? ch : "no customer channel");
    json_array_append_new(json_object_get(d->explain, "decided_by"), json_string(line));
    json_decref(detail);
    struct buf guards;
    buf_init(&guards, 0);
    struct verdict v = orch__outreach_verdict(o, c, snap, s->severity, NULL, 0, d->at, &guards,
                                              OUT_LADDER, l->origin);
    size_t by = orch__outage_covering(o, snap, l->sig);
    if (!ch) {
        v.status = "suppressed";
        snprintf(v.reason, sizeof v.reason,
                 "channel_matrix: %s %s an open ticket has no customer channel now",
                 severity_name(s->severity), tid ? "with" : "without");
        ch = pref;
    } else if (by != NOSIG) {
        /* Inside a declared outage: held back like a new decision, followed up after it. */
        v.status = "suppressed";
        snprintf(v.reason, sizeof v.reason,
                 "outage: held back while a declared outage covers the customer (%s); followed up "
                 "if it persists after the outage ends",
                 o->rules->signals[by].id);
        orch__guard(&guards, "outage", v.reason);
        orch__outage_hold(c, l->sig);
    }
    d->audience = "customer";
    d->tmpl_name = "followup_no_response";
    size_t idx = l->sig;
    d->sig_idx = &idx;
    d->nsig_idx = 1;
    const char *chans[] = {ch};
    orch__customer_messages(o, c, snap, chans, 1, d, &v, &guards, NULL);
    buf_cleanup(&guards);
}

/* The follow-up reminder (seed 004): the ticket's owner hears, on the ticket. */
static void reminder(struct orch *o, struct ladder *l, json_t *snap, int64_t now)
{
    json_t *detail = json_loads(l->detail, 0, NULL);
    const char *tid = json_string_value(json_object_get(detail, "ticket_id"));
    struct comms_ctx *ctx = orch__customer_context(o, l->c, snap, now);
    comms_ctx_set_str(ctx, COMMS_V_ticket_id, tid);
    comms_ctx_set_str(ctx, COMMS_V_followup_level,
                      json_string_value(json_object_get(detail, "level")));
    comms_ctx_set_str(ctx, COMMS_V_escalation_step,
                      "follow-up reminder: check back with the customer");
    comms_ctx_set_str(ctx, COMMS_V_signal_name, "Follow-up reminder");
    json_t *sigs = json_array(), *meta = json_pack("{s:s?}", "ticket_id", tid);
    json_t *explain = json_pack("{s:[s]}", "decided_by",
                                "followup_reminder: the reminder set when the ticket was resolved");
    struct draft d = {.audience = "l1",
                      .channel = tid ? "internal_note" : "ticket",
                      .customer = l->c->key,
                      .kind = "reminder",
                      .tmpl_name = "followup_reminder",
                      .ctx = ctx,
                      .signals = sigs,
                      .explain = explain,
                      .meta = meta,
                      .recipient = tid,
                      .status = "scheduled",
                      .at = now,
                      .send_at = now,
                      .key_extra = l->key};
    orch__emit(o, &d, NULL);
    json_decref(explain);
    json_decref(meta);
    json_decref(sigs);
    comms_ctx_free(ctx);
    json_decref(detail);
}

static void unlink_task(struct ladder *l)
{
    for (struct ladder **pp = &l->c->tasks; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
}

void orch__fire(struct engine_timer *t, int64_t due)
{
    struct ladder *l = (struct ladder *)t;
    struct orch *o = l->o;
    struct ocust *c = l->c;
    (void)due;
    unlink_task(l);
    orch__emit_task(o, l, "done");
    if (l->kind == STEP_OUTAGE_FOLLOWUP) {
        orch__ladder_free(l);
        orch__outage_followup(o, c); /* decides: state, so also when quiet */
        return;
    }
    /*
     * An internal step (an alert to L2 or engineering) leaves no state
     * behind: quiet skips it.  A follow-up to the customer does: the fact
     * that it went out (what "we wrote to you on" and an outage's re-armed
     * follow-up read), and, held back by an outage, its wait for the end;
     * quiet decides it as live does, and emit, quiet, renders nothing.
     * Skipping it once left a replayed orchestrator with older facts than
     * the live one (the cluster's failover test found it).
     */
    int to_customer = l->kind == STEP_HIGH_NO_RESPONSE || l->kind == STEP_CRITICAL_NO_RESPONSE;
    if (o->quiet && !to_customer) {
        orch__ladder_free(l);
        return;
    }
    int64_t now = engine_now(o->engine);
    json_t *snap = orch__snapshot(o, c->key);
    if (l->kind == STEP_FOLLOWUP_REMINDER) {
        reminder(o, l, snap, now);
        json_decref(snap);
        orch__ladder_free(l);
        return;
    }
    const struct rule_signal *s = &o->rules->signals[l->sig];
    struct comms_ctx *ctx = orch__customer_context(o, c, snap, now);
    orch__signal_context(o, ctx, s);
    size_t idx = l->sig;
    orch__issues_list(o, ctx, &idx, 1);
    orch__facts_context(o, c, ctx, snap, &idx, 1, now);
    char text[160];
    step_text(o, l->kind, text, sizeof text);
    comms_ctx_set_str(ctx, COMMS_V_escalation_step, text);
    /* A step comes hours after the detection: say when the problem was detected, not now. */
    char fired[96];
    orch__human_time(o, orch__svs(snap, "customer.timezone"), l->fired_at, fired, sizeof fired);
    comms_ctx_set_str(ctx, COMMS_V_detected_at, fired);
    /* sigs: [id]; explain: {detection: {signals, customer, severity}, decided_by: [step]} */
    json_t *sigs = json_array(), *det = json_object(), *explain = json_object(),
           *by = json_array();
    json_array_append_new(sigs, json_string(s->id));
    json_object_set_nocheck(det, "signals", sigs);
    orch__jset_str(det, "customer", c->key);
    orch__jset_lit(det, "severity", severity_name(s->severity));
    json_object_set_new_nocheck(explain, "detection", det);
    json_array_append_new(by, json_string_nocheck(orch__step_names[l->kind]));
    json_object_set_new_nocheck(explain, "decided_by", by);
    char extra[32];
    snprintf(extra, sizeof extra, "%lld", (long long)l->fired_at);
    struct draft d = {.customer = c->key,
                      .kind = "ladder",
                      .ctx = ctx,
                      .signals = sigs,
                      .explain = explain,
                      .status = "scheduled",
                      .at = now,
                      .send_at = now,
                      .key_extra = extra};
    switch (l->kind) {
    case STEP_HIGH_UNRESOLVED_L2:
    case STEP_HIGH_PERSIST_L2:
        d.audience = "l2";
        d.channel = "slack";
        d.tmpl_name = "escalation";
        orch__emit(o, &d, NULL);
        break;
    case STEP_CRITICAL_PAGE:
        d.audience = "engineering";
        d.channel = "slack";
        d.tmpl_name = "page";
        orch__emit(o, &d, NULL);
        break;
    case STEP_HIGH_NO_RESPONSE:
    case STEP_CRITICAL_NO_RESPONSE:
        followup_customer(o, l, snap, &d, s);
        break;
    default:
        break;
    }
    json_decref(explain);
    json_decref(sigs);
    comms_ctx_free(ctx);
    json_decref(snap);
    orch__ladder_free(l);
}
