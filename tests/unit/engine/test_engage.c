/*
 * test_engage.c -- engagement records and their figures at the boundaries:
 * 16-bit day sums, slot widths (8, 12, 16 bits), day rollover, horizon eviction, 29% and 31% declines,
 * "not enough history", a spike that moves a mean but not the median, and
 * health components that add up to the score.
 */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "../test.h"
#include "engine/engage.h"
#include "rules/rules.h"
#include "util/fwtime.h"
#include "util/wire.h"

#define DAY0 (20514LL * FW_DAY) /* 2026-03-02T00:00:00Z */

static void rules_with(struct rules *r, const char *engagement)
{
    char text[512];
    snprintf(text, sizeof text,
             "engagement: %s\nsignals:\n  - {id: S, name: s, severity: LOW, condition: 'true'}\n",
             engagement);
    rules_init(r);
    rules_add_text(r, "t.yaml", text, strlen(text));
    rules_finish(r);
}

/* usage.reported for `metric` at t with value v. */
static void report(struct engage **g, struct rules *r, int64_t t, double v)
{
    json_t *data = json_pack("{s:s, s:f}", "metric", "m", "value", v);
    struct event ev = {.type = "usage.reported", .subject = "c", .time = t, .data = data};
    engage__apply(g, r, &ev);
    json_decref(data);
}

static double figure(struct engage *g, struct rules *r, int fn, int a, int b, int64_t now,
                     int *known)
{
    struct value v;
    int64_t next;
    engage__figure(g, r, fn, 0, a, b, now, &v, &next);
    *known = v.type == VAL_NUM;
    return *known ? v.u.num : NAN;
}

static void f16_round_trip(void)
{
    for (int i = 0; i <= 2047; i++)
        ASSERT(engage__f16_decode(engage__f16_encode(i)) == i); /* integers exact to 2047 */
    ASSERT(engage__f16_decode(engage__f16_encode(12.5)) == 12.5);
    ASSERT(engage__f16_decode(engage__f16_encode(0)) == 0);
    ASSERT(engage__f16_decode(engage__f16_encode(-3)) == 0);
    double big = 987654.0, back = engage__f16_decode(engage__f16_encode(big));
    ASSERT(fabs(back - big) / big < 1.0 / 2048); /* 11 significant bits */
}

static void decline_29_and_31(void)
{
    struct rules r;
    rules_with(&r, "{metrics: [m]}");
    int known;
    for (int low = 69; low <= 71; low += 2) {
        struct engage *g = NULL;
        for (int d = 0; d < 35; d++)
            report(&g, &r, DAY0 + d * FW_DAY + 12 * FW_HOUR, d < 28 ? 100 : low);
        /* At day 35, days 28..34 against days 0..27. */
        double x = figure(g, &r, EXPR_ENG_DECLINE, 7, 28, DAY0 + 35 * FW_DAY, &known);
        ASSERT(known);
        ASSERT(x == 100 - low); /* 31 and 29 exactly */
        /* One ms earlier it is still day 34: the base would reach day -1, before the history. */
        figure(g, &r, EXPR_ENG_DECLINE, 7, 28, DAY0 + 35 * FW_DAY - 1, &known);
        ASSERT(!known);
        engage__free(g);
    }
    rules_cleanup(&r);
}

static void day_rollover(void)
{
    struct rules r;
    rules_with(&r, "{metrics: [m]}");
    struct engage *g = NULL;
    int known;
    report(&g, &r, DAY0 + FW_DAY - 1, 60); /* 23:59:59.999 of day 0 */
    report(&g, &r, DAY0 + FW_DAY, 50);     /* 00:00 of day 1 */
    ASSERT(figure(g, &r, EXPR_ENG_TOTAL, 1, 0, DAY0 + FW_DAY + 1, &known) == 60);
    ASSERT(figure(g, &r, EXPR_ENG_TOTAL, 1, 0, DAY0 + 2 * FW_DAY, &known) == 50);
    ASSERT(figure(g, &r, EXPR_ENG_TOTAL, 2, 0, DAY0 + 2 * FW_DAY, &known) == 110);
    /* data.date puts a report on its own day, whatever the event time. */
    json_t *data = json_pack("{s:s, s:i, s:s}", "metric", "m", "value", 7, "date", "2026-03-02");
    struct event ev = {.type = "usage.reported", .subject = "c", .time = DAY0 + 5 * FW_HOUR + FW_DAY,
                       .data = data};
    engage__apply(&g, &r, &ev);
    json_decref(data);
    ASSERT(figure(g, &r, EXPR_ENG_TOTAL, 2, 0, DAY0 + 2 * FW_DAY, &known) == 117);
    engage__free(g);
    rules_cleanup(&r);
}

static void horizon_eviction(void)
{
    struct rules r;
    rules_with(&r, "{horizon_days: 7, metrics: [m]}");
    struct engage *g = NULL;
    int known;
    for (int d = 0; d < 10; d++)
        report(&g, &r, DAY0 + d * FW_DAY, d == 0 ? 500 : 100);
    /* Days 0..2 are past the horizon of day 9: only days 3..9 are kept. */
    ASSERT(figure(g, &r, EXPR_ENG_TOTAL, 10, 0, DAY0 + 10 * FW_DAY, &known) == 700);
    report(&g, &r, DAY0 + 2 * FW_DAY, 1000); /* too old to keep: dropped */
    ASSERT(figure(g, &r, EXPR_ENG_TOTAL, 10, 0, DAY0 + 10 * FW_DAY, &known) == 700);
    report(&g, &r, DAY0 + 3 * FW_DAY, 1); /* the oldest kept day still takes reports */
    ASSERT(figure(g, &r, EXPR_ENG_TOTAL, 10, 0, DAY0 + 10 * FW_DAY, &known) == 701);
    /* A jump of more than a horizon clears every slot. */
    report(&g, &r, DAY0 + 30 * FW_DAY, 5);
    ASSERT(figure(g, &r, EXPR_ENG_TOTAL, 7, 0, DAY0 + 31 * FW_DAY, &known) == 5);
    ASSERT(engage__bytes(g, &r) < 100 + 7 * 2 + 64);
    engage__free(g);
    rules_cleanup(&r);
}

/* Day d's sum, read back through usage_total over the one day before d + 1. */
static double day_sum(struct engage *g, struct rules *r, int d)
{
    int known;
    return figure(g, r, EXPR_ENG_TOTAL, 1, 0, DAY0 + (d + 1) * FW_DAY, &known);
}

/*
 * A ring starts at 8 bits a day and widens, exactly, to 12 bits and then to
 * 16-bit floats; a 12-bit slot never clobbers its neighbours (two days share
 * a byte), and a 91-day horizon has an odd last slot.
 */
static void slot_widths_stay_exact(void)
{
    struct rules r;
    rules_with(&r, "{horizon_days: 91, metrics: [m]}");
    struct engage *g = NULL;
    double want[91];
    for (int d = 0; d < 91; d++) {
        want[d] = (d * 37) % 256;
        report(&g, &r, DAY0 + d * FW_DAY + FW_HOUR, want[d]);
    }
    ASSERT_EQ(g->metrics[0]->width, 8);
    size_t b8 = engage__bytes(g, &r);
    for (int d = 0; d < 91; d++)
        ASSERT(day_sum(g, &r, d) == want[d]);
    /* Two reports on day 45 and one on day 90 (the last, odd slot): 12 bits, still exact. */
    report(&g, &r, DAY0 + 45 * FW_DAY + 2 * FW_HOUR, 3000);
    report(&g, &r, DAY0 + 45 * FW_DAY + 3 * FW_HOUR, 900);
    report(&g, &r, DAY0 + 90 * FW_DAY + 2 * FW_HOUR, 4000);
    want[45] += 3900, want[90] += 4000;
    ASSERT(want[45] <= 4095 && want[90] <= 4095 && want[45] > 2047); /* f16 would round these */
    ASSERT_EQ(g->metrics[0]->width, 12);
    ASSERT_EQ(engage__bytes(g, &r) - b8, (size_t)(91 * 3 / 2 + 2 - 91));
    for (int d = 0; d < 91; d++)
        ASSERT(day_sum(g, &r, d) == want[d]);
    /* Every other day above 255 too: the bits two days share in a byte are both in use. */
    for (int d = 0; d < 91; d++)
        if (want[d] < 256) {
            report(&g, &r, DAY0 + d * FW_DAY + 4 * FW_HOUR, (d % 15 + 1) * 256);
            want[d] += (d % 15 + 1) * 256;
        }
    for (int d = 0; d < 91; d++)
        ASSERT(day_sum(g, &r, d) == want[d]);
    /* A fraction: 16-bit floats, each day what the 16-bit encoding gives. */
    report(&g, &r, DAY0 + 10 * FW_DAY + 2 * FW_HOUR, 0.5);
    want[10] += 0.5;
    ASSERT_EQ(g->metrics[0]->width, 16);
    ASSERT_EQ(engage__bytes(g, &r) - b8, (size_t)91);
    for (int d = 0; d < 91; d++)
        ASSERT(day_sum(g, &r, d) == engage__f16_decode(engage__f16_encode(want[d])));
    /* Rolling over keeps the width: a new day's slot is cleared, not narrowed. */
    report(&g, &r, DAY0 + 91 * FW_DAY + FW_HOUR, 7);
    ASSERT(day_sum(g, &r, 91) == 7 && g->metrics[0]->width == 16);
    engage__free(g);
    rules_cleanup(&r);
}

/* Written for a snapshot and read back, a record of each slot width gives the same bytes and sums. */
static void snapshot_each_width(void)
{
    struct rules r;
    rules_with(&r, "{horizon_days: 91, metrics: [m]}");
    const double extra[] = {0, 3000, 0.5}; /* stays 8 bits, widens to 12, widens to 16 */
    for (int w = 0; w < 3; w++) {
        struct engage *g = NULL, *back = NULL;
        for (int d = 0; d < 91; d++)
            report(&g, &r, DAY0 + d * FW_DAY + FW_HOUR, (d * 7) % 200);
        if (extra[w])
            report(&g, &r, DAY0 + 30 * FW_DAY + 2 * FW_HOUR, extra[w]);
        static const int widths[] = {8, 12, 16};
        ASSERT_EQ(g->metrics[0]->width, widths[w]);
        struct buf a, b;
        buf_init(&a, 0);
        buf_init(&b, 0);
        engage__write(g, &r, &a);
        struct wire_rd rd;
        wire_rd_init(&rd, a.data, a.len);
        ASSERT_EQ(engage__read(&back, &r, &rd), 0);
        ASSERT_EQ(rd.off, a.len);
        engage__write(back, &r, &b);
        ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        for (int d = 0; d < 91; d++)
            ASSERT(day_sum(g, &r, d) == day_sum(back, &r, d));
        engage__free(back);
        back = NULL;
        /* A width whose slots would not match the bytes that follow is refused, not read past
           (the width byte: after the flag, signup, churned, steps, count, id, first and last day). */
        ASSERT_EQ((unsigned char)a.data[41], g->metrics[0]->width);
        a.data[41] = (char)(w == 0 ? 16 : 8);
        wire_rd_init(&rd, a.data, a.len);
        ASSERT(engage__read(&back, &r, &rd) != 0);
        engage__free(back);
        a.data[41] = 9;
        wire_rd_init(&rd, a.data, a.len);
        ASSERT(engage__read(&back, &r, &rd) != 0);
        engage__free(back);
        buf_cleanup(&a);
        buf_cleanup(&b);
        engage__free(g);
    }
    rules_cleanup(&r);
}

static void spike_moves_mean_not_median(void)
{
    struct rules r;
    rules_with(&r, "{metrics: [m]}");
    struct engage *g = NULL;
    int known;
    /* 28 baseline days around 100 (97..103), one of them a 10,000 spike; then a day of 80. */
    double sum = 0, sq = 0;
    for (int d = 0; d < 28; d++) {
        double v = d == 10 ? 10000 : 97 + d % 7;
        report(&g, &r, DAY0 + d * FW_DAY, v);
        sum += v;
        sq += v * v;
    }
    report(&g, &r, DAY0 + 28 * FW_DAY, 80);
    double mean = sum / 28, sd = sqrt(sq / 28 - mean * mean), z_mean = (80 - mean) / sd;
    double z = figure(g, &r, EXPR_ENG_ANOMALY, 28, 0, DAY0 + 29 * FW_DAY, &known);
    ASSERT(known);
    ASSERT(z_mean > -1); /* the spike dragged the mean up and the spread wide: 80 looks normal */
    ASSERT(z < -3);      /* against the median and MAD it is a clear drop */
    /* Not enough history: the baseline would reach before day 0. */
    figure(g, &r, EXPR_ENG_ANOMALY, 29, 0, DAY0 + 29 * FW_DAY, &known);
    ASSERT(!known);
    engage__free(g);
    rules_cleanup(&r);
}

static void health_parts_sum(void)
{
    struct health_inputs in = {.have_decline = 1, .decline = 20, .purchased = 3, .used = 1,
                               .contacts = 2, .have_sentiment = 1, .sentiment = -0.5,
                               .payment_failures = 1, .detections = 1};
    struct health_result h;
    engage__health(&engine_health_default, &in, &h);
    double sum = 0, weights = 0;
    for (int i = 0; i < HEALTH_N; i++) {
        sum += h.parts[i].contribution;
        weights += h.parts[i].weight;
    }
    ASSERT(fabs(sum - h.score) < 1e-9);
    ASSERT(fabs(weights - 100) < 1e-9);
    /* 30*0.6 + 20/3 + 15*0.5 + 15*0.25 + 0 + 10*2/3 = 18 + 6.7 + 7.5 + 3.8 + 0 + 6.7 */
    ASSERT(fabs(h.score - 42.7) < 1e-9);
    ASSERT_STREQ(h.parts[HEALTH_ADOPTION].detail, "1 of 3 purchased features used in 30 days");
    /* Weights are shares: doubling all of them changes nothing; a zero weight drops a part. */
    struct engine_health w = {.usage = 60, .adoption = 40, .contacts = 30, .sentiment = 30,
                              .payments = 20, .detections = 20};
    struct health_result h2;
    engage__health(&w, &in, &h2);
    ASSERT(fabs(h2.score - h.score) < 1e-9);
    w.payments = 0;
    engage__health(&w, &in, &h2);
    ASSERT(h2.parts[HEALTH_PAYMENTS].weight == 0);
    struct health_inputs none = {0};
    engage__health(&engine_health_default, &none, &h2);
    ASSERT(h2.score == 100); /* no evidence of trouble */
}

const struct test engage_tests[] = {
    {"f16_round_trip", f16_round_trip},
    {"decline_29_and_31", decline_29_and_31},
    {"day_rollover", day_rollover},
    {"horizon_eviction", horizon_eviction},
    {"slot_widths_stay_exact", slot_widths_stay_exact},
    {"snapshot_each_width", snapshot_each_width},
    {"spike_moves_mean_not_median", spike_moves_mean_not_median},
    {"health_parts_sum", health_parts_sum},
    {NULL, NULL},
};
