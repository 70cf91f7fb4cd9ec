/*
 * logreg.c -- the logistic-regression baseline: features (and log1p of the
 * non-negative ones that are not 0/1 flags) standardized with
 * the training rows' mean and standard deviation (a missing value becomes
 * the mean, 0 after standardizing), an L2 penalty on the weights (not the
 * intercept), fitted by Newton's method with step halving.  With a few
 * dozen features the d x d Hessian is small, and Newton converges in a
 * handful of steps to the exact optimum, so the baseline is the best a
 * linear model can do here, not a half-trained one.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"
#include "util/util.h"

#define MAX_ITERS 50
#define TOL 1e-8

void logreg_cleanup(struct logreg *m)
{
    free(m->logsrc);
    free(m->mean);
    free(m->scale);
    free(m->w);
    memset(m, 0, sizeof *m);
}

/*
 * Input j of the model for one encoded row: the feature itself for j < d,
 * else log1p of its source feature (negative values, unseen in training,
 * taken as 0).  NaN when missing.
 */
static double input(const struct logreg *m, const float *row, size_t j)
{
    if (j < m->d)
        return row[j];
    double v = row[m->logsrc[j - m->d]];
    return isnan(v) ? v : log1p(v > 0 ? v : 0);
}

/*
 * The features that also enter as log1p: never negative in training and
 * more than two distinct values (so counts and amounts, not 0/1 flags).
 * A linear model cannot bend a feature; with both x and log1p(x) it fits
 * the saturating effect that durations and amounts often have.
 */
static void pick_logs(struct logreg *m, const float *x, size_t n, size_t d,
                      const unsigned char *mask)
{
    m->logsrc = xmalloc((d + 1) * sizeof *m->logsrc);
    m->nlog = 0;
    for (size_t j = 0; j < d; j++) {
        double a = NAN, b = NAN;
        int ok = 1, three = 0;
        for (size_t i = 0; i < n && ok; i++) {
            double v = x[i * d + j];
            if ((mask && !mask[i]) || isnan(v))
                continue;
            if (v < 0)
                ok = 0;
            else if (isnan(a))
                a = v;
            else if (v != a && isnan(b))
                b = v;
            else if (v != a && v != b)
                three = 1;
        }
        if (ok && three)
            m->logsrc[m->nlog++] = j;
    }
}

static double sigmoid(double t) { return t >= 0 ? 1 / (1 + exp(-t)) : exp(t) / (1 + exp(t)); }

/* log(1 + e^t) without overflow. */
static double softplus(double t) { return t > 0 ? t + log1p(exp(-t)) : log1p(exp(t)); }

/* The penalized loss at weights w (d) and intercept b over standardized rows z (m x d). */
static double objective(const double *z, const float *y, size_t m, size_t d, const double *w,
                        double b, double lambda)
{
    double f = 0;
    for (size_t i = 0; i < m; i++) {
        double t = b;
        for (size_t j = 0; j < d; j++)
            t += w[j] * z[i * d + j];
        f += softplus(t) - (y[i] > 0.5 ? t : 0);
    }
    for (size_t j = 0; j < d; j++)
        f += lambda / 2 * w[j] * w[j];
    return f;
}

/* Solve A x = g in place (A: n x n, symmetric positive definite, overwritten); 0 or -1. */
static int cholesky_solve(double *a, double *g, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        double s = a[j * n + j];
        for (size_t k = 0; k < j; k++)
            s -= a[j * n + k] * a[j * n + k];
        if (!(s > 0))
            return -1;
        a[j * n + j] = sqrt(s);
        for (size_t i = j + 1; i < n; i++) {
            double t = a[i * n + j];
            for (size_t k = 0; k < j; k++)
                t -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = t / a[j * n + j];
        }
    }
    for (size_t i = 0; i < n; i++) { /* L y = g */
        double t = g[i];
        for (size_t k = 0; k < i; k++)
            t -= a[i * n + k] * g[k];
        g[i] = t / a[i * n + i];
    }
    for (size_t i = n; i-- > 0;) { /* L^T x = y */
        double t = g[i];
        for (size_t k = i + 1; k < n; k++)
            t -= a[k * n + i] * g[k];
        g[i] = t / a[i * n + i];
    }
    return 0;
}

void logreg_fit(struct logreg *m, const float *x, const float *y, size_t n, size_t d,
                const unsigned char *mask, double lambda)
{
    memset(m, 0, sizeof *m);
    m->d = d;
    m->lambda = lambda;
    pick_logs(m, x, n, d, mask);
    size_t q = d + m->nlog; /* the model's inputs */
    m->mean = xcalloc(q + 1, sizeof *m->mean);
    m->scale = xcalloc(q + 1, sizeof *m->scale);
    m->w = xcalloc(q + 1, sizeof *m->w);
    for (size_t j = 0; j < q; j++) {
        double sum = 0, sq = 0, cnt = 0;
        for (size_t i = 0; i < n; i++) {
            double v = input(m, x + i * d, j);
            if ((!mask || mask[i]) && !isnan(v)) {
                sum += v;
                cnt++;
            }
        }
        m->mean[j] = cnt ? sum / cnt : 0;
        for (size_t i = 0; i < n; i++) {
            double v = input(m, x + i * d, j);
            if ((!mask || mask[i]) && !isnan(v)) {
                double e = v - m->mean[j];
                sq += e * e;
            }
        }
        double sd = cnt > 1 ? sqrt(sq / (cnt - 1)) : 0;
        m->scale[j] = sd > 1e-12 ? sd : 1;
    }
    /* The standardized rows and their labels. */
    size_t rows = 0;
    for (size_t i = 0; i < n; i++)
        rows += !mask || mask[i];
    double *z = xmalloc((rows * q + 1) * sizeof *z);
    float *yy = xmalloc((rows + 1) * sizeof *yy);
    size_t r = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i])
            continue;
        for (size_t j = 0; j < q; j++) {
            double v = input(m, x + i * d, j);
            z[r * q + j] = isnan(v) ? 0 : (v - m->mean[j]) / m->scale[j];
        }
        yy[r++] = y[i];
    }
    d = q; /* from here on the inputs are the features */
    size_t p = d + 1; /* weights, then the intercept */
    double *h = xmalloc(p * p * sizeof *h), *g = xmalloc(p * sizeof *g);
    double *w2 = xmalloc(p * sizeof *w2);
    double f = objective(z, yy, rows, d, m->w, m->b, lambda);
    for (m->iters = 0; m->iters < MAX_ITERS; m->iters++) {
        memset(h, 0, p * p * sizeof *h);
        for (size_t j = 0; j < d; j++) {
            g[j] = lambda * m->w[j];
            h[j * p + j] = lambda;
        }
        g[d] = 0;
        h[d * p + d] = 1e-9; /* keeps the system definite when one class is rare */
        for (size_t i = 0; i < rows; i++) {
            const double *zi = z + i * d;
            double t = m->b;
            for (size_t j = 0; j < d; j++)
                t += m->w[j] * zi[j];
            double pr = sigmoid(t), e = pr - (yy[i] > 0.5), v = pr * (1 - pr);
            for (size_t j = 0; j < d; j++) {
                g[j] += e * zi[j];
                double vz = v * zi[j];
                for (size_t k = 0; k <= j; k++)
                    h[j * p + k] += vz * zi[k];
                h[d * p + j] += vz;
            }
            g[d] += e;
            h[d * p + d] += v;
        }
        for (size_t j = 0; j < p; j++) /* the lower triangle was filled: mirror it */
            for (size_t k = j + 1; k < p; k++)
                h[j * p + k] = h[k * p + j];
        if (cholesky_solve(h, g, p))
            break;
        /* Newton's step, halved until the loss does not rise. */
        double step = 1, fnew = f;
        for (int half = 0; half < 30; half++, step /= 2) {
            for (size_t j = 0; j < d; j++)
                w2[j] = m->w[j] - step * g[j];
            w2[d] = m->b - step * g[d];
            fnew = objective(z, yy, rows, d, w2, w2[d], lambda);
            if (fnew <= f)
                break;
        }
        if (fnew > f)
            break;
        double moved = 0;
        for (size_t j = 0; j < p; j++)
            moved = fmax(moved, fabs(step * g[j]));
        memcpy(m->w, w2, d * sizeof *m->w);
        m->b = w2[d];
        f = fnew;
        if (moved < TOL)
            break;
    }
    free(w2);
    free(g);
    free(h);
    free(yy);
    free(z);
}

double logreg_predict(const struct logreg *m, const float *row)
{
    double t = m->b;
    for (size_t j = 0; j < m->d + m->nlog; j++) {
        double v = input(m, row, j);
        if (!isnan(v))
            t += m->w[j] * ((v - m->mean[j]) / m->scale[j]);
    }
    return sigmoid(t);
}
