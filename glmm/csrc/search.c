/* The BFGS search over one scalar term's objective, evaluations and all, in the core
 * (glmm.objectives.scalar_term.ScalarTermObjective.compiled_bfgs): F₀, F₁ or the adaptive
 * quadrature objective (nAGQ > 1, agq.c) and its exact gradient from scalar.c's PIRLS,
 * gradient and warm start, searched by bfgs.c. */

#include "core.h"

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
    const double *z, *wk;       /* nAGQ > 1: the rule's K nodes and weights (else K = 0) */
    Py_ssize_t K;
} ScalarObjective;

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
    double F;
    if (so->K) {   /* adaptive quadrature at the u-only mode */
        if (agq(&pb, so->z, so->wk, so->K, tr->w.eta, tr->u, tr->D, tr->w.dev, tr->w.mu,
                tr->w.W, tr->w.s, &F, so->gfull) != OK) {
            *error = NO_MEMORY;
            return INFINITY;
        }
    } else {
        /* compensated sums: near the optimum BFGS compares values of F that differ by
         * ~1e-10 relative, and a plain running sum of n = 1e5 deviances is noisier */
        Sum ld = {0.0, 0.0}, uu = {0.0, 0.0}, ds = {0.0, 0.0};
        for (Py_ssize_t j = 0; j < nlev; j++) {
            add(&ld, log(tr->D[j]));
            add(&uu, tr->u[j] * tr->u[j]);
        }
        for (Py_ssize_t i = 0; i < n; i++)
            add(&ds, tr->w.dev[i]);
        F = (total(&ld) + total(&uu)) + (total(&ds) + so->aic_offset);
        if (gradient(&pb, tr->D, tr->u, tr->w.mu, tr->w.W, tr->w.s, joint ? tr->C : NULL,
                     tr->GiC, joint ? tr->RX : NULL, so->gfull) != OK) {
            *error = NO_MEMORY;
            return INFINITY;
        }
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

/* The tuples of arrays scalar_minimize takes as modes, and their arrays' names. */
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

PyDoc_STRVAR(scalar_minimize_doc,
"scalar_minimize(model, beta_start, R, beta0, aic_offset, last, set0, set1, xv, gv, xl, f0,\n"
"                gtol, dtol, xtol, max_iter, z, wk)\n"
"    -> ((code, converged, f, nfev, gmax, decrement, dmax), last_set, iterations)\n\n"
"BFGS (glmm.optimize.bfgs) on a scalar_model's objective: F₁ in (θ, ζ), β = beta0 + R⁻¹ζ\n"
"(R given), or F₀ in θ (R None: joint PIRLS, cold-started at beta_start).  `last` is the\n"
"mode of the last evaluation, a tuple (theta, beta, u, D, eta, mu, dev, W, s, C, GiC, RX),\n"
"or None (PIRLS then starts at u = 0); set0 and set1 are two such tuples the trials are\n"
"written to, and last_set tells which one holds the last mode PIRLS reached (-1: none), xl\n"
"its x and iterations its PIRLS iterations.  xv holds x0 and receives the final point, gv\n"
"the gradient there (with ∇F(x0) in it when f0 is not None).  With the quadrature rule's\n"
"nodes z and weights wk (nAGQ > 1, R given; else both None) the objective is lme4's adaptive\n"
"Gauss-Hermite one.");

static PyObject *py_scalar_minimize(PyObject *self, PyObject *args)
{
    static const char *const TOL[3] = {"gtol", "dtol", "xtol"};
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    ScalarObjective so = {.last_set = -1};
    double *eta0 = NULL, *gfull = NULL;
    unsigned char *unit = NULL;
    PyObject *const *a = unpack(args, "scalar_minimize", 18);
    const ScalarModel *sm;
    if (!a || !(sm = scalar_model_of(a[0])))
        return NULL;
    so.pb = sm->pb;
    const Py_ssize_t n = so.pb.n, p = so.pb.p;
    double *beta_start, *R, *beta0;
    TAKE(beta_start, a[1], "beta_start", p, VECTOR, 0, 0);
    TAKE(R, a[2], "R", p, p, 0, 0);
    TAKE(beta0, a[3], "beta0", p, VECTOR, 0, 0);
    so.joint = R == NULL;
    if (so.joint ? !beta_start : !beta0) {
        PyErr_SetString(PyExc_TypeError, so.joint ? "beta_start is required without R"
                                                  : "beta0 is required with R");
        goto fail;
    }
    so.o = sm->o;
    so.beta_start = beta_start;
    so.R = R;
    so.beta0 = beta0;
    if (!float_arg(a[4], "aic_offset", 0, &so.aic_offset))
        goto fail;
    Mode modes[3];
    if ((a[5] != Py_None && !mode_arg(bs, a[5], 0, &so.pb, so.joint, 0, &modes[0])) ||
        !mode_arg(bs, a[6], 1, &so.pb, so.joint, 1, &modes[1]) ||
        !mode_arg(bs, a[7], 2, &so.pb, so.joint, 1, &modes[2]))
        goto fail;
    so.last = a[5] == Py_None ? NULL : &modes[0];
    so.set[0] = &modes[1];
    so.set[1] = &modes[2];
    const Py_ssize_t nx = so.joint ? 1 : 1 + p;
    BfgsOut out = {.f = NAN};
    TAKE(out.x, a[8], "xv", nx, VECTOR, 1, 1);
    TAKE(out.g, a[9], "gv", nx, VECTOR, 1, 1);
    TAKE(so.xl, a[10], "xl", nx, VECTOR, 1, 1);
    const int have_start = a[11] != Py_None;
    if (have_start && !float_arg(a[11], "f0", 0, &out.f))
        goto fail;
    double tol[3];
    for (int k = 0; k < 3; k++)
        if (!float_arg(a[12 + k], TOL[k], 1, &tol[k]))
            goto fail;
    Py_ssize_t max_iter;
    if (!size_arg(a[15], "max_iter", &max_iter))
        goto fail;
    double *z, *wk;
    TAKE(z, a[16], "z", ANY, VECTOR, 0, 0);
    so.K = z ? last_rows(bs) : 0;
    TAKE(wk, a[17], "wk", so.K, VECTOR, 0, so.K > 0);
    if (so.K && so.joint) {
        PyErr_SetString(PyExc_TypeError, "the quadrature rule (z, wk) requires R (nAGQ > 1)");
        goto fail;
    }
    so.z = z;
    so.wk = wk;
    if (!disjoint(bs, &sm->held.bs))
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

PyMethodDef SEARCH_METHODS[] = {
    {"scalar_minimize", py_scalar_minimize, METH_VARARGS, scalar_minimize_doc},
    {NULL, NULL, 0, NULL},
};
