/* The checks lme4 runs on the fixed-effects matrix X (glmm/design/fixed.py), in one call:
 * whether its rank test (LINPACK's pivoted QR) clearly keeps every column in place, and the
 * standard deviations of the continuous columns that its scale check compares.  A small
 * model's X has a few columns, where numpy's per-column calls cost far more than the sums. */

#include "core.h"

PyDoc_STRVAR(fixed_checks_doc,
"fixed_checks(n, p, Xt, G, tol, sd) -> bool\n\n"
"Xt: X transposed (float64, p × n, X's columns as rows), G = XᵀX (float64, p × p), tol a\n"
"float.  Returns whether G's upper Cholesky factor R has R_jj / √G_jj ≥ tol for every j\n"
"(False for n < p, where G is not numerically positive definite, or where a G_jj is not\n"
"positive and finite: a column's norm² that overflows or underflows is left to the\n"
"pivoted QR).  sd\n"
"(float64, p, written) receives column j's standard deviation (two passes, divisor n − 1)\n"
"where one of its entries is neither 0 nor 1, else NaN (and NaN for every column if n < 2).");

static PyObject *py_fixed_checks(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "fixed_checks", 6);
    Py_ssize_t n, p;
    double tol;
    if (!a || !size_arg(a[0], "n", &n) || !size_arg(a[1], "p", &p) ||
        !float_arg(a[4], "tol", 1, &tol))
        return NULL;
    const double *Xt = array(bs, a[2], "Xt", p, n, 0, 0);
    const double *G = Xt ? array(bs, a[3], "G", p, p, 0, 0) : NULL;
    double *sd = G ? array(bs, a[5], "sd", p, VECTOR, 1, 0) : NULL;
    if (!sd || !disjoint(bs, NULL)) {
        release(bs);
        return NULL;
    }
    double *R = malloc(sizeof(double) * (size_t)(p * p + 1));
    if (!R) {
        release(bs);
        return PyErr_NoMemory();
    }
    int clear = n >= p;   /* (fewer rows than columns: rank < p) */
    Py_BEGIN_ALLOW_THREADS
    memcpy(R, G, sizeof(double) * (size_t)(p * p));
    for (Py_ssize_t j = 0; clear && j < p; j++)   /* (a normal, finite ‖xⱼ‖²) */
        clear = G[j * p + j] >= DBL_MIN && G[j * p + j] <= DBL_MAX;
    clear = clear && cholesky_upper(R, p);
    for (Py_ssize_t j = 0; clear && j < p; j++)   /* the ratio: scale-free, NaN fails */
        clear = R[j * p + j] >= tol * sqrt(G[j * p + j]);
    for (Py_ssize_t j = 0; j < p; j++) {
        const double *x = Xt + j * n;
        Py_ssize_t i = 0;
        while (i < n && (x[i] == 0.0 || x[i] == 1.0))
            i++;
        if (i == n || n < 2) {   /* every entry 0 or 1: not a continuous column */
            sd[j] = NAN;
            continue;
        }
        double s = 0.0, ss = 0.0;
        for (i = 0; i < n; i++)
            s += x[i];
        const double mean = s / (double)n;
        for (i = 0; i < n; i++)
            ss += (x[i] - mean) * (x[i] - mean);
        sd[j] = sqrt(ss / (double)(n - 1));
    }
    Py_END_ALLOW_THREADS
    free(R);
    release(bs);
    return PyBool_FromLong(clear);
}

PyMethodDef FIXED_METHODS[] = {
    {"fixed_checks", py_fixed_checks, METH_VARARGS, fixed_checks_doc},
    {NULL, NULL, 0, NULL},
};
