/*
 * engine_bench.c -- the engine alone: what `forewarn replay` costs once the
 * JSON is parsed, and how much memory customer state takes.
 *
 * Reads time-ordered NDJSON (the generator's output) in chunks; each chunk
 * is parsed and validated first (timed apart), then applied in time order
 * exactly as replay does (engine_prepare, engine_apply), then freed and
 * the freed memory handed back to the system (malloc_trim) so that the
 * resident size afterwards is the engine's own.  Chunks are small (1,000
 * events) by default: a parsed event takes about 2 kB, and 200,000 of them
 * freed between customers' blocks left pages partly used, which counted as
 * a few hundred bytes of "resident per customer" that replay and serve,
 * parsing one event at a time, do not have.  Prints one JSON line: parse
 * and apply seconds (thread CPU time, which the noise of a shared machine
 * disturbs less than wall time), engine events/s, and per customer: the
 * engine's own accounting (engine_state_bytes), the heap in use (malloc's
 * count, so its per-block overhead included) and the resident-size growth.
 *
 * With --compare-rules, every chunk is also applied to a second engine with
 * that pack (timed apart), to price a difference between packs (bench/run
 * uses it for incidents on and off) without parsing twice; the second
 * engine is freed before the final resident size is read.
 *
 *   engine_bench [--rules FILE] [--compare-rules FILE] [--until MS] [--chunk N] FILE.ndjson
 */
#include <jansson.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "util/wire.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "util/json.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_bytes(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * sysconf(_SC_PAGESIZE);
}

static size_t fired[2], resolved[2];

static void on_detection(void *ctx, const struct detection *d)
{
    int which = ctx != NULL;
    if (d->firing)
        fired[which]++;
    else
        resolved[which]++;
}

static int load_rules(struct rules *r, const char *path)
{
    rules_init(r);
    if (path)
        rules_add_file(r, path);
    else
        rules_add_builtin(r);
    if (rules_finish(r)) {
        fputs(r->diag.data ? r->diag.data : "engine_bench: rules failed to load\n", stderr);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    fw_json_init(); /* the parser and allocator forewarn uses */
    const char *rules_path = NULL, *cmp_path = NULL, *path = NULL;
    int64_t until = 0;
    size_t chunk = 1000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rules") && i + 1 < argc)
            rules_path = argv[++i];
        else if (!strcmp(argv[i], "--compare-rules") && i + 1 < argc)
            cmp_path = argv[++i];
        else if (!strcmp(argv[i], "--until") && i + 1 < argc)
            until = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            chunk = strtoul(argv[++i], NULL, 10);
        else
            path = argv[i];
    }
    if (!path || !chunk) {
        fprintf(stderr, "usage: engine_bench [--rules FILE] [--compare-rules FILE] [--until MS] "
                        "[--chunk N] FILE.ndjson\n");
        return 2;
    }
    struct rules r, rc;
    if (load_rules(&r, rules_path) || (cmp_path && load_rules(&rc, cmp_path)))
        return 1;
    FILE *in = fopen(path, "r");
    if (!in) {
        perror(path);
        return 1;
    }
    struct ingest_globals globals = {.ctx = &r, .is_global = rules_is_global};
    struct ingest_limits lim = ingest_default_limits;
    struct event *evs = calloc(chunk, sizeof *evs);
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t len;
    double parse_cpu = 0, apply_cpu = 0, apply_wall = 0, cmp_cpu = 0;
    malloc_trim(0);
    long rss_base = rss_bytes();
    size_t heap_base = mallinfo2().uordblks;
    struct engine_sink sink = {.detection = on_detection};
    struct engine_sink cmp_sink = {.ctx = &rc, .detection = on_detection};
    struct engine *e = NULL, *ec = NULL;
    for (int eof = 0; !eof;) {
        size_t n = 0;
        double t0 = cpu_now();
        while (n < chunk && (len = getline(&line, &cap, in)) > 0) {
            json_error_t jerr;
            json_t *j = fw_json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
            struct ingest_error ierr;
            if (!j || ingest_validate(j, &lim, &globals, &evs[n], &ierr)) {
                fprintf(stderr, "engine_bench: line %zu is not a valid event\n", total + n + 1);
                return 1;
            }
            json_decref(j);
            n++;
        }
        eof = n < chunk;
        parse_cpu += cpu_now() - t0;
        if (!e && n) {
            e = engine_new(&r, evs[0].time, &sink);
            if (cmp_path)
                ec = engine_new(&rc, evs[0].time, &cmp_sink);
        }
        double w0 = wall_now();
        t0 = cpu_now();
        for (size_t i = 0; i < n; i++) {
            engine_prepare(e, evs[i].time);
            engine_apply(e, &evs[i]);
        }
        apply_cpu += cpu_now() - t0;
        apply_wall += wall_now() - w0;
        if (ec) {
            t0 = cpu_now();
            for (size_t i = 0; i < n; i++) {
                engine_prepare(ec, evs[i].time);
                engine_apply(ec, &evs[i]);
            }
            cmp_cpu += cpu_now() - t0;
        }
        for (size_t i = 0; i < n; i++)
            event_cleanup(&evs[i]);
        total += n;
    }
    if (!e) {
        fprintf(stderr, "engine_bench: no events\n");
        return 1;
    }
    double t0 = cpu_now();
    if (until)
        engine_advance(e, until);
    apply_cpu += cpu_now() - t0;
    size_t cmp_state = 0, cmp_customers = 0;
    if (ec) {
        t0 = cpu_now();
        if (until)
            engine_advance(ec, until);
        cmp_cpu += cpu_now() - t0;
        cmp_state = engine_state_bytes(ec);
        cmp_customers = engine_customer_count(ec);
        engine_free(ec);
        rules_cleanup(&rc);
    }
    free(line);
    free(evs);
    fclose(in);
    malloc_trim(0);
    long rss_end = rss_bytes();
    size_t heap_end = mallinfo2().uordblks;
    size_t customers = engine_customer_count(e);
    size_t state = engine_state_bytes(e);
    printf("{\"events\":%zu,\"customers\":%zu,\"parse_cpu_s\":%.3f,\"apply_cpu_s\":%.3f,"
           "\"apply_wall_s\":%.3f,\"parse_ns_per_event\":%.0f,\"apply_ns_per_event\":%.0f,"
           "\"engine_events_per_s\":%.0f,\"firing\":%zu,\"resolved\":%zu,\"pending_timers\":%zu,"
           "\"state_bytes\":%zu,\"state_bytes_per_customer\":%.0f,\"rss_base\":%ld,\"rss_end\":%ld,"
           "\"rss_bytes_per_customer\":%.0f,\"heap_bytes_per_customer\":%.0f,\"chunk\":%zu",
           total, customers, parse_cpu, apply_cpu, apply_wall, parse_cpu * 1e9 / (double)total,
           apply_cpu * 1e9 / (double)total, (double)total / apply_cpu, fired[0], resolved[0],
           engine_pending_timers(e), state, customers ? (double)state / (double)customers : 0.0,
           rss_base, rss_end,
           customers ? (double)(rss_end - rss_base) / (double)customers : 0.0,
           customers ? ((double)heap_end - (double)heap_base) / (double)customers : 0.0, chunk);
    if (cmp_path)
        printf(",\"compare_apply_cpu_s\":%.3f,\"compare_apply_ns_per_event\":%.0f,"
               "\"compare_firing\":%zu,\"compare_state_bytes_per_customer\":%.0f",
               cmp_cpu, cmp_cpu * 1e9 / (double)total, fired[1],
               cmp_customers ? (double)cmp_state / (double)cmp_customers : 0.0);
    /* The snapshot restart loads (src/engine/snap.c): its size, the time to write and to load it. */
    struct buf snap;
    buf_init(&snap, 0);
    double s0 = wall_now();
    engine_snapshot(e, &snap);
    double s1 = wall_now();
    struct engine *back = engine_new(&r, 0, NULL);
    struct wire_rd rd;
    wire_rd_init(&rd, snap.data, snap.len);
    char why[256];
    int lrc = engine_restore(back, &rd, why, sizeof why);
    double s2 = wall_now();
    uint32_t crc = crc32c(0, snap.data, snap.len);
    double s3 = wall_now();
    printf(",\"snapshot_bytes\":%zu,\"snapshot_bytes_per_customer\":%.0f,"
           "\"snapshot_write_s\":%.3f,\"snapshot_load_s\":%.3f,\"snapshot_crc_s\":%.3f,"
           "\"snapshot_loaded\":%s,\"snapshot_same_customers\":%s,\"snapshot_crc\":%u",
           snap.len, customers ? (double)snap.len / (double)customers : 0.0, s1 - s0, s2 - s1,
           s3 - s2, lrc ? "false" : "true",
           engine_customer_count(back) == customers &&
                   engine_pending_timers(back) == engine_pending_timers(e)
               ? "true"
               : "false",
           crc);
    engine_free(back);
    buf_cleanup(&snap);
    printf("}\n");
    engine_free(e);
    rules_cleanup(&r);
    return 0;
}
