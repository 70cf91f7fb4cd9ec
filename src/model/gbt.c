/*
 * gbt.c -- gradient-boosted trees through XGBoost's C API (libxgboost-dev):
 * binary:logistic, the histogram tree method, a fixed seed and a fixed
 * thread count, so the same data gives the same model on any machine.
 *
 * Cross-validation boosts the k fold models in step and reads each fold's
 * validation AUC after every round from XGBoost's own evaluator (the
 * booster caches its predictions on the matrices it was created with, so a
 * round costs one tree's worth of prediction, not the whole ensemble's).
 * Every XGBoost call is checked; its last error is passed on in diag.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>
#include <xgboost/c_api.h>

#include "model/model_int.h"
#include "util/util.h"

#define XGB(call)                                                                                  \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            buf_printf(diag, "xgboost: %s\n", XGBGetLastError());                                  \
            rc = FW_EIO;                                                                           \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/*
 * OpenMP's thread count for this thread's parallel regions, set before every use of XGBoost.
 * nthread 1 keeps XGBoost's own loops on one thread, but some of its regions take OpenMP's
 * default, one thread per core: the extra threads find nothing to do and spin while they
 * wait, and on a busy machine that spinning took five times the CPU of the training itself
 * (bench/RESULTS.md).  The results do not change.
 */
static void one_thread(void) { omp_set_num_threads(GBT_THREADS); }

struct gbt_folds {
    unsigned k;
    size_t n;
    DMatrixHandle *train, *valid; /* k each */
    size_t **rows;                /* k: the rows of each validation set, in order */
    size_t *nrows;                /* k */
};

/* A DMatrix of the rows of x selected by want(fold[i]), with their labels. */
static int make_matrix(DMatrixHandle *out, const float *x, const float *y, size_t n, size_t d,
                       const unsigned *fold, unsigned f, int in_fold, struct buf *diag)
{
    int rc = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += !fold || ((fold[i] == f) == in_fold);
    float *sx = xmalloc((m * d + 1) * sizeof *sx), *sy = xmalloc((m + 1) * sizeof *sy);
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        if (!fold || ((fold[i] == f) == in_fold)) {
            memcpy(sx + r * d, x + i * d, d * sizeof *sx);
            sy[r++] = y[i];
        }
    *out = NULL;
    XGB(XGDMatrixCreateFromMat(sx, m, d, NAN, out));
    XGB(XGDMatrixSetFloatInfo(*out, "label", sy, m));
out:
    free(sx);
    free(sy);
    return rc;
}

int gbt_folds_new(struct gbt_folds **out, const float *x, const float *y, size_t n, size_t d,
                  const unsigned *fold, unsigned k, struct buf *diag)
{
    int rc = 0;
    one_thread();
    struct gbt_folds *f = xcalloc(1, sizeof *f);
    f->k = k;
    f->n = n;
    f->train = xcalloc(k, sizeof *f->train);
    f->valid = xcalloc(k, sizeof *f->valid);
    f->rows = xcalloc(k, sizeof *f->rows);
    f->nrows = xcalloc(k, sizeof *f->nrows);
    for (unsigned j = 0; j < k; j++) {
        f->rows[j] = xmalloc((n + 1) * sizeof **f->rows);
        for (size_t i = 0; i < n; i++)
            if (fold[i] == j)
                f->rows[j][f->nrows[j]++] = i;
        if ((rc = make_matrix(&f->train[j], x, y, n, d, fold, j, 0, diag)) ||
            (rc = make_matrix(&f->valid[j], x, y, n, d, fold, j, 1, diag)))
            break;
    }
    if (rc) {
        gbt_folds_free(f);
        f = NULL;
    }
    *out = f;
    return rc;
}

void gbt_folds_free(struct gbt_folds *f)
{
    if (!f)
        return;
    for (unsigned j = 0; j < f->k; j++) {
        if (f->train[j])
            XGDMatrixFree(f->train[j]);
        if (f->valid[j])
            XGDMatrixFree(f->valid[j]);
        free(f->rows[j]);
    }
    free(f->train);
    free(f->valid);
    free(f->rows);
    free(f->nrows);
    free(f);
}

/* Set the objective and the setting's parameters on a new booster. */
static int configure(BoosterHandle b, const struct gbt_params *p, struct buf *diag)
{
    int rc = 0;
    char v[64];
    XGB(XGBoosterSetParam(b, "objective", "binary:logistic"));
    XGB(XGBoosterSetParam(b, "eval_metric", "auc"));
    XGB(XGBoosterSetParam(b, "tree_method", "hist"));
    XGB(XGBoosterSetParam(b, "verbosity", "0"));
    snprintf(v, sizeof v, "%d", GBT_THREADS);
    XGB(XGBoosterSetParam(b, "nthread", v));
    snprintf(v, sizeof v, "%d", GBT_SEED);
    XGB(XGBoosterSetParam(b, "seed", v));
    snprintf(v, sizeof v, "%d", p->max_depth);
    XGB(XGBoosterSetParam(b, "max_depth", v));
    snprintf(v, sizeof v, "%.17g", p->eta);
    XGB(XGBoosterSetParam(b, "eta", v));
    snprintf(v, sizeof v, "%.17g", p->min_child_weight);
    XGB(XGBoosterSetParam(b, "min_child_weight", v));
    snprintf(v, sizeof v, "%.17g", p->subsample);
    XGB(XGBoosterSetParam(b, "subsample", v));
    snprintf(v, sizeof v, "%.17g", p->colsample);
    XGB(XGBoosterSetParam(b, "colsample_bytree", v));
    snprintf(v, sizeof v, "%.17g", p->lambda);
    XGB(XGBoosterSetParam(b, "lambda", v));
    snprintf(v, sizeof v, "%d", GBT_MAX_BIN);
    XGB(XGBoosterSetParam(b, "max_bin", v));
out:
    return rc;
}

/* Scores of matrix m from the first `rounds` trees of b, into score[rows[i]] (or score[i]). */
static int predict_into(BoosterHandle b, DMatrixHandle m, unsigned rounds, const size_t *rows,
                        size_t n, double *score, struct buf *diag)
{
    int rc = 0;
    char cfg[160];
    snprintf(cfg, sizeof cfg,
             "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": %u, "
             "\"strict_shape\": false}",
             rounds);
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *res = NULL;
    XGB(XGBoosterPredictFromDMatrix(b, m, cfg, &shape, &dim, &res));
    if (dim != 1 || shape[0] != n) {
        buf_printf(diag, "xgboost: %llu predictions for %zu rows\n",
                   dim ? (unsigned long long)shape[0] : 0ULL, n);
        rc = FW_EIO;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        score[rows ? rows[i] : i] = res[i];
out:
    return rc;
}

int gbt_cv(struct gbt_folds *f, struct gbt_params *p, unsigned max_rounds, unsigned patience,
           double *auc, double *oof, struct buf *diag)
{
    int rc = 0;
    one_thread();
    unsigned k = f->k;
    BoosterHandle *b = xcalloc(k, sizeof *b);
    for (unsigned j = 0; j < k; j++) {
        DMatrixHandle cache[2] = {f->train[j], f->valid[j]};
        XGB(XGBoosterCreate(cache, 2, &b[j]));
        if ((rc = configure(b[j], p, diag)))
            goto out;
    }
    double best = -1;
    unsigned best_round = 0;
    for (unsigned r = 0; r < max_rounds && r < best_round + patience; r++) {
        double sum = 0;
        for (unsigned j = 0; j < k; j++) {
            const char *names[1] = {"valid"}, *res = NULL;
            XGB(XGBoosterUpdateOneIter(b[j], (int)r, f->train[j]));
            XGB(XGBoosterEvalOneIter(b[j], (int)r, &f->valid[j], names, 1, &res));
            const char *at = res ? strstr(res, "valid-auc:") : NULL;
            if (!at) {
                buf_printf(diag, "xgboost: no AUC in its evaluation \"%s\"\n", res ? res : "");
                rc = FW_EIO;
                goto out;
            }
            sum += strtod(at + 10, NULL);
        }
        if (sum / k > best + 1e-12) {
            best = sum / k;
            best_round = r + 1;
        }
    }
    p->rounds = best_round;
    *auc = best;
    for (unsigned j = 0; oof && j < k; j++)
        if ((rc = predict_into(b[j], f->valid[j], best_round, f->rows[j], f->nrows[j], oof, diag)))
            goto out;
out:
    for (unsigned j = 0; j < k; j++)
        if (b[j])
            XGBoosterFree(b[j]);
    free(b);
    return rc;
}

int gbt_train(const float *x, const float *y, size_t n, size_t d, const struct gbt_params *p,
              struct buf *out, struct buf *diag)
{
    int rc = 0;
    one_thread();
    DMatrixHandle m = NULL;
    BoosterHandle b = NULL;
    if ((rc = make_matrix(&m, x, y, n, d, NULL, 0, 1, diag)))
        goto out;
    XGB(XGBoosterCreate(&m, 1, &b));
    if ((rc = configure(b, p, diag)))
        goto out;
    for (unsigned r = 0; r < p->rounds; r++)
        XGB(XGBoosterUpdateOneIter(b, (int)r, m));
    bst_ulong len = 0;
    const char *bytes = NULL;
    XGB(XGBoosterSaveModelToBuffer(b, "{\"format\": \"ubj\"}", &len, &bytes));
    buf_reset(out);
    if (buf_append(out, bytes, len)) {
        buf_printf(diag, "the booster (%llu bytes) is larger than the model file allows\n",
                   (unsigned long long)len);
        rc = FW_ETOOBIG;
    }
out:
    if (b)
        XGBoosterFree(b);
    if (m)
        XGDMatrixFree(m);
    return rc;
}

struct gbt {
    BoosterHandle b;
};

int gbt_load(struct gbt **out, const void *bytes, size_t len, size_t d, struct buf *diag)
{
    int rc = 0;
    one_thread();
    struct gbt *g = xcalloc(1, sizeof *g);
    bst_ulong nf = 0;
    XGB(XGBoosterCreate(NULL, 0, &g->b));
    XGB(XGBoosterLoadModelFromBuffer(g->b, bytes, len));
    XGB(XGBoosterGetNumFeature(g->b, &nf));
    if (nf != d) {
        buf_printf(diag, "the booster expects %llu features, the schema has %zu\n",
                   (unsigned long long)nf, d);
        rc = FW_EPARSE;
        goto out;
    }
    char v[16];
    snprintf(v, sizeof v, "%d", GBT_THREADS);
    XGB(XGBoosterSetParam(g->b, "nthread", v));
out:
    if (rc) {
        gbt_free(g);
        g = NULL;
    }
    *out = g;
    return rc;
}

int gbt_predict(struct gbt *g, const float *x, size_t n, size_t d, double *score,
                struct buf *diag)
{
    int rc = 0;
    one_thread();
    DMatrixHandle m = NULL;
    XGB(XGDMatrixCreateFromMat(x, n, d, NAN, &m));
    rc = predict_into(g->b, m, 0, NULL, n, score, diag);
out:
    if (m)
        XGDMatrixFree(m);
    return rc;
}

void gbt_free(struct gbt *g)
{
    if (!g)
        return;
    if (g->b)
        XGBoosterFree(g->b);
    free(g);
}
