/*
 * pbtest.c -- `forewarn playbooks test FILE`: which playbook a case gets,
 * as tests in YAML (docs/guidance.md, "Testing playbooks"):
 *
 *   playbook_files: [telecom.yaml]   # relative to this file; omitted: the built-in set
 *   tests:
 *     - name: a long-time customer about to leave gets the retention playbook
 *       case: {severity: CRITICAL, signals: [SIG-002, SIG-008], tier: gold, value: 4200,
 *              tenure_days: 2190, texts: ["Third failed activation. I'm switching to T-Mobile."]}
 *       expect: retention            # a playbook id, or none
 *
 * `signal` (the case's lead signal) defaults to the first of `signals`;
 * `state` gives customer state keys ({customer.plan: unlimited}).
 */
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases/playbook.h"
#include "rules/rules.h"
#include "util/util.h"
#include "util/yaml.h"

static char *read_all(const char *path, size_t *len)
{
    struct buf b;
    buf_init(&b, 4 << 20);
    if (buf_read_file(&b, path)) {
        buf_cleanup(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? buf_steal(&b) : xstrdup("");
}

static double num(struct ydoc *d, yaml_node_t *m, const char *key)
{
    const char *s = yscalar(ymap_get(d, m, key));
    char *end;
    double v = s ? strtod(s, &end) : NAN;
    return s && !*end ? v : NAN;
}

static int run_one(struct playbooks *pb, struct ydoc *d, yaml_node_t *t, size_t i, FILE *out,
                   struct buf *diag)
{
    static const char *const case_keys[] = {"severity", "signal", "signals", "customer", "tier",
                                            "value", "sentiment", "tenure_days", "contacts",
                                            "texts", "state", NULL};
    const char *name = yscalar(ymap_get(d, t, "name"));
    yaml_node_t *c = ymap_get(d, t, "case"), *ex = ymap_get(d, t, "expect");
    if (!c || c->type != YAML_MAPPING_NODE || !yscalar(ex)) {
        ydiag(d, diag, t, "a test needs name, case (a mapping) and expect (a playbook id or none)");
        return -1;
    }
    for (yaml_node_pair_t *p = c->data.mapping.pairs.start; p < c->data.mapping.pairs.top; p++) {
        const char *k = yscalar(ydoc_node(d, p->key));
        int ok = 0;
        for (size_t j = 0; k && case_keys[j]; j++)
            ok |= !strcmp(k, case_keys[j]);
        if (!ok) {
            ydiag(d, diag, ydoc_node(d, p->key), "unknown case field '%s'", k ? k : "?");
            return -1;
        }
    }
    const char *expect = yscalar(ex);
    if (strcmp(expect, "none") && !playbooks_find(pb, expect, NULL)) {
        ydiag(d, diag, ex, "expect: no playbook '%s'", expect);
        return -1;
    }
    const char *sigs[PB_MAX_SIGNALS];
    size_t nsigs = 0;
    yaml_node_t *sl = ymap_get(d, c, "signals");
    if (sl && sl->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *it = sl->data.sequence.items.start;
             it < sl->data.sequence.items.top && nsigs < PB_MAX_SIGNALS; it++)
            if (yscalar(ydoc_node(d, *it)))
                sigs[nsigs++] = yscalar(ydoc_node(d, *it));
    struct buf text;
    buf_init(&text, 0);
    yaml_node_t *tl = ymap_get(d, c, "texts");
    if (tl && tl->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *it = tl->data.sequence.items.start;
             it < tl->data.sequence.items.top; it++)
            if (yscalar(ydoc_node(d, *it)))
                buf_printf(&text, "%s\n", yscalar(ydoc_node(d, *it)));
    for (size_t j = 0; j < text.len; j++)
        text.data[j] = (char)(text.data[j] >= 'A' && text.data[j] <= 'Z' ? text.data[j] + 32
                                                                          : text.data[j]);
    json_t *state = json_object(), *st = json_object();
    json_object_set_new(state, "state", st);
    yaml_node_t *sm = ymap_get(d, c, "state");
    if (sm && sm->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *p = sm->data.mapping.pairs.start; p < sm->data.mapping.pairs.top;
             p++)
            json_object_set_new(st, yscalar(ydoc_node(d, p->key)) ? yscalar(ydoc_node(d, p->key))
                                                                  : "?",
                                json_pack("{s:o}", "value",
                                          yaml_to_json(d, ydoc_node(d, p->value))));
    double contacts = num(d, c, "contacts");
    const char *signal = yscalar(ymap_get(d, c, "signal"));
    struct pb_facts f = {
        .severity = yscalar(ymap_get(d, c, "severity")),
        .signal = signal ? signal : nsigs ? sigs[0] : NULL,
        .signals = sigs,
        .nsignals = nsigs,
        .customer = yscalar(ymap_get(d, c, "customer")),
        .tier = yscalar(ymap_get(d, c, "tier")),
        .value = num(d, c, "value"),
        .sentiment = num(d, c, "sentiment"),
        .tenure_days = num(d, c, "tenure_days"),
        .contacts = isnan(contacts) ? 0 : (int)contacts,
        .text = text.data ? text.data : "",
        .state = state,
    };
    char why[512];
    int got = playbooks_match(pb, &f, 0, why, sizeof why);
    const char *gid = got >= 0 ? pb->pb[got].id : "none";
    int ok = !strcmp(gid, expect);
    if (ok)
        fprintf(out, "ok %zu - %s\n", i + 1, name ? name : "");
    else
        fprintf(out, "FAIL %zu - %s\n    %s:%zu: expected %s, got %s (%s)\n", i + 1,
                name ? name : "", d->name, ex->start_mark.line + 1, expect, gid, why);
    json_decref(state);
    buf_cleanup(&text);
    return ok ? 0 : 1;
}

int playbooks_test_run(const char *path, FILE *out, FILE *err)
{
    size_t len = 0;
    char *text = read_all(path, &len);
    if (!text) {
        fprintf(err, "%s: error: cannot read\n", path);
        return 1;
    }
    struct ydoc d;
    struct buf diag;
    buf_init(&diag, 0);
    struct playbooks pb;
    playbooks_init(&pb);
    struct rules rules;
    rules_init(&rules);
    rules_add_builtin(&rules);
    int failed = 0, rc = ydoc_load(&d, path, text, len, &diag);
    yaml_node_t *root = rc ? NULL : ydoc_root(&d);
    if (!rc && rules_finish(&rules))
        rc = 1;
    yaml_node_t *files = rc ? NULL : ymap_get(&d, root, "playbook_files");
    if (!rc && files && files->type == YAML_SEQUENCE_NODE) {
        char *dup = xstrdup(path);
        const char *dir = dirname(dup);
        for (yaml_node_item_t *it = files->data.sequence.items.start;
             it < files->data.sequence.items.top; it++) {
            const char *f = yscalar(ydoc_node(&d, *it));
            char full[4096];
            snprintf(full, sizeof full, "%s%s%s", f && f[0] != '/' ? dir : "",
                     f && f[0] != '/' ? "/" : "", f ? f : "");
            playbooks_add_file(&pb, full, &rules);
        }
        free(dup);
    } else if (!rc) {
        playbooks_add_builtin(&pb, &rules);
    }
    if (!rc && pb.nerrors) {
        fputs(pb.diag.data ? pb.diag.data : "", err);
        rc = 1;
    }
    yaml_node_t *tests = rc ? NULL : ymap_get(&d, root, "tests");
    if (!rc && (!tests || tests->type != YAML_SEQUENCE_NODE)) {
        ydiag(&d, &diag, root, "a playbook test file has a list 'tests:'");
        rc = 1;
    }
    size_t n = 0;
    if (!rc) {
        for (yaml_node_item_t *it = tests->data.sequence.items.start;
             it < tests->data.sequence.items.top; it++, n++) {
            int r = run_one(&pb, &d, ydoc_node(&d, *it), n, out, &diag);
            if (r < 0)
                rc = 1;
            else
                failed += r;
        }
    }
    if (diag.len)
        fputs(diag.data, err);
    if (!rc)
        fprintf(out, "%s: %zu test(s), %d failed\n", path, n, failed);
    ydoc_cleanup(&d);
    buf_cleanup(&diag);
    playbooks_cleanup(&pb);
    rules_cleanup(&rules);
    free(text);
    return rc || failed ? 1 : 0;
}
