"""Dense Cholesky factors and triangular solves, by LAPACK directly (dpotrf, dpotrs, dpotri,
dtrtrs): scipy.linalg's wrappers validate their arguments at a cost larger than the small
factorisations of a small model."""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dpotrf, dpotri, dpotrs, dtrtrs


class FactorizationError(ArithmeticError):
    """G (or its Schur complement) is not numerically positive definite."""


def cholesky(a: np.ndarray, lower: bool, what: str = "the matrix") -> np.ndarray:
    """The Cholesky factor of a symmetric positive definite ``a`` (dpotrf)."""
    c, info = dpotrf(a, lower=lower, clean=1)
    if info != 0:
        raise FactorizationError(f"{what} is not positive definite")
    return c


def cho_solve(c: np.ndarray, b: np.ndarray, lower: bool) -> np.ndarray:
    """a⁻¹b from the Cholesky factor c of a (dpotrs); b of shape (m,) or (m, k); m may be 0
    (no fixed effects), which LAPACK rejects."""
    if not c.size:
        return np.array(b, dtype=float)
    return dpotrs(c, b, lower=lower)[0]


def cho_inverse(c: np.ndarray, lower: bool) -> np.ndarray:
    """a⁻¹ from the Cholesky factor c of a (dpotri: a third of the work of solving with I)."""
    # c has zeros in its other triangle (dpotrf with clean=1), and dpotri leaves them there
    inv, info = dpotri(c, lower=lower)
    if info != 0:
        raise FactorizationError("the Cholesky factor is singular")
    full = inv + inv.T
    full[np.diag_indices_from(full)] = np.diagonal(inv)
    return full


def triangular_solve(c: np.ndarray, b: np.ndarray, lower: bool, trans: bool = False
                     ) -> np.ndarray:
    """c⁻¹b (or c⁻ᵀb) for triangular c (dtrtrs; c may be 0 × 0, which LAPACK rejects)."""
    if not c.size:
        return np.array(b, dtype=float)
    return dtrtrs(c, b, lower=lower, trans=1 if trans else 0)[0]
