/*
 * tw_bench.c -- timer wheel cost per operation with millions pending.
 *
 * For each size (1M and 4M by default, or the sizes given as arguments) it
 * arms that many timers uniformly over 30 days of virtual time, then
 * measures: arm into the full wheel, cancel, re-arm (cancel + arm of an
 * armed entry), pop (draining all 30 days in one loop, cascades included),
 * and the steady state of pop + re-arm at a new random due time.  Each
 * figure is the best of three rounds, since the machine is shared.  The
 * owner object is 64 bytes, as a timer embedded in real state would be.
 * Compile command: see bench/README.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/tw.h"
#include "util/util.h"

#define T0 1767434400000LL
#define SPAN (30LL * 24 * 3600 * 1000)

struct owner {
    struct tw_entry t;
    uint64_t payload[5];
};

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct result {
    double arm, cancel, rearm, pop, steady;
};

static void keep_min(double *best, double v)
{
    if (*best == 0 || v < *best)
        *best = v;
}

static void round_once(size_t n, struct owner *o, int64_t *dues, size_t *perm, struct result *r)
{
    struct tw *w = tw_new(T0);
    for (size_t i = 0; i < n; i++) {
        tw_entry_init(&o[i].t);
        dues[i] = T0 + (int64_t)(rng() % SPAN);
    }
    /* Random visiting order, so caches do not help. */
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rng() % (i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }

    /* Arm in random memory order, as wake-ups of unrelated customers come. */
    double t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        tw_arm(w, &o[perm[i]].t, dues[i]);
    keep_min(&r->arm, (now_ns() - t0) / (double)n);

    /* Cancel a tenth, in random order, with the wheel full. */
    size_t k = n / 10;
    t0 = now_ns();
    for (size_t i = 0; i < k; i++)
        tw_cancel(w, &o[perm[i]].t);
    keep_min(&r->cancel, (now_ns() - t0) / (double)k);
    for (size_t i = 0; i < k; i++)
        tw_arm(w, &o[perm[i]].t, dues[i]);

    /* Re-arm armed entries at new times (the reschedule of a wake-up). */
    for (size_t i = 0; i < k; i++)
        dues[i] = T0 + (int64_t)(rng() % SPAN);
    t0 = now_ns();
    for (size_t i = 0; i < k; i++)
        tw_arm(w, &o[perm[k + i]].t, dues[i]);
    keep_min(&r->rearm, (now_ns() - t0) / (double)k);

    /* Steady state: pop the earliest and re-arm it within the next 30 days. */
    size_t steady = n / 4;
    t0 = now_ns();
    for (size_t i = 0; i < steady; i++) {
        struct tw_entry *e = tw_pop(w, INT64_MAX);
        tw_arm(w, e, e->due + 1 + (int64_t)(rng() % SPAN));
    }
    keep_min(&r->steady, (now_ns() - t0) / (double)steady);

    /* Drain everything in one pop loop. */
    size_t popped = 0;
    int64_t last = INT64_MIN;
    t0 = now_ns();
    struct tw_entry *e;
    while ((e = tw_pop(w, INT64_MAX)) != NULL) {
        if (e->due < last)
            abort();
        last = e->due;
        popped++;
    }
    keep_min(&r->pop, (now_ns() - t0) / (double)popped);
    if (popped != n || tw_count(w) != 0) {
        fprintf(stderr, "tw_bench: popped %zu of %zu\n", popped, n);
        exit(1);
    }
    tw_free(w);
}

int main(int argc, char **argv)
{
    static const size_t def[] = {1000000, 4000000};
    size_t nsizes = argc > 1 ? (size_t)argc - 1 : ARRAY_SIZE(def);
    printf("timer wheel, dues uniform over 30 days, best of 3 rounds, ns per operation\n");
    printf("%10s %8s %8s %8s %8s %14s\n", "pending", "arm", "cancel", "re-arm", "pop",
           "pop+re-arm");
    for (size_t s = 0; s < nsizes; s++) {
        size_t n = argc > 1 ? strtoul(argv[s + 1], NULL, 10) : def[s];
        if (n < 40) {
            fprintf(stderr, "tw_bench: size %zu too small\n", n);
            return 2;
        }
        struct owner *o = xcalloc(n, sizeof *o);
        int64_t *dues = xcalloc(n, sizeof *dues);
        size_t *perm = xcalloc(n, sizeof *perm);
        struct result r = {0};
        for (int round = 0; round < 3; round++)
            round_once(n, o, dues, perm, &r);
        printf("%10zu %8.1f %8.1f %8.1f %8.1f %14.1f\n", n, r.arm, r.cancel, r.rearm, r.pop,
               r.steady);
        free(perm);
        free(dues);
        free(o);
    }
    return 0;
}
