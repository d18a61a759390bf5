/* The compiled core of glmm (glmm/compiled.py), shared by its sources: the types, the status
 * codes and the constants, and the functions one source gives the others.
 *
 * The core computes, for the canonical pairs binomial–logit and Poisson–log, PIRLS, the exact
 * gradient, the first-order prediction of the mode (PIRLS's warm start) and R_X: for one
 * scalar random-effects term (scalar.c; glmm/objectives/scalar_term.py), with the whole BFGS
 * search over F₀, F₁ or the adaptive quadrature objective (agq.c; glmm/objectives/agq.py)
 * built from them (search.c, bfgs.c; glmm/optimize/bfgs.py); for one vector-valued term,
 * the same search with per-level blocks (block.c; glmm/objectives/block_term.py); for two
 * or more crossed scalar terms with a dense coupling block (crossed.c, crossed_gradient.c,
 * sharing crossed.h; glmm/objectives/crossed.py); and the sparse coupling block's pair sums
 * (coupling.c; glmm/linalg/blocked.py); and an LMM's profiled criterion, its exact gradient
 * and the BFGS search over θ, from the model's θ-free cross-products (lmm.c, with S̄'s
 * sparsity from supernodal.c; glmm/objectives/lmm_crossprod.py); and lme4's checks of the
 * fixed-effects matrix (fixed.c; glmm/design/fixed.py).  The formulas, the convergence rule
 * and the step-halving are those of glmm/objectives/pirls.py (pirls.c), the search's rules those of
 * glmm/optimize/bfgs.py; the response is glmm/families/response.py's Response.update for the
 * two pairs (response.h), its clamps applied per observation.  module.c registers the entry
 * points and exports the constants below, and the tests hold them equal to glmm's.
 *
 * Arrays arrive through the buffer protocol, and every argument of every entry point is
 * checked before anything is computed (args.c): a wrong one raises TypeError or ValueError
 * naming it.
 *
 * Notation: n observations, ℓ levels, p fixed effects; f the level of each observation,
 * x the term's column (NULL for (1 | g): x = 1), θ its scale, so row i of ZΛ is θxᵢ at
 * column fᵢ.
 */
#ifndef GLMM_CORE_H
#define GLMM_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What one source gives the others: not exported from the extension's shared object. */
#if defined(__GNUC__)
#define HIDDEN __attribute__((visibility("hidden")))
#else
#define HIDDEN
#endif

/* -- constants ---------------------------------------------------------------------------- */

/* glmm.objectives.pirls's constants: at most 100 Newton steps and 20 halvings each, and
 * convergence when the Newton decrement, ≈ the reduction of P still to come, is below
 * 1e-20·max(1, P): full convergence in double precision. */
#define EPS DBL_EPSILON
#define MAX_ITER 100
#define MAX_HALVINGS 20
#define DECREMENT_TOL 1e-20

/* glmm.objectives.base's PREDICT_RANGE: the warm start predicts the mode when θ moved by at
 * most this fraction of its size */
#define PREDICT_RANGE 0.5

/* the most crossed scalar terms a crossed_model takes */
#define MAX_TERMS 8

/* glmm.optimize.bfgs's constants.  The stopping tolerances and the iteration limit are
 * arguments. */
#define C1 1e-4
#define MAX_BACKTRACKS 30
#define STALL_GMAX 1e-3
#define STALL_DECREMENT 1e-10
/* a trial point within FLAT_F·|F| of F (F's last bits) whose gradient is smaller counts as a
 * decrease (glmm.optimize.bfgs.FLAT_F) */
#define FLAT_F 1e-15

/* The response kinds. */
enum { BINOMIAL_LOGIT = 0, POISSON_LOG = 1 };

/* Status codes (exported as STATUS), turned into PirlsError messages by the caller
 * (glmm.objectives.pirls.CORE_ERRORS); NO_MEMORY is raised as MemoryError. */
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

/* How BFGS ended (exported as BFGS_END; glmm.optimize.bfgs formats the message from it). */
enum { BFGS_GRADIENT = 0, BFGS_DECREMENT = 1, BFGS_STALLED = 2, BFGS_MAX_ITER = 3,
       BFGS_BAD_START = 4 };

/* An objective's error that must stop the search: a Python exception is set. */
#define PY_ERROR (-1)

/* -- sizes -------------------------------------------------------------------------------- */

/* The most 8-byte items an array may have (its size in bytes fits a Py_ssize_t): every size
 * the core computes from its arguments is checked against it (muladd), so none overflows. */
#define MAX_ITEMS (PY_SSIZE_T_MAX / 8)

/* a·b + c for sizes in [0, MAX_ITEMS], or -1 when an operand is -1 or the result exceeds
 * MAX_ITEMS. */
static inline Py_ssize_t muladd(Py_ssize_t a, Py_ssize_t b, Py_ssize_t c)
{
    if (a < 0 || b < 0 || c < 0 || c > MAX_ITEMS || (b > 0 && a > (MAX_ITEMS - c) / b))
        return -1;
    return a * b + c;
}

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

/* -- the response (response.h, response.c) ------------------------------------------------ */

typedef struct {
    int kind;
    int binary;            /* binomial with y ∈ {0, 1} */
    const double *y, *w;
    const double *ylogy;   /* Poisson: y log y − y (NULL: use the clamped form) */
    Py_ssize_t n;
} Resp;

/* The response at one η: the PIRLS iterate's arrays. */
typedef struct {
    double *eta, *mu, *dev, *W, *s;
} Working;

/* -- PIRLS's shared parts (pirls.c) ------------------------------------------------------- */

/* PIRLS's scratch: `k` arrays of n (the trial point's response and, for several terms, δη)
 * and one block of `small` doubles (-1: too many, as out of memory), one block per array of
 * n.  scratch_alloc returns 0 (all freed) if out of memory. */
#define MAX_ROWS 6
typedef struct {
    double *row[MAX_ROWS], *small;
} Scratch;

HIDDEN int scratch_alloc(Scratch *sc, int k, Py_ssize_t n, Py_ssize_t small);
HIDDEN void scratch_free(Scratch *sc);

/* A trial point of PIRLS's step-halving: the response at η + t·δη into `out`, returning
 * Σdev there (each loop's own pass, with whatever else it sums on the way). */
typedef double (*TrialPass)(void *ctx, double t, Working *out);

HIDDEN int halve(TrialPass pass, void *ctx, double *P, double *u, const double *du,
                 Py_ssize_t q, double *beta, const double *db, Py_ssize_t p, double *un,
                 Working *cur, Working *trial);
HIDDEN void keep(Working *out, const Working *cur, Py_ssize_t n);

/* -- dense Cholesky (cholesky.c) ---------------------------------------------------------- */

HIDDEN int cholesky_upper(double *S, Py_ssize_t p);
HIDDEN void cholesky_solve_ld(const double *R, Py_ssize_t p, Py_ssize_t ld, double *b);
HIDDEN void cholesky_solve(const double *R, Py_ssize_t p, double *b);

/* -- the sparsity of an LMM's S̄ (supernodal.c) ------------------------------------------- */

/* A graph of n vertices: bit j of row i (words 64-bit words a row) is the edge i–j. */
typedef struct {
    Py_ssize_t n, words;
    uint64_t *bits;
} Graph;

/* The supernodes of a Cholesky factor: supernode s holds columns start[s] … start[s+1] − 1,
 * and its structure below them is rows[rptr[s]:rptr[s+1]] (increasing); maxw and maxr bound
 * the widths and the structures, flops estimates the factor's cost. */
typedef struct {
    Py_ssize_t nsn, maxw, maxr;
    int64_t *start, *rptr, *rows;
    double flops;
} Supernodes;

HIDDEN int graph_alloc(Graph *g, Py_ssize_t n);
HIDDEN void graph_free(Graph *g);
HIDDEN void graph_of(Graph *g, Py_ssize_t nlev, const int64_t *ptr, const int64_t *rows,
                     const double *M22, Py_ssize_t ld);
HIDDEN int min_degree(Graph *g, int64_t *perm);
HIDDEN int etree_postorder(Graph *g, int64_t *order);
HIDDEN int supernodes_of(Graph *g, Supernodes *sn);
HIDDEN void supernodes_free(Supernodes *sn);

/* -- BFGS (bfgs.c) ------------------------------------------------------------------------ */

/* F and ∇F at x: returns F, or +∞ where F cannot be evaluated (*g then unset).  An error
 * that must stop the search sets *error: PY_ERROR (a Python exception other than the
 * objective's failures is set) or NO_MEMORY. */
typedef double (*Objective)(void *ctx, const double *x, double *g, int *error);

typedef struct {
    double *x, f, *g;   /* the final point, F and ∇F there (length n, owned by the caller) */
    long nfev;
    int code, converged;
    double gmax, decrement, dmax;
} BfgsOut;

HIDDEN int bfgs(Objective fg, void *ctx, Py_ssize_t n, const unsigned char *unit,
                int have_start, double gtol, double dtol, double xtol, long max_iter,
                BfgsOut *out);
HIDDEN PyObject *bfgs_result(int status, const BfgsOut *out);

/* -- the arguments of the entry points (args.c) ------------------------------------------- */

#define NBUF 64

/* The buffers a call holds, each with its argument's name and whether the call writes it. */
typedef struct {
    Py_buffer b[NBUF];
    const char *name[NBUF];
    unsigned char written[NBUF];
    int used;
} Buffers;

/* array()'s cols: a 1-D array; an array of any shape (rows items in all).  Else the number
 * of columns of a 2-D array. */
enum { VECTOR = -1, FLAT = -2 };
/* array()'s rows: any number */
#define ANY PY_SSIZE_T_MIN

HIDDEN PyObject *const *unpack(PyObject *args, const char *fname, Py_ssize_t argc);
HIDDEN int size_arg(PyObject *obj, const char *name, Py_ssize_t *v);
HIDDEN int float_arg(PyObject *obj, const char *name, int number, double *v);
HIDDEN int flag_arg(PyObject *obj, const char *name, int *v);
HIDDEN void release(Buffers *bs);
HIDDEN void *array(Buffers *bs, PyObject *obj, const char *name, Py_ssize_t rows,
                   Py_ssize_t cols, int written, int integer);
HIDDEN int optional(Buffers *bs, PyObject *obj, const char *name, Py_ssize_t rows,
                    Py_ssize_t cols, int written, int required, double **dst);
HIDDEN Py_ssize_t last_rows(const Buffers *bs);
HIDDEN int disjoint(const Buffers *bs, const Buffers *held);
HIDDEN int in_range(const int64_t *v, Py_ssize_t len, Py_ssize_t bound, const char *name,
                    const char *what, int term);
HIDDEN const unsigned char *bytes_arg(Buffers *bs, PyObject *obj, const char *name,
                                      Py_ssize_t len);

/* What a model capsule (scalar_model, block_model, crossed_model, lmm_model, lmm_classes)
 * holds besides its problem, first in its struct: the buffers of its float64 arrays, which
 * stay exported (so their arrays alive and unresizable) for the capsule's life, and its index
 * arrays, copied into one block. */
typedef struct {
    Buffers bs;
    int64_t *index;
} Held;

/* A model capsule's destructor (of any capsule whose struct starts with its Held). */
HIDDEN void held_free(PyObject *capsule);
/* The struct of a capsule named `name`, which `maker` makes, or NULL with ValueError. */
HIDDEN void *model_of(PyObject *capsule, const char *name, const char *maker);

/* optional() into `var` within an entry point whose buffers are `bs`, going to `fail` on
 * error. */
#define TAKE(var, obj, name, rows, cols, written, required)                                  \
    do {                                                                                     \
        if (!optional(bs, obj, name, rows, cols, written, required, &(var)))                 \
            goto fail;                                                                       \
    } while (0)

/* The response's arguments (response.c): the kind, then (after the caller has taken its
 * other arguments) y, w and ylogy of n observations. */
HIDDEN int kind_arg(PyObject *obj, int *kind);
HIDDEN int response_arg(Buffers *bs, int kind, int binary, PyObject *y, PyObject *w,
                        PyObject *ylogy, Py_ssize_t n, Resp *r);

/* -- one scalar term (scalar.c; the BFGS search over its objective: search.c) ------------- */

/* The problem: the term, X (joint only) and the response. */
typedef struct {
    Py_ssize_t n, nlev, p;
    const int64_t *f;
    const double *x;
    double th;
    const double *X;       /* n × p, row-major */
    Resp resp;
} Problem;

/* One scalar term's model as the compiled core holds it (a capsule made once per model by
 * scalar_model): the Problem without θ, with X (n × p) always, and the offset o; its level
 * codes are its Held's index block, copied and checked there. */
typedef struct {
    Held held;
    Problem pb;
    const double *o;
} ScalarModel;

/* The model of a scalar_model capsule, or NULL with ValueError. */
HIDDEN const ScalarModel *scalar_model_of(PyObject *capsule);

HIDDEN int pirls(const Problem *pb, const double *eta0, double *u, double *beta, Working *out,
                 double *D, double *C, double *GiC, double *RX, long *iterations,
                 double *pdev);
HIDDEN int gradient(const Problem *pb, const double *D, const double *u, const double *mu,
                    const double *W, const double *s, const double *C, const double *GiC,
                    const double *RX, double *g);
/* lme4's adaptive Gauss–Hermite objective at the u-only mode and its gradient (agq.c) */
HIDDEN int agq(const Problem *pb, const double *z, const double *wk, Py_ssize_t K,
               const double *eta, const double *u, const double *D, const double *dev,
               const double *mu, const double *W, const double *s, double *F, double *g);
HIDDEN int predict(const Problem *pb, double dth, const double *u, const double *s,
                   const double *W, const double *D, const double *dbeta, const double *C,
                   const double *GiC, const double *RX, double *un, double *db);

/* -- the entry points of each concept, registered by module.c ----------------------------- */

HIDDEN extern PyMethodDef SCALAR_METHODS[];
HIDDEN extern PyMethodDef SEARCH_METHODS[];
HIDDEN extern PyMethodDef CROSSED_METHODS[];
HIDDEN extern PyMethodDef CROSSED_GRADIENT_METHODS[];
HIDDEN extern PyMethodDef COUPLING_METHODS[];
HIDDEN extern PyMethodDef BFGS_METHODS[];
HIDDEN extern PyMethodDef LMM_METHODS[];
HIDDEN extern PyMethodDef BLOCK_METHODS[];
HIDDEN extern PyMethodDef FIXED_METHODS[];

#endif
