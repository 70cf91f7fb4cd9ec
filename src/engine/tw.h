/*
 * tw.h -- hierarchical timer wheel for wake-ups, millisecond resolution.
 *
 * Entries are intrusive: the owner embeds a struct tw_entry, arming never
 * allocates, and the owner cancels before freeing.  The wheel has no
 * callbacks: the caller pops due entries one at a time with tw_pop(), in
 * nondecreasing due order, and may arm or cancel any entry (including the
 * popped one) between pops.  The wheel's notion of "now" only moves
 * forward, to the due time of each popped entry and finally to the `upto`
 * time passed to tw_pop once nothing more is due.  Jumps of days of virtual
 * time cost time proportional to the number of non-empty slots crossed, not
 * to the milliseconds crossed.
 *
 * Ties: entries with the same due time pop in the order of their last
 * tw_arm call (re-arming an entry moves it behind its peers).
 */
#ifndef FW_TW_H
#define FW_TW_H

#include <stddef.h>
#include <stdint.h>

struct tw_entry {
    int64_t due; /* read-only for the owner while armed */
    union {
        struct tw_entry *_next; /* wheel-private: next in its slot's list */
        size_t _hidx;           /* wheel-private: index in the overdue heap */
    };
    struct tw_entry **_pprev; /* wheel-private; NULL when not armed */
};

struct tw; /* opaque */

/* A wheel whose clock starts at `now` (ms). Free with tw_free. */
struct tw *tw_new(int64_t now);
/* Frees the wheel; armed entries are simply forgotten (they belong to their owners). */
void tw_free(struct tw *w);

/* Initialise an entry as not armed. */
void tw_entry_init(struct tw_entry *e);
/*
 * Arm (or re-arm) e for `due`; a due time <= the wheel's now fires at the
 * next pop, still in due order.  O(1) for due >= now; an overdue entry
 * (due < now) goes to a small binary heap, O(log overdue).
 */
void tw_arm(struct tw *w, struct tw_entry *e, int64_t due);
/* Disarm, O(1) (O(log overdue) for an overdue entry); harmless when not armed. */
void tw_cancel(struct tw *w, struct tw_entry *e);
static inline int tw_armed(const struct tw_entry *e) { return e->_pprev != NULL; }

/*
 * Pop the earliest entry with due <= upto (ties: any fixed order that
 * depends only on the sequence of operations), disarm it and return it; the
 * wheel's now becomes max(now, its due).  Returns NULL when nothing is due;
 * the wheel's now then becomes upto (if later).
 */
struct tw_entry *tw_pop(struct tw *w, int64_t upto);

/*
 * Earliest due time of any armed entry, or INT64_MAX when none.  O(1) when
 * it is within about a second of now; otherwise it scans the one wheel slot
 * that holds it, and the answer is cached until that entry goes.
 */
int64_t tw_next(struct tw *w);
/* The wheel's now. */
int64_t tw_now(const struct tw *w);
/* Number of armed entries. */
size_t tw_count(const struct tw *w);

/*
 * Every armed entry, each once, to fn; nothing is changed.  Entries with
 * the same due time are visited in the order they would pop (so sorting the
 * visits stably by due gives the pop order, which is how snapshots keep
 * the order of timers due at the same millisecond).  Overdue entries come
 * first, in pop order; the rest slot by slot.
 */
void tw_walk(const struct tw *w, void (*fn)(void *ctx, struct tw_entry *e), void *ctx);

/* Test support: 0 when every internal invariant holds, else a negative code. */
int tw__check(const struct tw *w);

#endif
