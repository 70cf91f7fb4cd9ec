/*
 * fake.h -- test scaffolding for the expr tests: one customer's state in
 * plain arrays behind a struct expr_env, a resolver over them, and the
 * value syntax shared by tests/cases/expr/eval.test and docs/rules.md.
 *
 * Names are interned per kind; ids index the arrays.  Classes and entities
 * are "closed": the resolver knows only those declared (fake_declare or a
 * fixture line), as the rules loader knows only a pack's classes.
 */
#ifndef FW_TEST_EXPR_FAKE_H
#define FW_TEST_EXPR_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include "expr/expr.h"
#include "util/buf.h"
#include "util/map.h"

#define FAKE_MAX 64

struct fake_kv {
    struct value v; /* VAL_NULL when unset */
    int64_t since;
};

struct fake {
    int64_t now;
    struct intern names[5]; /* per enum expr_ref */
    struct fake_kv state[FAKE_MAX], global[FAKE_MAX];
    int64_t last[FAKE_MAX];    /* per event type; FW_TIME_NONE when never seen */
    int64_t *times[FAKE_MAX];  /* per class: event times (owned) */
    size_t ntimes[FAKE_MAX];
    int64_t open[FAKE_MAX];    /* per entity */
    struct {
        char *path; /* owned */
        struct value v;
    } ev[16];                  /* the triggering event's fields */
    size_t nev;
    struct expr **exprs;       /* owned: compiled literals that back values */
    size_t nexprs, exprs_cap;
    char **strs;               /* owned: strings that back values */
    size_t nstrs, strs_cap;
    struct expr_env env;       /* env.now is set by fake_env() */
    struct expr_resolver res;
};

void fake_init(struct fake *f);
void fake_cleanup(struct fake *f);
/* Forget all state but keep declared names and now. */
void fake_clear(struct fake *f);
/* Declare a name (needed for classes and entities); returns its id. */
uint32_t fake_declare(struct fake *f, enum expr_ref kind, const char *name, size_t len);
/* The env for evaluating at f->now. */
const struct expr_env *fake_env(struct fake *f);

/*
 * Parse a fixture value: an RFC 3339 time, or a literal expression
 * ("PENDING", 3, 48h, true, null, ["a", "b"]).  Returns 0 or -1.
 */
int fake_value(struct fake *f, const char *s, size_t n, struct value *out);

/*
 * Apply one fixture line (tests/cases/expr/eval.test describes them):
 * now, state, global, last, events, open, event, reset.  Returns 1 when
 * applied, 0 when the line is not a fixture line, -1 on a bad line (why
 * says what).
 */
int fake_line(struct fake *f, const char *line, char *why, size_t whylen);

/* A value as text: true, 3, 2.5, "str", 48h, 2026-01-05T10:00:00Z, ["a", 1], null. */
void fake_format(const struct value *v, struct buf *out);

/* Trim blanks at both ends of s[0..*n): returns the new start. */
const char *fake_trim(const char *s, size_t *n);

#endif
