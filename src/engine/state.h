/*
 * state.h -- engine-private: the per-customer journey state and the
 * operations on it (engine module only).
 *
 * A customer holds small sorted-by-id arrays rather than hash maps: a
 * journey has a handful of keys, so a search of a few cache lines beats
 * hashing and keeps the footprint small.  Its state keys live in one
 * packed block (struct kvset below).
 */
#ifndef FW_ENGINE_STATE_H
#define FW_ENGINE_STATE_H

#include <jansson.h>
#include <stdint.h>

#include "engine/tw.h"
#include "expr/expr.h"
#include "util/fwtime.h"
#include "util/slab.h"

/* Event times of one class, ascending, pruned to the class's longest window. */
struct window {
    uint32_t cls;
    uint32_t n, cap;
    int64_t *times;
};

/* A customer's windows, one per class a condition counts (a pack has a handful). */
struct winset {
    uint32_t n;
    uint8_t future; /* some class time was dated after the clock when noted */
    struct window w[];
};

struct open_entity {
    uint32_t entity;
    char *id;
};

/*
 * A detection transition a wake-up found after the customer's latest event:
 * provisional, because an event dated before it may still arrive (see
 * "late events" in engine.c).
 */
struct trans {
    uint32_t sig;
    uint8_t firing;   /* 1 fired, 0 resolved */
    uint8_t waking;   /* found by a wake-up (not by the event's own pass) */
    int64_t at;       /* when */
    int64_t fired_at; /* the episode's start */
};

/*
 * A set of state keys (customer or global), sorted by key id, and for a
 * customer its last-seen times, in one heap block: a customer's ~16 keys
 * and ~6 event types cost one allocation, not one per string (issue 14,
 * compact state).  Nothing in it is aligned (memcpy):
 *
 *   header, 12 bytes        key count, block size, last-seen count, number of
 *                           distinct times, flags (wide index, holds lists)
 *   int64 times[nt]         the distinct times, up to 31: keys' `since` and
 *                           last-seen times (one event's time serves both)
 *   index                   when built with shared layouts (the engine's
 *                           blocks): a pointer to the layout, the ascending
 *                           ids of the keys then of the last-seen entries
 *                           as KV_LAST | type, which the customers with the
 *                           same keys and types share (struct kvlayout),
 *                           then each entry's record offset from the first
 *                           record, 1 byte each when the last starts within
 *                           256 bytes, else 2 (blocks whose records pass
 *                           65,536 bytes use the inline index); else inline:
 *                           index[n + nlast], ascending (id, record offset):
 *                           2 bytes each (bit 15 for KV_LAST) when every key
 *                           id and type is below 32,768 and the block below
 *                           65,536, else 4 bytes each
 *   records                 one byte of type (3 bits) and time index (5 bits;
 *                           31: the 8-byte time follows), then the payload:
 *                           bool 1 byte; a number with an int32 value 4 bytes
 *                           (type 7), any other 8; time and duration 8;
 *                           string: length (1 byte, or 0xff and 4 bytes) and
 *                           its bytes, no NUL; list: an owned `struct value`
 *                           array pointer and count; a last-seen entry: null,
 *                           then its 2-byte first-seen ordinal
 *
 * Values read out of a set (kvset__get, kvset__at) borrow from the block:
 * valid until the set is next changed.  A set changes only by being
 * rebuilt (struct kvbuild), which is what the engine did per event anyway.
 */
struct kvset {
    unsigned char *_blk; /* NULL when empty */
};

/*
 * The ids of a block's entries, shared by every block with the same ones
 * (most customers of a pack have the same keys and event types): 90 of the
 * 605 bytes a customer took at 100k customers were a 4-byte (id, offset)
 * per entry.  Made once and kept until the table is cleaned up, after
 * every block that points at them is gone.
 */
struct kvlayout {
    struct kvlayout *next; /* in its hash chain */
    uint32_t hash, n;
    uint32_t ids[];
};

struct kvlayouts {
    struct kvlayout **slots; /* chains, nslots a power of two */
    size_t nslots, n;
    size_t bytes; /* the layouts' own */
};

/* Free every layout (the blocks that used them must be gone). */
void kvlayouts__cleanup(struct kvlayouts *L);

/*
 * One signal's times for a customer: the episode start (FW_TIME_NONE when
 * not firing), the next change time from its last evaluation, and until
 * when that evaluation stays valid (FW_TIME_NONE: judge it again).  Most
 * signals of most customers are not firing, with no next change, stable
 * for ever (sigt__usual): only the others are stored, in a small array
 * sorted by signal, sized exactly (three int64 per signal per customer
 * were 264 of the 1,664 bytes a customer took; issue 14).
 */
struct sigtimes {
    uint32_t sig;
    int64_t fired_at, next_at, stable_at;
};

/* Builds a set: keys added in strictly ascending order; values are copied. */
struct kvbuild {
    struct slab *slab;          /* where finished blocks are allocated (the engine's) */
    struct kvlayouts *layouts;  /* shared layouts for finished blocks; NULL: inline index */
    int64_t times[31];
    uint32_t nt;
    uint32_t n, cap;  /* entries: keys, then nlast last-seen ones */
    uint32_t nlast;
    int adding_last;
    int lists;                      /* some value added is a list */
    const unsigned char *tmap_src;  /* the block kvbuild__keep last copied from */
    unsigned char tmap[32];         /* its time indexes -> ours (0xff: not yet) */
    struct kvbuild_key {
        uint32_t key, off;
    } *idx;
    unsigned char *heap;
    size_t len, hcap;
};

/*
 * One customer: 120 bytes (a 128-byte malloc chunk) plus its blocks, sized
 * exactly (arrays grow by one element: they change a few times in a
 * customer's life, and doubling left a third of them unused; the undo list
 * grows by powers of two, see proj__cap).
 * Pointers to rarely used parts (windows, entities, engagement, churn) are
 * NULL until needed.
 */
struct customer {
    struct tw_entry timer; /* first: the wheel hands back this pointer; cast to an engine_timer
                              its fire is NULL (see _fire_null) */
    void *_fire_null;      /* always NULL: lines up with engine_timer.fire */
    char *key;             /* the subject (the customers map owns it) */
    struct kvset state;
    struct sigtimes *sigt; /* the signals whose times are not the usual ones (sigt__get) */
    struct winset *win; /* NULL until an event of a counted class */
    struct open_entity *open;
    struct trans *proj; /* wake-up transitions after floor, in time order: undone when a late
                           event dated before them arrives; room for proj__cap(nproj) */
    struct engage *eng; /* usage rollups, features, onboarding (engage.h); NULL until the first
                           engagement event */
    struct churn_cache *churn; /* the last churn score (engine.c); NULL until first asked for */
    int64_t floor;      /* an event dated at or after this is applied at its own time; earlier
                           ones at the clock (FW_TIME_NONE: no event yet) */
    uint32_t nsigt, nopen, nproj;
    uint32_t ver;       /* bumped by each of its events and detection changes: a cached churn
                           score of another version is stale */
};

/* A customer's churn score as last computed, and until when it holds. */
struct churn_cache {
    uint32_t ver, gver; /* the customer's and the global state's versions it was computed at */
    int ok;             /* the model scored (else churn_risk is null) */
    int64_t at, until;  /* computed at; valid while at <= now < until */
    double score;
    char *cells;        /* owned: the text the model saw per column, NUL after each */
};

/* Deep copy / free of values held in state. */
void value__copy(struct value *dst, const struct value *src);
void value__free(struct value *v);
/* Equality of two stored values (same type and contents). */
int value__equal(const struct value *a, const struct value *b);
/* A JSON scalar or list of scalars as a value; -1 for objects and nested lists. */
int value__from_json(json_t *j, struct value *out);
/* A value as a new jansson value. */
json_t *value__to_jansson(const struct value *v);
/* Append a value as JSON. */
struct buf;
void value__json(const struct value *v, struct buf *out);

/* Signal s's times (SIGT_USUAL's when it is not stored). */
struct sigtimes sigt__get(const struct sigtimes *a, uint32_t n, uint32_t s);
/* Store t (t->sig says which signal): removed when usual, else inserted or replaced; the array
   is reallocated (from slab) to fit. */
void sigt__put(struct slab *slab, struct sigtimes **a, uint32_t *n, const struct sigtimes *t);
/* Whether t holds the usual times (not firing, no next change, stable for ever). */
static inline int sigt__usual(const struct sigtimes *t)
{
    return t->fired_at == FW_TIME_NONE && t->next_at == FW_TIME_MAX && t->stable_at == FW_TIME_MAX;
}

/* Room the proj array of n transitions has: the next power of two (0 for none). */
uint32_t proj__cap(uint32_t n);

/* Number of keys in the set. */
uint32_t kvset__count(const struct kvset *s);
/* Key `key`'s value (borrowed, see above) and since; 0 and VAL_NULL/FW_TIME_NONE when absent.
   since may be NULL. */
int kvset__get(const struct kvset *s, uint32_t key, struct value *v, int64_t *since);
/* The i-th key (i < kvset__count) in ascending order, its value (borrowed) and since. */
void kvset__at(const struct kvset *s, uint32_t i, uint32_t *key, struct value *v, int64_t *since);
/* dst (uninitialised) becomes a deep copy of src, its block from slab. */
void kvset__copy(struct kvset *dst, const struct kvset *src, struct slab *slab);
/* Free the set's block (allocated from slab). */
void kvset__cleanup(struct kvset *s, struct slab *slab);
/* Heap bytes the set holds (its block and any lists), for engine_state_bytes. */
size_t kvset__bytes(const struct kvset *s);

/*
 * Last-seen times (a customer's set only): the time of the latest event of
 * each type it has seen, kept in the same block and sharing its table of
 * times (an event's time is usually the `since` of the keys it set).
 */
/* Time of the latest event of `type`, FW_TIME_NONE if none. */
int64_t kvset__last(const struct kvset *s, uint32_t type);
/* Number of types seen. */
uint32_t kvset__nlast(const struct kvset *s);
/* The k-th type first seen (k < kvset__nlast) and its latest time. */
void kvset__last_at(const struct kvset *s, uint32_t k, uint32_t *type, int64_t *at);
/* Note an event of `type` at `at` (an entry keeps its latest time), rebuilding s through b when
   that changes anything; returns whether it did. */
int kvset__note_last(struct kvset *s, struct kvbuild *b, uint32_t type, int64_t at);

/* Blocks finished by b come from slab, their ids in layouts (NULL: each block its own index). */
void kvbuild__init(struct kvbuild *b, struct slab *slab, struct kvlayouts *layouts);
/* Append key (greater than the last one added) with a deep copy of v, taken at `since`. */
void kvbuild__add(struct kvbuild *b, uint32_t key, const struct value *v, int64_t since);
/* Append entry i of s (i < kvset__count(s): a key, in order) as it is: no value decoded. */
void kvbuild__keep(struct kvbuild *b, const struct kvset *s, uint32_t i);
/* Entries [i, j) of s (keys, in order), as kvbuild__keep one by one would append them: with
   shared layouts, one copy of their records. */
void kvbuild__keep_range(struct kvbuild *b, const struct kvset *s, uint32_t i, uint32_t j);
/* Key id of entry i (i < kvset__count). */
uint32_t kvset__key(const struct kvset *s, uint32_t i);
/* Replace s's contents (freed) with what was added; b is reset for reuse (kvbuild__cleanup
   still frees its scratch). */
void kvbuild__finish(struct kvbuild *b, struct kvset *s);
/* After the keys: s's last-seen entries, with an event of `type` at `at` noted (UINT32_MAX:
   none). */
void kvbuild__copy_last(struct kvbuild *b, const struct kvset *s, uint32_t type, int64_t at);
/* After the keys: n last-seen entries in first-seen order (a snapshot's); -1 when a type repeats. */
int kvbuild__add_lasts(struct kvbuild *b, const uint32_t *types, const int64_t *ats, uint32_t n);
void kvbuild__cleanup(struct kvbuild *b);

#endif
