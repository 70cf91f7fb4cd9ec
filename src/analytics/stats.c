/*
 * stats.c -- outcomes and the scoreboard, computed from case documents,
 * the outreach that went out and the tickets customers opened (stats.h).
 *
 * Definitions (docs/guidance.md, "Outcomes"): a case counts in the period
 * it was resolved in; SLA compliance per metric is met-within-target over
 * met-or-breached (a clock stopped before it mattered counts for neither);
 * first-contact resolution is a resolved case whose customer opened no
 * other ticket while it was open; a proactive outreach prevented a ticket
 * when the customer opened none within the prevention window after it.
 */
#include "analytics/stats.h"

#include <stdlib.h>
#include <string.h>

#include "util/fwtime.h"
#include "util/util.h"

static const char *const metrics[] = {"first_response", "customer_contact", "resolution"};
static const char *const outcomes[] = {"saved", "resolved", "churned", "no_action", "auto_resolved"};

static int64_t jtime(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    int64_t t;
    return s && !fw_time_parse(s, strlen(s), &t) ? t : FW_TIME_NONE;
}

static int64_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : FW_TIME_NONE;
}

/* A rate, or null over nothing. */
static json_t *rate(size_t k, size_t n)
{
    return n ? json_real((double)k / (double)n) : json_null();
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The case's resolution, when it was resolved in the period (else FW_TIME_NONE). */
static int64_t resolved_in(const struct stats_input *in, json_t *doc)
{
    int64_t t = jtime(doc, "resolved_at");
    if (t == FW_TIME_NONE ||
        strcmp(json_string_value(json_object_get(doc, "state")) ?: "", "resolved"))
        return FW_TIME_NONE;
    return t >= in->from && t < in->to ? t : FW_TIME_NONE;
}

/* Whose work a resolved case counts for: who resolved it, else its assignee. */
static const char *agent_of(json_t *doc)
{
    const char *a = json_string_value(json_object_get(doc, "resolved_by"));
    return a ? a : json_string_value(json_object_get(doc, "assignee"));
}

static const char *playbook_of(json_t *doc)
{
    json_t *p = json_object_get(doc, "playbook");
    if (json_is_string(p))
        return json_string_value(p);
    return json_string_value(json_object_get(p, "id"));
}

/* Did the customer open a ticket in (after, until]? */
static int contacted(const struct stats_input *in, const char *customer, int64_t after,
                     int64_t until)
{
    size_t i;
    json_t *c;
    json_array_foreach (in->contacts, i, c) {
        int64_t at = jint(c, "at");
        if (at > after && at <= until &&
            !strcmp(json_string_value(json_object_get(c, "customer")) ?: "", customer))
            return 1;
    }
    return 0;
}

/* The figures of a set of resolved cases (those `keep` accepts). */
static json_t *figures(const struct stats_input *in, int (*keep)(json_t *doc, const void *arg),
                       const void *arg)
{
    size_t n = 0, saved = 0, per_outcome[5] = {0}, met[3] = {0}, breached[3] = {0};
    size_t ncsat = 0, fcr = 0;
    double csat = 0;
    int64_t *durs = NULL;
    size_t ndurs = 0, cap = 0;
    size_t i;
    json_t *doc;
    json_array_foreach (in->cases, i, doc) {
        int64_t res = resolved_in(in, doc);
        if (res == FW_TIME_NONE || (keep && !keep(doc, arg)))
            continue;
        n++;
        const char *oc = json_string_value(json_object_get(doc, "outcome")) ?: "";
        for (size_t k = 0; k < ARRAY_SIZE(outcomes); k++)
            per_outcome[k] += !strcmp(oc, outcomes[k]);
        saved += !strcmp(oc, "saved");
        json_t *sla = json_object_get(doc, "sla");
        for (size_t m = 0; m < ARRAY_SIZE(metrics); m++) {
            json_t *clk = json_object_get(sla, metrics[m]);
            if (jtime(clk, "breached_at") != FW_TIME_NONE)
                breached[m]++;
            else if (jtime(clk, "met_at") != FW_TIME_NONE)
                met[m]++;
        }
        int64_t opened = jtime(doc, "opened_at");
        if (opened != FW_TIME_NONE && res >= opened) {
            durs = xgrow(durs, &cap, ndurs + 1, sizeof *durs);
            durs[ndurs++] = res - opened;
        }
        json_t *cs = json_object_get(doc, "csat");
        if (json_is_integer(cs)) {
            ncsat++;
            csat += (double)json_integer_value(cs);
        }
        const char *cust = json_string_value(json_object_get(doc, "customer")) ?: "";
        fcr += opened != FW_TIME_NONE && !contacted(in, cust, opened, res);
    }
    json_t *f = json_object();
    json_object_set_new(f, "cases_resolved", json_integer((json_int_t)n));
    json_object_set_new(f, "saved", json_integer((json_int_t)saved));
    json_t *oj = json_object();
    for (size_t k = 0; k < ARRAY_SIZE(outcomes); k++)
        json_object_set_new(oj, outcomes[k], json_integer((json_int_t)per_outcome[k]));
    json_object_set_new(f, "outcomes", oj);
    json_t *sj = json_object();
    for (size_t m = 0; m < ARRAY_SIZE(metrics); m++)
        json_object_set_new(sj, metrics[m],
                            json_pack("{s:I, s:I, s:I, s:o}", "n",
                                      (json_int_t)(met[m] + breached[m]), "met", (json_int_t)met[m],
                                      "breached", (json_int_t)breached[m], "compliance",
                                      rate(met[m], met[m] + breached[m])));
    json_object_set_new(f, "sla", sj);
    if (ndurs) /* a period without resolutions has no array: qsort's pointer must not be NULL */
        qsort(durs, ndurs, sizeof *durs, cmp_i64);
    double sum = 0;
    for (size_t k = 0; k < ndurs; k++)
        sum += (double)durs[k];
    json_t *median = !ndurs      ? json_null()
                     : ndurs % 2 ? json_integer(durs[ndurs / 2])
                                 : json_integer((durs[ndurs / 2 - 1] + durs[ndurs / 2]) / 2);
    json_object_set_new(
        f, "resolution_ms",
        json_pack("{s:I, s:o, s:o}", "n", (json_int_t)ndurs, "mean",
                  ndurs ? json_integer((json_int_t)(sum / (double)ndurs)) : json_null(), "median",
                  median));
    json_object_set_new(f, "csat",
                        json_pack("{s:I, s:o}", "n", (json_int_t)ncsat, "mean",
                                  ncsat ? json_real(csat / (double)ncsat) : json_null()));
    json_object_set_new(f, "first_contact_resolution",
                        json_pack("{s:I, s:I, s:o}", "n", (json_int_t)n, "resolved",
                                  (json_int_t)fcr, "rate", rate(fcr, n)));
    free(durs);
    return f;
}

/* Proactive outreach in the period not followed by a ticket within the window. */
static json_t *prevention(const struct stats_input *in)
{
    size_t n = 0, prevented = 0, i;
    json_t *o;
    json_array_foreach (in->outreach, i, o) {
        int64_t at = jint(o, "at");
        if (at == FW_TIME_NONE || at < in->from || at >= in->to)
            continue;
        n++;
        const char *cust = json_string_value(json_object_get(o, "customer")) ?: "";
        prevented += !contacted(in, cust, at, at + in->prevention_window);
    }
    return json_pack("{s:I, s:I, s:o, s:I}", "n", (json_int_t)n, "prevented", (json_int_t)prevented,
                     "rate", rate(prevented, n), "window_ms", (json_int_t)in->prevention_window);
}

static int by_field(json_t *doc, const void *arg)
{
    const char *const *kv = arg;
    json_t *v = json_object_get(doc, kv[0]);
    const char *s = !strcmp(kv[0], "playbook") ? playbook_of(doc)
                    : !strcmp(kv[0], "agent")  ? agent_of(doc)
                                               : json_string_value(v);
    return s && !strcmp(s, kv[1]);
}

/* figures per distinct value of a field among the period's resolved cases */
static json_t *grouped(const struct stats_input *in, const char *field)
{
    json_t *g = json_object();
    size_t i;
    json_t *doc;
    json_array_foreach (in->cases, i, doc) {
        if (resolved_in(in, doc) == FW_TIME_NONE)
            continue;
        const char *v = !strcmp(field, "playbook") ? playbook_of(doc)
                        : !strcmp(field, "agent")  ? agent_of(doc)
                                                   : json_string_value(json_object_get(doc, field));
        if (!v || json_object_get(g, v))
            continue;
        const char *kv[2] = {field, v};
        json_object_set_new(g, v, figures(in, by_field, kv));
    }
    return g;
}

static json_t *period(const struct stats_input *in)
{
    char a[FW_TIME_MAXLEN], b[FW_TIME_MAXLEN];
    json_t *p = json_object();
    if (in->from != INT64_MIN) {
        fw_time_format(in->from, a);
        json_object_set_new(p, "from", json_string(a));
    } else {
        json_object_set_new(p, "from", json_null());
    }
    if (in->to != INT64_MAX) {
        fw_time_format(in->to, b);
        json_object_set_new(p, "to", json_string(b));
    } else {
        json_object_set_new(p, "to", json_null());
    }
    return p;
}

json_t *stats_outcomes(const struct stats_input *in)
{
    json_t *out = json_object();
    json_object_set_new(out, "period", period(in));
    json_t *team = figures(in, NULL, NULL);
    json_object_set_new(team, "prevention", prevention(in));
    json_object_set_new(out, "team", team);
    json_object_set_new(out, "agents", grouped(in, "agent"));
    json_object_set_new(out, "severities", grouped(in, "severity"));
    json_object_set_new(out, "playbooks", grouped(in, "playbook"));
    return out;
}

/* ---- the scoreboard ---- */

struct done {
    int64_t opened, resolved;
    int saved, breached;
    const char *agent;
};

/* The period's resolved cases, oldest resolution first. */
static struct done *resolved_cases(const struct stats_input *in, size_t *n)
{
    struct done *v = NULL;
    size_t cap = 0, i;
    json_t *doc;
    *n = 0;
    json_array_foreach (in->cases, i, doc) {
        int64_t res = resolved_in(in, doc);
        const char *agent = agent_of(doc);
        if (res == FW_TIME_NONE || !agent)
            continue;
        json_t *sla = json_object_get(doc, "sla");
        int breached = 0;
        for (size_t m = 0; m < ARRAY_SIZE(metrics); m++)
            breached |= jtime(json_object_get(sla, metrics[m]), "breached_at") != FW_TIME_NONE;
        v = xgrow(v, &cap, *n + 1, sizeof *v);
        v[(*n)++] = (struct done){
            .opened = jtime(doc, "opened_at"),
            .resolved = res,
            .saved = !strcmp(json_string_value(json_object_get(doc, "outcome")) ?: "", "saved"),
            .breached = breached,
            .agent = agent};
    }
    for (size_t a = 1; a < *n; a++) /* insertion sort: stable, by resolution time */
        for (size_t b = a; b > 0 && v[b].resolved < v[b - 1].resolved; b--) {
            struct done t = v[b];
            v[b] = v[b - 1];
            v[b - 1] = t;
        }
    return v;
}

/* Monday 00:00 UTC of t's week. */
static int64_t week_of(int64_t t)
{
    int64_t days = t >= 0 ? t / FW_DAY : -((-t + FW_DAY - 1) / FW_DAY);
    int64_t dow = ((days % 7) + 7 + 3) % 7; /* 1970-01-01 was a Thursday: Monday is 0 */
    return (days - dow) * FW_DAY;
}

static void award(json_t *list, const char *id, const char *name, const char *rule, int64_t at,
                  size_t count)
{
    char t[FW_TIME_MAXLEN];
    fw_time_format(at, t);
    json_array_append_new(list,
                          json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", id, "name", name, "rule",
                                    rule, "earned_at", t, "count", (json_int_t)count));
}

/*
 * The achievements (docs/guidance.md, "Achievements"): first save; ten
 * saves; a clean week (a complete week with 3+ resolutions and no breach on
 * any of them); fastest of the week (the quickest resolution of a complete
 * week among all agents).
 */
static json_t *achievements(const struct done *v, size_t n, const char *agent)
{
    json_t *list = json_array();
    size_t saves = 0;
    int64_t first = FW_TIME_NONE, tenth = FW_TIME_NONE, last = FW_TIME_NONE;
    for (size_t i = 0; i < n; i++) {
        last = v[i].resolved > last ? v[i].resolved : last;
        if (strcmp(v[i].agent, agent) || !v[i].saved)
            continue;
        if (++saves == 1)
            first = v[i].resolved;
        if (saves == 10)
            tenth = v[i].resolved;
    }
    if (first != FW_TIME_NONE)
        award(list, "first_save", "First save", "a case resolved with outcome saved", first, saves);
    if (tenth != FW_TIME_NONE)
        award(list, "ten_saves", "Ten saves", "ten cases resolved with outcome saved", tenth,
              saves);
    /* Weeks that are over by the last resolution seen. */
    size_t clean = 0, fastest = 0;
    int64_t clean_at = FW_TIME_NONE, fast_at = FW_TIME_NONE;
    for (size_t i = 0; i < n; i++) {
        int64_t w = week_of(v[i].resolved);
        if (i && week_of(v[i - 1].resolved) == w)
            continue; /* one pass per week, at its first case */
        if (w + 7 * FW_DAY > last)
            break;
        size_t mine = 0, bad = 0, best = (size_t)-1;
        for (size_t k = i; k < n && week_of(v[k].resolved) == w; k++) {
            if (!strcmp(v[k].agent, agent)) {
                mine++;
                bad += v[k].breached;
            }
            if (v[k].opened != FW_TIME_NONE &&
                (best == (size_t)-1 ||
                 v[k].resolved - v[k].opened < v[best].resolved - v[best].opened))
                best = k;
        }
        if (mine >= 3 && !bad && !clean++)
            clean_at = w + 7 * FW_DAY;
        if (best != (size_t)-1 && !strcmp(v[best].agent, agent) && !fastest++)
            fast_at = w + 7 * FW_DAY;
    }
    if (clean)
        award(list, "clean_week", "A clean week",
              "a complete week with three or more resolutions and no SLA breach", clean_at, clean);
    if (fastest)
        award(list, "fastest_of_week", "Fastest of the week",
              "the quickest resolution of a complete week, among all agents", fast_at, fastest);
    return list;
}

json_t *stats_agent(const struct stats_input *in, const char *agent)
{
    const char *kv[2] = {"agent", agent};
    json_t *out = figures(in, by_field, kv);
    size_t n;
    struct done *v = resolved_cases(in, &n);
    size_t streak = 0;
    for (size_t i = n; i-- > 0;) {
        if (strcmp(v[i].agent, agent))
            continue;
        if (v[i].breached)
            break;
        streak++;
    }
    json_object_set_new(out, "agent", json_string(agent));
    json_object_set_new(out, "streak", json_integer((json_int_t)streak));
    json_object_set_new(out, "achievements", achievements(v, n, agent));
    free(v);
    return out;
}

static int cmp_board(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t sx = json_integer_value(json_object_get(x, "saved")),
               sy = json_integer_value(json_object_get(y, "saved"));
    if (sx != sy)
        return sx > sy ? -1 : 1;
    json_int_t rx = json_integer_value(json_object_get(x, "cases_resolved")),
               ry = json_integer_value(json_object_get(y, "cases_resolved"));
    if (rx != ry)
        return rx > ry ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x, "agent")),
                  json_string_value(json_object_get(y, "agent")));
}

json_t *stats_leaderboard(const struct stats_input *in)
{
    json_t *agents = json_object();
    size_t i;
    json_t *doc;
    json_array_foreach (in->cases, i, doc) {
        const char *a = agent_of(doc);
        if (a && resolved_in(in, doc) != FW_TIME_NONE && !json_object_get(agents, a))
            json_object_set_new(agents, a, stats_agent(in, a));
    }
    size_t n = json_object_size(agents), k = 0;
    json_t **rows = xcalloc(n ? n : 1, sizeof *rows);
    const char *key;
    json_t *row;
    json_object_foreach (agents, key, row)
        rows[k++] = row;
    qsort(rows, n, sizeof *rows, cmp_board);
    json_t *board = json_array();
    for (k = 0; k < n; k++)
        json_array_append(board, rows[k]);
    free(rows);
    json_decref(agents);
    json_t *out = json_object();
    json_object_set_new(out, "period", period(in));
    json_object_set_new(out, "leaderboard", board);
    return out;
}
