/*
 * test_calendar.c -- business calendars: calendar_add / elapsed / open_at
 * over weekends, holidays, DST changes and split days, plus properties
 * checked against random starts and amounts.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../test.h"
#include "cases/calendar.h"
#include "util/fwtime.h"
#include "util/tz.h"
#include "util/util.h"

static int64_t at(const char *s)
{
    int64_t t = FW_TIME_NONE;
    fw_time_parse(s, strlen(s), &t);
    return t;
}

static struct calendar *cal(const char *zone)
{
    char err[256];
    struct tz *z = tz_load(zone, err, sizeof err);
    if (!z) {
        fprintf(stderr, "    %s\n", err);
        return NULL;
    }
    return calendar_new(zone, z);
}

/* America/New_York, 09:00-17:00 Monday to Friday, closed 2026-12-25. */
static struct calendar *office(void)
{
    struct calendar *c = cal("America/New_York");
    if (!c)
        return NULL;
    for (int d = CAL_MON; d <= CAL_FRI; d++)
        calendar_add_hours(c, d, 9 * 60, 17 * 60);
    calendar_add_holiday(c, 2026, 12, 25);
    return c;
}

#define H FW_HOUR
#define M FW_MINUTE

static void cal_weekend(void)
{
    struct calendar *c = office();
    ASSERT(c);
    ASSERT_EQ(calendar_week_minutes(c), 40 * 60);
    /* Friday 2026-01-09 20:00 EST + 8h = Monday 17:00 EST. */
    ASSERT_EQ(calendar_add(c, at("2026-01-10T01:00:00Z"), 8 * H), at("2026-01-12T22:00:00Z"));
    /* Friday 16:00 + 2h = Monday 10:00. */
    ASSERT_EQ(calendar_add(c, at("2026-01-09T21:00:00Z"), 2 * H), at("2026-01-12T15:00:00Z"));
    ASSERT_EQ(calendar_elapsed(c, at("2026-01-09T21:00:00Z"), at("2026-01-12T15:00:00Z")), 2 * H);
    ASSERT_EQ(calendar_elapsed(c, at("2026-01-10T00:00:00Z"), at("2026-01-12T00:00:00Z")), 0);
    ASSERT(!calendar_open_at(c, at("2026-01-10T17:00:00Z"))); /* Saturday noon */
    /* 72 business hours from Monday 09:00 = nine working days: Thursday of the next week, 17:00. */
    ASSERT_EQ(calendar_add(c, at("2026-01-05T14:00:00Z"), 72 * H), at("2026-01-15T22:00:00Z"));
    ASSERT_STREQ(calendar_name(c), "America/New_York");
    calendar_free(c);
}

static void cal_holiday(void)
{
    struct calendar *c = office();
    ASSERT(c);
    /* Thursday 2026-12-24 16:00 EST + 2h: Friday is Christmas, so Monday 10:00. */
    ASSERT_EQ(calendar_add(c, at("2026-12-24T21:00:00Z"), 2 * H), at("2026-12-28T15:00:00Z"));
    ASSERT(!calendar_open_at(c, at("2026-12-25T15:00:00Z")));
    ASSERT(calendar_open_at(c, at("2026-12-24T15:00:00Z")));
    ASSERT_EQ(calendar_elapsed(c, at("2026-12-21T00:00:00Z"), at("2026-12-28T00:00:00Z")), 32 * H);
    ASSERT_EQ(calendar_add_holiday(c, 2026, 12, 25), FW_EEXISTS);
    ASSERT_EQ(calendar_add_holiday(c, 2026, 2, 29), FW_EINVAL);
    ASSERT_EQ(calendar_add_holiday(c, 2028, 2, 29), 0);
    calendar_free(c);
}

static void cal_boundaries(void)
{
    struct calendar *c = office();
    ASSERT(c);
    /* Starting at closing time exactly counts nothing that day. */
    ASSERT_EQ(calendar_add(c, at("2026-01-09T22:00:00Z"), 1 * H), at("2026-01-12T15:00:00Z"));
    /* Running out exactly at closing time ends there, not at the next opening. */
    ASSERT_EQ(calendar_add(c, at("2026-01-12T14:00:00Z"), 8 * H), at("2026-01-12T22:00:00Z"));
    ASSERT_EQ(calendar_add(c, at("2026-01-12T13:00:00Z"), 8 * H), at("2026-01-12T22:00:00Z"));
    ASSERT_EQ(calendar_add(c, at("2026-01-12T22:00:00Z"), 1), at("2026-01-13T14:00:00.001Z"));
    ASSERT_EQ(calendar_elapsed(c, at("2026-01-12T14:00:00Z"), at("2026-01-12T22:00:00Z")), 8 * H);
    ASSERT(calendar_open_at(c, at("2026-01-12T14:00:00Z")));
    ASSERT(!calendar_open_at(c, at("2026-01-12T13:59:59.999Z")));
    ASSERT(calendar_open_at(c, at("2026-01-12T21:59:59.999Z")));
    ASSERT(!calendar_open_at(c, at("2026-01-12T22:00:00Z")));
    /* amount 0 is the start itself, open or not; to <= from is nothing. */
    ASSERT_EQ(calendar_add(c, at("2026-01-10T01:00:00Z"), 0), at("2026-01-10T01:00:00Z"));
    ASSERT_EQ(calendar_elapsed(c, at("2026-01-12T22:00:00Z"), at("2026-01-12T14:00:00Z")), 0);
    calendar_free(c);
}

static void cal_dst(void)
{
    struct calendar *c = office();
    ASSERT(c);
    /* Friday 2026-03-06 20:00 EST + 8h = Monday 03-09 17:00, now EDT. */
    ASSERT_EQ(calendar_add(c, at("2026-03-07T01:00:00Z"), 8 * H), at("2026-03-09T21:00:00Z"));
    ASSERT_EQ(calendar_elapsed(c, at("2026-03-09T13:00:00Z"), at("2026-03-09T21:00:00Z")), 8 * H);
    calendar_free(c);

    /* Every day 00:00-24:00 local: the change days are 23 and 25 hours, and the whole
       calendar is 24x7, so it agrees with NULL. */
    c = cal("America/New_York");
    ASSERT(c);
    for (int d = CAL_MON; d <= CAL_SUN; d++)
        ASSERT_EQ(calendar_add_hours(c, d, 0, 1440), 0);
    ASSERT_EQ(calendar_elapsed(c, at("2026-03-08T05:00:00Z"), at("2026-03-09T04:00:00Z")), 23 * H);
    ASSERT_EQ(calendar_elapsed(c, at("2026-11-01T04:00:00Z"), at("2026-11-02T05:00:00Z")), 25 * H);
    ASSERT_EQ(calendar_add(c, at("2026-03-07T17:00:00Z"), 24 * H), at("2026-03-08T17:00:00Z"));
    ASSERT_EQ(calendar_elapsed(c, at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z")),
              365 * FW_DAY);
    calendar_free(c);

    /* Sunday hours on the change days: 09:00-17:00 is still 8h; 01:00-04:00 is 2h in spring
       (02:00-03:00 never happens) and 4h in autumn (01:00-02:00 happens twice, counted from
       its first occurrence to the one 02:00). */
    c = cal("America/New_York");
    ASSERT(c);
    ASSERT_EQ(calendar_add_hours(c, CAL_SUN, 60, 240), 0);
    ASSERT_EQ(calendar_add_hours(c, CAL_SUN, 9 * 60, 17 * 60), 0);
    ASSERT_EQ(calendar_elapsed(c, at("2026-03-08T00:00:00Z"), at("2026-03-09T00:00:00Z")), 10 * H);
    ASSERT_EQ(calendar_elapsed(c, at("2026-11-01T00:00:00Z"), at("2026-11-02T00:00:00Z")), 12 * H);
    ASSERT_EQ(calendar_elapsed(c, at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z")), 11 * H);
    /* 30 minutes from Sunday 03-08 01:45 EST: 15 before the jump, 15 after it (03:15 EDT). */
    ASSERT_EQ(calendar_add(c, at("2026-03-08T06:45:00Z"), 30 * M), at("2026-03-08T07:15:00Z"));
    calendar_free(c);
}

static void cal_lunch_break(void)
{
    struct calendar *c = cal("Europe/Berlin");
    ASSERT(c);
    for (int d = CAL_MON; d <= CAL_FRI; d++) {
        ASSERT_EQ(calendar_add_hours(c, d, 13 * 60, 17 * 60), 0);
        ASSERT_EQ(calendar_add_hours(c, d, 9 * 60, 12 * 60), 0); /* out of order is fine */
    }
    ASSERT_EQ(calendar_add_hours(c, CAL_MON, 11 * 60, 14 * 60), FW_EEXISTS);
    ASSERT_EQ(calendar_add_hours(c, CAL_MON, 12 * 60, 13 * 60), 0); /* touching is not overlap */
    ASSERT_EQ(calendar_add_hours(c, CAL_TUE, 17 * 60, 16 * 60), FW_EINVAL);
    ASSERT_EQ(calendar_add_hours(c, 7, 0, 60), FW_EINVAL);
    /* Tuesday 2026-01-13 (CET, +1): 11:00 + 2h = 14:00; 12:30 + 30m = 13:30. */
    ASSERT_EQ(calendar_add(c, at("2026-01-13T10:00:00Z"), 2 * H), at("2026-01-13T13:00:00Z"));
    ASSERT_EQ(calendar_add(c, at("2026-01-13T11:30:00Z"), 30 * M), at("2026-01-13T12:30:00Z"));
    ASSERT_EQ(calendar_add(c, at("2026-01-13T10:00:00Z"), 1 * H), at("2026-01-13T11:00:00Z"));
    ASSERT_EQ(calendar_elapsed(c, at("2026-01-13T07:00:00Z"), at("2026-01-13T17:00:00Z")), 7 * H);
    ASSERT(!calendar_open_at(c, at("2026-01-13T11:30:00Z")));
    ASSERT(calendar_open_at(c, at("2026-01-12T11:30:00Z"))); /* Monday has no break now */
    calendar_free(c);
}

static void cal_null_is_24x7(void)
{
    int64_t t = at("2026-03-08T06:00:00Z");
    ASSERT_EQ(calendar_add(NULL, t, 72 * H), t + 72 * H);
    ASSERT_EQ(calendar_add(NULL, t, 0), t);
    ASSERT_EQ(calendar_add(NULL, FW_TIME_MAX - 5, 10), FW_TIME_MAX);
    ASSERT_EQ(calendar_elapsed(NULL, t, t + 5 * H), 5 * H);
    ASSERT_EQ(calendar_elapsed(NULL, t, t - 5), 0);
    ASSERT(calendar_open_at(NULL, t));
}

/* One hour a week, for years: whole weeks are skipped, and the search is bounded. */
static void cal_sparse_and_bounded(void)
{
    struct calendar *c = cal("America/New_York");
    ASSERT(c);
    ASSERT_EQ(calendar_add(c, 0, H), FW_TIME_MAX); /* no hours at all */
    ASSERT_EQ(calendar_add_hours(c, CAL_WED, 10 * 60, 11 * 60), 0);
    /* Wednesday 2026-01-07 11:00 EST + 100h = the 100th Wednesday after, 11:00 EST. */
    int64_t t = calendar_add(c, at("2026-01-07T16:00:00Z"), 100 * H);
    ASSERT_EQ(t, at("2027-12-08T16:00:00Z"));
    ASSERT_EQ(calendar_elapsed(c, at("2026-01-07T16:00:00Z"), t), 100 * H);
    /* 9 years is fine, 11 is beyond the search. */
    ASSERT(calendar_add(c, at("2026-01-07T16:00:00Z"), 9 * 52 * H) < FW_TIME_MAX);
    ASSERT_EQ(calendar_add(c, at("2026-01-07T16:00:00Z"), 11 * 53 * H), FW_TIME_MAX);
    /* Cost: a thousand 9-year searches, far below a minute-by-minute walk. */
    int64_t t0 = fw_mono_ns();
    for (int i = 0; i < 1000; i++)
        ASSERT(calendar_add(c, at("2026-01-07T16:00:00Z") + i * M, 9 * 52 * H) < FW_TIME_MAX);
    ASSERT((fw_mono_ns() - t0) / 1000000 < 2000);
    calendar_free(c);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(uint64_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state % n;
}

/*
 * For many calendars, random starts and amounts: calendar_add gives the
 * smallest instant with that much working time (elapsed is `a` there and
 * a - 1 one ms before), elapsed is additive, and a long span (which the
 * week skipping handles) equals the sum of its short pieces (which it does
 * not).  Minute-granular results are checked against open_at.
 */
static void cal_properties(void)
{
    struct calendar *cs[4];
    cs[0] = office();
    cs[1] = cal("Europe/Berlin");
    cs[2] = cal("Australia/Lord_Howe");
    cs[3] = cal("America/Santiago");
    for (int i = 0; i < 4; i++)
        ASSERT(cs[i]);
    for (int d = CAL_MON; d <= CAL_FRI; d++) {
        calendar_add_hours(cs[1], d, 9 * 60, 12 * 60);
        calendar_add_hours(cs[1], d, 13 * 60, 17 * 60 + 30);
    }
    calendar_add_hours(cs[1], CAL_SAT, 10 * 60, 11 * 60);
    calendar_add_holiday(cs[1], 2027, 4, 1);
    calendar_add_holiday(cs[1], 2027, 4, 2);
    calendar_add_hours(cs[2], CAL_SAT, 0, 1440);
    calendar_add_hours(cs[2], CAL_SUN, 0, 1440);
    calendar_add_hours(cs[2], CAL_SUN, 0, 1440); /* refused (overlap); changes nothing */
    calendar_add_hours(cs[3], CAL_SUN, 0, 30);   /* Santiago changes clocks at midnight */
    calendar_add_hours(cs[3], CAL_SAT, 23 * 60, 1440);
    calendar_add_hours(cs[3], CAL_WED, 0, 1440);
    int64_t base = at("2026-01-01T00:00:00Z");
    for (int k = 0; k < 4; k++) {
        const struct calendar *c = cs[k];
        for (int i = 0; i < 400; i++) {
            int64_t start = base + (int64_t)rnd(4ULL * 365 * FW_DAY);
            int64_t a = (int64_t)rnd(i % 4 ? 60 * H : 2000 * H) + (i % 3 ? 0 : 1);
            int64_t t = calendar_add(c, start, a);
            ASSERT(t >= start && t < FW_TIME_MAX);
            ASSERT_EQ(calendar_elapsed(c, start, t), a);
            if (a > 0) {
                ASSERT_EQ(calendar_elapsed(c, start, t - 1), a - 1);
                ASSERT(calendar_open_at(c, t - 1));
            }
            int64_t mid = start + (int64_t)rnd((uint64_t)(t - start) + 1);
            ASSERT_EQ(calendar_elapsed(c, start, mid) + calendar_elapsed(c, mid, t), a);
        }
        /* Long spans against the sum of 3-day pieces. */
        for (int i = 0; i < 20; i++) {
            int64_t from = base + (int64_t)rnd(3ULL * 365 * FW_DAY);
            int64_t to = from + (int64_t)rnd(400ULL * FW_DAY);
            int64_t sum = 0;
            for (int64_t p = from; p < to; p += 3 * FW_DAY)
                sum += calendar_elapsed(c, p, p + 3 * FW_DAY < to ? p + 3 * FW_DAY : to);
            ASSERT_EQ(calendar_elapsed(c, from, to), sum);
        }
        /* Minute by minute against open_at over two weeks from random minute starts. */
        for (int i = 0; i < 5; i++) {
            int64_t from = base + (int64_t)rnd(3ULL * 365 * 1440) * M, open = 0;
            for (int64_t p = from; p < from + 14 * FW_DAY; p += M) {
                if ((p - from) % H == 0)
                    ASSERT_EQ(calendar_elapsed(c, from, p), open);
                open += calendar_open_at(c, p) ? M : 0;
            }
        }
    }
    for (int i = 0; i < 4; i++)
        calendar_free(cs[i]);
}

const struct test calendar_tests[] = {
    {"weekend", cal_weekend},
    {"holiday", cal_holiday},
    {"boundaries", cal_boundaries},
    {"dst", cal_dst},
    {"lunch_break", cal_lunch_break},
    {"null_is_24x7", cal_null_is_24x7},
    {"sparse_and_bounded", cal_sparse_and_bounded},
    {"properties", cal_properties},
    {NULL, NULL},
};
