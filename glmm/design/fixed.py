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

from ..compiled import core as _core
from ..errors import RankDeficiencyWarning, ScaleWarning
from ..linalg.lapack import FactorizationError, cholesky
from ..linalg.linpack import dqrdc2
from .formula import ParsedFormula
from .frame import ModelFrame
from .model_matrix import ModelMatrix, model_matrix

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


#: :func:`clearly_full_rank` asks for this much more than dqrdc2's tolerance: dqrdc2 updates
#: its column norms by downdating (relative error far below this margin), so no column it
#: would pivot passes the check
FULL_RANK_MARGIN = 1e3


def clearly_full_rank(X: np.ndarray) -> bool:
    """True when :func:`dqrdc2` would keep every column of X (n ≥ p) in place, with a wide
    margin.  It pivots column j when the norm of what is left of it after the columns before
    it, |R_jj| of the unpivoted QR, falls below RANK_TOL times its own norm ‖xⱼ‖.  R is the
    Cholesky factor of XᵀX, whose diagonal holds ‖xⱼ‖², so the test asks R_jj / ‖xⱼ‖ ≥
    FULL_RANK_MARGIN·RANK_TOL = 1e-4, far above its rounding (~p·ε relative).  False (also
    when the factorisation fails, or a ‖xⱼ‖² is not a positive finite normal number) sends X
    to :func:`dqrdc2`."""
    n, p = X.shape
    if n < p:
        return False
    G = X.T @ X
    norms2 = G.diagonal()   # ‖xⱼ‖²
    if np.count_nonzero((norms2 >= np.finfo(float).tiny) & (norms2 <= np.finfo(float).max)) < p:
        return False
    try:
        R = cholesky(G, lower=False)
    except FactorizationError:
        return False
    return bool(np.count_nonzero(R.diagonal() >= FULL_RANK_MARGIN * RANK_TOL * np.sqrt(norms2))
                == p)


def fixed_effects(parsed: ParsedFormula, frame: ModelFrame) -> FixedEffects:
    """X for the fixed part of the formula, after lme4's rank check (``chkRank.drop.cols``):
    if LINPACK QR finds rank r < p, keep the first r pivot columns in their original order and
    warn "fixed-effect model matrix is rank deficient so dropping k columns / coefficients";
    then lme4's scale check (:func:`check_scale`)."""
    mm = model_matrix(parsed.fixed, frame, "the fixed-effects model matrix")
    clear, sd = column_checks(mm.X, mm.names)
    fixed, keep = _drop_rank_deficient(mm, clear)
    check_scale([sd[j] for j in keep], fixed.names)
    return fixed


def column_checks(X: np.ndarray, names: Sequence[str]) -> tuple[bool, list[float]]:
    """(:func:`clearly_full_rank` of X, each column's standard deviation as R's ``sd``: two
    passes, divisor n − 1, NaN where the column is not continuous, all its entries 0 or 1,
    and for n < 2).  The compiled core computes both in one call (glmm/csrc/fixed.c) from
    XᵀX and X's columns; numpy, without it, column by column."""
    n, p = X.shape
    if not p:
        return True, []
    if _core is not None and X.flags.f_contiguous:
        sd = np.empty(p)
        clear = _core.fixed_checks(n, p, X.T, X.T @ X, FULL_RANK_MARGIN * RANK_TOL, sd)
        return clear, sd.tolist()
    # (the intercept's column holds ones by construction: not continuous, with no pass)
    return clearly_full_rank(X), [
        math.nan if n < 2 or names[j] == "(Intercept)" or _zero_one(X[:, j]) else _sd(X[:, j])
        for j in range(p)]


def _drop_rank_deficient(mm: ModelMatrix, clear: bool) -> tuple[FixedEffects, list[int]]:
    """X without the columns LINPACK's QR finds dependent (none where ``clear``: X is
    :func:`clearly_full_rank`), and the positions of the columns kept."""
    p = mm.X.shape[1]
    if clear:
        return FixedEffects(mm.X, mm.names, ()), list(range(p))
    _, rank, _, pivot = dqrdc2(mm.X, RANK_TOL)
    if rank == p:
        return FixedEffects(mm.X, mm.names, ()), list(range(p))
    keep = np.sort(pivot[:rank])
    dropped = tuple(nm for j, nm in enumerate(mm.names) if j not in set(keep.tolist()))
    k = p - rank
    warnings.warn(f"fixed-effect model matrix is rank deficient so dropping {k} "
                  f"{'column / coefficient' if k == 1 else 'columns / coefficients'}",
                  RankDeficiencyWarning, stacklevel=3)
    return (FixedEffects(np.asfortranarray(mm.X[:, keep]), tuple(mm.names[j] for j in keep),
                         dropped), keep.tolist())


#: lme4's ``checkScaleX`` tolerance: standard deviations more than this factor apart, or from 1.
SCALE_TOL = 1e3


def _zero_one(x: np.ndarray) -> bool:
    """Whether every entry of x is 0 or 1 (np.isin(x, (0, 1)).all()); a continuous column
    usually says no at its first entry, with no pass over it."""
    if len(x) and x[0] != 0.0 and x[0] != 1.0:
        return False
    return bool(np.count_nonzero((x == 0.0) | (x == 1.0)) == len(x))


def _sd(x: np.ndarray) -> float:
    """The standard deviation of x (n ≥ 2), as R's sd: two passes, divisor n − 1."""
    d = x - np.add.reduce(x) / len(x)
    return math.sqrt(float(d @ d) / (len(x) - 1))


def check_scale(sd: Sequence[float], names: Sequence[str]) -> None:
    """lme4's ``checkScaleX`` (``check.scaleX = "warning"``): warn when the standard
    deviations ``sd`` of X's continuous columns (:func:`column_checks`; NaN for the others)
    differ by more than a factor :data:`SCALE_TOL` from each other or from 1."""
    cont = [j for j, s in enumerate(sd) if not math.isnan(s)]
    if not cont:
        return
    sds = [sd[j] for j in cont]
    logsd = [math.log(s) if s > 0.0 else -math.inf for s in sds]   # (sd = 0: log 0 = −∞)
    limit = math.log(SCALE_TOL)
    # |log sdⱼ| beyond the limit, or two columns' |log(sdᵢ/sdⱼ)| (at most max − min)
    if max(abs(v) for v in logsd) > limit or max(logsd) - min(logsd) > limit:
        lo, hi = sds.index(min(sds)), sds.index(max(sds))
        warnings.warn(f"Some predictor variables are on very different scales: consider "
                      f"rescaling (the standard deviations of X's continuous columns range "
                      f"from {sds[lo]:.3g} for {names[cont[lo]]} to {sds[hi]:.3g} for "
                      f"{names[cont[hi]]})", ScaleWarning, stacklevel=3)
