/*
 * fuzz_expr.c -- libFuzzer harness for the condition language: the input
 * is compiled with expr_compile_value (any result type, the widest
 * grammar) and with expr_compile (conditions), and whatever compiles is
 * evaluated against a small fixed customer whose values have every type,
 * including a long string that makes backtracking patterns hit PCRE2's
 * limits.  This is the harness that found issue 18's regex (under POSIX).
 *
 * Invariants beyond "no crash, no sanitizer report, no hang":
 *   - a failed compile leaves *out untouched and gives a message and a
 *     1-based position inside the source (line and column agree with the
 *     byte offset);
 *   - evaluation: next > now or never; expr_test_stable gives the same
 *     answer and next as expr_test, with stable <= next.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr.h"
#include "util/buf.h"
#include "util/fwtime.h"

#define NOW 1767607200000LL /* 2026-01-05T10:00:00Z */

static const char *const classes[] = {"contact", "refund"};
static const char *const entities[] = {"ticket", "conversation"};
static char longstr[3001];
static struct value list_items[3];

static int64_t resolve(void *ctx, enum expr_ref kind, const char *name, size_t len)
{
    (void)ctx;
    const char *const *known = kind == EXPR_REF_CLASS ? classes
                               : kind == EXPR_REF_ENTITY ? entities
                                                         : NULL;
    if (known) {
        for (int i = 0; i < 2; i++)
            if (strlen(known[i]) == len && !memcmp(known[i], name, len))
                return i;
        return -1;
    }
    /* Any state key, global key or event type: a stable id from the name. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    return h % 16;
}

/* Values by id: every type, a long string, an empty string, and null. */
static void value_of(uint32_t id, struct value *out, int64_t *since)
{
    memset(out, 0, sizeof *out);
    *since = NOW - (int64_t)id * 3600000;
    switch (id % 9) {
    case 0: out->type = VAL_NULL; *since = FW_TIME_NONE; break;
    case 1: out->type = VAL_STR; out->u.str.ptr = "PENDING"; out->u.str.len = 7; break;
    case 2: out->type = VAL_NUM; out->u.num = 45.5; break;
    case 3: out->type = VAL_TIME; out->u.ms = NOW - 50 * 3600000LL; break;
    case 4: out->type = VAL_DUR; out->u.ms = 2 * 3600000LL; break;
    case 5: out->type = VAL_BOOL; out->u.b = 1; break;
    case 6: out->type = VAL_LIST; out->u.list.items = list_items; out->u.list.n = 3; break;
    case 7: out->type = VAL_STR; out->u.str.ptr = longstr; out->u.str.len = sizeof longstr - 1; break;
    default: out->type = VAL_STR; out->u.str.ptr = ""; out->u.str.len = 0; break;
    }
}

static void get_state(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    (void)ctx;
    value_of(id, out, since);
}

static void get_global(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    (void)ctx;
    value_of(id + 3, out, since);
}

static int64_t get_last(void *ctx, uint32_t id)
{
    (void)ctx;
    return id % 3 ? NOW - (int64_t)id * 7200000 : FW_TIME_NONE;
}

static int64_t get_count(void *ctx, uint32_t id, int64_t after, int64_t *oldest)
{
    (void)ctx;
    static const int64_t times[] = {NOW - 6 * 86400000LL, NOW - 86400000LL, NOW - 3600000};
    int64_t n = 0;
    *oldest = FW_TIME_MAX;
    for (size_t i = 0; i < 3; i++)
        if (times[i] > after && (id == 0 || i == 2)) {
            if (!n)
                *oldest = times[i];
            n++;
        }
    return n;
}

static int64_t get_open(void *ctx, uint32_t id)
{
    (void)ctx;
    return id == 0;
}

static void get_event(void *ctx, const char *path, size_t len, struct value *out)
{
    (void)ctx;
    int64_t since;
    value_of((uint32_t)len, out, &since);
    (void)path;
}

static void check_error(const struct expr_error *err, const char *src, size_t n)
{
    if (!err->msg[0] || err->line < 1 || err->col < 1 || err->offset > n)
        abort();
    unsigned line = 1;
    size_t bol = 0;
    for (size_t i = 0; i < err->offset; i++)
        if (src[i] == '\n')
            line++, bol = i + 1;
    if (line != err->line)
        abort();
    (void)bol;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!longstr[0]) {
        memset(longstr, 'a', sizeof longstr - 2);
        longstr[sizeof longstr - 2] = '!';
        list_items[0].type = VAL_STR;
        list_items[0].u.str.ptr = "vip";
        list_items[0].u.str.len = 3;
        list_items[1].type = VAL_NUM;
        list_items[1].u.num = 3;
        list_items[2].type = VAL_STR;
        list_items[2].u.str.ptr = "94107";
        list_items[2].u.str.len = 5;
    }
    const char *src = (const char *)data;
    struct expr_resolver res = {.ctx = NULL, .resolve = resolve};
    struct expr_env env = {.ctx = NULL,
                           .now = NOW,
                           .state = get_state,
                           .global = get_global,
                           .last = get_last,
                           .count = get_count,
                           .open_count = get_open,
                           .event_field = get_event};
    struct expr *sentinel = (struct expr *)&res, *e = sentinel;
    struct expr_error err;
    if (expr_compile_value(src, size, &res, &e, &err) == 0) {
        struct buf scratch;
        struct value v;
        int64_t next;
        buf_init(&scratch, 1 << 16);
        expr_eval(e, &env, &v, &next, &scratch);
        if (next <= NOW)
            abort();
        buf_cleanup(&scratch);
        expr_free(e);
    } else {
        if (e != sentinel)
            abort();
        check_error(&err, src, size);
    }
    e = sentinel;
    if (expr_compile(src, size, &res, &e, &err) == 0) {
        int64_t next, next2, stable;
        int a = expr_test(e, &env, &next);
        int b = expr_test_stable(e, &env, &next2, &stable);
        if (a != b || next != next2 || stable > next || next <= NOW || stable <= NOW)
            abort();
        expr_free(e);
    } else {
        if (e != sentinel)
            abort();
        check_error(&err, src, size);
    }
    return 0;
}
