/* The compiled core of glmm (glmm/compiled.py): for one scalar random-effects term and the
 * canonical pairs binomial–logit and Poisson–log, PIRLS, the exact gradient, the first-order
 * prediction of the mode (PIRLS's warm start) and R_X (glmm/scalar_term.py), and the whole
 * BFGS search over F₀ or F₁ built from them (glmm/bfgs.py, glmm/optimize.py).
 *
 * The formulas, the convergence rule and the step-halving are those of glmm/scalar_term.py
 * and glmm/pirls.py, and the search's rules those of glmm/bfgs.py (their constants are
 * exported below, and the tests hold them equal); the response is glmm/response.py's
 * Response.update for the two pairs, its clamps applied per observation.  On a small model
 * (cbpp: 56 rows) the numpy version spends its time in the ~0.5–1 µs fixed cost of each
 * numpy call and in the Python around it, not in arithmetic; here one call runs the whole
 * PIRLS loop, or the whole search.  Arrays arrive through the buffer protocol, and every
 * argument of every entry point is checked before anything is computed (see "the Python
 * interface" below): a wrong one raises TypeError or ValueError naming it.
 *
 * Notation: n observations, ℓ levels, p fixed effects; f the level of each observation,
 * x the term's column (NULL for (1 | g): x = 1), θ its scale, so row i of ZΛ is θxᵢ at
 * column fᵢ.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* glmm.objectives.pirls's constants (exported below; a test holds them equal): at most 100 Newton steps
 * and 20 halvings each, and convergence when the Newton decrement, ≈ the reduction of P still
 * to come, is below 1e-20·max(1, P): full convergence in double precision. */
#define EPS DBL_EPSILON
#define MAX_ITER 100
#define MAX_HALVINGS 20
#define DECREMENT_TOL 1e-20

enum { BINOMIAL_LOGIT = 0, POISSON_LOG = 1 };

/* Status codes, turned into PirlsError messages by the caller. */
enum {
    OK = 0,
    START_NOT_FINITE = 1,   /* P not finite at the starting point */
    SYSTEM_NOT_FINITE = 2,  /* non-finite decrement */
    HALVING_FAILED = 3,     /* 20 halvings did not reduce P */
    NOT_CONVERGED = 4,      /* MAX_ITER iterations */
    RX_NOT_PD = 5,          /* XᵀWX − CᵀD⁻¹C not positive definite */
    NO_MEMORY = 6,
    SCHUR_NOT_PD = 7        /* several terms: S̄ not positive definite */
};

/* The most 8-byte items an array may have (its size in bytes fits a Py_ssize_t): every size
 * the core computes from its arguments is checked against it (muladd), so none overflows. */
#define MAX_ITEMS (PY_SSIZE_T_MAX / 8)

/* a·b + c for sizes in [0, MAX_ITEMS], or -1 when an operand is -1 or the result exceeds
 * MAX_ITEMS. */
static Py_ssize_t muladd(Py_ssize_t a, Py_ssize_t b, Py_ssize_t c)
{
    if (a < 0 || b < 0 || c < 0 || c > MAX_ITEMS || (b > 0 && a > (MAX_ITEMS - c) / b))
        return -1;
    return a * b + c;
}

typedef struct {
    int kind;
    int binary;            /* binomial with y ∈ {0, 1} */
    const double *y, *w;
    const double *ylogy;   /* Poisson: y log y − y (NULL: use the clamped form) */
    Py_ssize_t n;
} Resp;

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

/* The response at one η: the PIRLS iterate's arrays. */
typedef struct {
    double *eta, *mu, *dev, *W, *s;
} Working;

/* PIRLS's scratch: `k` arrays of n (the trial point's response and, for several terms, δη)
 * and one block of `small` doubles (-1: too many, as out of memory).  One block per array of n: a block above glibc's largest
 * mmap threshold (32 MB) is mapped afresh on every call, and touching its new pages costs
 * about as much as a PIRLS step (n = 1e6: ~10 ms).  Returns 0 (all freed) if out of memory. */
#define MAX_ROWS 6
typedef struct {
    double *row[MAX_ROWS], *small;
} Scratch;

static void scratch_free(Scratch *sc)
{
    for (int k = 0; k < MAX_ROWS; k++)
        free(sc->row[k]);
    free(sc->small);
}

static int scratch_alloc(Scratch *sc, int k, Py_ssize_t n, Py_ssize_t small)
{
    *sc = (Scratch){{NULL}, small < 0 ? NULL : malloc(sizeof(double) * (small + 1))};
    int ok = sc->small != NULL;
    for (int j = 0; j < k && ok; j++)
        ok = (sc->row[j] = malloc(sizeof(double) * (n > 0 ? n : 1))) != NULL;
    if (!ok)
        scratch_free(sc);
    return ok;
}

/* PIRLS's step-halving rule: a trial P that does not rise above P (up to 1e-12 relative, its
 * rounding) is accepted; false for NaN. */
static inline int no_rise(double Pn, double P)
{
    return Pn <= P + 1e-12 * fabs(P);
}

/* A trial point of PIRLS's step-halving: the response at η + t·δη into `out`, returning
 * Σdev there (each loop's own pass, with whatever else it sums on the way). */
typedef double (*TrialPass)(void *ctx, double t, Working *out);

/* PIRLS's step-halving (glmm.objectives.pirls.halving_step): the step t = 1, ½, ¼, … (at most
 * MAX_HALVINGS halvings) that first does not raise P = Σdev + ‖u‖² (no_rise).  On success
 * P, u (q) and β (p) move to the accepted point, `cur` and `trial` swap (so that `cur` holds
 * the response there), and 1 is returned; 0 if no step is accepted.  `un` is q scratch. */
static int halve(TrialPass pass, void *ctx, double *P, double *u, const double *du,
                 Py_ssize_t q, double *beta, const double *db, Py_ssize_t p, double *un,
                 Working *cur, Working *trial)
{
    double step = 1.0;
    for (int h = 0; h <= MAX_HALVINGS; h++, step *= 0.5) {
        double uu = 0.0;
        for (Py_ssize_t j = 0; j < q; j++) {
            un[j] = u[j] + step * du[j];
            uu += un[j] * un[j];
        }
        const double Pn = pass(ctx, step, trial) + uu;
        if (no_rise(Pn, *P)) {
            *P = Pn;
            memcpy(u, un, sizeof(double) * q);
            for (Py_ssize_t k = 0; k < p; k++)
                beta[k] += step * db[k];
            const Working t = *cur;
            *cur = *trial;
            *trial = t;
            return 1;
        }
    }
    return 0;
}

/* At PIRLS's end: the accepted point `cur` into `out` if it sits in the scratch arrays. */
static void keep(Working *out, const Working *cur, Py_ssize_t n)
{
    if (cur->eta == out->eta)
        return;
    memcpy(out->eta, cur->eta, sizeof(double) * n);
    memcpy(out->mu, cur->mu, sizeof(double) * n);
    memcpy(out->dev, cur->dev, sizeof(double) * n);
    memcpy(out->W, cur->W, sizeof(double) * n);
    memcpy(out->s, cur->s, sizeof(double) * n);
}

/* Upper Cholesky factor R (RᵀR = S) of a p × p matrix, in place (row-major, lower part set
 * to 0); 0 if S is not positive definite. */
static int cholesky_upper(double *S, Py_ssize_t p)
{
    for (Py_ssize_t k = 0; k < p; k++) {
        double d = S[k * p + k];
        for (Py_ssize_t m = 0; m < k; m++)
            d -= S[m * p + k] * S[m * p + k];
        if (!(d > 0.0))
            return 0;
        d = sqrt(d);
        S[k * p + k] = d;
        for (Py_ssize_t j = k + 1; j < p; j++) {
            double v = S[k * p + j];
            for (Py_ssize_t m = 0; m < k; m++)
                v -= S[m * p + k] * S[m * p + j];
            S[k * p + j] = v / d;
        }
        for (Py_ssize_t j = 0; j < k; j++)
            S[k * p + j] = 0.0;
    }
    return 1;
}

/* b ← (RᵀR)⁻¹ b for upper triangular R (p × p, row-major with leading dimension ld ≥ p:
 * the leading block of a larger factor when ld > p). */
static void cholesky_solve_ld(const double *R, Py_ssize_t p, Py_ssize_t ld, double *b)
{
    for (Py_ssize_t k = 0; k < p; k++) {          /* Rᵀ c = b */
        double v = b[k];
        for (Py_ssize_t m = 0; m < k; m++)
            v -= R[m * ld + k] * b[m];
        b[k] = v / R[k * ld + k];
    }
    for (Py_ssize_t k = p - 1; k >= 0; k--) {     /* R x = c */
        double v = b[k];
        for (Py_ssize_t m = k + 1; m < p; m++)
            v -= R[k * ld + m] * b[m];
        b[k] = v / R[k * ld + k];
    }
}

static void cholesky_solve(const double *R, Py_ssize_t p, double *b)
{
    cholesky_solve_ld(R, p, p, b);
}

/* The problem: the term, X (joint only) and the response. */
typedef struct {
    Py_ssize_t n, nlev, p;
    const int64_t *f;
    const double *x;
    double th;
    const double *X;       /* n × p, row-major */
    Resp resp;
} Problem;

/* C = ΛᵀZᵀWX (ℓ × p), D⁻¹C and R_X (upper, R_XᵀR_X = XᵀWX − CᵀD⁻¹C) at weights W. */
static int schur(const Problem *pb, const double *W, const double *D, double *C, double *GiC,
                 double *RX)
{
    const Py_ssize_t n = pb->n, p = pb->p, nlev = pb->nlev;
    memset(C, 0, sizeof(double) * nlev * p);
    memset(RX, 0, sizeof(double) * p * p);
    for (Py_ssize_t i = 0; i < n; i++) {
        const double *Xi = pb->X + i * p;
        double *Cj = C + pb->f[i] * p;
        const double twi = pb->th * (pb->x ? pb->x[i] : 1.0) * W[i];
        for (Py_ssize_t k = 0; k < p; k++) {
            Cj[k] += twi * Xi[k];
            const double wk = W[i] * Xi[k];
            for (Py_ssize_t l = k; l < p; l++)
                RX[k * p + l] += wk * Xi[l];
        }
    }
    for (Py_ssize_t j = 0; j < nlev; j++)
        for (Py_ssize_t k = 0; k < p; k++) {
            GiC[j * p + k] = C[j * p + k] / D[j];
            for (Py_ssize_t l = k; l < p; l++)
                RX[k * p + l] -= C[j * p + k] * C[j * p + l] / D[j];
        }
    return cholesky_upper(RX, p);
}

/* One pass over the observations at the trial point η = η₀ + t·δη, δηᵢ = θxᵢ δu_{fᵢ}
 * (+ Xᵢδβ when db is given): the response there, into `out`, and the per-level sums of the
 * PIRLS system at it, S2ⱼ = θ²Σ_{i∈j} Wᵢxᵢ² and S1ⱼ = θΣ_{i∈j} xᵢsᵢ.  Returns Σdev.  One pass
 * rather than several: on a large model the steps are bound by memory traffic. */
static double trial_pass(const Problem *pb, const double *eta0, double t, const double *du,
                         const double *db, Working *out, double *S2, double *S1)
{
    const Py_ssize_t n = pb->n, p = db ? pb->p : 0;
    const int64_t *f = pb->f;
    const double th = pb->th, *x = pb->x, *X = pb->X;
    memset(S2, 0, sizeof(double) * pb->nlev);
    memset(S1, 0, sizeof(double) * pb->nlev);
    double sum = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_ssize_t j = f[i];
        const double tx = x ? th * x[i] : th;
        double d = tx * du[j];
        for (Py_ssize_t k = 0; k < p; k++)
            d += X[i * p + k] * db[k];
        const double eta = eta0[i] + t * d;
        out->eta[i] = eta;
        sum += out->dev[i] = respond(&pb->resp, i, eta, &out->mu[i], &out->W[i], &out->s[i]);
        S2[j] += out->W[i] * (tx * tx);
        S1[j] += tx * out->s[i];
    }
    return sum;
}

/* The scalar term's trial pass (trial_pass from η₀ = the current η), for halve. */
typedef struct {
    const Problem *pb;
    const double *eta0, *du, *db;
    double *S2, *S1;
} ScalarTrial;

static double scalar_trial(void *ctx, double t, Working *out)
{
    const ScalarTrial *c = ctx;
    return trial_pass(c->pb, c->eta0, t, c->du, c->db, out, c->S2, c->S1);
}

/* PIRLS from (u, β): the mode ũ(θ, β) (u-only, X == NULL), or (ũ, β̃)(θ) (joint).  On entry
 * u and beta hold the start and eta0 = o + Xβ; on success they and `out` hold the mode, D the
 * diagonal of G at its weights, and (joint) C, GiC, RX at them; *iterations and *pdev are set. */
static int pirls(const Problem *pb, const double *eta0, double *u, double *beta, Working *out,
                 double *D, double *C, double *GiC, double *RX, long *iterations, double *pdev)
{
    const Py_ssize_t n = pb->n, nlev = pb->nlev, p = pb->X ? pb->p : 0;
    const double *X = pb->X;
    int status = OK;
    /* scratch: the trial point (n each), the per-level sums at the current and the trial
     * point, the gradient in u, δu, the trial u, and (joint) Xᵀs, the right-hand side of the
     * Schur system and δβ */
    Scratch sc;
    if (!scratch_alloc(&sc, 5, n, muladd(7, nlev, muladd(3, p, 0))))
        return NO_MEMORY;
    Working cur = *out, trial = {sc.row[0], sc.row[1], sc.row[2], sc.row[3], sc.row[4]};
    double *S2 = sc.small, *S1 = S2 + nlev, *S2t = S1 + nlev, *S1t = S2t + nlev;
    double *grad = S1t + nlev, *du = grad + nlev, *un = du + nlev;
    double *Xs = un + nlev, *rhs = Xs + p, *db = rhs + p;

    double uu = 0.0;   /* the start: η = η₀ + θx u_f */
    for (Py_ssize_t j = 0; j < nlev; j++)
        uu += u[j] * u[j];
    double P = trial_pass(pb, eta0, 1.0, u, NULL, &cur, S2, S1) + uu;
    if (!isfinite(P)) {
        status = START_NOT_FINITE;
        goto done;
    }
    for (long it = 1; it <= MAX_ITER; it++) {
        /* Dⱼ = 1 + θ²Σ_{i∈j} Wᵢxᵢ²,  (ΛᵀZᵀs − u)ⱼ = θΣ_{i∈j} xᵢsᵢ − uⱼ */
        for (Py_ssize_t j = 0; j < nlev; j++) {
            D[j] = 1.0 + S2[j];
            grad[j] = S1[j] - u[j];
        }
        double decrement = 0.0;
        if (X) {
            /* [D, C; Cᵀ, XᵀWX][δu; δβ] = [grad; Xᵀs] by the Schur complement R_XᵀR_X */
            for (Py_ssize_t k = 0; k < p; k++)
                Xs[k] = 0.0;
            for (Py_ssize_t i = 0; i < n; i++)
                for (Py_ssize_t k = 0; k < p; k++)
                    Xs[k] += X[i * p + k] * cur.s[i];
            if (!schur(pb, cur.W, D, C, GiC, RX)) {
                status = RX_NOT_PD;
                goto done;
            }
            for (Py_ssize_t k = 0; k < p; k++) {
                double v = Xs[k];
                for (Py_ssize_t j = 0; j < nlev; j++)
                    v -= C[j * p + k] * grad[j] / D[j];
                db[k] = v;
            }
            cholesky_solve(RX, p, db);
            for (Py_ssize_t j = 0; j < nlev; j++) {
                double v = grad[j] / D[j];
                for (Py_ssize_t k = 0; k < p; k++)
                    v -= GiC[j * p + k] * db[k];
                du[j] = v;
                decrement += v * grad[j];
            }
            for (Py_ssize_t k = 0; k < p; k++)
                decrement += db[k] * Xs[k];
        } else {
            for (Py_ssize_t j = 0; j < nlev; j++) {
                du[j] = grad[j] / D[j];
                decrement += du[j] * grad[j];
            }
        }
        if (!isfinite(decrement)) {
            status = SYSTEM_NOT_FINITE;
            goto done;
        }
        if (decrement < DECREMENT_TOL * (P > 1.0 ? P : 1.0)) {
            *iterations = it;
            *pdev = P;
            goto done;
        }
        ScalarTrial st = {pb, cur.eta, du, X ? db : NULL, S2t, S1t};
        if (!halve(scalar_trial, &st, &P, u, du, nlev, beta, db, p, un, &cur, &trial)) {
            status = HALVING_FAILED;
            goto done;
        }
        double *tmp = S2;   /* the accepted point's per-level sums */
        S2 = S2t;
        S2t = tmp;
        tmp = S1;
        S1 = S1t;
        S1t = tmp;
    }
    status = NOT_CONVERGED;
done:
    keep(out, &cur, n);
    scratch_free(&sc);
    return status;
}

/* ∂F₁/∂(θ, β) (RX == NULL) or ∂F₀/∂θ (RX given, with C and GiC at the mode) at the mode, for
 * a canonical pair (observed = Fisher weights, κ = 1), as ScalarTermObjective._gradient:
 *   a = W'∘θ²x²/D_f,  z = θΣxa/D (joint: the Schur solve with [Xᵀa]),
 *   r = a − W∘(θx z_f [+ X z_β]) − 2s,
 *   ∂F/∂θ = rᵀ(x ũ_f) + sᵀ(x z_f) + 2θ Σⱼ (Σ_{i∈j} Wᵢxᵢ²)/Dⱼ,   ∂F/∂β = Xᵀr.
 * W' = W(1 − 2μ) for binomial–logit and W for Poisson–log. */
static int gradient(const Problem *pb, const double *D, const double *u, const double *mu,
                    const double *W, const double *s, const double *C, const double *GiC,
                    const double *RX, double *g)
{
    const Py_ssize_t n = pb->n, nlev = pb->nlev, p = pb->p;
    const int64_t *f = pb->f;
    const double th = pb->th, *x = pb->x, *X = pb->X;
    const int binomial = pb->resp.kind == BINOMIAL_LOGIT;
    const Py_ssize_t size = muladd(2, nlev, muladd(2, p, 0));
    double *buf = size < 0 ? NULL : calloc(size, sizeof(double));
    if (!buf)
        return NO_MEMORY;
    double *z = buf, *wx2 = buf + nlev, *ab = wx2 + nlev, *zb = ab + p;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_ssize_t j = f[i];
        const double xi = x ? x[i] : 1.0, tx = th * xi;
        const double a = (binomial ? W[i] * (1.0 - 2.0 * mu[i]) : W[i]) * (tx * tx / D[j]);
        z[j] += tx * a;
        wx2[j] += W[i] * (xi * xi);
        if (RX)
            for (Py_ssize_t k = 0; k < p; k++)
                ab[k] += X[i * p + k] * a;
    }
    double gth = 0.0;
    for (Py_ssize_t j = 0; j < nlev; j++) {
        z[j] /= D[j];
        gth += wx2[j] / D[j];
    }
    gth *= 2.0 * th;
    if (RX) {   /* zb = R_X⁻¹R_X⁻ᵀ(Xᵀa − Cᵀ D⁻¹ rhs), z ← D⁻¹rhs − D⁻¹C zb */
        for (Py_ssize_t k = 0; k < p; k++) {
            double v = ab[k];
            for (Py_ssize_t j = 0; j < nlev; j++)
                v -= C[j * p + k] * z[j];
            zb[k] = v;
        }
        cholesky_solve(RX, p, zb);
        for (Py_ssize_t j = 0; j < nlev; j++)
            for (Py_ssize_t k = 0; k < p; k++)
                z[j] -= GiC[j * p + k] * zb[k];
    }
    if (!RX)
        for (Py_ssize_t k = 0; k < p; k++)
            g[1 + k] = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_ssize_t j = f[i];
        const double xi = x ? x[i] : 1.0, tx = th * xi;
        const double a = (binomial ? W[i] * (1.0 - 2.0 * mu[i]) : W[i]) * (tx * tx / D[j]);
        double fit = tx * z[j];
        if (RX)
            for (Py_ssize_t k = 0; k < p; k++)
                fit += X[i * p + k] * zb[k];
        const double r = a - W[i] * fit - 2.0 * s[i];
        gth += r * (xi * u[j]) + s[i] * (xi * z[j]);
        if (!RX)
            for (Py_ssize_t k = 0; k < p; k++)
                g[1 + k] += X[i * p + k] * r;
    }
    g[0] = gth;
    free(buf);
    return OK;
}

/* The first-order prediction of the mode at θ_old + δθ (and β_old + δβ unless joint) from the
 * mode (u, s, W, D) at θ_old, as ScalarTermObjective._predict: with
 * δη = δθ x u_f (+ X δβ),  r_u = Σ_{i∈j} xᵢ(δθ sᵢ − θ_old Wᵢ δηᵢ), and δu = r_u/D; joint
 * (dbeta == NULL, C, GiC, RX at the mode): δβ = R_X⁻¹R_X⁻ᵀ(−XᵀWδη − CᵀD⁻¹r_u) and
 * δu = D⁻¹r_u − D⁻¹C δβ.  Writes u + δu to un and (joint) δβ to db. */
static int predict(const Problem *pb, double dth, const double *u, const double *s,
                   const double *W, const double *D, const double *dbeta, const double *C,
                   const double *GiC, const double *RX, double *un, double *db)
{
    const Py_ssize_t n = pb->n, nlev = pb->nlev, p = pb->p;
    const int64_t *f = pb->f;
    const double th = pb->th, *x = pb->x, *X = pb->X;
    for (Py_ssize_t j = 0; j < nlev; j++)
        un[j] = 0.0;
    for (Py_ssize_t k = 0; k < p && !dbeta; k++)
        db[k] = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const double xi = x ? x[i] : 1.0;
        double deta = dth * xi * u[f[i]];
        if (dbeta)
            for (Py_ssize_t k = 0; k < p; k++)
                deta += X[i * p + k] * dbeta[k];
        const double Wd = W[i] * deta;
        un[f[i]] += xi * (dth * s[i] - th * Wd);
        if (!dbeta)
            for (Py_ssize_t k = 0; k < p; k++)
                db[k] -= X[i * p + k] * Wd;
    }
    for (Py_ssize_t j = 0; j < nlev; j++)
        un[j] /= D[j];
    if (!dbeta) {
        for (Py_ssize_t k = 0; k < p; k++)
            for (Py_ssize_t j = 0; j < nlev; j++)
                db[k] -= C[j * p + k] * un[j];
        cholesky_solve(RX, p, db);
        for (Py_ssize_t j = 0; j < nlev; j++)
            for (Py_ssize_t k = 0; k < p; k++)
                un[j] -= GiC[j * p + k] * db[k];
    }
    for (Py_ssize_t j = 0; j < nlev; j++)
        un[j] += u[j];
    return OK;
}

/* -- PIRLS for several scalar terms (glmm/pirls.py with glmm/linalg.py's dense factor) --- */

#define MAX_TERMS 8

/* The model: T scalar terms, term t's level of observation i fₜ[i] and its column xₜ (NULL:
 * an intercept), scale θₜ, so row i of ZΛ holds aₜᵢ = θₜxₜᵢ at mode offₜ + fₜ[i]; X (NULL:
 * u-only PIRLS) and the response.  Term 1 (the largest) has q₁ levels, the others q₂ modes
 * in all.  The fixed effects' sums go through X's distinct rows: row i is row gᵢ of the
 * G × p matrix Xg, and term t's cells are its (level, row of Xg) pairs, cell cₜᵢ holding
 * observation i, with each cell's level and row of Xg. */
typedef struct {
    Py_ssize_t n, p, T, q1, q2, G;
    const int64_t *f[MAX_TERMS];
    const double *x[MAX_TERMS];
    double th[MAX_TERMS];
    Py_ssize_t off[MAX_TERMS];   /* term t's first mode within u (off₁ = 0) */
    const double *X, *Xg;
    const int64_t *g;
    const int64_t *cell[MAX_TERMS], *cell_level[MAX_TERMS], *cell_row[MAX_TERMS];
    Py_ssize_t ncell[MAX_TERMS], cell_off[MAX_TERMS], ncells;
    Resp resp;
} Crossed;

/* The blocked factor of the PIRLS matrix at weights W (glmm.linalg.blocked.BlockedCholesky, dense
 * coupling): D = diag(G₁₁), Bt = [G₂₁; C₁ᵀ]ᵀ (q₁ × m, m = q₂ + p) and R (m × m, upper,
 * RᵀR = S̄ = [G₂₂ C₂; C₂ᵀ XᵀWX] − BtᵀD⁻¹Bt), with the right-hand side of the Newton step,
 * r = [ΛᵀZᵀs − u; Xᵀs], accumulated in the same pass.  The fixed effects' blocks are summed
 * per observation into the cells and X's distinct rows, then over those (as
 * glmm.objectives.model.TermCells): C = ΛᵀZᵀWX from Σ_{i∈c} Wᵢaᵢ per cell, XᵀWX and Xᵀs from ΣWᵢ and
 * Σsᵢ per distinct row.  `scratch` holds 2G + Σ cells.  Returns 0 if S̄ is not positive
 * definite. */
static int crossed_factor(const Crossed *cr, const double *W, const double *s, const double *u,
                          double *D, double *Bt, double *R, double *r, double *scratch)
{
    const Py_ssize_t n = cr->n, p = cr->X ? cr->p : 0, T = cr->T, q1 = cr->q1, q2 = cr->q2;
    const Py_ssize_t m = q2 + p, q = q1 + q2, G = cr->G;
    memset(D, 0, sizeof(double) * q1);
    memset(Bt, 0, sizeof(double) * q1 * m);
    memset(R, 0, sizeof(double) * m * m);
    memset(r, 0, sizeof(double) * (q + p));
    double *wg = scratch, *sg = wg + G, *cw = sg + G;
    if (p)
        memset(scratch, 0, sizeof(double) * (2 * G + cr->ncells));
    Py_ssize_t k[MAX_TERMS];
    double a[MAX_TERMS];
    for (Py_ssize_t i = 0; i < n; i++) {
        const double Wi = W[i], si = s[i];
        for (Py_ssize_t t = 0; t < T; t++) {
            a[t] = cr->x[t] ? cr->th[t] * cr->x[t][i] : cr->th[t];
            k[t] = cr->off[t] + cr->f[t][i];   /* its mode in u */
            r[k[t]] += a[t] * si;
            if (p)
                cw[cr->cell_off[t] + cr->cell[t][i]] += Wi * a[t];
        }
        const Py_ssize_t l = k[0];
        const double wa1 = Wi * a[0];
        double *b = Bt + l * m;
        D[l] += wa1 * a[0];
        for (Py_ssize_t t = 1; t < T; t++) {
            const Py_ssize_t kt = k[t] - q1;
            const double wat = Wi * a[t];
            b[kt] += wat * a[0];
            double *Sk = R + kt * m;
            for (Py_ssize_t v = t; v < T; v++)   /* upper triangle: later terms' modes are later */
                Sk[k[v] - q1] += wat * a[v];
        }
        if (p) {
            wg[cr->g[i]] += Wi;
            sg[cr->g[i]] += si;
        }
    }
    if (p) {
        for (Py_ssize_t t = 0; t < T; t++) {   /* C: term 1's into Bt, the others' into S̄ */
            const double *w = cw + cr->cell_off[t];
            for (Py_ssize_t c = 0; c < cr->ncell[t]; c++) {
                const double *Xc = cr->Xg + cr->cell_row[t][c] * p;
                const Py_ssize_t lvl = cr->cell_level[t][c];
                double *dst = t ? R + (cr->off[t] - q1 + lvl) * m + q2 : Bt + lvl * m + q2;
                for (Py_ssize_t j = 0; j < p; j++)
                    dst[j] += w[c] * Xc[j];
            }
        }
        for (Py_ssize_t h = 0; h < G; h++) {   /* XᵀWX (upper) and Xᵀs */
            const double *Xh = cr->Xg + h * p;
            for (Py_ssize_t j = 0; j < p; j++) {
                const double wx = wg[h] * Xh[j];
                r[q + j] += sg[h] * Xh[j];
                double *Sj = R + (q2 + j) * m + q2;
                for (Py_ssize_t jj = j; jj < p; jj++)
                    Sj[jj] += wx * Xh[jj];
            }
        }
    }
    for (Py_ssize_t j = 0; j < q; j++)
        r[j] -= u[j];
    for (Py_ssize_t l = 0; l < q1; l++)
        D[l] += 1.0;
    for (Py_ssize_t kk = 0; kk < q2; kk++)
        R[kk * m + kk] += 1.0;
    /* S̄ −= Σₗ bₗbₗᵀ/Dₗ over the levels of term 1 (bₗ: row l of Bt), upper triangle */
    for (Py_ssize_t l = 0; l < q1; l++) {
        const double *b = Bt + l * m, dl = D[l];
        for (Py_ssize_t c = 0; c < m; c++) {
            if (b[c] == 0.0)
                continue;
            const double bc = b[c] / dl;
            double *Rc = R + c * m;
            for (Py_ssize_t e = c; e < m; e++)
                Rc[e] -= bc * b[e];
        }
    }
    return cholesky_upper(R, m);
}

/* The Newton step δ = A⁻¹r from the factor (BlockedCholesky.solve):
 * x̄ = S̄⁻¹(r̄ − Btᵀ D⁻¹r₁),  x₁ = D⁻¹(r₁ − Bt x̄). */
static void crossed_solve(const Crossed *cr, const double *D, const double *Bt, const double *R,
                          const double *r, double *delta)
{
    const Py_ssize_t p = cr->X ? cr->p : 0, q1 = cr->q1, m = cr->q2 + p;
    double *xb = delta + q1;
    memcpy(xb, r + q1, sizeof(double) * m);
    for (Py_ssize_t l = 0; l < q1; l++) {
        const double *b = Bt + l * m, c = r[l] / D[l];
        for (Py_ssize_t e = 0; e < m; e++)
            xb[e] -= b[e] * c;
    }
    cholesky_solve(R, m, xb);
    for (Py_ssize_t l = 0; l < q1; l++) {
        const double *b = Bt + l * m;
        double v = r[l];
        for (Py_ssize_t e = 0; e < m; e++)
            v -= b[e] * xb[e];
        delta[l] = v / D[l];
    }
}

/* The crossed terms' trial pass: the response at η + t·δη, for halve. */
typedef struct {
    const Resp *resp;
    Py_ssize_t n;
    const double *eta, *deta;
} CrossedTrial;

static double crossed_trial(void *ctx, double t, Working *out)
{
    const CrossedTrial *c = ctx;
    double sum = 0.0;
    for (Py_ssize_t i = 0; i < c->n; i++) {
        const double e = c->eta[i] + t * c->deta[i];
        out->eta[i] = e;
        sum += out->dev[i] = respond(c->resp, i, e, &out->mu[i], &out->W[i], &out->s[i]);
    }
    return sum;
}

/* PIRLS (glmm.objectives.pirls.pirls) for the crossed scalar terms, from (u, β) (updated in place),
 * η₀ = o + Xβ (or o + Xβ for the given β, u-only); on success `out` holds the response at
 * the mode and D, Bt, R the factor at its weights. */
static int crossed_pirls(const Crossed *cr, const double *eta0, double *u, double *beta,
                         Working *out, double *D, double *Bt, double *R, long *iterations)
{
    const Py_ssize_t n = cr->n, p = cr->X ? cr->p : 0, T = cr->T, q = cr->q1 + cr->q2;
    int status = OK;
    /* scratch: the trial point and δη (n each); the right-hand side, δ, the trial u, Xδβ per
     * distinct row of X, and crossed_factor's */
    Scratch sc;
    if (!scratch_alloc(&sc, 6, n, muladd(3, q + p, muladd(3, cr->G, cr->ncells))))
        return NO_MEMORY;
    Working cur = *out, trial = {sc.row[0], sc.row[1], sc.row[2], sc.row[3], sc.row[4]};
    double *deta = sc.row[5], *r = sc.small, *delta = r + q + p, *un = delta + q + p;
    double *xb = un + q + p, *scratch = xb + cr->G;
    /* the start: η = η₀ + ZΛu */
    double uu = 0.0, P = 0.0;
    for (Py_ssize_t j = 0; j < q; j++)
        uu += u[j] * u[j];
    for (Py_ssize_t i = 0; i < n; i++) {
        double e = eta0[i];
        for (Py_ssize_t t = 0; t < T; t++)
            e += (cr->x[t] ? cr->th[t] * cr->x[t][i] : cr->th[t]) * u[cr->off[t] + cr->f[t][i]];
        cur.eta[i] = e;
        P += cur.dev[i] = respond(&cr->resp, i, e, &cur.mu[i], &cur.W[i], &cur.s[i]);
    }
    P += uu;
    if (!isfinite(P)) {
        status = START_NOT_FINITE;
        goto done;
    }
    for (long it = 1; it <= MAX_ITER; it++) {
        if (!crossed_factor(cr, cur.W, cur.s, u, D, Bt, R, r, scratch)) {
            status = SCHUR_NOT_PD;
            goto done;
        }
        crossed_solve(cr, D, Bt, R, r, delta);
        double decrement = 0.0;
        for (Py_ssize_t j = 0; j < q + p; j++)
            decrement += delta[j] * r[j];
        if (!isfinite(decrement)) {
            status = SYSTEM_NOT_FINITE;
            goto done;
        }
        if (decrement < DECREMENT_TOL * (P > 1.0 ? P : 1.0)) {
            *iterations = it;
            goto done;
        }
        for (Py_ssize_t h = 0; h < cr->G && p; h++) {   /* Xδβ per distinct row of X */
            double v = 0.0;
            for (Py_ssize_t k = 0; k < p; k++)
                v += cr->Xg[h * p + k] * delta[q + k];
            xb[h] = v;
        }
        for (Py_ssize_t i = 0; i < n; i++) {   /* δη = ZΛδu + Xδβ */
            double d = p ? xb[cr->g[i]] : 0.0;
            for (Py_ssize_t t = 0; t < T; t++)
                d += (cr->x[t] ? cr->th[t] * cr->x[t][i] : cr->th[t]) *
                     delta[cr->off[t] + cr->f[t][i]];
            deta[i] = d;
        }
        CrossedTrial ct = {&cr->resp, n, cur.eta, deta};
        if (!halve(crossed_trial, &ct, &P, u, delta, q, beta, delta + q, p, un, &cur,
                   &trial)) {
            status = HALVING_FAILED;
            goto done;
        }
    }
    status = NOT_CONVERGED;
done:
    keep(out, &cur, n);
    scratch_free(&sc);
    return status;
}

/* The exact gradient at the mode (glmm.objectives.gradient._gradient for canonical pairs: O = W,
 * κ = 1), from the mode's factor (D, Bt, R) and response: ∂F₁/∂(θ, β) (u-only factor) or
 * ∂F₀/∂θ (joint factor, `profiled`).  With K = D⁻¹G₁₂ and S⁻¹ = R_S⁻¹R_S⁻ᵀ (R_S: R's
 * leading q₂ block), the entries of G⁻¹ each observation needs (a selected inverse):
 *   (G⁻¹)₁₁ = 1/D + diag(K S⁻¹ Kᵀ),  (G⁻¹)₁₂ = −K S⁻¹,  (G⁻¹)₂₂ = S⁻¹;
 * vₜ[i] = Σᵤ (G⁻¹)[kₜ, kᵤ] aᵤ, h = Σₜ aₜvₜ, a = W'∘h, z = A⁻¹[ΛᵀZᵀa; Xᵀa] (u part only
 * unless profiled), r = a − W∘(ZΛz_u + Xz_β) − 2s, and
 *   ∂F/∂θₜ = Σᵢ xₜᵢ(rᵢũ_{kₜ} + sᵢz_{kₜ} + 2Wᵢvₜ[i]),   ∂F/∂β = Xᵀr.
 * Writes T (+ p unless profiled) entries to g. */
static int crossed_gradient(const Crossed *cr, int profiled, const double *D, const double *Bt,
                            const double *R, const double *u, const double *mu,
                            const double *W, const double *s, double *g)
{
    const Py_ssize_t n = cr->n, p = cr->X ? cr->p : 0, T = cr->T, q1 = cr->q1, q2 = cr->q2;
    const Py_ssize_t m = q2 + p, q = q1 + q2, G = cr->G, P = cr->p;
    const int binomial = cr->resp.kind == BINOMIAL_LOGIT;
    const Py_ssize_t size =
        muladd(q2, q2, muladd(q1, q2, muladd(2, q + p, muladd(2, G, muladd(1, q1, n + 1)))));
    double *buf = size < 0 ? NULL : calloc(size, sizeof(double));
    if (!buf)
        return NO_MEMORY;
    double *Si = buf, *KS = Si + q2 * q2, *i11 = KS + q1 * q2, *av = i11 + q1;
    double *rhs = av + n, *z = rhs + q + p, *ag = z + q + p, *xz = ag + G;
    /* S⁻¹: columns of R_S⁻¹R_S⁻ᵀ, R_S the leading q₂ block of R */
    for (Py_ssize_t c = 0; c < q2; c++) {
        Si[c * q2 + c] = 1.0;
        cholesky_solve_ld(R, q2, m, Si + c * q2);
    }
    /* KS = K S⁻¹ (q₁ × q₂) and (G⁻¹)₁₁'s diagonal */
    for (Py_ssize_t l = 0; l < q1; l++) {
        const double *b = Bt + l * m;
        double *ks = KS + l * q2, d = 0.0;
        for (Py_ssize_t a = 0; a < q2; a++) {
            const double ka = b[a] / D[l];
            if (ka == 0.0)
                continue;
            const double *Sa = Si + a * q2;
            for (Py_ssize_t c = 0; c < q2; c++)
                ks[c] += ka * Sa[c];
        }
        for (Py_ssize_t c = 0; c < q2; c++)
            d += ks[c] * b[c] / D[l];
        i11[l] = 1.0 / D[l] + d;
    }
    Py_ssize_t k[MAX_TERMS];
    double a[MAX_TERMS], v[MAX_TERMS], x[MAX_TERMS], tr[MAX_TERMS] = {0.0};
#define ROW(i)                                                                               \
    for (Py_ssize_t t = 0; t < T; t++) {                                                     \
        x[t] = cr->x[t] ? cr->x[t][i] : 1.0;                                                 \
        a[t] = cr->th[t] * x[t];                                                             \
        k[t] = cr->off[t] + cr->f[t][i];                                                     \
    }                                                                                        \
    {                                                                                        \
        const double *ks = KS + k[0] * q2;                                                   \
        v[0] = i11[k[0]] * a[0];                                                             \
        for (Py_ssize_t t = 1; t < T; t++) {                                                 \
            const Py_ssize_t kt = k[t] - q1;                                                 \
            v[0] -= ks[kt] * a[t];                                                           \
            v[t] = -ks[kt] * a[0];                                                           \
            for (Py_ssize_t w_ = 1; w_ < T; w_++)                                            \
                v[t] += Si[kt * q2 + k[w_] - q1] * a[w_];                                    \
        }                                                                                    \
    }
    for (Py_ssize_t i = 0; i < n; i++) {   /* leverages, a = W'h, ΛᵀZᵀa, Xᵀa and the traces */
        ROW(i)
        double h = 0.0;
        for (Py_ssize_t t = 0; t < T; t++) {
            h += a[t] * v[t];
            tr[t] += W[i] * x[t] * v[t];
        }
        const double ai = (binomial ? W[i] * (1.0 - 2.0 * mu[i]) : W[i]) * h;
        av[i] = ai;
        for (Py_ssize_t t = 0; t < T; t++)
            rhs[k[t]] += a[t] * ai;
        if (p)
            ag[cr->g[i]] += ai;
    }
    for (Py_ssize_t h = 0; h < G && p; h++)
        for (Py_ssize_t j = 0; j < p; j++)
            rhs[q + j] += ag[h] * cr->Xg[h * p + j];
    crossed_solve(cr, D, Bt, R, rhs, z);
    for (Py_ssize_t h = 0; h < G && p; h++) {   /* X z_β per distinct row */
        double t = 0.0;
        for (Py_ssize_t j = 0; j < p; j++)
            t += cr->Xg[h * p + j] * z[q + j];
        xz[h] = t;
    }
    for (Py_ssize_t j = 0; j < T + (profiled ? 0 : P); j++)
        g[j] = 0.0;
    double *rg = ag;   /* Σ r per distinct row, for Xᵀr */
    if (!profiled)
        memset(rg, 0, sizeof(double) * G);
    for (Py_ssize_t i = 0; i < n; i++) {
        double fit = p ? xz[cr->g[i]] : 0.0;
        for (Py_ssize_t t = 0; t < T; t++) {
            x[t] = cr->x[t] ? cr->x[t][i] : 1.0;
            k[t] = cr->off[t] + cr->f[t][i];
            fit += cr->th[t] * x[t] * z[k[t]];
        }
        const double ri = av[i] - W[i] * fit - 2.0 * s[i];
        for (Py_ssize_t t = 0; t < T; t++)
            g[t] += x[t] * (ri * u[k[t]] + s[i] * z[k[t]]);
        if (!profiled && P)
            rg[cr->g[i]] += ri;
    }
    for (Py_ssize_t t = 0; t < T; t++)
        g[t] += 2.0 * tr[t];
    if (!profiled)
        for (Py_ssize_t h = 0; h < G; h++)
            for (Py_ssize_t j = 0; j < P; j++)
                g[T + j] += rg[h] * cr->Xg[h * P + j];
#undef ROW
    free(buf);
    return OK;
}

/* The first-order prediction of the mode at θ_old + Δθ (glmm.objectives.pirls.predict) from the mode
 * (u, s, W) at θ_old, whose factor is (D, Bt, R): with δη = ZΛ_Δũ (+ XΔβ unless joint),
 *   r_u = Λ_ΔᵀZᵀs − ΛᵀZᵀWδη,   δ = A⁻¹[r_u; −XᵀWδη] (joint) or G⁻¹r_u;
 * un = u + δ_u and (joint) db = δ_β.  cr holds θ_old; dbeta is NULL when joint. */
static int crossed_predict(const Crossed *cr, const double *dth, const double *u,
                           const double *s, const double *W, const double *D, const double *Bt,
                           const double *R, const double *dbeta, double *un, double *db)
{
    const Py_ssize_t n = cr->n, p = cr->X ? cr->p : 0, T = cr->T, G = cr->G, P = cr->p;
    const Py_ssize_t q = cr->q1 + cr->q2;
    const Py_ssize_t size = muladd(2, q + p, muladd(2, G, 1));
    double *buf = size < 0 ? NULL : calloc(size, sizeof(double));
    if (!buf)
        return NO_MEMORY;
    double *rhs = buf, *delta = rhs + q + p, *xb = delta + q + p, *wg = xb + G;
    for (Py_ssize_t h = 0; h < G && dbeta; h++) {   /* XΔβ per distinct row of X */
        double v = 0.0;
        for (Py_ssize_t j = 0; j < P; j++)
            v += cr->Xg[h * P + j] * dbeta[j];
        xb[h] = v;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k[MAX_TERMS];
        double x[MAX_TERMS], deta = dbeta && P ? xb[cr->g[i]] : 0.0;
        for (Py_ssize_t t = 0; t < T; t++) {
            x[t] = cr->x[t] ? cr->x[t][i] : 1.0;
            k[t] = cr->off[t] + cr->f[t][i];
            deta += dth[t] * x[t] * u[k[t]];
        }
        const double Wd = W[i] * deta;
        for (Py_ssize_t t = 0; t < T; t++)
            rhs[k[t]] += x[t] * (dth[t] * s[i] - cr->th[t] * Wd);
        if (p)
            wg[cr->g[i]] += Wd;
    }
    for (Py_ssize_t h = 0; h < G && p; h++)
        for (Py_ssize_t j = 0; j < p; j++)
            rhs[q + j] -= wg[h] * cr->Xg[h * p + j];
    crossed_solve(cr, D, Bt, R, rhs, delta);
    for (Py_ssize_t j = 0; j < q; j++)
        un[j] = u[j] + delta[j];
    for (Py_ssize_t j = 0; j < p; j++)
        db[j] = delta[q + j];
    free(buf);
    return OK;
}

/* -- BFGS (glmm/bfgs.py, the same rules and constants) ----------------------------------- */

/* glmm.optimize.bfgs's constants (exported below; a test holds them equal).  The stopping
 * tolerances and the iteration limit are arguments. */
#define C1 1e-4
#define MAX_BACKTRACKS 30
#define STALL_GMAX 1e-3
#define STALL_DECREMENT 1e-10

/* How BFGS ended (glmm.optimize.bfgs formats the message from it). */
enum { BFGS_GRADIENT = 0, BFGS_DECREMENT = 1, BFGS_STALLED = 2, BFGS_MAX_ITER = 3,
       BFGS_BAD_START = 4 };

/* F and ∇F at x: returns F, or +∞ where F cannot be evaluated (*g then unset).  An error
 * that must stop the search sets *error: PY_ERROR (a Python exception other than the
 * objective's failures is set) or NO_MEMORY. */
#define PY_ERROR (-1)
typedef double (*Objective)(void *ctx, const double *x, double *g, int *error);

typedef struct {
    double *x, f, *g;   /* the final point, F and ∇F there (length n, owned by the caller) */
    long nfev;
    int code, converged;
    double gmax, decrement, dmax;
} BfgsOut;

static double max_abs(const double *v, Py_ssize_t n)
{
    double m = 0.0;
    for (Py_ssize_t i = 0; i < n; i++)
        m = fabs(v[i]) > m ? fabs(v[i]) : m;
    return m;
}

static double dot(const double *a, const double *b, Py_ssize_t n)
{
    double s = 0.0;
    for (Py_ssize_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* glmm.optimize.bfgs.minimize_bfgs: from x0 (in out->x), with (f0, g0) there (out->f, out->g) if
 * `have_start`; `unit` marks the coordinates already scaled to unit curvature (NULL: none).
 * Returns OK, NO_MEMORY, or the objective's *error. */
static int bfgs(Objective fg, void *ctx, Py_ssize_t n, const unsigned char *unit,
                int have_start, double gtol, double dtol, double xtol, long max_iter,
                BfgsOut *out)
{
    const Py_ssize_t size = muladd(n, n + 6, 1);
    double *buf = size < 0 ? NULL : malloc(sizeof(double) * size);
    if (!buf)
        return NO_MEMORY;
    double *H = buf, *d = H + n * n, *xn = d + n, *gn = xn + n, *s = gn + n, *y = s + n,
           *Hy = y + n;
    memset(d, 0, sizeof(double) * n);   /* read (as dmax) only if max_iter is 0 */
    double *x = out->x, *g = out->g, f = out->f;
    int error = OK;
    out->nfev = 0;
    if (!have_start) {
        out->nfev++;
        f = fg(ctx, x, g, &error);
        if (error)
            goto raised;
        if (!isfinite(f)) {
            out->code = BFGS_BAD_START;
            out->converged = 0;
            goto done;
        }
    }
    memset(H, 0, sizeof(double) * n * n);
    for (Py_ssize_t i = 0; i < n; i++)
        H[i * n + i] = 1.0;
    int scaled = 0;
    double gmax = 0.0, slope = 0.0;
    out->code = BFGS_MAX_ITER;
    out->converged = 0;
    for (long it = 0; it < max_iter; it++) {
        gmax = n ? max_abs(g, n) : 0.0;
        if (gmax <= gtol) {
            out->code = BFGS_GRADIENT;
            out->converged = 1;
            break;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            d[i] = -dot(H + i * n, g, n);
        slope = dot(g, d, n);
        if (slope >= 0.0) {   /* H lost positive definiteness to rounding: restart */
            memset(H, 0, sizeof(double) * n * n);
            for (Py_ssize_t i = 0; i < n; i++) {
                H[i * n + i] = 1.0;
                d[i] = -g[i];
            }
            scaled = 0;
            slope = -dot(g, g, n);
        }
        const double dmax = max_abs(d, n);
        if (scaled && -slope <= dtol && dmax <= xtol) {
            out->code = BFGS_DECREMENT;
            out->converged = 1;
            out->dmax = dmax;
            break;
        }
        double t = scaled ? 1.0 : (0.5 / gmax < 1.0 ? 0.5 / gmax : 1.0), fn = INFINITY;
        int accepted = 0;
        for (int bt = 0; bt < MAX_BACKTRACKS; bt++) {
            for (Py_ssize_t i = 0; i < n; i++)
                xn[i] = x[i] + t * d[i];
            out->nfev++;
            fn = fg(ctx, xn, gn, &error);
            if (error)
                goto raised;
            const int ok = isfinite(fn);
            if (ok && fn <= f + C1 * t * slope) {
                accepted = 1;
                break;
            }
            if (!ok)
                t *= 0.1;
            else {   /* minimiser of the quadratic through f, slope and fn, in [0.1t, 0.5t] */
                const double tq = -slope * t * t / (2.0 * (fn - f - slope * t));
                const double lo = 0.1 * t, hi = 0.5 * t;
                t = lo > tq ? lo : tq;   /* min(max(tq, 0.1t), 0.5t) as Python's, NaN too */
                t = hi < t ? hi : t;
            }
        }
        if (!accepted) {   /* converged if the decrease on offer is at F's rounding level */
            out->code = BFGS_STALLED;
            out->converged = gmax <= STALL_GMAX ||
                             -slope <= STALL_DECREMENT * (fabs(f) > 1.0 ? fabs(f) : 1.0);
            break;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            s[i] = xn[i] - x[i];
            y[i] = gn[i] - g[i];
        }
        const double sy = dot(s, y, n), yy = dot(y, y, n);
        if (sy > 1e-12 * sqrt(dot(s, s, n) * yy)) {
            if (!scaled) {   /* Shanno–Phua on the coordinates not scaled to unit curvature */
                double sf = 0.0, yf = 0.0;
                int all_unit = 1;
                for (Py_ssize_t i = 0; i < n; i++)
                    if (!unit || !unit[i]) {
                        all_unit = 0;
                        sf += s[i] * y[i];
                        yf += y[i] * y[i];
                    }
                const double gamma = all_unit ? sy / yy : sf / yf;
                for (Py_ssize_t i = 0; i < n; i++)
                    H[i * n + i] = all_unit ? gamma
                                 : (unit && unit[i]) ? 1.0 : (gamma > 0.0 ? gamma : 1.0);
                scaled = 1;
            }
            const double rho = 1.0 / sy;
            for (Py_ssize_t i = 0; i < n; i++)
                Hy[i] = dot(H + i * n, y, n);
            const double c = rho * rho * dot(y, Hy, n) + rho;
            for (Py_ssize_t i = 0; i < n; i++)
                for (Py_ssize_t j = 0; j < n; j++)
                    H[i * n + j] = H[i * n + j] - rho * (s[i] * Hy[j] + s[j] * Hy[i])
                                   + c * (s[i] * s[j]);
        }
        memcpy(x, xn, sizeof(double) * n);
        memcpy(g, gn, sizeof(double) * n);
        f = fn;
    }
    out->gmax = gmax;
    out->decrement = -slope;
    if (out->code != BFGS_DECREMENT)
        out->dmax = max_abs(d, n);
done:
    out->f = f;
    free(buf);
    return OK;
raised:
    free(buf);
    return error;
}

/* -- the scalar-term objective, for BFGS ------------------------------------------------ */

/* One conditional mode and what the next warm start and the caller need of it (a
 * ScalarMode): θ, β, u, D, the response at the mode and (joint) C, D⁻¹C and R_X. */
typedef struct {
    double *theta, *beta, *u, *D, *C, *GiC, *RX;
    Working w;
    long iterations;
} Mode;

/* F₁(θ, β) (u-only PIRLS) with β whitened, β = β₀ + R⁻¹ζ, or F₀(θ) (joint PIRLS), as
 * ObjectiveFunction._evaluate with ScalarTermObjective: PIRLS from the last mode carried to
 * the new parameters (ObjectiveFunction._warm_start), else from u = 0; then
 * F = Σ log Dⱼ + ‖ũ‖² + (Σdev + A − Σdev) and the exact gradient, in (θ, ζ). */
typedef struct {
    Problem pb;                 /* with X */
    int joint;
    const double *o, *beta_start, *R, *beta0;
    double aic_offset;
    const Mode *last;           /* the last mode (NULL: none yet, PIRLS starts at u = 0) */
    Mode *set[2];               /* the two sets a trial is written to */
    int last_set;               /* which set holds the last mode; -1: the caller's (or none) */
    double *xl;                 /* the x of the last mode */
    double *eta0, *gfull;       /* scratch: n, 1 + p */
} ScalarObjective;

/* Neumaier's compensated sum: the running sum s and the rounding lost, c. */
typedef struct {
    double s, c;
} Sum;

static inline void add(Sum *a, double v)
{
    const double t = a->s + v;
    a->c += fabs(a->s) >= fabs(v) ? (a->s - t) + v : (v - t) + a->s;
    a->s = t;
}

static inline double total(const Sum *a)
{
    return a->s + a->c;
}

/* glmm.objectives.base's PREDICT_RANGE (exported below; a test holds them equal) */
#define PREDICT_RANGE 0.5

static double scalar_objective(void *ctx, const double *x, double *g, int *error)
{
    ScalarObjective *so = ctx;
    Problem pb = so->pb;
    const Py_ssize_t n = pb.n, nlev = pb.nlev, p = pb.p;
    const int joint = so->joint;
    const Mode *last = so->last;
    Mode *tr = so->set[so->last_set == 0 ? 1 : 0];
    const double th = x[0];
    tr->theta[0] = th;
    double *z = so->gfull;   /* p scratch until the gradient */
    if (!joint) {   /* β = β₀ + R⁻¹ζ, by back substitution */
        for (Py_ssize_t k = p - 1; k >= 0; k--) {
            double v = x[1 + k];
            for (Py_ssize_t m = k + 1; m < p; m++)
                v -= so->R[k * p + m] * z[m];
            z[k] = v / so->R[k * p + k];
        }
        for (Py_ssize_t k = 0; k < p; k++)
            tr->beta[k] = so->beta0[k] + z[k];
    }
    /* the warm start: the mode's first-order prediction when θ moved by at most
     * PREDICT_RANGE of its size, else the old mode rescaled to keep b = θu; none before the
     * first evaluation */
    double *db = z;
    if (last) {
        const double th_old = last->theta[0];
        const double near = PREDICT_RANGE * (fabs(th_old) > 0.1 ? fabs(th_old) : 0.1);
        if (fabs(th - th_old) <= near) {
            pb.th = th_old;
            if (joint) {
                predict(&pb, th - th_old, last->u, last->w.s, last->w.W, last->D, NULL,
                        last->C, last->GiC, last->RX, tr->u, db);
                for (Py_ssize_t k = 0; k < p; k++)
                    tr->beta[k] = last->beta[k] + db[k];
            } else {
                for (Py_ssize_t k = 0; k < p; k++)
                    db[k] = tr->beta[k] - last->beta[k];
                predict(&pb, th - th_old, last->u, last->w.s, last->w.W, last->D, db, NULL,
                        NULL, NULL, tr->u, NULL);
            }
        } else {
            const double scale =
                fabs(th) > 1e-4 * (fabs(th_old) > 1.0 ? fabs(th_old) : 1.0) ? th_old / th : 1.0;
            for (Py_ssize_t j = 0; j < nlev; j++)
                tr->u[j] = last->u[j] * scale;
            if (joint)
                memcpy(tr->beta, last->beta, sizeof(double) * p);
        }
    }
    pb.th = th;
    Problem pu = pb;
    if (!joint)
        pu.X = NULL;
    double P;
    int status = OK;
    for (int attempt = last ? 0 : 1; attempt < 2; attempt++) {
        if (attempt) {   /* PIRLS failed from the warm start: from u = 0 (and β's start) */
            memset(tr->u, 0, sizeof(double) * nlev);
            if (joint)
                memcpy(tr->beta, so->beta_start, sizeof(double) * p);
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            double e = so->o[i];
            for (Py_ssize_t k = 0; k < p; k++)
                e += pb.X[i * p + k] * tr->beta[k];
            so->eta0[i] = e;
        }
        status = pirls(&pu, so->eta0, tr->u, tr->beta, &tr->w, tr->D, tr->C, tr->GiC, tr->RX,
                       &tr->iterations, &P);
        if (status == OK || status == NO_MEMORY)
            break;
    }
    if (status == NO_MEMORY)
        *error = NO_MEMORY;
    if (status != OK)
        return INFINITY;
    so->last = tr;   /* as ObjectiveFunction.last: the last mode PIRLS reached, and its x */
    so->last_set = tr == so->set[0] ? 0 : 1;
    memcpy(so->xl, x, sizeof(double) * (joint ? 1 : 1 + p));
    /* compensated sums: near the optimum BFGS compares values of F that differ by
     * ~1e-10 relative, and a plain running sum of n = 1e5 deviances is noisier than that */
    Sum ld = {0.0, 0.0}, uu = {0.0, 0.0}, ds = {0.0, 0.0};
    for (Py_ssize_t j = 0; j < nlev; j++) {
        add(&ld, log(tr->D[j]));
        add(&uu, tr->u[j] * tr->u[j]);
    }
    for (Py_ssize_t i = 0; i < n; i++)
        add(&ds, tr->w.dev[i]);
    const double F = (total(&ld) + total(&uu)) + (total(&ds) + so->aic_offset);
    if (gradient(&pb, tr->D, tr->u, tr->w.mu, tr->w.W, tr->w.s, joint ? tr->C : NULL,
                 tr->GiC, joint ? tr->RX : NULL, so->gfull) != OK) {
        *error = NO_MEMORY;
        return INFINITY;
    }
    g[0] = so->gfull[0];
    if (!joint)   /* ∂F/∂ζ = R⁻ᵀ∂F/∂β: forward substitution with Rᵀ */
        for (Py_ssize_t k = 0; k < p; k++) {
            double v = so->gfull[1 + k];
            for (Py_ssize_t m = 0; m < k; m++)
                v -= so->R[m * p + k] * g[1 + m];
            g[1 + k] = v / so->R[k * p + k];
        }
    const Py_ssize_t nx = joint ? 1 : 1 + p;
    for (Py_ssize_t k = 0; k < nx; k++)
        if (!isfinite(g[k]))
            return INFINITY;
    return isfinite(F) ? F : INFINITY;
}

/* A Python callable (x) -> (F, ∇F) as an Objective: ArithmeticError means F cannot be
 * evaluated there, as glmm.optimize.bfgs's default `failures`. */
typedef struct {
    PyObject *fg;
    Py_ssize_t n;
} PyObjective;

static double python_objective(void *ctx, const double *x, double *g, int *error)
{
    PyObjective *po = ctx;
    *error = PY_ERROR;   /* until F is had */
    PyObject *xs = PyList_New(po->n);
    if (!xs)
        return NAN;
    for (Py_ssize_t i = 0; i < po->n; i++) {
        PyObject *xi = PyFloat_FromDouble(x[i]);
        if (!xi) {
            Py_DECREF(xs);
            return NAN;
        }
        PyList_SET_ITEM(xs, i, xi);
    }
    PyObject *r = PyObject_CallOneArg(po->fg, xs);
    Py_DECREF(xs);
    if (!r) {
        if (PyErr_ExceptionMatches(PyExc_ArithmeticError)) {
            PyErr_Clear();
            *error = OK;
            return INFINITY;
        }
        return NAN;
    }
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
        PyErr_Format(PyExc_TypeError, "fg: expected a tuple (F, gradient) from the objective, "
                     "got %s", Py_TYPE(r)->tp_name);
        Py_DECREF(r);
        return NAN;
    }
    double f = PyFloat_AsDouble(PyTuple_GET_ITEM(r, 0));
    if (f == -1.0 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "fg: expected a float F from the objective, got %s",
                     Py_TYPE(PyTuple_GET_ITEM(r, 0))->tp_name);
        Py_DECREF(r);
        return NAN;
    }
    PyObject *seq = PySequence_Fast(PyTuple_GET_ITEM(r, 1), "the gradient must be a sequence");
    if (!seq || PySequence_Fast_GET_SIZE(seq) != po->n) {
        if (seq)
            PyErr_SetString(PyExc_ValueError, "the gradient has the wrong length");
        Py_XDECREF(seq);
        Py_DECREF(r);
        return NAN;
    }
    for (Py_ssize_t i = 0; i < po->n; i++) {
        g[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (g[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            Py_DECREF(r);
            return NAN;
        }
        if (!isfinite(g[i]))
            f = INFINITY;
    }
    Py_DECREF(seq);
    Py_DECREF(r);
    *error = OK;
    return isfinite(f) ? f : INFINITY;
}

/* -- the Python interface ----------------------------------------------------------------- */

/* Every entry point checks all its arguments before it computes anything, and raises
 * TypeError or ValueError naming the argument at fault: the core is internal, and glmm passes
 * valid arguments, but no argument, however wrong, may make it read or write outside its
 * arrays.  Arrays come through the buffer protocol: float64 or int64, C-contiguous, 1-D or
 * 2-D of the expected shape; an array the call writes must be writable and share no memory
 * with any other argument.  Sizes are integers in [0, MAX_ITEMS], and every size computed
 * from them is checked (muladd).  Index arrays (level codes, X's rows, cells, a pattern's
 * offsets and entries) are checked to lie within their bounds, in one branch-free pass; a
 * crossed_model copies its index arrays, so that a later change to the caller's arrays cannot
 * take them out of bounds.  A call runs without the GIL: no other thread may write its arrays
 * meanwhile (as for numpy's own functions). */

/* The call's arguments: exactly `argc` of them (NULL with TypeError if not). */
static PyObject *const *unpack(PyObject *args, const char *fname, Py_ssize_t argc)
{
    if (PyTuple_GET_SIZE(args) != argc) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd arguments, got %zd", fname, argc,
                     PyTuple_GET_SIZE(args));
        return NULL;
    }
    return PySequence_Fast_ITEMS(args);
}

/* A size: an integer in [0, MAX_ITEMS]. */
static int size_arg(PyObject *obj, const char *name, Py_ssize_t *v)
{
    PyObject *i = PyNumber_Index(obj);
    if (!i) {
        PyErr_Format(PyExc_TypeError, "%s: expected an integer, got %s", name,
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    *v = PyLong_AsSsize_t(i);
    Py_DECREF(i);
    if (*v == -1 && PyErr_Occurred())
        PyErr_Clear();   /* beyond a Py_ssize_t: out of range, below */
    if (*v < 0 || *v > MAX_ITEMS) {
        PyErr_Format(PyExc_ValueError, "%s: expected a size in [0, %zd], got %S", name,
                     (Py_ssize_t)MAX_ITEMS, obj);
        return 0;
    }
    return 1;
}

/* A float; NaN refused if `number`. */
static int float_arg(PyObject *obj, const char *name, int number, double *v)
{
    *v = PyFloat_AsDouble(obj);
    if (*v == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError))
            PyErr_Format(PyExc_ValueError, "%s: %S is beyond the range of a float", name, obj);
        else
            PyErr_Format(PyExc_TypeError, "%s: expected a float, got %s", name,
                         Py_TYPE(obj)->tp_name);
        return 0;
    }
    if (number && isnan(*v)) {
        PyErr_Format(PyExc_ValueError, "%s: expected a number, got NaN", name);
        return 0;
    }
    return 1;
}

/* A flag: any object with a truth value. */
static int flag_arg(PyObject *obj, const char *name, int *v)
{
    *v = PyObject_IsTrue(obj);
    if (*v < 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a bool, got %s", name,
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    return 1;
}

/* The response kind: BINOMIAL_LOGIT or POISSON_LOG. */
static int kind_arg(PyObject *obj, int *kind)
{
    PyObject *i = PyNumber_Index(obj);
    if (!i) {
        PyErr_Format(PyExc_TypeError, "kind: expected an integer (0: binomial-logit, "
                     "1: Poisson-log), got %s", Py_TYPE(obj)->tp_name);
        return 0;
    }
    const long k = PyLong_AsLong(i);
    Py_DECREF(i);
    if (k == -1 && PyErr_Occurred())
        PyErr_Clear();   /* beyond a long: unknown, below */
    if (k != BINOMIAL_LOGIT && k != POISSON_LOG) {
        PyErr_Format(PyExc_ValueError, "kind: unknown response kind %S (0: binomial-logit, "
                     "1: Poisson-log)", obj);
        return 0;
    }
    *kind = (int)k;
    return 1;
}

#define NBUF 64

/* The buffers a call holds, each with its argument's name and whether the call writes it. */
typedef struct {
    Py_buffer b[NBUF];
    const char *name[NBUF];
    unsigned char written[NBUF];
    int used;
} Buffers;

static void release(Buffers *bs)
{
    for (int k = 0; k < bs->used; k++)
        PyBuffer_Release(&bs->b[k]);
    bs->used = 0;
}

/* Whether a buffer's items are one 8-byte number each in the machine's byte order: 'd'
 * (float64) or, if `integer`, 'q' or 'l' (int64). */
static int format_ok(const Py_buffer *v, int integer)
{
    const char *fmt = v->format ? v->format : "B";
    const uint16_t one = 1;
    const int little = *(const unsigned char *)&one == 1;
    if (*fmt == '@' || *fmt == '=' || *fmt == (little ? '<' : '>') || (!little && *fmt == '!'))
        fmt++;
    if (v->itemsize != 8 || fmt[0] == '\0' || fmt[1] != '\0')
        return 0;
    return integer ? fmt[0] == 'q' || (fmt[0] == 'l' && sizeof(long) == 8) : fmt[0] == 'd';
}

/* A buffer's shape, "(3, 4)", for messages. */
static void shape_text(const Py_buffer *v, char *s, size_t size)
{
    size_t k = (size_t)snprintf(s, size, "(");
    for (int d = 0; d < v->ndim && k < size; d++)
        k += (size_t)snprintf(s + k, size - k, d ? ", %zd" : "%zd", v->shape[d]);
    if (k < size)
        snprintf(s + k, size - k, v->ndim == 1 ? ",)" : ")");
}

/* array()'s cols: a 1-D array; an array of any shape (rows items in all).  Else the number
 * of columns of a 2-D array. */
enum { VECTOR = -1, FLAT = -2 };
/* array()'s rows: any number */
#define ANY PY_SSIZE_T_MIN

/* obj as the call's next buffer, of 8-byte items (float64, or int64 if `integer`),
 * C-contiguous, writable if `written`, of shape (rows,) (cols == VECTOR), (rows, cols), or any
 * shape with rows items in all (cols == FLAT); rows == ANY: any number of rows.  Its data
 * (never NULL), or NULL with an exception naming the argument (TypeError "... is required" for
 * None). */
static void *array(Buffers *bs, PyObject *obj, const char *name, Py_ssize_t rows,
                   Py_ssize_t cols, int written, int integer)
{
    static double no_items[1];   /* the data of an empty array whose exporter gives none */
    const char *type = integer ? "int64" : "float64";
    if (obj == Py_None) {
        PyErr_Format(PyExc_TypeError, "%s is required", name);
        return NULL;
    }
    if (rows != ANY && muladd(rows, cols >= 0 ? cols : 1, 0) < 0) {
        PyErr_Format(PyExc_ValueError, "%s: its size, %zd x %zd, exceeds any array", name, rows,
                     cols >= 0 ? cols : 1);
        return NULL;
    }
    if (bs->used >= NBUF) {
        PyErr_SetString(PyExc_ValueError, "too many arrays in one call");
        return NULL;
    }
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a %s array, got %s", name, type,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    Py_buffer *v = &bs->b[bs->used];
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT |
                                       (written ? PyBUF_WRITABLE : 0)) < 0) {
        /* not C-contiguous, or read-only: the exporter's own words, naming the argument */
        PyObject *etype, *value, *tb;
        PyErr_Fetch(&etype, &value, &tb);
        PyErr_NormalizeException(&etype, &value, &tb);
        PyErr_Format(PyExc_ValueError, "%s: expected a C-contiguous%s %s array (%S)", name,
                     written ? ", writable" : "", type, value ? value : Py_None);
        Py_XDECREF(etype);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return NULL;
    }
    int ok = format_ok(v, integer) && (cols == FLAT || v->ndim == (cols == VECTOR ? 1 : 2));
    if (ok && cols == FLAT)
        ok = rows == ANY || v->len == rows * 8;
    else if (ok)
        ok = (rows == ANY || v->shape[0] == rows) && (cols == VECTOR || v->shape[1] == cols);
    if (!ok) {
        char want[96], got[96];
        if (rows == ANY && cols < 0)
            snprintf(want, sizeof want, "a%s %s array", cols == VECTOR ? " 1-D" : "", type);
        else if (rows == ANY)
            snprintf(want, sizeof want, "a 2-D %s array of %zd columns", type, cols);
        else if (cols < 0)
            snprintf(want, sizeof want, "%zd %s values%s", rows, type,
                     cols == VECTOR ? " (a 1-D array)" : "");
        else
            snprintf(want, sizeof want, "a %zd × %zd %s array", rows, cols, type);
        shape_text(v, got, sizeof got);
        PyErr_Format(PyExc_ValueError, "%s: expected %s, got shape %s of format '%s' (%zd-byte "
                     "items)", name, want, got, v->format ? v->format : "B", v->itemsize);
        PyBuffer_Release(v);
        return NULL;
    }
    bs->name[bs->used] = name;
    bs->written[bs->used] = (unsigned char)written;
    bs->used++;
    return v->buf ? v->buf : (void *)no_items;
}

/* array() for an argument that may be None (then *dst = NULL) unless `required`. */
static int optional(Buffers *bs, PyObject *obj, const char *name, Py_ssize_t rows,
                    Py_ssize_t cols, int written, int required, double **dst)
{
    if (obj == Py_None && !required) {
        *dst = NULL;
        return 1;
    }
    return (*dst = array(bs, obj, name, rows, cols, written, 0)) != NULL;
}

#define TAKE(var, obj, name, rows, cols, written, required)                                  \
    do {                                                                                     \
        if (!optional(bs, obj, name, rows, cols, written, required, &(var)))                 \
            goto fail;                                                                       \
    } while (0)

/* The rows of the buffer array() took last. */
static Py_ssize_t last_rows(const Buffers *bs)
{
    return bs->b[bs->used - 1].shape[0];
}

/* Whether two buffers share memory (an empty one shares none). */
static int shares(const Py_buffer *a, const Py_buffer *b)
{
    const uintptr_t pa = (uintptr_t)a->buf, pb = (uintptr_t)b->buf;
    return a->len > 0 && b->len > 0 && pa < pb + (uintptr_t)b->len &&
           pb < pa + (uintptr_t)a->len;
}

/* That no array the call writes shares memory with another of its arrays, or with one that
 * `held` (a crossed_model's, or NULL) holds: else ValueError naming both. */
static int disjoint(const Buffers *bs, const Buffers *held)
{
    for (int i = 0; i < bs->used; i++) {
        if (!bs->written[i])
            continue;
        for (int j = 0; j < bs->used; j++)
            if (j != i && shares(&bs->b[i], &bs->b[j])) {
                PyErr_Format(PyExc_ValueError, "%s and %s share memory, and the call writes %s",
                             bs->name[i], bs->name[j], bs->name[i]);
                return 0;
            }
        for (int j = 0; held && j < held->used; j++)
            if (shares(&bs->b[i], &held->b[j])) {
                PyErr_Format(PyExc_ValueError, "%s shares memory with the model's %s, and the "
                             "call writes %s", bs->name[i], held->name[j], bs->name[i]);
                return 0;
            }
    }
    return 1;
}

/* That all `len` values of v lie in [0, bound) (else ValueError naming them, term `term`'s if
 * term ≥ 0, and the first outside): one branch-free pass. */
static int in_range(const int64_t *v, Py_ssize_t len, Py_ssize_t bound, const char *name,
                    const char *what, int term)
{
    const uint64_t b = bound > 0 ? (uint64_t)bound : 0;
    uint64_t bad = 0;   /* branch-free (vectorised): a negative value is a huge unsigned one */
    for (Py_ssize_t i = 0; i < len; i++)
        bad |= (uint64_t)v[i] >= b;
    if (!bad)
        return 1;
    Py_ssize_t i = 0;
    while ((uint64_t)v[i] < b)
        i++;
    if (term >= 0)
        PyErr_Format(PyExc_ValueError, "%s: %s outside [0, %zd): term %d's [%zd] is %lld", name,
                     what, bound, term, i, (long long)v[i]);
    else
        PyErr_Format(PyExc_ValueError, "%s: %s outside [0, %zd): %s[%zd] is %lld", name, what,
                     bound, name, i, (long long)v[i]);
    return 0;
}

/* Parse the shared arguments of the scalar-term entry points, (kind, binary, y, w, ylogy, f,
 * x, θ, X, ℓ, p), into pb: x None for an intercept (x = 1), X None unless need_X (u-only
 * PIRLS).  The call's remaining arguments go to rest. */
static int problem(Buffers *bs, const char *fname, PyObject *args, Py_ssize_t argc, int need_X,
                   Problem *pb, PyObject **rest)
{
    PyObject *const *a = unpack(args, fname, argc);
    int kind, binary;
    Py_ssize_t nlev, p;
    double th;
    if (!a || !kind_arg(a[0], &kind) || !flag_arg(a[1], "binary", &binary) ||
        !float_arg(a[7], "theta", 0, &th) || !size_arg(a[9], "nlevels", &nlev) ||
        !size_arg(a[10], "p", &p))
        return 0;
    const int64_t *f = array(bs, a[5], "f", ANY, VECTOR, 0, 1);
    if (!f)
        return 0;
    const Py_ssize_t n = last_rows(bs);
    if (!in_range(f, n, nlev, "f", "level codes", -1))
        return 0;
    double *y, *w, *ylogy, *x, *X;
    if (!optional(bs, a[2], "y", n, VECTOR, 0, 1, &y) ||
        !optional(bs, a[3], "w", n, VECTOR, 0, 1, &w) ||
        !optional(bs, a[4], "ylogy", n, VECTOR, 0, 0, &ylogy) ||
        !optional(bs, a[6], "x", n, VECTOR, 0, 0, &x) ||
        !optional(bs, a[8], "X", n, p, 0, need_X, &X))
        return 0;
    *pb = (Problem){.n = n, .nlev = nlev, .p = p, .f = f, .x = x, .th = th, .X = X,
                    .resp = {.kind = kind, .binary = binary, .y = y, .w = w, .ylogy = ylogy,
                             .n = n}};
    for (Py_ssize_t k = 11; k < argc; k++)
        rest[k - 11] = a[k];
    return 1;
}

PyDoc_STRVAR(pirls_doc,
"pirls(kind, binary, y, w, ylogy, f, x, theta, X, nlevels, p,\n"
"      eta0, u, beta, eta, mu, dev, W, s, D, C, GiC, RX) -> (status, iterations, pdev)\n\n"
"PIRLS for one scalar term from (u, beta) (both updated in place).  X = None: u only;\n"
"else joint in (u, beta), with C, GiC (nlevels × p) and RX (p × p) written at the mode.\n"
"eta0 = o + X beta at the start.  status 0 on success.");

static PyObject *py_pirls(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    Problem pb;
    PyObject *r[12];
    if (!problem(bs, "pirls", args, 23, 0, &pb, r))
        goto fail;
    const int joint = pb.X != NULL;   /* X given: PIRLS in (u, β), with beta, C, GiC and RX */
    const Py_ssize_t n = pb.n, nlev = pb.nlev, p = joint ? pb.p : 0;
    double *eta0, *u, *beta, *C, *GiC, *RX, *D;
    Working out;
    TAKE(eta0, r[0], "eta0", n, VECTOR, 0, 1);
    TAKE(u, r[1], "u", nlev, VECTOR, 1, 1);
    TAKE(beta, r[2], "beta", p, VECTOR, 1, joint);
    TAKE(out.eta, r[3], "eta", n, VECTOR, 1, 1);
    TAKE(out.mu, r[4], "mu", n, VECTOR, 1, 1);
    TAKE(out.dev, r[5], "dev", n, VECTOR, 1, 1);
    TAKE(out.W, r[6], "W", n, VECTOR, 1, 1);
    TAKE(out.s, r[7], "s", n, VECTOR, 1, 1);
    TAKE(D, r[8], "D", nlev, VECTOR, 1, 1);
    TAKE(C, r[9], "C", nlev, p, 1, joint);
    TAKE(GiC, r[10], "GiC", nlev, p, 1, joint);
    TAKE(RX, r[11], "RX", p, p, 1, joint);
    if (!disjoint(bs, NULL))
        goto fail;
    long iterations = 0;
    double P = NAN;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = pirls(&pb, eta0, u, beta, &out, D, C, GiC, RX, &iterations, &P);
    Py_END_ALLOW_THREADS
    release(bs);
    if (status == NO_MEMORY)
        return PyErr_NoMemory();
    return Py_BuildValue("ild", status, iterations, P);
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(gradient_doc,
"gradient(kind, binary, y, w, ylogy, f, x, theta, X, nlevels, p,\n"
"         D, u, mu, W, s, C, GiC, RX, g) -> None\n\n"
"The exact gradient at a scalar-term mode, written to g: (θ, β) when RX is None (Laplace),\n"
"θ alone (nAGQ = 0, the joint mode's C, GiC and RX given).");

static PyObject *py_gradient(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    Problem pb;
    PyObject *r[9];
    if (!problem(bs, "gradient", args, 20, 1, &pb, r))
        goto fail;
    const Py_ssize_t n = pb.n, nlev = pb.nlev, p = pb.p;
    double *D, *u, *mu, *W, *s, *C, *GiC, *RX, *g;
    TAKE(D, r[0], "D", nlev, VECTOR, 0, 1);
    TAKE(u, r[1], "u", nlev, VECTOR, 0, 1);
    TAKE(mu, r[2], "mu", n, VECTOR, 0, 1);
    TAKE(W, r[3], "W", n, VECTOR, 0, 1);
    TAKE(s, r[4], "s", n, VECTOR, 0, 1);
    TAKE(C, r[5], "C", nlev, p, 0, 0);
    TAKE(GiC, r[6], "GiC", nlev, p, 0, 0);
    TAKE(RX, r[7], "RX", p, p, 0, 0);
    if (RX && !(C && GiC)) {
        PyErr_SetString(PyExc_TypeError, "C and GiC are required with RX");
        goto fail;
    }
    TAKE(g, r[8], "g", RX ? 1 : 1 + p, VECTOR, 1, 1);
    if (!disjoint(bs, NULL))
        goto fail;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = gradient(&pb, D, u, mu, W, s, C, GiC, RX, g);
    Py_END_ALLOW_THREADS
    release(bs);
    if (status == NO_MEMORY)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(schur_doc,
"schur(kind, binary, y, w, ylogy, f, x, theta, X, nlevels, p, W, D, C, GiC, RX) -> status\n\n"
"C = ΛᵀZᵀWX, D⁻¹C and R_X (upper, R_XᵀR_X = XᵀWX − CᵀD⁻¹C) at weights W, written to\n"
"C, GiC and RX; status 5 when XᵀWX − CᵀD⁻¹C is not positive definite.");

static PyObject *py_schur(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    Problem pb;
    PyObject *r[5];
    if (!problem(bs, "schur", args, 16, 1, &pb, r))
        goto fail;
    const Py_ssize_t n = pb.n, nlev = pb.nlev, p = pb.p;
    double *W, *D, *C, *GiC, *RX;
    TAKE(W, r[0], "W", n, VECTOR, 0, 1);
    TAKE(D, r[1], "D", nlev, VECTOR, 0, 1);
    TAKE(C, r[2], "C", nlev, p, 1, 1);
    TAKE(GiC, r[3], "GiC", nlev, p, 1, 1);
    TAKE(RX, r[4], "RX", p, p, 1, 1);
    if (!disjoint(bs, NULL))
        goto fail;
    const int ok = schur(&pb, W, D, C, GiC, RX);
    release(bs);
    return PyLong_FromLong(ok ? OK : RX_NOT_PD);
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(predict_doc,
"predict(kind, binary, y, w, ylogy, f, x, theta_old, X, nlevels, p,\n"
"        dtheta, u, s, W, D, dbeta, C, GiC, RX, u_new, dbeta_new) -> None\n\n"
"The first-order prediction of the mode at theta_old + dtheta from the mode (u, s, W, D):\n"
"given dbeta (nAGQ ≥ 1) u_new only; dbeta None (joint, with C, GiC, RX) also dbeta_new.");

static PyObject *py_predict(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    Problem pb;
    PyObject *r[11];
    if (!problem(bs, "predict", args, 22, 1, &pb, r))
        goto fail;
    const Py_ssize_t n = pb.n, nlev = pb.nlev, p = pb.p;
    double dth, *u, *s, *W, *D, *dbeta, *C, *GiC, *RX, *un, *db;
    if (!float_arg(r[0], "dtheta", 0, &dth))
        goto fail;
    TAKE(u, r[1], "u", nlev, VECTOR, 0, 1);
    TAKE(s, r[2], "s", n, VECTOR, 0, 1);
    TAKE(W, r[3], "W", n, VECTOR, 0, 1);
    TAKE(D, r[4], "D", nlev, VECTOR, 0, 1);
    TAKE(dbeta, r[5], "dbeta", p, VECTOR, 0, 0);
    TAKE(C, r[6], "C", nlev, p, 0, !dbeta);
    TAKE(GiC, r[7], "GiC", nlev, p, 0, !dbeta);
    TAKE(RX, r[8], "RX", p, p, 0, !dbeta);
    TAKE(un, r[9], "u_new", nlev, VECTOR, 1, 1);
    TAKE(db, r[10], "dbeta_new", p, VECTOR, 1, !dbeta);
    if (!disjoint(bs, NULL))
        goto fail;
    predict(&pb, dth, u, s, W, D, dbeta, C, GiC, RX, un, db);
    release(bs);
    Py_RETURN_NONE;
fail:
    release(bs);
    return NULL;
}

/* The tuples of arrays minimize takes as modes, and their arrays' names. */
static const char *const MODE_NAMES[3] = {"last", "set0", "set1"};
static const char *const MODE_ARRAYS[3][12] = {
    {"last.theta", "last.beta", "last.u", "last.D", "last.eta", "last.mu", "last.dev",
     "last.W", "last.s", "last.C", "last.GiC", "last.RX"},
    {"set0.theta", "set0.beta", "set0.u", "set0.D", "set0.eta", "set0.mu", "set0.dev",
     "set0.W", "set0.s", "set0.C", "set0.GiC", "set0.RX"},
    {"set1.theta", "set1.beta", "set1.u", "set1.D", "set1.eta", "set1.mu", "set1.dev",
     "set1.W", "set1.s", "set1.C", "set1.GiC", "set1.RX"}};

/* A Mode from the tuple MODE_NAMES[which], (theta, beta, u, D, eta, mu, dev, W, s, C, GiC,
 * RX); C, GiC and RX may be None unless `joint`. */
static int mode_arg(Buffers *bs, PyObject *t, int which, const Problem *pb, int joint,
                    int written, Mode *m)
{
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 12) {
        PyErr_Format(PyExc_TypeError, "%s: expected a tuple of 12 arrays", MODE_NAMES[which]);
        return 0;
    }
    const Py_ssize_t n = pb->n, nlev = pb->nlev, p = pb->p;
    const Py_ssize_t rows[12] = {1, p, nlev, nlev, n, n, n, n, n, nlev, nlev, p};
    double **dst[12] = {&m->theta, &m->beta, &m->u, &m->D, &m->w.eta, &m->w.mu, &m->w.dev,
                        &m->w.W, &m->w.s, &m->C, &m->GiC, &m->RX};
    for (int k = 0; k < 12; k++)
        if (!optional(bs, PyTuple_GET_ITEM(t, k), MODE_ARRAYS[which][k], rows[k],
                      k < 9 ? VECTOR : p, written, k < 9 || joint, dst[k]))
            return 0;
    m->iterations = 0;
    return 1;
}

static PyObject *bfgs_result(int status, const BfgsOut *out)
{
    if (status == NO_MEMORY)
        return PyErr_NoMemory();
    if (status != OK)   /* the objective's Python exception is set */
        return NULL;
    return Py_BuildValue("iidlddd", out->code, out->converged, out->f, out->nfev, out->gmax,
                         out->decrement, out->dmax);
}

/* A bytes-like argument of `len` bytes (as the call's next buffer). */
static const unsigned char *bytes_arg(Buffers *bs, PyObject *obj, const char *name,
                                      Py_ssize_t len)
{
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd bytes, got %s", name, len,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (bs->used >= NBUF) {
        PyErr_SetString(PyExc_ValueError, "too many arrays in one call");
        return NULL;
    }
    Py_buffer *v = &bs->b[bs->used];
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd C-contiguous bytes", name, len);
        return NULL;
    }
    if (v->len != len) {
        PyErr_Format(PyExc_ValueError, "%s: expected one byte per coordinate (%zd), got %zd",
                     name, len, v->len);
        PyBuffer_Release(v);
        return NULL;
    }
    bs->name[bs->used] = name;
    bs->written[bs->used] = 0;
    bs->used++;
    return v->buf;
}

PyDoc_STRVAR(bfgs_doc,
"bfgs(fg, x, g, f0, unit, gtol, dtol, xtol, max_iter)\n"
"    -> (code, converged, f, nfev, gmax, decrement, dmax)\n\n"
"glmm.optimize.bfgs.minimize_bfgs on a Python objective fg(x: list) -> (F, gradient), raising\n"
"ArithmeticError where F cannot be evaluated.  x holds x0 and receives the final point,\n"
"g receives ∇F there (and holds ∇F(x0) when f0 is not None); unit is None or n bytes.");

static PyObject *py_bfgs(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "bfgs", 9);
    if (!a)
        return NULL;
    PyObject *fg = a[0], *f0 = a[3], *unito = a[4];
    double gtol, dtol, xtol, f = NAN;
    Py_ssize_t max_iter;
    if (!PyCallable_Check(fg)) {
        PyErr_Format(PyExc_TypeError, "fg: expected a callable (x) -> (F, gradient), got %s",
                     Py_TYPE(fg)->tp_name);
        return NULL;
    }
    if (!float_arg(a[5], "gtol", 1, &gtol) || !float_arg(a[6], "dtol", 1, &dtol) ||
        !float_arg(a[7], "xtol", 1, &xtol) || !size_arg(a[8], "max_iter", &max_iter) ||
        (f0 != Py_None && !float_arg(f0, "f0", 0, &f)))
        return NULL;
    double *x, *g;
    const unsigned char *unit = NULL;
    if (!(x = array(bs, a[1], "x", ANY, VECTOR, 1, 0)))
        goto fail;
    const Py_ssize_t n = last_rows(bs);
    TAKE(g, a[2], "g", n, VECTOR, 1, 1);
    if ((unito != Py_None && !(unit = bytes_arg(bs, unito, "unit", n))) || !disjoint(bs, NULL))
        goto fail;
    BfgsOut out = {.x = x, .g = g, .f = f};
    PyObjective po = {fg, n};
    const int status = bfgs(python_objective, &po, n, unit, f0 != Py_None, gtol, dtol, xtol,
                            max_iter, &out);
    release(bs);
    return bfgs_result(status, &out);
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(minimize_doc,
"minimize(kind, binary, y, w, ylogy, f, x, 0.0, X, nlevels, p,\n"
"         o, beta_start, R, beta0, aic_offset, last, set0, set1, xv, gv, xl, f0,\n"
"         gtol, dtol, xtol, max_iter)\n"
"    -> ((code, converged, f, nfev, gmax, decrement, dmax), last_set, iterations)\n\n"
"BFGS (glmm.optimize.bfgs) on the scalar-term objective: F₁ in (θ, ζ), β = beta0 + R⁻¹ζ (R given),\n"
"or F₀ in θ (R None: joint PIRLS, cold-started at beta_start).  `last` is the mode of the\n"
"last evaluation, a tuple (theta, beta, u, D, eta, mu, dev, W, s, C, GiC, RX), or None\n"
"(PIRLS then starts at u = 0); set0 and set1 are two such tuples the trials are written\n"
"to, and last_set tells which one holds the last mode PIRLS reached (-1: none), xl its x\n"
"and iterations its PIRLS iterations.  xv holds x0 and receives the final point, gv the\n"
"gradient there (with ∇F(x0) in it when f0 is not None).");

static PyObject *py_minimize(PyObject *self, PyObject *args)
{
    static const char *const TOL[3] = {"gtol", "dtol", "xtol"};
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    ScalarObjective so = {.last_set = -1};
    PyObject *r[16];
    double *eta0 = NULL, *gfull = NULL;
    unsigned char *unit = NULL;
    if (!problem(bs, "minimize", args, 27, 1, &so.pb, r))
        goto fail;
    const Py_ssize_t n = so.pb.n, p = so.pb.p;
    double *o, *beta_start, *R, *beta0;
    TAKE(o, r[0], "o", n, VECTOR, 0, 1);
    TAKE(beta_start, r[1], "beta_start", p, VECTOR, 0, 0);
    TAKE(R, r[2], "R", p, p, 0, 0);
    TAKE(beta0, r[3], "beta0", p, VECTOR, 0, 0);
    so.joint = R == NULL;
    if (so.joint ? !beta_start : !beta0) {
        PyErr_SetString(PyExc_TypeError, so.joint ? "beta_start is required without R"
                                                  : "beta0 is required with R");
        goto fail;
    }
    so.o = o;
    so.beta_start = beta_start;
    so.R = R;
    so.beta0 = beta0;
    if (!float_arg(r[4], "aic_offset", 0, &so.aic_offset))
        goto fail;
    Mode modes[3];
    if ((r[5] != Py_None && !mode_arg(bs, r[5], 0, &so.pb, so.joint, 0, &modes[0])) ||
        !mode_arg(bs, r[6], 1, &so.pb, so.joint, 1, &modes[1]) ||
        !mode_arg(bs, r[7], 2, &so.pb, so.joint, 1, &modes[2]))
        goto fail;
    so.last = r[5] == Py_None ? NULL : &modes[0];
    so.set[0] = &modes[1];
    so.set[1] = &modes[2];
    const Py_ssize_t nx = so.joint ? 1 : 1 + p;
    BfgsOut out = {.f = NAN};
    TAKE(out.x, r[8], "xv", nx, VECTOR, 1, 1);
    TAKE(out.g, r[9], "gv", nx, VECTOR, 1, 1);
    TAKE(so.xl, r[10], "xl", nx, VECTOR, 1, 1);
    const int have_start = r[11] != Py_None;
    if (have_start && !float_arg(r[11], "f0", 0, &out.f))
        goto fail;
    double tol[3];
    for (int k = 0; k < 3; k++)
        if (!float_arg(r[12 + k], TOL[k], 1, &tol[k]))
            goto fail;
    Py_ssize_t max_iter;
    if (!size_arg(r[15], "max_iter", &max_iter) || !disjoint(bs, NULL))
        goto fail;
    eta0 = malloc(sizeof(double) * (n > 0 ? n : 1));
    gfull = malloc(sizeof(double) * (1 + p));
    unit = malloc(nx);
    if (!eta0 || !gfull || !unit) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t k = 0; k < nx; k++)
        unit[k] = k > 0;   /* the whitened β */
    so.eta0 = eta0;
    so.gfull = gfull;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = bfgs(scalar_objective, &so, nx, so.joint ? NULL : unit, have_start, tol[0], tol[1],
                  tol[2], max_iter, &out);
    Py_END_ALLOW_THREADS
    free(unit);
    free(eta0);
    free(gfull);
    release(bs);
    PyObject *res = bfgs_result(status, &out);
    if (!res)
        return NULL;
    PyObject *full = Py_BuildValue("Nil", res, so.last_set,
                                   so.last_set < 0 ? 0L : so.set[so.last_set]->iterations);
    return full;
fail:
    free(unit);
    free(eta0);
    free(gfull);
    release(bs);
    return NULL;
}

/* A crossed-terms model as the compiled core holds it (a capsule made once per model by
 * crossed_model): the Crossed problem without θ; its index arrays (the terms' level codes,
 * X's row of each observation, the cells), copied into one block and checked there; and the
 * buffers of its float64 arrays, which stay exported (so their arrays alive and unresizable)
 * for the capsule's life. */
typedef struct {
    Crossed cr;
    Buffers bs;
    int64_t *index;
} CrossedModel;

static const char *const CROSSED_MODEL = "glmm._core.CrossedModel";

static void crossed_model_free(PyObject *capsule)
{
    CrossedModel *cm = PyCapsule_GetPointer(capsule, CROSSED_MODEL);
    if (cm) {
        release(&cm->bs);
        PyMem_Free(cm->index);
        PyMem_Free(cm);
    }
}

PyDoc_STRVAR(crossed_model_doc,
"crossed_model(kind, binary, y, w, ylogy, codes, xs, nlevels, p, groups, Xg, cells)\n"
"    -> capsule\n\n"
"T ≥ 2 scalar terms for crossed_pirls and crossed_gradient, checked once: codes, xs and\n"
"nlevels are T-tuples (each term's level codes, its column or None for an intercept, its\n"
"number of levels); the first term has q1 levels and the others q2 in all.  X (p columns)\n"
"is given as its distinct rows Xg (G × p), each observation's row `groups`, and per term\n"
"its cells (the cell of each observation, the level and the row of Xg of each cell).\n"
"The index arrays are copied: later changes to them do not reach the model.");

/* The index arrays of a crossed model, at most 1 + 4 per term: each term's level codes, and
 * with fixed effects X's row of each observation and each term's cells. */
#define MAX_INDEX (1 + 4 * MAX_TERMS)

static PyObject *py_crossed_model(PyObject *self, PyObject *args)
{
    PyObject *const *a = unpack(args, "crossed_model", 12);
    int kind, binary;
    Py_ssize_t p;
    if (!a || !kind_arg(a[0], &kind) || !flag_arg(a[1], "binary", &binary) ||
        !size_arg(a[8], "p", &p))
        return NULL;
    PyObject *codes = a[5], *xs = a[6], *nlevels = a[7], *cells = a[11];
    const Py_ssize_t T = PyTuple_Check(codes) ? PyTuple_GET_SIZE(codes) : 0;
    if (T < 2 || T > MAX_TERMS || !PyTuple_Check(xs) || !PyTuple_Check(nlevels) ||
        !PyTuple_Check(cells) || PyTuple_GET_SIZE(xs) != T || PyTuple_GET_SIZE(nlevels) != T ||
        PyTuple_GET_SIZE(cells) != T) {
        PyErr_Format(PyExc_TypeError, "codes, xs, nlevels and cells: tuples of 2 to %d terms",
                     MAX_TERMS);
        return NULL;
    }
    Py_ssize_t nl[MAX_TERMS], q = 0;
    for (Py_ssize_t t = 0; t < T; t++) {
        if (!size_arg(PyTuple_GET_ITEM(nlevels, t), "nlevels", &nl[t]))
            return NULL;
        q += nl[t];   /* at most MAX_TERMS·MAX_ITEMS: no overflow */
        PyObject *c = PyTuple_GET_ITEM(cells, t);
        if (p > 0 && (!PyTuple_Check(c) || PyTuple_GET_SIZE(c) != 3)) {
            PyErr_SetString(PyExc_TypeError, "cells: a (cell, level, row) tuple per term");
            return NULL;
        }
    }
    if (q + p > MAX_ITEMS) {
        PyErr_Format(PyExc_ValueError, "nlevels and p: %zd modes and %zd fixed effects exceed "
                     "any array", q, p);
        return NULL;
    }
    CrossedModel *cm = PyMem_Calloc(1, sizeof(CrossedModel));
    if (!cm)
        return PyErr_NoMemory();
    Crossed *cr = &cm->cr;
    Buffers *bs = &cm->bs, callers, *ix = &callers;   /* the caller's index arrays, until copied */
    ix->used = 0;
    const int64_t *src[MAX_INDEX];
    const int64_t **dst[MAX_INDEX];
    Py_ssize_t len[MAX_INDEX], bound[MAX_INDEX];
    int term[MAX_INDEX], k = 0;
    const char *what[MAX_INDEX];
#define INDEX(obj, name, rows, dest, bnd, desc, t)                                           \
    do {                                                                                     \
        if (!(src[k] = array(ix, obj, name, rows, VECTOR, 0, 1)))                            \
            goto fail;                                                                       \
        len[k] = last_rows(ix);                                                              \
        dst[k] = dest;                                                                       \
        bound[k] = bnd;                                                                      \
        what[k] = desc;                                                                      \
        term[k++] = t;                                                                       \
    } while (0)
    INDEX(PyTuple_GET_ITEM(codes, 0), "codes", ANY, &cr->f[0], nl[0], "values", 0);
    const Py_ssize_t n = len[0];
    for (Py_ssize_t t = 1; t < T; t++)
        INDEX(PyTuple_GET_ITEM(codes, t), "codes", n, &cr->f[t], nl[t], "values", (int)t);
    if (p > 0) {
        if (!(cr->Xg = array(bs, a[10], "Xg", ANY, p, 0, 0)))
            goto fail;
        cr->G = last_rows(bs);
        INDEX(a[9], "groups", n, &cr->g, cr->G, "values", -1);
        for (Py_ssize_t t = 0; t < T; t++) {
            PyObject *c = PyTuple_GET_ITEM(cells, t);
            INDEX(PyTuple_GET_ITEM(c, 1), "cells", ANY, &cr->cell_level[t], nl[t],
                  "cell levels", (int)t);
            const Py_ssize_t nc = len[k - 1];
            INDEX(PyTuple_GET_ITEM(c, 0), "cells", n, &cr->cell[t], nc, "cells", (int)t);
            INDEX(PyTuple_GET_ITEM(c, 2), "cells", nc, &cr->cell_row[t], cr->G, "cell rows",
                  (int)t);
            cr->ncell[t] = nc;
            cr->cell_off[t] = cr->ncells;
            cr->ncells += nc;
        }
    }
#undef INDEX
    Py_ssize_t total = 0;
    for (int j = 0; j < k; j++)
        total = muladd(1, len[j], total);
    if (total < 0 || !(cm->index = PyMem_Malloc(sizeof(int64_t) * (total + 1)))) {
        PyErr_NoMemory();
        goto fail;
    }
    for (int j = 0, at = 0; j < k; at += len[j++]) {   /* copy, then check the copies */
        int64_t *v = cm->index + at;
        memcpy(v, src[j], sizeof(int64_t) * len[j]);
        *dst[j] = v;
    }
    for (int j = 0; j < k; j++)
        if (!in_range(*dst[j], len[j], bound[j], ix->name[j], what[j], term[j]))
            goto fail;
    release(ix);
    for (Py_ssize_t t = 0; t < T && p > 0; t++)   /* each observation's cell at its level and row */
        for (Py_ssize_t i = 0; i < n; i++) {
            const int64_t c = cr->cell[t][i];
            if (cr->cell_level[t][c] != cr->f[t][i] || cr->cell_row[t][c] != cr->g[i]) {
                PyErr_Format(PyExc_ValueError, "cells: term %zd's observation %zd (level %lld, "
                             "row %lld of Xg) is in cell %lld, at level %lld and row %lld", t,
                             i, (long long)cr->f[t][i], (long long)cr->g[i], (long long)c,
                             (long long)cr->cell_level[t][c], (long long)cr->cell_row[t][c]);
                goto fail;
            }
        }
    Py_ssize_t off = 0;
    for (Py_ssize_t t = 0; t < T; t++) {
        double *x;
        if (!optional(bs, PyTuple_GET_ITEM(xs, t), "xs", n, VECTOR, 0, 0, &x))
            goto fail;
        cr->x[t] = x;
        cr->off[t] = off;
        off += nl[t];
    }
    double *y, *w, *ylogy;
    if (!optional(bs, a[2], "y", n, VECTOR, 0, 1, &y) ||
        !optional(bs, a[3], "w", n, VECTOR, 0, 1, &w) ||
        !optional(bs, a[4], "ylogy", n, VECTOR, 0, 0, &ylogy))
        goto fail;
    cr->n = n;
    cr->T = T;
    cr->p = p;
    cr->q1 = nl[0];
    cr->q2 = q - nl[0];
    cr->resp = (Resp){.kind = kind, .binary = binary, .y = y, .w = w, .ylogy = ylogy, .n = n};
    PyObject *capsule = PyCapsule_New(cm, CROSSED_MODEL, crossed_model_free);
    if (capsule)
        return capsule;
fail:
    release(ix);
    release(bs);
    PyMem_Free(cm->index);
    PyMem_Free(cm);
    return NULL;
}

/* The model of a crossed_model capsule at θ (a T-tuple of floats, the argument `name`), with
 * the fixed effects in the system if `joint`, into cr: a copy, so that a call never changes
 * the shared model.  The capsule's model (for its buffers), or NULL with an exception. */
static const CrossedModel *crossed_at(PyObject *capsule, PyObject *theta, const char *name,
                                      int joint, Crossed *cr)
{
    if (!PyCapsule_IsValid(capsule, CROSSED_MODEL)) {
        PyErr_Format(PyExc_ValueError, "model: expected the PyCapsule \"%s\" of crossed_model, "
                     "got %s", CROSSED_MODEL, Py_TYPE(capsule)->tp_name);
        return NULL;
    }
    const CrossedModel *cm = PyCapsule_GetPointer(capsule, CROSSED_MODEL);
    *cr = cm->cr;
    if (!PyTuple_Check(theta) || PyTuple_GET_SIZE(theta) != cr->T) {
        PyErr_Format(PyExc_TypeError, "%s: a tuple of %zd floats", name, cr->T);
        return NULL;
    }
    for (Py_ssize_t t = 0; t < cr->T; t++) {
        cr->th[t] = PyFloat_AsDouble(PyTuple_GET_ITEM(theta, t));
        if (cr->th[t] == -1.0 && PyErr_Occurred()) {
            PyErr_Format(PyExc_TypeError, "%s: a tuple of %zd floats", name, cr->T);
            return NULL;
        }
    }
    cr->X = joint && cr->p > 0 ? cr->Xg : NULL;   /* the joint system's flag */
    return cm;
}

PyDoc_STRVAR(crossed_pirls_doc,
"crossed_pirls(model, theta, joint, eta0, u, beta, eta, mu, dev, W, s, D, Bt, R)\n"
"    -> (status, iterations)\n\n"
"PIRLS for a crossed_model at θ (a tuple of floats), u only or joint in (u, beta): u and\n"
"beta are updated in place; on success eta … s hold the response at the mode and D (q1),\n"
"Bt (q1 × m) and R (m × m, upper) its factor, m = q2 (+ p if joint).");

static PyObject *py_crossed_pirls(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "crossed_pirls", 14);
    int joint;
    Crossed cr;
    const CrossedModel *cm;
    if (!a || !flag_arg(a[2], "joint", &joint) || !(cm = crossed_at(a[0], a[1], "theta", joint,
                                                                    &cr)))
        return NULL;
    PyObject *const *r = a + 3;
    const Py_ssize_t n = cr.n, p = cr.X ? cr.p : 0, q1 = cr.q1, q2 = cr.q2;
    const Py_ssize_t q = q1 + q2, m = q2 + p;
    double *eta0, *u, *beta, *D, *Bt, *R;
    Working out;
    TAKE(eta0, r[0], "eta0", n, VECTOR, 0, 1);
    TAKE(u, r[1], "u", q, VECTOR, 1, 1);
    TAKE(beta, r[2], "beta", p, VECTOR, 1, p > 0);
    TAKE(out.eta, r[3], "eta", n, VECTOR, 1, 1);
    TAKE(out.mu, r[4], "mu", n, VECTOR, 1, 1);
    TAKE(out.dev, r[5], "dev", n, VECTOR, 1, 1);
    TAKE(out.W, r[6], "W", n, VECTOR, 1, 1);
    TAKE(out.s, r[7], "s", n, VECTOR, 1, 1);
    TAKE(D, r[8], "D", q1, VECTOR, 1, 1);
    TAKE(Bt, r[9], "Bt", q1, m, 1, 1);
    TAKE(R, r[10], "R", m, m, 1, 1);
    if (!disjoint(bs, &cm->bs))
        goto fail;
    long iterations = 0;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = crossed_pirls(&cr, eta0, u, beta, &out, D, Bt, R, &iterations);
    Py_END_ALLOW_THREADS
    release(bs);
    if (status == NO_MEMORY)
        return PyErr_NoMemory();
    return Py_BuildValue("il", status, iterations);
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(crossed_gradient_doc,
"crossed_gradient(model, theta, profiled, D, Bt, R, u, mu, W, s, g) -> None\n\n"
"The exact gradient at a crossed_pirls mode, from its factor (D, Bt, R) and response,\n"
"written to g: ∂F₀/∂θ (profiled: the factor is the joint one) or ∂F₁/∂(θ, β) (the\n"
"factor is G's).");

static PyObject *py_crossed_gradient(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "crossed_gradient", 11);
    int profiled;
    Crossed cr;
    const CrossedModel *cm;
    if (!a || !flag_arg(a[2], "profiled", &profiled) ||
        !(cm = crossed_at(a[0], a[1], "theta", profiled, &cr)))
        return NULL;
    PyObject *const *r = a + 3;
    const Py_ssize_t n = cr.n, q1 = cr.q1, q2 = cr.q2, q = q1 + q2;
    const Py_ssize_t m = q2 + (cr.X ? cr.p : 0);
    double *D, *Bt, *R, *u, *mu, *W, *s, *g;
    TAKE(D, r[0], "D", q1, VECTOR, 0, 1);
    TAKE(Bt, r[1], "Bt", q1, m, 0, 1);
    TAKE(R, r[2], "R", m, m, 0, 1);
    TAKE(u, r[3], "u", q, VECTOR, 0, 1);
    TAKE(mu, r[4], "mu", n, VECTOR, 0, 1);
    TAKE(W, r[5], "W", n, VECTOR, 0, 1);
    TAKE(s, r[6], "s", n, VECTOR, 0, 1);
    TAKE(g, r[7], "g", cr.T + (profiled ? 0 : cr.p), VECTOR, 1, 1);
    if (!disjoint(bs, &cm->bs))
        goto fail;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = crossed_gradient(&cr, profiled, D, Bt, R, u, mu, W, s, g);
    Py_END_ALLOW_THREADS
    release(bs);
    if (status == NO_MEMORY)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(crossed_predict_doc,
"crossed_predict(model, theta_old, dtheta, joint, u, s, W, D, Bt, R, dbeta, u_new, dbeta_new)\n"
"    -> None\n\n"
"The first-order prediction of the mode at theta_old + dtheta (tuples of floats) from the\n"
"crossed_pirls mode (u, s, W) at theta_old and its factor (D, Bt, R): given dbeta (u only)\n"
"u_new; joint (dbeta None) also dbeta_new.");

static PyObject *py_crossed_predict(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "crossed_predict", 13);
    int joint;
    Crossed cr;
    const CrossedModel *cm;
    if (!a || !flag_arg(a[3], "joint", &joint) ||
        !(cm = crossed_at(a[0], a[1], "theta_old", joint, &cr)))
        return NULL;
    double dth[MAX_TERMS];
    PyObject *dtheta = a[2];
    if (!PyTuple_Check(dtheta) || PyTuple_GET_SIZE(dtheta) != cr.T) {
        PyErr_Format(PyExc_TypeError, "dtheta: a tuple of %zd floats", cr.T);
        return NULL;
    }
    for (Py_ssize_t t = 0; t < cr.T; t++)
        if ((dth[t] = PyFloat_AsDouble(PyTuple_GET_ITEM(dtheta, t))) == -1.0 &&
            PyErr_Occurred()) {
            PyErr_Format(PyExc_TypeError, "dtheta: a tuple of %zd floats", cr.T);
            return NULL;
        }
    PyObject *const *r = a + 4;
    const Py_ssize_t n = cr.n, q1 = cr.q1, q2 = cr.q2, q = q1 + q2, p = cr.X ? cr.p : 0;
    const Py_ssize_t m = q2 + p;
    double *u, *s, *W, *D, *Bt, *R, *dbeta, *un, *db;
    TAKE(u, r[0], "u", q, VECTOR, 0, 1);
    TAKE(s, r[1], "s", n, VECTOR, 0, 1);
    TAKE(W, r[2], "W", n, VECTOR, 0, 1);
    TAKE(D, r[3], "D", q1, VECTOR, 0, 1);
    TAKE(Bt, r[4], "Bt", q1, m, 0, 1);
    TAKE(R, r[5], "R", m, m, 0, 1);
    TAKE(dbeta, r[6], "dbeta", cr.p, VECTOR, 0, !joint);
    TAKE(un, r[7], "u_new", q, VECTOR, 1, 1);
    TAKE(db, r[8], "dbeta_new", p, VECTOR, 1, joint && p > 0);
    if (!disjoint(bs, &cm->bs))
        goto fail;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = crossed_predict(&cr, dth, u, s, W, D, Bt, R, joint ? NULL : dbeta, un, db);
    Py_END_ALLOW_THREADS
    release(bs);
    if (status == NO_MEMORY)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(crossed_rx_doc,
"crossed_rx(model, theta, W, RX) -> status\n\n"
"lme4's R_X (p × p, upper: R_XᵀR_X = XᵀWX − XᵀWZΛG⁻¹ΛᵀZᵀWX) of a crossed_model at θ and\n"
"weights W, written to RX: the fixed effects' block of the joint factor (status 7 when\n"
"that matrix is not positive definite).");

static PyObject *py_crossed_rx(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "crossed_rx", 4);
    Crossed cr;
    const CrossedModel *cm;
    if (!a || !(cm = crossed_at(a[0], a[1], "theta", 1, &cr)))
        return NULL;
    const Py_ssize_t n = cr.n, p = cr.p, q1 = cr.q1, q2 = cr.q2, q = q1 + q2, m = q2 + p;
    double *W, *RX;
    TAKE(W, a[2], "W", n, VECTOR, 0, 1);
    TAKE(RX, a[3], "RX", p, p, 1, 1);
    if (!disjoint(bs, &cm->bs))
        goto fail;
    /* the joint factor at W (its right-hand side, at s = 0 and u = 0, is not used) */
    const Py_ssize_t size =
        muladd(q1, m, muladd(m, m, muladd(2, q + p, muladd(2, cr.G, muladd(1, q1, muladd(
            1, n, muladd(1, cr.ncells, 1)))))));
    double *buf = size < 0 ? NULL : calloc(size, sizeof(double));
    if (!buf) {
        PyErr_Format(PyExc_MemoryError, "crossed_rx: no memory for the model's joint factor "
                     "(%zd x %zd and %zd x %zd)", q1, m, m, m);
        goto fail;
    }
    double *D = buf, *Bt = D + q1, *R = Bt + q1 * m, *r = R + m * m, *zero = r + q + p;
    double *scratch = zero + q + p + n;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = crossed_factor(&cr, W, zero, zero, D, Bt, R, r, scratch);
    Py_END_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < p; j++)
        for (Py_ssize_t k = 0; k < p; k++)
            RX[j * p + k] = R[(q2 + j) * m + q2 + k];
    free(buf);
    release(bs);
    return PyLong_FromLong(ok ? OK : SCHUR_NOT_PD);
fail:
    release(bs);
    return NULL;
}

/* -- the sparse coupling block (glmm.linalg.coupling.CouplingPattern) --------------------------- */

/* The pattern's entries grouped by level of the first term: colptr (q1 + 1) and order (nnz),
 * the entries at level l being order[colptr[l]:colptr[l + 1]], each in row rows[e] of G₂₁. */
typedef struct {
    Py_ssize_t q1, q2, nnz;
    const int64_t *colptr, *order, *rows;
} Coupling;

static int coupling_arg(Buffers *bs, PyObject *colptr, PyObject *order, PyObject *rows,
                        Py_ssize_t q2, Coupling *c)
{
    if (!(c->colptr = array(bs, colptr, "colptr", ANY, VECTOR, 0, 1)))
        return 0;
    const Py_ssize_t q1 = last_rows(bs) - 1;
    if (q1 < 0) {
        PyErr_SetString(PyExc_ValueError, "colptr: expected q1 + 1 ≥ 1 offsets, got none");
        return 0;
    }
    if (!(c->order = array(bs, order, "order", ANY, VECTOR, 0, 1)))
        return 0;
    const Py_ssize_t nnz = last_rows(bs);
    c->q1 = q1;
    c->q2 = q2;
    c->nnz = nnz;
    if (!(c->rows = array(bs, rows, "rows", nnz, VECTOR, 0, 1)) ||
        !in_range(c->colptr, q1 + 1, nnz + 1, "colptr", "values", -1) ||
        !in_range(c->order, nnz, nnz, "order", "values", -1) ||
        !in_range(c->rows, nnz, q2, "rows", "values", -1))
        return 0;
    for (Py_ssize_t l = 0; l < q1; l++)
        if (c->colptr[l] > c->colptr[l + 1]) {
            PyErr_SetString(PyExc_ValueError, "colptr: not increasing");
            return 0;
        }
    if (c->colptr[0] != 0 || c->colptr[q1] != nnz) {
        PyErr_SetString(PyExc_ValueError, "colptr: must run from 0 to nnz");
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(coupling_outer_doc,
"coupling_outer(colptr, order, rows, q2, a, b, S, ld) -> None\n\n"
"S[rows[x], rows[y]] −= a[x]·b[y] for every pair of pattern entries x, y at the same level\n"
"of the first term (S row-major with leading dimension ld): the Schur complement's\n"
"G₂₁ D⁻¹ G₁₂ with a = G₂₁'s values and b = a/D at their levels, pair by pair.");

static PyObject *py_coupling_outer(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "coupling_outer", 8);
    Py_ssize_t q2, ld;
    Coupling c;
    if (!a || !size_arg(a[3], "q2", &q2) || !size_arg(a[7], "ld", &ld))
        return NULL;
    if (ld < q2) {
        PyErr_SetString(PyExc_ValueError, "ld: below q2");
        return NULL;
    }
    if (!coupling_arg(bs, a[0], a[1], a[2], q2, &c))
        goto fail;
    double *av, *bv, *S;
    TAKE(av, a[4], "a", c.nnz, VECTOR, 0, 1);
    TAKE(bv, a[5], "b", c.nnz, VECTOR, 0, 1);
    TAKE(S, a[6], "S", ANY, FLAT, 1, 1);
    const Py_ssize_t need = q2 ? muladd(q2 - 1, ld, q2) : 0;
    if (need < 0 || bs->b[bs->used - 1].len / 8 < need) {
        PyErr_SetString(PyExc_ValueError, "S: too small for q2 rows of ld");
        goto fail;
    }
    if (!disjoint(bs, NULL))
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t l = 0; l < c.q1; l++)
        for (int64_t x = c.colptr[l]; x < c.colptr[l + 1]; x++) {
            const int64_t ex = c.order[x];
            double *Sr = S + c.rows[ex] * ld;
            const double ax = av[ex];
            for (int64_t y = c.colptr[l]; y < c.colptr[l + 1]; y++) {
                const int64_t ey = c.order[y];
                Sr[c.rows[ey]] -= ax * bv[ey];
            }
        }
    Py_END_ALLOW_THREADS
    release(bs);
    Py_RETURN_NONE;
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(coupling_gather_doc,
"coupling_gather(colptr, order, rows, q2, b, M, out) -> None\n\n"
"out[x] = Σ_y b[y]·M[rows[y], rows[x]] over the pattern entries y at x's level of the first\n"
"term (M: q2 × q2, row-major): the entries of K M on K's own pattern (b = K's values), as\n"
"the selected inverse needs (G⁻¹)₁₂ = −K S⁻¹ only there.");

static PyObject *py_coupling_gather(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "coupling_gather", 7);
    Py_ssize_t q2;
    Coupling c;
    if (!a || !size_arg(a[3], "q2", &q2))
        return NULL;
    if (!coupling_arg(bs, a[0], a[1], a[2], q2, &c))
        goto fail;
    double *b, *M, *out;
    TAKE(b, a[4], "b", c.nnz, VECTOR, 0, 1);
    TAKE(M, a[5], "M", q2, q2, 0, 1);
    TAKE(out, a[6], "out", c.nnz, VECTOR, 1, 1);
    if (!disjoint(bs, NULL))
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t l = 0; l < c.q1; l++)
        for (int64_t x = c.colptr[l]; x < c.colptr[l + 1]; x++) {
            const int64_t ex = c.order[x];
            const Py_ssize_t rx = c.rows[ex];
            double v = 0.0;
            for (int64_t y = c.colptr[l]; y < c.colptr[l + 1]; y++) {
                const int64_t ey = c.order[y];
                v += b[ey] * M[c.rows[ey] * q2 + rx];
            }
            out[ex] = v;
        }
    Py_END_ALLOW_THREADS
    release(bs);
    Py_RETURN_NONE;
fail:
    release(bs);
    return NULL;
}

static PyMethodDef methods[] = {
    {"pirls", py_pirls, METH_VARARGS, pirls_doc},
    {"gradient", py_gradient, METH_VARARGS, gradient_doc},
    {"schur", py_schur, METH_VARARGS, schur_doc},
    {"predict", py_predict, METH_VARARGS, predict_doc},
    {"bfgs", py_bfgs, METH_VARARGS, bfgs_doc},
    {"crossed_model", py_crossed_model, METH_VARARGS, crossed_model_doc},
    {"crossed_pirls", py_crossed_pirls, METH_VARARGS, crossed_pirls_doc},
    {"crossed_gradient", py_crossed_gradient, METH_VARARGS, crossed_gradient_doc},
    {"crossed_predict", py_crossed_predict, METH_VARARGS, crossed_predict_doc},
    {"crossed_rx", py_crossed_rx, METH_VARARGS, crossed_rx_doc},
    {"coupling_outer", py_coupling_outer, METH_VARARGS, coupling_outer_doc},
    {"coupling_gather", py_coupling_gather, METH_VARARGS, coupling_gather_doc},
    {"minimize", py_minimize, METH_VARARGS, minimize_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_core",
    "The compiled core of glmm (glmm/compiled.py): PIRLS, the gradient, the warm start and\n"
    "BFGS for one scalar term, and for crossed scalar terms.  Internal: every entry point\n"
    "checks its arguments, raising TypeError or ValueError naming the one at fault.",
    -1,
    methods,
};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "MAX_ITER", MAX_ITER) < 0 ||
              PyModule_AddIntConstant(m, "MAX_HALVINGS", MAX_HALVINGS) < 0 ||
              PyModule_AddObject(m, "DECREMENT_TOL", PyFloat_FromDouble(DECREMENT_TOL)) < 0 ||
              PyModule_AddObject(m, "C1", PyFloat_FromDouble(C1)) < 0 ||
              PyModule_AddIntConstant(m, "MAX_BACKTRACKS", MAX_BACKTRACKS) < 0 ||
              PyModule_AddObject(m, "STALL_GMAX", PyFloat_FromDouble(STALL_GMAX)) < 0 ||
              PyModule_AddObject(m, "STALL_DECREMENT", PyFloat_FromDouble(STALL_DECREMENT)) < 0 ||
              PyModule_AddObject(m, "PREDICT_RANGE", PyFloat_FromDouble(PREDICT_RANGE)) < 0 ||
              PyModule_AddIntConstant(m, "MAX_TERMS", MAX_TERMS) < 0 ||
              PyModule_AddObject(m, "STATUS", Py_BuildValue(
                  "{sisisisisisisisi}", "OK", OK, "START_NOT_FINITE", START_NOT_FINITE,
                  "SYSTEM_NOT_FINITE", SYSTEM_NOT_FINITE, "HALVING_FAILED", HALVING_FAILED,
                  "NOT_CONVERGED", NOT_CONVERGED, "RX_NOT_PD", RX_NOT_PD, "NO_MEMORY",
                  NO_MEMORY, "SCHUR_NOT_PD", SCHUR_NOT_PD)) < 0 ||
              PyModule_AddObject(m, "BFGS_END", Py_BuildValue(
                  "{sisisisisi}", "GRADIENT", BFGS_GRADIENT, "DECREMENT", BFGS_DECREMENT,
                  "STALLED", BFGS_STALLED, "ITERATIONS", BFGS_MAX_ITER, "BAD_START",
                  BFGS_BAD_START)) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
