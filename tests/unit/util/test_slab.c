/*
 * test_slab.c -- the engine's sized allocator (util/slab.h): blocks keep
 * their bytes through resizes, a freed block is the next one of its size,
 * blocks above SLAB_MAX and chunk ends work, and the counts add up.  A
 * randomised run keeps a pattern in every live block and checks them all
 * after each step (under AddressSanitizer the same run goes through the
 * checked path, where a wrong size dies).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "util/slab.h"

static void slab_reuse_and_counts(void)
{
    struct slab s;
    slab_init(&s);
    unsigned char *a = slab_alloc(&s, 13), *b = slab_alloc(&s, 16);
    ASSERT_EQ(s.used, 32); /* 13 rounds up to 16 */
    ASSERT_EQ((uintptr_t)a % 8, 0);
    ASSERT_EQ((uintptr_t)b % 8, 0);
    memset(a, 1, 13);
    memset(b, 2, 16);
    slab_free(&s, a, 13);
    ASSERT_EQ(s.used, 16);
    unsigned char *c = slab_alloc(&s, 15); /* same class */
#ifndef __SANITIZE_ADDRESS__
    ASSERT(c == a); /* the hole is the next block of its size */
    ASSERT_EQ(s.free_bytes, 0);
#endif
    /* Grow and shrink keep the bytes. */
    memset(c, 3, 15);
    c = slab_realloc(&s, c, 15, 100);
    for (int i = 0; i < 15; i++)
        ASSERT_EQ(c[i], 3);
    c = slab_realloc(&s, c, 100, 4);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(c[i], 3);
    ASSERT_EQ(slab_realloc(&s, c, 4, 0), NULL);
    ASSERT_EQ(s.used, 16);
    /* Above SLAB_MAX: malloc's, and freed by cleanup too. */
    unsigned char *big = slab_zalloc(&s, SLAB_MAX + 1);
    ASSERT_EQ(big[SLAB_MAX], 0);
    ASSERT_EQ(s.used, 16 + SLAB_MAX + 8);
    char *str = slab_strdup(&s, "PORT_REJECTED");
    ASSERT_STREQ(str, "PORT_REJECTED");
    slab_free(&s, str, strlen(str) + 1);
    slab_free(&s, NULL, 99); /* harmless */
    slab_cleanup(&s); /* b and big still live: cleanup takes them (the leak check would see) */
    ASSERT_EQ(s.used, 0);
    ASSERT_EQ(s.chunk_bytes, 0);
}

/* Many blocks of random sizes, resized and freed at random; every live block keeps its bytes. */
static void slab_randomised(void)
{
    enum { N = 3000, STEPS = 60000 };
    struct slab s;
    slab_init(&s);
    static unsigned char *p[N];
    static size_t n[N];
    memset(p, 0, sizeof p);
    memset(n, 0, sizeof n);
    uint64_t x = 88172645463325252ULL;
    size_t used = 0;
    for (int step = 0; step < STEPS; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t i = x % N;
        size_t want = (x >> 20) % 8 == 0 ? (x >> 24) % (3 * SLAB_MAX) : (x >> 24) % 600;
        if (p[i]) {
            for (size_t k = 0; k < n[i]; k++)
                ASSERT_EQ(p[i][k], (unsigned char)(i + k));
            used -= (n[i] + 7) & ~(size_t)7;
        }
        p[i] = slab_realloc(&s, p[i], p[i] ? n[i] : 0, want);
        for (size_t k = 0; k < want; k++) {
            if (k < n[i] && p[i])
                ASSERT_EQ(p[i][k], (unsigned char)(i + k)); /* kept through the move */
            p[i][k] = (unsigned char)(i + k);
        }
        n[i] = want;
        used += (want + 7) & ~(size_t)7;
        ASSERT_EQ(s.used, used);
    }
    for (size_t i = 0; i < N; i++) {
        for (size_t k = 0; k < n[i]; k++)
            ASSERT_EQ(p[i][k], (unsigned char)(i + k));
        slab_free(&s, p[i], n[i]);
    }
    ASSERT_EQ(s.used, 0);
#ifndef __SANITIZE_ADDRESS__
    /* Every carved byte is on a free list now, except what cleanup will take with the chunks. */
    ASSERT(s.free_bytes <= s.chunk_bytes);
    ASSERT(s.free_bytes + s.cur_left + 8 * (s.chunk_bytes / ((size_t)256 << 10)) == s.chunk_bytes);
#endif
    slab_cleanup(&s);
}

const struct test slab_tests[] = {
    {"slab_reuse_and_counts", slab_reuse_and_counts},
    {"slab_randomised", slab_randomised},
    {NULL, NULL},
};
