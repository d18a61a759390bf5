/* lme4's adaptive Gauss–Hermite objective (nAGQ > 1) of one scalar term and its exact
 * gradient in (θ, β), at the u-only mode, for the canonical pairs: the formulas and the
 * response at the nodes are glmm/objectives/agq.py's (agq_objective), whose docstring derives
 * them; the sums are sequential or compensated where numpy's are pairwise, so the two agree
 * to rounding (tests/test_compiled_bfgs.py holds the searches together).  With sⱼ = 1/√Dⱼ, the nodes vⱼₖ = ũⱼ + zₖsⱼ, and
 *
 *     devcⱼ(v) = v² + Σ_{i∈j} devᵢ(η̃ᵢ + θxᵢ(v − ũⱼ)),
 *     F = Σⱼ devcⱼ(ũⱼ) + Σⱼ log Dⱼ − 2 Σⱼ log Σₖ wₖ exp(zₖ²/2 − ½[devcⱼ(vⱼₖ) − devcⱼ(ũⱼ)]).
 *
 * One pass over the observations per node gives the levels' sums; the per-observation
 * scores at the nodes are kept (n × nAGQ) for the gradient's second pass. */

#include "response.h"

/* The unit deviance and score of observation i at a node's η, as Response.deviance_and_score
 * (μ = 1/(1 + e^−η) clamped to [ε, 1 − ε]; Poisson: μ = max(e^η, ε), the xlogy form). */
static inline double node_response(const Resp *r, Py_ssize_t i, double eta, double *s)
{
    const double y = r->y[i], w = r->w[i];
    double mu, dev;
    if (r->kind == BINOMIAL_LOGIT) {
        mu = 1.0 / (1.0 + exp(-eta));
        mu = mu > 1.0 - EPS ? 1.0 - EPS : mu < EPS ? EPS : mu;
        if (r->binary)
            dev = (-2.0 * w) * log((1.0 - y) + (2.0 * y - 1.0) * mu);
        else {
            const double c = 1.0 - y;
            dev = (2.0 * w) * (xlogy(y, y / mu) + xlogy(c, c / (1.0 - mu)));
        }
    } else {
        mu = exp(eta);
        if (!(mu >= EPS))
            mu = isnan(mu) ? mu : EPS;
        dev = 2.0 * w * (xlogy(y, y / mu) - (y - mu));
    }
    *s = w * (y - mu);
    return dev;
}

/* F at the u-only mode (η̃, ũ, D and the mode's dev, μ, W, s) of pb at θ = pb->th, with
 * ∂F/∂(θ, β) into g (1 + p) unless g is NULL; the rule (z, wk) has K nodes.  OK, or NO_MEMORY.
 * pb carries X (the gradient's β part). */
int agq(const Problem *pb, const double *z, const double *wk, Py_ssize_t K, const double *eta,
        const double *u, const double *D, const double *dev, const double *mu, const double *W,
        const double *s, double *F, double *g)
{
    const Py_ssize_t n = pb->n, nlev = pb->nlev, p = pb->p;
    const int64_t *f = pb->f;
    const double th = pb->th, *x = pb->x, *X = pb->X;
    const Py_ssize_t lk = muladd(nlev, K, 0);
    Py_ssize_t size = muladd(3, lk, muladd(6, nlev, K));
    if (g)
        size = muladd(n, K, size);
    double *buf = size < 0 ? NULL : calloc(size > 0 ? size : 1, sizeof(double));
    if (!buf)
        return NO_MEMORY;
    double *devc = buf, *sx = devc + lk, *pi = sx + lk, *devc0 = pi + lk, *sj = devc0 + nlev;
    double *du = sj + nlev, *A = du + nlev, *c = A + nlev, *a = c + nlev;
    double *lw = a + nlev;   /* log wₖ + zₖ²/2, once per node */
    double *sk = g ? lw + K : NULL;   /* the scores at the nodes, n × K */
    for (Py_ssize_t k = 0; k < K; k++)
        lw[k] = log(wk[k]) + 0.5 * z[k] * z[k];
    for (Py_ssize_t j = 0; j < nlev; j++)
        sj[j] = 1.0 / sqrt(D[j]);
    for (Py_ssize_t i = 0; i < n; i++) {   /* the levels' sums at the nodes and at the mode */
        const Py_ssize_t j = f[i];
        const double tx = th * (x ? x[i] : 1.0);
        double *dj = devc + j * K;
        for (Py_ssize_t k = 0; k < K; k++) {
            double sc;
            dj[k] += node_response(&pb->resp, i, eta[i] + tx * (sj[j] * z[k]), &sc);
            if (sk) {
                sk[i * K + k] = sc;
                sx[j * K + k] += sc * (x ? x[i] : 1.0);
            }
        }
        devc0[j] += dev[i];
    }
    Sum total0 = {0.0, 0.0}, ld = {0.0, 0.0}, lm = {0.0, 0.0};
    for (Py_ssize_t j = 0; j < nlev; j++) {
        devc0[j] += u[j] * u[j];
        double *dj = devc + j * K, *pj = pi + j * K, top = -INFINITY;
        for (Py_ssize_t k = 0; k < K; k++) {
            const double v = u[j] + sj[j] * z[k];
            dj[k] += v * v;
            pj[k] = lw[k] - 0.5 * (dj[k] - devc0[j]);
            if (pj[k] > top)
                top = pj[k];
        }
        double esum = 0.0;
        for (Py_ssize_t k = 0; k < K; k++)
            esum += pj[k] = exp(pj[k] - top);
        for (Py_ssize_t k = 0; k < K; k++)
            pj[k] /= esum;   /* πⱼₖ, the normalised node weights */
        add(&total0, devc0[j]);
        add(&ld, log(D[j]));
        add(&lm, top + log(esum));
    }
    *F = (total(&total0) + total(&ld)) - 2.0 * total(&lm);
    if (!g) {
        free(buf);
        return OK;
    }
    /* the gradient (agq.py): O = W and H = L for a canonical pair */
    const int binomial = pb->resp.kind == BINOMIAL_LOGIT;
    double *sxm = c, *ox2 = a;   /* Σ sx and Σ Wx² per level, until c and a are formed */
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_ssize_t j = f[i];
        const double xi = x ? x[i] : 1.0;
        sxm[j] += s[i] * xi;
        ox2[j] += W[i] * xi * xi;
    }
    double gth = 0.0, nodes = 0.0;
    for (Py_ssize_t j = 0; j < nlev; j++) {
        du[j] = (sxm[j] - th * u[j] * ox2[j]) / D[j];   /* dũ/dθ */
        const double *pj = pi + j * K, *sxj = sx + j * K;
        double Aj = 0.0, Bj = 0.0;
        for (Py_ssize_t k = 0; k < K; k++) {
            const double v = u[j] + sj[j] * z[k];
            const double pd = pj[k] * (2.0 * (v - th * sxj[k]));   /* π devc'(v) */
            Aj += pd;
            Bj += pd * z[k];
            nodes += pj[k] * v * sxj[k];
        }
        A[j] = Aj;
        c[j] = 1.0 / D[j] - 0.5 * Bj * (sj[j] * sj[j] * sj[j]);
        a[j] = 0.0;   /* Σ ω θx per level, below */
    }
    for (Py_ssize_t k = 0; k < p; k++)
        g[1 + k] = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {   /* ω, Σ ωθx per level and 2θ c_f Wx² */
        const Py_ssize_t j = f[i];
        const double xi = x ? x[i] : 1.0, tx = th * xi;
        const double Wp = binomial ? W[i] * (1.0 - 2.0 * mu[i]) : W[i];
        const double omega = (th * th) * c[j] * (Wp * (xi * xi));
        a[j] += omega * tx;
        gth += 2.0 * th * (c[j] * (W[i] * (xi * xi))) + omega * (xi * u[j] + tx * du[j]);
    }
    for (Py_ssize_t j = 0; j < nlev; j++) {
        a[j] = -th * (a[j] + A[j]) / D[j];
        gth += A[j] * du[j];
    }
    gth -= 2.0 * nodes;
    for (Py_ssize_t i = 0; i < n; i++) {   /* ∂F/∂β = Xᵀ(ω − 2t + a_f W x) */
        const Py_ssize_t j = f[i];
        const double xi = x ? x[i] : 1.0;
        const double Wp = binomial ? W[i] * (1.0 - 2.0 * mu[i]) : W[i];
        const double omega = (th * th) * c[j] * (Wp * (xi * xi));
        const double *pj = pi + j * K, *si = sk + i * K;
        double t = 0.0;
        for (Py_ssize_t k = 0; k < K; k++)
            t += pj[k] * si[k];
        const double r = omega - 2.0 * t + a[j] * (W[i] * xi);
        for (Py_ssize_t k = 0; k < p; k++)
            g[1 + k] += X[i * p + k] * r;
    }
    g[0] = gth;
    free(buf);
    return OK;
}
