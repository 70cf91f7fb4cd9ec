/*
 * model.h -- the churn model: `forewarn model train` and `forewarn model
 * score` (docs/model.md).
 *
 * A model is a feature schema learned from a CSV table (which columns,
 * numeric, boolean or categorical, and the one-hot layout of the
 * categories), a gradient-boosted tree ensemble (XGBoost, binary:logistic)
 * and a logistic-regression baseline over the same features.  Both are
 * trained and measured by `model train`; `model score` reads the model file
 * back and scores the rows of another CSV with a blend of the two, weighted
 * as cross-validation chose.
 *
 * The same schema encodes a table at train and at score time, so a row is
 * turned into the same feature vector by both: that is the invariant the
 * whole module rests on.
 */
#ifndef FW_MODEL_H
#define FW_MODEL_H

#include <stddef.h>
#include <stdio.h>

#include "util/buf.h"
#include "util/csv.h"

#define MODEL_FORMAT 2 /* the model file's format version (docs/model.md, "File format") */
#define MODEL_MAX_CATEGORIES 100 /* one-hot columns per categorical column, most frequent first */
#define MODEL_NUMERIC_SHARE 0.95 /* share of non-empty values that must parse as numbers */

enum model_kind {
    MODEL_NUMERIC,     /* a number; empty or not a number: missing */
    MODEL_BOOLEAN,     /* yes/no, true/false (any case): 1/0; anything else: missing */
    MODEL_CATEGORICAL, /* one 0/1 feature per category learned at train time */
};

struct model_column {
    char *name;       /* owned: the CSV header name */
    enum model_kind kind;
    size_t first;     /* index of its first feature in an encoded row */
    size_t ncat;      /* categorical: categories (and features); otherwise 0 */
    char **cats;      /* owned: categorical: the categories, sorted by name */
    /* Training figures, for the card and the summary (0 in a loaded model). */
    size_t n_missing; /* empty values, or values of the wrong kind */
    size_t n_other;   /* categorical: values of categories beyond MODEL_MAX_CATEGORIES */
};

struct model_schema {
    size_t ncols;                /* feature columns */
    struct model_column *cols;   /* owned */
    size_t nfeat;                /* encoded features: numeric and boolean 1 each, categorical ncat */
    char *label;                 /* owned: the label column's name */
    char *positive;              /* owned: the label value that means the positive class */
    char *id;                    /* owned, or NULL: the id column's name at train time */
    /* Columns left out at train time (identifier-like), for the summary: owned names. */
    size_t ndropped;
    char **dropped;
};

void model_schema_init(struct model_schema *s);
void model_schema_cleanup(struct model_schema *s);

/* The name of feature f ("tenure", "Contract=Two year"), into a caller's buffer. */
void model_feature_name(const struct model_schema *s, size_t f, struct buf *out);

/* "numeric", "boolean" or "categorical" (static). */
const char *model_kind_name(enum model_kind k);

/*
 * Learn a schema from a training table: every column but the label and the
 * id is a feature; its kind is decided from its values (docs/model.md,
 * "Columns").  A categorical column whose values are nearly all distinct
 * (an identifier the caller did not name with --id) is left out and named
 * in s->dropped.  0, or FW_EINVAL with a message naming the column when
 * `label` or `id` is not a column of the table or no feature remains.
 */
int model_schema_learn(struct model_schema *s, const struct csv *t, const char *label,
                       const char *positive, const char *id, struct buf *diag);

/*
 * Find each feature column of the schema in table t: idx[i] is the table
 * column of s->cols[i] (idx has s->ncols entries, caller-owned).  0, or
 * FW_ENOTFOUND naming the first missing column.  Extra columns, the label
 * included, are ignored.
 */
int model_schema_bind(const struct model_schema *s, const struct csv *t, size_t *idx,
                      const char *name, struct buf *diag);

/*
 * Encode every data row of t into x (t->nrows * s->nfeat floats, row-major,
 * caller-owned) with the columns found by model_schema_bind.  Missing
 * values are NaN; an unseen category sets none of its column's features.
 */
void model_encode(const struct model_schema *s, const struct csv *t, const size_t *idx, float *x);

/*
 * Encode one cell's text into its column's features of row (row has the
 * schema's nfeat entries; only this column's are written): the one
 * encoding of a value, shared by model_encode (CSV cells) and live
 * scoring (model_live_score), so the same text gives the same features.
 */
void model_encode_cell(const struct model_column *c, const char *text, float *row);

/* Parse a number the way the schema does: [+-]digits[.digits][e[+-]digits], blanks around. */
int model_parse_number(const char *s, double *out);

/*
 * A loaded model that scores one row at a time (serve's churn_model:,
 * docs/model.md "Scoring customers live").  The row is given as the text
 * of each feature column, as a CSV cell would hold it, and is encoded with
 * model_encode_cell, so a live score equals `model score`'s on a CSV row
 * of the same texts.
 */
struct model_live;

/*
 * Load and check a model file (format version, checksum, layout, the
 * booster): 0 and *out (free with model_live_free), or FW_EPARSE / FW_EIO
 * with the reason in diag ("MODEL: model file format version 1; ...") and
 * *out NULL.
 */
int model_live_load(struct model_live **out, const char *path, struct buf *diag);
void model_live_free(struct model_live *ml);
/* The feature columns (schema->cols[0 .. ncols-1]); valid for ml's life. */
const struct model_schema *model_live_schema(const struct model_live *ml);
/* When it was trained (RFC 3339, from the card), or NULL; valid for ml's life. */
const char *model_live_trained(const struct model_live *ml);
/*
 * Score one row: cells[i] is the text of schema column i (NULL or "":
 * missing).  0 and *score, the blend in 0..1, or FW_EIO with XGBoost's
 * message in diag.  Not thread-safe: one caller at a time (it reuses a
 * row buffer).
 */
int model_live_score(struct model_live *ml, const char *const *cells, double *score,
                     struct buf *diag);

/* `forewarn model train|score ...`: the command line; exit status 0, 1 (bad input) or 2 (usage). */
int model_main(int argc, char **argv, const char *version);

#endif
