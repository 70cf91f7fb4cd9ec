/*
 * fuzz_parts.c -- differential libFuzzer harness for replay's partitions
 * (src/replay/parts.c, DESIGN.md section 5): the input is decoded into a
 * stream of telecom events over eight customers, in time order with many
 * events at the same millisecond (so wake-ups fall due together across
 * partitions), outages (global events) and customer updates that move the
 * incidents' common factors.  The stream is applied by one engine and by
 * 2, 3 or 4 partitions merged; the detection and incident lines must be
 * byte for byte the same, and so must the counts of events, customers and
 * pending wake-ups.  With messages (half the inputs) each side also
 * decides messages (an orchestrator per partition, incident alerts from
 * the merger) and their lines must match too; with cases as well (half of
 * those), each side keeps cases with the built-in playbooks (a case per
 * partition, incidents attached by the merger) and the case and SLA lines
 * must match.  A difference aborts with both outputs on stderr.
 *
 * Input: byte 0 picks the partitions, messages (bit 1) and the end
 * (--until: none, or hours after the last event); then 4 bytes per event: customer and
 * kind, the step of the clock (0 most often: a tie), and two bytes that
 * pick values; 2 or 3 bytes left over after the events turn cases on (with
 * messages).  Rules: the built-in telecom pack, one copy per engine (an
 * engine interns into its rules) with the built-in playbooks compiled
 * against it, kept between inputs.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases/cases.h"
#include "cases/playbook.h"
#include "comms/comms.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "orchestrate/orchestrate.h"
#include "replay/parts.h"
#include "rules/rules.h"
#include "util/buf.h"
#include "util/fwtime.h"

#define T0 (20454LL * FW_DAY) /* 2026-01-01 */
#define MAX_EVENTS 512
#define MAX_PARTS 4

static struct rules *R[MAX_PARTS + 2]; /* [0] the merger's, [1..] partitions', last: one engine's */
static struct comms *TPL;              /* the built-in templates */
static struct orch_config OCFG;        /* the defaults */
static struct playbooks PB[MAX_PARTS + 2]; /* the built-in playbooks, against R[i] */
static const struct playbooks *PBP[MAX_PARTS];
static struct cases_config CCFG;           /* the defaults */

static struct rules *rules_make(void)
{
    struct rules *r = calloc(1, sizeof *r);
    rules_init(r);
    rules_add_builtin(r);
    if (rules_finish(r))
        abort();
    return r;
}

struct out {
    struct buf lines;
};

static void on_detection(void *ctx, const struct detection *d)
{
    struct out *o = ctx;
    detection_json(d, &o->lines);
    buf_putc(&o->lines, '\n');
}

static void on_incident(void *ctx, const struct incident *i)
{
    struct out *o = ctx;
    incident_json(i, 0, &o->lines);
    buf_putc(&o->lines, '\n');
}

static void on_message(void *ctx, const struct outbox_msg *m)
{
    struct out *o = ctx;
    orch_message_json(m, &o->lines);
    buf_putc(&o->lines, '\n');
}

static void on_case_line(void *ctx, const char *id, int64_t at, const char *event, const char *json,
                         size_t len)
{
    (void)id, (void)at, (void)event;
    struct out *o = ctx;
    buf_append(&o->lines, json, len);
    buf_putc(&o->lines, '\n');
}

static void on_line(void *ctx, const char *json, size_t n)
{
    struct out *o = ctx;
    buf_append(&o->lines, json, n);
    buf_putc(&o->lines, '\n');
}

/* The decoded stream: JSON events, made into struct events by whoever applies them. */
struct stream {
    json_t *ev[MAX_EVENTS];
    size_t n, next;
};

static const char *const zips[] = {"10001", "10002", "94105"};
static const char *const carriers[] = {"Verizon", "AT&T", "T-Mobile"};
static const char *const esim[] = {"PENDING", "FAILED", "INSTALLED", "ERROR", "ACTIVE"};
static const char *const portin[] = {"SUBMITTED", "REJECTED", "COMPLETED"};

static json_t *make_event(unsigned k, const char *c, int64_t t, unsigned a, unsigned b)
{
    char ts[FW_TIME_MAXLEN], id[32], oid[40], tid[16];
    static unsigned seq;
    fw_time_format(t, ts);
    snprintf(id, sizeof id, "p%u", ++seq);
    snprintf(oid, sizeof oid, "o-%s", c);
    snprintf(tid, sizeof tid, "z%u", a % 4);
    json_t *data;
    const char *type;
    switch (k % 14) {
    case 0:
        type = "customer.updated";
        data = json_pack("{s:s, s:s, s:s}", "zip", zips[a % 3], "carrier", carriers[b % 3], "plan",
                         a & 8 ? "Plus" : "Basic");
        break;
    case 1:
        type = "order.created", data = json_pack("{s:s}", "order_id", oid);
        break;
    case 2:
        type = "order.status_changed";
        data =
            json_pack("{s:s, s:s}", "order_id", oid, "status", a & 1 ? "COMPLETED" : "PROCESSING");
        break;
    case 3:
        type = "payment.completed", data = json_pack("{s:s, s:i}", "order_id", oid, "amount", 45);
        break;
    case 4:
        type = "payment.failed";
        data = json_pack("{s:s, s:s}", "order_id", oid, "reason", "card_declined");
        break;
    case 5:
    case 6:
        type = "esim.status_changed";
        data = json_pack("{s:s, s:s, s:s}", "order_id", oid, "individual_id", "i", "status",
                         esim[a % 5]);
        break;
    case 7:
        type = "activation.completed", data = json_pack("{s:s}", "order_id", oid);
        break;
    case 8:
        type = "portin.status_changed";
        data = json_pack("{s:s, s:s, s:s}", "carrier", carriers[b % 3], "status", portin[a % 3],
                         "response", b & 4 ? "FAILED" : "");
        break;
    case 9:
        type = "chat.started";
        data = json_pack("{s:s, s:s}", "conversation_id", tid, "topic", "esim");
        break;
    case 10:
        type = "chat.escalated";
        data = json_pack("{s:s, s:s, s:s}", "conversation_id", tid, "topic", "esim", "summary",
                         "help");
        break;
    case 11:
        type = "ticket.created";
        data = json_pack("{s:s, s:s}", "ticket_id", tid, "subject", "help");
        break;
    case 12:
        type = "ticket.resolved";
        data =
            json_pack("{s:s, s:s, s:s}", "ticket_id", tid, "severity", "low", "resolution", "ok");
        break;
    default:
        c = NULL;
        if (a & 1) {
            type = "outage.started";
            data = json_pack("{s:s, s:[s, s], s:s, s:s}", "outage_id", "out1", "zips", zips[a % 3],
                             zips[b % 3], "impact", "no service", "eta", "unknown");
        } else {
            type = "outage.resolved", data = json_pack("{s:s}", "outage_id", "out1");
        }
        break;
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", id, "type", type,
                          "time", ts, "data", data);
    if (c)
        json_object_set_new(j, "subject", json_string(c));
    return j;
}

static int to_event(json_t *j, struct rules *r, struct event *ev)
{
    struct ingest_globals g = {.ctx = r, .is_global = rules_is_global};
    struct ingest_error err;
    return ingest_validate(j, NULL, &g, ev, &err);
}

/* parts_source.fill, on the partitions' reader thread. */
static int fill(void *ctx, struct part_block *b)
{
    struct stream *s = ctx;
    for (size_t i = 0; i < b->n; i++)
        event_cleanup(&b->ev[i]);
    b->n = 0;
    while (b->n < PART_BLOCK_EVENTS && s->next < s->n)
        if (to_event(s->ev[s->next++], R[0], &b->ev[b->n]) == 0)
            b->bad[b->n++] = 0;
    return s->next < s->n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!R[0]) {
        cases_config_init(&CCFG);
        for (size_t i = 0; i < MAX_PARTS + 2; i++) {
            R[i] = rules_make();
            cases_require(R[i]); /* as replay: before any engine */
            playbooks_init(&PB[i]);
            if (playbooks_add_builtin(&PB[i], R[i]))
                abort();
            if (i >= 1 && i <= MAX_PARTS)
                PBP[i - 1] = &PB[i];
        }
    }
    if (!TPL) {
        struct buf diag;
        buf_init(&diag, 0);
        if (comms_load(NULL, &TPL, &diag))
            abort();
        buf_cleanup(&diag);
        orch_config_init(&OCFG);
    }
    if (size < 1)
        return 0;
    size_t nparts = 2 + data[0] % (MAX_PARTS - 1);
    struct stream s = {0};
    int64_t t = T0;
    for (size_t i = 1; i + 4 <= size && s.n < MAX_EVENTS; i += 4) {
        unsigned step = data[i + 1];
        /* Mostly ties; else seconds, minutes, hours or days, so wake-ups fall in between. */
        t += step < 128   ? 0
             : step < 160 ? (step - 127) * 1000LL
             : step < 200 ? (step - 159) * 60000LL
             : step < 240 ? (step - 199) * 3600000LL
                          : (step - 239) * FW_DAY;
        char c[16];
        snprintf(c, sizeof c, "c%u@x", data[i] >> 5);
        s.ev[s.n++] = make_event(data[i] & 31, c, t, data[i + 2], data[i + 3]);
    }
    /* The end: none (the clock stays at the last event), or 6 to 192 hours on. */
    int64_t until = data[0] & 4 ? FW_TIME_NONE : t + ((data[0] >> 3) + 1) * 6 * 3600000LL;
    int msgs = (data[0] & 2) != 0;
    int cases = msgs && (size - 1) % 4 >= 2;

    /* One engine. */
    struct out one, parted;
    buf_init(&one.lines, 0);
    buf_init(&parted.lines, 0);
    struct engine_sink sink = {.ctx = &one, .detection = on_detection, .incident = on_incident};
    struct orch *orch = NULL;
    struct cases *cs = NULL;
    struct cases_config ccfg = CCFG;
    if (msgs) {
        struct orch_sink os = {.ctx = &one, .message = on_message};
        if (cases) {
            ccfg.playbooks = &PB[MAX_PARTS + 1];
            struct case_sink cks = {.ctx = &one, .line = on_case_line, .notice = on_message};
            cs = cases_new(&ccfg, &cks, NULL);
            if (!cs)
                abort();
            sink = cases_engine_sink(cs, &sink);
            os = cases_orch_sink(cs, &os);
        }
        orch = orch_new(&OCFG, TPL, &os);
        orch_set_text_only(orch);
        sink = orch_engine_sink(orch, &sink);
    }
    struct engine *e = NULL;
    uint64_t events = 0;
    for (size_t i = 0; i < s.n; i++) {
        struct event ev;
        if (to_event(s.ev[i], R[MAX_PARTS + 1], &ev))
            continue;
        if (!e) {
            e = engine_new(R[MAX_PARTS + 1], ev.time, &sink);
            if (orch)
                orch_bind(orch, e);
            if (cs)
                cases_bind(cs, e);
        }
        engine_prepare(e, ev.time);
        engine_apply(e, &ev);
        events++;
        event_cleanup(&ev);
    }
    size_t customers = 0, pending = 0;
    if (e) {
        int64_t settle;
        if (until != FW_TIME_NONE)
            engine_advance(e, until);
        else /* as replay does: the merge windows the last events opened close */
            while (orch && (settle = orch_open_until(orch)) != FW_TIME_NONE &&
                   settle > engine_now(e))
                engine_advance(e, settle);
        customers = engine_customer_count(e);
        pending = engine_pending_timers(e);
    }
    orch_free(orch); /* cancels its timers: before the engine goes */
    cases_free(cs);
    engine_free(e);

    /* The partitions. */
    struct parts_source src = {.ctx = &s, .fill = fill};
    struct engine_sink psink = {.ctx = &parted, .detection = on_detection, .incident = on_incident};
    struct parts_result res;
    struct parts_msgs pm = {.cfg = &OCFG, .templates = TPL, .ctx = &parted, .line = on_line,
                            .cases = cases ? &CCFG : NULL, .playbooks = PBP, .case_line = on_line};
    if (parts_run(R, nparts, &src, 0, until, NULL, &psink, msgs ? &pm : NULL, &res))
        abort();
    int same = one.lines.len == parted.lines.len &&
               (!one.lines.len || !memcmp(one.lines.data, parted.lines.data, one.lines.len));
    if (!same || res.events != events ||
        (events && (res.customers != customers || res.pending != pending))) {
        fprintf(stderr,
                "%zu partitions differ from one engine: events %llu/%llu, customers "
                "%zu/%zu, pending %zu/%zu\n--- one engine\n%.*s--- partitions\n%.*s",
                nparts, (unsigned long long)events, (unsigned long long)res.events, customers,
                res.customers, pending, res.pending, (int)one.lines.len,
                one.lines.data ? one.lines.data : "", (int)parted.lines.len,
                parted.lines.data ? parted.lines.data : "");
        abort();
    }
    if (getenv("FUZZ_PARTS_VERBOSE")) /* what an input exercises, for seeds */
    {
        fprintf(stderr, "%zu partitions%s: %llu events, %zu customers, %zu pending, %zu bytes out\n",
                nparts, cases ? " with cases" : msgs ? " with messages" : "",
                (unsigned long long)events, customers, pending, one.lines.len);
        for (size_t i = 0; i < s.n && getenv("FUZZ_PARTS_DUMP"); i++) {
            char *txt = json_dumps(s.ev[i], JSON_COMPACT);
            fprintf(stderr, "%s\n", txt);
            free(txt);
        }
    }
    buf_cleanup(&one.lines);
    buf_cleanup(&parted.lines);
    for (size_t i = 0; i < s.n; i++)
        json_decref(s.ev[i]);
    return 0;
}
