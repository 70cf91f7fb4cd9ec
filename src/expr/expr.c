/*
 * expr.c -- the parts of a compiled expression that are neither compiling
 * nor evaluating: freeing, introspection (dependencies, timedness, count
 * windows), and the type tables the compiler and evaluator share.
 *
 * The operand-type tables themselves (expr__arith_type, expr__cmp_ok) are
 * inline in expr_int.h: the evaluator consults them on every operation.
 */
#include <stdio.h>
#include <stdlib.h>

#include "expr/expr_int.h"

const char *expr__type_name(int type)
{
    switch (type) {
    case VAL_NULL: return "null";
    case VAL_BOOL: return "boolean";
    case VAL_NUM: return "number";
    case VAL_STR: return "string";
    case VAL_TIME: return "time";
    case VAL_DUR: return "duration";
    case VAL_LIST: return "list";
    default: return "value";
    }
}

const char *expr__op_text(int op)
{
    switch (op) {
    case OP_NEG: return "-";
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_EQ: return "==";
    case OP_NE: return "!=";
    case OP_LT: return "<";
    case OP_LE: return "<=";
    case OP_GT: return ">";
    case OP_GE: return ">=";
    case OP_IN: return "in";
    case OP_CONTAINS: return "contains";
    case OP_MATCH: return "=~";
    case OP_AND: return "and";
    case OP_OR: return "or";
    case OP_NOT: return "not";
    default: return "?";
    }
}

void expr_free(struct expr *e)
{
    if (!e)
        return;
    for (uint32_t i = 0; i < e->nnodes; i++)
        if (e->nodes[i].op == OP_MATCH)
            expr__re_free(e->nodes[i].u.re);
    free(e->nodes);
    free(e->args);
    free(e->pool);
    free(e->items);
    free(e->deps);
    free(e);
}

const struct expr_dep *expr_deps(const struct expr *e, size_t *n)
{
    *n = e->ndeps;
    return e->deps;
}

int expr_type(const struct expr *e)
{
    int t = e->nodes[e->root].type;
    return t == EXPR__ANY ? -1 : t;
}

int expr_is_timed(const struct expr *e)
{
    return e->timed;
}

int expr_reads_event(const struct expr *e)
{
    for (uint32_t i = 0; i < e->nnodes; i++)
        if (e->nodes[i].op == OP_EVENT)
            return 1;
    return 0;
}

int expr_max_days(const struct expr *e)
{
    int days = 0;
    for (uint32_t i = 0; i < e->nnodes; i++) {
        const struct expr__node *n = &e->nodes[i];
        if (n->op != OP_ENGAGE)
            continue;
        int d = n->u.eng.fn == EXPR_ENG_DECLINE ? n->u.eng.a + n->u.eng.b
                : n->u.eng.fn == EXPR_ENG_ANOMALY ? n->u.eng.a + 1
                : n->u.eng.fn == EXPR_ENG_TOTAL   ? n->u.eng.a
                                                  : 0;
        if (d > days)
            days = d;
    }
    return days;
}

int64_t expr_max_window(const struct expr *e, uint32_t class_id)
{
    int64_t w = 0;
    for (uint32_t i = 0; i < e->nnodes; i++)
        if (e->nodes[i].op == OP_COUNT && e->nodes[i].u.count.id == class_id &&
            e->nodes[i].u.count.window > w)
            w = e->nodes[i].u.count.window;
    return w;
}

/* The i-th OP_MATCH node in node order, which is source order for patterns. */
static struct expr__re *nth_regex(const struct expr *e, size_t i)
{
    for (uint32_t k = 0; k < e->nnodes; k++)
        if (e->nodes[k].op == OP_MATCH && i-- == 0)
            return e->nodes[k].u.re;
    return NULL;
}

size_t expr_regex_count(const struct expr *e)
{
    size_t n = 0;
    for (uint32_t k = 0; k < e->nnodes; k++)
        n += e->nodes[k].op == OP_MATCH;
    return n;
}

size_t expr_regex_offset(const struct expr *e, size_t i)
{
    struct expr__re *re = nth_regex(e, i);
    return re ? expr__re_pos(re) : 0;
}

void expr_regex_set_origin(struct expr *e, size_t i, const char *origin)
{
    struct expr__re *re = nth_regex(e, i);
    if (re)
        expr__re_set_origin(re, origin);
}

const char *expr_regex_origin(const struct expr *e, size_t i)
{
    struct expr__re *re = nth_regex(e, i);
    return re ? expr__re_origin(re) : NULL;
}

void expr_regex_place(struct expr *e, const char *src, const char *file, unsigned line,
                      unsigned col, const char *what)
{
    size_t n = expr_regex_count(e);
    for (size_t i = 0; i < n; i++) {
        size_t off = expr_regex_offset(e, i), bol = 0;
        unsigned l = line;
        for (size_t k = 0; k < off && src[k]; k++)
            if (src[k] == '\n')
                l++, bol = k + 1;
        unsigned c = l == line ? col + (unsigned)off : (unsigned)(off - bol) + 1;
        char where[512];
        snprintf(where, sizeof where, "%s:%u:%u%s%s%s", file, l, c, what ? " (" : "",
                 what ? what : "", what ? ")" : "");
        expr_regex_set_origin(e, i, where);
    }
}
