/*
 * parse.c -- the compiler: recursive descent over the tokens of lex.c,
 * building the flat node array of expr_int.h and checking it as it goes.
 *
 * Precedence, lowest first: or; and; not; comparison (== != < <= > >= in,
 * not in, contains, =~, is [not] null; not chained); + -; * /; unary -;
 * primary (literal, name, call, parenthesis, list).
 *
 * Invariant: a node is appended only after its operands, with its static
 * type, its clock dependence and its subtree height already checked, so a
 * finished expression needs no further pass except pointing list literals
 * at their final item array.  On the first error everything unwinds and
 * the half-built expression is freed; c->rc records the error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"
#include "util/fwtime.h"
#include "util/util.h"

#define NONE UINT32_MAX
#define MAX_SRC (64 * 1024) /* conditions are a line or five; this is only a guard */
#define MAX_HEIGHT 200      /* subtree height (fits uint8_t); bounds the evaluator's recursion */
#define MAX_NEST 100        /* parentheses, calls, unary operators; bounds the parser's */
#define MAX_ARGS 16

struct cc {
    struct expr__lexer lx;
    struct expr__token tok; /* the current token */
    const struct expr_resolver *r;
    struct expr *e;
    uint32_t nodes_cap;
    size_t nitems, items_cap;
    uint32_t nargs;
    size_t args_cap, deps_cap;
    int rc;   /* first error, 0 while all is well */
    int nest; /* current parser recursion through parentheses, calls and prefixes */
};

static uint32_t fail(struct cc *c, size_t at, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static uint32_t fail(struct cc *c, size_t at, int rc, const char *fmt, ...)
{
    char msg[sizeof c->lx.err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->rc = expr__error(c->lx.err, c->lx.src, c->lx.len, at, rc, "%s", msg);
    return NONE;
}

static int advance(struct cc *c)
{
    int rc = expr__lex(&c->lx, &c->tok);
    if (rc)
        c->rc = rc;
    return rc;
}

/* The source text of the current token, for messages (at most 40 bytes). */
#define TOK_FMT "%.*s"
#define TOK_ARG(c) (int)((c)->tok.len > 40 ? 40 : (c)->tok.len), (c)->lx.src + (c)->tok.pos

static struct expr__node *N(struct cc *c, uint32_t i)
{
    return &c->e->nodes[i];
}

/* Append a node with operands a and b (NONE when absent); checks the height bound. */
static uint32_t node(struct cc *c, int op, int type, size_t pos, uint32_t a, uint32_t b)
{
    unsigned h = 0;
    if (a != NONE && N(c, a)->depth > h)
        h = N(c, a)->depth;
    if (b != NONE && N(c, b)->depth > h)
        h = N(c, b)->depth;
    if (h + 1 > MAX_HEIGHT)
        return fail(c, pos, FW_EPARSE, "condition nested too deeply");
    if (c->e->nnodes == c->nodes_cap) {
        size_t cap = c->nodes_cap;
        c->e->nodes = xgrow(c->e->nodes, &cap, cap + 1, sizeof *c->e->nodes);
        c->nodes_cap = (uint32_t)cap;
    }
    uint32_t i = c->e->nnodes++;
    struct expr__node *n = N(c, i);
    memset(n, 0, sizeof *n);
    n->op = (uint8_t)op;
    n->type = (uint8_t)type;
    n->pos = (uint32_t)pos;
    n->a = a;
    n->b = b;
    n->depth = (uint8_t)(h + 1);
    n->moving = (a != NONE && N(c, a)->moving) || (b != NONE && N(c, b)->moving);
    return i;
}

static uint32_t literal(struct cc *c, size_t pos, const struct value *v)
{
    uint32_t i = node(c, OP_LIT, v->type, pos, NONE, NONE);
    if (i != NONE)
        N(c, i)->u.lit = *v;
    return i;
}

static void add_dep(struct cc *c, enum expr_ref kind, uint32_t id)
{
    struct expr *e = c->e;
    for (size_t i = 0; i < e->ndeps; i++)
        if (e->deps[i].kind == kind && e->deps[i].id == id)
            return;
    e->deps = xgrow(e->deps, &c->deps_cap, e->ndeps + 1, sizeof *e->deps);
    e->deps[e->ndeps].kind = kind;
    e->deps[e->ndeps].id = id;
    e->ndeps++;
}

static const char *ref_name(enum expr_ref kind)
{
    switch (kind) {
    case EXPR_REF_STATE: return "state key";
    case EXPR_REF_GLOBAL: return "global key";
    case EXPR_REF_TYPE: return "event type";
    case EXPR_REF_CLASS: return "event class";
    case EXPR_REF_ENTITY: return "entity";
    case EXPR_REF_METRIC: return "metric (declare it under engagement: metrics: in the pack)";
    case EXPR_REF_FEATURE: return "feature";
    case EXPR_REF_ENGAGE: return "engagement figure";
    }
    return "name";
}

/* Resolve a name and record it as a dependency; NONE (with the error set) when unknown. */
static uint32_t resolve(struct cc *c, size_t pos, enum expr_ref kind, const char *name, size_t len)
{
    int64_t id = c->r->resolve(c->r->ctx, kind, name, len);
    if (id < 0 || id > (int64_t)UINT32_MAX - 1)
        return fail(c, pos, FW_EPARSE, "unknown %s '%.*s'", ref_name(kind), (int)len, name);
    add_dep(c, kind, (uint32_t)id);
    return (uint32_t)id;
}

/* Types a value known only at run time may have (all but null). */
static const int any_types[] = {VAL_BOOL, VAL_NUM, VAL_STR, VAL_TIME, VAL_DUR, VAL_LIST};

/*
 * The static result type of arithmetic on ta and tb: the one type every
 * allowed combination of the possible operand types gives, EXPR__ANY when
 * they differ, -1 when none is allowed.
 */
static int arith_static(int op, int ta, int tb)
{
    if (ta == VAL_NULL || tb == VAL_NULL)
        return VAL_NULL;
    int result = -1;
    for (size_t i = 0; i < ARRAY_SIZE(any_types); i++) {
        int a = ta == EXPR__ANY ? any_types[i] : ta;
        if (ta != EXPR__ANY && i)
            break;
        for (size_t k = 0; k < ARRAY_SIZE(any_types); k++) {
            int b = tb == EXPR__ANY ? any_types[k] : tb;
            if (tb != EXPR__ANY && k)
                break;
            int t = expr__arith_type(op, a, b);
            if (t < 0)
                continue;
            result = result < 0 || result == t ? t : EXPR__ANY;
        }
    }
    return result;
}

static uint32_t arith(struct cc *c, int op, size_t oppos, uint32_t a, uint32_t b)
{
    int ta = N(c, a)->type, tb = b == NONE ? VAL_NUM : N(c, b)->type;
    int t = arith_static(op, ta, tb);
    if (t < 0) {
        if (op == OP_NEG)
            return fail(c, oppos, FW_ETYPE, "type mismatch: cannot negate a %s",
                        expr__type_name(ta));
        if (ta != EXPR__ANY && tb != EXPR__ANY)
            return fail(c, oppos, FW_ETYPE, "type mismatch: %s %s %s", expr__type_name(ta),
                        expr__op_text(op), expr__type_name(tb));
        return fail(c, oppos, FW_ETYPE, "type mismatch: cannot use a %s with '%s'",
                    expr__type_name(ta == EXPR__ANY ? tb : ta), expr__op_text(op));
    }
    /*
     * A clock-dependent value grows by 1 ms per ms; scaled, it would grow
     * by any rate and its crossing times would need fractions.  Nobody
     * needs it, so it is refused rather than approximated.
     */
    if ((op == OP_MUL || op == OP_DIV) && (N(c, a)->moving || (b != NONE && N(c, b)->moving)))
        return fail(c, oppos, FW_ETYPE, "cannot scale a clock-dependent value");
    return node(c, op, t, N(c, a)->pos, a, b);
}

static uint32_t compare(struct cc *c, int op, size_t oppos, uint32_t a, uint32_t b)
{
    int ta = N(c, a)->type, tb = N(c, b)->type;
    const char *o = expr__op_text(op);
    if (ta == VAL_NULL || tb == VAL_NULL)
        return fail(c, oppos, FW_ETYPE, "comparison with null is never true; use 'is null'");
    int known = ta != EXPR__ANY ? ta : tb;
    if (known == VAL_LIST)
        return fail(c, oppos, FW_ETYPE, "lists cannot be compared with '%s'; use 'in' or 'contains'",
                    o);
    if (known == VAL_BOOL && op != OP_EQ && op != OP_NE)
        return fail(c, oppos, FW_ETYPE, "true/false values cannot be compared with '%s'", o);
    if (ta != EXPR__ANY && tb != EXPR__ANY && !expr__cmp_ok(op, ta, tb))
        return fail(c, oppos, FW_ETYPE, "type mismatch: %s %s %s", expr__type_name(ta), o,
                    expr__type_name(tb));
    uint32_t i = node(c, op, VAL_BOOL, N(c, a)->pos, a, b);
    if (i != NONE)
        N(c, i)->moving = 0; /* a truth value does not move; its changes show in `next` */
    return i;
}

/*
 * A node matching operand a against the regular expression pat (n bytes,
 * from the literal at patpos), compiled here once.  The caller has checked
 * a's type.
 */
static uint32_t regex_node(struct cc *c, size_t patpos, uint32_t a, const char *pat, size_t n)
{
    struct expr__re *re;
    char why[160];
    size_t off;
    if (expr__re_compile(pat, n, (uint32_t)patpos, &re, &off, why, sizeof why)) {
        /*
         * Point at the offending byte when the literal has no escapes (its
         * source is the pattern between quotes); else at the literal.
         */
        const char *raw = c->lx.src + patpos;
        size_t at = patpos;
        if (patpos + n + 2 <= c->lx.len && raw[n + 1] == raw[0] && !memchr(raw + 1, '\\', n))
            at = patpos + 1 + off;
        return fail(c, at, FW_EPARSE, "bad regex '%.*s%s': %s", (int)(n > 60 ? 60 : n), pat,
                    n > 60 ? "..." : "", why);
    }
    uint32_t i = node(c, OP_MATCH, VAL_BOOL, N(c, a)->pos, a, NONE);
    if (i == NONE) {
        expr__re_free(re);
        return NONE;
    }
    N(c, i)->u.re = re;
    N(c, i)->moving = 0;
    return i;
}

/* Operands of and/or/not must be truth values (or unknown until run time). */
static int check_truth(struct cc *c, uint32_t a, const char *op)
{
    int t = N(c, a)->type;
    if (t == VAL_BOOL || t == EXPR__ANY || t == VAL_NULL)
        return 0;
    fail(c, N(c, a)->pos, FW_ETYPE, "'%s' needs true/false operands, not a %s", op,
         expr__type_name(t));
    return -1;
}

static uint32_t parse_or(struct cc *c);

/* ---- primaries ---- */

static uint32_t parse_list(struct cc *c)
{
    size_t pos = c->tok.pos;
    struct value tmp[64], *vals = tmp;
    size_t n = 0, cap = ARRAY_SIZE(tmp);
    uint32_t out = NONE;
    if (advance(c))
        return NONE;
    while (c->tok.kind != TK_RBRACKET) {
        size_t epos = c->tok.pos;
        int neg = 0;
        if (c->tok.kind == TK_MINUS) {
            neg = 1;
            if (advance(c))
                goto out;
        }
        struct value v = {.type = VAL_NULL};
        switch (c->tok.kind) {
        case TK_NUM: v.type = VAL_NUM; v.u.num = neg ? -c->tok.num : c->tok.num; break;
        case TK_DUR: v.type = VAL_DUR; v.u.ms = neg ? -c->tok.ms : c->tok.ms; break;
        case TK_STR: v.type = VAL_STR; v.u.str.ptr = c->tok.str; v.u.str.len = c->tok.slen; break;
        case TK_TRUE: v.type = VAL_BOOL; v.u.b = 1; break;
        case TK_FALSE: v.type = VAL_BOOL; v.u.b = 0; break;
        case TK_NULL: break;
        case TK_EOF:
            fail(c, epos, FW_EPARSE, "expected ']' to close the list");
            goto out;
        default:
            fail(c, epos, FW_EPARSE, "list elements must be literals (numbers, strings, "
                                     "durations, true, false, null)");
            goto out;
        }
        if (neg && v.type != VAL_NUM && v.type != VAL_DUR) {
            fail(c, epos, FW_ETYPE, "type mismatch: cannot negate a %s", expr__type_name(v.type));
            goto out;
        }
        if (n == cap) {
            if (vals == tmp) {
                vals = xmalloc(2 * cap * sizeof *vals);
                memcpy(vals, tmp, sizeof tmp);
                cap *= 2;
            } else {
                vals = xgrow(vals, &cap, n + 1, sizeof *vals);
            }
        }
        vals[n++] = v;
        if (advance(c))
            goto out;
        if (c->tok.kind == TK_COMMA) {
            if (advance(c))
                goto out;
            if (c->tok.kind == TK_RBRACKET) {
                fail(c, c->tok.pos, FW_EPARSE, "expected a list element after ','");
                goto out;
            }
        } else if (c->tok.kind != TK_RBRACKET) {
            fail(c, c->tok.pos, FW_EPARSE, "expected ',' or ']' in list");
            goto out;
        }
    }
    /* Items are appended to one array; pointers are set once it stops moving. */
    c->e->items = xgrow(c->e->items, &c->items_cap, c->nitems + n + 1, sizeof *c->e->items);
    memcpy(c->e->items + c->nitems, vals, n * sizeof *vals);
    struct value lv = {.type = VAL_LIST};
    lv.u.list.n = n;
    out = literal(c, pos, &lv);
    if (out != NONE)
        N(c, out)->a = (uint32_t)c->nitems;
    c->nitems += n;
    if (out != NONE && advance(c))
        out = NONE;
out:
    if (vals != tmp)
        free(vals);
    return out;
}

static const struct {
    const char *name;
    size_t len;
    int type;
} event_fields[] = {
    {"id", 2, VAL_STR},     {"type", 4, VAL_STR}, {"subject", 7, VAL_STR},
    {"source", 6, VAL_STR}, {"time", 4, VAL_TIME},
};

/*
 * An engagement figure node.  Its value moves with day boundaries and
 * with the customer's engagement events, so it is timed and depends on
 * EXPR_REF_ENGAGE (id 1 for health and 2 for churn_risk, which read everything).
 */
static uint32_t engage_node(struct cc *c, size_t pos, int fn, int type, uint32_t id, int a, int b)
{
    uint32_t i = node(c, OP_ENGAGE, (uint8_t)type, pos, NONE, NONE);
    if (i == NONE)
        return NONE;
    N(c, i)->u.eng.fn = (uint8_t)fn;
    N(c, i)->u.eng.id = id;
    N(c, i)->u.eng.a = (int16_t)a;
    N(c, i)->u.eng.b = (int16_t)b;
    if (fn == EXPR_ENG_IDLE)
        N(c, i)->moving = 1;
    add_dep(c, EXPR_REF_ENGAGE, fn == EXPR_ENG_HEALTH ? 1 : fn == EXPR_ENG_CHURN ? 2 : 0);
    c->e->timed = 1;
    return i;
}

/* A dotted name: event.<field>, global.<key> or a customer state key. */
static uint32_t parse_path(struct cc *c)
{
    const char *s = c->lx.src + c->tok.pos;
    size_t n = c->tok.len, pos = c->tok.pos;
    uint32_t i;
    if (n == 6 && !memcmp(s, "health", 6)) {
        /* The health score (docs/engagement.md): a name of its own, not a state key. */
        i = engage_node(c, pos, EXPR_ENG_HEALTH, VAL_NUM, 0, 0, 0);
        if (i != NONE && advance(c))
            return NONE;
        return i;
    }
    if (n == 10 && !memcmp(s, "churn_risk", 10)) {
        /* The churn model's score (docs/model.md, "Scoring customers live"), like health. */
        i = engage_node(c, pos, EXPR_ENG_CHURN, VAL_NUM, 0, 0, 0);
        if (i != NONE && advance(c))
            return NONE;
        return i;
    }
    if ((n == 5 && !memcmp(s, "event", 5)) || (n == 6 && !memcmp(s, "global", 6)))
        return fail(c, pos, FW_EPARSE, "'%.*s' needs a field after a dot, like %s", (int)n, s,
                    n == 5 ? "event.type" : "global.outage.zips");
    if (n > 6 && !memcmp(s, "event.", 6)) {
        const char *f = s + 6;
        size_t fn = n - 6;
        int type = -1;
        for (size_t k = 0; k < ARRAY_SIZE(event_fields); k++)
            if (fn == event_fields[k].len && !memcmp(f, event_fields[k].name, fn))
                type = event_fields[k].type;
        if (fn > 5 && !memcmp(f, "data.", 5))
            type = EXPR__ANY;
        if (type < 0)
            return fail(c, pos + 6, FW_EPARSE,
                        "unknown event field '%.*s'; use id, type, subject, source, time or "
                        "data.<name>",
                        (int)fn, f);
        i = node(c, OP_EVENT, type, pos, NONE, NONE);
        if (i == NONE)
            return NONE;
        /* The pool has room: field names and strings are disjoint parts of the source. */
        char *copy = c->lx.pool + c->lx.pool_len;
        memcpy(copy, f, fn);
        c->lx.pool_len += fn;
        N(c, i)->u.field.ptr = copy;
        N(c, i)->u.field.len = fn;
    } else if (n > 7 && !memcmp(s, "global.", 7)) {
        uint32_t id = resolve(c, pos, EXPR_REF_GLOBAL, s + 7, n - 7);
        if (id == NONE)
            return NONE;
        i = node(c, OP_GLOBAL, EXPR__ANY, pos, NONE, NONE);
        if (i != NONE)
            N(c, i)->u.id = id;
    } else {
        uint32_t id = resolve(c, pos, EXPR_REF_STATE, s, n);
        if (id == NONE)
            return NONE;
        i = node(c, OP_STATE, EXPR__ANY, pos, NONE, NONE);
        if (i != NONE)
            N(c, i)->u.id = id;
    }
    if (i != NONE && advance(c))
        return NONE;
    return i;
}

enum fn {
    FN_NOW,
    FN_AGE,
    FN_LAST,
    FN_CHANGED_AT,
    FN_COUNT,
    FN_OPEN_COUNT,
    FN_HAS_OPEN,
    FN_UPPER,
    FN_LOWER,
    FN_LEN,
    FN_COALESCE,
    FN_MATCHES,
    FN_USAGE_DECLINE,
    FN_USAGE_ANOMALY,
    FN_USAGE_TOTAL,
    FN_FEATURE_LAST_USED,
    FN_FEATURE_IDLE,
    FN_PURCHASED,
    FN_SIGNUP,
    FN_ONBOARDING_LEFT,
};

static const struct {
    const char *name;
    int fn;
    int min, max; /* argument count; max -1: any number */
} functions[] = {
    {"now", FN_NOW, 0, 0},           {"age", FN_AGE, 1, 1},
    {"last", FN_LAST, 1, 1},         {"changed_at", FN_CHANGED_AT, 1, 1},
    {"count", FN_COUNT, 2, 2},       {"open_count", FN_OPEN_COUNT, 1, 1},
    {"has_open", FN_HAS_OPEN, 1, 1}, {"upper", FN_UPPER, 1, 1},
    {"lower", FN_LOWER, 1, 1},       {"len", FN_LEN, 1, 1},
    {"coalesce", FN_COALESCE, 1, -1}, {"matches", FN_MATCHES, 2, 2},
    {"usage_decline", FN_USAGE_DECLINE, 3, 3}, {"usage_anomaly", FN_USAGE_ANOMALY, 2, 2},
    {"usage_total", FN_USAGE_TOTAL, 2, 2},     {"feature_last_used", FN_FEATURE_LAST_USED, 1, 1},
    {"feature_idle", FN_FEATURE_IDLE, 1, 1},   {"purchased", FN_PURCHASED, 1, 1},
    {"signup", FN_SIGNUP, 0, 0},               {"onboarding_left", FN_ONBOARDING_LEFT, 0, 0},
};

/* Most days a window may span: the rollups are a year at most (rules_finish checks the pack's). */
#define MAX_DAYS 366

/* A day-count argument: a whole number literal from 1 to MAX_DAYS. */
static int days_arg(struct cc *c, const char *fname, uint32_t a, int *out)
{
    const struct expr__node *n = N(c, a);
    if (n->op != OP_LIT || n->type != VAL_NUM || n->u.lit.u.num < 1 ||
        n->u.lit.u.num > MAX_DAYS || n->u.lit.u.num != (double)(int)n->u.lit.u.num) {
        fail(c, n->pos, FW_ETYPE, "%s() needs a whole number of days from 1 to %d, like 7", fname,
             MAX_DAYS);
        return -1;
    }
    *out = (int)n->u.lit.u.num;
    return 0;
}

/* The string of a literal argument, or NULL when the argument is something else. */
static const struct value *lit_str(struct cc *c, uint32_t a)
{
    const struct expr__node *n = N(c, a);
    return n->op == OP_LIT && n->type == VAL_STR ? &n->u.lit : NULL;
}

/* Check a function's operand type: one of the allowed types, or unknown until run time. */
static int want(struct cc *c, const char *fname, uint32_t a, int t1, int t2, const char *what)
{
    int t = N(c, a)->type;
    if (t == EXPR__ANY || t == VAL_NULL || t == t1 || t == t2)
        return 0;
    fail(c, N(c, a)->pos, FW_ETYPE, "%s() needs %s, not a %s", fname, what, expr__type_name(t));
    return -1;
}

/* A name argument given as a string literal: last("payment.completed"), count("contact", 7d). */
static uint32_t name_arg(struct cc *c, const char *fname, uint32_t a, enum expr_ref kind,
                         const char *example)
{
    const struct value *v = lit_str(c, a);
    if (!v)
        return fail(c, N(c, a)->pos, FW_ETYPE, "%s() needs %s in quotes, like %s", fname,
                    kind == EXPR_REF_TYPE     ? "an event type"
                    : kind == EXPR_REF_CLASS  ? "an event class"
                    : kind == EXPR_REF_METRIC ? "a metric"
                    : kind == EXPR_REF_FEATURE ? "a feature"
                                              : "an entity",
                    example);
    return resolve(c, N(c, a)->pos, kind, v->u.str.ptr, v->u.str.len);
}

static uint32_t parse_call(struct cc *c)
{
    const char *name = c->lx.src + c->tok.pos;
    size_t nlen = c->tok.len, pos = c->tok.pos;
    int f = -1;
    uint32_t args[MAX_ARGS], i = NONE, id;
    int nargs = 0;
    for (size_t k = 0; k < ARRAY_SIZE(functions); k++)
        if (strlen(functions[k].name) == nlen && !memcmp(functions[k].name, name, nlen))
            f = (int)k;
    if (f < 0)
        return fail(c, pos, FW_EPARSE, "unknown function '%.*s'", (int)nlen, name);
    const char *fname = functions[f].name;
    if (advance(c) || advance(c)) /* the name, then '(' */
        return NONE;
    if (++c->nest > MAX_NEST)
        return fail(c, pos, FW_EPARSE, "condition nested too deeply");
    if (c->tok.kind != TK_RPAREN) {
        for (;;) {
            if (nargs == MAX_ARGS)
                return fail(c, c->tok.pos, FW_ETYPE, "too many arguments to %s()", fname);
            uint32_t a = parse_or(c);
            if (a == NONE)
                return NONE;
            args[nargs++] = a;
            if (c->tok.kind == TK_COMMA) {
                if (advance(c))
                    return NONE;
                continue;
            }
            if (c->tok.kind == TK_RPAREN)
                break;
            return fail(c, c->tok.pos, FW_EPARSE, "expected ')' after arguments");
        }
    }
    c->nest--;
    if (nargs < functions[f].min || (functions[f].max >= 0 && nargs > functions[f].max)) {
        if (functions[f].max < 0)
            return fail(c, pos, FW_ETYPE, "%s() takes at least %d argument%s, got %d", fname,
                        functions[f].min, functions[f].min == 1 ? "" : "s", nargs);
        return fail(c, pos, FW_ETYPE, "%s() takes %d argument%s, got %d", fname,
                    functions[f].min, functions[f].min == 1 ? "" : "s", nargs);
    }
    switch (functions[f].fn) {
    case FN_NOW:
        i = node(c, OP_NOW, VAL_TIME, pos, NONE, NONE);
        if (i != NONE)
            N(c, i)->moving = 1;
        c->e->timed = 1;
        break;
    case FN_AGE:
        if (want(c, fname, args[0], VAL_TIME, VAL_TIME, "a time"))
            return NONE;
        i = node(c, OP_AGE, VAL_DUR, pos, args[0], NONE);
        if (i != NONE)
            N(c, i)->moving = 1;
        c->e->timed = 1;
        break;
    case FN_LAST:
        if ((id = name_arg(c, fname, args[0], EXPR_REF_TYPE, "last(\"payment.completed\")")) ==
            NONE)
            return NONE;
        if ((i = node(c, OP_LAST, VAL_TIME, pos, NONE, NONE)) != NONE)
            N(c, i)->u.id = id;
        break;
    case FN_CHANGED_AT: {
        const struct expr__node *a = N(c, args[0]);
        if (a->op != OP_STATE && a->op != OP_GLOBAL)
            return fail(c, a->pos, FW_ETYPE,
                        "changed_at() needs a state key, like changed_at(esim.status)");
        id = a->u.id;
        int op = a->op == OP_STATE ? OP_CHANGED_STATE : OP_CHANGED_GLOBAL;
        if ((i = node(c, op, VAL_TIME, pos, NONE, NONE)) != NONE)
            N(c, i)->u.id = id;
        break;
    }
    case FN_COUNT: {
        if ((id = name_arg(c, fname, args[0], EXPR_REF_CLASS, "count(\"contact\", 7d)")) == NONE)
            return NONE;
        const struct expr__node *w = N(c, args[1]);
        if (w->op != OP_LIT || w->type != VAL_DUR || w->u.lit.u.ms <= 0)
            return fail(c, w->pos, FW_ETYPE,
                        "count() needs a positive window duration, like count(\"contact\", 7d)");
        int64_t window = w->u.lit.u.ms;
        /* The engine keeps a customer's event times for the longest window: bound it. */
        if (window > EXPR_MAX_WINDOW)
            return fail(c, w->pos, FW_ETYPE, "count() window over the limit of %lldd",
                        (long long)(EXPR_MAX_WINDOW / FW_DAY));
        if ((i = node(c, OP_COUNT, VAL_NUM, pos, NONE, NONE)) != NONE) {
            N(c, i)->u.count.id = id;
            N(c, i)->u.count.window = window;
        }
        c->e->timed = 1;
        break;
    }
    case FN_OPEN_COUNT:
    case FN_HAS_OPEN: {
        int has = functions[f].fn == FN_HAS_OPEN;
        if ((id = name_arg(c, fname, args[0], EXPR_REF_ENTITY,
                           has ? "has_open(\"ticket\")" : "open_count(\"ticket\")")) == NONE)
            return NONE;
        if ((i = node(c, has ? OP_HAS_OPEN : OP_OPEN_COUNT, has ? VAL_BOOL : VAL_NUM, pos, NONE,
                      NONE)) != NONE)
            N(c, i)->u.id = id;
        break;
    }
    case FN_UPPER:
    case FN_LOWER:
        if (want(c, fname, args[0], VAL_STR, VAL_STR, "a string"))
            return NONE;
        i = node(c, functions[f].fn == FN_UPPER ? OP_UPPER : OP_LOWER, VAL_STR, pos, args[0],
                 NONE);
        break;
    case FN_LEN:
        if (want(c, fname, args[0], VAL_STR, VAL_LIST, "a string or a list"))
            return NONE;
        i = node(c, OP_LEN, VAL_NUM, pos, args[0], NONE);
        break;
    case FN_COALESCE: {
        int type = VAL_NULL, moving = 0;
        unsigned h = 0;
        for (int k = 0; k < nargs; k++) {
            const struct expr__node *a = N(c, args[k]);
            if (a->type != VAL_NULL)
                type = type == VAL_NULL || type == a->type ? a->type : EXPR__ANY;
            moving |= a->moving;
            if (a->depth > h)
                h = a->depth;
        }
        if ((i = node(c, OP_COALESCE, type, pos, NONE, NONE)) == NONE)
            return NONE;
        if (h + 1 > MAX_HEIGHT)
            return fail(c, pos, FW_EPARSE, "condition nested too deeply");
        c->e->args = xgrow(c->e->args, &c->args_cap, c->nargs + (size_t)nargs, sizeof *args);
        memcpy(c->e->args + c->nargs, args, (size_t)nargs * sizeof *args);
        N(c, i)->a = c->nargs;
        N(c, i)->b = (uint32_t)nargs;
        N(c, i)->moving = (uint8_t)moving;
        N(c, i)->depth = (uint8_t)(h + 1);
        c->nargs += (uint32_t)nargs;
        break;
    }
    case FN_USAGE_DECLINE:
    case FN_USAGE_ANOMALY:
    case FN_USAGE_TOTAL: {
        int fn = functions[f].fn, da = 0, db = 0;
        if ((id = name_arg(c, fname, args[0], EXPR_REF_METRIC,
                           fn == FN_USAGE_DECLINE   ? "usage_decline(\"data_mb\", 7, 28)"
                           : fn == FN_USAGE_ANOMALY ? "usage_anomaly(\"data_mb\", 28)"
                                                    : "usage_total(\"data_mb\", 7)")) == NONE)
            return NONE;
        if (days_arg(c, fname, args[1], &da) || (fn == FN_USAGE_DECLINE && days_arg(c, fname, args[2], &db)))
            return NONE;
        if (fn == FN_USAGE_DECLINE && da + db > MAX_DAYS)
            return fail(c, pos, FW_ETYPE, "%s() spans %d days; at most %d", fname, da + db,
                        MAX_DAYS);
        if (fn == FN_USAGE_ANOMALY && da < 3)
            return fail(c, N(c, args[1])->pos, FW_ETYPE,
                        "usage_anomaly() needs a baseline of at least 3 days for a median");
        i = engage_node(c, pos,
                        fn == FN_USAGE_DECLINE   ? EXPR_ENG_DECLINE
                        : fn == FN_USAGE_ANOMALY ? EXPR_ENG_ANOMALY
                                                 : EXPR_ENG_TOTAL,
                        VAL_NUM, id, da, db);
        break;
    }
    case FN_FEATURE_LAST_USED:
    case FN_FEATURE_IDLE:
    case FN_PURCHASED: {
        int fn = functions[f].fn;
        if ((id = name_arg(c, fname, args[0], EXPR_REF_FEATURE, "purchased(\"hotspot\")")) ==
            NONE)
            return NONE;
        i = engage_node(c, pos,
                        fn == FN_FEATURE_LAST_USED ? EXPR_ENG_LAST_USED
                        : fn == FN_FEATURE_IDLE    ? EXPR_ENG_IDLE
                                                   : EXPR_ENG_PURCHASED,
                        fn == FN_FEATURE_LAST_USED ? VAL_TIME
                        : fn == FN_FEATURE_IDLE    ? VAL_DUR
                                                   : VAL_BOOL,
                        id, 0, 0);
        break;
    }
    case FN_SIGNUP:
        i = engage_node(c, pos, EXPR_ENG_SIGNUP, VAL_TIME, 0, 0, 0);
        break;
    case FN_ONBOARDING_LEFT:
        i = engage_node(c, pos, EXPR_ENG_STEPS_LEFT, VAL_NUM, 0, 0, 0);
        break;
    case FN_MATCHES: {
        const struct value *re = lit_str(c, args[1]);
        if (!re)
            return fail(c, N(c, args[1])->pos, FW_ETYPE,
                        "matches() needs a regular expression in quotes as its second argument");
        if (want(c, fname, args[0], VAL_STR, VAL_STR, "a string"))
            return NONE;
        i = regex_node(c, N(c, args[1])->pos, args[0], re->u.str.ptr, re->u.str.len);
        if (i != NONE)
            N(c, i)->pos = (uint32_t)pos;
        break;
    }
    }
    if (i == NONE || advance(c)) /* the ')' */
        return NONE;
    return i;
}

static uint32_t parse_primary(struct cc *c)
{
    struct value v = {.type = VAL_NULL};
    size_t pos = c->tok.pos;
    uint32_t i;
    switch (c->tok.kind) {
    case TK_NUM: v.type = VAL_NUM; v.u.num = c->tok.num; break;
    case TK_DUR: v.type = VAL_DUR; v.u.ms = c->tok.ms; break;
    case TK_STR: v.type = VAL_STR; v.u.str.ptr = c->tok.str; v.u.str.len = c->tok.slen; break;
    case TK_TRUE: v.type = VAL_BOOL; v.u.b = 1; break;
    case TK_FALSE: v.type = VAL_BOOL; v.u.b = 0; break;
    case TK_NULL: break;
    case TK_LBRACKET:
        return parse_list(c);
    case TK_NAME:
        return c->tok.call ? parse_call(c) : parse_path(c);
    case TK_LPAREN:
        if (++c->nest > MAX_NEST)
            return fail(c, pos, FW_EPARSE, "condition nested too deeply");
        if (advance(c) || (i = parse_or(c)) == NONE)
            return NONE;
        if (c->tok.kind != TK_RPAREN)
            return fail(c, c->tok.pos, FW_EPARSE, "expected ')' to close '('");
        c->nest--;
        N(c, i)->pos = (uint32_t)pos;
        return advance(c) ? NONE : i;
    case TK_EOF:
        return fail(c, pos, FW_EPARSE, "unexpected end of condition; expected a value");
    default:
        return fail(c, pos, FW_EPARSE, "expected a value, got '" TOK_FMT "'", TOK_ARG(c));
    }
    i = literal(c, pos, &v);
    return i == NONE || advance(c) ? NONE : i;
}

/* ---- operators, lowest precedence last ---- */

static uint32_t parse_unary(struct cc *c)
{
    if (c->tok.kind != TK_MINUS)
        return parse_primary(c);
    size_t pos = c->tok.pos;
    if (++c->nest > MAX_NEST)
        return fail(c, pos, FW_EPARSE, "condition nested too deeply");
    uint32_t a;
    if (advance(c) || (a = parse_unary(c)) == NONE)
        return NONE;
    c->nest--;
    struct expr__node *n = N(c, a);
    /* Fold `-1` and `-2h` into literals. */
    if (n->op == OP_LIT && (n->type == VAL_NUM || n->type == VAL_DUR)) {
        if (n->type == VAL_NUM)
            n->u.lit.u.num = -n->u.lit.u.num;
        else
            n->u.lit.u.ms = -n->u.lit.u.ms;
        n->pos = (uint32_t)pos;
        return a;
    }
    uint32_t i = arith(c, OP_NEG, pos, a, NONE);
    if (i != NONE)
        N(c, i)->pos = (uint32_t)pos;
    return i;
}

static uint32_t parse_mul(struct cc *c)
{
    uint32_t a = parse_unary(c), b;
    while (a != NONE && (c->tok.kind == TK_STAR || c->tok.kind == TK_SLASH)) {
        int op = c->tok.kind == TK_STAR ? OP_MUL : OP_DIV;
        size_t pos = c->tok.pos;
        if (advance(c) || (b = parse_unary(c)) == NONE)
            return NONE;
        a = arith(c, op, pos, a, b);
    }
    return a;
}

static uint32_t parse_add(struct cc *c)
{
    uint32_t a = parse_mul(c), b;
    while (a != NONE && (c->tok.kind == TK_PLUS || c->tok.kind == TK_MINUS)) {
        int op = c->tok.kind == TK_PLUS ? OP_ADD : OP_SUB;
        size_t pos = c->tok.pos;
        if (advance(c) || (b = parse_mul(c)) == NONE)
            return NONE;
        a = arith(c, op, pos, a, b);
    }
    return a;
}

static int is_comparison(int kind)
{
    return (kind >= TK_EQ && kind <= TK_MATCH) || kind == TK_IN || kind == TK_CONTAINS ||
           kind == TK_IS;
}

static uint32_t parse_cmp(struct cc *c)
{
    uint32_t a = parse_add(c), b, i;
    if (a == NONE)
        return NONE;
    size_t pos = c->tok.pos;
    int ta = N(c, a)->type, tb;
    switch (c->tok.kind) {
    case TK_EQ:
    case TK_NE:
    case TK_LT:
    case TK_LE:
    case TK_GT:
    case TK_GE: {
        int op = OP_EQ + (c->tok.kind - TK_EQ);
        if (advance(c) || (b = parse_add(c)) == NONE)
            return NONE;
        i = compare(c, op, pos, a, b);
        break;
    }
    case TK_IN:
    case TK_NOT: {
        int negate = c->tok.kind == TK_NOT;
        if (advance(c))
            return NONE;
        if (negate) {
            if (c->tok.kind != TK_IN)
                return fail(c, c->tok.pos, FW_EPARSE, "expected 'in' after 'not'");
            if (advance(c))
                return NONE;
        }
        size_t bpos = c->tok.pos;
        if ((b = parse_add(c)) == NONE)
            return NONE;
        tb = N(c, b)->type;
        if (ta == VAL_LIST)
            return fail(c, pos, FW_ETYPE, "'in' needs a single value on the left, not a list");
        if (tb != VAL_LIST && tb != EXPR__ANY && tb != VAL_NULL)
            return fail(c, bpos, FW_ETYPE, "'in' needs a list on the right, not a %s",
                        expr__type_name(tb));
        i = node(c, OP_IN, VAL_BOOL, N(c, a)->pos, a, b);
        if (i != NONE)
            N(c, i)->moving = 0;
        if (i != NONE && negate)
            i = node(c, OP_NOT, VAL_BOOL, N(c, a)->pos, i, NONE);
        break;
    }
    case TK_CONTAINS:
        if (advance(c) || (b = parse_add(c)) == NONE)
            return NONE;
        tb = N(c, b)->type;
        if (ta != VAL_STR && ta != VAL_LIST && ta != EXPR__ANY && ta != VAL_NULL)
            return fail(c, pos, FW_ETYPE,
                        "'contains' needs a string or a list on the left, not a %s",
                        expr__type_name(ta));
        if ((ta == VAL_STR && tb != VAL_STR && tb != EXPR__ANY && tb != VAL_NULL) ||
            (ta == VAL_LIST && tb == VAL_LIST))
            return fail(c, pos, FW_ETYPE, "type mismatch: %s contains %s", expr__type_name(ta),
                        expr__type_name(tb));
        i = node(c, OP_CONTAINS, VAL_BOOL, N(c, a)->pos, a, b);
        if (i != NONE)
            N(c, i)->moving = 0;
        break;
    case TK_MATCH:
        if (advance(c))
            return NONE;
        if (c->tok.kind != TK_STR)
            return fail(c, c->tok.pos, FW_ETYPE,
                        "'=~' needs a regular expression in quotes on the right");
        if (ta != EXPR__ANY && ta != VAL_STR && ta != VAL_NULL)
            return fail(c, pos, FW_ETYPE, "type mismatch: %s =~ string", expr__type_name(ta));
        i = regex_node(c, c->tok.pos, a, c->tok.str, c->tok.slen);
        if (i == NONE || advance(c))
            return NONE;
        break;
    case TK_IS: {
        if (advance(c))
            return NONE;
        int op = OP_IS_NULL;
        if (c->tok.kind == TK_NOT) {
            op = OP_NOT_NULL;
            if (advance(c))
                return NONE;
        }
        if (c->tok.kind != TK_NULL)
            return fail(c, c->tok.pos, FW_EPARSE, "expected 'null' after '%s'",
                        op == OP_IS_NULL ? "is" : "is not");
        i = node(c, op, VAL_BOOL, N(c, a)->pos, a, NONE);
        if (i != NONE)
            N(c, i)->moving = 0;
        if (i == NONE || advance(c))
            return NONE;
        break;
    }
    default:
        return a;
    }
    if (i != NONE && is_comparison(c->tok.kind))
        return fail(c, c->tok.pos, FW_EPARSE,
                    "comparisons cannot be chained; combine them with 'and'");
    return i;
}

static uint32_t parse_not(struct cc *c)
{
    if (c->tok.kind != TK_NOT)
        return parse_cmp(c);
    size_t pos = c->tok.pos;
    if (++c->nest > MAX_NEST)
        return fail(c, pos, FW_EPARSE, "condition nested too deeply");
    uint32_t a;
    if (advance(c) || (a = parse_not(c)) == NONE)
        return NONE;
    c->nest--;
    if (check_truth(c, a, "not"))
        return NONE;
    return node(c, OP_NOT, VAL_BOOL, pos, a, NONE);
}

static uint32_t parse_and(struct cc *c)
{
    uint32_t a = parse_not(c), b;
    while (a != NONE && c->tok.kind == TK_AND) {
        if (advance(c) || (b = parse_not(c)) == NONE)
            return NONE;
        if (check_truth(c, a, "and") || check_truth(c, b, "and"))
            return NONE;
        a = node(c, OP_AND, VAL_BOOL, N(c, a)->pos, a, b);
    }
    return a;
}

static uint32_t parse_or(struct cc *c)
{
    uint32_t a = parse_and(c), b;
    while (a != NONE && c->tok.kind == TK_OR) {
        if (advance(c) || (b = parse_and(c)) == NONE)
            return NONE;
        if (check_truth(c, a, "or") || check_truth(c, b, "or"))
            return NONE;
        a = node(c, OP_OR, VAL_BOOL, N(c, a)->pos, a, b);
    }
    return a;
}

static int compile(const char *src, size_t len, const struct expr_resolver *r, struct expr **out,
                   struct expr_error *err, int condition)
{
    struct cc c;
    memset(&c, 0, sizeof c);
    memset(err, 0, sizeof *err);
    if (len > MAX_SRC)
        return expr__error(err, src, len, 0, FW_EPARSE, "condition longer than %d bytes", MAX_SRC);
    c.e = xcalloc(1, sizeof *c.e);
    c.e->pool = xmalloc(len + 1);
    c.lx.src = src;
    c.lx.len = len;
    c.lx.pool = c.e->pool;
    c.lx.err = err;
    c.r = r;
    uint32_t root = NONE;
    if (!advance(&c)) {
        if (c.tok.kind == TK_EOF)
            fail(&c, 0, FW_EPARSE, "empty condition");
        else
            root = parse_or(&c);
    }
    if (root != NONE && c.tok.kind != TK_EOF)
        root = fail(&c, c.tok.pos, FW_EPARSE, "unexpected '" TOK_FMT "' after a complete %s",
                    TOK_ARG(&c), condition ? "condition" : "expression");
    if (root != NONE && condition) {
        int t = N(&c, root)->type;
        if (t != VAL_BOOL && t != EXPR__ANY)
            root = fail(&c, N(&c, root)->pos, FW_ETYPE,
                        "a condition must be true or false, but this is a %s",
                        expr__type_name(t));
    }
    if (root == NONE) {
        expr_free(c.e);
        return c.rc ? c.rc : FW_EPARSE;
    }
    struct expr *e = c.e;
    e->root = root;
    for (uint32_t i = 0; i < e->nnodes; i++)
        if (e->nodes[i].op == OP_LIT && e->nodes[i].type == VAL_LIST)
            e->nodes[i].u.lit.u.list.items = e->items + e->nodes[i].a;
    *out = e;
    return 0;
}

int expr_compile(const char *src, size_t len, const struct expr_resolver *r, struct expr **out,
                 struct expr_error *err)
{
    return compile(src, len, r, out, err, 1);
}

int expr_compile_value(const char *src, size_t len, const struct expr_resolver *r,
                       struct expr **out, struct expr_error *err)
{
    return compile(src, len, r, out, err, 0);
}
