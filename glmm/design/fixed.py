"""The fixed-effects model matrix X, as R's ``model.matrix`` builds it and lme4 trims it.

``model.matrix`` (C code ``modelmatrix`` in R's ``src/library/stats/src/model.c``) walks the
terms of :func:`glmm.design.formula.terms` in order, after an ``(Intercept)`` column of ones when
the formula has one.  A term's columns are the products of its variables' columns, the first
variable varying fastest; column names join the pieces with ``:``.  A variable contributes:

* numeric vector: itself, named by its expression (``x``, ``I(age^2)``);
* numeric matrix: its columns, named expression + column name, or + 1, 2, ... when unnamed
  (a one-column matrix such as ``scale(x)`` is named by the expression alone);
* factor coded by contrasts (R's pattern code 1): ``contr.treatment`` (unordered: the
  indicators of levels 2..L, named expression + level) or ``contr.poly`` (ordered:
  orthonormal polynomials, named ``.L``, ``.Q``, ``.C``, ``^4``, ...);
* factor coded by indicators (code 2, or the first factor of a formula without intercept):
  one indicator per level;
* logical: a factor with levels ``FALSE``, ``TRUE`` (so ``xTRUE`` under contrasts).

lme4's ``chkRank.drop.cols`` then runs LINPACK's pivoted QR (``qr(X, tol = 1e-7, LAPACK =
FALSE)``, Fortran ``dqrdc2``): a column is moved to the end only when its remaining norm falls
below ``tol`` times its original norm; the first ``rank`` pivots are kept in their original
order and the rest are dropped with lme4's message.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import FixedEffectsError, RankDeficiencyWarning, ScaleWarning
from ..linalg.lapack import FactorizationError, cholesky
from .evaluate import NumericMatrix, Variable
from .formula import ParsedFormula
from .frame import ModelFrame
from .terms import Terms, terms

__all__ = [
    "FixedEffects",
    "FixedEffectsError",
    "ModelMatrix",
    "contr_poly",
    "contr_treatment",
    "dqrdc2",
    "fixed_effects",
    "model_matrix",
]

#: lme4's tolerance for the rank check of X (``chkRank.drop.cols``).
RANK_TOL = 1e-7




@dataclass(frozen=True)
class ModelMatrix:
    """``model.matrix`` output: the matrix, R's column names and R's ``assign`` (the term index
    of each column, 0 for the intercept, terms numbered from 1)."""

    X: np.ndarray
    names: tuple[str, ...]
    assign: tuple[int, ...]


@dataclass(frozen=True)
class FixedEffects:
    """The fixed-effects design after lme4's rank check: X (n × p), its column names, and the
    names of the columns dropped for rank deficiency."""

    X: np.ndarray
    names: tuple[str, ...]
    dropped: tuple[str, ...] = ()

    @property
    def p(self) -> int:
        return self.X.shape[1]


# ---------------------------------------------------------------------------------------------
# Contrasts
# ---------------------------------------------------------------------------------------------
def contr_treatment(levels: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """``contr.treatment``: the first level is the reference; columns are the indicators of the
    other levels, named by them."""
    n = len(levels)
    return np.eye(n)[:, 1:], tuple(levels[1:])


def contr_poly(n: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """``contr.poly(n)``: orthonormal polynomial contrasts over the scores 1..n.

    As R's ``make.poly``: X = outer(y, 0:(n-1), ^) with y = scores - mean(scores); LINPACK QR
    of X; raw = Q · diag(R) (``qr.qy`` of the diagonal of ``qr``); each column divided by its
    norm; the constant column dropped.  Computed with the same LINPACK steps and BLAS
    summation order as R, so the values agree bit for bit.
    """
    if n < 2:
        raise FixedEffectsError(f"contrasts not defined for {n - 1} degrees of freedom")
    if n > 95:
        raise FixedEffectsError(f"orthogonal polynomials cannot be represented accurately "
                                f"enough for {n - 1} degrees of freedom")
    y = [float(s) - (n + 1) / 2.0 for s in range(1, n + 1)]
    x = np.array([[_pow_r(yi, float(k)) for k in range(n)] for yi in y])
    qr, rank, qraux, _ = dqrdc2(x, RANK_TOL, exact=True)
    z = np.zeros((n, n))
    for j in range(n):
        z[j, j] = qr[j, j]
    raw = np.column_stack([_dqrsl_qy(qr, qraux, rank, z[:, j]) for j in range(n)])
    out = np.empty_like(raw)
    for j in range(n):
        col = raw[:, j]
        ss = np.longdouble(0)
        for v in col:
            ss += np.longdouble(v * v)
        out[:, j] = col / math.sqrt(float(ss))
    names = [f"^{k}" for k in range(n)]
    names[1:min(4, n)] = [".L", ".Q", ".C"][:min(3, n - 1)]
    return out[:, 1:], tuple(names[1:])


def _pow_r(x: float, y: float) -> float:
    """R's ``^`` on doubles (x*x for y = 2, else C ``pow``)."""
    if y == 2.0:
        return x * x
    if y == 0.0 or x == 1.0:
        return 1.0
    return math.pow(x, y)


# ---------------------------------------------------------------------------------------------
# LINPACK dqrdc2 (R's qr(..., LAPACK = FALSE)) with reference-BLAS kernels
# ---------------------------------------------------------------------------------------------
def _ddot(x: np.ndarray, y: np.ndarray, exact: bool) -> float:
    """Reference BLAS ``ddot``: the n mod 5 leading products, then groups of five added left to
    right (or numpy's dot when bit-exactness is not needed)."""
    if not exact:
        return float(np.dot(x, y))
    n = len(x)
    m = n % 5
    t = 0.0
    for i in range(m):
        t = t + x[i] * y[i]
    for i in range(m, n, 5):
        t = (t + x[i] * y[i] + x[i + 1] * y[i + 1] + x[i + 2] * y[i + 2]
             + x[i + 3] * y[i + 3] + x[i + 4] * y[i + 4])
    return float(t)


def _dnrm2(x: np.ndarray, exact: bool) -> float:
    """Reference BLAS ``dnrm2`` (LAPACK ≥ 3.10, Blue's algorithm): for entries of ordinary size
    the square root of the sequential sum of squares."""
    if not exact:  # np.linalg.norm's own formula for a vector, without its dispatch
        v = x.ravel(order="K")
        with np.errstate(over="ignore"):
            ss = float(v.dot(v))
        # entries beyond ~1e154 overflow the sum of squares: the scaled norm, as dnrm2's
        if math.isfinite(ss):
            return math.sqrt(ss)
        big = float(np.max(np.abs(v)))
        return big * math.sqrt(float((v / big).dot(v / big))) if math.isfinite(big) else big
    tsml, tbig = 1.4916681462400413e-154, 1.9979190722022350e+146
    if np.all((np.abs(x) >= tsml) & (np.abs(x) <= tbig) | (x == 0)):
        s = 0.0
        for v in x:
            s = s + v * v
        return math.sqrt(s)
    return float(np.linalg.norm(x))  # pragma: no cover - extreme magnitudes


def dqrdc2(x: np.ndarray, tol: float = RANK_TOL, exact: bool = False
           ) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """LINPACK ``dqrdc2`` as R ships it: Householder QR with limited column pivoting.

    Returns (qr, rank, qraux, pivot) as R's ``qr()`` does (pivot 0-based).  Columns whose norm
    drops below ``tol`` times their original norm are cycled to the end; the others keep
    their order.  ``exact`` uses the reference-BLAS summation order throughout (slow, for
    small matrices); otherwise numpy kernels, which only matter for borderline pivots.
    """
    a = np.array(x, dtype=float, order="F", copy=True)
    n, p = a.shape
    qraux = np.array([_dnrm2(a[:, j], exact) for j in range(p)])
    work1 = qraux.copy()
    work2 = np.where(qraux == 0.0, 1.0, qraux)
    jpvt = np.arange(p)
    lup = min(n, p)
    k = p + 1  # 1-based as in the Fortran
    for l0 in range(lup):
        l1 = l0 + 1
        while not (l1 >= k or qraux[l0] >= work2[l0] * tol):
            # move column l to the end, shifting the rest left
            order = [*range(l0), *range(l0 + 1, p), l0]
            a[:, :] = a[:, order]
            jpvt, qraux = jpvt[order], qraux[order]
            work1, work2 = work1[order], work2[order]
            k -= 1
        if l1 == n:
            break
        col = a[l0:, l0]
        nrmxl = _dnrm2(col, exact)
        if nrmxl == 0.0:
            continue
        if a[l0, l0] != 0.0:
            nrmxl = math.copysign(nrmxl, a[l0, l0])
        a[l0:, l0] = (1.0 / nrmxl) * a[l0:, l0]
        a[l0, l0] = 1.0 + a[l0, l0]
        for j in range(l0 + 1, p):
            t = -_ddot(a[l0:, l0], a[l0:, j], exact) / a[l0, l0]
            a[l0:, j] = a[l0:, j] + t * a[l0:, l0]
            if qraux[j] == 0.0:
                continue
            tt = 1.0 - (abs(a[l0, j]) / qraux[j]) ** 2
            tt = max(tt, 0.0)
            if abs(tt) < 1e-6:
                qraux[j] = _dnrm2(a[l0 + 1:, j], exact)
                work1[j] = qraux[j]
            else:
                qraux[j] = qraux[j] * math.sqrt(tt)
        qraux[l0] = a[l0, l0]
        a[l0, l0] = -nrmxl
    rank = min(k - 1, n)
    return a, rank, qraux, jpvt


def _dqrsl_qy(qr: np.ndarray, qraux: np.ndarray, k: int, y: np.ndarray) -> np.ndarray:
    """LINPACK ``dqrsl`` job 10000: Q·y from the Householder vectors of :func:`dqrdc2`."""
    n = qr.shape[0]
    qy = np.array(y, dtype=float, copy=True)
    ju = min(k, n - 1)
    for j in reversed(range(ju)):
        if qraux[j] == 0.0:
            continue
        v = qr[j:, j].copy()
        v[0] = qraux[j]
        t = -_ddot(v, qy[j:], True) / v[0]
        qy[j:] = qy[j:] + t * v
    return qy


# ---------------------------------------------------------------------------------------------
# model.matrix
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Coding:
    """How one variable enters the matrix.  A factor (or logical) has ``levels`` levels
    (R's nlevs), its level ``codes`` as ``values`` and the level names as ``suffixes``; a
    numeric variable has ``levels`` = 0, its n × k columns as ``values`` and their name
    suffixes."""

    levels: int
    values: np.ndarray
    suffixes: tuple[str, ...]
    ordered: bool = False

    def columns(self, code: int) -> tuple[np.ndarray, tuple[str, ...]]:
        """(values n × k, name suffixes) for R's pattern code 1 (contrasts) or 2 (indicators):
        for a factor, the rows of its contrast matrix or of the identity at its codes."""
        if not self.levels:
            return self.values, self.suffixes
        if code == 2:
            return np.eye(self.levels)[self.values], self.suffixes
        cmat, cnames = (contr_poly(self.levels) if self.ordered
                        else contr_treatment(self.suffixes))
        return cmat[self.values], cnames


def _coding(name: str, v: Variable, n: int) -> _Coding:
    if isinstance(v, pd.Categorical) or (isinstance(v, np.ndarray) and v.dtype == bool):
        if isinstance(v, pd.Categorical):
            levels = tuple(str(c) for c in v.categories.tolist())
            codes = np.asarray(v.codes, dtype=np.int64)
            ordered = bool(v.ordered)
        else:
            levels, codes, ordered = ("FALSE", "TRUE"), v.astype(np.int64), False
        if len(levels) < 2:
            raise FixedEffectsError(
                f"contrasts can be applied only to factors with 2 or more levels: {name} has "
                f"{len(levels)} level{'s' if len(levels) != 1 else ''} in the model frame")
        return _Coding(len(levels), codes, levels, ordered)
    if isinstance(v, NumericMatrix):
        vals = np.asarray(v.values, dtype=float)
        k = vals.shape[1]
        if k == 1:
            suffixes: tuple[str, ...] = ("",)
        elif v.colnames is not None:
            suffixes = v.colnames
        else:
            suffixes = tuple(str(j + 1) for j in range(k))
        return _Coding(0, vals, suffixes)
    return _Coding(0, np.asarray(v, dtype=float).reshape(n, 1), ("",))


def model_matrix(rhs: str, frame: ModelFrame) -> ModelMatrix:
    """R's ``model.matrix(~ rhs, frame)`` with the default contrasts."""
    t: Terms = terms(rhs)
    names = t.variable_names
    n = frame.n
    used = sorted({i for term in t.terms for i in t.term_variables(term)})
    codings = {i: _coding(names[i], frame.variable(names[i]), n) for i in used}
    codes = [list(row) for row in t.codes]
    if not t.intercept:
        # the first factor of the first term holding one is coded by indicators
        for k, term in enumerate(t.terms):
            hit = [i for i in t.term_variables(term) if codings[i].levels > 1]
            if hit:
                codes[k][hit[0]] = 2
                break
    columns: list[np.ndarray] = []
    colnames: list[str] = []
    assign: list[int] = []
    if t.intercept:
        columns.append(np.ones(n))
        colnames.append("(Intercept)")
        assign.append(0)
    for k, term in enumerate(t.terms):
        block: list[np.ndarray] = []
        labels: list[str] = []
        for i in t.term_variables(term):
            vals, suffixes = codings[i].columns(codes[k][i])
            pieces = [names[i] + s for s in suffixes]
            if not block:
                block = [vals[:, j] for j in range(vals.shape[1])]
                labels = pieces
            else:  # existing columns vary fastest: new index = j_new * len(block) + j_old
                with np.errstate(over="ignore"):   # refused after, naming the column
                    block = [old * vals[:, j] for j in range(vals.shape[1]) for old in block]
                labels = [f"{lo}:{pc}" for pc in pieces for lo in labels]
        columns.extend(block)
        colnames.extend(labels)
        assign.extend([k + 1] * len(block))
    # one row per column, transposed: X in Fortran order, the layout LINPACK's QR works in
    X = np.array(columns, dtype=float).T if columns else np.zeros((n, 0), order="F")
    return ModelMatrix(X, tuple(colnames), tuple(assign))


#: :func:`clearly_full_rank` asks for this much more than dqrdc2's tolerance: dqrdc2 updates
#: its column norms by downdating (relative error far below this margin), so no column it
#: would pivot passes the check
FULL_RANK_MARGIN = 1e3


def clearly_full_rank(X: np.ndarray) -> bool:
    """True when :func:`dqrdc2` would keep every column of X (n ≥ p) in place, with a wide
    margin.  It pivots column j when the norm of what is left of it after the columns before
    it, |R_jj| of the unpivoted QR, falls below RANK_TOL times its own norm.  With the columns
    scaled to unit norm, R is the Cholesky factor of XᵀX (a correlation matrix), and R_jj² ≥
    (FULL_RANK_MARGIN·RANK_TOL)² = 1e-8 is far above its rounding (~p·ε).  False (also when
    the factorisation fails) sends X to :func:`dqrdc2`."""
    n, p = X.shape
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    if n < p or not np.all(norms > 0.0):
        return False
    Xs = X / norms
    try:
        R = cholesky(Xs.T @ Xs, lower=False)
    except FactorizationError:
        return False
    return bool(np.all(np.diagonal(R) >= FULL_RANK_MARGIN * RANK_TOL))


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


def refuse_infinite_columns(what: str, mm: ModelMatrix) -> None:
    """Refuse a model matrix with an infinite entry, naming its column: every variable is
    finite (the model frame checks), but a product such as ``x:z`` can overflow."""
    bad = ~np.isfinite(mm.X).all(axis=0)
    if bad.any():
        cols = ", ".join(nm for nm, b in zip(mm.names, bad, strict=True) if b)
        raise FixedEffectsError(f"{what} has infinite values in column {cols} (an overflow "
                                f"of a product of variables); rescale the variables")


#: lme4's ``checkScaleX`` tolerance: standard deviations more than this factor apart, or from 1.
SCALE_TOL = 1e3


def check_scale(X: np.ndarray, names: Sequence[str]) -> None:
    """lme4's ``checkScaleX`` (``check.scaleX = "warning"``): warn when the standard
    deviations of X's continuous columns (those not all 0 or 1) differ by more than a factor
    :data:`SCALE_TOL` from each other or from 1."""
    cont = [j for j in range(X.shape[1]) if not np.isin(X[:, j], (0.0, 1.0)).all()]
    if not cont or X.shape[0] < 2:
        return
    sd = np.std(X[:, cont], axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        logsd = np.abs(np.log(sd))
        ratios = np.abs(np.log(sd[:, None] / sd[None, :]))
    worst = max(np.nanmax(logsd, initial=0.0), np.nanmax(ratios, initial=0.0))
    if worst > math.log(SCALE_TOL):
        lo, hi = int(np.argmin(sd)), int(np.argmax(sd))
        warnings.warn(f"Some predictor variables are on very different scales: consider "
                      f"rescaling (the standard deviations of X's continuous columns range "
                      f"from {sd[lo]:.3g} for {names[cont[lo]]} to {sd[hi]:.3g} for "
                      f"{names[cont[hi]]})", ScaleWarning, stacklevel=3)
