/*
 * calendar.c -- working time of a business calendar.
 *
 * Local day D (days since 1970-01-01 on the local calendar) spans the
 * instants [day_start(D), day_start(D + 1)); its working intervals are its
 * ranges mapped through the zone, in order, inside that span.  Because the
 * local -> UTC mapping never goes backwards, the intervals of successive
 * days are ordered and disjoint, and every query is a walk over days.
 *
 * The walk skips whole weeks at once when a week is "plain": no holiday in
 * it and the zone's offset constant over it.  A plain week holds exactly
 * the nominal week's working time (week_minutes), so a clock of one hour a
 * week or 72 business hours costs a few steps per DST change and holiday,
 * not one per day.
 */
#include "cases/calendar.h"

#include <stdlib.h>
#include <string.h>

#include "util/fwtime.h"
#include "util/util.h"

/* Instants outside years 1..9999 are clamped, which keeps day arithmetic far from overflow. */
#define CAL_T_MIN (-62135596800000LL) /* 0001-01-01T00:00:00Z */
#define CAL_T_MAX (253402300800000LL) /* 10000-01-01T00:00:00Z */
#define WEEK (7 * FW_DAY)

struct cal_range {
    int start, end; /* minutes after local midnight, start < end <= 1440 */
};

struct calendar {
    char *name;
    struct tz *tz;
    struct cal_range *hours[7]; /* per weekday (CAL_MON..), sorted, disjoint */
    size_t nhours[7];
    int64_t *holidays; /* local days, sorted, unique */
    size_t nholidays;
    int week_minutes; /* sum of all ranges */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t clamp(int64_t t)
{
    return t < CAL_T_MIN ? CAL_T_MIN : t > CAL_T_MAX ? CAL_T_MAX : t;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int weekday(int64_t day)
{
    int64_t w = (day + 3) % 7; /* CAL_MON = 0; 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static int64_t day_start(const struct calendar *c, int64_t day)
{
    return tz_local_day_to_utc(c->tz, day, 0);
}

/* The local day whose span holds t (not simply t's local date: around a
   midnight that happens twice, the spans decide). */
static int64_t day_of(const struct calendar *c, int64_t t)
{
    int64_t d = floor_div(t + (int64_t)tz_offset(c->tz, t) * 1000, FW_DAY);
    while (day_start(c, d) > t)
        d--;
    while (day_start(c, d + 1) <= t)
        d++;
    return d;
}

/* Index of the first holiday >= day. */
static size_t holiday_at_or_after(const struct calendar *c, int64_t day)
{
    size_t lo = 0, hi = c->nholidays;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->holidays[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int is_holiday(const struct calendar *c, int64_t day)
{
    size_t i = holiday_at_or_after(c, day);
    return i < c->nholidays && c->holidays[i] == day;
}

/*
 * How many whole plain weeks, at most max, start at local day `day`.  In a
 * plain stretch the offset o is constant, so every local time L maps to
 * L - o and each week holds exactly week_minutes.
 */
static int64_t plain_weeks(const struct calendar *c, int64_t day, int64_t max)
{
    if (max <= 0)
        return 0;
    size_t h = holiday_at_or_after(c, day);
    if (h < c->nholidays)
        max = min64(max, (c->holidays[h] - day) / 7);
    if (max <= 0)
        return 0;
    int64_t a = day_start(c, day);
    if (a + (int64_t)tz_offset(c->tz, a) * 1000 != day * FW_DAY)
        return 0; /* midnight itself was skipped by a change */
    int64_t change = tz_next_change(c->tz, a);
    if (change != FW_TIME_MAX)
        max = min64(max, (change - a - 1) / WEEK);
    return max > 0 ? max : 0;
}

struct calendar *calendar_new(const char *name, struct tz *tz)
{
    struct calendar *c = xcalloc(1, sizeof *c);
    c->name = xstrdup(name);
    c->tz = tz;
    return c;
}

void calendar_free(struct calendar *c)
{
    if (!c)
        return;
    for (int i = 0; i < 7; i++)
        free(c->hours[i]);
    free(c->holidays);
    tz_free(c->tz);
    free(c->name);
    free(c);
}

int calendar_add_hours(struct calendar *c, int wday, int start, int end)
{
    if (wday < CAL_MON || wday > CAL_SUN || start < 0 || end > 1440 || start >= end)
        return FW_EINVAL;
    struct cal_range *r = c->hours[wday];
    size_t n = c->nhours[wday], i = 0;
    while (i < n && r[i].start < start)
        i++;
    if ((i > 0 && r[i - 1].end > start) || (i < n && r[i].start < end))
        return FW_EEXISTS;
    r = xrealloc(r, (n + 1) * sizeof *r);
    memmove(r + i + 1, r + i, (n - i) * sizeof *r);
    r[i] = (struct cal_range){start, end};
    c->hours[wday] = r;
    c->nhours[wday] = n + 1;
    c->week_minutes += end - start;
    return 0;
}

int calendar_add_holiday(struct calendar *c, int y, int m, int d)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > len[m - 1] + (m == 2 && leap))
        return FW_EINVAL;
    int64_t day = fw_days_from_civil(y, (unsigned)m, (unsigned)d);
    size_t i = holiday_at_or_after(c, day);
    if (i < c->nholidays && c->holidays[i] == day)
        return FW_EEXISTS;
    c->holidays = xrealloc(c->holidays, (c->nholidays + 1) * sizeof *c->holidays);
    memmove(c->holidays + i + 1, c->holidays + i, (c->nholidays - i) * sizeof *c->holidays);
    c->holidays[i] = day;
    c->nholidays++;
    return 0;
}

int calendar_week_minutes(const struct calendar *c) { return c->week_minutes; }

const char *calendar_name(const struct calendar *c) { return c->name; }

const struct tz *calendar_tz(const struct calendar *c) { return c->tz; }

int64_t calendar_add(const struct calendar *c, int64_t start, int64_t amount)
{
    if (amount <= 0)
        return start;
    if (!c)
        return start > FW_TIME_MAX - amount ? FW_TIME_MAX : start + amount;
    if (!c->week_minutes || start >= CAL_T_MAX)
        return FW_TIME_MAX;
    int64_t from = clamp(start), weekly = (int64_t)c->week_minutes * FW_MINUTE;
    int64_t first = day_of(c, from), day = first, left = amount;
    while (day - first <= CAL_SEARCH_DAYS) {
        if (day > first) {
            /* Leave at least one ms for the day walk, so the end lands inside a range. */
            int64_t k = plain_weeks(
                c, day, min64((left - 1) / weekly, (CAL_SEARCH_DAYS - (day - first)) / 7));
            left -= k * weekly;
            day += 7 * k;
        }
        if (!is_holiday(c, day)) {
            const struct cal_range *r = c->hours[weekday(day)];
            for (size_t i = 0; i < c->nhours[weekday(day)]; i++) {
                int64_t s = tz_local_day_to_utc(c->tz, day, r[i].start);
                int64_t e = tz_local_day_to_utc(c->tz, day, r[i].end);
                if (e <= from)
                    continue;
                if (s < from)
                    s = from;
                if (e - s >= left)
                    return s + left;
                left -= e - s;
            }
        }
        day++;
    }
    return FW_TIME_MAX;
}

int64_t calendar_elapsed(const struct calendar *c, int64_t from, int64_t to)
{
    if (to <= from)
        return 0;
    if (!c)
        return from < 0 && to > FW_TIME_MAX + from ? FW_TIME_MAX : to - from;
    from = clamp(from);
    to = clamp(to);
    int64_t weekly = (int64_t)c->week_minutes * FW_MINUTE, total = 0;
    for (int64_t day = day_of(c, from), first = day;; day++) {
        int64_t ds = day_start(c, day);
        if (ds >= to)
            break;
        if (day > first && weekly) {
            int64_t k = plain_weeks(c, day, (to - ds) / WEEK);
            if (k) {
                total += k * weekly;
                day += 7 * k - 1;
                continue;
            }
        }
        if (is_holiday(c, day))
            continue;
        const struct cal_range *r = c->hours[weekday(day)];
        for (size_t i = 0; i < c->nhours[weekday(day)]; i++) {
            int64_t s = tz_local_day_to_utc(c->tz, day, r[i].start);
            int64_t e = tz_local_day_to_utc(c->tz, day, r[i].end);
            if (s < from)
                s = from;
            if (e > to)
                e = to;
            if (e > s)
                total += e - s;
        }
    }
    return total;
}

int calendar_open_at(const struct calendar *c, int64_t t)
{
    if (!c)
        return 1;
    t = clamp(t);
    int64_t day = day_of(c, t);
    if (is_holiday(c, day))
        return 0;
    const struct cal_range *r = c->hours[weekday(day)];
    for (size_t i = 0; i < c->nhours[weekday(day)]; i++)
        if (tz_local_day_to_utc(c->tz, day, r[i].start) <= t &&
            t < tz_local_day_to_utc(c->tz, day, r[i].end))
            return 1;
    return 0;
}
