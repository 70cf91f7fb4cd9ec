/*
 * state.c -- stored values and key/value sets of customer state.
 *
 * Invariant: a kvset is one block (layout in state.h) whose keys are sorted
 * by id; it holds copies of its values, strings in the block itself and
 * lists (rare) as arrays it owns.
 */
#include "engine/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

void value__copy(struct value *dst, const struct value *src)
{
    *dst = *src;
    if (src->type == VAL_STR) {
        dst->u.str.ptr = xstrndup(src->u.str.ptr, src->u.str.len);
    } else if (src->type == VAL_LIST) {
        struct value *items = xmalloc((src->u.list.n ? src->u.list.n : 1) * sizeof *items);
        for (size_t i = 0; i < src->u.list.n; i++)
            value__copy(&items[i], &src->u.list.items[i]);
        dst->u.list.items = items;
    }
}

void value__free(struct value *v)
{
    if (v->type == VAL_STR) {
        free((char *)v->u.str.ptr);
    } else if (v->type == VAL_LIST) {
        for (size_t i = 0; i < v->u.list.n; i++)
            value__free((struct value *)&v->u.list.items[i]);
        free((struct value *)v->u.list.items);
    }
    v->type = VAL_NULL;
}

int value__equal(const struct value *a, const struct value *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case VAL_NULL:
        return 1;
    case VAL_BOOL:
        return !a->u.b == !b->u.b;
    case VAL_NUM:
        return a->u.num == b->u.num;
    case VAL_TIME:
    case VAL_DUR:
        return a->u.ms == b->u.ms;
    case VAL_STR:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0;
    case VAL_LIST:
        if (a->u.list.n != b->u.list.n)
            return 0;
        for (size_t i = 0; i < a->u.list.n; i++)
            if (!value__equal(&a->u.list.items[i], &b->u.list.items[i]))
                return 0;
        return 1;
    }
    return 0;
}

/* Borrowing conversion: strings point into the json value. */
int value__from_json(json_t *j, struct value *out)
{
    switch (json_typeof(j)) {
    case JSON_STRING:
        out->type = VAL_STR;
        out->u.str.ptr = json_string_value(j);
        out->u.str.len = json_string_length(j);
        return 0;
    case JSON_INTEGER:
        out->type = VAL_NUM;
        out->u.num = (double)json_integer_value(j);
        return 0;
    case JSON_REAL:
        out->type = VAL_NUM;
        out->u.num = json_real_value(j);
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        out->type = VAL_BOOL;
        out->u.b = json_is_true(j);
        return 0;
    case JSON_NULL:
        out->type = VAL_NULL;
        return 0;
    default:
        return -1;
    }
}

json_t *value__to_jansson(const struct value *v)
{
    char t[FW_TIME_MAXLEN];
    switch (v->type) {
    case VAL_NULL:
        return json_null();
    case VAL_BOOL:
        return json_boolean(v->u.b);
    case VAL_NUM:
        if (v->u.num == (double)(json_int_t)v->u.num)
            return json_integer((json_int_t)v->u.num);
        return json_real(v->u.num);
    case VAL_STR:
        return json_stringn(v->u.str.ptr, v->u.str.len);
    case VAL_TIME:
        fw_time_format(v->u.ms, t);
        return json_string(t);
    case VAL_DUR:
        fw_duration_format(v->u.ms, t);
        return json_string(t);
    case VAL_LIST: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->u.list.n; i++)
            json_array_append_new(a, value__to_jansson(&v->u.list.items[i]));
        return a;
    }
    }
    return json_null();
}

void value__json(const struct value *v, struct buf *out)
{
    char t[FW_TIME_MAXLEN];
    switch (v->type) {
    case VAL_NULL:
        buf_puts(out, "null");
        break;
    case VAL_BOOL:
        buf_puts(out, v->u.b ? "true" : "false");
        break;
    case VAL_NUM:
        buf_json_num(out, v->u.num);
        break;
    case VAL_STR:
        buf_json_str(out, v->u.str.ptr, v->u.str.len);
        break;
    case VAL_TIME:
        buf_json_time(out, v->u.ms);
        break;
    case VAL_DUR:
        fw_duration_format(v->u.ms, t);
        buf_json_str(out, t, strlen(t));
        break;
    case VAL_LIST:
        buf_putc(out, '[');
        for (size_t i = 0; i < v->u.list.n; i++) {
            if (i)
                buf_putc(out, ',');
            value__json(&v->u.list.items[i], out);
        }
        buf_putc(out, ']');
        break;
    }
}

/* ---- key/value sets: one block (see state.h) ---- */

struct kvhdr {
    uint32_t n, nt, size;
    uint32_t pad_; /* keeps times[] 8-byte aligned */
};

struct kvidx {
    uint32_t key, off;
};

#define TIX_INLINE 0xff

/* A set beyond what a 32-bit offset reaches is a bug upstream (inputs are capped): stop. */
static void die(const char *why)
{
    fprintf(stderr, "forewarn: %s\n", why);
    abort();
} /* the record carries its own 8-byte time */

static const struct kvhdr *hdr(const struct kvset *s)
{
    return (const struct kvhdr *)s->_blk;
}

static const int64_t *times_of(const struct kvset *s)
{
    return (const int64_t *)(s->_blk + sizeof(struct kvhdr));
}

static const struct kvidx *idx_of(const struct kvset *s)
{
    return (const struct kvidx *)(s->_blk + sizeof(struct kvhdr) + hdr(s)->nt * sizeof(int64_t));
}

uint32_t kvset__count(const struct kvset *s)
{
    return s->_blk ? hdr(s)->n : 0;
}

/* Decode the record at off (a record's layout: state.h). */
static void decode(const struct kvset *s, uint32_t off, struct value *v, int64_t *since)
{
    const unsigned char *p = s->_blk + off;
    unsigned type = p[0], tix = p[1];
    p += 2;
    int64_t t;
    if (tix == TIX_INLINE) {
        memcpy(&t, p, sizeof t);
        p += sizeof t;
    } else {
        t = times_of(s)[tix];
    }
    if (since)
        *since = t;
    v->type = (enum value_type)type;
    switch (v->type) {
    case VAL_NULL:
        break;
    case VAL_BOOL:
        v->u.b = p[0];
        break;
    case VAL_NUM:
        memcpy(&v->u.num, p, sizeof v->u.num);
        break;
    case VAL_TIME:
    case VAL_DUR:
        memcpy(&v->u.ms, p, sizeof v->u.ms);
        break;
    case VAL_STR: {
        uint32_t len = p[0];
        p++;
        if (len == 0xff) {
            memcpy(&len, p, sizeof len);
            p += sizeof len;
        }
        v->u.str.ptr = (const char *)p;
        v->u.str.len = len;
        break;
    }
    case VAL_LIST:
        memcpy(&v->u.list.items, p, sizeof v->u.list.items);
        memcpy(&v->u.list.n, p + sizeof v->u.list.items, sizeof v->u.list.n);
        break;
    }
}

int kvset__get(const struct kvset *s, uint32_t key, struct value *v, int64_t *since)
{
    uint32_t lo = 0, hi = kvset__count(s);
    if (hi) {
        const struct kvidx *ix = idx_of(s);
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (ix[mid].key < key)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < hdr(s)->n && ix[lo].key == key) {
            decode(s, ix[lo].off, v, since);
            return 1;
        }
    }
    v->type = VAL_NULL;
    if (since)
        *since = FW_TIME_NONE;
    return 0;
}

void kvset__at(const struct kvset *s, uint32_t i, uint32_t *key, struct value *v, int64_t *since)
{
    const struct kvidx *ix = idx_of(s);
    *key = ix[i].key;
    decode(s, ix[i].off, v, since);
}

/* The lists a block owns (every other byte is in the block itself). */
static void free_lists(struct kvset *s)
{
    for (uint32_t i = 0; i < kvset__count(s); i++) {
        const unsigned char *p = s->_blk + idx_of(s)[i].off;
        if (p[0] == VAL_LIST) {
            struct value v;
            decode(s, idx_of(s)[i].off, &v, NULL);
            value__free(&v);
        }
    }
}

void kvset__cleanup(struct kvset *s)
{
    if (s->_blk) {
        free_lists(s);
        free(s->_blk);
    }
    s->_blk = NULL;
}

static size_t list_bytes(const struct value *v)
{
    size_t n = v->u.list.n * sizeof *v->u.list.items;
    for (size_t i = 0; i < v->u.list.n; i++) {
        if (v->u.list.items[i].type == VAL_STR)
            n += v->u.list.items[i].u.str.len + 1;
        else if (v->u.list.items[i].type == VAL_LIST)
            n += list_bytes(&v->u.list.items[i]);
    }
    return n;
}

size_t kvset__bytes(const struct kvset *s)
{
    if (!s->_blk)
        return 0;
    size_t n = hdr(s)->size;
    for (uint32_t i = 0; i < hdr(s)->n; i++) {
        if (s->_blk[idx_of(s)[i].off] == VAL_LIST) {
            struct value v;
            decode(s, idx_of(s)[i].off, &v, NULL);
            n += list_bytes(&v);
        }
    }
    return n;
}

void kvset__copy(struct kvset *dst, const struct kvset *src)
{
    struct kvbuild b;
    kvbuild__init(&b);
    for (uint32_t i = 0; i < kvset__count(src); i++) {
        uint32_t key;
        struct value v;
        int64_t since;
        kvset__at(src, i, &key, &v, &since);
        kvbuild__add(&b, key, &v, since);
    }
    dst->_blk = NULL;
    kvbuild__finish(&b, dst);
    kvbuild__cleanup(&b);
}

/* ---- building a set ---- */

void kvbuild__init(struct kvbuild *b)
{
    memset(b, 0, sizeof *b);
}

void kvbuild__cleanup(struct kvbuild *b)
{
    free(b->idx);
    free(b->heap);
    memset(b, 0, sizeof *b);
}

static unsigned char *reserve(struct kvbuild *b, size_t n)
{
    if (b->len + n > b->hcap) {
        b->hcap = b->hcap * 2 > b->len + n ? b->hcap * 2 : b->len + n + 64;
        b->heap = xrealloc(b->heap, b->hcap);
    }
    unsigned char *p = b->heap + b->len;
    b->len += n;
    return p;
}

void kvbuild__add(struct kvbuild *b, uint32_t key, const struct value *v, int64_t since)
{
    if (b->n && key <= b->idx[b->n - 1].key)
        die("kvbuild__add: keys out of order");
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->idx = xrealloc(b->idx, b->cap * sizeof *b->idx);
    }
    b->idx[b->n].key = key;
    b->idx[b->n++].off = (uint32_t)b->len; /* relative to the records; fixed up by finish */
    /* The time: an index into the (small) table of distinct times, most recent first. */
    uint32_t tix = TIX_INLINE;
    for (uint32_t i = b->nt; i-- > 0;)
        if (b->times[i] == since) {
            tix = i;
            break;
        }
    if (tix == TIX_INLINE && b->nt < TIX_INLINE) {
        tix = b->nt;
        b->times[b->nt++] = since;
    }
    unsigned char *p = reserve(b, 2);
    p[0] = (unsigned char)v->type;
    p[1] = (unsigned char)tix;
    if (tix == TIX_INLINE)
        memcpy(reserve(b, sizeof since), &since, sizeof since);
    switch (v->type) {
    case VAL_NULL:
        break;
    case VAL_BOOL:
        *reserve(b, 1) = (unsigned char)!!v->u.b;
        break;
    case VAL_NUM:
        memcpy(reserve(b, sizeof v->u.num), &v->u.num, sizeof v->u.num);
        break;
    case VAL_TIME:
    case VAL_DUR:
        memcpy(reserve(b, sizeof v->u.ms), &v->u.ms, sizeof v->u.ms);
        break;
    case VAL_STR: {
        if (v->u.str.len > UINT32_MAX)
            die("kvbuild__add: string too long");
        uint32_t len = (uint32_t)v->u.str.len;
        if (len < 0xff) {
            *reserve(b, 1) = (unsigned char)len;
        } else {
            *reserve(b, 1) = 0xff;
            memcpy(reserve(b, sizeof len), &len, sizeof len);
        }
        if (len)
            memcpy(reserve(b, len), v->u.str.ptr, len);
        break;
    }
    case VAL_LIST: {
        struct value copy;
        value__copy(&copy, v);
        memcpy(reserve(b, sizeof copy.u.list.items), &copy.u.list.items, sizeof copy.u.list.items);
        memcpy(reserve(b, sizeof copy.u.list.n), &copy.u.list.n, sizeof copy.u.list.n);
        break;
    }
    }
}

void kvbuild__finish(struct kvbuild *b, struct kvset *s)
{
    kvset__cleanup(s);
    if (b->n) {
        size_t head = sizeof(struct kvhdr) + b->nt * sizeof(int64_t) + b->n * sizeof(struct kvidx);
        size_t size = head + b->len;
        if (size > UINT32_MAX)
            die("kvbuild__finish: state too large");
        unsigned char *blk = xmalloc(size);
        struct kvhdr h = {.n = b->n, .nt = b->nt, .size = (uint32_t)size};
        memcpy(blk, &h, sizeof h);
        memcpy(blk + sizeof h, b->times, b->nt * sizeof(int64_t));
        struct kvidx *ix = (struct kvidx *)(blk + sizeof h + b->nt * sizeof(int64_t));
        for (uint32_t i = 0; i < b->n; i++) {
            ix[i].key = b->idx[i].key;
            ix[i].off = (uint32_t)(head + b->idx[i].off);
        }
        memcpy(blk + head, b->heap, b->len);
        s->_blk = blk;
    }
    b->n = b->nt = 0;
    b->len = 0;
}

/* ---- per-signal times ---- */

int sigt__usual(const struct sigtimes *t)
{
    return t->fired_at == FW_TIME_NONE && t->next_at == FW_TIME_MAX && t->stable_at == FW_TIME_MAX;
}

struct sigtimes sigt__get(const struct sigtimes *a, uint32_t n, uint32_t s)
{
    for (uint32_t i = 0; i < n && a[i].sig <= s; i++)
        if (a[i].sig == s)
            return a[i];
    return (struct sigtimes){
        .sig = s, .fired_at = FW_TIME_NONE, .next_at = FW_TIME_MAX, .stable_at = FW_TIME_MAX};
}

void sigt__put(struct sigtimes **a, uint32_t *n, const struct sigtimes *t)
{
    uint32_t i = 0;
    while (i < *n && (*a)[i].sig < t->sig)
        i++;
    int found = i < *n && (*a)[i].sig == t->sig;
    if (sigt__usual(t)) {
        if (!found)
            return;
        memmove(&(*a)[i], &(*a)[i + 1], (*n - i - 1) * sizeof **a);
        if (--*n == 0) {
            free(*a);
            *a = NULL;
        } else {
            *a = xrealloc(*a, *n * sizeof **a);
        }
        return;
    }
    if (!found) {
        *a = xrealloc(*a, (*n + 1) * sizeof **a);
        memmove(&(*a)[i + 1], &(*a)[i], (*n - i) * sizeof **a);
        ++*n;
    }
    (*a)[i] = *t;
}

/* ---- last-seen times: n int64, then n uint32, in one block ---- */

static uint32_t *last_types(const int64_t *last, uint32_t n)
{
    return (uint32_t *)(last + n);
}

int64_t last__find(const int64_t *last, uint32_t n, uint32_t type)
{
    const uint32_t *types = n ? last_types(last, n) : NULL;
    for (uint32_t i = 0; i < n; i++)
        if (types[i] == type)
            return last[i];
    return FW_TIME_NONE;
}

uint32_t last__type(const int64_t *last, uint32_t n, uint32_t i)
{
    return last_types(last, n)[i];
}

void last__note(int64_t **last, uint32_t *n, uint32_t type, int64_t at)
{
    uint32_t *types = *n ? last_types(*last, *n) : NULL;
    for (uint32_t i = 0; i < *n; i++)
        if (types[i] == type) {
            if (at > (*last)[i])
                (*last)[i] = at;
            return;
        }
    uint32_t k = *n;
    int64_t *b = xrealloc(*last, (k + 1) * (sizeof(int64_t) + sizeof(uint32_t)));
    /* The types move up by one time's width: from the end, as they overlap. */
    memmove((uint32_t *)(b + k + 1), (uint32_t *)(b + k), k * sizeof(uint32_t));
    b[k] = at;
    ((uint32_t *)(b + k + 1))[k] = type;
    *last = b;
    *n = k + 1;
}

uint32_t proj__cap(uint32_t n)
{
    uint32_t c = n ? 1 : 0;
    while (c < n)
        c *= 2;
    return c;
}
