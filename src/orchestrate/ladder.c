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
    l->created_at = now;
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

#define ALL_SIGNAL_KINDS                                                                           \
    ((1u << STEP_HIGH_NO_RESPONSE) | (1u << STEP_HIGH_UNRESOLVED_L2) |                             \
     (1u << STEP_HIGH_PERSIST_L2) | (1u << STEP_CRITICAL_PAGE) | (1u << STEP_CRITICAL_NO_RESPONSE))

/* ---- ladder steps firing ---- */

void orch__fire(struct engine_timer *t, int64_t due)
{
    struct ladder *l = (struct ladder *)t;
    struct orch *o = l->o;
    struct ocust *c = l->c;
    (void)due;
    for (struct ladder **pp = &c->tasks; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    orch__emit_task(o, l, "done");
    /* What a step decides (an alert, a follow-up message) leaves no state behind: quiet skips it. */
    /* Bare keeps only what writes to the customer (what a case's contact clock hears of). */
    int to_customer = l->kind == STEP_HIGH_NO_RESPONSE || l->kind == STEP_CRITICAL_NO_RESPONSE;
    if (l->kind == STEP_FOLLOWUP_REMINDER || (o->quiet && !(o->bare && to_customer))) {
        orch__ladder_free(l);
        return;
    }
    int64_t now = engine_now(o->engine);
    const struct rule_signal *s = &o->rules->signals[l->sig];
    json_t *snap = orch__snapshot(o, c->key);
    json_t *ctx = orch__customer_context(o, c, snap, now);
    orch__signal_context(o, ctx, s);
    size_t idx = l->sig;
    json_object_set_new(ctx, "issues", orch__issues_list(o, ctx, &idx, 1));
    static const char *const step_text[] = {
        "no reply from the customer 24 hours after our message",
        "still unresolved 4 hours after detection",
        "still unresolved 48 hours after detection",
        "CRITICAL and unresolved 2 hours after detection",
        "no reply from the customer 4 hours after our message",
        "follow-up reminder",
    };
    orch__set_str(ctx, "escalation.step", step_text[l->kind]);
    /* A step comes hours after the detection: say when the problem was detected, not now. */
    char fired[64];
    orch__human_time(o, orch__svs(snap, "customer.timezone"), l->fired_at, fired, sizeof fired);
    orch__set_str(ctx, "detected_at", fired);
    json_t *sigs = json_pack("[s]", s->id);
    json_t *explain = json_pack("{s:{s:O, s:s, s:s}, s:[s]}", "detection", "signals", sigs,
                                "customer", c->key, "severity", severity_name(s->severity),
                                "decided_by", orch__step_names[l->kind]);
    char extra[32];
    snprintf(extra, sizeof extra, "%lld", (long long)l->fired_at);
    struct draft d = {.customer = c->key, .kind = "ladder", .ctx = ctx, .signals = sigs,
                      .explain = explain, .status = "scheduled", .at = now, .send_at = now,
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
    case STEP_CRITICAL_NO_RESPONSE: {
        const char *ch = l->kind == STEP_HIGH_NO_RESPONSE ? "email" : "sms";
        json_t *guards = json_array();
        struct verdict v = orch__outreach_verdict(o, c, snap, s->severity, NULL, 0, now, guards, OUT_LADDER);
        d.audience = "customer";
        d.tmpl_name = "followup_no_response";
        const char *chans[] = {ch};
        orch__customer_messages(o, c, snap, chans, 1, &d, &v, guards, NULL);
        json_decref(guards);
        break;
    }
    default:
        break;
    }
    json_decref(explain);
    json_decref(sigs);
    json_decref(ctx);
    json_decref(snap);
    orch__ladder_free(l);
}

