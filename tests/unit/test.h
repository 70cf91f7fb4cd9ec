/*
 * test.h -- the unit-test harness: a registration table per module and
 * assertions that print both sides (libuv's ASSERT_EQ style).
 *
 * Each module's test file defines `const struct test <module>_tests[]`,
 * terminated by {NULL, NULL}, and the runner (main.c) lists it in
 * test_list.h.  A failing assertion records the failure and returns from
 * the test function.
 */
#ifndef FW_TEST_H
#define FW_TEST_H

#include <stdio.h>
#include <string.h>

struct test {
    const char *name;
    void (*fn)(void);
};

extern int test__failures; /* failures recorded in the current test */

#define TEST__FAIL(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "    %s:%d: ", __FILE__, __LINE__);                                        \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        test__failures++;                                                                          \
        return;                                                                                    \
    } while (0)

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            TEST__FAIL("assertion failed: %s", #cond);                                             \
    } while (0)

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            TEST__FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);                                  \
    } while (0)

#define ASSERT_STREQ(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            TEST__FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",                   \
                       b_ ? b_ : "(null)");                                                        \
    } while (0)

/* Substring check, for error messages. */
#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_))                                                                \
            TEST__FAIL("%s contains %s: \"%s\" lacks \"%s\"", #hay, #needle, h_ ? h_ : "(null)",   \
                       n_);                                                                        \
    } while (0)

#endif
