/*
 * fuzz_expr.c -- libFuzzer harness for the condition language: the input
 * is compiled with expr_compile_value (any result type, the widest
 * grammar) and with expr_compile (conditions), and whatever compiles is
 * evaluated against a small fixed customer whose values have every type,
 * including a long string that makes backtracking patterns hit PCRE2's
 * limits.  This is the harness that found issue 18's regex (under POSIX).
 *
 * The engagement figures (usage_decline, usage_anomaly, usage_total,
 * feature_idle, feature_last_used, purchased, signup, onboarding_left,
 * health) go through an engage callback like the engine's: metric and
 * feature names resolve against a small pack with an `engagement:` section,
 * and the figures are computed by engine/engage.c from a record built from
 * real engagement events (50 days of data_mb with a decline, spiky
 * app_logins, a purchased hotspot never used, wifi_calling used, one
 * onboarding step done), or from no record (a customer without any) for
 * inputs of odd length.  As rules_finish does, an expression whose windows
 * reach past the pack's horizon is not evaluated.
 *
 * Invariants beyond "no crash, no sanitizer report, no hang":
 *   - a failed compile leaves *out untouched and gives a message and a
 *     1-based position inside the source (line and column agree with the
 *     byte offset);
 *   - evaluation: next > now or never; expr_test_stable gives the same
 *     answer and next as expr_test, with stable <= next.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engage.h"
#include "expr/expr.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/map.h"

#define NOW 1767607200000LL /* 2026-01-05T10:00:00Z */

static const char *const classes[] = {"contact", "refund"};
static const char *const entities[] = {"ticket", "conversation"};
static char longstr[3001];
static struct value list_items[3];

static const char pack[] =
    "pack: fuzz-engagement\n"
    "version: 1\n"
    "engagement:\n"
    "  horizon_days: 90\n"
    "  metrics: [data_mb, app_logins, minutes]\n"
    "  onboarding_steps: [activate_esim, install_app, enable_autopay]\n"
    "  features: [hotspot, wifi_calling]\n"
    "teams:\n"
    "  success: Customer success\n"
    "signals:\n"
    "  - id: ENG-001\n"
    "    name: Usage decline\n"
    "    severity: MEDIUM\n"
    "    team: success\n"
    "    action: Check in.\n"
    "    root_cause: usage_decline\n"
    "    condition: usage_decline(\"data_mb\", 7, 28) >= 30\n";

static struct rules eng_rules;     /* the pack above, finished */
static struct engage *eng_record;  /* one customer's engagement record */

/* Apply one engagement event (JSON text) to the record, as the engine does. */
static void eng_event(const char *text)
{
    json_t *j = fw_json_loadb(text, strlen(text), 0, NULL);
    struct event ev;
    struct ingest_error err;
    if (!j || ingest_validate(j, &ingest_own_limits, NULL, &ev, &err))
        abort(); /* the harness's own events must be valid */
    json_decref(j);
    engage__apply(&eng_record, &eng_rules, &ev);
    event_cleanup(&ev);
}

static void eng_init(void)
{
    rules_init(&eng_rules);
    if (rules_add_text(&eng_rules, "fuzz-engagement.yaml", pack, sizeof pack - 1) ||
        rules_finish(&eng_rules))
        abort();
    char text[512], t[FW_TIME_MAXLEN], day[16];
    const int64_t start = NOW - 50 * 86400000LL;
    fw_time_format(start, t);
    snprintf(text, sizeof text,
             "{\"specversion\":\"1.0\",\"id\":\"s\",\"source\":\"f\",\"type\":"
             "\"subscription.changed\",\"subject\":\"c\",\"time\":\"%s\",\"data\":"
             "{\"plan\":\"x\",\"features\":[\"hotspot\",\"wifi_calling\"]}}", t);
    eng_event(text);
    for (int d = 0; d < 50; d++) {
        int64_t at = start + d * 86400000LL + 3600000;
        fw_time_format(at, t);
        memcpy(day, t, 10);
        day[10] = 0;
        /* data_mb: 400 a day, then a 60% drop in the last week; app_logins: mostly 2, spikes. */
        snprintf(text, sizeof text,
                 "{\"specversion\":\"1.0\",\"id\":\"u%d\",\"source\":\"f\",\"type\":"
                 "\"usage.reported\",\"subject\":\"c\",\"time\":\"%s\",\"data\":"
                 "{\"metric\":\"data_mb\",\"value\":%d,\"date\":\"%s\"}}",
                 d, t, d >= 43 ? 160 : 400 + (d % 5) * 10, day);
        eng_event(text);
        if (d % 3 == 0) {
            snprintf(text, sizeof text,
                     "{\"specversion\":\"1.0\",\"id\":\"a%d\",\"source\":\"f\",\"type\":"
                     "\"usage.reported\",\"subject\":\"c\",\"time\":\"%s\",\"data\":"
                     "{\"metric\":\"app_logins\",\"value\":%d,\"date\":\"%s\"}}",
                     d, t, d == 48 ? 90 : 2, day);
            eng_event(text);
        }
    }
    fw_time_format(NOW - 3 * 86400000LL, t);
    snprintf(text, sizeof text,
             "{\"specversion\":\"1.0\",\"id\":\"f1\",\"source\":\"f\",\"type\":"
             "\"feature.used\",\"subject\":\"c\",\"time\":\"%s\",\"data\":"
             "{\"feature\":\"wifi_calling\"}}", t);
    eng_event(text);
    snprintf(text, sizeof text,
             "{\"specversion\":\"1.0\",\"id\":\"o1\",\"source\":\"f\",\"type\":"
             "\"onboarding.step_completed\",\"subject\":\"c\",\"time\":\"%s\",\"data\":"
             "{\"step\":\"activate_esim\"}}", t);
    eng_event(text);
    if (!eng_record)
        abort();
}

/* The engine's env_engage, over the record in ctx (NULL: a customer without one). */
static void get_engage(void *ctx, int fn, uint32_t id, int a, int b, struct value *out,
                       int64_t *next)
{
    const struct engage *g = ctx;
    if (fn == EXPR_ENG_HEALTH) {
        /* The engine gathers these from the customer; here from the record and fixed figures. */
        struct health_inputs in = {.contacts = 2, .have_sentiment = 1, .sentiment = -0.3,
                                   .payment_failures = 1, .detections = 1};
        in.have_decline = g && engage__decline(g, &eng_rules, 0, 7, 28, NOW, &in.decline) == 0;
        for (uint32_t i = 0; g && i < g->nfeatures; i++) {
            in.purchased += g->features[i].purchased != 0;
            in.used += g->features[i].purchased && g->features[i].last_used != FW_TIME_NONE &&
                       g->features[i].last_used > NOW - 30 * 86400000LL;
        }
        struct health_result h;
        engage__health(&engine_health_default, &in, &h);
        if (h.score < 0 || h.score > 100.05)
            abort();
        out->type = VAL_NUM;
        out->u.num = h.score;
        *next = FW_TIME_MAX;
        return;
    }
    engage__figure(g, &eng_rules, fn, id, a, b, NOW, out, next);
}

static int64_t resolve(void *ctx, enum expr_ref kind, const char *name, size_t len)
{
    (void)ctx;
    /* Metrics and features as the rules' resolver has them; the figures need no id. */
    if (kind == EXPR_REF_METRIC)
        return intern_lookup(&eng_rules.metrics, name, len);
    if (kind == EXPR_REF_FEATURE)
        return intern_id(&eng_rules.features, name, len);
    if (kind == EXPR_REF_ENGAGE)
        return 0;
    const char *const *known = kind == EXPR_REF_CLASS ? classes
                               : kind == EXPR_REF_ENTITY ? entities
                                                         : NULL;
    if (known) {
        for (int i = 0; i < 2; i++)
            if (strlen(known[i]) == len && !memcmp(known[i], name, len))
                return i;
        return -1;
    }
    /* Any state key, global key or event type: a stable id from the name. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    return h % 16;
}

/* Values by id: every type, a long string, an empty string, and null. */
static void value_of(uint32_t id, struct value *out, int64_t *since)
{
    memset(out, 0, sizeof *out);
    *since = NOW - (int64_t)id * 3600000;
    switch (id % 9) {
    case 0: out->type = VAL_NULL; *since = FW_TIME_NONE; break;
    case 1: out->type = VAL_STR; out->u.str.ptr = "PENDING"; out->u.str.len = 7; break;
    case 2: out->type = VAL_NUM; out->u.num = 45.5; break;
    case 3: out->type = VAL_TIME; out->u.ms = NOW - 50 * 3600000LL; break;
    case 4: out->type = VAL_DUR; out->u.ms = 2 * 3600000LL; break;
    case 5: out->type = VAL_BOOL; out->u.b = 1; break;
    case 6: out->type = VAL_LIST; out->u.list.items = list_items; out->u.list.n = 3; break;
    case 7: out->type = VAL_STR; out->u.str.ptr = longstr; out->u.str.len = sizeof longstr - 1; break;
    default: out->type = VAL_STR; out->u.str.ptr = ""; out->u.str.len = 0; break;
    }
}

static void get_state(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    (void)ctx;
    value_of(id, out, since);
}

static void get_global(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    (void)ctx;
    value_of(id + 3, out, since);
}

static int64_t get_last(void *ctx, uint32_t id)
{
    (void)ctx;
    return id % 3 ? NOW - (int64_t)id * 7200000 : FW_TIME_NONE;
}

static int64_t get_count(void *ctx, uint32_t id, int64_t after, int64_t *oldest)
{
    (void)ctx;
    static const int64_t times[] = {NOW - 6 * 86400000LL, NOW - 86400000LL, NOW - 3600000};
    int64_t n = 0;
    *oldest = FW_TIME_MAX;
    for (size_t i = 0; i < 3; i++)
        if (times[i] > after && (id == 0 || i == 2)) {
            if (!n)
                *oldest = times[i];
            n++;
        }
    return n;
}

static int64_t get_open(void *ctx, uint32_t id)
{
    (void)ctx;
    return id == 0;
}

static void get_event(void *ctx, const char *path, size_t len, struct value *out)
{
    (void)ctx;
    int64_t since;
    value_of((uint32_t)len, out, &since);
    (void)path;
}

static void check_error(const struct expr_error *err, const char *src, size_t n)
{
    if (!err->msg[0] || err->line < 1 || err->col < 1 || err->offset > n)
        abort();
    unsigned line = 1;
    size_t bol = 0;
    for (size_t i = 0; i < err->offset; i++)
        if (src[i] == '\n')
            line++, bol = i + 1;
    if (line != err->line)
        abort();
    (void)bol;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!longstr[0]) {
        eng_init();
        memset(longstr, 'a', sizeof longstr - 2);
        longstr[sizeof longstr - 2] = '!';
        list_items[0].type = VAL_STR;
        list_items[0].u.str.ptr = "vip";
        list_items[0].u.str.len = 3;
        list_items[1].type = VAL_NUM;
        list_items[1].u.num = 3;
        list_items[2].type = VAL_STR;
        list_items[2].u.str.ptr = "94107";
        list_items[2].u.str.len = 5;
    }
    const char *src = (const char *)data;
    struct expr_resolver res = {.ctx = NULL, .resolve = resolve};
    struct expr_env env = {.ctx = size & 1 ? NULL : eng_record,
                           .now = NOW,
                           .state = get_state,
                           .global = get_global,
                           .last = get_last,
                           .count = get_count,
                           .open_count = get_open,
                           .event_field = get_event,
                           .engage = get_engage};
    struct expr *sentinel = (struct expr *)&res, *e = sentinel;
    struct expr_error err;
    if (expr_compile_value(src, size, &res, &e, &err)) {
        if (e != sentinel)
            abort();
        check_error(&err, src, size);
    } else if (expr_max_days(e) > eng_rules.horizon_days) {
        expr_free(e); /* rules_finish refuses it: the engine never evaluates it */
    } else {
        struct buf scratch;
        struct value v;
        int64_t next;
        buf_init(&scratch, 1 << 16);
        expr_eval(e, &env, &v, &next, &scratch);
        if (next <= NOW)
            abort();
        buf_cleanup(&scratch);
        expr_free(e);
    }
    e = sentinel;
    if (expr_compile(src, size, &res, &e, &err)) {
        if (e != sentinel)
            abort();
        check_error(&err, src, size);
    } else if (expr_max_days(e) > eng_rules.horizon_days) {
        expr_free(e);
    } else {
        int64_t next, next2, stable;
        int a = expr_test(e, &env, &next);
        int b = expr_test_stable(e, &env, &next2, &stable);
        if (a != b || next != next2 || stable > next || next <= NOW || stable <= NOW)
            abort();
        expr_free(e);
    }
    return 0;
}
