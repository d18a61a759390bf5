/* BFGS (glmm.optimize.bfgs.minimize_bfgs, the same rules and constants) on an objective in C
 * (the scalar term's: search.c) or in Python (the entry point bfgs). */

#include "core.h"

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
int bfgs(Objective fg, void *ctx, Py_ssize_t n, const unsigned char *unit,
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
            if (ok && (fn <= f + C1 * t * slope ||
                       (fn <= f + FLAT_F * fabs(f) && max_abs(gn, n) < gmax))) {
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

PyObject *bfgs_result(int status, const BfgsOut *out)
{
    if (status == NO_MEMORY)
        return PyErr_NoMemory();
    if (status != OK)   /* the objective's Python exception is set */
        return NULL;
    return Py_BuildValue("iidlddd", out->code, out->converged, out->f, out->nfev, out->gmax,
                         out->decrement, out->dmax);
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

PyMethodDef BFGS_METHODS[] = {
    {"bfgs", py_bfgs, METH_VARARGS, bfgs_doc},
    {NULL, NULL, 0, NULL},
};
