/*
 * slab.h -- a sized allocator for many small blocks owned by one structure
 * (an engine's customers and their state blocks).
 *
 * Blocks are carved from 256 KiB chunks in 8-byte steps, with no header:
 * the caller says the size again when it frees or resizes a block, which
 * the engine always knows (a state block's size is in its header, arrays
 * have their counts).  A freed block goes on the free list of its size and
 * is the next one handed out at that size.  Blocks above SLAB_MAX go to
 * malloc.  Chunks are returned only by slab_cleanup, all at once.
 *
 * Why not malloc: a customer's state block is rebuilt at a new size by
 * most of its events, and with glibc the freed holes between live blocks,
 * plus an 8-byte header and 16-byte rounding per block, cost about 230 of
 * the 840 bytes resident per customer at 1M customers (issue 14, compact
 * state; bench/RESULTS.md "Where each byte goes").  Here a block costs its
 * size rounded up to 8, and a hole is reused by the next block of that
 * size, which with a million customers growing through the same sizes
 * comes soon.
 *
 * Not thread-safe: one slab per engine, used by the engine's thread.
 *
 * Under AddressSanitizer every block is its own malloc with the size kept
 * in front, and a free or resize with another size than the block has
 * dies: the sanitizer then sees every use after free, and the tests check
 * the sizes the callers pass.
 */
#ifndef FW_UTIL_SLAB_H
#define FW_UTIL_SLAB_H

#include <stddef.h>

struct slab_hdr;

#define SLAB_MAX 2048 /* larger blocks are malloc's */

struct slab {
    void *free[SLAB_MAX / 8 + 1]; /* per size class (size / 8), a list through the blocks */
    unsigned char *cur;           /* the chunk being carved */
    size_t cur_left;
    void *chunks;       /* every chunk, through its first 8 bytes */
    struct slab_hdr *own;    /* blocks with a malloc of their own (above SLAB_MAX; all when checked) */
    size_t used;        /* bytes handed out and not freed (rounded to 8), large ones included */
    size_t free_bytes;  /* bytes on the free lists */
    size_t chunk_bytes; /* bytes of chunks held */
};

void slab_init(struct slab *s);
/* Every block, at once (the blocks need not be freed first). */
void slab_cleanup(struct slab *s);
/* n bytes (n > 0), 8-byte aligned, uninitialised; dies when out of memory. */
void *slab_alloc(struct slab *s, size_t n);
/* n bytes, zeroed. */
void *slab_zalloc(struct slab *s, size_t n);
/* p (NULL is fine) was slab_alloc(s, n) with this n. */
void slab_free(struct slab *s, void *p, size_t n);
/* p of old bytes (NULL when old is 0) as a block of n bytes (freed when n is 0: NULL). */
void *slab_realloc(struct slab *s, void *p, size_t old, size_t n);
/* A copy of the NUL-terminated str; free with slab_free(s, p, strlen(p) + 1). */
char *slab_strdup(struct slab *s, const char *str);

#endif
