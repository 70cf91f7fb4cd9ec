/*
 * engage.h -- engine-private: a customer's engagement record (daily usage
 * rollups, features, onboarding, signup) and the figures the rule language
 * reads from it (usage_decline, usage_anomaly, ...), plus the health score.
 *
 * Invariant: a customer has no record (NULL) until its first engagement
 * event, so customers of packs without `engagement:` pay one pointer.  A
 * metric's rollup is a ring of rules->horizon_days daily sums indexed by
 * day number modulo the horizon; slots for days after the newest report
 * are zeroed when that day is first written, so every slot in
 * [last_day - horizon + 1, last_day] holds its own day.
 *
 * Slot width: a ring starts at 8 bits a day and widens, all at once and
 * never back, when a day's sum no longer fits: 8 bits while every sum is a
 * whole number up to 255, 12 bits (two days in three bytes, the first in
 * the low bits) while every sum is a whole number up to 4,095, else 16-bit
 * floats (engage__f16_*).  The first two are exact, so a figure is what
 * it was with 16-bit floats everywhere, or more precise (sums 2,048 to
 * 4,095 stay exact).  A serialiser writes width, first_day, last_day and
 * engage__slot_bytes(width, horizon) bytes of days as they are.
 */
#ifndef FW_ENGINE_ENGAGE_H
#define FW_ENGINE_ENGAGE_H

#include <jansson.h>
#include <stdint.h>

#include "engine/engine.h"
#include "expr/expr.h"
#include "ingest/ingest.h"
#include "rules/rules.h"

/* One metric's daily sums: slot day % horizon of days[], `width` bits each (see above). */
struct eng_metric {
    uint16_t metric;       /* id in rules->metrics */
    uint8_t width;         /* bits a slot: 8, 12 (whole numbers) or 16 (engage__f16) */
    int32_t first_day;     /* the day of the first report: history starts there */
    int32_t last_day;      /* the newest day written */
    unsigned char days[];  /* engage__slot_bytes(width, horizon_days) bytes, little-endian */
};

/* Bytes of days[] for `horizon` slots of `width` bits. */
size_t engage__slot_bytes(int width, int horizon);

struct eng_feature {
    uint32_t feature;  /* id in rules->features */
    uint32_t purchased; /* in the latest subscription.changed's features */
    int64_t last_used; /* latest feature.used time, FW_TIME_NONE when never */
};

struct engage {
    int64_t signup;  /* first subscription.changed, FW_TIME_NONE before it */
    int64_t churned; /* customer.churned, FW_TIME_NONE when not */
    uint64_t steps;  /* bit i: onboarding step i (rules->steps) done */
    struct eng_metric **metrics;
    uint32_t nmetrics;
    struct eng_feature *features;
    uint32_t nfeatures, capfeatures;
};

/* Features kept per customer; past this a new feature name is ignored (docs/engagement.md). */
#define ENGAGE_MAX_FEATURES 32

/* Whether an event type feeds the engagement record (usage.reported, feature.used, ...). */
int engage__type(const char *type);

/*
 * Apply an engagement event to *pg (created on first use).  The feature
 * names it brings are interned into r->features.  Returns 1 when the
 * record changed.
 */
int engage__apply(struct engage **pg, struct rules *r, const struct event *ev);

/* A figure other than health (see enum expr_engage and expr_env.engage). */
void engage__figure(const struct engage *g, const struct rules *r, int fn, uint32_t id, int a,
                    int b, int64_t now, struct value *out, int64_t *next);

/* Decline in percent of metric `metric` (usage_decline); 0 when known, -1 when not. */
int engage__decline(const struct engage *g, const struct rules *r, uint32_t metric, int recent,
                    int base, int64_t now, double *out);

/* What the health score is made of, gathered by the engine. */
struct health_inputs {
    int have_decline;       /* usage_decline of the health metric is known */
    double decline;         /* its value, percent */
    int purchased, used;    /* purchased features; of those, used in the last 30 days */
    int contacts;           /* contacts in the last 30 days */
    int have_sentiment;
    double sentiment;       /* -1 .. 1 */
    int payment_failures;   /* 1 when a payment failed in the last 30 days */
    int detections;         /* other signals firing now */
};

enum { HEALTH_USAGE, HEALTH_ADOPTION, HEALTH_CONTACTS, HEALTH_SENTIMENT, HEALTH_PAYMENTS,
       HEALTH_DETECTIONS, HEALTH_N };

struct health_part {
    const char *name;   /* "usage", ... */
    double weight;      /* share of 100 points */
    double score;       /* 0 .. 1 */
    double contribution; /* weight * score, rounded to 0.1 */
    char detail[96];    /* the figure it came from, with its count */
};

struct health_result {
    double score; /* the sum of the contributions */
    struct health_part parts[HEALTH_N];
};

/* Weights normalised to 100 points, inputs to components: a pure function. */
void engage__health(const struct engine_health *w, const struct health_inputs *in,
                    struct health_result *out);

/* The record as JSON for the customer view (rollup summary per metric, features, steps). */
json_t *engage__json(const struct engage *g, const struct rules *r, int64_t now);
json_t *engage__health_json(const struct health_result *h);

/* Heap bytes the record holds (engine_state_bytes). */
size_t engage__bytes(const struct engage *g, const struct rules *r);
void engage__free(struct engage *g);

/* 16-bit unsigned floats: 11 significant bits, integers up to 2047 exact, 1/16 resolution below 128. */
uint16_t engage__f16_encode(double x);
double engage__f16_decode(uint16_t h);

/*
 * A record in the snapshot encoding (snap.c), NULL included; and back:
 * *pg becomes the record read (NULL for none; the caller frees it with
 * engage__free even on failure).  Returns 0, or -1 on malformed input.
 */
struct wire_rd;
void engage__write(const struct engage *g, const struct rules *r, struct buf *out);
int engage__read(struct engage **pg, const struct rules *r, struct wire_rd *in);

#endif
