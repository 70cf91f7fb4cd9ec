/*
 * fwtime.c -- RFC 3339 and duration parsing/formatting without locale or
 * time-zone state (timegm-free civil-date arithmetic, so results do not
 * depend on TZ and parsing is thread-safe).
 */
#define _POSIX_C_SOURCE 200809L
#include "util/fwtime.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

/* Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm). */
int64_t fw_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void fw_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, size_t n, size_t at, size_t count, int *out)
{
    if (at + count > n)
        return -1;
    int v = 0;
    for (size_t i = 0; i < count; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int fw_time_parse(const char *s, size_t n, int64_t *out)
{
    int Y, M, D, h, mi, sec;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (digits(s, n, 0, 4, &Y) || n < 20 || s[4] != '-' || digits(s, n, 5, 2, &M) ||
        s[7] != '-' || digits(s, n, 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s, n, 11, 2, &h) || s[13] != ':' || digits(s, n, 14, 2, &mi) || s[16] != ':' ||
        digits(s, n, 17, 2, &sec))
        return FW_EPARSE;
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] + (M == 2 && is_leap(Y)) || h > 23 ||
        mi > 59 || sec > 60)
        return FW_EPARSE;
    size_t i = 19;
    int64_t ms = 0;
    if (i < n && s[i] == '.') {
        i++;
        size_t start = i;
        int scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (scale) {
                ms += (s[i] - '0') * scale;
                scale /= 10;
            }
            i++;
        }
        if (i == start)
            return FW_EPARSE;
    }
    int64_t off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
            digits(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
            return FW_EPARSE;
        off = (oh * 60 + om) * FW_MINUTE;
        if (s[i] == '-')
            off = -off;
        i += 6;
    } else {
        return FW_EPARSE; /* the offset is mandatory */
    }
    if (i != n)
        return FW_EPARSE;
    if (sec == 60)
        sec = 59; /* a leap second is clamped; POSIX time has none */
    int64_t days = fw_days_from_civil(Y, (unsigned)M, (unsigned)D);
    *out = ((days * 24 + h) * 60 + mi) * FW_MINUTE + sec * FW_SECOND + ms - off;
    return 0;
}

/* n decimal digits of v, zero-padded; returns the end. */
static char *put_digits(char *o, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return o + n;
}

void fw_time_format(int64_t ms, char out[FW_TIME_MAXLEN])
{
    if (ms == FW_TIME_NONE) {
        snprintf(out, FW_TIME_MAXLEN, "null");
        return;
    }
    /* RFC 3339 has four-digit years: a time beyond them (a wake-up "never", a window from a
       far date) prints as the nearest one it can name. */
    if (ms < FW_TIME_PRINT_MIN)
        ms = FW_TIME_PRINT_MIN;
    else if (ms > FW_TIME_PRINT_MAX)
        ms = FW_TIME_PRINT_MAX;
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    fw_civil_from_days(days, &y, &m, &d);
    int hh = (int)(rem / 3600), mm = (int)(rem / 60 % 60), ss = (int)(rem % 60);
    /* By hand: this runs for every time in every customer view and replay line.  The clamp
       above keeps y within four digits. */
    char *o = out;
    o = put_digits(o, (unsigned)y, 4);
    *o++ = '-';
    o = put_digits(o, m, 2);
    *o++ = '-';
    o = put_digits(o, d, 2);
    *o++ = 'T';
    o = put_digits(o, (unsigned)hh, 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)mm, 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)ss, 2);
    if (frac) {
        *o++ = '.';
        o = put_digits(o, (unsigned)frac, 3);
    }
    *o++ = 'Z';
    *o = 0;
}

int fw_duration_parse(const char *s, size_t n, int64_t *out)
{
    int64_t total = 0;
    size_t i = 0;
    if (n == 0)
        return FW_EPARSE;
    while (i < n) {
        if (s[i] < '0' || s[i] > '9')
            return FW_EPARSE;
        int64_t v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (v > (INT64_MAX / 10) - 10)
                return FW_EPARSE;
            v = v * 10 + (s[i] - '0');
            i++;
        }
        int64_t unit;
        if (i + 1 < n && s[i] == 'm' && s[i + 1] == 's') {
            unit = 1;
            i += 2;
        } else if (i < n) {
            switch (s[i]) {
            case 's': unit = FW_SECOND; break;
            case 'm': unit = FW_MINUTE; break;
            case 'h': unit = FW_HOUR; break;
            case 'd': unit = FW_DAY; break;
            case 'w': unit = 7 * FW_DAY; break;
            default: return FW_EPARSE;
            }
            i++;
        } else {
            return FW_EPARSE; /* a bare number has no unit */
        }
        if (v > (INT64_MAX / 4) / unit)
            return FW_EPARSE;
        total += v * unit;
        if (total > INT64_MAX / 4)
            return FW_EPARSE;
    }
    *out = total;
    return 0;
}

void fw_duration_format(int64_t ms, char out[FW_TIME_MAXLEN])
{
    static const struct {
        int64_t unit;
        const char *name;
    } units[] = {{FW_DAY, "d"}, {FW_HOUR, "h"}, {FW_MINUTE, "m"}, {FW_SECOND, "s"}, {1, "ms"}};
    size_t used = 0;
    if (ms == 0) {
        snprintf(out, FW_TIME_MAXLEN, "0s");
        return;
    }
    if (ms < 0) {
        out[used++] = '-';
        ms = -ms;
    }
    out[used] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(units) && ms; i++) {
        if (ms >= units[i].unit) {
            int n = snprintf(out + used, FW_TIME_MAXLEN - used, "%lld%s",
                             (long long)(ms / units[i].unit), units[i].name);
            if (n > 0)
                used += (size_t)n;
            ms %= units[i].unit;
        }
    }
}

int64_t fw_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fw_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
