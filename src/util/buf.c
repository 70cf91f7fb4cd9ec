/*
 * buf.c -- growable capped buffer and JSON text helpers.
 */
#include "util/buf.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fwtime.h"
#include "util/util.h"

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : SIZE_MAX - 1;
}

void buf_cleanup(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *buf_steal(struct buf *b)
{
    char *p = b->data ? b->data : xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

static int reserve(struct buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return FW_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < need)
            c *= 2;
        b->data = xrealloc(b->data, c);
        b->cap = c;
    }
    return 0;
}

int buf_reserve(struct buf *b, size_t n) { return reserve(b, n); }

int buf_append(struct buf *b, const void *data, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buf_read_file(struct buf *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return FW_EIO;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = buf_append(b, chunk, n);
    if (!rc && ferror(f))
        rc = FW_EIO;
    int saved = errno;
    fclose(f);
    errno = saved;
    return rc;
}

int buf_puts(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_putc(struct buf *b, char c) { return buf_append(b, &c, 1); }

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return FW_EINVAL;
    int rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int buf_json_str(struct buf *b, const char *s, size_t n)
{
    /* Room for the text and its quotes up front: most strings need no escape. */
    int rc = reserve(b, n + 2);
    if (rc)
        return rc;
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
    size_t run = 0; /* start of the current run of bytes needing no escape */
    size_t i = 0;
    while (i < n && !rc) {
        /* Eight bytes at a time while none is a control character, a quote or
           a backslash (the SWAR "has a byte less than / equal to" tests). */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
            uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
            uint64_t hit =
                (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & highs;
            if (hit) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* The lowest flagged byte is always a real one (a false flag needs a
                   borrow from a real one below it): go straight to it. */
                i += (size_t)__builtin_ctzll(hit) >> 3;
#endif
                break;
            }
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++; /* a plain byte of the tail: part of the run copied at once below */
            continue;
        }
        const char *esc;
        size_t elen = 2;
        char tmp[8];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
            elen = 6;
        }
        rc = buf_append(b, s + run, i - run);
        if (!rc)
            rc = buf_append(b, esc, elen);
        run = ++i;
    }
    if (!rc)
        rc = buf_append(b, s + run, n - run);
    if (!rc)
        rc = buf_putc(b, '"');
    return rc;
}

int buf_put_int(struct buf *b, long long v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    return buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

int buf_json_num(struct buf *b, double v)
{
    if (!isfinite(v))
        return buf_puts(b, "null");
    if (v == floor(v) && fabs(v) < 9e15)
        return buf_put_int(b, (long long)v);
    return buf_printf(b, "%.17g", v);
}

int buf_json_time(struct buf *b, int64_t ms)
{
    char t[FW_TIME_MAXLEN + 2];
    t[0] = '"';
    fw_time_format(ms, t + 1);
    size_t n = strlen(t);
    t[n] = '"';
    return buf_append(b, t, n + 1);
}
