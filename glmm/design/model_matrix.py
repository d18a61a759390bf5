"""R's ``model.matrix`` for a right-hand side over the model frame (C code ``modelmatrix`` in
R's ``src/library/stats/src/model.c``).

It walks the terms of :func:`glmm.design.terms.terms` in order, after an ``(Intercept)``
column of ones when the formula has one.  A term's columns are the products of its variables'
columns, the first variable varying fastest; column names join the pieces with ``:``.  A
variable contributes:

* numeric vector: itself, named by its expression (``x``, ``I(age^2)``);
* numeric matrix: its columns, named expression + column name, or + 1, 2, ... when unnamed
  (a one-column matrix such as ``scale(x)`` is named by the expression alone);
* factor coded by contrasts (R's pattern code 1): ``contr.treatment`` (unordered: the
  indicators of levels 2..L, named expression + level) or ``contr.poly`` (ordered:
  orthonormal polynomials, named ``.L``, ``.Q``, ``.C``, ``^4``, ...);
* factor coded by indicators (code 2, or the first factor of a formula without intercept):
  one indicator per level;
* logical: a factor with levels ``FALSE``, ``TRUE`` (so ``xTRUE`` under contrasts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import FixedEffectsError
from ..linalg.linpack import dqrdc2, dqrsl_qy
from .evaluate import NumericMatrix, Variable, level_names
from .frame import ModelFrame
from .terms import ModelTerms, terms


@dataclass(frozen=True, eq=False)
class ModelMatrix:
    """``model.matrix`` output: the matrix, R's column names and R's ``assign`` (the term index
    of each column, 0 for the intercept, terms numbered from 1)."""

    X: np.ndarray
    names: tuple[str, ...]
    assign: tuple[int, ...]


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
    qr, rank, qraux, _ = dqrdc2(x, exact=True)
    z = np.zeros((n, n))
    for j in range(n):
        z[j, j] = qr[j, j]
    raw = np.column_stack([dqrsl_qy(qr, qraux, rank, z[:, j]) for j in range(n)])
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
# model.matrix
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
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
            levels = level_names(v)
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


def model_matrix(rhs: str, frame: ModelFrame, what: str | None = None) -> ModelMatrix:
    """R's ``model.matrix(~ rhs, frame)`` with the default contrasts.  Every variable of the
    frame is finite (the frame checks), so only a product column (``x:z``) can hold an
    infinite entry (an overflow): ``what`` names the matrix for the error that refuses one
    (None: no check)."""
    t: ModelTerms = terms(rhs)
    names = t.variable_names
    n = frame.n
    codings = {i: _coding(names[i], frame.variable(names[i]), n) for i in t.used_variables}
    codes: Sequence[Sequence[int]] = t.codes
    if not t.intercept:
        # the first factor of the first term holding one is coded by indicators
        recoded = [list(row) for row in t.codes]
        for k, term_vars in enumerate(t.variables_by_term):
            hit = [i for i in term_vars if codings[i].levels > 1]
            if hit:
                recoded[k][hit[0]] = 2
                break
        codes = recoded
    columns: list[np.ndarray | float] = []
    colnames: list[str] = []
    assign: list[int] = []
    products = False
    if t.intercept:
        columns.append(1.0)   # filled into X's column, no n-vector of its own
        colnames.append("(Intercept)")
        assign.append(0)
    for k, term_vars in enumerate(t.variables_by_term):
        block: list[np.ndarray] = []
        labels: list[str] = []
        for i in term_vars:
            vals, suffixes = codings[i].columns(codes[k][i])
            pieces = [names[i] + s for s in suffixes]
            if not block:
                block = [vals[:, j] for j in range(vals.shape[1])]
                labels = pieces
            else:  # existing columns vary fastest: new index = j_new * len(block) + j_old
                with np.errstate(over="ignore"):   # refused after, naming the column
                    block = [old * vals[:, j] for j in range(vals.shape[1]) for old in block]
                products = True
                labels = [f"{lo}:{pc}" for pc in pieces for lo in labels]
        columns.extend(block)
        colnames.extend(labels)
        assign.extend([k + 1] * len(block))
    # X in Fortran order, the layout LINPACK's QR works in, each column copied in once
    X = np.empty((n, len(columns)), order="F")
    for j, col in enumerate(columns):
        X[:, j] = col
    mm = ModelMatrix(X, tuple(colnames), tuple(assign))
    if what is not None and products:
        refuse_infinite_columns(what, mm)
    return mm


def refuse_infinite_columns(what: str, mm: ModelMatrix) -> None:
    """Refuse a model matrix with an infinite entry, naming its column (``what`` names the
    matrix)."""
    finite = np.isfinite(mm.X)
    if np.count_nonzero(finite) == finite.size:   # (one pass, not one per column, usually)
        return
    bad = ~finite.all(axis=0)
    cols = ", ".join(nm for nm, b in zip(mm.names, bad, strict=True) if b)
    raise FixedEffectsError(f"{what} has infinite values in column {cols} (an overflow "
                            f"of a product of variables); rescale the variables")
