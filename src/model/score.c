/*
 * score.c -- `forewarn model score`: the probability of the positive class
 * for every data row of a CSV, as "id,score" lines: the blend of the trees'
 * and the baseline's probabilities with the weight chosen in training.
 *
 * The model and the whole table are checked first (the file's version and
 * checksum, every feature column present, the id column present); the
 * lines are built in memory and written only when every row has a score,
 * so a failure prints an error and nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"
#include "util/util.h"

/* Append v as a CSV field: quoted when it holds a comma, a quote or a line break. */
static void csv_field(struct buf *b, const char *v)
{
    if (!strpbrk(v, ",\"\r\n")) {
        buf_puts(b, v);
        return;
    }
    buf_putc(b, '"');
    for (; *v; v++) {
        if (*v == '"')
            buf_putc(b, '"');
        buf_putc(b, *v);
    }
    buf_putc(b, '"');
}

int model__score(const char *model_path, const char *csv, const char *id, FILE *out, FILE *err)
{
    int rc = 0;
    struct model m;
    struct csv t;
    struct gbt *g = NULL;
    struct buf diag, lines;
    size_t *idx = NULL;
    float *x = NULL;
    double *score = NULL;
    model_init(&m);
    csv_init(&t);
    buf_init(&diag, 1 << 16);
    buf_init(&lines, 0);
    if ((rc = model_load(&m, model_path, &diag)))
        goto out;
    if ((rc = gbt_load(&g, m.booster.data, m.booster.len, m.schema.nfeat, &diag))) {
        struct buf tmp;
        buf_init(&tmp, 0);
        buf_printf(&tmp, "%s: corrupted model file: %s", model_path, diag.data ? diag.data : "\n");
        buf_cleanup(&diag);
        diag = tmp;
        goto out;
    }
    if ((rc = csv_read_file(&t, csv, &diag)))
        goto out;
    long ic = -1;
    if (id && (ic = csv_column(&t, id)) < 0) {
        buf_printf(&diag, "%s: no column '%s' (the --id column) in the header\n", csv, id);
        rc = FW_ENOTFOUND;
        goto out;
    }
    size_t n = t.nrows, d = m.schema.nfeat;
    idx = xmalloc((m.schema.ncols + 1) * sizeof *idx);
    if ((rc = model_schema_bind(&m.schema, &t, idx, csv, &diag)))
        goto out;
    x = xmalloc((n * d + 1) * sizeof *x);
    score = xmalloc((n + 1) * sizeof *score);
    model_encode(&m.schema, &t, idx, x);
    if (n && (rc = gbt_predict(g, x, n, d, score, &diag)))
        goto out;
    for (size_t r = 0; m.tree_weight < 1 && r < n; r++)
        score[r] = m.tree_weight * score[r] + (1 - m.tree_weight) * logreg_predict(&m.base, x + r * d);
    for (size_t r = 1; r <= n; r++) {
        if (ic >= 0)
            csv_field(&lines, csv_cell(&t, r, (size_t)ic));
        else
            buf_printf(&lines, "%zu", r);
        buf_printf(&lines, ",%.6f\n", score[r - 1]);
    }
    if (lines.len && (fwrite(lines.data, 1, lines.len, out) != lines.len || fflush(out))) {
        buf_puts(&diag, "model score: cannot write the scores\n");
        rc = FW_EIO;
    }
out:
    if (rc)
        fputs(diag.data ? diag.data : "model score: failed\n", err);
    free(score);
    free(x);
    free(idx);
    gbt_free(g);
    buf_cleanup(&lines);
    buf_cleanup(&diag);
    csv_cleanup(&t);
    model_cleanup(&m);
    return rc;
}
