/*
 * queue.c -- priority and the work queue: which open case to work now.
 *
 * Priority is seed 001's matrix, 0-100, with every component shown and
 * the data it rests on: value (the customer's value as a percentile of the
 * values known for the customer base), severity, churn risk (the churn
 * model's score when churn_model: is configured, docs/model.md; else 100
 * minus the health score when an engagement pack is loaded,
 * docs/engagement.md; otherwise recent contacts and active detections),
 * and timeliness (how much of
 * the tightest SLA clock is used).  The queue sorts by priority, then by
 * the nearest due time, then by age.
 */
#include <stdlib.h>
#include <string.h>

#include "cases/cases_int.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"

#define DAY_MS (24 * 3600 * 1000LL)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The known values, sorted (rebuilt only when one changed since the last look). */
static void refresh_values(struct cases *cs)
{
    if (!cs->values_dirty && cs->sorted)
        return;
    free(cs->sorted);
    cs->nsorted = cs->values.len;
    cs->sorted = xmalloc((cs->nsorted ? cs->nsorted : 1) * sizeof *cs->sorted);
    for (size_t i = 0; i < cs->nsorted; i++)
        cs->sorted[i] = cases__value_of(cs->values.entries[i].value);
    qsort(cs->sorted, cs->nsorted, sizeof *cs->sorted, cmp_double);
    cs->values_dirty = 0;
}

/* Share of known values below v (ties count half): the mid-rank percentile. */
static double percentile(const struct cases *cs, double v)
{
    size_t lo = 0, hi = cs->nsorted;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cs->sorted[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t below = lo, eq = 0;
    while (below + eq < cs->nsorted && cs->sorted[below + eq] == v)
        eq++;
    return ((double)below + 0.5 * (double)eq) / (double)cs->nsorted;
}

static json_t *component(double weight, double score, json_t *basis, const char *why)
{
    return json_pack("{s:f, s:f, s:f, s:o, s:s}", "weight", weight, "score", score, "points",
                     100.0 * weight * score, "basis", basis, "why", why);
}

static double round1(double x)
{
    return (double)(long long)(x * 10.0 + (x >= 0 ? 0.5 : -0.5)) / 10.0;
}

/* Priority now, with its components; *score receives the total. */
static json_t *priority(const struct cases *cs, const struct kase *k, int64_t now, double *score)
{
    const struct case_weights *w = &cs->cfg->weights;
    double sum = w->value + w->severity + w->churn + w->timeliness;
    if (sum <= 0)
        sum = 1;
    char why[256];
    json_t *comps = json_object();

    double v = 0;
    if (!isnan(k->value) && cs->nsorted) {
        v = percentile(cs, k->value);
        snprintf(why, sizeof why, "value %g is above %.0f%% of the %zu customers with a value",
                 k->value, 100.0 * v, cs->nsorted);
        json_object_set_new(comps, "value",
                            component(w->value / sum, v,
                                      json_pack("{s:f, s:I}", "value", k->value, "customers",
                                                (json_int_t)cs->nsorted),
                                      why));
    } else {
        json_object_set_new(comps, "value",
                            component(w->value / sum, 0, json_pack("{s:n}", "value"),
                                      "no value on record for this customer"));
    }

    double sev = (double)(k->severity + 1) / 4.0; /* LOW .25 ... CRITICAL 1 */
    snprintf(why, sizeof why, "severity %s", severity_name((enum severity)k->severity));
    json_object_set_new(comps, "severity",
                        component(w->severity / sum, sev,
                                  json_pack("{s:s}", "severity",
                                            severity_name((enum severity)k->severity)),
                                  why));

    double churn, health;
    const char *weakest;
    const struct engine_churn *cm = NULL;
    const char *cells = NULL;
    if (cs->e && !engine_churn(cs->e, k->customer, &churn, &cm, &cells)) {
        /* The churn model's score (docs/model.md, "Scoring customers live"), with the value
           of each column as the model saw it: the score can be checked with `model score`. */
        json_t *feats = json_object();
        for (size_t i = 0; cells && i < cm->n; i++, cells += strlen(cells) + 1) {
            json_t *t = json_string(cells); /* NULL: not UTF-8 (state values are) */
            json_object_set_new(feats, cm->columns[i], t ? t : json_null());
        }
        snprintf(why, sizeof why, "churn model score %.3f (%s%s%s)", churn, cm->file,
                 cm->trained ? ", trained " : "", cm->trained ? cm->trained : "");
        json_object_set_new(comps, "churn_risk",
                            component(w->churn / sum, churn,
                                      json_pack("{s:f, s:s, s:s, s:s?, s:o}", "score", churn,
                                                "model", "churn_model", "file", cm->file,
                                                "trained", cm->trained, "features", feats),
                                      why));
    } else if (cs->e && !engine_health(cs->e, k->customer, &health, &weakest)) {
        /* The engagement pack's health score (docs/engagement.md): risk is what it lacks. */
        churn = (100.0 - health) / 100.0;
        if (churn < 0)
            churn = 0;
        snprintf(why, sizeof why, "health %.1f of 100%s%s", health,
                 weakest ? "; most points lost on " : "", weakest ? weakest : "");
        json_object_set_new(comps, "churn_risk",
                            component(w->churn / sum, churn,
                                      json_pack("{s:f, s:s?, s:s}", "health", health, "weakest",
                                                weakest, "model", "health"),
                                      why));
    } else {
        int64_t touches =
            cs->e ? engine_count(cs->e, k->customer, "contact", CASES_CONTACT_WINDOW) : 0;
        size_t active = 0;
        for (size_t i = 0; i < k->ndets; i++)
            active += k->dets[i].resolved_at == FW_TIME_NONE;
        double t3 = touches > 3 ? 1.0 : (double)touches / 3.0;
        double d3 = active > 3 ? 1.0 : (double)active / 3.0;
        churn = (t3 + d3) / 2.0;
        snprintf(why, sizeof why,
                 "%lld contact%s in 7 days and %zu active detection%s (no health score: no "
                 "engagement pack loaded; 3 or more of each is the maximum)",
                 (long long)touches, touches == 1 ? "" : "s", active, active == 1 ? "" : "s");
        json_object_set_new(comps, "churn_risk",
                            component(w->churn / sum, churn,
                                      json_pack("{s:I, s:I, s:s}", "contacts_7d",
                                                (json_int_t)touches, "active_detections",
                                                (json_int_t)active, "model", "none"),
                                      why));
    }

    const struct clock *c = cases__tightest(k);
    double tl = 0;
    if (c && c->breached_at != FW_TIME_NONE) {
        tl = 1;
        snprintf(why, sizeof why, "%s breached", case_metric_name(c->metric));
    } else if (c) {
        /* Calendar time used of the target, pauses excluded (what is left is what counts). */
        int64_t used = c->consumed + calendar_elapsed(k->cal, c->since, now);
        tl = c->target <= 0 ? 1.0 : (double)used / (double)c->target;
        if (tl < 0)
            tl = 0;
        if (tl > 1)
            tl = 1;
        snprintf(why, sizeof why, "%.0f%% of the %s clock used", 100.0 * tl,
                 case_metric_name(c->metric));
    } else {
        snprintf(why, sizeof why, "no clock running");
    }
    json_object_set_new(comps, "timeliness",
                        component(w->timeliness / sum, tl,
                                  json_pack("{s:s?}", "metric",
                                            c ? case_metric_name(c->metric) : NULL),
                                  why));
    double total = 100.0 * (w->value * v + w->severity * sev + w->churn * churn +
                            w->timeliness * tl) / sum;
    *score = round1(total);
    return json_pack("{s:f, s:o}", "score", *score, "components", comps);
}

json_t *cases__card(const struct cases *cs, const struct kase *k, int64_t now)
{
    const struct rule_signal *lead = cases__lead_signal(cs, k);
    double score;
    json_t *card = json_object();
    json_object_set_new(card, "id", json_string(k->id));
    json_object_set_new(card, "customer", json_string(k->customer));
    json_object_set_new(card, "name", json_string(k->name ? k->name : k->customer));
    json_object_set_new(card, "severity", json_string(severity_name((enum severity)k->severity)));
    json_object_set_new(card, "status",
                        json_string(k->status == CST_PENDING   ? "pending"
                                    : k->status == CST_ON_HOLD ? "on_hold"
                                                               : "open"));
    json_object_set_new(card, "assignee", k->assignee ? json_string(k->assignee) : json_null());
    json_object_set_new(card, "reason", json_string(lead ? lead->name : "open case"));
    json_object_set_new(card, "next_step",
                        json_string(lead && lead->action
                                        ? lead->action
                                        : "Read the case and contact the customer."));
    json_t *sigs = json_array();
    for (size_t i = 0; i < k->ndets; i++)
        json_array_append_new(sigs, json_string(cs->rules->signals[k->dets[i].sig].id));
    json_object_set_new(card, "signals", sigs);
    json_object_set_new(card, "value", isnan(k->value) ? json_null() : json_real(k->value));
    json_object_set_new(card, "tier", k->tier ? json_string(k->tier) : json_null());
    json_object_set_new(card, "tenure_days",
                        k->signup == FW_TIME_NONE ? json_null()
                                                  : json_integer((now - k->signup) / DAY_MS));
    json_object_set_new(card, "opened_at", cases__jtime(k->opened_at));
    json_object_set_new(card, "updated_at", cases__jtime(k->updated_at));
    const struct clock *c = cases__tightest(k);
    if (c)
        json_object_set_new(card, "tightest",
                            json_pack("{s:s, s:o, s:I, s:b}", "metric",
                                      case_metric_name(c->metric), "due", cases__jtime(c->due),
                                      "time_left_ms", (json_int_t)(c->due - now), "breached",
                                      c->breached_at != FW_TIME_NONE));
    else
        json_object_set_new(card, "tightest", json_null());
    json_t *clocks = json_object();
    cases__clocks_json(k, now, clocks);
    json_object_set_new(card, "sla", clocks);
    json_object_set_new(card, "priority", priority(cs, k, now, &score));
    return card;
}

/* ---- the queue ---- */

struct entry {
    const struct kase *k;
    double score;
    int64_t due;
};

static int by_priority(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->due != y->due)
        return x->due < y->due ? -1 : 1;
    if (x->k->opened_at != y->k->opened_at)
        return x->k->opened_at < y->k->opened_at ? -1 : 1;
    return strcmp(x->k->id, y->k->id);
}

static int64_t warn_window(const struct cases *cs)
{
    return cs->cfg->sla ? cs->cfg->sla->warn_before : 30 * 60 * 1000LL;
}

static int is_breached(const struct kase *k)
{
    for (int m = 0; m < CASE_NMETRICS; m++)
        if (!k->clk[m].done && k->clk[m].breached_at != FW_TIME_NONE)
            return 1;
    return 0;
}

static int is_soon(const struct cases *cs, const struct kase *k, int64_t now)
{
    const struct clock *c = cases__tightest(k);
    return c && c->breached_at == FW_TIME_NONE && c->due - now <= warn_window(cs);
}

/* The open cases q's caller may see, in queue order; *n receives the count. */
static struct entry *ordered(const struct cases *cs, const char *user, int all, int64_t now,
                             size_t *n)
{
    refresh_values((struct cases *)cs);
    struct entry *v = xmalloc((cs->open.len ? cs->open.len : 1) * sizeof *v);
    size_t m = 0;
    for (size_t i = 0; i < cs->open.len; i++) {
        const struct kase *k = cs->open.entries[i].value;
        if (!k)
            continue;
        if (!all && k->assignee && (!user || strcmp(k->assignee, user)))
            continue;
        double score;
        json_decref(priority(cs, k, now, &score));
        const struct clock *c = cases__tightest(k);
        v[m++] = (struct entry){.k = k, .score = score, .due = c ? c->due : FW_TIME_MAX};
    }
    qsort(v, m, sizeof *v, by_priority);
    *n = m;
    return v;
}

void cases_queue_json(const struct cases *cs, const struct queue_query *q, int64_t now,
                      struct buf *out)
{
    size_t n;
    struct entry *v = ordered(cs, q->user, q->all, now, &n);
    size_t sev[4] = {0}, unassigned = 0, mine = 0, soon = 0, breached = 0;
    json_t *cards = json_array();
    int limit = q->limit > 0 ? q->limit : 50;
    for (size_t i = 0; i < n; i++) {
        const struct kase *k = v[i].k;
        int is_mine = q->user && k->assignee && !strcmp(k->assignee, q->user);
        int b = is_breached(k), s = !b && is_soon(cs, k, now);
        sev[k->severity]++;
        unassigned += !k->assignee;
        mine += is_mine;
        soon += s;
        breached += b;
        if (q->severity && strcmp(q->severity, severity_name((enum severity)k->severity)))
            continue;
        if (q->filter && ((!strcmp(q->filter, "mine") && !is_mine) ||
                          (!strcmp(q->filter, "unassigned") && k->assignee) ||
                          (!strcmp(q->filter, "breaching_soon") && !s) ||
                          (!strcmp(q->filter, "breached") && !b)))
            continue;
        if ((int)json_array_size(cards) < limit)
            json_array_append_new(cards, cases__card(cs, k, now));
    }
    free(v);
    json_t *counts = json_pack(
        "{s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, s:I}", "severity", "CRITICAL",
        (json_int_t)sev[SEV_CRITICAL], "HIGH", (json_int_t)sev[SEV_HIGH], "MEDIUM",
        (json_int_t)sev[SEV_MEDIUM], "LOW", (json_int_t)sev[SEV_LOW], "state", "unassigned",
        (json_int_t)unassigned, "mine", (json_int_t)mine, "breaching_soon", (json_int_t)soon,
        "breached", (json_int_t)breached, "total", (json_int_t)n);
    json_t *doc = json_pack("{s:o, s:s, s:I, s:o, s:o}", "now", cases__jtime(now), "clock",
                            q->virtual_clock ? "virtual" : "wall", "warn_before_ms",
                            (json_int_t)warn_window(cs), "counts", counts, "cases", cards);
    char *text = fw_json_dumps(doc);
    buf_puts(out, text ? text : "{}");
    free(text);
    json_decref(doc);
}

const char *cases_next_for(const struct cases *cs, const char *user, int64_t now)
{
    size_t n;
    struct entry *v = ordered(cs, user, 0, now, &n);
    const char *id = NULL;
    for (size_t i = 0; i < n && !id; i++) {
        const struct kase *k = v[i].k;
        int skipped = 0;
        for (size_t j = 0; j < k->nskipped; j++)
            skipped |= user && !strcmp(k->skipped[j], user);
        if ((k->assignee && user && !strcmp(k->assignee, user)) || (!k->assignee && !skipped))
            id = k->id;
    }
    free(v);
    return id;
}

int cases_live_json(const struct cases *cs, const char *id, int64_t now, struct buf *out)
{
    struct strmap_entry *me = strmap_find(&cs->ids, id, strlen(id));
    if (!me || !me->value || me->value == RESOLVED_CASE)
        return FW_ENOTFOUND;
    refresh_values((struct cases *)cs);
    json_t *card = cases__card(cs, me->value, now);
    char *text = fw_json_dumps(card);
    buf_puts(out, text ? text : "{}");
    free(text);
    json_decref(card);
    return 0;
}
