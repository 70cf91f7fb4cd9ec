/*
 * engage_bench.c -- bytes per customer of the engagement record: every
 * customer reports five metrics every day for the whole horizon (90 days
 * by default) through the real engine with rules/engagement.yaml, and the
 * engine's own accounting (engine_state_bytes) is read before and after.
 *
 *     engage_bench [--rules rules/engagement.yaml] [--customers N]
 *
 * Prints one JSON object: customers, days, metrics, events, bytes per
 * customer with and without the usage reports (the same customers, their
 * profile and subscription only), the difference (the rollups), and the
 * apply time per event.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "util/fwtime.h"

#define DAY0 (20454LL * FW_DAY) /* 2026-01-01 */

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void apply(struct engine *e, const char *type, const char *subject, int64_t t, json_t *data)
{
    struct event ev = {.id = "x", .type = (char *)type, .subject = (char *)subject, .time = t,
                       .source = "/bench", .data = data};
    engine_prepare(e, t);
    engine_apply(e, &ev);
    json_decref(data);
}

/* Run `n` customers for `days` days; returns engine_state_bytes, and the apply CPU time. */
static size_t run(struct rules *r, int n, int days, int usage, double *cpu, long *events)
{
    static const char *metrics[] = {"data_mb", "app_logins", "minutes", "portal_logins",
                                    "documents_viewed"};
    struct engine *e = engine_new(r, DAY0, NULL);
    char subj[64];
    *events = 0;
    double t0 = cpu_s();
    for (int c = 0; c < n; c++) {
        snprintf(subj, sizeof subj, "c%07d@example.com", c);
        apply(e, "customer.updated", subj, DAY0, json_pack("{s:s, s:s}", "name", "Ann", "email", subj));
        apply(e, "subscription.changed", subj, DAY0,
              json_pack("{s:s, s:[s, s]}", "plan", "Unlimited", "features", "hotspot", "wifi_calling"));
        *events += 2;
    }
    for (int d = 0; usage && d < days; d++)
        for (int c = 0; c < n; c++) {
            snprintf(subj, sizeof subj, "c%07d@example.com", c);
            for (int m = 0; m < 5; m++) {
                apply(e, "usage.reported", subj, DAY0 + d * FW_DAY + 12 * FW_HOUR,
                      json_pack("{s:s, s:i}", "metric", metrics[m], "value", 100 + (c + d * 7 + m) % 900));
                ++*events;
            }
        }
    *cpu = cpu_s() - t0;
    size_t bytes = engine_state_bytes(e);
    engine_free(e);
    return bytes;
}

int main(int argc, char **argv)
{
    const char *pack = "rules/engagement.yaml";
    int n = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rules"))
            pack = argv[i + 1];
        else if (!strcmp(argv[i], "--customers"))
            n = atoi(argv[i + 1]);
    }
    struct rules r;
    rules_init(&r);
    rules_add_file(&r, pack);
    if (rules_finish(&r) || n <= 0) {
        fputs(r.diag.data ? r.diag.data : "engage_bench: bad arguments\n", stderr);
        return 1;
    }
    int days = r.horizon_days;
    double cpu_with, cpu_without;
    long ev_with, ev_without;
    size_t with = run(&r, n, days, 1, &cpu_with, &ev_with);
    size_t without = run(&r, n, days, 0, &cpu_without, &ev_without);
    printf("{\"customers\":%d,\"days\":%d,\"metrics\":5,\"events\":%ld,"
           "\"state_bytes_per_customer\":%.1f,\"state_bytes_per_customer_without_usage\":%.1f,"
           "\"rollup_bytes_per_customer\":%.1f,\"apply_ns_per_event\":%.0f}\n",
           n, days, ev_with, (double)with / n, (double)without / n, (double)(with - without) / n,
           cpu_with / ev_with * 1e9);
    rules_cleanup(&r);
    return 0;
}
