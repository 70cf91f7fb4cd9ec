/*
 * decide.c -- one decision for a customer's new detections: every problem
 * firing for the customer in one message per audience and channel (seed
 * 000: SIG-002 + SIG-008 make ONE message), the L1 ticket with the draft,
 * L2 and the webhook, the chatbot's context, and the ladder armed.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

void orch__decide(struct orch *o, struct ocust *c)
{
    int64_t now = engine_now(o->engine);
    size_t n = c->npending;
    size_t main = c->pending[0];
    for (size_t i = 1; i < n; i++)
        if (o->rules->signals[c->pending[i]].severity > o->rules->signals[main].severity)
            main = c->pending[i];
    const struct rule_signal *ms = &o->rules->signals[main];
    enum severity sev = ms->severity;
    json_t *snap = orch__snapshot(o, c->key);
    json_t *ctx = orch__customer_context(o, c, snap, now);
    orch__signal_context(o, ctx, ms);
    /*
     * Merge: one message addresses every problem the customer has right now,
     * the new ones first, then those already firing (seed 000: SIG-002 +
     * SIG-008 make ONE message).
     */
    size_t all[64], nall = 0;
    for (size_t i = 0; i < n && nall < ARRAY_SIZE(all); i++)
        all[nall++] = c->pending[i];
    size_t ai;
    json_t *act;
    json_array_foreach(json_object_get(snap, "active_detections"), ai, act)
    {
        const struct rule_signal *as =
            rules_signal(o->rules, json_string_value(json_object_get(act, "signal")) ?: "");
        size_t idx = as ? (size_t)(as - o->rules->signals) : (size_t)-1;
        int dup = idx == (size_t)-1;
        for (size_t k = 0; k < nall && !dup; k++)
            dup = all[k] == idx;
        if (!dup && nall < ARRAY_SIZE(all))
            all[nall++] = idx;
    }
    json_object_set_new(ctx, "issues", orch__issues_list(o, ctx, all, nall));
    json_object_set_new(ctx, "merged", json_boolean(nall > 1));
    json_t *sigs = orch__signals_array(o, all, nall);
    const char *tid = orch__open_ticket(snap);
    const char *roots[16];
    size_t nroots = 0;
    for (size_t i = 0; i < n && nroots < ARRAY_SIZE(roots); i++)
        roots[nroots++] = o->rules->signals[c->pending[i]].root_cause
                              ? o->rules->signals[c->pending[i]].root_cause
                              : o->rules->signals[c->pending[i]].id;
    json_t *explain = json_pack("{s:{s:O, s:s, s:s}, s:[]}", "detection", "signals", sigs,
                                "customer", c->key, "severity", severity_name(sev), "decided_by");
    json_t *why = json_object_get(explain, "decided_by");
    char line[256];

    /* External channels from the matrix. */
    const char *chans[4];
    size_t nchans = 0;
    const char *internal_note = NULL;
    switch (sev) {
    case SEV_CRITICAL:
        if (tid) {
            chans[nchans++] = "ticket_reply";
            chans[nchans++] = "sms";
        } else {
            chans[nchans++] = "email";
            chans[nchans++] = "sms";
            chans[nchans++] = "push";
        }
        break;
    case SEV_HIGH:
        chans[nchans++] = tid ? "ticket_reply" : "email";
        break;
    case SEV_MEDIUM:
        if (tid)
            internal_note = tid;
        else if (o->cfg->medium_email)
            chans[nchans++] = "email";
        break;
    case SEV_LOW:
        chans[nchans++] = "in_app";
        break;
    }
    snprintf(line, sizeof line, "channel_matrix: %s %s an open ticket -> %s%s%s",
             severity_name(sev), tid ? "with" : "without",
             nchans ? chans[0] : (internal_note ? "internal note" : "internal only"),
             nchans > 1 ? " + " : "", nchans > 1 ? chans[1] : "");
    json_array_append_new(why, json_string(line));
    if (nall > 1) {
        snprintf(line, sizeof line,
                 "merge: %zu problems (%zu new, %zu already firing) in one message", nall, n,
                 nall - n);
        json_array_append_new(why, json_string(line));
    }
    snprintf(line, sizeof line, "tone: level %lld (%lld contacts in 7 days)",
             (long long)json_integer_value(json_object_get(json_object_get(ctx, "tone"), "level")),
             (long long)json_integer_value(json_object_get(ctx, "contacts")));
    json_array_append_new(why, json_string(line));

    /* The customer message first, so internal records can carry it as the draft. */
    struct comms_rendered draft = {0};
    const char *tname = nall > 1 ? "merged" : ms->id;
    struct draft base = {
        .audience = "customer",
        .customer = c->key,
        .kind = "alert",
        .tmpl_name = tname,
        .ctx = ctx,
        .signals = sigs,
        .explain = explain,
        .at = now,
    };
    if (nchans) {
        json_t *guards = json_array();
        struct verdict v = orch__outreach_verdict(o, c, snap, sev, roots, nroots, now, guards, OUT_PROACTIVE);
        int sent = orch__customer_messages(o, c, snap, chans, nchans, &base, &v, guards, &draft);
        if (sent)
            orch__note_outreach(c, roots, nroots, now);
        json_decref(guards);
    } else {
        /* Render the draft anyway for the L1 ticket, without sending it. */
        const struct comms_tmpl *t = comms_find(o->tmpl, "customer", "email", tname);
        if (t && !o->quiet)
            comms_render(t, ctx, &draft);
    }
    if (draft.subject)
        orch__set_str(ctx, "draft.subject", draft.subject);
    if (draft.text)
        orch__set_str(ctx, "draft.text", draft.text);
    const char *sent_tag = json_integer_value(json_object_get(ctx, "contacts")) >= 3 ? "High"
                           : json_integer_value(json_object_get(ctx, "contacts")) == 2 ? "Medium"
                                                                                       : "Low";
    orch__set_str(ctx, "sentiment_risk", sent_tag);

    /* Internal: the L1 alert ticket (MEDIUM and up), grouped by the signal's team. */
    if (sev >= SEV_MEDIUM) {
        char tag_sig[64], tag_sev[64], lc[32];
        orch__lower_copy(ms->id, lc, sizeof lc);
        snprintf(tag_sig, sizeof tag_sig, "signal_%s", lc);
        orch__lower_copy(severity_name(sev), lc, sizeof lc);
        snprintf(tag_sev, sizeof tag_sev, "severity_%s", lc);
        json_t *meta = json_pack("{s:s, s:[s,s,s], s:s, s:s?}", "priority", orch__priority_of(sev),
                                 "tags", "proactive_alert", tag_sig, tag_sev, "group",
                                 orch__group_of(ms->team), "requester_name",
                                 json_string_value(json_object_get(json_object_get(ctx, "customer"), "name")));
        struct draft d = {.audience = "l1", .channel = "ticket", .customer = c->key,
                          .kind = "alert", .tmpl_name = ms->id, .ctx = ctx, .signals = sigs,
                          .explain = explain, .meta = meta, .status = "scheduled", .at = now,
                          .send_at = now};
        const char *email = orch__svs(snap, "customer.email");
        d.recipient = email ? email : (strchr(c->key, '@') ? c->key : NULL);
        orch__emit(o, &d, NULL);
        json_decref(meta);
    }
    if (internal_note) {
        json_t *meta = json_pack("{s:s}", "ticket_id", internal_note);
        struct draft d = {.audience = "l1", .channel = "internal_note", .customer = c->key,
                          .kind = "alert", .tmpl_name = "default", .ctx = ctx, .signals = sigs,
                          .explain = explain, .meta = meta, .recipient = internal_note,
                          .status = "scheduled", .at = now, .send_at = now};
        orch__emit(o, &d, NULL);
        json_decref(meta);
    }
    /* The generic webhook, for systems that want every alert (Standard Webhooks signed). */
    if (o->cfg->webhook) {
        struct draft d = {.audience = "l2", .channel = "webhook", .customer = c->key,
                          .kind = "alert", .tmpl_name = ms->id, .ctx = ctx, .signals = sigs,
                          .explain = explain, .status = "scheduled", .at = now, .send_at = now};
        orch__emit(o, &d, NULL);
    }
    /* L2/Eng Slack for CRITICAL, always. */
    if (sev == SEV_CRITICAL) {
        struct draft d = {.audience = "l2", .channel = "slack", .customer = c->key, .kind = "alert",
                          .tmpl_name = "default", .ctx = ctx, .signals = sigs, .explain = explain,
                          .status = "scheduled", .at = now, .send_at = now};
        orch__emit(o, &d, NULL);
    }
    /* The chatbot context (L0). */
    {
        struct comms_rendered bot = {0};
        const struct comms_tmpl *t = comms_find(o->tmpl, "chatbot", "chatbot", ms->id);
        if (t && !o->quiet)
            comms_render(t, ctx, &bot);
        char when[FW_TIME_MAXLEN];
        fw_time_format(now, when);
        json_t *issues = json_object_get(ctx, "issues");
        const char *issue = json_string_value(json_object_get(json_array_get(issues, 0), "headline"));
        const char *email = orch__svs(snap, "customer.email");
        json_t *pc = json_pack(
            "{s:s?, s:{s:s, s:O, s:s?, s:s, s:s, s:s, s:s?, s:b}}", "customer_email",
            email ? email : (strchr(c->key, '@') ? c->key : NULL), "proactive_context", "signal",
            ms->id, "signals", sigs, "issue", issue, "detected_at", when, "customer_impact",
            ms->description ? ms->description : ms->name, "resolution_status",
            "open: the team has been alerted", "what_to_tell_customer", bot.text, "already_reached_out",
            c->last_outreach != FW_TIME_NONE);
        char *txt = fw_json_dumps(pc);
        if (o->sink.context && !o->quiet)
            o->sink.context(o->sink.ctx, c->key, txt);
        struct draft d = {.audience = "chatbot", .channel = "chatbot", .customer = c->key,
                          .kind = "alert", .tmpl_name = ms->id, .ctx = ctx, .signals = sigs,
                          .explain = explain, .meta = pc, .recipient = c->key,
                          .status = "scheduled", .at = now, .send_at = now};
        orch__emit(o, &d, NULL);
        free(txt);
        json_decref(pc);
        comms_rendered_cleanup(&bot);
    }
    /* The escalation ladder, per signal. */
    for (size_t i = 0; i < n; i++) {
        size_t s = c->pending[i];
        enum severity sv2 = o->rules->signals[s].severity;
        json_t *detail = json_pack("{s:s, s:s}", "signal", o->rules->signals[s].id, "severity",
                                   severity_name(sv2));
        if (sv2 == SEV_HIGH) {
            orch__ladder_arm(o, c, s, now, STEP_HIGH_UNRESOLVED_L2, o->cfg->high_unresolved_l2, now, detail);
            orch__ladder_arm(o, c, s, now, STEP_HIGH_NO_RESPONSE, o->cfg->high_no_response, now, detail);
            orch__ladder_arm(o, c, s, now, STEP_HIGH_PERSIST_L2, o->cfg->high_persist_l2, now, detail);
        } else if (sv2 == SEV_CRITICAL) {
            orch__ladder_arm(o, c, s, now, STEP_CRITICAL_PAGE, o->cfg->critical_page, now, detail);
            orch__ladder_arm(o, c, s, now, STEP_CRITICAL_NO_RESPONSE, o->cfg->critical_no_response, now,
                       detail);
        }
        json_decref(detail);
    }
    comms_rendered_cleanup(&draft);
    json_decref(explain);
    json_decref(sigs);
    json_decref(ctx);
    json_decref(snap);
    c->npending = 0;
}

