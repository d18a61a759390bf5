/* PIRLS's parts that one scalar term (scalar.c) and the crossed terms (crossed.c) share: the
 * scratch, the step-halving and the end (glmm.objectives.pirls). */

#include "core.h"

void scratch_free(Scratch *sc)
{
    for (int k = 0; k < MAX_ROWS; k++)
        free(sc->row[k]);
    free(sc->small);
}

int scratch_alloc(Scratch *sc, int k, Py_ssize_t n, Py_ssize_t small)
{
    *sc = (Scratch){{NULL}, small < 0 ? NULL : malloc(sizeof(double) * (small + 1))};
    int ok = sc->small != NULL;
    for (int j = 0; j < k && ok; j++)
        ok = (sc->row[j] = malloc(sizeof(double) * (n > 0 ? n : 1))) != NULL;
    if (!ok)
        scratch_free(sc);
    return ok;
}

/* PIRLS's step-halving rule: a trial P that does not rise above P (up to 1e-12 relative, its
 * rounding) is accepted; false for NaN. */
static inline int no_rise(double Pn, double P)
{
    return Pn <= P + 1e-12 * fabs(P);
}

/* PIRLS's step-halving (glmm.objectives.pirls.halving_step): the step t = 1, ½, ¼, … (at most
 * MAX_HALVINGS halvings) that first does not raise P = Σdev + ‖u‖² (no_rise).  On success
 * P, u (q) and β (p) move to the accepted point, `cur` and `trial` swap (so that `cur` holds
 * the response there), and 1 is returned; 0 if no step is accepted.  `un` is q scratch. */
int halve(TrialPass pass, void *ctx, double *P, double *u, const double *du,
          Py_ssize_t q, double *beta, const double *db, Py_ssize_t p, double *un,
          Working *cur, Working *trial)
{
    double step = 1.0;
    for (int h = 0; h <= MAX_HALVINGS; h++, step *= 0.5) {
        double uu = 0.0;
        for (Py_ssize_t j = 0; j < q; j++) {
            un[j] = u[j] + step * du[j];
            uu += un[j] * un[j];
        }
        const double Pn = pass(ctx, step, trial) + uu;
        if (no_rise(Pn, *P)) {
            *P = Pn;
            memcpy(u, un, sizeof(double) * q);
            for (Py_ssize_t k = 0; k < p; k++)
                beta[k] += step * db[k];
            const Working t = *cur;
            *cur = *trial;
            *trial = t;
            return 1;
        }
    }
    return 0;
}

/* At PIRLS's end: the accepted point `cur` into `out` if it sits in the scratch arrays. */
void keep(Working *out, const Working *cur, Py_ssize_t n)
{
    if (cur->eta == out->eta)
        return;
    memcpy(out->eta, cur->eta, sizeof(double) * n);
    memcpy(out->mu, cur->mu, sizeof(double) * n);
    memcpy(out->dev, cur->dev, sizeof(double) * n);
    memcpy(out->W, cur->W, sizeof(double) * n);
    memcpy(out->s, cur->s, sizeof(double) * n);
}
