/*
 * fuzz_rules.c -- libFuzzer harness for rule packs: YAML text through
 * rules_add_text and rules_finish (the pack's structure, classes,
 * entities, signals, and every condition compiled with its file:line:col
 * mapped back through libyaml's scalar styles).
 *
 * Invariants beyond "no crash, no sanitizer report": a refused pack says
 * why in the diagnostics, each message names the pack (fuzz.yaml:L:C), and
 * an accepted one has compiled conditions for all of its signals.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rules r;
    rules_init(&r);
    int rc = rules_add_text(&r, "fuzz.yaml", (const char *)data, size);
    if (!rc)
        rc = rules_finish(&r);
    if (rc) {
        if (!r.diag.len || !memmem(r.diag.data, r.diag.len, "fuzz.yaml", 9))
            abort();
    } else {
        for (size_t i = 0; i < r.nsignals; i++)
            if (!r.signals[i].cond)
                abort();
    }
    rules_cleanup(&r);
    return 0;
}
