/*
 * fuzz_model.c -- libFuzzer harness for the churn model file's reader
 * (src/model/file.c: model_load, the schema and baseline sections), as
 * `forewarn model score --model FILE` and serve's `churn_model:` read it.
 *
 * A model file ends with a checksum of everything before it, which random
 * bytes never match; so the harness builds the file around its input --
 * the first line with this build's format, the schema section (the input
 * up to its first NUL byte), a booster section (the rest) and a correct
 * checksum line -- and the mutations reach the schema parser.  One input
 * in sixteen (first byte 'R') is taken as a whole file, unframed, so the
 * framing and checksum checks are fuzzed too.  XGBoost's own reading of
 * the booster bytes is not ours and is not fuzzed here.
 *
 * Invariants beyond "no crash, no sanitizer report, no leak":
 *   - a refused file says why, naming the file;
 *   - a loaded model's columns tile its features (first + width, in order,
 *     up to nfeat), and every cell text encodes inside that row; the
 *     baseline's score of a row (all missing, or every column given a
 *     text) is a probability.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/model.h"
#include "model/model_int.h"
#include "util/buf.h"
#include "util/util.h"

static const char *const cells[] = {"", "Yes", "no", "12.5", "-3", "NaN", "1e308", "x"};

static void check_model(const struct model *m)
{
    const struct model_schema *s = &m->schema;
    size_t at = 0;
    for (size_t c = 0; c < s->ncols; c++) {
        const struct model_column *col = &s->cols[c];
        size_t width = col->kind == MODEL_CATEGORICAL ? col->ncat : 1;
        if (col->first != at || width > s->nfeat - at)
            abort();
        at += width;
    }
    if (at != s->nfeat || m->base.d != s->nfeat)
        abort();
    float *row = xcalloc(s->nfeat + 1, sizeof *row);
    for (size_t k = 0; k < sizeof cells / sizeof *cells; k++) {
        for (size_t f = 0; f < s->nfeat; f++)
            row[f] = NAN;
        for (size_t c = 0; c < s->ncols && k; c++)
            model_encode_cell(&s->cols[c], cells[(k + c) % (sizeof cells / sizeof *cells)], row);
        double p = logreg_predict(&m->base, row);
        if (!(p >= 0 && p <= 1))
            abort();
    }
    free(row);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf file;
    buf_init(&file, 0);
    if (size && data[0] == 'R') {
        buf_append(&file, data + 1, size - 1);
    } else {
        const uint8_t *z = memchr(data, '\0', size);
        size_t slen = z ? (size_t)(z - data) : size;
        size_t blen = z ? size - slen - 1 : 0;
        buf_printf(&file, "forewarn-model %d\nschema %zu\n", MODEL_FORMAT, slen);
        buf_append(&file, data, slen);
        buf_printf(&file, "\nbooster %zu\n", blen);
        buf_append(&file, z ? z + 1 : data, blen);
        buf_putc(&file, '\n');
        buf_printf(&file, "fnv1a64 %016" PRIx64 "\n", fw_hash(file.data, file.len));
    }
    int fd = memfd_create("fuzz-model", 0);
    if (fd < 0)
        abort();
    for (size_t off = 0; off < file.len;) {
        ssize_t w = write(fd, file.data + off, file.len - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct model m;
    struct buf diag;
    buf_init(&diag, 0);
    if (model_load(&m, path, &diag) == 0) {
        check_model(&m);
        model_cleanup(&m);
    } else if (!diag.data || !strstr(diag.data, path)) {
        abort();
    }
    buf_cleanup(&diag);
    buf_cleanup(&file);
    close(fd);
    return 0;
}
