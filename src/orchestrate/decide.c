/*
 * decide.c -- one decision for a customer's new detections: every problem
 * firing for the customer in one message per audience and channel (seed
 * 000: SIG-002 + SIG-008 make ONE message), the L1 ticket with the draft,
 * L2 and the webhook, the chatbot's context, and the ladder armed.
 *
 * What fired inside one merge window arrives here together (orchestrate.c).
 * An outage signal's firing is decided on its own (outage.c); the problems
 * an outage explains are decided with their customer messages held back.
 * One message is about problems of one outreach type (a journey alert, a
 * check-in, adoption help, a milestone): what fired together is decided
 * per type, journey alerts first, so a check-in never reads "we're fixing
 * a few things" and a milestone is never merged into a problem.
 */

#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

/* What one decision is about, shared by its parts. */
struct decision {
    const size_t *idx; /* the new signals */
    size_t n;
    size_t *all; /* the new ones first, then those already firing (not held by an outage) */
    size_t nall;
    const struct rule_signal *ms; /* the most severe new signal */
    enum severity sev;
    json_t *snap, *sigs, *explain;
    char *explain_txt; /* explain dumped once its lines are all there, for every record */
    struct comms_ctx *ctx; /* what its templates may say */
    const char *tid; /* the open ticket, or NULL */
    const char **roots;
    size_t nroots;
    const char *hold; /* why customer messages are held back, or NULL */
    const char *tname;
    int64_t now;
    int sent;     /* customer messages that count as outreach */
    int followup; /* a held-back problem decided later: its internal alerts already went */
    const char *apart; /* the other outreach types decided on their own in this window, or NULL */
    int secondary;     /* not the window's first type: the chatbot keeps the first one's context */
};

/* Outreach types in the order a window's decisions are made, and their merged templates. */
enum family { FAM_JOURNEY, FAM_CHECK_IN, FAM_ADOPTION, FAM_MILESTONE, NFAM };
static const char *const fam_type[NFAM] = {"journey_alert", "check_in", "adoption_help",
                                           "success_milestone"};
static const char *const fam_merged[NFAM] = {"merged", "check_in", "adoption_help",
                                             "success_milestone"};

const char *orch_outreach_type(const struct rule_signal *s)
{
    const char *rc = s && s->root_cause ? s->root_cause : "";
    if (!strcmp(rc, "usage_decline") || !strcmp(rc, "risk_indicators") || !strcmp(rc, "low_health"))
        return fam_type[FAM_CHECK_IN];
    if (!strncmp(rc, "adoption_", 9) || !strcmp(rc, "onboarding_stall"))
        return fam_type[FAM_ADOPTION];
    if (!strncmp(rc, "milestone_", 10))
        return fam_type[FAM_MILESTONE];
    return fam_type[FAM_JOURNEY];
}

static enum family family_of(const struct rule_signal *s)
{
    const char *t = orch_outreach_type(s);
    for (int f = 0; f < NFAM; f++)
        if (t == fam_type[f])
            return (enum family)f;
    return FAM_JOURNEY;
}

static int in_list(const size_t *v, size_t n, size_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/*
 * The merged list: new signals, then the others firing of the same outreach
 * type, except outage and held-back ones.
 */
static void gather(struct orch *o, struct ocust *c, struct decision *D)
{
    size_t cap = 0;
    for (size_t i = 0; i < D->n; i++) {
        D->all = xgrow(D->all, &cap, D->nall + 1, sizeof *D->all);
        D->all[D->nall++] = D->idx[i];
    }
    /* The most severe first (stable): the message leads with what matters most. */
    for (size_t i = 1; i < D->nall; i++)
        for (size_t k = i; k > 0 && o->rules->signals[D->all[k]].severity >
                                        o->rules->signals[D->all[k - 1]].severity;
             k--) {
            size_t t = D->all[k];
            D->all[k] = D->all[k - 1];
            D->all[k - 1] = t;
        }
    size_t ai;
    json_t *act;
    json_array_foreach (json_object_get(D->snap, "active_detections"), ai, act) {
        const struct rule_signal *as =
            rules_signal(o->rules, json_string_value(json_object_get(act, "signal")) ?: "");
        if (!as || as->outage)
            continue;
        size_t x = (size_t)(as - o->rules->signals);
        if (in_list(D->all, D->nall, x) || in_list(c->oheld, c->noheld, x) ||
            family_of(as) != family_of(D->ms))
            continue;
        D->all = xgrow(D->all, &cap, D->nall + 1, sizeof *D->all);
        D->all[D->nall++] = x;
    }
    D->roots = xcalloc(D->n ? D->n : 1, sizeof *D->roots);
    for (size_t i = 0; i < D->n; i++) {
        const struct rule_signal *s = &o->rules->signals[D->idx[i]];
        D->roots[D->nroots++] = s->root_cause ? s->root_cause : s->id;
    }
}

static void why(struct decision *D, const char *line)
{
    json_array_append_new(json_object_get(D->explain, "decided_by"), json_string(line));
}

/* The customer's messages, through the matrix and the guardrails; the draft for the L1. */
static void decide_customer(struct orch *o, struct ocust *c, struct decision *D,
                            const char *const *chans, size_t nchans, struct comms_rendered *draft)
{
    struct draft base = {.audience = "customer",
                         .customer = c->key,
                         .kind = "alert",
                         .tmpl_name = D->tname,
                         .ctx = D->ctx,
                         .signals = D->sigs,
                         .explain = D->explain,
                         .explain_txt = D->explain_txt,
                         .at = D->now,
                         .sig_idx = D->all,
                         .nsig_idx = D->nall};
    if (!nchans) {
        /* Render the draft anyway for the L1 ticket, without sending it. */
        const struct comms_tmpl *t = comms_find(o->tmpl, "customer", "email", D->tname);
        if (t && !o->quiet)
            comms_render_ctx(t, D->ctx, draft);
        return;
    }
    struct buf guards;
    buf_init(&guards, 0);
    struct verdict v;
    if (D->hold) {
        /* Held back by an outage: that is the reason, whatever else would have applied. */
        v = (struct verdict){.status = "suppressed", .send_at = D->now};
        snprintf(v.reason, sizeof v.reason, "%s", D->hold);
        orch__guard(&guards, "outage", D->hold);
    } else {
        v = orch__outreach_verdict(o, c, D->snap, D->sev, D->roots, D->nroots, D->now, &guards,
                                   OUT_PROACTIVE, FW_TIME_NONE);
    }
    D->sent = orch__customer_messages(o, c, D->snap, chans, nchans, &base, &v, &guards, draft);
    if (D->sent)
        orch__note_outreach(c, D->roots, D->nroots, D->now, 0);
    buf_cleanup(&guards);
}

/* An internal record of this decision, sent at once: the fields every one of them shares. */
static void emit_internal_pre(struct orch *o, struct ocust *c, struct decision *D,
                              const char *audience, const char *channel, const char *tmpl,
                              json_t *meta, const char *recipient,
                              const struct comms_rendered *pre, int pre_rc)
{
    struct draft d = {.audience = audience,
                      .channel = channel,
                      .customer = c->key,
                      .kind = "alert",
                      .tmpl_name = tmpl,
                      .ctx = D->ctx,
                      .signals = D->sigs,
                      .explain = D->explain,
                      .explain_txt = D->explain_txt,
                      .meta = meta,
                      .recipient = recipient,
                      .status = "scheduled",
                      .at = D->now,
                      .send_at = D->now,
                      .pre = pre,
                      .pre_rc = pre_rc};
    orch__emit(o, &d, NULL);
}

static void emit_internal(struct orch *o, struct ocust *c, struct decision *D, const char *audience,
                          const char *channel, const char *tmpl, json_t *meta,
                          const char *recipient)
{
    emit_internal_pre(o, c, D, audience, channel, tmpl, meta, recipient, NULL, 0);
}

/* The L1 ticket (MEDIUM and up), the note on an open ticket, the webhook, L2 for CRITICAL. */
static void decide_internal(struct orch *o, struct ocust *c, struct decision *D, const char *note)
{
    const struct rule_signal *ms = D->ms;
    if (D->sev >= SEV_MEDIUM) {
        char tag_sig[64], tag_sev[64], lc[32];
        orch__lower_copy(ms->id, lc, sizeof lc);
        snprintf(tag_sig, sizeof tag_sig, "signal_%s", lc);
        orch__lower_copy(severity_name(D->sev), lc, sizeof lc);
        snprintf(tag_sev, sizeof tag_sev, "severity_%s", lc);
        /* {priority, tags: [proactive_alert, signal_*, severity_*], group, requester_name?} */
        json_t *meta = json_object(), *tags = json_array();
        orch__jset_lit(meta, "priority", orch__priority_of(D->sev));
        json_array_append_new(tags, json_string_nocheck("proactive_alert"));
        json_array_append_new(tags, json_string(tag_sig));
        json_array_append_new(tags, json_string(tag_sev));
        json_object_set_new_nocheck(meta, "tags", tags);
        orch__jset_str(meta, "group", orch__group_of(o, ms->team));
        orch__jset_str(meta, "requester_name", comms_ctx_str(D->ctx, COMMS_V_customer_name));
        const char *email = orch__svs(D->snap, "customer.email");
        emit_internal(o, c, D, "l1", "ticket", ms->id, meta,
                      email ? email : (strchr(c->key, '@') ? c->key : NULL));
        json_decref(meta);
    }
    if (note && D->tid) {
        json_t *meta = json_object();
        orch__jset_str(meta, "ticket_id", D->tid);
        emit_internal(o, c, D, "l1", "internal_note", "default", meta, D->tid);
        json_decref(meta);
    }
    /* The generic webhook, for systems that want every alert (Standard Webhooks signed). */
    if (o->cfg->webhook)
        emit_internal(o, c, D, "l2", "webhook", ms->id, NULL, NULL);
    if (D->sev == SEV_CRITICAL)
        emit_internal(o, c, D, "l2", "slack", "default", NULL, NULL);
}

/* The chatbot's context (L0): what to tell the customer if they ask. */
static void decide_chatbot(struct orch *o, struct ocust *c, struct decision *D)
{
    const struct rule_signal *ms = D->ms;
    struct comms_rendered bot = {0};
    const struct comms_tmpl *t = comms_find(o->tmpl, "chatbot", "chatbot", ms->id);
    int rendered = t && !o->quiet, rc = rendered ? comms_render_ctx(t, D->ctx, &bot) : 0;
    char when[FW_TIME_MAXLEN];
    fw_time_format(D->now, when);
    const char *issue = comms_ctx_item(D->ctx, COMMS_V_issues_headline, 0);
    const char *email = orch__svs(D->snap, "customer.email");
    /* {customer_email?, proactive_context: {signal, signals, issue?, detected_at,
        customer_impact, resolution_status, what_to_tell_customer?, already_reached_out}} */
    json_t *pc = json_object(), *px = json_object();
    orch__jset_str(pc, "customer_email", email ? email : (strchr(c->key, '@') ? c->key : NULL));
    json_object_set_new_nocheck(pc, "proactive_context", px);
    orch__jset_str(px, "signal", ms->id);
    json_object_set_nocheck(px, "signals", D->sigs);
    orch__jset_str(px, "issue", issue);
    orch__jset_lit(px, "detected_at", when);
    orch__jset_str(px, "customer_impact", ms->description ? ms->description : ms->name);
    orch__jset_lit(px, "resolution_status", "open: the team has been alerted");
    orch__jset_str(px, "what_to_tell_customer", bot.text);
    json_object_set_new_nocheck(
        px, "already_reached_out",
        json_boolean(orch__fact_last(c, D->all, D->nall, NULL) != FW_TIME_NONE));
    if (o->sink.context && !o->quiet) { /* replay has no context sink: no text to make */
        char *txt = fw_json_dumps(pc);
        o->sink.context(o->sink.ctx, c->key, txt);
        free(txt);
    }
    /* The chatbot record is this same template on this same context: rendered once. */
    emit_internal_pre(o, c, D, "chatbot", "chatbot", ms->id, pc, c->key, rendered ? &bot : NULL,
                      rc);
    json_decref(pc);
    comms_rendered_cleanup(&bot);
}

/*
 * The escalation ladder, per new signal.  Internal steps count from the
 * detection; "no response" steps from our message, and only when one went
 * out (a follow-up of nothing would claim a message that never was).
 */
static void arm_ladder(struct orch *o, struct ocust *c, struct decision *D, const struct pend *pend)
{
    const struct orch_config *cfg = o->cfg;
    for (size_t i = 0; i < D->n; i++) {
        size_t s = D->idx[i];
        enum severity sv = o->rules->signals[s].severity;
        int64_t at = pend ? pend[i].at : D->now, base = at <= D->now ? at : D->now;
        json_t *detail = json_object();
        orch__jset_str(detail, "signal", o->rules->signals[s].id);
        orch__jset_lit(detail, "severity", severity_name(sv));
        orch__jset_str(detail, "ticket_at_decision", D->tid);
#define ARM(kind, from, delay)                                                                     \
    orch__ladder_arm(o, c, s, at, kind, (from) + (delay) > D->now ? (from) + (delay)-D->now : 0,   \
                     D->now, detail)
        /* A follow-up's internal steps were armed when the problem was first decided. */
        if (sv == SEV_HIGH) {
            if (!D->followup)
                ARM(STEP_HIGH_UNRESOLVED_L2, base, cfg->high_unresolved_l2);
            if (D->sent)
                ARM(STEP_HIGH_NO_RESPONSE, D->now, cfg->high_no_response);
            if (!D->followup)
                ARM(STEP_HIGH_PERSIST_L2, base, cfg->high_persist_l2);
        } else if (sv == SEV_CRITICAL) {
            if (!D->followup)
                ARM(STEP_CRITICAL_PAGE, base, cfg->critical_page);
            if (D->sent)
                ARM(STEP_CRITICAL_NO_RESPONSE, D->now, cfg->critical_no_response);
        }
#undef ARM
        json_decref(detail);
    }
}

/* The explanation's first lines: the matrix cell, the merge, the tone. */
static void explain_head(struct orch *o, struct decision *D, const char *const *chans,
                         size_t nchans, const char *note)
{
    char line[320];
    struct buf list;
    buf_init(&list, 0);
    for (size_t i = 0; i < nchans; i++)
        buf_printf(&list, "%s%s", i ? " + " : "", chans[i]);
    if (!nchans)
        buf_puts(&list, note && D->tid ? "internal note" : "internal only");
    snprintf(line, sizeof line, "channel_matrix: %s %s an open ticket -> %s", severity_name(D->sev),
             D->tid ? "with" : "without", list.data);
    buf_cleanup(&list);
    why(D, line);
    if (D->nall > 1) {
        snprintf(line, sizeof line,
                 "merge: %zu problems (%zu new, %zu already firing) in one message", D->nall, D->n,
                 D->nall - D->n);
        why(D, line);
    }
    if (D->apart) {
        snprintf(line, sizeof line,
                 "merge: one outreach type per message (%s); decided on their own: %s",
                 orch_outreach_type(D->ms), D->apart);
        why(D, line);
    }
    (void)o;
    snprintf(line, sizeof line, "tone: level %lld (%lld contacts in 7 days)",
             comms_ctx_int(D->ctx, COMMS_V_tone_level), comms_ctx_int(D->ctx, COMMS_V_contacts));
    why(D, line);
}

/* The promise a message may make: a customer step really scheduled after it. */
static void next_update(struct orch *o, struct decision *D)
{
    int64_t delay = D->sev == SEV_HIGH       ? o->cfg->high_no_response
                    : D->sev == SEV_CRITICAL ? o->cfg->critical_no_response
                                             : 0;
    if (!delay || o->quiet)
        return;
    char tmp[64];
    orch__human_duration(delay, tmp, sizeof tmp);
    comms_ctx_set_str(D->ctx, COMMS_V_next_update_within, tmp);
}

static void decide_pend(struct orch *o, struct ocust *c, json_t *snap, const size_t *idx, size_t n,
                        const char *hold, const char *note_line, const struct pend *pend,
                        const char *apart, int secondary)
{
    struct decision D = {.idx = idx,
                         .n = n,
                         .snap = snap,
                         .hold = hold,
                         .followup = note_line != NULL,
                         .apart = apart,
                         .secondary = secondary};
    D.now = engine_now(o->engine);
    size_t main = idx[0];
    for (size_t i = 1; i < n; i++)
        if (o->rules->signals[idx[i]].severity > o->rules->signals[main].severity)
            main = idx[i];
    D.ms = &o->rules->signals[main];
    D.sev = D.ms->severity;
    D.ctx = orch__customer_context(o, c, snap, D.now);
    orch__signal_context(o, D.ctx, D.ms);
    gather(o, c, &D);
    orch__issues_list(o, D.ctx, D.all, D.nall);
    comms_ctx_set_bool(D.ctx, COMMS_V_merged, D.nall > 1);
    D.sigs = orch__signals_array(o, D.all, D.nall);
    D.tid = orch__open_ticket(snap);
    /* {detection: {signals, customer, severity}, decided_by: []} */
    json_t *det = json_object();
    json_object_set_nocheck(det, "signals", D.sigs);
    orch__jset_str(det, "customer", c->key);
    orch__jset_lit(det, "severity", severity_name(D.sev));
    D.explain = json_object();
    json_object_set_new_nocheck(D.explain, "detection", det);
    json_object_set_new_nocheck(D.explain, "decided_by", json_array());
    D.tname = D.nall > 1 ? fam_merged[family_of(D.ms)] : D.ms->id;
    const char *chans[8], *note;
    size_t nchans = orch__matrix_pick(o, D.sev, D.tid != NULL, chans, ARRAY_SIZE(chans), &note);
    explain_head(o, &D, chans, nchans, note);
    if (hold)
        why(&D, hold);
    if (note_line)
        why(&D, note_line);
    orch__facts_context(o, c, D.ctx, snap, D.all, D.nall, D.now);
    next_update(o, &D);
    /* Every line is in: from here the explanation only changes per record, as text. */
    D.explain_txt = o->quiet ? NULL : fw_json_dumps(D.explain);

    /* The customer message first, so internal records can carry it as the draft. */
    struct comms_rendered draft = {0};
    decide_customer(o, c, &D, chans, nchans, &draft);
    if (!D.sent) /* nothing went out: no follow-up is scheduled, so nobody may promise one */
        comms_ctx_unset(D.ctx, COMMS_V_next_update_within);
    comms_ctx_set_str(D.ctx, COMMS_V_draft_subject, draft.subject);
    comms_ctx_set_str(D.ctx, COMMS_V_draft_text, draft.text);
    long long contacts = comms_ctx_int(D.ctx, COMMS_V_contacts);
    comms_ctx_set_str(D.ctx, COMMS_V_sentiment_risk,
                      contacts >= 3   ? "High"
                      : contacts == 2 ? "Medium"
                                      : "Low");
    if (!D.followup)
        decide_internal(o, c, &D, note);
    /* During an outage the chatbot keeps explaining the outage; after a window's first type it
       keeps explaining that one (a check-in must not replace what a journey alert told it). */
    if (!hold && !D.secondary)
        decide_chatbot(o, c, &D);
    arm_ladder(o, c, &D, pend);
    comms_rendered_cleanup(&draft);
    free(D.explain_txt);
    json_decref(D.explain);
    json_decref(D.sigs);
    comms_ctx_free(D.ctx);
    free(D.all);
    free(D.roots);
}

/*
 * One decision per outreach type among the signals (pend parallel to idx,
 * or NULL), journey alerts first.  With one proactive message a week, the
 * type decided first is the one the customer hears; the others are
 * recorded, held back by the frequency cap, with their explanation.
 */
static void decide_types(struct orch *o, struct ocust *c, json_t *snap, const size_t *idx,
                         size_t n, const char *hold, const char *note_line, const struct pend *pend)
{
    size_t *sub = xcalloc(n ? n : 1, sizeof *sub);
    struct pend *subp = xcalloc(n ? n : 1, sizeof *subp);
    int present[NFAM] = {0}, done = 0;
    for (size_t i = 0; i < n; i++)
        present[family_of(&o->rules->signals[idx[i]])] = 1;
    for (int f = 0; f < NFAM; f++) {
        if (!present[f])
            continue;
        char apart[128] = "";
        for (int g = 0; g < NFAM; g++)
            if (g != f && present[g])
                snprintf(apart + strlen(apart), sizeof apart - strlen(apart), "%s%s",
                         *apart ? ", " : "", fam_type[g]);
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if ((int)family_of(&o->rules->signals[idx[i]]) == f) {
                if (pend)
                    subp[m] = pend[i];
                sub[m++] = idx[i];
            }
        decide_pend(o, c, snap, sub, m, hold, note_line, pend ? subp : NULL,
                    *apart ? apart : NULL, done++ > 0);
    }
    free(sub);
    free(subp);
}

void orch__decide_followup(struct orch *o, struct ocust *c, json_t *snap, const size_t *idx,
                           size_t n, const char *note)
{
    if (n)
        decide_types(o, c, snap, idx, n, NULL, note, NULL);
}

void orch__decide(struct orch *o, struct ocust *c)
{
    json_t *snap = orch__snapshot(o, c->key);
    size_t n = c->npending;
    struct pend *pend = c->pending;
    c->pending = NULL;
    c->npending = c->cappending = 0;
    c->merge_close = FW_TIME_NONE;
    /* Outage signals first: each is the customer's one outage message (outage.c). */
    for (size_t i = 0; i < n; i++)
        if (o->rules->signals[pend[i].sig].outage)
            orch__outage_decide(o, c, pend[i].sig, snap);
    /* The rest: decided as usual, or held back when a firing outage explains them. */
    size_t *own = xcalloc(n ? n : 1, sizeof *own), *held = xcalloc(n ? n : 1, sizeof *held);
    struct pend *ownp = xcalloc(n ? n : 1, sizeof *ownp),
                *heldp = xcalloc(n ? n : 1, sizeof *heldp);
    size_t nown = 0, nheld = 0, osig = NOSIG;
    for (size_t i = 0; i < n; i++) {
        size_t s = pend[i].sig, by;
        if (o->rules->signals[s].outage || in_list(c->oheld, c->noheld, s))
            continue;
        if ((by = orch__outage_covering(o, snap, s)) != NOSIG) {
            osig = by;
            heldp[nheld] = pend[i];
            held[nheld++] = s;
            orch__outage_hold(c, s);
        } else {
            ownp[nown] = pend[i];
            own[nown++] = s;
        }
    }
    if (nown)
        decide_types(o, c, snap, own, nown, NULL, NULL, ownp);
    if (nheld) {
        char reason[320], fu[64];
        orch__human_duration(o->cfg->outage_followup, fu, sizeof fu);
        snprintf(reason, sizeof reason,
                 "outage: held back while a declared outage covers the customer (%s); followed "
                 "up if it persists %s after the outage ends",
                 o->rules->signals[osig].id, fu);
        decide_types(o, c, snap, held, nheld, reason, NULL, heldp);
    }
    free(own);
    free(held);
    free(ownp);
    free(heldp);
    free(pend);
    json_decref(snap);
}
