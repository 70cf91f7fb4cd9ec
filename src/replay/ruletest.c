/*
 * ruletest.c -- `forewarn rules test FILE`: rule unit tests in YAML, in the
 * spirit of `promtool test rules`.
 *
 *   rule_files: [telecom.yaml]      # relative to this file; omitted: the built-in pack
 *   start: 2026-01-01T00:00:00Z     # times below are offsets from here (or absolute)
 *   tests:
 *     - name: SIG-001 fires 48h after payment
 *       signals: [SIG-001]          # compare only these signals (default: all)
 *       events:
 *         - {at: 1h, type: payment.completed, subject: c1, data: {order_id: o1}}
 *       until: 60h                  # advance the virtual clock to here at the end
 *       expect:                     # exactly these detection transitions, in any order
 *         - {signal: SIG-001, customer: c1, state: firing, at: 49h}
 *       expect_incidents:           # optional: incident updates to find (subset match)
 *         - {signal: SIG-001, update: opened, customers: [c1, c2, c3],
 *            common_factor: {key: customer.carrier, value: Verizon}}
 *
 * Each test runs on a fresh engine with the replay semantics of replay.c.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "ingest/ingest.h"
#include "replay/replay.h"
#include "util/yaml.h"
#include "util/json.h"
#include "util/fwtime.h"
#include "util/util.h"

/* One recorded output, as comparable text fields. */
struct seen {
    char signal[64], customer[256], state[16];
    int64_t at;
    int matched;
};

struct collector {
    struct seen *items;
    size_t n, cap;
    json_t *incidents; /* array of incident objects as JSON */
    const char *const *only;
    size_t nonly;
};

static void collect_detection(void *ctx, const struct detection *d)
{
    struct collector *c = ctx;
    int keep = c->nonly == 0;
    for (size_t i = 0; i < c->nonly && !keep; i++)
        keep = !strcmp(c->only[i], d->signal->id);
    if (!keep)
        return;
    c->items = xgrow(c->items, &c->cap, c->n + 1, sizeof *c->items);
    struct seen *s = &c->items[c->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->signal, sizeof s->signal, "%s", d->signal->id);
    snprintf(s->customer, sizeof s->customer, "%s", d->customer);
    snprintf(s->state, sizeof s->state, "%s", d->firing ? "firing" : "resolved");
    s->at = d->at;
}

static void collect_incident(void *ctx, const struct incident *i)
{
    struct collector *c = ctx;
    struct buf b;
    buf_init(&b, 0);
    incident_json(i, 0, &b);
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    if (j)
        json_array_append_new(c->incidents, j);
    buf_cleanup(&b);
}

/* A time: an absolute RFC 3339 value, or a duration offset from start. */
static int parse_at(const char *s, int64_t start, int64_t *out)
{
    if (!s)
        return FW_EPARSE;
    if (strchr(s, 'T'))
        return fw_time_parse(s, strlen(s), out);
    int64_t d;
    if (!strcmp(s, "0") || !strcmp(s, "0s")) {
        *out = start;
        return 0;
    }
    if (fw_duration_parse(s, strlen(s), &d))
        return FW_EPARSE;
    *out = start + d;
    return 0;
}

#define TERR(node, ...)                                                                            \
    do {                                                                                           \
        ydiag(d, &diag, (node), __VA_ARGS__);                                                      \
        ok = 0;                                                                                    \
    } while (0)

/* Refuse keys outside `allowed`, so a misspelt `untill` cannot silently weaken a test. */
static int unknown_keys(struct ydoc *d, yaml_node_t *m, const char *const *allowed, const char *what,
                        struct buf *diag)
{
    int bad = 0;
    if (!m || m->type != YAML_MAPPING_NODE)
        return 0;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key);
        const char *k = yscalar(kn);
        int ok = 0;
        for (size_t i = 0; k && allowed[i]; i++)
            ok |= !strcmp(k, allowed[i]);
        if (!ok) {
            ydiag(d, diag, kn, "unknown field '%s' in %s", k ? k : "?", what);
            bad = 1;
        }
    }
    return bad;
}

static int run_one(struct rules *rules, struct ydoc *d, yaml_node_t *t, size_t index, int64_t start,
                   FILE *out, FILE *err)
{
    static const char *const test_keys[] = {"name",   "signals", "events", "until",
                                            "expect", "expect_incidents", NULL};
    struct buf diag;
    int ok = 1;
    buf_init(&diag, 0);
    (void)err;
    if (unknown_keys(d, t, test_keys, "a test", &diag))
        ok = 0;
    const char *name = yscalar(ymap_get(d, t, "name"));
    char fallback[32];
    snprintf(fallback, sizeof fallback, "test %zu", index + 1);
    if (!name)
        name = fallback;

    /* Which signals to compare. */
    const char *only[64];
    size_t nonly = 0;
    yaml_node_t *sn = ymap_get(d, t, "signals");
    if (sn && sn->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = sn->data.sequence.items.start;
             it < sn->data.sequence.items.top && nonly < ARRAY_SIZE(only); it++) {
            yaml_node_t *x = ydoc_node(d, *it);
            if (!rules_signal(rules, yscalar(x) ? yscalar(x) : ""))
                TERR(x, "unknown signal '%s'", yscalar(x) ? yscalar(x) : "?");
            only[nonly++] = yscalar(x);
        }
    }

    /* Build the events. */
    struct ingest_globals globals = {
        .ctx = rules, .is_global = rules_is_global, .declared = rules_declared};
    yaml_node_t *en = ymap_get(d, t, "events");
    size_t nev = en && en->type == YAML_SEQUENCE_NODE
                     ? (size_t)(en->data.sequence.items.top - en->data.sequence.items.start)
                     : 0;
    struct event *evs = xcalloc(nev + 1, sizeof *evs);
    size_t built = 0;
    for (size_t k = 0; k < nev; k++) {
        yaml_node_t *x = ydoc_node(d, en->data.sequence.items.start[k]);
        json_t *j = yaml_to_json(d, x);
        int64_t at;
        if (!json_is_object(j)) {
            TERR(x, "an event must be a mapping");
            json_decref(j);
            continue;
        }
        const char *ats = json_string_value(json_object_get(j, "at"));
        if (ats) {
            if (parse_at(ats, start, &at)) {
                TERR(x, "bad time '%s'", ats);
                json_decref(j);
                continue;
            }
            char ts[FW_TIME_MAXLEN];
            fw_time_format(at, ts);
            json_object_set_new(j, "time", json_string(ts));
            json_object_del(j, "at");
        }
        if (!json_object_get(j, "specversion"))
            json_object_set_new(j, "specversion", json_string("1.0"));
        if (!json_object_get(j, "id")) {
            char id[64];
            snprintf(id, sizeof id, "t%zu-e%zu", index + 1, k + 1);
            json_object_set_new(j, "id", json_string(id));
        }
        struct ingest_error ie;
        if (ingest_validate(j, &ingest_default_limits, &globals, &evs[built], &ie)) {
            TERR(x, "invalid event: %s%s%s", ie.field, ie.field[0] ? ": " : "", ie.msg);
        } else {
            /* A repeated id is ignored, as replay and the server do. */
            int dup = 0;
            for (size_t k2 = 0; k2 < built && !dup; k2++)
                dup = !strcmp(evs[k2].id, evs[built].id);
            if (dup)
                event_cleanup(&evs[built]);
            else
                built++;
        }
        json_decref(j);
    }
    int64_t until = FW_TIME_NONE;
    yaml_node_t *un = ymap_get(d, t, "until");
    if (un && parse_at(yscalar(un), start, &until))
        TERR(un, "bad time '%s'", yscalar(un) ? yscalar(un) : "?");

    /* Expected detections. */
    struct seen *want = NULL;
    size_t nwant = 0, capwant = 0;
    yaml_node_t *xn = ymap_get(d, t, "expect");
    if (xn && xn->type != YAML_SEQUENCE_NODE)
        TERR(xn, "expect must be a list");
    for (yaml_node_item_t *it = xn && xn->type == YAML_SEQUENCE_NODE ? xn->data.sequence.items.start : NULL;
         it && it < xn->data.sequence.items.top; it++) {
        yaml_node_t *x = ydoc_node(d, *it);
        const char *sig = yscalar(ymap_get(d, x, "signal")),
                   *cust = yscalar(ymap_get(d, x, "customer")),
                   *st = yscalar(ymap_get(d, x, "state")), *ats = yscalar(ymap_get(d, x, "at"));
        int64_t at;
        if (!sig || !cust || !st || !ats) {
            TERR(x, "expect entries need signal, customer, state and at");
            continue;
        }
        if (strcmp(st, "firing") && strcmp(st, "resolved"))
            TERR(ymap_get(d, x, "state"), "state must be firing or resolved");
        if (parse_at(ats, start, &at)) {
            TERR(ymap_get(d, x, "at"), "bad time '%s'", ats);
            continue;
        }
        want = xgrow(want, &capwant, nwant + 1, sizeof *want);
        memset(&want[nwant], 0, sizeof *want);
        snprintf(want[nwant].signal, sizeof want->signal, "%s", sig);
        snprintf(want[nwant].customer, sizeof want->customer, "%s", cust);
        snprintf(want[nwant].state, sizeof want->state, "%s", st);
        want[nwant++].at = at;
    }

    struct collector col = {.only = only, .nonly = nonly, .incidents = json_array()};
    if (ok) {
        /* Replay semantics: stable time order, wake-ups before each event. */
        for (size_t a = 1; a < built; a++)
            for (size_t b = a; b > 0 && evs[b - 1].time > evs[b].time; b--) {
                struct event tmp = evs[b];
                evs[b] = evs[b - 1];
                evs[b - 1] = tmp;
            }
        struct engine_sink sink = {
            .ctx = &col, .detection = collect_detection, .incident = collect_incident};
        struct engine *e = engine_new(rules, built ? evs[0].time : start, &sink);
        for (size_t k = 0; k < built; k++) {
            engine_prepare(e, evs[k].time);
            engine_apply(e, &evs[k]);
        }
        if (until != FW_TIME_NONE)
            engine_advance(e, until);
        engine_free(e);

        /* Compare as multisets. */
        for (size_t w = 0; w < nwant; w++) {
            for (size_t g = 0; g < col.n; g++) {
                struct seen *s = &col.items[g];
                if (!s->matched && s->at == want[w].at && !strcmp(s->signal, want[w].signal) &&
                    !strcmp(s->customer, want[w].customer) && !strcmp(s->state, want[w].state)) {
                    s->matched = want[w].matched = 1;
                    break;
                }
            }
        }
        char ts[FW_TIME_MAXLEN];
        for (size_t w = 0; w < nwant; w++)
            if (!want[w].matched) {
                fw_time_format(want[w].at, ts);
                buf_printf(&diag, "    missing:    %s %s %s at %s\n", want[w].signal,
                           want[w].customer, want[w].state, ts);
                ok = 0;
            }
        for (size_t g = 0; g < col.n; g++)
            if (!col.items[g].matched) {
                fw_time_format(col.items[g].at, ts);
                buf_printf(&diag, "    unexpected: %s %s %s at %s\n", col.items[g].signal,
                           col.items[g].customer, col.items[g].state, ts);
                ok = 0;
            }

        /* Expected incident updates: each must match some update on every given field. */
        yaml_node_t *in = ymap_get(d, t, "expect_incidents");
        for (yaml_node_item_t *it = in && in->type == YAML_SEQUENCE_NODE ? in->data.sequence.items.start : NULL;
             it && it < in->data.sequence.items.top; it++) {
            yaml_node_t *x = ydoc_node(d, *it);
            json_t *w = yaml_to_json(d, x);
            const char *ats = json_string_value(json_object_get(w, "at"));
            if (ats) {
                int64_t at;
                if (parse_at(ats, start, &at) == 0) {
                    fw_time_format(at, ts);
                    json_object_set_new(w, "at", json_string(ts));
                }
            }
            size_t idx;
            json_t *got;
            int found = 0;
            json_array_foreach(col.incidents, idx, got)
            {
                const char *k;
                json_t *v;
                int all = 1;
                json_object_foreach(w, k, v)
                {
                    json_t *g2 = json_object_get(got, k);
                    if (!strcmp(k, "common_factor") && json_is_object(v) && json_is_object(g2)) {
                        all &= json_equal(json_object_get(v, "key"), json_object_get(g2, "key")) &&
                               json_equal(json_object_get(v, "value"), json_object_get(g2, "value"));
                    } else {
                        all &= json_equal(v, g2);
                    }
                }
                found |= all;
            }
            if (!found) {
                char *txt = fw_json_dumps(w);
                buf_printf(&diag, "    missing incident update: %s\n", txt);
                free(txt);
                ok = 0;
            }
            json_decref(w);
        }
    }
    fprintf(out, "%s %s\n", ok ? "ok  " : "FAIL", name);
    if (!ok && diag.len)
        fputs(diag.data, out); /* next to the test's name, on the same stream */
    for (size_t k = 0; k < built; k++)
        event_cleanup(&evs[k]);
    free(evs);
    free(want);
    free(col.items);
    json_decref(col.incidents);
    buf_cleanup(&diag);
    return ok;
}

int ruletest_run(const char *path, FILE *out, FILE *err)
{
    struct rules rules;
    struct ydoc doc, *d = &doc;
    struct buf text, diag;
    int rc = FW_EPARSE, passed = 0, failed = 0;
    rules_init(&rules);
    buf_init(&text, 16 << 20);
    buf_init(&diag, 0);
    memset(&doc, 0, sizeof doc);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(err, "%s: error: cannot read\n", path);
        goto out;
    }
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&text, chunk, n);
    fclose(f);
    if (ydoc_load(d, path, text.data ? text.data : "", text.len, &diag))
        goto out;
    yaml_node_t *root = ydoc_root(d);
    static const char *const top_keys[] = {"rule_files", "start", "tests", NULL};
    if (unknown_keys(d, root, top_keys, "the test file", &diag))
        goto out;
    yaml_node_t *files = ymap_get(d, root, "rule_files");
    if (files && files->type == YAML_SEQUENCE_NODE) {
        char *dup = xstrdup(path);
        const char *dir = dirname(dup);
        for (yaml_node_item_t *it = files->data.sequence.items.start;
             it < files->data.sequence.items.top; it++) {
            const char *rf = yscalar(ydoc_node(d, *it));
            char full[4096];
            snprintf(full, sizeof full, "%s/%s", rf && rf[0] == '/' ? "" : dir, rf ? rf : "");
            rules_add_file(&rules, rf && rf[0] == '/' ? rf : full);
        }
        free(dup);
    } else {
        rules_add_builtin(&rules);
    }
    if (rules_finish(&rules)) {
        fputs(rules.diag.data ? rules.diag.data : "", err);
        goto out;
    }
    int64_t start = 0;
    yaml_node_t *sn = ymap_get(d, root, "start");
    if (sn && parse_at(yscalar(sn), 0, &start)) {
        ydiag(d, &diag, sn, "bad start time (expected RFC 3339 with offset)");
        goto out;
    }
    yaml_node_t *tests = ymap_get(d, root, "tests");
    if (!tests || tests->type != YAML_SEQUENCE_NODE) {
        ydiag(d, &diag, tests ? tests : root, "a rule test file needs 'tests', a list");
        goto out;
    }
    size_t i = 0;
    for (yaml_node_item_t *it = tests->data.sequence.items.start; it < tests->data.sequence.items.top;
         it++, i++) {
        if (run_one(&rules, d, ydoc_node(d, *it), i, start, out, err))
            passed++;
        else
            failed++;
    }
    fprintf(out, "%d passed, %d failed\n", passed, failed);
    rc = failed ? FW_EINVAL : 0;
out:
    if (diag.len)
        fputs(diag.data, err);
    ydoc_cleanup(d);
    buf_cleanup(&text);
    buf_cleanup(&diag);
    rules_cleanup(&rules);
    return rc;
}
