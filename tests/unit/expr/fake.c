/*
 * fake.c -- the expr tests' customer: state in arrays, a resolver, fixture
 * lines and value formatting (see fake.h).
 */
#include "fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fwtime.h"
#include "util/util.h"

static int64_t resolve(void *ctx, enum expr_ref kind, const char *name, size_t len)
{
    struct fake *f = ctx;
    if (kind == EXPR_REF_CLASS || kind == EXPR_REF_ENTITY)
        return intern_lookup(&f->names[kind], name, len);
    return fake_declare(f, kind, name, len);
}

static void get_state(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    struct fake *f = ctx;
    *out = f->state[id].v;
    *since = f->state[id].since;
}

static void get_global(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    struct fake *f = ctx;
    *out = f->global[id].v;
    *since = f->global[id].since;
}

static int64_t get_last(void *ctx, uint32_t id)
{
    struct fake *f = ctx;
    return f->last[id];
}

static int64_t get_count(void *ctx, uint32_t id, int64_t after, int64_t *oldest)
{
    struct fake *f = ctx;
    int64_t n = 0;
    *oldest = FW_TIME_MAX;
    for (size_t i = 0; i < f->ntimes[id]; i++) {
        int64_t t = f->times[id][i];
        if (t > after && t <= f->env.now) {
            n++;
            if (t < *oldest)
                *oldest = t;
        }
    }
    return n;
}

static int64_t get_open(void *ctx, uint32_t id)
{
    struct fake *f = ctx;
    return f->open[id];
}

static void get_event(void *ctx, const char *path, size_t len, struct value *out)
{
    struct fake *f = ctx;
    out->type = VAL_NULL;
    for (size_t i = 0; i < f->nev; i++)
        if (strlen(f->ev[i].path) == len && !memcmp(f->ev[i].path, path, len))
            *out = f->ev[i].v;
}

void fake_clear(struct fake *f)
{
    for (size_t i = 0; i < FAKE_MAX; i++) {
        f->state[i].v.type = VAL_NULL;
        f->state[i].since = FW_TIME_NONE;
        f->global[i].v.type = VAL_NULL;
        f->global[i].since = FW_TIME_NONE;
        f->last[i] = FW_TIME_NONE;
        free(f->times[i]);
        f->times[i] = NULL;
        f->ntimes[i] = 0;
        f->open[i] = 0;
    }
    for (size_t i = 0; i < f->nev; i++)
        free(f->ev[i].path);
    f->nev = 0;
}

void fake_init(struct fake *f)
{
    memset(f, 0, sizeof *f);
    for (size_t k = 0; k < ARRAY_SIZE(f->names); k++)
        intern_init(&f->names[k]);
    fake_clear(f);
    f->now = 0;
    f->env.ctx = f;
    f->env.state = get_state;
    f->env.global = get_global;
    f->env.last = get_last;
    f->env.count = get_count;
    f->env.open_count = get_open;
    f->env.event_field = get_event;
    f->res.ctx = f;
    f->res.resolve = resolve;
}

void fake_cleanup(struct fake *f)
{
    fake_clear(f);
    for (size_t k = 0; k < ARRAY_SIZE(f->names); k++)
        intern_cleanup(&f->names[k]);
    for (size_t i = 0; i < f->nexprs; i++)
        expr_free(f->exprs[i]);
    free(f->exprs);
    for (size_t i = 0; i < f->nstrs; i++)
        free(f->strs[i]);
    free(f->strs);
}

uint32_t fake_declare(struct fake *f, enum expr_ref kind, const char *name, size_t len)
{
    uint32_t id = intern_id(&f->names[kind], name, len);
    if (id >= FAKE_MAX) {
        fprintf(stderr, "fake env: more than %d names of one kind\n", FAKE_MAX);
        abort();
    }
    return id;
}

const struct expr_env *fake_env(struct fake *f)
{
    f->env.now = f->now;
    return &f->env;
}

const char *fake_trim(const char *s, size_t *n)
{
    while (*n && (*s == ' ' || *s == '\t')) {
        s++;
        (*n)--;
    }
    while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t' || s[*n - 1] == '\r' || s[*n - 1] == '\n'))
        (*n)--;
    return s;
}

/* Resolves nothing: a fixture value must be a literal. */
static int64_t resolve_none(void *ctx, enum expr_ref kind, const char *name, size_t len)
{
    (void)ctx, (void)kind, (void)name, (void)len;
    return -1;
}

int fake_value(struct fake *f, const char *s, size_t n, struct value *out)
{
    s = fake_trim(s, &n);
    if (fw_time_parse(s, n, &out->u.ms) == 0) {
        out->type = VAL_TIME;
        return 0;
    }
    struct expr_resolver none = {.resolve = resolve_none};
    struct expr_error err;
    struct expr *e;
    if (expr_compile_value(s, n, &none, &e, &err))
        return -1;
    struct fake empty;
    fake_init(&empty);
    struct buf scratch;
    buf_init(&scratch, 0);
    int rc = expr_eval(e, fake_env(&empty), out, NULL, &scratch);
    fake_cleanup(&empty);
    if (rc == 0 && out->type == VAL_STR) {
        /* Own the string: the scratch buffer's contents outlive the call. */
        size_t len = out->u.str.len;
        char *p = buf_steal(&scratch);
        f->strs = xgrow(f->strs, &f->strs_cap, f->nstrs + 1, sizeof *f->strs);
        f->strs[f->nstrs++] = p;
        out->u.str.ptr = p;
        out->u.str.len = len;
    }
    buf_cleanup(&scratch);
    f->exprs = xgrow(f->exprs, &f->exprs_cap, f->nexprs + 1, sizeof *f->exprs);
    f->exprs[f->nexprs++] = e; /* list items point into it */
    return rc ? -1 : 0;
}

/* Next blank-separated word of s[*i..n), honouring quotes and brackets. */
static int word(const char *s, size_t n, size_t *i, const char **w, size_t *wl)
{
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t'))
        (*i)++;
    if (*i >= n)
        return 0;
    size_t st = *i;
    int depth = 0;
    char quote = 0;
    while (*i < n) {
        char c = s[*i];
        if (quote) {
            if (c == '\\')
                (*i)++;
            else if (c == quote)
                quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '[') {
            depth++;
        } else if (c == ']') {
            depth--;
        } else if ((c == ' ' || c == '\t') && depth == 0) {
            break;
        }
        (*i)++;
    }
    *w = s + st;
    *wl = *i - st;
    return 1;
}

int fake_line(struct fake *f, const char *line, char *why, size_t whylen)
{
    size_t n = strlen(line), i = 0, kl, al, bl;
    const char *k, *a, *b;
    if (!word(line, n, &i, &k, &kl))
        return 0;
#define IS(lit) (kl == sizeof(lit) - 1 && !memcmp(k, lit, kl))
#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)
    if (IS("reset")) {
        fake_clear(f);
        return 1;
    }
    if (IS("now")) {
        if (!word(line, n, &i, &a, &al) || fw_time_parse(a, al, &f->now))
            BAD("now needs an RFC 3339 time");
        return 1;
    }
    if (IS("state") || IS("global")) {
        struct value v;
        int64_t since = f->now;
        if (!word(line, n, &i, &a, &al) || !word(line, n, &i, &b, &bl) || fake_value(f, b, bl, &v))
            BAD("%.*s needs a key and a value", (int)kl, k);
        const char *c;
        size_t cl;
        if (word(line, n, &i, &c, &cl) && fw_time_parse(c, cl, &since))
            BAD("bad since time '%.*s'", (int)cl, c);
        int g = IS("global");
        uint32_t id = fake_declare(f, g ? EXPR_REF_GLOBAL : EXPR_REF_STATE, a, al);
        struct fake_kv *kv = g ? &f->global[id] : &f->state[id];
        kv->v = v;
        kv->since = v.type == VAL_NULL ? FW_TIME_NONE : since;
        return 1;
    }
    if (IS("last")) {
        int64_t t;
        if (!word(line, n, &i, &a, &al) || !word(line, n, &i, &b, &bl) || fw_time_parse(b, bl, &t))
            BAD("last needs an event type and a time");
        f->last[fake_declare(f, EXPR_REF_TYPE, a, al)] = t;
        return 1;
    }
    if (IS("events")) {
        if (!word(line, n, &i, &a, &al))
            BAD("events needs a class");
        uint32_t id = fake_declare(f, EXPR_REF_CLASS, a, al);
        while (word(line, n, &i, &b, &bl)) {
            int64_t t;
            if (bl && b[bl - 1] == ',')
                bl--;
            if (fw_time_parse(b, bl, &t))
                BAD("bad event time '%.*s'", (int)bl, b);
            f->times[id] = xrealloc(f->times[id], (f->ntimes[id] + 1) * sizeof(int64_t));
            f->times[id][f->ntimes[id]++] = t;
        }
        return 1;
    }
    if (IS("open")) {
        if (!word(line, n, &i, &a, &al) || !word(line, n, &i, &b, &bl))
            BAD("open needs an entity and a number");
        f->open[fake_declare(f, EXPR_REF_ENTITY, a, al)] = strtoll(b, NULL, 10);
        return 1;
    }
    if (IS("event")) {
        struct value v;
        if (!word(line, n, &i, &a, &al))
            BAD("event needs a field and a value, or 'none'");
        if (al == 4 && !memcmp(a, "none", 4)) {
            for (size_t e = 0; e < f->nev; e++)
                free(f->ev[e].path);
            f->nev = 0;
            return 1;
        }
        if (!word(line, n, &i, &b, &bl) || fake_value(f, b, bl, &v))
            BAD("event needs a field and a value");
        if (f->nev == ARRAY_SIZE(f->ev))
            BAD("too many event fields");
        f->ev[f->nev].path = xstrndup(a, al);
        f->ev[f->nev].v = v;
        f->nev++;
        return 1;
    }
    return 0;
#undef IS
#undef BAD
}

void fake_format(const struct value *v, struct buf *out)
{
    char tmp[FW_TIME_MAXLEN];
    switch (v->type) {
    case VAL_NULL: buf_puts(out, "null"); break;
    case VAL_BOOL: buf_puts(out, v->u.b ? "true" : "false"); break;
    case VAL_NUM: buf_printf(out, "%.15g", v->u.num); break;
    case VAL_STR: buf_json_str(out, v->u.str.ptr, v->u.str.len); break;
    case VAL_TIME:
        fw_time_format(v->u.ms, tmp);
        buf_puts(out, tmp);
        break;
    case VAL_DUR:
        fw_duration_format(v->u.ms, tmp);
        buf_puts(out, tmp);
        break;
    case VAL_LIST:
        buf_putc(out, '[');
        for (size_t i = 0; i < v->u.list.n; i++) {
            if (i)
                buf_puts(out, ", ");
            fake_format(&v->u.list.items[i], out);
        }
        buf_putc(out, ']');
        break;
    }
}
