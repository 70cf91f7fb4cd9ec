/*
 * guardrails.c -- whether, when and where a customer message may go: the
 * outreach checks in a fixed order (duplicate root cause, frequency cap,
 * approval, quiet hours), then per channel the opt-out and the address.
 * Every check is written into the message's explanation, passed or not.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

/* ---- small JSON builders ---- */

void orch__jset_str(json_t *o, const char *key, const char *v)
{
    json_object_set_new_nocheck(o, key, v ? json_string(v) : json_null());
}

void orch__jset_lit(json_t *o, const char *key, const char *v)
{
    json_object_set_new_nocheck(o, key, json_string_nocheck(v));
}

int orch__json_str(struct buf *out, const char *s) { return fw_json_str(out, s); }

void orch__guard(struct buf *guards, const char *name, const char *result)
{
    size_t mark = guards->len;
    if (guards->len)
        buf_putc(guards, ',');
    buf_puts(guards, "{\"guardrail\":\"");
    buf_puts(guards, name);
    buf_puts(guards, "\",\"result\":");
    if (!result || orch__json_str(guards, result)) {
        guards->len = mark;
        guards->data[mark] = '\0';
        return;
    }
    buf_putc(guards, '}');
}

/* ---- guardrails for customer messages ---- */

int orch__in_list(const char *v, char **list, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        if (!strcmp(v, list[i]))
            return 1;
    return 0;
}

/*
 * How many proactive messages went to the customer within the window: one
 * per message (a merged message about three problems is one), outage
 * notices not counted, nor the message at `origin` (the one a ladder step
 * follows up).
 */
static int recent_messages(const struct ocust *c, int64_t now, int64_t window, int64_t origin)
{
    int n = 0;
    int64_t prev = FW_TIME_NONE;
    for (size_t h = 0; h < c->nhist; h++) {
        const struct outreach *e = &c->hist[h];
        if (e->notice || now - e->at >= window || e->at == origin || e->at == prev)
            continue;
        prev = e->at; /* the roots of one message are noted together, at one instant */
        n++;
    }
    return n;
}

/*
 * The guardrails that apply to a whole outreach (not per channel), in order.
 * Appends each check and its result to `guards`.
 */
struct verdict orch__outreach_verdict(struct orch *o, struct ocust *c, json_t *snap,
                                      enum severity sev, const char *const *roots, size_t nroots,
                                      int64_t now, struct buf *guards, enum outreach_kind kind,
                                      int64_t origin)
{
    int proactive = kind == OUT_PROACTIVE;
    const struct orch_config *cfg = o->cfg;
    struct verdict v = {.status = "scheduled", .send_at = now};
    char note[200];
#define GUARD(name, result)                                                                        \
    orch__guard(guards, name, result)
    if (proactive) {
        /* Duplicate root cause within the window. */
        size_t fresh = 0;
        int64_t seen_at = FW_TIME_NONE;
        for (size_t r = 0; r < nroots; r++) {
            int dup = 0;
            for (size_t h = 0; h < c->nhist && !dup; h++)
                if (roots[r] && c->hist[h].root_cause && !strcmp(c->hist[h].root_cause, roots[r]) &&
                    now - c->hist[h].at < cfg->dedup_window) {
                    dup = 1;
                    seen_at = c->hist[h].at;
                }
            fresh += !dup;
        }
        if (nroots && !fresh) {
            char t[FW_TIME_MAXLEN];
            fw_time_format(seen_at, t);
            snprintf(v.reason, sizeof v.reason,
                     "duplicate: this root cause was already messaged at %s (one per %lldh)", t,
                     (long long)(cfg->dedup_window / FW_HOUR));
            GUARD("dedup", v.reason);
            v.status = "suppressed";
            return v;
        }
        GUARD("dedup", "pass");
    }
    if (proactive || kind == OUT_LADDER) {
        /* Frequency cap: messages, not root causes; a follow-up does not count its own origin. */
        int recent = recent_messages(c, now, cfg->freq_window, origin);
        if (recent >= cfg->freq_cap && !(sev == SEV_CRITICAL && cfg->cap_bypass_critical)) {
            snprintf(v.reason, sizeof v.reason,
                     "frequency_cap: %d proactive message(s) in the last %lldd (cap %d)", recent,
                     (long long)(cfg->freq_window / FW_DAY), cfg->freq_cap);
            GUARD("frequency_cap", v.reason);
            v.status = "suppressed";
            return v;
        }
        GUARD("frequency_cap", recent >= cfg->freq_cap ? "bypassed: CRITICAL" : "pass");
    }
    /* Approval by tier or severity. */
    const char *tier = orch__svs(snap, "customer.tier");
    int by_tier = orch__in_list(tier, cfg->approval_tiers, cfg->napproval_tiers);
    int by_sev = kind != OUT_FOLLOWUP && cfg->approval_severity[sev];
    int by_followup = kind == OUT_FOLLOWUP && cfg->followup_approval;
    if (by_tier || by_sev || by_followup) {
        snprintf(note, sizeof note, "required: %s",
                 by_tier       ? "customer tier"
                 : by_followup ? "post-ticket follow-up"
                               : "severity");
        GUARD("approval", note);
        v.status = "awaiting_approval";
        snprintf(v.reason, sizeof v.reason, "approval %s", note);
    } else {
        GUARD("approval", "not required");
    }
    /* Quiet hours in the customer's zone. */
    const char *tz = orch__svs(snap, "customer.timezone");
    int qs = cfg->quiet_start, qe = cfg->quiet_end;
    const char *s1 = orch__svs(snap, "customer.quiet_hours.start"),
               *e1 = orch__svs(snap, "customer.quiet_hours.end");
    int h1, m1, h2, m2;
    if (s1 && e1 && sscanf(s1, "%d:%d", &h1, &m1) == 2 && sscanf(e1, "%d:%d", &h2, &m2) == 2) {
        qs = h1 * 60 + m1;
        qe = h2 * 60 + m2;
    }
    if (sev == SEV_CRITICAL && cfg->quiet_bypass_critical) {
        GUARD("quiet_hours", "bypassed: CRITICAL");
    } else {
        int64_t until = orch__quiet_until(o, now, tz ? tz : "UTC", qs, qe);
        if (until != FW_TIME_NONE) {
            char t[FW_TIME_MAXLEN];
            fw_time_format(until, t);
            snprintf(note, sizeof note, "held until %s (quiet hours %02d:%02d-%02d:%02d %s)", t,
                     qs / 60, qs % 60, qe / 60, qe % 60, tz ? tz : "UTC");
            GUARD("quiet_hours", note);
            v.send_at = until;
            if (!v.reason[0])
                snprintf(v.reason, sizeof v.reason, "quiet_hours: %s", note);
        } else {
            GUARD("quiet_hours", "pass");
        }
    }
#undef GUARD
    return v;
}

void orch__note_outreach(struct ocust *c, const char *const *roots, size_t nroots, int64_t now,
                         int notice)
{
    for (size_t r = 0; r < (nroots ? nroots : 1); r++) {
        c->hist = xgrow(c->hist, &c->caphist, c->nhist + 1, sizeof *c->hist);
        c->hist[c->nhist].root_cause = nroots ? roots[r] : NULL;
        c->hist[c->nhist].notice = notice;
        c->hist[c->nhist++].at = now;
    }
    if (c->first_outreach == FW_TIME_NONE)
        c->first_outreach = now;
    c->last_outreach = now;
}

const char *orch__address(const struct ocust *c, json_t *snap, const char *chan, char *tmp,
                          size_t n)
{
    if (!strcmp(chan, "email"))
        return orch__svs(snap, "customer.email") ? orch__svs(snap, "customer.email")
                                                 : (strchr(c->key, '@') ? c->key : NULL);
    if (!strcmp(chan, "sms"))
        return orch__sv_text(snap, "customer.phone", tmp, n);
    if (!strcmp(chan, "ticket_reply"))
        return orch__open_ticket(snap);
    if (!strcmp(chan, "push"))
        return orch__svs(snap, "customer.push_token") ? orch__svs(snap, "customer.push_token")
                                                      : orch__svs(snap, "customer.device_token");
    return c->key;
}

/* Send one customer message per channel, each with its own per-channel checks. */
int orch__customer_messages(struct orch *o, struct ocust *c, json_t *snap, const char *const *chans,
                            size_t nchans, struct draft *base, const struct verdict *v,
                            const struct buf *guards, struct comms_rendered *draft_out)
{
    int sent = 0;
    for (size_t i = 0; i < nchans; i++) {
        struct draft d = *base;
        d.channel = chans[i];
        d.status = v->status;
        d.reason = v->reason[0] ? v->reason : NULL;
        d.send_at = v->send_at;
        /* This channel's guardrails: the shared ones plus its own. */
        struct buf g;
        buf_init(&g, 0);
        buf_append(&g, guards->data ? guards->data : "", guards->len);
        char why[128];
        const char *addr = orch__address(c, snap, chans[i], why, sizeof why);
        if (strcmp(d.status, "suppressed") && orch__opted_out(snap, chans[i])) {
            d.status = "suppressed";
            snprintf(why, sizeof why, "opt_out: the customer refuses %s", chans[i]);
            d.reason = why;
            orch__guard(&g, "opt_out", why);
        } else if (strcmp(d.status, "suppressed") && !addr) {
            d.status = "suppressed";
            snprintf(why, sizeof why, "no_address: no %s known for the customer",
                     !strcmp(chans[i], "push")           ? "push device token (customer.push_token)"
                     : !strcmp(chans[i], "ticket_reply") ? "open ticket"
                     : !strcmp(chans[i], "sms")          ? "phone number"
                                                         : chans[i]);
            d.reason = why;
        } else {
            orch__guard(&g, "opt_out", "pass");
        }
        d.guards = g.data ? g.data : "";
        d.recipient = addr ? xstrdup(addr) : NULL;
        json_t *meta = json_object();
        if (!strcmp(chans[i], "ticket_reply") && addr)
            orch__jset_str(meta, "ticket_id", addr);
        d.meta = meta;
        struct comms_rendered r = {0};
        /* What counts is what went out: a message suppressed when rendered does not. */
        if (orch__emit(o, &d, draft_out && !draft_out->text ? &r : NULL)) {
            sent++;
            /* A fact templates may state later ("we wrote to you on …"): it went, not waits. */
            for (size_t k = 0; !strcmp(d.status, "scheduled") && k < base->nsig_idx; k++)
                orch__fact_sent(o, c, base->sig_idx[k], chans[i], d.at);
        }
        if (r.text && draft_out && !draft_out->text)
            *draft_out = r;
        free((char *)d.recipient);
        json_decref(meta);
        buf_cleanup(&g);
    }
    return sent;
}
