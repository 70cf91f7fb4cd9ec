/*
 * test_stats.c -- outcome figures and the scoreboard from a fixture of case
 * documents: every figure with its count, null over nothing, the streak,
 * the achievements and their boundaries, the period filter, prevention.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "../test.h"
#include "analytics/stats.h"
#include "util/fwtime.h"

#define H FW_HOUR
#define DAY FW_DAY
/* Monday 2 March 2026 00:00 UTC. */
#define MON 1772409600000LL

static json_t *t(int64_t ms)
{
    char s[FW_TIME_MAXLEN];
    fw_time_format(ms, s);
    return json_string(s);
}

/* A resolved case: opened at `open`, resolved `dur` later by `agent`; breached: its resolution
 * clock. */
static json_t *kase(const char *id, const char *cust, const char *agent, int64_t open, int64_t dur,
                    const char *outcome, int csat, int breached)
{
    json_t *res = json_pack("{s:o, s:o}", "met_at", breached ? json_null() : t(open + dur),
                            "breached_at", breached ? t(open + dur - 1) : json_null());
    json_t *fr = json_pack("{s:o, s:o}", "met_at", t(open + 1), "breached_at", json_null());
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:{s:o, s:o}}", "id", id,
                     "customer", cust, "state", "resolved", "severity", "HIGH", "resolved_by",
                     agent, "opened_at", t(open), "resolved_at", t(open + dur), "outcome", outcome,
                     "csat", csat ? json_integer(csat) : json_null(), "sla", "first_response", fr,
                     "resolution", res);
}

static struct stats_input input(json_t *cases)
{
    struct stats_input in = {.cases = cases,
                             .outreach = json_array(),
                             .contacts = json_array(),
                             .from = INT64_MIN,
                             .to = INT64_MAX,
                             .prevention_window = 7 * DAY};
    return in;
}

static void done(struct stats_input *in)
{
    json_decref(in->cases);
    json_decref(in->outreach);
    json_decref(in->contacts);
}

static double num(json_t *o, const char *a, const char *b)
{
    return json_number_value(json_object_get(json_object_get(o, a), b));
}

static void figures_with_counts(void)
{
    json_t *cs = json_array();
    json_array_append_new(cs, kase("c1", "a", "ann", MON, 2 * H, "saved", 5, 0));
    json_array_append_new(cs, kase("c2", "b", "ann", MON + H, 4 * H, "resolved", 3, 0));
    json_array_append_new(cs, kase("c3", "c", "bob", MON + 2 * H, 30 * H, "churned", 0, 1));
    json_t *open = json_pack("{s:s, s:s, s:s}", "id", "c4", "customer", "d", "state", "open");
    json_array_append_new(cs, open);
    struct stats_input in = input(cs);
    /* c2's customer opened a ticket while it was open: not a first-contact resolution. */
    json_array_append_new(
        in.contacts, json_pack("{s:s, s:I}", "customer", "b", "at", (json_int_t)(MON + 2 * H)));
    json_t *o = stats_outcomes(&in);
    json_t *team = json_object_get(o, "team");
    ASSERT_EQ(json_integer_value(json_object_get(team, "cases_resolved")), 3);
    ASSERT_EQ(json_integer_value(json_object_get(team, "saved")), 1);
    ASSERT_EQ(num(team, "resolution_ms", "median"), 4 * H);
    ASSERT_EQ(num(team, "resolution_ms", "mean"), 12 * H);
    ASSERT_EQ(num(team, "csat", "n"), 2);
    ASSERT(num(team, "csat", "mean") == 4.0);
    json_t *sla = json_object_get(json_object_get(team, "sla"), "resolution");
    ASSERT_EQ(json_integer_value(json_object_get(sla, "n")), 3);
    ASSERT_EQ(json_integer_value(json_object_get(sla, "breached")), 1);
    ASSERT(json_real_value(json_object_get(sla, "compliance")) > 0.66 &&
           json_real_value(json_object_get(sla, "compliance")) < 0.67);
    /* No customer_contact clock in the fixture: a rate over nothing is null, with n 0. */
    json_t *cc = json_object_get(json_object_get(team, "sla"), "customer_contact");
    ASSERT_EQ(json_integer_value(json_object_get(cc, "n")), 0);
    ASSERT(json_is_null(json_object_get(cc, "compliance")));
    ASSERT_EQ(num(team, "first_contact_resolution", "resolved"), 2);
    ASSERT(json_is_null(json_object_get(json_object_get(team, "prevention"), "rate")));
    json_t *ann = json_object_get(json_object_get(o, "agents"), "ann");
    ASSERT_EQ(json_integer_value(json_object_get(ann, "cases_resolved")), 2);
    ASSERT(json_object_get(json_object_get(o, "agents"), "bob") != NULL);
    json_decref(o);
    done(&in);
}

static void period_and_prevention(void)
{
    json_t *cs = json_array();
    json_array_append_new(cs, kase("c1", "a", "ann", MON, 2 * H, "saved", 0, 0));
    json_array_append_new(cs, kase("c2", "b", "ann", MON + 8 * DAY, 2 * H, "saved", 0, 0));
    struct stats_input in = input(cs);
    in.from = MON + 7 * DAY;
    in.to = MON + 14 * DAY;
    /* Two outreaches in the period: x opened a ticket 6 days after (not prevented), y 8 days after.
     */
    json_array_append_new(
        in.outreach, json_pack("{s:s, s:I}", "customer", "x", "at", (json_int_t)(MON + 7 * DAY)));
    json_array_append_new(
        in.outreach, json_pack("{s:s, s:I}", "customer", "y", "at", (json_int_t)(MON + 7 * DAY)));
    json_array_append_new(in.outreach,
                          json_pack("{s:s, s:I}", "customer", "z", "at", (json_int_t)MON));
    json_array_append_new(
        in.contacts, json_pack("{s:s, s:I}", "customer", "x", "at", (json_int_t)(MON + 13 * DAY)));
    json_array_append_new(
        in.contacts, json_pack("{s:s, s:I}", "customer", "y", "at", (json_int_t)(MON + 15 * DAY)));
    json_t *o = stats_outcomes(&in);
    json_t *team = json_object_get(o, "team");
    ASSERT_EQ(json_integer_value(json_object_get(team, "cases_resolved")), 1);
    ASSERT_EQ(num(team, "prevention", "n"), 2);
    ASSERT_EQ(num(team, "prevention", "prevented"), 1);
    ASSERT(num(team, "prevention", "rate") == 0.5);
    json_decref(o);
    done(&in);
}

static void streak_and_achievements(void)
{
    json_t *cs = json_array();
    /* Week 1: ann resolves 3 without a breach, one of them the week's fastest. */
    json_array_append_new(cs, kase("a1", "a", "ann", MON, 1 * H, "saved", 0, 0));
    json_array_append_new(cs, kase("a2", "b", "ann", MON + DAY, 3 * H, "resolved", 0, 0));
    json_array_append_new(cs, kase("a3", "c", "ann", MON + 2 * DAY, 3 * H, "resolved", 0, 0));
    json_array_append_new(cs, kase("b1", "d", "bob", MON + 3 * DAY, 2 * H, "saved", 0, 0));
    /* Week 2: ann breaches once, then two clean resolutions: streak 2. */
    json_array_append_new(cs, kase("a4", "e", "ann", MON + 7 * DAY, 5 * H, "saved", 0, 1));
    json_array_append_new(cs, kase("a5", "f", "ann", MON + 8 * DAY, 5 * H, "saved", 0, 0));
    json_array_append_new(cs, kase("a6", "g", "ann", MON + 9 * DAY, 5 * H, "saved", 0, 0));
    /* Week 3 begins: week 2 is complete. */
    json_array_append_new(cs, kase("b2", "h", "bob", MON + 14 * DAY, 1 * H, "resolved", 0, 0));
    struct stats_input in = input(cs);
    json_t *a = stats_agent(&in, "ann");
    ASSERT_EQ(json_integer_value(json_object_get(a, "streak")), 2);
    json_t *ach = json_object_get(a, "achievements");
    const char *ids[4] = {0};
    for (size_t i = 0; i < json_array_size(ach) && i < 4; i++)
        ids[i] = json_string_value(json_object_get(json_array_get(ach, i), "id"));
    ASSERT_EQ(json_array_size(ach), 3);
    ASSERT_STREQ(ids[0], "first_save");
    ASSERT_STREQ(ids[1], "clean_week"); /* week 1; week 2 had a breach */
    ASSERT_STREQ(ids[2], "fastest_of_week");
    json_t *cw = json_array_get(ach, 1);
    ASSERT_EQ(json_integer_value(json_object_get(cw, "count")), 1);
    json_decref(a);
    /* Bob: one save, week 2 fastest is ann's 5h? No: bob resolved nothing in week 2. */
    json_t *b = stats_agent(&in, "bob");
    ASSERT_EQ(json_integer_value(json_object_get(b, "streak")), 2);
    ASSERT_EQ(json_array_size(json_object_get(b, "achievements")), 1); /* first save only */
    json_decref(b);
    json_t *board = stats_leaderboard(&in);
    json_t *rows = json_object_get(board, "leaderboard");
    ASSERT_EQ(json_array_size(rows), 2);
    ASSERT_STREQ(json_string_value(json_object_get(json_array_get(rows, 0), "agent")), "ann");
    json_decref(board);
    done(&in);
}

static void ten_saves(void)
{
    json_t *cs = json_array();
    char id[8];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "s%d", i);
        json_array_append_new(cs, kase(id, id, "cat", MON + i * H, H, "saved", 0, 0));
    }
    struct stats_input in = input(cs);
    json_t *a = stats_agent(&in, "cat");
    json_t *ach = json_object_get(a, "achievements");
    ASSERT_EQ(json_array_size(ach), 2);
    ASSERT_STREQ(json_string_value(json_object_get(json_array_get(ach, 1), "id")), "ten_saves");
    ASSERT_EQ(json_integer_value(json_object_get(json_array_get(ach, 1), "count")), 10);
    json_decref(a);
    /* Nine saves: no "ten saves". */
    json_array_remove(cs, 9);
    a = stats_agent(&in, "cat");
    ASSERT_EQ(json_array_size(json_object_get(a, "achievements")), 1);
    json_decref(a);
    done(&in);
}

/* A period with nothing resolved in it: every figure over nothing is null, n 0 (and no
 * NULL array reaches qsort, which the sanitizer build would stop on). */
static void empty_period(void)
{
    json_t *cs = json_array();
    json_array_append_new(cs, kase("c1", "a", "ann", MON, 2 * H, "saved", 5, 0));
    struct stats_input in = input(cs);
    in.from = MON + 7 * DAY;
    in.to = MON + 14 * DAY;
    json_t *o = stats_outcomes(&in);
    json_t *team = json_object_get(o, "team");
    ASSERT_EQ(json_integer_value(json_object_get(team, "cases_resolved")), 0);
    ASSERT_EQ(num(team, "resolution_ms", "n"), 0);
    ASSERT(json_is_null(json_object_get(json_object_get(team, "resolution_ms"), "median")));
    json_decref(o);
    done(&in);
}

const struct test stats_tests[] = {
    {"empty_period", empty_period},
    {"figures_with_counts", figures_with_counts},
    {"period_and_prevention", period_and_prevention},
    {"streak_and_achievements", streak_and_achievements},
    {"ten_saves", ten_saves},
    {NULL, NULL},
};
