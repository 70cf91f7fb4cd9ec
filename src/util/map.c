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

void strmap_init(struct strmap *m)
{
    memset(m, 0, sizeof *m);
}

void strmap_cleanup(struct strmap *m)
{
    for (size_t i = 0; i < m->len; i++)
        free(m->entries[i].key);
    free(m->entries);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static void rehash(struct strmap *m, size_t nslots)
{
    free(m->slots);
    m->slots = xcalloc(nslots, sizeof *m->slots);
    m->nslots = nslots;
    for (size_t i = 0; i < m->len; i++) {
        size_t s = m->entries[i].hash & (nslots - 1);
        while (m->slots[s])
            s = (s + 1) & (nslots - 1);
        m->slots[s] = (uint32_t)(i + 1);
    }
}

struct strmap_entry *strmap_find(const struct strmap *m, const char *key, size_t klen)
{
    if (!m->nslots)
        return NULL;
    uint64_t h = fw_hash(key, klen);
    for (size_t s = h & (m->nslots - 1);; s = (s + 1) & (m->nslots - 1)) {
        uint32_t ix = m->slots[s];
        if (!ix)
            return NULL;
        struct strmap_entry *e = &m->entries[ix - 1];
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
}

struct strmap_entry *strmap_upsert(struct strmap *m, const char *key, size_t klen, int *created)
{
    struct strmap_entry *e = strmap_find(m, key, klen);
    if (created)
        *created = e == NULL;
    if (e)
        return e;
    if ((m->len + 1) * 2 > m->nslots)
        rehash(m, m->nslots ? m->nslots * 2 : 16);
    m->entries = xgrow(m->entries, &m->cap, m->len + 1, sizeof *m->entries);
    e = &m->entries[m->len];
    e->key = xstrndup(key, klen);
    e->klen = klen;
    e->hash = fw_hash(key, klen);
    e->value = NULL;
    size_t s = e->hash & (m->nslots - 1);
    while (m->slots[s])
        s = (s + 1) & (m->nslots - 1);
    m->slots[s] = (uint32_t)(++m->len);
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
