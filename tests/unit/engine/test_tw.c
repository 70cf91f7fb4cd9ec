/*
 * test_tw.c -- timer wheel: pop order, ties, cancel, re-arm, big jumps,
 * overdue arms, and a randomized comparison against a sorted array.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "engine/tw.h"
#include "util/fwtime.h"
#include "util/util.h"

#define T0 1767434400000LL /* 2026-01-03T10:00:00Z */

/* Pop everything due by `upto` into ids[] (index of the entry in `base`). */
static size_t pop_all(struct tw *w, int64_t upto, struct tw_entry *base, size_t *ids, size_t max)
{
    size_t n = 0;
    struct tw_entry *e;
    while ((e = tw_pop(w, upto)) != NULL) {
        if (n < max)
            ids[n] = (size_t)(e - base);
        n++;
    }
    return n;
}

static void order(void)
{
    static const int64_t offs[] = {500, 3, 70000, 64, 63, 4096, 1, 86400000, 4095, 65, 262144, 0};
    struct tw_entry e[ARRAY_SIZE(offs)];
    struct tw *w = tw_new(T0);
    for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
        tw_entry_init(&e[i]);
        tw_arm(w, &e[i], T0 + offs[i]);
    }
    ASSERT_EQ(tw_count(w), ARRAY_SIZE(offs));
    ASSERT_EQ(tw_next(w), T0);
    int64_t last = INT64_MIN;
    for (size_t i = 0; i < ARRAY_SIZE(offs); i++) {
        struct tw_entry *p = tw_pop(w, T0 + FW_DAY);
        ASSERT(p != NULL);
        ASSERT(!tw_armed(p));
        ASSERT(p->due >= last);
        ASSERT_EQ(tw_now(w), p->due);
        last = p->due;
    }
    ASSERT_EQ(last, T0 + 86400000);
    ASSERT(tw_pop(w, T0 + FW_DAY + 5) == NULL);
    ASSERT_EQ(tw_now(w), T0 + FW_DAY + 5);
    ASSERT_EQ(tw_next(w), INT64_MAX);
    ASSERT_EQ(tw_count(w), 0);
    /* Nothing due before `upto`: now moves to upto, entries stay. */
    tw_arm(w, &e[0], T0 + 2 * FW_DAY);
    ASSERT(tw_pop(w, T0 + FW_DAY + 3600000) == NULL);
    ASSERT_EQ(tw_now(w), T0 + FW_DAY + 3600000);
    ASSERT_EQ(tw_next(w), T0 + 2 * FW_DAY);
    ASSERT(tw_armed(&e[0]));
    ASSERT_EQ(tw__check(w), 0);
    tw_free(w);
}

static void ties(void)
{
    struct tw_entry e[8];
    size_t ids[8];
    struct tw *w = tw_new(T0);
    for (size_t i = 0; i < 5; i++) {
        tw_entry_init(&e[i]);
        tw_arm(w, &e[i], T0 + 10 * FW_MINUTE);
    }
    tw_arm(w, &e[2], T0 + 10 * FW_MINUTE); /* re-arming moves it behind its peers */
    /* Half-way there the entries have cascaded; later arms still queue behind. */
    ASSERT(tw_pop(w, T0 + 5 * FW_MINUTE) == NULL);
    for (size_t i = 5; i < 8; i++) {
        tw_entry_init(&e[i]);
        tw_arm(w, &e[i], T0 + 10 * FW_MINUTE);
    }
    tw_arm(w, &e[0], T0 + 10 * FW_MINUTE);
    ASSERT_EQ(tw__check(w), 0);
    ASSERT_EQ(pop_all(w, INT64_MAX, e, ids, 8), 8);
    static const size_t want[] = {1, 3, 4, 2, 5, 6, 7, 0};
    for (size_t i = 0; i < 8; i++)
        ASSERT_EQ(ids[i], want[i]);
    /* Ties among overdue entries follow arming order too. */
    for (size_t i = 0; i < 4; i++)
        tw_arm(w, &e[i], 100);
    tw_arm(w, &e[4], 50);
    tw_arm(w, &e[1], 100);
    ASSERT_EQ(pop_all(w, INT64_MAX, e, ids, 8), 5);
    static const size_t want2[] = {4, 0, 2, 3, 1};
    for (size_t i = 0; i < 5; i++)
        ASSERT_EQ(ids[i], want2[i]);
    tw_free(w);
}

static void cancel(void)
{
    struct tw_entry e[6];
    size_t ids[6];
    struct tw *w = tw_new(T0);
    for (size_t i = 0; i < 6; i++) {
        tw_entry_init(&e[i]);
        tw_arm(w, &e[i], T0 + (int64_t)(i + 1) * FW_HOUR);
    }
    tw_cancel(w, &e[0]); /* the earliest */
    ASSERT(!tw_armed(&e[0]));
    ASSERT_EQ(tw_next(w), T0 + 2 * FW_HOUR);
    tw_cancel(w, &e[0]); /* twice: harmless */
    tw_cancel(w, &e[3]);
    tw_cancel(w, &e[5]); /* the latest */
    ASSERT_EQ(tw_count(w), 3);
    ASSERT_EQ(tw__check(w), 0);
    struct tw_entry never;
    tw_entry_init(&never);
    tw_cancel(w, &never); /* never armed: harmless */
    ASSERT_EQ(pop_all(w, T0 + FW_DAY, e, ids, 6), 3);
    ASSERT_EQ(ids[0], 1);
    ASSERT_EQ(ids[1], 2);
    ASSERT_EQ(ids[2], 4);
    /* Cancelling every entry of a slot leaves it empty for tw_next and pop. */
    tw_arm(w, &e[0], T0 + 2 * FW_DAY);
    tw_arm(w, &e[1], T0 + 2 * FW_DAY + 1);
    tw_arm(w, &e[2], T0 + 3 * FW_DAY);
    ASSERT_EQ(tw_next(w), T0 + 2 * FW_DAY);
    tw_cancel(w, &e[1]);
    tw_cancel(w, &e[0]);
    ASSERT_EQ(tw_next(w), T0 + 3 * FW_DAY);
    ASSERT_EQ(tw__check(w), 0);
    ASSERT(tw_pop(w, T0 + 3 * FW_DAY) == &e[2]);
    ASSERT_EQ(tw_count(w), 0);
    tw_free(w);
}

static void rearm(void)
{
    struct tw_entry a, b, c, d;
    struct tw *w = tw_new(0);
    tw_entry_init(&a);
    tw_entry_init(&b);
    tw_entry_init(&c);
    tw_entry_init(&d);
    tw_arm(w, &a, 100);
    tw_arm(w, &b, 200);
    tw_arm(w, &c, 5000);
    tw_arm(w, &c, 150); /* re-arm an armed entry earlier */
    ASSERT_EQ(tw_count(w), 3);
    /* A pop loop that re-arms the popped entry and arms new ones before upto. */
    int64_t upto = 1000;
    struct tw_entry *p;
    int64_t seen[16];
    size_t n = 0;
    while ((p = tw_pop(w, upto)) != NULL && n < 16) {
        seen[n++] = p->due;
        if (p == &a && p->due == 100)
            tw_arm(w, &a, 180); /* the one just popped, before b */
        else if (p == &b)
            tw_arm(w, &d, 190); /* due before now: still popped, and next */
        else if (p == &d && p->due == 190)
            tw_arm(w, &d, 999); /* d again, before upto */
    }
    ASSERT(p == NULL);
    static const int64_t want[] = {100, 150, 180, 200, 190, 999};
    ASSERT_EQ(n, ARRAY_SIZE(want));
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(seen[i], want[i]);
    ASSERT_EQ(tw_now(w), 1000);
    ASSERT_EQ(tw_count(w), 0);
    tw_free(w);
}

static void big_jump(void)
{
    enum { N = 20000 };
    struct tw_entry *e = xcalloc(N, sizeof *e);
    struct tw *w = tw_new(T0);
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tw_entry_init(&e[i]);
        tw_arm(w, &e[i], T0 + (int64_t)(x % (uint64_t)(30 * FW_DAY)));
    }
    /* 30 days of milliseconds in one pop loop: cost follows the entries. */
    int64_t t0 = fw_mono_ns(), last = T0;
    size_t n = 0;
    struct tw_entry *p;
    while ((p = tw_pop(w, T0 + 30 * FW_DAY)) != NULL) {
        ASSERT(p->due >= last);
        last = p->due;
        n++;
    }
    int64_t elapsed = fw_mono_ns() - t0;
    ASSERT_EQ(n, N);
    ASSERT_EQ(tw_now(w), T0 + 30 * FW_DAY);
    /* 2.6e9 ms crossed; visiting each would take seconds.  Generous bound. */
    ASSERT(elapsed < 500 * 1000 * 1000);
    /* The extremes of the time range: negative times and INT64_MAX. */
    struct tw *w2 = tw_new(-5 * FW_DAY);
    tw_arm(w2, &e[0], INT64_MAX);
    tw_arm(w2, &e[1], -1);
    tw_arm(w2, &e[2], 0);
    tw_arm(w2, &e[3], INT64_MAX - 1);
    tw_arm(w2, &e[4], -5 * FW_DAY);
    ASSERT_EQ(tw__check(w2), 0);
    ASSERT(tw_pop(w2, INT64_MAX) == &e[4]);
    ASSERT(tw_pop(w2, INT64_MAX) == &e[1]);
    ASSERT(tw_pop(w2, INT64_MAX) == &e[2]);
    ASSERT_EQ(tw_next(w2), INT64_MAX - 1);
    ASSERT(tw_pop(w2, INT64_MAX) == &e[3]);
    ASSERT(tw_pop(w2, INT64_MAX) == &e[0]);
    ASSERT(tw_pop(w2, INT64_MAX) == NULL);
    ASSERT_EQ(tw_now(w2), INT64_MAX);
    tw_free(w2);
    tw_free(w);
    free(e);
}

static void due_in_past(void)
{
    struct tw_entry e[5];
    size_t ids[5];
    struct tw *w = tw_new(T0);
    for (size_t i = 0; i < 5; i++)
        tw_entry_init(&e[i]);
    tw_arm(w, &e[0], T0 + 1);
    tw_arm(w, &e[1], T0 - 500);
    tw_arm(w, &e[2], T0 - FW_DAY);
    tw_arm(w, &e[3], T0);
    tw_arm(w, &e[4], T0 - 1);
    ASSERT_EQ(tw_next(w), T0 - FW_DAY);
    ASSERT_EQ(tw__check(w), 0);
    /* Only the overdue entries at or before upto; now does not go back. */
    ASSERT(tw_pop(w, T0 - 600) == &e[2]);
    ASSERT(tw_pop(w, T0 - 600) == NULL);
    ASSERT_EQ(tw_now(w), T0);
    tw_cancel(w, &e[4]);
    tw_arm(w, &e[4], T0 - 2);
    ASSERT_EQ(pop_all(w, T0, e, ids, 5), 3);
    ASSERT_EQ(ids[0], 1);
    ASSERT_EQ(ids[1], 4);
    ASSERT_EQ(ids[2], 3);
    ASSERT_EQ(tw_now(w), T0);
    ASSERT_EQ(tw_count(w), 1);
    ASSERT(tw_pop(w, INT64_MAX) == &e[0]);
    tw_free(w);
}

static void count(void)
{
    struct tw_entry e[100];
    struct tw *w = tw_new(0);
    ASSERT_EQ(tw_count(w), 0);
    for (size_t i = 0; i < 100; i++) {
        tw_entry_init(&e[i]);
        tw_arm(w, &e[i], (int64_t)(i * 977 % 5000) - 1000);
    }
    ASSERT_EQ(tw_count(w), 100);
    for (size_t i = 0; i < 100; i += 2)
        tw_arm(w, &e[i], 10); /* re-arming does not count twice */
    ASSERT_EQ(tw_count(w), 100);
    for (size_t i = 0; i < 100; i += 3)
        tw_cancel(w, &e[i]);
    ASSERT_EQ(tw_count(w), 66);
    size_t n = 0;
    while (tw_pop(w, INT64_MAX))
        n++;
    ASSERT_EQ(n, 66);
    ASSERT_EQ(tw_count(w), 0);
    tw_free(w);
}

/* The reference: armed entries sorted by (due, arming sequence). */
struct ref_item {
    int64_t due;
    uint64_t seq;
    size_t id;
};

struct ref {
    struct ref_item *a;
    size_t n;
    uint64_t seq;
};

static int ref_less(const struct ref_item *x, const struct ref_item *y)
{
    return x->due < y->due || (x->due == y->due && x->seq < y->seq);
}

static void ref_remove(struct ref *r, size_t id)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->a[i].id == id) {
            memmove(&r->a[i], &r->a[i + 1], (r->n - i - 1) * sizeof *r->a);
            r->n--;
            return;
        }
    }
}

static void ref_arm(struct ref *r, size_t id, int64_t due)
{
    ref_remove(r, id);
    struct ref_item it = {due, r->seq++, id};
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ref_less(&r->a[mid], &it))
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&r->a[lo + 1], &r->a[lo], (r->n - lo) * sizeof *r->a);
    r->a[lo] = it;
    r->n++;
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A due time relative to now: mostly near, some far, some in the past, many ties. */
static int64_t random_due(uint64_t *s, int64_t now)
{
    switch (rng(s) % 8) {
    case 0: return now - (int64_t)(rng(s) % 5000);              /* overdue */
    case 1: return now + (int64_t)(rng(s) % 4);                 /* ties near now */
    case 2: return now + (int64_t)(rng(s) % 64) * 64;           /* slot edges */
    case 3: return now + (int64_t)(rng(s) % (30 * FW_DAY));     /* far */
    case 4: return (now / FW_HOUR + 1) * FW_HOUR;               /* ties on the hour */
    default: return now + (int64_t)(rng(s) % (10 * FW_MINUTE)); /* near */
    }
}

static void randomized(void)
{
    enum { N = 2000, OPS = 100000 };
    struct tw_entry *e = xcalloc(N, sizeof *e);
    struct ref r = {xcalloc(N, sizeof(struct ref_item)), 0, 0};
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    int64_t now = T0;
    struct tw *w = tw_new(now);
    size_t pops = 0, overdue = 0, pending = 0;
    static int armed[N]; /* the reference's view of tw_armed */
    memset(armed, 0, sizeof armed);
    for (size_t i = 0; i < N; i++)
        tw_entry_init(&e[i]);
    for (size_t op = 0; op < OPS; op++) {
        size_t id = rng(&s) % N;
        unsigned kind = (unsigned)(rng(&s) % 64);
        int big = rng(&s) % 256 == 0;
        if (kind < 34) {
            int64_t due = random_due(&s, now);
            overdue += due < now;
            tw_arm(w, &e[id], due);
            ref_arm(&r, id, due);
            armed[id] = 1;
        } else if (kind < 44) {
            tw_cancel(w, &e[id]);
            ref_remove(&r, id);
            armed[id] = 0;
        } else if (kind < 60) {
            /* Advance, sometimes backwards (upto < now), re-arming on the way. */
            int64_t upto =
                now + (int64_t)(rng(&s) % (big ? 2 * FW_HOUR : 200)) - (kind == 44 ? 100 : 0);
            for (;;) {
                struct tw_entry *p = tw_pop(w, upto);
                if (r.n == 0 || r.a[0].due > upto) {
                    ASSERT(p == NULL);
                    break;
                }
                ASSERT(p != NULL);
                ASSERT_EQ((size_t)(p - e), r.a[0].id);
                ASSERT_EQ(p->due, r.a[0].due);
                ASSERT(!tw_armed(p));
                armed[r.a[0].id] = 0;
                memmove(&r.a[0], &r.a[1], --r.n * sizeof *r.a);
                if (p->due > now)
                    now = p->due;
                ASSERT_EQ(tw_now(w), now);
                pops++;
                if (rng(&s) % 4 == 0) {
                    int64_t due = random_due(&s, now);
                    tw_arm(w, p, due);
                    ref_arm(&r, (size_t)(p - e), due);
                    armed[p - e] = 1;
                }
            }
            if (upto > now)
                now = upto;
            ASSERT_EQ(tw_now(w), now);
        } else {
            ASSERT_EQ(tw_next(w), r.n ? r.a[0].due : INT64_MAX);
        }
        ASSERT_EQ(tw_count(w), r.n);
        ASSERT_EQ(tw_armed(&e[id]), armed[id]);
        pending += r.n;
        if (op % 4096 == 0)
            ASSERT_EQ(tw__check(w), 0);
    }
    ASSERT_EQ(tw__check(w), 0);
    /* The mix must really exercise pops, overdue arms and a full wheel. */
    ASSERT(pops > 10000);
    ASSERT(overdue > 1000);
    ASSERT(pending / OPS > 300);
    /* Drain: the full order must match. */
    for (size_t i = 0; i < r.n; i++) {
        struct tw_entry *p = tw_pop(w, INT64_MAX);
        ASSERT(p != NULL);
        ASSERT_EQ((size_t)(p - e), r.a[i].id);
    }
    ASSERT(tw_pop(w, INT64_MAX) == NULL);
    tw_free(w);
    free(r.a);
    free(e);
}

const struct test tw_tests[] = {
    {"order", order},       {"ties", ties},
    {"cancel", cancel},     {"rearm", rearm},
    {"big_jump", big_jump}, {"due_in_past", due_in_past},
    {"count", count},       {"randomized", randomized},
    {NULL, NULL},
};
