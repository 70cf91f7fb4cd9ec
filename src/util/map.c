/*
 * map.c -- insertion-ordered open-addressing hash map.
 *
 * Invariant: nslots is a power of two and at least twice len, so probing
 * always terminates at an empty slot.
 */
#include "util/map.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/*
 * Keys never move or go away before the map does, so they are cut from
 * blocks: one allocation per 64 KB of keys instead of one per key.  Each
 * block starts with a pointer to the previous one.
 */
#define ARENA_BLOCK 65536

static char *arena_copy(struct strmap *m, const char *key, size_t klen)
{
    size_t need = klen + 1;
    if (need > m->arena_left) {
        size_t size = need + sizeof(char *) > ARENA_BLOCK ? need + sizeof(char *) : ARENA_BLOCK;
        char *block = xmalloc(size);
        memcpy(block, &m->arena, sizeof(char *)); /* chain: block -> previous block */
        m->arena = block;
        m->arena_left = size - sizeof(char *);
    }
    /* Hand out from the block's end down, so the chain pointer at its start stays put. */
    m->arena_left -= need;
    char *p = m->arena + sizeof(char *) + m->arena_left;
    memcpy(p, key, klen);
    p[klen] = '\0';
    return p;
}

void strmap_init(struct strmap *m)
{
    memset(m, 0, sizeof *m);
}

void strmap_cleanup(struct strmap *m)
{
    char *block = m->arena;
    while (block) {
        char *prev;
        memcpy(&prev, block, sizeof prev);
        free(block);
        block = prev;
    }
    free(m->entries);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static uint64_t slot_of(uint64_t hash, size_t ix)
{
    return (hash & 0xFFFFFFFF00000000ULL) | (uint64_t)(ix + 1);
}

/* A bigger slot table; each slot's tag (the hash's high bits) comes from the old table. */
static void rehash(struct strmap *m, size_t nslots)
{
    uint64_t *old = m->slots;
    size_t nold = m->nslots;
    m->slots = xcalloc(nslots, sizeof *m->slots);
    m->nslots = nslots;
    for (size_t k = 0; k < nold; k++) {
        uint64_t v = old[k];
        if (!v)
            continue;
        size_t s = m->entries[(uint32_t)v - 1].hash_lo & (nslots - 1);
        while (m->slots[s])
            s = (s + 1) & (nslots - 1);
        m->slots[s] = v;
    }
    free(old);
}

/*
 * The entry for key, or NULL with *slot set to the empty slot where it
 * would go.  The tag in each slot rules out most other keys without
 * touching their entries (a cache miss each in a large map).
 */
static struct strmap_entry *lookup(const struct strmap *m, const char *key, size_t klen,
                                   uint64_t h, size_t *slot)
{
    uint64_t tag = h & 0xFFFFFFFF00000000ULL;
    for (size_t s = h & (m->nslots - 1);; s = (s + 1) & (m->nslots - 1)) {
        uint64_t v = m->slots[s];
        if (!v) {
            *slot = s;
            return NULL;
        }
        if ((v & 0xFFFFFFFF00000000ULL) != tag)
            continue;
        struct strmap_entry *e = &m->entries[(uint32_t)v - 1];
        if (e->hash_lo == (uint32_t)h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
}

struct strmap_entry *strmap_find(const struct strmap *m, const char *key, size_t klen)
{
    size_t slot;
    return m->nslots ? lookup(m, key, klen, fw_hash(key, klen), &slot) : NULL;
}

struct strmap_entry *strmap_upsert(struct strmap *m, const char *key, size_t klen, int *created)
{
    uint64_t h = fw_hash(key, klen);
    size_t s = 0;
    struct strmap_entry *e = m->nslots ? lookup(m, key, klen, h, &s) : NULL;
    if (created)
        *created = e == NULL;
    if (e)
        return e;
    if ((m->len + 1) * 2 > m->nslots) {
        rehash(m, m->nslots ? m->nslots * 2 : 16);
        for (s = h & (m->nslots - 1); m->slots[s]; s = (s + 1) & (m->nslots - 1))
            ;
    }
    m->entries = xgrow(m->entries, &m->cap, m->len + 1, sizeof *m->entries);
    e = &m->entries[m->len];
    if (klen > UINT32_MAX - 1)
        abort(); /* callers cap keys far below (an event's subject, a name) */
    e->key = arena_copy(m, key, klen);
    e->klen = (uint32_t)klen;
    e->hash_lo = (uint32_t)h;
    e->value = NULL;
    m->slots[s] = slot_of(h, m->len++);
    return e;
}

void intern_init(struct intern *t)
{
    strmap_init(&t->map);
}

void intern_cleanup(struct intern *t)
{
    strmap_cleanup(&t->map);
}

uint32_t intern_id(struct intern *t, const char *s, size_t n)
{
    int created;
    struct strmap_entry *e = strmap_upsert(&t->map, s, n, &created);
    if (created)
        e->value = (void *)(uintptr_t)t->map.len;
    return (uint32_t)((uintptr_t)e->value - 1);
}

int64_t intern_lookup(const struct intern *t, const char *s, size_t n)
{
    struct strmap_entry *e = strmap_find(&t->map, s, n);
    return e ? (int64_t)((uintptr_t)e->value - 1) : -1;
}

const char *intern_str(const struct intern *t, uint32_t id)
{
    return id < t->map.len ? t->map.entries[id].key : NULL;
}
