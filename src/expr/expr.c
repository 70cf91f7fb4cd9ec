/*
 * expr.c -- the parts of a compiled expression that are neither compiling
 * nor evaluating: freeing, introspection (dependencies, timedness, count
 * windows), and the type tables the compiler and evaluator share.
 *
 * Invariant: expr__arith_type and expr__cmp_ok are the only statement of
 * which operand types an operator accepts, so a combination refused at
 * compile time is exactly one that would give null at run time.
 */
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

int expr__arith_type(int op, int ta, int tb)
{
    switch (op) {
    case OP_NEG:
        return ta == VAL_NUM || ta == VAL_DUR ? ta : -1;
    case OP_ADD:
        if (ta == VAL_NUM && tb == VAL_NUM)
            return VAL_NUM;
        if ((ta == VAL_TIME && tb == VAL_DUR) || (ta == VAL_DUR && tb == VAL_TIME))
            return VAL_TIME;
        if (ta == VAL_DUR && tb == VAL_DUR)
            return VAL_DUR;
        return -1;
    case OP_SUB:
        if (ta == VAL_NUM && tb == VAL_NUM)
            return VAL_NUM;
        if (ta == VAL_TIME && tb == VAL_TIME)
            return VAL_DUR;
        if (ta == VAL_TIME && tb == VAL_DUR)
            return VAL_TIME;
        if (ta == VAL_DUR && tb == VAL_DUR)
            return VAL_DUR;
        return -1;
    case OP_MUL:
        if (ta == VAL_NUM && tb == VAL_NUM)
            return VAL_NUM;
        if ((ta == VAL_DUR && tb == VAL_NUM) || (ta == VAL_NUM && tb == VAL_DUR))
            return VAL_DUR;
        return -1;
    case OP_DIV:
        if (ta == VAL_NUM && tb == VAL_NUM)
            return VAL_NUM;
        if (ta == VAL_DUR && tb == VAL_NUM)
            return VAL_DUR;
        return -1;
    default:
        return -1;
    }
}

int expr__cmp_ok(int op, int ta, int tb)
{
    if (ta != tb)
        return 0;
    switch (ta) {
    case VAL_NUM:
    case VAL_STR:
    case VAL_TIME:
    case VAL_DUR:
        return 1;
    case VAL_BOOL:
        return op == OP_EQ || op == OP_NE; /* booleans have no order */
    default:
        return 0;
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
        if (e->nodes[i].op == OP_MATCH && e->nodes[i].u.re) {
            regfree(e->nodes[i].u.re);
            free(e->nodes[i].u.re);
        }
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

int expr_is_timed(const struct expr *e)
{
    return e->timed;
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
