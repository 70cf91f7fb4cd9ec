/*
 * tw.c -- hierarchical timer wheel: 7 levels of 1024 slots, 1 ms ticks.
 *
 * Times are mapped to unsigned keys with the sign bit flipped, so unsigned
 * order is int64 order and seven 10-bit groups cover every int64.  An armed
 * entry with due >= now lives on level L, the highest group in which its
 * key differs from now's key (level 0 when due == now), in the slot named
 * by its own group L.  The main invariant follows: every entry on level L
 * shares now's groups above L and has a larger group L (>= on level 0), so
 * each lower level holds only earlier entries than any higher level, and on
 * level 0 the slot *is* the due time.  Occupancy bitmaps (a word per 64
 * slots, and a summary word per level) find the earliest non-empty slot
 * with two count-trailing-zeros.
 *
 * Advancing: when level 0 is empty, now jumps to the start of the earliest
 * non-empty slot of the lowest non-empty level and that slot is cascaded
 * (its entries re-placed, all on lower levels).  Empty slots are never
 * visited, so a jump of days costs in proportion to the entries, not to the
 * milliseconds.  Levels span 1 s, 17 min, 12 days and 35 years, so a
 * wake-up within the next decade cascades at most three times.  Cascades
 * are where the time goes (one cache miss per entry moved), which is why
 * the levels are wide: of 64, 256, 1024 and 4096 slots, 1024 gave the best
 * steady state (pop + re-arm, millions pending) in bench/tw_bench.c.
 *
 * Slot lists are circular with a sentinel per slot and appended at the
 * tail; cascading keeps list order.  Entries with the same due are always
 * in the same list, so they pop in arming order (FIFO).
 *
 * Overdue entries (armed with due < now) cannot be placed relative to now;
 * they go to a binary min-heap ordered by (due, arming sequence).  Now does
 * not move while the heap is non-empty (tw_pop drains it first), so every
 * heap entry precedes every wheel entry.  The heap is empty in the common
 * case and costs nothing then.
 */
#include "engine/tw.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#ifndef TW_BITS
#define TW_BITS 10 /* slots per level = 1 << TW_BITS; tests also build 4, 6 and 8 */
#endif
#define TW_SLOTS (1u << TW_BITS)
#define TW_WORDS ((TW_SLOTS + 63) / 64)          /* bitmap words per level */
#define TW_LEVELS ((64 + TW_BITS - 1) / TW_BITS) /* levels to cover 64 bits */
#define TW_SIGN (UINT64_C(1) << 63)

struct tw_heap_item {
    int64_t due;        /* copy of e->due: comparisons stay in the array */
    uint64_t seq;       /* arming order, breaks ties */
    struct tw_entry *e; /* e->_hidx is this item's index */
};

struct tw {
    int64_t now;                                /* only moves forward */
    size_t count;                               /* armed entries, wheel and heap */
    uint64_t occ[TW_LEVELS][TW_WORDS];          /* bit s: slot s of the level is non-empty */
    uint64_t sum[TW_LEVELS];                    /* bit i: occ[level][i] != 0 */
    struct tw_heap_item *heap;                  /* overdue entries; owned */
    size_t hlen, hcap;                          /* heap length and capacity */
    uint64_t seq;                               /* next heap arming sequence number */
    struct tw_entry *overdue_tag;               /* an overdue entry's _pprev points here */
    int64_t next_cache;                         /* tw_next's answer while next_valid */
    int next_valid;                             /* next_cache is exact */
    struct tw_entry slot[TW_LEVELS * TW_SLOTS]; /* list sentinels */
};

static inline uint64_t key(int64_t t)
{
    return (uint64_t)t ^ TW_SIGN;
}
static inline int64_t unkey(uint64_t k)
{
    return (int64_t)(k ^ TW_SIGN);
}

/* Append e at the tail of the circular list whose sentinel is s. */
static inline void list_append(struct tw_entry *s, struct tw_entry *e)
{
    e->_next = s;
    e->_pprev = s->_pprev;
    *s->_pprev = e;
    s->_pprev = &e->_next;
}

static inline void list_reset(struct tw_entry *s)
{
    s->_next = s;
    s->_pprev = &s->_next;
}

static inline void occ_set(struct tw *w, unsigned lvl, unsigned s)
{
    w->occ[lvl][s / 64] |= UINT64_C(1) << (s % 64);
    w->sum[lvl] |= UINT64_C(1) << (s / 64);
}

static inline void occ_clear(struct tw *w, unsigned lvl, unsigned s)
{
    uint64_t *word = &w->occ[lvl][s / 64];
    *word &= ~(UINT64_C(1) << (s % 64));
    if (!*word)
        w->sum[lvl] &= ~(UINT64_C(1) << (s / 64));
}

/* The lowest occupied slot of a level that has one. */
static inline unsigned occ_first(const struct tw *w, unsigned lvl)
{
    unsigned i = (unsigned)__builtin_ctzll(w->sum[lvl]);
    return i * 64 + (unsigned)__builtin_ctzll(w->occ[lvl][i]);
}

/* Put e (due >= now) on the level and slot the invariant assigns it. */
static inline void wheel_place(struct tw *w, struct tw_entry *e)
{
    uint64_t k = key(e->due), x = k ^ key(w->now);
    unsigned lvl = x ? (unsigned)(63 - __builtin_clzll(x)) / TW_BITS : 0;
    unsigned s = (unsigned)(k >> (lvl * TW_BITS)) & (TW_SLOTS - 1);
    struct tw_entry *sent = &w->slot[lvl * TW_SLOTS + s];
    if (!(w->occ[lvl][s / 64] >> (s % 64) & 1))
        list_reset(sent); /* sentinels are made on first use: tw_new only zeroes */
    list_append(sent, e);
    occ_set(w, lvl, s);
}

/* Unlink a wheel entry; clears the slot's bit when it was the last one. */
static inline void wheel_unlink(struct tw *w, struct tw_entry *e)
{
    struct tw_entry *n = e->_next;
    *e->_pprev = n;
    n->_pprev = e->_pprev;
    e->_pprev = NULL;
    /* A real entry never points to itself: n is then an emptied sentinel. */
    if (n->_next == n) {
        size_t i = (size_t)(n - w->slot);
        occ_clear(w, (unsigned)(i / TW_SLOTS), (unsigned)(i % TW_SLOTS));
    }
}

/* Move every entry of one slot down, relative to the (new) now. */
static void wheel_cascade(struct tw *w, unsigned lvl, unsigned s)
{
    struct tw_entry *sent = &w->slot[lvl * TW_SLOTS + s];
    struct tw_entry *e = sent->_next;
    *sent->_pprev = NULL; /* terminate the detached chain at its tail */
    list_reset(sent);
    occ_clear(w, lvl, s);
    while (e) {
        struct tw_entry *next = e->_next;
        wheel_place(w, e); /* always to a level below lvl */
        e = next;
    }
}

static inline int heap_less(const struct tw_heap_item *a, const struct tw_heap_item *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static inline void heap_set(struct tw *w, size_t i, struct tw_heap_item it)
{
    w->heap[i] = it;
    it.e->_hidx = i;
}

static void heap_sift_up(struct tw *w, size_t i)
{
    struct tw_heap_item it = w->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &w->heap[p]))
            break;
        heap_set(w, i, w->heap[p]);
        i = p;
    }
    heap_set(w, i, it);
}

static void heap_sift_down(struct tw *w, size_t i)
{
    struct tw_heap_item it = w->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->hlen)
            break;
        if (c + 1 < w->hlen && heap_less(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!heap_less(&w->heap[c], &it))
            break;
        heap_set(w, i, w->heap[c]);
        i = c;
    }
    heap_set(w, i, it);
}

static void heap_push(struct tw *w, struct tw_entry *e)
{
    if (w->hlen == w->hcap)
        w->heap = xgrow(w->heap, &w->hcap, w->hlen + 1, sizeof *w->heap);
    w->heap[w->hlen] = (struct tw_heap_item){.due = e->due, .seq = w->seq++, .e = e};
    e->_pprev = &w->overdue_tag;
    heap_sift_up(w, w->hlen++);
}

static void heap_remove(struct tw *w, struct tw_entry *e)
{
    size_t i = e->_hidx;
    e->_pprev = NULL;
    if (--w->hlen > i) {
        /* Fill the hole with the last item, which may need to go either way. */
        struct tw_entry *moved = w->heap[w->hlen].e;
        heap_set(w, i, w->heap[w->hlen]);
        heap_sift_down(w, i);
        heap_sift_up(w, moved->_hidx);
    }
    /* A burst of overdue arms should not pin its memory forever. */
    if (w->hlen == 0 && w->hcap > 4096) {
        free(w->heap);
        w->heap = NULL;
        w->hcap = 0;
    }
}

struct tw *tw_new(int64_t now)
{
    struct tw *w = xcalloc(1, sizeof *w);
    w->now = now;
    /* The 7,168 slot sentinels are linked when a slot is first occupied (wheel_place), so a
       new wheel costs a zeroed allocation whose pages the kernel maps as they are touched. */
    w->next_cache = INT64_MAX;
    w->next_valid = 1;
    return w;
}

void tw_free(struct tw *w)
{
    if (!w)
        return;
    free(w->heap);
    free(w);
}

void tw_entry_init(struct tw_entry *e)
{
    e->due = 0;
    e->_next = NULL;
    e->_pprev = NULL;
}

void tw_arm(struct tw *w, struct tw_entry *e, int64_t due)
{
    if (tw_armed(e))
        tw_cancel(w, e);
    e->due = due;
    if (due >= w->now)
        wheel_place(w, e);
    else
        heap_push(w, e);
    w->count++;
    if (due < w->next_cache)
        w->next_cache = due; /* exact if it was; harmless if not valid */
}

/* Bookkeeping shared by cancel and pop once e is unlinked. */
static inline void forget(struct tw *w, const struct tw_entry *e)
{
    w->count--;
    if (e->due == w->next_cache)
        w->next_valid = 0;
}

void tw_cancel(struct tw *w, struct tw_entry *e)
{
    if (!tw_armed(e))
        return;
    if (e->_pprev == &w->overdue_tag)
        heap_remove(w, e);
    else
        wheel_unlink(w, e);
    forget(w, e);
}

struct tw_entry *tw_pop(struct tw *w, int64_t upto)
{
    if (w->hlen) {
        /* Overdue entries precede everything on the wheel; now stays. */
        struct tw_entry *e = w->heap[0].e;
        if (e->due > upto)
            return NULL; /* upto < e->due < now: nothing else can be due */
        heap_remove(w, e);
        forget(w, e);
        return e;
    }
    for (;;) {
        if (w->sum[0]) {
            /* Level 0 is exact: the lowest occupied slot is the earliest due. */
            unsigned s = occ_first(w, 0);
            int64_t due = unkey((key(w->now) & ~(uint64_t)(TW_SLOTS - 1)) | s);
            if (due > upto)
                break;
            struct tw_entry *e = w->slot[s]._next;
            wheel_unlink(w, e);
            w->now = due;
            forget(w, e);
            return e;
        }
        unsigned lvl = 1;
        while (lvl < TW_LEVELS && !w->sum[lvl])
            lvl++;
        if (lvl == TW_LEVELS)
            break; /* the wheel is empty */
        /* Jump to the start of the earliest occupied slot and cascade it. */
        unsigned s = occ_first(w, lvl);
        unsigned shift = lvl * TW_BITS;
        uint64_t above = shift + TW_BITS >= 64 ? 0 : ~((UINT64_C(1) << (shift + TW_BITS)) - 1);
        int64_t start = unkey((key(w->now) & above) | ((uint64_t)s << shift));
        if (start > upto)
            break;
        w->now = start; /* <= upto, and the final now is >= start */
        wheel_cascade(w, lvl, s);
    }
    /* Moving now up to an instant before every entry keeps the invariant. */
    if (upto > w->now)
        w->now = upto;
    return NULL;
}

int64_t tw_next(struct tw *w)
{
    if (w->next_valid)
        return w->next_cache;
    int64_t next = INT64_MAX;
    if (w->hlen) {
        next = w->heap[0].due;
    } else if (w->sum[0]) {
        unsigned s = occ_first(w, 0);
        next = unkey((key(w->now) & ~(uint64_t)(TW_SLOTS - 1)) | s);
    } else {
        /*
         * The earliest entry is in the lowest occupied slot of the lowest
         * occupied level, but that slot spans many milliseconds: scan it.
         * The answer is cached until the entry holding it goes away.
         */
        for (unsigned lvl = 1; lvl < TW_LEVELS; lvl++) {
            if (!w->sum[lvl])
                continue;
            const struct tw_entry *sent = &w->slot[lvl * TW_SLOTS + occ_first(w, lvl)];
            for (const struct tw_entry *e = sent->_next; e != sent; e = e->_next)
                if (e->due < next)
                    next = e->due;
            break;
        }
    }
    w->next_cache = next;
    w->next_valid = 1;
    return next;
}

static int heap_item_cmp(const void *a, const void *b)
{
    const struct tw_heap_item *x = a, *y = b;
    return heap_less(x, y) ? -1 : heap_less(y, x);
}

void tw_walk(const struct tw *w, void (*fn)(void *ctx, struct tw_entry *e), void *ctx)
{
    if (w->hlen) {
        /* The heap's array is in heap order: sorted copy, (due, arming sequence). */
        struct tw_heap_item *h = xmalloc(w->hlen * sizeof *h);
        memcpy(h, w->heap, w->hlen * sizeof *h);
        qsort(h, w->hlen, sizeof *h, heap_item_cmp);
        for (size_t i = 0; i < w->hlen; i++)
            fn(ctx, h[i].e);
        free(h);
    }
    /* Same due, same list (see the top of the file): list order is pop order. */
    for (unsigned lvl = 0; lvl < TW_LEVELS; lvl++)
        for (unsigned word = 0; w->sum[lvl] && word < TW_WORDS; word++)
            for (uint64_t bits = w->occ[lvl][word]; bits; bits &= bits - 1) {
                unsigned s = word * 64 + (unsigned)__builtin_ctzll(bits);
                const struct tw_entry *sent = &w->slot[lvl * TW_SLOTS + s];
                for (struct tw_entry *e = sent->_next; e != sent;) {
                    struct tw_entry *next = e->_next; /* fn may not change the wheel, but be safe */
                    fn(ctx, e);
                    e = next;
                }
            }
}

int64_t tw_now(const struct tw *w)
{
    return w->now;
}

size_t tw_count(const struct tw *w)
{
    return w->count;
}

int tw__check(const struct tw *w)
{
    size_t n = w->hlen;
    uint64_t kn = key(w->now);
    for (unsigned lvl = 0; lvl < TW_LEVELS; lvl++) {
        for (unsigned s = 0; s < TW_SLOTS; s++) {
            const struct tw_entry *sent = &w->slot[lvl * TW_SLOTS + s];
            int bit = (int)(w->occ[lvl][s / 64] >> (s % 64) & 1);
            if (!(w->sum[lvl] >> (s / 64) & 1) != !w->occ[lvl][s / 64])
                return -8;
            if (!bit && !sent->_next)
                continue; /* never occupied: its sentinel is not linked yet */
            if (bit != (sent->_next != sent))
                return -1;
            const void *pp = &sent->_next; /* where e->_pprev must point */
            for (const struct tw_entry *e = sent->_next; e != sent; e = e->_next) {
                if ((const void *)e->_pprev != pp || e->due < w->now)
                    return -2;
                uint64_t x = key(e->due) ^ kn;
                unsigned el = x ? (unsigned)(63 - __builtin_clzll(x)) / TW_BITS : 0;
                if (el != lvl || ((key(e->due) >> (lvl * TW_BITS)) & (TW_SLOTS - 1)) != s)
                    return -3;
                pp = &e->_next;
                n++;
            }
            if ((const void *)sent->_pprev != pp)
                return -4;
        }
    }
    for (size_t i = 0; i < w->hlen; i++) {
        const struct tw_heap_item *it = &w->heap[i];
        if (it->e->_hidx != i || it->e->due != it->due || it->due >= w->now ||
            it->e->_pprev != &w->overdue_tag)
            return -5;
        if (i && heap_less(it, &w->heap[(i - 1) / 2]))
            return -6;
    }
    return n == w->count ? 0 : -7;
}
