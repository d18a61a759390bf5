/* The response for the two canonical pairs (glmm.families.response.Response.update): μ, the
 * unit deviance, the working weight W and the score s of one observation at η.  Inline: the
 * observation loops of PIRLS (scalar.c, block.c, crossed.c) and of the quadrature (agq.c)
 * call it once per observation. */

#ifndef GLMM_RESPONSE_H
#define GLMM_RESPONSE_H

#include "core.h"

/* scipy.special.xlogy: a log b, 0 at a = 0 unless b is NaN */
static inline double xlogy(double a, double b)
{
    return (a == 0.0 && !isnan(b)) ? 0.0 : a * log(b);
}

/* μ, the unit deviance, W and s of observation i at η (Response.update).
 *
 * Binomial–logit: e = exp(−|η|), μ = 1/(1 + e) for η ≥ 0 and e/(1 + e) below, μ' = e/(1 + e)²;
 * lme4's clamps (μ' ≥ ε, μ ∈ [ε, 1 − ε]) act only where μ' < 2ε (elsewhere they change
 * nothing, so applying them per observation equals numpy's test on the whole vector).
 * Poisson–log: μ = μ' = V = e^η, and y log(y/μ) − (y − μ) = (y log y − y) − yη + μ where
 * μ ≥ ε, else lme4's form with μ clamped at ε (numpy chooses one form for the whole vector;
 * the two agree to rounding). */
static inline double respond(const Resp *r, Py_ssize_t i, double eta, double *mu, double *W,
                             double *s)
{
    const double y = r->y[i], w = r->w[i];
    double mi, m, dev;
    if (r->kind == BINOMIAL_LOGIT) {
        const double e = exp(-fabs(eta)), f = 1.0 + e;
        mi = (eta >= 0.0 ? 1.0 : e) / f;
        m = e / (f * f);
        if (m < 2.0 * EPS) {
            if (m < EPS)
                m = EPS;
            if (mi > 1.0 - EPS)
                mi = 1.0 - EPS;
            if (mi < EPS)
                mi = EPS;
        }
        if (r->binary)   /* −2w log μ where y = 1, −2w log(1 − μ) where y = 0 */
            dev = (-2.0 * w) * log((1.0 - y) + (2.0 * y - 1.0) * mi);
        else {
            const double c = 1.0 - y;
            dev = (2.0 * w) * (xlogy(y, y / mi) + xlogy(c, c / (1.0 - mi)));
        }
    } else {
        mi = exp(eta);
        if (r->ylogy && mi >= EPS)
            dev = 2.0 * w * (r->ylogy[i] - y * eta + mi);
        else {
            if (mi < EPS)   /* also NaN: stays NaN */
                mi = EPS;
            dev = 2.0 * w * (xlogy(y, y / mi) - (y - mi));
        }
        m = mi;
    }
    *mu = mi;
    *W = w * m;
    *s = w * (y - mi);
    return dev;
}

#endif
