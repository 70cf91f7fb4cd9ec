/*
 * map.h -- string-keyed hash map (open addressing, linear probing) and a
 * string interner built on it.
 *
 * Keys are copied into the map; values are opaque pointers owned by the
 * caller.  Iteration order is insertion order (entries live in a dense
 * array, the table holds indexes), so output built from a map is
 * deterministic.  Deletion is not supported: forewarn's maps only grow
 * (symbols, customers) for the life of their owner.
 */
#ifndef FW_MAP_H
#define FW_MAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_entry {
    char *key;        /* owned copy, NUL-terminated; lives in the map's key arena */
    void *value;      /* caller-owned */
    uint32_t klen;    /* keys are below 4 GiB (strmap_upsert stops otherwise) */
    uint32_t hash_lo; /* the hash's low 32 bits (its slot); the slot holds the high ones: 24
                         bytes an entry, not 32 (a million customers are a million entries) */
};

struct strmap {
    struct strmap_entry *entries; /* dense, insertion order */
    size_t len, cap;
    uint64_t *slots;              /* hash's top 32 bits << 32 | index+1 into entries; 0 = empty */
    size_t nslots;                /* power of two */
    char *arena;                  /* the current block of key bytes; blocks are chained */
    size_t arena_left;            /* bytes free at its end */
};

void strmap_init(struct strmap *m);
/* Free keys and tables; values are the caller's to free first (iterate). */
void strmap_cleanup(struct strmap *m);
/* Find; NULL when absent. */
struct strmap_entry *strmap_find(const struct strmap *m, const char *key, size_t klen);
/*
 * Find or insert; *created (may be NULL) tells which.  A new entry's value
 * is NULL.  The returned pointer is valid until the next insert.
 */
struct strmap_entry *strmap_upsert(struct strmap *m, const char *key, size_t klen, int *created);

/* Interner: dense ids 0..n-1 for distinct strings, stable for the table's life. */
struct intern {
    struct strmap map; /* value holds id+1 cast to a pointer */
};

void intern_init(struct intern *t);
void intern_cleanup(struct intern *t);
/* Id of s, adding it if new. */
uint32_t intern_id(struct intern *t, const char *s, size_t n);
/* Id of s, or -1 when s was never interned. */
int64_t intern_lookup(const struct intern *t, const char *s, size_t n);
/* The string for an id (owned by the table); NULL when out of range. */
const char *intern_str(const struct intern *t, uint32_t id);
static inline size_t intern_count(const struct intern *t) { return t->map.len; }

#endif
