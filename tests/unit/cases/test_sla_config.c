/*
 * test_sla_config.c -- the sla: section of the server config, loaded from a
 * real file through config_load_file: what a good section gives, and each
 * error at its place with the config left as it was.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "cases/calendar.h"
#include "cases/sla_config.h"
#include "serve/config.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

static char cfg_path[64];

/* Write text to a fresh temporary file; its path is in cfg_path. */
static int write_cfg(const char *text)
{
    snprintf(cfg_path, sizeof cfg_path, "/tmp/fw-sla-XXXXXX");
    int fd = mkstemp(cfg_path);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok ? 0 : -1;
}

static int load(struct config *c, const char *text, struct buf *diag)
{
    if (write_cfg(text))
        return -999;
    int rc = config_load_file(c, cfg_path, diag);
    unlink(cfg_path);
    return rc;
}

static int64_t at(const char *s)
{
    int64_t t = FW_TIME_NONE;
    fw_time_parse(s, strlen(s), &t);
    return t;
}

static const char good[] =
    "sla:\n"
    "  warn_before: 45m\n"
    "  policies:\n"
    "    - {match: \"severity == 'MEDIUM'\", calendar: support, first_response: 8h, "
    "customer_contact: 24h, resolution: 72h}\n"
    "    - match: |\n"
    "        severity == 'LOW'\n"
    "      customer_contact: 0\n"
    "      calendar: split\n"
    "    - {resolution: 3d}\n"
    "  calendars:\n"
    "    support: {timezone: America/New_York, hours: {mon: \"09:00-17:00\", tue: "
    "\"09:00-17:00\", wed: \"09:00-17:00\", thu: \"09:00-17:00\", fri: \"09:00-17:00\"}, "
    "holidays: [\"2026-12-25\"]}\n"
    "    split:\n"
    "      timezone: Europe/Berlin\n"
    "      hours:\n"
    "        mon: \"09:00-12:00, 13:00-17:00\"\n"
    "        sat: [\"10:00-11:00\", 14:00-24:00]\n";

static void sla_good(void)
{
    struct config c;
    struct buf diag;
    config_init(&c);
    buf_init(&diag, 0);
    ASSERT_EQ(c.sla.warn_before, 30 * FW_MINUTE); /* the default */
    int rc = load(&c, good, &diag);
    if (rc)
        fprintf(stderr, "%s", diag.data ? diag.data : "");
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(c.sla.warn_before, 45 * FW_MINUTE);
    ASSERT_EQ(c.sla.ncalendars, 2);
    const struct calendar *sup = sla_calendar_find(&c.sla, "support");
    const struct calendar *split = sla_calendar_find(&c.sla, "split");
    ASSERT(sup && split);
    ASSERT(!sla_calendar_find(&c.sla, "nope"));
    ASSERT_STREQ(calendar_name(sup), "support");
    ASSERT_STREQ(tz_name(calendar_tz(sup)), "America/New_York");
    ASSERT_EQ(calendar_week_minutes(sup), 40 * 60);
    ASSERT_EQ(calendar_week_minutes(split), 7 * 60 + 60 + 10 * 60);
    ASSERT(!calendar_open_at(sup, at("2026-12-25T15:00:00Z"))); /* the holiday */
    ASSERT(calendar_open_at(sup, at("2026-12-24T15:00:00Z")));
    ASSERT(!calendar_open_at(split, at("2026-01-12T11:30:00Z"))); /* Monday lunch in Berlin */

    ASSERT_EQ(c.sla.npolicies, 3);
    const struct sla_policy *p = &c.sla.policies[0];
    ASSERT_STREQ(p->match, "severity == 'MEDIUM'");
    ASSERT(p->calendar == sup);
    ASSERT_EQ(p->target[SLA_FIRST_RESPONSE], 8 * FW_HOUR);
    ASSERT_EQ(p->target[SLA_CUSTOMER_CONTACT], 24 * FW_HOUR);
    ASSERT_EQ(p->target[SLA_RESOLUTION], 72 * FW_HOUR);
    /* The position of the expression's first character, past the quote. */
    ASSERT_EQ(p->line, 4);
    ASSERT_EQ(p->col, 16);
    char where[128];
    snprintf(where, sizeof where, "%s:4:16", cfg_path);
    ASSERT_STREQ(p->where, where);
    p = &c.sla.policies[1];
    ASSERT_STREQ(p->match, "severity == 'LOW'\n");
    ASSERT_EQ(p->line, 6); /* a block scalar starts on the next line */
    ASSERT_EQ(p->col, 9);
    ASSERT(p->calendar == split); /* defined after the policy that names it */
    ASSERT_EQ(p->target[SLA_CUSTOMER_CONTACT], 0);
    ASSERT_EQ(p->target[SLA_FIRST_RESPONSE], -1);
    p = &c.sla.policies[2];
    ASSERT(!p->match && !p->where && !p->calendar);
    ASSERT_EQ(p->target[SLA_RESOLUTION], 3 * FW_DAY);
    ASSERT_EQ(p->target[SLA_FIRST_RESPONSE], -1);

    /* A second file's sla section replaces the first's as a whole. */
    buf_reset(&diag);
    ASSERT_EQ(load(&c, "sla:\n  policies: [{first_response: 1h}]\n", &diag), 0);
    ASSERT_EQ(c.sla.ncalendars, 0);
    ASSERT_EQ(c.sla.npolicies, 1);
    ASSERT_EQ(c.sla.warn_before, 30 * FW_MINUTE);
    config_cleanup(&c);
    buf_cleanup(&diag);
}

/* 1-based line:col of the first occurrence of `needle` in text, as "L:C: error: ". */
static void place_of(const char *text, const char *needle, char *out, size_t n)
{
    const char *hit = strstr(text, needle);
    int line = 1, col = 1;
    for (const char *p = text; hit && p < hit; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(out, n, ":%d:%d: error: ", hit ? line : 0, col);
}

static void sla_errors(void)
{
    static const struct {
        const char *text, *at, *reason;
    } cases[] = {
        {"sla:\n  warn_befor: 30m\n", "warn_befor", "unknown sla setting 'warn_befor'"},
        {"sla:\n  warn_before: -5m\n", "-5m", "warn_before must not be negative"},
        {"sla:\n  warn_before: soon\n", "soon", "bad duration 'soon' for warn_before"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, opening: {mon: \"09:00-17:00\"}}\n", "opening",
         "unknown calendar setting 'opening'"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, hours: {mon: \"09:00-17:00\", thr: "
         "\"09:00-17:00\"}}\n",
         "thr", "unknown weekday 'thr'"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, hours: {mon: \"9am-5pm\"}}\n", "\"9am",
         "malformed range '9am-5pm'"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, hours: {mon: \"09:00-12:00, 13:00\"}}\n",
         "\"09:00-12", "malformed range '13:00'"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, hours: {mon: \"09:00-25:00\"}}\n", "\"09",
         "malformed range '09:00-25:00'"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, hours: {mon: \"17:00-09:00\"}}\n", "\"17",
         "range '17:00-09:00' ends before it starts"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, hours: {mon: [\"09:00-12:00\", "
         "\"11:00-13:00\"]}}\n",
         "\"11", "range '11:00-13:00' overlaps another range on mon"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, hours: {mon: \"09:00-12:00, 10:00-11:00\"}}\n",
         "\"09", "range '10:00-11:00' overlaps another range on mon"},
        {"sla:\n  calendars:\n    c:\n      timezone: UTC\n      hours:\n        mon: 09:00-10:00\n"
         "        mon: 11:00-12:00\n",
         "mon: 11", "hours for mon are given twice"},
        {"sla:\n  calendars:\n    c: {timezone: Mars/Olympus, hours: {mon: \"09:00-17:00\"}}\n",
         "Mars", "unknown time zone 'Mars/Olympus'"},
        {"sla:\n  calendars:\n    c: {timezone: ../../etc/passwd, hours: {mon: \"09:00-17:00\"}}\n",
         "../", "invalid time zone name '../../etc/passwd'"},
        {"sla:\n  calendars:\n    c: {hours: {mon: \"09:00-17:00\"}}\n",
         "c:", "calendar 'c' needs a timezone"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, hours: {mon: \"09:00-17:00\"}, holidays: "
         "[\"2026-13-01\"]}\n",
         "\"2026", "malformed holiday date '2026-13-01'"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, hours: {mon: \"09:00-17:00\"}, holidays: "
         "[12/25/2026]}\n",
         "12/25", "malformed holiday date '12/25/2026'"},
        {"sla:\n  calendars:\n    c: {timezone: UTC, hours: {mon: \"09:00-17:00\"}, holidays: "
         "[2026-12-25, \"2026-12-25\"]}\n",
         "\"2026", "holiday 2026-12-25 is listed twice"},
        {"sla:\n  calendars:\n    empty: {timezone: UTC, hours: {sat: []}}\n", "empty",
         "calendar 'empty' has no working hours at all"},
        {"sla:\n  calendars:\n    none: {timezone: UTC}\n", "none",
         "calendar 'none' has no working hours at all"},
        {"sla:\n  policies:\n    - {match: \"true\", calendar: nope}\n", "nope",
         "unknown calendar 'nope'"},
        {"sla:\n  policies:\n    - {first_response: -8h}\n", "-8h",
         "first_response must not be negative"},
        {"sla:\n  policies:\n    - {resolution: 3days}\n", "3days",
         "bad duration '3days' for resolution"},
        {"sla:\n  policies:\n    - {first_response: 0}\n", "0}",
         "first_response must be more than 0"},
        {"sla:\n  policies:\n    - {matches: x}\n", "matches", "unknown policy setting 'matches'"},
        {"sla:\n  policies:\n    - {match: \"\"}\n", "\"\"", "match must be a condition"},
        {"sla:\n  policies: {match: x}\n", "{", "policies must be a list"},
        {"sla: [1]\n", "[", "sla must be a mapping"},
        {"sla:\n  calendars:\n    a: {timezone: UTC, hours: {mon: \"09:00-17:00\"}}\n"
         "    a: {timezone: UTC, hours: {tue: \"09:00-17:00\"}}\n",
         "a: {timezone: UTC, hours: {tue", "calendar 'a' is defined twice"},
        {"sla:\n  warn_before: 1m\nsla:\n  warn_before: 2m\n", "sla:\n  warn_before: 2m",
         "sla is set twice"},
        /* A good sla section is not applied when another part of the file is bad. */
        {"sla:\n  warn_before: 1m\nlog_level: loud\n", "loud", "log_level must be"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct config c;
        struct buf diag;
        config_init(&c);
        buf_init(&diag, 0);
        ASSERT_EQ(load(&c, good, &diag), 0);
        struct calendar **cals = c.sla.calendars;
        struct sla_policy *pols = c.sla.policies;
        buf_reset(&diag);
        int rc = load(&c, cases[i].text, &diag);
        char place[64];
        place_of(cases[i].text, cases[i].at, place, sizeof place);
        const char *out = diag.data ? diag.data : "";
        if (rc != FW_EPARSE || !strstr(out, place) || !strstr(out, cases[i].reason) ||
            !strstr(out, "^\n"))
            fprintf(stderr, "    case %zu: want %s%s, got:\n%s", i, place, cases[i].reason, out);
        ASSERT_EQ(rc, FW_EPARSE);
        ASSERT_CONTAINS(out, place);
        ASSERT_CONTAINS(out, cases[i].reason);
        ASSERT_CONTAINS(out, "^\n"); /* the caret under the source line */
        /* Nothing of the bad file's sla section is applied. */
        ASSERT(c.sla.calendars == cals && c.sla.policies == pols);
        ASSERT_EQ(c.sla.ncalendars, 2);
        ASSERT_EQ(c.sla.npolicies, 3);
        ASSERT_EQ(c.sla.warn_before, 45 * FW_MINUTE);
        ASSERT(sla_calendar_find(&c.sla, "support"));
        config_cleanup(&c);
        buf_cleanup(&diag);
    }
}

const struct test sla_config_tests[] = {
    {"good", sla_good},
    {"errors", sla_errors},
    {NULL, NULL},
};
