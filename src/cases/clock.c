/*
 * clock.c -- SLA policies and clocks (see cases.h and docs/cases.md).
 *
 * A clock's target is calendar time: calendar_add turns "8h of support
 * hours from here" into an instant, calendar_elapsed measures what a pause
 * interrupted.  Everything is computed at the moment something changes (a
 * case opens, a severity rises, a clock pauses or resumes), and the one
 * timer per clock is armed for the next instant that matters: the warning,
 * then the breach.  Nothing scans.
 */
#include <stdlib.h>
#include <string.h>

#include "cases/cases_int.h"
#include "util/fwtime.h"
#include "util/util.h"

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)

/*
 * Seed 000's response targets per severity (LOW, MEDIUM, HIGH, CRITICAL),
 * 24x7.  CRITICAL's "immediate" customer contact is one minute: the first
 * message is decided when the merge window closes (outreach.merge_window,
 * 5s by default), so a target of 0 would be breached by design.
 */
static const int64_t defaults[CASE_NMETRICS][4] = {
    [CASE_FIRST_RESPONSE] = {8 * HOUR_MS, 8 * HOUR_MS, 2 * HOUR_MS, 30 * MIN_MS},
    [CASE_CUSTOMER_CONTACT] = {24 * HOUR_MS, 24 * HOUR_MS, 4 * HOUR_MS, MIN_MS},
    [CASE_RESOLUTION] = {72 * HOUR_MS, 72 * HOUR_MS, 24 * HOUR_MS, 4 * HOUR_MS},
};

int64_t cases__default_target(int metric, int severity)
{
    if (severity < 0 || severity > 3)
        severity = 1;
    return defaults[metric][severity];
}

/* ---- policy conditions: the rule language over a case's fields ---- */

/*
 * Names a policy may read: severity, signal (the case's most severe
 * signal), signals (all of them), tier and value (customer.tier,
 * customer.value), customer (the subject), status, and any customer state
 * key (customer.plan, esim.status, ...).
 */
static int64_t resolve(void *ctx, enum expr_ref kind, const char *name, size_t len)
{
    struct cases *cs = ctx;
    if (kind != EXPR_REF_STATE)
        return -1; /* no events, classes, entities or global state in a policy */
    return intern_id(&cs->names, name, len);
}

static void put_json(json_t *j, struct value *out)
{
    if (json_is_string(j)) {
        out->type = VAL_STR;
        out->u.str.ptr = json_string_value(j);
        out->u.str.len = json_string_length(j);
    } else if (json_is_number(j)) {
        out->type = VAL_NUM;
        out->u.num = json_number_value(j);
    } else if (json_is_boolean(j)) {
        out->type = VAL_BOOL;
        out->u.b = json_is_true(j);
    }
}

static void env_state(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    struct cases *cs = ctx;
    const struct kase *k = cs->matching;
    const char *name = intern_str(&cs->names, id);
    out->type = VAL_NULL;
    *since = FW_TIME_NONE;
    if (!strcmp(name, "severity")) {
        const char *s = severity_name((enum severity)k->severity);
        *out = (struct value){.type = VAL_STR, .u.str = {s, strlen(s)}};
    } else if (!strcmp(name, "signal")) {
        const struct rule_signal *s = cases__lead_signal(cs, k);
        if (s)
            *out = (struct value){.type = VAL_STR, .u.str = {s->id, strlen(s->id)}};
    } else if (!strcmp(name, "customer")) {
        *out = (struct value){.type = VAL_STR, .u.str = {k->customer, strlen(k->customer)}};
    } else {
        if (!strcmp(name, "tier"))
            name = "customer.tier";
        else if (!strcmp(name, "value"))
            name = "customer.value";
        json_t *st = json_object_get(json_object_get(cs->matching_snap, "state"), name);
        put_json(json_object_get(st, "value"), out);
    }
}

int cases__compile_policies(struct cases *cs, struct buf *diag)
{
    const struct sla_config *sla = cs->cfg->sla;
    size_t n = sla ? sla->npolicies : 0;
    cs->policies = xcalloc(n ? n : 1, sizeof *cs->policies);
    cs->npolicies = n;
    struct expr_resolver r = {.ctx = cs, .resolve = resolve};
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *src = sla->policies[i].match;
        if (!src)
            continue;
        struct expr_error err;
        if (expr_compile(src, strlen(src), &r, &cs->policies[i].cond, &err)) {
            /* The place in the file: the condition starts at (line, col) of `where`. */
            const struct sla_policy *p = &sla->policies[i];
            const char *w = p->where ? p->where : "config:1:1";
            const char *c2 = strrchr(w, ':'), *c1 = c2;
            while (c1 > w && *--c1 != ':')
                ;
            unsigned line = (unsigned)p->line + err.line - 1,
                     col = err.line == 1 ? (unsigned)p->col + err.col - 1 : err.col;
            buf_printf(diag, "%.*s:%u:%u: sla.policies[%zu].match: %s\n  %s\n", (int)(c1 - w), w,
                       line, col, i, err.msg, src);
            rc = FW_EPARSE;
        } else if (expr_regex_count(cs->policies[i].cond)) {
            /* A regex search stopped by a limit at run time is logged with its place. */
            const struct sla_policy *p = &sla->policies[i];
            const char *w = p->where ? p->where : "config:1:1";
            const char *c1 = strrchr(w, ':');
            while (c1 > w && *--c1 != ':')
                ;
            char file[256];
            snprintf(file, sizeof file, "%.*s", (int)(c1 - w), w);
            expr_regex_place(cs->policies[i].cond, src, file, (unsigned)p->line, (unsigned)p->col,
                             "sla policy match");
        }
    }
    return rc;
}

void cases__free_policies(struct cases *cs)
{
    for (size_t i = 0; i < cs->npolicies; i++)
        expr_free(cs->policies[i].cond);
    free(cs->policies);
    cs->policies = NULL;
    cs->npolicies = 0;
}

void cases__match_policy(struct cases *cs, struct kase *k, json_t *snap)
{
    const struct sla_config *sla = cs->cfg->sla;
    k->policy = -1;
    k->cal = NULL;
    cs->matching = k;
    cs->matching_snap = snap;
    struct expr_env env = expr_env_state_only(cs, k->updated_at, env_state);
    for (size_t i = 0; i < cs->npolicies; i++) {
        if (!cs->policies[i].cond || expr_test(cs->policies[i].cond, &env, NULL)) {
            k->policy = (int)i;
            k->cal = sla->policies[i].calendar;
            break;
        }
    }
    cs->matching = NULL;
    cs->matching_snap = NULL;
}

/* The target of a metric for k as it stands (policy first, then the severity default). */
static int64_t target_of(const struct cases *cs, const struct kase *k, int metric)
{
    if (k->policy >= 0) {
        int64_t t = cs->cfg->sla->policies[k->policy].target[metric];
        if (t >= 0)
            return t;
    }
    return cases__default_target(metric, k->severity);
}

static int64_t warn_before(const struct cases *cs)
{
    return cs->cfg->sla ? cs->cfg->sla->warn_before : 30 * MIN_MS;
}

/* ---- one clock ---- */

static void sla_line(struct cases *cs, const struct clock *c, const char *event, int64_t due,
                     int64_t at)
{
    if (cs->quiet || !cs->sink.line)
        return;
    struct buf *b = &cs->line;
    buf_reset(b);
    buf_puts(b, "{\"kind\":\"sla\",\"event\":");
    buf_json_str(b, event, strlen(event));
    buf_puts(b, ",\"case\":");
    buf_json_str(b, c->k->id, strlen(c->k->id));
    buf_puts(b, ",\"customer\":");
    buf_json_str(b, c->k->customer, strlen(c->k->customer));
    buf_printf(b, ",\"metric\":\"%s\",\"due\":", case_metric_name(c->metric));
    if (due == FW_TIME_NONE)
        buf_puts(b, "null");
    else
        buf_json_time(b, due);
    buf_puts(b, ",\"at\":");
    buf_json_time(b, at);
    buf_printf(b, ",\"severity\":\"%s\"", severity_name((enum severity)c->k->severity));
    if (!strcmp(event, "met"))
        buf_printf(b, ",\"within_target\":%s", c->breached_at == FW_TIME_NONE ? "true" : "false");
    if (c->k->assignee) {
        buf_puts(b, ",\"assignee\":");
        buf_json_str(b, c->k->assignee, strlen(c->k->assignee));
    }
    buf_putc(b, '}');
    cs->sink.line(cs->sink.ctx, c->k->id, at, event, b->data, b->len);
}

/* Arm the one timer for the next instant that matters, given the clock at `now`. */
static void arm(struct cases *cs, struct clock *c)
{
    if (c->armed) {
        engine_timer_cancel(cs->e, &c->t);
        c->armed = 0;
    }
    if (c->done || c->due == FW_TIME_NONE || c->breached_at != FW_TIME_NONE)
        return;
    int64_t now = engine_now(cs->e), wb = warn_before(cs);
    if (c->due < now)
        return; /* already past (history loaded late): cases__clocks_overdue says so */
    int64_t at = c->due;
    if (!c->warned && wb > 0 && c->due - wb > now)
        at = c->due - wb;
    engine_timer_arm(cs->e, &c->t, at);
    c->armed = 1;
}

static void on_timer(struct engine_timer *t, int64_t due)
{
    struct clock *c = (struct clock *)t;
    struct cases *cs = c->k->owner;
    c->armed = 0;
    if (c->done || c->due == FW_TIME_NONE)
        return;
    if (due < c->due && !c->warned) {
        c->warned = 1;
        cs->stats.warnings++;
        sla_line(cs, c, "warning", c->due, due);
        cases__notice(cs, c->k, c, "warning");
        arm(cs, c);
        return;
    }
    c->breached_at = c->due;
    cs->stats.breaches++;
    sla_line(cs, c, "breached", c->due, c->due);
    cases__notice(cs, c->k, c, "breached");
}

static void clock_init(struct cases *cs, struct kase *k, int metric, int64_t at)
{
    struct clock *c = &k->clk[metric];
    memset(c, 0, sizeof *c);
    c->t.fire = on_timer;
    c->k = k;
    c->metric = metric;
    c->target = target_of(cs, k, metric);
    c->since = at;
    c->due = calendar_add(k->cal, at, c->target);
    c->met_at = c->breached_at = FW_TIME_NONE;
}

void cases__clocks_start(struct cases *cs, struct kase *k, int64_t at)
{
    for (int m = 0; m < CASE_NMETRICS; m++) {
        clock_init(cs, k, m, at);
        arm(cs, &k->clk[m]);
    }
}

void cases__clocks_overdue(struct cases *cs, struct kase *k)
{
    int64_t now = engine_now(cs->e);
    for (int m = 0; m < CASE_NMETRICS; m++) {
        struct clock *c = &k->clk[m];
        if (c->done || c->due == FW_TIME_NONE || c->breached_at != FW_TIME_NONE || c->due >= now)
            continue;
        c->breached_at = c->due;
        cs->stats.breaches++;
        sla_line(cs, c, "breached", c->due, c->due);
        cases__notice(cs, k, c, "breached"); /* too late to announce: counted, not sent */
    }
}

void cases__clocks_raise(struct cases *cs, struct kase *k, json_t *snap, int64_t at)
{
    cases__match_policy(cs, k, snap);
    for (int m = 0; m < CASE_NMETRICS; m++) {
        struct clock *c = &k->clk[m];
        int64_t t = target_of(cs, k, m);
        if (c->done || t >= c->target)
            continue; /* only a stricter target applies */
        c->target = t;
        if (c->since == FW_TIME_NONE)
            continue; /* paused: the new target counts when it resumes */
        int64_t left = c->target - c->consumed;
        int64_t due = calendar_add(k->cal, c->since, left > 0 ? left : 0);
        if (due < at)
            due = at; /* never due before the moment of the raise */
        if (due < c->due) {
            c->due = due;
            arm(cs, c);
        }
    }
}

void cases__clock_met(struct cases *cs, struct clock *c, int64_t at)
{
    if (c->done)
        return;
    c->done = 1;
    c->met_at = at;
    if (c->armed)
        engine_timer_cancel(cs->e, &c->t);
    c->armed = 0;
    sla_line(cs, c, "met", c->due, at);
}

void cases__clock_pause(struct cases *cs, struct clock *c, int64_t at)
{
    if (c->done || c->since == FW_TIME_NONE)
        return;
    c->consumed += calendar_elapsed(c->k->cal, c->since, at);
    int64_t due = c->due;
    c->since = c->due = FW_TIME_NONE;
    if (c->armed)
        engine_timer_cancel(cs->e, &c->t);
    c->armed = 0;
    sla_line(cs, c, "paused", due, at);
}

void cases__clock_resume(struct cases *cs, struct clock *c, int64_t at)
{
    if (c->done || c->since != FW_TIME_NONE)
        return;
    int64_t left = c->target - c->consumed;
    c->since = at;
    c->due = calendar_add(c->k->cal, at, left > 0 ? left : 0);
    if (c->breached_at == FW_TIME_NONE)
        c->warned = 0; /* a new stretch: its warning is due again */
    arm(cs, c);
    sla_line(cs, c, "resumed", c->due, at);
}

void cases__clocks_stop(struct cases *cs, struct kase *k)
{
    for (int m = 0; m < CASE_NMETRICS; m++) {
        struct clock *c = &k->clk[m];
        if (c->armed)
            engine_timer_cancel(cs->e, &c->t);
        c->armed = 0;
        c->done = 1;
    }
}

const struct clock *cases__tightest(const struct kase *k)
{
    const struct clock *best = NULL;
    for (int m = 0; m < CASE_NMETRICS; m++) {
        const struct clock *c = &k->clk[m];
        if (c->done || c->due == FW_TIME_NONE)
            continue;
        if (!best || c->due < best->due)
            best = c;
    }
    return best;
}

void cases__clocks_json(const struct kase *k, int64_t now, json_t *into)
{
    for (int m = 0; m < CASE_NMETRICS; m++) {
        const struct clock *c = &k->clk[m];
        const char *state = c->met_at != FW_TIME_NONE ? "met"
                            : c->done                 ? "stopped"
                            : c->breached_at != FW_TIME_NONE ? "breached"
                            : c->since == FW_TIME_NONE ? "paused"
                                                       : "running";
        json_t *o = json_object();
        json_object_set_new(o, "state", json_string(state));
        json_object_set_new(o, "target_ms", json_integer(c->target));
        json_object_set_new(o, "due", cases__jtime(c->due));
        if (!c->done && c->due != FW_TIME_NONE && now != FW_TIME_NONE)
            json_object_set_new(o, "time_left_ms", json_integer(c->due - now));
        if (c->since == FW_TIME_NONE && !c->done)
            json_object_set_new(o, "remaining_ms",
                                json_integer(c->target > c->consumed ? c->target - c->consumed : 0));
        json_object_set_new(o, "met_at", cases__jtime(c->met_at));
        json_object_set_new(o, "breached_at", cases__jtime(c->breached_at));
        json_object_set_new(o, "warned", json_boolean(c->warned));
        json_object_set_new(into, case_metric_name(m), o);
    }
}

void cases__clock_bind(struct kase *k, int metric)
{
    struct clock *c = &k->clk[metric];
    memset(c, 0, sizeof *c);
    tw_entry_init(&c->t._tw);
    c->t.fire = on_timer;
    c->k = k;
    c->metric = metric;
    c->since = c->due = c->met_at = c->breached_at = FW_TIME_NONE;
}
