/* One vector-valued random-effects term (x₁ + … + x_p₁ | g), the only term of a GLMM with a
 * canonical pair, and the whole BFGS search over F₀ (nAGQ = 0) or F₁ (nAGQ = 1) in the core
 * (glmm.objectives.block_term; the formulas are glmm/objectives/pirls.py's and
 * glmm/objectives/gradient.py's with G block diagonal).
 *
 * With T(θ) the term's p₁ × p₁ lower triangular factor and Aᵢ = XᵢT (row i of ZΛ, at
 * column block fᵢ), G = ΛᵀZᵀWZΛ + I has one block per level,
 *
 *     Gⱼ = I + Σ_{i∈j} Wᵢ AᵢᵀAᵢ = RⱼᵀRⱼ,
 *
 * so that PIRLS's system, the leverages hᵢ = Aᵢ Gⱼ⁻¹ Aᵢᵀ and the gradient's extra solve are
 * per-level p₁ × p₁ solves; β's block, when β is profiled (nAGQ = 0), is eliminated by its
 * Schur complement R_XᵀR_X = XᵀWX − Σⱼ CⱼᵀGⱼ⁻¹Cⱼ, Cⱼ = Σ_{i∈j} Wᵢ AᵢᵀXᵢ.  The search's
 * evaluations follow ObjectiveFunction._evaluate: PIRLS from the last mode's first-order
 * prediction (glmm.objectives.pirls.predict) when θ moved by at most PREDICT_RANGE, else from
 * the last mode rescaled to keep b = Λu, and from u = 0 where that fails. */

#include "response.h"

#define MAX_P1 16

static const char BLOCK_MODEL[] = "glmm._core.BlockModel";

typedef struct {
    Held held;
    Py_ssize_t n, nlev, p1, p, nth;
    const int64_t *f;
    const double *Xi, *X, *o;   /* n × p₁ (the term's columns), n × p, n */
    Resp resp;
} BlockModel;

/* One mode: θ, β, u, the factors Rⱼ (upper, row-major), (joint) C, G⁻¹C and R_X, and the
 * response at the mode. */
typedef struct {
    double *x, *theta, *beta, *u, *R, *C, *GiC, *RX;   /* x: the search's point */
    Working w;
} BlockMode;

/* T(θ) (row-major, lower) from θ in lme4's order: the lower triangle column by column. */
static void fill_T(Py_ssize_t p1, const double *theta, double *T)
{
    memset(T, 0, sizeof(double) * p1 * p1);
    for (Py_ssize_t b = 0, j = 0; b < p1; b++)
        for (Py_ssize_t a = b; a < p1; a++)
            T[a * p1 + b] = theta[j++];
}

/* A = Xᵢ T for every row (n × p₁). */
static void rows_of(const BlockModel *m, const double *T, double *A)
{
    const Py_ssize_t p1 = m->p1;
    for (Py_ssize_t i = 0; i < m->n; i++) {
        const double *xi = m->Xi + i * p1;
        double *ai = A + i * p1;
        for (Py_ssize_t b = 0; b < p1; b++) {
            double v = 0.0;
            for (Py_ssize_t a = b; a < p1; a++)
                v += xi[a] * T[a * p1 + b];
            ai[b] = v;
        }
    }
}

static inline double dot(const double *a, const double *b, Py_ssize_t k)
{
    double v = 0.0;
    for (Py_ssize_t c = 0; c < k; c++)
        v += a[c] * b[c];
    return v;
}

/* The per-level blocks at weights W: Gⱼ factored into Rⱼ, and (C given) Cⱼ (p₁ × p,
 * row-major), G⁻¹C and R_X (XᵀWX − Σ CⱼᵀGⱼ⁻¹Cⱼ, factored).  OK, SYSTEM_NOT_FINITE (a Gⱼ
 * not positive definite) or RX_NOT_PD. */
static int blocks(const BlockModel *m, const double *A, const double *W, double *R, double *C,
                  double *GiC, double *RX)
{
    const Py_ssize_t n = m->n, nlev = m->nlev, p1 = m->p1, pp = p1 * p1, p = m->p;
    memset(R, 0, sizeof(double) * nlev * pp);
    if (C) {
        memset(C, 0, sizeof(double) * nlev * p1 * p);
        memset(RX, 0, sizeof(double) * p * p);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_ssize_t j = m->f[i];
        const double *ai = A + i * p1, wi = W[i];
        double *Rj = R + j * pp;
        for (Py_ssize_t a = 0; a < p1; a++) {
            const double wa = wi * ai[a];
            for (Py_ssize_t b = a; b < p1; b++)
                Rj[a * p1 + b] += wa * ai[b];
        }
        if (C) {
            const double *Xr = m->X + i * p;
            double *Cj = C + j * p1 * p;
            for (Py_ssize_t a = 0; a < p1; a++) {
                const double wa = wi * ai[a];
                for (Py_ssize_t k = 0; k < p; k++)
                    Cj[a * p + k] += wa * Xr[k];
            }
            for (Py_ssize_t k = 0; k < p; k++)
                for (Py_ssize_t l = k; l < p; l++)
                    RX[k * p + l] += wi * Xr[k] * Xr[l];
        }
    }
    double col[MAX_P1];
    for (Py_ssize_t j = 0; j < nlev; j++) {
        double *Rj = R + j * pp;
        for (Py_ssize_t a = 0; a < p1; a++)
            Rj[a * p1 + a] += 1.0;
        if (!cholesky_upper(Rj, p1))
            return SYSTEM_NOT_FINITE;
        if (!C)
            continue;
        const double *Cj = C + j * p1 * p;
        double *Gj = GiC + j * p1 * p;
        for (Py_ssize_t k = 0; k < p; k++) {   /* G⁻¹C, column by column */
            for (Py_ssize_t a = 0; a < p1; a++)
                col[a] = Cj[a * p + k];
            cholesky_solve(Rj, p1, col);
            for (Py_ssize_t a = 0; a < p1; a++)
                Gj[a * p + k] = col[a];
        }
        for (Py_ssize_t k = 0; k < p; k++)
            for (Py_ssize_t l = k; l < p; l++) {
                double v = 0.0;
                for (Py_ssize_t a = 0; a < p1; a++)
                    v += Cj[a * p + k] * Gj[a * p + l];
                RX[k * p + l] -= v;
            }
    }
    return C && !cholesky_upper(RX, p) ? RX_NOT_PD : OK;
}

/* The solve of the joint system [G, C; Cᵀ, XᵀWX][x_u; x_β] = [r_u; r_β] by the Schur
 * complement, in place (ru: q, rb: p), or G x_u = r_u (C NULL). */
static void solve_system(const BlockModel *m, const double *R, const double *C,
                         const double *GiC, const double *RX, double *ru, double *rb)
{
    const Py_ssize_t nlev = m->nlev, p1 = m->p1, pp = p1 * p1, p = m->p;
    for (Py_ssize_t j = 0; j < nlev; j++)
        cholesky_solve(R + j * pp, p1, ru + j * p1);   /* G⁻¹r_u */
    if (!C)
        return;
    for (Py_ssize_t k = 0; k < p; k++) {   /* x_β = R_X⁻¹R_X⁻ᵀ(r_β − CᵀG⁻¹r_u) */
        double v = rb[k];
        for (Py_ssize_t j = 0; j < nlev; j++)
            for (Py_ssize_t a = 0; a < p1; a++)
                v -= C[(j * p1 + a) * p + k] * ru[j * p1 + a];
        rb[k] = v;
    }
    cholesky_solve(RX, p, rb);
    for (Py_ssize_t j = 0; j < nlev; j++)   /* x_u = G⁻¹r_u − G⁻¹C x_β */
        for (Py_ssize_t a = 0; a < p1; a++)
            ru[j * p1 + a] -= dot(GiC + (j * p1 + a) * p, rb, p);
}

/* The trial point η + t·δη of the step-halving, for halve. */
typedef struct {
    const Resp *resp;
    const double *eta, *deta;
    Py_ssize_t n;
} BlockTrial;

static double block_trial(void *ctx, double t, Working *out)
{
    const BlockTrial *c = ctx;
    double sum = 0.0;
    for (Py_ssize_t i = 0; i < c->n; i++) {
        const double eta = c->eta[i] + t * c->deta[i];
        out->eta[i] = eta;
        sum += out->dev[i] = respond(c->resp, i, eta, &out->mu[i], &out->W[i], &out->s[i]);
    }
    return sum;
}

/* PIRLS at T from (u, β): ũ(θ, β) (joint == 0) or (ũ, β̃)(θ).  eta0 = o + Xβ at the start; A
 * the rows Xᵢ T.  On success u, β, md->w and the factors (R; joint: C, G⁻¹C, R_X) are the
 * mode's; *pdev is P there. */
static int block_pirls(const BlockModel *m, const double *A, int joint, const double *eta0,
                       BlockMode *md, double *pdev)
{
    const Py_ssize_t n = m->n, nlev = m->nlev, p1 = m->p1, q = nlev * p1, p = joint ? m->p : 0;
    double *u = md->u, *beta = md->beta;
    Scratch sc;
    if (!scratch_alloc(&sc, 6, n, muladd(3, q, muladd(2, p, 0))))
        return NO_MEMORY;
    Working cur = md->w, trial = {sc.row[0], sc.row[1], sc.row[2], sc.row[3], sc.row[4]};
    double *deta = sc.row[5], *grad = sc.small, *du = grad + q, *un = du + q;
    double *Xs = un + q, *db = Xs + p;
    int status = OK;
    double P = 0.0;
    for (Py_ssize_t j = 0; j < q; j++)
        P += u[j] * u[j];
    for (Py_ssize_t i = 0; i < n; i++)
        deta[i] = dot(A + i * p1, u + m->f[i] * p1, p1);
    BlockTrial start = {&m->resp, eta0, deta, n};
    P += block_trial(&start, 1.0, &cur);
    if (!isfinite(P)) {
        status = START_NOT_FINITE;
        goto done;
    }
    for (long it = 1; it <= MAX_ITER; it++) {
        status = blocks(m, A, cur.W, md->R, joint ? md->C : NULL, md->GiC, md->RX);
        if (status != OK)
            goto done;
        for (Py_ssize_t j = 0; j < q; j++)
            grad[j] = -u[j];
        for (Py_ssize_t k = 0; k < p; k++)
            Xs[k] = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) {   /* ΛᵀZᵀs − u, and Xᵀs */
            const double si = cur.s[i], *ai = A + i * p1;
            double *gj = grad + m->f[i] * p1;
            for (Py_ssize_t a = 0; a < p1; a++)
                gj[a] += si * ai[a];
            for (Py_ssize_t k = 0; k < p; k++)
                Xs[k] += m->X[i * m->p + k] * si;
        }
        memcpy(du, grad, sizeof(double) * q);
        memcpy(db, Xs, sizeof(double) * p);
        solve_system(m, md->R, joint ? md->C : NULL, md->GiC, md->RX, du, db);
        const double decrement = dot(du, grad, q) + dot(db, Xs, p);
        if (!isfinite(decrement)) {
            status = SYSTEM_NOT_FINITE;
            goto done;
        }
        if (decrement < DECREMENT_TOL * (P > 1.0 ? P : 1.0)) {   /* the mode: no step */
            *pdev = P;
            goto done;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            double d = dot(A + i * p1, du + m->f[i] * p1, p1);
            if (joint)
                d += dot(m->X + i * m->p, db, p);
            deta[i] = d;
        }
        BlockTrial bt = {&m->resp, cur.eta, deta, n};
        if (!halve(block_trial, &bt, &P, u, du, q, beta, db, p, un, &cur, &trial)) {
            status = HALVING_FAILED;
            goto done;
        }
    }
    status = NOT_CONVERGED;
done:
    keep(&md->w, &cur, n);
    scratch_free(&sc);
    return status;
}

/* ∂F₁/∂(θ, β) (joint == 0) or ∂F₀/∂θ (joint) at the mode md, canonical pair (O = W, κ = 1),
 * as glmm.objectives.gradient._gradient:
 *   vᵢ = Gⱼ⁻¹Aᵢᵀ, aᵢ = W'ᵢ Aᵢvᵢ, z = H⁻¹[ΛᵀZᵀa (; Xᵀa)], rᵢ = aᵢ − Wᵢ(Aᵢz_f (+ Xᵢz_β)) − 2sᵢ,
 *   ∂F/∂θₖ = Σᵢ Xᵢ[a](rᵢ u_f[b] + sᵢ z_f[b] + 2Wᵢ vᵢ[b])  for θₖ = T[a, b],   ∂F/∂β = Xᵀr. */
static int block_gradient(const BlockModel *m, const double *A, int joint, const BlockMode *md,
                          double *g)
{
    const Py_ssize_t n = m->n, nlev = m->nlev, p1 = m->p1, pp = p1 * p1, q = nlev * p1;
    const Py_ssize_t p = m->p, nth = m->nth;
    const int binomial = m->resp.kind == BINOMIAL_LOGIT;
    const Working *w = &md->w;
    double *buf = malloc(sizeof(double) * (n + q + p + 1));
    if (!buf)
        return NO_MEMORY;
    double *av = buf, *z = av + n, *zb = z + q, v[MAX_P1];
    memset(z, 0, sizeof(double) * (q + p));
    for (Py_ssize_t k = 0; k < nth; k++)
        g[k] = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {   /* v, a, ΛᵀZᵀa (Xᵀa) and the trace term */
        const Py_ssize_t j = m->f[i];
        const double *ai = A + i * p1, *xi = m->Xi + i * p1, Wi = w->W[i];
        memcpy(v, ai, sizeof(double) * p1);
        cholesky_solve(md->R + j * pp, p1, v);
        const double a = (binomial ? Wi * (1.0 - 2.0 * w->mu[i]) : Wi) * dot(ai, v, p1);
        av[i] = a;
        for (Py_ssize_t c = 0; c < p1; c++)
            z[j * p1 + c] += a * ai[c];
        if (joint)
            for (Py_ssize_t k = 0; k < p; k++)
                zb[k] += m->X[i * p + k] * a;
        for (Py_ssize_t b = 0, k = 0; b < p1; b++)
            for (Py_ssize_t ra = b; ra < p1; ra++)
                g[k++] += 2.0 * Wi * xi[ra] * v[b];
    }
    solve_system(m, md->R, joint ? md->C : NULL, md->GiC, md->RX, z, zb);
    if (!joint)
        for (Py_ssize_t k = 0; k < p; k++)
            g[nth + k] = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_ssize_t j = m->f[i];
        const double *ai = A + i * p1, *xi = m->Xi + i * p1, *uj = md->u + j * p1;
        const double *zj = z + j * p1, si = w->s[i];
        double fit = dot(ai, zj, p1);
        if (joint)
            fit += dot(m->X + i * p, zb, p);
        const double r = av[i] - w->W[i] * fit - 2.0 * si;
        for (Py_ssize_t b = 0, k = 0; b < p1; b++)
            for (Py_ssize_t ra = b; ra < p1; ra++)
                g[k++] += xi[ra] * (r * uj[b] + si * zj[b]);
        if (!joint)
            for (Py_ssize_t k = 0; k < p; k++)
                g[nth + k] += m->X[i * p + k] * r;
    }
    free(buf);
    return OK;
}

/* -- the search ------------------------------------------------------------------------------ */

typedef struct {
    const BlockModel *m;
    int joint;
    const double *beta_start, *Rw, *beta0;   /* Rw: the whitening R (β = β₀ + R⁻¹ζ) */
    double aic_offset;
    BlockMode *last, set[2];
    double *T, *Told, *A, *eta0, *gfull;
    long evaluations;
} BlockSearch;

/* The warm start of md at θ (T = bs->T, already T(θ)) from the last mode (glmm.objectives.base._warm_start):
 * the first-order prediction (pirls.predict) when θ moved by at most PREDICT_RANGE of its
 * size, else u rescaled so that b = Λu is kept (a nearly singular new T keeps u).  For the
 * prediction, with T_Δ = T − T_old and δηᵢ = XᵢT_Δ u_f (+ Xᵢ(β − β_old)),
 * r_u = Σ_{i∈j} (sᵢ XᵢT_Δ − Wᵢδηᵢ XᵢT_old) and [G, C; Cᵀ, XᵀWX][δu; δβ] = [r_u; −XᵀWδη]
 * (β given: G δu = r_u). */
static void warm_start(BlockSearch *bs, const double *theta, BlockMode *md)
{
    const BlockModel *m = bs->m;
    const BlockMode *last = bs->last;
    const Py_ssize_t n = m->n, p1 = m->p1, pp = p1 * p1, nlev = m->nlev, q = nlev * p1;
    const Py_ssize_t p = m->p, nth = m->nth;
    double dmax = 0.0, tmax = 0.0;
    for (Py_ssize_t k = 0; k < nth; k++) {
        dmax = fmax(dmax, fabs(theta[k] - last->theta[k]));
        tmax = fmax(tmax, fabs(last->theta[k]));
    }
    const double *T = bs->T;   /* T(θ), filled by the caller */
    double *Told = bs->Told;
    fill_T(p1, last->theta, Told);
    if (dmax > PREDICT_RANGE * (tmax > 0.1 ? tmax : 0.1)) {
        double scale = 0.0, M[MAX_P1 * MAX_P1], col[MAX_P1];
        for (Py_ssize_t k = 0; k < pp; k++)
            scale = fmax(scale, fabs(Told[k]));
        int ok = 1;
        for (Py_ssize_t a = 0; a < p1; a++)
            ok &= fabs(T[a * p1 + a]) > 1e-4 * (scale > 1.0 ? scale : 1.0);
        if (ok)   /* M = T⁻¹T_old by forward substitution, column by column */
            for (Py_ssize_t c = 0; c < p1; c++)
                for (Py_ssize_t a = 0; a < p1; a++) {
                    double v = Told[a * p1 + c];
                    for (Py_ssize_t e = 0; e < a; e++)
                        v -= T[a * p1 + e] * M[e * p1 + c];
                    M[a * p1 + c] = v / T[a * p1 + a];
                }
        for (Py_ssize_t j = 0; j < nlev; j++) {
            const double *uj = last->u + j * p1;
            for (Py_ssize_t a = 0; a < p1; a++)
                col[a] = ok ? dot(M + a * p1, uj, p1) : uj[a];
            memcpy(md->u + j * p1, col, sizeof(double) * p1);
        }
        if (bs->joint)
            memcpy(md->beta, last->beta, sizeof(double) * p);
        return;
    }
    double Td[MAX_P1 * MAX_P1], ad[MAX_P1], ao[MAX_P1];
    for (Py_ssize_t k = 0; k < pp; k++)
        Td[k] = T[k] - Told[k];
    double *ru = md->u, *rb = md->beta, *XWd = bs->gfull;   /* β: the joint case's δβ */
    memset(ru, 0, sizeof(double) * q);
    for (Py_ssize_t k = 0; k < p; k++)
        XWd[k] = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_ssize_t j = m->f[i];
        const double *xi = m->Xi + i * p1, *uj = last->u + j * p1;
        for (Py_ssize_t b = 0; b < p1; b++) {
            double vd = 0.0, vo = 0.0;
            for (Py_ssize_t a = b; a < p1; a++) {
                vd += xi[a] * Td[a * p1 + b];
                vo += xi[a] * Told[a * p1 + b];
            }
            ad[b] = vd;
            ao[b] = vo;
        }
        double d = dot(ad, uj, p1);
        if (!bs->joint)
            for (Py_ssize_t k = 0; k < p; k++)
                d += m->X[i * p + k] * (md->beta[k] - last->beta[k]);
        const double Wd = last->w.W[i] * d, si = last->w.s[i];
        double *rj = ru + j * p1;
        for (Py_ssize_t b = 0; b < p1; b++)
            rj[b] += si * ad[b] - Wd * ao[b];
        if (bs->joint)
            for (Py_ssize_t k = 0; k < p; k++)
                XWd[k] -= m->X[i * p + k] * Wd;
    }
    if (bs->joint) {
        memcpy(rb, XWd, sizeof(double) * p);
        solve_system(m, last->R, last->C, last->GiC, last->RX, ru, rb);
        for (Py_ssize_t k = 0; k < p; k++)
            rb[k] += last->beta[k];
    } else
        solve_system(m, last->R, NULL, NULL, NULL, ru, NULL);
    for (Py_ssize_t j = 0; j < q; j++)
        ru[j] += last->u[j];
}

/* F at x = θ (joint) or (θ, ζ), with its gradient in x; +∞ where PIRLS fails. */
static double block_objective(void *ctx, const double *x, double *g, int *error)
{
    BlockSearch *bs = ctx;
    const BlockModel *m = bs->m;
    const Py_ssize_t n = m->n, nlev = m->nlev, p1 = m->p1, q = nlev * p1, p = m->p;
    const Py_ssize_t nth = m->nth;
    const int joint = bs->joint;
    BlockMode *md = bs->last == &bs->set[0] ? &bs->set[1] : &bs->set[0];
    bs->evaluations++;
    memcpy(md->x, x, sizeof(double) * (joint ? nth : nth + p));
    memcpy(md->theta, x, sizeof(double) * nth);
    if (!joint) {   /* β = β₀ + R⁻¹ζ, by back substitution */
        for (Py_ssize_t k = p - 1; k >= 0; k--) {
            double v = x[nth + k];
            for (Py_ssize_t l = k + 1; l < p; l++)
                v -= bs->Rw[k * p + l] * md->beta[l];
            md->beta[k] = v / bs->Rw[k * p + k];
        }
        for (Py_ssize_t k = 0; k < p; k++)
            md->beta[k] += bs->beta0[k];
    }
    int status = OK;
    double P;
    fill_T(p1, md->theta, bs->T);   /* T(θ) and the rows XᵢT: the same for both attempts */
    rows_of(m, bs->T, bs->A);
    for (int attempt = bs->last ? 0 : 1; attempt < 2; attempt++) {
        if (attempt) {   /* from u = 0 (and β's start) */
            memset(md->u, 0, sizeof(double) * q);
            if (joint)
                memcpy(md->beta, bs->beta_start, sizeof(double) * p);
        } else
            warm_start(bs, md->theta, md);
        for (Py_ssize_t i = 0; i < n; i++)
            bs->eta0[i] = m->o[i] + dot(m->X + i * p, md->beta, p);
        status = block_pirls(m, bs->A, joint, bs->eta0, md, &P);
        if (status == OK || status == NO_MEMORY)
            break;
    }
    if (status == NO_MEMORY)
        *error = NO_MEMORY;
    if (status != OK)
        return INFINITY;
    bs->last = md;
    Sum ld = {0.0, 0.0}, uu = {0.0, 0.0}, ds = {0.0, 0.0};
    for (Py_ssize_t j = 0; j < nlev; j++)
        for (Py_ssize_t a = 0; a < p1; a++)
            add(&ld, 2.0 * log(md->R[(j * p1 + a) * p1 + a]));
    for (Py_ssize_t j = 0; j < q; j++)
        add(&uu, md->u[j] * md->u[j]);
    for (Py_ssize_t i = 0; i < n; i++)
        add(&ds, md->w.dev[i]);
    const double F = (total(&ld) + total(&uu)) + (total(&ds) + bs->aic_offset);
    if (block_gradient(m, bs->A, joint, md, bs->gfull) != OK) {
        *error = NO_MEMORY;
        return INFINITY;
    }
    for (Py_ssize_t k = 0; k < nth; k++)
        g[k] = bs->gfull[k];
    if (!joint)   /* ∂F/∂ζ = R⁻ᵀ∂F/∂β: forward substitution with Rᵀ */
        for (Py_ssize_t k = 0; k < p; k++) {
            double v = bs->gfull[nth + k];
            for (Py_ssize_t l = 0; l < k; l++)
                v -= bs->Rw[l * p + k] * g[nth + l];
            g[nth + k] = v / bs->Rw[k * p + k];
        }
    for (Py_ssize_t k = 0; k < (joint ? nth : nth + p); k++)
        if (!isfinite(g[k]))
            return INFINITY;
    return isfinite(F) ? F : INFINITY;
}

static void search_free(BlockSearch *bs)
{
    free(bs->set[0].x);   /* one block holds everything */
    bs->set[0].x = NULL;
}

/* The search's arrays, in one block. */
static int search_alloc(BlockSearch *bs, const BlockModel *m)
{
    const Py_ssize_t n = m->n, nlev = m->nlev, p1 = m->p1, q = nlev * p1, p = m->p;
    Py_ssize_t mode = muladd(5, n, muladd(2, m->nth + p, muladd(q, 1 + p1 + 2 * p,
                                                              muladd(p, p, 0))));
    Py_ssize_t size = muladd(2, mode, muladd(n, p1 + 1, 2 * p1 * p1 + m->nth + p));
    double *b = size < 0 ? NULL : malloc(sizeof(double) * size);
    if (!b)
        return 0;
    for (int s = 0; s < 2; s++) {
        BlockMode *md = &bs->set[s];
        md->x = b, b += m->nth + p;
        md->theta = b, b += m->nth;
        md->beta = b, b += p;
        md->u = b, b += q;
        md->R = b, b += q * p1;
        md->C = b, b += q * p;
        md->GiC = b, b += q * p;
        md->RX = b, b += p * p;
        md->w = (Working){b, b + n, b + 2 * n, b + 3 * n, b + 4 * n};
        b += 5 * n;
    }
    bs->T = b, b += p1 * p1;
    bs->Told = b, b += p1 * p1;
    bs->A = b, b += n * p1;
    bs->eta0 = b, b += n;
    bs->gfull = b;
    bs->last = NULL;
    bs->evaluations = 0;
    return 1;
}

/* -- the entry points ------------------------------------------------------------------------ */

PyDoc_STRVAR(block_model_doc,
"block_model(kind, binary, y, w, ylogy, f, Xi, nlevels, p1, X, p, o) -> capsule\n\n"
"One vector-valued term for block_evaluate and block_minimize, checked once: f the level of\n"
"each observation (in [0, nlevels)), Xi (n × p1, 2 <= p1 <= 16) the term's columns, X\n"
"(n × p) and the offset o.  f is copied.");

static PyObject *py_block_model(PyObject *self, PyObject *args)
{
    PyObject *const *a = unpack(args, "block_model", 12);
    int kind, binary;
    Py_ssize_t nlev, p1, p;
    if (!a || !kind_arg(a[0], &kind) || !flag_arg(a[1], "binary", &binary) ||
        !size_arg(a[7], "nlevels", &nlev) || !size_arg(a[8], "p1", &p1) ||
        !size_arg(a[10], "p", &p))
        return NULL;
    if (p1 < 2 || p1 > MAX_P1) {
        PyErr_Format(PyExc_ValueError, "p1: expected 2 to %d columns, got %zd", MAX_P1, p1);
        return NULL;
    }
    BlockModel *bm = PyMem_Calloc(1, sizeof(BlockModel));
    if (!bm)
        return PyErr_NoMemory();
    Buffers *bs = &bm->held.bs, callers, *ix = &callers;
    ix->used = 0;
    const int64_t *f = array(ix, a[5], "f", ANY, VECTOR, 0, 1);
    if (!f)
        goto fail;
    const Py_ssize_t n = last_rows(ix);
    if (!(bm->held.index = PyMem_Malloc(sizeof(int64_t) * (n + 1)))) {
        PyErr_NoMemory();
        goto fail;
    }
    memcpy(bm->held.index, f, sizeof(int64_t) * n);
    release(ix);
    if (!in_range(bm->held.index, n, nlev, "f", "level codes", -1))
        goto fail;
    if (muladd(muladd(nlev, p1, 0), p1 + 2 * p + 1, 0) < 0 || muladd(n, p1 + 12, 0) < 0 ||
        muladd(p, p, muladd(4, p, 0)) < 0) {
        PyErr_SetString(PyExc_ValueError, "block_model: the model's arrays exceed any size");
        goto fail;
    }
    Resp resp;
    double *Xi, *X, *o;
    if (!response_arg(bs, kind, binary, a[2], a[3], a[4], n, &resp) ||
        !optional(bs, a[6], "Xi", n, p1, 0, 1, &Xi) ||
        !optional(bs, a[9], "X", n, p, 0, 1, &X) || !optional(bs, a[11], "o", n, VECTOR, 0, 1, &o))
        goto fail;
    bm->n = n, bm->nlev = nlev, bm->p1 = p1, bm->p = p, bm->nth = p1 * (p1 + 1) / 2;
    bm->f = bm->held.index, bm->Xi = Xi, bm->X = X, bm->o = o, bm->resp = resp;
    PyObject *capsule = PyCapsule_New(bm, BLOCK_MODEL, held_free);
    if (capsule)
        return capsule;
fail:
    release(ix);
    release(bs);
    PyMem_Free(bm->held.index);
    PyMem_Free(bm);
    return NULL;
}

/* The arguments block_evaluate and block_minimize share: R (None: joint, F₀), beta0,
 * beta_start, aic_offset. */
static int search_args(Buffers *bs, PyObject *const *a, const BlockModel *m, BlockSearch *s)
{
    double *Rw, *beta0, *beta_start;
    if (!optional(bs, a[0], "R", m->p, m->p, 0, 0, &Rw) ||
        !optional(bs, a[1], "beta0", m->p, VECTOR, 0, Rw != NULL, &beta0) ||
        !optional(bs, a[2], "beta_start", m->p, VECTOR, 0, Rw == NULL, &beta_start) ||
        !float_arg(a[3], "aic_offset", 1, &s->aic_offset))
        return 0;
    s->m = m;
    s->joint = Rw == NULL;
    s->Rw = Rw;
    s->beta0 = beta0;
    s->beta_start = beta_start;
    return 1;
}

PyDoc_STRVAR(block_evaluate_doc,
"block_evaluate(model, R, beta0, beta_start, aic_offset, x, g) -> F\n\n"
"F₁ at x = (θ, ζ), β = beta0 + R⁻¹ζ, or F₀ at x = θ (R None: joint PIRLS from beta_start),\n"
"PIRLS from u = 0, with its gradient in x written to g; +inf where PIRLS fails.");

static PyObject *py_block_evaluate(PyObject *self, PyObject *args)
{
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "block_evaluate", 7);
    const BlockModel *m;
    if (!a || !(m = model_of(a[0], BLOCK_MODEL, "block_model")))
        return NULL;
    BlockSearch s = {0};
    double *x, *g;
    if (!search_args(bs, a + 1, m, &s))
        goto fail;
    const Py_ssize_t nx = s.joint ? m->nth : m->nth + m->p;
    TAKE(x, a[5], "x", nx, VECTOR, 0, 1);
    TAKE(g, a[6], "g", nx, VECTOR, 1, 1);
    if (!disjoint(bs, &m->held.bs))
        goto fail;
    if (!search_alloc(&s, m)) {
        release(bs);
        return PyErr_NoMemory();
    }
    int error = 0;
    double F;
    Py_BEGIN_ALLOW_THREADS
    F = block_objective(&s, x, g, &error);
    Py_END_ALLOW_THREADS
    search_free(&s);
    release(bs);
    if (error == NO_MEMORY)
        return PyErr_NoMemory();
    return PyFloat_FromDouble(F);
fail:
    release(bs);
    return NULL;
}

PyDoc_STRVAR(block_minimize_doc,
"block_minimize(model, R, beta0, beta_start, aic_offset, xv, gv, f0, gtol, dtol, xtol,\n"
"               max_iter, mode, xl)\n"
"    -> ((code, converged, f, nfev, gmax, decrement, dmax), evaluations, have_mode)\n\n"
"BFGS (glmm.optimize.bfgs) on a block_model's F₁ in (θ, ζ) or F₀ in θ (R None), as\n"
"block_evaluate's, each PIRLS warm-started from the last mode: xv holds x0 and receives the\n"
"final point, gv the gradient there (with ∇F(x0) in it when f0 is not None); evaluations\n"
"counts F's evaluations (PIRLS runs).  The last mode PIRLS reached is written to `mode`, a\n"
"tuple (theta, beta, u, eta, mu, dev, W, s), and its point to xl, where have_mode.");

static PyObject *py_block_minimize(PyObject *self, PyObject *args)
{
    static const char *const TOL[3] = {"gtol", "dtol", "xtol"};
    Buffers buffers, *bs = &buffers;
    bs->used = 0;
    PyObject *const *a = unpack(args, "block_minimize", 14);
    const BlockModel *m;
    if (!a || !(m = model_of(a[0], BLOCK_MODEL, "block_model")))
        return NULL;
    BlockSearch s = {0};
    unsigned char *unit = NULL;
    if (!search_args(bs, a + 1, m, &s))
        goto fail;
    const Py_ssize_t nx = s.joint ? m->nth : m->nth + m->p;
    BfgsOut out = {.f = NAN};
    TAKE(out.x, a[5], "xv", nx, VECTOR, 1, 1);
    TAKE(out.g, a[6], "gv", nx, VECTOR, 1, 1);
    const int have_start = a[7] != Py_None;
    if (have_start && !float_arg(a[7], "f0", 0, &out.f))
        goto fail;
    double tol[3];
    for (int k = 0; k < 3; k++)
        if (!float_arg(a[8 + k], TOL[k], 1, &tol[k]))
            goto fail;
    Py_ssize_t max_iter;
    if (!size_arg(a[11], "max_iter", &max_iter))
        goto fail;
    static const char *const MODE[8] = {"mode.theta", "mode.beta", "mode.u", "mode.eta",
                                        "mode.mu", "mode.dev", "mode.W", "mode.s"};
    if (!PyTuple_Check(a[12]) || PyTuple_GET_SIZE(a[12]) != 8) {
        PyErr_SetString(PyExc_TypeError, "mode: expected a tuple of 8 arrays");
        goto fail;
    }
    const Py_ssize_t mrows[8] = {m->nth, m->p, m->nlev * m->p1, m->n, m->n, m->n, m->n, m->n};
    double *mout[8], *xl;
    for (int k = 0; k < 8; k++)
        TAKE(mout[k], PyTuple_GET_ITEM(a[12], k), MODE[k], mrows[k], VECTOR, 1, 1);
    TAKE(xl, a[13], "xl", nx, VECTOR, 1, 1);
    if (!disjoint(bs, &m->held.bs))
        goto fail;
    if (!(unit = malloc(nx)) || !search_alloc(&s, m)) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t k = 0; k < nx; k++)
        unit[k] = k >= m->nth;   /* the whitened β */
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = bfgs(block_objective, &s, nx, s.joint ? NULL : unit, have_start, tol[0], tol[1],
                  tol[2], (long)max_iter, &out);
    Py_END_ALLOW_THREADS
    const BlockMode *last = s.last;
    if (last) {   /* the last mode, for the fit (no numpy evaluation at the optimum) */
        const double *src[8] = {last->theta, last->beta, last->u, last->w.eta, last->w.mu,
                                last->w.dev, last->w.W, last->w.s};
        for (int k = 0; k < 8; k++)
            memcpy(mout[k], src[k], sizeof(double) * mrows[k]);
        memcpy(xl, last->x, sizeof(double) * nx);
    }
    free(unit);
    search_free(&s);
    release(bs);
    PyObject *res = bfgs_result(status, &out);
    return res ? Py_BuildValue("NlO", res, s.evaluations, last ? Py_True : Py_False) : NULL;
fail:
    free(unit);
    search_free(&s);
    release(bs);
    return NULL;
}

PyMethodDef BLOCK_METHODS[] = {
    {"block_model", py_block_model, METH_VARARGS, block_model_doc},
    {"block_evaluate", py_block_evaluate, METH_VARARGS, block_evaluate_doc},
    {"block_minimize", py_block_minimize, METH_VARARGS, block_minimize_doc},
    {NULL, NULL, 0, NULL},
};
