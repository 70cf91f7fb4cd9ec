/*
 * file.c -- the model file (docs/model.md, "File format"): one file with
 * a format version, the feature schema and the baseline as JSON, the
 * booster as XGBoost saved it (UBJSON), and a checksum over all of it.
 *
 *   forewarn-model 1\n
 *   schema <bytes>\n<JSON>\n
 *   booster <bytes>\n<XGBoost's saved model>\n
 *   fnv1a64 <16 hex digits of FNV-1a over everything above>\n
 *
 * Loading checks all of it before anything is used: a file of another
 * version, a truncated or altered one, a schema whose layout does not add
 * up, or a booster of another width is refused with the reason.  Writing
 * goes to a temporary file in the same directory, renamed over the target
 * only once it is complete and flushed, so a failed train never leaves a
 * partial model behind.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model_int.h"
#include "util/util.h"

#define MAGIC "forewarn-model "
#define MODEL_MAX_BYTES ((size_t)256 << 20)

void model_init(struct model *m)
{
    memset(m, 0, sizeof *m);
    model_schema_init(&m->schema);
    buf_init(&m->booster, MODEL_MAX_BYTES);
}

void model_cleanup(struct model *m)
{
    model_schema_cleanup(&m->schema);
    logreg_cleanup(&m->base);
    buf_cleanup(&m->booster);
    free(m->card_json);
    memset(m, 0, sizeof *m);
}

int model_write_atomic(const char *path, const char *data, size_t len, struct buf *diag)
{
    struct buf tmp;
    buf_init(&tmp, 0);
    buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    int rc = 0;
    FILE *f = fopen(tmp.data, "wb");
    if (!f) {
        buf_printf(diag, "%s: cannot write: %s\n", path, strerror(errno));
        rc = FW_EIO;
        goto out;
    }
    int bad = fwrite(data, 1, len, f) != len;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp.data, path) != 0) {
        buf_printf(diag, "%s: cannot write: %s\n", path, strerror(errno));
        unlink(tmp.data);
        rc = FW_EIO;
    }
out:
    buf_cleanup(&tmp);
    return rc;
}

static json_t *doubles(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static json_t *schema_json(const struct model *m)
{
    const struct model_schema *s = &m->schema;
    json_t *cols = json_array();
    for (size_t i = 0; i < s->ncols; i++) {
        const struct model_column *c = &s->cols[i];
        json_t *o = json_pack("{s:s, s:s, s:I}", "name", c->name, "type", model_kind_name(c->kind),
                              "first", (json_int_t)c->first);
        if (c->kind == MODEL_CATEGORICAL) {
            json_t *cats = json_array();
            for (size_t j = 0; j < c->ncat; j++)
                json_array_append_new(cats, json_string(c->cats[j]));
            json_object_set_new(o, "categories", cats);
        }
        json_array_append_new(cols, o);
    }
    const struct gbt_params *p = &m->params;
    json_t *trees = json_pack("{s:s, s:i, s:f, s:f, s:f, s:f, s:f, s:I, s:i, s:i, s:i}", "objective",
                              "binary:logistic", "max_depth", p->max_depth, "eta", p->eta,
                              "min_child_weight", p->min_child_weight, "subsample", p->subsample,
                              "colsample_bytree", p->colsample, "lambda", p->lambda, "rounds",
                              (json_int_t)p->rounds, "threads", GBT_THREADS, "seed", GBT_SEED, "max_bin", GBT_MAX_BIN);
    size_t q = m->base.d + m->base.nlog;
    json_t *logs = json_array();
    for (size_t j = 0; j < m->base.nlog; j++)
        json_array_append_new(logs, json_integer((json_int_t)m->base.logsrc[j]));
    json_t *base = json_pack("{s:f, s:f, s:o, s:o, s:o, s:o}", "lambda", m->base.lambda,
                             "intercept", m->base.b, "log1p", logs, "mean",
                             doubles(m->base.mean, q), "scale", doubles(m->base.scale, q),
                             "weights", doubles(m->base.w, q));
    json_t *o = json_pack("{s:i, s:s, s:s, s:o, s:f, s:f, s:I, s:o, s:o, s:o}", "format", MODEL_FORMAT,
                          "label", s->label, "positive", s->positive, "id",
                          s->id ? json_string(s->id) : json_null(), "threshold", m->threshold,
                          "tree_weight", m->tree_weight, "features", (json_int_t)s->nfeat, "columns", cols, "trees", trees,
                          "baseline", base);
    json_t *card = m->card_json ? json_loads(m->card_json, 0, NULL) : NULL;
    json_object_set_new(o, "training", card ? card : json_object());
    return o;
}

int model_save(const struct model *m, const char *path, struct buf *diag)
{
    json_t *o = schema_json(m);
    char *js = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    struct buf out;
    buf_init(&out, 0);
    buf_printf(&out, MAGIC "%d\nschema %zu\n%s\nbooster %zu\n", MODEL_FORMAT, strlen(js), js,
               m->booster.len);
    buf_append(&out, m->booster.data ? m->booster.data : "", m->booster.len);
    buf_putc(&out, '\n');
    buf_printf(&out, "fnv1a64 %016" PRIx64 "\n", fw_hash(out.data, out.len));
    free(js);
    int rc = model_write_atomic(path, out.data, out.len, diag);
    buf_cleanup(&out);
    return rc;
}

/* Read "<word> <decimal>\n" at *pos; the number into *v.  0 or -1. */
static int header(const char *d, size_t n, size_t *pos, const char *word, size_t *v)
{
    size_t wl = strlen(word), p = *pos;
    if (n - p < wl + 2 || memcmp(d + p, word, wl) || d[p + wl] != ' ')
        return -1;
    p += wl + 1;
    size_t x = 0, digits = 0;
    while (p < n && d[p] >= '0' && d[p] <= '9' && digits < 12)
        x = x * 10 + (size_t)(d[p++] - '0'), digits++;
    if (!digits || p >= n || d[p] != '\n')
        return -1;
    *pos = p + 1;
    *v = x;
    return 0;
}

static int get_doubles(json_t *a, size_t n, double **out)
{
    if (!json_is_array(a) || json_array_size(a) != n)
        return -1;
    *out = xcalloc(n + 1, sizeof **out);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return -1;
        (*out)[i] = json_number_value(v);
    }
    return 0;
}

/* Fill m from the schema JSON; a message naming the first inconsistency on failure. */
static int schema_from_json(struct model *m, json_t *o, struct buf *why)
{
    struct model_schema *s = &m->schema;
    json_t *cols = json_object_get(o, "columns"), *trees = json_object_get(o, "trees");
    json_t *base = json_object_get(o, "baseline"), *id = json_object_get(o, "id");
    const char *label = json_string_value(json_object_get(o, "label"));
    const char *pos = json_string_value(json_object_get(o, "positive"));
    json_t *nf = json_object_get(o, "features"), *thr = json_object_get(o, "threshold");
    if (!label || !pos || !json_is_array(cols) || !json_is_object(trees) ||
        !json_is_object(base) || !json_is_integer(nf) || !json_is_number(thr) ||
        !(json_is_string(id) || json_is_null(id))) {
        buf_puts(why, "the schema lacks label, positive, id, features, threshold, columns, trees "
                      "or baseline");
        return -1;
    }
    s->label = xstrdup(label);
    s->positive = xstrdup(pos);
    s->id = json_is_string(id) ? xstrdup(json_string_value(id)) : NULL;
    m->threshold = json_number_value(thr);
    json_t *tw = json_object_get(o, "tree_weight");
    m->tree_weight = json_number_value(tw);
    if (!json_is_number(tw) || !(m->tree_weight >= 0 && m->tree_weight <= 1)) {
        buf_puts(why, "the schema's tree_weight is not a number from 0 to 1");
        return -1;
    }
    size_t nc = json_array_size(cols);
    s->cols = xcalloc(nc + 1, sizeof *s->cols);
    for (size_t i = 0; i < nc; i++) {
        json_t *c = json_array_get(cols, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *type = json_string_value(json_object_get(c, "type"));
        json_t *first = json_object_get(c, "first");
        if (!name || !type || !json_is_integer(first) ||
            (json_integer_value(first) != (json_int_t)s->nfeat)) {
            buf_printf(why, "column %zu: no name or type, or features out of order", i + 1);
            return -1;
        }
        struct model_column *mc = &s->cols[s->ncols++];
        mc->name = xstrdup(name);
        mc->first = s->nfeat;
        if (!strcmp(type, "numeric"))
            mc->kind = MODEL_NUMERIC;
        else if (!strcmp(type, "boolean"))
            mc->kind = MODEL_BOOLEAN;
        else if (!strcmp(type, "categorical"))
            mc->kind = MODEL_CATEGORICAL;
        else {
            buf_printf(why, "column '%s': unknown type '%s'", name, type);
            return -1;
        }
        if (mc->kind != MODEL_CATEGORICAL) {
            s->nfeat++;
            continue;
        }
        json_t *cats = json_object_get(c, "categories");
        if (!json_is_array(cats) || json_array_size(cats) > MODEL_MAX_CATEGORIES) {
            buf_printf(why, "column '%s': no categories", name);
            return -1;
        }
        mc->cats = xcalloc(json_array_size(cats) + 1, sizeof *mc->cats);
        for (size_t j = 0; j < json_array_size(cats); j++) {
            const char *cat = json_string_value(json_array_get(cats, j));
            if (!cat || (j && strcmp(mc->cats[j - 1], cat) >= 0)) {
                buf_printf(why, "column '%s': categories not strings in order", name);
                return -1;
            }
            mc->cats[mc->ncat++] = xstrdup(cat);
        }
        s->nfeat += mc->ncat;
    }
    if ((json_int_t)s->nfeat != json_integer_value(nf) || !s->nfeat) {
        buf_printf(why, "the columns make %zu features, the schema says %lld", s->nfeat,
                   (long long)json_integer_value(nf));
        return -1;
    }
    struct logreg *b = &m->base;
    b->d = s->nfeat;
    json_t *bl = json_object_get(base, "lambda"), *bi = json_object_get(base, "intercept");
    json_t *logs = json_object_get(base, "log1p");
    if (!json_is_array(logs) || json_array_size(logs) > b->d) {
        buf_puts(why, "the baseline's log1p is not a list of features");
        return -1;
    }
    b->nlog = json_array_size(logs);
    b->logsrc = xcalloc(b->nlog + 1, sizeof *b->logsrc);
    for (size_t j = 0; j < b->nlog; j++) {
        json_t *v = json_array_get(logs, j);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= (json_int_t)b->d) {
            buf_puts(why, "the baseline's log1p names a feature that does not exist");
            return -1;
        }
        b->logsrc[j] = (size_t)json_integer_value(v);
    }
    size_t q = b->d + b->nlog;
    if (!json_is_number(bl) || !json_is_number(bi) ||
        get_doubles(json_object_get(base, "mean"), q, &b->mean) ||
        get_doubles(json_object_get(base, "scale"), q, &b->scale) ||
        get_doubles(json_object_get(base, "weights"), q, &b->w)) {
        buf_puts(why, "the baseline's lambda, intercept, mean, scale or weights are missing or "
                      "not one number per input");
        return -1;
    }
    b->lambda = json_number_value(bl);
    b->b = json_number_value(bi);
    for (size_t j = 0; j < q; j++)
        if (!(b->scale[j] > 0)) {
            buf_puts(why, "the baseline has a scale that is not positive");
            return -1;
        }
    struct gbt_params *p = &m->params;
    p->max_depth = (int)json_integer_value(json_object_get(trees, "max_depth"));
    p->eta = json_number_value(json_object_get(trees, "eta"));
    p->min_child_weight = json_number_value(json_object_get(trees, "min_child_weight"));
    p->subsample = json_number_value(json_object_get(trees, "subsample"));
    p->colsample = json_number_value(json_object_get(trees, "colsample_bytree"));
    p->lambda = json_number_value(json_object_get(trees, "lambda"));
    p->rounds = (unsigned)json_integer_value(json_object_get(trees, "rounds"));
    json_t *tr = json_object_get(o, "training");
    if (json_is_object(tr))
        m->card_json = json_dumps(tr, JSON_COMPACT);
    return 0;
}

int model_load(struct model *m, const char *path, struct buf *diag)
{
    struct buf in, why;
    buf_init(&in, MODEL_MAX_BYTES);
    buf_init(&why, 4096);
    json_t *o = NULL;
    int rc = FW_EPARSE;
    model_init(m);
    int r = buf_read_file(&in, path);
    if (r) {
        buf_printf(diag, "%s: cannot read the model: %s\n", path,
                   r == FW_ETOOBIG ? "larger than any model file" : strerror(errno));
        rc = r;
        goto out;
    }
    const char *d = in.data ? in.data : "";
    size_t n = in.len, pos = 0, v = 0, slen = 0, blen = 0;
    if (n < strlen(MAGIC) || memcmp(d, MAGIC, strlen(MAGIC))) {
        buf_printf(diag, "%s: not a forewarn model file (it does not start with \"%s\")\n", path,
                   MAGIC "<version>");
        goto out;
    }
    if (header(d, n, &pos, "forewarn-model", &v)) {
        buf_printf(diag, "%s: corrupted model file: bad first line\n", path);
        goto out;
    }
    if (v != MODEL_FORMAT) {
        buf_printf(diag, "%s: model file format version %zu; this forewarn reads version %d "
                   "(retrain the model with this forewarn)\n", path, v, MODEL_FORMAT);
        goto out;
    }
    /* The checksum line: the file's last 25 bytes, "fnv1a64 " + 16 hex + LF. */
    char want[32];
    if (n < 25 || d[n - 1] != '\n' || memcmp(d + n - 25, "fnv1a64 ", 8)) {
        buf_printf(diag, "%s: corrupted model file: no checksum at the end (truncated?)\n", path);
        goto out;
    }
    snprintf(want, sizeof want, "%016" PRIx64, fw_hash(d, n - 25));
    if (memcmp(d + n - 17, want, 16)) {
        buf_printf(diag, "%s: corrupted model file: checksum mismatch (altered or damaged)\n",
                   path);
        goto out;
    }
    n -= 25;
    if (header(d, n, &pos, "schema", &slen) || n - pos < slen + 1 || d[pos + slen] != '\n') {
        buf_printf(diag, "%s: corrupted model file: bad schema section\n", path);
        goto out;
    }
    json_error_t je;
    o = json_loadb(d + pos, slen, JSON_REJECT_DUPLICATES, &je);
    pos += slen + 1;
    if (!o || !json_is_object(o) || json_integer_value(json_object_get(o, "format")) != MODEL_FORMAT) {
        buf_printf(diag, "%s: corrupted model file: the schema is not a format %d JSON object%s%s\n",
                   path, MODEL_FORMAT, o ? "" : ": ", o ? "" : je.text);
        goto out;
    }
    if (schema_from_json(m, o, &why)) {
        buf_printf(diag, "%s: corrupted model file: %s\n", path, why.data ? why.data : "");
        goto out;
    }
    if (header(d, n, &pos, "booster", &blen) || n - pos != blen + 1 || d[n - 1] != '\n') {
        buf_printf(diag, "%s: corrupted model file: bad booster section\n", path);
        goto out;
    }
    buf_append(&m->booster, d + pos, blen);
    rc = 0;
out:
    json_decref(o);
    buf_cleanup(&in);
    buf_cleanup(&why);
    if (rc) {
        model_cleanup(m);
        model_init(m);
    }
    return rc;
}
