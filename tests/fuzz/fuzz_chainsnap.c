/*
 * fuzz_chainsnap.c -- libFuzzer harness for a whole snapshot body: the
 * engine's section, the outreach flag, the orchestrator's section
 * (src/orchestrate/snap.c) and the cases' section (cases_restore), read in
 * the order the pipeline reads them (pipeline.c, snapshot_load_one) into a
 * fresh chain engine -> orchestrator -> cases over the built-in telecom
 * pack, templates and SLA policies.
 *
 * fuzz_snapshot covers the engine's section alone; this one reaches the
 * other two, which a flipped bit that keeps the file's CRC, a writer bug or
 * a hand-made file would reach the same way.
 *
 * Invariants beyond "no crash, no sanitizer report, no leak":
 *   - a refused body says why;
 *   - an accepted one is a working chain: snapshotted again, that body
 *     loads into a second fresh chain whose own snapshot is byte for byte
 *     the same; and the first chain survives its clock moving a year on
 *     (every restored wake-up, ladder step and SLA clock fires, deciding
 *     and rendering what they call for) and a new event for a customer.
 *
 * Seeds: FUZZ_CHAINSNAP_SEEDS=DIR with any input writes real bodies (an
 * empty chain; a telecom journey with detections, messages, an outage and
 * open cases; the same two days later with ladders and clocks moved on)
 * into DIR; tests/fuzz/corpus/chainsnap/ was made that way.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases/cases.h"
#include "comms/comms.h"
#include "engine/engine.h"
#include "fuzz_events.h"
#include "ingest/ingest.h"
#include "orchestrate/orchestrate.h"
#include "rules/rules.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/wire.h"

#define T0 (20454LL * FW_DAY) /* 2026-01-01 */

struct chain {
    struct engine *e;
    struct orch *o;
    struct cases *c;
};

static struct rules rules;
static struct comms *templates;
static struct orch_config ocfg;
static struct cases_config ccfg;

static void on_detection(void *ctx, const struct detection *d)
{
    (void)ctx, (void)d;
}

static void on_incident(void *ctx, const struct incident *i)
{
    (void)ctx, (void)i;
}

static void on_message(void *ctx, const struct outbox_msg *m)
{
    (void)ctx, (void)m;
}

static void on_line(void *ctx, const char *id, int64_t at, const char *event, const char *json,
                    size_t len)
{
    (void)ctx, (void)id, (void)at, (void)event, (void)json, (void)len;
}

static void setup(void)
{
    rules_init(&rules);
    if (rules_add_builtin(&rules) || rules_finish(&rules))
        abort();
    cases_require(&rules);
    struct buf diag;
    buf_init(&diag, 0);
    if (comms_load(NULL, &templates, &diag))
        abort();
    buf_cleanup(&diag);
    orch_config_init(&ocfg);
    cases_config_init(&ccfg);
}

static void chain_make(struct chain *ch)
{
    struct engine_sink sink = {.detection = on_detection, .incident = on_incident};
    struct orch_sink os = {.message = on_message};
    struct case_sink cks = {.line = on_line, .notice = on_message};
    struct buf diag;
    buf_init(&diag, 0);
    ch->c = cases_new(&ccfg, &cks, &diag);
    if (!ch->c)
        abort();
    buf_cleanup(&diag);
    sink = cases_engine_sink(ch->c, &sink);
    os = cases_orch_sink(ch->c, &os);
    ch->o = orch_new(&ocfg, templates, &os);
    sink = orch_engine_sink(ch->o, &sink);
    ch->e = engine_new(&rules, 0, &sink);
    orch_bind(ch->o, ch->e);
    cases_bind(ch->c, ch->e);
}

static void chain_free(struct chain *ch)
{
    orch_free(ch->o); /* both cancel their engine timers: before the engine goes */
    cases_free(ch->c);
    engine_free(ch->e);
}

/* The body as the pipeline writes it (pipeline.c, snapshot_write). */
static void chain_snapshot(struct chain *ch, struct buf *out)
{
    engine_snapshot(ch->e, out);
    wire_put_u8(out, 1);
    orch_snapshot(ch->o, out);
    cases_snapshot(ch->c, out);
    engine_snapshot_end(ch->e);
}

/* As snapshot_load_one reads it: 0, or -1 with why filled in. */
static int chain_restore(struct chain *ch, const uint8_t *data, size_t size, char *why, size_t n)
{
    struct wire_rd in;
    wire_rd_init(&in, data, size);
    if (engine_restore(ch->e, &in, why, n))
        return -1;
    if (wire_get_u8(&in) != 1) {
        snprintf(why, n, "it was written with outreach off");
        return -1;
    }
    if (orch_restore(ch->o, &in, why, n) || cases_restore(ch->c, &in, why, n))
        return -1;
    if (in.off != in.n) {
        snprintf(why, n, "bytes left over after the cases' state");
        return -1;
    }
    engine_restore_end(ch->e, 1);
    return 0;
}

static void write_seed(const char *dir, const char *name, struct chain *ch)
{
    struct buf b;
    buf_init(&b, 0);
    chain_snapshot(ch, &b);
    fz_write_file(dir, name, &b);
    buf_cleanup(&b);
}

static void write_seeds(const char *dir)
{
    struct chain ch;
    chain_make(&ch);
    write_seed(dir, "empty", &ch);
    const char *zips[] = {"94107", "94107", "10001", "60601"};
    char c[32], data[200];
    for (int i = 0; i < 4; i++) {
        snprintf(c, sizeof c, "c%d@example.com", i);
        snprintf(data, sizeof data,
                 "{\"name\":\"N%d\",\"email\":\"%s\",\"phone\":\"+1555010%d\",\"zip\":\"%s\","
                 "\"carrier\":\"Verizon\"}",
                 i, c, i, zips[i]);
        fz_apply(ch.e, &rules, c, "customer.updated", T0 + i * FW_MINUTE, data);
        fz_apply(ch.e, &rules, c, "order.created", T0 + 10 * FW_MINUTE, "{\"order_id\":\"o1\"}");
        fz_apply(ch.e, &rules, c, "payment.completed", T0 + 20 * FW_MINUTE,
              "{\"order_id\":\"o1\",\"amount\":45}");
        fz_apply(ch.e, &rules, c, "esim.status_changed", T0 + 30 * FW_MINUTE,
              i == 3 ? "{\"order_id\":\"o1\",\"status\":\"FAILED\"}"
                     : "{\"order_id\":\"o1\",\"status\":\"PENDING\"}");
        fz_apply(ch.e, &rules, c, "chat.escalated", T0 + 40 * FW_MINUTE,
              "{\"conversation_id\":\"m1\",\"topic\":\"esim\",\"summary\":\"help\"}");
    }
    fz_apply(ch.e, &rules, NULL, "outage.started", T0 + 2 * FW_HOUR,
          "{\"outage_id\":\"x1\",\"zips\":[\"94107\"],\"impact\":\"data\",\"eta\":\"unknown\"}");
    fz_apply(ch.e, &rules, "c2@example.com", "ticket.created", T0 + 3 * FW_HOUR,
          "{\"ticket_id\":\"z1\",\"subject\":\"no data\"}");
    engine_advance(ch.e, T0 + 50 * FW_HOUR);
    write_seed(dir, "telecom", &ch);
    fz_apply(ch.e, &rules, NULL, "outage.resolved", T0 + 51 * FW_HOUR, "{\"outage_id\":\"x1\"}");
    fz_apply(ch.e, &rules, "c2@example.com", "ticket.resolved", T0 + 52 * FW_HOUR,
          "{\"ticket_id\":\"z1\",\"severity\":\"low\",\"resolution\":\"ok\"}");
    engine_advance(ch.e, T0 + 98 * FW_HOUR);
    write_seed(dir, "later", &ch);
    chain_free(&ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready++) {
        setup();
        const char *seeds = getenv("FUZZ_CHAINSNAP_SEEDS");
        if (seeds)
            write_seeds(seeds);
    }
    struct chain a;
    chain_make(&a);
    char why[256] = "";
    if (chain_restore(&a, data, size, why, sizeof why)) {
        if (!why[0])
            abort();
        if (getenv("FUZZ_CHAINSNAP_VERBOSE"))
            fprintf(stderr, "refused: %s\n", why);
        chain_free(&a);
        return 0;
    }
    if (getenv("FUZZ_CHAINSNAP_VERBOSE"))
        fprintf(stderr, "loaded: %zu customers, %zu wake-ups and timers\n",
                engine_customer_count(a.e), engine_pending_timers(a.e));
    struct buf s1, s2;
    buf_init(&s1, 0);
    buf_init(&s2, 0);
    chain_snapshot(&a, &s1);
    struct chain b;
    chain_make(&b);
    if (chain_restore(&b, (const uint8_t *)s1.data, s1.len, why, sizeof why))
        abort(); /* what the chain wrote, it reads back */
    chain_snapshot(&b, &s2);
    if (s1.len != s2.len || memcmp(s1.data, s2.data, s1.len))
        abort();
    chain_free(&b);
    /* Work with it: an event for a customer, then a year on. */
    int64_t now = engine_now(a.e);
    if (now > FW_TIME_NONE && now < FW_TIME_MAX - 400 * FW_DAY) {
        fz_apply(a.e, &rules, "c1@example.com", "ticket.created", now,
              "{\"ticket_id\":\"z9\",\"subject\":\"still no data\"}");
        engine_advance(a.e, now + 366 * FW_DAY);
    }
    buf_cleanup(&s1);
    buf_cleanup(&s2);
    chain_free(&a);
    return 0;
}
