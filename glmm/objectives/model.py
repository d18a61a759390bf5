"""The numerical problem of a GLMM, independent of its formula.

    η = o + Xβ + ZΛ(θ)u,   u ~ N(0, I_q),   E[y | u] = g⁻¹(η),   Var[y | u] ∝ V(μ)/w

It holds y, the prior weights w, the offset o, X, each random-effects term's level codes and
model-matrix columns, and the family.  ZΛ is never formed: for term t, the row of ZΛ for
observation i holds aᵢ = Xₜ[i, :] Tₜ(θ) in the columns of level codesₜ[i].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..cached import cached_property
from ..design.random import RandomTerm
from ..families import Family
from ..families.response import Response

if TYPE_CHECKING:
    import scipy.sparse

    # glmm.linalg.coupling is imported where used: one scalar term's fits never load it
    from ..linalg.coupling import CouplingPattern, TermLayout


def distinct_rows(M: np.ndarray) -> np.ndarray:
    """A group index per row of M (n × k), equal rows in one group: the groups of equal
    values of the projection Σⱼ M[:, j] wⱼ (fixed irrational wⱼ, column by column, so equal
    rows project to equal values), kept only if every row equals its group's first row;
    otherwise, or when nothing repeats, each row is its own group."""
    n = len(M)
    h = np.zeros(n)
    for j in range(M.shape[1]):
        h += M[:, j] * math.sqrt(2.0 + j)
    _, first, index = np.unique(h, return_index=True, return_inverse=True)
    index = index.ravel()
    if len(first) == n or not np.array_equal(M, M[first[index]]):
        return np.arange(n)
    return index


@dataclass(frozen=True, eq=False)
class TermCells:
    """One term's observations grouped into cells of equal level and equal row of
    [X, Xₜ] (built once per model).  Within a cell only W varies, so with the cell sums
    w_c = Σ_{i∈c} Wᵢ, its row x_c of X and a_c of ZₜΛₜ (Xₜ's row times Tₜ(θ)):

        ΛₜᵀZₜᵀWX (level k's rows) = Σ_{c at level k} w_c a_c x_cᵀ,     XᵀWX = Σ_c w_c x_c x_cᵀ

    and the work per W is one sum over n, the rest over the cells (VerbAgg: 1,896 cells for
    (1 | id), 1,080 for (1 | item), of 7,584 observations).  Both sums are bincounts, which
    add in the order of the observations (of the cells), as the products with the 0/1
    indicator matrices would, without building those (a sparse matrix costs more to make
    than a small model's whole sum).
    """

    cell: np.ndarray      # n: each observation's cell
    level_index: np.ndarray   # cells × p, flat: cell c's entry j at level(c)·p + j
    nlevels: int
    first: np.ndarray     # one observation of each cell
    X: np.ndarray         # cells × p: x_c

    @classmethod
    def build(cls, codes: np.ndarray, nlevels: int, rows: np.ndarray, X: np.ndarray
              ) -> TermCells:
        """The cells of the term with level ``codes`` and [X, Xₜ]-row groups ``rows``,
        numbered in the order of their key (level, row group): one stable sort gives both
        each observation's cell and each cell's first observation."""
        key = codes * (int(rows.max()) + 1) + rows
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        new = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
        first = order[np.flatnonzero(new)]
        cell = np.empty(len(codes), dtype=np.intp)
        cell[order] = np.cumsum(new) - 1
        p = X.shape[1]
        level_index = (codes[first][:, None] * p + np.arange(p)).ravel()
        return cls(cell, level_index, nlevels, first, np.ascontiguousarray(X[first]))

    def cell_sums(self, W: np.ndarray) -> np.ndarray:
        """w_c = Σ_{i∈c} Wᵢ for every cell."""
        return np.bincount(self.cell, W, minlength=len(self.first))

    def level_sums(self, M: np.ndarray) -> np.ndarray:
        """Σ_{c at level k} M[c] for every level k, of a cells × p array."""
        p = self.X.shape[1]
        return np.bincount(self.level_index, M.ravel(),
                           minlength=self.nlevels * p).reshape(self.nlevels, p)


@dataclass(frozen=True)
class _IndicatorOf:
    """The term's level indicator J, when first asked for (:class:`TermLayout`): a class,
    not a closure, so that a fit's layouts pickle."""

    term: RandomTerm

    def __call__(self) -> scipy.sparse.csr_matrix:
        return self.term.indicator


@dataclass(frozen=True, eq=False)
class GlmerModel:
    """The numerical problem every objective solves: the response, X, the random-effects
    terms and the family, as float arrays."""

    y: np.ndarray
    n_trials: np.ndarray       # binomial trials (1 unless cbind); the aic needs them
    weights: np.ndarray        # prior weights (for cbind: weights × trials)
    offset: np.ndarray
    X: np.ndarray
    terms: tuple[RandomTerm, ...]
    family: Family
    mustart: np.ndarray

    @cached_property
    def unit_weights(self) -> bool:
        """Whether every prior weight is 1 (sums then need no products with w)."""
        return bool(np.count_nonzero(self.weights != 1.0) == 0)

    @cached_property
    def zero_offset(self) -> bool:
        """Whether the offset is 0 in every row (y − o is then y)."""
        return bool(np.count_nonzero(self.offset) == 0)

    @cached_property
    def log_weight_sum(self) -> float:
        """Σ log wᵢ (lme4's ldW; 0 for unit weights, with no pass over them)."""
        return 0.0 if self.unit_weights else float(np.log(self.weights).sum())

    @cached_property
    def response(self) -> Response:
        """The response pass PIRLS runs at each η (built once per model)."""
        return Response(self.family, self.y, self.n_trials, self.weights)

    @cached_property
    def coupling(self) -> CouplingPattern:
        """The sparsity pattern of G₂₁ (:class:`~glmm.linalg.coupling.CouplingPattern`)."""
        from ..linalg.coupling import CouplingPattern, TermLayout

        # the pattern reads the codes and the number of columns only, not A
        return CouplingPattern([TermLayout(t.codes, t.nlevels, np.empty((0, t.p)))
                                for t in self.terms])

    @cached_property
    def cells(self) -> tuple[TermCells, ...]:
        """Each term's :class:`TermCells`."""
        rows = distinct_rows(np.hstack([self.X, *(t.Xi for t in self.terms)]))
        return tuple(TermCells.build(t.codes, t.nlevels, rows, self.X) for t in self.terms)

    @cached_property
    def _fewest_cells(self) -> int:
        """The term whose cells are fewest: XᵀWX is summed over them."""
        return min(range(len(self.cells)), key=lambda k: len(self.cells[k].first))

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @cached_property
    def q(self) -> int:
        return sum(t.nlevels * t.p for t in self.terms)

    @property
    def ntheta(self) -> int:
        return self.terms[-1].theta_slice.stop

    def layouts(self, theta: np.ndarray) -> list[TermLayout]:
        """Per term, A = Xₜ Tₜ(θ): the nonzero values of that term's rows of ZΛ."""
        # J only where the codes are unsorted (sorted codes sum over runs: TermLayout), and
        # built on first use: the term's, once per model
        from ..linalg.coupling import TermLayout

        return [TermLayout(t.codes, t.nlevels,
                           t.Xi * theta[t.theta_slice.start] if t.p == 1 else t.Xi @ t.T(theta),
                           _IndicatorOf(t) if t.starts is None else None,
                           float(theta[t.theta_slice.start]) if t.intercept else None,
                           t.starts)
                for t in self.terms]

    def u_blocks(self, u: np.ndarray) -> list[np.ndarray]:
        """u split per term as (levels × p) arrays (u is level-major within a term)."""
        if len(self.terms) == 1:
            t = self.terms[0]
            return [u.reshape(t.nlevels, t.p)]
        out, start = [], 0
        for t in self.terms:
            stop = start + t.nlevels * t.p
            out.append(u[start:stop].reshape(t.nlevels, t.p))
            start = stop
        return out

    def zlam(self, layouts: Sequence[TermLayout], u: np.ndarray) -> np.ndarray:
        """ZΛu (length n)."""
        if len(layouts) == 1 and layouts[0].p == 1:
            return layouts[0].A[:, 0] * u[layouts[0].codes]
        out = None
        for lay, ub in zip(layouts, self.u_blocks(u), strict=True):
            if lay.constant is not None:
                part = (lay.constant * ub[:, 0])[lay.codes]
            elif lay.p == 1:
                part = lay.A[:, 0] * ub[:, 0][lay.codes]
            else:
                # each observation's level's row of u, by np.take: indexing a 2-D array
                # by rows costs several times more for the same copy
                g = np.take(ub, lay.codes, axis=0)
                if lay.p == 2:   # einsum's arithmetic, (0 + a₁g₁) + a₂g₂, at a third of its cost
                    part = (0.0 + lay.A[:, 0] * g[:, 0]) + lay.A[:, 1] * g[:, 1]
                else:
                    part = np.einsum("ij,ij->i", lay.A, g)
            out = part if out is None else out + part
        assert out is not None
        return out

    def zlam_t(self, layouts: Sequence[TermLayout], r: np.ndarray) -> np.ndarray:
        """ΛᵀZᵀr (length q) for r of length n; (q, k) for r of shape (n, k)."""
        parts = []
        for lay in layouts:
            if lay.constant is not None:   # θ Σ r per level
                parts.append(lay.constant * lay.level_sums(r))
            elif r.ndim == 1:   # Σ aᵢ rᵢ per level (ℓ × p, level-major)
                parts.append(lay.level_sums(lay.A[:, 0] * r) if lay.p == 1
                             else lay.level_sums(lay.A * r[:, None]).ravel())
            else:   # one sparse product per column of the term: J (aᶜ ∘ r)
                blk = np.stack([lay.level_sums(lay.A[:, c:c + 1] * r) for c in range(lay.p)],
                               axis=1)
                parts.append(blk.reshape(lay.nlevels * lay.p, r.shape[1]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def fixed_blocks(self, layouts: Sequence[TermLayout], W: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(C, F) = (ΛᵀZᵀWX, XᵀWX), the fixed effects' blocks of the joint (u, β) matrix
        [G, C; Cᵀ, F] (``fixed`` of :class:`~glmm.linalg.blocked.BlockedCholesky`), summed over
        cells (:class:`TermCells`); F over the term with the fewest."""
        fewest = self._fewest_cells
        parts, F = [], None
        for k, (lay, cells) in enumerate(zip(layouts, self.cells, strict=True)):
            w = cells.cell_sums(W)
            wX = w[:, None] * cells.X
            if k == fewest:
                F = cells.X.T @ wX
            if lay.constant is not None:   # a_c = θ
                parts.append(lay.constant * cells.level_sums(wX))
            else:
                a = lay.A[cells.first]
                parts.append(np.stack([cells.level_sums(a[:, c:c + 1] * wX)
                                       for c in range(lay.p)], axis=1).reshape(lay.q, -1))
        assert F is not None
        return (parts[0] if len(parts) == 1 else np.concatenate(parts)), F

    def u_keeping_b(self, u: np.ndarray, theta_old: np.ndarray, theta: np.ndarray
                    ) -> np.ndarray:
        """u' with Λ(θ)u' = Λ(θ_old)u, term by term: u'ₗ = Tₜ(θ)⁻¹ Tₜ(θ_old) uₗ per level ℓ;
        a term whose Tₜ(θ) is (nearly) singular keeps its u."""
        out = []
        for t, ub in zip(self.terms, self.u_blocks(u), strict=True):
            T_new, T_old = t.T(theta), t.T(theta_old)
            d = np.abs(np.diag(T_new))
            if np.all(d > 1e-4 * max(1.0, float(np.max(np.abs(T_old))))):
                ub = ub @ np.linalg.solve(T_new, T_old).T
            out.append(ub.ravel())
        return np.concatenate(out)

    def b(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """b = Λ(θ)u, level-major within each term (lme4's getME(, "b"))."""
        out = []
        for t, ub in zip(self.terms, self.u_blocks(u), strict=True):
            out.append((ub @ t.T(theta).T).ravel())
        return np.concatenate(out)
