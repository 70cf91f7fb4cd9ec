/*
 * wire.c -- snapshot encoding and CRC-32C.  See wire.h.
 *
 * Integers are little-endian whatever the host, so a snapshot's bytes
 * depend only on what it holds (the round-trip test compares bytes).
 */
#include "util/wire.h"

#include <string.h>

#include "util/util.h"

/*
 * CRC-32C.  On x86-64 with SSE4.2 (every x86-64 CPU since 2008 but the
 * oldest), the CPU's crc32 instruction does 8 bytes a step: a 100 MB
 * snapshot is checked in tens of milliseconds instead of about a second
 * with the byte-wise table, which stays as the fallback elsewhere.  Both
 * give the same value (crc32c_known_values tests each).
 */
static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1; /* the reflected Castagnoli polynomial */
        crc_table[i] = c;
    }
    crc_ready = 1;
}

uint32_t crc32c__table(uint32_t crc, const void *p, size_t n)
{
    if (!crc_ready)
        crc_init(); /* idempotent: two threads racing here write the same table */
    const uint8_t *s = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ s[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t c = ~crc;
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8); /* unaligned, little-endian as the CRC wants */
        c = __builtin_ia32_crc32di(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    for (; n; s++, n--)
        c32 = __builtin_ia32_crc32qi(c32, *s);
    return ~c32;
}

int crc32c__hw_available(void)
{
    return __builtin_cpu_supports("sse4.2");
}

uint32_t crc32c__hw(uint32_t crc, const void *p, size_t n)
{
    return crc_hw(crc, p, n);
}
#else
int crc32c__hw_available(void)
{
    return 0;
}

uint32_t crc32c__hw(uint32_t crc, const void *p, size_t n)
{
    return crc32c__table(crc, p, n);
}
#endif

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
    /* Asked every call: a load of a flag the runtime set at start-up, no cache to race on. */
    return crc32c__hw_available() ? crc32c__hw(crc, p, n) : crc32c__table(crc, p, n);
}

static void put_le(struct buf *b, uint64_t v, int bytes)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    buf_append(b, &v, (size_t)bytes); /* the wire order is the host's (see get_le) */
#else
    uint8_t out[8];
    for (int i = 0; i < bytes; i++)
        out[i] = (uint8_t)(v >> (8 * i));
    buf_append(b, out, (size_t)bytes);
#endif
}

void wire_put_u8(struct buf *b, uint8_t v) { put_le(b, v, 1); }
void wire_put_u32(struct buf *b, uint32_t v) { put_le(b, v, 4); }
void wire_put_u64(struct buf *b, uint64_t v) { put_le(b, v, 8); }
void wire_put_i64(struct buf *b, int64_t v) { put_le(b, (uint64_t)v, 8); }

void wire_put_f64(struct buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    put_le(b, u, 8);
}

void wire_put_bytes(struct buf *b, const void *s, size_t n)
{
    put_le(b, n, 4);
    if (n)
        buf_append(b, s, n);
}

void wire_put_str(struct buf *b, const char *s)
{
    wire_put_u8(b, s != NULL);
    if (s)
        wire_put_bytes(b, s, strlen(s));
}

void wire_rd_init(struct wire_rd *r, const void *p, size_t n)
{
    r->p = p;
    r->n = n;
    r->off = 0;
    r->err = 0;
}

static uint64_t get_le(struct wire_rd *r, int bytes)
{
    if (r->err || r->n - r->off < (size_t)bytes) {
        r->err = 1;
        return 0;
    }
    uint64_t v = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* The wire order is the host's: one load (the loop below cost ~70 instructions per
       int64, a sixth of loading a 1M-customer engine snapshot). */
    memcpy(&v, r->p + r->off, (size_t)bytes);
#else
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[r->off + (size_t)i] << (8 * i);
#endif
    r->off += (size_t)bytes;
    return v;
}

uint8_t wire_get_u8(struct wire_rd *r) { return (uint8_t)get_le(r, 1); }
uint32_t wire_get_u32(struct wire_rd *r) { return (uint32_t)get_le(r, 4); }
uint64_t wire_get_u64(struct wire_rd *r) { return get_le(r, 8); }
int64_t wire_get_i64(struct wire_rd *r) { return (int64_t)get_le(r, 8); }

int64_t wire_get_time(struct wire_rd *r)
{
    int64_t v = wire_get_i64(r);
    const int64_t bound = (int64_t)1 << 53;
    if (v == INT64_MIN || v == INT64_MAX || (v >= -bound && v <= bound))
        return v;
    r->err = 1;
    return INT64_MIN;
}

double wire_get_f64(struct wire_rd *r)
{
    uint64_t u = get_le(r, 8);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

uint32_t wire_get_count(struct wire_rd *r, size_t min_size)
{
    uint32_t n = wire_get_u32(r);
    if (r->err)
        return 0;
    if (min_size && n > (r->n - r->off) / min_size) {
        r->err = 1;
        return 0;
    }
    return n;
}

const void *wire_get_bytes(struct wire_rd *r, size_t *n)
{
    uint32_t len = wire_get_count(r, 1);
    *n = 0;
    if (r->err)
        return NULL;
    const void *p = r->p + r->off;
    r->off += len;
    *n = len;
    return p;
}

char *wire_get_str(struct wire_rd *r)
{
    if (!wire_get_u8(r))
        return NULL;
    size_t n;
    const char *p = wire_get_bytes(r, &n);
    if (!p)
        return NULL;
    if (memchr(p, 0, n)) {
        r->err = 1; /* a string with a NUL inside was never written by wire_put_str */
        return NULL;
    }
    return xstrndup(p, n);
}
