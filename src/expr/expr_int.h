/*
 * expr_int.h -- private to src/expr: the compiled form of a condition,
 * shared by the compiler (lex.c, parse.c) and the evaluator (eval.c).
 *
 * A compiled expression is a flat array of nodes; operands are indexes
 * into the same array.  Invariant: compilation has done everything that
 * does not depend on the customer -- names are resolved to ids, string
 * literals unescaped, list literals laid out as value arrays, regular
 * expressions compiled, operand types checked where they are known -- so
 * evaluation never compares names and allocates only for rare long strings.
 */
#ifndef FW_EXPR_INT_H
#define FW_EXPR_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>

#include "expr/expr.h"

/* Static types are enum value_type plus "known only at run time". */
#define EXPR__ANY 7
#define EXPR__NTYPES 8

enum expr__op {
    OP_LIT,            /* u.lit */
    OP_STATE,          /* u.id: customer state key */
    OP_GLOBAL,         /* u.id: global state key */
    OP_EVENT,          /* u.field: field of the triggering event */
    OP_NOW,            /* now() */
    OP_AGE,            /* age(a) */
    OP_LAST,           /* last("type"): u.id */
    OP_CHANGED_STATE,  /* changed_at(key): u.id */
    OP_CHANGED_GLOBAL, /* changed_at(global.key): u.id */
    OP_COUNT,          /* count("class", window): u.count */
    OP_OPEN_COUNT,     /* open_count("entity"): u.id */
    OP_HAS_OPEN,       /* has_open("entity"): u.id */
    OP_ENGAGE,         /* an engagement figure: u.eng */
    OP_UPPER,          /* upper(a) */
    OP_LOWER,          /* lower(a) */
    OP_LEN,            /* len(a) */
    OP_COALESCE,       /* coalesce(...): arguments are e->args[a .. a+b) */
    OP_NEG,            /* -a */
    OP_ADD,            /* a + b; the arithmetic ops are consecutive */
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_EQ,             /* a == b; the comparisons are consecutive */
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,             /* a in b */
    OP_CONTAINS,       /* a contains b */
    OP_MATCH,          /* a =~ u.re, matches(a, "re") */
    OP_IS_NULL,        /* a is null */
    OP_NOT_NULL,       /* a is not null */
    OP_NOT,            /* not a */
    OP_AND,            /* a and b */
    OP_OR,             /* a or b */
};

struct expr__node {
    uint8_t op;     /* enum expr__op */
    uint8_t type;   /* static result type: enum value_type or EXPR__ANY */
    uint8_t moving; /* may move with the clock (slope != 0 at run time) */
    uint8_t depth;  /* height of the subtree, bounded so evaluation's recursion is */
    uint32_t pos;   /* byte offset of the node's first token, for messages */
    uint32_t a, b;  /* operand node indexes (OP_COALESCE: see above) */
    union {
        struct value lit; /* OP_LIT; lists point into e->items, strings into e->pool */
        uint32_t id;      /* a resolved name */
        struct {
            uint32_t id;
            int64_t window; /* ms, > 0 */
        } count;
        struct {
            const char *ptr; /* "data.status", in e->pool */
            size_t len;
        } field;
        struct expr__re *re; /* OP_MATCH; owned */
        struct {
            uint32_t id;    /* metric or feature id, 0 when the figure takes none */
            int16_t a, b;   /* day counts */
            uint8_t fn;     /* enum expr_engage */
        } eng;
    } u;
};

struct expr {
    struct expr__node *nodes; /* owned */
    uint32_t nnodes, root;
    uint32_t *args;           /* owned; coalesce() argument lists */
    char *pool;               /* owned; unescaped string literals and event field names */
    struct value *items;      /* owned; elements of list literals */
    struct expr_dep *deps;    /* owned; deduplicated */
    size_t ndeps;
    int timed;                /* uses now(), age() or count() */
};

/* ---- regular expressions (regex.c) ---- */

/*
 * Limits on what a pattern may ask for (docs/rules.md, "Regular
 * expressions").  Compile: the pattern's length and parenthesis nesting
 * (PCRE2 also caps the compiled size).  Match: backtracking steps, depth of
 * backtracking and KiB of heap for it; a match that reaches one is null.
 */
#define EXPR__RE_MAX_LEN 512
#define EXPR__RE_MAX_NEST 50
#define EXPR__RE_MATCH_LIMIT 1000000
#define EXPR__RE_DEPTH_LIMIT 10000
#define EXPR__RE_HEAP_LIMIT_KIB 4096

struct expr__re; /* a compiled pattern */

/*
 * Compile pattern pat (n bytes, the unescaped literal at byte offset pos of
 * the condition).  0 and a new pattern in *out (free with expr__re_free),
 * or -1 with the reason in why (whylen bytes, NUL-terminated) and in
 * *erroff the byte of the pattern it concerns.
 */
int expr__re_compile(const char *pat, size_t n, uint32_t pos, struct expr__re **out,
                     size_t *erroff, char *why, size_t whylen);
void expr__re_free(struct expr__re *re);
/* Where the pattern is, for run-time messages ("rules/x.yaml:12:30"); copied. */
void expr__re_set_origin(struct expr__re *re, const char *origin);
/* The place given to expr__re_set_origin, or NULL. */
const char *expr__re_origin(const struct expr__re *re);
/* The byte offset given to expr__re_compile. */
uint32_t expr__re_pos(const struct expr__re *re);
/*
 * Search s (n bytes, any bytes) for the pattern: 1 found, 0 not found, -1
 * when a limit stopped the search (logged, rate-limited).  Thread-safe.
 */
int expr__re_match(struct expr__re *re, const char *s, size_t n);

/* ---- lexer (lex.c) ---- */

enum expr__tok {
    TK_EOF,
    TK_NUM,      /* tok.num */
    TK_DUR,      /* tok.ms */
    TK_STR,      /* tok.str, tok.slen: unescaped, in the pool */
    TK_NAME,     /* a dotted name: the source text; tok.call when '(' follows */
    TK_AND,      /* and && */
    TK_OR,       /* or || */
    TK_NOT,      /* not ! */
    TK_IN,
    TK_CONTAINS,
    TK_IS,
    TK_NULL,
    TK_TRUE,
    TK_FALSE,
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACKET,
    TK_RBRACKET,
    TK_COMMA,
    TK_EQ,
    TK_NE,
    TK_LT,
    TK_LE,
    TK_GT,
    TK_GE,
    TK_MATCH,    /* =~ */
    TK_PLUS,
    TK_MINUS,
    TK_STAR,
    TK_SLASH,
};

struct expr__token {
    int kind;         /* enum expr__tok */
    uint32_t pos;     /* byte offset of the first character */
    uint32_t len;     /* bytes of source text */
    int call;         /* TK_NAME: the next non-blank character is '(' */
    double num;       /* TK_NUM */
    int64_t ms;       /* TK_DUR */
    const char *str;  /* TK_STR */
    size_t slen;
};

struct expr__lexer {
    const char *src;
    size_t len, pos;         /* pos: where the next token is looked for */
    char *pool;              /* receives unescaped strings; holds at least len bytes */
    size_t pool_len;
    struct expr_error *err;
};

/*
 * Read the next token into *t.  Returns 0, or FW_EPARSE with lx->err
 * filled (unterminated string, bad escape, bad number or duration,
 * unexpected character).
 */
int expr__lex(struct expr__lexer *lx, struct expr__token *t);

/*
 * Fill *err for an error at `offset` of src (line and column computed from
 * it) and return rc, so callers can `return expr__error(...)`.
 */
int expr__error(struct expr_error *err, const char *src, size_t len, size_t offset, int rc,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- shared type tables (expr.c) ---- */

/* Name of a static type for messages: "number", "duration", ... */
const char *expr__type_name(int type);

/*
 * Result type of arithmetic `op` (OP_ADD .. OP_DIV, or OP_NEG with tb
 * ignored) on operand types ta and tb, or -1 when the combination is not
 * allowed.  The compiler and the evaluator share this one table, so a
 * combination refused at compile time is exactly one that gives null at
 * run time.
 */
static inline int expr__arith_type(int op, int ta, int tb)
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

/* Whether comparison `op` (OP_EQ .. OP_GE) is defined between ta and tb. */
static inline int expr__cmp_ok(int op, int ta, int tb)
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

/* Source text of an operator for messages: "+", ">=", "contains", ... */
const char *expr__op_text(int op);

#endif
