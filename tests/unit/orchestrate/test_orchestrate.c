/*
 * test_orchestrate.c -- orchestrator pieces that need no engine: masking
 * phone numbers in customer text.  Decisions themselves are tested end to
 * end (tests/e2e), against the real binary.
 */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/util.h"

/*
 * Other people's numbers are starred but for their last four digits; the
 * customer's own, ids, amounts and dates stay; runs are found wherever they
 * start, also after long stretches of words and at either end of the text.
 */
static void mask_numbers(void)
{
    struct orch_config cfg;
    orch_config_init(&cfg);
    struct orch *o = orch_new(&cfg, NULL, NULL);
    static const struct {
        const char *in, *own, *out;
    } cases[] = {
        {"Call 415-555-0199 now", NULL, "Call ***-***-0199 now"},
        {"415-555-0199", NULL, "***-***-0199"},
        {"(415) 555 0199.", NULL, "(***) *** 0199."},
        {"+1 415.555.0199 or +44 20 7946 0958", NULL, "+* ***.***.0199 or +** ** **** 0958"},
        {"Your number 415-555-0199 is fine", "+14155550199", "Your number 415-555-0199 is fine"},
        {"order 12345678, ticket #4155550199, on 2026-03-02 at 9:14", NULL,
         "order 12345678, ticket #4155550199, on 2026-03-02 at 9:14"},
        {"on 2026-03-02 415-555-0199", NULL, "on 2026-03-02 ***-***-0199"},
        {"a+1 415 555 0199 b(415) 555-0199", NULL, "a+1 *** *** 0199 b(415) 555-0199"},
        {"no digits at all, (just) words + signs", NULL, "no digits at all, (just) words + signs"},
        {"", NULL, ""},
        {"+", NULL, "+"},
        {"(", NULL, "("},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *m = orch__mask_numbers(o, cases[i].in, cases[i].own);
        ASSERT_STREQ(m, cases[i].out);
        free(m);
    }
    /* A number after a long run of words, and one at the very end. */
    char text[3000];
    memset(text, 'w', 2000);
    strcpy(text + 2000, " 415-555-0199");
    char *m = orch__mask_numbers(o, text, NULL);
    ASSERT_STREQ(m + 2000, " ***-***-0199");
    ASSERT_EQ(strspn(m, "w"), (size_t)2000);
    free(m);
    orch_free(o);
    orch_config_cleanup(&cfg);
}

/* The quiet window's end as glibc's localtime (orch__local_minutes) alone computes it. */
static int64_t quiet_until_glibc(int64_t t, const char *tz, int start, int end)
{
    int m;
    if (start == end || orch__local_minutes(t, tz, &m))
        return FW_TIME_NONE;
    int inside = start < end ? (m >= start && m < end) : (m >= start || m < end);
    if (!inside)
        return FW_TIME_NONE;
    return t - (t % 60000) + (int64_t)((end - m + 1440) % 1440) * 60000;
}

/*
 * Quiet hours converted with util/tz agree with glibc's TZ conversion, minute
 * by minute around DST changes (whole, half-hour and 30-minute DST zones),
 * before 1970, past the zones' last transitions (footer rules), and for
 * names either refuses.
 */
static void quiet_hours_zones(void)
{
    static const char *const zones[] = {"UTC",
                                        "Etc/UTC",
                                        "America/New_York",
                                        "Europe/London",
                                        "Asia/Kolkata",
                                        "Australia/Lord_Howe",
                                        "Pacific/Chatham",
                                        "America/Sao_Paulo",
                                        "Mars/Olympus",
                                        "",
                                        "../etc/passwd",
                                        "America/New York"};
    static const int64_t starts[] = {
        1772668800000,     /* 2026-03-05: the US change on the 8th */
        1774396800000,     /* 2026-03-25: the EU change, Lord Howe's and Chatham's ends (Apr 5) */
        1790294400000,     /* 2026-09-25: Chatham's (Sep 27) and Lord Howe's (Oct 4) starts */
        -86400000LL * 400, /* 1968 */
        4102444800000,     /* 2100: the footer rules */
    };
    struct orch_config cfg;
    orch_config_init(&cfg);
    struct orch *o = orch_new(&cfg, NULL, NULL);
    size_t checked = 0, inside = 0;
    for (size_t z = 0; z < ARRAY_SIZE(zones); z++)
        for (size_t s = 0; s < ARRAY_SIZE(starts); s++)
            for (int64_t t = starts[s]; t < starts[s] + 12 * 86400000LL; t += 17 * 60000 + 4321) {
                int64_t a = orch__quiet_until(o, t, zones[z], 21 * 60, 8 * 60);
                int64_t b = quiet_until_glibc(t, zones[z], 21 * 60, 8 * 60);
                if (a != b)
                    fprintf(stderr, "    %s at %lld\n", zones[z], (long long)t);
                ASSERT_EQ(a, b);
                ASSERT_EQ(orch__quiet_until(o, t, zones[z], 9 * 60 + 30, 17 * 60),
                          quiet_until_glibc(t, zones[z], 9 * 60 + 30, 17 * 60));
                checked++;
                inside += a != FW_TIME_NONE;
            }
    ASSERT(checked > 50000);
    ASSERT(inside > checked / 4); /* most zones answer, and a window covers 11 hours of 24 */
    orch_free(o);
    orch_config_cleanup(&cfg);
}

/*
 * Guardrail lines are written as text: the same bytes fw_json_dumps gives
 * for the objects they were, and an element whose result is not UTF-8 is
 * left out, as json_pack refused it.
 */
static void guard_text(void)
{
    static const char *const results[] = {
        "pass",
        "held until 2026-03-01T08:00:00Z (quiet hours 21:00-08:00 America/New_York)",
        "a \"quoted\" back\\slash",
        "tab\tnew\nline\x01\x1f\x7f",
        "caf\xc3\xa9 \xe2\x80\x94 ok",
        ""};
    struct buf g;
    buf_init(&g, 0);
    json_t *want = json_array();
    for (size_t i = 0; i < ARRAY_SIZE(results); i++) {
        orch__guard(&g, i % 2 ? "quiet_hours" : "opt_out", results[i]);
        json_t *o = json_object();
        json_object_set_new(o, "guardrail", json_string(i % 2 ? "quiet_hours" : "opt_out"));
        json_object_set_new(o, "result", json_string(results[i]));
        json_array_append_new(want, o);
        orch__guard(&g, "dedup", "\xc3\x28 not UTF-8"); /* left out */
    }
    char *w = fw_json_dumps(want);
    struct buf got;
    buf_init(&got, 0);
    buf_putc(&got, '[');
    buf_append(&got, g.data, g.len);
    buf_putc(&got, ']');
    ASSERT_STREQ(got.data, w);
    free(w);
    json_decref(want);
    buf_reset(&g);
    /* orch__jset_str stands for json_pack's "s?": a NULL value is a JSON null, not left out
       (the chatbot's customer_email for a customer without an email address). */
    json_t *o = json_object();
    orch__jset_str(o, "customer_email", NULL);
    orch__jset_str(o, "signal", "SIG-001");
    orch__jset_lit(o, "status", "open");
    json_t *p = json_pack("{s:s?, s:s, s:s}", "customer_email", NULL, "signal", "SIG-001", "status",
                          "open");
    char *a = fw_json_dumps(o), *b = fw_json_dumps(p);
    ASSERT_STREQ(a, b);
    ASSERT_STREQ(a, "{\"customer_email\":null,\"signal\":\"SIG-001\",\"status\":\"open\"}");
    free(a);
    free(b);
    json_decref(o);
    json_decref(p);
    ASSERT_EQ(orch__json_str(&g, "\xff"), -1);
    ASSERT_EQ(g.len, (size_t)0);
    orch__guard(&g, "dedup", "\xff");
    ASSERT_EQ(g.len, (size_t)0); /* the first element left out leaves no comma either */
    buf_cleanup(&g);
    buf_cleanup(&got);
}

const struct test orchestrate_tests[] = {
    {"guard_text", guard_text},
    {"mask_numbers", mask_numbers},
    {"quiet_hours_zones", quiet_hours_zones},
    {NULL, NULL},
};
