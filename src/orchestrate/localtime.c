/*
 * localtime.c -- minutes after local midnight in a named time zone, for
 * quiet hours.  glibc's zone handling goes through the process-wide TZ, so
 * conversions are serialised under a mutex and TZ is restored afterwards.
 *
 * That costs a zone file check and two tzset calls (which read the zone
 * file again) per message decision, so UTC and the zones util/tz can read
 * are converted with util/tz from the same TZif files instead; anything
 * else (an unknown zone, a name util/tz refuses) still goes through glibc,
 * so which zones are refused does not change.
 */
#include "orchestrate/orch_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/tz.h"
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

/* Minutes after local midnight of the second secs, off seconds east of UTC (as localtime_r). */
static int minutes_at(int64_t secs, int off)
{
    int64_t s = (secs + off) % 86400;
    if (s < 0)
        s += 86400;
    return (int)(s / 60);
}

/* 0 and *minutes without the process's TZ; -1 when glibc must answer (or refuse). */
static int quick_minutes(struct orch *o, int64_t t, const char *tz, int *minutes)
{
    /* What orch__local_minutes refuses, and Etc/UTC (util/tz knows it even without tzdata,
       the file check does not), are left to it. */
    if (!tz || !*tz || strlen(tz) > 64 || strstr(tz, "..") || !strcmp(tz, "Etc/UTC"))
        return -1;
    int64_t secs = t / 1000; /* as orch__local_minutes truncates */
    if (!strcmp(tz, "UTC")) {
        *minutes = minutes_at(secs, 0);
        return 0;
    }
    int created;
    struct strmap_entry *me = strmap_upsert(&o->qzones, tz, strlen(tz), &created);
    if (created) {
        char err[160];
        me->value = tz_load(tz, err, sizeof err); /* NULL: glibc decides, as before */
    }
    if (!me->value)
        return -1;
    *minutes = minutes_at(secs, tz_offset(me->value, secs * 1000));
    return 0;
}

int64_t orch__quiet_until(struct orch *o, int64_t t, const char *tz, int start, int end)
{
    int m;
    if (start == end || (quick_minutes(o, t, tz, &m) && orch__local_minutes(t, tz, &m)))
        return FW_TIME_NONE;
    int inside = start < end ? (m >= start && m < end) : (m >= start || m < end);
    if (!inside)
        return FW_TIME_NONE;
    int wait = (end - m + 1440) % 1440;
    /* To the start of the minute the window ends (DST shifts within the wait are ignored). */
    int64_t minute_start = t - (t % 60000);
    return minute_start + (int64_t)wait * 60000;
}
