/*
 * test_playbook.c -- playbooks through their public interface: the loader
 * (errors with their place), matching (priority, file order, signals,
 * keywords, nulls), measured success from a fixture history (and "not
 * enough history"), and similar cases.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "cases/playbook.h"
#include "util/util.h"

#define ONE_STEP "    steps: [{action_type: call, description: d}]\n"
#define COMMON                                                                                     \
    "    recommend: {action_type: call, urgency: today, reason: r}\n"                              \
    "    script: {opening: \"Hi {{customer.first_name}}\", closing: bye}\n"                        \
    "    win_condition: w\n" ONE_STEP

static int load(struct playbooks *p, const char *text)
{
    playbooks_init(p);
    playbooks_add_text(p, "t.yaml", text, strlen(text), NULL);
    return (int)p->nerrors;
}

static void loader_accepts_and_keeps_order(void)
{
    struct playbooks p;
    int n = load(&p, "playbooks:\n"
                     "  - id: a\n    name: A\n    priority: 5\n    keywords: [Cancel]\n" COMMON
                     "  - id: b\n    name: B\n    when: 'severity == \"HIGH\"'\n" COMMON);
    if (n)
        fprintf(stderr, "%s", p.diag.data);
    ASSERT_EQ(n, 0);
    ASSERT_EQ(p.n, 2);
    ASSERT_STREQ(p.pb[0].keywords[0], "cancel"); /* lower-cased at load */
    ASSERT_STREQ(p.pb[1].where, "t.yaml:10");
    size_t i = 9;
    ASSERT(playbooks_find(&p, "b", &i) == &p.pb[1]);
    ASSERT_EQ(i, 1);
    ASSERT(playbooks_find(&p, "zz", NULL) == NULL);
    playbooks_cleanup(&p);
}

static void loader_errors_carry_their_place(void)
{
    struct playbooks p;
    load(&p, "playbooks:\n"
             "  - id: a\n"
             "    name: A\n"
             "    when: 'tier == '\n"
             "    recommend: {action_type: call, urgency: soon, reason: r}\n"
             "    script: {opening: \"Hi {{bogus}}\", closing: bye}\n"
             "    win_condition: w\n"
             "    colour: red\n"
             "    steps: [{action_type: fax, description: d, minutes: -3}]\n"
             "  - id: a\n    name: again\n    keywords: [x]\n" COMMON);
    const char *d = p.diag.data;
    ASSERT_CONTAINS(d, "t.yaml:4:20: error: when: unexpected end of condition");
    ASSERT_CONTAINS(d, "t.yaml:5:45: error: urgency 'soon' is not one of immediate, today, "
                       "this_week");
    ASSERT_CONTAINS(d, "t.yaml:6:29: error: unknown variable 'bogus'");
    ASSERT_CONTAINS(d, "t.yaml:8:5: error: unknown field 'colour' in a playbook");
    ASSERT_CONTAINS(d, "t.yaml:9:27: error: step 1: action_type 'fax' is not one of");
    ASSERT_CONTAINS(d, "minutes must be a whole number of minutes from 1 to 10080");
    ASSERT_CONTAINS(d, "t.yaml:10:9: error: playbook 'a' is defined twice (first at t.yaml:2)");
    ASSERT_EQ(p.nerrors, 7);
    playbooks_cleanup(&p);

    load(&p, "playbooks:\n  - id: t\n    name: T\n" COMMON);
    ASSERT_CONTAINS(p.diag.data, "t.yaml:2:5: error: playbook 't' needs a trigger");
    playbooks_cleanup(&p);
    load(&p, "playbooks: [\n");
    ASSERT_CONTAINS(p.diag.data, "t.yaml:2:1: error: YAML syntax");
    playbooks_cleanup(&p);
}

static void builtin_set_loads(void)
{
    struct playbooks p;
    playbooks_init(&p);
    ASSERT_EQ(playbooks_add_builtin(&p, NULL), 0);
    ASSERT_EQ(p.nerrors, 0);
    ASSERT_EQ(p.n, 15);
    ASSERT(playbooks_find(&p, "retention", NULL) != NULL);
    playbooks_cleanup(&p);
}

static struct pb_facts facts(const char *sev, const char *const *sigs, size_t n, const char *text)
{
    return (struct pb_facts){.severity = sev, .signal = n ? sigs[0] : NULL, .signals = sigs,
                             .nsignals = n, .value = NAN, .sentiment = NAN,
                             .tenure_days = NAN, .text = text};
}

static void matching_priority_order_and_nulls(void)
{
    struct playbooks p;
    int n = load(&p, "playbooks:\n"
                     "  - id: sig\n    name: S\n    priority: 10\n    signals: [SIG-002]\n" COMMON
                     "  - id: sig2\n    name: S2\n    priority: 10\n"
                     "    when: 'signal == \"SIG-002\"'\n" COMMON
                     "  - id: leave\n    name: L\n    priority: 50\n    keywords: [cancel]\n" COMMON
                     "  - id: angry\n    name: A\n    priority: 60\n    when: 'sentiment < -0.5'\n"
                     COMMON "  - id: rich\n    name: R\n    priority: 70\n"
                     "    when: 'value >= 5000 and \"SIG-004\" in signals'\n" COMMON);
    ASSERT_EQ(n, 0);
    const char *s2[] = {"SIG-002"}, *s4[] = {"SIG-004"};
    char why[256];
    struct pb_facts f = facts("CRITICAL", s2, 1, "");
    ASSERT_EQ(playbooks_match(&p, &f, 0, why, sizeof why), 0); /* a tie: file order */
    ASSERT_STREQ(why, "priority 10: signal SIG-002");
    f.text = "i will cancel today\n";
    ASSERT_EQ(playbooks_match(&p, &f, 0, why, sizeof why), 2);
    ASSERT_STREQ(why, "priority 50: the customer wrote \"cancel\"");
    /* A null sentiment never matches `sentiment < -0.5`; a known one does. */
    ASSERT_EQ(playbooks_match(&p, &f, 0, NULL, 0), 2);
    f.sentiment = -0.8;
    ASSERT_EQ(playbooks_match(&p, &f, 0, NULL, 0), 3);
    struct pb_facts g = facts("HIGH", s4, 1, "");
    ASSERT_EQ(playbooks_match(&p, &g, 0, why, sizeof why), -1);
    ASSERT_STREQ(why, "no playbook's trigger holds for this case");
    g.value = 5000;
    ASSERT_EQ(playbooks_match(&p, &g, 0, NULL, 0), 4);
    playbooks_cleanup(&p);
}

/* The fixture history: 6 cases with playbook 0, 3 with playbook 1, 1 with none. */
static size_t history(struct pb_record *r)
{
    static const struct {
        int pb;
        const char *outcome;
        int minutes, csat;
        const char *sig;
        int sev;
        double value;
    } h[] = {
        {0, "saved", 120, 5, "SIG-002", 3, 4000},   {0, "saved", 180, 4, "SIG-002", 3, 300},
        {0, "resolved", 240, 0, "SIG-004", 2, 900}, {0, "churned", 600, 1, "SIG-002", 3, 4500},
        {0, "saved", 300, 5, "SIG-008", 2, 100},    {0, "no_action", 60, 0, "SIG-006", 1, 50},
        {1, "resolved", 30, 4, "SIG-003", 1, 60},   {1, "churned", 90, 2, "SIG-003", 1, 60},
        {1, "saved", 45, 0, "SIG-003", 1, 70},      {-1, "saved", 10, 0, "SIG-002", 3, 4100},
    };
    for (size_t i = 0; i < ARRAY_SIZE(h); i++) {
        memset(&r[i], 0, sizeof r[i]);
        snprintf(r[i].case_id, sizeof r[i].case_id, "c_%zu", i);
        snprintf(r[i].outcome, sizeof r[i].outcome, "%s", h[i].outcome);
        r[i].playbook = h[i].pb;
        r[i].open_ms = h[i].minutes * 60000LL;
        r[i].csat = h[i].csat;
        r[i].severity = h[i].sev;
        r[i].signals[0] = h[i].sig;
        r[i].nsignals = 1;
        r[i].value = h[i].value;
        r[i].tenure_days = NAN;
        r[i].sentiment = NAN;
    }
    return ARRAY_SIZE(h);
}

static void stats_from_a_fixture_history(void)
{
    struct pb_record r[16];
    size_t n = history(r);
    struct pb_stats s;
    pb_stats_compute(r, n, 0, 5, &s);
    ASSERT_EQ(s.n, 6);
    ASSERT_EQ(s.successes, 4); /* saved 3 + resolved 1; churned and no_action are not */
    ASSERT(fabs(s.success_rate - 4.0 / 6.0) < 1e-9);
    ASSERT(fabs(s.median_minutes - 210.0) < 1e-9); /* 60 120 180 240 300 600 */
    ASSERT_EQ(s.n_csat, 4);
    ASSERT(fabs(s.mean_csat - 3.75) < 1e-9);
    ASSERT(s.enough);
    json_t *j = pb_stats_json(&s, 5);
    char *t = json_dumps(j, JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
    ASSERT_STREQ(t, "{\"csat\": {\"mean\": 3.75, \"n\": 4}, \"median_resolution_minutes\": 210.0, "
                    "\"n\": 6, \"success_rate\": 0.67, \"successes\": 4}");
    free(t);
    json_decref(j);
    /* Three cases: not enough history, and no figure at all. */
    pb_stats_compute(r, n, 1, 5, &s);
    ASSERT_EQ(s.n, 3);
    ASSERT(!s.enough);
    j = pb_stats_json(&s, 5);
    t = json_dumps(j, JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
    ASSERT_STREQ(t, "{\"n\": 3, \"needed\": 5, \"status\": \"not enough history\"}");
    free(t);
    json_decref(j);
    /* The threshold is a setting. */
    pb_stats_compute(r, n, 1, 3, &s);
    ASSERT(s.enough);
    ASSERT(fabs(s.median_minutes - 45.0) < 1e-9);
    /* No history at all. */
    pb_stats_compute(r, 0, 0, 5, &s);
    ASSERT_EQ(s.n, 0);
    ASSERT(!s.enough);
}

static void similar_cases_are_the_nearest(void)
{
    struct pb_record r[16];
    size_t n = history(r);
    const char *sigs[] = {"SIG-002"};
    struct pb_facts f = facts("CRITICAL", sigs, 1, "");
    f.value = 4200;
    size_t idx[3];
    double score[3];
    size_t got = pb_similar(r, n, &f, 3, 3, idx, score);
    ASSERT_EQ(got, 3);
    /* Same signal, same severity, values 4000, 4100, 4500: the nearest values first. */
    ASSERT_EQ(idx[0], 9);
    ASSERT_EQ(idx[1], 0);
    ASSERT_EQ(idx[2], 3);
    ASSERT(score[0] >= score[1] && score[1] >= score[2]);
    ASSERT(score[0] > 0.99 && score[0] <= 1.0);
    /* Deterministic: the same answer again, and fewer than k when the history is short. */
    size_t idx2[3];
    double score2[3];
    ASSERT_EQ(pb_similar(r, n, &f, 3, 3, idx2, score2), 3);
    ASSERT(!memcmp(idx, idx2, sizeof idx));
    ASSERT_EQ(pb_similar(r, 2, &f, 3, 3, idx, score), 2);
    ASSERT_EQ(idx[0], 0);
    ASSERT_EQ(pb_similar(r, 0, &f, 3, 3, idx, score), 0);
}

const struct test playbook_tests[] = {
    {"loader_accepts_and_keeps_order", loader_accepts_and_keeps_order},
    {"loader_errors_carry_their_place", loader_errors_carry_their_place},
    {"builtin_set_loads", builtin_set_loads},
    {"matching_priority_order_and_nulls", matching_priority_order_and_nulls},
    {"stats_from_a_fixture_history", stats_from_a_fixture_history},
    {"similar_cases_are_the_nearest", similar_cases_are_the_nearest},
    {NULL, NULL},
};
