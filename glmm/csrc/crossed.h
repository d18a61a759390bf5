/* The crossed scalar terms' model as crossed.c (the model, PIRLS and its blocked factor, R_X)
 * shares it with crossed_gradient.c (the exact gradient and the warm start): the problem, the
 * capsule holding it and the capsule's name, the model at θ and the factor's solve.  Not
 * exported from the extension's shared object (HIDDEN, core.h). */

#ifndef GLMM_CROSSED_H
#define GLMM_CROSSED_H

#include "core.h"

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

/* A crossed-terms model as the compiled core holds it (a capsule made once per model by
 * crossed_model): the Crossed problem without θ; its index arrays (the terms' level codes,
 * X's row of each observation, the cells) are its Held's index block, copied and checked
 * there. */
typedef struct {
    Held held;
    Crossed cr;
} CrossedModel;

static const char *const CROSSED_MODEL = "glmm._core.CrossedModel";

/* The Newton step δ = A⁻¹r from the factor (D, Bt, R) of crossed_pirls (crossed.c). */
HIDDEN void crossed_solve(const Crossed *cr, const double *D, const double *Bt, const double *R,
                          const double *r, double *delta);

/* The model of a crossed_model capsule at θ, with the fixed effects in the system if `joint`,
 * into cr (crossed.c). */
HIDDEN const CrossedModel *crossed_at(PyObject *capsule, PyObject *theta, const char *name,
                                      int joint, Crossed *cr);

#endif
