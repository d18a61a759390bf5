/* lme4's profiled criterion of a linear mixed model and its exact gradient in θ, with the
 * whole BFGS search over θ (glmm/objectives/lmm_crossprod.py builds the model; the formulas:
 * docs/lmm.md §6).
 *
 * The model is held as its θ-free cross-products (the MixedModels.jl approach), formed once:
 *
 *     M = [Z X ỹ]ᵀ W [Z X ỹ],   ỹ = y − o − Xβ₀  (β₀ any fixed vector: the OLS fit)
 *
 * ordered as [term 1 | the later terms (q₂ modes) | X (p) | ỹ], with the first term of any
 * size p₁ (block diagonal: one p₁ × p₁ block M₁₁,ₖ per level k) and the later terms scalar.
 * With Λ̄ = diag(Λ, I_{p+1}) and E = diag(I_q, 0), the matrix Ā = Λ̄ᵀMΛ̄ + E has the Cholesky
 * factor whose blocks are L_θ, R_Xᵀ and r, r² = pwrss (ỹ's shift by Xβ₀ changes no
 * minimum over β, and keeps r² from cancelling against a large yᵀWy).  Eliminating term 1
 * (block diagonal, G₁ₖ = T₁ᵀM₁₁,ₖT₁ + I = LₖLₖᵀ) leaves the dense matrix of order m₂ = q₂ + p + 1
 *
 *     S̄ = Λ̄₂M₂₂Λ̄₂ + E₂ − Σₖ WₖWₖᵀ,   Wₖ = Bₖ Lₖ⁻ᵀ,  Bₖ = Λ̄₂ M₂₁,ₖ T₁   (Λ̄₂ = diag(λ₂))
 *
 * factored by LAPACK (dpotrf) into L̄₂, whose diagonal gives the rest of log|L_θ|², log|R_X|²
 * and r; where S̄ is sparse (InstEval), by supernodes in a fill-reducing order of its rows
 * (sn_factor, sn_inverse; supernodal.c finds the order and the supernodes).  Column k of M₂₁ is sparse (the later terms' levels that meet level k, then the p+1
 * rows of X and ỹ, always present): ``rows`` lists them per level.  When dense pays (few later
 * modes, crossed: every level meets most of them) every level lists all m₂ rows and the update
 * is one dsyrk.  A scalar term 1 whose levels fall into few classes of equal M₁₁,ₖ (equal
 * sizes, in a balanced design) takes the classes form instead (lmm_classes,
 * evaluate_classes): each class's Σcₖcₖᵀ formed once, an evaluation costs K·m₂².
 *
 * The gradient, with P = Ā⁻¹, N = Λ̄ᵀM and T(Q)ⱼ = 2 Σ_levels [QN]_{(l,b),(l,a)} for θⱼ at
 * (a, b) of its term's factor (docs/lmm.md §6):
 *
 *     ∂d/∂θ = T(P) + (ν − 1) T(zzᵀ)/r² − [ML] Σ_c T(v_c v_cᵀ)
 *
 * z = −r²P[:, ỹ] = [û; β̂ − β₀; −1], and v_c the columns of U R_Xᵀ with U the X columns of the
 * inverse of Ā's leading q + p block.  T(P) needs P on the pattern of M only (a selected
 * inverse): P₂₂ = S̄⁻¹ (dpotri), P₂₁,ₖ = −P₂₂Kₖ with Kₖ = BₖG₁ₖ⁻¹ on rows(k), and the diagonal
 * blocks P₁₁,ₖ = G₁ₖ⁻¹ − KₖᵀP₂₁,ₖ.
 *
 * LAPACK and BLAS are scipy's (the function pointers of scipy.linalg.cython_lapack and
 * cython_blas), so that the core links nothing.  scipy's OpenBLAS is not numpy's: lmer limits
 * it to one thread because glmm/objectives/lmm_crossprod.py loads those modules through
 * glmm.threads.scipy_linalg, which limits a pool loaded inside a fit's blas_limit; a direct
 * call outside a fit runs under whatever limit the caller set. */

#include "core.h"

static const char LMM_MODEL[] = "glmm._core.lmm_model";

/* the largest first term the core takes (p₁ × p₁ blocks on the stack) */
#define MAX_P1 16
/* the largest S̄ lmm_order orders (its graphs: 2·m₂²/8 bytes, here 64 MB) */
#define MAX_ORDER_GRAPH 16384

/* -- LAPACK and BLAS from scipy ----------------------------------------------------------- */

typedef void (*potrf_fn)(char *, int *, double *, int *, int *);
typedef void (*syrk_fn)(char *, char *, int *, int *, double *, double *, int *, double *,
                        double *, int *);
typedef void (*symm_fn)(char *, char *, int *, int *, double *, double *, int *, double *,
                        int *, double *, double *, int *);
typedef void (*trsm_fn)(char *, char *, char *, char *, int *, int *, double *, double *,
                        int *, double *, int *);
typedef void (*gemm_fn)(char *, char *, int *, int *, int *, double *, double *, int *,
                        double *, int *, double *, double *, int *);
typedef void (*syr2k_fn)(char *, char *, int *, int *, double *, double *, int *, double *,
                         int *, double *, double *, int *);

static potrf_fn dpotrf_p, dpotri_p;
static syrk_fn dsyrk_p;
static symm_fn dsymm_p;
static trsm_fn dtrsm_p;
static gemm_fn dgemm_p;
static syr2k_fn dsyr2k_p;

static void *capi_function(const char *module, const char *name)
{
    void *f = NULL;
    PyObject *m = PyImport_ImportModule(module);
    PyObject *capi = m ? PyObject_GetAttrString(m, "__pyx_capi__") : NULL;
    PyObject *cap = capi ? PyDict_GetItemString(capi, name) : NULL;
    if (cap)
        f = PyCapsule_GetPointer(cap, PyCapsule_GetName(cap));
    else if (!PyErr_Occurred())
        PyErr_Format(PyExc_ImportError, "%s has no %s", module, name);
    Py_XDECREF(capi);
    Py_XDECREF(m);
    return f;
}

static int load_lapack(void)
{
    if (dpotrf_p)
        return 1;
    potrf_fn potrf = capi_function("scipy.linalg.cython_lapack", "dpotrf");
    potrf_fn potri = potrf ? capi_function("scipy.linalg.cython_lapack", "dpotri") : NULL;
    syrk_fn syrk = potri ? capi_function("scipy.linalg.cython_blas", "dsyrk") : NULL;
    symm_fn symm = syrk ? capi_function("scipy.linalg.cython_blas", "dsymm") : NULL;
    trsm_fn trsm = symm ? capi_function("scipy.linalg.cython_blas", "dtrsm") : NULL;
    gemm_fn gemm = trsm ? capi_function("scipy.linalg.cython_blas", "dgemm") : NULL;
    syr2k_fn syr2k = gemm ? capi_function("scipy.linalg.cython_blas", "dsyr2k") : NULL;
    if (!syr2k)
        return 0;
    dsyr2k_p = syr2k;
    dtrsm_p = trsm;
    dgemm_p = gemm;
    dpotri_p = potri;
    dsyrk_p = syrk;
    dsymm_p = symm;
    dpotrf_p = potrf;
    return 1;
}

/* -- the model ------------------------------------------------------------------------------ */

typedef struct {
    Held held;
    Py_ssize_t p1, l1, q1, nth1, ntheta, m2, q2, p, nnz;
    int dense, REML;
    double nobs, logw;
    const int64_t *tril;    /* 2·nth1: (a, b) of term 1's θⱼ, j < nth1 */
    const int64_t *rterm;   /* m₂: θ's index of a later term's row; -1 for X's and ỹ's */
    const int64_t *ptr;     /* l₁ + 1: level k's rows are rows[ptr[k]:ptr[k+1]] */
    const int64_t *rows;    /* nnz: increasing within a level, ending with q₂ … m₂ − 1 */
    const double *M11;      /* l₁ · p₁ · p₁, row-major per level */
    const double *M21;      /* p₁ · nnz: level k's (row pos, column c) at p₁·ptr[k] + c·nₖ + pos */
    const double *M22;      /* m₂ × m₂, symmetric */
    /* the classes form (lmm_classes; K > 0, then p₁ = 1 and M11, M21, ptr, rows unused):
     * class c's levels share M₁₁,ₖ = d[c]; nlev[c] of them; H[c] = Σ_{k ∈ c} cₖcₖᵀ (m₂ × m₂) */
    Py_ssize_t K;
    const double *dcls, *H;
    const int64_t *nlev;
    /* the supernodal factor of S̄ (lmm_model's `supernodal`; its arrays in held.index) */
    int supernodal;
    Supernodes sn;
    /* lmm_model's M₂₂ by its nonzeros: row j's columns m22col[m22ptr[j]:m22ptr[j+1]],
     * increasing (in held.index) */
    const int64_t *m22ptr, *m22col;
} LmmModel;

/* the scratch of one evaluation */
typedef struct {
    const LmmModel *m;
    double *S, *L1, *N11, *BT, *W, *P21, *lam2, *vec, *svec, *yvec, *U, *RX, *acc, *gt, *Q;
    double *sb;   /* the supernodal factor's blocks: 2·maxr·maxw + maxr² */
    double T[MAX_P1 * MAX_P1];
    int error;
} Work;

static void work_free(Work *w)
{
    free(w->S);
    w->S = NULL;
}

static int work_alloc(Work *w, const LmmModel *m)
{
    if (m->K) {   /* S̄, Q, λ₂, v and the gradient's accumulator */
        Py_ssize_t size = muladd(2 * m->m2, m->m2, muladd(2, m->m2, m->ntheta));
        w->m = m;
        w->S = size < 0 ? NULL : malloc(sizeof(double) * size);
        if (!w->S)
            return 0;
        w->Q = w->S + m->m2 * m->m2;
        w->lam2 = w->Q + m->m2 * m->m2;
        w->vec = w->lam2 + m->m2;
        w->gt = w->vec + m->m2;
        return 1;
    }
    const Py_ssize_t pp = m->p1 * m->p1, len = m->q1 + m->m2;
    Py_ssize_t size = muladd(m->m2, m->m2, 0);
    size = muladd(2 * m->l1, pp, size);
    size = muladd(3 * m->p1, m->nnz, size);
    size = muladd(3 + (m->p > 0 ? m->p : 0), len, size);
    size = muladd(m->p, m->p, size);
    size = muladd(2, m->m2, size);
    size = muladd(1, m->ntheta, size);
    if (m->supernodal) {
        size = muladd(2 * m->sn.maxr, m->sn.maxw, size);
        size = muladd(m->sn.maxr, m->sn.maxr, size);
    }
    w->m = m;
    w->S = size < 0 ? NULL : malloc(sizeof(double) * (size > 0 ? size : 1));
    if (!w->S)
        return 0;
    double *b = w->S + m->m2 * m->m2;
    w->L1 = b, b += m->l1 * pp;
    w->N11 = b, b += m->l1 * pp;
    w->BT = b, b += m->p1 * m->nnz;
    w->W = b, b += m->p1 * m->nnz;
    w->P21 = b, b += m->p1 * m->nnz;
    w->vec = b, b += len;
    w->svec = b, b += len;
    w->yvec = b, b += len;
    w->U = b, b += m->p * len;
    w->RX = b, b += m->p * m->p;
    w->lam2 = b, b += m->m2;
    w->acc = b, b += m->m2;
    w->gt = b, b += m->ntheta;
    w->sb = b;
    return 1;
}

/* out[j] += scale · Σ_levels v_{(l,b)} (MΛ̄v)_{(l,a)} for θⱼ at (a, b): T(vvᵀ)/2 for v of
 * length q₁ + m₂ (term 1's modes level-major, then S̄'s rows), at the θ of the last
 * factorisation (w->T, w->lam2). */
static void probe(Work *w, const double *v, double scale, double *out)
{
    const LmmModel *m = w->m;
    const Py_ssize_t p1 = m->p1, pp = p1 * p1, l1 = m->l1, m2 = m->m2, q2 = m->q2, q1 = m->q1;
    const double *T = w->T, *lam2 = w->lam2;
    double *s = w->svec, *y = w->yvec;
    for (Py_ssize_t k = 0; k < l1; k++)   /* s = Λ̄v */
        for (Py_ssize_t c = 0; c < p1; c++) {
            double t = 0.0;
            for (Py_ssize_t e = 0; e <= c; e++)
                t += T[c * p1 + e] * v[k * p1 + e];
            s[k * p1 + c] = t;
        }
    for (Py_ssize_t i = 0; i < m2; i++)
        s[q1 + i] = lam2[i] * v[q1 + i];
    memset(y + q1, 0, sizeof(double) * m2);   /* y = MΛ̄v on the modes */
    for (Py_ssize_t k = 0; k < l1; k++) {
        const Py_ssize_t nk = m->ptr[k + 1] - m->ptr[k], off = p1 * m->ptr[k];
        const int64_t *rows = m->rows + m->ptr[k];
        const double *Mk = m->M11 + k * pp, *Mc = m->M21 + off, *sk = s + k * p1;
        for (Py_ssize_t a = 0; a < p1; a++) {
            double t = 0.0;
            for (Py_ssize_t c = 0; c < p1; c++)
                t += Mk[a * p1 + c] * sk[c];
            for (Py_ssize_t pos = 0; pos < nk; pos++)
                t += Mc[a * nk + pos] * s[q1 + rows[pos]];
            y[k * p1 + a] = t;
        }
        for (Py_ssize_t pos = 0; pos < nk && rows[pos] < q2; pos++) {
            double t = 0.0;
            for (Py_ssize_t c = 0; c < p1; c++)
                t += Mc[c * nk + pos] * sk[c];
            y[q1 + rows[pos]] += t;
        }
    }
    for (Py_ssize_t j = 0; j < q2; j++) {   /* M₂₂'s row j, by its nonzeros */
        const double *Mc = m->M22 + j * m2;
        double t = 0.0;
        for (int64_t e = m->m22ptr[j]; e < m->m22ptr[j + 1]; e++)
            t += Mc[m->m22col[e]] * s[q1 + m->m22col[e]];
        out[m->rterm[j]] += scale * v[q1 + j] * (y[q1 + j] + t);
    }
    for (Py_ssize_t j = 0; j < m->nth1; j++) {
        const Py_ssize_t a = m->tril[2 * j], b = m->tril[2 * j + 1];
        double t = 0.0;
        for (Py_ssize_t k = 0; k < l1; k++)
            t += v[k * p1 + b] * y[k * p1 + a];
        out[j] += scale * t;
    }
}

/* -- the supernodal factor of S̄ (supernodal.c: the supernodes) --------------------------- */

/* S̄ ← L̄₂ (lower, column-major, order m₂, in place) by supernodes: for supernode J (its
 * columns) with the structure R below it,
 *
 *     L_JJ = chol(S̄_JJ),   L_RJ = S̄_RJ L_JJ⁻ᵀ,   S̄_RR −= L_RJ L_RJᵀ
 *
 * (dpotrf, dtrsm, dsyrk), R's rows gathered into the scratch sb.  S̄ is zero outside the
 * supernodes' pattern and stays so.  0 where S̄ is not positive definite. */
static int sn_factor(const LmmModel *m, double *S, double *sb)
{
    const Supernodes *sn = &m->sn;
    const Py_ssize_t n = m->m2;
    int ld = (int)n, info = 0;
    char lo = 'L', ri = 'R', tr = 'T', no = 'N';
    double one = 1.0, zero = 0.0;
    for (Py_ssize_t s = 0; s < sn->nsn; s++) {
        const Py_ssize_t c0 = sn->start[s];
        int w = (int)(sn->start[s + 1] - c0), r = (int)(sn->rptr[s + 1] - sn->rptr[s]);
        const int64_t *R = sn->rows + sn->rptr[s];
        double *D = S + c0 * n + c0;
        dpotrf_p(&lo, &w, D, &ld, &info);
        if (info != 0)
            return 0;
        if (r == 0)
            continue;
        double *B = sb, *C = sb + (Py_ssize_t)r * w;
        for (Py_ssize_t c = 0; c < w; c++) {
            const double *col = S + (c0 + c) * n;
            for (Py_ssize_t i = 0; i < r; i++)
                B[c * r + i] = col[R[i]];
        }
        dtrsm_p(&ri, &lo, &tr, &no, &r, &w, &one, D, &ld, B, &r);
        for (Py_ssize_t c = 0; c < w; c++) {
            double *col = S + (c0 + c) * n;
            for (Py_ssize_t i = 0; i < r; i++)
                col[R[i]] = B[c * r + i];
        }
        dsyrk_p(&lo, &no, &r, &w, &one, B, &r, &zero, C, &r);
        for (Py_ssize_t b = 0; b < r; b++) {
            double *col = S + R[b] * n;
            const double *Cb = C + b * r;
            for (Py_ssize_t a = b; a < r; a++)
                col[R[a]] -= Cb[a];
        }
    }
    return 1;
}

/* S̄⁻¹ on the pattern of L̄₂ (its selected inverse), from the factor of sn_factor, in place
 * (lower), the supernodes last to first: with Y = L_RJ L_JJ⁻¹,
 *
 *     P_RJ = −P_RR Y,   P_JJ = (L_JJ L_JJᵀ)⁻¹ − Yᵀ P_RJ
 *
 * (dtrsm, dsymm, dpotri, dsyr2k), P_RR being on the pattern of the later supernodes (R is a
 * clique of L̄₂'s graph).  0 where a block is singular. */
static int sn_inverse(const LmmModel *m, double *S, double *sb)
{
    const Supernodes *sn = &m->sn;
    const Py_ssize_t n = m->m2;
    int ld = (int)n, info = 0;
    char lo = 'L', ri = 'R', tr = 'T', no = 'N';
    double one = 1.0, minus = -1.0, half = -0.5, zero = 0.0;
    for (Py_ssize_t s = sn->nsn - 1; s >= 0; s--) {
        const Py_ssize_t c0 = sn->start[s];
        int w = (int)(sn->start[s + 1] - c0), r = (int)(sn->rptr[s + 1] - sn->rptr[s]);
        const int64_t *R = sn->rows + sn->rptr[s];
        double *D = S + c0 * n + c0;
        double *Y = sb, *X = sb + (Py_ssize_t)r * w, *PRR = sb + 2 * (Py_ssize_t)r * w;
        if (r > 0) {
            for (Py_ssize_t c = 0; c < w; c++) {
                const double *col = S + (c0 + c) * n;
                for (Py_ssize_t i = 0; i < r; i++)
                    Y[c * r + i] = col[R[i]];
            }
            dtrsm_p(&ri, &lo, &no, &no, &r, &w, &one, D, &ld, Y, &r);
            for (Py_ssize_t b = 0; b < r; b++) {
                const double *col = S + R[b] * n;
                double *Pb = PRR + b * r;
                for (Py_ssize_t a = b; a < r; a++)
                    Pb[a] = col[R[a]];
            }
            dsymm_p(&lo, &lo, &r, &w, &minus, PRR, &r, Y, &r, &zero, X, &r);
        }
        dpotri_p(&lo, &w, D, &ld, &info);
        if (info != 0)
            return 0;
        if (r > 0) {   /* P_JJ −= (YᵀX + XᵀY)/2, lower */
            dsyr2k_p(&lo, &tr, &w, &r, &half, Y, &r, X, &r, &one, D, &ld);
            for (Py_ssize_t c = 0; c < w; c++) {
                double *col = S + (c0 + c) * n;
                for (Py_ssize_t i = 0; i < r; i++)
                    col[R[i]] = X[c * r + i];
            }
        }
    }
    return 1;
}

/* The criterion from S̄'s Cholesky factor L̄₂ (lower, column-major, in S) and `ld`, the
 * log-determinant of term 1's part of L_θ: L̄₂'s first q₂ pivots complete log|L_θ|², the next
 * p are R_X's, the last is r (r² = pwrss, into *pwrss); +∞ where F is not finite. */
static double criterion(const LmmModel *m, const double *S, Sum *ld, double *pwrss)
{
    const Py_ssize_t m2 = m->m2, q2 = m->q2, p = m->p;
    Sum ldrx = {0.0, 0.0};
    for (Py_ssize_t i = 0; i < q2; i++)
        add(ld, 2.0 * log(S[i * m2 + i]));
    for (Py_ssize_t i = q2; i < q2 + p; i++)
        add(&ldrx, 2.0 * log(S[i * m2 + i]));
    const double r = S[(m2 - 1) * m2 + (m2 - 1)];
    *pwrss = r * r;
    const double nu = m->REML ? m->nobs - (double)p : m->nobs;
    double F = total(ld) - m->logw + nu * (1.0 + log(2.0 * M_PI * *pwrss / nu));
    if (m->REML)
        F += total(&ldrx);
    return isfinite(F) && *pwrss > 0.0 ? F : INFINITY;
}

/* The criterion at θ (F, or +∞ where Ā is not positive definite or, with g, where the
 * gradient is not finite), with its gradient into g when g is not NULL. */
static double evaluate(Work *w, const double *theta, double *g)
{
    const LmmModel *m = w->m;
    const Py_ssize_t p1 = m->p1, pp = p1 * p1, l1 = m->l1, m2 = m->m2, q2 = m->q2, p = m->p;
    double *S = w->S, *T = w->T, *lam2 = w->lam2;
    memset(T, 0, sizeof(double) * pp);
    for (Py_ssize_t j = 0; j < m->nth1; j++)
        T[m->tril[2 * j] * p1 + m->tril[2 * j + 1]] = theta[j];
    for (Py_ssize_t i = 0; i < m2; i++)
        lam2[i] = m->rterm[i] >= 0 ? theta[m->rterm[i]] : 1.0;
    /* S̄ ← Λ̄₂M₂₂Λ̄₂ + E₂ (lower triangle, column-major): supernodal, on L̄₂'s pattern only
     * (zero, then M₂₂'s nonzeros: S̄'s lower triangle is zero elsewhere, and stays so) */
    if (m->supernodal) {
        const Supernodes *sn = &m->sn;
        for (Py_ssize_t t = 0; t < sn->nsn; t++)
            for (int64_t c = sn->start[t]; c < sn->start[t + 1]; c++) {
                double *col = S + c * m2;
                memset(col + c, 0, sizeof(double) * (sn->start[t + 1] - c));
                for (int64_t e = sn->rptr[t]; e < sn->rptr[t + 1]; e++)
                    col[sn->rows[e]] = 0.0;
            }
        for (Py_ssize_t j = 0; j < m2; j++) {
            const double *Mj = m->M22 + j * m2;
            double *col = S + j * m2;
            for (int64_t e = m->m22ptr[j]; e < m->m22ptr[j + 1]; e++) {
                const int64_t i = m->m22col[e];
                if (i >= j)
                    col[i] = lam2[i] * Mj[i] * lam2[j];
            }
            if (j < q2)
                col[j] += 1.0;
        }
    } else
        for (Py_ssize_t j = 0; j < m2; j++)
            for (Py_ssize_t i = j; i < m2; i++)
                S[j * m2 + i] = lam2[i] * m->M22[j * m2 + i] * lam2[j] + (i == j && i < q2);
    Sum ld = {0.0, 0.0};
    for (Py_ssize_t k = 0; k < l1; k++) {
        const double *Mk = m->M11 + k * pp;
        double *N = w->N11 + k * pp, *L = w->L1 + k * pp;
        for (Py_ssize_t a = 0; a < p1; a++)        /* N = T₁ᵀM₁₁,ₖ */
            for (Py_ssize_t b = 0; b < p1; b++) {
                double v = 0.0;
                for (Py_ssize_t c = a; c < p1; c++)
                    v += T[c * p1 + a] * Mk[c * p1 + b];
                N[a * p1 + b] = v;
            }
        for (Py_ssize_t a = 0; a < p1; a++)        /* G = N T₁ + I */
            for (Py_ssize_t b = 0; b <= a; b++) {
                double v = a == b;
                for (Py_ssize_t c = b; c < p1; c++)
                    v += N[a * p1 + c] * T[c * p1 + b];
                L[a * p1 + b] = v;
                L[b * p1 + a] = v;
            }
        if (!cholesky_upper(L, p1))   /* R, RᵀR = G; Lₖ = Rᵀ (lower) in place */
            return INFINITY;
        for (Py_ssize_t a = 0; a < p1; a++)
            for (Py_ssize_t b = 0; b < a; b++) {
                L[a * p1 + b] = L[b * p1 + a];
                L[b * p1 + a] = 0.0;
            }
        for (Py_ssize_t a = 0; a < p1; a++)
            add(&ld, 2.0 * log(L[a * p1 + a]));
        const Py_ssize_t nk = m->ptr[k + 1] - m->ptr[k], off = p1 * m->ptr[k];
        const int64_t *rows = m->rows + m->ptr[k];
        const double *Mc = m->M21 + off;
        double *BT = w->BT + off, *Wk = w->W + off;
        for (Py_ssize_t pos = 0; pos < nk; pos++) {
            const double lam = lam2[rows[pos]];
            for (Py_ssize_t c = 0; c < p1; c++) {   /* BT = M₂₁,ₖT₁; W = λ₂∘BT Lₖ⁻ᵀ */
                double v = 0.0;
                for (Py_ssize_t e = c; e < p1; e++)
                    v += Mc[e * nk + pos] * T[e * p1 + c];
                BT[c * nk + pos] = v;
            }
            for (Py_ssize_t c = 0; c < p1; c++) {
                double v = lam * BT[c * nk + pos];
                for (Py_ssize_t e = 0; e < c; e++)
                    v -= Wk[e * nk + pos] * L[c * p1 + e];
                Wk[c * nk + pos] = v / L[c * p1 + c];
            }
        }
        if (!m->dense)   /* S̄ −= WₖWₖᵀ on rows(k) × rows(k), lower */
            for (Py_ssize_t c = 0; c < p1; c++) {
                const double *wc = Wk + c * nk;
                for (Py_ssize_t b = 0; b < nk; b++) {
                    double *col = S + rows[b] * m2;
                    const double wb = wc[b];
                    for (Py_ssize_t a = b; a < nk; a++)
                        col[rows[a]] -= wc[a] * wb;
                }
            }
    }
    int n2 = (int)m2, q1 = (int)m->q1, info = 0;
    char lo = 'L', no = 'N';
    if (m->dense && q1 > 0) {
        double minus = -1.0, one = 1.0;
        dsyrk_p(&lo, &no, &n2, &q1, &minus, w->W, &n2, &one, S, &n2);
    }
    if (m->supernodal)
        info = !sn_factor(m, S, w->sb);
    else
        dpotrf_p(&lo, &n2, S, &n2, &info);
    if (info != 0)
        return INFINITY;
    double pwrss;
    const double nu = m->REML ? m->nobs - (double)p : m->nobs;
    double F = criterion(m, S, &ld, &pwrss);
    if (!g || F == INFINITY)
        return F;

    /* -- the gradient ------------------------------------------------------------------- */
    double *RX = w->RX;   /* R_X (upper, row-major) before dpotri overwrites the factor */
    for (Py_ssize_t c = 0; c < p; c++)
        for (Py_ssize_t d = 0; d < p; d++)
            RX[c * p + d] = d >= c ? S[(q2 + c) * m2 + (q2 + d)] : 0.0;
    if (m->supernodal)   /* P₂₂ = S̄⁻¹: on L̄₂'s pattern, which holds every entry read below */
        info = !sn_inverse(m, S, w->sb);
    else
        dpotri_p(&lo, &n2, S, &n2, &info);
    if (info != 0)
        return INFINITY;
    const double *P22 = S;   /* its lower triangle: P₂₂[i, j] at P22[j·m₂ + i] for i ≥ j */
    /* Kₖ = WₖLₖ⁻¹ (in place), then P₂₁,ₖ = −P₂₂Kₖ on rows(k) */
    for (Py_ssize_t k = 0; k < l1; k++) {
        const Py_ssize_t nk = m->ptr[k + 1] - m->ptr[k], off = p1 * m->ptr[k];
        const double *L = w->L1 + k * pp;
        double *Kk = w->W + off;
        for (Py_ssize_t pos = 0; pos < nk; pos++)
            for (Py_ssize_t c = p1 - 1; c >= 0; c--) {
                double v = Kk[c * nk + pos];
                for (Py_ssize_t e = c + 1; e < p1; e++)
                    v -= Kk[e * nk + pos] * L[e * p1 + c];
                Kk[c * nk + pos] = v / L[c * p1 + c];
            }
        if (m->supernodal) {   /* P₂₂ on rows(k) × rows(k), each pair once (lower) */
            const int64_t *rows = m->rows + m->ptr[k];
            double *Pk = w->P21 + off;
            memset(Pk, 0, sizeof(double) * p1 * nk);
            for (Py_ssize_t a = 0; a < nk; a++) {
                const double *col = P22 + rows[a] * m2;
                for (Py_ssize_t c = 0; c < p1; c++) {
                    const double *Kc = Kk + c * nk, ka = Kc[a];
                    double *Pc = Pk + c * nk, v = col[rows[a]] * ka;
                    for (Py_ssize_t b = a + 1; b < nk; b++) {
                        const double pab = col[rows[b]];
                        v += pab * Kc[b];
                        Pc[b] -= pab * ka;
                    }
                    Pc[a] -= v;
                }
            }
        } else if (!m->dense) {
            const int64_t *rows = m->rows + m->ptr[k];
            double *Pk = w->P21 + off;
            for (Py_ssize_t c = 0; c < p1; c++)
                for (Py_ssize_t a = 0; a < nk; a++) {
                    double v = 0.0;
                    for (Py_ssize_t b = 0; b < nk; b++)
                        v += P22[b < a ? rows[b] * m2 + rows[a] : rows[a] * m2 + rows[b]] *
                             Kk[c * nk + b];
                    Pk[c * nk + a] = -v;
                }
        }
    }
    if (m->dense && q1 > 0) {
        double minus = -1.0, zero = 0.0;
        dsymm_p(&lo, &lo, &n2, &q1, &minus, S, &n2, w->W, &n2, &zero, w->P21, &n2);
    }
    double *gt = w->gt, *acc = w->acc;
    memset(gt, 0, sizeof(double) * m->ntheta);
    memset(acc, 0, sizeof(double) * m2);
    /* T(P): term 1's levels, then the later terms' columns */
    for (Py_ssize_t k = 0; k < l1; k++) {
        const Py_ssize_t nk = m->ptr[k + 1] - m->ptr[k], off = p1 * m->ptr[k];
        const int64_t *rows = m->rows + m->ptr[k];
        const double *L = w->L1 + k * pp, *N = w->N11 + k * pp, *Kk = w->W + off,
                     *Pk = w->P21 + off, *Mc = m->M21 + off, *BT = w->BT + off;
        double Li[MAX_P1 * MAX_P1], P11[MAX_P1 * MAX_P1];
        for (Py_ssize_t c = 0; c < p1; c++)   /* Lₖ⁻¹, lower */
            for (Py_ssize_t a = 0; a < p1; a++) {
                if (a < c) {
                    Li[a * p1 + c] = 0.0;
                    continue;
                }
                double v = a == c;
                for (Py_ssize_t e = c; e < a; e++)
                    v -= L[a * p1 + e] * Li[e * p1 + c];
                Li[a * p1 + c] = v / L[a * p1 + a];
            }
        for (Py_ssize_t a = 0; a < p1; a++)   /* P₁₁,ₖ = Lₖ⁻ᵀLₖ⁻¹ − KₖᵀP₂₁,ₖ */
            for (Py_ssize_t b = 0; b < p1; b++) {
                double v = 0.0;
                for (Py_ssize_t e = a > b ? a : b; e < p1; e++)
                    v += Li[e * p1 + a] * Li[e * p1 + b];
                for (Py_ssize_t pos = 0; pos < nk; pos++)
                    v -= Kk[a * nk + pos] * Pk[b * nk + pos];
                P11[a * p1 + b] = v;
            }
        for (Py_ssize_t j = 0; j < m->nth1; j++) {
            const Py_ssize_t a = m->tril[2 * j], b = m->tril[2 * j + 1];
            double v = 0.0;
            for (Py_ssize_t c = 0; c < p1; c++)
                v += P11[b * p1 + c] * N[c * p1 + a];
            for (Py_ssize_t pos = 0; pos < nk; pos++)
                v += Pk[b * nk + pos] * lam2[rows[pos]] * Mc[a * nk + pos];
            gt[j] += v;
        }
        for (Py_ssize_t pos = 0; pos < nk && rows[pos] < q2; pos++) {
            double v = 0.0;
            for (Py_ssize_t c = 0; c < p1; c++)
                v += Pk[c * nk + pos] * BT[c * nk + pos];
            acc[rows[pos]] += v;
        }
    }
    for (Py_ssize_t j = 0; j < q2; j++) {   /* Σᵢ P₂₂[i, j] λᵢ M₂₂[j, i] over M₂₂'s nonzeros */
        const double *Mc = m->M22 + j * m2;
        double v = acc[j];
        for (int64_t e = m->m22ptr[j]; e < m->m22ptr[j + 1]; e++) {
            const int64_t i = m->m22col[e];
            v += P22[i >= j ? j * m2 + i : i * m2 + j] * lam2[i] * Mc[i];
        }
        gt[m->rterm[j]] += v;
    }
    /* T(zzᵀ), z = −r²P[:, ỹ] = [û; β̂ − β₀; −1] */
    const Py_ssize_t len = m->q1 + m2;
    double *z = w->vec;
    for (Py_ssize_t k = 0; k < l1; k++) {
        const Py_ssize_t nk = m->ptr[k + 1] - m->ptr[k], off = p1 * m->ptr[k];
        for (Py_ssize_t c = 0; c < p1; c++)
            z[k * p1 + c] = -pwrss * w->P21[off + c * nk + nk - 1];
    }
    for (Py_ssize_t i = 0; i < m2; i++)   /* P₂₂'s last row */
        z[m->q1 + i] = -pwrss * P22[i * m2 + m2 - 1];
    probe(w, z, (nu - 1.0) / pwrss, gt);
    if (!m->REML && p > 0) {   /* −Σ_c T(v_c v_cᵀ), v_c = columns of U R_Xᵀ */
        double *U = w->U;
        for (Py_ssize_t d = 0; d < p; d++) {
            double *Ud = U + d * len;
            const double zd = z[m->q1 + q2 + d] / pwrss;
            for (Py_ssize_t k = 0; k < l1; k++) {
                const Py_ssize_t nk = m->ptr[k + 1] - m->ptr[k], off = p1 * m->ptr[k];
                for (Py_ssize_t c = 0; c < p1; c++)
                    Ud[k * p1 + c] = w->P21[off + c * nk + nk - 1 - p + d] - z[k * p1 + c] * zd;
            }
            for (Py_ssize_t i = 0; i < m2 - 1; i++)   /* P₂₂[i, q₂ + d] */
                Ud[m->q1 + i] = P22[i >= q2 + d ? (q2 + d) * m2 + i : i * m2 + q2 + d] -
                                z[m->q1 + i] * zd;
            Ud[len - 1] = 0.0;
        }
        for (Py_ssize_t c = 0; c < p; c++) {
            double *v = w->vec;   /* z is no longer needed */
            memset(v, 0, sizeof(double) * len);
            for (Py_ssize_t d = c; d < p; d++) {
                const double rcd = RX[c * p + d];
                const double *Ud = U + d * len;
                for (Py_ssize_t i = 0; i < len; i++)
                    v[i] += Ud[i] * rcd;
            }
            probe(w, v, -1.0, gt);
        }
    }
    for (Py_ssize_t j = 0; j < m->ntheta; j++) {
        g[j] = 2.0 * gt[j];
        if (!isfinite(g[j]))   /* a point without a finite gradient is out of the search */
            F = INFINITY;
    }
    return F;
}

/* The criterion and its gradient in the classes form (p₁ = 1; lmm_classes).  Term 1's
 * levels are diagonal, Gₖ = θ₁²dₖ + 1, so that eliminating them subtracts
 * θ₁²cₖcₖᵀ/(θ₁²dₖ + 1) for each level: levels of one class (equal dₖ) share the weight, and
 *
 *     S̄ = Λ₂QΛ₂ + E₂,   Q = M₂₂ − Σ_c φ_c H_c,   φ_c = θ₁²/(θ₁²d_c + 1),
 *     log|G₁| = Σ_c n_c log(θ₁²d_c + 1),
 *
 * at a cost of K·m₂² whatever the number of levels.  With L̄₂ = [L_B 0; ℓᵀ r] and
 * v = [L_B⁻ᵀℓ; −1] (so that S̄⁻¹ = pad(B⁻¹) + vvᵀ/r²), the criterion's derivative in S̄ is
 * the symmetric G = pad(S_lead⁻¹) + (ν/r²)vvᵀ, S_lead the leading q₂ (ML) or q₂ + p (REML)
 * block of S̄, and
 *
 *     ∂F/∂θ₁ = Σ_c n_c 2θ₁d_c/(θ₁²d_c + 1) − Σ_c φ'_c ⟨Λ₂GΛ₂, H_c⟩,   φ'_c = 2θ₁/(θ₁²d_c + 1)²
 *     ∂F/∂θ_t = 2 Σ_{i ∈ t} Σ_j G_ij Q_ij λ_j    (t a later term, i over its rows of S̄). */
static double evaluate_classes(Work *w, const double *theta, double *g)
{
    const LmmModel *m = w->m;
    const Py_ssize_t m2 = m->m2, q2 = m->q2, p = m->p, K = m->K;
    double *S = w->S, *Q = w->Q, *lam2 = w->lam2, *v = w->vec, *gt = w->gt;
    const double t1 = theta[0], t2 = t1 * t1;
    for (Py_ssize_t i = 0; i < m2; i++)
        lam2[i] = m->rterm[i] >= 0 ? theta[m->rterm[i]] : 1.0;
    memcpy(Q, m->M22, sizeof(double) * m2 * m2);
    Sum ld = {0.0, 0.0};
    for (Py_ssize_t c = 0; c < K; c++) {   /* Q = M₂₂ − Σ φ_c H_c (lower) */
        const double a = t2 * m->dcls[c], phi = t2 / (a + 1.0), *H = m->H + c * m2 * m2;
        add(&ld, (double)m->nlev[c] * log1p(a));
        for (Py_ssize_t j = 0; j < m2; j++)
            for (Py_ssize_t i = j; i < m2; i++)
                Q[j * m2 + i] -= phi * H[j * m2 + i];
    }
    for (Py_ssize_t j = 0; j < m2; j++)   /* S̄ = Λ₂QΛ₂ + E₂ (lower) */
        for (Py_ssize_t i = j; i < m2; i++)
            S[j * m2 + i] = lam2[i] * Q[j * m2 + i] * lam2[j] + (i == j && i < q2);
    int n2 = (int)m2, info = 0;
    char lo = 'L';
    dpotrf_p(&lo, &n2, S, &n2, &info);
    if (info != 0)
        return INFINITY;
    double pwrss;
    double F = criterion(m, S, &ld, &pwrss);
    if (!g || F == INFINITY)
        return F;

    /* -- the gradient ------------------------------------------------------------------- */
    const double nu = m->REML ? m->nobs - (double)p : m->nobs;
    v[m2 - 1] = -1.0;   /* L_Bᵀ v = ℓ, ℓᵢ = L̄₂[m₂ − 1, i] */
    for (Py_ssize_t i = m2 - 2; i >= 0; i--) {
        const double *col = S + i * m2;
        double t = col[m2 - 1];
        for (Py_ssize_t j = i + 1; j < m2 - 1; j++)
            t -= col[j] * v[j];
        v[i] = t / col[i];
    }
    int lead = (int)(m->REML ? q2 + p : q2);
    if (lead > 0) {
        dpotri_p(&lo, &lead, S, &n2, &info);   /* S_lead⁻¹ over S_lead's factor */
        if (info != 0)
            return INFINITY;
    }
    const double c2 = nu / pwrss;
    for (Py_ssize_t j = 0; j < m2; j++)   /* G (lower) in S */
        for (Py_ssize_t i = j; i < m2; i++)
            S[j * m2 + i] = (i < lead ? S[j * m2 + i] : 0.0) + c2 * v[i] * v[j];
    memset(gt, 0, sizeof(double) * m->ntheta);
    for (Py_ssize_t j = 0; j < m2; j++)   /* the later terms: Σ_j G_ij Q_ij λ_j per row i */
        for (Py_ssize_t i = j; i < m2; i++) {
            const double gq = S[j * m2 + i] * Q[j * m2 + i];
            if (m->rterm[i] >= 0)
                gt[m->rterm[i]] += 2.0 * gq * lam2[j];
            if (i != j && m->rterm[j] >= 0)
                gt[m->rterm[j]] += 2.0 * gq * lam2[i];
        }
    for (Py_ssize_t j = 0; j < m2; j++)   /* Λ₂GΛ₂ (lower, off-diagonal doubled) in S */
        for (Py_ssize_t i = j; i < m2; i++)
            S[j * m2 + i] *= lam2[i] * lam2[j] * (i == j ? 1.0 : 2.0);
    double d1 = 0.0;
    for (Py_ssize_t c = 0; c < K; c++) {
        const double a = t2 * m->dcls[c] + 1.0, *H = m->H + c * m2 * m2;
        double dot = 0.0;
        for (Py_ssize_t j = 0; j < m2; j++)
            for (Py_ssize_t i = j; i < m2; i++)
                dot += S[j * m2 + i] * H[j * m2 + i];
        d1 += (double)m->nlev[c] * 2.0 * t1 * m->dcls[c] / a - 2.0 * t1 / (a * a) * dot;
    }
    gt[0] += d1;
    for (Py_ssize_t j = 0; j < m->ntheta; j++) {
        g[j] = gt[j];
        if (!isfinite(g[j]))   /* a point without a finite gradient is out of the search */
            F = INFINITY;
    }
    return F;
}

/* The solution at the θ of the last evaluation without gradient (S = L̄₂, w->L1 = the Lₖ,
 * w->W = the Wₖ, intact): z = [û; β̂ − β₀; −1] solves 𝓛ᵀz = −r·e_last, 𝓛 = [L₁ 0; W L̄₂]
 * Ā's factor (the normal equations of min ‖ỹ − ZΛu − Xβ‖²_W + ‖u‖²), by back-substitution:
 *
 *     L̄₂ᵀz₂ = −r·e_last,   Lₖᵀz₁ₖ = −Wₖᵀz₂[rows(k)]   (each level of term 1).
 *
 * (supernodal: over L̄₂'s pattern only, the rest of S being unset).
 * Into u the q₁ + q₂ modes (term 1 level-major, then the later terms in S̄'s row order: the
 * supernodal order where there is one), into delta
 * the p entries of β̂ − β₀, into RX R_X (upper, row-major); *ldL2 and *ldRX2 are the
 * log-determinants and the return value F, summed as `evaluate` (evaluate_classes) sums them:
 * the same bits.  The classes form keeps no level's coupling Wₖ, so term 1's modes are left
 * to the caller (lmm_solution says so). */
static double solve_modes(Work *w, const double *theta, double *u, double *delta, double *RX,
                          double *ldL2, double *ldRX2, double *pwrss)
{
    const LmmModel *m = w->m;
    const Py_ssize_t p1 = m->p1, pp = p1 * p1, l1 = m->l1, m2 = m->m2, q2 = m->q2, p = m->p,
                     q1 = m->q1;
    const double *S = w->S;
    double *z = w->vec;   /* z₂: S̄'s rows */
    z[m2 - 1] = -1.0;
    if (m->supernodal) {   /* L̄₂ on its pattern only: each supernode's columns, its rows */
        const Supernodes *sn = &m->sn;
        for (Py_ssize_t s = sn->nsn - 1; s >= 0; s--)
            for (int64_t i = sn->start[s + 1] - 1; i >= sn->start[s]; i--) {
                if (i == m2 - 1)
                    continue;
                const double *col = S + i * m2;
                double t = 0.0;
                for (int64_t j = i + 1; j < sn->start[s + 1]; j++)
                    t -= col[j] * z[j];
                for (int64_t e = sn->rptr[s]; e < sn->rptr[s + 1]; e++)
                    t -= col[sn->rows[e]] * z[sn->rows[e]];
                z[i] = t / col[i];
            }
    } else
        for (Py_ssize_t i = m2 - 2; i >= 0; i--) {
            const double *col = S + i * m2;
            double t = col[m2 - 1];
            for (Py_ssize_t j = i + 1; j < m2 - 1; j++)
                t -= col[j] * z[j];
            z[i] = t / col[i];
        }
    Sum ld = {0.0, 0.0}, ldrx = {0.0, 0.0};
    for (Py_ssize_t c = 0; c < m->K; c++)   /* the classes form: term 1's modes are left */
        add(&ld, (double)m->nlev[c] * log1p(theta[0] * theta[0] * m->dcls[c]));
    for (Py_ssize_t k = 0; !m->K && k < l1; k++) {
        const Py_ssize_t nk = m->ptr[k + 1] - m->ptr[k], off = p1 * m->ptr[k];
        const int64_t *rows = m->rows + m->ptr[k];
        const double *L = w->L1 + k * pp, *Wk = w->W + off;
        double *uk = u + k * p1;
        for (Py_ssize_t a = 0; a < p1; a++)
            add(&ld, 2.0 * log(L[a * p1 + a]));
        for (Py_ssize_t c = p1 - 1; c >= 0; c--) {
            double t = 0.0;
            for (Py_ssize_t pos = 0; pos < nk; pos++)
                t -= Wk[c * nk + pos] * z[rows[pos]];
            for (Py_ssize_t e = c + 1; e < p1; e++)
                t -= L[e * p1 + c] * uk[e];
            uk[c] = t / L[c * p1 + c];
        }
    }
    memcpy(u + q1, z, sizeof(double) * q2);
    memcpy(delta, z + q2, sizeof(double) * p);
    for (Py_ssize_t c = 0; c < p; c++)
        for (Py_ssize_t d = 0; d < p; d++)
            RX[c * p + d] = d >= c ? S[(q2 + c) * m2 + (q2 + d)] : 0.0;
    for (Py_ssize_t i = q2; i < q2 + p; i++)
        add(&ldrx, 2.0 * log(S[i * m2 + i]));
    const double F = criterion(m, S, &ld, pwrss);
    *ldL2 = total(&ld);
    *ldRX2 = total(&ldrx);
    return F;
}

/* the criterion of either form */
static double lmm_value(Work *w, const double *theta, double *g)
{
    return w->m->K ? evaluate_classes(w, theta, g) : evaluate(w, theta, g);
}

/* -- the entry points ----------------------------------------------------------------------- */

/* The model's index block grown to `size` items, every pointer into it re-pointed; 0 when out
 * of memory (the block is then unchanged). */
static int grow_index(LmmModel *lm, Py_ssize_t size)
{
    const int64_t **p[] = {&lm->tril, &lm->rterm, &lm->ptr, &lm->rows, &lm->m22ptr, &lm->m22col};
    enum { N = sizeof p / sizeof p[0] };
    Py_ssize_t at[N];   /* the offsets, taken before the block moves */
    for (size_t k = 0; k < N; k++)
        at[k] = *p[k] ? *p[k] - lm->held.index : -1;
    int64_t *c = size < 0 ? NULL : PyMem_Realloc(lm->held.index, sizeof(int64_t) * (size + 1));
    if (!c)
        return 0;
    for (size_t k = 0; k < N; k++)
        if (at[k] >= 0)
            *p[k] = c + at[k];
    lm->held.index = c;
    return 1;
}

/* M₂₂ by its nonzeros (m22ptr, m22col), appended to the index block of *used items. */
static int take_m22(LmmModel *lm, Py_ssize_t *used)
{
    const Py_ssize_t m2 = lm->m2;
    Py_ssize_t nnz = 0;
    for (Py_ssize_t i = 0; i < m2 * m2; i++)
        nnz += lm->M22[i] != 0.0;
    const Py_ssize_t at = *used;
    if (!grow_index(lm, muladd(1, at + m2 + 1, nnz)))
        return 0;
    int64_t *ptr = lm->held.index + at, *col = ptr + m2 + 1;
    ptr[0] = 0;
    for (Py_ssize_t j = 0, e = 0; j < m2; j++) {
        for (Py_ssize_t i = 0; i < m2; i++)
            if (lm->M22[j * m2 + i] != 0.0)
                col[e++] = i;
        ptr[j + 1] = e;
    }
    lm->m22ptr = ptr;
    lm->m22col = col;
    *used = at + m2 + 1 + nnz;
    return 1;
}

/* The supernodes of S̄'s factor in its rows' order (its pattern: the levels' rows pairwise and
 * M₂₂'s nonzeros), appended to the model's index block of `nindex` items; 0 when out of
 * memory. */
static int take_supernodes(LmmModel *lm, Py_ssize_t nindex)
{
    Graph g;
    Supernodes sn;
    if (!graph_alloc(&g, lm->m2))
        return 0;
    graph_of(&g, lm->l1, lm->ptr, lm->rows, lm->M22, lm->m2);
    const int ok = supernodes_of(&g, &sn);
    graph_free(&g);
    if (!ok)
        return 0;
    const Py_ssize_t nrows = sn.rptr[sn.nsn];
    if (!grow_index(lm, muladd(2, sn.nsn + 1, muladd(1, nindex, nrows)))) {
        supernodes_free(&sn);
        return 0;
    }
    int64_t *c = lm->held.index;
    lm->sn = sn;
    lm->sn.start = c + nindex;
    lm->sn.rptr = lm->sn.start + sn.nsn + 1;
    lm->sn.rows = lm->sn.rptr + sn.nsn + 1;
    memcpy(lm->sn.start, sn.start, sizeof(int64_t) * (sn.nsn + 1));
    memcpy(lm->sn.rptr, sn.rptr, sizeof(int64_t) * (sn.nsn + 1));
    memcpy(lm->sn.rows, sn.rows, sizeof(int64_t) * nrows);
    supernodes_free(&sn);
    lm->supernodal = 1;
    return 1;
}

PyDoc_STRVAR(lmm_model_doc,
"lmm_model(p1, nlevels, tril, rterm, M11, ptr, rows, M21, M22, p, dense, nobs, REML, logw,\n"
"          ntheta, supernodal) -> capsule\n\n"
"An LMM's cross-products (see lmm.c): term 1 of p1 columns and `nlevels` levels, its θ at\n"
"the (a, b) pairs `tril` (int64, flat), the later terms' θ index per row of S̄ (`rterm`,\n"
"int64; -1 for the p + 1 rows of X and ỹ), M₁₁ (nlevels·p1·p1), each level's rows of M₂₁\n"
"(`ptr`, `rows`, int64) and their values `M21`, M₂₂ (m₂ × m₂); `dense`: every level lists\n"
"all m₂ rows; `supernodal` (with a sparse coupling only): S̄ factored by supernodes in its\n"
"rows' order (see lmm_order).  The index arrays are copied and checked.");

static PyObject *py_lmm_model(PyObject *self, PyObject *args)
{
    PyObject *const *a = unpack(args, "lmm_model", 16);
    Py_ssize_t p1, l1, p, nobs, ntheta;
    int dense, REML, supernodal;
    double logw;
    if (!a || !size_arg(a[0], "p1", &p1) || !size_arg(a[1], "nlevels", &l1) ||
        !size_arg(a[9], "p", &p) || !flag_arg(a[10], "dense", &dense) ||
        !size_arg(a[11], "nobs", &nobs) || !flag_arg(a[12], "REML", &REML) ||
        !float_arg(a[13], "logw", 1, &logw) || !size_arg(a[14], "ntheta", &ntheta) ||
        !flag_arg(a[15], "supernodal", &supernodal))
        return NULL;
    if (supernodal && dense) {
        PyErr_SetString(PyExc_ValueError, "supernodal: only with a sparse coupling (dense false)");
        return NULL;
    }
    if (p1 < 1 || p1 > MAX_P1) {
        PyErr_Format(PyExc_ValueError, "p1: expected 1 to %d columns, got %zd", MAX_P1, p1);
        return NULL;
    }
    if (!load_lapack())
        return NULL;
    const Py_ssize_t nth1 = p1 * (p1 + 1) / 2;
    LmmModel *lm = PyMem_Calloc(1, sizeof(LmmModel));
    if (!lm)
        return PyErr_NoMemory();
    Buffers *bs = &lm->held.bs, callers, *ix = &callers;   /* the caller's index arrays */
    ix->used = 0;
    const int64_t *tril = array(ix, a[2], "tril", 2 * nth1, VECTOR, 0, 1);
    const int64_t *rterm = tril ? array(ix, a[3], "rterm", ANY, VECTOR, 0, 1) : NULL;
    const Py_ssize_t m2 = rterm ? last_rows(ix) : 0;
    const int64_t *ptr = rterm ? array(ix, a[5], "ptr", muladd(l1, 1, 1), VECTOR, 0, 1) : NULL;
    const int64_t *rows = ptr ? array(ix, a[6], "rows", ANY, VECTOR, 0, 1) : NULL;
    if (!rows)
        goto fail;
    const Py_ssize_t nnz = last_rows(ix);
    const Py_ssize_t nindex = muladd(1, 2 * nth1 + m2 + l1 + 1, nnz);
    if (nindex < 0 || !(lm->held.index = PyMem_Malloc(sizeof(int64_t) * (nindex + 1)))) {
        PyErr_NoMemory();
        goto fail;
    }
    int64_t *c = lm->held.index;   /* copy, then check the copies */
    memcpy(c, tril, sizeof(int64_t) * 2 * nth1);
    memcpy(c + 2 * nth1, rterm, sizeof(int64_t) * m2);
    memcpy(c + 2 * nth1 + m2, ptr, sizeof(int64_t) * (l1 + 1));
    memcpy(c + 2 * nth1 + m2 + l1 + 1, rows, sizeof(int64_t) * nnz);
    release(ix);
    lm->tril = c;
    lm->rterm = c + 2 * nth1;
    lm->ptr = c + 2 * nth1 + m2;
    lm->rows = c + 2 * nth1 + m2 + l1 + 1;
    if (m2 < 1 || p > m2 - 1 || m2 > INT_MAX || muladd(l1, p1, 0) > INT_MAX ||
        ntheta < nth1) {
        PyErr_Format(PyExc_ValueError, "rterm: expected p + 1 = %zd to %d rows of S and ntheta "
                     ">= %zd, got %zd rows and ntheta %zd", p + 1, INT_MAX, nth1, m2, ntheta);
        goto fail;
    }
    const Py_ssize_t q2 = m2 - p - 1;
    /* term 1's θ fills its factor column by column (lme4's order): each pair exactly once */
    for (Py_ssize_t j = 0, b = 0, a = 0; j < nth1; j++) {
        if (lm->tril[2 * j] != a || lm->tril[2 * j + 1] != b) {
            PyErr_Format(PyExc_ValueError, "tril: pair %zd must be (%zd, %zd), the lower "
                         "triangle of a %zd x %zd factor column by column", j, a, b, p1, p1);
            goto fail;
        }
        if (++a == p1)
            a = ++b;
    }
    for (Py_ssize_t i = 0; i < m2; i++)
        if (i < q2 ? lm->rterm[i] < nth1 || lm->rterm[i] >= ntheta : lm->rterm[i] != -1) {
            PyErr_Format(PyExc_ValueError, "rterm: row %zd must be %s", i,
                         i < q2 ? "a later term's theta index" : "-1 (the rows of X and y)");
            goto fail;
        }
    if (lm->ptr[0] != 0 || lm->ptr[l1] != nnz) {
        PyErr_Format(PyExc_ValueError, "ptr: expected offsets from 0 to %zd", nnz);
        goto fail;
    }
    for (Py_ssize_t k = 0; k < l1; k++) {
        const int64_t lo = lm->ptr[k], hi = lm->ptr[k + 1];
        int ok = lo <= hi && hi <= nnz && hi - lo >= p + 1 && (!dense || hi - lo == m2);
        for (int64_t e = lo; ok && e < hi; e++)
            ok = lm->rows[e] >= 0 && lm->rows[e] < m2 && (e == lo || lm->rows[e] > lm->rows[e - 1]);
        for (Py_ssize_t t = 0; ok && t <= p; t++)
            ok = lm->rows[hi - 1 - p + t] == q2 + t;
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "rows: level %zd's rows must increase within [0, %zd) "
                         "and end with the rows of X and y%s", k, m2, dense ? ", all of them" : "");
            goto fail;
        }
    }
    double *M11, *M21, *M22;
    if (!optional(bs, a[4], "M11", muladd(l1, p1 * p1, 0), FLAT, 0, 1, &M11) ||
        !optional(bs, a[7], "M21", muladd(p1, nnz, 0), FLAT, 0, 1, &M21) ||
        !optional(bs, a[8], "M22", m2, m2, 0, 1, &M22))
        goto fail;
    if (REML ? nobs <= p : nobs < 1) {
        PyErr_Format(PyExc_ValueError, "nobs: expected more than %zd observations, got %zd",
                     REML ? p : 0, nobs);
        goto fail;
    }
    lm->p1 = p1, lm->l1 = l1, lm->q1 = l1 * p1, lm->nth1 = nth1, lm->ntheta = ntheta;
    lm->m2 = m2, lm->q2 = q2, lm->p = p, lm->nnz = nnz, lm->dense = dense, lm->REML = REML;
    lm->nobs = (double)nobs, lm->logw = logw;
    lm->M11 = M11, lm->M21 = M21, lm->M22 = M22;
    Py_ssize_t used = nindex;
    if (!take_m22(lm, &used) || (supernodal && !take_supernodes(lm, used))) {
        PyErr_NoMemory();
        goto fail;
    }
    PyObject *capsule = PyCapsule_New(lm, LMM_MODEL, held_free);
    if (capsule)
        return capsule;
fail:
    release(ix);
    release(bs);
    PyMem_Free(lm->held.index);
    PyMem_Free(lm);
    return NULL;
}

PyDoc_STRVAR(lmm_classes_doc,
"lmm_classes(d, nlev, H, M22, rterm, p, nobs, REML, logw, ntheta) -> capsule\n\n"
"An LMM whose first term is scalar, in the classes form (see evaluate_classes in lmm.c):\n"
"class c's nlev[c] levels (int64) share M₁₁,ₖ = d[c] (>= 0), H (K·m₂·m₂, K = len(d)) holds\n"
"each class's Σ cₖcₖᵀ, M₂₂ (m₂ × m₂) and `rterm` are lmm_model's.  The index arrays are\n"
"copied and checked.");

static PyObject *py_lmm_classes(PyObject *self, PyObject *args)
{
    PyObject *const *a = unpack(args, "lmm_classes", 10);
    Py_ssize_t p, nobs, ntheta;
    int REML;
    double logw;
    if (!a || !size_arg(a[5], "p", &p) || !size_arg(a[6], "nobs", &nobs) ||
        !flag_arg(a[7], "REML", &REML) || !float_arg(a[8], "logw", 1, &logw) ||
        !size_arg(a[9], "ntheta", &ntheta))
        return NULL;
    if (!load_lapack())
        return NULL;
    LmmModel *lm = PyMem_Calloc(1, sizeof(LmmModel));
    if (!lm)
        return PyErr_NoMemory();
    Buffers *bs = &lm->held.bs, callers, *ix = &callers;
    ix->used = 0;
    const int64_t *nlev = array(ix, a[1], "nlev", ANY, VECTOR, 0, 1);
    const Py_ssize_t K = nlev ? last_rows(ix) : 0;
    const int64_t *rterm = nlev ? array(ix, a[4], "rterm", ANY, VECTOR, 0, 1) : NULL;
    if (!rterm)
        goto fail;
    const Py_ssize_t m2 = last_rows(ix), nindex = muladd(1, K, m2);
    if (nindex < 0 || !(lm->held.index = PyMem_Malloc(sizeof(int64_t) * (nindex + 1)))) {
        PyErr_NoMemory();
        goto fail;
    }
    int64_t *c = lm->held.index;   /* copy, then check the copies */
    memcpy(c, nlev, sizeof(int64_t) * K);
    memcpy(c + K, rterm, sizeof(int64_t) * m2);
    release(ix);
    lm->nlev = c;
    lm->rterm = c + K;
    if (K < 1 || m2 < 1 || p > m2 - 1 || m2 > INT_MAX || ntheta < 1) {
        PyErr_Format(PyExc_ValueError, "lmm_classes: expected at least one class, p + 1 = %zd "
                     "to %d rows of S and ntheta >= 1, got %zd classes, %zd rows and ntheta "
                     "%zd", p + 1, INT_MAX, K, m2, ntheta);
        goto fail;
    }
    Py_ssize_t nlevels = 0;
    for (Py_ssize_t k = 0; k < K; k++) {
        if (lm->nlev[k] < 1 || lm->nlev[k] > MAX_ITEMS - nlevels) {
            PyErr_Format(PyExc_ValueError, "nlev: class %zd must have 1 to %zd levels", k,
                         (Py_ssize_t)MAX_ITEMS - nlevels);
            goto fail;
        }
        nlevels += lm->nlev[k];
    }
    const Py_ssize_t q2 = m2 - p - 1;
    for (Py_ssize_t i = 0; i < m2; i++)
        if (i < q2 ? lm->rterm[i] < 1 || lm->rterm[i] >= ntheta : lm->rterm[i] != -1) {
            PyErr_Format(PyExc_ValueError, "rterm: row %zd must be %s", i,
                         i < q2 ? "a later term's theta index" : "-1 (the rows of X and y)");
            goto fail;
        }
    double *d, *H, *M22;
    if (!optional(bs, a[0], "d", K, VECTOR, 0, 1, &d) ||
        !optional(bs, a[2], "H", muladd(K, muladd(m2, m2, 0), 0), FLAT, 0, 1, &H) ||
        !optional(bs, a[3], "M22", m2, m2, 0, 1, &M22))
        goto fail;
    for (Py_ssize_t k = 0; k < K; k++)
        if (!(d[k] >= 0.0 && d[k] < INFINITY)) {
            PyErr_Format(PyExc_ValueError, "d: class %zd's value must be finite and >= 0", k);
            goto fail;
        }
    if (REML ? nobs <= p : nobs < 1) {
        PyErr_Format(PyExc_ValueError, "nobs: expected more than %zd observations, got %zd",
                     REML ? p : 0, nobs);
        goto fail;
    }
    lm->p1 = 1, lm->l1 = nlevels, lm->q1 = nlevels, lm->nth1 = 1, lm->ntheta = ntheta;
    lm->m2 = m2, lm->q2 = q2, lm->p = p, lm->REML = REML, lm->K = K;
    lm->nobs = (double)nobs, lm->logw = logw;
    lm->dcls = d, lm->H = H, lm->M22 = M22;
    PyObject *capsule = PyCapsule_New(lm, LMM_MODEL, held_free);
    if (capsule)
        return capsule;
fail:
    release(ix);
    release(bs);
    PyMem_Free(lm->held.index);
    PyMem_Free(lm);
    return NULL;
}

PyDoc_STRVAR(lmm_evaluate_doc,
"lmm_evaluate(model, theta, g) -> F\n\n"
"The profiled criterion of an lmm_model at θ (+inf where Ā is not positive definite, or,\n"
"with g, where the gradient is not finite), with its gradient written into g unless g is\n"
"None.");

static PyObject *py_lmm_evaluate(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "lmm_evaluate", 3);
    const LmmModel *lm;
    if (!a || !(lm = model_of(a[0], LMM_MODEL, "lmm_model")))
        return NULL;
    double *theta, *g;
    TAKE(theta, a[1], "theta", lm->ntheta, VECTOR, 0, 1);
    TAKE(g, a[2], "g", lm->ntheta, VECTOR, 1, 0);
    if (!disjoint(bs, &lm->held.bs))
        goto fail;
    Work w = {0};
    if (!work_alloc(&w, lm)) {
        release(bs);
        return PyErr_NoMemory();
    }
    double F;
    Py_BEGIN_ALLOW_THREADS
    F = lmm_value(&w, theta, g);
    Py_END_ALLOW_THREADS
    work_free(&w);
    release(bs);
    return PyFloat_FromDouble(F);
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(lmm_solution_doc,
"lmm_solution(model, theta, u, delta, RX) -> (F, ldL2, ldRX2, pwrss, term1)\n\n"
"The fit's pieces at θ: the criterion F (+inf where Ā is not positive definite, and then\n"
"nothing written), log|L_θ|², log|R_X|² and r² = pwrss, with the modes û into u (q; the\n"
"later terms' in S̄'s row order, the supernodal order where there is one), β̂ − β₀ into\n"
"delta (p) and R_X into RX (p × p, upper).  `term1` is False for the classes form,\n"
"which keeps no level's coupling: u's first q₁ entries (term 1's modes) are then not\n"
"written.");

static PyObject *py_lmm_solution(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "lmm_solution", 5);
    const LmmModel *lm;
    if (!a || !(lm = model_of(a[0], LMM_MODEL, "lmm_model")))
        return NULL;
    double *theta, *u, *delta, *RX;
    TAKE(theta, a[1], "theta", lm->ntheta, VECTOR, 0, 1);
    TAKE(u, a[2], "u", muladd(1, lm->q1, lm->q2), VECTOR, 1, 1);
    TAKE(delta, a[3], "delta", lm->p, VECTOR, 1, 1);
    TAKE(RX, a[4], "RX", lm->p, lm->p, 1, 1);
    if (!disjoint(bs, &lm->held.bs))
        goto fail;
    Work w = {0};
    if (!work_alloc(&w, lm)) {
        release(bs);
        return PyErr_NoMemory();
    }
    double F, ldL2 = NAN, ldRX2 = NAN, pwrss = NAN;
    Py_BEGIN_ALLOW_THREADS
    F = lmm_value(&w, theta, NULL);
    if (F != INFINITY)
        F = solve_modes(&w, theta, u, delta, RX, &ldL2, &ldRX2, &pwrss);
    Py_END_ALLOW_THREADS
    work_free(&w);
    release(bs);
    return Py_BuildValue("(ddddN)", F, ldL2, ldRX2, pwrss, PyBool_FromLong(!lm->K));
fail:
    release(bs);
    return NULL;
}

static double lmm_objective(void *ctx, const double *x, double *g, int *error)
{
    (void)error;
    return lmm_value(ctx, x, g);
}

PyDoc_STRVAR(lmm_minimize_doc,
"lmm_minimize(model, x, g, f0, gtol, dtol, xtol, max_iter)\n"
"    -> (code, converged, f, nfev, gmax, decrement, dmax)\n\n"
"BFGS (glmm.optimize.bfgs) on an lmm_model's criterion over θ: x holds θ₀ and receives the\n"
"final point, g the gradient there (with ∇F(θ₀) in it when f0 is not None).");

static PyObject *py_lmm_minimize(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "lmm_minimize", 8);
    const LmmModel *lm;
    if (!a || !(lm = model_of(a[0], LMM_MODEL, "lmm_model")))
        return NULL;
    double gtol, dtol, xtol, f = NAN, *x, *g;
    Py_ssize_t max_iter;
    if (!float_arg(a[4], "gtol", 1, &gtol) || !float_arg(a[5], "dtol", 1, &dtol) ||
        !float_arg(a[6], "xtol", 1, &xtol) || !size_arg(a[7], "max_iter", &max_iter) ||
        (a[3] != Py_None && !float_arg(a[3], "f0", 0, &f)))
        return NULL;
    TAKE(x, a[1], "x", lm->ntheta, VECTOR, 1, 1);
    TAKE(g, a[2], "g", lm->ntheta, VECTOR, 1, 1);
    if (!disjoint(bs, &lm->held.bs))
        goto fail;
    Work w = {0};
    if (!work_alloc(&w, lm)) {
        release(bs);
        return PyErr_NoMemory();
    }
    BfgsOut out = {.x = x, .g = g, .f = f};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = bfgs(lmm_objective, &w, lm->ntheta, NULL, a[3] != Py_None, gtol, dtol, xtol,
                  (long)max_iter, &out);
    Py_END_ALLOW_THREADS
    work_free(&w);
    release(bs);
    return bfgs_result(status, &out);
fail:
    release(bs);
    return NULL;
}

/* G (order m₂, emptied first) ← S̄'s graph with its first q2 rows in the order perm (inv: their
 * inverse, filled here): the cliques rows[ptr[k]:ptr[k+1]], X's and ỹ's rows dense. */
static void permuted_graph(Graph *G, const int64_t *perm, int64_t *inv, Py_ssize_t nlev,
                           const int64_t *ptr, const int64_t *rows, Py_ssize_t q2)
{
    const Py_ssize_t m2 = G->n, words = G->words;
    memset(G->bits, 0, sizeof(uint64_t) * m2 * words);
    for (Py_ssize_t i = 0; i < q2; i++)
        inv[perm[i]] = i;
    for (Py_ssize_t k = 0; k < nlev; k++)
        for (int64_t x = ptr[k]; x < ptr[k + 1]; x++)
            for (int64_t y = ptr[k]; y < x; y++) {
                const int64_t i = inv[rows[x]], j = inv[rows[y]];
                G->bits[i * words + (j >> 6)] |= (uint64_t)1 << (j & 63);
                G->bits[j * words + (i >> 6)] |= (uint64_t)1 << (i & 63);
            }
    for (Py_ssize_t i = q2; i < m2; i++)
        for (Py_ssize_t j = 0; j < i; j++) {
            G->bits[i * words + (j >> 6)] |= (uint64_t)1 << (j & 63);
            G->bits[j * words + (i >> 6)] |= (uint64_t)1 << (i & 63);
        }
}

/* lmm_gram's smallest pivot² of XᵀWX's Cholesky factor, relative to its diagonal entry */
#define GRAM_PIVOT 1e-10

/* M's last row and column, A's last column shifted to ỹ = a_last − Xβ₀ (X: the p entries
 * before it in each row): AᵀWỹ, in the order of the rows. */
static void gram_shifted(Py_ssize_t n, Py_ssize_t k, Py_ssize_t m, Py_ssize_t p,
                         const int64_t *col, const double *val, const double *w,
                         const double *beta0, double *M)
{
    double *v = M + (m - 1) * m;   /* the last row, then copied to the last column */
    memset(v, 0, sizeof(double) * (size_t)m);
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t *ci = col + i * k;
        const double *vi = val + i * k, wi = w ? w[i] : 1.0;
        double yt = vi[k - 1];
        for (Py_ssize_t j = 0; j < p; j++)
            yt -= vi[k - 1 - p + j] * beta0[j];
        for (Py_ssize_t j = 0; j < k - 1; j++)
            v[ci[j]] += vi[j] * yt * wi;
        v[m - 1] += yt * yt * wi;
    }
    for (Py_ssize_t c = 0; c < m - 1; c++)
        M[c * m + m - 1] = v[c];
}

PyDoc_STRVAR(lmm_gram_doc,
"lmm_gram(n, k, m, p, col, val, w, M, beta0) -> bool\n\n"
"An LMM's cross-products M = AᵀWA (float64, m × m, overwritten) of A = [Z X ỹ], n × m,\n"
"whose row i holds val[i, j] at column col[i, j] (n × k each, int64 and float64; col in\n"
"[0, m), distinct within a row), W = diag(w) (float64, n; None: the identity).  A row's last\n"
"p + 1 entries are X's row and y − o at the last p + 1 columns, and ỹ = y − o − Xβ₀ with\n"
"beta0 (float64, p, written) = β₀ solving M's normal equations of [X, y − o] by Cholesky;\n"
"False where XᵀWX is not positive definite, or a pivot² falls below 1e-10 of its diagonal\n"
"entry (M is then AᵀWA with y − o unshifted and beta0 unspecified; p = 0: no shift).  Each entry is summed in the order of the rows, of the products (aᵢⱼaᵢₗ)wᵢ: M\n"
"is exactly symmetric.");

static PyObject *py_lmm_gram(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "lmm_gram", 9);
    Py_ssize_t n, k, m, p;
    if (!a || !size_arg(a[0], "n", &n) || !size_arg(a[1], "k", &k) || !size_arg(a[2], "m", &m)
        || !size_arg(a[3], "p", &p))
        return NULL;
    if (k < p + 1 || m < p + 1) {
        PyErr_Format(PyExc_ValueError, "p: expected at most k − 1 = %zd and m − 1 = %zd, got %zd",
                     k - 1, m - 1, p);
        return NULL;
    }
    const int64_t *col = array(bs, a[4], "col", n, k, 0, 1);
    const double *val = col ? array(bs, a[5], "val", n, k, 0, 0) : NULL;
    double *w = NULL, *M = NULL, *beta0 = NULL;
    if (!val)
        goto fail;
    TAKE(w, a[6], "w", n, VECTOR, 0, 0);
    TAKE(M, a[7], "M", m, m, 1, 1);
    TAKE(beta0, a[8], "beta0", p, VECTOR, 1, 1);
    if (!disjoint(bs, NULL) || !in_range(col, n * k, m, "col", "columns", -1))
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t *ci = col + i * k;
        for (Py_ssize_t j = 0; j < k; j++)
            for (Py_ssize_t l = 0; l < j; l++)
                if (ci[j] == ci[l]) {
                    PyErr_Format(PyExc_ValueError, "col: row %zd gives column %lld twice", i,
                                 (long long)ci[j]);
                    goto fail;
                }
        for (Py_ssize_t j = 0; j <= p; j++)
            if (ci[k - 1 - p + j] != m - 1 - p + j) {
                PyErr_Format(PyExc_ValueError, "col: row %zd's last %zd entries are not the "
                             "columns %zd to %zd", i, p + 1, m - 1 - p, m - 1);
                goto fail;
            }
    }
    double *F = malloc(sizeof(double) * (size_t)(p * p + 1));
    if (!F) {
        release(bs);
        return PyErr_NoMemory();
    }
    int pd = 1;
    Py_BEGIN_ALLOW_THREADS
    memset(M, 0, sizeof(double) * (size_t)(m * m));
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t *ci = col + i * k;
        const double *vi = val + i * k, wi = w ? w[i] : 1.0;
        for (Py_ssize_t j = 0; j < k; j++) {
            double *row = M + ci[j] * m;
            for (Py_ssize_t l = 0; l < k; l++)
                row[ci[l]] += vi[j] * vi[l] * wi;
        }
    }
    if (p) {   /* β₀ from F = XᵀWX (M's X block) and XᵀW(y − o) */
        const Py_ssize_t x0 = m - 1 - p;
        for (Py_ssize_t r = 0; r < p; r++) {
            memcpy(F + r * p, M + (x0 + r) * m + x0, sizeof(double) * (size_t)p);
            beta0[r] = M[(x0 + r) * m + m - 1];
        }
        pd = cholesky_upper(F, p);
        /* a pivot below GRAM_PIVOT of its column's diagonal: X is nearly rank deficient, and
         * β₀ would be ill-determined (the caller then takes least squares) */
        for (Py_ssize_t r = 0; pd && r < p; r++)
            pd = F[r * p + r] * F[r * p + r] >= GRAM_PIVOT * M[(x0 + r) * m + x0 + r];
        if (pd) {
            cholesky_solve(F, p, beta0);
            gram_shifted(n, k, m, p, col, val, w, beta0, M);
        }
    }
    Py_END_ALLOW_THREADS
    free(F);
    release(bs);
    return PyBool_FromLong(pd);
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(lmm_order_doc,
"lmm_order(ptr, rows, q2, m2, perm) -> flops\n\n"
"A minimum-degree order of S̄'s first q2 rows (the later terms' modes), in the postorder of\n"
"its elimination tree, for lmm_model's supernodal factor of S̄ (order m2): S̄'s pattern among\n"
"those rows is the cliques rows[ptr[k]:ptr[k+1]] (int64, in [0, q2): the rows each level of\n"
"term 1 meets, and M₂₂'s pairs); perm (int64, q2) receives the old index of each row in the\n"
"new order.  Returns the estimated flops of S̄'s supernodal factor in that order, with its last\n"
"m₂ − q2 rows (X's and ỹ's) taken as dense: m₂³/3 would be one dense factor.");

static PyObject *py_lmm_order(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "lmm_order", 5);
    Py_ssize_t q2, m2;
    if (!a || !size_arg(a[2], "q2", &q2) || !size_arg(a[3], "m2", &m2))
        return NULL;
    if (q2 > m2 - 1 || m2 > MAX_ORDER_GRAPH) {
        PyErr_Format(PyExc_ValueError, "m2: expected more than q2 = %zd rows and at most %d, "
                     "got %zd", q2, MAX_ORDER_GRAPH, m2);
        return NULL;
    }
    const int64_t *ptr = array(bs, a[0], "ptr", ANY, VECTOR, 0, 1);
    const Py_ssize_t nlev = ptr ? last_rows(bs) - 1 : 0;
    const int64_t *rows = ptr ? array(bs, a[1], "rows", ANY, VECTOR, 0, 1) : NULL;
    const Py_ssize_t nnz = rows ? last_rows(bs) : 0;
    if (!rows)
        goto fail;
    int64_t *perm = array(bs, a[4], "perm", q2, VECTOR, 1, 1);
    if (!perm || !disjoint(bs, NULL))
        goto fail;
    if (nlev < 0 || ptr[0] != 0 || ptr[nlev] != nnz) {
        PyErr_Format(PyExc_ValueError, "ptr: expected offsets from 0 to %zd", nnz);
        goto fail;
    }
    for (Py_ssize_t k = 0; k < nlev; k++)
        if (ptr[k + 1] < ptr[k]) {
            PyErr_Format(PyExc_ValueError, "ptr: offset %zd decreases", k + 1);
            goto fail;
        }
    if (!in_range(rows, nnz, q2, "rows", "rows", -1))
        goto fail;
    Graph g = {0}, h = {0};
    Supernodes sn = {0};
    int64_t *inv = malloc(sizeof(int64_t) * (m2 + 1)), *post = malloc(sizeof(int64_t) * (m2 + 1));
    int ok = inv && post && graph_alloc(&g, q2) && graph_alloc(&h, m2);
    double flops = 0.0;
    Py_BEGIN_ALLOW_THREADS
    if (ok) {
        graph_of(&g, nlev, ptr, rows, NULL, 0);
        ok = min_degree(&g, perm);
    }
    if (ok) {   /* then the elimination tree's postorder (the same fill) */
        permuted_graph(&h, perm, inv, nlev, ptr, rows, q2);
        ok = etree_postorder(&h, post);
    }
    if (ok) {
        int fixed = 1;   /* X's and ỹ's rows, dense and last, stay last */
        for (Py_ssize_t i = q2; i < m2; i++)
            fixed &= post[i] == i;
        if (fixed) {
            for (Py_ssize_t i = 0; i < q2; i++)
                inv[i] = perm[post[i]];
            memcpy(perm, inv, sizeof(int64_t) * q2);
        }
        permuted_graph(&h, perm, inv, nlev, ptr, rows, q2);
        ok = supernodes_of(&h, &sn);
        flops = sn.flops;
    }
    Py_END_ALLOW_THREADS
    supernodes_free(&sn);
    graph_free(&g);
    graph_free(&h);
    free(inv);
    free(post);
    release(bs);
    if (!ok)
        return PyErr_NoMemory();
    return PyFloat_FromDouble(flops);
fail:
    release(bs);
    return NULL;
}

PyMethodDef LMM_METHODS[] = {
    {"lmm_order", py_lmm_order, METH_VARARGS, lmm_order_doc},
    {"lmm_gram", py_lmm_gram, METH_VARARGS, lmm_gram_doc},
    {"lmm_model", py_lmm_model, METH_VARARGS, lmm_model_doc},
    {"lmm_classes", py_lmm_classes, METH_VARARGS, lmm_classes_doc},
    {"lmm_evaluate", py_lmm_evaluate, METH_VARARGS, lmm_evaluate_doc},
    {"lmm_solution", py_lmm_solution, METH_VARARGS, lmm_solution_doc},
    {"lmm_minimize", py_lmm_minimize, METH_VARARGS, lmm_minimize_doc},
    {NULL, NULL, 0, NULL},
};
