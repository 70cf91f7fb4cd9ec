/*
 * churn.h -- the config key churn_model: (docs/model.md, "Scoring
 * customers live"): a churn model file and, for each of its feature
 * columns, an expression in the rule language evaluated against the
 * customer.  serve and `replay --config` read it; the engine scores
 * customers with it for the rule figure churn_risk and the queue's
 * priority.
 *
 * Three steps, each refusing bad input with the config file's
 * file:line:col: churn_parse (with the rest of the config: the model file
 * is loaded and checked, every model column must be mapped and every
 * mapped name must be a column), churn_bind (once the rule packs are
 * loaded: the expressions compile against them), churn_engine (the
 * callbacks the engine calls).
 *
 * The invariant: a feature value becomes the text a CSV cell would hold
 * (churn_cell), and the model encodes that text exactly as `forewarn
 * model score` encodes a cell, so a live score equals `model score`'s on a
 * CSV row of the same values.
 */
#ifndef FW_SERVE_CHURN_H
#define FW_SERVE_CHURN_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "expr/expr.h"
#include "rules/rules.h"
#include "util/buf.h"
#include "util/yaml.h"

struct model_live;

/* One model column and what it is computed from. */
struct churn_feature {
    char *column;       /* owned: the model's column name */
    size_t index;       /* its index in the model's schema */
    char *src;          /* owned: the expression's source */
    unsigned line, col; /* 0-based place of the expression in the config file */
    int quoted;         /* the YAML scalar was quoted: the source starts one column later */
    int64_t unit;       /* unit: a duration value becomes value / unit (ms); 0: none */
    struct expr *x;     /* owned, after churn_bind */
};

struct churn_config {
    char *file;          /* owned: the model file, NULL when no churn_model: is configured */
    char *config;        /* owned: the config file's name, for messages */
    char *text;          /* owned: the config file's text, to quote in churn_bind's messages */
    size_t textlen;
    struct churn_feature *features; /* owned, in the model's column order */
    size_t nfeatures;
    struct model_live *model; /* owned */
    int reads_health;    /* some expression reads `health` */
    struct expr **exprs; /* owned array (the expressions are the features'): after churn_bind */
    char **columns;      /* owned array (the names are the features'): after churn_bind */
    /* Scratch for one scoring, sized at bind: the cells' texts. */
    char **cells;
    char *cellbuf;
};

void churn_init(struct churn_config *ch);
void churn_cleanup(struct churn_config *ch);

/*
 * Parse `churn_model: {file: PATH, features: {COLUMN: EXPR | {expr: EXPR,
 * unit: DURATION}}}` (node n of the config file d) into ch, replacing what
 * it held.  The model file is loaded and checked here.  0, or FW_EPARSE
 * with one located message per mistake in diag (an unknown column, an
 * unmapped one, a missing or damaged model file, a model of another format
 * version, a bad unit) and ch unchanged.
 */
int churn_parse(struct churn_config *ch, struct ydoc *d, yaml_node_t *n, struct buf *diag);

/*
 * Compile every expression against the finished rules r (interning state
 * keys, checking event classes and metrics as conditions are checked).
 * Refused, located in the config file: a syntax or type error, an
 * expression reading the triggering event (event.*) or churn_risk itself,
 * a time, a list or a duration without unit for a numeric or boolean
 * column, a usage window longer than the packs' horizon.  Keeps the event
 * history count() windows need (r->class_window).  0 or FW_EPARSE.
 * Nothing to do when no model is configured.
 */
int churn_bind(struct churn_config *ch, struct rules *r, struct buf *diag);

/* Free the compiled expressions (churn_bind may then bind to other rules). */
void churn_unbind(struct churn_config *ch);

/*
 * A rule that reads churn_risk with no churn model configured would never
 * fire: refused, one located message per signal ("rules/x.yaml:4:5: error:
 * CHURN-1 reads churn_risk, and no churn model is configured ...").  0 or
 * FW_EPARSE.
 */
int churn_check_rules(const struct churn_config *ch, const struct rules *r, struct buf *diag);

/*
 * The engine's view of a bound churn model (engine_set_churn), or NULL
 * when none is configured.  *out is filled and borrows from ch, which must
 * outlive the engine.
 */
const struct engine_churn *churn_engine(struct churn_config *ch, struct engine_churn *out);

/*
 * The text of a feature value as a CSV cell would hold it: a number with
 * 17 significant digits ("%.17g", read back to the same double), a string
 * as it is, true/false, a duration divided by unit (a number; without a
 * unit it is not a number: "" ), and null, a time or a list as "" (missing).
 * Written to buf (len bytes; a longer string is cut: it is then a category
 * no model learned).  Returns buf.
 */
const char *churn_cell(const struct value *v, int64_t unit, char *buf, size_t len);

#endif
