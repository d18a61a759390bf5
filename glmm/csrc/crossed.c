/* Two or more crossed scalar terms (glmm.objectives.crossed.CrossedTerms): PIRLS
 * (glmm.objectives.pirls.pirls) with the blocked factor of glmm.linalg.blocked.BlockedCholesky
 * for a dense coupling block, and R_X, on a model held in a capsule made once (crossed_model;
 * its types in crossed.h).  The exact gradient and the first-order prediction of the mode,
 * from the mode and its factor: crossed_gradient.c. */

#include "crossed.h"
#include "response.h"

/* The blocked factor of the PIRLS matrix at weights W (glmm.linalg.blocked.BlockedCholesky,
 * dense coupling): D = diag(G₁₁), Bt = [G₂₁; C₁ᵀ]ᵀ (q₁ × m, m = q₂ + p) and R (m × m, upper,
 * RᵀR = S̄ = [G₂₂ C₂; C₂ᵀ XᵀWX] − BtᵀD⁻¹Bt), with the right-hand side of the Newton step,
 * r = [ΛᵀZᵀs − u; Xᵀs], accumulated in the same pass.  The fixed effects' blocks are summed
 * per observation into the cells and X's distinct rows, then over those (as
 * glmm.objectives.model.TermCells): C = ΛᵀZᵀWX from Σ_{i∈c} Wᵢaᵢ per cell, XᵀWX and Xᵀs
 * from ΣWᵢ and Σsᵢ per distinct row.  `scratch` holds 2G + Σ cells.  Returns 0 if S̄ is not positive
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
void crossed_solve(const Crossed *cr, const double *D, const double *Bt, const double *R,
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

/* -- the entry points --------------------------------------------------------------------- */

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
    /* ix: the caller's index arrays, until copied */
    Buffers *bs = &cm->held.bs, callers, *ix = &callers;
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
    if (total < 0 || !(cm->held.index = PyMem_Malloc(sizeof(int64_t) * (total + 1)))) {
        PyErr_NoMemory();
        goto fail;
    }
    for (int j = 0, at = 0; j < k; at += len[j++]) {   /* copy, then check the copies */
        int64_t *v = cm->held.index + at;
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
    if (!response_arg(bs, kind, binary, a[2], a[3], a[4], n, &cr->resp))
        goto fail;
    cr->n = n;
    cr->T = T;
    cr->p = p;
    cr->q1 = nl[0];
    cr->q2 = q - nl[0];
    PyObject *capsule = PyCapsule_New(cm, CROSSED_MODEL, held_free);
    if (capsule)
        return capsule;
fail:
    release(ix);
    release(bs);
    PyMem_Free(cm->held.index);
    PyMem_Free(cm);
    return NULL;
}

/* The model of a crossed_model capsule at θ (a T-tuple of floats, the argument `name`), with
 * the fixed effects in the system if `joint`, into cr: a copy, so that a call never changes
 * the shared model.  The capsule's model (for its buffers), or NULL with an exception. */
const CrossedModel *crossed_at(PyObject *capsule, PyObject *theta, const char *name,
                               int joint, Crossed *cr)
{
    const CrossedModel *cm = model_of(capsule, CROSSED_MODEL, "crossed_model");
    if (!cm)
        return NULL;
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
    if (!disjoint(bs, &cm->held.bs))
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
    if (!disjoint(bs, &cm->held.bs))
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

PyMethodDef CROSSED_METHODS[] = {
    {"crossed_model", py_crossed_model, METH_VARARGS, crossed_model_doc},
    {"crossed_pirls", py_crossed_pirls, METH_VARARGS, crossed_pirls_doc},
    {"crossed_rx", py_crossed_rx, METH_VARARGS, crossed_rx_doc},
    {NULL, NULL, 0, NULL},
};
