"""Dense Cholesky factors and triangular solves, by LAPACK directly (dpotrf, dpotrs, dpotri,
dtrtrs): scipy.linalg's wrappers validate their arguments at a cost larger than the small
factorisations of a small model.  The routines are scipy's f2py LAPACK (the objects
scipy.linalg.lapack exports), loaded on first use through :func:`glmm.threads.scipy_linalg`
(without scipy.linalg's slow ``__init__``, and with its BLAS pool under the fit's thread
limit) and kept in module globals, so that a call costs one ``is None`` test more than a
module-level import would."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..threads import scipy_linalg

#: scipy.linalg.lapack's dpotrf, dpotri, dpotrs, dtrtrs, filled in by _load on first use
_dpotrf: Any = None
_dpotri: Any = None
_dpotrs: Any = None
_dtrtrs: Any = None


def _load() -> None:
    global _dpotrf, _dpotri, _dpotrs, _dtrtrs
    lapack = scipy_linalg("_flapack")
    _dpotrf, _dpotri, _dpotrs, _dtrtrs = lapack.dpotrf, lapack.dpotri, lapack.dpotrs, lapack.dtrtrs


class FactorizationError(ArithmeticError):
    """G (or its Schur complement) is not numerically positive definite."""


def cholesky(a: np.ndarray, lower: bool, what: str = "the matrix") -> np.ndarray:
    """The Cholesky factor of a symmetric positive definite ``a`` (dpotrf)."""
    if _dpotrf is None:
        _load()
    c, info = _dpotrf(a, lower=lower, clean=1)
    if info != 0:
        raise FactorizationError(f"{what} is not positive definite")
    return c


def cho_solve(c: np.ndarray, b: np.ndarray, lower: bool) -> np.ndarray:
    """a⁻¹b from the Cholesky factor c of a (dpotrs); b of shape (m,) or (m, k); m may be 0
    (no fixed effects), which LAPACK rejects."""
    if not c.size:
        return np.array(b, dtype=float)
    if _dpotrs is None:
        _load()
    return _dpotrs(c, b, lower=lower)[0]


def cho_inverse(c: np.ndarray, lower: bool) -> np.ndarray:
    """a⁻¹ from the Cholesky factor c of a (dpotri: a third of the work of solving with I)."""
    # c has zeros in its other triangle (dpotrf with clean=1), and dpotri leaves them there
    if _dpotri is None:
        _load()
    inv, info = _dpotri(c, lower=lower)
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
    if _dtrtrs is None:
        _load()
    return _dtrtrs(c, b, lower=lower, trans=1 if trans else 0)[0]
