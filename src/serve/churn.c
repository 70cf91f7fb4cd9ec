/*
 * churn.c -- the config key churn_model: (serve/churn.h, docs/model.md
 * "Scoring customers live"): the model file, the mapping from its feature
 * columns to rule-language expressions, and the engine's scoring callback.
 *
 * Every refusal names the config file's line and column: the model file
 * (missing, damaged, another format version) at the `file:` value, an
 * unknown column at its key, unmapped columns at `features:`, an
 * expression's mistake at the mistake.  A value reaches the model as the
 * text a CSV cell would hold (churn_cell), so the model's own cell
 * encoding decides what is missing, as it does for `forewarn model score`.
 */
#include "serve/churn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "util/fwtime.h"
#include "util/util.h"

/* The longest text a string feature keeps (a longer one is no category any model learned). */
#define CELL_MAX 256

void churn_init(struct churn_config *ch)
{
    memset(ch, 0, sizeof *ch);
}

void churn_cleanup(struct churn_config *ch)
{
    for (size_t i = 0; i < ch->nfeatures; i++) {
        free(ch->features[i].column);
        free(ch->features[i].src);
        expr_free(ch->features[i].x);
    }
    free(ch->features);
    free(ch->exprs);
    free(ch->columns);
    free(ch->file);
    free(ch->config);
    free(ch->text);
    free(ch->cells);
    free(ch->cellbuf);
    model_live_free(ch->model);
    churn_init(ch);
}

const char *churn_cell(const struct value *v, int64_t unit, char *buf, size_t len)
{
    buf[0] = '\0';
    switch (v->type) {
    case VAL_NUM:
        if (isfinite(v->u.num))
            snprintf(buf, len, "%.17g", v->u.num);
        break;
    case VAL_DUR:
        if (unit > 0)
            snprintf(buf, len, "%.17g", (double)v->u.ms / (double)unit);
        break;
    case VAL_BOOL:
        snprintf(buf, len, "%s", v->u.b ? "true" : "false");
        break;
    case VAL_STR: {
        size_t n = v->u.str.len < len - 1 ? v->u.str.len : len - 1;
        while (n < v->u.str.len && n && ((unsigned char)v->u.str.ptr[n] & 0xC0) == 0x80)
            n--; /* cut between characters, never inside one */
        memcpy(buf, v->u.str.ptr, n);
        buf[n] = '\0'; /* a NUL inside ends it, as it would end a C string anywhere */
        break;
    }
    case VAL_NULL:
    case VAL_TIME:
    case VAL_LIST:
        break;
    }
    return buf;
}

#define CERR(node, ...)                                                                            \
    do {                                                                                           \
        ydiag(d, diag, (node), __VA_ARGS__);                                                       \
        rc = FW_EPARSE;                                                                            \
    } while (0)

/* A feature entry: EXPR, or {expr: EXPR, unit: DURATION}. */
static int parse_feature(struct churn_feature *f, struct ydoc *d, yaml_node_t *v, struct buf *diag)
{
    int rc = 0;
    yaml_node_t *xn = v;
    if (v->type == YAML_MAPPING_NODE) {
        xn = NULL;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
             p++) {
            yaml_node_t *kn = ydoc_node(d, p->key), *vn = ydoc_node(d, p->value);
            const char *k = yscalar(kn), *s = yscalar(vn);
            if (k && !strcmp(k, "expr")) {
                xn = vn;
            } else if (k && !strcmp(k, "unit")) {
                if (!s || fw_duration_parse(s, strlen(s), &f->unit) || f->unit <= 0)
                    CERR(vn, "churn_model: unit must be a duration such as 1d or 1h (a duration "
                             "value is divided by it)");
            } else {
                CERR(kn, "churn_model: unknown key %s in a feature (expected expr, unit)",
                     k ? k : "?");
            }
        }
        if (!xn) {
            CERR(v, "churn_model: a feature given as a mapping needs expr:");
            return rc;
        }
    }
    const char *src = yscalar(xn);
    if (!src || !*src) {
        CERR(xn, "churn_model: a feature must be an expression (null: always missing)");
        return rc;
    }
    f->src = xstrdup(src);
    f->line = (unsigned)xn->start_mark.line;
    f->col = (unsigned)xn->start_mark.column;
    f->quoted = xn->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                xn->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    return rc;
}

int churn_parse(struct churn_config *ch, struct ydoc *d, yaml_node_t *n, struct buf *diag)
{
    int rc = 0;
    struct churn_config nc;
    yaml_node_t *file = NULL, *features = NULL;
    churn_init(&nc);
    if (n->type != YAML_MAPPING_NODE) {
        CERR(n, "churn_model must be a mapping: {file: MODEL, features: {COLUMN: EXPR, ...}}");
        return rc;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        if (k && !strcmp(k, "file"))
            file = v;
        else if (k && !strcmp(k, "features"))
            features = v;
        else
            CERR(kn, "unknown key %s in churn_model (expected file, features)", k ? k : "?");
    }
    if (!file || !yscalar(file) || !*yscalar(file)) {
        CERR(file ? file : n, "churn_model.file must name the model file (forewarn model train "
                              "--out)");
        goto out;
    }
    if (!features || features->type != YAML_MAPPING_NODE) {
        CERR(features ? features : n, "churn_model.features must map each column of the model to "
                                      "an expression");
        goto out;
    }
    struct buf mdiag;
    buf_init(&mdiag, 1 << 16);
    int lrc = model_live_load(&nc.model, yscalar(file), &mdiag);
    if (lrc) {
        /* The model's own message ("M: model file format version 1; ..."), on one line. */
        char *msg = mdiag.data ? mdiag.data : "cannot load the model";
        msg[strcspn(msg, "\n")] = '\0';
        CERR(file, "churn_model.file: %s", msg);
    }
    buf_cleanup(&mdiag);
    if (lrc)
        goto out;
    const struct model_schema *s = model_live_schema(nc.model);
    nc.file = xstrdup(yscalar(file));
    nc.nfeatures = s->ncols;
    nc.features = xcalloc(s->ncols + 1, sizeof *nc.features);
    for (yaml_node_pair_t *p = features->data.mapping.pairs.start;
         p < features->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        size_t i = 0;
        while (k && i < s->ncols && strcmp(s->cols[i].name, k))
            i++;
        if (!k || i == s->ncols) {
            struct buf names;
            buf_init(&names, 4096);
            for (size_t j = 0; j < s->ncols; j++)
                buf_printf(&names, "%s%s", j ? ", " : "", s->cols[j].name);
            CERR(kn, "churn_model.features: '%s' is not a column of the model %s (its columns: "
                     "%s)", k ? k : "?", nc.file, names.data ? names.data : "");
            buf_cleanup(&names);
            continue;
        }
        struct churn_feature *f = &nc.features[i];
        if (f->column) {
            CERR(kn, "churn_model.features: '%s' is mapped twice", k);
            continue;
        }
        f->column = xstrdup(k);
        f->index = i;
        if (parse_feature(f, d, v, diag))
            rc = FW_EPARSE;
    }
    struct buf missing;
    buf_init(&missing, 1 << 16);
    size_t nmissing = 0;
    for (size_t i = 0; i < s->ncols; i++)
        if (!nc.features[i].column)
            buf_printf(&missing, "%s%s (%s)", nmissing++ ? ", " : "", s->cols[i].name,
                       model_kind_name(s->cols[i].kind));
    if (nmissing)
        CERR(features, "churn_model.features: %zu column%s of the model %s %s not mapped: %s "
                       "(map each to an expression, or to null to leave it missing)",
             nmissing, nmissing == 1 ? "" : "s", yscalar(file), nmissing == 1 ? "is" : "are",
             missing.data);
    buf_cleanup(&missing);
    if (!rc) {
        nc.config = xstrdup(d->name);
        nc.text = xmalloc(d->len + 1);
        memcpy(nc.text, d->text, d->len);
        nc.text[d->len] = '\0';
        nc.textlen = d->len;
        churn_cleanup(ch);
        *ch = nc;
        return 0;
    }
out:
    churn_cleanup(&nc);
    return rc;
}

/* A message at a place inside feature f's expression (offset bytes into its source). */
static void feature_diag(const struct churn_config *ch, const struct churn_feature *f,
                         size_t offset, struct buf *diag, const char *msg)
{
    size_t line = f->line, col = f->col + (size_t)f->quoted;
    for (size_t i = 0; i < offset && f->src[i]; i++) {
        if (f->src[i] == '\n') {
            line++;
            col = 0;
        } else {
            col++;
        }
    }
    ydiag_at(diag, ch->config, ch->text, ch->textlen, line, col, "churn_model.features.%s: %s",
             f->column, msg);
}

/* Whether an expression reads a figure: engage dep id 1 (health) or 2 (churn_risk). */
static int reads_figure(const struct expr *x, uint32_t id)
{
    size_t n;
    const struct expr_dep *d = expr_deps(x, &n);
    for (size_t i = 0; i < n; i++)
        if (d[i].kind == EXPR_REF_ENGAGE && d[i].id == id)
            return 1;
    return 0;
}

int churn_bind(struct churn_config *ch, struct rules *r, struct buf *diag)
{
    int rc = 0;
    if (!ch->model)
        return 0;
    const struct model_schema *s = model_live_schema(ch->model);
    char msg[160];
    for (size_t i = 0; i < ch->nfeatures; i++) {
        struct churn_feature *f = &ch->features[i];
        const struct model_column *col = &s->cols[f->index];
        struct expr_error err;
        if (f->x)
            continue;
        if (rules_compile_value(r, f->src, strlen(f->src), &f->x, &err)) {
            feature_diag(ch, f, err.offset, diag, err.msg);
            rc = FW_EPARSE;
            continue;
        }
        int t = expr_type(f->x);
        const char *why = NULL;
        if (expr_reads_event(f->x))
            why = "a feature is the customer's, not the triggering event's: event.* is not "
                  "allowed here";
        else if (reads_figure(f->x, 2))
            why = "churn_risk cannot be a feature of the churn model";
        else if (t == VAL_LIST)
            why = "a list is no value of a column";
        else if (t == VAL_TIME && col->kind != MODEL_CATEGORICAL)
            why = "a time is not a number: use age(...) with unit: (e.g. {expr: ..., unit: 1d})";
        else if (t == VAL_DUR && !f->unit && col->kind != MODEL_CATEGORICAL)
            why = "a duration needs a unit to become a number: {expr: ..., unit: 1d}";
        else if (expr_max_days(f->x) > r->horizon_days) {
            snprintf(msg, sizeof msg,
                     "reads %d days of usage history; the horizon (engagement.horizon_days) "
                     "is %d",
                     expr_max_days(f->x), r->horizon_days);
            why = msg;
        }
        if (why) {
            struct buf m;
            buf_init(&m, 0);
            buf_printf(&m, "%s (column '%s' is %s)", why, col->name, model_kind_name(col->kind));
            feature_diag(ch, f, 0, diag, m.data);
            buf_cleanup(&m);
            expr_free(f->x);
            f->x = NULL;
            rc = FW_EPARSE;
            continue;
        }
        /* Keep the event history its count() windows reach back over. */
        for (size_t c = 0; c < intern_count(&r->classes); c++) {
            int64_t w = expr_max_window(f->x, (uint32_t)c);
            if (w > r->class_window[c])
                r->class_window[c] = w;
        }
        ch->reads_health |= reads_figure(f->x, 1);
    }
    if (rc)
        return rc;
    free(ch->exprs);
    ch->exprs = xcalloc(ch->nfeatures + 1, sizeof *ch->exprs);
    free(ch->columns);
    ch->columns = xcalloc(ch->nfeatures + 1, sizeof *ch->columns);
    for (size_t i = 0; i < ch->nfeatures; i++) {
        ch->exprs[i] = ch->features[i].x;
        ch->columns[i] = ch->features[i].column;
    }
    free(ch->cells);
    free(ch->cellbuf);
    ch->cells = xcalloc(ch->nfeatures + 1, sizeof *ch->cells);
    ch->cellbuf = xmalloc((ch->nfeatures + 1) * CELL_MAX);
    return 0;
}

void churn_unbind(struct churn_config *ch)
{
    for (size_t i = 0; i < ch->nfeatures; i++) {
        expr_free(ch->features[i].x);
        ch->features[i].x = NULL;
    }
    free(ch->exprs);
    ch->exprs = NULL;
    ch->reads_health = 0;
}

int churn_check_rules(const struct churn_config *ch, const struct rules *r, struct buf *diag)
{
    int rc = 0;
    for (size_t i = 0; !ch->model && i < r->nsignals; i++) {
        const struct rule_signal *s = &r->signals[i];
        if (s->cond && reads_figure(s->cond, 2)) {
            buf_printf(diag,
                       "%s:%u:%u: error: %s reads churn_risk, and no churn model is configured "
                       "(set churn_model: in the config file; docs/model.md, \"Scoring customers "
                       "live\")\n",
                       s->file ? s->file : "rules", s->line, s->col, s->id);
            rc = FW_EPARSE;
        }
    }
    return rc;
}

/* engine_churn.score: the values as CSV cell texts, scored by the model. */
static int score(void *ctx, const struct value *vals, size_t n, double *out, struct buf *cells)
{
    struct churn_config *ch = ctx;
    for (size_t i = 0; i < n; i++) {
        const struct churn_feature *f = &ch->features[i];
        ch->cells[f->index] = ch->cellbuf + i * CELL_MAX;
        churn_cell(&vals[i], f->unit, ch->cells[f->index], CELL_MAX);
        buf_append(cells, ch->cells[f->index], strlen(ch->cells[f->index]) + 1);
    }
    struct buf diag;
    buf_init(&diag, 4096);
    int rc = model_live_score(ch->model, (const char *const *)ch->cells, out, &diag);
    buf_cleanup(&diag);
    return rc;
}

const struct engine_churn *churn_engine(struct churn_config *ch, struct engine_churn *out)
{
    if (!ch->model || !ch->exprs)
        return NULL;
    memset(out, 0, sizeof *out);
    out->n = ch->nfeatures;
    out->columns = (const char *const *)ch->columns;
    out->exprs = ch->exprs;
    out->ctx = ch;
    out->score = score;
    out->file = ch->file;
    out->trained = model_live_trained(ch->model);
    out->reads_health = ch->reads_health;
    return out;
}
