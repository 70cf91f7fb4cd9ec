/*
 * fuzz_ingest.c -- libFuzzer harness for event bodies as POST /v1/events
 * and replay read them: one CloudEvents object, a JSON array or NDJSON,
 * through ingest_parse (shape detection, util/json.c's decoder, validation,
 * limits).
 *
 * Invariants beyond "no crash, no sanitizer report":
 *   - all or nothing: success has no errors (and events, unless the body
 *     is an empty array), failure errors and no events, at most
 *     INGEST_MAX_ERRORS + 1 of them;
 *   - every accepted event has id, type, a data object, and a subject
 *     unless its type is global;
 *   - ingest_time_order is a permutation in non-decreasing time;
 *   - util/json.c's fw_json_loadb accepts exactly what jansson's
 *     json_loadb accepts, with equal values (its documented contract).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "util/json.h"

static int is_global(void *ctx, const char *type)
{
    (void)ctx;
    return !strcmp(type, "outage.started") || !strcmp(type, "outage.resolved");
}

static void differential(const char *in, size_t n)
{
    static const size_t flagsets[] = {JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK,
                                      JSON_REJECT_DUPLICATES};
    for (size_t i = 0; i < sizeof flagsets / sizeof *flagsets; i++) {
        json_error_t e1, e2;
        json_t *a = fw_json_loadb(in, n, flagsets[i], &e1);
        json_t *b = json_loadb(in, n, flagsets[i], &e2);
        if (!a != !b)
            abort();
        if (a && !json_equal(a, b))
            abort();
        if (a && e1.position != e2.position)
            abort(); /* both stop at the same place */
        json_decref(a);
        json_decref(b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        fw_json_init();
        init = 1;
    }
    const char *in = (const char *)data;
    struct ingest_globals g = {.ctx = NULL, .is_global = is_global};
    struct ingest_batch b;
    int rc = ingest_parse(in, size, NULL, &g, &b);
    if (rc == 0) {
        /* Only an array may hold no event at all ("[]" is an empty batch); a BOM may lead. */
        size_t k = size >= 3 && !memcmp(in, "\xEF\xBB\xBF", 3) ? 3 : 0;
        while (k < size && (in[k] == ' ' || in[k] == '\t' || in[k] == '\n' || in[k] == '\r'))
            k++;
        if ((b.n == 0 && (k == size || in[k] != '[')) || b.nerrors)
            abort();
        for (size_t i = 0; i < b.n; i++) {
            const struct event *e = &b.events[i];
            if (!e->id || !e->type || !json_is_object(e->data))
                abort();
            if (!e->subject && !is_global(NULL, e->type))
                abort();
        }
        size_t *ord = ingest_time_order(&b);
        char *seen = calloc(b.n, 1);
        for (size_t i = 0; i < b.n; i++) {
            if (ord[i] >= b.n || seen[ord[i]])
                abort();
            seen[ord[i]] = 1;
            if (i && b.events[ord[i]].time < b.events[ord[i - 1]].time)
                abort();
        }
        free(seen);
        free(ord);
    } else {
        if (b.n || !b.nerrors || b.nerrors > INGEST_MAX_ERRORS + 1)
            abort();
    }
    ingest_batch_cleanup(&b);
    differential(in, size);
    return 0;
}
