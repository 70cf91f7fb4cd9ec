/*
 * fwtime.h -- time points and durations, both int64 milliseconds.
 *
 * A time point is milliseconds since the Unix epoch, UTC.  FW_TIME_NONE
 * marks "no time" (a type never seen, a key never set).
 */
#ifndef FW_FWTIME_H
#define FW_FWTIME_H

#include <stddef.h>
#include <stdint.h>

#define FW_TIME_NONE INT64_MIN
#define FW_TIME_MAX INT64_MAX
#define FW_TIME_MAXLEN 64 /* "2026-01-03T10:00:00.123Z" with room for any year */

#define FW_SECOND 1000LL
#define FW_MINUTE (60 * FW_SECOND)
#define FW_HOUR (60 * FW_MINUTE)
#define FW_DAY (24 * FW_HOUR)

/*
 * Parse an RFC 3339 date-time with a mandatory offset ("Z" or +hh:mm).
 * Fractions beyond milliseconds are truncated.  Returns 0 or FW_EPARSE;
 * *out is only written on success.
 */
int fw_time_parse(const char *s, size_t n, int64_t *out);

/*
 * Format as UTC "YYYY-MM-DDTHH:MM:SSZ" (".mmm" only when ms != 0), always
 * RFC 3339: a time before 0000-01-01T00:00:00Z or after
 * 9999-12-31T23:59:59.999Z prints as that bound.
 */
#define FW_TIME_PRINT_MIN (-62167219200000LL) /* 0000-01-01T00:00:00Z */
#define FW_TIME_PRINT_MAX 253402300799999LL   /* 9999-12-31T23:59:59.999Z */
void fw_time_format(int64_t ms, char out[FW_TIME_MAXLEN]);

/*
 * Parse a duration: one or more <integer><unit> groups, units ms s m h d w
 * ("90s", "15m", "48h", "7d", "1h30m").  Returns 0 or FW_EPARSE.
 */
int fw_duration_parse(const char *s, size_t n, int64_t *out);

/* Format a duration in the largest exact units ("48h", "1h30m", "250ms"). */
void fw_duration_format(int64_t ms, char out[FW_TIME_MAXLEN]);

/*
 * Proleptic Gregorian calendar arithmetic: days since 1970-01-01 for a
 * date (m 1-12, d 1-31, not validated), and back.  Pure, no time zone.
 */
int64_t fw_days_from_civil(int64_t y, unsigned m, unsigned d);
void fw_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* Wall clock, ms since the epoch. */
int64_t fw_wall_now(void);
/* Monotonic clock, nanoseconds; for latency measurement only. */
int64_t fw_mono_ns(void);

#endif
