/*
 * util.c -- allocation wrappers, error strings, hashing.
 */
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *fw_strerror(int err)
{
    switch (err) {
    case FW_OK:
        return "success";
#define FW__ERR_STR(name, str)                                                                     \
    case FW_E##name:                                                                               \
        return str;
        FW_ERR_MAP(FW__ERR_STR)
#undef FW__ERR_STR
    default:
        return "unknown error";
    }
}

static void oom(size_t n)
{
    fprintf(stderr, "forewarn: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *xgrow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 4;
    while (c < need)
        c *= 2;
    *cap = c;
    return xrealloc(p, c * elem);
}

uint64_t fw_hash(const void *data, size_t n)
{
    const unsigned char *s = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

int fw_consttime_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *x = a, *y = b;
    /* Walk the longer length so timing does not reveal a prefix match. */
    size_t n = alen > blen ? alen : blen;
    unsigned diff = (unsigned)(alen ^ blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char cx = i < alen ? x[i] : 0;
        unsigned char cy = i < blen ? y[i] : 0;
        diff |= (unsigned)(cx ^ cy);
    }
    return diff != 0;
}
