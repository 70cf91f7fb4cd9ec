/*
 * rules.h -- rule packs: YAML files that declare event classes, entities,
 * global event types, common-factor keys and signals, loaded into one
 * `struct rules` with every name turned into a dense id and every condition
 * compiled.
 *
 * Loading is two-phase so that packs may refer to each other: rules_add_*
 * parse one pack at a time (structure errors are reported immediately),
 * rules_finish compiles every condition once all classes are known.  Every
 * error is reported with file:line:col, the source line and a caret, and
 * loading continues so that one run reports all of them.
 */
#ifndef FW_RULES_H
#define FW_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "expr/expr.h"
#include "util/buf.h"
#include "util/map.h"

#define SEVERITY_MAP(X)                                                                            \
    X(LOW, "LOW")                                                                                  \
    X(MEDIUM, "MEDIUM")                                                                            \
    X(HIGH, "HIGH")                                                                                \
    X(CRITICAL, "CRITICAL")

enum severity {
#define RULES__SEV(name, str) SEV_##name,
    SEVERITY_MAP(RULES__SEV)
#undef RULES__SEV
};

/* "HIGH" for SEV_HIGH; NULL for an out-of-range value. */
const char *severity_name(enum severity s);
/* Parse an exact upper-case name; -1 when unknown. */
int severity_parse(const char *s);

/* The longest incident window a signal may ask for (30 days): firings are kept that long. */
#define RULES_MAX_SYSTEMIC_WINDOW (30LL * 24 * 3600 * 1000)

struct rule_signal {
    char *id;          /* "SIG-001" */
    char *name;        /* "eSIM stuck in PENDING" */
    char *description; /* may be NULL */
    enum severity severity;
    char *team;       /* may be NULL */
    char *root_cause; /* may be NULL; messages for one root cause are de-duplicated later */
    char *action;     /* may be NULL: the one recommended next step for a person */
    char *condition;  /* source text */
    struct expr *cond;
    int systemic;           /* incidents enabled */
    unsigned min_customers; /* incident threshold (default 3) */
    int64_t window;         /* incident window, ms (default 24h, at most RULES_MAX_SYSTEMIC_WINDOW) */
    uint32_t *factors;      /* state-key ids considered for the common factor */
    size_t nfactors;
    int uses_global; /* condition reads global keys: re-evaluate everyone on a global event */
    /*
     * outreach: outage -- the signal says the customer is inside a declared
     * outage.  Its firing is the customer's outage message (and its end the
     * update); while it fires, the signals it explains are held back.
     */
    int outage;
    char **explains; /* signal ids it explains; none listed = every other signal */
    size_t nexplains;
    char *file;      /* where it was declared, for messages */
    unsigned line, col;
};

/*
 * A template variable defined by the pack (`context:`), so that the domain's
 * state keys live in the pack and the orchestrator stays generic.
 */
enum rule_context_as { RCTX_TEXT, RCTX_DATE, RCTX_TIME, RCTX_DAYS_SINCE };
struct rule_context {
    char *var;   /* "order.id" */
    char **keys; /* state keys tried in order ("global." reads global state) */
    size_t nkeys;
    char *last; /* or the time of the customer's last event of this type */
    enum rule_context_as as;
    char **latest_types, **latest_words; /* or the word for the latest of these types */
    size_t nlatest;
    char *otherwise; /* the word when none of latest_types happened */
};

/* A team, and the name people know it by ("esim": "eSIM specialists"). */
struct rule_team {
    char *team, *name;
};

struct rule_entity {
    char *name;     /* "ticket" */
    char *id_field; /* data field holding the entity id: "ticket_id" */
};

/* Per event type: what an event of this type does besides updating state. */
struct rule_type {
    uint32_t *classes; /* classes this type belongs to */
    size_t nclasses;
    int32_t opens;  /* entity id this type opens, or -1 */
    int32_t closes; /* entity id this type closes, or -1 */
    int global;     /* no subject: updates global state */
};

struct rules {
    struct intern keys;     /* customer state keys ("esim.status") */
    struct intern globals;  /* global state keys ("outage.zips") */
    struct intern types;    /* event types mentioned anywhere */
    struct intern classes;  /* event classes */
    struct intern entities; /* entity kinds */
    struct rule_type *type_info; /* indexed by type id; grows with `types` */
    size_t type_info_cap;
    int64_t *class_window; /* longest count() window per class id, ms */
    struct rule_entity *entity_info; /* indexed by entity id */
    uint32_t *default_factors;       /* pack-level common-factor keys */
    size_t ndefault_factors;
    struct rule_signal *signals;
    size_t nsignals;
    struct rule_context *context;
    size_t ncontext;
    struct rule_team *teams;
    size_t nteams;
    /* Engagement (a pack's `engagement:`, docs/engagement.md). */
    struct intern metrics;  /* usage metrics kept as daily rollups, in declaration order */
    struct intern features; /* feature names: from conditions, and interned by the engine */
    struct intern steps;    /* onboarding steps, in declaration order (at most 64) */
    int horizon_days;       /* days of rollups kept per metric (default 90) */
    int engage;             /* some pack has an `engagement:` section */
    struct buf diag; /* accumulated error text */
    unsigned nerrors;
    int finished;
    struct strmap global_types; /* built by rules_finish; read-only afterwards (any thread) */
    void *_load; /* loader-private: pack texts and condition positions */
};

/* An empty rule set. Free with rules_cleanup. */
void rules_init(struct rules *r);
void rules_cleanup(struct rules *r);

/*
 * Parse one pack.  `name` is used in messages (a path, or "<builtin:telecom>").
 * Returns 0, or FW_EPARSE when the pack had errors (appended to r->diag).
 */
int rules_add_text(struct rules *r, const char *name, const char *text, size_t len);
/* Read and parse a file. FW_EIO when it cannot be read. */
int rules_add_file(struct rules *r, const char *path);
/* The built-in telecom pack (rules/telecom.yaml compiled into the binary). */
int rules_add_builtin(struct rules *r);

/*
 * Compile every condition and validate cross-references.  Returns 0, or
 * FW_EPARSE with messages in r->diag.  After this the set is read-only.
 */
int rules_finish(struct rules *r);

/* Type id of an event type, adding it (with no classes/entity role) if new. */
uint32_t rules_type_id(struct rules *r, const char *type, size_t len);
/* Info for a type id (never NULL for ids handed out by rules_type_id). */
const struct rule_type *rules_type(const struct rules *r, uint32_t id);
/* Whether events of this type are global (is_global callback shape for ingest). */
int rules_is_global(void *rules, const char *type);
/*
 * Whether `name` is in the packs' engagement vocabulary `what` ("metric"
 * or "step"): 1 declared, 0 not, -1 when no pack declares one (the ingest
 * `declared` callback shape).  Safe from HTTP threads: both are fixed
 * when the packs load.
 */
int rules_declared(void *rules, const char *what, const char *name);
/* Does event type `type` belong to class `cls` (e.g. "contact")?  0 when either is unknown. */
int rules_type_in_class(const struct rules *r, const char *type, const char *cls);
/* The most onboarding steps a pack may declare (they are a bit mask per customer). */
#define RULES_MAX_STEPS 64
/* The most metrics packs may declare together. */
#define RULES_MAX_METRICS 16

/*
 * The global event type that declares and updates known issues and
 * maintenance (docs/known-issues.md); every rule set has it.
 */
#define RULES_KNOWN_ISSUE_TYPE "known_issue.changed"

/*
 * Compile a condition outside a pack (a known issue's segment) against the
 * rule set's names, interning new state keys and features: on the thread
 * that owns the engine only.  As expr_compile: 0 and *out, or an error.
 */
int rules_compile(struct rules *r, const char *src, size_t len, struct expr **out,
                  struct expr_error *err);
/*
 * rules_compile for an expression of any type (expr_compile_value): the
 * churn model's features (serve/churn.h).  The caller owns *out.
 */
int rules_compile_value(struct rules *r, const char *src, size_t len, struct expr **out,
                        struct expr_error *err);
/*
 * Whether a condition would compile (any thread: nothing is interned).
 * 0, or FW_EPARSE/FW_ETYPE with err filled.
 */
int rules_compile_probe(const struct rules *r, const char *src, size_t len,
                        struct expr_error *err);

/* Find a signal by id; NULL when absent. */
const struct rule_signal *rules_signal(const struct rules *r, const char *id);

/* Embedded pack text (generated at build time from rules/telecom.yaml). */
extern const char rules_builtin_telecom[];
extern const size_t rules_builtin_telecom_len;

#endif
