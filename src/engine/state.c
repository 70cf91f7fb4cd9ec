/*
 * state.c -- stored values, the packed key/value set of customer state
 * (keys and last-seen times in one block) and the sparse per-signal times.
 *
 * Invariant: a kvset is one block (layout in state.h) whose keys are sorted
 * by id; it holds copies of its values, strings in the block itself and
 * lists (rare) as arrays it owns.
 */
#include "engine/state.h"

#include <math.h>
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
        /* Integral and within json_int_t (casting a double outside it is undefined). */
        if (v->u.num >= -9223372036854775808.0 && v->u.num < 9223372036854775808.0 &&
            v->u.num == (double)(json_int_t)v->u.num)
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

/*
 * Block header, 12 bytes, read and written with memcpy (nothing in the
 * block is aligned): state key count, block size, last-seen entries,
 * distinct times, and whether the index is wide (4-byte ids and offsets)
 * or narrow (2-byte: every key id and event type below 32,768 and the
 * block below 65,536, the usual case).  The index holds the state keys,
 * then the last-seen entries, whose ids are KV_LAST | type so that they
 * sort after every key (bit 15 in a narrow index).
 */
#define HDR_N 0
#define HDR_SIZE 4
#define HDR_NLAST 8
#define HDR_NT 10
#define HDR_WIDE 11
#define HDR_LEN 12

#define KV_LAST 0x80000000u
#define FLAG_WIDE 1   /* in the header's flags byte (HDR_WIDE) */
#define FLAG_LISTS 2  /* some record owns a list: cleanup must look */
#define FLAG_SHARED 4 /* the ids are in a shared layout; the index holds offsets only */
#define FLAG_OFF8 8   /* (shared) offsets of one byte, else two */
#define FLAG_T32 16   /* the times: the earliest, then each as 4 bytes after it */

#define TIX_INLINE 31  /* a record's 5-bit time index: the 8-byte time follows instead */
#define TYPE_INT32 7   /* a record's 3-bit type: a number with an integer value, in 4 bytes */
#define LEN_LONG 0xff  /* a string length byte: the 4-byte length follows */

/* A set beyond what a 32-bit offset reaches is a bug upstream (inputs are capped): stop. */
static void die(const char *why)
{
    fprintf(stderr, "forewarn: %s\n", why);
    abort();
}

static uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint16_t rd16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int64_t rd64(const unsigned char *p)
{
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

uint32_t kvset__count(const struct kvset *s)
{
    return s->_blk ? rd32(s->_blk + HDR_N) : 0;
}

/* Bytes of the table of nt times: 8 each, or with FLAG_T32 the earliest and 4 bytes each. */
static size_t times_len(unsigned flags, size_t nt)
{
    return flags & FLAG_T32 ? sizeof(int64_t) + 4 * nt : sizeof(int64_t) * nt;
}

static const unsigned char *index_of(const struct kvset *s)
{
    return s->_blk + HDR_LEN + times_len(s->_blk[HDR_WIDE], s->_blk[HDR_NT]);
}

/* Entry tix of a block's table of times. */
static int64_t blk_time(const unsigned char *blk, unsigned tix)
{
    const unsigned char *t = blk + HDR_LEN;
    if (blk[HDR_WIDE] & FLAG_T32)
        return rd64(t) + (int64_t)rd32(t + sizeof(int64_t) + 4 * (size_t)tix);
    return rd64(t + tix * sizeof(int64_t));
}

/* A shared-layout block's layout (the pointer at the start of its index). */
static const struct kvlayout *layout_of(const unsigned char *ix)
{
    const struct kvlayout *l;
    memcpy(&l, ix, sizeof l);
    return l;
}

uint32_t kvset__nlast(const struct kvset *s)
{
    return s->_blk ? rd16(s->_blk + HDR_NLAST) : 0;
}

/* Key id (KV_LAST | type for a last-seen entry) and record offset of entry i. */
static uint32_t ix_key(const struct kvset *s, const unsigned char *ix, uint32_t i)
{
    if (s->_blk[HDR_WIDE] & FLAG_SHARED)
        return layout_of(ix)->ids[i];
    if (s->_blk[HDR_WIDE] & FLAG_WIDE)
        return rd32(ix + 8 * (size_t)i);
    uint32_t k = rd16(ix + 4 * (size_t)i);
    return k & 0x8000 ? KV_LAST | (k & 0x7fff) : k;
}

static uint32_t ix_off(const struct kvset *s, const unsigned char *ix, uint32_t i)
{
    unsigned f = s->_blk[HDR_WIDE];
    if (f & FLAG_SHARED) {
        /* Offsets from the first record, which follows them. */
        size_t n = (size_t)layout_of(ix)->n;
        const unsigned char *o = ix + sizeof(struct kvlayout *);
        return f & FLAG_OFF8 ? (uint32_t)(o - s->_blk) + (uint32_t)n + o[i]
                             : (uint32_t)(o - s->_blk) + 2 * (uint32_t)n + rd16(o + 2 * (size_t)i);
    }
    return f & FLAG_WIDE ? rd32(ix + 8 * (size_t)i + 4) : rd16(ix + 4 * (size_t)i + 2);
}

/* Decode the record at off (a record's layout: state.h). */
static void decode(const struct kvset *s, uint32_t off, struct value *v, int64_t *since)
{
    const unsigned char *p = s->_blk + off;
    unsigned type = p[0] & 7, tix = p[0] >> 3;
    p++;
    int64_t t;
    if (tix == TIX_INLINE) {
        t = rd64(p);
        p += sizeof t;
    } else {
        t = blk_time(s->_blk, tix);
    }
    if (since)
        *since = t;
    if (type == TYPE_INT32) {
        int32_t i;
        memcpy(&i, p, sizeof i);
        v->type = VAL_NUM;
        v->u.num = i;
        return;
    }
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
        v->u.ms = rd64(p);
        break;
    case VAL_STR: {
        uint32_t len = p[0];
        p++;
        if (len == LEN_LONG) {
            len = rd32(p);
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

/* Entry of id `key` among entries [lo, hi), or hi. */
static uint32_t search(const struct kvset *s, uint32_t key, uint32_t lo, uint32_t hi)
{
    const unsigned char *ix = index_of(s);
    uint32_t end = hi;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (ix_key(s, ix, mid) < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < end && ix_key(s, ix, lo) == key ? lo : end;
}

int64_t kvset__last(const struct kvset *s, uint32_t type)
{
    uint32_t n = kvset__count(s), end = n + kvset__nlast(s);
    uint32_t i = end > n ? search(s, KV_LAST | type, n, end) : end;
    if (i == end)
        return FW_TIME_NONE;
    struct value v;
    int64_t at;
    decode(s, ix_off(s, index_of(s), i), &v, &at);
    return at;
}

/* The first-seen ordinal a last-seen record carries after its time. */
static uint16_t last_ord(const struct kvset *s, uint32_t off)
{
    const unsigned char *p = s->_blk + off;
    return rd16(p + 1 + ((p[0] >> 3) == TIX_INLINE ? sizeof(int64_t) : 0));
}

void kvset__last_at(const struct kvset *s, uint32_t k, uint32_t *type, int64_t *at)
{
    uint32_t n = kvset__count(s), end = n + kvset__nlast(s);
    const unsigned char *ix = index_of(s);
    for (uint32_t i = n; i < end; i++) {
        uint32_t off = ix_off(s, ix, i);
        if (last_ord(s, off) == k) {
            struct value v;
            *type = ix_key(s, ix, i) & ~KV_LAST;
            decode(s, off, &v, at);
            return;
        }
    }
    *type = 0; /* not reached: ordinals are 0..nlast-1 */
    *at = FW_TIME_NONE;
}

int kvset__get(const struct kvset *s, uint32_t key, struct value *v, int64_t *since)
{
    uint32_t n = kvset__count(s), i = n ? search(s, key, 0, n) : n;
    if (i < n) {
        decode(s, ix_off(s, index_of(s), i), v, since);
        return 1;
    }
    v->type = VAL_NULL;
    if (since)
        *since = FW_TIME_NONE;
    return 0;
}

void kvset__at(const struct kvset *s, uint32_t i, uint32_t *key, struct value *v, int64_t *since)
{
    const unsigned char *ix = index_of(s);
    *key = ix_key(s, ix, i);
    decode(s, ix_off(s, ix, i), v, since);
}

/* The lists a block owns (every other byte is in the block itself). */
/* Each list value of s (the block owns them), decoded, to fn; none unless the block holds lists. */
static void each_list(const struct kvset *s, void (*fn)(struct value *v, void *ctx), void *ctx)
{
    if (!(s->_blk[HDR_WIDE] & FLAG_LISTS))
        return;
    const unsigned char *ix = index_of(s);
    for (uint32_t i = 0; i < kvset__count(s); i++) {
        uint32_t off = ix_off(s, ix, i);
        if ((s->_blk[off] & 7) == VAL_LIST) {
            struct value v;
            decode(s, off, &v, NULL);
            fn(&v, ctx);
        }
    }
}

static void free_list(struct value *v, void *ctx)
{
    (void)ctx;
    value__free(v);
}

void kvset__cleanup(struct kvset *s, struct slab *slab)
{
    if (s->_blk) {
        each_list(s, free_list, NULL);
        slab_free(slab, s->_blk, rd32(s->_blk + HDR_SIZE));
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

static void add_list_bytes(struct value *v, void *ctx)
{
    *(size_t *)ctx += list_bytes(v);
}

size_t kvset__bytes(const struct kvset *s)
{
    if (!s->_blk)
        return 0;
    size_t n = rd32(s->_blk + HDR_SIZE);
    each_list(s, add_list_bytes, &n);
    return n;
}

static void keep(struct kvbuild *b, const struct kvset *s, uint32_t i);

void kvset__copy(struct kvset *dst, const struct kvset *src, struct slab *slab)
{
    dst->_blk = NULL;
    if (!src->_blk)
        return;
    /* The block as it is (its offsets are from its own start, its layout is shared), then a
       copy of each list it owns in place of the original's. */
    uint32_t size = rd32(src->_blk + HDR_SIZE);
    dst->_blk = slab_alloc(slab, size);
    memcpy(dst->_blk, src->_blk, size);
    if (!(dst->_blk[HDR_WIDE] & FLAG_LISTS))
        return;
    const unsigned char *ix = index_of(dst);
    for (uint32_t i = 0; i < kvset__count(dst); i++) {
        uint32_t off = ix_off(dst, ix, i);
        if ((dst->_blk[off] & 7) != VAL_LIST)
            continue;
        struct value v, copy;
        decode(dst, off, &v, NULL);
        value__copy(&copy, &v);
        size_t at = off + 1 + ((dst->_blk[off] >> 3) == TIX_INLINE ? sizeof(int64_t) : 0);
        memcpy(dst->_blk + at, &copy.u.list.items, sizeof copy.u.list.items);
    }
}

int kvset__note_last(struct kvset *s, struct kvbuild *b, uint32_t type, int64_t at)
{
    int64_t was = kvset__last(s, type);
    if (was != FW_TIME_NONE && was >= at)
        return 0; /* an entry keeps its latest time */
    for (uint32_t i = 0; i < kvset__count(s); i++)
        keep(b, s, i);
    kvbuild__copy_last(b, s, type, at);
    kvbuild__finish(b, s);
    return 1;
}

/* ---- building a set ---- */

void kvbuild__init(struct kvbuild *b, struct slab *slab, struct kvlayouts *layouts)
{
    memset(b, 0, sizeof *b);
    b->slab = slab;
    b->layouts = layouts;
}

void kvbuild__cleanup(struct kvbuild *b)
{
    free(b->idx);
    free(b->heap);
    struct slab *slab = b->slab;
    struct kvlayouts *layouts = b->layouts;
    memset(b, 0, sizeof *b);
    b->slab = slab;
    b->layouts = layouts;
}

/* ---- shared layouts ---- */

static uint32_t layout_hash(const struct kvbuild_key *idx, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) {
        h ^= idx[i].key;
        h *= 16777619u;
        h ^= h >> 15;
    }
    return h ^ n;
}

/* The layout with the ids of b's entries, made the first time. */
static const struct kvlayout *layout_intern(struct kvlayouts *L, const struct kvbuild *b)
{
    uint32_t h = layout_hash(b->idx, b->n);
    if (L->nslots) {
        for (struct kvlayout *l = L->slots[h & (L->nslots - 1)]; l; l = l->next) {
            if (l->hash != h || l->n != b->n)
                continue;
            uint32_t i = 0;
            while (i < b->n && l->ids[i] == b->idx[i].key)
                i++;
            if (i == b->n)
                return l;
        }
    }
    if (L->n >= L->nslots) { /* grow: at most one layout a slot on average */
        size_t ns = L->nslots ? 2 * L->nslots : 64;
        struct kvlayout **slots = xcalloc(ns, sizeof *slots);
        for (size_t k = 0; k < L->nslots; k++)
            for (struct kvlayout *l = L->slots[k], *next; l; l = next) {
                next = l->next;
                l->next = slots[l->hash & (ns - 1)];
                slots[l->hash & (ns - 1)] = l;
            }
        free(L->slots);
        L->slots = slots;
        L->nslots = ns;
    }
    size_t bytes = sizeof(struct kvlayout) + b->n * sizeof(uint32_t);
    struct kvlayout *l = xmalloc(bytes);
    l->hash = h;
    l->n = b->n;
    for (uint32_t i = 0; i < b->n; i++)
        l->ids[i] = b->idx[i].key;
    l->next = L->slots[h & (L->nslots - 1)];
    L->slots[h & (L->nslots - 1)] = l;
    L->n++;
    L->bytes += bytes;
    return l;
}

void kvlayouts__cleanup(struct kvlayouts *L)
{
    for (size_t k = 0; k < L->nslots; k++)
        for (struct kvlayout *l = L->slots[k], *next; l; l = next) {
            next = l->next;
            free(l);
        }
    free(L->slots);
    memset(L, 0, sizeof *L);
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
    if ((b->n && key <= b->idx[b->n - 1].key) || (key & KV_LAST && !b->adding_last))
        die("kvbuild__add: keys out of order or too large");
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
    unsigned type = (unsigned)v->type;
    int32_t small = 0;
    if (v->type == VAL_NUM && v->u.num >= INT32_MIN && v->u.num <= INT32_MAX &&
        v->u.num == (double)(int32_t)v->u.num && !(v->u.num == 0 && signbit(v->u.num))) {
        type = TYPE_INT32; /* reads back as the same double (-0 is not an integer here) */
        small = (int32_t)v->u.num;
    }
    *reserve(b, 1) = (unsigned char)(type | tix << 3);
    if (tix == TIX_INLINE)
        memcpy(reserve(b, sizeof since), &since, sizeof since);
    if (type == TYPE_INT32) {
        memcpy(reserve(b, sizeof small), &small, sizeof small);
        return;
    }
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
        if (len < LEN_LONG) {
            *reserve(b, 1) = (unsigned char)len;
        } else {
            *reserve(b, 1) = LEN_LONG;
            memcpy(reserve(b, sizeof len), &len, sizeof len);
        }
        if (len)
            memcpy(reserve(b, len), v->u.str.ptr, len);
        break;
    }
    case VAL_LIST: {
        struct value copy;
        value__copy(&copy, v);
        b->lists = 1;
        memcpy(reserve(b, sizeof copy.u.list.items), &copy.u.list.items, sizeof copy.u.list.items);
        memcpy(reserve(b, sizeof copy.u.list.n), &copy.u.list.n, sizeof copy.u.list.n);
        break;
    }
    }
}

static void add_last(struct kvbuild *b, uint32_t type, int64_t at, uint32_t ord);

uint32_t kvset__key(const struct kvset *s, uint32_t i)
{
    return ix_key(s, index_of(s), i);
}

/* Bytes of the record at p (a last-seen entry's carries its ordinal too). */
static size_t rec_len(const unsigned char *p, int last)
{
    size_t n = 1 + ((p[0] >> 3) == TIX_INLINE ? sizeof(int64_t) : 0);
    const unsigned char *q = p + n;
    switch (p[0] & 7) {
    case VAL_NULL:
        break;
    case VAL_BOOL:
        n += 1;
        break;
    case TYPE_INT32:
        n += 4;
        break;
    case VAL_NUM:
    case VAL_TIME:
    case VAL_DUR:
        n += 8;
        break;
    case VAL_STR:
        n += q[0] == LEN_LONG ? 1 + 4 + rd32(q + 1) : 1 + (size_t)q[0];
        break;
    case VAL_LIST:
        n += sizeof(struct value *) + sizeof(size_t);
        break;
    }
    return n + (last ? sizeof(uint16_t) : 0);
}

/* s's time index tix in b's table (added there when new), or 0xff when b's table is full. */
static unsigned map_tix(struct kvbuild *b, const struct kvset *s, unsigned tix)
{
    if (b->tmap_src != s->_blk) {
        memset(b->tmap, 0xff, sizeof b->tmap);
        b->tmap_src = s->_blk;
    }
    unsigned ntix = b->tmap[tix];
    if (ntix != 0xff)
        return ntix;
    int64_t t = blk_time(s->_blk, tix);
    for (uint32_t k = b->nt; k-- > 0;)
        if (b->times[k] == t) {
            ntix = k;
            break;
        }
    if (ntix == 0xff && b->nt < TIX_INLINE) {
        ntix = b->nt;
        b->times[b->nt++] = t;
    }
    if (ntix != 0xff)
        b->tmap[tix] = (unsigned char)ntix;
    return ntix;
}

/*
 * Entry i of s into b as it is: its record is copied, only its time index
 * changes (s's time table to b's, remembered per index while b copies from
 * s).  Lists are deep-copied instead (each block owns its own), and so is
 * anything whose time would no longer fit b's table.
 */
static void keep(struct kvbuild *b, const struct kvset *s, uint32_t i)
{
    const unsigned char *ix = index_of(s);
    uint32_t key = ix_key(s, ix, i), off = ix_off(s, ix, i);
    const unsigned char *p = s->_blk + off;
    unsigned tix = p[0] >> 3, ntix = tix == TIX_INLINE ? TIX_INLINE : map_tix(b, s, tix);
    if ((p[0] & 7) == VAL_LIST || ntix == 0xff) {
        struct value v;
        int64_t since;
        decode(s, off, &v, &since);
        if (key & KV_LAST) {
            add_last(b, key & ~KV_LAST, since, last_ord(s, off));
        } else {
            kvbuild__add(b, key, &v, since);
        }
        return;
    }
    if ((b->n && key <= b->idx[b->n - 1].key) || (key & KV_LAST && b->nlast == UINT16_MAX))
        die("kvbuild: keys out of order");
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->idx = xrealloc(b->idx, b->cap * sizeof *b->idx);
    }
    b->idx[b->n].key = key;
    b->idx[b->n++].off = (uint32_t)b->len;
    size_t len = rec_len(p, (key & KV_LAST) != 0);
    unsigned char *q = reserve(b, len);
    memcpy(q, p, len);
    q[0] = (unsigned char)((p[0] & 7) | ntix << 3);
    if (key & KV_LAST)
        b->nlast++;
}

void kvbuild__keep(struct kvbuild *b, const struct kvset *s, uint32_t i)
{
    keep(b, s, i);
}

void kvbuild__keep_range(struct kvbuild *b, const struct kvset *s, uint32_t i, uint32_t j)
{
    if (i >= j)
        return;
    const unsigned char *blk = s->_blk, *ix = index_of(s);
    unsigned f = blk[HDR_WIDE];
    /* Lists are copied one by one (each block owns its own), and so is an inline index. */
    if (!(f & FLAG_SHARED) || (f & FLAG_LISTS) || (b->n && ix_key(s, ix, i) <= b->idx[b->n - 1].key)) {
        for (uint32_t k = i; k < j; k++)
            keep(b, s, k);
        return;
    }
    const struct kvlayout *l = layout_of(ix);
    const unsigned char *o = ix + sizeof(struct kvlayout *);
    int off8 = (f & FLAG_OFF8) != 0;
    uint32_t rec0 = (uint32_t)(o - blk) + (off8 ? 1 : 2) * l->n;
#define REC(k) (rec0 + (off8 ? o[k] : rd16(o + 2 * (size_t)(k))))
    /* Every time index maps (b's table has room for all of s's): else one by one, which inlines
       a time that does not fit. */
    if (b->nt + blk[HDR_NT] > TIX_INLINE) {
        for (uint32_t k = i; k < j; k++) {
            unsigned tix = blk[REC(k)] >> 3;
            if (tix != TIX_INLINE && map_tix(b, s, tix) == 0xff) {
                for (k = i; k < j; k++)
                    keep(b, s, k);
                return;
            }
        }
    }
    /* One copy of the records (contiguous, in entry order), then each one's time index and its
       place in b's index. */
    uint32_t start = REC(i), end = j < l->n ? REC(j) : rd32(blk + HDR_SIZE);
    size_t base = b->len;
    unsigned char *q = reserve(b, end - start);
    memcpy(q, blk + start, end - start);
    if (b->n + (j - i) > b->cap) {
        while (b->n + (j - i) > b->cap)
            b->cap = b->cap ? b->cap * 2 : 16;
        b->idx = xrealloc(b->idx, b->cap * sizeof *b->idx);
    }
    for (uint32_t k = i; k < j; k++) {
        uint32_t rel = REC(k) - start;
        unsigned tix = q[rel] >> 3;
        if (tix != TIX_INLINE)
            q[rel] = (unsigned char)((q[rel] & 7) | map_tix(b, s, tix) << 3);
        uint32_t key = l->ids[k];
        b->idx[b->n].key = key;
        b->idx[b->n++].off = (uint32_t)(base + rel);
        if (key & KV_LAST) {
            if (b->nlast == UINT16_MAX)
                die("kvbuild: too many event types");
            b->nlast++;
        }
    }
#undef REC
}

static void add_last(struct kvbuild *b, uint32_t type, int64_t at, uint32_t ord)
{
    static const struct value null;
    if (type & KV_LAST || ord > UINT16_MAX || b->nlast == UINT16_MAX)
        die("kvbuild: too many event types");
    b->adding_last = 1;
    kvbuild__add(b, KV_LAST | type, &null, at);
    b->adding_last = 0;
    uint16_t o = (uint16_t)ord;
    memcpy(reserve(b, sizeof o), &o, sizeof o);
    b->nlast++;
}

void kvbuild__copy_last(struct kvbuild *b, const struct kvset *s, uint32_t type, int64_t at)
{
    uint32_t n = kvset__count(s), end = n + kvset__nlast(s);
    const unsigned char *ix = s->_blk ? index_of(s) : NULL;
    int noted = type == UINT32_MAX;
    uint32_t run = n; /* entries [run, i) are kept as they are, in one copy */
    for (uint32_t i = n; i < end && !noted; i++) {
        uint32_t t = ix_key(s, ix, i) & ~KV_LAST, off = ix_off(s, ix, i);
        if (type < t) {
            kvbuild__keep_range(b, s, run, i);
            add_last(b, type, at, end - n); /* first seen: the next ordinal */
            run = i;
            noted = 1;
        } else if (t == type) {
            kvbuild__keep_range(b, s, run, i);
            struct value v;
            int64_t was;
            decode(s, off, &v, &was);
            add_last(b, t, at > was ? at : was, last_ord(s, off));
            run = i + 1;
            noted = 1;
        }
    }
    kvbuild__keep_range(b, s, run, end);
    if (!noted)
        add_last(b, type, at, end - n);
}

int kvbuild__add_lasts(struct kvbuild *b, const uint32_t *types, const int64_t *ats, uint32_t n)
{
    uint32_t *order = xmalloc((n ? n : 1) * sizeof *order);
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    /* Insertion sort by type: n is the handful of event types one customer has seen. */
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && types[order[j - 1]] > types[order[j]]; j--) {
            uint32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int rc = 0;
    for (uint32_t i = 0; i < n && !rc; i++) {
        if ((i && types[order[i]] == types[order[i - 1]]) || types[order[i]] & KV_LAST ||
            n > UINT16_MAX)
            rc = -1;
        else
            add_last(b, types[order[i]], ats[order[i]], order[i]);
    }
    free(order);
    return rc;
}

void kvbuild__finish(struct kvbuild *b, struct kvset *s)
{
    kvset__cleanup(s, b->slab);
    if (b->n) {
        /* The times as 4-byte steps from the earliest when they are within 49 days of it and
           that is shorter (three or more). */
        int64_t t0 = b->nt ? b->times[0] : 0, t1 = t0;
        for (uint32_t i = 1; i < b->nt; i++) {
            t0 = b->times[i] < t0 ? b->times[i] : t0;
            t1 = b->times[i] > t1 ? b->times[i] : t1;
        }
        int t32 = b->nt >= 3 && (uint64_t)t1 - (uint64_t)t0 <= UINT32_MAX;
        size_t times = times_len(t32 ? FLAG_T32 : 0, b->nt);
        size_t head = HDR_LEN + times + 4 * (size_t)b->n;
        uint32_t nkeys = b->n - b->nlast;
        uint32_t maxkey = nkeys ? b->idx[nkeys - 1].key : 0;
        uint32_t maxtype = b->nlast ? b->idx[b->n - 1].key & ~KV_LAST : 0;
        /* Shared: the ids in a layout, offsets from the first record (ascending: the records
           are in entry order) in one byte when the last starts within 256 bytes, else two. */
        int shared = b->layouts && b->idx[b->n - 1].off <= UINT16_MAX;
        int off8 = shared && b->idx[b->n - 1].off <= UINT8_MAX;
        int wide = !shared && (maxkey > 0x7fff || maxtype > 0x7fff || head + b->len > UINT16_MAX);
        if (shared)
            head = HDR_LEN + times + sizeof(struct kvlayout *) + (off8 ? 1 : 2) * (size_t)b->n;
        else if (wide)
            head += 4 * (size_t)b->n;
        size_t size = head + b->len;
        if (size > UINT32_MAX)
            die("kvbuild__finish: state too large");
        unsigned char *blk = slab_alloc(b->slab, size);
        uint32_t size32 = (uint32_t)size;
        uint16_t nlast = (uint16_t)b->nlast;
        memcpy(blk + HDR_N, &nkeys, sizeof nkeys);
        memcpy(blk + HDR_SIZE, &size32, sizeof size32);
        memcpy(blk + HDR_NLAST, &nlast, sizeof nlast);
        blk[HDR_NT] = (unsigned char)b->nt;
        blk[HDR_WIDE] = (unsigned char)((wide ? FLAG_WIDE : 0) | (b->lists ? FLAG_LISTS : 0) |
                                        (shared ? FLAG_SHARED : 0) | (off8 ? FLAG_OFF8 : 0) |
                                        (t32 ? FLAG_T32 : 0));
        if (t32) {
            memcpy(blk + HDR_LEN, &t0, sizeof t0);
            for (uint32_t i = 0; i < b->nt; i++) {
                uint32_t d = (uint32_t)((uint64_t)b->times[i] - (uint64_t)t0);
                memcpy(blk + HDR_LEN + sizeof t0 + 4 * (size_t)i, &d, sizeof d);
            }
        } else {
            memcpy(blk + HDR_LEN, b->times, times);
        }
        unsigned char *ix = blk + HDR_LEN + times;
        if (shared) {
            const struct kvlayout *l = layout_intern(b->layouts, b);
            memcpy(ix, &l, sizeof l);
            ix += sizeof l;
        }
        for (uint32_t i = 0; shared && i < b->n; i++) {
            if (off8) {
                ix[i] = (unsigned char)b->idx[i].off;
            } else {
                uint16_t o16 = (uint16_t)b->idx[i].off;
                memcpy(ix + 2 * (size_t)i, &o16, 2);
            }
        }
        for (uint32_t i = 0; !shared && i < b->n; i++) {
            uint32_t off = (uint32_t)head + b->idx[i].off;
            if (wide) {
                memcpy(ix + 8 * (size_t)i, &b->idx[i].key, 4);
                memcpy(ix + 8 * (size_t)i + 4, &off, 4);
            } else {
                uint32_t k = b->idx[i].key;
                uint16_t k16 = (uint16_t)(k & KV_LAST ? 0x8000 | (k & 0x7fff) : k), o16 = (uint16_t)off;
                memcpy(ix + 4 * (size_t)i, &k16, 2);
                memcpy(ix + 4 * (size_t)i + 2, &o16, 2);
            }
        }
        memcpy(blk + head, b->heap, b->len);
        s->_blk = blk;
    }
    b->n = b->nt = b->nlast = 0;
    b->len = 0;
    b->lists = 0;
    b->tmap_src = NULL; /* the old block is gone: its address may come back */
}

/* ---- per-signal times ---- */

struct sigtimes sigt__get(const struct sigtimes *a, uint32_t n, uint32_t s)
{
    for (uint32_t i = 0; i < n && a[i].sig <= s; i++)
        if (a[i].sig == s)
            return a[i];
    return (struct sigtimes){
        .sig = s, .fired_at = FW_TIME_NONE, .next_at = FW_TIME_MAX, .stable_at = FW_TIME_MAX};
}

void sigt__put(struct slab *slab, struct sigtimes **a, uint32_t *n, const struct sigtimes *t)
{
    uint32_t i = 0;
    while (i < *n && (*a)[i].sig < t->sig)
        i++;
    int found = i < *n && (*a)[i].sig == t->sig;
    if (sigt__usual(t)) {
        if (!found)
            return;
        memmove(&(*a)[i], &(*a)[i + 1], (*n - i - 1) * sizeof **a);
        *a = slab_realloc(slab, *a, *n * sizeof **a, (*n - 1) * sizeof **a);
        --*n;
        return;
    }
    if (!found) {
        *a = slab_realloc(slab, *a, *n * sizeof **a, (*n + 1) * sizeof **a);
        memmove(&(*a)[i + 1], &(*a)[i], (*n - i) * sizeof **a);
        ++*n;
    }
    (*a)[i] = *t;
}

uint32_t proj__cap(uint32_t n)
{
    uint32_t c = n ? 1 : 0;
    while (c < n)
        c *= 2;
    return c;
}
