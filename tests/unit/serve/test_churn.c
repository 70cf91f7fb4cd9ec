/*
 * test_churn.c -- churn_model: (serve/churn.h): a feature value's text as a
 * CSV cell would hold it, the live score equal to the offline one on the
 * same texts (wrong kinds and unseen categories included), the config's
 * refusals with their places, and the engine's lazy, cached scoring.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "model/model_int.h"
#include "serve/churn.h"
#include "serve/config.h"
#include "util/csv.h"
#include "util/fwtime.h"
#include "util/util.h"

#define DAY0 (20514LL * FW_DAY) /* 2026-03-02T00:00:00Z */

static void cell_text(void)
{
    char b[16];
    struct value v = {.type = VAL_NUM, .u.num = 3};
    ASSERT_STREQ(churn_cell(&v, 0, b, sizeof b), "3");
    v.u.num = 0.1;
    ASSERT(strtod(churn_cell(&v, 0, b, sizeof b), NULL) == 0.1); /* reads back to the same double */
    v.u.num = NAN;
    ASSERT_STREQ(churn_cell(&v, 0, b, sizeof b), "");
    v = (struct value){.type = VAL_DUR, .u.ms = 36 * FW_HOUR};
    ASSERT_STREQ(churn_cell(&v, FW_DAY, b, sizeof b), "1.5");
    ASSERT_STREQ(churn_cell(&v, 0, b, sizeof b), ""); /* no unit: not a number */
    v = (struct value){.type = VAL_BOOL, .u.b = 1};
    ASSERT_STREQ(churn_cell(&v, 0, b, sizeof b), "true");
    v = (struct value){.type = VAL_STR, .u.str = {"basic", 5}};
    ASSERT_STREQ(churn_cell(&v, 0, b, sizeof b), "basic");
    /* Cut to fit, never inside a character: 15 bytes of room, "é" would straddle it. */
    v = (struct value){.type = VAL_STR, .u.str = {"abcdefghijklmn\xc3\xa9", 16}};
    ASSERT_STREQ(churn_cell(&v, 0, b, sizeof b), "abcdefghijklmn");
    v = (struct value){.type = VAL_TIME, .u.ms = DAY0};
    ASSERT_STREQ(churn_cell(&v, 0, b, sizeof b), "");
    v = (struct value){.type = VAL_NULL};
    ASSERT_STREQ(churn_cell(&v, 0, b, sizeof b), "");
}

/* A small model (calls numeric, intl boolean, plan categorical) saved to path; blend 0.4. */
static int small_model(char *path)
{
    struct csv c;
    struct buf d, t;
    buf_init(&d, 0);
    buf_init(&t, 0);
    buf_puts(&t, "calls,intl,plan,churn\n");
    const char *plans[] = {"basic", "plus", "unlimited"};
    for (int i = 0; i < 90; i++)
        buf_printf(&t, "%d,%s,%s,%s\n", i % 9, i % 4 ? "no" : "yes", plans[i % 3],
                   i % 9 >= 5 || (i % 4 == 0 && i % 3 == 0) || i % 13 == 0 ? "yes" : "no");
    int rc = csv_parse(&c, "t.csv", t.data, t.len, &d);
    struct model m;
    model_init(&m);
    rc = rc ? rc : model_schema_learn(&m.schema, &c, "churn", "yes", NULL, &d);
    size_t n = c.nrows, nf = m.schema.nfeat, idx[3];
    rc = rc ? rc : model_schema_bind(&m.schema, &c, idx, "t.csv", &d);
    float *x = xmalloc((n * nf + 1) * sizeof *x), *y = xmalloc((n + 1) * sizeof *y);
    if (!rc) {
        model_encode(&m.schema, &c, idx, x);
        for (size_t r = 1; r <= n; r++)
            y[r - 1] = !strcmp(csv_cell(&c, r, 3), "yes");
        m.params = model__grid[0];
        m.params.rounds = 8;
        m.threshold = 0.5;
        m.tree_weight = 0.4;
        rc = gbt_train(x, y, n, nf, &m.params, &m.booster, &d);
    }
    if (!rc) {
        logreg_fit(&m.base, x, y, n, nf, NULL, LOGREG_LAMBDA);
        int fd = mkstemp(path);
        close(fd);
        rc = model_save(&m, path, &d);
    }
    if (rc)
        fprintf(stderr, "    small_model: %s\n", d.data ? d.data : "?");
    free(x);
    free(y);
    model_cleanup(&m);
    csv_cleanup(&c);
    buf_cleanup(&t);
    buf_cleanup(&d);
    return rc;
}

/* `model score`'s way: a CSV table, model_encode, gbt_predict, the blend. */
static double offline(const char *path, const char *row)
{
    struct model m;
    struct csv c;
    struct buf d, t;
    struct gbt *g = NULL;
    size_t idx[3];
    float x[16];
    double s = NAN;
    model_init(&m);
    buf_init(&d, 0);
    buf_init(&t, 0);
    buf_printf(&t, "plan,intl,calls\n%s\n", row); /* another column order, as score allows */
    if (!model_load(&m, path, &d) && !csv_parse(&c, "r.csv", t.data, t.len, &d)) {
        if (m.schema.nfeat <= 16 && !model_schema_bind(&m.schema, &c, idx, "r.csv", &d) &&
            !gbt_load(&g, m.booster.data, m.booster.len, m.schema.nfeat, &d)) {
            model_encode(&m.schema, &c, idx, x);
            if (!gbt_predict(g, x, 1, m.schema.nfeat, &s, &d))
                s = m.tree_weight * s + (1 - m.tree_weight) * logreg_predict(&m.base, x);
        }
        csv_cleanup(&c);
    }
    gbt_free(g);
    model_cleanup(&m);
    buf_cleanup(&d);
    buf_cleanup(&t);
    return s;
}

static void live_equals_offline(void)
{
    char path[] = "/tmp/fw-churn-unit-XXXXXX";
    ASSERT_EQ(small_model(path), 0);
    struct model_live *ml = NULL;
    struct buf d;
    buf_init(&d, 0);
    ASSERT_EQ(model_live_load(&ml, path, &d), 0);
    /* calls, intl, plan in the model's order; the CSV row below has plan, intl, calls. */
    static const char *rows[][3] = {
        {"7", "yes", "basic"},  {"0", "no", "unlimited"}, {"2.5", "true", "plus"},
        {"many", "3", "gold"},  /* text in a number, a number in a boolean, an unseen category */
        {"", "", ""},           {" 4 ", "NO", "plus"},   /* blanks around, any case */
    };
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        double live = NAN;
        char row[64];
        ASSERT_EQ(model_live_score(ml, rows[i], &live, &d), 0);
        snprintf(row, sizeof row, "%s,%s,%s", rows[i][2], rows[i][1], rows[i][0]);
        double off = offline(path, row);
        if (!(live == off))
            TEST__FAIL("row %zu: live %.17g, offline %.17g", i, live, off);
    }
    /* Wrong kinds and an unseen category are exactly missing: the same score as empty cells. */
    double a, b;
    ASSERT_EQ(model_live_score(ml, rows[3], &a, &d), 0);
    ASSERT_EQ(model_live_score(ml, rows[4], &b, &d), 0);
    ASSERT(a == b);
    model_live_free(ml);
    unlink(path);
    buf_cleanup(&d);
}

/* Write text to a temporary config file; returns its name in path. */
static void write_config(char *path, const char *text)
{
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
    close(fd);
}

/* Load a config naming the model `model`; 0 or the error, the messages in *diag (caller frees). */
static int load(const char *fmt, const char *model, struct config *c, char **diag)
{
    char path[] = "/tmp/fw-churn-cfg-XXXXXX", text[1024];
    snprintf(text, sizeof text, fmt, model);
    write_config(path, text);
    struct buf d;
    buf_init(&d, 0);
    config_init(c);
    int rc = config_load_file(c, path, &d);
    unlink(path);
    *diag = buf_steal(&d);
    return rc;
}

static void config_refusals(void)
{
    char path[] = "/tmp/fw-churn-unit-XXXXXX";
    ASSERT_EQ(small_model(path), 0);
    struct config c;
    char *msg;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"churn_model:\n  file: %s\n  features:\n    calls: x\n    intl: y\n",
         ":4:5: error: churn_model.features: 1 column of the model"},
        {"churn_model:\n  file: %s\n  features:\n    calls: x\n    intl: y\n    plan: z\n    planz: "
         "z\n",
         ":7:5: error: churn_model.features: 'planz' is not a column of the model"},
        {"churn_model:\n  file: %s.nope\n  features: {calls: x, intl: y, plan: z}\n",
         ":2:9: error: churn_model.file: "},
        {"churn_model:\n  file: %s\n  features:\n    calls: {expr: x, unit: 2x}\n    intl: y\n    "
         "plan: z\n",
         ":4:28: error: churn_model: unit must be a duration"},
        {"churn_model:\n  file: %s\n  features:\n    calls: x\n    calls: x\n    intl: y\n    plan: "
         "z\n",
         ":5:5: error: churn_model.features: 'calls' is mapped twice"},
        {"churn_model:\n  fil: %s\n", ":2:3: error: unknown key fil in churn_model"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc = load(bad[i].text, path, &c, &msg);
        if (!rc || !strstr(msg, bad[i].want))
            fprintf(stderr, "    case %zu: rc %d: %s\n", i, rc, msg);
        ASSERT(rc != 0);
        ASSERT_CONTAINS(msg, bad[i].want);
        ASSERT(c.churn.model == NULL); /* nothing kept */
        free(msg);
        config_cleanup(&c);
    }
    /* Bind-time refusals: against a pack's names, at the expression. */
    struct rules r;
    rules_init(&r);
    const char *pack = "classes: {contact: [ticket.created]}\nsignals:\n"
                       "  - {id: S, name: s, severity: LOW, condition: 'churn_risk > 0.5'}\n";
    rules_add_text(&r, "p.yaml", pack, strlen(pack));
    ASSERT_EQ(rules_finish(&r), 0);
    static const struct {
        const char *feature, *want;
    } late[] = {
        {"count(\"contakt\", 7d)", ":4:19: error: churn_model.features.calls: unknown event class"},
        {"age(last(\"x\"))", "a duration needs a unit"},
        {"last(\"x\")", "a time is not a number"},
        {"event.data.calls", "event.* is not allowed here"},
        {"churn_risk", "churn_risk cannot be a feature"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(late); i++) {
        char fmt[512];
        snprintf(fmt, sizeof fmt,
                 "churn_model:\n  file: %%s\n  features:\n    calls: '%s'\n    intl: null\n    "
                 "plan: plan.name\n",
                 late[i].feature);
        ASSERT_EQ(load(fmt, path, &c, &msg), 0);
        free(msg);
        struct buf d;
        buf_init(&d, 0);
        ASSERT(churn_bind(&c.churn, &r, &d) != 0);
        if (!strstr(d.data ? d.data : "", late[i].want))
            fprintf(stderr, "    late case %zu: %s\n", i, d.data);
        ASSERT_CONTAINS(d.data, late[i].want);
        buf_cleanup(&d);
        config_cleanup(&c);
    }
    /* No model: a rule reading churn_risk is refused, at the signal. */
    struct churn_config none;
    churn_init(&none);
    struct buf d;
    buf_init(&d, 0);
    ASSERT(churn_check_rules(&none, &r, &d) != 0);
    ASSERT_CONTAINS(d.data, "p.yaml:3:");
    ASSERT_CONTAINS(d.data, "S reads churn_risk, and no churn model is configured");
    buf_cleanup(&d);
    rules_cleanup(&r);
    unlink(path);
}

/* ---- the engine: lazy and cached ---- */

static unsigned nfired;
static void on_detection(void *ctx, const struct detection *d)
{
    (void)ctx;
    nfired += d->firing;
}

static void apply(struct engine *e, struct rules *r, const char *subject, const char *type,
                  int64_t t, json_t *data)
{
    char ts[FW_TIME_MAXLEN], id[32];
    static unsigned seq;
    fw_time_format(t, ts);
    snprintf(id, sizeof id, "e%u", ++seq);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", id, "type",
                          type, "time", ts, "subject", subject, "data", data);
    struct ingest_globals g = {.ctx = r, .is_global = rules_is_global};
    struct event ev;
    struct ingest_error err;
    if (ingest_validate(j, NULL, &g, &ev, &err) == 0) {
        engine_prepare(e, t);
        engine_apply(e, &ev);
        event_cleanup(&ev);
    }
    json_decref(j);
}

/* An engine running pack with the small model's churn_model: (features given); 0 or -1. */
static int churn_engine_with(const char *pack, const char *features, const char *model,
                             struct rules *r, struct config *c, struct engine **e)
{
    char fmt[512], *msg;
    snprintf(fmt, sizeof fmt, "churn_model:\n  file: %%s\n  features:\n%s", features);
    rules_init(r);
    rules_add_text(r, "p.yaml", pack, strlen(pack));
    int rc = rules_finish(r) || load(fmt, model, c, &msg);
    struct buf d;
    buf_init(&d, 0);
    if (!rc)
        free(msg);
    rc = rc || churn_bind(&c->churn, r, &d);
    if (rc)
        fprintf(stderr, "    %s%s\n", r->diag.data ? r->diag.data : "", d.data ? d.data : "");
    buf_cleanup(&d);
    struct engine_sink sink = {.detection = on_detection};
    struct engine_churn ech;
    *e = engine_new(r, DAY0, &sink);
    if (!rc)
        engine_set_churn(*e, churn_engine(&c->churn, &ech));
    return rc ? -1 : 0;
}

static void engine_scores_lazily(void)
{
    char path[] = "/tmp/fw-churn-unit-XXXXXX";
    ASSERT_EQ(small_model(path), 0);
    struct rules r;
    struct config c;
    struct engine *e;
    const char *feats = "    calls: count(\"contact\", 30d)\n    intl: plan.intl\n    plan: plan.name\n";
    /* Nothing reads churn_risk: events cost no scoring; a reading scores once, then caches. */
    const char *quiet = "classes: {contact: [ticket.created]}\nsignals:\n"
                        "  - {id: S, name: s, severity: LOW, condition: 'plan.name is not null'}\n";
    ASSERT_EQ(churn_engine_with(quiet, feats, path, &r, &c, &e), 0);
    apply(e, &r, "ann", "plan.changed", DAY0, json_pack("{s:s, s:s}", "name", "basic", "intl", "yes"));
    for (int i = 0; i < 6; i++)
        apply(e, &r, "ann", "ticket.created", DAY0 + (i + 1) * FW_HOUR, json_pack("{s:s}", "ticket_id", "t"));
    ASSERT_EQ(engine_stats(e)->churn_scores, 0);
    double s1, s2;
    const struct engine_churn *m;
    const char *cells;
    ASSERT_EQ(engine_churn(e, "ann", &s1, &m, &cells), 0);
    ASSERT_EQ(engine_stats(e)->churn_scores, 1);
    ASSERT_STREQ(cells, "6"); /* calls, then intl, then plan, NUL after each */
    ASSERT_STREQ(cells + 2, "yes");
    ASSERT_STREQ(cells + 6, "basic");
    ASSERT_EQ(engine_churn(e, "ann", &s2, NULL, NULL), 0);
    ASSERT_EQ(engine_stats(e)->churn_scores, 1); /* cached */
    ASSERT(s1 == s2);
    engine_advance(e, DAY0 + 10 * FW_DAY); /* no feature moves with the clock before 30 days */
    ASSERT_EQ(engine_churn(e, "ann", &s2, NULL, NULL), 0);
    ASSERT_EQ(engine_stats(e)->churn_scores, 1);
    engine_advance(e, DAY0 + 31 * FW_DAY); /* the contacts left the 30-day window */
    ASSERT_EQ(engine_churn(e, "ann", &s2, NULL, &cells), 0);
    ASSERT_EQ(engine_stats(e)->churn_scores, 2);
    ASSERT_STREQ(cells, "0");
    ASSERT(s2 != s1);
    ASSERT_EQ(engine_churn(e, "nobody", &s2, NULL, NULL), FW_ENOTFOUND);
    engine_free(e);
    config_cleanup(&c);
    rules_cleanup(&r);

    /* A rule reading churn_risk: scored once per event of the customer, and it fires. */
    const char *risky = "classes: {contact: [ticket.created]}\nsignals:\n"
                        "  - {id: R, name: r, severity: LOW, condition: 'churn_risk > 0.5'}\n";
    ASSERT_EQ(churn_engine_with(risky, feats, path, &r, &c, &e), 0);
    nfired = 0;
    apply(e, &r, "bob", "plan.changed", DAY0, json_pack("{s:s, s:s}", "name", "unlimited", "intl", "no"));
    ASSERT_EQ(engine_stats(e)->churn_scores, 1);
    ASSERT_EQ(nfired, 0);
    for (int i = 0; i < 8; i++)
        apply(e, &r, "bob", "ticket.created", DAY0 + (i + 1) * FW_HOUR, json_pack("{s:s}", "ticket_id", "t"));
    ASSERT_EQ(engine_stats(e)->churn_scores, 9);
    ASSERT_EQ(nfired, 1);
    engine_free(e);
    config_cleanup(&c);
    rules_cleanup(&r);

    /* Without a model churn_risk is null: `churn_risk is null` holds, `> 0.5` never does. */
    rules_init(&r);
    const char *nullp = "signals:\n  - {id: N, name: n, severity: LOW, condition: 'churn_risk is null'}\n";
    rules_add_text(&r, "p.yaml", nullp, strlen(nullp));
    ASSERT_EQ(rules_finish(&r), 0);
    struct engine_sink sink = {.detection = on_detection};
    e = engine_new(&r, DAY0, &sink);
    nfired = 0;
    apply(e, &r, "cy", "plan.changed", DAY0, json_pack("{s:s}", "name", "basic"));
    ASSERT_EQ(nfired, 1);
    ASSERT_EQ(engine_churn(e, "cy", &s1, &m, NULL), FW_ENOTFOUND);
    ASSERT(m == NULL);
    engine_free(e);
    rules_cleanup(&r);
    unlink(path);
}

const struct test churn_tests[] = {
    {"cell_text", cell_text},
    {"live_equals_offline", live_equals_offline},
    {"config_refusals", config_refusals},
    {"engine_scores_lazily", engine_scores_lazily},
    {NULL, NULL},
};
