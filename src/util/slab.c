/*
 * slab.c -- see slab.h.
 */
#include "util/slab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define CHUNK ((size_t)256 << 10)

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_CHECKED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_CHECKED 1
#endif
#endif
#ifndef SLAB_CHECKED
#define SLAB_CHECKED 0
#endif

/* A caller's bug (a size that is not the block's): stop. */
static void die(const char *what, size_t a, size_t b)
{
    fprintf(stderr, "forewarn: slab: %s (%zu, %zu)\n", what, a, b);
    abort();
}

static size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

void slab_init(struct slab *s)
{
    memset(s, 0, sizeof *s);
}

/* ---- blocks of their own: above SLAB_MAX, or every one when checked ---- */

struct slab_hdr {
    struct slab_hdr *prev, *next; /* every such block, so that cleanup frees them */
    size_t n;
    size_t pad; /* keeps the block 16-byte aligned, as malloc's */
};

static void *own_alloc(struct slab *s, size_t n)
{
    struct slab_hdr *h = xmalloc(sizeof *h + n);
    h->n = n;
    h->prev = NULL;
    h->next = s->own;
    if (h->next)
        h->next->prev = h;
    s->own = h;
    return h + 1;
}

static void own_free(struct slab *s, void *p, size_t n)
{
    struct slab_hdr *h = (struct slab_hdr *)p - 1;
    if (h->n != n)
        die("a block freed or resized with another size than it has", h->n, n);
    if (h->prev)
        h->prev->next = h->next;
    else
        s->own = h->next;
    if (h->next)
        h->next->prev = h->prev;
    free(h);
}

void slab_cleanup(struct slab *s)
{
    for (struct slab_hdr *h = s->own, *next; h; h = next) {
        next = h->next;
        free(h);
    }
    for (void *c = s->chunks, *next; c; c = next) {
        memcpy(&next, c, sizeof next);
        free(c);
    }
    slab_init(s);
}

void *slab_alloc(struct slab *s, size_t n)
{
    if (!n)
        die("no bytes asked for", 0, 0);
    size_t r = round8(n);
    s->used += r;
    if (SLAB_CHECKED || r > SLAB_MAX)
        return own_alloc(s, SLAB_CHECKED ? n : r);
    void **head = &s->free[r / 8];
    if (*head) {
        void *p = *head;
        memcpy(head, p, sizeof *head);
        s->free_bytes -= r;
        return p;
    }
    if (s->cur_left < r) {
        /* What is left of the chunk goes on the free list of its size: nothing is lost. */
        if (s->cur_left >= 8) {
            memcpy(s->cur, &s->free[s->cur_left / 8], sizeof(void *));
            s->free[s->cur_left / 8] = s->cur;
            s->free_bytes += s->cur_left;
        }
        unsigned char *c = xmalloc(CHUNK);
        memcpy(c, &s->chunks, sizeof s->chunks);
        s->chunks = c;
        s->chunk_bytes += CHUNK;
        s->cur = c + 8;
        s->cur_left = CHUNK - 8;
    }
    void *p = s->cur;
    s->cur += r;
    s->cur_left -= r;
    return p;
}

void slab_free(struct slab *s, void *p, size_t n)
{
    if (!p)
        return;
    size_t r = round8(n);
    s->used -= r;
    if (SLAB_CHECKED || r > SLAB_MAX) {
        own_free(s, p, SLAB_CHECKED ? n : r);
        return;
    }
    memcpy(p, &s->free[r / 8], sizeof(void *));
    s->free[r / 8] = p;
    s->free_bytes += r;
}

void *slab_zalloc(struct slab *s, size_t n)
{
    void *p = slab_alloc(s, n);
    memset(p, 0, n);
    return p;
}

void *slab_realloc(struct slab *s, void *p, size_t old, size_t n)
{
    if (!p || !old) {
        if (p)
            die("a block resized without its size", old, n);
        return n ? slab_alloc(s, n) : NULL;
    }
    if (!n) {
        slab_free(s, p, old);
        return NULL;
    }
    if (!SLAB_CHECKED && round8(old) == round8(n))
        return p;
    void *q = slab_alloc(s, n);
    memcpy(q, p, old < n ? old : n);
    slab_free(s, p, old);
    return q;
}

char *slab_strdup(struct slab *s, const char *str)
{
    size_t n = strlen(str) + 1;
    char *p = slab_alloc(s, n);
    memcpy(p, str, n);
    return p;
}
