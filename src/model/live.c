/*
 * live.c -- a loaded model scoring one customer at a time, for `serve` and
 * `replay` (config key churn_model:, docs/model.md "Scoring customers
 * live").
 *
 * Invariant: a live score is `model score`'s score of the same values.  A
 * customer's feature values arrive as the text a CSV cell would hold, are
 * encoded cell by cell with model_encode_cell (the function model_encode
 * uses for every CSV cell), and go through the same gbt_predict and
 * logreg_predict with the same blend, so a value of the wrong kind becomes
 * missing exactly as it does in a CSV row, and the two scores agree to the
 * last bit.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"
#include "util/util.h"

struct model_live {
    struct model m;
    struct gbt *g;
    float *row;     /* one encoded row, reused: scoring is single-threaded by contract */
    char *trained;  /* owned: the card's training time, or NULL */
};

int model_live_load(struct model_live **out, const char *path, struct buf *diag)
{
    int rc;
    struct model_live *ml = xcalloc(1, sizeof *ml);
    struct buf tmp;
    buf_init(&tmp, 1 << 16);
    model_init(&ml->m);
    *out = NULL;
    if ((rc = model_load(&ml->m, path, &tmp))) {
        buf_puts(diag, tmp.data ? tmp.data : "cannot load the model\n");
        goto out;
    }
    if ((rc = gbt_load(&ml->g, ml->m.booster.data, ml->m.booster.len, ml->m.schema.nfeat, &tmp))) {
        buf_printf(diag, "%s: corrupted model file: %s", path, tmp.data ? tmp.data : "\n");
        goto out;
    }
    ml->row = xmalloc((ml->m.schema.nfeat + 1) * sizeof *ml->row);
    json_t *card = ml->m.card_json ? json_loads(ml->m.card_json, 0, NULL) : NULL;
    const char *when = json_string_value(json_object_get(card, "trained"));
    ml->trained = when ? xstrdup(when) : NULL;
    json_decref(card);
out:
    buf_cleanup(&tmp);
    if (rc)
        model_live_free(ml);
    else
        *out = ml;
    return rc;
}

void model_live_free(struct model_live *ml)
{
    if (!ml)
        return;
    gbt_free(ml->g);
    model_cleanup(&ml->m);
    free(ml->row);
    free(ml->trained);
    free(ml);
}

const struct model_schema *model_live_schema(const struct model_live *ml)
{
    return &ml->m.schema;
}

const char *model_live_trained(const struct model_live *ml)
{
    return ml->trained;
}

int model_live_score(struct model_live *ml, const char *const *cells, double *score,
                     struct buf *diag)
{
    const struct model_schema *s = &ml->m.schema;
    for (size_t i = 0; i < s->ncols; i++)
        model_encode_cell(&s->cols[i], cells[i] ? cells[i] : "", ml->row);
    double t;
    int rc = gbt_predict(ml->g, ml->row, 1, s->nfeat, &t, diag);
    if (rc)
        return rc;
    /* The blend exactly as model__score computes it, in the same order. */
    if (ml->m.tree_weight < 1)
        t = ml->m.tree_weight * t + (1 - ml->m.tree_weight) * logreg_predict(&ml->m.base, ml->row);
    *score = t;
    return 0;
}
