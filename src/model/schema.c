/*
 * schema.c -- columns to features: what kind each column is, learned from
 * the training table, and the encoding of any table with that schema.
 *
 * Values are compared with surrounding blanks removed, so " " (the IBM
 * Telco table's TotalCharges for customers of zero tenure) is empty, that
 * is missing.  A column is boolean when every non-empty value is yes, no,
 * true or false (any case), numeric when at least MODEL_NUMERIC_SHARE of
 * its non-empty values parse as numbers (the others then count as
 * missing), and categorical otherwise.
 */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model/model.h"
#include "util/util.h"

/* An identifier-like column: more distinct values than this, nearly all distinct. */
#define ID_MIN_DISTINCT 100
#define ID_DISTINCT_SHARE 0.9

void model_schema_init(struct model_schema *s) { memset(s, 0, sizeof *s); }

void model_schema_cleanup(struct model_schema *s)
{
    for (size_t i = 0; i < s->ncols; i++) {
        for (size_t j = 0; j < s->cols[i].ncat; j++)
            free(s->cols[i].cats[j]);
        free(s->cols[i].cats);
        free(s->cols[i].name);
    }
    for (size_t i = 0; i < s->ndropped; i++)
        free(s->dropped[i]);
    free(s->dropped);
    free(s->cols);
    free(s->label);
    free(s->positive);
    free(s->id);
    model_schema_init(s);
}

const char *model_kind_name(enum model_kind k)
{
    return k == MODEL_NUMERIC ? "numeric" : k == MODEL_BOOLEAN ? "boolean" : "categorical";
}

void model_feature_name(const struct model_schema *s, size_t f, struct buf *out)
{
    for (size_t i = 0; i < s->ncols; i++) {
        const struct model_column *c = &s->cols[i];
        size_t n = c->kind == MODEL_CATEGORICAL ? c->ncat : 1;
        if (f >= c->first && f < c->first + n) {
            if (c->kind == MODEL_CATEGORICAL)
                buf_printf(out, "%s=%s", c->name, c->cats[f - c->first]);
            else
                buf_puts(out, c->name);
            return;
        }
    }
}

/* The value without surrounding blanks: *len bytes from the returned pointer. */
static const char *trim(const char *s, size_t *len)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *len = n;
    return s;
}

int model_parse_number(const char *s, double *out)
{
    size_t n;
    const char *p = trim(s, &n), *end = p + n;
    const char *q = p;
    if (q < end && (*q == '+' || *q == '-'))
        q++;
    size_t digits = 0;
    while (q < end && isdigit((unsigned char)*q))
        q++, digits++;
    if (q < end && *q == '.') {
        q++;
        while (q < end && isdigit((unsigned char)*q))
            q++, digits++;
    }
    if (!digits)
        return FW_EPARSE;
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        size_t ed = 0;
        while (q < end && isdigit((unsigned char)*q))
            q++, ed++;
        if (!ed)
            return FW_EPARSE;
    }
    if (q != end || n > 64)
        return FW_EPARSE;
    char tmp[65];
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    double v = strtod(tmp, NULL);
    if (!isfinite(v))
        return FW_EPARSE; /* 1e999 */
    *out = v;
    return 0;
}

/* 1 (yes/true), 0 (no/false) or -1 (not a boolean word). */
static int parse_bool(const char *p, size_t n)
{
    if ((n == 3 && !strncasecmp(p, "yes", 3)) || (n == 4 && !strncasecmp(p, "true", 4)))
        return 1;
    if ((n == 2 && !strncasecmp(p, "no", 2)) || (n == 5 && !strncasecmp(p, "false", 5)))
        return 0;
    return -1;
}

/* A category and how often it occurs, while learning. */
struct tally {
    char *name;
    size_t count;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int by_count_then_name(const void *a, const void *b)
{
    const struct tally *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The distinct non-empty values of column col with their counts (owned names). */
static struct tally *tally_column(const struct csv *t, size_t col, size_t *ndistinct)
{
    char **v = xmalloc((t->nrows + 1) * sizeof *v);
    size_t nv = 0;
    for (size_t r = 1; r <= t->nrows; r++) {
        size_t n;
        const char *p = trim(csv_cell(t, r, col), &n);
        if (n)
            v[nv++] = xstrndup(p, n);
    }
    qsort(v, nv, sizeof *v, by_name);
    struct tally *out = xmalloc((nv + 1) * sizeof *out);
    size_t nd = 0;
    for (size_t i = 0; i < nv; i++) {
        if (nd && !strcmp(out[nd - 1].name, v[i])) {
            out[nd - 1].count++;
            free(v[i]);
        } else {
            out[nd++] = (struct tally){v[i], 1};
        }
    }
    free(v);
    *ndistinct = nd;
    return out;
}

/* Decide column col's kind and (categorical) categories into c; 1 when it is identifier-like. */
static int learn_column(struct model_column *c, const struct csv *t, size_t col)
{
    size_t nonempty = 0, numeric = 0, boolean = 0;
    for (size_t r = 1; r <= t->nrows; r++) {
        size_t n;
        const char *p = trim(csv_cell(t, r, col), &n);
        double v;
        if (!n)
            continue;
        nonempty++;
        numeric += model_parse_number(p, &v) == 0;
        boolean += parse_bool(p, n) >= 0;
    }
    if (nonempty && boolean == nonempty) {
        c->kind = MODEL_BOOLEAN;
        c->n_missing = t->nrows - nonempty;
        return 0;
    }
    if ((double)numeric >= MODEL_NUMERIC_SHARE * (double)nonempty) {
        c->kind = MODEL_NUMERIC; /* an all-empty column too: every value missing */
        c->n_missing = t->nrows - numeric;
        return 0;
    }
    c->kind = MODEL_CATEGORICAL;
    c->n_missing = t->nrows - nonempty;
    size_t nd;
    struct tally *tl = tally_column(t, col, &nd);
    int id_like = nd > ID_MIN_DISTINCT && (double)nd >= ID_DISTINCT_SHARE * (double)nonempty;
    qsort(tl, nd, sizeof *tl, by_count_then_name);
    size_t keep = nd < MODEL_MAX_CATEGORIES ? nd : MODEL_MAX_CATEGORIES;
    c->ncat = id_like ? 0 : keep;
    c->cats = xmalloc((keep + 1) * sizeof *c->cats);
    for (size_t i = 0; i < nd; i++) {
        if (i < c->ncat)
            c->cats[i] = tl[i].name;
        else {
            c->n_other += tl[i].count;
            free(tl[i].name);
        }
    }
    free(tl);
    qsort(c->cats, c->ncat, sizeof *c->cats, by_name);
    return id_like;
}

int model_schema_learn(struct model_schema *s, const struct csv *t, const char *label,
                       const char *positive, const char *id, struct buf *diag)
{
    model_schema_init(s);
    long li = csv_column(t, label), ii = id ? csv_column(t, id) : -1;
    if (li < 0) {
        buf_printf(diag, "no column '%s' (the --label column) in the header\n", label);
        return FW_EINVAL;
    }
    if (id && ii < 0) {
        buf_printf(diag, "no column '%s' (the --id column) in the header\n", id);
        return FW_EINVAL;
    }
    if (ii == li) {
        buf_printf(diag, "column '%s' cannot be both the label and the id\n", label);
        return FW_EINVAL;
    }
    s->label = xstrdup(label);
    s->positive = xstrdup(positive);
    s->id = id ? xstrdup(id) : NULL;
    s->cols = xcalloc(t->ncols, sizeof *s->cols);
    s->dropped = xcalloc(t->ncols, sizeof *s->dropped);
    for (size_t col = 0; col < t->ncols; col++) {
        if ((long)col == li || (long)col == ii)
            continue;
        struct model_column *c = &s->cols[s->ncols];
        memset(c, 0, sizeof *c);
        if (learn_column(c, t, col)) {
            free(c->cats);
            s->dropped[s->ndropped++] = xstrdup(csv_cell(t, 0, col));
            continue;
        }
        c->name = xstrdup(csv_cell(t, 0, col));
        c->first = s->nfeat;
        s->nfeat += c->kind == MODEL_CATEGORICAL ? c->ncat : 1;
        s->ncols++;
    }
    if (!s->nfeat) {
        buf_printf(diag, "no feature columns: the table has only the label%s%s\n",
                   id ? " and the id" : "", s->ndropped ? " and identifier-like columns" : "");
        model_schema_cleanup(s);
        return FW_EINVAL;
    }
    return 0;
}

int model_schema_bind(const struct model_schema *s, const struct csv *t, size_t *idx,
                      const char *name, struct buf *diag)
{
    for (size_t i = 0; i < s->ncols; i++) {
        long c = csv_column(t, s->cols[i].name);
        if (c < 0) {
            buf_printf(diag, "%s: no column '%s', a feature of the model (%s)\n", name,
                       s->cols[i].name, model_kind_name(s->cols[i].kind));
            return FW_ENOTFOUND;
        }
        idx[i] = (size_t)c;
    }
    return 0;
}

/* The index of category p[0..n) in the sorted list, or -1. */
static long find_cat(char *const *cats, size_t ncat, const char *p, size_t n)
{
    size_t lo = 0, hi = ncat;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(cats[mid], p, n);
        if (c == 0 && cats[mid][n])
            c = 1; /* cats[mid] is longer: it sorts after */
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

void model_encode_cell(const struct model_column *c, const char *text, float *row)
{
    size_t n;
    const char *p = trim(text, &n);
    double v;
    int b;
    switch (c->kind) {
    case MODEL_NUMERIC:
        /* Beyond float's range is as unusable as text: missing. */
        row[c->first] = n && model_parse_number(p, &v) == 0 && fabs(v) <= FLT_MAX ? (float)v : NAN;
        break;
    case MODEL_BOOLEAN:
        b = parse_bool(p, n);
        row[c->first] = b < 0 ? NAN : (float)b;
        break;
    case MODEL_CATEGORICAL: {
        for (size_t k = 0; k < c->ncat; k++)
            row[c->first + k] = 0;
        long k = n ? find_cat(c->cats, c->ncat, p, n) : -1;
        if (k >= 0)
            row[c->first + (size_t)k] = 1;
        break;
    }
    }
}

void model_encode(const struct model_schema *s, const struct csv *t, const size_t *idx, float *x)
{
    for (size_t r = 1; r <= t->nrows; r++) {
        float *row = x + (r - 1) * s->nfeat;
        for (size_t i = 0; i < s->ncols; i++)
            model_encode_cell(&s->cols[i], csv_cell(t, r, idx[i]), row);
    }
}
