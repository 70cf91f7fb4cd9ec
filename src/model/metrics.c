/*
 * metrics.c -- ROC AUC, PR AUC (average precision), confusion counts, and
 * the stratified folds they are measured over.  Pure functions of scores
 * and labels; tied scores are always treated as one group, so the figures
 * do not depend on the order of the rows.
 */
#include <math.h>
#include <stdlib.h>

#include "model/model_int.h"
#include "util/util.h"

struct ranked {
    double s;
    size_t i;
};

static int by_score(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i; /* a total order: qsort is not stable */
}

static struct ranked *sorted(const double *s, size_t n)
{
    struct ranked *r = xmalloc((n + 1) * sizeof *r);
    for (size_t i = 0; i < n; i++)
        r[i] = (struct ranked){s[i], i};
    qsort(r, n, sizeof *r, by_score);
    return r;
}

double model_roc_auc(const double *s, const float *y, size_t n)
{
    struct ranked *r = sorted(s, n);
    double pos = 0, rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && r[j].s == r[i].s)
            j++;
        double avg = (double)(i + 1 + j) / 2; /* mean of the 1-based ranks i+1 .. j */
        for (size_t k = i; k < j; k++)
            if (y[r[k].i] > 0.5) {
                pos++;
                rank_sum += avg;
            }
        i = j;
    }
    free(r);
    double neg = (double)n - pos;
    if (pos == 0 || neg == 0)
        return NAN;
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

double model_pr_auc(const double *s, const float *y, size_t n)
{
    struct ranked *r = sorted(s, n);
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += y[i] > 0.5;
    double tp = 0, fp = 0, ap = 0;
    for (size_t j = n; j > 0;) { /* from the highest score down, one tie group at a time */
        size_t i = j;
        double gpos = 0;
        while (i > 0 && r[i - 1].s == r[j - 1].s) {
            i--;
            if (y[r[i].i] > 0.5)
                gpos++;
            else
                fp++;
        }
        tp += gpos;
        if (gpos > 0)
            ap += gpos / total * (tp / (tp + fp));
        j = i;
    }
    free(r);
    return total > 0 ? ap : NAN;
}

void model_confusion_at(const double *s, const float *y, size_t n, double threshold,
                        struct model_confusion *out)
{
    *out = (struct model_confusion){0};
    for (size_t i = 0; i < n; i++) {
        int pred = s[i] >= threshold, act = y[i] > 0.5;
        if (pred && act)
            out->tp++;
        else if (pred)
            out->fp++;
        else if (act)
            out->fn++;
        else
            out->tn++;
    }
}

/* splitmix64: a small, well-mixed generator; the same seed gives the same folds everywhere. */
static uint64_t next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void shuffle(size_t *v, size_t n, uint64_t *st)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(next(st) % i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

void model_folds(const float *y, size_t n, unsigned k, uint64_t seed, unsigned *fold)
{
    size_t *pos = xmalloc((n + 1) * sizeof *pos), *neg = xmalloc((n + 1) * sizeof *neg);
    size_t np = 0, nn = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] > 0.5)
            pos[np++] = i;
        else
            neg[nn++] = i;
    }
    uint64_t st = seed;
    shuffle(pos, np, &st);
    shuffle(neg, nn, &st);
    /* Deal positives, then negatives continuing where they stopped: sizes differ by one at most. */
    for (size_t i = 0; i < np; i++)
        fold[pos[i]] = (unsigned)(i % k);
    for (size_t i = 0; i < nn; i++)
        fold[neg[i]] = (unsigned)((np + i) % k);
    free(pos);
    free(neg);
}
