"""Random-effects terms: Z, Λ(θ), θ and their order, exactly as lme4's ``mkReTrms`` builds them.

For each bar ``(lhs | g)`` (lme4 ``mkBlist``, JSS paper eq. 6):

* the grouping factor g is evaluated in the model frame: a factor loses unused levels, any
  other variable goes through ``factor()``; ``a:b`` is lme4's ``a %i% b``: labels
  ``"alev:blev"`` of the combinations that occur, ordered with **a as the major key**;
* X_i = ``model.matrix(~ lhs)`` (p_i columns, R's names are the term's ``cnms``);
* the term's block of Z has ℓ_i·p_i columns, **level-major, column-minor**: observation r at
  level k puts X_i[r, c] in column k·p_i + c.

Terms are reordered only if their level counts ℓ are not already non-increasing, and then
by ``rev(order(ℓ))``: decreasing ℓ with ties in **reversed** formula order.

Λ(θ) is block diagonal with ℓ_i copies of the p_i × p_i lower-triangular T_i per term; θ_i
lists T_i's lower triangle **column by column** (T11, T21, T31, T22, T32, T33).  The start is
1 on diagonals and 0 elsewhere; lower bounds are 0 on diagonals and −∞ elsewhere; names are
``g.(Intercept)``, ``g.x.(Intercept)``, ``g.x`` (lme4 ``tnames``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cached import cached_property
from ..errors import FormulaError, RandomEffectsError
from .evaluate import level_names, r_factor
from .expression import Call, Name, Node, deparse, parse_expr
from .formula import Bar, ParsedFormula
from .frame import ModelFrame
from .model_matrix import model_matrix

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["RandomEffects", "RandomEffectsError", "RandomTerm", "numeric_term",
           "random_effects", "theta_diagonal", "theta_pattern"]


@lru_cache(maxsize=64)
def theta_pattern(p: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) in T of a term's θ entries: the lower triangle, column by column
    (read-only arrays, shared by every term with p columns)."""
    cols, rows = np.triu_indices(p)  # pairs (col, row) with row >= col, col-major order
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


@lru_cache(maxsize=64)
def theta_diagonal(p: int) -> tuple[int, ...]:
    """The positions in a term's θ of T's diagonal entries (:func:`theta_pattern`'s pairs
    with row = col), as Python ints: the optimiser reads them in every fit."""
    rows, cols = theta_pattern(p)
    return tuple(k for k, (r, c) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True))
                 if r == c)


@dataclass(frozen=True, eq=False)
class RandomTerm:
    """One random-effects term: its grouping factor (name, levels, 0-based code per row), its
    columns (lme4's ``cnms``), the n × p model matrix X_i of its left-hand side and its slice
    of θ.  The objectives read its numbers: for observation i at level codes[i], the row of
    ZΛ holds X_i[i, :] T(θ) in that level's p columns, and T(θ) is filled from θ's slice.

    Terms of a fitted model come from :func:`random_effects`; :func:`numeric_term` makes one
    from its numbers alone, for a model built without a formula.
    """

    group: str
    levels: tuple[str, ...]
    codes: np.ndarray
    columns: tuple[str, ...]
    Xi: np.ndarray
    name: str = ""  # lme4's term name, "1 + x | g"
    theta_slice: slice = field(default_factory=lambda: slice(0, 0))  # θ entries (random_effects)

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def ncols(self) -> int:
        return len(self.columns)

    @property
    def p(self) -> int:
        return len(self.columns)

    @property
    def nranef(self) -> int:
        return len(self.levels) * len(self.columns)

    @property
    def ntheta(self) -> int:
        p = len(self.columns)
        return p * (p + 1) // 2

    def theta_names(self) -> tuple[str, ...]:
        """lme4 ``tnames`` for this term: ``g.c`` on the diagonal, ``g.ci.cj`` below it,
        column-major over the lower triangle."""
        p, c = self.ncols, self.columns
        return tuple(f"{self.group}.{c[i]}" if i == j else f"{self.group}.{c[i]}.{c[j]}"
                     for j in range(p) for i in range(j, p))

    # -- the numbers the objectives read ---------------------------------------------------
    @property
    def tril(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of T filled, in order, from the term's θ (:func:`theta_pattern`)."""
        return theta_pattern(self.ncols)

    def T(self, theta: np.ndarray) -> np.ndarray:
        """T(θ): lower triangular, filled column by column (T₁₁, T₂₁, …, T₂₂, …)."""
        T = np.zeros((self.p, self.p))
        T[self.tril] = theta[self.theta_slice]
        return T

    @cached_property
    def intercept(self) -> bool:
        """A (1 | g) term: one column, all ones (ZΛ holds θ in every row)."""
        return self.p == 1 and bool(np.count_nonzero(self.Xi != 1.0) == 0)

    @cached_property
    def indicator(self) -> sp.csr_matrix:
        """J, ℓ × n: J r sums r over the observations of each level."""
        from ..linalg.coupling import level_indicator  # (a scalar-term fit never loads it)

        return level_indicator(self.codes, self.nlevels)

    @cached_property
    def starts(self) -> np.ndarray | None:
        """Each level's first observation if the codes are sorted (:func:`run_starts`)."""
        from ..linalg.coupling import run_starts

        return run_starts(self.codes, self.nlevels)

    @cached_property
    def _flat_codes(self) -> dict[int, np.ndarray]:
        return {}

    def level_sums(self, a: np.ndarray) -> np.ndarray:
        """Σ over the observations of each level: (ℓ,) for a of shape (n,), (ℓ, k) for (n, k)
        (one bincount over the flattened (level, column) index, kept per k)."""
        if a.ndim == 1:
            return np.bincount(self.codes, a, minlength=self.nlevels)
        k = a.shape[1]
        idx = self._flat_codes.get(k)
        if idx is None:
            idx = self._flat_codes[k] = (self.codes[:, None] * k + np.arange(k)).ravel()
        return np.bincount(idx, a.ravel(), minlength=self.nlevels * k).reshape(self.nlevels, k)


def numeric_term(codes: np.ndarray, nlevels: int, Xi: np.ndarray, theta_slice: slice
                 ) -> RandomTerm:
    """A term from its numbers alone: levels named "1", …, "ℓ", columns "x1", …, group "g"."""
    Xi = np.asarray(Xi, dtype=float)
    return RandomTerm("g", tuple(str(k + 1) for k in range(int(nlevels))),
                      np.asarray(codes, dtype=np.int64),
                      tuple(f"x{j + 1}" for j in range(Xi.shape[1])), Xi,
                      theta_slice=theta_slice)


@dataclass(frozen=True, eq=False)
class RandomEffects:
    """All random-effects terms in lme4's order, with Z (n × q, sparse), θ's start, bounds and
    names, and ``offsets`` = lme4's ``Gp`` (start of each term's block in u, then q)."""

    terms: tuple[RandomTerm, ...]
    n: int
    theta0: np.ndarray
    lower: np.ndarray
    theta_names: tuple[str, ...]
    offsets: np.ndarray

    @cached_property
    def Z(self) -> sp.csc_matrix:
        """Z, n × q, built on request (the engine works from the level codes)."""
        import scipy.sparse as sp  # scipy.sparse on first use: a slow import
        blocks = [_z_block(t, self.n) for t in self.terms]
        Z = sp.hstack(blocks, format="csc") if blocks else sp.csc_matrix((self.n, 0))
        Z.sort_indices()
        return sp.csc_matrix(Z)

    @cached_property
    def theta_offsets(self) -> np.ndarray:
        """Start of each term's slice of θ, then len(θ)."""
        return np.concatenate([[0], np.cumsum([t.ntheta for t in self.terms])]).astype(np.int64)

    @property
    def q(self) -> int:
        return int(self.offsets[-1])

    @property
    def ntheta(self) -> int:
        return len(self.theta0)

    @property
    def group_names(self) -> tuple[str, ...]:
        """The distinct grouping factors in term order (lme4's ``names(flist)``)."""
        return tuple(dict.fromkeys(t.group for t in self.terms))

    @property
    def assign(self) -> tuple[int, ...]:
        """For each term, the index of its grouping factor in :attr:`group_names`
        (lme4's ``attr(flist, "assign")``, 0-based)."""
        names = self.group_names
        return tuple(names.index(t.group) for t in self.terms)

    def terms_of(self, group: str) -> tuple[int, ...]:
        """Indices of the terms sharing a grouping factor: their ranef columns are bound side
        by side in term order, as lme4's ``ranef()`` does."""
        return tuple(i for i, t in enumerate(self.terms) if t.group == group)

    def theta_slice(self, i: int) -> slice:
        return slice(int(self.theta_offsets[i]), int(self.theta_offsets[i + 1]))

    def T(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per term, T_i (p_i × p_i lower triangular) filled column-major from θ_i."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.ntheta,):
            raise ValueError(f"theta has shape {theta.shape}; expected ({self.ntheta},)")
        return [t.T(theta) for t in self.terms]

    @cached_property
    def _lambda_pattern(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, col, θ index) of every structural entry of Λ (its lower-triangular blocks)."""
        rows, cols, idx = [], [], []
        for i, t in enumerate(self.terms):
            p, base, th0 = t.ncols, int(self.offsets[i]), int(self.theta_offsets[i])
            k = th0
            local = []
            for c in range(p):
                for r in range(c, p):
                    local.append((r, c, k))
                    k += 1
            starts = base + p * np.arange(t.nlevels)
            for r, c, ti in local:
                rows.append(starts + r)
                cols.append(starts + c)
                idx.append(np.full(t.nlevels, ti))
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64),
                np.concatenate(idx).astype(np.int64))

    def Lambda(self, theta: np.ndarray) -> sp.csc_matrix:
        """Λ(θ) (q × q, block diagonal; ℓ_i copies of T_i per term).  The sparsity pattern is
        the same for every θ (entries that are zero in θ are stored)."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.ntheta,):
            raise ValueError(f"theta has shape {theta.shape}; expected ({self.ntheta},)")
        r, c, k = self._lambda_pattern
        import scipy.sparse as sp  # scipy.sparse on first use: a slow import
        return sp.csc_matrix((theta[k], (r, c)), shape=(self.q, self.q))


# ---------------------------------------------------------------------------------------------
# Grouping factors
# ---------------------------------------------------------------------------------------------
def _interaction(f1: pd.Categorical, f2: pd.Categorical) -> pd.Categorical:
    """lme4's ``f1 %i% f2``: labels "l1:l2" of the combinations present, ordered by
    nlevels(f2)·index(f1) + index(f2), so f1 is the major key."""
    c1 = np.asarray(f1.codes, dtype=np.int64)
    c2 = np.asarray(f2.codes, dtype=np.int64)
    key = c1 * len(f2.categories) + c2
    uniq, codes = np.unique(key, return_inverse=True)
    l1, l2 = list(f1.categories), list(f2.categories)
    nl2 = len(l2)
    labels = [f"{l1[u // nl2]}:{l2[u % nl2]}" for u in uniq.tolist()]
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=labels)


def _grouping_factor(node: Node, frame: ModelFrame) -> pd.Categorical:
    """The factor of a grouping expression: a variable, or ``a:b:c`` (folded from the left,
    by iteration, as R's ``(a:b):c``)."""
    chain: list[Call] = []
    while isinstance(node, Call) and node.fn == ":" and len(node.args) == 2:
        chain.append(node)
        node = node.args[0]
    if isinstance(node, Name):
        v = frame.variable(deparse(node))
        # a factor of the frame has no unused levels (frame._finish dropped them)
        ff = v if isinstance(v, pd.Categorical) else r_factor(v)
    elif isinstance(node, Call) and node.fn == "(" and len(node.args) == 1:
        ff = _grouping_factor(node.args[0], frame)
    else:
        raise FormulaError(f"unsupported grouping factor {deparse(node)}")
    for call in reversed(chain):
        ff = _interaction(ff, _grouping_factor(call.args[1], frame))
    return ff


def _term(bar: Bar, frame: ModelFrame) -> RandomTerm:
    """One term.  A left-hand side without columns (``(0 | g)``, ``(-1 | g)``) is refused:
    lme4 stops with "length(theta) > 0L is not TRUE" when it is the only term, and otherwise
    fits the model without it but cannot name its parameters (summary() and ranef() fail)."""
    ff = _grouping_factor(parse_expr(bar.group), frame)  # has no unused levels
    mm = model_matrix(bar.lhs, frame,
                      f"the model matrix of the random-effects term ({bar.name})")
    if mm.X.shape[1] == 0:
        raise RandomEffectsError(
            f"the random-effects term ({bar.name}) has no columns: its left-hand side "
            f"{bar.lhs} removes the intercept and adds no variable; remove the term, or write "
            f"(1 | {bar.group}) for a random intercept")
    return RandomTerm(group=bar.group, levels=level_names(ff),
                      codes=np.asarray(ff.codes, dtype=np.int64), columns=mm.names,
                      Xi=np.ascontiguousarray(mm.X), name=bar.name)


# ---------------------------------------------------------------------------------------------
# The structure
# ---------------------------------------------------------------------------------------------
def _z_block(t: RandomTerm, n: int) -> sp.coo_matrix:
    """The term's n × ℓp block: row r, column code[r]·p + c holds X_i[r, c] (zeros dropped as
    lme4's ``drop0`` does)."""
    import scipy.sparse as sp  # scipy.sparse on first use: a slow import
    p = t.ncols
    rows = np.repeat(np.arange(n), p)
    cols = (t.codes[:, None] * p + np.arange(p)[None, :]).ravel()
    vals = t.Xi.ravel()
    nz = vals != 0
    return sp.coo_matrix((vals[nz], (rows[nz], cols[nz])), shape=(n, t.nranef))


def _check(terms: list[RandomTerm], n: int) -> None:
    """lme4's ``checkNlevels`` and ``checkZdims`` as glmer calls them (``allow.n = TRUE``)."""
    nlev = {t.group: t.nlevels for t in terms}
    few = [g for g, k in nlev.items() if k < 2]
    if few:
        raise RandomEffectsError(f"grouping factors must have > 1 sampled level "
                                 f"(problems: {', '.join(few)})")
    many = [g for g, k in nlev.items() if k > n]
    if many:
        raise RandomEffectsError(f"number of levels of each grouping factor must be <= number "
                                 f"of observations (problems: {', '.join(many)})")
    for t in terms:
        if n < t.nranef:
            raise RandomEffectsError(
                f"number of observations (={n}) < number of random effects (={t.nranef}) for "
                f"term ({t.name}); the random-effects parameters are probably unidentifiable")


def random_effects(parsed: ParsedFormula, frame: ModelFrame) -> RandomEffects:
    """Build every random-effects term of ``parsed`` over ``frame`` in lme4's order, with Z,
    θ's start values, bounds and names, and run lme4's checks."""
    n = frame.n
    built = [_term(bar, frame) for bar in parsed.bars]
    nl = [t.nlevels for t in built]
    if any(a < b for a, b in itertools.pairwise(nl)):
        order = np.argsort(nl, kind="stable")[::-1]  # rev(order(nl))
        built = [built[i] for i in order]
    _check(built, n)

    # (small lists of Python ints: sums of a few terms cost less than the numpy calls)
    gp = np.array(list(itertools.accumulate((t.nranef for t in built), initial=0)),
                  dtype=np.int64)
    theta0, lower, names = [], [], []
    for t in built:
        p = t.ncols
        for j in range(p):
            for i in range(j, p):
                theta0.append(1.0 if i == j else 0.0)
                lower.append(0.0 if i == j else -np.inf)
        names.extend(t.theta_names())
    start = list(itertools.accumulate((t.ntheta for t in built), initial=0))
    built = [_with_theta_slice(t, slice(a, b))
             for t, a, b in zip(built, start[:-1], start[1:], strict=True)]
    return RandomEffects(terms=tuple(built), n=n, theta0=np.array(theta0),
                         lower=np.array(lower), theta_names=tuple(names), offsets=gp)


def _with_theta_slice(t: RandomTerm, theta_slice: slice) -> RandomTerm:
    """``t`` with its slice of θ (what ``dataclasses.replace`` does, at a third of its cost;
    a new term has nothing cached yet)."""
    return RandomTerm(group=t.group, levels=t.levels, codes=t.codes, columns=t.columns,
                      Xi=t.Xi, name=t.name, theta_slice=theta_slice)
