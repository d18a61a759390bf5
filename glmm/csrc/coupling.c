/* The sparse coupling block's pair sums (glmm.linalg.coupling.CouplingPattern, for
 * glmm.linalg.blocked.BlockedCholesky): G₂₁'s entries at each level of the first term, pair
 * by pair. */

#include "core.h"

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

PyMethodDef COUPLING_METHODS[] = {
    {"coupling_outer", py_coupling_outer, METH_VARARGS, coupling_outer_doc},
    {"coupling_gather", py_coupling_gather, METH_VARARGS, coupling_gather_doc},
    {NULL, NULL, 0, NULL},
};
