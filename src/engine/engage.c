/*
 * engage.c -- engagement records: daily usage rollups, features,
 * onboarding and signup per customer, the trend figures the rule language
 * reads from them, and the health score.
 *
 * Days are UTC days (day number = ms / FW_DAY).  A window never includes
 * today, which is not over: usage_decline("m", 7, 28) at any instant of
 * day D compares days D-7 .. D-1 with days D-35 .. D-8, so a figure only
 * changes when a report for one of its days arrives or at midnight, and
 * the engine wakes the customer at the next midnight while it can change.
 *
 * Missing days: metrics are counters.  A day with no report after the
 * metric's first report is 0 (nothing was used); days before the first
 * report are unknown, and a window reaching before them is "not enough
 * history": the figure is null, never a decline.
 */
#include "engine/engage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/fwtime.h"
#include "util/util.h"
#include "util/wire.h"

const struct engine_health engine_health_default = {
    .usage = 30, .adoption = 20, .contacts = 15, .sentiment = 15, .payments = 10,
    .detections = 10,
};

/* ---- 16-bit floats ---- */

uint16_t engage__f16_encode(double x)
{
    if (!(x > 0))
        return 0; /* also NaN */
    for (int e = 0; e < 32; e++) {
        double m = nearbyint(ldexp(x, 4 - e));
        if (m <= 2047)
            return (uint16_t)((e << 11) | (int)m);
    }
    return (uint16_t)((31 << 11) | 2047); /* the largest: about 2.7e11 */
}

double engage__f16_decode(uint16_t h)
{
    return ldexp((double)(h & 2047), (h >> 11) - 4);
}

/* ---- events ---- */

enum { ET_NONE, ET_USAGE, ET_FEATURE, ET_PORTAL, ET_DOCUMENT, ET_STEP, ET_SUBSCRIPTION,
       ET_CHURNED };

static int type_kind(const char *type)
{
    static const struct {
        const char *type;
        int kind;
    } kinds[] = {
        {"usage.reported", ET_USAGE},          {"feature.used", ET_FEATURE},
        {"portal.login", ET_PORTAL},           {"document.viewed", ET_DOCUMENT},
        {"onboarding.step_completed", ET_STEP}, {"subscription.changed", ET_SUBSCRIPTION},
        {"customer.churned", ET_CHURNED},
    };
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
        if (!strcmp(type, kinds[i].type))
            return kinds[i].kind;
    return ET_NONE;
}

int engage__type(const char *type)
{
    return type_kind(type) != ET_NONE;
}

static int64_t day_of(int64_t ms)
{
    return ms >= 0 ? ms / FW_DAY : -((-ms + FW_DAY - 1) / FW_DAY);
}

static struct engage *record(struct engage **pg)
{
    if (!*pg) {
        *pg = xcalloc(1, sizeof **pg);
        (*pg)->signup = FW_TIME_NONE;
        (*pg)->churned = FW_TIME_NONE;
    }
    return *pg;
}

static struct eng_metric *metric_find(const struct engage *g, uint32_t metric)
{
    for (uint32_t i = 0; g && i < g->nmetrics; i++)
        if (g->metrics[i]->metric == metric)
            return g->metrics[i];
    return NULL;
}

/* ---- slots: 8, 12 or 16 bits a day (engage.h) ---- */

size_t engage__slot_bytes(int width, int horizon)
{
    /* One spare byte for 12 bits: the last slot is read as two bytes. */
    return width == 12 ? (size_t)horizon * 3 / 2 + 2 : (size_t)horizon * (size_t)width / 8;
}

static unsigned slot_raw(const struct eng_metric *m, size_t i)
{
    const unsigned char *d = m->days;
    if (m->width == 8)
        return d[i];
    if (m->width == 16)
        return d[2 * i] | (unsigned)d[2 * i + 1] << 8;
    size_t b = i * 3 / 2;
    unsigned x = d[b] | (unsigned)d[b + 1] << 8;
    return i & 1 ? x >> 4 : x & 0xfff;
}

static void slot_set_raw(struct eng_metric *m, size_t i, unsigned x)
{
    unsigned char *d = m->days;
    if (m->width == 8) {
        d[i] = (unsigned char)x;
    } else if (m->width == 16) {
        d[2 * i] = (unsigned char)x;
        d[2 * i + 1] = (unsigned char)(x >> 8);
    } else {
        size_t b = i * 3 / 2;
        unsigned w = d[b] | (unsigned)d[b + 1] << 8;
        w = i & 1 ? (w & 0x000f) | x << 4 : (w & 0xf000) | x;
        d[b] = (unsigned char)w;
        d[b + 1] = (unsigned char)(w >> 8);
    }
}

static double slot_get(const struct eng_metric *m, size_t i)
{
    unsigned x = slot_raw(m, i);
    return m->width == 16 ? engage__f16_decode((uint16_t)x) : (double)x;
}

/* The narrowest width that holds x exactly (16: a 16-bit float, rounded). */
static int width_for(double x)
{
    return x != floor(x) ? 16 : x <= 255 ? 8 : x <= 4095 ? 12 : 16;
}

static void slot_put(struct eng_metric *m, size_t i, double x)
{
    slot_set_raw(m, i, m->width == 16 ? engage__f16_encode(x) : (unsigned)x);
}

/* g->metrics[k] with every slot rewritten at `width` bits; returns the new pointer. */
static struct eng_metric *widen(struct engage *g, uint32_t k, int h, int width)
{
    struct eng_metric *old = g->metrics[k];
    struct eng_metric *m = xcalloc(1, sizeof *m + engage__slot_bytes(width, h));
    m->metric = old->metric;
    m->width = (uint8_t)width;
    m->first_day = old->first_day;
    m->last_day = old->last_day;
    for (size_t i = 0; i < (size_t)h; i++)
        slot_put(m, i, slot_get(old, i));
    free(old);
    return g->metrics[k] = m;
}

/* The slot of a day: day modulo the horizon, never negative (days before 1970 included). */
static size_t slot_of(int64_t day, int h)
{
    return (size_t)((day % h + h) % h);
}

/* Add v to day `day` of a metric; days older than the horizon are let go. */
static int metric_add(struct engage *g, const struct rules *r, uint32_t metric, int64_t day,
                      double v)
{
    int h = r->horizon_days;
    uint32_t k = 0;
    while (k < g->nmetrics && g->metrics[k]->metric != metric)
        k++;
    struct eng_metric *m = k < g->nmetrics ? g->metrics[k] : NULL;
    if (!m) {
        m = xcalloc(1, sizeof *m + engage__slot_bytes(8, h));
        m->metric = (uint16_t)metric;
        m->width = 8;
        m->first_day = m->last_day = (int32_t)day;
        g->metrics = xrealloc(g->metrics, (g->nmetrics + 1) * sizeof *g->metrics);
        g->metrics[g->nmetrics++] = m;
    }
    if (day <= (int64_t)m->last_day - h)
        return 0; /* before the horizon: nothing keeps it */
    if (day > m->last_day) {
        /* New days: their slots still hold days a horizon ago; clear them. */
        int64_t from = day - m->last_day > h ? day - h + 1 : m->last_day + 1;
        for (int64_t d = from; d <= day; d++)
            slot_set_raw(m, slot_of(d, h), 0);
        m->last_day = (int32_t)day;
    }
    if (day < m->first_day)
        m->first_day = (int32_t)day;
    size_t i = slot_of(day, h);
    double x = slot_get(m, i) + v;
    if (width_for(x) > m->width)
        m = widen(g, k, h, width_for(x));
    slot_put(m, i, x);
    return 1;
}

static struct eng_feature *feature_get(struct engage *g, uint32_t feature, int create)
{
    for (uint32_t i = 0; i < g->nfeatures; i++)
        if (g->features[i].feature == feature)
            return &g->features[i];
    if (!create || g->nfeatures == ENGAGE_MAX_FEATURES)
        return NULL;
    if (g->nfeatures == g->capfeatures) {
        g->capfeatures = g->capfeatures ? g->capfeatures * 2 : 4;
        g->features = xrealloc(g->features, g->capfeatures * sizeof *g->features);
    }
    struct eng_feature *f = &g->features[g->nfeatures++];
    f->feature = feature;
    f->purchased = 0;
    f->last_used = FW_TIME_NONE;
    return f;
}

/* A "YYYY-MM-DD" day number, or -1 when s is not one. */
static int parse_date(const char *s, int64_t *day)
{
    unsigned y, m, d;
    char tail;
    if (!s || strlen(s) != 10 || sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 || m < 1 ||
        m > 12 || d < 1 || d > 31)
        return -1;
    *day = fw_days_from_civil(y, m, d);
    return 0;
}

int engage__apply(struct engage **pg, struct rules *r, const struct event *ev)
{
    int kind = type_kind(ev->type);
    json_t *data = ev->data;
    int64_t day = day_of(ev->time);
    switch (kind) {
    case ET_USAGE: {
        const char *name = json_string_value(json_object_get(data, "metric"));
        json_t *vj = json_object_get(data, "value");
        int64_t id = name ? intern_lookup(&r->metrics, name, strlen(name)) : -1;
        const char *date = json_string_value(json_object_get(data, "date"));
        if (id < 0 || !json_is_number(vj) || json_number_value(vj) < 0)
            return 0; /* ingest refuses these (docs/events.md); journals from before it did */
        if (date && parse_date(date, &day))
            return 0;
        return metric_add(record(pg), r, (uint32_t)id, day, json_number_value(vj));
    }
    case ET_PORTAL:
    case ET_DOCUMENT: {
        const char *name = kind == ET_PORTAL ? "portal_logins" : "documents_viewed";
        int64_t id = intern_lookup(&r->metrics, name, strlen(name));
        return id >= 0 && metric_add(record(pg), r, (uint32_t)id, day, 1);
    }
    case ET_FEATURE: {
        const char *name = json_string_value(json_object_get(data, "feature"));
        if (!name || !*name)
            return 0;
        struct eng_feature *f =
            feature_get(record(pg), intern_id(&r->features, name, strlen(name)), 1);
        if (!f || (f->last_used != FW_TIME_NONE && f->last_used >= ev->time))
            return 0;
        f->last_used = ev->time;
        return 1;
    }
    case ET_STEP: {
        const char *name = json_string_value(json_object_get(data, "step"));
        int64_t id = name ? intern_lookup(&r->steps, name, strlen(name)) : -1;
        if (id < 0)
            return 0;
        struct engage *g = record(pg);
        uint64_t bit = (uint64_t)1 << id;
        if (g->steps & bit)
            return 0;
        g->steps |= bit;
        return 1;
    }
    case ET_SUBSCRIPTION: {
        struct engage *g = record(pg);
        if (g->signup == FW_TIME_NONE || ev->time < g->signup)
            g->signup = ev->time;
        json_t *list = json_object_get(data, "features");
        if (!json_is_array(list))
            return 1; /* a plan change that says nothing about features keeps them */
        for (uint32_t i = 0; i < g->nfeatures; i++)
            g->features[i].purchased = 0;
        size_t k;
        json_t *fj;
        json_array_foreach(list, k, fj)
        {
            const char *name = json_string_value(fj);
            if (!name || !*name)
                continue;
            struct eng_feature *f = feature_get(g, intern_id(&r->features, name, strlen(name)), 1);
            if (f)
                f->purchased = 1;
        }
        return 1;
    }
    case ET_CHURNED:
        record(pg)->churned = ev->time;
        return 1;
    }
    return 0;
}

/* ---- figures ---- */

/*
 * A metric's sum for `day`: *known is 0 for days before its history (or
 * let go past the horizon).  Days after the newest report are 0: nothing
 * was reported, and a counter with no report counted nothing.
 */
static double day_value(const struct eng_metric *m, int h, int64_t day, int *known)
{
    int64_t oldest = m->last_day - h + 1 > m->first_day ? m->last_day - h + 1 : m->first_day;
    *known = day >= oldest;
    if (day < oldest || day > m->last_day)
        return 0;
    return slot_get(m, slot_of(day, h));
}

/* Sum of days [from, to]; -1 when any of them is unknown. */
static int window_sum(const struct eng_metric *m, int h, int64_t from, int64_t to, double *sum)
{
    *sum = 0;
    for (int64_t d = from; d <= to; d++) {
        int known;
        *sum += day_value(m, h, d, &known);
        if (!known)
            return -1;
    }
    return 0;
}

int engage__decline(const struct engage *g, const struct rules *r, uint32_t metric, int recent,
                    int base, int64_t now, double *out)
{
    const struct eng_metric *m = metric_find(g, metric);
    int64_t today = day_of(now);
    double rs, bs;
    if (!m || window_sum(m, r->horizon_days, today - recent, today - 1, &rs) ||
        window_sum(m, r->horizon_days, today - recent - base, today - recent - 1, &bs) || bs <= 0)
        return -1;
    double mr = rs / recent, mb = bs / base;
    /* Rounded to a millionth of a percent, so 100 -> 70 is 30 and not 29.999999999999996. */
    *out = nearbyint((mb - mr) / mb * 100 * 1e6) / 1e6;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Yesterday against the `base` days before it: (x - median) / (1.4826 MAD),
 * the MAD scaled to a standard deviation for normal data.  When more than
 * half the days are equal the MAD is 0; the mean absolute deviation around
 * the median (scaled by 1.2533) stands in, and when that is 0 too (every
 * day the same) a day equal to them scores 0 and any other is null.
 */
static int anomaly(const struct eng_metric *m, int h, int base, int64_t now, double *out)
{
    int64_t today = day_of(now);
    double v[400], dev[400], x;
    int known;
    if (base > 366)
        return -1;
    x = day_value(m, h, today - 1, &known);
    if (!known)
        return -1;
    for (int i = 0; i < base; i++) {
        v[i] = day_value(m, h, today - 1 - base + i, &known);
        if (!known)
            return -1;
    }
    double med = median(v, base), mean_ad = 0;
    for (int i = 0; i < base; i++) {
        dev[i] = fabs(v[i] - med);
        mean_ad += dev[i];
    }
    mean_ad /= base;
    double mad = median(dev, base);
    double scale = mad > 0 ? 1.4826 * mad : 1.2533 * mean_ad;
    if (scale > 0)
        *out = nearbyint((x - med) / scale * 1e6) / 1e6;
    else if (x == med)
        *out = 0;
    else
        return -1;
    return 0;
}

static int64_t next_midnight(int64_t now)
{
    return (day_of(now) + 1) * FW_DAY;
}

void engage__figure(const struct engage *g, const struct rules *r, int fn, uint32_t id, int a,
                    int b, int64_t now, struct value *out, int64_t *next)
{
    out->type = VAL_NULL;
    *next = FW_TIME_MAX;
    if (!g && fn != EXPR_ENG_STEPS_LEFT && fn != EXPR_ENG_PURCHASED)
        return;
    switch (fn) {
    case EXPR_ENG_DECLINE:
    case EXPR_ENG_ANOMALY:
    case EXPR_ENG_TOTAL: {
        const struct eng_metric *m = metric_find(g, id);
        if (!m)
            return; /* no report yet: only an event can change that */
        int span = fn == EXPR_ENG_DECLINE ? a + b : fn == EXPR_ENG_ANOMALY ? a + 1 : a;
        /* Once the whole window is after the newest report it reads zeros only: no more change. */
        if (day_of(now) - span <= m->last_day)
            *next = next_midnight(now);
        double x;
        int ok = -1;
        if (fn == EXPR_ENG_DECLINE)
            ok = engage__decline(g, r, id, a, b, now, &x);
        else if (fn == EXPR_ENG_ANOMALY)
            ok = anomaly(m, r->horizon_days, a, now, &x);
        else {
            /* A total is over what is known: days before the history are none. */
            x = 0;
            ok = 0;
            for (int64_t d = day_of(now) - a; d < day_of(now); d++) {
                int known;
                x += day_value(m, r->horizon_days, d, &known);
            }
        }
        if (ok == 0) {
            out->type = VAL_NUM;
            out->u.num = x;
        }
        return;
    }
    case EXPR_ENG_LAST_USED:
    case EXPR_ENG_IDLE: {
        const struct eng_feature *f = NULL;
        for (uint32_t i = 0; i < g->nfeatures && !f; i++)
            if (g->features[i].feature == id)
                f = &g->features[i];
        int64_t t = f && f->last_used != FW_TIME_NONE ? f->last_used
                    : fn == EXPR_ENG_IDLE             ? g->signup
                                                      : FW_TIME_NONE;
        if (t != FW_TIME_NONE) {
            out->type = VAL_TIME;
            out->u.ms = t;
        }
        return;
    }
    case EXPR_ENG_PURCHASED: {
        int p = 0;
        for (uint32_t i = 0; g && i < g->nfeatures; i++)
            p |= g->features[i].feature == id && g->features[i].purchased;
        out->type = VAL_BOOL;
        out->u.b = p;
        return;
    }
    case EXPR_ENG_SIGNUP:
        if (g->signup != FW_TIME_NONE) {
            out->type = VAL_TIME;
            out->u.ms = g->signup;
        }
        return;
    case EXPR_ENG_STEPS_LEFT: {
        size_t n = intern_count(&r->steps);
        if (!n)
            return; /* no steps declared: nothing is outstanding, nothing is known */
        out->type = VAL_NUM;
        out->u.num = (double)(n - (size_t)__builtin_popcountll(g ? g->steps : 0));
        return;
    }
    }
}

/* ---- health ---- */

static double clamp01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

void engage__health(const struct engine_health *w, const struct health_inputs *in,
                    struct health_result *out)
{
    static const char *const names[HEALTH_N] = {"usage",     "adoption", "contacts",
                                                "sentiment", "payments", "detections"};
    double ws[HEALTH_N] = {w->usage, w->adoption, w->contacts, w->sentiment, w->payments,
                           w->detections};
    double total = 0;
    for (int i = 0; i < HEALTH_N; i++)
        total += ws[i] > 0 ? ws[i] : 0;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < HEALTH_N; i++) {
        struct health_part *p = &out->parts[i];
        p->name = names[i];
        p->weight = total > 0 && ws[i] > 0 ? ws[i] * 100 / total : 0;
    }
    struct health_part *p = out->parts;
    /* Usage: full marks at no decline, none at a 50% drop or worse. */
    if (in->have_decline) {
        p[HEALTH_USAGE].score = 1 - clamp01(in->decline / 50);
        snprintf(p[HEALTH_USAGE].detail, sizeof p[0].detail, "usage %+.1f%% over 7 days against 28",
                 -in->decline);
    } else {
        p[HEALTH_USAGE].score = 1;
        snprintf(p[HEALTH_USAGE].detail, sizeof p[0].detail, "not enough usage history");
    }
    if (in->purchased) {
        p[HEALTH_ADOPTION].score = (double)in->used / in->purchased;
        snprintf(p[HEALTH_ADOPTION].detail, sizeof p[0].detail,
                 "%d of %d purchased features used in 30 days", in->used, in->purchased);
    } else {
        p[HEALTH_ADOPTION].score = 1;
        snprintf(p[HEALTH_ADOPTION].detail, sizeof p[0].detail, "no purchased features known");
    }
    p[HEALTH_CONTACTS].score = 1 - clamp01(in->contacts / 4.0);
    snprintf(p[HEALTH_CONTACTS].detail, sizeof p[0].detail, "%d contact%s in 30 days",
             in->contacts, in->contacts == 1 ? "" : "s");
    if (in->have_sentiment) {
        p[HEALTH_SENTIMENT].score = clamp01((in->sentiment + 1) / 2);
        snprintf(p[HEALTH_SENTIMENT].detail, sizeof p[0].detail, "latest sentiment %.2f",
                 in->sentiment);
    } else {
        p[HEALTH_SENTIMENT].score = 1;
        snprintf(p[HEALTH_SENTIMENT].detail, sizeof p[0].detail, "no sentiment recorded");
    }
    p[HEALTH_PAYMENTS].score = in->payment_failures ? 0 : 1;
    snprintf(p[HEALTH_PAYMENTS].detail, sizeof p[0].detail, "%s",
             in->payment_failures ? "a payment failed in the last 30 days"
                                  : "no failed payment in 30 days");
    p[HEALTH_DETECTIONS].score = 1 - clamp01(in->detections / 3.0);
    snprintf(p[HEALTH_DETECTIONS].detail, sizeof p[0].detail, "%d other signal%s firing",
             in->detections, in->detections == 1 ? "" : "s");
    out->score = 0;
    for (int i = 0; i < HEALTH_N; i++) {
        /* Each contribution is rounded first, so the shown parts add up to the shown score. */
        p[i].contribution = round(p[i].weight * p[i].score * 10) / 10; /* halves up */
        out->score += p[i].contribution;
    }
    out->score = round(out->score * 10) / 10;
}

json_t *engage__health_json(const struct health_result *h)
{
    json_t *parts = json_array();
    for (int i = 0; i < HEALTH_N; i++) {
        const struct health_part *p = &h->parts[i];
        json_array_append_new(parts,
                              json_pack("{s:s, s:f, s:f, s:f, s:s}", "name", p->name, "weight",
                                        nearbyint(p->weight * 100) / 100, "score",
                                        nearbyint(p->score * 1000) / 1000, "contribution",
                                        p->contribution, "detail", p->detail));
    }
    return json_pack("{s:f, s:o}", "score", h->score, "components", parts);
}

/* ---- views and bookkeeping ---- */

static json_t *time_json(int64_t t)
{
    char s[FW_TIME_MAXLEN];
    if (t == FW_TIME_NONE)
        return json_null();
    fw_time_format(t, s);
    return json_string(s);
}

json_t *engage__json(const struct engage *g, const struct rules *r, int64_t now)
{
    json_t *o = json_object(), *metrics = json_object(), *features = json_object();
    json_t *steps = json_array(), *left = json_array();
    int64_t today = day_of(now);
    for (uint32_t i = 0; g && i < g->nmetrics; i++) {
        const struct eng_metric *m = g->metrics[i];
        double last7 = 0, prev28 = 0;
        int days = 0, known;
        for (int64_t d = today - 35; d < today; d++) {
            double v = day_value(m, r->horizon_days, d, &known);
            days += known;
            *(d >= today - 7 ? &last7 : &prev28) += v;
        }
        char first[FW_TIME_MAXLEN], last[FW_TIME_MAXLEN];
        fw_time_format((int64_t)m->first_day * FW_DAY, first);
        fw_time_format((int64_t)m->last_day * FW_DAY, last);
        first[10] = last[10] = '\0';
        double dec;
        json_t *dj = engage__decline(g, r, m->metric, 7, 28, now, &dec) ? json_null()
                                                                        : json_real(dec);
        json_object_set_new(metrics, intern_str(&r->metrics, m->metric),
                            json_pack("{s:s, s:s, s:i, s:f, s:f, s:o}", "first_day", first,
                                      "last_day", last, "known_days_of_35", days, "last_7_days",
                                      last7, "previous_28_days", prev28, "decline_7_28", dj));
    }
    for (uint32_t i = 0; g && i < g->nfeatures; i++)
        json_object_set_new(features, intern_str(&r->features, g->features[i].feature),
                            json_pack("{s:b, s:o}", "purchased", g->features[i].purchased,
                                      "last_used", time_json(g->features[i].last_used)));
    for (size_t i = 0; i < intern_count(&r->steps); i++)
        json_array_append_new((g && g->steps >> i & 1) ? steps : left,
                              json_string(intern_str(&r->steps, (uint32_t)i)));
    json_object_set_new(o, "signup", time_json(g ? g->signup : FW_TIME_NONE));
    json_object_set_new(o, "churned", time_json(g ? g->churned : FW_TIME_NONE));
    json_object_set_new(o, "metrics", metrics);
    json_object_set_new(o, "features", features);
    json_object_set_new(o, "onboarding_done", steps);
    json_object_set_new(o, "onboarding_left", left);
    return o;
}

size_t engage__bytes(const struct engage *g, const struct rules *r)
{
    if (!g)
        return 0;
    size_t n = sizeof *g + g->capfeatures * sizeof *g->features;
    for (uint32_t i = 0; i < g->nmetrics; i++)
        n += sizeof *g->metrics + sizeof(struct eng_metric) +
             engage__slot_bytes(g->metrics[i]->width, r->horizon_days);
    return n;
}

void engage__free(struct engage *g)
{
    if (!g)
        return;
    for (uint32_t i = 0; i < g->nmetrics; i++)
        free(g->metrics[i]);
    free(g->metrics);
    free(g->features);
    free(g);
}

/* ---- snapshots (snap.c) ---- */

void engage__write(const struct engage *g, const struct rules *r, struct buf *out)
{
    wire_put_u8(out, g != NULL);
    if (!g)
        return;
    wire_put_i64(out, g->signup);
    wire_put_i64(out, g->churned);
    wire_put_u64(out, g->steps);
    wire_put_u32(out, g->nmetrics);
    for (uint32_t i = 0; i < g->nmetrics; i++) {
        const struct eng_metric *m = g->metrics[i];
        wire_put_u32(out, m->metric);
        wire_put_u32(out, (uint32_t)m->first_day);
        wire_put_u32(out, (uint32_t)m->last_day);
        wire_put_u8(out, m->width);
        wire_put_bytes(out, m->days, engage__slot_bytes(m->width, r->horizon_days));
    }
    wire_put_u32(out, g->nfeatures);
    for (uint32_t i = 0; i < g->nfeatures; i++) {
        wire_put_u32(out, g->features[i].feature);
        wire_put_u32(out, g->features[i].purchased);
        wire_put_i64(out, g->features[i].last_used);
    }
}

int engage__read(struct engage **pg, const struct rules *r, struct wire_rd *in)
{
    *pg = NULL;
    if (!wire_get_u8(in))
        return in->err ? -1 : 0;
    struct engage *g = xcalloc(1, sizeof *g);
    *pg = g; /* engage__free takes whatever was read so far */
    g->signup = wire_get_time(in);
    g->churned = wire_get_time(in);
    g->steps = wire_get_u64(in);
    uint32_t n = wire_get_count(in, 17 + (size_t)r->horizon_days);
    g->metrics = xcalloc(n + 1, sizeof *g->metrics);
    for (uint32_t i = 0; i < n && !in->err; i++) {
        uint32_t id = wire_get_u32(in);
        int32_t first = (int32_t)wire_get_u32(in), last = (int32_t)wire_get_u32(in);
        uint8_t width = wire_get_u8(in);
        size_t len = 0;
        const void *days = wire_get_bytes(in, &len);
        if (in->err || id >= intern_count(&r->metrics) || (width != 8 && width != 12 && width != 16) ||
            len != engage__slot_bytes(width, r->horizon_days)) {
            in->err = 1;
            break;
        }
        struct eng_metric *m = xcalloc(1, sizeof *m + len);
        g->metrics[g->nmetrics++] = m;
        m->metric = (uint16_t)id;
        m->width = width;
        m->first_day = first;
        m->last_day = last;
        memcpy(m->days, days, len);
    }
    n = wire_get_count(in, 16);
    if (n > ENGAGE_MAX_FEATURES)
        in->err = 1;
    g->capfeatures = n;
    g->features = xcalloc(n + 1, sizeof *g->features);
    for (uint32_t i = 0; i < n && !in->err; i++) {
        struct eng_feature *f = &g->features[g->nfeatures++];
        f->feature = wire_get_u32(in);
        f->purchased = wire_get_u32(in);
        f->last_used = wire_get_time(in);
        if (f->feature >= intern_count(&r->features))
            in->err = 1;
    }
    return in->err ? -1 : 0;
}
