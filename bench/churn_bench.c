/*
 * churn_bench.c -- the cost of scoring one customer live with the churn
 * model (serve's churn_model:, docs/model.md "Scoring customers live"):
 * every data row of a CSV is scored one at a time through
 * model_live_score, as the engine scores a customer, and the CPU time per
 * score is reported, beside the time per row of scoring the whole table in
 * one batch as `forewarn model score` does.
 *
 *     churn_bench --model MODEL --csv FILE [--rounds N]
 *
 * Prints one JSON object: rows, rounds, features, ns per live score, ns per
 * row in a batch, and the largest difference between the two scores of a
 * row (0: the invariant that live equals offline).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model_int.h"
#include "util/csv.h"
#include "util/util.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *csvp = NULL;
    int rounds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--csv"))
            csvp = argv[i + 1];
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
    }
    if (!model || !csvp || rounds < 1) {
        fprintf(stderr, "usage: churn_bench --model MODEL --csv FILE [--rounds N]\n");
        return 2;
    }
    struct buf d;
    buf_init(&d, 0);
    struct model_live *ml = NULL;
    struct csv t;
    if (model_live_load(&ml, model, &d) || csv_read_file(&t, csvp, &d)) {
        fputs(d.data ? d.data : "churn_bench: cannot load\n", stderr);
        return 1;
    }
    const struct model_schema *s = model_live_schema(ml);
    size_t n = t.nrows, *idx = xmalloc((s->ncols + 1) * sizeof *idx);
    if (model_schema_bind(s, &t, idx, csvp, &d)) {
        fputs(d.data, stderr);
        return 1;
    }
    const char **cells = xmalloc((s->ncols + 1) * sizeof *cells);
    double *live = xmalloc((n + 1) * sizeof *live);
    double t0 = cpu_s();
    for (int k = 0; k < rounds; k++)
        for (size_t r = 1; r <= n; r++) {
            for (size_t i = 0; i < s->ncols; i++)
                cells[i] = csv_cell(&t, r, idx[i]);
            if (model_live_score(ml, cells, &live[r - 1], &d)) {
                fputs(d.data, stderr);
                return 1;
            }
        }
    double per_live = (cpu_s() - t0) / ((double)n * rounds);
    /* The batch: model score's way, the whole table in one DMatrix. */
    struct model m;
    struct gbt *g = NULL;
    model_init(&m);
    if (model_load(&m, model, &d) || gbt_load(&g, m.booster.data, m.booster.len, s->nfeat, &d)) {
        fputs(d.data, stderr);
        return 1;
    }
    float *x = xmalloc((n * s->nfeat + 1) * sizeof *x);
    double *batch = xmalloc((n + 1) * sizeof *batch);
    t0 = cpu_s();
    for (int k = 0; k < rounds; k++) {
        model_encode(s, &t, idx, x);
        if (gbt_predict(g, x, n, s->nfeat, batch, &d)) {
            fputs(d.data, stderr);
            return 1;
        }
        for (size_t r = 0; m.tree_weight < 1 && r < n; r++)
            batch[r] = m.tree_weight * batch[r] +
                       (1 - m.tree_weight) * logreg_predict(&m.base, x + r * s->nfeat);
    }
    double per_batch = (cpu_s() - t0) / ((double)n * rounds);
    double maxdiff = 0;
    for (size_t r = 0; r < n; r++)
        maxdiff = fmax(maxdiff, fabs(live[r] - batch[r]));
    printf("{\"rows\": %zu, \"rounds\": %d, \"columns\": %zu, \"features\": %zu, \"tree_weight\": %g, "
           "\"live_ns_per_score\": %.0f, \"batch_ns_per_row\": %.0f, \"max_abs_diff\": %g}\n",
           n, rounds, s->ncols, s->nfeat, m.tree_weight, per_live * 1e9, per_batch * 1e9, maxdiff);
    gbt_free(g);
    model_cleanup(&m);
    free(x);
    free(batch);
    free(live);
    free(cells);
    free(idx);
    csv_cleanup(&t);
    model_live_free(ml);
    buf_cleanup(&d);
    return 0;
}
