/* Dense Cholesky factors: the p × p (or m × m) blocks of PIRLS's systems, row-major. */

#include "core.h"

/* Upper Cholesky factor R (RᵀR = S) of a p × p matrix, in place (row-major, lower part set
 * to 0); 0 if S is not positive definite. */
int cholesky_upper(double *S, Py_ssize_t p)
{
    for (Py_ssize_t k = 0; k < p; k++) {
        double d = S[k * p + k];
        for (Py_ssize_t m = 0; m < k; m++)
            d -= S[m * p + k] * S[m * p + k];
        if (!(d > 0.0))
            return 0;
        d = sqrt(d);
        S[k * p + k] = d;
        for (Py_ssize_t j = k + 1; j < p; j++) {
            double v = S[k * p + j];
            for (Py_ssize_t m = 0; m < k; m++)
                v -= S[m * p + k] * S[m * p + j];
            S[k * p + j] = v / d;
        }
        for (Py_ssize_t j = 0; j < k; j++)
            S[k * p + j] = 0.0;
    }
    return 1;
}

/* b ← (RᵀR)⁻¹ b for upper triangular R (p × p, row-major with leading dimension ld ≥ p:
 * the leading block of a larger factor when ld > p). */
void cholesky_solve_ld(const double *R, Py_ssize_t p, Py_ssize_t ld, double *b)
{
    for (Py_ssize_t k = 0; k < p; k++) {          /* Rᵀ c = b */
        double v = b[k];
        for (Py_ssize_t m = 0; m < k; m++)
            v -= R[m * ld + k] * b[m];
        b[k] = v / R[k * ld + k];
    }
    for (Py_ssize_t k = p - 1; k >= 0; k--) {     /* R x = c */
        double v = b[k];
        for (Py_ssize_t m = k + 1; m < p; m++)
            v -= R[k * ld + m] * b[m];
        b[k] = v / R[k * ld + k];
    }
}

void cholesky_solve(const double *R, Py_ssize_t p, double *b)
{
    cholesky_solve_ld(R, p, p, b);
}
