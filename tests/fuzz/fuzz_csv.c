/*
 * fuzz_csv.c -- libFuzzer harness for the CSV reader (util/csv.c) and the
 * model's use of what it reads: the schema learnt from the table and the
 * encoding of its rows.
 *
 *   make fuzz && build/fuzz/fuzz_csv -dict=tests/fuzz/csv.dict tests/fuzz/corpus/csv
 *
 * Invariants checked beyond "no crash, no sanitizer report": a table that
 * parses has ncols cells in every row, each a string within the input's
 * size, and its header names are distinct; a refused table leaves a message
 * and an empty table; an encoded value is NaN, 0/1 for one-hot and boolean
 * features, or finite.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct csv t;
    struct buf d;
    buf_init(&d, 0);
    int rc = csv_parse(&t, "fuzz", (const char *)data, size, &d);
    if (rc) {
        if (!d.len || t.nrows || t.ncols)
            abort();
        buf_cleanup(&d);
        return 0;
    }
    for (size_t r = 0; r <= t.nrows; r++)
        for (size_t c = 0; c < t.ncols; c++)
            if (strlen(csv_cell(&t, r, c)) > size)
                abort();
    for (size_t i = 0; i < t.ncols; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(csv_cell(&t, 0, i), csv_cell(&t, 0, j)))
                abort();
    /* The last column as the label, its first value as the positive class. */
    struct model_schema s;
    if (t.nrows && t.nrows < 2000 &&
        model_schema_learn(&s, &t, csv_cell(&t, 0, t.ncols - 1), csv_cell(&t, 1, t.ncols - 1),
                           NULL, &d) == 0) {
        size_t *idx = malloc((s.ncols + 1) * sizeof *idx);
        float *x = malloc((t.nrows * s.nfeat + 1) * sizeof *x);
        if (model_schema_bind(&s, &t, idx, "fuzz", &d))
            abort(); /* learnt from this table: every column is there */
        model_encode(&s, &t, idx, x);
        for (size_t i = 0; i < s.ncols; i++) {
            const struct model_column *c = &s.cols[i];
            size_t nf = c->kind == MODEL_CATEGORICAL ? c->ncat : 1;
            for (size_t r = 0; r < t.nrows; r++)
                for (size_t f = c->first; f < c->first + nf; f++) {
                    float v = x[r * s.nfeat + f];
                    if (c->kind == MODEL_NUMERIC ? !(isnan(v) || isfinite(v))
                        : c->kind == MODEL_BOOLEAN ? !(isnan(v) || v == 0 || v == 1)
                                                   : !(v == 0 || v == 1))
                        abort();
                }
        }
        free(x);
        free(idx);
        model_schema_cleanup(&s);
    }
    csv_cleanup(&t);
    buf_cleanup(&d);
    return 0;
}
