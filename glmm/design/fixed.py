"""The fixed-effects matrix X of a model, as lme4 trims ``model.matrix`` (:mod:`.model_matrix`).

lme4's ``chkRank.drop.cols`` runs LINPACK's pivoted QR (``qr(X, tol = 1e-7, LAPACK =
FALSE)``, Fortran ``dqrdc2``): a column is moved to the end only when its remaining norm falls
below ``tol`` times its original norm; the first ``rank`` pivots are kept in their original
order and the rest are dropped with lme4's message.  ``checkScaleX`` warns when the columns'
scales differ by more than a factor of 1e3.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import RankDeficiencyWarning, ScaleWarning
from ..linalg.lapack import FactorizationError, cholesky
from ..linalg.linpack import dqrdc2
from .formula import ParsedFormula
from .frame import ModelFrame
from .model_matrix import ModelMatrix, model_matrix, refuse_infinite_columns

#: lme4's tolerance for the rank check of X (``chkRank.drop.cols``).
RANK_TOL = 1e-7


@dataclass(frozen=True, eq=False)
class FixedEffects:
    """The fixed-effects design after lme4's rank check: X (n × p), its column names, and the
    names of the columns dropped for rank deficiency."""

    X: np.ndarray
    names: tuple[str, ...]
    dropped: tuple[str, ...] = ()

    @property
    def p(self) -> int:
        return self.X.shape[1]


FULL_RANK_MARGIN = 1e3


def clearly_full_rank(X: np.ndarray) -> bool:
    """True when :func:`dqrdc2` would keep every column of X (n ≥ p) in place, with a wide
    margin.  It pivots column j when the norm of what is left of it after the columns before
    it, |R_jj| of the unpivoted QR, falls below RANK_TOL times its own norm.  With the columns
    scaled to unit norm, R is the Cholesky factor of XᵀX (a correlation matrix), and R_jj² ≥
    (FULL_RANK_MARGIN·RANK_TOL)² = 1e-8 is far above its rounding (~p·ε).  False (also when
    the factorisation fails) sends X to :func:`dqrdc2`."""
    n, p = X.shape
    if n < p:
        return False
    G = X.T @ X
    norms = np.sqrt(G.diagonal())   # the columns' norms, from the Gram's diagonal
    if not (norms > 0.0).all():
        return False
    try:
        R = cholesky(G / np.outer(norms, norms), lower=False)
    except FactorizationError:
        return False
    return bool((R.diagonal() >= FULL_RANK_MARGIN * RANK_TOL).all())


def fixed_effects(parsed: ParsedFormula, frame: ModelFrame) -> FixedEffects:
    """X for the fixed part of the formula, after lme4's rank check (``chkRank.drop.cols``):
    if LINPACK QR finds rank r < p, keep the first r pivot columns in their original order and
    warn "fixed-effect model matrix is rank deficient so dropping k columns / coefficients"."""
    mm = model_matrix(parsed.fixed, frame)
    refuse_infinite_columns("the fixed-effects model matrix", mm)
    fixed = _drop_rank_deficient(mm)
    check_scale(fixed.X, fixed.names)
    return fixed


def _drop_rank_deficient(mm: ModelMatrix) -> FixedEffects:
    p = mm.X.shape[1]
    if p == 0 or clearly_full_rank(mm.X):
        return FixedEffects(mm.X, mm.names, ())
    _, rank, _, pivot = dqrdc2(mm.X, RANK_TOL)
    if rank == p:
        return FixedEffects(mm.X, mm.names, ())
    keep = np.sort(pivot[:rank])
    dropped = tuple(nm for j, nm in enumerate(mm.names) if j not in set(keep.tolist()))
    k = p - rank
    warnings.warn(f"fixed-effect model matrix is rank deficient so dropping {k} "
                  f"{'column / coefficient' if k == 1 else 'columns / coefficients'}",
                  RankDeficiencyWarning, stacklevel=3)
    return FixedEffects(np.asfortranarray(mm.X[:, keep]), tuple(mm.names[j] for j in keep),
                        dropped)


SCALE_TOL = 1e3


def _zero_one(x: np.ndarray) -> bool:
    """Whether every entry of x is 0 or 1 (np.isin(x, (0, 1)).all()); a continuous column
    usually says no at its first entry, with no pass over it."""
    if len(x) and x[0] != 0.0 and x[0] != 1.0:
        return False
    return bool(((x == 0.0) | (x == 1.0)).all())


def _sd(x: np.ndarray) -> float:
    """The standard deviation of x (n ≥ 2), as R's sd: two passes, divisor n − 1."""
    d = x - np.add.reduce(x) / len(x)
    return math.sqrt(float(d @ d) / (len(x) - 1))


def check_scale(X: np.ndarray, names: Sequence[str]) -> None:
    """lme4's ``checkScaleX`` (``check.scaleX = "warning"``): warn when the standard
    deviations of X's continuous columns (those not all 0 or 1) differ by more than a factor
    :data:`SCALE_TOL` from each other or from 1."""
    if X.shape[0] < 2:
        return
    # (the intercept's column holds ones by construction: not continuous, with no pass)
    cont = [j for j in range(X.shape[1])
            if names[j] != "(Intercept)" and not _zero_one(X[:, j])]
    if not cont:
        return
    sd = [_sd(X[:, j]) for j in cont]   # (columns of a Fortran X: no copy)
    logsd = [math.log(s) if s > 0.0 else -math.inf for s in sd]   # (sd = 0: log 0 = −∞)
    limit = math.log(SCALE_TOL)
    # |log sdⱼ| beyond the limit, or two columns' |log(sdᵢ/sdⱼ)| (at most max − min)
    if max(abs(v) for v in logsd) > limit or max(logsd) - min(logsd) > limit:
        lo, hi = sd.index(min(sd)), sd.index(max(sd))
        warnings.warn(f"Some predictor variables are on very different scales: consider "
                      f"rescaling (the standard deviations of X's continuous columns range "
                      f"from {sd[lo]:.3g} for {names[cont[lo]]} to {sd[hi]:.3g} for "
                      f"{names[cont[hi]]})", ScaleWarning, stacklevel=3)
