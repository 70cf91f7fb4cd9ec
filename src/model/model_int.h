/*
 * model_int.h -- the model module's private parts: metrics, the logistic
 * baseline, the XGBoost wrapper, folds, and the model file.
 */
#ifndef FW_MODEL_INT_H
#define FW_MODEL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model/model.h"
#include "util/buf.h"

/* ---- metrics.c: figures over scores s[i] and 0/1 labels y[i] ---- */

/*
 * ROC AUC: the probability that a random positive scores above a random
 * negative, ties counting half (the Mann-Whitney statistic).  NaN when
 * either class is absent.
 */
double model_roc_auc(const double *s, const float *y, size_t n);
/*
 * PR AUC as average precision: the mean, over positives, of the precision
 * at the score of each positive (tied scores taken as one step).  NaN
 * without positives.
 */
double model_pr_auc(const double *s, const float *y, size_t n);

/* The confusion counts at a threshold: predicted positive when s >= threshold. */
struct model_confusion {
    size_t tp, fp, tn, fn;
};
void model_confusion_at(const double *s, const float *y, size_t n, double threshold,
                        struct model_confusion *out);

/* ---- folds: stratified, deterministic ---- */

/*
 * Assign each of n rows a fold 0..k-1 (fold[i], caller-owned): positives
 * and negatives each shuffled with a fixed seed, then dealt in turn, so
 * every fold has the class balance of the whole within one row.
 */
void model_folds(const float *y, size_t n, unsigned k, uint64_t seed, unsigned *fold);

/* ---- logreg.c: the baseline, standardized features, L2, Newton's method ---- */

struct logreg {
    size_t d;       /* features */
    size_t nlog;    /* features that also enter as log1p (the inputs d..d+nlog-1) */
    size_t *logsrc; /* owned, nlog: the feature of each log1p input */
    double *mean;   /* owned, d + nlog: training mean of each input (missing values left out) */
    double *scale;  /* owned, d + nlog: training standard deviation (1 when constant) */
    double *w;      /* owned, d + nlog: weights on standardized inputs */
    double b;       /* intercept */
    double lambda;  /* the L2 penalty it was fitted with */
    unsigned iters; /* Newton steps taken */
};

#define LOGREG_LAMBDA 1.0 /* on the sum of log losses; weak for thousands of rows */

/* Fit on the rows whose mask is set (mask NULL: all).  Allocates m's arrays. */
void logreg_fit(struct logreg *m, const float *x, const float *y, size_t n, size_t d,
                const unsigned char *mask, double lambda);
/* The probability of the positive class for one encoded row (NaN: the mean). */
double logreg_predict(const struct logreg *m, const float *row);
void logreg_cleanup(struct logreg *m);

/* ---- gbt.c: gradient-boosted trees through XGBoost's C API ---- */

struct gbt_params {
    int max_depth;
    double eta;
    double min_child_weight;
    double subsample;
    double colsample;
    double lambda;
    unsigned rounds; /* boosting rounds (chosen by cross-validation) */
};

#define GBT_THREADS 1 /* one: a thread pool only waits on a busy machine, and the data are small */
#define GBT_SEED 7
/* Histogram bins per numeric feature: split search costs bins x features per node, and 64
 * measured as good as XGBoost's 256 on both churn tables (bench/RESULTS.md) at a quarter of it. */
#define GBT_MAX_BIN 64

/* The folds' training and validation matrices, built once and shared by every setting tried. */
struct gbt_folds;
int gbt_folds_new(struct gbt_folds **out, const float *x, const float *y, size_t n, size_t d,
                  const unsigned *fold, unsigned k, struct buf *diag);
void gbt_folds_free(struct gbt_folds *f);

/*
 * Cross-validate one setting: all folds boosted in step, the mean of the
 * folds' validation ROC AUC after each round, stopping `patience` rounds
 * after the best or at max_rounds.  p->rounds gets the best round count,
 * *auc its mean AUC; oof (n, caller-owned, or NULL) gets each row's score
 * from the model that did not see it, at that round count.  0, or FW_EIO
 * with XGBoost's message in diag.
 */
int gbt_cv(struct gbt_folds *f, struct gbt_params *p, unsigned max_rounds, unsigned patience,
           double *auc, double *oof, struct buf *diag);

/* Train on all n rows for p->rounds rounds; *out is the booster's saved bytes (owned). */
int gbt_train(const float *x, const float *y, size_t n, size_t d, const struct gbt_params *p,
              struct buf *out, struct buf *diag);

/* A loaded booster (opaque), its scores for n rows, and its end. */
struct gbt;
int gbt_load(struct gbt **out, const void *bytes, size_t len, size_t d, struct buf *diag);
int gbt_predict(struct gbt *g, const float *x, size_t n, size_t d, double *score,
                struct buf *diag);
void gbt_free(struct gbt *g);

/* ---- file.c: the model file ---- */

struct model {
    struct model_schema schema;
    struct logreg base;
    struct gbt_params params;
    double threshold;     /* the decision threshold metrics were reported at */
    double tree_weight;   /* a score is w x trees' + (1 - w) x baseline's probability (w chosen by CV) */
    struct buf booster;   /* the booster's saved bytes (UBJSON) */
    char *card_json;      /* owned: training figures, as stored in the file (JSON text) */
};

void model_init(struct model *m);
void model_cleanup(struct model *m);

/* Write the model file atomically (a temporary file renamed over path). */
int model_save(const struct model *m, const char *path, struct buf *diag);
/*
 * Read a model file: FW_EPARSE naming what is wrong (not a model file, another
 * format version, corrupted, inconsistent) and nothing loaded.
 */
int model_load(struct model *m, const char *path, struct buf *diag);

/* Write text to path atomically, as model_save does. */
int model_write_atomic(const char *path, const char *data, size_t len, struct buf *diag);

/* ---- train.c, score.c: the commands ---- */

struct train_opts {
    const char *csv, *label, *positive, *id, *out;
    unsigned folds;   /* k of the k-fold cross-validation */
    double threshold; /* predicted positive at or above it */
    size_t ngrid;     /* the first ngrid settings of model__grid are tried */
};

extern const struct gbt_params model__grid[]; /* the hyperparameter settings tried */
extern const size_t model__ngrid;

/* Train and write the model (docs/model.md); report on out, errors on err. 0 or an error code. */
int model__train(const struct train_opts *o, const char *version, FILE *out, FILE *err);
/* Score a CSV with a model file: "id,score" lines on out, written only when all rows scored. */
int model__score(const char *model_path, const char *csv, const char *id, FILE *out, FILE *err);

#endif
