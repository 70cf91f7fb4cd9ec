/*
 * cases.c -- a case's life: opened by a detection, worked through `case.*`
 * events, resolved by a person or by itself (see cases.h, docs/cases.md).
 */
#include <stdlib.h>
#include <string.h>

#include "cases/cases_int.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

char cases__resolved_marker;

/* A warning or breach found later than this after its instant is not announced. */
#define NOTICE_LATE_MS (60 * 1000LL)

static const char *const metric_names[CASE_NMETRICS] = {"first_response", "customer_contact",
                                                        "resolution"};
static const char *const status_names[] = {"open", "pending", "on_hold"};

const char *case_metric_name(int metric)
{
    return metric >= 0 && metric < CASE_NMETRICS ? metric_names[metric] : NULL;
}

void cases_config_init(struct cases_config *c)
{
    memset(c, 0, sizeof *c);
    c->weights = (struct case_weights){.value = 0.30, .severity = 0.25, .churn = 0.25,
                                       .timeliness = 0.20};
    c->min_history = 5;
    c->drop = 0.5;
    for (int i = 0; i < 4; i++)
        c->followup_task[i] = 3 * 24 * 3600 * 1000LL; /* seed 001: "+3d" */
}

/* ---- small helpers ---- */

static char *set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? xstrdup(v) : NULL;
    return *dst;
}

static const char *jstr(json_t *snap, const char *key)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(snap, "state"), key), "value"));
}

/*
 * A customer's state as the engine has it now, or an empty object.  Only
 * the documents, the cards (name, value) and policy conditions read it: a
 * lean replay with no policies skips the cost.
 */
static json_t *snapshot(const struct cases *cs, const char *customer)
{
    if (cs->cfg->lean && !cs->npolicies && !cs->cfg->playbooks)
        return json_object();
    json_t *j = cs->e ? engine_customer_object(cs->e, customer) : NULL;
    return j ? j : json_object();
}

/* What a card shows about the customer, refreshed at each change of the case. */
static void take_profile(struct kase *k, json_t *snap)
{
    const char *name = jstr(snap, "customer.name");
    set_str(&k->name, name ? name : jstr(snap, "customer.email"));
    set_str(&k->tier, jstr(snap, "customer.tier"));
    json_t *v = json_object_get(
        json_object_get(json_object_get(snap, "state"), "customer.value"), "value");
    k->value = json_is_number(v) ? json_number_value(v) : NAN;
    k->signup = FW_TIME_NONE;
    static const char *const since_keys[] = {"customer.signup_date", "customer.signed_up_at",
                                             "customer.since", "customer.created_at", NULL};
    for (size_t i = 0; since_keys[i]; i++) {
        const char *s = jstr(snap, since_keys[i]);
        int64_t t;
        if (!s)
            continue;
        if (!fw_time_parse(s, strlen(s), &t)) {
            k->signup = t;
            break;
        }
        if (strlen(s) == 10) { /* a date: midnight UTC */
            char full[32];
            snprintf(full, sizeof full, "%sT00:00:00Z", s);
            if (!fw_time_parse(full, strlen(full), &t)) {
                k->signup = t;
                break;
            }
        }
    }
}

const struct rule_signal *cases__lead_signal(const struct cases *cs, const struct kase *k)
{
    /* The most severe detection still firing, the earliest among equals; else the most severe. */
    const struct rule_signal *best = NULL;
    int best_firing = 0;
    for (size_t i = 0; i < k->ndets; i++) {
        const struct rule_signal *s = &cs->rules->signals[k->dets[i].sig];
        int firing = k->dets[i].resolved_at == FW_TIME_NONE;
        if (!best || firing > best_firing ||
            (firing == best_firing && (int)s->severity > (int)best->severity)) {
            best = s;
            best_firing = firing;
        }
    }
    return best;
}

static struct kdet *find_det(struct kase *k, uint32_t sig)
{
    for (size_t i = 0; i < k->ndets; i++)
        if (k->dets[i].sig == sig)
            return &k->dets[i];
    return NULL;
}

static int max_severity(const struct cases *cs, const struct kase *k)
{
    int sev = 0;
    for (size_t i = 0; i < k->ndets; i++) {
        int s = (int)cs->rules->signals[k->dets[i].sig].severity;
        if (s > sev)
            sev = s;
    }
    return sev;
}

static struct kase *open_case_of(const struct cases *cs, const char *customer)
{
    struct strmap_entry *me = strmap_find(&cs->open, customer, strlen(customer));
    return me ? me->value : NULL;
}

const char *cases_open_id(const struct cases *cs, const char *customer)
{
    struct kase *k = open_case_of(cs, customer);
    return k ? k->id : NULL;
}

/* ---- output: contract lines and the stored document ---- */

static void line_begin(struct cases *cs, const char *kind, const char *event, const struct kase *k)
{
    struct buf *b = &cs->line;
    buf_reset(b);
    buf_printf(b, "{\"kind\":\"%s\",\"event\":\"%s\",\"case\":", kind, event);
    buf_json_str(b, k->id, strlen(k->id));
    buf_puts(b, ",\"customer\":");
    buf_json_str(b, k->customer, strlen(k->customer));
}

static void signals_json(const struct cases *cs, const struct kase *k, struct buf *b)
{
    buf_puts(b, "[");
    for (size_t i = 0; i < k->ndets; i++) {
        if (i)
            buf_putc(b, ',');
        const char *id = cs->rules->signals[k->dets[i].sig].id;
        buf_json_str(b, id, strlen(id));
    }
    buf_puts(b, "]");
}

/* The fields every case line carries: severity, signals, status, assignee. */
static void line_common(struct cases *cs, const struct kase *k)
{
    struct buf *b = &cs->line;
    buf_printf(b, ",\"severity\":\"%s\",\"signals\":", severity_name((enum severity)k->severity));
    signals_json(cs, k, b);
    buf_printf(b, ",\"status\":\"%s\",\"assignee\":",
               k->closing ? "resolved" : status_names[k->status]);
    if (k->assignee)
        buf_json_str(b, k->assignee, strlen(k->assignee));
    else
        buf_puts(b, "null");
}

static void put_str_field(struct buf *b, const char *name, const char *v)
{
    buf_printf(b, ",\"%s\":", name);
    if (v)
        buf_json_str(b, v, strlen(v));
    else
        buf_puts(b, "null");
}

json_t *cases__jtime(int64_t t)
{
    if (t == FW_TIME_NONE)
        return json_null();
    char s[FW_TIME_MAXLEN];
    fw_time_format(t, s);
    return json_string(s);
}

/* The whole case, as the store keeps it (GET /v1/cases/{id}). */
static json_t *case_doc(const struct cases *cs, const struct kase *k, json_t *snap,
                        const char *state, const char *outcome, int csat, int64_t resolved_at)
{
    json_t *d = json_object();
    const struct rule_signal *lead = cases__lead_signal(cs, k);
    json_object_set_new(d, "id", json_string(k->id));
    json_object_set_new(d, "customer", json_string(k->customer));
    json_object_set_new(d, "name", k->name ? json_string(k->name) : json_null());
    json_object_set_new(d, "state", json_string(state));
    json_object_set_new(d, "status", json_string(k->closing ? "resolved" : status_names[k->status]));
    json_object_set_new(d, "severity", json_string(severity_name((enum severity)k->severity)));
    json_object_set_new(d, "assignee", k->assignee ? json_string(k->assignee) : json_null());
    json_object_set_new(d, "resolved_by", k->resolved_by ? json_string(k->resolved_by) : json_null());
    json_object_set_new(d, "reason", lead ? json_string(lead->name) : json_null());
    json_object_set_new(d, "next_step",
                        lead && lead->action ? json_string(lead->action) : json_null());
    json_object_set_new(d, "opened_at", cases__jtime(k->opened_at));
    json_object_set_new(d, "updated_at", cases__jtime(k->updated_at));
    json_object_set_new(d, "resolved_at", cases__jtime(resolved_at));
    json_object_set_new(d, "outcome", outcome ? json_string(outcome) : json_null());
    json_object_set_new(d, "csat", csat ? json_integer(csat) : json_null());
    json_t *sigs = json_array(), *dets = json_array();
    for (size_t i = 0; i < k->ndets; i++) {
        const struct rule_signal *s = &cs->rules->signals[k->dets[i].sig];
        json_array_append_new(sigs, json_string(s->id));
        json_array_append_new(
            dets, json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "signal", s->id, "name", s->name,
                            "severity", severity_name(s->severity), "state",
                            k->dets[i].resolved_at == FW_TIME_NONE ? "firing" : "resolved",
                            "fired_at", cases__jtime(k->dets[i].fired_at), "resolved_at",
                            cases__jtime(k->dets[i].resolved_at)));
    }
    json_object_set_new(d, "signals", sigs);
    json_object_set_new(d, "detections", dets);
    json_t *inc = json_array();
    for (size_t i = 0; i < k->ninc; i++)
        json_array_append_new(inc, json_integer((json_int_t)k->inc[i]));
    json_object_set_new(d, "incidents", inc);
    json_t *msgs = json_array();
    for (size_t i = 0; i < k->nmsgs; i++)
        json_array_append_new(msgs, json_string(k->msgs[i]));
    json_object_set_new(d, "messages", msgs);
    json_t *sk = json_array();
    for (size_t i = 0; i < k->nskipped; i++)
        json_array_append_new(sk, json_string(k->skipped[i]));
    json_object_set_new(d, "skipped_by", sk);
    json_object_set_new(d, "notes", json_integer((json_int_t)k->nnotes));
    const struct sla_config *sla = cs->cfg->sla;
    json_object_set_new(d, "policy", k->policy >= 0 ? json_integer(k->policy) : json_null());
    json_object_set_new(d, "calendar",
                        k->cal ? json_string(calendar_name(k->cal)) : json_string("24x7"));
    (void)sla;
    json_t *clocks = json_object();
    cases__clocks_json(k, FW_TIME_NONE, clocks);
    json_object_set_new(d, "sla", clocks);
    json_object_set_new(d, "value", isnan(k->value) ? json_null() : json_real(k->value));
    json_object_set_new(d, "tier", k->tier ? json_string(k->tier) : json_null());
    json_object_set_new(d, "customer_since", cases__jtime(k->signup));
    cases__pb_doc(cs, k, d);
    json_object_set_new(d, "journey", json_incref(snap));
    return d;
}

static void save(struct cases *cs, const struct kase *k, json_t *snap, const char *state,
                 const char *outcome, int csat, int64_t resolved_at)
{
    if (cs->quiet || !cs->sink.save)
        return;
    json_t *d = case_doc(cs, k, snap, state, outcome, csat, resolved_at);
    char *text = fw_json_dumps(d);
    cs->sink.save(cs->sink.ctx, k->id, k->customer, !strcmp(state, "open"), text ? text : "{}");
    free(text);
    json_decref(d);
}

static void line_end(struct cases *cs, const struct kase *k, int64_t at)
{
    struct buf *b = &cs->line;
    buf_puts(b, ",\"at\":");
    buf_json_time(b, at);
    buf_putc(b, '}');
    /* The event name sits at a known place: {"kind":"case","event":"<name>" */
    const char *ev = strstr(b->data, "\"event\":\"") + 9;
    char name[24];
    size_t n = strcspn(ev, "\"");
    snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), ev);
    if (!cs->quiet && cs->sink.line)
        cs->sink.line(cs->sink.ctx, k->id, at, name, b->data, b->len);
}

/* A case line with the common fields, plus `extra` (pre-formatted ",\"k\":v..." or ""). */
static void case_line(struct cases *cs, const struct kase *k, const char *event, const char *change,
                      const char *extra, int64_t at)
{
    if (cs->quiet || !cs->sink.line)
        return;
    line_begin(cs, "case", event, k);
    line_common(cs, k);
    if (change)
        buf_printf(&cs->line, ",\"change\":\"%s\"", change);
    if (extra)
        buf_puts(&cs->line, extra);
    line_end(cs, k, at);
}

/* ---- opening, updating, resolving ---- */

static void case_free(struct kase *k)
{
    if (!k)
        return;
    cases__pb_free(k->owner, k);
    free(k->customer);
    free(k->assignee);
    free(k->resolved_by);
    free(k->dets);
    free(k->inc);
    for (size_t i = 0; i < k->nmsgs; i++)
        free(k->msgs[i]);
    free(k->msgs);
    for (size_t i = 0; i < k->nskipped; i++)
        free(k->skipped[i]);
    free(k->skipped);
    free(k->name);
    free(k->tier);
    free(k);
}

/* Stable for the same input: the customer, when, and what opened it. */
static void make_id(struct cases *cs, struct kase *k, const char *sig)
{
    char seed[512];
    for (unsigned salt = 0;; salt++) {
        int n = snprintf(seed, sizeof seed, "%s\n%lld\n%s\n%u", k->customer,
                         (long long)k->opened_at, sig, salt);
        uint64_t h = fw_hash(seed, (size_t)(n < (int)sizeof seed ? n : (int)sizeof seed - 1));
        snprintf(k->id, sizeof k->id, "c_%016llx", (unsigned long long)h);
        if (!strmap_find(&cs->ids, k->id, strlen(k->id)))
            return;
    }
}

static void add_det(struct kase *k, const struct detection *d, uint32_t sig)
{
    struct kdet *x = find_det(k, sig);
    if (!x) {
        k->dets = xgrow(k->dets, &k->capdets, k->ndets + 1, sizeof *k->dets);
        x = &k->dets[k->ndets++];
        x->sig = sig;
    }
    x->fired_at = d->fired_at;
    x->resolved_at = FW_TIME_NONE;
}

static void due_fields(const struct kase *k, struct buf *b)
{
    buf_puts(b, ",\"due\":{");
    for (int m = 0; m < CASE_NMETRICS; m++) {
        buf_printf(b, "%s\"%s\":", m ? "," : "", metric_names[m]);
        if (k->clk[m].due == FW_TIME_NONE || k->clk[m].done)
            buf_puts(b, "null");
        else
            buf_json_time(b, k->clk[m].due);
    }
    buf_putc(b, '}');
}

static void open_case(struct cases *cs, const struct detection *d, uint32_t sig)
{
    struct kase *k = xcalloc(1, sizeof *k);
    k->owner = cs;
    k->customer = xstrdup(d->customer);
    k->opened_at = k->updated_at = d->at;
    k->value = NAN;
    k->signup = FW_TIME_NONE;
    k->pb = -1;
    add_det(k, d, sig);
    k->severity = max_severity(cs, k);
    make_id(cs, k, d->signal->id);
    json_t *snap = snapshot(cs, k->customer);
    take_profile(k, snap);
    cases__match_policy(cs, k, snap);
    cases__clocks_start(cs, k, d->at);
    strmap_upsert(&cs->open, k->customer, strlen(k->customer), NULL)->value = k;
    strmap_upsert(&cs->ids, k->id, strlen(k->id), NULL)->value = k;
    cs->stats.opened++;
    cs->stats.open++;
    if (!cs->quiet && cs->sink.line) {
        line_begin(cs, "case", "opened", k);
        line_common(cs, k);
        due_fields(k, &cs->line);
        buf_printf(&cs->line, ",\"policy\":");
        if (k->policy >= 0)
            buf_printf(&cs->line, "%d", k->policy);
        else
            buf_puts(&cs->line, "null");
        put_str_field(&cs->line, "calendar", k->cal ? calendar_name(k->cal) : "24x7");
        line_end(cs, k, d->at);
    }
    cases__pb_match(cs, k, snap, d->at);
    cases__clocks_overdue(cs, k);
    save(cs, k, snap, "open", NULL, 0, FW_TIME_NONE);
    json_decref(snap);
}

/* The case is over: its clocks stop, it leaves memory, its id stays known as resolved. */
static void close_case(struct cases *cs, struct kase *k, const char *agent, const char *outcome,
                       int csat, int64_t at)
{
    cases__clock_met(cs, &k->clk[CASE_RESOLUTION], at);
    cases__clocks_stop(cs, k);
    k->updated_at = at;
    cs->stats.resolved++;
    if (!strcmp(outcome, "auto_resolved"))
        cs->stats.auto_resolved++;
    cs->stats.open--;
    k->closing = 1;
    if (agent && *agent) {
        free(k->resolved_by);
        k->resolved_by = xstrdup(agent);
    }
    cases__pb_close(cs, k, outcome, csat, at);
    if (!cs->quiet && cs->sink.line) {
        line_begin(cs, "case", "resolved", k);
        line_common(cs, k);
        put_str_field(&cs->line, "outcome", outcome);
        put_str_field(&cs->line, "agent", agent);
        if (csat)
            buf_printf(&cs->line, ",\"csat\":%d", csat);
        buf_printf(&cs->line, ",\"open_ms\":%lld", (long long)(at - k->opened_at));
        line_end(cs, k, at);
    }
    if (!cs->quiet && cs->sink.save) {
        json_t *snap = snapshot(cs, k->customer);
        save(cs, k, snap, "resolved", outcome, csat, at);
        json_decref(snap);
    }
    strmap_find(&cs->open, k->customer, strlen(k->customer))->value = NULL;
    strmap_find(&cs->ids, k->id, strlen(k->id))->value = RESOLVED_CASE;
    case_free(k);
}

static int all_resolved(const struct kase *k)
{
    for (size_t i = 0; i < k->ndets; i++)
        if (k->dets[i].resolved_at == FW_TIME_NONE)
            return 0;
    return 1;
}

/* Store the case as it is now (serve), with a fresh look at the customer. */
static void resave(struct cases *cs, struct kase *k)
{
    if (cs->quiet || !cs->sink.save)
        return;
    json_t *snap = snapshot(cs, k->customer);
    take_profile(k, snap);
    save(cs, k, snap, "open", NULL, 0, FW_TIME_NONE);
    json_decref(snap);
}

void cases__line(struct cases *cs, const struct kase *k, const char *event, const char *extra,
                 int64_t at)
{
    case_line(cs, k, event, NULL, extra, at);
}

void cases__resave(struct cases *cs, struct kase *k)
{
    resave(cs, k);
}

json_t *cases__snapshot(const struct cases *cs, const char *customer)
{
    return snapshot(cs, customer);
}

/* A change worth a line and a saved document. */
static void changed(struct cases *cs, struct kase *k, const char *change, const char *extra,
                    int64_t at)
{
    k->updated_at = at > k->updated_at ? at : k->updated_at;
    case_line(cs, k, "updated", change, extra, at);
    resave(cs, k);
}

static void on_detection(struct cases *cs, const struct detection *d)
{
    uint32_t sig = (uint32_t)(d->signal - cs->rules->signals);
    struct kase *k = open_case_of(cs, d->customer);
    if (d->firing) {
        if (!k) {
            if ((int)d->signal->severity >= (int)SEV_MEDIUM)
                open_case(cs, d, sig);
            return;
        }
        add_det(k, d, sig);
        int sev = max_severity(cs, k);
        char extra[96];
        snprintf(extra, sizeof extra, ",\"signal\":\"%s\"", d->signal->id);
        if (sev > k->severity) {
            k->severity = sev;
            json_t *snap = snapshot(cs, k->customer);
            cases__clocks_raise(cs, k, snap, d->at);
            json_decref(snap);
            struct buf b;
            buf_init(&b, 0);
            buf_puts(&b, extra);
            due_fields(k, &b);
            changed(cs, k, "severity", b.data, d->at);
            buf_cleanup(&b);
            cases__clocks_overdue(cs, k); /* a raise found in history may be past due already */
        } else {
            changed(cs, k, "detection", extra, d->at);
        }
        cases__pb_match(cs, k, NULL, d->at);
        return;
    }
    if (!k)
        return;
    struct kdet *x = find_det(k, sig);
    if (!x || x->fired_at != d->fired_at)
        return; /* an episode from before this case */
    x->resolved_at = d->at;
    if (all_resolved(k) && !k->assignee) {
        close_case(cs, k, NULL, "auto_resolved", 0, d->at);
        return;
    }
    char extra[96];
    snprintf(extra, sizeof extra, ",\"signal\":\"%s\"", d->signal->id);
    changed(cs, k, "detection_resolved", extra, d->at);
}

static int by_time(const void *a, const void *b)
{
    const struct detection *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return y->firing - x->firing; /* at one instant, what fires joins before what resolves */
}

/* Feed a customer's detections again, fires and resolutions in time order. */
static void rebuild_from(struct cases *cs, const char *customer, const struct kdet *dets, size_t n)
{
    struct detection *t = xmalloc((2 * n + 1) * sizeof *t);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const struct rule_signal *sig = &cs->rules->signals[dets[i].sig];
        t[m++] = (struct detection){.signal = sig, .customer = customer, .firing = 1,
                                    .at = dets[i].fired_at, .fired_at = dets[i].fired_at};
        if (dets[i].resolved_at != FW_TIME_NONE)
            t[m++] = (struct detection){.signal = sig, .customer = customer, .firing = 0,
                                        .at = dets[i].resolved_at, .fired_at = dets[i].fired_at};
    }
    qsort(t, m, sizeof *t, by_time);
    for (size_t i = 0; i < m; i++)
        on_detection(cs, &t[i]);
    free(t);
}

/* A transition reported earlier never happened (late events): take it out of the case. */
static void on_retract(struct cases *cs, const struct detection *d)
{
    struct kase *k = open_case_of(cs, d->customer);
    uint32_t sig = (uint32_t)(d->signal - cs->rules->signals);
    if (!k)
        return;
    struct kdet *x = find_det(k, sig);
    if (!x || x->fired_at != d->fired_at)
        return;
    if (!d->firing) {
        x->resolved_at = FW_TIME_NONE; /* the episode goes on */
        return;
    }
    size_t i = (size_t)(x - k->dets);
    memmove(&k->dets[i], &k->dets[i + 1], (k->ndets - i - 1) * sizeof *k->dets);
    k->ndets--;
    int64_t now = engine_now(cs->e);
    if (!k->nactions) {
        /*
         * Nobody worked it: the case never was as it stands.  It is withdrawn, and what the
         * remaining detections make of it is built again in their time order, as replay of
         * the same history opens it (its id, open time and clocks from its real first firing).
         */
        size_t n = k->ndets;
        struct kdet *rest = xmalloc((n ? n : 1) * sizeof *rest);
        memcpy(rest, k->dets, n * sizeof *rest);
        char *who = xstrdup(k->customer);
        char **msgs = k->msgs; /* the messages already decided belong to the rebuilt case */
        size_t nmsgs = k->nmsgs;
        k->msgs = NULL;
        k->nmsgs = k->capmsgs = 0;
        cases__clocks_stop(cs, k);
        cs->stats.opened--;
        cs->stats.open--;
        case_line(cs, k, "withdrawn", NULL, NULL, now);
        if (!cs->quiet && cs->sink.withdraw)
            cs->sink.withdraw(cs->sink.ctx, k->id);
        strmap_find(&cs->open, k->customer, strlen(k->customer))->value = NULL;
        strmap_find(&cs->ids, k->id, strlen(k->id))->value = NULL;
        case_free(k);
        rebuild_from(cs, who, rest, n);
        struct kase *nk = open_case_of(cs, who);
        for (size_t j = 0; j < nmsgs; j++) {
            if (nk) {
                nk->msgs = xgrow(nk->msgs, &nk->capmsgs, nk->nmsgs + 1, sizeof *nk->msgs);
                nk->msgs[nk->nmsgs++] = msgs[j];
            } else {
                free(msgs[j]);
            }
        }
        free(msgs);
        if (nk)
            resave(cs, nk);
        free(rest);
        free(who);
        return;
    }
    k->severity = max_severity(cs, k) > k->severity ? max_severity(cs, k) : k->severity;
    if (all_resolved(k) && !k->assignee) {
        close_case(cs, k, NULL, "auto_resolved", 0, now);
        return;
    }
    changed(cs, k, "detection_withdrawn", NULL, now);
}

static void on_incident(struct cases *cs, const struct incident *i)
{
    if (!strcmp(i->update, "resolved"))
        return;
    for (size_t n = 0; n < i->ncustomers; n++) {
        const char *who = i->added ? i->added : i->customers[n];
        struct kase *k = open_case_of(cs, who);
        if (k) {
            int known = 0;
            for (size_t j = 0; j < k->ninc; j++)
                known |= k->inc[j] == i->id;
            if (!known) {
                k->inc = xgrow(k->inc, &k->capinc, k->ninc + 1, sizeof *k->inc);
                k->inc[k->ninc++] = i->id;
                char extra[64];
                snprintf(extra, sizeof extra, ",\"incident\":%llu", (unsigned long long)i->id);
                changed(cs, k, "incident", extra, i->at);
            }
        }
        if (i->added)
            break;
    }
}

/* ---- a person's actions ---- */

static const char *dstr(const struct event *ev, const char *key)
{
    return json_string_value(json_object_get(ev->data, key));
}

static int is_customer_channel(const char *ch)
{
    return ch && (!strcmp(ch, "call") || !strcmp(ch, "email") || !strcmp(ch, "sms") ||
                  !strcmp(ch, "chat"));
}

/* The case an action is about, or NULL with the reason. */
static struct kase *target(const struct cases *cs, const struct event *ev, char *why, size_t n,
                           int *rc)
{
    const char *id = dstr(ev, "case");
    *rc = 0;
    if (id) {
        struct strmap_entry *me = strmap_find(&cs->ids, id, strlen(id));
        if (!me || !me->value) {
            snprintf(why, n, "no case %s", id);
            *rc = FW_ENOTFOUND;
            return NULL;
        }
        if (me->value == RESOLVED_CASE) {
            snprintf(why, n, "case %s is resolved", id);
            *rc = FW_ESTATE;
            return NULL;
        }
        struct kase *k = me->value;
        if (!ev->subject || strcmp(k->customer, ev->subject)) {
            snprintf(why, n, "case %s is about %s, not %s", id, k->customer,
                     ev->subject ? ev->subject : "(no subject)");
            *rc = FW_ESTATE;
            return NULL;
        }
        return k;
    }
    struct kase *k = ev->subject ? open_case_of(cs, ev->subject) : NULL;
    if (!k) {
        snprintf(why, n, "customer %s has no open case", ev->subject ? ev->subject : "(none)");
        *rc = FW_ENOTFOUND;
    }
    return k;
}

int cases_check(const struct cases *cs, const struct event *ev, char *why, size_t n,
                char *case_id)
{
    int rc;
    if (!strncmp(ev->type, "case.task_", 10)) {
        if (case_id)
            case_id[0] = 0;
        return cases__task_check(cs, ev, why, n);
    }
    struct kase *k = target(cs, ev, why, n, &rc);
    if (!k)
        return rc;
    if (case_id)
        snprintf(case_id, 24, "%s", k->id);
    return cases__pb_check(cs, k, ev, why, n);
}

static int skipped_by(const struct kase *k, const char *agent)
{
    for (size_t i = 0; i < k->nskipped; i++)
        if (!strcmp(k->skipped[i], agent))
            return 1;
    return 0;
}

/*
 * When a person's action happened: now, except for history being loaded (a
 * backfill dated before the clock), which happened at its own time as long
 * as that is not before the case opened or its last action (replay's time, so a loaded
 * history gives the cases replay gives).
 */
static int64_t action_time(const struct cases *cs, const struct kase *k, const struct event *ev)
{
    int64_t now = engine_now(cs->e);
    int64_t after = k->acted_at > k->opened_at ? k->acted_at : k->opened_at;
    return ev->time < now && ev->time >= after ? ev->time : now;
}

static void on_action(struct cases *cs, const struct event *ev)
{
    char why[256];
    int rc;
    if (!strncmp(ev->type, "case.task_", 10)) {
        cases__task_action(cs, ev);
        return;
    }
    struct kase *k = target(cs, ev, why, sizeof why, &rc);
    if (!k) {
        cs->stats.ignored++;
        log_warn("event %s (%s) ignored: %s", ev->id, ev->type, why);
        return;
    }
    const char *act = ev->type + 5, *agent = dstr(ev, "agent");
    int64_t at = action_time(cs, k, ev);
    k->acted_at = at;
    struct buf extra;
    buf_init(&extra, 0);
    k->nactions++;
    if (!strcmp(act, "assigned")) {
        set_str(&k->assignee, agent);
        k->updated_at = at;
        if (!cs->quiet && cs->sink.line) {
            line_begin(cs, "case", "assigned", k);
            line_common(cs, k);
            put_str_field(&cs->line, "agent", agent);
            put_str_field(&cs->line, "by", dstr(ev, "by") ? dstr(ev, "by") : agent);
            line_end(cs, k, at);
        }
        resave(cs, k);
        cases__task_case_assigned(cs, k, at);
    } else if (!strcmp(act, "responded")) {
        const char *ch = dstr(ev, "channel");
        buf_puts(&extra, "");
        put_str_field(&extra, "agent", agent);
        put_str_field(&extra, "channel", ch);
        changed(cs, k, "responded", extra.data, at);
        cases__clock_met(cs, &k->clk[CASE_FIRST_RESPONSE], at);
        if (is_customer_channel(ch))
            cases__clock_met(cs, &k->clk[CASE_CUSTOMER_CONTACT], at);
    } else if (!strcmp(act, "status_changed")) {
        const char *st = dstr(ev, "status");
        int s = !strcmp(st, "pending") ? CST_PENDING : !strcmp(st, "on_hold") ? CST_ON_HOLD : CST_OPEN;
        int was = k->status;
        k->status = s;
        put_str_field(&extra, "agent", agent);
        changed(cs, k, "status", extra.data, at);
        if (s != CST_OPEN && was == CST_OPEN)
            cases__clock_pause(cs, &k->clk[CASE_RESOLUTION], at);
        else if (s == CST_OPEN && was != CST_OPEN)
            cases__clock_resume(cs, &k->clk[CASE_RESOLUTION], at);
    } else if (!strcmp(act, "note_added")) {
        k->nnotes++;
        put_str_field(&extra, "agent", agent);
        put_str_field(&extra, "text", dstr(ev, "text"));
        changed(cs, k, "note", extra.data, at);
    } else if (!strcmp(act, "skipped")) {
        if (agent && !skipped_by(k, agent)) {
            k->skipped = xgrow(k->skipped, &k->capskipped, k->nskipped + 1, sizeof *k->skipped);
            k->skipped[k->nskipped++] = xstrdup(agent);
        }
        if (k->assignee && agent && !strcmp(k->assignee, agent))
            set_str(&k->assignee, NULL); /* back to the queue */
        put_str_field(&extra, "agent", agent);
        put_str_field(&extra, "reason", dstr(ev, "reason"));
        changed(cs, k, "skipped", extra.data, at);
        cases__task_case_assigned(cs, k, at);
    } else if (!strcmp(act, "playbook_set") || !strcmp(act, "step_completed") ||
               !strcmp(act, "step_skipped")) {
        cases__pb_action(cs, k, ev, at);
    } else if (!strcmp(act, "resolved")) {
        json_t *c = json_object_get(ev->data, "csat");
        close_case(cs, k, agent, dstr(ev, "outcome"), json_is_integer(c) ? (int)json_integer_value(c) : 0,
                   at);
    } else {
        cs->stats.ignored++;
        k->nactions--;
        log_warn("event %s: unknown case action %s ignored", ev->id, ev->type);
    }
    /* The clocks moved after the change was saved: store the case as it now stands. */
    if (!strcmp(act, "responded") || !strcmp(act, "status_changed"))
        resave(cs, k);
    buf_cleanup(&extra);
}

/* Does this customer event end "waiting on the customer"? */
static int is_inbound(const struct cases *cs, const char *type)
{
    return !strcmp(type, "message.replied") || rules_type_in_class(cs->rules, type, "contact");
}

static void note_value(struct cases *cs, const struct event *ev)
{
    if (cs->cfg->lean)
        return; /* only the queue's priority reads them, and nobody asks a lean replay for it */
    json_t *v = json_object_get(ev->data, "value");
    if (!json_is_number(v) || strcmp(ev->type, "customer.updated"))
        return;
    struct strmap_entry *me = strmap_upsert(&cs->values, ev->subject, strlen(ev->subject), NULL);
    me->value = cases__value_box(json_number_value(v));
    cs->values_dirty = 1;
}

/* ---- engine sink ---- */

static void sink_detection(void *ctx, const struct detection *d)
{
    struct cases *cs = ctx;
    if (cs->next.detection)
        cs->next.detection(cs->next.ctx, d);
    on_detection(cs, d);
    cases__task_detection(cs, d);
}

static void sink_retract(void *ctx, const struct detection *d)
{
    struct cases *cs = ctx;
    if (cs->next.retract)
        cs->next.retract(cs->next.ctx, d);
    on_retract(cs, d);
}

static void sink_incident(void *ctx, const struct incident *i)
{
    struct cases *cs = ctx;
    if (cs->next.incident)
        cs->next.incident(cs->next.ctx, i);
    on_incident(cs, i);
}

static void sink_step(void *ctx, const struct event *ev, const char *customer)
{
    struct cases *cs = ctx;
    if (cs->next.step)
        cs->next.step(cs->next.ctx, ev, customer);
    if (!ev || !customer)
        return;
    if (!strncmp(ev->type, "case.", 5)) {
        on_action(cs, ev);
        return;
    }
    cases__task_event(cs, ev, customer);
    note_value(cs, ev);
    struct kase *k = open_case_of(cs, customer);
    if (cases__words_note(cs, ev) && k)
        cases__pb_match(cs, k, NULL, engine_now(cs->e));
    if (k && k->status != CST_OPEN && is_inbound(cs, ev->type)) {
        /* The customer answered: no longer waiting on them. */
        k->status = CST_OPEN;
        int64_t at = engine_now(cs->e);
        char extra[128];
        snprintf(extra, sizeof extra, ",\"by_event\":\"%s\"", ev->type);
        changed(cs, k, "status", extra, at);
        cases__clock_resume(cs, &k->clk[CASE_RESOLUTION], at);
        resave(cs, k);
    }
}

struct engine_sink cases_engine_sink(struct cases *cs, const struct engine_sink *next)
{
    if (next)
        cs->next = *next;
    return (struct engine_sink){.ctx = cs, .detection = sink_detection, .incident = sink_incident,
                                .step = sink_step, .retract = sink_retract};
}

/* ---- orchestrator sink: messages for the customer join the case ---- */

static int counts_as_contact(const struct outbox_msg *m)
{
    return m->audience && !strcmp(m->audience, "customer") && m->status &&
           (!strcmp(m->status, "scheduled") || !strcmp(m->status, "stored") ||
            !strcmp(m->status, "sent") || !strcmp(m->status, "sending"));
}

static void osink_message(void *ctx, const struct outbox_msg *m)
{
    struct cases *cs = ctx;
    /* A quiet orchestrator hands its records here only to rebuild what follows them. */
    if (cs->onext.message && !cs->quiet)
        cs->onext.message(cs->onext.ctx, m);
    struct kase *k = m->customer ? open_case_of(cs, m->customer) : NULL;
    cases__task_message(cs, m);
    if (!k)
        return;
    k->msgs = xgrow(k->msgs, &k->capmsgs, k->nmsgs + 1, sizeof *k->msgs);
    k->msgs[k->nmsgs++] = xstrdup(m->id);
    if (counts_as_contact(m))
        cases__clock_met(cs, &k->clk[CASE_CUSTOMER_CONTACT], m->created_at);
    resave(cs, k);
}

static void osink_task(void *ctx, const struct task_row *t)
{
    struct cases *cs = ctx;
    if (cs->onext.task)
        cs->onext.task(cs->onext.ctx, t);
}

static void osink_context(void *ctx, const char *customer, const char *json)
{
    struct cases *cs = ctx;
    if (cs->onext.context)
        cs->onext.context(cs->onext.ctx, customer, json);
}

/* A decision after a global event is about to be made for customer (replay's partitions key it). */
static void osink_turn(void *ctx, const char *customer)
{
    struct cases *cs = ctx;
    if (cs->onext.turn)
        cs->onext.turn(cs->onext.ctx, customer);
}

static int osink_stored(void *ctx, const char *key, char *status, size_t n)
{
    struct cases *cs = ctx;
    return cs->onext.stored_status ? cs->onext.stored_status(cs->onext.ctx, key, status, n) : -1;
}

struct orch_sink cases_orch_sink(struct cases *cs, const struct orch_sink *next)
{
    if (next)
        cs->onext = *next;
    return (struct orch_sink){.ctx = cs, .message = osink_message, .task = osink_task,
                              .context = osink_context,
                              .stored_status = next && next->stored_status ? osink_stored : NULL,
                              .turn = next && next->turn ? osink_turn : NULL};
}

/* ---- SLA notices through the outbox ---- */

void cases__notice(struct cases *cs, const struct kase *k, const struct clock *c, const char *kind)
{
    if (cs->quiet || !cs->sink.notice)
        return;
    /*
     * A notice is for the moment it happens.  A clock that ran out in the past (a case opened
     * from history loaded late) is recorded in the case and shown as breached in the queue, but
     * nobody is paged about a deadline that passed before forewarn heard of the problem.
     */
    int64_t when = !strcmp(kind, "warning") ? c->due - (cs->cfg->sla ? cs->cfg->sla->warn_before
                                                                       : 30 * 60000LL)
                                            : c->due;
    if (engine_now(cs->e) - when > NOTICE_LATE_MS)
        return;
    char key[160], due[FW_TIME_MAXLEN], left[FW_TIME_MAXLEN];
    snprintf(key, sizeof key, "sla:%s:%s:%s:%lld", k->id, metric_names[c->metric], kind,
             (long long)c->due);
    fw_time_format(c->due, due);
    int64_t now = engine_now(cs->e);
    fw_duration_format(c->due > now ? c->due - now : now - c->due, left);
    const struct rule_signal *lead = cases__lead_signal(cs, k);
    const char *metric = c->metric == CASE_FIRST_RESPONSE     ? "first response"
                         : c->metric == CASE_CUSTOMER_CONTACT ? "customer contact"
                                                              : "resolution";
    struct buf subject, body;
    buf_init(&subject, 0);
    buf_init(&body, 0);
    if (!strcmp(kind, "warning"))
        buf_printf(&subject, "SLA warning: %s for %s is due in %s", metric,
                   k->name ? k->name : k->customer, left);
    else
        buf_printf(&subject, "SLA breached: %s for %s was due at %s", metric,
                   k->name ? k->name : k->customer, due);
    buf_printf(&body, "%s\nCase %s, %s: %s.\nDue: %s.\n%s\n", subject.data, k->id,
               severity_name((enum severity)k->severity), lead ? lead->name : "open case", due,
               k->assignee ? "" : "Nobody has this case yet: take it from the queue.");
    if (k->assignee) {
        body.len--; /* replace the empty line */
        buf_printf(&body, "Assigned to %s.\n", k->assignee);
    }
    if (lead && lead->action)
        buf_printf(&body, "Next step: %s\n", lead->action);
    char signals[128], explain[256], meta[256];
    snprintf(signals, sizeof signals, "[\"%s\"]", lead ? lead->id : "");
    snprintf(explain, sizeof explain,
             "{\"sla\":{\"case\":\"%s\",\"metric\":\"%s\",\"event\":\"%s\",\"due\":\"%s\"}}", k->id,
             metric_names[c->metric], kind, due);
    snprintf(meta, sizeof meta, "{\"case\":\"%s\",\"priority\":\"%s\"}", k->id,
             !strcmp(kind, "breached") ? "urgent" : "high");
    cases__slack_notice(cs, k, key, k->assignee != NULL, subject.data, body.data, signals, explain,
                        meta, now);
    buf_cleanup(&subject);
    buf_cleanup(&body);
}

void cases__slack_notice(struct cases *cs, const struct kase *k, const char *key, int to_assignee,
                         const char *subject, const char *body, const char *signals,
                         const char *explain, const char *meta, int64_t at)
{
    cases__slack_notice_to(cs, k->customer, to_assignee ? k->assignee : NULL, key, subject, body,
                           signals, explain, meta, at);
}

void cases__slack_notice_to(struct cases *cs, const char *customer, const char *assignee,
                            const char *key, const char *subject, const char *body,
                            const char *signals, const char *explain, const char *meta,
                            int64_t at)
{
    if (cs->quiet || !cs->sink.notice)
        return;
    char id[24];
    snprintf(id, sizeof id, "m_%016llx", (unsigned long long)fw_hash(key, strlen(key)));
    struct outbox_msg m = {
        .id = id,
        .key = (char *)key,
        .customer = (char *)customer,
        .audience = assignee ? "agent" : "l1",
        .channel = "slack",
        .status = "scheduled",
        .created_at = at,
        .send_at = at,
        .recipient = (char *)assignee,
        .subject = (char *)subject,
        .body = (char *)body,
        .signals = (char *)signals,
        .explain = (char *)explain,
        .meta = (char *)meta,
    };
    cs->sink.notice(cs->sink.ctx, &m);
}

/* ---- life cycle ---- */

struct cases *cases_new(const struct cases_config *cfg, const struct case_sink *sink,
                        struct buf *diag)
{
    struct cases *cs = xcalloc(1, sizeof *cs);
    cs->cfg = cfg;
    if (sink)
        cs->sink = *sink;
    strmap_init(&cs->open);
    strmap_init(&cs->ids);
    strmap_init(&cs->values);
    strmap_init(&cs->words);
    strmap_init(&cs->tasks);
    strmap_init(&cs->ctasks);
    strmap_init(&cs->held);
    intern_init(&cs->names);
    buf_init(&cs->line, 0);
    if (cases__compile_policies(cs, diag)) {
        cases_free(cs);
        return NULL;
    }
    return cs;
}

void cases_require(struct rules *rules)
{
    int64_t cls = intern_lookup(&rules->classes, "contact", 7);
    if (cls >= 0 && rules->class_window[cls] < CASES_CONTACT_WINDOW)
        rules->class_window[cls] = CASES_CONTACT_WINDOW;
}

void cases_bind(struct cases *cs, struct engine *e)
{
    cs->e = e;
    cs->rules = engine_rules(e);
}

int cases_idle(const struct cases *cs)
{
    const struct cases_stats *st = &cs->stats;
    return cs->open.len == 0 && cs->ids.len == 0 && cs->values.len == 0 && cs->words.len == 0 &&
           cs->nhist == 0 && cs->tasks.len == 0 && cs->ctasks.len == 0 && cs->held.len == 0 &&
           !st->opened && !st->resolved && !st->auto_resolved && !st->warnings && !st->breaches &&
           !st->ignored && !st->open;
}

void cases_set_quiet(struct cases *cs, int quiet)
{
    cs->quiet = quiet;
}

void cases_free(struct cases *cs)
{
    if (!cs)
        return;
    for (size_t i = 0; i < cs->open.len; i++) {
        struct kase *k = cs->open.entries[i].value;
        if (k) {
            if (cs->e)
                cases__clocks_stop(cs, k); /* cancels its timers: before the engine goes */
            case_free(k);
        }
    }
    cases__task_free_all(cs); /* cancels their timers: before the engine goes */
    strmap_cleanup(&cs->open);
    strmap_cleanup(&cs->ids);
    strmap_cleanup(&cs->values);
    cases__words_free(cs);
    strmap_cleanup(&cs->words);
    free(cs->hist);
    intern_cleanup(&cs->names);
    cases__free_policies(cs);
    free(cs->sorted);
    buf_cleanup(&cs->line);
    free(cs);
}

void cases_stats(const struct cases *cs, struct cases_stats *out)
{
    *out = cs->stats;
}
