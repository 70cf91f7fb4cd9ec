/*
 * state.h -- engine-private: the per-customer journey state and the
 * operations on it (engine module only).
 *
 * A customer holds small sorted-by-id arrays rather than hash maps: a
 * journey has a handful of keys, so a linear scan of a few cache lines
 * beats hashing and keeps the footprint small.
 */
#ifndef FW_ENGINE_STATE_H
#define FW_ENGINE_STATE_H

#include <jansson.h>
#include <stdint.h>

#include "engine/tw.h"
#include "expr/expr.h"

/* One state key's value; strings and lists are owned by the entry. */
struct kv {
    uint32_t key;  /* id in rules->keys (or rules->globals for global state) */
    int64_t since; /* event time at which the value was taken */
    struct value v;
};

struct last_seen {
    uint32_t type;
    int64_t at;
};

/* Event times of one class, ascending, pruned to the class's longest window. */
struct window {
    uint32_t cls;
    uint32_t n, cap;
    int64_t *times;
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
    int firing;       /* 1 fired, 0 resolved */
    int waking;       /* found by a wake-up (not by the event's own pass) */
    int64_t at;       /* when */
    int64_t fired_at; /* the episode's start */
};

struct kvset {
    struct kv *items;
    uint32_t n, cap;
};

struct customer {
    struct tw_entry timer; /* first: the wheel hands back this pointer; cast to an engine_timer
                              its fire is NULL (see _fire_null) */
    void *_fire_null;      /* always NULL: lines up with engine_timer.fire */
    char *key;             /* the subject */
    struct kvset state;
    struct last_seen *last;
    uint32_t nlast, lastcap;
    struct window *win;
    uint32_t nwin;
    int future;                /* some class time was dated after the clock when noted */
    struct open_entity *open;
    uint32_t nopen, opencap;
    int64_t *fired_at; /* per signal: episode start, FW_TIME_NONE when not firing */
    int64_t *next_at;   /* per signal: next change time from its last evaluation (same block
                           as fired_at); FW_TIME_NONE before the first */
    int64_t *stable_at; /* per signal: until when that evaluation stays valid (same block) */
    int64_t floor;      /* an event dated at or after this is applied at its own time; earlier
                           ones at the clock (FW_TIME_NONE: no event yet) */
    struct trans *proj; /* wake-up transitions after floor, in time order: undone when a late
                           event dated before them arrives */
    uint32_t nproj, capproj;
    struct engage *eng; /* usage rollups, features, onboarding (engage.h); NULL until the first
                           engagement event */
    uint32_t ver;       /* bumped by each of its events and detection changes: a cached churn
                           score of another version is stale */
    struct churn_cache *churn; /* the last churn score (engine.c); NULL until first asked for */
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

struct kv *kvset__find(const struct kvset *s, uint32_t key);
/* Set key to a copy of v at time t; returns 1 when the value changed. Old value passed out via *old (owned by caller, VAL_NULL if none) when old != NULL. */
int kvset__set(struct kvset *s, uint32_t key, const struct value *v, int64_t t, struct value *old);
/* Remove a key; its value is moved to *old (caller frees) when old != NULL. */
int kvset__remove(struct kvset *s, uint32_t key, struct value *old);
/* dst (uninitialised) becomes a deep copy of src. */
void kvset__copy(struct kvset *dst, const struct kvset *src);
void kvset__cleanup(struct kvset *s);

#endif
