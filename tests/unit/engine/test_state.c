/*
 * test_state.c -- the engine's compact per-customer structures (state.h):
 * the packed key/value block (every value type, since times shared and
 * inline, long strings, lists, copies), the sparse per-signal times and
 * the last-seen block.  A reference model (plain arrays) is compared
 * with the packed forms after every change of a randomised run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "engine/state.h"
#include "util/fwtime.h"
#include "util/slab.h"

/* The blocks' allocator; every test ends with all of it given back (checked by the tests). */
static struct slab sl;
/* The key layouts blocks share (the engine's way), or NULL for blocks with their own index: each
   kvset test runs both ways (the _shared entries below). */
static struct kvlayouts layouts, *lay;

static struct value vstr(const char *s, size_t n)
{
    struct value v = {.type = VAL_STR};
    v.u.str.ptr = s;
    v.u.str.len = n;
    return v;
}

static struct value vnum(double d)
{
    struct value v = {.type = VAL_NUM};
    v.u.num = d;
    return v;
}

static void kvset_every_type(void)
{
    static const struct value items[] = {{.type = VAL_NUM, .u.num = 1.5},
                                         {.type = VAL_STR, .u.str = {"ab", 2}}};
    char longs[300];
    memset(longs, 'x', sizeof longs);
    struct value v[8];
    v[0] = (struct value){.type = VAL_NULL};
    v[1] = (struct value){.type = VAL_BOOL, .u.b = 7}; /* any non-zero reads back as 1 */
    v[2] = vnum(-0.25);
    v[3] = vstr("PENDING", 7);
    v[4] = (struct value){.type = VAL_TIME, .u.ms = 1767434400123LL};
    v[5] = (struct value){.type = VAL_DUR, .u.ms = -5};
    v[6] = vstr(longs, sizeof longs); /* past the one-byte length */
    v[7] = (struct value){.type = VAL_LIST, .u.list = {items, 2}};
    struct kvbuild b;
    kvbuild__init(&b, &sl, lay);
    for (uint32_t i = 0; i < 8; i++)
        kvbuild__add(&b, 3 * i + 1, &v[i], 1000 + (i % 3)); /* three distinct times */
    struct kvset s = {0};
    kvbuild__finish(&b, &s);
    ASSERT_EQ(kvset__count(&s), 8);
    for (uint32_t i = 0; i < 8; i++) {
        struct value got;
        int64_t since;
        ASSERT_EQ(kvset__get(&s, 3 * i + 1, &got, &since), 1);
        ASSERT_EQ(since, 1000 + (i % 3));
        struct value want = v[i];
        if (i == 1)
            want.u.b = 1;
        ASSERT(value__equal(&got, &want));
        ASSERT_EQ(kvset__get(&s, 3 * i + 2, &got, &since), 0); /* between keys */
        ASSERT_EQ(got.type, VAL_NULL);
        ASSERT_EQ(since, FW_TIME_NONE);
    }
    struct value got;
    ASSERT_EQ(kvset__get(&s, 0, &got, NULL), 0);
    ASSERT_EQ(kvset__get(&s, 1000, &got, NULL), 0);
    /* The list is a copy: the block owns it. */
    kvset__get(&s, 22, &got, NULL);
    ASSERT(got.u.list.items != items);
    /* A deep copy reads the same and outlives the original. */
    struct kvset c;
    kvset__copy(&c, &s, &sl);
    kvset__cleanup(&s, &sl);
    ASSERT_EQ(kvset__get(&s, 1, &got, NULL), 0);
    for (uint32_t i = 0; i < 8; i++) {
        uint32_t key;
        int64_t since;
        kvset__at(&c, i, &key, &got, &since);
        ASSERT_EQ(key, 3 * i + 1);
        if (i != 1)
            ASSERT(value__equal(&got, &v[i]));
    }
    ASSERT(kvset__bytes(&c) > sizeof longs);
    kvset__cleanup(&c, &sl);
    kvset__cleanup(&c, &sl); /* twice is harmless */
    kvbuild__cleanup(&b);
    ASSERT_EQ(sl.used, 0);
}

/* More distinct times than the block's table holds: the rest are kept in their records. */
static void kvset_many_times(void)
{
    struct kvbuild b;
    kvbuild__init(&b, &sl, lay);
    enum { N = 700 };
    for (uint32_t i = 0; i < N; i++) {
        struct value v = vnum(i);
        kvbuild__add(&b, i, &v, (int64_t)i * 7 - 3);
    }
    struct kvset s = {0};
    kvbuild__finish(&b, &s);
    for (uint32_t i = 0; i < N; i++) {
        struct value got;
        int64_t since;
        ASSERT_EQ(kvset__get(&s, i, &got, &since), 1);
        ASSERT_EQ(since, (int64_t)i * 7 - 3);
        ASSERT_EQ(got.u.num, (double)i);
    }
    /* The builder is reusable: an empty build empties the set. */
    kvbuild__finish(&b, &s);
    ASSERT_EQ(kvset__count(&s), 0);
    ASSERT_EQ(kvset__bytes(&s), 0);
    kvbuild__cleanup(&b);
    ASSERT_EQ(sl.used, 0);
}

/* Key ids and blocks past 65,536 (the wide index); numbers at the edges of the int32 form. */
static void kvset_wide_and_numbers(void)
{
    static const double nums[] = {0.0, -0.0, 2147483647.0, -2147483648.0, 2147483648.0, 3e9,
                                  -1e300, 0.5, 1e-9};
    enum { NN = sizeof nums / sizeof nums[0] };
    static char big[40000];
    memset(big, 'q', sizeof big);
    for (int round = 0; round < 2; round++) {
        struct kvbuild b;
        kvbuild__init(&b, &sl, lay);
        uint32_t base = round ? 70000 : 10; /* round 0: narrow ids, but a block over 64 KB */
        for (uint32_t i = 0; i < NN; i++) {
            struct value v = vnum(nums[i]);
            kvbuild__add(&b, base + i, &v, 5);
        }
        struct value v = vstr(big, sizeof big);
        kvbuild__add(&b, base + NN, &v, 6);
        kvbuild__add(&b, base + NN + 1, &v, 7);
        v = vstr("tail", 4);
        kvbuild__add(&b, base + NN + 2, &v, 8);
        struct kvset s = {0};
        kvbuild__finish(&b, &s);
        for (uint32_t i = 0; i < NN; i++) {
            struct value got;
            ASSERT_EQ(kvset__get(&s, base + i, &got, NULL), 1);
            ASSERT_EQ(got.type, VAL_NUM);
            ASSERT(memcmp(&got.u.num, &nums[i], sizeof got.u.num) == 0); /* -0 stays -0 */
        }
        struct value got;
        int64_t since;
        ASSERT_EQ(kvset__get(&s, base + NN + 2, &got, &since), 1);
        ASSERT_EQ(got.u.str.len, 4);
        ASSERT(memcmp(got.u.str.ptr, "tail", 4) == 0);
        ASSERT_EQ(since, 8);
        ASSERT_EQ(kvset__get(&s, base + NN + 1, &got, NULL), 1);
        ASSERT_EQ(got.u.str.len, sizeof big);
        ASSERT(kvset__bytes(&s) > 2 * sizeof big);
        kvset__cleanup(&s, &sl);
        kvbuild__cleanup(&b);
    }
}

/* Randomised: rebuild a set from a model after each change and compare every key. */
static void kvset_randomised(void)
{
    enum { KEYS = 40, ROUNDS = 400 };
    static char text[KEYS][32];
    int has[KEYS] = {0};
    struct value model[KEYS];
    int64_t since[KEYS];
    struct kvset s = {0};
    struct kvbuild b;
    kvbuild__init(&b, &sl, lay);
    unsigned r = 12345;
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < 5; k++) {
            r = r * 1103515245u + 12345u;
            unsigned key = (r >> 8) % KEYS;
            has[key] = (r >> 20) % 4 != 0;
            since[key] = round;
            if ((r >> 24) % 2) {
                size_t n = (r >> 4) % 31;
                for (size_t j = 0; j < n; j++)
                    text[key][j] = (char)('a' + (j + round) % 26);
                model[key] = vstr(text[key], n);
            } else {
                model[key] = vnum((double)(r % 1000) / 8);
            }
        }
        for (uint32_t key = 0; key < KEYS; key++)
            if (has[key])
                kvbuild__add(&b, key, &model[key], since[key]);
        kvbuild__finish(&b, &s);
        uint32_t n = 0;
        for (uint32_t key = 0; key < KEYS; key++) {
            struct value got;
            int64_t t;
            ASSERT_EQ(kvset__get(&s, key, &got, &t), has[key]);
            if (has[key]) {
                ASSERT(value__equal(&got, &model[key]));
                ASSERT_EQ(t, since[key]);
                n++;
            }
        }
        ASSERT_EQ(kvset__count(&s), n);
    }
    kvset__cleanup(&s, &sl);
    kvbuild__cleanup(&b);
    ASSERT_EQ(sl.used, 0);
}

static void sigtimes_sparse(void)
{
    struct sigtimes *a = NULL;
    uint32_t n = 0;
    struct sigtimes t = sigt__get(a, n, 3);
    ASSERT(sigt__usual(&t));
    ASSERT_EQ(t.sig, 3);
    ASSERT_EQ(t.fired_at, FW_TIME_NONE);
    ASSERT_EQ(t.next_at, FW_TIME_MAX);
    ASSERT_EQ(t.stable_at, FW_TIME_MAX);
    /* Stored out of order, kept sorted. */
    struct sigtimes x = {.sig = 5, .fired_at = 10, .next_at = FW_TIME_MAX, .stable_at = FW_TIME_MAX};
    sigt__put(&sl, &a, &n, &x);
    struct sigtimes y = {.sig = 2, .fired_at = FW_TIME_NONE, .next_at = 20, .stable_at = 20};
    sigt__put(&sl, &a, &n, &y);
    struct sigtimes z = {.sig = 9, .fired_at = FW_TIME_NONE, .next_at = FW_TIME_NONE,
                         .stable_at = FW_TIME_NONE};
    sigt__put(&sl, &a, &n, &z);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(a[0].sig, 2);
    ASSERT_EQ(a[1].sig, 5);
    ASSERT_EQ(a[2].sig, 9);
    ASSERT_EQ(sigt__get(a, n, 5).fired_at, 10);
    ASSERT_EQ(sigt__get(a, n, 2).next_at, 20);
    ASSERT_EQ(sigt__get(a, n, 9).stable_at, FW_TIME_NONE);
    ASSERT(sigt__usual(&(struct sigtimes){.sig = 4, .fired_at = FW_TIME_NONE,
                                          .next_at = FW_TIME_MAX, .stable_at = FW_TIME_MAX}));
    /* Replace in place, then back to usual: removed. */
    x.fired_at = 11;
    sigt__put(&sl, &a, &n, &x);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(sigt__get(a, n, 5).fired_at, 11);
    x.fired_at = FW_TIME_NONE;
    sigt__put(&sl, &a, &n, &x);
    ASSERT_EQ(n, 2);
    t = sigt__get(a, n, 5);
    ASSERT(sigt__usual(&t));
    y.next_at = y.stable_at = FW_TIME_MAX;
    sigt__put(&sl, &a, &n, &y);
    z.fired_at = FW_TIME_NONE;
    z.next_at = z.stable_at = FW_TIME_MAX;
    sigt__put(&sl, &a, &n, &z);
    ASSERT_EQ(n, 0);
    ASSERT(a == NULL);
    ASSERT_EQ(sl.used, 0);
}

/* Last-seen times in the state block: noted by a rebuild, kept beside keys, first-seen order. */
static void last_seen_in_block(void)
{
    struct kvset s = {0};
    struct kvbuild b;
    kvbuild__init(&b, &sl, lay);
    ASSERT_EQ(kvset__last(&s, 1), FW_TIME_NONE);
    /* Types noted out of order; each keeps its latest time. */
    static const uint32_t types[] = {7, 3, 40000, 5, 3, 7, 0};
    static const int64_t ats[] = {100, 200, 300, 400, 150, 900, 500};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        kvset__note_last(&s, &b, types[i], ats[i]);
    ASSERT_EQ(kvset__note_last(&s, &b, 5, 399), 0); /* earlier: nothing to do */
    ASSERT_EQ(kvset__nlast(&s), 5);
    ASSERT_EQ(kvset__count(&s), 0);
    ASSERT_EQ(kvset__last(&s, 7), 900);
    ASSERT_EQ(kvset__last(&s, 3), 200);
    ASSERT_EQ(kvset__last(&s, 40000), 300); /* past 32,767: the wide index */
    ASSERT_EQ(kvset__last(&s, 0), 500);
    ASSERT_EQ(kvset__last(&s, 4), FW_TIME_NONE);
    static const uint32_t first_seen[] = {7, 3, 40000, 5, 0};
    for (uint32_t k = 0; k < 5; k++) {
        uint32_t type;
        int64_t at;
        kvset__last_at(&s, k, &type, &at);
        ASSERT_EQ(type, first_seen[k]);
        ASSERT_EQ(at, kvset__last(&s, type));
    }
    /* Keys rebuilt in front of them leave them as they were; keys do not see them. */
    struct value v = vstr("ACTIVE", 6);
    kvbuild__add(&b, 2, &v, 900);
    kvbuild__add(&b, 9, &v, 901);
    kvbuild__copy_last(&b, &s, 8, 1000); /* and a new type on the way */
    kvbuild__finish(&b, &s);
    ASSERT_EQ(kvset__count(&s), 2);
    ASSERT_EQ(kvset__nlast(&s), 6);
    ASSERT_EQ(kvset__last(&s, 8), 1000);
    ASSERT_EQ(kvset__last(&s, 40000), 300);
    struct value got;
    ASSERT_EQ(kvset__get(&s, 9, &got, NULL), 1);
    ASSERT_EQ(kvset__get(&s, 7, &got, NULL), 0); /* a type is not a key */
    uint32_t type;
    int64_t at;
    kvset__last_at(&s, 5, &type, &at);
    ASSERT_EQ(type, 8);
    /* A copy has them too. */
    struct kvset c;
    kvset__copy(&c, &s, &sl);
    ASSERT_EQ(kvset__nlast(&c), 6);
    ASSERT_EQ(kvset__last(&c, 3), 200);
    kvset__cleanup(&c, &sl);
    /* From a snapshot's list: first-seen order kept, a repeated type refused. */
    static const uint32_t snap_types[] = {12, 4, 9};
    static const int64_t snap_ats[] = {1, 2, 3};
    ASSERT_EQ(kvbuild__add_lasts(&b, snap_types, snap_ats, 3), 0);
    kvbuild__finish(&b, &s);
    kvset__last_at(&s, 0, &type, &at);
    ASSERT_EQ(type, 12);
    kvset__last_at(&s, 2, &type, &at);
    ASSERT_EQ(type, 9);
    ASSERT_EQ(at, 3);
    static const uint32_t dup_types[] = {4, 9, 4};
    ASSERT_EQ(kvbuild__add_lasts(&b, dup_types, snap_ats, 3), -1);
    kvbuild__finish(&b, &s);
    kvset__cleanup(&s, &sl);
    kvbuild__cleanup(&b);
    ASSERT_EQ(proj__cap(0), 0);
    ASSERT_EQ(proj__cap(1), 1);
    ASSERT_EQ(proj__cap(3), 4);
    ASSERT_EQ(proj__cap(64), 64);
    ASSERT_EQ(proj__cap(65), 128);
    ASSERT_EQ(sl.used, 0); /* every block freed at the size it was made with */
}

/* Blocks with the same ids share one layout; offsets of one byte, of two, and the inline index
   past 65,536 bytes of records; a copy reads the same. */
static void kvset_layouts_shared(void)
{
    struct kvlayouts L = {0};
    struct kvbuild b;
    kvbuild__init(&b, &sl, &L);
    struct kvset s[5] = {{0}};
    static char longs[70000];
    memset(longs, 'z', sizeof longs);
    const size_t lens[5] = {5, 7, 300, 6, sizeof longs};
    for (int k = 0; k < 5; k++) {
        for (uint32_t key = 1; key <= (k == 3 ? 2u : 3u); key++) {
            struct value v = key == 2 ? vstr(longs, lens[k]) : vnum(key * 10 + k);
            kvbuild__add(&b, key, &v, 100 + key);
        }
        kvbuild__copy_last(&b, &s[k], 9, 500 + k); /* one last-seen type */
        kvbuild__finish(&b, &s[k]);
    }
    /* s0-s2 and s4 have keys 1-3 and type 9; s3 keys 1-2: two layouts (s4 inline, no layout). */
    ASSERT_EQ(L.n, 2);
    for (int k = 0; k < 5; k++) {
        struct kvset c;
        kvset__copy(&c, &s[k], &sl);
        for (int twice = 0; twice < 2; twice++) {
            const struct kvset *x = twice ? &c : &s[k];
            ASSERT_EQ(kvset__count(x), k == 3 ? 2 : 3);
            ASSERT_EQ(kvset__nlast(x), 1);
            ASSERT_EQ(kvset__last(x, 9), 500 + k);
            struct value got;
            int64_t since;
            ASSERT_EQ(kvset__get(x, 1, &got, &since), 1);
            ASSERT(got.u.num == 10 + k);
            ASSERT_EQ(since, 101);
            ASSERT_EQ(kvset__get(x, 2, &got, NULL), 1);
            ASSERT_EQ(got.u.str.len, lens[k]);
            ASSERT_EQ(kvset__get(x, 3, &got, &since), k != 3);
            if (k != 3) {
                ASSERT(got.u.num == 30 + k);
                ASSERT_EQ(since, 103);
            }
            uint32_t key;
            kvset__at(x, 1, &key, &got, NULL);
            ASSERT_EQ(key, 2);
        }
        kvset__cleanup(&c, &sl);
    }
    /* Shared: 8 bytes of pointer and 1 a entry (2 past 256 bytes), against 4 an entry inline. */
    struct kvbuild inl;
    kvbuild__init(&inl, &sl, NULL);
    struct kvset t = {0};
    for (uint32_t i = 0; i < kvset__count(&s[0]); i++)
        kvbuild__keep(&inl, &s[0], i);
    kvbuild__copy_last(&inl, &s[0], UINT32_MAX, 0);
    kvbuild__finish(&inl, &t);
    ASSERT_EQ(kvset__bytes(&t), kvset__bytes(&s[0]) - (8 + 4 * 1) + 4 * 4); /* 4 entries */
    ASSERT_EQ(kvset__last(&t, 9), 500);
    kvset__cleanup(&t, &sl);
    kvbuild__cleanup(&inl);
    for (int k = 0; k < 5; k++)
        kvset__cleanup(&s[k], &sl);
    kvbuild__cleanup(&b);
    kvlayouts__cleanup(&L);
    ASSERT_EQ(sl.used, 0);
}

/* Times within 2^32 ms of the earliest are kept as 4-byte steps from it (three or more), others as
   8 bytes each; every one reads back exactly, at the edges of both forms and of int64. */
static void kvset_time_steps(void)
{
    const int64_t T = 1767434400123LL;
    const int64_t sets[][3] = {
        {T, T + 4294967295LL, T + 5},         /* steps: the last fits */
        {T, T + 4294967296LL, T + 5},         /* one ms too far: 8 bytes each */
        {T + 9, T, T + 3},                    /* the earliest is not the first */
        {INT64_MIN + 1, INT64_MIN + 2, INT64_MIN + 3},
        {INT64_MAX - 2, INT64_MAX, INT64_MAX - 1},
        {INT64_MIN + 1, 0, INT64_MAX},
    };
    size_t bytes[6];
    for (int k = 0; k < 6; k++) {
        struct kvbuild b;
        kvbuild__init(&b, &sl, lay);
        for (uint32_t i = 0; i < 3; i++) {
            struct value v = vnum(i);
            kvbuild__add(&b, i + 1, &v, sets[k][i]);
        }
        struct kvset s = {0};
        kvbuild__finish(&b, &s);
        for (uint32_t i = 0; i < 3; i++) {
            struct value got;
            int64_t since;
            ASSERT_EQ(kvset__get(&s, i + 1, &got, &since), 1);
            ASSERT_EQ(since, sets[k][i]);
        }
        /* A copy through the builder (the engine's rebuild) keeps them. */
        for (uint32_t i = 0; i < 3; i++)
            kvbuild__keep(&b, &s, i);
        kvbuild__finish(&b, &s);
        int64_t since;
        struct value got;
        ASSERT_EQ(kvset__get(&s, 2, &got, &since), 1);
        ASSERT_EQ(since, sets[k][1]);
        bytes[k] = kvset__bytes(&s);
        kvset__cleanup(&s, &sl);
        kvbuild__cleanup(&b);
    }
    ASSERT_EQ(bytes[1], bytes[0] + 4); /* 3 x 8 against 8 + 3 x 4 */
    ASSERT_EQ(bytes[2], bytes[0]);
    ASSERT_EQ(bytes[3], bytes[0]);
    ASSERT_EQ(bytes[4], bytes[0]);
    ASSERT_EQ(bytes[5], bytes[1]);
    ASSERT_EQ(sl.used, 0);
}

/* A kvset test with shared layouts; the layouts go after the blocks that use them. */
#define SHARED(f)                                                                                  \
    static void f##_shared(void)                                                                   \
    {                                                                                              \
        lay = &layouts;                                                                            \
        f();                                                                                       \
        kvlayouts__cleanup(&layouts);                                                              \
        lay = NULL;                                                                                \
    }
SHARED(kvset_every_type)
SHARED(kvset_many_times)
SHARED(kvset_wide_and_numbers)
SHARED(kvset_randomised)
SHARED(last_seen_in_block)
SHARED(kvset_time_steps)

const struct test state_tests[] = {
    {"kvset_every_type", kvset_every_type},
    {"kvset_many_times", kvset_many_times},
    {"kvset_wide_and_numbers", kvset_wide_and_numbers},
    {"kvset_randomised", kvset_randomised},
    {"sigtimes_sparse", sigtimes_sparse},
    {"last_seen_in_block", last_seen_in_block},
    {"kvset_layouts_shared", kvset_layouts_shared},
    {"kvset_time_steps", kvset_time_steps},
    {"kvset_time_steps_shared", kvset_time_steps_shared},
    {"kvset_every_type_shared", kvset_every_type_shared},
    {"kvset_many_times_shared", kvset_many_times_shared},
    {"kvset_wide_and_numbers_shared", kvset_wide_and_numbers_shared},
    {"kvset_randomised_shared", kvset_randomised_shared},
    {"last_seen_in_block_shared", last_seen_in_block_shared},
    {NULL, NULL},
};
