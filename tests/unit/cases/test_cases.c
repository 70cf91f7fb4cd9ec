/*
 * test_cases.c -- the cases module through its public interface: cases
 * opened, updated and resolved by detections and by `case.*` events, SLA
 * clocks (severity defaults, raises, warnings and breaches at their exact
 * instant, pause and resume, business calendars), priority and the queue,
 * cases_check and guided mode.
 *
 * Each test loads a small rule pack, runs an engine whose sink is the
 * cases module's, drives it with validated events and engine_advance, and
 * parses the replay-contract lines the module wrote ({"kind":"case"...},
 * {"kind":"sla"...}) to assert on their fields.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "cases/calendar.h"
#include "cases/cases.h"
#include "cases/sla_config.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/tz.h"
#include "util/util.h"
#include "util/wire.h"

#define T0 1767434400000LL /* 2026-01-03T10:00:00Z, a Saturday */
#define M FW_MINUTE
#define H FW_HOUR
#define D FW_DAY

/*
 * Four signals on four namespaces, one per severity, so a test fires
 * exactly the ones it wants: "<ns>.changed" with status "bad" fires, any
 * other status resolves.  ticket.created is the contact class.
 */
#define PACK                                                                                       \
    "pack: t\n"                                                                                    \
    "classes: {contact: [ticket.created]}\n"                                                       \
    "signals:\n"                                                                                   \
    "  - {id: SM, name: Medium trouble, severity: MEDIUM, condition: 'upper(a.status) == "         \
    "\"BAD\"'}\n"                                                                                  \
    "  - {id: SH, name: High trouble, severity: HIGH, condition: 'upper(b.status) == \"BAD\"'}\n"  \
    "  - {id: SC, name: Critical trouble, severity: CRITICAL, condition: "                         \
    "'upper(c.status) == \"BAD\"'}\n"                                                              \
    "  - {id: SL, name: Low trouble, severity: LOW, condition: 'upper(l.status) == \"BAD\"'}\n"

/* ---- fixture: rules, an engine feeding the cases module, and what it wrote ---- */

struct fx {
    struct rules r;
    struct engine *e;
    struct cases_config cfg;
    struct cases *cs;
    struct buf out; /* lines since the last take(), one per line */
    json_t *taken;  /* the last take(), parsed */
    unsigned seq;   /* event ids */
    int notices;    /* SLA notices received */
    int detections; /* detections that reached the next sink */
    int mismatch;   /* line callbacks whose arguments disagree with their JSON */
};

static int64_t parse_time(const char *s)
{
    int64_t t = FW_TIME_NONE;
    if (!s || fw_time_parse(s, strlen(s), &t))
        return FW_TIME_NONE;
    return t;
}

static void on_line(void *ctx, const char *case_id, int64_t at, const char *event, const char *json,
                    size_t len)
{
    struct fx *f = ctx;
    buf_append(&f->out, json, len);
    buf_putc(&f->out, '\n');
    /* The arguments repeat the line's own fields: check they agree. */
    json_t *j = json_loadb(json, len, 0, NULL);
    const char *c = json_string_value(json_object_get(j, "case"));
    const char *ev = json_string_value(json_object_get(j, "event"));
    if (!j || !c || strcmp(c, case_id) || !ev || strcmp(ev, event) ||
        parse_time(json_string_value(json_object_get(j, "at"))) != at)
        f->mismatch++;
    json_decref(j);
}

static void on_notice(void *ctx, const struct outbox_msg *m)
{
    struct fx *f = ctx;
    (void)m;
    f->notices++;
}

static void on_detection(void *ctx, const struct detection *d)
{
    struct fx *f = ctx;
    (void)d;
    f->detections++;
}

/* Load a pack, start the engine at `now` with cases under `sla` (may be NULL). 0 or -1. */
static int fx_init_sla(struct fx *f, const char *pack, int64_t now, const struct sla_config *sla)
{
    memset(f, 0, sizeof *f);
    buf_init(&f->out, 0);
    rules_init(&f->r);
    rules_add_text(&f->r, "test.yaml", pack, strlen(pack));
    if (rules_finish(&f->r)) {
        fprintf(stderr, "    pack refused:\n%s", f->r.diag.data ? f->r.diag.data : "");
        rules_cleanup(&f->r);
        return -1;
    }
    cases_config_init(&f->cfg);
    f->cfg.sla = sla;
    struct case_sink cs = {.ctx = f, .line = on_line, .notice = on_notice};
    struct buf diag;
    buf_init(&diag, 0);
    f->cs = cases_new(&f->cfg, &cs, &diag);
    if (!f->cs) {
        fprintf(stderr, "    cases_new refused:\n%s", diag.data ? diag.data : "");
        buf_cleanup(&diag);
        rules_cleanup(&f->r);
        return -1;
    }
    buf_cleanup(&diag);
    struct engine_sink base = {.ctx = f, .detection = on_detection};
    struct engine_sink sink = cases_engine_sink(f->cs, &base);
    cases_require(&f->r); /* the history cases read (7 days of contacts), as serve and replay do */
    f->e = engine_new(&f->r, now, &sink);
    cases_bind(f->cs, f->e);
    return 0;
}

static int fx_init(struct fx *f, int64_t now) { return fx_init_sla(f, PACK, now, NULL); }

static void fx_cleanup(struct fx *f)
{
    cases_free(f->cs); /* first: it cancels its timers on the engine */
    engine_free(f->e);
    rules_cleanup(&f->r);
    buf_cleanup(&f->out);
    json_decref(f->taken);
}

/*
 * The lines written since the last take(), parsed, as an array (owned by
 * the fixture until the next take).  A line that is not JSON becomes null,
 * which fails whatever looks at it.
 */
static json_t *take(struct fx *f)
{
    json_decref(f->taken);
    f->taken = json_array();
    const char *p = f->out.data ? f->out.data : "";
    while (*p) {
        size_t n = strcspn(p, "\n");
        json_t *j = json_loadb(p, n, 0, NULL);
        json_array_append_new(f->taken, j ? j : json_null());
        p += n + (p[n] == '\n');
    }
    buf_reset(&f->out);
    return f->taken;
}

/* Build a validated event; 0, or -1 with the reason printed. The caller cleans up ev. */
static int mk_event(struct fx *f, const char *subject, const char *type, int64_t t,
                    const char *data, struct event *ev)
{
    char ts[FW_TIME_MAXLEN], id[32];
    fw_time_format(t, ts);
    snprintf(id, sizeof id, "e%u", ++f->seq);
    char *d = xstrdup(data ? data : "{}");
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_t *dj = json_loads(d, 0, NULL);
    free(d);
    if (!dj) {
        fprintf(stderr, "    bad test data %s\n", data);
        return -1;
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", id, "type", type,
                          "time", ts, "data", dj);
    if (subject)
        json_object_set_new(j, "subject", json_string(subject));
    struct ingest_globals g = {.ctx = &f->r, .is_global = rules_is_global};
    struct ingest_error err;
    int rc = ingest_validate(j, NULL, &g, ev, &err);
    json_decref(j);
    if (rc) {
        fprintf(stderr, "    bad test event %s %s: %s %s\n", type, data ? data : "", err.field,
                err.msg);
        return -1;
    }
    return 0;
}

/* Apply one event at time t, as replay does.  A bad event fails the running test. */
static void fx_event(struct fx *f, const char *subject, const char *type, int64_t t,
                     const char *data)
{
    struct event ev;
    if (mk_event(f, subject, type, t, data, &ev)) {
        test__failures++;
        return;
    }
    engine_prepare(f->e, t);
    engine_apply(f->e, &ev);
    event_cleanup(&ev);
}

/* "<ns>.changed" with status bad (the signal on ns fires) or ok (it resolves). */
static void bad(struct fx *f, const char *who, const char *ns, int64_t t)
{
    char type[32];
    snprintf(type, sizeof type, "%s.changed", ns);
    fx_event(f, who, type, t, "{'status':'bad'}");
}

static void good(struct fx *f, const char *who, const char *ns, int64_t t)
{
    char type[32];
    snprintf(type, sizeof type, "%s.changed", ns);
    fx_event(f, who, type, t, "{'status':'ok'}");
}

static void adv(struct fx *f, int64_t t) { engine_advance(f->e, t); }

/* A dotted path into nested objects ("due.first_response"); NULL when absent. */
static json_t *jget(json_t *o, const char *path)
{
    char part[64];
    while (o && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        o = json_object_get(o, part);
        path += n + (path[n] == '.');
    }
    return o;
}

static const char *js(json_t *o, const char *path) { return json_string_value(jget(o, path)); }

/* A time field as ms; FW_TIME_NONE when absent or null. */
static int64_t jt(json_t *o, const char *path) { return parse_time(js(o, path)); }

static double jnum(json_t *o, const char *path)
{
    json_t *v = jget(o, path);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Lines of `kind` and `event` (NULL: any) about case `id` (NULL: any). */
static int count(json_t *lines, const char *kind, const char *event, const char *id)
{
    int n = 0;
    size_t i;
    json_t *l;
    json_array_foreach (lines, i, l) {
        if (kind && (!js(l, "kind") || strcmp(js(l, "kind"), kind)))
            continue;
        if (event && (!js(l, "event") || strcmp(js(l, "event"), event)))
            continue;
        if (id && (!js(l, "case") || strcmp(js(l, "case"), id)))
            continue;
        n++;
    }
    return n;
}

/* The nth (0-based) such line, or NULL. */
static json_t *find(json_t *lines, const char *kind, const char *event, const char *metric, int nth)
{
    size_t i;
    json_t *l;
    json_array_foreach (lines, i, l) {
        if (kind && (!js(l, "kind") || strcmp(js(l, "kind"), kind)))
            continue;
        if (event && (!js(l, "event") || strcmp(js(l, "event"), event)))
            continue;
        if (metric && (!js(l, "metric") || strcmp(js(l, "metric"), metric)))
            continue;
        if (nth-- == 0)
            return l;
    }
    return NULL;
}

/* Signals of a line, joined with spaces (static storage). */
static const char *sigs(json_t *l)
{
    static char text[128];
    size_t i, len = 0;
    json_t *s;
    text[0] = 0;
    json_array_foreach (json_object_get(l, "signals"), i, s) {
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", i ? " " : "",
                                json_string_value(s) ? json_string_value(s) : "?");
        if (len >= sizeof text)
            break;
    }
    return text;
}

/* The open case id of a customer, copied (static storage, four slots). */
static const char *open_id(struct fx *f, const char *who)
{
    static char ids[4][24];
    static int k;
    const char *id = cases_open_id(f->cs, who);
    if (!id)
        return NULL;
    k = (k + 1) % 4;
    snprintf(ids[k], sizeof ids[k], "%s", id);
    return ids[k];
}

static struct cases_stats stats(struct fx *f)
{
    struct cases_stats s;
    cases_stats(f->cs, &s);
    return s;
}

/* The queue as cases_queue_json writes it, parsed (caller decrefs). */
static json_t *queue(struct fx *f, const char *user, int all, const char *filter,
                     const char *severity, int64_t now)
{
    struct queue_query q = {.user = user, .all = all, .filter = filter, .severity = severity};
    struct buf b;
    buf_init(&b, 0);
    cases_queue_json(f->cs, &q, now, &b);
    json_t *j = json_loads(b.data ? b.data : "", 0, NULL);
    buf_cleanup(&b);
    return j;
}

/* The live card of a case, parsed (caller decrefs); NULL when not open. */
static json_t *live(struct fx *f, const char *id, int64_t now)
{
    struct buf b;
    buf_init(&b, 0);
    json_t *j = NULL;
    if (id && cases_live_json(f->cs, id, now, &b) == 0)
        j = json_loads(b.data ? b.data : "", 0, NULL);
    buf_cleanup(&b);
    return j;
}

/* Ids of the queue's cards, joined with spaces, as customers (static storage). */
static const char *queue_customers(json_t *q)
{
    static char text[256];
    size_t i, len = 0;
    json_t *c;
    text[0] = 0;
    json_array_foreach (json_object_get(q, "cases"), i, c) {
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", i ? " " : "",
                                js(c, "customer") ? js(c, "customer") : "?");
        if (len >= sizeof text)
            break;
    }
    return text;
}

#define ASSERT_NEAR(a, b)                                                                          \
    do {                                                                                           \
        double x_ = (a), y_ = (b);                                                                 \
        if (!(fabs(x_ - y_) < 1e-6))                                                               \
            TEST__FAIL("%s == %s: %.9g != %.9g", #a, #b, x_, y_);                                  \
    } while (0)

/* ---- 1. opening and attaching ---- */

/* The first MEDIUM+ firing opens a case with the severity defaults; LOW alone opens none. */
static void medium_firing_opens_case(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "l", T0);
    ASSERT_EQ(json_array_size(take(&f)), 0);
    ASSERT(!cases_open_id(f.cs, "c1"));
    ASSERT_EQ(stats(&f).opened, 0);
    ASSERT_EQ(f.detections, 1); /* passed on to the next sink all the same */

    bad(&f, "c1", "a", T0 + M);
    json_t *l = take(&f);
    ASSERT_EQ(json_array_size(l), 1);
    json_t *o = find(l, "case", "opened", NULL, 0);
    ASSERT(o);
    ASSERT_STREQ(js(o, "customer"), "c1");
    ASSERT_STREQ(js(o, "case"), cases_open_id(f.cs, "c1"));
    ASSERT_STREQ(js(o, "severity"), "MEDIUM");
    ASSERT_STREQ(sigs(o), "SM");
    ASSERT_STREQ(js(o, "status"), "open");
    ASSERT(json_is_null(jget(o, "assignee")));
    ASSERT(json_is_null(jget(o, "policy")));
    ASSERT_STREQ(js(o, "calendar"), "24x7");
    ASSERT_EQ(jt(o, "at"), T0 + M);
    ASSERT_EQ(jt(o, "due.first_response"), T0 + M + 8 * H);
    ASSERT_EQ(jt(o, "due.customer_contact"), T0 + M + 24 * H);
    ASSERT_EQ(jt(o, "due.resolution"), T0 + M + 72 * H);
    ASSERT_EQ(stats(&f).opened, 1);
    ASSERT_EQ(stats(&f).open, 1);
    ASSERT_EQ(f.detections, 2);
    ASSERT_EQ(f.mismatch, 0);
    fx_cleanup(&f);
}

/* HIGH and CRITICAL cases take their own defaults: 2h/4h/24h and 30m/0/4h. */
static void high_and_critical_defaults(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "b", T0);
    bad(&f, "c2", "c", T0 + M);
    json_t *l = take(&f);
    ASSERT_EQ(count(l, "case", "opened", NULL), 2);
    json_t *h = find(l, "case", "opened", NULL, 0), *c = find(l, "case", "opened", NULL, 1);
    ASSERT_STREQ(js(h, "customer"), "c1");
    ASSERT_STREQ(js(h, "severity"), "HIGH");
    ASSERT_EQ(jt(h, "due.first_response"), T0 + 2 * H);
    ASSERT_EQ(jt(h, "due.customer_contact"), T0 + 4 * H);
    ASSERT_EQ(jt(h, "due.resolution"), T0 + 24 * H);
    ASSERT_STREQ(js(c, "customer"), "c2");
    ASSERT_STREQ(js(c, "severity"), "CRITICAL");
    ASSERT_EQ(jt(c, "due.first_response"), T0 + M + 30 * M);
    ASSERT_EQ(jt(c, "due.customer_contact"), T0 + 2 * M); /* "immediate": one minute (the merge window) */
    ASSERT_EQ(jt(c, "due.resolution"), T0 + M + 4 * H);
    ASSERT(strcmp(js(h, "case"), js(c, "case")) != 0);
    fx_cleanup(&f);
}

/* LOW attaches to an open case; so does a second detection; neither changes the severity. */
static void later_detections_attach(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "b", T0);
    const char *id = open_id(&f, "c1");
    ASSERT(id);
    take(&f);
    bad(&f, "c1", "l", T0 + 10 * M);
    json_t *l = take(&f);
    ASSERT_EQ(json_array_size(l), 1);
    json_t *u = find(l, "case", "updated", NULL, 0);
    ASSERT(u);
    ASSERT_STREQ(js(u, "case"), id);
    ASSERT_STREQ(js(u, "change"), "detection");
    ASSERT_STREQ(js(u, "signal"), "SL");
    ASSERT_STREQ(js(u, "severity"), "HIGH");
    ASSERT_STREQ(sigs(u), "SH SL");
    ASSERT_EQ(jt(u, "at"), T0 + 10 * M);

    bad(&f, "c1", "a", T0 + 20 * M);
    l = take(&f);
    ASSERT_EQ(json_array_size(l), 1);
    u = find(l, "case", "updated", NULL, 0);
    ASSERT(u);
    ASSERT_STREQ(js(u, "case"), id);
    ASSERT_STREQ(js(u, "change"), "detection");
    ASSERT_STREQ(js(u, "signal"), "SM");
    ASSERT_STREQ(js(u, "severity"), "HIGH");
    ASSERT_STREQ(sigs(u), "SH SL SM");
    ASSERT_EQ(stats(&f).opened, 1);
    ASSERT_STREQ(cases_open_id(f.cs, "c1"), id);
    fx_cleanup(&f);
}

/* The same input gives the same case ids and the same lines, byte for byte. */
static void run_scenario(struct fx *f, struct buf *all)
{
    bad(f, "c1", "a", T0 + 5 * M);
    bad(f, "c2", "b", T0 + 7 * M);
    bad(f, "c1", "b", T0 + 30 * M);
    fx_event(f, "c2", "case.assigned", T0 + H, "{'agent':'ann'}");
    good(f, "c1", "a", T0 + 2 * H);
    good(f, "c1", "b", T0 + 3 * H);
    bad(f, "c1", "c", T0 + 4 * H); /* a second case for c1 */
    adv(f, T0 + 10 * H);
    buf_append(all, f->out.data ? f->out.data : "", f->out.len);
}

static void case_ids_are_stable(void)
{
    struct fx f, g;
    struct buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    ASSERT_EQ(fx_init(&f, T0), 0);
    ASSERT_EQ(fx_init(&g, T0), 0);
    run_scenario(&f, &a);
    run_scenario(&g, &b);
    json_t *l = take(&f);
    ASSERT_EQ(count(l, "case", "opened", NULL), 3);
    ASSERT(a.len > 0);
    ASSERT_EQ(a.len, b.len);
    ASSERT(!memcmp(a.data, b.data, a.len));
    ASSERT(open_id(&f, "c1"));
    ASSERT_STREQ(cases_open_id(f.cs, "c1"), cases_open_id(g.cs, "c1"));
    ASSERT_STREQ(cases_open_id(f.cs, "c2"), cases_open_id(g.cs, "c2"));
    /* Three different cases: c1's first, c2's, c1's second. */
    const char *i0 = js(find(l, "case", "opened", NULL, 0), "case");
    const char *i1 = js(find(l, "case", "opened", NULL, 1), "case");
    const char *i2 = js(find(l, "case", "opened", NULL, 2), "case");
    ASSERT(i0 && i1 && i2);
    ASSERT(strcmp(i0, i1) && strcmp(i0, i2) && strcmp(i1, i2));
    ASSERT_STREQ(i2, cases_open_id(f.cs, "c1"));
    buf_cleanup(&a);
    buf_cleanup(&b);
    fx_cleanup(&f);
    fx_cleanup(&g);
}

/* ---- snapshots ---- */

/* The engine's and the cases' sections, as pipeline.c writes them. */
static void snap_of(struct fx *f, struct buf *out)
{
    buf_reset(out);
    engine_snapshot(f->e, out);
    cases_snapshot(f->cs, out);
    engine_snapshot_end(f->e);
}

/* Load a snapshot into a fresh fixture: 0, or the first failure's code. */
static int snap_load(struct fx *g, const struct buf *a, size_t len)
{
    struct wire_rd rd;
    wire_rd_init(&rd, a->data, len);
    char why[256];
    int rc = engine_restore(g->e, &rd, why, sizeof why);
    if (!rc)
        rc = cases_restore(g->cs, &rd, why, sizeof why);
    if (!rc && rd.off != len)
        rc = FW_EPARSE;
    engine_restore_end(g->e, rc == 0);
    return rc;
}

static void first_half(struct fx *f)
{
    bad(f, "c1", "a", T0 + 5 * M);
    bad(f, "c2", "b", T0 + 7 * M);
    bad(f, "c1", "b", T0 + 30 * M);
    fx_event(f, "c2", "case.assigned", T0 + H, "{'agent':'ann'}");
    bad(f, "c3", "l", T0 + H + M);
    good(f, "c3", "l", T0 + H + 2 * M); /* c3's case resolves itself: a resolved id */
    good(f, "c1", "a", T0 + 2 * H);
}

static void second_half(struct fx *f)
{
    good(f, "c1", "b", T0 + 3 * H);
    bad(f, "c1", "c", T0 + 4 * H);
    adv(f, T0 + 30 * H); /* warnings and breaches of what was restored */
}

/* serialise -> load -> serialise gives the same bytes, and what follows happens the same way. */
static void snapshot_round_trip(void)
{
    struct fx f, g;
    struct buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    ASSERT_EQ(fx_init(&f, T0), 0);
    ASSERT_EQ(fx_init(&g, T0), 0);
    first_half(&f);
    ASSERT_EQ(stats(&f).open, 2);
    snap_of(&f, &a);
    ASSERT_EQ(snap_load(&g, &a, a.len), 0);
    snap_of(&g, &b);
    ASSERT_EQ(a.len, b.len);
    ASSERT(a.len == b.len && !memcmp(a.data, b.data, a.len));
    ASSERT_EQ(stats(&g).open, 2);
    ASSERT_STREQ(cases_open_id(g.cs, "c1"), cases_open_id(f.cs, "c1"));
    buf_reset(&f.out);
    buf_reset(&g.out);
    g.seq = f.seq;
    int nf = f.notices, ng = g.notices;
    second_half(&f);
    second_half(&g);
    ASSERT(f.notices > nf);
    ASSERT_EQ(f.notices - nf, g.notices - ng); /* the SLA warnings and breaches, once each */
    ASSERT(f.out.len > 0);
    ASSERT_EQ(f.out.len, g.out.len);
    ASSERT(f.out.len == g.out.len && !memcmp(f.out.data, g.out.data, f.out.len));
    snap_of(&f, &a);
    snap_of(&g, &b);
    ASSERT(a.len == b.len && !memcmp(a.data, b.data, a.len));
    buf_cleanup(&a);
    buf_cleanup(&b);
    fx_cleanup(&f);
    fx_cleanup(&g);
}

/* Every truncation is refused, without a crash or a leak (ASan); so is a busy module. */
static void snapshot_truncated_is_refused(void)
{
    struct fx f;
    struct buf a;
    buf_init(&a, 0);
    ASSERT_EQ(fx_init(&f, T0), 0);
    first_half(&f);
    snap_of(&f, &a);
    size_t tried = 0, refused = 0;
    for (size_t cut = 0; cut < a.len; cut += 1 + cut / 64) {
        struct fx g;
        ASSERT_EQ(fx_init(&g, T0), 0);
        refused += snap_load(&g, &a, cut) != 0;
        tried++;
        fx_cleanup(&g);
    }
    ASSERT_EQ(refused, tried);
    struct wire_rd rd;
    wire_rd_init(&rd, a.data, a.len);
    char why[256];
    ASSERT_EQ(cases_restore(f.cs, &rd, why, sizeof why), FW_ESTATE); /* not fresh */
    buf_cleanup(&a);
    fx_cleanup(&f);
}

/* ---- 2. resolution ---- */

/* Unassigned: the case resolves itself when its last detection resolves. */
static void unassigned_case_auto_resolves(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    bad(&f, "c1", "l", T0 + M);
    const char *id = open_id(&f, "c1");
    ASSERT(id);
    take(&f);
    good(&f, "c1", "a", T0 + 2 * H);
    json_t *l = take(&f);
    ASSERT_EQ(count(l, "case", "resolved", NULL), 0);
    json_t *u = find(l, "case", "updated", NULL, 0);
    ASSERT(u);
    ASSERT_STREQ(js(u, "change"), "detection_resolved");
    ASSERT_STREQ(js(u, "signal"), "SM");
    ASSERT_STREQ(cases_open_id(f.cs, "c1"), id);

    good(&f, "c1", "l", T0 + 3 * H);
    l = take(&f);
    json_t *r = find(l, "case", "resolved", NULL, 0);
    ASSERT(r);
    ASSERT_STREQ(js(r, "case"), id);
    ASSERT_STREQ(js(r, "outcome"), "auto_resolved");
    ASSERT_STREQ(js(r, "status"), "resolved");
    ASSERT(json_is_null(jget(r, "agent")));
    ASSERT_EQ(jnum(r, "open_ms"), 3 * H);
    ASSERT_EQ(jt(r, "at"), T0 + 3 * H);
    json_t *met = find(l, "sla", "met", "resolution", 0);
    ASSERT(met);
    ASSERT(json_is_true(jget(met, "within_target")));
    ASSERT(!cases_open_id(f.cs, "c1"));
    struct cases_stats s = stats(&f);
    ASSERT_EQ(s.resolved, 1);
    ASSERT_EQ(s.auto_resolved, 1);
    ASSERT_EQ(s.open, 0);
    /* No clock of the resolved case fires later. */
    adv(&f, T0 + 10 * D);
    ASSERT_EQ(json_array_size(take(&f)), 0);
    fx_cleanup(&f);
}

/* Assigned: the case stays open without detections until someone resolves it. */
static void assigned_case_waits_for_resolve(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    const char *id = open_id(&f, "c1");
    ASSERT(id);
    take(&f);
    fx_event(&f, "c1", "case.assigned", T0 + 10 * M, "{'agent':'ann'}");
    json_t *l = take(&f);
    json_t *a = find(l, "case", "assigned", NULL, 0);
    ASSERT(a);
    ASSERT_STREQ(js(a, "agent"), "ann");
    ASSERT_STREQ(js(a, "assignee"), "ann");
    ASSERT_EQ(jt(a, "at"), T0 + 10 * M);

    good(&f, "c1", "a", T0 + H);
    l = take(&f);
    ASSERT_EQ(count(l, "case", "resolved", NULL), 0);
    ASSERT_STREQ(js(find(l, "case", "updated", NULL, 0), "change"), "detection_resolved");
    ASSERT_STREQ(cases_open_id(f.cs, "c1"), id);

    fx_event(&f, "c1", "case.resolved", T0 + 2 * H, "{'agent':'ann','outcome':'saved','csat':5}");
    l = take(&f);
    json_t *r = find(l, "case", "resolved", NULL, 0);
    ASSERT(r);
    ASSERT_STREQ(js(r, "case"), id);
    ASSERT_STREQ(js(r, "outcome"), "saved");
    ASSERT_STREQ(js(r, "agent"), "ann");
    ASSERT_EQ(jnum(r, "csat"), 5);
    ASSERT_EQ(jt(r, "at"), T0 + 2 * H);
    ASSERT(!cases_open_id(f.cs, "c1"));
    ASSERT_EQ(stats(&f).resolved, 1);
    ASSERT_EQ(stats(&f).auto_resolved, 0);
    fx_cleanup(&f);
}

/* ---- 3. severity raises ---- */

/* MEDIUM at t0, HIGH at t0+1h: the stricter targets count from the open. */
static void raise_measures_from_open(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    ASSERT_EQ(jt(find(take(&f), "case", "opened", NULL, 0), "due.first_response"), T0 + 8 * H);
    bad(&f, "c1", "b", T0 + H);
    json_t *l = take(&f);
    json_t *u = find(l, "case", "updated", NULL, 0);
    ASSERT(u);
    ASSERT_STREQ(js(u, "change"), "severity");
    ASSERT_STREQ(js(u, "severity"), "HIGH");
    ASSERT_STREQ(js(u, "signal"), "SH");
    ASSERT_EQ(jt(u, "due.first_response"), T0 + 2 * H);
    ASSERT_EQ(jt(u, "due.customer_contact"), T0 + 4 * H);
    ASSERT_EQ(jt(u, "due.resolution"), T0 + 24 * H);
    /* The timers moved with the due: warning at 1h30, breach at 2h. */
    adv(&f, T0 + 2 * H);
    l = take(&f);
    json_t *w = find(l, "sla", "warning", "first_response", 0);
    json_t *b = find(l, "sla", "breached", "first_response", 0);
    ASSERT(w && b);
    ASSERT_EQ(jt(w, "at"), T0 + 90 * M);
    ASSERT_EQ(jt(b, "at"), T0 + 2 * H);
    ASSERT_EQ(jt(b, "due"), T0 + 2 * H);
    ASSERT_STREQ(js(b, "severity"), "HIGH");
    fx_cleanup(&f);
}

/* A raise whose stricter due has passed: due at the raise, breached at that instant. */
static void raise_past_due_breaches_at_raise(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    take(&f);
    bad(&f, "c1", "b", T0 + 3 * H);
    json_t *l = take(&f);
    json_t *u = find(l, "case", "updated", NULL, 0);
    ASSERT(u);
    ASSERT_STREQ(js(u, "change"), "severity");
    ASSERT_EQ(jt(u, "due.first_response"), T0 + 3 * H);
    ASSERT_EQ(jt(u, "due.customer_contact"), T0 + 4 * H);
    ASSERT_EQ(jt(u, "due.resolution"), T0 + 24 * H);
    adv(&f, T0 + 3 * H);
    l = take(&f);
    json_t *b = find(l, "sla", "breached", "first_response", 0);
    ASSERT(b);
    ASSERT_EQ(jt(b, "at"), T0 + 3 * H);
    ASSERT_EQ(jt(b, "due"), T0 + 3 * H);
    ASSERT_EQ(count(l, "sla", "warning", NULL), 0); /* no time left to warn */
    ASSERT_EQ(stats(&f).breaches, 1);
    fx_cleanup(&f);
}

/* ---- 4. warnings, breaches, met ---- */

static void warning_and_breach_at_exact_instants(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    const char *id = open_id(&f, "c1");
    take(&f);
    adv(&f, T0 + 8 * H - 30 * M - 1);
    ASSERT_EQ(json_array_size(take(&f)), 0);
    ASSERT_EQ(f.notices, 0);
    adv(&f, T0 + 8 * H - 30 * M);
    json_t *l = take(&f);
    ASSERT_EQ(json_array_size(l), 1);
    json_t *w = find(l, "sla", "warning", "first_response", 0);
    ASSERT(w);
    ASSERT_STREQ(js(w, "case"), id);
    ASSERT_EQ(jt(w, "at"), T0 + 8 * H - 30 * M);
    ASSERT_EQ(jt(w, "due"), T0 + 8 * H);
    ASSERT_EQ(f.notices, 1);
    adv(&f, T0 + 8 * H - 1);
    ASSERT_EQ(json_array_size(take(&f)), 0);
    adv(&f, T0 + 8 * H);
    l = take(&f);
    ASSERT_EQ(json_array_size(l), 1);
    json_t *b = find(l, "sla", "breached", "first_response", 0);
    ASSERT(b);
    ASSERT_EQ(jt(b, "at"), T0 + 8 * H);
    ASSERT_EQ(f.notices, 2);
    struct cases_stats s = stats(&f);
    ASSERT_EQ(s.warnings, 1);
    ASSERT_EQ(s.breaches, 1);
    /* A response after the breach is met, but not within target. */
    fx_event(&f, "c1", "case.responded", T0 + 9 * H, "{'agent':'ann','channel':'internal'}");
    l = take(&f);
    json_t *met = find(l, "sla", "met", "first_response", 0);
    ASSERT(met);
    ASSERT(json_is_false(jget(met, "within_target")));
    ASSERT_EQ(jt(met, "at"), T0 + 9 * H);
    /* An internal note is not customer contact: that clock goes on. */
    ASSERT(!find(l, "sla", "met", "customer_contact", 0));
    ASSERT_STREQ(js(find(l, "case", "updated", NULL, 0), "change"), "responded");
    fx_cleanup(&f);
}

/* A response before due is met within target; met clocks neither warn nor breach. */
static void response_before_due_is_met(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    take(&f);
    fx_event(&f, "c1", "case.responded", T0 + H, "{'agent':'ann','channel':'email'}");
    json_t *l = take(&f);
    json_t *m1 = find(l, "sla", "met", "first_response", 0);
    json_t *m2 = find(l, "sla", "met", "customer_contact", 0);
    ASSERT(m1 && m2);
    ASSERT(json_is_true(jget(m1, "within_target")));
    ASSERT(json_is_true(jget(m2, "within_target")));
    ASSERT_EQ(jt(m1, "at"), T0 + H);
    ASSERT_EQ(jt(m1, "due"), T0 + 8 * H);
    ASSERT(!find(l, "sla", "met", "resolution", 0));
    adv(&f, T0 + 30 * H);
    l = take(&f);
    ASSERT_EQ(count(l, "sla", NULL, NULL), 0);
    ASSERT_EQ(f.notices, 0);
    fx_cleanup(&f);
}

/* ---- 5. pause and resume ---- */

static void pending_pauses_resolution_only(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    const char *id = open_id(&f, "c1");
    take(&f);
    fx_event(&f, "c1", "case.status_changed", T0 + 2 * H, "{'status':'pending','agent':'ann'}");
    json_t *l = take(&f);
    json_t *u = find(l, "case", "updated", NULL, 0);
    ASSERT(u);
    ASSERT_STREQ(js(u, "change"), "status");
    ASSERT_STREQ(js(u, "status"), "pending");
    ASSERT_EQ(count(l, "sla", "paused", NULL), 1);
    json_t *p = find(l, "sla", "paused", "resolution", 0);
    ASSERT(p);
    ASSERT_EQ(jt(p, "due"), T0 + 72 * H);
    ASSERT_EQ(jt(p, "at"), T0 + 2 * H);
    json_t *card = live(&f, id, T0 + 2 * H);
    ASSERT(card);
    ASSERT_STREQ(js(card, "status"), "pending");
    ASSERT_STREQ(js(card, "sla.resolution.state"), "paused");
    ASSERT_EQ(jnum(card, "sla.resolution.remaining_ms"), 70 * H);
    ASSERT_STREQ(js(card, "sla.first_response.state"), "running");
    ASSERT_EQ(jt(card, "sla.first_response.due"), T0 + 8 * H);
    json_decref(card);
    /* first_response runs on while pending: it breaches at 8h. */
    adv(&f, T0 + 8 * H);
    l = take(&f);
    ASSERT(find(l, "sla", "breached", "first_response", 0));
    ASSERT_EQ(jt(find(l, "sla", "breached", "first_response", 0), "at"), T0 + 8 * H);
    /* Back to open at 10h: the resolution due moves by the 8h paused. */
    fx_event(&f, "c1", "case.status_changed", T0 + 10 * H, "{'status':'open'}");
    l = take(&f);
    json_t *r = find(l, "sla", "resumed", "resolution", 0);
    ASSERT(r);
    ASSERT_EQ(jt(r, "due"), T0 + 80 * H);
    ASSERT_EQ(jt(r, "at"), T0 + 10 * H);
    ASSERT_EQ(count(l, "sla", "resumed", NULL), 1);
    ASSERT_STREQ(js(find(l, "case", "updated", NULL, 0), "status"), "open");
    /* The resumed clock warns and breaches at its new due. */
    adv(&f, T0 + 80 * H - 30 * M - 1);
    ASSERT(!find(take(&f), "sla", "warning", "resolution", 0));
    adv(&f, T0 + 80 * H);
    l = take(&f);
    ASSERT_EQ(jt(find(l, "sla", "warning", "resolution", 0), "at"), T0 + 80 * H - 30 * M);
    ASSERT_EQ(jt(find(l, "sla", "breached", "resolution", 0), "at"), T0 + 80 * H);
    fx_cleanup(&f);
}

/* An inbound contact-class event ends "waiting on the customer"; other events do not. */
static void inbound_contact_resumes(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    fx_event(&f, "c1", "case.status_changed", T0 + H, "{'status':'pending'}");
    take(&f);
    fx_event(&f, "c1", "order.created", T0 + 2 * H, "{}");
    ASSERT_EQ(json_array_size(take(&f)), 0);
    fx_event(&f, "c1", "ticket.created", T0 + 4 * H, "{'ticket_id':'t1'}");
    json_t *l = take(&f);
    json_t *u = find(l, "case", "updated", NULL, 0);
    ASSERT(u);
    ASSERT_STREQ(js(u, "change"), "status");
    ASSERT_STREQ(js(u, "status"), "open");
    ASSERT_STREQ(js(u, "by_event"), "ticket.created");
    json_t *r = find(l, "sla", "resumed", "resolution", 0);
    ASSERT(r);
    ASSERT_EQ(jt(r, "due"), T0 + 75 * H);
    /* Once open, another contact changes nothing. */
    fx_event(&f, "c1", "ticket.created", T0 + 5 * H, "{'ticket_id':'t2'}");
    ASSERT_EQ(json_array_size(take(&f)), 0);
    fx_cleanup(&f);
}

/* A raise while paused takes effect at resume, against the time already used. */
static void raise_while_paused_applies_at_resume(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    fx_event(&f, "c1", "case.status_changed", T0 + 2 * H, "{'status':'pending'}");
    take(&f);
    bad(&f, "c1", "b", T0 + 3 * H);
    json_t *u = find(take(&f), "case", "updated", NULL, 0);
    ASSERT(u);
    ASSERT_STREQ(js(u, "change"), "severity");
    ASSERT(json_is_null(jget(u, "due.resolution")));    /* paused: no due */
    ASSERT_EQ(jt(u, "due.first_response"), T0 + 3 * H); /* 2h from the open has passed */
    fx_event(&f, "c1", "case.status_changed", T0 + 5 * H, "{'status':'open'}");
    json_t *r = find(take(&f), "sla", "resumed", "resolution", 0);
    ASSERT(r);
    ASSERT_EQ(jt(r, "due"), T0 + 5 * H + 22 * H); /* 24h less the 2h used before the pause */
    fx_cleanup(&f);
}

/* A raise after a resume counts the time used before the pause too. */
static void raise_after_resume_counts_consumed(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    fx_event(&f, "c1", "case.status_changed", T0 + H, "{'status':'pending'}");
    fx_event(&f, "c1", "case.status_changed", T0 + 11 * H, "{'status':'open'}");
    ASSERT_EQ(jt(find(take(&f), "sla", "resumed", "resolution", 0), "due"), T0 + 82 * H);
    bad(&f, "c1", "b", T0 + 12 * H);
    json_t *u = find(take(&f), "case", "updated", NULL, 0);
    ASSERT(u);
    ASSERT_EQ(jt(u, "due.resolution"), T0 + 11 * H + 23 * H);
    fx_cleanup(&f);
}

/* A configured warn_before moves the warning; 0 means no warning at all. */
static void warn_before_from_config(void)
{
    struct sla_config sla;
    struct fx f;
    sla_config_init(&sla);
    sla.warn_before = 10 * M;
    ASSERT_EQ(fx_init_sla(&f, PACK, T0, &sla), 0);
    bad(&f, "c1", "a", T0);
    take(&f);
    adv(&f, T0 + 8 * H - 10 * M - 1);
    ASSERT_EQ(json_array_size(take(&f)), 0);
    adv(&f, T0 + 8 * H - 10 * M);
    ASSERT_EQ(jt(find(take(&f), "sla", "warning", "first_response", 0), "at"), T0 + 8 * H - 10 * M);
    fx_cleanup(&f);
    sla.warn_before = 0;
    ASSERT_EQ(fx_init_sla(&f, PACK, T0, &sla), 0);
    bad(&f, "c1", "a", T0);
    take(&f);
    adv(&f, T0 + 8 * H);
    json_t *l = take(&f);
    ASSERT_EQ(count(l, "sla", "warning", NULL), 0);
    ASSERT_EQ(jt(find(l, "sla", "breached", "first_response", 0), "at"), T0 + 8 * H);
    fx_cleanup(&f);
    sla_config_cleanup(&sla);
}

/* ---- 6. business calendar ---- */

/* America/New_York, 09:00-17:00 Monday to Friday, as one policy for every case. */
static int office_sla(struct sla_config *s)
{
    char err[256];
    sla_config_init(s);
    struct tz *z = tz_load("America/New_York", err, sizeof err);
    if (!z) {
        fprintf(stderr, "    %s\n", err);
        return -1;
    }
    struct calendar *c = calendar_new("office", z);
    for (int d = CAL_MON; d <= CAL_FRI; d++)
        if (calendar_add_hours(c, d, 9 * 60, 17 * 60)) {
            calendar_free(c);
            return -1;
        }
    s->calendars = xcalloc(1, sizeof *s->calendars);
    s->calendars[0] = c;
    s->ncalendars = 1;
    s->policies = xcalloc(1, sizeof *s->policies);
    s->npolicies = 1;
    s->policies[0].calendar = c;
    for (int m = 0; m < SLA_NTARGETS; m++)
        s->policies[0].target[m] = -1;
    return 0;
}

static void calendar_due_skips_weekend(void)
{
    struct sla_config sla;
    struct fx f;
    ASSERT_EQ(office_sla(&sla), 0);
    int64_t fri = parse_time("2026-01-10T01:00:00Z"); /* Friday 2026-01-09 20:00 EST */
    if (fx_init_sla(&f, PACK, fri, &sla)) {
        sla_config_cleanup(&sla);
        TEST__FAIL("fixture");
    }
    bad(&f, "c1", "a", fri);
    bad(&f, "c2", "b", fri);
    json_t *l = take(&f);
    json_t *m = find(l, "case", "opened", NULL, 0), *h = find(l, "case", "opened", NULL, 1);
    ASSERT(m && h);
    ASSERT_EQ(jnum(m, "policy"), 0);
    ASSERT_STREQ(js(m, "calendar"), "office");
    /* MEDIUM 8h of office time: all of Monday, due Monday 17:00 EST. */
    ASSERT_EQ(jt(m, "due.first_response"), parse_time("2026-01-12T22:00:00Z"));
    /* 24h: Monday, Tuesday, Wednesday. */
    ASSERT_EQ(jt(m, "due.customer_contact"), parse_time("2026-01-14T22:00:00Z"));
    /* 72h: nine working days, Thursday of the next week. */
    ASSERT_EQ(jt(m, "due.resolution"), parse_time("2026-01-22T22:00:00Z"));
    /* HIGH 2h: Monday 11:00 EST. */
    ASSERT_EQ(jt(h, "due.first_response"), parse_time("2026-01-12T16:00:00Z"));
    /* Nothing fires over the weekend; the warning comes Monday 16:30 EST. */
    adv(&f, parse_time("2026-01-12T21:29:59.999Z"));
    ASSERT(!find(take(&f), "sla", "warning", "first_response", 1));
    adv(&f, parse_time("2026-01-12T21:30:00Z"));
    l = take(&f);
    json_t *w = find(l, "sla", "warning", "first_response", 0);
    ASSERT(w);
    ASSERT_STREQ(js(w, "customer"), "c1");
    fx_cleanup(&f);
    sla_config_cleanup(&sla);
}

/* A pause under the calendar moves the due by the working time it covered. */
static void calendar_pause_counts_working_time(void)
{
    struct sla_config sla;
    struct fx f;
    ASSERT_EQ(office_sla(&sla), 0);
    int64_t fri = parse_time("2026-01-10T01:00:00Z"); /* Friday 2026-01-09 20:00 EST */
    if (fx_init_sla(&f, PACK, fri, &sla)) {
        sla_config_cleanup(&sla);
        TEST__FAIL("fixture");
    }
    bad(&f, "c1", "a", fri);
    /* Pending Monday 10:00 EST (1h used), open again Tuesday 10:00 EST (8 working hours later). */
    fx_event(&f, "c1", "case.status_changed", parse_time("2026-01-12T15:00:00Z"),
             "{'status':'pending'}");
    fx_event(&f, "c1", "case.status_changed", parse_time("2026-01-13T15:00:00Z"),
             "{'status':'open'}");
    json_t *l = take(&f);
    json_t *p = find(l, "sla", "paused", "resolution", 0),
           *r = find(l, "sla", "resumed", "resolution", 0);
    ASSERT(p && r);
    ASSERT_EQ(jt(p, "due"), parse_time("2026-01-22T22:00:00Z"));
    ASSERT_EQ(jt(r, "due"), parse_time("2026-01-23T22:00:00Z")); /* a working day later */
    fx_cleanup(&f);
    sla_config_cleanup(&sla);
}

/* ---- 7. priority and the queue ---- */

static void values(struct fx *f, int64_t t)
{
    fx_event(f, "c1", "customer.updated", t, "{'value':100}");
    fx_event(f, "c2", "customer.updated", t, "{'value':200}");
    fx_event(f, "c3", "customer.updated", t, "{'value':300}");
}

/* Each component of a MEDIUM case's priority, with its basis. */
static void priority_components(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    values(&f, T0);
    bad(&f, "c2", "a", T0);
    const char *id = open_id(&f, "c2");
    json_t *c = live(&f, id, T0);
    ASSERT(c);
    ASSERT_NEAR(jnum(c, "priority.components.value.score"), 0.5);
    ASSERT_NEAR(jnum(c, "priority.components.value.basis.value"), 200);
    ASSERT_NEAR(jnum(c, "priority.components.value.basis.customers"), 3);
    ASSERT_NEAR(jnum(c, "priority.components.value.weight"), 0.30);
    ASSERT_NEAR(jnum(c, "priority.components.severity.score"), 0.5);
    ASSERT_STREQ(js(c, "priority.components.severity.basis.severity"), "MEDIUM");
    ASSERT_NEAR(jnum(c, "priority.components.churn_risk.basis.active_detections"), 1);
    ASSERT_NEAR(jnum(c, "priority.components.churn_risk.basis.contacts_7d"), 0);
    ASSERT_NEAR(jnum(c, "priority.components.churn_risk.score"), 1.0 / 6.0);
    ASSERT_NEAR(jnum(c, "priority.components.timeliness.score"), 0);
    ASSERT_STREQ(js(c, "priority.components.timeliness.basis.metric"), "first_response");
    /* 100 * (.3*.5 + .25*.5 + .25/6 + 0) = 31.67 */
    ASSERT_NEAR(jnum(c, "priority.score"), 31.7);
    ASSERT_NEAR(jnum(c, "value"), 200);
    json_decref(c);
    /* Half the first_response clock used at 4h. */
    adv(&f, T0 + 4 * H);
    c = live(&f, id, T0 + 4 * H);
    ASSERT(c);
    ASSERT_NEAR(jnum(c, "priority.components.timeliness.score"), 0.5);
    ASSERT_NEAR(jnum(c, "priority.score"), 41.7);
    json_decref(c);
    /* The lowest and highest values: 1/6 and 5/6 (mid-rank). */
    bad(&f, "c1", "a", T0 + 4 * H);
    bad(&f, "c3", "a", T0 + 4 * H);
    c = live(&f, open_id(&f, "c1"), T0 + 4 * H);
    ASSERT_NEAR(jnum(c, "priority.components.value.score"), 1.0 / 6.0);
    json_decref(c);
    c = live(&f, open_id(&f, "c3"), T0 + 4 * H);
    ASSERT_NEAR(jnum(c, "priority.components.value.score"), 5.0 / 6.0);
    json_decref(c);
    /* Severity scores: HIGH .75, CRITICAL 1 (a second active detection counts for churn). */
    bad(&f, "c3", "c", T0 + 4 * H);
    c = live(&f, open_id(&f, "c3"), T0 + 4 * H);
    ASSERT_NEAR(jnum(c, "priority.components.severity.score"), 1.0);
    ASSERT_NEAR(jnum(c, "priority.components.churn_risk.basis.active_detections"), 2);
    json_decref(c);
    ASSERT(!live(&f, "c_0000000000000000", T0 + 4 * H));
    fx_cleanup(&f);
}

/* Contacts in the last 7 days feed the churn basis, whatever the rules count. */
static void priority_churn_counts_contacts(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    fx_event(&f, "c1", "ticket.created", T0, "{'ticket_id':'t1'}");
    fx_event(&f, "c1", "ticket.created", T0 + H, "{'ticket_id':'t2'}");
    bad(&f, "c1", "a", T0 + 2 * H);
    json_t *c = live(&f, open_id(&f, "c1"), T0 + 2 * H);
    /* Read, then clean up, then assert: this one fails today and should not also leak. */
    double contacts = jnum(c, "priority.components.churn_risk.basis.contacts_7d");
    double churn = jnum(c, "priority.components.churn_risk.score");
    json_decref(c);
    fx_cleanup(&f);
    ASSERT_NEAR(contacts, 2);
    ASSERT_NEAR(churn, (2.0 / 3.0 + 1.0 / 3.0) / 2.0);
}

/* The same, with a rule that keeps 7 days of contacts: the basis is right then. */
static void priority_churn_with_counting_rule(void)
{
    struct fx f;
    ASSERT_EQ(fx_init_sla(&f,
                          PACK "  - {id: SX, name: Many contacts, severity: LOW, condition: "
                               "'count(\"contact\", 7d) >= 100'}\n",
                          T0, NULL),
              0);
    fx_event(&f, "c1", "ticket.created", T0, "{'ticket_id':'t1'}");
    fx_event(&f, "c1", "ticket.created", T0 + H, "{'ticket_id':'t2'}");
    bad(&f, "c1", "a", T0 + 2 * H);
    json_t *c = live(&f, open_id(&f, "c1"), T0 + 2 * H);
    ASSERT(c);
    ASSERT_NEAR(jnum(c, "priority.components.churn_risk.basis.contacts_7d"), 2);
    ASSERT_NEAR(jnum(c, "priority.components.churn_risk.score"), (2.0 / 3.0 + 1.0 / 3.0) / 2.0);
    json_decref(c);
    fx_cleanup(&f);
}

/* Queue order is priority (not severity alone); counts, visibility and filters. */
static void queue_order_counts_filters(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    values(&f, T0);
    bad(&f, "c1", "b", T0); /* HIGH, lowest value: 27.9 */
    bad(&f, "c2", "a", T0); /* MEDIUM, middle value: 31.7 */
    bad(&f, "c3", "a", T0); /* MEDIUM, highest value: 41.7 */
    json_t *q = queue(&f, "ann", 0, NULL, NULL, T0);
    ASSERT(q);
    ASSERT_STREQ(queue_customers(q), "c3 c2 c1");
    ASSERT_NEAR(jnum(json_array_get(json_object_get(q, "cases"), 0), "priority.score"), 41.7);
    ASSERT_NEAR(jnum(json_array_get(json_object_get(q, "cases"), 2), "priority.score"), 27.9);
    ASSERT_EQ(jnum(q, "counts.total"), 3);
    ASSERT_EQ(jnum(q, "counts.severity.HIGH"), 1);
    ASSERT_EQ(jnum(q, "counts.severity.MEDIUM"), 2);
    ASSERT_EQ(jnum(q, "counts.severity.CRITICAL"), 0);
    ASSERT_EQ(jnum(q, "counts.severity.LOW"), 0);
    ASSERT_EQ(jnum(q, "counts.state.unassigned"), 3);
    ASSERT_EQ(jnum(q, "counts.state.mine"), 0);
    ASSERT_EQ(jnum(q, "counts.state.breaching_soon"), 0);
    ASSERT_EQ(jnum(q, "counts.state.breached"), 0);
    json_decref(q);

    fx_event(&f, "c1", "case.assigned", T0 + 10 * M, "{'agent':'ann'}");
    q = queue(&f, "ann", 0, NULL, NULL, T0 + 10 * M);
    ASSERT_EQ(jnum(q, "counts.state.unassigned"), 2);
    ASSERT_EQ(jnum(q, "counts.state.mine"), 1);
    json_decref(q);
    q = queue(&f, "ann", 0, "mine", NULL, T0 + 10 * M);
    ASSERT_STREQ(queue_customers(q), "c1");
    json_decref(q);
    q = queue(&f, "ann", 0, "unassigned", NULL, T0 + 10 * M);
    ASSERT_STREQ(queue_customers(q), "c3 c2");
    json_decref(q);
    q = queue(&f, "ann", 0, NULL, "HIGH", T0 + 10 * M);
    ASSERT_STREQ(queue_customers(q), "c1");
    json_decref(q);
    /* bob sees the unassigned cases only, unless he may see all. */
    q = queue(&f, "bob", 0, NULL, NULL, T0 + 10 * M);
    ASSERT_STREQ(queue_customers(q), "c3 c2");
    ASSERT_EQ(jnum(q, "counts.total"), 2);
    json_decref(q);
    q = queue(&f, "bob", 1, NULL, NULL, T0 + 10 * M);
    ASSERT_EQ(jnum(q, "counts.total"), 3);
    json_decref(q);

    /* c1's first_response (2h) is within warn_before at 1h30, breached at 2h. */
    adv(&f, T0 + 90 * M);
    q = queue(&f, "ann", 0, "breaching_soon", NULL, T0 + 90 * M);
    ASSERT_STREQ(queue_customers(q), "c1");
    ASSERT_EQ(jnum(q, "counts.state.breaching_soon"), 1);
    ASSERT_EQ(jnum(q, "counts.state.breached"), 0);
    json_decref(q);
    adv(&f, T0 + 2 * H);
    q = queue(&f, "ann", 0, "breached", NULL, T0 + 2 * H);
    ASSERT_STREQ(queue_customers(q), "c1");
    ASSERT_EQ(jnum(q, "counts.state.breached"), 1);
    ASSERT_EQ(jnum(q, "counts.state.breaching_soon"), 0);
    json_t *card = json_array_get(json_object_get(q, "cases"), 0);
    ASSERT_NEAR(jnum(card, "priority.components.timeliness.score"), 1);
    ASSERT(json_is_true(jget(card, "tightest.breached")));
    json_decref(q);
    q = queue(&f, "ann", 0, "breaching_soon", NULL, T0 + 2 * H);
    ASSERT_STREQ(queue_customers(q), "");
    json_decref(q);
    fx_cleanup(&f);
}

/* The share of the clock used survives a pause: 36h of 72h is half, before and after. */
static void timeliness_survives_pause(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    const char *id = open_id(&f, "c1");
    /* Meet first_response and customer_contact: resolution is the tightest clock. */
    fx_event(&f, "c1", "case.responded", T0 + M, "{'agent':'ann','channel':'email'}");
    adv(&f, T0 + 36 * H);
    json_t *c = live(&f, id, T0 + 36 * H);
    double before = jnum(c, "priority.components.timeliness.score");
    const char *metric = js(c, "priority.components.timeliness.basis.metric");
    int is_resolution = metric && !strcmp(metric, "resolution");
    json_decref(c);
    fx_event(&f, "c1", "case.status_changed", T0 + 36 * H, "{'status':'pending'}");
    fx_event(&f, "c1", "case.status_changed", T0 + 40 * H, "{'status':'open'}");
    c = live(&f, id, T0 + 40 * H);
    double after = jnum(c, "priority.components.timeliness.score");
    json_decref(c);
    fx_cleanup(&f);
    ASSERT(is_resolution);
    ASSERT_NEAR(before, 0.5);
    ASSERT_NEAR(after, 0.5);
}

/* limit caps the cards, not the counts. */
static void queue_limit(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    bad(&f, "c2", "b", T0);
    bad(&f, "c3", "c", T0);
    struct queue_query q = {.user = "ann", .limit = 2};
    struct buf b;
    buf_init(&b, 0);
    cases_queue_json(f.cs, &q, T0, &b);
    json_t *j = json_loads(b.data ? b.data : "", 0, NULL);
    buf_cleanup(&b);
    size_t n = json_array_size(json_object_get(j, "cases"));
    double total = jnum(j, "counts.total");
    char order[64];
    snprintf(order, sizeof order, "%s", queue_customers(j));
    json_decref(j);
    fx_cleanup(&f);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(total, 3);
    ASSERT_STREQ(order, "c3 c2"); /* CRITICAL, then HIGH */
}

/* ---- 8. cases_check and ignored actions ---- */

static int check(struct fx *f, const char *who, const char *type, const char *data, char *why,
                 size_t n, char *id)
{
    struct event ev;
    if (mk_event(f, who, type, engine_now(f->e), data, &ev))
        return -9999;
    why[0] = 0;
    int rc = cases_check(f->cs, &ev, why, n, id);
    event_cleanup(&ev);
    return rc;
}

static void check_reports_why(void)
{
    struct fx f;
    char why[256], id[24], data[128];
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    bad(&f, "c2", "a", T0);
    const char *c1 = open_id(&f, "c1"), *c2 = open_id(&f, "c2");
    ASSERT(c1 && c2);
    ASSERT_EQ(
        check(&f, "c1", "case.note_added", "{'agent':'ann','text':'hi'}", why, sizeof why, id), 0);
    ASSERT_STREQ(id, c1);
    ASSERT_EQ(check(&f, "c1", "case.note_added", "{'case':'c_nope','agent':'ann','text':'x'}", why,
                    sizeof why, NULL),
              FW_ENOTFOUND);
    ASSERT_CONTAINS(why, "c_nope");
    ASSERT_EQ(
        check(&f, "c3", "case.note_added", "{'agent':'ann','text':'x'}", why, sizeof why, NULL),
        FW_ENOTFOUND);
    ASSERT_CONTAINS(why, "c3");
    /* Another customer's case. */
    snprintf(data, sizeof data, "{'case':'%s','agent':'ann','text':'x'}", c2);
    ASSERT_EQ(check(&f, "c1", "case.note_added", data, why, sizeof why, NULL), FW_ESTATE);
    ASSERT_CONTAINS(why, c2);
    /* A resolved case. */
    snprintf(data, sizeof data, "{'case':'%s','agent':'ann','text':'x'}", c1);
    good(&f, "c1", "a", T0 + H);
    ASSERT(!cases_open_id(f.cs, "c1"));
    ASSERT_EQ(check(&f, "c1", "case.note_added", data, why, sizeof why, NULL), FW_ESTATE);
    ASSERT_CONTAINS(why, c1);
    ASSERT_CONTAINS(why, "resolved");
    ASSERT_EQ(
        check(&f, "c1", "case.note_added", "{'agent':'ann','text':'x'}", why, sizeof why, NULL),
        FW_ENOTFOUND);
    fx_cleanup(&f);
}

/* An action that does not apply changes nothing, writes nothing, and is counted. */
static void inapplicable_action_is_ignored(void)
{
    struct fx f;
    char data[128];
    ASSERT_EQ(fx_init(&f, T0), 0);
    bad(&f, "c1", "a", T0);
    const char *c1 = open_id(&f, "c1");
    good(&f, "c1", "a", T0 + H);
    take(&f);
    ASSERT_EQ(stats(&f).ignored, 0);
    fx_event(&f, "c3", "case.note_added", T0 + 2 * H, "{'agent':'ann','text':'hello'}");
    ASSERT_EQ(json_array_size(take(&f)), 0);
    ASSERT_EQ(stats(&f).ignored, 1);
    snprintf(data, sizeof data, "{'case':'%s','agent':'ann'}", c1);
    fx_event(&f, "c1", "case.assigned", T0 + 3 * H, data);
    ASSERT_EQ(json_array_size(take(&f)), 0);
    ASSERT_EQ(stats(&f).ignored, 2);
    ASSERT(!cases_open_id(f.cs, "c1"));
    ASSERT_EQ(stats(&f).opened, 1);
    fx_cleanup(&f);
}

/* ---- 9. guided mode ---- */

static void next_for_skips_what_user_skipped(void)
{
    struct fx f;
    ASSERT_EQ(fx_init(&f, T0), 0);
    ASSERT(!cases_next_for(f.cs, "ann", T0));
    bad(&f, "c1", "b", T0); /* HIGH: the top of the queue */
    bad(&f, "c2", "a", T0);
    const char *c1 = open_id(&f, "c1"), *c2 = open_id(&f, "c2");
    ASSERT_STREQ(cases_next_for(f.cs, "ann", T0), c1);
    fx_event(&f, "c1", "case.skipped", T0 + M, "{'agent':'ann','reason':'busy'}");
    json_t *l = take(&f);
    ASSERT_STREQ(js(find(l, "case", "updated", NULL, 0), "change"), "skipped");
    ASSERT_STREQ(js(find(l, "case", "updated", NULL, 0), "reason"), "busy");
    ASSERT_STREQ(cases_next_for(f.cs, "ann", T0 + M), c2);
    ASSERT_STREQ(cases_next_for(f.cs, "bob", T0 + M), c1);
    /* c2 goes to bob: nothing left for ann; bob still gets the top case. */
    fx_event(&f, "c2", "case.assigned", T0 + 2 * M, "{'agent':'bob'}");
    ASSERT(!cases_next_for(f.cs, "ann", T0 + 2 * M));
    ASSERT_STREQ(cases_next_for(f.cs, "bob", T0 + 2 * M), c1);
    /* A case assigned to you comes back to you even if you skipped it once. */
    fx_event(&f, "c1", "case.assigned", T0 + 3 * M, "{'agent':'ann'}");
    ASSERT_STREQ(cases_next_for(f.cs, "ann", T0 + 3 * M), c1);
    fx_cleanup(&f);
}

const struct test cases_tests[] = {
    {"medium_firing_opens_case", medium_firing_opens_case},
    {"high_and_critical_defaults", high_and_critical_defaults},
    {"later_detections_attach", later_detections_attach},
    {"case_ids_are_stable", case_ids_are_stable},
    {"snapshot_round_trip", snapshot_round_trip},
    {"snapshot_truncated_is_refused", snapshot_truncated_is_refused},
    {"unassigned_case_auto_resolves", unassigned_case_auto_resolves},
    {"assigned_case_waits_for_resolve", assigned_case_waits_for_resolve},
    {"raise_measures_from_open", raise_measures_from_open},
    {"raise_past_due_breaches_at_raise", raise_past_due_breaches_at_raise},
    {"warning_and_breach_at_exact_instants", warning_and_breach_at_exact_instants},
    {"response_before_due_is_met", response_before_due_is_met},
    {"pending_pauses_resolution_only", pending_pauses_resolution_only},
    {"inbound_contact_resumes", inbound_contact_resumes},
    {"raise_while_paused_applies_at_resume", raise_while_paused_applies_at_resume},
    {"raise_after_resume_counts_consumed", raise_after_resume_counts_consumed},
    {"warn_before_from_config", warn_before_from_config},
    {"calendar_due_skips_weekend", calendar_due_skips_weekend},
    {"calendar_pause_counts_working_time", calendar_pause_counts_working_time},
    {"priority_components", priority_components},
    {"priority_churn_counts_contacts", priority_churn_counts_contacts},
    {"priority_churn_with_counting_rule", priority_churn_with_counting_rule},
    {"queue_order_counts_filters", queue_order_counts_filters},
    {"timeliness_survives_pause", timeliness_survives_pause},
    {"queue_limit", queue_limit},
    {"check_reports_why", check_reports_why},
    {"inapplicable_action_is_ignored", inapplicable_action_is_ignored},
    {"next_for_skips_what_user_skipped", next_for_skips_what_user_skipped},
    {NULL, NULL},
};
