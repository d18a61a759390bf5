/* One scalar random-effects term (glmm.objectives.scalar_term.ScalarTermObjective): PIRLS,
 * the exact gradient, the first-order prediction of the mode and R_X, on a model held in a
 * capsule made once (scalar_model).  With Λ = θI, G = ΛᵀZᵀWZΛ + I = diag(D),
 * Dⱼ = 1 + θ²Σ_{i∈j} Wᵢxᵢ², and every step is a pass over the observations with per-level
 * sums (the BFGS search over the objective built from these: search.c). */

#include "response.h"

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
int pirls(const Problem *pb, const double *eta0, double *u, double *beta, Working *out,
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
int gradient(const Problem *pb, const double *D, const double *u, const double *mu,
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
int predict(const Problem *pb, double dth, const double *u, const double *s,
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

/* -- the entry points --------------------------------------------------------------------- */

static const char *const SCALAR_MODEL = "glmm._core.ScalarModel";

PyDoc_STRVAR(scalar_model_doc,
"scalar_model(kind, binary, y, w, ylogy, f, x, nlevels, p, X, o) -> capsule\n\n"
"One scalar term for scalar_pirls, scalar_gradient, scalar_predict, scalar_rx and\n"
"scalar_minimize, checked once: f the level of each observation (in [0, nlevels)), x the\n"
"term's column or None for an intercept, X (n × p) and the offset o.  f is copied: later\n"
"changes to it do not reach the model.");

static PyObject *py_scalar_model(PyObject *self, PyObject *args)
{
    PyObject *const *a = unpack(args, "scalar_model", 11);
    int kind, binary;
    Py_ssize_t nlev, p;
    if (!a || !kind_arg(a[0], &kind) || !flag_arg(a[1], "binary", &binary) ||
        !size_arg(a[7], "nlevels", &nlev) || !size_arg(a[8], "p", &p))
        return NULL;
    ScalarModel *sm = PyMem_Calloc(1, sizeof(ScalarModel));
    if (!sm)
        return PyErr_NoMemory();
    Buffers *bs = &sm->held.bs, callers, *ix = &callers;   /* the caller's f, until copied */
    ix->used = 0;
    const int64_t *f = array(ix, a[5], "f", ANY, VECTOR, 0, 1);
    if (!f)
        goto fail;
    const Py_ssize_t n = last_rows(ix);
    if (!(sm->held.index = PyMem_Malloc(sizeof(int64_t) * (n + 1)))) {
        PyErr_NoMemory();
        goto fail;
    }
    memcpy(sm->held.index, f, sizeof(int64_t) * n);   /* copy, then check the copy */
    release(ix);
    if (!in_range(sm->held.index, n, nlev, "f", "level codes", -1))
        goto fail;
    Resp resp;
    double *x, *X, *o;
    if (!response_arg(bs, kind, binary, a[2], a[3], a[4], n, &resp) ||
        !optional(bs, a[6], "x", n, VECTOR, 0, 0, &x) ||
        !optional(bs, a[9], "X", n, p, 0, 1, &X) || !optional(bs, a[10], "o", n, VECTOR, 0, 1, &o))
        goto fail;
    sm->pb = (Problem){.n = n, .nlev = nlev, .p = p, .f = sm->held.index, .x = x, .th = 0.0, .X = X,
                       .resp = resp};
    sm->o = o;
    PyObject *capsule = PyCapsule_New(sm, SCALAR_MODEL, held_free);
    if (capsule)
        return capsule;
fail:
    release(ix);
    release(bs);
    PyMem_Free(sm->held.index);
    PyMem_Free(sm);
    return NULL;
}

const ScalarModel *scalar_model_of(PyObject *capsule)
{
    return model_of(capsule, SCALAR_MODEL, "scalar_model");
}

/* The problem of a scalar_model capsule at θ (the argument `name`, a float), with X unless
 * `with_X` is false (u-only PIRLS: X NULL and p = 0), into pb: a copy, so that a call never
 * changes the shared model.  The capsule's model (for its buffers), or NULL with an
 * exception. */
static const ScalarModel *scalar_at(PyObject *capsule, PyObject *theta, const char *name,
                                    int with_X, Problem *pb)
{
    const ScalarModel *sm = scalar_model_of(capsule);
    if (!sm)
        return NULL;
    *pb = sm->pb;
    if (!float_arg(theta, name, 0, &pb->th))
        return NULL;
    if (!with_X) {
        pb->X = NULL;
        pb->p = 0;
    }
    return sm;
}

PyDoc_STRVAR(scalar_pirls_doc,
"scalar_pirls(model, theta, joint, eta0, u, beta, eta, mu, dev, W, s, D, C, GiC, RX)\n"
"    -> (status, iterations, pdev)\n\n"
"PIRLS for a scalar_model at θ from (u, beta) (both updated in place), u only, or joint in\n"
"(u, beta) with C, GiC (nlevels × p) and RX (p × p) written at the mode (beta, C, GiC and\n"
"RX are None unless joint).  eta0 = o + X beta at the start.  status 0 on success.");

static PyObject *py_scalar_pirls(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "scalar_pirls", 15);
    int joint;
    Problem pb;
    const ScalarModel *sm;
    if (!a || !flag_arg(a[2], "joint", &joint) ||
        !(sm = scalar_at(a[0], a[1], "theta", joint, &pb)))
        return NULL;
    PyObject *const *r = a + 3;
    const Py_ssize_t n = pb.n, nlev = pb.nlev, p = pb.p;
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
    if (!disjoint(bs, &sm->held.bs))
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

PyDoc_STRVAR(scalar_gradient_doc,
"scalar_gradient(model, theta, D, u, mu, W, s, C, GiC, RX, g) -> None\n\n"
"The exact gradient at a scalar_pirls mode, written to g: (θ, β) when RX is None (Laplace),\n"
"θ alone (nAGQ = 0, the joint mode's C, GiC and RX given).");

static PyObject *py_scalar_gradient(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "scalar_gradient", 11);
    Problem pb;
    const ScalarModel *sm;
    if (!a || !(sm = scalar_at(a[0], a[1], "theta", 1, &pb)))
        return NULL;
    PyObject *const *r = a + 2;
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
    if (!disjoint(bs, &sm->held.bs))
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

PyDoc_STRVAR(scalar_rx_doc,
"scalar_rx(model, theta, W, D, RX) -> status\n\n"
"lme4's R_X (p × p, upper: R_XᵀR_X = XᵀWX − CᵀD⁻¹C, C = ΛᵀZᵀWX) of a scalar_model at θ,\n"
"weights W and D = diag(G), written to RX; status 5 when XᵀWX − CᵀD⁻¹C is not positive\n"
"definite.");

static PyObject *py_scalar_rx(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "scalar_rx", 5);
    Problem pb;
    const ScalarModel *sm;
    if (!a || !(sm = scalar_at(a[0], a[1], "theta", 1, &pb)))
        return NULL;
    const Py_ssize_t n = pb.n, nlev = pb.nlev, p = pb.p;
    double *W, *D, *RX;
    TAKE(W, a[2], "W", n, VECTOR, 0, 1);
    TAKE(D, a[3], "D", nlev, VECTOR, 0, 1);
    TAKE(RX, a[4], "RX", p, p, 1, 1);
    if (!disjoint(bs, &sm->held.bs))
        goto fail;
    const Py_ssize_t size = muladd(2, muladd(nlev, p, 0), 1);   /* C and D⁻¹C */
    double *buf = size < 0 ? NULL : malloc(sizeof(double) * size);
    if (!buf) {
        PyErr_NoMemory();
        goto fail;
    }
    const int ok = schur(&pb, W, D, buf, buf + nlev * p, RX);
    free(buf);
    release(bs);
    return PyLong_FromLong(ok ? OK : RX_NOT_PD);
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(scalar_predict_doc,
"scalar_predict(model, theta_old, dtheta, u, s, W, D, dbeta, C, GiC, RX, u_new, dbeta_new)\n"
"    -> None\n\n"
"The first-order prediction of the mode at theta_old + dtheta from the scalar_pirls mode\n"
"(u, s, W, D) at theta_old: given dbeta (nAGQ ≥ 1) u_new only; dbeta None (joint, with C,\n"
"GiC, RX) also dbeta_new.");

static PyObject *py_scalar_predict(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "scalar_predict", 13);
    Problem pb;
    const ScalarModel *sm;
    if (!a || !(sm = scalar_at(a[0], a[1], "theta_old", 1, &pb)))
        return NULL;
    PyObject *const *r = a + 2;
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
    if (!disjoint(bs, &sm->held.bs))
        goto fail;
    predict(&pb, dth, u, s, W, D, dbeta, C, GiC, RX, un, db);
    release(bs);
    Py_RETURN_NONE;
fail:
    release(bs);
    return NULL;
}

PyMethodDef SCALAR_METHODS[] = {
    {"scalar_model", py_scalar_model, METH_VARARGS, scalar_model_doc},
    {"scalar_pirls", py_scalar_pirls, METH_VARARGS, scalar_pirls_doc},
    {"scalar_gradient", py_scalar_gradient, METH_VARARGS, scalar_gradient_doc},
    {"scalar_predict", py_scalar_predict, METH_VARARGS, scalar_predict_doc},
    {"scalar_rx", py_scalar_rx, METH_VARARGS, scalar_rx_doc},
    {NULL, NULL, 0, NULL},
};
