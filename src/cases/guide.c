/*
 * guide.c -- playbooks on cases, their measured success, and guidance
 * (docs/guidance.md).
 *
 * A case's playbook is matched when it opens and again whenever what a
 * trigger reads changes (a detection joins, the customer writes), until a
 * person chooses one (`case.playbook_set`) or works a step
 * (`case.step_completed`, `case.step_skipped`): from then on it is theirs.
 * Every choice is a `playbook_set` line with the reason, so replay shows
 * it.  Steps are checked off by events too; a step with a follow-up arms an
 * engine timer when it is completed, and the reminder fires at its exact
 * instant like an SLA clock.
 *
 * History: each case a person resolves leaves a pb_record (outcome, time
 * to resolve, CSAT, what it looked like).  Success figures and similar
 * cases are computed from those records only, in memory, equally in serve
 * (rebuilt from the journal at start) and replay.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/sentiment.h"
#include "cases/cases_int.h"
#include "comms/comms.h"
#include "comms/vars.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"
#include "util/wire.h"

#define WORDS_MAX 6        /* texts kept per customer */
#define WORD_LEN_MAX 400   /* bytes kept of each */
#define HISTORY_MAX 100000 /* resolved cases kept; the oldest go first */
#define SIMILAR_K 3

/* A customer's recent texts, newest last, and what sentiment made of each. */
struct words {
    char *t[WORDS_MAX];
    double score[WORDS_MAX];     /* NAN: not scored (no scorer) */
    unsigned intents[WORDS_MAX]; /* enum sentiment_intent bits */
    size_t n;
};

static const char *dstr(const struct event *ev, const char *key)
{
    return json_string_value(json_object_get(ev->data, key));
}

/* ---- the customer's words ---- */

static int carries_words(const struct cases *cs, const char *type)
{
    return !strcmp(type, "message.replied") || !strcmp(type, "chat.escalated") ||
           !strcmp(type, "ticket.comment_added") || !strcmp(type, "chat.message") ||
           rules_type_in_class(cs->rules, type, "contact");
}

int cases__words_note(struct cases *cs, const struct event *ev)
{
    static const char *const fields[] = {"subject", "description", "summary", "text",
                                         "body",    "message",     "comment", NULL};
    if (!cs->cfg->playbooks || !ev->subject || !carries_words(cs, ev->type))
        return 0;
    int changed = 0;
    for (size_t i = 0; fields[i]; i++) {
        const char *s = dstr(ev, fields[i]);
        if (!s || !*s)
            continue;
        struct strmap_entry *me = strmap_upsert(&cs->words, ev->subject, strlen(ev->subject), NULL);
        struct words *w = me->value;
        if (!w)
            w = me->value = xcalloc(1, sizeof *w);
        if (w->n == WORDS_MAX) {
            free(w->t[0]);
            memmove(w->t, w->t + 1, (WORDS_MAX - 1) * sizeof *w->t);
            memmove(w->score, w->score + 1, (WORDS_MAX - 1) * sizeof *w->score);
            memmove(w->intents, w->intents + 1, (WORDS_MAX - 1) * sizeof *w->intents);
            w->n--;
        }
        size_t len = strlen(s);
        w->score[w->n] = NAN;
        w->intents[w->n] = 0;
        if (cs->cfg->sentiment) {
            struct sentiment_result r;
            sentiment_score(cs->cfg->sentiment, s, len, &r);
            w->score[w->n] = r.score;
            w->intents[w->n] = r.intents;
        }
        w->t[w->n++] = xstrndup(s, len < WORD_LEN_MAX ? len : WORD_LEN_MAX);
        changed = 1;
    }
    return changed;
}

void cases__words_free(struct cases *cs)
{
    for (size_t i = 0; i < cs->words.len; i++) {
        struct words *w = cs->words.entries[i].value;
        if (!w)
            continue;
        for (size_t j = 0; j < w->n; j++)
            free(w->t[j]);
        free(w);
    }
}

static const struct words *words_of(const struct cases *cs, const char *customer)
{
    struct strmap_entry *me = strmap_find(&cs->words, customer, strlen(customer));
    return me ? me->value : NULL;
}

/* The customer's mood: the latest score, its trend, the intents of the last three texts. */
struct mood {
    double score, trend; /* NAN: unknown */
    unsigned intents;
    size_t n; /* texts scored */
};

static struct mood mood_of(const struct words *w)
{
    struct mood m = {.score = NAN, .trend = NAN};
    double seen[WORDS_MAX];
    for (size_t i = 0; w && i < w->n; i++) {
        if (isnan(w->score[i]))
            continue;
        seen[m.n++] = w->score[i];
        if (i + 3 >= w->n)
            m.intents |= w->intents[i];
    }
    if (m.n)
        m.score = seen[m.n - 1];
    if (m.n >= 2) /* the latest against the one two texts before it (or the first) */
        m.trend = seen[m.n - 1] - seen[m.n >= 3 ? m.n - 3 : 0];
    return m;
}

/* The guidance's sentiment block: score, label, trend and intents, with the texts behind them. */
static json_t *mood_json(const struct cases *cs, const struct kase *k)
{
    struct mood m = mood_of(words_of(cs, k->customer));
    if (!cs->cfg->sentiment)
        return json_pack("{s:n, s:n, s:n, s:[], s:I, s:s}", "score", "label", "trend", "intents",
                         "n", (json_int_t)0, "status", "not analysed: no sentiment scorer loaded");
    if (!m.n)
        return json_pack("{s:n, s:n, s:n, s:[], s:I, s:s}", "score", "label", "trend", "intents",
                         "n", (json_int_t)0, "status",
                         "no words from the customer yet (tickets, chats, replies)");
    json_t *in = json_array();
    for (unsigned bit = 1; bit < (1u << SENTIMENT_NINTENTS); bit <<= 1)
        if (m.intents & bit)
            json_array_append_new(in, json_string(sentiment_intent_name(bit)));
    const char *dir = isnan(m.trend)              ? "not enough texts"
                      : m.trend <= -cs->cfg->drop ? "dropping"
                      : m.trend < -0.05           ? "worsening"
                      : m.trend > 0.05            ? "improving"
                                                  : "steady";
    /* Every score kept, oldest first: the trend the console draws. */
    json_t *scores = json_array();
    const struct words *w = words_of(cs, k->customer);
    for (size_t i = 0; w && i < w->n; i++)
        if (!isnan(w->score[i]))
            json_array_append_new(scores, json_real(round(w->score[i] * 1e4) / 1e4));
    return json_pack("{s:f, s:s, s:o, s:s, s:o, s:I, s:o}", "score", round(m.score * 1e4) / 1e4,
                     "label", sentiment_label(m.score), "trend",
                     isnan(m.trend) ? json_null() : json_real(round(m.trend * 1e4) / 1e4),
                     "direction", dir, "intents", in, "n", (json_int_t)m.n, "scores", scores);
}

/* ---- a case's facts, as triggers and similar cases read them ---- */

struct facts {
    struct pb_facts f;
    const char *sigs[PB_MAX_SIGNALS];
    const char *intents[SENTIMENT_NINTENTS];
    struct buf text;
};

static void facts_of(const struct cases *cs, const struct kase *k, json_t *snap, int64_t now,
                     struct facts *x)
{
    memset(x, 0, sizeof *x);
    buf_init(&x->text, 0);
    const struct rule_signal *lead = cases__lead_signal(cs, k);
    size_t n = 0;
    for (size_t i = 0; i < k->ndets && n < PB_MAX_SIGNALS; i++)
        x->sigs[n++] = cs->rules->signals[k->dets[i].sig].id;
    const struct words *w = words_of(cs, k->customer);
    struct mood m = mood_of(w);
    size_t ni = 0;
    for (unsigned bit = 1; bit < (1u << SENTIMENT_NINTENTS); bit <<= 1)
        if (m.intents & bit)
            x->intents[ni++] = sentiment_intent_name(bit);
    for (size_t i = 0; w && i < w->n; i++)
        buf_printf(&x->text, "%s\n", w->t[i]);
    for (size_t i = 0; i < x->text.len; i++)
        if (x->text.data[i] >= 'A' && x->text.data[i] <= 'Z')
            x->text.data[i] = (char)(x->text.data[i] + 32);
    x->f = (struct pb_facts){
        .severity = severity_name((enum severity)k->severity),
        .signal = lead ? lead->id : NULL,
        .signals = x->sigs,
        .nsignals = n,
        .customer = k->customer,
        .tier = k->tier,
        .value = k->value,
        .sentiment = m.score, /* null to every condition until a text is scored */
        .sentiment_trend = m.trend,
        .intents = x->intents,
        .nintents = ni,
        .tenure_days = k->signup != FW_TIME_NONE && now != FW_TIME_NONE
                           ? (double)((now - k->signup) / FW_DAY)
                           : NAN,
        .contacts =
            cs->e ? (int)engine_count(cs->e, k->customer, "contact", CASES_CONTACT_WINDOW) : 0,
        .text = x->text.data ? x->text.data : "",
        .state = snap,
    };
}

static void facts_cleanup(struct facts *x) { buf_cleanup(&x->text); }

/* ---- choosing and switching ---- */

static const struct playbooks *pbs(const struct cases *cs) { return cs->cfg->playbooks; }

static void cancel_reminders(struct cases *cs, struct kase *k)
{
    for (size_t i = 0; i < k->nsteps; i++)
        if (k->rem[i].armed && cs && cs->e) {
            engine_timer_cancel(cs->e, &k->rem[i].t);
            k->rem[i].armed = 0;
        }
}

void cases__pb_free(struct cases *cs, struct kase *k)
{
    cancel_reminders(cs, k);
    free(k->steps);
    free(k->rem);
    free(k->pb_by);
    free(k->pb_why);
    k->steps = NULL;
    k->rem = NULL;
    k->pb_by = k->pb_why = NULL;
    k->nsteps = 0;
}

static void on_reminder(struct engine_timer *t, int64_t due);

static void set_playbook(struct cases *cs, struct kase *k, int idx, const char *by, const char *why,
                         int64_t at)
{
    cases__pb_free(cs, k);
    k->pb = idx;
    k->pb_by = by ? xstrdup(by) : NULL;
    k->pb_why = xstrdup(why);
    if (idx >= 0) {
        const struct playbook *b = &pbs(cs)->pb[idx];
        k->nsteps = b->nsteps;
        k->steps = xcalloc(b->nsteps, 1);
        k->rem = xcalloc(b->nsteps, sizeof *k->rem);
        for (size_t i = 0; i < b->nsteps; i++) {
            k->rem[i].t.fire = on_reminder;
            k->rem[i].k = k;
            k->rem[i].step = (int)i;
        }
    }
    struct buf x;
    buf_init(&x, 0);
    buf_puts(&x, ",\"playbook\":");
    if (idx >= 0) {
        const struct playbook *b = &pbs(cs)->pb[idx];
        buf_json_str(&x, b->id, strlen(b->id));
        buf_puts(&x, ",\"name\":");
        buf_json_str(&x, b->name, strlen(b->name));
    } else {
        buf_puts(&x, "null");
    }
    buf_puts(&x, ",\"by\":");
    if (by)
        buf_json_str(&x, by, strlen(by));
    else
        buf_puts(&x, "null");
    buf_puts(&x, ",\"why\":");
    buf_json_str(&x, why, strlen(why));
    cases__line(cs, k, "playbook_set", x.data, at);
    buf_cleanup(&x);
}

/* The escalation's message: to the lead (l1), the assignee (agent) or the team (l1), on Slack. */
static void notice_escalation(struct cases *cs, const struct kase *k, const struct pb_escalation *e,
                              int64_t at)
{
    if (cs->quiet || !cs->sink.notice || !e->notify)
        return;
    char key[160], when[FW_TIME_MAXLEN];
    snprintf(key, sizeof key, "escalation:%s:%s", k->id, e->id);
    fw_time_format(at, when);
    struct buf subject, body, explain, meta;
    buf_init(&subject, 0);
    buf_init(&body, 0);
    buf_init(&explain, 0);
    buf_init(&meta, 0);
    buf_printf(&subject, "Escalated: %s (%s)", k->name ? k->name : k->customer, e->reason);
    buf_printf(&body, "%s\nCase %s, %s. Escalation '%s' fired at %s%s%s.\n", subject.data, k->id,
               severity_name((enum severity)k->severity), e->id, when,
               e->playbook ? "; playbook " : "", e->playbook ? e->playbook : "");
    buf_puts(&explain, "{\"escalation\":{\"case\":");
    buf_json_str(&explain, k->id, strlen(k->id));
    buf_puts(&explain, ",\"id\":");
    buf_json_str(&explain, e->id, strlen(e->id));
    buf_puts(&explain, ",\"when\":");
    buf_json_str(&explain, e->when_src ? e->when_src : "", e->when_src ? strlen(e->when_src) : 0);
    buf_puts(&explain, "}}");
    buf_printf(&meta, "{\"case\":\"%s\",\"priority\":\"urgent\",\"notify\":\"%s\"}", k->id,
               e->notify);
    cases__slack_notice(cs, k, key, !strcmp(e->notify, "assignee"), subject.data, body.data, "[]",
                        explain.data, meta.data, at);
    buf_cleanup(&subject);
    buf_cleanup(&body);
    buf_cleanup(&explain);
    buf_cleanup(&meta);
}

/* One escalation fires for the case: raised, given its playbook, its people told. */
static void escalate(struct cases *cs, struct kase *k, json_t *snap, size_t i, int64_t at)
{
    const struct pb_escalation *e = &pbs(cs)->esc[i];
    k->esc_fired |= 1ull << i;
    struct buf x;
    buf_init(&x, 0);
    buf_puts(&x, ",\"escalation\":");
    buf_json_str(&x, e->id, strlen(e->id));
    buf_puts(&x, ",\"reason\":");
    buf_json_str(&x, e->reason ? e->reason : "", e->reason ? strlen(e->reason) : 0);
    if (e->severity > k->severity) {
        buf_printf(&x, ",\"raised_from\":\"%s\"", severity_name((enum severity)k->severity));
        k->severity = e->severity;
        cases__clocks_raise(cs, k, snap, at);
    }
    if (e->notify)
        buf_printf(&x, ",\"notify\":\"%s\"", e->notify);
    cases__line(cs, k, "escalated", x.data, at);
    buf_cleanup(&x);
    size_t idx;
    if (e->playbook && !k->pb_by && playbooks_find(pbs(cs), e->playbook, &idx) &&
        (int)idx != k->pb) {
        char why[256];
        snprintf(why, sizeof why, "escalation %s: %s", e->id, e->reason ? e->reason : "");
        set_playbook(cs, k, (int)idx, NULL, why, at);
    }
    if (e->playbook)
        k->pb_pinned = 1; /* the escalation chose: matching no longer moves it */
    notice_escalation(cs, k, e, at);
    cases__clocks_overdue(cs, k);
}

void cases__pb_match(struct cases *cs, struct kase *k, json_t *snap, int64_t at)
{
    if (!pbs(cs))
        return;
    json_t *own = snap ? NULL : cases__snapshot(cs, k->customer);
    if (!snap)
        snap = own;
    struct facts x;
    facts_of(cs, k, snap, at, &x);
    /* Escalations first (each once per case): they may raise the case and choose its playbook. */
    size_t fired[PB_MAX_ESCALATIONS];
    size_t nf = playbooks_escalations(pbs(cs), &x.f, at, fired, PB_MAX_ESCALATIONS);
    int changed = 0;
    for (size_t i = 0; i < nf; i++)
        if (!(k->esc_fired & (1ull << fired[i]))) {
            escalate(cs, k, snap, fired[i], at);
            changed = 1;
        }
    if (!k->pb_pinned) {
        char why[512];
        int idx = playbooks_match(pbs(cs), &x.f, at, why, sizeof why);
        if (idx != k->pb && !(idx < 0 && k->pb < 0)) {
            set_playbook(cs, k, idx, NULL, why, at);
            changed = 1;
        }
    }
    facts_cleanup(&x);
    json_decref(own);
    if (changed)
        cases__resave(cs, k);
}

/* ---- steps ---- */

static json_int_t step_no(const struct event *ev)
{
    json_t *s = json_object_get(ev->data, "step");
    return json_is_integer(s) ? json_integer_value(s) : 0;
}

int cases__pb_check(const struct cases *cs, const struct kase *k, const struct event *ev, char *why,
                    size_t n)
{
    const char *act = ev->type + 5;
    if (!strcmp(act, "playbook_set")) {
        const char *id = dstr(ev, "playbook");
        if (!pbs(cs) || !playbooks_find(pbs(cs), id, NULL)) {
            snprintf(why, n, "no playbook '%s' (GET /v1/playbooks lists them)", id ? id : "");
            return FW_EINVAL;
        }
        return 0;
    }
    if (strcmp(act, "step_completed") && strcmp(act, "step_skipped"))
        return 0;
    if (k->pb < 0) {
        snprintf(why, n, "case %s has no playbook; choose one first", k->id);
        return FW_ESTATE;
    }
    const struct playbook *b = &pbs(cs)->pb[k->pb];
    json_int_t s = step_no(ev);
    if (s < 1 || (size_t)s > b->nsteps) {
        snprintf(why, n, "step %lld: playbook '%s' has steps 1 to %zu", (long long)s, b->id,
                 b->nsteps);
        return FW_EINVAL;
    }
    if (k->steps[s - 1] != STEP_PENDING) {
        snprintf(why, n, "step %lld (%s) is already %s", (long long)s, b->steps[s - 1].description,
                 k->steps[s - 1] == STEP_DONE ? "completed" : "skipped");
        return FW_ESTATE;
    }
    if (!strcmp(act, "step_skipped") && b->steps[s - 1].skip_needs_reason) {
        const char *r = dstr(ev, "reason");
        if (!r || !*r) {
            snprintf(why, n, "step %lld (%s) needs a reason to be skipped", (long long)s,
                     b->steps[s - 1].description);
            return FW_EINVAL;
        }
    }
    return 0;
}

static void notice_reminder(struct cases *cs, const struct kase *k, const struct pb_step *st,
                            int step, int64_t due)
{
    if (cs->quiet || !cs->sink.notice)
        return;
    char key[160], dues[FW_TIME_MAXLEN];
    snprintf(key, sizeof key, "reminder:%s:%d:%lld", k->id, step + 1, (long long)due);
    fw_time_format(due, dues);
    struct buf subject, body;
    buf_init(&subject, 0);
    buf_init(&body, 0);
    buf_printf(&subject, "Follow-up due: %s (%s)", k->name ? k->name : k->customer,
               st->description);
    buf_printf(&body,
               "%s\nCase %s, step %d of its playbook, was completed; its follow-up is due "
               "now (%s).\n",
               subject.data, k->id, step + 1, dues);
    char signals[8] = "[]", explain[160], meta[96];
    snprintf(explain, sizeof explain, "{\"reminder\":{\"case\":\"%s\",\"step\":%d,\"due\":\"%s\"}}",
             k->id, step + 1, dues);
    snprintf(meta, sizeof meta, "{\"case\":\"%s\",\"priority\":\"high\"}", k->id);
    cases__slack_notice(cs, k, key, 1, subject.data, body.data, signals, explain, meta, due);
    buf_cleanup(&subject);
    buf_cleanup(&body);
}

static void on_reminder(struct engine_timer *t, int64_t due)
{
    struct reminder *r = (struct reminder *)t;
    struct kase *k = r->k;
    struct cases *cs = k->owner;
    r->armed = 0;
    if (k->pb < 0)
        return;
    const struct pb_step *st = &pbs(cs)->pb[k->pb].steps[r->step];
    struct buf x;
    buf_init(&x, 0);
    buf_printf(&x, ",\"playbook\":\"%s\",\"step\":%d,\"description\":", pbs(cs)->pb[k->pb].id,
               r->step + 1);
    buf_json_str(&x, st->description, strlen(st->description));
    cases__line(cs, k, "reminder", x.data, due);
    buf_cleanup(&x);
    notice_reminder(cs, k, st, r->step, due);
}

void cases__pb_action(struct cases *cs, struct kase *k, const struct event *ev, int64_t at)
{
    char why[256];
    const char *act = ev->type + 5, *agent = dstr(ev, "agent");
    if (cases__pb_check(cs, k, ev, why, sizeof why)) {
        cs->stats.ignored++;
        k->nactions--;
        log_warn("event %s (%s) ignored: %s", ev->id, ev->type, why);
        return;
    }
    k->updated_at = at > k->updated_at ? at : k->updated_at;
    if (!strcmp(act, "playbook_set")) {
        size_t idx;
        playbooks_find(pbs(cs), dstr(ev, "playbook"), &idx);
        char w[160];
        snprintf(w, sizeof w, "chosen by %s", agent ? agent : "a person");
        k->pb_pinned = 1;
        set_playbook(cs, k, (int)idx, agent ? agent : "?", w, at);
        cases__resave(cs, k);
        return;
    }
    const struct playbook *b = &pbs(cs)->pb[k->pb];
    int s = (int)step_no(ev) - 1;
    const struct pb_step *st = &b->steps[s];
    int done = !strcmp(act, "step_completed");
    k->pb_pinned = 1; /* worked: the playbook is the agent's now */
    k->steps[s] = done ? STEP_DONE : STEP_SKIPPED;
    struct buf x;
    buf_init(&x, 0);
    buf_puts(&x, ",\"playbook\":");
    buf_json_str(&x, b->id, strlen(b->id));
    buf_printf(&x, ",\"step\":%d,\"action_type\":\"%s\",\"agent\":", s + 1,
               pb_action_name(st->action));
    if (agent)
        buf_json_str(&x, agent, strlen(agent));
    else
        buf_puts(&x, "null");
    if (!done) {
        const char *r = dstr(ev, "reason");
        buf_puts(&x, ",\"reason\":");
        if (r)
            buf_json_str(&x, r, strlen(r));
        else
            buf_puts(&x, "null");
    }
    if (done && st->follow_up > 0 && cs->e) {
        struct reminder *r = &k->rem[s];
        r->due = at + st->follow_up;
        engine_timer_arm(cs->e, &r->t, r->due);
        r->armed = 1;
        buf_puts(&x, ",\"follow_up_due\":");
        buf_json_time(&x, r->due);
    }
    cases__line(cs, k, done ? "step_completed" : "step_skipped", x.data, at);
    buf_cleanup(&x);
    cases__resave(cs, k);
}

/* ---- history ---- */

void cases__pb_close(struct cases *cs, struct kase *k, const char *outcome, int csat, int64_t at)
{
    cancel_reminders(cs, k);
    if (!pbs(cs) || !outcome || !strcmp(outcome, "auto_resolved"))
        return; /* nobody worked it: it says nothing about what works */
    if (cs->nhist == HISTORY_MAX) {
        memmove(cs->hist, cs->hist + 1, (HISTORY_MAX - 1) * sizeof *cs->hist);
        cs->nhist--;
    }
    cs->hist = xgrow(cs->hist, &cs->caphist, cs->nhist + 1, sizeof *cs->hist);
    struct pb_record *r = &cs->hist[cs->nhist++];
    memset(r, 0, sizeof *r);
    snprintf(r->case_id, sizeof r->case_id, "%s", k->id);
    snprintf(r->outcome, sizeof r->outcome, "%s", outcome);
    r->playbook = k->pb;
    r->open_ms = at - k->opened_at;
    r->csat = csat;
    r->severity = k->severity;
    for (size_t i = 0; i < k->ndets && r->nsignals < PB_MAX_SIGNALS; i++)
        r->signals[r->nsignals++] = cs->rules->signals[k->dets[i].sig].id;
    r->value = k->value;
    r->tenure_days = k->signup != FW_TIME_NONE ? (double)((at - k->signup) / FW_DAY) : NAN;
    r->sentiment = mood_of(words_of(cs, k->customer)).score;
    r->steps_total = (int)k->nsteps;
    for (size_t i = 0; i < k->nsteps; i++)
        r->steps_done += k->steps[i] == STEP_DONE;
}

/* ---- documents ---- */

static const char *const step_states[] = {"pending", "completed", "skipped"};

static json_t *steps_json(const struct cases *cs, const struct kase *k)
{
    const struct playbook *b = &pbs(cs)->pb[k->pb];
    json_t *a = json_array();
    for (size_t i = 0; i < b->nsteps; i++) {
        const struct pb_step *st = &b->steps[i];
        json_t *o =
            json_pack("{s:I, s:s, s:s, s:s, s:b}", "step", (json_int_t)(i + 1), "action_type",
                      pb_action_name(st->action), "description", st->description, "state",
                      step_states[k->steps[i]], "skip_requires_reason", st->skip_needs_reason);
        if (st->minutes)
            json_object_set_new(o, "minutes", json_integer(st->minutes));
        if (st->follow_up) {
            char d[FW_TIME_MAXLEN];
            fw_duration_format(st->follow_up, d);
            json_object_set_new(o, "follow_up", json_string(d));
        }
        if (k->rem && k->rem[i].armed)
            json_object_set_new(o, "follow_up_due", cases__jtime(k->rem[i].due));
        json_array_append_new(a, o);
    }
    return a;
}

void cases__pb_doc(const struct cases *cs, const struct kase *k, json_t *d)
{
    if (!pbs(cs) || k->pb < 0) {
        json_object_set_new(d, "playbook", json_null());
        return;
    }
    const struct playbook *b = &pbs(cs)->pb[k->pb];
    json_object_set_new(d, "playbook",
                        json_pack("{s:s, s:s, s:o, s:s, s:o}", "id", b->id, "name", b->name, "by",
                                  k->pb_by ? json_string(k->pb_by) : json_null(), "why",
                                  k->pb_why ? k->pb_why : "", "steps", steps_json(cs, k)));
}

/* ---- guidance ---- */

/* The template context a script is rendered with: the customer's safe fields. */
static json_t *script_context(const struct cases *cs, const struct kase *k, json_t *snap,
                              int contacts)
{
    json_t *ctx = json_object(), *st = json_object_get(snap, "state");
    (void)cs;
    for (size_t i = 0; comms_vars[i].name; i++) {
        if (!(comms_vars[i].audiences & COMMS_VAR_CUST))
            continue;
        json_t *v = json_object_get(json_object_get(st, comms_vars[i].name), "value");
        if (v && !json_is_object(v) && !json_is_array(v))
            json_object_set(ctx, comms_vars[i].name, v);
    }
    const char *name = k->name ? k->name : k->customer;
    json_object_set_new(ctx, "customer.name", json_string(name));
    size_t fl = strcspn(name, " @");
    json_object_set_new(ctx, "customer.first_name",
                        fl && strchr(name, '@') == NULL ? json_stringn(name, fl)
                                                        : json_string("there"));
    json_object_set_new(ctx, "contacts", json_integer(contacts));
    return ctx;
}

static json_t *render(const struct comms_tmpl *t, json_t *ctx)
{
    struct comms_rendered r;
    if (!t || comms_render(t, ctx, &r))
        return json_null();
    json_t *s = json_string(r.text ? r.text : "");
    comms_rendered_cleanup(&r);
    return s;
}

static json_t *stats_of(const struct cases *cs, int playbook)
{
    struct pb_stats s;
    pb_stats_compute(cs->hist, cs->nhist, playbook, cs->cfg->min_history, &s);
    return pb_stats_json(&s, cs->cfg->min_history);
}

static void summary(const struct cases *cs, const struct kase *k, const struct facts *x,
                    int64_t now, struct buf *b)
{
    const struct rule_signal *lead = cases__lead_signal(cs, k);
    buf_puts(b, k->name ? k->name : k->customer);
    int paren = 0;
    if (k->tier) {
        buf_printf(b, " (%s", k->tier);
        paren = 1;
    }
    if (k->signup != FW_TIME_NONE && now > k->signup) {
        int64_t days = (now - k->signup) / FW_DAY;
        buf_printf(b, "%s", paren ? ", " : " (");
        if (days >= 365)
            buf_printf(b, "a customer for %lld year%s", (long long)(days / 365),
                       days / 365 == 1 ? "" : "s");
        else
            buf_printf(b, "a customer for %lld day%s", (long long)days, days == 1 ? "" : "s");
        paren = 1;
    }
    if (!isnan(k->value)) {
        buf_printf(b, "%s$%.0f a year", paren ? ", " : " (", k->value);
        paren = 1;
    }
    if (paren)
        buf_putc(b, ')');
    buf_printf(b, ": %s (%s)", lead ? lead->name : "open case",
               severity_name((enum severity)k->severity));
    for (size_t i = 0; i < k->ndets; i++) {
        const struct rule_signal *s = &cs->rules->signals[k->dets[i].sig];
        if (s != lead)
            buf_printf(b, ", also %s", s->name);
    }
    if (x->f.contacts)
        buf_printf(b, "; %d contact%s in 7 days", x->f.contacts, x->f.contacts == 1 ? "" : "s");
    const struct words *w = words_of(cs, k->customer);
    if (w && w->n)
        buf_printf(b, "; latest words: \"%s\"", w->t[w->n - 1]);
}

static json_t *similar(const struct cases *cs, const struct facts *x, int severity)
{
    json_t *o = json_object(), *a = json_array();
    json_object_set_new(o, "cases", a);
    if (!cs->nhist) {
        json_object_set_new(o, "reason", json_string("no resolved cases yet to compare with"));
        return o;
    }
    size_t idx[SIMILAR_K];
    double score[SIMILAR_K];
    size_t n = pb_similar(cs->hist, cs->nhist, &x->f, severity, SIMILAR_K, idx, score);
    for (size_t i = 0; i < n; i++) {
        const struct pb_record *r = &cs->hist[idx[i]];
        const struct playbook *b = r->playbook >= 0 ? &pbs(cs)->pb[r->playbook] : NULL;
        char approach[256];
        if (b)
            snprintf(approach, sizeof approach, "%s: %d of %d steps completed", b->name,
                     r->steps_done, r->steps_total);
        else
            snprintf(approach, sizeof approach, "no playbook");
        json_t *sigs = json_array();
        for (size_t j = 0; j < r->nsignals; j++)
            json_array_append_new(sigs, json_string(r->signals[j]));
        json_t *c =
            json_pack("{s:s, s:s, s:o, s:s, s:f, s:o, s:o, s:f}", "case", r->case_id, "outcome",
                      r->outcome, "playbook", b ? json_string(b->id) : json_null(), "approach",
                      approach, "resolution_minutes", round((double)r->open_ms / 600.0) / 100.0,
                      "csat", r->csat ? json_integer(r->csat) : json_null(), "signals", sigs,
                      "similarity", round(score[i] * 100.0) / 100.0);
        json_array_append_new(a, c);
    }
    return o;
}

/* An SLA metric as an agent says it ("first-response"), for the reason's sentence. */
static const char *metric_words(int metric)
{
    switch (metric) {
    case CASE_FIRST_RESPONSE: return "first-response";
    case CASE_CUSTOMER_CONTACT: return "customer-contact";
    default: return "resolution";
    }
}

int cases_guidance_json(const struct cases *cs, const char *id, int64_t now, struct buf *out)
{
    struct strmap_entry *me = strmap_find(&cs->ids, id, strlen(id));
    if (!me || !me->value || me->value == RESOLVED_CASE)
        return FW_ENOTFOUND;
    const struct kase *k = me->value;
    json_t *snap = cs->e ? engine_customer_object(cs->e, k->customer) : NULL;
    if (!snap)
        snap = json_object();
    struct facts x;
    facts_of(cs, k, snap, now, &x);
    json_t *g = json_object();
    json_object_set_new(g, "case", json_string(k->id));
    json_object_set_new(g, "customer", json_string(k->customer));
    struct buf sb;
    buf_init(&sb, 0);
    summary(cs, k, &x, now, &sb);
    json_object_set_new(g, "summary", json_string(sb.data));
    buf_cleanup(&sb);
    json_object_set_new(g, "sentiment", mood_json(cs, k));
    const struct playbook *b = pbs(cs) && k->pb >= 0 ? &pbs(cs)->pb[k->pb] : NULL;
    const struct clock *tight = cases__tightest(k);
    if (b) {
        json_object_set_new(g, "playbook",
                            json_pack("{s:s, s:s, s:o, s:s}", "id", b->id, "name", b->name, "by",
                                      k->pb_by ? json_string(k->pb_by) : json_null(), "why",
                                      k->pb_why ? k->pb_why : ""));
        const char *urgency = b->urgency;
        struct buf reason;
        buf_init(&reason, 0);
        buf_puts(&reason, b->reason);
        if (tight && tight->breached_at != FW_TIME_NONE) {
            urgency = "immediate";
            buf_printf(&reason, " The %s deadline has already passed.",
                       metric_words(tight->metric));
        } else if (tight && now != FW_TIME_NONE) {
            char left[FW_TIME_MAXLEN];
            fw_duration_format(tight->due > now ? tight->due - now : 0, left);
            buf_printf(&reason, " The %s deadline is in %s.", metric_words(tight->metric),
                       left);
        }
        json_object_set_new(g, "recommended_action",
                            json_pack("{s:s, s:s, s:s, s:o}", "type", pb_action_name(b->rec_action),
                                      "urgency", urgency, "reason", reason.data,
                                      "predicted_success", stats_of(cs, k->pb)));
        buf_cleanup(&reason);
        json_t *ctx = script_context(cs, k, snap, x.f.contacts);
        json_t *points = json_array();
        for (size_t i = 0; i < b->npoints; i++)
            json_array_append_new(points, render(b->points[i], ctx));
        json_object_set_new(g, "script",
                            json_pack("{s:o, s:o, s:o}", "opening", render(b->opening, ctx),
                                      "key_points", points, "closing", render(b->closing, ctx)));
        json_t *avoid = json_array();
        for (size_t i = 0; i < b->navoid; i++)
            json_array_append_new(avoid, json_string(b->avoid[i]));
        json_object_set_new(g, "what_not_to_do", avoid);
        json_object_set_new(g, "win_condition", json_string(b->win));
        json_t *next = json_null();
        for (size_t i = 0; i < b->nsteps; i++) {
            if (k->steps[i] != STEP_PENDING)
                continue;
            const struct pb_step *st = &b->steps[i];
            next =
                json_pack("{s:I, s:s, s:s, s:o, s:b}", "step", (json_int_t)(i + 1), "action_type",
                          pb_action_name(st->action), "description", st->description, "script",
                          render(st->script, ctx), "skip_requires_reason", st->skip_needs_reason);
            if (st->minutes)
                json_object_set_new(next, "minutes", json_integer(st->minutes));
            if (st->follow_up) {
                char d[FW_TIME_MAXLEN];
                fw_duration_format(st->follow_up, d);
                json_object_set_new(next, "follow_up", json_string(d));
            }
            break;
        }
        json_object_set_new(g, "next_step", next);
        json_object_set_new(g, "steps", steps_json(cs, k));
        json_decref(ctx);
    } else {
        const struct rule_signal *lead = cases__lead_signal(cs, k);
        json_object_set_new(g, "playbook", json_null());
        json_object_set_new(
            g, "recommended_action",
            json_pack("{s:s, s:s, s:s, s:n}", "type", "internal", "urgency",
                      tight && tight->breached_at != FW_TIME_NONE ? "immediate" : "today", "reason",
                      lead && lead->action ? lead->action
                                           : "No playbook matches this case: read it and decide.",
                      "predicted_success"));
        json_object_set_new(g, "script", json_null());
        json_object_set_new(g, "what_not_to_do", json_array());
        json_object_set_new(g, "win_condition", json_null());
        json_object_set_new(g, "next_step", json_null());
        json_object_set_new(g, "steps", json_array());
    }
    json_object_set_new(g, "similar_cases", similar(cs, &x, k->severity));
    char *text = fw_json_dumps(g);
    buf_reset(out);
    buf_puts(out, text ? text : "{}");
    free(text);
    json_decref(g);
    json_decref(snap);
    facts_cleanup(&x);
    return 0;
}

void cases_playbooks_json(const struct cases *cs, struct buf *out)
{
    json_t *a = json_array();
    for (size_t i = 0; pbs(cs) && i < pbs(cs)->n; i++) {
        const struct playbook *b = &pbs(cs)->pb[i];
        json_t *sigs = json_array(), *kw = json_array();
        for (size_t j = 0; j < b->nsignals; j++)
            json_array_append_new(sigs, json_string(b->signals[j]));
        for (size_t j = 0; j < b->nkeywords; j++)
            json_array_append_new(kw, json_string(b->keywords[j]));
        json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:o, s:o, s:o, s:I, s:s, s:o}", "id",
                                           b->id, "name", b->name, "priority", b->priority, "when",
                                           b->when_src ? json_string(b->when_src) : json_null(),
                                           "signals", sigs, "keywords", kw, "steps",
                                           (json_int_t)b->nsteps, "source", b->where, "success",
                                           stats_of(cs, (int)i)));
    }
    json_t *o =
        json_pack("{s:o, s:I, s:I}", "playbooks", a, "min_history",
                  (json_int_t)cs->cfg->min_history, "resolved_cases", (json_int_t)cs->nhist);
    char *text = fw_json_dumps(o);
    buf_reset(out);
    buf_puts(out, text ? text : "{}");
    free(text);
    json_decref(o);
}

/* ---- snapshots (snap.c) ---- */

void cases__pb_steps_init(struct kase *k, size_t nsteps)
{
    k->nsteps = nsteps;
    k->steps = xcalloc(nsteps, 1);
    k->rem = xcalloc(nsteps, sizeof *k->rem);
    for (size_t i = 0; i < nsteps; i++) {
        tw_entry_init(&k->rem[i].t._tw);
        k->rem[i].t.fire = on_reminder;
        k->rem[i].k = k;
        k->rem[i].step = (int)i;
    }
}

void cases__words_write(const struct cases *cs, struct buf *out)
{
    wire_put_u64(out, cs->words.len);
    for (size_t i = 0; i < cs->words.len; i++) {
        const struct words *w = cs->words.entries[i].value;
        wire_put_str(out, cs->words.entries[i].key);
        wire_put_u32(out, w ? (uint32_t)w->n : 0);
        for (size_t j = 0; w && j < w->n; j++) {
            wire_put_str(out, w->t[j]);
            wire_put_f64(out, w->score[j]);
            wire_put_u32(out, w->intents[j]);
        }
    }
}

void cases__words_read(struct cases *cs, struct wire_rd *in)
{
    uint64_t n = wire_get_u64(in);
    if (n > in->n - in->off)
        in->err = 1;
    for (uint64_t i = 0; i < n && !in->err; i++) {
        char *key = wire_get_str(in);
        int created = 0;
        struct strmap_entry *me = key ? strmap_upsert(&cs->words, key, strlen(key), &created)
                                      : NULL;
        free(key);
        if (!created) {
            in->err = 1;
            break;
        }
        uint32_t k = wire_get_u32(in);
        if (k > WORDS_MAX) {
            in->err = 1;
            break;
        }
        struct words *w = me->value = xcalloc(1, sizeof *w);
        for (uint32_t j = 0; j < k && !in->err; j++) {
            char *t = wire_get_str(in);
            if (!t) {
                in->err = 1;
                break;
            }
            w->t[w->n] = t;
            w->score[w->n] = wire_get_f64(in);
            w->intents[w->n] = wire_get_u32(in);
            w->n++;
        }
    }
}
