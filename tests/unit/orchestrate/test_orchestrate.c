/*
 * test_orchestrate.c -- orchestrator pieces that need no engine: masking
 * phone numbers in customer text.  Decisions themselves are tested end to
 * end (tests/e2e), against the real binary.
 */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "orchestrate/orch_int.h"
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

const struct test orchestrate_tests[] = {
    {"mask_numbers", mask_numbers},
    {NULL, NULL},
};
