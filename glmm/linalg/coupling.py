"""Where the blocks of G = ΛᵀZᵀWZΛ + I can be nonzero, from the level codes alone: each term's
level indicator J, its layout A = Xᵢ Tᵢ(θ) (:class:`TermLayout`), the index of the cross
blocks between two terms, and the sparsity pattern of G₂₁ (:class:`CouplingPattern`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..cached import cached_property

if TYPE_CHECKING:
    import scipy.sparse


def stable_order(codes: np.ndarray, nlevels: int) -> np.ndarray:
    """``np.argsort(codes, kind="stable")`` for level codes in [0, nlevels): through 16-bit
    codes where they fit, which numpy sorts by radix, in O(n) (int64 codes take a merge
    sort, ~12 times slower on 10⁶ codes).  A stable order is unique: the same result."""
    if nlevels <= 1 << 16:
        codes = codes.astype(np.uint16)
    return np.argsort(codes, kind="stable")


#: distinct_keys counts keys in [0, size) by one bincount up to this many slots per key
#: (its work and memory are O(size), np.unique's a sort of the keys).
COUNT_PER_KEY = 8


def distinct_keys(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for keys in [0, size): the sorted distinct
    keys and each key's index among them.  Where size is at most COUNT_PER_KEY slots per key,
    by counting (one bincount, a cumulative sum over the slots, one gather) instead of an
    O(n log n) sort of the keys: the same two arrays."""
    if size > COUNT_PER_KEY * max(len(keys), 1 << 17):
        unique, inverse = np.unique(keys, return_inverse=True)
        return unique, inverse.ravel()
    present = np.bincount(keys, minlength=size) > 0
    unique = np.flatnonzero(present)
    rank = np.cumsum(present) - 1
    return unique, rank[keys]


def level_indicator(codes: np.ndarray, nlevels: int) -> scipy.sparse.csr_matrix:
    """J (ℓ × n, CSR) with Jₖᵢ = 1 when observation i is at level k: J r sums r per level."""
    import scipy.sparse  # scipy.sparse on first use: a slow import
    order = stable_order(codes, nlevels)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=nlevels))])
    return scipy.sparse.csr_matrix((np.ones(len(codes)), order, indptr),
                                   shape=(nlevels, len(codes)))


def run_starts(codes: np.ndarray, nlevels: int) -> np.ndarray | None:
    """The first observation of each level when the codes are sorted and every level is
    used (then the observations of level k are starts[k]:starts[k + 1]), else None."""
    counts = np.bincount(codes, minlength=nlevels)
    if len(codes) == 0 or not (counts > 0).all() or (codes[1:] < codes[:-1]).any():
        return None
    starts = np.zeros(nlevels, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


@dataclass(frozen=True)
class TermLayout:
    """What the factor needs of one random-effects term: its level of every observation
    and the per-observation rows of ZΛ for this term, A = Xᵢ Tᵢ (n × pᵢ).  ``J`` is the
    term's :func:`level_indicator`, built once per model and passed in, or a function that
    gives it (so that a model whose sums never need J does not build it: a sparse matrix
    costs more than a small fit's factor), or None (built here at each use).
    ``constant`` is θ for an intercept term (1 | g), whose A is θ in every row: products
    with A are then one multiplication by θ after the per-level sum, not one per row.
    ``starts`` (:func:`run_starts`) is where each level's run of observations begins when
    the codes are sorted, else None."""

    codes: np.ndarray
    nlevels: int
    A: np.ndarray
    J: scipy.sparse.csr_matrix | Callable[[], scipy.sparse.csr_matrix] | None = field(
        default=None, repr=False, compare=False)
    constant: float | None = None
    starts: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def indicator(self) -> scipy.sparse.csr_matrix:
        J = self.J
        if J is None:
            return level_indicator(self.codes, self.nlevels)
        return J() if callable(J) else J

    @property
    def p(self) -> int:
        return self.A.shape[1]

    def level_sums(self, r: np.ndarray) -> np.ndarray:
        """J r, the sums of r over the observations of each level: (ℓ,) for r of shape (n,),
        (ℓ, k) for (n, k).  Where the codes are sorted (``starts``), a sum over each level's
        run of rows (a bincount on sorted codes adds one level's observations into the same
        slot one after another, which stalls); else a bincount for a vector and the sparse
        product for a matrix."""
        if self.starts is not None:
            return np.add.reduceat(r, self.starts, axis=0)
        if r.ndim == 1:
            return np.bincount(self.codes, r, minlength=self.nlevels)
        return self.indicator @ r

    @property
    def q(self) -> int:
        return self.nlevels * self.p


def cross_index(ta: TermLayout, tb: TermLayout) -> list[np.ndarray]:
    """Per column pair (c, d), each observation's flat position (level_a·p_a + c)·q_b +
    level_b·p_b + d in the q_a × q_b block of :func:`_cross` (depends on the codes only)."""
    return [(ta.codes * ta.p + c) * tb.q + tb.codes * tb.p + d
            for c in range(ta.p) for d in range(tb.p)]


class CouplingPattern:
    """What the factor's structure owes to the level codes alone, built once per model: where
    G₂₁ (the later terms' modes × the first term's levels) can be nonzero, one entry per
    distinct (mode of a later term, level of the first) pair among the observations, in CSR
    order, with each observation's slot in it (used sparse for a scalar first term); the flat
    indices of the dense cross blocks (:meth:`cross_index`); and ``lead``, the size of a
    diagonal leading block of S (0 if none).

    Crossed factors whose levels rarely meet (grouseticks: 806 of 73,000 entries; 5,000 ×
    200 levels over 1e5 rows: 1 in 10) keep G₂₁ sparse; then
    S = G₂₂ − G₂₁ D⁻¹ G₁₂ is a sparse product instead of a dense q₂ × q₁ × q₂ one.
    """

    #: Below this fraction of nonzero entries G₂₁ is kept sparse.
    MAX_DENSITY = 0.25
    #: Up to this many same-column pairs of nonzeros, S is accumulated pair by pair (a
    #: gather per pair); beyond, by a compiled sparse product, which then costs less.
    MAX_PAIRS = 20_000

    def __init__(self, terms: Sequence[TermLayout]) -> None:
        first, rest = terms[0], list(terms[1:])
        # only the codes and shapes are kept (cross_index needs nothing else)
        self._terms = [TermLayout(t.codes, t.nlevels, np.empty((0, t.p))) for t in terms]
        # cross indices (i, j) and positions (i, -1), built on first use
        self._cross: dict[tuple[int, int], list[np.ndarray]] = {}
        q1 = first.nlevels
        self.n = len(first.codes)
        keys, offset = [], 0
        for t in rest:
            for d in range(t.p):
                keys.append((offset + t.codes * t.p + d) * q1 + first.codes)
            offset += t.nlevels * t.p
        self.q1, self.q2 = q1, offset
        if keys:
            unique, self.slot = distinct_keys(keys[0] if len(keys) == 1 else np.concatenate(keys),
                                              q1 * offset)
        else:   # one term: no G₂₁ (np.unique of nothing costs more than the rest here)
            unique = self.slot = np.zeros(0, np.int64)
        self.nnz = len(unique)
        self.rows = unique // q1
        self.indices = unique % q1
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(self.rows, minlength=offset))])
        self.sparse = first.p == 1 and self.nnz < self.MAX_DENSITY * q1 * max(offset, 1)
        # S's leading block (the second term's) is diagonal when that term is scalar and each
        # level of the first meets at most one of its levels (the first nested in it, as
        # grouseticks' INDEX in BROOD): then that block is eliminated as a diagonal one too
        self.lead = 0
        if rest and rest[0].p == 1:
            a = rest[0].nlevels
            in_lead = self.rows < a
            if np.all(np.bincount(self.indices[in_lead], minlength=q1) <= 1):
                self.lead = a

    @cached_property
    def by_level(self) -> tuple[np.ndarray, np.ndarray]:
        """The entries grouped by level of the first term, (colptr, order): the entries at
        level l are order[colptr[l]:colptr[l + 1]] (G₂₁'s columns, whose pairs of nonzeros
        make G₂₁D⁻¹G₁₂)."""
        order = stable_order(self.indices, self.q1)
        colptr = np.concatenate([[0], np.cumsum(np.bincount(self.indices, minlength=self.q1))])
        return colptr.astype(np.int64), order.astype(np.int64)

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Without the compiled core, G₂₁D⁻¹G₁₂ = Σ over levels c of the first term of
        (column c)(column c)ᵀ/D_c summed by pairs: every pair (a, b) of nonzeros in one
        column adds to S[row a, row b]; (a's, b's, flat targets), or None when the pattern
        is not sparse or has more than MAX_PAIRS pairs (built on first use)."""
        colptr, order = self.by_level
        counts = np.diff(colptr)
        if not self.sparse or int(np.sum(counts * counts)) > self.MAX_PAIRS:
            return None
        m = counts[self.indices[order]]
        start = np.cumsum(m) - m                         # first pair of each nonzero
        within = np.arange(int(m.sum())) - np.repeat(start, m)
        pa = np.repeat(order, m)
        pb = order[np.repeat(colptr[:-1][self.indices[order]], m) + within]
        return pa, pb, self.rows[pa] * self.q2 + self.rows[pb]

    def slots(self, i: int, d: int) -> np.ndarray:
        """Each observation's entry of the pattern for column d of later term i (i ≥ 1)."""
        k = sum(t.p for t in self._terms[1:i]) + d
        return self.slot[k * self.n:(k + 1) * self.n]

    def positions(self, i: int) -> list[np.ndarray]:
        """Per column c of term i, each observation's mode within its block of G: level·pᵢ + c
        for the first term (in 0..q₁), offsetᵢ + level·pᵢ + c for a later one (in 0..q₂)."""
        key = (i, -1)
        if key not in self._cross:
            t = self._terms[i]
            offset = sum(u.q for u in self._terms[1:i])
            self._cross[key] = [offset + t.codes * t.p + c for c in range(t.p)]
        return self._cross[key]

    def cross_index(self, i: int, j: int) -> list[np.ndarray]:
        """:func:`cross_index` of terms i and j, built on first use and kept."""
        key = (i, j)
        if key not in self._cross:
            self._cross[key] = cross_index(self._terms[i], self._terms[j])
        return self._cross[key]
