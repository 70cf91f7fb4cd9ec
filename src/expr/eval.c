/*
 * eval.c -- the evaluator: a value for the instant just after env->now,
 * and the earliest time the value could change with no new input.
 *
 * Every intermediate result is a struct ev: the value at now, its slope
 * (how many ms a time or duration gains per ms of clock: now() and age(x)
 * have slope 1, `last("x") - now()` has -1, anything read from state has
 * 0), and `next`, the earliest time > now at which it may change in some
 * other way (a count() event leaving its window, a comparison crossing its
 * threshold).  Because values are at most linear in the clock, a
 * comparison knows exactly when it flips; and/or combine the operands'
 * times by the three-valued rules below, so `next` is exact for the usual
 * conditions and otherwise early (conservative), never late.
 *
 * Invariants: next > env->now or next == FW_TIME_MAX; the common path
 * allocates nothing (case mapping uses stack space and falls back to the
 * heap only for long strings; a regex search reuses its thread's match data).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

struct ev {
    struct value v;
    int32_t slope; /* VAL_TIME, VAL_DUR: ms gained per ms of clock; 0 otherwise */
    int64_t next;  /* earliest time > now of a change not described by slope */
};

/* Heap blocks for temporaries that do not fit the stack space. */
struct ablk {
    struct ablk *next;
    char data[];
};

struct run {
    const struct expr *e;
    const struct expr_env *env;
    int64_t stable; /* earliest next of any node evaluated so far */
    char *space;    /* stack space for temporaries */
    size_t left;
    struct ablk *heap;
};

static char *run_alloc(struct run *r, size_t n)
{
    if (n <= r->left) {
        char *p = r->space;
        r->space += n;
        r->left -= n;
        return p;
    }
    struct ablk *b = xmalloc(sizeof *b + n);
    b->next = r->heap;
    r->heap = b;
    return b->data;
}

static void run_cleanup(struct run *r)
{
    while (r->heap) {
        struct ablk *b = r->heap;
        r->heap = b->next;
        free(b);
    }
}

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static inline void set_null(struct ev *o, int64_t next)
{
    o->v.type = VAL_NULL;
    o->slope = 0;
    o->next = next;
}

static inline void set_bool(struct ev *o, int b, int64_t next)
{
    o->v.type = VAL_BOOL;
    o->v.u.b = b;
    o->slope = 0;
    o->next = next;
}

static inline void set_num(struct ev *o, double x, int64_t next)
{
    o->v.type = VAL_NUM;
    o->v.u.num = x;
    o->slope = 0;
    o->next = next;
}

static inline void set_ms(struct ev *o, int type, int64_t ms, int32_t slope, int64_t next)
{
    o->v.type = (enum value_type)type;
    o->v.u.ms = ms;
    o->slope = slope;
    o->next = next;
}

/* 1 true, 0 false, -1 null or not a truth value. */
static inline int truth(const struct ev *x) { return x->v.type == VAL_BOOL ? x->v.u.b != 0 : -1; }

/*
 * Sign of a - b for the instant just after now, and in *cross the time
 * that sign next changes (FW_TIME_MAX: never, with no new input).  Only
 * times and durations move; for them d(t) = d(now) + s*(t - now) with s
 * the slope difference, and the sign just after t is sign(d(t)), or
 * sign(s) where d(t) == 0.  With s != 0 the sign is therefore never 0:
 * a moving value is never equal to anything.
 */
static int sign_after(const struct ev *a, const struct ev *b, int64_t now, int64_t *cross)
{
    *cross = FW_TIME_MAX;
    switch (a->v.type) {
    case VAL_NUM:
        return (a->v.u.num > b->v.u.num) - (a->v.u.num < b->v.u.num);
    case VAL_BOOL:
        return (a->v.u.b != 0) - (b->v.u.b != 0);
    case VAL_STR: {
        size_t n = a->v.u.str.len < b->v.u.str.len ? a->v.u.str.len : b->v.u.str.len;
        int r = n ? memcmp(a->v.u.str.ptr, b->v.u.str.ptr, n) : 0;
        if (r)
            return r < 0 ? -1 : 1;
        return (a->v.u.str.len > b->v.u.str.len) - (a->v.u.str.len < b->v.u.str.len);
    }
    default: /* VAL_TIME, VAL_DUR */
        break;
    }
    int64_t s = (int64_t)a->slope - b->slope, d;
    if (__builtin_sub_overflow(a->v.u.ms, b->v.u.ms, &d))
        return a->v.u.ms > b->v.u.ms ? 1 : -1; /* too far apart to ever cross */
    int sd = (d > 0) - (d < 0), ss = (s > 0) - (s < 0);
    if (ss == 0 || sd == ss)
        return sd; /* still, or moving away from zero */
    if (sd == 0)
        return ss; /* at zero now: just after, the slope's side */
    /* Moving towards zero: the sign turns at the first ms where s*dt reaches -d. */
    uint64_t ad = d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;
    uint64_t as = s < 0 ? (uint64_t)(-s) : (uint64_t)s;
    uint64_t dt = ad / as + (ad % as != 0);
    /* now + dt when it is a time: FW_TIME_MAX - now overflows for a clock before 1970. */
    if (now < 0 ? dt <= (uint64_t)FW_TIME_MAX : dt < (uint64_t)(FW_TIME_MAX - now))
        *cross = now + (int64_t)dt;
    return sd;
}

/* Whether a (with slope) equals the static value b: same type and contents, not moving. */
static int equals_value(const struct ev *a, const struct value *b)
{
    if (a->v.type != b->type)
        return 0;
    switch (b->type) {
    case VAL_BOOL:
        return (a->v.u.b != 0) == (b->u.b != 0);
    case VAL_NUM:
        return a->v.u.num == b->u.num;
    case VAL_STR:
        return a->v.u.str.len == b->u.str.len &&
               (!b->u.str.len || !memcmp(a->v.u.str.ptr, b->u.str.ptr, b->u.str.len));
    case VAL_TIME:
    case VAL_DUR:
        return a->slope == 0 && a->v.u.ms == b->u.ms;
    default:
        return 0;
    }
}

static int list_has(const struct value *list, const struct ev *x)
{
    for (size_t i = 0; i < list->u.list.n; i++)
        if (equals_value(x, &list->u.list.items[i]))
            return 1;
    return 0;
}

/* upper()/lower() of a string into run space; ASCII letters only. */
static __attribute__((noinline)) void case_map(struct run *r, struct ev *o, int upper)
{
    size_t n = o->v.u.str.len;
    const char *s = o->v.u.str.ptr;
    char *d = run_alloc(r, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (upper && ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        else if (!upper && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        d[i] = ch;
    }
    o->v.u.str.ptr = d;
}

static void eval(struct run *r, uint32_t i, struct ev *o);

static void arith(struct run *r, const struct expr__node *n, struct ev *o)
{
    struct ev a, b;
    eval(r, n->a, &a);
    if (n->op == OP_NEG) {
        if (a.v.type == VAL_NUM)
            set_num(o, -a.v.u.num, a.next);
        else if (a.v.type == VAL_DUR && a.v.u.ms != INT64_MIN)
            set_ms(o, VAL_DUR, -a.v.u.ms, -a.slope, a.next);
        else
            set_null(o, a.next);
        return;
    }
    eval(r, n->b, &b);
    int64_t next = min64(a.next, b.next), ms;
    int t = expr__arith_type(n->op, a.v.type, b.v.type);
    if (t < 0) {
        set_null(o, next);
        return;
    }
    if (t == VAL_NUM) {
        double x = a.v.u.num, y = b.v.u.num;
        switch (n->op) {
        case OP_ADD:
            set_num(o, x + y, next);
            return;
        case OP_SUB:
            set_num(o, x - y, next);
            return;
        case OP_MUL:
            set_num(o, x * y, next);
            return;
        default:
            if (y == 0)
                set_null(o, next);
            else
                set_num(o, x / y, next);
            return;
        }
    }
    if (n->op == OP_ADD || n->op == OP_SUB) {
        int sub = n->op == OP_SUB;
        int ovf = sub ? __builtin_sub_overflow(a.v.u.ms, b.v.u.ms, &ms)
                      : __builtin_add_overflow(a.v.u.ms, b.v.u.ms, &ms);
        if (ovf)
            set_null(o, next);
        else
            set_ms(o, t, ms, sub ? a.slope - b.slope : a.slope + b.slope, next);
        return;
    }
    /* Duration scaled by a number; the compiler refused moving operands. */
    const struct ev *d = a.v.type == VAL_DUR ? &a : &b;
    double k = a.v.type == VAL_DUR ? b.v.u.num : a.v.u.num;
    double x = n->op == OP_MUL ? (double)d->v.u.ms * k : (k != 0 ? (double)d->v.u.ms / k : NAN);
    if (d->slope != 0 || !(x > -9.0e18 && x < 9.0e18))
        set_null(o, next);
    else
        set_ms(o, VAL_DUR, llround(x), 0, next);
}

static void compare(struct run *r, const struct expr__node *n, struct ev *o)
{
    struct ev a, b;
    eval(r, n->a, &a);
    eval(r, n->b, &b);
    int64_t next = min64(a.next, b.next), cross;
    if (!expr__cmp_ok(n->op, a.v.type, b.v.type)) {
        set_null(o, next); /* null, or types only known now to differ */
        return;
    }
    int s = sign_after(&a, &b, r->env->now, &cross);
    int res;
    switch (n->op) {
    case OP_EQ:
        res = s == 0;
        break;
    case OP_NE:
        res = s != 0;
        break;
    case OP_LT:
        res = s < 0;
        break;
    case OP_LE:
        res = s <= 0;
        break;
    case OP_GT:
        res = s > 0;
        break;
    default:
        res = s >= 0;
        break;
    }
    /*
     * Ordering flips where the sign does; equality with a moving value is
     * false before and after the crossing, so it never changes.
     */
    if (n->op != OP_EQ && n->op != OP_NE)
        next = min64(next, cross);
    set_bool(o, res, next);
}

/*
 * and/or in three-valued logic.  For `and`, a false operand decides: the
 * result stays false until the last of the false operands can change
 * (max of their times); with no false operand every operand matters (min).
 * `or` is the mirror image with true.  The right side is skipped only when
 * the left one decides for good (its next is FW_TIME_MAX), which keeps the
 * time exact.
 */
static void logic(struct run *r, const struct expr__node *n, struct ev *o)
{
    int decisive = n->op == OP_OR; /* the truth value that settles the result */
    struct ev a, b;
    eval(r, n->a, &a);
    int ta = truth(&a);
    if (ta == decisive && a.next == FW_TIME_MAX) {
        set_bool(o, decisive, FW_TIME_MAX);
        return;
    }
    eval(r, n->b, &b);
    int tb = truth(&b);
    if (ta == decisive && tb == decisive)
        set_bool(o, decisive, max64(a.next, b.next));
    else if (ta == decisive)
        set_bool(o, decisive, a.next);
    else if (tb == decisive)
        set_bool(o, decisive, b.next);
    else if (ta < 0 || tb < 0)
        set_null(o, min64(a.next, b.next));
    else
        set_bool(o, !decisive, min64(a.next, b.next));
}

static void eval_node(struct run *r, uint32_t i, struct ev *o);

/* Evaluate node i, and note the earliest time any node may change (see expr_test_stable). */
static inline void eval(struct run *r, uint32_t i, struct ev *o)
{
    eval_node(r, i, o);
    if (o->next < r->stable)
        r->stable = o->next;
}

static void eval_node(struct run *r, uint32_t i, struct ev *o)
{
    const struct expr__node *n = &r->e->nodes[i];
    const struct expr_env *env = r->env;
    struct ev a, b;
    int64_t since;
    switch ((enum expr__op)n->op) {
    case OP_LIT:
        o->v = n->u.lit;
        o->slope = 0;
        o->next = FW_TIME_MAX;
        return;
    case OP_STATE:
        env->state(env->ctx, n->u.id, &o->v, &since);
        o->slope = 0;
        o->next = FW_TIME_MAX;
        return;
    case OP_GLOBAL:
        env->global(env->ctx, n->u.id, &o->v, &since);
        o->slope = 0;
        o->next = FW_TIME_MAX;
        return;
    case OP_EVENT:
        env->event_field(env->ctx, n->u.field.ptr, n->u.field.len, &o->v);
        o->slope = 0;
        o->next = FW_TIME_MAX;
        return;
    case OP_NOW:
        set_ms(o, VAL_TIME, env->now, 1, FW_TIME_MAX);
        return;
    case OP_AGE: {
        int64_t ms;
        eval(r, n->a, &a);
        if (a.v.type != VAL_TIME || __builtin_sub_overflow(env->now, a.v.u.ms, &ms))
            set_null(o, a.next);
        else
            set_ms(o, VAL_DUR, ms, 1 - a.slope, a.next);
        return;
    }
    case OP_LAST: {
        int64_t t = env->last(env->ctx, n->u.id);
        if (t == FW_TIME_NONE)
            set_null(o, FW_TIME_MAX);
        else
            set_ms(o, VAL_TIME, t, 0, FW_TIME_MAX);
        return;
    }
    case OP_CHANGED_STATE:
    case OP_CHANGED_GLOBAL:
        if (n->op == OP_CHANGED_STATE)
            env->state(env->ctx, n->u.id, &a.v, &since);
        else
            env->global(env->ctx, n->u.id, &a.v, &since);
        if (a.v.type == VAL_NULL || since == FW_TIME_NONE)
            set_null(o, FW_TIME_MAX);
        else
            set_ms(o, VAL_TIME, since, 0, FW_TIME_MAX);
        return;
    case OP_COUNT: {
        /* Events in (now - window, now]; the oldest leaves at oldest + window. */
        int64_t w = n->u.count.window, oldest = FW_TIME_MAX, next = FW_TIME_MAX;
        int64_t after = env->now > FW_TIME_NONE + w ? env->now - w : FW_TIME_NONE;
        int64_t k = env->count(env->ctx, n->u.count.id, after, &oldest);
        if (k > 0 && oldest != FW_TIME_MAX && oldest <= FW_TIME_MAX - w)
            next = max64(oldest + w, env->now + 1);
        set_num(o, (double)k, next);
        return;
    }
    case OP_OPEN_COUNT:
        set_num(o, (double)env->open_count(env->ctx, n->u.id), FW_TIME_MAX);
        return;
    case OP_HAS_OPEN:
        set_bool(o, env->open_count(env->ctx, n->u.id) > 0, FW_TIME_MAX);
        return;
    case OP_ENGAGE: {
        int64_t next = FW_TIME_MAX;
        o->v.type = VAL_NULL;
        if (env->engage)
            env->engage(env->ctx, n->u.eng.fn, n->u.eng.id, n->u.eng.a, n->u.eng.b, &o->v, &next);
        if (next <= env->now)
            next = env->now + 1; /* a figure's change is always ahead */
        o->slope = 0;
        o->next = next;
        /* feature_idle: the idle time since the instant the figure gives, growing with the clock. */
        if (n->u.eng.fn == EXPR_ENG_IDLE && o->v.type == VAL_TIME)
            set_ms(o, VAL_DUR, env->now - o->v.u.ms, 1, next);
        else if (n->u.eng.fn == EXPR_ENG_IDLE)
            set_null(o, next);
        return;
    }
    case OP_UPPER:
    case OP_LOWER:
        eval(r, n->a, o);
        if (o->v.type == VAL_STR)
            case_map(r, o, n->op == OP_UPPER);
        else
            set_null(o, o->next);
        return;
    case OP_LEN:
        eval(r, n->a, &a);
        if (a.v.type == VAL_STR)
            set_num(o, (double)a.v.u.str.len, a.next);
        else if (a.v.type == VAL_LIST)
            set_num(o, (double)a.v.u.list.n, a.next);
        else
            set_null(o, a.next);
        return;
    case OP_COALESCE: {
        /* The first non-null argument; those before it matter too (they may turn non-null). */
        int64_t next = FW_TIME_MAX;
        for (uint32_t k = 0; k < n->b; k++) {
            eval(r, r->e->args[n->a + k], o);
            next = min64(next, o->next);
            if (o->v.type != VAL_NULL)
                break;
        }
        o->next = next;
        return;
    }
    case OP_NEG:
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
        arith(r, n, o);
        return;
    case OP_EQ:
    case OP_NE:
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE:
        compare(r, n, o);
        return;
    case OP_IN:
        eval(r, n->a, &a);
        eval(r, n->b, &b);
        if (a.v.type == VAL_NULL || a.v.type == VAL_LIST || b.v.type != VAL_LIST)
            set_null(o, min64(a.next, b.next));
        else
            set_bool(o, list_has(&b.v, &a), min64(a.next, b.next));
        return;
    case OP_CONTAINS:
        eval(r, n->a, &a);
        eval(r, n->b, &b);
        if (a.v.type == VAL_STR && b.v.type == VAL_STR)
            set_bool(o,
                     b.v.u.str.len == 0 ||
                         memmem(a.v.u.str.ptr, a.v.u.str.len, b.v.u.str.ptr, b.v.u.str.len),
                     min64(a.next, b.next));
        else if (a.v.type == VAL_LIST && b.v.type != VAL_NULL && b.v.type != VAL_LIST)
            set_bool(o, list_has(&a.v, &b), min64(a.next, b.next));
        else
            set_null(o, min64(a.next, b.next));
        return;
    case OP_MATCH:
        eval(r, n->a, &a);
        if (a.v.type == VAL_STR) {
            /* A search stopped by a limit has no answer: null, like a missing operand. */
            int m = expr__re_match(n->u.re, a.v.u.str.ptr, a.v.u.str.len);
            if (m < 0)
                set_null(o, a.next);
            else
                set_bool(o, m, a.next);
        } else {
            set_null(o, a.next);
        }
        return;
    case OP_IS_NULL:
    case OP_NOT_NULL:
        eval(r, n->a, &a);
        set_bool(o, (a.v.type == VAL_NULL) == (n->op == OP_IS_NULL), a.next);
        return;
    case OP_NOT:
        eval(r, n->a, &a);
        if (a.v.type == VAL_BOOL)
            set_bool(o, !a.v.u.b, a.next);
        else
            set_null(o, a.next);
        return;
    case OP_AND:
    case OP_OR:
        logic(r, n, o);
        return;
    }
    set_null(o, FW_TIME_MAX);
}

static void run(const struct expr *e, const struct expr_env *env, struct run *r, char *space,
                size_t nspace, struct ev *o)
{
    r->e = e;
    r->env = env;
    r->space = space;
    r->left = nspace;
    r->heap = NULL;
    r->stable = FW_TIME_MAX;
    eval(r, e->root, o);
    if (o->next <= env->now)
        o->next = env->now + 1; /* cannot happen with a sane env; keeps the contract anyway */
}

int expr_test(const struct expr *e, const struct expr_env *env, int64_t *next)
{
    int64_t stable;
    return expr_test_stable(e, env, next, &stable);
}

int expr_test_stable(const struct expr *e, const struct expr_env *env, int64_t *next,
                     int64_t *stable)
{
    char space[256];
    struct run r;
    struct ev o;
    run(e, env, &r, space, sizeof space, &o);
    run_cleanup(&r);
    if (next)
        *next = o.next;
    *stable = r.stable < o.next ? r.stable : o.next;
    return o.v.type == VAL_BOOL && o.v.u.b;
}

int expr_eval(const struct expr *e, const struct expr_env *env, struct value *out, int64_t *next,
              struct buf *scratch)
{
    char space[256];
    struct run r;
    struct ev o;
    int rc = 0;
    run(e, env, &r, space, sizeof space, &o);
    /* A value moving with the clock is different one millisecond later. */
    if ((o.v.type == VAL_TIME || o.v.type == VAL_DUR) && o.slope != 0)
        o.next = env->now + 1;
    if (next)
        *next = o.next;
    *out = o.v;
    if (o.v.type == VAL_STR) {
        /* Temporaries die with this call; the env's strings may too: copy. */
        size_t at = scratch->len;
        rc = buf_append(scratch, o.v.u.str.ptr, o.v.u.str.len);
        if (rc)
            out->type = VAL_NULL;
        else
            out->u.str.ptr = scratch->data ? scratch->data + at : "";
    }
    run_cleanup(&r);
    return rc;
}

/* ---- an environment with state only ---- */

static void none_global(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    (void)ctx, (void)id;
    out->type = VAL_NULL;
    *since = FW_TIME_NONE;
}

static int64_t none_last(void *ctx, uint32_t type)
{
    (void)ctx, (void)type;
    return FW_TIME_NONE;
}

static int64_t none_count(void *ctx, uint32_t cls, int64_t after, int64_t *oldest)
{
    (void)ctx, (void)cls, (void)after;
    *oldest = FW_TIME_MAX;
    return 0;
}

static int64_t none_open(void *ctx, uint32_t ent)
{
    (void)ctx, (void)ent;
    return 0;
}

static void none_field(void *ctx, const char *path, size_t len, struct value *out)
{
    (void)ctx, (void)path, (void)len;
    out->type = VAL_NULL;
}

struct expr_env expr_env_state_only(void *ctx, int64_t now,
                                    void (*state)(void *ctx, uint32_t id, struct value *out,
                                                  int64_t *since))
{
    return (struct expr_env){.ctx = ctx,
                             .now = now,
                             .state = state,
                             .global = none_global,
                             .last = none_last,
                             .count = none_count,
                             .open_count = none_open,
                             .event_field = none_field};
}
