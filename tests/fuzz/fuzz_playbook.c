/*
 * fuzz_playbook.c -- libFuzzer harness for playbook files
 * (src/cases/playbook.c): YAML with triggers in the rule language,
 * escalation rules, steps and customer scripts compiled as templates,
 * checked against the built-in telecom rule pack's signals.
 *
 * Invariant beyond "no crash, no sanitizer report": a refused file says
 * why in the diagnostics, naming the file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cases/playbook.h"
#include "rules/rules.h"
#include "util/buf.h"

static struct rules *pack;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!pack) {
        pack = calloc(1, sizeof *pack);
        rules_init(pack);
        if (rules_add_builtin(pack) || rules_finish(pack))
            abort();
    }
    struct playbooks p;
    playbooks_init(&p);
    int rc = playbooks_add_text(&p, "fuzz.yaml", (const char *)data, size, pack);
    if (rc && (!p.diag.len || !memmem(p.diag.data, p.diag.len, "fuzz.yaml", 9)))
        abort();
    playbooks_cleanup(&p);
    return 0;
}
