/*
 * train.c -- `forewarn model train`: read the table, learn the schema,
 * pick the trees' hyperparameters by stratified k-fold cross-validation,
 * measure the trees, the logistic baseline and the majority class on the
 * same folds, then train both on every row and write the model file and
 * its card.
 *
 * Every figure printed comes from the out-of-fold scores (each row scored
 * by the fold model that did not see it) and is printed with the counts it
 * rests on.  The grid and the rounds are chosen on those same folds, so the
 * trees' cross-validated figures carry a small optimism (a handful of
 * settings tried); the holdout figures in bench/RESULTS.md do not.
 * Nothing is written until every step has succeeded.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "model/model_int.h"
#include "util/fwtime.h"
#include "util/util.h"

#define MAX_ROUNDS 2000
#define PATIENCE 40
#define FOLD_SEED 20240613
#define BLEND_STEPS 10 /* the trees' weight in the blend is tried in steps of 1/BLEND_STEPS */

/*
 * The settings tried (docs/model.md, "How the model is chosen"): shallow trees with a small
 * learning rate, the kind that wins on tables of a few thousand customers, and two deeper ones
 * at a faster rate (deep trees cost the most per round, and need fewer).  The first is what
 * --grid quick tries.
 */
const struct gbt_params model__grid[] = {
    {.max_depth = 3, .eta = 0.05, .min_child_weight = 1, .subsample = 0.8, .colsample = 0.8, .lambda = 1},
    {.max_depth = 2, .eta = 0.05, .min_child_weight = 1, .subsample = 0.8, .colsample = 0.8, .lambda = 1},
    {.max_depth = 4, .eta = 0.1, .min_child_weight = 5, .subsample = 0.8, .colsample = 0.8, .lambda = 1},
    {.max_depth = 6, .eta = 0.1, .min_child_weight = 5, .subsample = 0.8, .colsample = 0.8, .lambda = 1},
};
const size_t model__ngrid = ARRAY_SIZE(model__grid);

/* The figures of one scorer over the out-of-fold scores. */
struct figures {
    double roc, pr;
    struct model_confusion c;
};

static void measure(const double *s, const float *y, size_t n, double thr, struct figures *f)
{
    f->roc = model_roc_auc(s, y, n);
    f->pr = model_pr_auc(s, y, n);
    model_confusion_at(s, y, n, thr, &f->c);
}

static double ratio(size_t a, size_t b) { return b ? (double)a / (double)b : NAN; }

static void print_figures(FILE *o, const char *who, const struct figures *f, size_t n)
{
    const struct model_confusion *c = &f->c;
    fprintf(o,
            "  %-8s ROC AUC %.4f  PR AUC %.4f  accuracy %.4f (%zu/%zu)  recall %.4f (%zu/%zu)  "
            "precision %.4f (%zu/%zu)\n",
            who, f->roc, f->pr, ratio(c->tp + c->tn, n), c->tp + c->tn, n, ratio(c->tp, c->tp + c->fn),
            c->tp, c->tp + c->fn, ratio(c->tp, c->tp + c->fp), c->tp, c->tp + c->fp);
}

static json_t *figures_json(const struct figures *f, size_t n)
{
    const struct model_confusion *c = &f->c;
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:{s:I, s:I, s:I, s:I}}", "roc_auc",
                     isnan(f->roc) ? 0 : f->roc, "pr_auc", isnan(f->pr) ? 0 : f->pr, "accuracy",
                     ratio(c->tp + c->tn, n), "recall",
                     c->tp + c->fn ? ratio(c->tp, c->tp + c->fn) : 0, "precision",
                     c->tp + c->fp ? ratio(c->tp, c->tp + c->fp) : 0, "counts", "tp",
                     (json_int_t)c->tp, "fp", (json_int_t)c->fp, "tn", (json_int_t)c->tn, "fn",
                     (json_int_t)c->fn);
}

static void card_row(struct buf *md, const char *who, const struct figures *f, size_t n)
{
    const struct model_confusion *c = &f->c;
    buf_printf(md, "| %s | %.4f | %.4f | %.4f (%zu/%zu) | %.4f (%zu/%zu) | %.4f (%zu/%zu) |\n", who,
               f->roc, f->pr, ratio(c->tp + c->tn, n), c->tp + c->tn, n,
               ratio(c->tp, c->tp + c->fn), c->tp, c->tp + c->fn, ratio(c->tp, c->tp + c->fp), c->tp,
               c->tp + c->fp);
}

/* The label's distinct values with counts, for the message when --positive matches nothing. */
static void label_values(const struct csv *t, size_t col, struct buf *out)
{
    size_t shown = 0;
    for (size_t r = 1; r <= t->nrows && shown < 10; r++) {
        const char *v = csv_cell(t, r, col);
        size_t seen = 0, count = 0;
        for (size_t q = 1; q < r && !seen; q++)
            seen = !strcmp(csv_cell(t, q, col), v);
        if (seen)
            continue;
        for (size_t q = r; q <= t->nrows; q++)
            count += !strcmp(csv_cell(t, q, col), v);
        buf_printf(out, "%s'%s' (%zu)", shown ? ", " : "", v, count);
        shown++;
    }
}

/* The label column's value without surrounding blanks, compared with --positive. */
static int is_positive(const char *v, const char *positive)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v), pn = strlen(positive);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n == pn && !memcmp(v, positive, n);
}

static int blank(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    return !*v;
}

int model__train(const struct train_opts *o, const char *version, FILE *out, FILE *err)
{
    int rc = 0;
    int64_t t0 = fw_mono_ns();
    struct csv t;
    struct model m;
    struct buf diag, md, card_path;
    float *x = NULL, *y = NULL;
    unsigned *fold = NULL;
    double *oof = NULL, *best_oof = NULL, *lr_oof = NULL;
    unsigned char *mask = NULL;
    struct gbt_folds *gf = NULL;
    json_t *card = NULL;
    csv_init(&t);
    model_init(&m);
    buf_init(&diag, 1 << 16);
    buf_init(&md, 0);
    buf_init(&card_path, 0);

    if ((rc = csv_read_file(&t, o->csv, &diag)))
        goto out;
    if (t.nrows == 0) {
        buf_printf(&diag, "%s: no data rows after the header\n", o->csv);
        rc = FW_EINVAL;
        goto out;
    }
    if ((rc = model_schema_learn(&m.schema, &t, o->label, o->positive, o->id, &diag))) {
        struct buf tmp;
        buf_init(&tmp, 0);
        buf_printf(&tmp, "%s: %s", o->csv, diag.data);
        buf_cleanup(&diag);
        diag = tmp;
        goto out;
    }
    struct model_schema *s = &m.schema;
    size_t n = t.nrows, d = s->nfeat, lc = (size_t)csv_column(&t, o->label);
    y = xmalloc(n * sizeof *y);
    size_t npos = 0;
    for (size_t r = 1; r <= n; r++) {
        const char *v = csv_cell(&t, r, lc);
        if (blank(v)) {
            buf_printf(&diag, "%s:%zu: column '%s' (the label) is empty in data row %zu\n", o->csv,
                       csv_line(&t, r), o->label, r);
            rc = FW_EINVAL;
            goto out;
        }
        y[r - 1] = is_positive(v, o->positive);
        npos += y[r - 1] > 0.5;
    }
    size_t nneg = n - npos;
    if (npos == 0 || nneg == 0) {
        buf_printf(&diag, "%s: column '%s' (the label) has %s: %s rows are %s; the column holds ",
                   o->csv, o->label, npos ? "one class only" : "no row equal to --positive",
                   npos ? "all" : "no", npos ? "positive" : o->positive);
        label_values(&t, lc, &diag);
        buf_puts(&diag, "\n");
        rc = FW_EINVAL;
        goto out;
    }
    unsigned k = o->folds;
    if (npos < k || nneg < k) {
        buf_printf(&diag, "%s: %zu positive and %zu negative rows: too few for %u folds (each "
                   "fold needs one of each)\n", o->csv, npos, nneg, k);
        rc = FW_EINVAL;
        goto out;
    }
    x = xmalloc((n * d + 1) * sizeof *x);
    size_t *idx = xmalloc((s->ncols + 1) * sizeof *idx);
    model_schema_bind(s, &t, idx, o->csv, &diag); /* learnt from this table: every column is there */
    model_encode(s, &t, idx, x);
    free(idx);

    size_t nnum = 0, nbool = 0, ncat = 0, ncatfeat = 0;
    for (size_t i = 0; i < s->ncols; i++) {
        nnum += s->cols[i].kind == MODEL_NUMERIC;
        nbool += s->cols[i].kind == MODEL_BOOLEAN;
        if (s->cols[i].kind == MODEL_CATEGORICAL)
            ncat++, ncatfeat += s->cols[i].ncat;
    }
    fprintf(out, "data: %s, %zu rows, %zu positive (%s = '%s', %.1f%%), %zu negative\n", o->csv, n,
            npos, o->label, o->positive, 100.0 * (double)npos / (double)n, nneg);
    fprintf(out, "features: %zu columns -> %zu features (%zu numeric, %zu boolean, %zu categorical "
            "as %zu one-hot)%s%s\n", s->ncols, d, nnum, nbool, ncat, ncatfeat,
            o->id ? "; id column " : "", o->id ? o->id : "");
    for (size_t i = 0; i < s->ndropped; i++)
        fprintf(out, "  left out '%s': nearly every value distinct, an identifier (name it with "
                "--id)\n", s->dropped[i]);

    /* The folds and the grid. */
    fold = xmalloc(n * sizeof *fold);
    model_folds(y, n, k, FOLD_SEED, fold);
    if ((rc = gbt_folds_new(&gf, x, y, n, d, fold, k, &diag)))
        goto out;
    oof = xmalloc(n * sizeof *oof);
    best_oof = xmalloc(n * sizeof *best_oof);
    double best_auc = -1;
    fprintf(out, "grid: %u-fold stratified cross-validation, %zu settings, early stopping after %d "
            "rounds without gain\n", k, o->ngrid, PATIENCE);
    for (size_t g = 0; g < o->ngrid; g++) {
        struct gbt_params p = model__grid[g];
        double auc;
        int64_t g0 = fw_mono_ns();
        if ((rc = gbt_cv(gf, &p, MAX_ROUNDS, PATIENCE, &auc, oof, &diag)))
            goto out;
        fprintf(out, "  max_depth %d eta %.2f min_child_weight %g: %u rounds, mean fold ROC AUC "
                "%.4f (%.1f s)\n", p.max_depth, p.eta, p.min_child_weight, p.rounds, auc,
                (double)(fw_mono_ns() - g0) / 1e9);
        if (auc > best_auc) {
            best_auc = auc;
            m.params = p;
            memcpy(best_oof, oof, n * sizeof *oof);
        }
    }
    fprintf(out, "chosen: max_depth %d eta %.2f min_child_weight %g subsample %.1f colsample_bytree "
            "%.1f lambda %g, %u rounds\n", m.params.max_depth, m.params.eta,
            m.params.min_child_weight, m.params.subsample, m.params.colsample, m.params.lambda,
            m.params.rounds);

    /* The baseline on the same folds. */
    lr_oof = xmalloc(n * sizeof *lr_oof);
    mask = xmalloc(n);
    for (unsigned j = 0; j < k; j++) {
        struct logreg lr;
        for (size_t i = 0; i < n; i++)
            mask[i] = fold[i] != j;
        logreg_fit(&lr, x, y, n, d, mask, LOGREG_LAMBDA);
        for (size_t i = 0; i < n; i++)
            if (!mask[i])
                lr_oof[i] = logreg_predict(&lr, x + i * d);
        logreg_cleanup(&lr);
    }
    /*
     * The blend w x trees + (1 - w) x baseline, w in steps of 0.1, with the weight whose
     * out-of-fold scores rank best (ties to the larger weight: the trees).  On tables where
     * a linear model is nearly as good as trees the two err differently and a blend ranks
     * better than either; where trees are much better the weight stays at or near 1.
     */
    double *mix = xmalloc(n * sizeof *mix);
    double best_mix = -1;
    m.tree_weight = 1;
    for (int step = BLEND_STEPS; step >= 0; step--) {
        double w = (double)step / BLEND_STEPS;
        for (size_t i = 0; i < n; i++)
            mix[i] = w * best_oof[i] + (1 - w) * lr_oof[i];
        double auc = model_roc_auc(mix, y, n);
        if (auc > best_mix) {
            best_mix = auc;
            m.tree_weight = w;
        }
    }
    for (size_t i = 0; i < n; i++)
        mix[i] = m.tree_weight * best_oof[i] + (1 - m.tree_weight) * lr_oof[i];
    struct figures ft, fl, fm;
    m.threshold = o->threshold;
    measure(best_oof, y, n, o->threshold, &ft);
    measure(lr_oof, y, n, o->threshold, &fl);
    measure(mix, y, n, o->threshold, &fm);
    free(mix);
    size_t maj = npos > nneg ? npos : nneg;
    fprintf(out, "cross-validated (%u folds, %zu rows, %zu positive), threshold %.2f:\n", k, n, npos,
            o->threshold);
    print_figures(out, "trees", &ft, n);
    print_figures(out, "baseline", &fl, n);
    print_figures(out, "blend", &fm, n);
    fprintf(out, "  scores: %.1f x trees + %.1f x baseline (the blend weight that ranks best)\n",
            m.tree_weight, 1 - m.tree_weight);
    fprintf(out, "  majority accuracy %.4f (%zu/%zu), always %s\n", ratio(maj, n), maj, n,
            npos > nneg ? "positive" : "negative");

    /* The final models, on every row. */
    if ((rc = gbt_train(x, y, n, d, &m.params, &m.booster, &diag)))
        goto out;
    logreg_fit(&m.base, x, y, n, d, NULL, LOGREG_LAMBDA);
    double secs = (double)(fw_mono_ns() - t0) / 1e9;

    /* The card: in the model file (JSON) and beside it (Markdown). */
    char when[FW_TIME_MAXLEN];
    fw_time_format(fw_wall_now() / 1000 * 1000, when);
    json_t *cols = json_array();
    for (size_t i = 0; i < s->ncols; i++)
        json_array_append_new(cols, json_pack("{s:s, s:s, s:I, s:I}", "name", s->cols[i].name,
                                              "type", model_kind_name(s->cols[i].kind),
                                              "features", (json_int_t)(s->cols[i].kind ==
                                                  MODEL_CATEGORICAL ? s->cols[i].ncat : 1),
                                              "missing", (json_int_t)s->cols[i].n_missing));
    card = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:i, s:f, s:o, s:o, s:o, s:f, "
                     "s:{s:f, s:I, s:I}, "
                     "s:f}",
                     "trained", when, "forewarn", version, "data", o->csv, "rows", (json_int_t)n,
                     "positive", (json_int_t)npos, "negative", (json_int_t)nneg, "columns", cols,
                     "folds", (int)k, "threshold", o->threshold, "trees", figures_json(&ft, n),
                     "baseline", figures_json(&fl, n), "blend", figures_json(&fm, n), "tree_weight", m.tree_weight, "majority", "accuracy", ratio(maj, n),
                     "correct", (json_int_t)maj, "rows", (json_int_t)n, "seconds", secs);
    m.card_json = json_dumps(card, JSON_COMPACT);

    buf_printf(&md, "# Model card: %s\n\n", o->out);
    buf_printf(&md, "- Trained %s by forewarn %s (`forewarn model train`), in %.1f s.\n", when,
               version, secs);
    buf_printf(&md, "- Data: `%s`, %zu rows: %zu positive (`%s` = `%s`, %.1f%%), %zu negative.\n",
               o->csv, n, npos, o->label, o->positive, 100.0 * (double)npos / (double)n, nneg);
    buf_printf(&md, "- Id column: %s.\n", o->id ? o->id : "none (rows are scored by number)");
    buf_printf(&md, "\n## Features\n\n%zu columns, %zu features.\n\n", s->ncols, d);
    buf_puts(&md, "| column | type | features | missing at training |\n| --- | --- | ---: | ---: |\n");
    for (size_t i = 0; i < s->ncols; i++) {
        const struct model_column *c = &s->cols[i];
        buf_printf(&md, "| %s | %s | %zu | %zu |\n", c->name, model_kind_name(c->kind),
                   c->kind == MODEL_CATEGORICAL ? c->ncat : 1, c->n_missing);
    }
    for (size_t i = 0; i < s->ndropped; i++)
        buf_printf(&md, "\nLeft out: `%s` (nearly every value distinct: an identifier).\n",
                   s->dropped[i]);
    buf_printf(&md, "\n## Hyperparameters\n\nTrees (XGBoost %s, binary:logistic, hist): max_depth "
               "%d, eta %g, min_child_weight %g, subsample %g, colsample_bytree %g, lambda %g, "
               "%u rounds, seed %d, %d threads; chosen from %zu settings by %u-fold "
               "cross-validated ROC AUC (%.4f).\n\nBaseline: logistic regression on standardized "
               "features and log1p of the non-negative ones that are not flags, L2 penalty %g, missing "
               "values at the mean; the scores blend it with the trees (weight by cross-validated "
               "ROC AUC).\n",
               "1.7", m.params.max_depth, m.params.eta, m.params.min_child_weight,
               m.params.subsample, m.params.colsample, m.params.lambda, m.params.rounds, GBT_SEED,
               GBT_THREADS, o->ngrid, k, best_auc, LOGREG_LAMBDA);
    buf_printf(&md, "\n## Cross-validated metrics\n\n%u stratified folds, %zu rows, %zu positive; "
               "threshold %.2f (accuracy, recall, precision).\n\n", k, n, npos, o->threshold);
    buf_puts(&md, "| model | ROC AUC | PR AUC | accuracy | recall | precision |\n"
                  "| --- | ---: | ---: | ---: | ---: | ---: |\n");
    card_row(&md, "trees", &ft, n);
    card_row(&md, "baseline", &fl, n);
    char who[64];
    snprintf(who, sizeof who, "blend (%.1f x trees + %.1f x baseline; the scores)", m.tree_weight,
             1 - m.tree_weight);
    card_row(&md, who, &fm, n);
    buf_printf(&md, "| majority (always %s) | 0.5000 | | %.4f (%zu/%zu) | | |\n",
               npos > nneg ? "positive" : "negative", ratio(maj, n), maj, n);

    buf_printf(&card_path, "%s.card.md", o->out);
    if ((rc = model_save(&m, o->out, &diag)))
        goto out;
    if ((rc = model_write_atomic(card_path.data, md.data, md.len, &diag)))
        goto out;
    fprintf(out, "wrote %s and %s (trained on all %zu rows; %.1f s in all)\n", o->out,
            card_path.data, n, secs);
out:
    if (rc)
        fputs(diag.data ? diag.data : "model train: failed\n", err);
    json_decref(card);
    gbt_folds_free(gf);
    free(mask);
    free(lr_oof);
    free(best_oof);
    free(oof);
    free(fold);
    free(x);
    free(y);
    buf_cleanup(&card_path);
    buf_cleanup(&md);
    buf_cleanup(&diag);
    model_cleanup(&m);
    csv_cleanup(&t);
    return rc;
}
