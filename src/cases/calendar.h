/*
 * calendar.h -- business calendars for SLA clocks: a time zone, weekly
 * working hours in local time and whole-day holidays.
 *
 * Working time is a set of UTC intervals: for every local day that is not a
 * holiday, each of its ranges [start, end) (minutes after local midnight)
 * mapped through tz_local_to_utc.  So 09:00-17:00 is 8 hours on any day,
 * including a DST change day, while 00:00-24:00 is 23 or 25 hours on one;
 * a range inside the skipped hour is empty, and a local time that happens
 * twice counts from its first occurrence.
 *
 * A calendar is immutable once built and may be shared between threads.
 * NULL stands for 24x7 in every query.
 */
#ifndef FW_CALENDAR_H
#define FW_CALENDAR_H

#include <stdint.h>

#include "util/tz.h"

struct calendar; /* opaque */

/* Weekdays as calendar_add_hours takes them. */
enum { CAL_MON, CAL_TUE, CAL_WED, CAL_THU, CAL_FRI, CAL_SAT, CAL_SUN };

/* How far calendar_add looks before giving up (FW_TIME_MAX). */
#define CAL_SEARCH_DAYS (3653) /* ten years */

/*
 * A calendar with no hours and no holidays, named `name` (copied), in zone
 * `tz`, which it takes over (freed by calendar_free).
 */
struct calendar *calendar_new(const char *name, struct tz *tz);
/*
 * Add the working range [start, end) in minutes after local midnight
 * (0 <= start < end <= 1440) to weekday wday (CAL_MON..CAL_SUN).  Returns 0,
 * FW_EINVAL for a bad weekday or range, FW_EEXISTS when it overlaps a range
 * already on that day (touching ranges are fine).
 */
int calendar_add_hours(struct calendar *c, int wday, int start, int end);
/* Close the whole local day y-m-d.  FW_EINVAL: no such date; FW_EEXISTS: already a holiday. */
int calendar_add_holiday(struct calendar *c, int y, int m, int d);
/* Working minutes in a normal week (no holiday, no DST change); 0 = never open. */
int calendar_week_minutes(const struct calendar *c);
void calendar_free(struct calendar *c); /* NULL does nothing */

const char *calendar_name(const struct calendar *c);
/* The calendar's zone (owned by c). */
const struct tz *calendar_tz(const struct calendar *c);

/*
 * The instant at which `amount` ms of working time has elapsed counting
 * from `start`: the smallest t >= start with calendar_elapsed(c, start, t)
 * == amount.  So a clock that runs out exactly at closing time ends at
 * closing time, not at the next opening.  amount <= 0 returns start.
 * FW_TIME_MAX when that is more than CAL_SEARCH_DAYS away (or the calendar
 * has no hours at all).  Whole weeks without holidays or offset changes are
 * skipped arithmetically, so the cost grows with the holidays and DST
 * changes crossed, not with the amount.
 */
int64_t calendar_add(const struct calendar *c, int64_t start, int64_t amount);
/* Working time in [from, to); 0 when to <= from. */
int64_t calendar_elapsed(const struct calendar *c, int64_t from, int64_t to);
/* 1 when t is inside working time, else 0. */
int calendar_open_at(const struct calendar *c, int64_t t);

#endif
