/*
 * state.c -- stored values and key/value sets of customer state.
 *
 * Invariant: a kvset's items are sorted by key id and hold owned copies of
 * their values (strings and list elements allocated here).
 */
#include "engine/state.h"

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

static uint32_t lower_bound(const struct kvset *s, uint32_t key)
{
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->items[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct kv *kvset__find(const struct kvset *s, uint32_t key)
{
    uint32_t i = lower_bound(s, key);
    return i < s->n && s->items[i].key == key ? &s->items[i] : NULL;
}

int kvset__set(struct kvset *s, uint32_t key, const struct value *v, int64_t t, struct value *old)
{
    uint32_t i = lower_bound(s, key);
    if (old)
        old->type = VAL_NULL;
    if (i < s->n && s->items[i].key == key) {
        struct kv *kv = &s->items[i];
        if (value__equal(&kv->v, v))
            return 0; /* same value: `since` keeps the time it was first taken */
        if (old)
            *old = kv->v;
        else
            value__free(&kv->v);
        value__copy(&kv->v, v);
        kv->since = t;
        return 1;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->items = xrealloc(s->items, s->cap * sizeof *s->items);
    }
    memmove(&s->items[i + 1], &s->items[i], (s->n - i) * sizeof *s->items);
    s->items[i].key = key;
    s->items[i].since = t;
    value__copy(&s->items[i].v, v);
    s->n++;
    return 1;
}

int kvset__remove(struct kvset *s, uint32_t key, struct value *old)
{
    uint32_t i = lower_bound(s, key);
    if (old)
        old->type = VAL_NULL;
    if (i >= s->n || s->items[i].key != key)
        return 0;
    if (old)
        *old = s->items[i].v;
    else
        value__free(&s->items[i].v);
    memmove(&s->items[i], &s->items[i + 1], (s->n - i - 1) * sizeof *s->items);
    s->n--;
    return 1;
}

void kvset__copy(struct kvset *dst, const struct kvset *src)
{
    dst->n = dst->cap = src->n;
    dst->items = xmalloc((src->n ? src->n : 1) * sizeof *dst->items);
    for (uint32_t i = 0; i < src->n; i++) {
        dst->items[i] = src->items[i];
        value__copy(&dst->items[i].v, &src->items[i].v);
    }
}

void kvset__cleanup(struct kvset *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        value__free(&s->items[i].v);
    free(s->items);
    memset(s, 0, sizeof *s);
}
