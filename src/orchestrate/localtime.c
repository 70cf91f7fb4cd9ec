/*
 * localtime.c -- minutes after local midnight in a named time zone, for
 * quiet hours.  glibc's zone handling goes through the process-wide TZ, so
 * conversions are serialised under a mutex and TZ is restored afterwards.
 */
#include "orchestrate/orch_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

static pthread_mutex_t tz_mu = PTHREAD_MUTEX_INITIALIZER;

int orch__local_minutes(int64_t t, const char *tz, int *minutes)
{
    if (!tz || !*tz || strlen(tz) > 64 || strstr(tz, ".."))
        return FW_EINVAL;
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    FILE *f = fopen(path, "rb"); /* an unknown zone would silently be UTC: refuse it instead */
    if (!f && strcmp(tz, "UTC") != 0)
        return FW_ENOTFOUND;
    if (f)
        fclose(f);
    time_t secs = (time_t)(t / 1000);
    struct tm tm;
    pthread_mutex_lock(&tz_mu);
    char *old = getenv("TZ") ? xstrdup(getenv("TZ")) : NULL;
    setenv("TZ", tz, 1);
    tzset();
    localtime_r(&secs, &tm);
    if (old) {
        setenv("TZ", old, 1);
        free(old);
    } else {
        unsetenv("TZ");
    }
    tzset();
    pthread_mutex_unlock(&tz_mu);
    *minutes = tm.tm_hour * 60 + tm.tm_min;
    return 0;
}

int64_t orch__quiet_until(int64_t t, const char *tz, int start, int end)
{
    int m;
    if (start == end || orch__local_minutes(t, tz, &m))
        return FW_TIME_NONE;
    int inside = start < end ? (m >= start && m < end) : (m >= start || m < end);
    if (!inside)
        return FW_TIME_NONE;
    int wait = (end - m + 1440) % 1440;
    /* To the start of the minute the window ends (DST shifts within the wait are ignored). */
    int64_t minute_start = t - (t % 60000);
    return minute_start + (int64_t)wait * 60000;
}
