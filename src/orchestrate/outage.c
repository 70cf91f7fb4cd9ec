/*
 * outage.c -- outage-aware outreach (Alertmanager's inhibition, applied to
 * customers).  A signal with `outreach: outage` says the customer is inside
 * a declared outage.  Its firing is the customer's one outage message (what
 * is happening, what we are doing, when to expect news); while it fires,
 * the problems it explains are decided with their customer messages held
 * back (internal alerts still go); when it ends, the customer who was told
 * gets the update, and each held-back problem still firing
 * outreach.outage_followup later (1h) is decided then, as usual.
 */

#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/util.h"

static int explains(const struct rule_signal *os, const struct rule_signal *s)
{
    if (os == s || s->outage)
        return 0;
    if (!os->nexplains)
        return 1;
    for (size_t i = 0; i < os->nexplains; i++)
        if (!strcmp(os->explains[i], s->id))
            return 1;
    return 0;
}

size_t orch__outage_covering(struct orch *o, json_t *snap, size_t s)
{
    size_t i;
    json_t *act;
    json_array_foreach (json_object_get(snap, "active_detections"), i, act) {
        const struct rule_signal *os =
            rules_signal(o->rules, json_string_value(json_object_get(act, "signal")) ?: "");
        if (os && os->outage && explains(os, &o->rules->signals[s]))
            return (size_t)(os - o->rules->signals);
    }
    return NOSIG;
}

/* What templates may say about the outage: area, impact, times in the customer's words. */
static void outage_context(struct orch *o, struct comms_ctx *ctx, json_t *snap, int64_t started)
{
    if (o->quiet)
        return;
    const char *zone = orch__svs(snap, "customer.timezone");
    char tmp[128];
    orch__human_time(o, zone, started, tmp, sizeof tmp);
    comms_ctx_set_str(ctx, COMMS_V_outage_started_at, tmp);
    json_t *glob = engine_global_object(o->engine);
    const char *eta = json_string_value(json_object_get(glob, "outage.eta"));
    int64_t t;
    comms_ctx_unset(ctx, COMMS_V_outage_eta);
    if (eta && !fw_time_parse(eta, strlen(eta), &t)) {
        orch__human_time(o, zone, t, tmp, sizeof tmp);
        comms_ctx_set_str(ctx, COMMS_V_outage_eta, tmp);
    }
    json_decref(glob);
}

/* One outage message (or its update) per channel of the matrix's outage row. */
static int outage_message(struct orch *o, struct ocust *c, size_t osig, json_t *snap,
                          const char *tmpl, const char *line, int64_t started)
{
    int64_t now = engine_now(o->engine);
    const struct rule_signal *os = &o->rules->signals[osig];
    struct comms_ctx *ctx = orch__customer_context(o, c, snap, now);
    orch__signal_context(o, ctx, os);
    outage_context(o, ctx, snap, started);
    if (!strcmp(tmpl, "outage_resolved") && !o->quiet) {
        char tmp[128];
        orch__human_time(o, orch__svs(snap, "customer.timezone"), now, tmp, sizeof tmp);
        comms_ctx_set_str(ctx, COMMS_V_outage_resolved_at, tmp);
    }
    orch__facts_context(o, c, ctx, snap, &osig, 1, now);
    json_t *sigs = json_pack("[s]", os->id);
    const char *tid = orch__open_ticket(snap), *chans[8], *note;
    size_t n = orch__matrix_pick(o, ORCH_ROW_OUTAGE, tid != NULL, chans, ARRAY_SIZE(chans), &note);
    json_t *explain =
        json_pack("{s:{s:O, s:s, s:s}, s:[s]}", "detection", "signals", sigs, "customer", c->key,
                  "severity", severity_name(os->severity), "decided_by", line);
    char cell[160];
    snprintf(cell, sizeof cell, "channel_matrix: outage %s an open ticket -> %s",
             tid ? "with" : "without", n ? chans[0] : "none");
    json_array_append_new(json_object_get(explain, "decided_by"), json_string(cell));
    struct buf guards;
    buf_init(&guards, 0);
    struct verdict v = orch__outreach_verdict(o, c, snap, os->severity, NULL, 0, now, &guards,
                                              OUT_NOTICE, FW_TIME_NONE);
    struct draft d = {.audience = "customer",
                      .customer = c->key,
                      .kind = tmpl,
                      .tmpl_name = tmpl,
                      .ctx = ctx,
                      .signals = sigs,
                      .explain = explain,
                      .at = now,
                      .sig_idx = &osig,
                      .nsig_idx = 1};
    int sent = n ? orch__customer_messages(o, c, snap, chans, n, &d, &v, &guards, NULL) : 0;
    if (sent) {
        const char *root = os->root_cause ? os->root_cause : os->id;
        orch__note_outreach(c, &root, 1, now, 1);
    }
    buf_cleanup(&guards);
    json_decref(explain);
    json_decref(sigs);
    comms_ctx_free(ctx);
    return sent;
}

/* The chatbot hears about the outage, and whether the customer was told. */
static void outage_chatbot(struct orch *o, struct ocust *c, size_t osig, json_t *snap, int told)
{
    if (o->quiet)
        return;
    int64_t now = engine_now(o->engine);
    const struct rule_signal *os = &o->rules->signals[osig];
    struct comms_ctx *ctx = orch__customer_context(o, c, snap, now);
    orch__signal_context(o, ctx, os);
    outage_context(o, ctx, snap, now);
    orch__facts_context(o, c, ctx, snap, &osig, 1, now);
    struct comms_rendered bot = {0};
    const struct comms_tmpl *t = comms_find(o->tmpl, "chatbot", "chatbot", "outage");
    if (t)
        comms_render_ctx(t, ctx, &bot);
    json_t *pc = json_pack(
        "{s:s?, s:{s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s?, s:b}}", "customer_email",
        orch__svs(snap, "customer.email") ?: (strchr(c->key, '@') ? c->key : NULL),
        "proactive_context", "signal", os->id, "issue", "Service disruption in the customer's area",
        "area", comms_ctx_str(ctx, COMMS_V_outage_area), "impact",
        comms_ctx_str(ctx, COMMS_V_outage_impact), "eta", comms_ctx_str(ctx, COMMS_V_outage_eta),
        "resolution_status", "open: the network team is restoring service", "what_to_tell_customer",
        bot.text, "already_reached_out", told);
    char *txt = fw_json_dumps(pc);
    if (o->sink.context)
        o->sink.context(o->sink.ctx, c->key, txt);
    free(txt);
    /* The record the chatbot connector delivers, as for any decision's context. */
    json_t *sigs = json_pack("[s]", os->id);
    json_t *explain = json_pack("{s:[s]}", "decided_by",
                                "outage: the chatbot explains the outage to the customer");
    struct draft d = {.audience = "chatbot", .channel = "chatbot", .customer = c->key,
                      .kind = "outage", .tmpl_name = "outage", .ctx = ctx, .signals = sigs,
                      .explain = explain, .meta = pc, .recipient = c->key,
                      .status = "scheduled", .at = now, .send_at = now};
    orch__emit(o, &d, NULL);
    json_decref(explain);
    json_decref(sigs);
    json_decref(pc);
    comms_rendered_cleanup(&bot);
    comms_ctx_free(ctx);
}

void orch__outage_decide(struct orch *o, struct ocust *c, size_t osig, json_t *snap)
{
    int64_t now = engine_now(o->engine);
    int sent = outage_message(o, c, osig, snap, "outage",
                              "outage: one message per customer inside the outage; the problems "
                              "it explains are held back until it ends",
                              now);
    c->outage_told = sent ? now : FW_TIME_NONE;
    outage_chatbot(o, c, osig, snap, sent);
}

void orch__outage_hold(struct ocust *c, size_t s)
{
    for (size_t i = 0; i < c->noheld; i++)
        if (c->oheld[i] == s)
            return;
    c->oheld = xgrow(c->oheld, &c->capoheld, c->noheld + 1, sizeof *c->oheld);
    c->oheld[c->noheld++] = s;
}

void orch__outage_signal_resolved(struct orch *o, struct ocust *c, size_t s)
{
    if (!o->rules->signals[s].outage) {
        for (size_t i = 0; i < c->noheld; i++)
            if (c->oheld[i] == s) {
                memmove(&c->oheld[i], &c->oheld[i + 1], (c->noheld - i - 1) * sizeof *c->oheld);
                c->noheld--;
                break;
            }
        if (!c->noheld)
            orch__ladder_cancel(o, c, 1u << STEP_OUTAGE_FOLLOWUP, (size_t)-2,
                                "every held-back problem resolved");
        return;
    }
    int64_t now = engine_now(o->engine);
    if (c->outage_told != FW_TIME_NONE) {
        json_t *snap = orch__snapshot(o, c->key);
        outage_message(o, c, s, snap, "outage_resolved",
                       "outage_update: the outage the customer was told about is over",
                       c->outage_told);
        json_decref(snap);
        c->outage_told = FW_TIME_NONE;
    }
    if (!c->noheld)
        return;
    for (struct ladder *l = c->tasks; l; l = l->next)
        if (l->kind == STEP_OUTAGE_FOLLOWUP)
            return;
    json_t *ids = orch__signals_array(o, c->oheld, c->noheld);
    json_t *detail = json_pack("{s:o, s:s}", "signals", ids, "outage", o->rules->signals[s].id);
    orch__ladder_arm(o, c, NOSIG, now, STEP_OUTAGE_FOLLOWUP, o->cfg->outage_followup, now, detail);
    json_decref(detail);
}

/*
 * A held-back problem the customer had been told about before the outage
 * (its "no response" follow-up fell inside it): the follow-up is due now.
 */
static int rearm_followup(struct orch *o, struct ocust *c, size_t s, int64_t now)
{
    enum severity sv = o->rules->signals[s].severity;
    int64_t told = c->sent ? c->sent[s].at : FW_TIME_NONE;
    if (told == FW_TIME_NONE || (sv != SEV_HIGH && sv != SEV_CRITICAL))
        return 0;
    json_t *detail = json_pack("{s:s, s:s, s:s}", "signal", o->rules->signals[s].id, "severity",
                               severity_name(sv), "after", "outage");
    orch__ladder_arm(o, c, s, told,
                     sv == SEV_HIGH ? STEP_HIGH_NO_RESPONSE : STEP_CRITICAL_NO_RESPONSE, 0, now,
                     detail);
    c->tasks->origin = told; /* follows up that message: the cap does not count it */
    json_decref(detail);
    return 1;
}

void orch__outage_followup(struct orch *o, struct ocust *c)
{
    size_t n = c->noheld, nfresh = 0;
    size_t *idx = c->oheld;
    c->oheld = NULL;
    c->noheld = c->capoheld = 0;
    int64_t now = engine_now(o->engine);
    /* Told before the outage: their follow-up now; never told: decided now, as usual. */
    for (size_t i = 0; i < n; i++)
        if (!rearm_followup(o, c, idx[i], now))
            idx[nfresh++] = idx[i];
    if (nfresh) {
        json_t *snap = orch__snapshot(o, c->key);
        char line[160], d[64];
        orch__human_duration(o->cfg->outage_followup, d, sizeof d);
        snprintf(line, sizeof line,
                 "outage_followup: still firing %s after the outage that held it back ended", d);
        orch__decide_followup(o, c, snap, idx, nfresh, line);
        json_decref(snap);
    }
    free(idx);
}
