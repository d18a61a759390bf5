/* The exact gradient (glmm.objectives.gradient) and the first-order prediction of the mode
 * (glmm.objectives.pirls.predict, PIRLS's warm start) for two or more crossed scalar terms
 * (glmm.objectives.crossed.CrossedTerms), from the mode and the blocked factor that crossed.c's
 * PIRLS leaves, on its crossed_model capsule (crossed.h). */

#include "crossed.h"

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

/* The first-order prediction of the mode at θ_old + Δθ (glmm.objectives.pirls.predict) from
 * the mode (u, s, W) at θ_old, whose factor is (D, Bt, R): with δη = ZΛ_Δũ (+ XΔβ unless joint),
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

/* -- the entry points --------------------------------------------------------------------- */

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
    if (!disjoint(bs, &cm->held.bs))
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
    if (!disjoint(bs, &cm->held.bs))
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

PyMethodDef CROSSED_GRADIENT_METHODS[] = {
    {"crossed_gradient", py_crossed_gradient, METH_VARARGS, crossed_gradient_doc},
    {"crossed_predict", py_crossed_predict, METH_VARARGS, crossed_predict_doc},
    {NULL, NULL, 0, NULL},
};
