/*
 * ctx.c -- typed template contexts: one value slot per variable of vars.h,
 * addressed by id (vars.c resolves names to ids and knows which variables
 * are lists' fields), strings and lists in blocks the context owns.
 *
 * The orchestrator fills a context per decision and renders several
 * templates with it; a JSON tree cost an allocation, a hash insert and a
 * UTF-8 check per key to build and three hash probes per name to read.
 * Here a set is a store into an array and a read is a load: the template
 * compiler resolved every name to its id.  Values keep JSON's meaning
 * (comms__value), so a template renders the same from either.
 *
 * Invariant: fields of a list follow the list in vars.h (issues, then
 * issues.headline ...), so an element is an array of the list's fields in
 * that order; vars.c checks the table for it once, on first use.
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "comms/comms_int.h"
#include "util/util.h"

/* ---- contexts ---- */

/* A block of the context's own memory; the first one is inside the context. */
struct block {
    struct block *next;
    alignas(max_align_t) char data[];
};

#define FIRST_BLOCK 1024
#define MORE_BLOCK 4096

struct comms_ctx {
    struct comms__value v[COMMS_NVARS];
    struct block *more; /* further blocks, newest first */
    char *cur;          /* free space in the current block */
    size_t left;
    alignas(max_align_t) char first[FIRST_BLOCK];
};

struct comms_ctx *comms_ctx_new(void)
{
    struct comms_ctx *c = xmalloc(sizeof *c);
    memset(c->v, 0, sizeof c->v); /* every kind COMMS__ABSENT */
    c->more = NULL;
    c->cur = c->first;
    c->left = sizeof c->first;
    return c;
}

void comms_ctx_free(struct comms_ctx *c)
{
    if (!c)
        return;
    for (struct block *b = c->more, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(c);
}

/* n bytes of the context's memory, aligned for any value. */
static void *ctx_alloc(struct comms_ctx *c, size_t n)
{
    size_t need = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (need > c->left) {
        size_t size = need > MORE_BLOCK ? need : MORE_BLOCK;
        struct block *b = xmalloc(sizeof *b + size);
        b->next = c->more;
        c->more = b;
        c->cur = b->data;
        c->left = size;
    }
    void *p = c->cur;
    c->cur += need;
    c->left -= need;
    return p;
}

static const char *ctx_strdup(struct comms_ctx *c, const char *s, size_t n)
{
    char *p = ctx_alloc(c, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Strict UTF-8, as jansson checks a string: no overlong forms, surrogates or code points past
   U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char u = s[i];
        if (u < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if (u >= 0xC2 && u <= 0xDF)
            k = 2, cp = u & 0x1F;
        else if (u >= 0xE0 && u <= 0xEF)
            k = 3, cp = u & 0x0F;
        else if (u >= 0xF0 && u <= 0xF4)
            k = 4, cp = u & 0x07;
        else
            return 0;
        if (i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (k == 3 && cp < 0x800) ||
            (k == 4 && cp < 0x10000))
            return 0;
        i += k;
    }
    return 1;
}

/* The root slot of a variable that is not a list's field, or NULL. */
static struct comms__value *root_slot(struct comms_ctx *c, int id)
{
    if (id < 0 || id >= COMMS_NVARS || comms__var_list(id) >= 0)
        return NULL;
    return &c->v[id];
}

static void set_text(struct comms__value *v, struct comms_ctx *c, const char *s, size_t n)
{
    v->u.s = ctx_strdup(c, s, n);
    v->len = (uint32_t)n;
    v->kind = COMMS__STR;
}

void comms_ctx_set_str(struct comms_ctx *c, int id, const char *s)
{
    struct comms__value *v = root_slot(c, id);
    size_t n;
    if (v && s && utf8_valid((const unsigned char *)s, n = strlen(s)))
        set_text(v, c, s, n);
}

void comms_ctx_set_valid(struct comms_ctx *c, int id, const char *s, size_t n)
{
    struct comms__value *v = root_slot(c, id);
    if (v && s)
        set_text(v, c, s, n);
}

void comms_ctx_set_int(struct comms_ctx *c, int id, long long i)
{
    struct comms__value *v = root_slot(c, id);
    if (v)
        *v = (struct comms__value){.kind = COMMS__INT, .u.i = i};
}

void comms_ctx_set_bool(struct comms_ctx *c, int id, int b)
{
    struct comms__value *v = root_slot(c, id);
    if (v)
        *v = (struct comms__value){.kind = b ? COMMS__TRUE : COMMS__FALSE};
}

void comms_ctx_unset(struct comms_ctx *c, int id)
{
    struct comms__value *v = root_slot(c, id);
    if (v)
        *v = (struct comms__value){.kind = COMMS__ABSENT};
}

void comms_ctx_set_list(struct comms_ctx *c, int list, size_t n)
{
    struct comms__value *v = root_slot(c, list);
    size_t nf = comms__var_nfields(list);
    if (!v || !nf)
        return;
    struct comms__value *items = ctx_alloc(c, (n ? n : 1) * nf * sizeof *items);
    memset(items, 0, n * nf * sizeof *items);
    *v = (struct comms__value){.kind = COMMS__LIST, .len = (uint32_t)n, .u.items = items};
}

/* Field `field` of element i of its list, or NULL when that list or element is not there. */
static struct comms__value *item_slot(const struct comms_ctx *c, int field, size_t i)
{
    int list = comms__var_list(field);
    if (list < 0 || c->v[list].kind != COMMS__LIST || i >= c->v[list].len)
        return NULL;
    size_t at = i * comms__var_nfields(list) + (size_t)(field - list - 1);
    return (struct comms__value *)&c->v[list].u.items[at];
}

void comms_ctx_item_str(struct comms_ctx *c, int field, size_t i, const char *s)
{
    struct comms__value *v = item_slot(c, field, i);
    size_t n;
    if (v && s && utf8_valid((const unsigned char *)s, n = strlen(s)))
        set_text(v, c, s, n);
}

const char *comms_ctx_str(const struct comms_ctx *c, int id)
{
    return id >= 0 && id < COMMS_NVARS && c->v[id].kind == COMMS__STR ? c->v[id].u.s : NULL;
}

long long comms_ctx_int(const struct comms_ctx *c, int id)
{
    return id >= 0 && id < COMMS_NVARS && c->v[id].kind == COMMS__INT ? c->v[id].u.i : 0;
}

const char *comms_ctx_item(const struct comms_ctx *c, int field, size_t i)
{
    const struct comms__value *v = item_slot(c, field, i);
    return v && v->kind == COMMS__STR ? v->u.s : NULL;
}

const struct comms__value *comms__ctx_values(const struct comms_ctx *c) { return c->v; }

/* ---- from a JSON context (tests, fuzzing) ---- */

/* The last part of a field's dotted name ("headline" for "issues.headline"). */
static const char *field_key(int field)
{
    const char *dot = strrchr(comms_vars[field].name, '.');
    return dot ? dot + 1 : comms_vars[field].name;
}

/* Element i of list `list` from JSON object e: every key one of its fields, each a string. */
static int item_from_json(struct comms_ctx *c, int list, size_t i, json_t *e)
{
    const char *key;
    json_t *v;
    if (!json_is_object(e))
        return FW_EINVAL;
    json_object_foreach (e, key, v) {
        int field = -1;
        for (int f = list + 1; f <= list + (int)comms__var_nfields(list) && field < 0; f++)
            if (!strcmp(field_key(f), key))
                field = f;
        /* Another key would shadow a variable of the same name; no typed element has one. */
        if (field < 0)
            return FW_EINVAL;
        /* Not a string: a typed field has no null (which, unlike absent, ends the lookup). */
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return FW_EINVAL;
        comms_ctx_item_str(c, field, i, json_string_value(v));
    }
    return 0;
}

/* Variable id from its JSON value v (not NULL, not null). */
static int var_from_json(struct comms_ctx *c, int id, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        comms_ctx_set_valid(c, id, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        comms_ctx_set_int(c, id, (long long)json_integer_value(v));
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        comms_ctx_set_bool(c, id, json_is_true(v));
        return 0;
    case JSON_ARRAY:
        if (!comms__var_nfields(id))
            return FW_EINVAL; /* a section over a plain variable's array iterates it */
        comms_ctx_set_list(c, id, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++)
            if (item_from_json(c, id, i, json_array_get(v, i)))
                return FW_EINVAL;
        return 0;
    default:
        return FW_EINVAL; /* reals and objects */
    }
}

int comms__ctx_from_json(json_t *j, struct comms_ctx **out)
{
    struct comms_ctx *c = comms_ctx_new();
    int rc = 0;
    *out = NULL;
    if (j && !json_is_object(j))
        rc = FW_EINVAL;
    for (int id = 0; j && id < COMMS_NVARS && !rc; id++) {
        const char *name = comms_vars[id].name;
        json_t *v = comms__json_path(j, name, strlen(name));
        if (!v || json_is_null(v))
            continue; /* absent and null render alike */
        /* A list's field at the root is what JSON falls back to for an element without it. */
        rc = comms__var_list(id) >= 0 ? FW_EINVAL : var_from_json(c, id, v);
    }
    if (rc) {
        comms_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}
