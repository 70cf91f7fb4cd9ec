/*
 * expr.h -- the condition language: compile once, evaluate often, and say
 * when the answer could next change without new input.
 *
 * A condition such as
 *
 *     upper(esim.status) == "PENDING" and age(last("payment.completed")) > 48h
 *
 * is compiled at rule-load time against a resolver that maps names to
 * dense ids (state keys, event types, event classes, entities).  Evaluation
 * reads the customer's state through a small table of callbacks supplied by
 * the engine (struct expr_env), so this module knows nothing about how state
 * is stored.
 *
 * Time semantics: a condition is evaluated for the instant just after `now`
 * (the right limit).  A comparison against a value that moves with the
 * clock (now(), age(x), arithmetic on them) therefore changes exactly at
 * the threshold: `age(t) > 48h` is false at t+47h59m, and true from t+48h
 * onwards (the crossing instant itself included).  Equality against a
 * moving value is never true.  Evaluation returns, besides the result, the
 * earliest future time at which the result could change if nothing else
 * happens (a threshold crossing, an event leaving a count window); the
 * engine arms a timer for it.  That time may be conservative (the result
 * may turn out unchanged) but is never late.
 *
 * Nulls: a missing value is null.  Comparisons, `in`, `contains`, `=~` and
 * arithmetic with a null operand give null; `and`/`or`/`not` use three-valued
 * logic; `x is null` / `x is not null` test for it; a condition whose final
 * value is null counts as false.  So a missing value never matches by accident.
 */
#ifndef FW_EXPR_H
#define FW_EXPR_H

#include <stddef.h>
#include <stdint.h>

enum value_type {
    VAL_NULL,
    VAL_BOOL,
    VAL_NUM,  /* double */
    VAL_STR,  /* borrowed bytes, not necessarily NUL-terminated */
    VAL_TIME, /* ms since the epoch, UTC */
    VAL_DUR,  /* ms */
    VAL_LIST, /* borrowed array of values */
};

struct value {
    enum value_type type;
    union {
        int b;
        double num;
        int64_t ms; /* VAL_TIME and VAL_DUR */
        struct {
            const char *ptr;
            size_t len;
        } str;
        struct {
            const struct value *items;
            size_t n;
        } list;
    } u;
};

/* Kinds of names a condition can refer to. */
enum expr_ref {
    EXPR_REF_STATE,  /* a customer state key: esim.status, customer.zip */
    EXPR_REF_GLOBAL, /* a global state key: global.outage.zips -> "outage.zips" */
    EXPR_REF_TYPE,   /* an event type: last("payment.completed") */
    EXPR_REF_CLASS,  /* an event class: count("contact", 7d) */
    EXPR_REF_ENTITY, /* an entity kind: open_count("ticket") */
    EXPR_REF_METRIC,  /* a usage metric the pack keeps daily rollups of: usage_decline("data_mb", ...) */
    EXPR_REF_FEATURE, /* a product feature: feature_idle("hotspot") */
    EXPR_REF_ENGAGE,  /* the engagement figures: id 0 for any of them, 1 for `health`,
                         2 for `churn_risk` */
};

/*
 * The engagement figures (docs/engagement.md), read through
 * expr_env.engage.  Day counts are whole UTC days; "today" is the day of
 * env->now and is never part of a window (it is not over yet).
 */
enum expr_engage {
    EXPR_ENG_DECLINE,    /* usage_decline(m, recent, base): % drop of the daily mean */
    EXPR_ENG_ANOMALY,    /* usage_anomaly(m, base): robust z-score of yesterday */
    EXPR_ENG_TOTAL,      /* usage_total(m, days): sum of the last `days` complete days */
    EXPR_ENG_LAST_USED,  /* feature_last_used(f): time */
    EXPR_ENG_IDLE,       /* feature_idle(f): the time idleness started (last use, else signup) */
    EXPR_ENG_PURCHASED,  /* purchased(f): bool */
    EXPR_ENG_SIGNUP,     /* signup(): time */
    EXPR_ENG_STEPS_LEFT, /* onboarding_left(): number of declared steps not done */
    EXPR_ENG_HEALTH,     /* health: 0..100 */
    EXPR_ENG_CHURN,      /* churn_risk: the churn model's score, 0..1 (docs/model.md) */
};

/*
 * Compile-time name resolution.  resolve() returns a dense id >= 0, or -1
 * when the name is unknown for that kind (a compile error "unknown event
 * class 'x'").  Resolvers typically intern state keys and accept any name,
 * but refuse unknown classes.
 */
struct expr_resolver {
    void *ctx;
    int64_t (*resolve)(void *ctx, enum expr_ref kind, const char *name, size_t len);
};

/*
 * Run-time access to one customer's state.  Every callback must cope with
 * any id the resolver handed out.  Values written to *out are borrowed and
 * must stay valid until expr_eval returns.
 */
struct expr_env {
    void *ctx;
    int64_t now; /* the evaluation instant */
    /* Value of state key `id` (VAL_NULL when unset) and when it took that value (FW_TIME_NONE). */
    void (*state)(void *ctx, uint32_t id, struct value *out, int64_t *since);
    /* Same for global keys. */
    void (*global)(void *ctx, uint32_t id, struct value *out, int64_t *since);
    /* Time of the last event of a type, FW_TIME_NONE if none. */
    int64_t (*last)(void *ctx, uint32_t type_id);
    /*
     * Number of events of a class with time > `after` (and <= now); *oldest
     * receives the earliest such time (FW_TIME_MAX when the count is 0).
     */
    int64_t (*count)(void *ctx, uint32_t class_id, int64_t after, int64_t *oldest);
    /* Number of open entities of a kind (open tickets, ...). */
    int64_t (*open_count)(void *ctx, uint32_t entity_id);
    /*
     * A field of the triggering event: path is "id", "type", "subject",
     * "source", "time" or "data.a.b".  VAL_NULL when absent or when the
     * evaluation was caused by a timer, not an event.
     */
    void (*event_field)(void *ctx, const char *path, size_t len, struct value *out);
    /*
     * An engagement figure (enum expr_engage) of metric or feature `id`
     * with day counts a and b; VAL_NULL when not known (no history, no
     * signup).  *next receives the earliest time > now at which it may
     * change with no new input (the next day boundary for windows), or
     * FW_TIME_MAX.  May be NULL: every figure is then null.
     */
    void (*engage)(void *ctx, int fn, uint32_t id, int a, int b, struct value *out,
                   int64_t *next);
};

/*
 * An environment that reads state only (global keys, last(), count(),
 * open_count() and event fields are all empty): for conditions over a
 * case's fields, such as SLA policies, playbook triggers and escalations.
 */
struct expr_env expr_env_state_only(void *ctx, int64_t now,
                                    void (*state)(void *ctx, uint32_t id, struct value *out,
                                                  int64_t *since));

/* What a compiled condition reads; lets the engine index rules. */
struct expr_dep {
    enum expr_ref kind;
    uint32_t id;
};

struct expr; /* opaque compiled condition */

/* The longest window count() accepts (366 days): the engine keeps event times that long. */
#define EXPR_MAX_WINDOW (366LL * 24 * 3600 * 1000)

/* A compile error: 1-based line and column within the source text. */
struct expr_error {
    size_t offset; /* byte offset into the source */
    unsigned line, col;
    char msg[256];
};

/*
 * Compile the condition `src` (len bytes).  On success *out owns a new
 * expression (free with expr_free) and 0 is returned.  On failure returns
 * FW_EPARSE or FW_ETYPE, fills *err (may not be NULL) and *out is
 * untouched.  Errors caught here: syntax, unknown function, wrong argument
 * count or type, type mismatch between operands whose types are known
 * before run time, bad duration literal, bad regular expression, unknown
 * name (via the resolver), scaling a clock-dependent value, and a condition
 * whose result is known not to be true/false (`age(x)` alone).  The
 * resolver (may not be NULL) is only used during the call.
 */
int expr_compile(const char *src, size_t len, const struct expr_resolver *r, struct expr **out,
                 struct expr_error *err);

/*
 * Like expr_compile, but the result may be of any type (`age(x)`,
 * `upper(esim.status)`): for `rules test`, debugging and test fixtures.
 * Use expr_eval on the result; expr_test treats a non-boolean as false.
 */
int expr_compile_value(const char *src, size_t len, const struct expr_resolver *r,
                       struct expr **out, struct expr_error *err);

/* Free a compiled expression; expr_free(NULL) does nothing. */
void expr_free(struct expr *e);

/*
 * Evaluate as a condition: returns 1 if true, 0 if false or null.
 * *next (may be NULL) receives the earliest time > env->now at which the
 * result could change with no new input, or FW_TIME_MAX.
 */
int expr_test(const struct expr *e, const struct expr_env *env, int64_t *next);

/*
 * expr_test, and in *stable (may not be NULL) the earliest time > env->now
 * at which any part of the expression could change with no new input, even
 * where the result would not: a count that stays above its threshold when
 * an event leaves its window, the first of two false operands of `and`.
 * Until then the same input gives the same result and the same *next;
 * from then on *next may be later, never earlier.  *stable <= *next.
 */
int expr_test_stable(const struct expr *e, const struct expr_env *env, int64_t *next,
                     int64_t *stable);

/*
 * Evaluate to a value (for `rules test` and debugging); *next as for
 * expr_test, except that a result moving with the clock (`age(x)`,
 * `now()`) changes at every instant: *next is env->now + 1.  A string result is copied to the end of `scratch` (a
 * caller-owned buffer, may not be NULL) and out->u.str points there: it
 * stays valid until scratch is next modified.  Lists in the result are
 * borrowed from the expression (literals) or from the env (state values).
 * Returns 0, or FW_ETOOBIG when scratch's cap refuses the string (*out is
 * then VAL_NULL).
 */
struct buf;
int expr_eval(const struct expr *e, const struct expr_env *env, struct value *out, int64_t *next,
              struct buf *scratch);

/* The names the expression reads, deduplicated; valid for the expression's life. */
const struct expr_dep *expr_deps(const struct expr *e, size_t *n);

/*
 * The type of the result when it is known before run time (a value_type:
 * `age(x)` is VAL_DUR, `count(...)` VAL_NUM), or -1 when only evaluation
 * tells (a state key, coalesce of those).
 */
int expr_type(const struct expr *e);

/* Whether the result can change with time alone (uses now(), age(), count()). */
int expr_is_timed(const struct expr *e);

/*
 * Whether the expression reads the triggering event (event.type, event.data.x):
 * its result may then differ on every evaluation, even with the same state.
 */
int expr_reads_event(const struct expr *e);

/*
 * The longest window over which the expression counts events of class
 * `class_id` (count("contact", 7d) gives 7d), 0 when it never counts that
 * class.  Bounds how much event history the engine must keep per class.
 */
int64_t expr_max_window(const struct expr *e, uint32_t class_id);

/*
 * The most days of rollup history the expression's usage_* calls reach
 * back (usage_decline("m", 7, 28) needs 35 plus today), 0 when it has
 * none.  rules_finish holds it to the pack's horizon.
 */
int expr_max_days(const struct expr *e);

/*
 * Regular expressions in the expression (`=~`, matches()), in source order:
 * how many, and the byte offset in the source of the i-th one's pattern.
 * expr_regex_set_origin gives the i-th a place ("rules/x.yaml:12:30",
 * copied) that run-time messages name: a search stopped by a resource
 * limit is logged with it and counts as null.
 */
size_t expr_regex_count(const struct expr *e);
size_t expr_regex_offset(const struct expr *e, size_t i);
void expr_regex_set_origin(struct expr *e, size_t i, const char *origin);
/* The i-th pattern's place as set, or NULL. */
const char *expr_regex_origin(const struct expr *e, size_t i);

/*
 * expr_regex_set_origin for every pattern, for a condition src that starts
 * at 1-based (line, col) of file: "file:L:C (what)", where a pattern on
 * the condition's first line is at col + its offset and one on a later
 * line at its column in src (right for plain and block scalars, an
 * approximation for folded ones).  what may be NULL.
 */
void expr_regex_place(struct expr *e, const char *src, const char *file, unsigned line,
                      unsigned col, const char *what);

/* Regex searches stopped by a limit since the process started (all expressions). */
unsigned long expr_regex_limit_hits(void);

#endif
