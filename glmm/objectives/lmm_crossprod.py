"""The θ-free cross-products of a linear mixed model, as the compiled core's LMM criterion
takes them (glmm/csrc/lmm.c; the formulas: docs/lmm.md §6).

    M = [Z X ỹ]ᵀ W [Z X ỹ],   ỹ = y − o − Xβ₀   (β₀: the weighted least-squares fit)

in the order [term 1 | the later terms | X | ỹ].  ZΛ(θ) only rescales Z's columns, so M is
formed once per model and every evaluation of the criterion works on M's blocks, whatever n
is: the first term's per-level blocks M₁₁,ₖ (p₁ × p₁), the coupling M₂₁ of each level of
term 1 with the rows after it (the later terms' levels that share an observation with it,
then X's and ỹ's p + 1 rows), and the dense M₂₂ (m₂ × m₂, m₂ = q₂ + p + 1).  Shifting y by
Xβ₀ leaves every minimum over β, so the criterion, unchanged, and keeps the last pivot
r² = pwrss from cancelling against a large yᵀWy.

The core takes a first term of any size and scalar later terms; :func:`lmm_crossproducts`
returns None for any other model (and without the core), which then runs in numpy
(:class:`glmm.objectives.lmm.LmmObjective`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..compiled import core as _core
from ..design.random import RandomTerm, theta_pattern
from ..linalg.coupling import stable_order
from ..linalg.lapack import FactorizationError, cho_solve, cholesky
from ..threads import scipy_linalg
from .model import GlmerModel

#: The largest order m₂ of S̄ the core takes: S̄ and M₂₂ are dense, 2 × 8m₂² bytes (256 MB).
MAX_ORDER = 4000
#: The largest first term (p₁ columns) the core takes.
MAX_P1 = 16
#: A dense coupling block costs about this fraction of a scattered update per entry (BLAS's
#: dsyrk against a loop over each level's pairs of rows): dense when DENSE_COST·m₂²·q₁ is
#: below the sparse pairs' count Σₖ nₖ²·p₁ (nₖ: level k's rows).
DENSE_COST = 0.1
#: The largest coupling block (p₁ × its rows, over the levels) the core takes: it holds four
#: arrays of that size (M₂₁, M₂₁T₁, W and P₂₁), here 4 × 400 MB.
MAX_COUPLING = 50_000_000
#: A scalar first term's levels fall into K classes of equal M₁₁,ₖ (equal sizes, without
#: weights: K = the distinct sizes); the classes form (lmm.c, evaluate_classes) costs
#: K·m₂² per evaluation in contiguous loops, here counted as DENSE_COST counts dsyrk's.  It
#: is taken at half the cost of the layout it replaces, its K Gram matrices H_c at most
#: MAX_CLASSES entries (80 MB).
CLASSES_COST = 0.1
MAX_CLASSES = 10_000_000
#: Level × row keys counted in one bincount up to this many, and up to SPARSE_KEYS times
#: the keys (else np.unique: InstEval's 3.4·10⁶ level × row cells for 1.5·10⁵ keys, whose
#: counts array, 27 MB of fresh pages, cost 25 ms in a new process against np.unique's 5).
MAX_BINCOUNT = 50_000_000
SPARSE_KEYS = 8
#: M is one product AᵀWA of the dense A = [Z X ỹ] when A has at most this many entries
#: (800 kB): in small models the per-level sums cost more in numpy's call overhead.
MAX_PRODUCT = 100_000
#: With a sparse coupling, S̄ of order m₂ ≥ SUPERNODAL_MIN_ORDER whose rows, in a
#: minimum-degree order, give a factor of at most SUPERNODAL_RATIO of a dense one's flops is
#: factored (and its selected inverse formed) by supernodes in that order (lmm.c,
#: sn_factor; docs/lmm.md §6): InstEval's S̄ (order 1145, 20% of its entries nonzero) at
#: ~22% of the dense flops.  Below that order a dense dpotrf costs too little to matter.
SUPERNODAL_MIN_ORDER = 256
SUPERNODAL_RATIO = 0.5


def schur_order(model: GlmerModel) -> int:
    """m₂ = q₂ + p + 1, the order of S̄: the later terms' levels, X's and ỹ's columns."""
    return sum(t.nlevels * t.p for t in model.terms[1:]) + model.p + 1


def compiled_applies(model: GlmerModel) -> bool:
    """Whether the core takes this model: a first term of at most MAX_P1 columns, scalar
    later terms and S̄ of order at most MAX_ORDER."""
    terms = model.terms
    if _core is None or not terms or terms[0].p > MAX_P1:
        return False
    if any(t.p != 1 for t in terms[1:]):
        return False
    return schur_order(model) <= MAX_ORDER


@dataclass(frozen=True, eq=False)
class TermOneLevels:
    """A scalar term 1's levels in the classes form, whose capsule holds only the classes'
    sums: dₖ = M₁₁,ₖ and level k's column cₖ of M₂₁, its coupling with the later terms'
    rows as (level, row, value) triplets (the nonzeros) and its X and ỹ rows dense (ℓ₁ ×
    (p + 1)): what term 1's modes at θ need
    (:meth:`glmm.objectives.lmm.LmmObjective._core_evaluation`)."""

    d: np.ndarray
    level: np.ndarray
    row: np.ndarray
    value: np.ndarray
    tail: np.ndarray


@dataclass(frozen=True, eq=False)
class LmmCrossProducts:
    """:func:`lmm_crossproducts`: the core's capsule, the shift β₀ of ỹ = y − o − Xβ₀ and, in
    the classes form, term 1's levels (:class:`TermOneLevels`; else None)."""

    capsule: object
    beta0: np.ndarray
    levels: TermOneLevels | None
    #: the supernodal factor's order of S̄'s first q₂ rows: the core's row i is the later
    #: terms' mode order[i] (None: in u's order)
    order: np.ndarray | None = None


def lmm_crossproducts(model: GlmerModel, REML: bool) -> LmmCrossProducts | None:
    """The model's cross-products (:class:`LmmCrossProducts`), or None where the core does
    not take the model."""
    if not compiled_applies(model):
        return None
    assert _core is not None
    for module in ("cython_lapack", "cython_blas"):   # the core's LAPACK: see glmm.threads
        scipy_linalg(module)
    first, rest = model.terms[0], model.terms[1:]
    assert first.theta_slice.start == 0   # the core reads term 1's θ first
    w, X = model.weights, model.X
    n, p = X.shape
    unit = model.unit_weights
    y = model.y if model.zero_offset else model.y - model.offset
    p1, l1 = first.p, first.nlevels
    q2 = sum(t.nlevels for t in rest)
    m2 = q2 + p + 1
    if n * (l1 * p1 + m2) <= MAX_PRODUCT:
        beta0, (M11, M1t, grids, counts, level, row, sums, nrest, M22) = _product_blocks(
            model, y, unit)
    else:
        beta0 = np.zeros(0)
        if p:
            wX = X if unit else w[:, None] * X
            beta0 = _normal_equations(X.T @ wX, wX.T @ y, model, y)
            fit = X @ beta0
            y = np.subtract(y, fit, out=fit)   # ỹ = y − o − Xβ₀, in the product's memory
        M11, M1t, grids, counts, level, row, sums, nrest, M22 = _sum_blocks(model, y, unit)

    def grid(c: int) -> np.ndarray:
        """Column c of term 1's coupling with the later terms, dense (ℓ₁ × q₂)."""
        if grids is not None:
            return grids[c]
        out = np.zeros((l1, q2))
        out[level, row] = sums[:, c]
        return out

    if rest:
        nk = nrest + (p + 1)   # level k's rows of the coupling: the later terms' it meets, X, ỹ
        sparse_pairs = float(nk @ nk) * p1
    else:   # one term: each level meets the p + 1 rows of X and ỹ alone
        sparse_pairs = float(l1 * (p + 1) ** 2 * p1)
    dense = DENSE_COST * m2 * m2 * l1 * p1 <= sparse_pairs
    rterm = np.array([t.theta_slice.start for t in rest for _ in range(t.nlevels)]
                     + [-1] * (p + 1), dtype=np.int64)
    logw = model.log_weight_sum
    REML = bool(REML) and p > 0   # lme4's REML with no fixed effects is ML: ν = n, no R_X
    if p1 == 1:
        d, nlev, inverse = _level_classes(M11[:, 0, 0])
        cost = min(DENSE_COST * m2 * m2 * l1, sparse_pairs)
        if (CLASSES_COST * len(d) * m2 * m2 <= cost / 2 and len(d) * m2 * m2 <= MAX_CLASSES
                and l1 * m2 <= MAX_COUPLING):
            C = np.empty((l1, m2))   # M₂₁ᵀ, dense: level k's row is its column cₖ
            C[:, :q2] = grid(0)
            C[:, q2:] = M1t[:, 0, :]
            H = _class_grams(inverse, len(d), C)
            met, row = np.nonzero(C[:, :q2])   # the coupling's nonzeros, kept (C is freed)
            return LmmCrossProducts(_core.lmm_classes(d, nlev, H, M22, rterm, p, n, REML, logw,
                                                      model.ntheta), beta0,
                                    TermOneLevels(M11[:, 0, 0], met, row, C[met, row],
                                                  np.ascontiguousarray(M1t[:, 0, :])))
    if p1 * (l1 * m2 if dense else int(nrest.sum()) + l1 * (p + 1)) > MAX_COUPLING:
        return None   # numpy's blocked factor keeps no dense copies of the coupling
    if not dense and grids is not None:   # the sparse layout's entries: the grid's nonzeros
        keys = np.flatnonzero(counts)
        level, row = keys // q2, keys % q2
        sums = np.stack([g.ravel()[keys] for g in grids], axis=1).astype(float)
    supernodal, perm = False, None
    if not dense and m2 >= SUPERNODAL_MIN_ORDER:
        # S̄'s pattern: each level's rows pairwise, and the later terms' pairs in M₂₂
        pairs = _m22_pairs(rest, np.cumsum([0] + [t.nlevels for t in rest]))
        lptr = np.concatenate([[0], np.cumsum(nrest),
                               len(row) + 2 * np.arange(1, len(pairs) + 1)])
        order = np.empty(q2, dtype=np.int64)
        flops = _core.lmm_order(lptr.astype(np.int64), np.concatenate([row, pairs.ravel()]), q2,
                                m2, order)
        if flops <= SUPERNODAL_RATIO * m2 ** 3 / 3:   # S̄'s rows in that order: PᵀS̄P
            supernodal, perm = True, order
            pos = np.empty(q2, dtype=np.int64)
            pos[perm] = np.arange(q2)
            level, row, sums = _reordered(pos, level, row, sums)
            rterm[:q2] = rterm[perm]
            full = np.concatenate([perm, np.arange(q2, m2)])
            M22 = np.take(np.take(M22, full, axis=0), full, axis=1)
    if dense:
        if q2:
            M21 = np.empty((l1, p1, m2))
            for c in range(p1):
                M21[:, c, :q2] = grid(c)
            M21[:, :, q2:] = M1t
            M21 = M21.ravel()
        else:   # one term: the coupling is term 1's with X and ỹ alone
            M21 = np.ascontiguousarray(M1t).ravel()
        ptr, rows = _dense_layout(l1, m2)
    else:
        nk = nrest + p + 1
        ptr = np.concatenate([[0], np.cumsum(nk)]).astype(np.int64)
        first_key = np.concatenate([[0], np.cumsum(nrest)[:-1]])
        pos = np.arange(len(level)) - first_key[level]
        rows = np.empty(int(ptr[-1]), dtype=np.int64)
        M21 = np.empty(p1 * int(ptr[-1]))
        rows[ptr[level] + pos] = row
        for c in range(p1):
            M21[p1 * ptr[level] + c * nk[level] + pos] = sums[:, c]
        for t in range(p + 1):
            at = ptr[:-1] + nrest + t
            rows[at] = q2 + t
            for c in range(p1):
                M21[p1 * ptr[:-1] + c * nk + nrest + t] = M1t[:, c, t]
    return LmmCrossProducts(
        _core.lmm_model(p1, l1, _tril_pairs(p1), rterm, np.ascontiguousarray(M11.ravel()), ptr,
                        rows, M21, M22, p, bool(dense), n, REML, logw, model.ntheta, supernodal),
        beta0, None, perm)


def _sum_blocks(model: GlmerModel, y: np.ndarray, unit: bool) -> tuple:
    """M's blocks by sums over each level's observations (bincounts, no n × q array; ỹ = y):
    M₁₁ (ℓ₁ × p₁ × p₁), M₁ₜ (term 1 × [X, ỹ]: ℓ₁ × p₁ × (p + 1)), term 1's coupling with
    the later terms (dense grids ℓ₁ × q₂ per column of term 1 with the counts of the pairs,
    or, beyond MAX_BINCOUNT, the (level, row, sums) of the pairs that share an observation),
    the later terms met per level, and M₂₂ (m₂ × m₂)."""
    first, rest = model.terms[0], model.terms[1:]
    w, X = model.weights, model.X
    p = X.shape[1]
    tail = [*np.ascontiguousarray(X.T), y]           # X's and ỹ's columns: their rows of M
    p1, l1 = first.p, first.nlevels
    X1 = first.Xi
    q2 = sum(t.nlevels for t in rest)
    m2 = q2 + p + 1
    counts = level = row = sums = None
    wX1 = X1 if unit else w[:, None] * X1
    M11 = np.empty((l1, p1, p1))
    for c in range(p1):
        for d in range(c, p1):
            M11[:, c, d] = M11[:, d, c] = np.bincount(
                first.codes, None if unit and first.intercept else wX1[:, c] * X1[:, d],
                minlength=l1)
    # term 1 × (X, ỹ): (ℓ₁, p₁, p + 1)
    M1t = np.stack([column_level_sums(first, None if unit and first.intercept else wX1[:, c],
                                      tail) for c in range(p1)], axis=1)
    offsets = np.cumsum([0] + [t.nlevels for t in rest])
    rx = [t.Xi[:, 0] for t in rest]
    # term 1 × the later terms: keys level·q₂ + row, one per observation and later term;
    # summed by one bincount into the dense ℓ₁ × q₂ grid where it is small enough, which is
    # then the dense coupling block itself (its nonzeros are the sparse layout's entries)
    grids = None
    if rest:
        parts = []
        for off, t in zip(offsets, rest, strict=False):
            k = first.codes * q2
            k += t.codes
            if off:
                k += off
            parts.append(k)
        key = parts[0] if len(parts) == 1 else np.concatenate(parts)
        del parts
        # all ones (unit weights, intercepts only): the sums are the counts
        ones = unit and first.intercept and all(t.intercept for t in rest)
        vals = None if ones else np.concatenate([(w * x)[:, None] * X1 for x in rx])
        if l1 * q2 <= min(MAX_BINCOUNT, SPARSE_KEYS * len(key)):
            counts = np.bincount(key, minlength=l1 * q2)
            grids = ([counts.reshape(l1, q2)] if vals is None else
                     [np.bincount(key, vals[:, c], minlength=l1 * q2).reshape(l1, q2)
                      for c in range(p1)])
            nrest = np.count_nonzero(counts.reshape(l1, q2), axis=1)
        else:
            if vals is None:
                keys, counts = np.unique(key, return_counts=True)
                sums = counts.astype(float)[:, None]
            else:
                keys, inverse = np.unique(key, return_inverse=True)
                sums = np.stack([np.bincount(inverse, vals[:, c], minlength=len(keys))
                                 for c in range(p1)], axis=1)
            level, row = keys // q2, keys % q2
            nrest = np.bincount(level, minlength=l1)
        del key
    else:
        nrest = np.zeros(l1, dtype=np.int64)
        level = row = np.zeros(0, dtype=np.int64)
        sums = np.zeros((0, p1))

    M22 = _m22(None if unit else w, tail, rest, rx, offsets, q2, m2)
    return M11, M1t, grids, counts, level, row, sums, nrest, M22


#: β₀ is taken by least squares where a pivot² of XᵀWX's Cholesky factor falls below this
#: fraction of its diagonal entry (X nearly rank deficient: the normal equations would give
#: an ill-determined β₀); lmm.c's GRAM_PIVOT, for the sums route
GRAM_PIVOT = 1e-10


def _least_squares(model: GlmerModel, y: np.ndarray) -> np.ndarray:
    """β₀ = the least-squares fit of √w(y − o) on √w X (where XᵀWX is numerically not
    positive definite, or nearly not: :data:`GRAM_PIVOT`)."""
    sw = np.sqrt(model.weights)
    return np.linalg.lstsq(sw[:, None] * model.X, sw * y, rcond=None)[0]


def _normal_equations(F: np.ndarray, b: np.ndarray, model: GlmerModel, y: np.ndarray
                      ) -> np.ndarray:
    """β₀ solving F β = b (F = XᵀWX, b = XᵀW(y − o)) by Cholesky, as lmm_gram does for the
    product route; least squares where a pivot² falls below GRAM_PIVOT of its diagonal."""
    try:
        R = cholesky(F, lower=False)
    except FactorizationError:
        return _least_squares(model, y)
    if (R.diagonal() ** 2 < GRAM_PIVOT * F.diagonal()).any():
        return _least_squares(model, y)
    return cho_solve(R, b, lower=False)


def _product_blocks(model: GlmerModel, y: np.ndarray, unit: bool
                    ) -> tuple[np.ndarray, tuple]:
    """β₀ and :func:`_sum_blocks`'s blocks from M = AᵀWA of A = [Z X ỹ] (n × (q + p + 1))
    for small models, where a handful of numpy calls cost less than the per-level sums'
    dozens: row i of A has k = Σₜpₜ + p + 1 nonzeros, at columns cᵢ, and the core
    (``lmm_gram``) sums the n·k² products (aᵢⱼaᵢₗ)wᵢ into M at (cᵢⱼ, cᵢₗ) in the
    observations' order (the dense product would multiply Z's zeros too), takes β₀ from M's
    X rows and sums M's last row and column again with ỹ = y − o − Xβ₀ (from M's y entries,
    ỹᵀWỹ would cancel).  A pair of levels counts as met where its sum is not 0."""
    assert _core is not None
    first, rest = model.terms[0], model.terms[1:]
    w, X = model.weights, model.X
    n, p = X.shape
    p1, l1 = first.p, first.nlevels
    q1, q = l1 * p1, model.q
    m = q + p + 1
    k = sum(t.p for t in model.terms) + p + 1
    col = np.empty((n, k), dtype=np.int64)   # cᵢ: Z's columns, then X's and y's
    val = np.empty((n, k))                   # aᵢ at them
    at = j = 0
    for t in model.terms:
        base = t.codes * t.p
        base += at
        for c in range(t.p):   # term t's entry c: column at + codeᵢ·pₜ + c
            np.add(base, c, out=col[:, j])
            val[:, j] = t.Xi[:, c]
            j += 1
        at += t.nlevels * t.p
    col[:, j:] = np.arange(q, m)
    val[:, j:j + p] = X
    val[:, -1] = y
    M, beta0 = np.empty((m, m)), np.empty(p)
    wc = None if unit else w
    if not _core.lmm_gram(n, k, m, p, col, val, wc, M, beta0):   # XᵀWX not PD numerically
        beta0 = _least_squares(model, y)
        val[:, -1] = y - X @ beta0
        _core.lmm_gram(n, k, m, 0, col, val, wc, M, beta0[:0])
    # M₁₁,ₖ = M[kp₁:(k+1)p₁, kp₁:(k+1)p₁], M's diagonal blocks: a strided view, copied
    s = M.strides[1]
    M11 = np.ndarray((l1, p1, p1), buffer=M, strides=((m + 1) * p1 * s, m * s, s)).copy()
    M1t = M[:q1, q:].reshape(l1, p1, p + 1)
    grids = counts = None
    level = row = np.zeros(0, dtype=np.int64)
    sums = np.zeros((0, p1))
    nrest = np.zeros(l1, dtype=np.int64)
    if rest:
        coupling = M[:q1, q1:q].reshape(l1, p1, q - q1)
        grids = [np.ascontiguousarray(coupling[:, c, :]) for c in range(p1)]
        met = grids[0] != 0.0 if p1 == 1 else (coupling != 0.0).any(axis=1)
        counts = met.ravel()
        nrest = np.count_nonzero(met, axis=1)
    return beta0, (M11, M1t, grids, counts, level, row, sums, nrest,
                   np.ascontiguousarray(M[q1:, q1:]))


def _reordered(pos: np.ndarray, level: np.ndarray, row: np.ndarray,
               sums: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The coupling's (level, row, sums) with S̄'s first q₂ rows renumbered, pos[r] the new
    index of row r (X's and ỹ's rows stay last), the pairs again level by level, rows
    increasing within a level.  A permutation of S̄'s rows changes no criterion: the core's
    S̄ is PᵀS̄P."""
    row = pos[row]
    order = np.argsort(level * len(pos) + row)
    return level[order], row[order], sums[order]


def _m22_pairs(rest: tuple, offsets: np.ndarray) -> np.ndarray:
    """The pairs (rows of S̄) of two later terms' levels that share an observation: M₂₂'s
    nonzeros among the later terms' rows, off its diagonal (a term's own block is diagonal),
    as an (npairs, 2) int64 array."""
    out = [np.zeros((0, 2), dtype=np.int64)]
    for s, ts in enumerate(rest):
        for t in range(s + 1, len(rest)):
            tt = rest[t]
            cells = np.flatnonzero(np.bincount(ts.codes * tt.nlevels + tt.codes,
                                               minlength=ts.nlevels * tt.nlevels))
            out.append(np.column_stack([offsets[s] + cells // tt.nlevels,
                                        offsets[t] + cells % tt.nlevels]))
    return np.concatenate(out).astype(np.int64)


def _m22(w: np.ndarray | None, tail: list[np.ndarray], rest: tuple, rx: list,
         offsets: np.ndarray, q2: int, m2: int) -> np.ndarray:
    """M₂₂: the later terms' and X's and ỹ's cross-products (m₂ × m₂, dense); w None for
    unit weights."""
    M22 = np.zeros((m2, m2))
    for a, ca in enumerate(tail):   # X's and ỹ's block, one dot product per entry
        wa = ca if w is None else w * ca
        for b in range(a, len(tail)):
            M22[q2 + a, q2 + b] = M22[q2 + b, q2 + a] = wa @ tail[b]
    for s, (xs, ts) in enumerate(zip(rx, rest, strict=True)):
        a, b = offsets[s], offsets[s + 1]
        wx = None if w is None and ts.intercept else (xs if w is None else w * xs)
        M22[np.arange(a, b), np.arange(a, b)] = np.bincount(
            ts.codes, None if wx is None else wx * xs, minlength=ts.nlevels)
        M22[a:b, q2:] = column_level_sums(ts, wx, tail)
        M22[q2:, a:b] = M22[a:b, q2:].T
        for t in range(s + 1, len(rest)):
            c0, c1 = offsets[t], offsets[t + 1]
            tt = rest[t]
            blk = np.bincount(ts.codes * tt.nlevels + tt.codes,
                              None if wx is None and tt.intercept else
                              (rx[t] if wx is None else wx * rx[t]),
                              minlength=ts.nlevels * tt.nlevels).reshape(ts.nlevels, tt.nlevels)
            M22[a:b, c0:c1] = blk
            M22[c0:c1, a:b] = blk.T
    return M22


def column_level_sums(term: RandomTerm, weight: np.ndarray | None, cols: list[np.ndarray]
                ) -> np.ndarray:
    """Σ over each level's observations of weight·c for each column c (ℓ × len(cols)), one
    bincount per column (weight None: 1).  Unlike RandomTerm.level_sums, which sums an
    n × k array through one cached flat index (PIRLS calls it at every step), this one forms
    no n × k array: the cross-products are summed once, over columns of up to 10⁶ rows and
    more."""
    out = np.empty((term.nlevels, len(cols)))
    for j, c in enumerate(cols):
        out[:, j] = np.bincount(term.codes, c if weight is None else weight * c,
                                minlength=term.nlevels)
    return out


@lru_cache(maxsize=64)
def _tril_pairs(p1: int) -> np.ndarray:
    """T₁'s θ positions as the core takes them: (row, col) pairs, flat (read-only)."""
    pairs = np.array(theta_pattern(p1), dtype=np.int64).T.ravel()
    pairs.setflags(write=False)
    return pairs


@lru_cache(maxsize=64)
def _dense_layout(l1: int, m2: int) -> tuple[np.ndarray, np.ndarray]:
    """The dense coupling's layout for the core: level k's entries start at ptr[k] = k·m₂
    and are at rows 0, …, m₂ − 1 (read-only)."""
    ptr = np.arange(l1 + 1, dtype=np.int64) * m2
    rows = np.tile(np.arange(m2, dtype=np.int64), l1)
    ptr.setflags(write=False)
    rows.setflags(write=False)
    return ptr, rows


def _level_classes(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Term 1's levels (p₁ = 1) by their value dₖ = M₁₁,ₖ: the distinct values, the
    number of levels of each and each level's class.  Levels of equal dₖ are eliminated
    with the same weight θ₁²/(θ₁²dₖ + 1), so the core sums their cₖcₖᵀ once (lmm.c,
    evaluate_classes)."""
    # np.unique(d, return_inverse=True, return_counts=True), by one stable sort (np.unique's
    # own steps cost several times more on term 1's few levels); one class where every
    # level has the same dₖ (a balanced design)
    if np.count_nonzero(d != d[0]) == 0:
        return d[:1].copy(), np.array([len(d)], dtype=np.int64), np.zeros(len(d), np.int64)
    order = np.argsort(d, kind="stable")
    s = d[order]
    new = np.empty(len(s), dtype=bool)
    new[:1] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    inverse = np.empty(len(d), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    counts = np.empty(len(starts), dtype=np.int64)
    np.subtract(starts[1:], starts[:-1], out=counts[:-1])
    counts[-1] = len(s) - starts[-1]
    return s[starts], counts, inverse


def _class_grams(inverse: np.ndarray, K: int, C: np.ndarray) -> np.ndarray:
    """H_c = Σ_{k ∈ c} cₖcₖᵀ for each class c (K × m₂ × m₂), cₖ level k's column of
    M₂₁ (row k of C: the later terms' rows, then X's and ỹ's)."""
    if K == 1:
        return np.ascontiguousarray((C.T @ C)[None])
    m2 = C.shape[1]
    order = stable_order(inverse, K)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=K))])
    H = np.empty((K, m2, m2))
    for c in range(K):
        Cc = C[order[bounds[c]:bounds[c + 1]]]
        H[c] = Cc.T @ Cc
    return H
