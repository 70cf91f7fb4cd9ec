/*
 * tz.h -- time zones from the compiled tz database, without the process-wide
 * TZ variable.
 *
 * A zone is read once from /usr/share/zoneinfo/<name> (TZif version 2 or
 * later: the 64-bit transition table, and the footer's POSIX TZ rule for
 * instants after its last transition) into an immutable value, so any
 * number of threads may convert with it at once.  Times are milliseconds
 * since the epoch (util/fwtime.h); offsets are whole seconds east of UTC.
 */
#ifndef FW_TZ_H
#define FW_TZ_H

#include <stddef.h>
#include <stdint.h>

struct tz; /* opaque, immutable once loaded */

/*
 * Load a zone by its tz database name ("America/New_York", "UTC").
 * Names must be made of [A-Za-z0-9_+/-], must not start with '/' and must
 * not contain "..", so a name from a config file can never leave the zone
 * directory.  "UTC" and "Etc/UTC" work even without tzdata installed.
 * Returns a zone the caller frees with tz_free, or NULL with a reason
 * ("unknown time zone 'Mars/Olympus'") written to err (NUL-terminated,
 * truncated to errlen).
 */
struct tz *tz_load(const char *name, char *err, size_t errlen);
/* Same, reading the zone from an explicit TZif file (tests, other roots). */
struct tz *tz_load_file(const char *name, const char *path, char *err, size_t errlen);
void tz_free(struct tz *z); /* NULL does nothing */

/* The name given to tz_load (owned by z). */
const char *tz_name(const struct tz *z);

/* Seconds east of UTC in effect at the instant utc_ms. */
int tz_offset(const struct tz *z, int64_t utc_ms);

/*
 * The first instant after utc_ms at which the offset changes, or
 * FW_TIME_MAX (INT64_MAX) when it never changes again.  Transitions that
 * only rename the zone or flip its DST flag without moving the clock are
 * skipped.
 */
int64_t tz_next_change(const struct tz *z, int64_t utc_ms);

/*
 * The instant (ms) of a local wall-clock time: the date y-mon-d (mon 1-12)
 * and minute_of_day minutes after local midnight.  minute_of_day may be
 * 1440 or more and carries into the following days, so "24:00" of one day
 * is "00:00" of the next.
 *
 * A local time that does not exist (the hour skipped when clocks spring
 * forward) gives the instant the wall clock jumps past it: 02:30 on a day
 * New York goes from 02:00 to 03:00 gives 03:00 local, the moment of the
 * change.  A local time that happens twice (clocks falling back) gives the
 * first occurrence.  The mapping is therefore non-decreasing in local time,
 * which is what lets local ranges be turned into ordered UTC intervals.
 */
int64_t tz_local_to_utc(const struct tz *z, int y, int mon, int d, int minute_of_day);
/* The same with the date as days since 1970-01-01 (fw_days_from_civil). */
int64_t tz_local_day_to_utc(const struct tz *z, int64_t day, int minute_of_day);

#endif
