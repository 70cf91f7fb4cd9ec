/*
 * wire.h -- a compact little-endian binary encoding for snapshots, and
 * CRC-32C to check it.
 *
 * Writing appends to a struct buf (which aborts on out of memory, like
 * xmalloc).  Reading walks a byte range with bounds checks: a short or
 * malformed input never reads past the end; it sets `err`, after which
 * every read returns zero, so a decoder checks once at the end (or where
 * a count decides an allocation: wire_get_count).
 */
#ifndef FW_UTIL_WIRE_H
#define FW_UTIL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* CRC-32C (Castagnoli, as iSCSI and ext4): crc32c(0, p, n); chain by passing the last result. */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);
/* Its two ways, for tests: the CPU's instruction (when crc32c__hw_available()) and a table. */
uint32_t crc32c__table(uint32_t crc, const void *p, size_t n);
uint32_t crc32c__hw(uint32_t crc, const void *p, size_t n);
int crc32c__hw_available(void);

void wire_put_u8(struct buf *b, uint8_t v);
void wire_put_u32(struct buf *b, uint32_t v);
void wire_put_u64(struct buf *b, uint64_t v);
void wire_put_i64(struct buf *b, int64_t v);
void wire_put_f64(struct buf *b, double v);
/* A length (u32) and the bytes; s may be NULL only when n is 0. */
void wire_put_bytes(struct buf *b, const void *s, size_t n);
/* A string or NULL (a flag byte, then the bytes): wire_get_str gives back NULL or a copy. */
void wire_put_str(struct buf *b, const char *s);

struct wire_rd {
    const uint8_t *p;
    size_t n, off;
    int err; /* set by the first read past the end or malformed value */
};

void wire_rd_init(struct wire_rd *r, const void *p, size_t n);
uint8_t wire_get_u8(struct wire_rd *r);
uint32_t wire_get_u32(struct wire_rd *r);
uint64_t wire_get_u64(struct wire_rd *r);
int64_t wire_get_i64(struct wire_rd *r);
/*
 * A time point or duration in ms: FW_TIME_NONE, FW_TIME_MAX, or within
 * +-2^53 (about 285,000 years), so that the difference of two, or a time
 * plus a duration, never overflows; anything else (a damaged snapshot) marks
 * the reader failed and reads as FW_TIME_NONE.
 */
int64_t wire_get_time(struct wire_rd *r);
double wire_get_f64(struct wire_rd *r);
/*
 * A count of items of at least `min_size` bytes each: refused (err set, 0
 * returned) when the rest of the input could not hold that many, so a
 * corrupt count never drives a huge allocation.
 */
uint32_t wire_get_count(struct wire_rd *r, size_t min_size);
/* Bytes written by wire_put_bytes: a pointer into the input (not copied) and *n; NULL on error. */
const void *wire_get_bytes(struct wire_rd *r, size_t *n);
/* A string written by wire_put_str: a new NUL-terminated copy (caller frees) or NULL. */
char *wire_get_str(struct wire_rd *r);

#endif
