/*
 * test_json.c -- fw_json_loadb against json_loadb, input by input.
 *
 * The contract is "same answer as jansson": accepted or refused alike,
 * equal documents, the same position with JSON_DISABLE_EOF_CHECK, the same
 * error text.  Hand-picked edge cases first (each one a rule of jansson's
 * decoder that the fast path must mirror or hand over), then tens of
 * thousands of deterministic mutations of realistic events, which reach
 * the corners nobody thought to write down.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "util/json.h"

static const size_t flag_sets[] = {0, JSON_REJECT_DUPLICATES, JSON_DISABLE_EOF_CHECK,
                                   JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK};

/* NULL when both parsers agree on s[0..n), else what differs (static storage). */
static const char *differs(const char *s, size_t n, size_t flags)
{
    static char why[160];
    json_error_t ej, ef;
    json_t *j = json_loadb(s, n, flags, &ej);
    json_t *f = fw_json_loadb(s, n, flags, &ef);
    const char *r = NULL;
    if (!j != !f)
        r = j ? "jansson accepts, fast path refuses" : "fast path accepts, jansson refuses";
    else if (j && !json_equal(j, f))
        r = "different documents";
    else if (j && (flags & JSON_DISABLE_EOF_CHECK) && ej.position != ef.position)
        snprintf(why, sizeof why, "position %d != %d", ef.position, ej.position), r = why;
    else if (!j && (strcmp(ej.text, ef.text) || ej.line != ef.line || ej.column != ef.column))
        r = "different error";
    if (!r && j) {
        char *a = json_dumps(j, JSON_COMPACT), *b = fw_json_dumps(j);
        size_t want = json_dumpb(j, NULL, 0, JSON_COMPACT), got = fw_json_compact_size(j);
        if (!a != !b || (a && strcmp(a, b)))
            snprintf(why, sizeof why, "dumps differ: %.40s | %.40s", a ? a : "NULL", b ? b : "NULL"),
                r = why;
        else if (got != want)
            snprintf(why, sizeof why, "compact size %zu, jansson counts %zu", got, want), r = why;
        free(a);
        free(b);
    }
    json_decref(j);
    json_decref(f);
    return r;
}

static void edge_cases(void)
{
    static const char *const cases[] = {
        "{}", "[]", " {\"a\":1} ", "{\"a\":1}\n{\"b\":2}", "{\"a\":1,}", "[1,]", "{\"a\" 1}",
        "{\"a\":1,\"a\":2}", "{\"a\":{\"b\":1,\"b\":1}}", "[1, 2", "\"str\"", "17", "",
        "   ", "{\"a\":01}", "{\"a\":-}", "{\"a\":-0}", "{\"a\":1.}", "{\"a\":.5}",
        "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":1E-2}", "{\"a\":-1.25e3}", "{\"a\":1e400}",
        "{\"a\":-1e400}", "{\"a\":1e-400}", "{\"a\":123456789012345678}",
        "{\"a\":1234567890123456789}", "{\"a\":9223372036854775807}",
        "{\"a\":9223372036854775808}", "{\"a\":-9223372036854775808}",
        "{\"a\":-9223372036854775809}", "{\"a\":true,\"b\":false,\"c\":null}", "{\"a\":tru}",
        "{\"a\":truex}", "{\"a\":nul}", "{\"a\":\"\\u00e9\\n\\t\\\"\\\\\\/\\b\\f\\r\"}",
        "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":\"\\ud83d\"}",
        "{\"a\":\"\\ude00\"}", "{\"a\":\"\\ud83d\\u0041\"}", "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\uZZZZ\"}", "{\"a\":\"\\x\"}", "{\"a\":\"caf\xc3\xa9\"}",
        "{\"a\":\"\xc3\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xe0\x80\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}",
        "{\"a\":\"\xf0\x9f\x98\x80\"}", "{\"a\":\"\xff\"}", "{\"a\":\"tab\there\"}",
        "{\"\\u00e9\":1,\"\xc3\xa9\":2}", "{\"\":1}", "{\"a\":[1,[2,[3,{}]]]}",
        "\xef\xbb\xbf{}", "{\"a\":1}garbage", "{\"a\":1} \r\n\t", "{1:2}",
        "{\"a\":\"x\\u0041y\",\"k\\n\":\"v\"}", "[\"\\ud800\\udc00\"]",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (size_t f = 0; f < sizeof flag_sets / sizeof *flag_sets; f++) {
            const char *why = differs(cases[i], strlen(cases[i]), flag_sets[f]);
            if (why)
                TEST__FAIL("case %zu %s (flags %zu): %s", i, cases[i], flag_sets[f], why);
        }
    /* A NUL byte is data, not the end. */
    static const char nul[] = "{\"a\":1}\0{}";
    for (size_t f = 0; f < sizeof flag_sets / sizeof *flag_sets; f++)
        ASSERT(!differs(nul, sizeof nul - 1, flag_sets[f]));
}

/* 2048 levels are allowed, 2049 are not. */
static void depth_limit(void)
{
    static char deep[2 * 2050 + 1];
    for (int levels = 2047; levels <= 2050; levels++) {
        size_t n = 0;
        for (int i = 0; i < levels; i++)
            deep[n++] = '[';
        for (int i = 0; i < levels; i++)
            deep[n++] = ']';
        const char *why = differs(deep, n, 0);
        if (why)
            TEST__FAIL("%d levels: %s", levels, why);
    }
    /* The deepest allowed document is decided on the fast path. */
    memset(deep, '[', 2048);
    memset(deep + 2048, ']', 2048);
    size_t used;
    json_t *j = fw__json_scan(deep, 2 * 2048, 0, &used);
    ASSERT(j != NULL);
    json_decref(j);
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33) % n;
}

/* Every fast-path construct, and the rare ones it hands over. */
static const char *const seeds[] = {
    "{\"specversion\":\"1.0\",\"id\":\"e-1\",\"type\":\"esim.status_changed\",\"subject\":"
    "\"jodi@example.com\",\"time\":\"2026-01-01T10:06:00Z\",\"data\":{\"order_id\":\"o-17\","
    "\"status\":\"PENDING\",\"tries\":3,\"ok\":true,\"note\":null}}",
    "[{\"id\":\"a\",\"data\":{\"zips\":[\"10001\",\"10002\"],\"impact\":-0.25e1}},{\"id\":\"b\"}]",
    "{\"name\":\"Ren\xc3\xa9\\u00e9 \\\"Q\\\"\",\"emoji\":\"\\ud83d\\ude00\xf0\x9f\x98\x80\","
    "\"n\":[0,-1,12345678901234567890,1.5E+300,{\"x\":{}}]}",
    "{\"a\":1}\n{\"b\":[true,false,null]}\r\n",
};

static const char pieces[][5] = {"{", "}", "[", "]", ":", ",", "\"", "\\", "\\u", "0", "9",
                                 "-", ".", "e", "+", " ", "\n", "t", "f", "n", "\x01",
                                 "\x80", "\xc3", "\xa9", "\xed", "\xf4", "\xff", "\\ud8",
                                 "\\ude", "00", "\"a\"", "\"a\":"};

/* Deterministic random edits of the seeds; every one must get jansson's answer. */
static void mutations(void)
{
    char buf[1024];
    rng_state = 20261203;
    int checked = 0;
    for (int round = 0; round < 40000; round++) {
        const char *seed = seeds[rnd(sizeof seeds / sizeof *seeds)];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        for (uint32_t edits = 1 + rnd(3); edits; edits--) {
            size_t at = rnd((uint32_t)n + 1);
            const char *piece = pieces[rnd(sizeof pieces / sizeof *pieces)];
            size_t pl = strlen(piece);
            switch (rnd(4)) {
            case 0: /* insert */
                if (n + pl < sizeof buf) {
                    memmove(buf + at + pl, buf + at, n - at);
                    memcpy(buf + at, piece, pl);
                    n += pl;
                }
                break;
            case 1: /* delete a byte */
                if (at < n) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
                break;
            case 2: /* overwrite */
                for (size_t k = 0; k < pl && at + k < n; k++)
                    buf[at + k] = piece[k];
                break;
            default: /* truncate */
                n = at;
            }
        }
        size_t flags = flag_sets[rnd(sizeof flag_sets / sizeof *flag_sets)];
        const char *why = differs(buf, n, flags);
        if (why)
            TEST__FAIL("mutation %d (flags %zu) of %.*s: %s", round, flags, (int)n, buf, why);
        checked++;
    }
    ASSERT_EQ(checked, 40000);
}

/* The seeds are decided on the fast path, not handed to jansson. */
static void fast_path_taken(void)
{
    size_t used;
    for (size_t i = 0; i + 1 < sizeof seeds / sizeof *seeds; i++) {
        if (i == 2)
            continue; /* its 20-digit integer goes to jansson on purpose */
        json_t *j = fw__json_scan(seeds[i], strlen(seeds[i]), JSON_REJECT_DUPLICATES, &used);
        if (!j)
            TEST__FAIL("seed %zu was handed to jansson", i);
        ASSERT_EQ(used, strlen(seeds[i]));
        json_decref(j);
    }
    const char *s = "{\"k\":\"caf\xc3\xa9 \\u00e9\\ud83d\\ude00\",\"n\":-12.5e-1}";
    json_t *j = fw__json_scan(s, strlen(s), 0, &used);
    ASSERT(j != NULL);
    ASSERT_STREQ(json_string_value(json_object_get(j, "k")), "caf\xc3\xa9 \xc3\xa9\xf0\x9f\x98\x80");
    ASSERT(json_real_value(json_object_get(j, "n")) == -1.25);
    json_decref(j);
    j = fw__json_scan("{\"a\":1} x", 10, JSON_DISABLE_EOF_CHECK, &used);
    ASSERT(j != NULL);
    ASSERT_EQ(used, 7);
    json_decref(j);
}

/* Values no parse produces: reals at the edges, NULs and control bytes, bad UTF-8, scalars. */
static void dumps_like_jansson(void)
{
    static const double reals[] = {0.0, -0.0, 0.1, 1.0, -1.5, 1e300, -1e-300, 5e-324, 1e21,
                                   123456789.125, 1e-7, 2.5e15, 9007199254740993.0, 1e100};
    json_t *doc = json_object(), *arr = json_array();
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++)
        json_array_append_new(arr, json_real(reals[i]));
    json_array_append_new(arr, json_integer(-9223372036854775807LL - 1));
    json_array_append_new(arr, json_integer(9223372036854775807LL));
    json_object_set_new(doc, "reals", arr);
    json_object_set_new(doc, "ctl", json_stringn("a\0b\x01\x1f\x7f\"\\/\b\f\n\r\t", 15));
    json_object_set_new(doc, "uni", json_string("caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80"));
    json_object_setn_new(doc, "k\0ey", 4, json_true());
    json_object_set_new(doc, "nested", json_pack("{s:[n,b,{}],s:[]}", "x", 0, "y"));
    char *a = json_dumps(doc, JSON_COMPACT), *b = fw_json_dumps(doc);
    ASSERT(a != NULL && b != NULL);
    ASSERT_STREQ(b, a);
    ASSERT(fw_json_compact_size(doc) == strlen(a));
    ASSERT(fw_json_compact_size(json_object_get(doc, "ctl")) ==
           json_dumpb(json_object_get(doc, "ctl"), NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY));
    free(a);
    free(b);
    /* Invalid UTF-8 (only a _nocheck constructor makes it): NULL, as json_dumps says. */
    json_object_set_new(doc, "bad", json_stringn_nocheck("\xff", 1));
    a = json_dumps(doc, JSON_COMPACT);
    b = fw_json_dumps(doc);
    ASSERT(a == NULL && b == NULL);
    ASSERT(fw_json_compact_size(doc) == 0 && json_dumpb(doc, NULL, 0, JSON_COMPACT) == 0);
    json_decref(doc);
    /* A scalar needs JSON_ENCODE_ANY: NULL from both. */
    json_t *str = json_string("x");
    ASSERT(fw_json_dumps(str) == NULL && json_dumps(str, JSON_COMPACT) == NULL);
    json_decref(str);
}

const struct test json_tests[] = {
    {"dumps_like_jansson", dumps_like_jansson},
    {"edge_cases", edge_cases},
    {"depth_limit", depth_limit},
    {"mutations", mutations},
    {"fast_path_taken", fast_path_taken},
    {NULL, NULL},
};
