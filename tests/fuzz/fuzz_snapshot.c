/*
 * fuzz_snapshot.c -- libFuzzer harness for the engine's snapshot section
 * (src/engine/snap.c, engage__read, incidents): the bytes behind the
 * snapshot file's CRC, read by engine_restore into a fresh engine over the
 * built-in telecom pack plus a small engagement pack.
 *
 * The file's CRC-32C turns away a damaged file before this code runs, so
 * what is fuzzed here is the decoder a flipped bit that happens to keep
 * the CRC, a bug in the writer or a hand-made file would reach.
 *
 * Invariants beyond "no crash, no sanitizer report, no leak":
 *   - a refused snapshot says why;
 *   - an accepted one is a working engine: it can be snapshotted again,
 *     and that snapshot loads into a second fresh engine whose own
 *     snapshot is byte for byte the same (a fixed point after one round);
 *     the rules are kept between inputs, and remade every 1,000, so the
 *     names a snapshot interns stay bounded;
 *   - the accepted engine survives its clock moving a year on (every
 *     restored wake-up fires) and an event for a restored customer.
 *
 * Seeds: FUZZ_SNAPSHOT_SEEDS=DIR with any input writes three real
 * snapshots (an empty engine, a telecom journey with an outage and late
 * events, the same with engagement rollups of each slot width) into DIR;
 * tests/fuzz/corpus/snapshot/ was made that way.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "fuzz_events.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/wire.h"

#define T0 (20454LL * FW_DAY) /* 2026-01-01 */

static const char pack[] =
    "pack: fuzz-engagement\n"
    "engagement: {horizon_days: 31, metrics: [m1, m2], onboarding_steps: [a, b],"
    " features: [f1, f2]}\n"
    "signals:\n"
    "  - {id: FZ-1, name: fz, severity: LOW, condition: 'true'}\n";

static void on_detection(void *ctx, const struct detection *d)
{
    (void)ctx, (void)d;
}

static void on_incident(void *ctx, const struct incident *i)
{
    (void)ctx, (void)i;
}

static void on_retract(void *ctx, const struct detection *d)
{
    (void)ctx, (void)d;
}

static const struct engine_sink sink = {
    .detection = on_detection, .incident = on_incident, .retract = on_retract};

static int rules_make(struct rules *r)
{
    rules_init(r);
    if (rules_add_builtin(r) || rules_add_text(r, "fuzz.yaml", pack, strlen(pack)) ||
        rules_finish(r))
        return -1;
    return 0;
}

static void write_seed(const char *dir, const char *name, struct engine *e)
{
    struct buf b;
    buf_init(&b, 0);
    engine_snapshot(e, &b);
    fz_write_file(dir, name, &b);
    buf_cleanup(&b);
}

static void write_seeds(const char *dir)
{
    struct rules r;
    if (rules_make(&r))
        abort();
    struct engine *e = engine_new(&r, 0, &sink);
    write_seed(dir, "empty", e);
    const char *zips[] = {"94107", "94107", "10001"};
    char c[16], data[160];
    for (int i = 0; i < 3; i++) {
        snprintf(c, sizeof c, "c%d", i);
        snprintf(data, sizeof data, "{\"name\":\"N%d\",\"zip\":\"%s\",\"tier\":\"gold\"}", i,
                 zips[i]);
        fz_apply(e, &r, c, "customer.updated", T0 + i * FW_MINUTE, data);
        fz_apply(e, &r, c, "order.created", T0 + 10 * FW_MINUTE, "{\"order_id\":\"o1\"}");
        fz_apply(e, &r, c, "payment.completed", T0 + 20 * FW_MINUTE, "{\"order_id\":\"o1\"}");
        fz_apply(e, &r, c, "esim.status_changed", T0 + 30 * FW_MINUTE, "{\"status\":\"PENDING\"}");
        fz_apply(e, &r, c, "ticket.created", T0 + 40 * FW_MINUTE, "{\"ticket_id\":\"t1\"}");
    }
    fz_apply(e, &r, NULL, "outage.started", T0 + 2 * FW_HOUR,
          "{\"zips\":[\"94107\"],\"impact\":\"data\",\"eta\":\"2026-01-03T20:00:00Z\"}");
    engine_advance(e, T0 + 50 * FW_HOUR);
    /* A late event, dated before the last wake-up. */
    engine_prepare(e, T0 + 50 * FW_HOUR);
    fz_apply(e, &r, "c2", "esim.status_changed", T0 + 49 * FW_HOUR, "{\"status\":\"ACTIVE\"}");
    write_seed(dir, "telecom", e);
    /* Engagement: c0 at 8 bits, c1 widens to 12, c2 to 16-bit floats. */
    const char *extra[] = {"1", "3000", "0.5"};
    int64_t t = T0 + 51 * FW_HOUR;
    fz_apply(e, &r, "c0", "subscription.changed", t, "{\"plan\":\"p\",\"features\":[\"f1\"]}");
    fz_apply(e, &r, "c0", "feature.used", t, "{\"feature\":\"f1\"}");
    fz_apply(e, &r, "c0", "onboarding.step_completed", t, "{\"step\":\"a\"}");
    for (int i = 0; i < 3; i++) {
        snprintf(c, sizeof c, "c%d", i);
        for (int d = 0; d < 35; d++) {
            snprintf(data, sizeof data, "{\"metric\":\"m%d\",\"value\":%d}", 1 + d % 2, d * 3);
            fz_apply(e, &r, c, "usage.reported", t + d * FW_DAY, data);
        }
        snprintf(data, sizeof data, "{\"metric\":\"m1\",\"value\":%s}", extra[i]);
        fz_apply(e, &r, c, "usage.reported", t + 35 * FW_DAY, data);
    }
    write_seed(dir, "engagement", e);
    engine_free(e);
    rules_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int seeded;
    const char *seeds = getenv("FUZZ_SNAPSHOT_SEEDS");
    if (seeds && !seeded++)
        write_seeds(seeds);
    /*
     * A restore interns the snapshot's names into the rules, so they grow
     * with every input; they are built afresh every 1,000 inputs (building
     * them for each input ran at 90 inputs a second).
     */
    static struct rules r;
    static unsigned uses;
    if (uses++ % 1000 == 0) {
        if (uses > 1)
            rules_cleanup(&r);
        if (rules_make(&r))
            abort();
    }
    struct engine *e = engine_new(&r, 0, &sink);
    struct wire_rd rd;
    wire_rd_init(&rd, data, size);
    char why[256] = "";
    if (engine_restore(e, &rd, why, sizeof why)) {
        if (!why[0])
            abort();
        if (getenv("FUZZ_SNAPSHOT_VERBOSE"))
            fprintf(stderr, "refused: %s\n", why);
        engine_free(e);
        return 0;
    }
    if (getenv("FUZZ_SNAPSHOT_VERBOSE"))
        fprintf(stderr, "loaded: %zu customers, %zu wake-ups\n", engine_customer_count(e),
                engine_pending_timers(e));
    struct buf a, b;
    buf_init(&a, 0);
    buf_init(&b, 0);
    engine_snapshot(e, &a);
    struct engine *e2 = engine_new(&r, 0, &sink);
    wire_rd_init(&rd, a.data, a.len);
    if (engine_restore(e2, &rd, why, sizeof why) || rd.off != a.len)
        abort(); /* what the engine wrote, it reads back */
    engine_snapshot(e2, &b);
    if (a.len != b.len || memcmp(a.data, b.data, a.len))
        abort();
    engine_free(e2);
    /* Work with it: an event for the first customer it holds, then a year on. */
    int64_t now = engine_now(e);
    if (now > FW_TIME_NONE && now < FW_TIME_MAX - 400 * FW_DAY) {
        fz_apply(e, &r, "c0", "usage.reported", now, "{\"metric\":\"m1\",\"value\":7}");
        fz_apply(e, &r, "c1", "ticket.created", now, "{\"ticket_id\":\"t9\"}");
        engine_advance(e, now + 366 * FW_DAY);
    }
    buf_cleanup(&a);
    buf_cleanup(&b);
    engine_free(e);
    return 0;
}
