/*
 * test_util.c -- buffers, time and duration parsing, maps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../test.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/map.h"
#include "util/util.h"

static void time_roundtrip(void)
{
    int64_t t;
    char out[FW_TIME_MAXLEN];
    ASSERT_EQ(fw_time_parse("2026-01-03T10:00:00Z", 20, &t), 0);
    ASSERT_EQ(t, 1767434400000LL);
    fw_time_format(t, out);
    ASSERT_STREQ(out, "2026-01-03T10:00:00Z");
    /* An offset is converted to UTC. */
    const char *s = "2026-01-03T12:30:00.250+02:30";
    ASSERT_EQ(fw_time_parse(s, strlen(s), &t), 0);
    fw_time_format(t, out);
    ASSERT_STREQ(out, "2026-01-03T10:00:00.250Z");
    s = "1999-12-31T23:59:59-01:00";
    ASSERT_EQ(fw_time_parse(s, strlen(s), &t), 0);
    fw_time_format(t, out);
    ASSERT_STREQ(out, "2000-01-01T00:59:59Z");
    s = "2024-02-29T00:00:00Z";
    ASSERT_EQ(fw_time_parse(s, strlen(s), &t), 0);
}

/* The hand-written formatter agrees with gmtime + strftime across eras, and parses back. */
static void time_format_matches_libc(void)
{
    char out[FW_TIME_MAXLEN], want[FW_TIME_MAXLEN + 8];
    int64_t step = 7919LL * 86400 * 1000 + 3599123; /* odd days, hours and milliseconds */
    for (int64_t ms = -2208988800000LL; ms < 253402300800000LL; ms += step) {
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
        int frac = (int)(ms - (int64_t)secs * 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        size_t n = strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S", &tm);
        if (frac)
            snprintf(want + n, sizeof want - n, ".%03dZ", frac);
        else
            snprintf(want + n, sizeof want - n, "Z");
        fw_time_format(ms, out);
        ASSERT_STREQ(out, want);
        int64_t back;
        ASSERT_EQ(fw_time_parse(out, strlen(out), &back), 0);
        ASSERT_EQ(back, ms);
    }
    fw_time_format(0, out);
    ASSERT_STREQ(out, "1970-01-01T00:00:00Z");
    fw_time_format(-1, out);
    ASSERT_STREQ(out, "1969-12-31T23:59:59.999Z");
    fw_time_format(253402300799999LL, out);
    ASSERT_STREQ(out, "9999-12-31T23:59:59.999Z");
    /* Past four digits: RFC 3339 has no year 10000, so the bound is printed (issue 18). */
    fw_time_format(253402300800000LL, out);
    ASSERT_STREQ(out, "9999-12-31T23:59:59.999Z");
    fw_time_format(FW_TIME_MAX, out);
    ASSERT_STREQ(out, "9999-12-31T23:59:59.999Z");
    fw_time_format(-62167219200001LL, out);
    ASSERT_STREQ(out, "0000-01-01T00:00:00Z");
    fw_time_format(FW_TIME_NONE + 1, out);
    ASSERT_STREQ(out, "0000-01-01T00:00:00Z");
    fw_time_format(FW_TIME_NONE, out);
    ASSERT_STREQ(out, "null");
}

static void time_rejects(void)
{
    static const char *bad[] = {
        "2026-01-03T10:00:00",       /* no offset */
        "2026-01-03 10:00",          /* truncated */
        "2026-13-03T10:00:00Z",      /* month */
        "2025-02-29T10:00:00Z",      /* not a leap year */
        "2026-01-03T24:00:00Z",      /* hour */
        "2026-01-03T10:00:00.Z",     /* empty fraction */
        "2026-01-03T10:00:00Zjunk",  /* trailing */
        "2026-01-03T10:00:00+0200",  /* offset without colon */
        "yesterday",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int64_t t = 42;
        ASSERT_EQ(fw_time_parse(bad[i], strlen(bad[i]), &t), FW_EPARSE);
        ASSERT_EQ(t, 42);
    }
}

static void durations(void)
{
    int64_t d;
    char out[FW_TIME_MAXLEN];
    ASSERT_EQ(fw_duration_parse("90s", 3, &d), 0);
    ASSERT_EQ(d, 90 * FW_SECOND);
    ASSERT_EQ(fw_duration_parse("48h", 3, &d), 0);
    ASSERT_EQ(d, 48 * FW_HOUR);
    ASSERT_EQ(fw_duration_parse("1h30m", 5, &d), 0);
    ASSERT_EQ(d, 90 * FW_MINUTE);
    ASSERT_EQ(fw_duration_parse("250ms", 5, &d), 0);
    ASSERT_EQ(d, 250);
    ASSERT_EQ(fw_duration_parse("7d", 2, &d), 0);
    fw_duration_format(d, out);
    ASSERT_STREQ(out, "7d");
    fw_duration_format(90 * FW_MINUTE, out);
    ASSERT_STREQ(out, "1h30m");
    ASSERT_EQ(fw_duration_parse("48", 2, &d), FW_EPARSE);
    ASSERT_EQ(fw_duration_parse("4x", 2, &d), FW_EPARSE);
    ASSERT_EQ(fw_duration_parse("", 0, &d), FW_EPARSE);
    ASSERT_EQ(fw_duration_parse("h", 1, &d), FW_EPARSE);
    ASSERT_EQ(fw_duration_parse("99999999999999999999d", 21, &d), FW_EPARSE);
}

static void buf_cap_and_json(void)
{
    struct buf b;
    buf_init(&b, 8);
    ASSERT_EQ(buf_puts(&b, "12345678"), 0);
    ASSERT_EQ(buf_puts(&b, "9"), FW_ETOOBIG);
    ASSERT_EQ(b.len, 8); /* unchanged by the refused append */
    buf_cleanup(&b);
    buf_init(&b, 0);
    ASSERT_EQ(buf_json_str(&b, "a\"b\\c\n\x01", 7), 0);
    ASSERT_STREQ(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    /* Long runs are scanned eight bytes at a time: an escape at every offset, and UTF-8. */
    for (size_t at = 0; at < 20; at++) {
        char in[21], want[32];
        memset(in, 'x', 20);
        in[20] = '\0';
        in[at] = at % 3 == 0 ? '"' : at % 3 == 1 ? '\\' : '\x1f';
        snprintf(want, sizeof want, "\"%.*s%s%s\"", (int)at, in,
                 at % 3 == 0 ? "\\\"" : at % 3 == 1 ? "\\\\" : "\\u001f", in + at + 1);
        buf_reset(&b);
        ASSERT_EQ(buf_json_str(&b, in, 20), 0);
        ASSERT_STREQ(b.data, want);
    }
    /* Several escapes in one eight-byte word, next to each other and next to bytes a borrow
       could flag falsely (0x20, '#', ']', 0x80 and up): the same as escaping byte by byte. */
    static const char pick[] = {'\n', '"', '\\', '\x01', '\x1f', ' ', '#', ']', '!', 'a', '\x7f', '\x80', '\xe2', '\t'};
    unsigned seed = 7;
    for (int round = 0; round < 2000; round++) {
        char in[64];
        size_t n = (size_t)round % 41;
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            in[k] = (seed >> 16) % 3 ? 'x' : pick[(seed >> 8) % sizeof pick];
        }
        struct buf want;
        buf_init(&want, 0);
        buf_putc(&want, '"');
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)in[k];
            char e[8];
            if (c == '"' || c == '\\')
                snprintf(e, sizeof e, "\\%c", c);
            else if (c == '\n')
                snprintf(e, sizeof e, "\\n");
            else if (c == '\t')
                snprintf(e, sizeof e, "\\t");
            else if (c < 0x20)
                snprintf(e, sizeof e, "\\u%04x", c);
            else
                snprintf(e, sizeof e, "%c", c);
            buf_puts(&want, e);
        }
        buf_putc(&want, '"');
        buf_reset(&b);
        ASSERT_EQ(buf_json_str(&b, in, n), 0);
        ASSERT_EQ(b.len, want.len);
        ASSERT_EQ(memcmp(b.data, want.data, want.len), 0);
        buf_cleanup(&want);
    }
    buf_reset(&b);
    const char *utf8 = "caf\xc3\xa9 \xe2\x80\x94 0123456789";
    ASSERT_EQ(buf_json_str(&b, utf8, strlen(utf8)), 0);
    ASSERT_STREQ(b.data, "\"caf\xc3\xa9 \xe2\x80\x94 0123456789\"");
    buf_reset(&b);
    buf_json_num(&b, 3);
    buf_putc(&b, ' ');
    buf_json_num(&b, 2.5);
    ASSERT_STREQ(b.data, "3 2.5");
    buf_cleanup(&b);
}

static void map_and_intern(void)
{
    struct intern t;
    intern_init(&t);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(key, sizeof key, "key%d", i);
        ASSERT_EQ(intern_id(&t, key, (size_t)n), i);
    }
    ASSERT_EQ(intern_id(&t, "key500", 6), 500);
    ASSERT_EQ(intern_lookup(&t, "nope", 4), -1);
    ASSERT_STREQ(intern_str(&t, 999), "key999");
    ASSERT(intern_str(&t, 1000) == NULL);
    intern_cleanup(&t);
}

static void consttime(void)
{
    ASSERT_EQ(fw_consttime_cmp("secret", 6, "secret", 6), 0);
    ASSERT(fw_consttime_cmp("secret", 6, "secreT", 6) != 0);
    ASSERT(fw_consttime_cmp("secret", 6, "secret1", 7) != 0);
}

const struct test util_tests[] = {
    {"time_roundtrip", time_roundtrip},
    {"time_format_matches_libc", time_format_matches_libc},
    {"time_rejects", time_rejects},
    {"durations", durations},
    {"buf_cap_and_json", buf_cap_and_json},
    {"map_and_intern", map_and_intern},
    {"consttime", consttime},
    {NULL, NULL},
};
