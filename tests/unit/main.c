/*
 * main.c -- unit-test runner.  `unit-tests [FILTER]` runs every test whose
 * "module/name" contains FILTER and ends with the line "N passed, N failed".
 * The working directory is tests/unit, so fixtures are found relative to it.
 */
#include <stdio.h>
#include <string.h>

#include "test.h"
#include "util/json.h"

int test__failures;

/* Weak references: a module's table is linked only once its tests exist. */
#define TEST_MODULE(name) extern const struct test name[] __attribute__((weak));
#include "test_list.h"
#undef TEST_MODULE

int main(int argc, char **argv)
{
    fw_json_init(); /* as the binary does: the tests run on the same allocator */
    static const struct {
        const char *module;
        const struct test *tests;
    } modules[] = {
#define TEST_MODULE(name) {#name, name},
#include "test_list.h"
#undef TEST_MODULE
    };
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;
    for (size_t m = 0; m < sizeof modules / sizeof modules[0]; m++) {
        if (!modules[m].tests)
            continue;
        for (const struct test *t = modules[m].tests; t->name; t++) {
            char full[256];
            snprintf(full, sizeof full, "%.*s/%s", (int)(strlen(modules[m].module) - 6),
                     modules[m].module, t->name);
            if (filter && !strstr(full, filter))
                continue;
            test__failures = 0;
            t->fn();
            if (test__failures) {
                failed++;
                fprintf(stderr, "FAIL %s\n", full);
            } else {
                passed++;
                printf("ok   %s\n", full);
            }
        }
    }
    printf("unit tests\n%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
