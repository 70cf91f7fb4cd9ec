/*
 * test_tz.c -- TZif loading, offsets, next change, local -> UTC.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../test.h"
#include "util/fwtime.h"
#include "util/tz.h"

/* An RFC 3339 instant, for readable expectations. */
static int64_t at(const char *s)
{
    int64_t t = FW_TIME_NONE;
    fw_time_parse(s, strlen(s), &t);
    return t;
}

static struct tz *load(const char *name)
{
    char err[256];
    struct tz *z = tz_load(name, err, sizeof err);
    if (!z)
        fprintf(stderr, "    tz_load(%s): %s\n", name, err);
    return z;
}

static void tz_new_york_2026(void)
{
    struct tz *z = load("America/New_York");
    ASSERT(z);
    ASSERT_STREQ(tz_name(z), "America/New_York");
    /* Spring forward: 2026-03-08 02:00 EST = 07:00Z. */
    ASSERT_EQ(tz_offset(z, at("2026-03-08T06:59:59.999Z")), -5 * 3600);
    ASSERT_EQ(tz_offset(z, at("2026-03-08T07:00:00Z")), -4 * 3600);
    ASSERT_EQ(tz_next_change(z, at("2026-01-15T00:00:00Z")), at("2026-03-08T07:00:00Z"));
    /* Fall back: 2026-11-01 02:00 EDT = 06:00Z. */
    ASSERT_EQ(tz_offset(z, at("2026-11-01T05:59:59Z")), -4 * 3600);
    ASSERT_EQ(tz_offset(z, at("2026-11-01T06:00:00Z")), -5 * 3600);
    ASSERT_EQ(tz_next_change(z, at("2026-03-08T07:00:00Z")), at("2026-11-01T06:00:00Z"));
    /* Ordinary local times. */
    ASSERT_EQ(tz_local_to_utc(z, 2026, 3, 6, 9 * 60), at("2026-03-06T14:00:00Z"));
    ASSERT_EQ(tz_local_to_utc(z, 2026, 3, 9, 9 * 60), at("2026-03-09T13:00:00Z"));
    /* 02:30 on 03-08 does not exist: the instant the clock jumps past it (03:00 EDT). */
    ASSERT_EQ(tz_local_to_utc(z, 2026, 3, 8, 2 * 60 + 30), at("2026-03-08T07:00:00Z"));
    ASSERT_EQ(tz_local_to_utc(z, 2026, 3, 8, 2 * 60), at("2026-03-08T07:00:00Z"));
    ASSERT_EQ(tz_local_to_utc(z, 2026, 3, 8, 3 * 60), at("2026-03-08T07:00:00Z"));
    ASSERT_EQ(tz_local_to_utc(z, 2026, 3, 8, 60 + 59), at("2026-03-08T06:59:00Z"));
    /* 01:30 on 11-01 happens twice: the first (EDT). */
    ASSERT_EQ(tz_local_to_utc(z, 2026, 11, 1, 90), at("2026-11-01T05:30:00Z"));
    ASSERT_EQ(tz_local_to_utc(z, 2026, 11, 1, 120), at("2026-11-01T07:00:00Z"));
    /* 24:00 is the next midnight; the change days are 23 and 25 hours long. */
    ASSERT_EQ(tz_local_to_utc(z, 2026, 3, 8, 1440) - tz_local_to_utc(z, 2026, 3, 8, 0),
              23 * FW_HOUR);
    ASSERT_EQ(tz_local_to_utc(z, 2026, 11, 1, 1440) - tz_local_to_utc(z, 2026, 11, 1, 0),
              25 * FW_HOUR);
    tz_free(z);
}

static void tz_berlin_and_half_hours(void)
{
    struct tz *z = load("Europe/Berlin");
    ASSERT(z);
    ASSERT_EQ(tz_offset(z, at("2026-03-29T00:59:59Z")), 3600);
    ASSERT_EQ(tz_offset(z, at("2026-03-29T01:00:00Z")), 7200);
    ASSERT_EQ(tz_offset(z, at("2026-10-25T00:59:59Z")), 7200);
    ASSERT_EQ(tz_offset(z, at("2026-10-25T01:00:00Z")), 3600);
    ASSERT_EQ(tz_local_to_utc(z, 2026, 7, 1, 12 * 60), at("2026-07-01T10:00:00Z"));
    tz_free(z);

    /* Lord Howe: +10:30 standard, +11 in (southern) summer: a half-hour shift. */
    z = load("Australia/Lord_Howe");
    ASSERT(z);
    ASSERT_EQ(tz_offset(z, at("2026-01-15T00:00:00Z")), 11 * 3600);
    ASSERT_EQ(tz_offset(z, at("2026-06-15T00:00:00Z")), 10 * 3600 + 1800);
    /* DST ends 2026-04-05 02:00 local (+11) = 2026-04-04T15:00Z. */
    ASSERT_EQ(tz_offset(z, at("2026-04-04T14:59:59Z")), 11 * 3600);
    ASSERT_EQ(tz_offset(z, at("2026-04-04T15:00:00Z")), 10 * 3600 + 1800);
    ASSERT_EQ(tz_next_change(z, at("2026-02-01T00:00:00Z")), at("2026-04-04T15:00:00Z"));
    /* 01:45 on that day happens twice (02:00 -> 01:30): the first. */
    ASSERT_EQ(tz_local_to_utc(z, 2026, 4, 5, 105), at("2026-04-04T14:45:00Z"));
    tz_free(z);

    z = load("Asia/Kolkata");
    ASSERT(z);
    ASSERT_EQ(tz_offset(z, at("2026-03-08T07:00:00Z")), 5 * 3600 + 1800);
    ASSERT_EQ(tz_next_change(z, at("2026-01-01T00:00:00Z")), FW_TIME_MAX);
    ASSERT_EQ(tz_local_to_utc(z, 2026, 1, 1, 0), at("2025-12-31T18:30:00Z"));
    tz_free(z);
}

static void tz_utc(void)
{
    static const char *names[] = {"UTC", "Etc/UTC"};
    for (size_t i = 0; i < 2; i++) {
        struct tz *z = load(names[i]);
        ASSERT(z);
        ASSERT_EQ(tz_offset(z, at("2026-07-01T00:00:00Z")), 0);
        ASSERT_EQ(tz_offset(z, -1), 0);
        ASSERT_EQ(tz_next_change(z, 0), FW_TIME_MAX);
        ASSERT_EQ(tz_local_to_utc(z, 2026, 3, 8, 150), at("2026-03-08T02:30:00Z"));
        tz_free(z);
    }
}

/* Far beyond the transition table, the footer's POSIX rule decides. */
static void tz_far_future(void)
{
    struct tz *z = load("America/New_York");
    ASSERT(z);
    ASSERT_EQ(tz_offset(z, at("2100-07-01T12:00:00Z")), -4 * 3600);
    ASSERT_EQ(tz_offset(z, at("2100-01-01T12:00:00Z")), -5 * 3600);
    /* 2100-03-14 is the second Sunday of March: 02:00 EST = 07:00Z. */
    ASSERT_EQ(tz_offset(z, at("2100-03-14T06:59:59Z")), -5 * 3600);
    ASSERT_EQ(tz_offset(z, at("2100-03-14T07:00:00Z")), -4 * 3600);
    ASSERT_EQ(tz_next_change(z, at("2100-01-01T00:00:00Z")), at("2100-03-14T07:00:00Z"));
    ASSERT_EQ(tz_local_to_utc(z, 2100, 3, 14, 150), at("2100-03-14T07:00:00Z"));
    ASSERT_EQ(tz_offset(z, at("3000-08-01T00:00:00Z")), -4 * 3600);
    tz_free(z);
    z = load("Australia/Lord_Howe");
    ASSERT(z);
    ASSERT_EQ(tz_offset(z, at("2100-01-15T00:00:00Z")), 11 * 3600);
    ASSERT_EQ(tz_offset(z, at("2100-06-15T00:00:00Z")), 10 * 3600 + 1800);
    tz_free(z);
}

static void tz_refuses(void)
{
    char err[256];
    ASSERT(!tz_load("Mars/Olympus_Mons", err, sizeof err));
    ASSERT_CONTAINS(err, "unknown time zone 'Mars/Olympus_Mons'");
    static const char *bad[] = {"../../../etc/passwd", "/etc/localtime",   "America/../UTC",
                                "America/New York",    "UTC;rm",           "",
                                "America/New_York\n",  "Europe/Berlin.bak"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ASSERT(!tz_load(bad[i], err, sizeof err));
        ASSERT_CONTAINS(err, "invalid time zone name");
    }
    /* A directory of zones is not a zone. */
    ASSERT(!tz_load("America", err, sizeof err));
    ASSERT_CONTAINS(err, "America");
    /* A file that is not TZif. */
    ASSERT(!tz_load_file("x", "test_list.h", err, sizeof err));
    ASSERT_CONTAINS(err, "not a TZif file");
    ASSERT(!tz_load(NULL, err, sizeof err));
    tz_free(NULL);
}

/* glibc as the oracle: offsets agree for many zones from 1900 to 2200 (tests are single-threaded,
   so setting TZ here is harmless). */
static void tz_matches_glibc(void)
{
    static const char *zones[] = {"America/New_York", "Europe/Berlin",     "Australia/Lord_Howe",
                                  "Asia/Kolkata",     "America/Santiago",  "Pacific/Chatham",
                                  "Europe/Dublin",    "Africa/Casablanca", "America/Sao_Paulo",
                                  "Asia/Tehran",      "Pacific/Apia",      "Australia/Sydney"};
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    int bad = 0;
    for (size_t i = 0; i < sizeof zones / sizeof zones[0] && !bad; i++) {
        struct tz *z = load(zones[i]);
        ASSERT(z);
        setenv("TZ", zones[i], 1);
        tzset();
        for (int64_t s = -2208988800LL; s < 7258118400LL && !bad; s += 86400 * 3 + 3541) {
            time_t tt = (time_t)s;
            struct tm tm;
            localtime_r(&tt, &tm);
            if (tz_offset(z, s * 1000) != tm.tm_gmtoff) {
                fprintf(stderr, "    %s at %lld: %d != glibc %ld\n", zones[i], (long long)s,
                        tz_offset(z, s * 1000), tm.tm_gmtoff);
                bad = 1;
            }
            /* Local -> UTC round-trips wherever the local time is not ambiguous. */
            int64_t local = s + tm.tm_gmtoff;
            int64_t day = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
            int minute = (int)((local - day * 86400) / 60);
            int64_t back = tz_local_day_to_utc(z, day, minute);
            int64_t want = (s - (local - day * 86400) % 60) * 1000;
            int first_of_two =
                back < want && back / 1000 + tz_offset(z, back) == want / 1000 + tz_offset(z, want);
            if (back != want && !first_of_two) {
                fprintf(stderr, "    %s round trip at %lld: %lld != %lld\n", zones[i], (long long)s,
                        (long long)back, (long long)want);
                bad = 1;
            }
        }
        tz_free(z);
    }
    if (old) {
        setenv("TZ", old, 1);
        free(old);
    } else {
        unsetenv("TZ");
    }
    tzset();
    ASSERT_EQ(bad, 0);
}

const struct test tz_tests[] = {
    {"new_york_2026", tz_new_york_2026},
    {"berlin_and_half_hours", tz_berlin_and_half_hours},
    {"utc", tz_utc},
    {"far_future", tz_far_future},
    {"refuses", tz_refuses},
    {"matches_glibc", tz_matches_glibc},
    {NULL, NULL},
};
