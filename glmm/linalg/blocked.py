"""The blocked Cholesky factor of G = Λᵀ Zᵀ W Z Λ + I.

lme4 factors G with CHOLMOD.  Here G is split by random-effects terms, which lme4 orders by
decreasing number of levels, so the first term is the largest:

    G = [ G₁₁  G₁₂ ]     G₁₁: block diagonal, one p₁×p₁ block per level of term 1
        [ G₂₁  G₂₂ ]     G₂₁ (q₂ × q₁) and G₂₂: dense, the remaining q₂ = q − ℓ₁p₁ modes

Every observation belongs to exactly one level of term 1, so G₁₁ is block diagonal whatever
the other terms are (the MixedModels.jl observation).  With the Schur complement
S = G₂₂ − G₂₁ G₁₁⁻¹ G₁₂ (dense, q₂×q₂):

    log|G| = Σ_k log|G₁₁,k| + log|S|                     (lme4's ldL2)
    G x = r  ⇔  x₂ = S⁻¹ (r₂ − G₂₁ G₁₁⁻¹ r₁),   x₁ = G₁₁⁻¹ (r₁ − G₁₂ x₂)

No dense n×q or q×q matrix is formed: the dense blocks are q₂×q₁ and q₂×q₂, whose size is
set by the smaller terms (at most 5,000 × 200 in the benchmarks).  For the joint (u, β)
system of nAGQ = 0 the fixed effects are one more dense block after the later terms' (p more
rows of S: :class:`BlockedCholesky` with ``fixed``), so that one factor gives lme4's R_X too.
The fill-reducing permutation of CHOLMOD changes neither log|G| nor any solution.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..cached import cached_property
from ..compiled import core as _core
from .coupling import CouplingPattern, TermLayout, cross_index
from .lapack import FactorizationError, cho_inverse, cho_solve, cholesky

if TYPE_CHECKING:
    import scipy.sparse

#: Largest Schur block (q₂) the dense path accepts: 8·q₂² bytes, here 800 MB.
MAX_DENSE_SCHUR = 10_000
#: Largest coupling block G₂₁ (q₂ × q₁, dense, as is G₁₁⁻¹G₁₂): 8e7 entries, 640 MB.
MAX_DENSE_CROSS = 80_000_000
#: A sparse G₂₁ times at most this many columns goes by a bincount per column.
FEW_COLUMNS = 16


def _block_gram(codes: np.ndarray, nlevels: int, A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Σ_{i in level k} Wᵢ aᵢ aᵢᵀ for every level k: an (ℓ, p, p) array."""
    p = A.shape[1]
    out = np.empty((nlevels, p, p))
    for c in range(p):
        wa = W * A[:, c]
        for d in range(c, p):
            s = np.bincount(codes, wa * A[:, d], minlength=nlevels)
            out[:, c, d] = s
            out[:, d, c] = s
    return out


def _diagonal_gram(t: TermLayout, W: np.ndarray) -> np.ndarray:
    """Σ_{i at level k} Wᵢ aᵢ² for every level k of a scalar term: its own block of ΛᵀZᵀWZΛ,
    which is diagonal (θ² Σ W for a (1 | g) term)."""
    if t.constant is not None:
        return t.constant ** 2 * t.level_sums(W)
    a = t.A[:, 0]
    return t.level_sums(W * a * a)


def _cross(ta: TermLayout, tb: TermLayout, W: np.ndarray,
           index: list[np.ndarray] | None = None) -> np.ndarray:
    """Σᵢ Wᵢ (row of ta)ᵀ (row of tb): the dense q_a × q_b block of ΛᵀZᵀWZΛ.

    One bincount per column pair over the flattened :func:`cross_index` (``index``, or built
    here), not a sparse matrix: constructing one costs more than the block it gives.
    """
    if index is None:
        index = cross_index(ta, tb)
    size = ta.q * tb.q
    if ta.constant is not None and tb.constant is not None:
        out = (ta.constant * tb.constant) * np.bincount(index[0], W, minlength=size)
        return out.reshape(ta.q, tb.q)
    out = np.zeros(size)
    k = 0
    for c in range(ta.p):
        wa = W * ta.A[:, c]
        for d in range(tb.p):
            out += np.bincount(index[k], wa * tb.A[:, d], minlength=size)
            k += 1
    return out.reshape(ta.q, tb.q)


class BlockedCholesky:
    """G = ΛᵀZᵀWZΛ + I for the terms' layouts and the weights W, factored blockwise; with
    ``fixed`` = (C, F) = (ΛᵀZᵀWX, XᵀWX), the matrix of the joint (u, β) system

        A = [ G   C ]     C = [C₁; C₂] split as u = (u₁, u₂),
            [ Cᵀ  F ]

    with the fixed effects as one more dense block after the later terms' (as lme4's and
    MixedModels.jl's blocked factors).  Eliminating G₁₁ leaves one dense matrix,

        S̄ = [ G₂₂  C₂ ] − [ G₂₁ ] G₁₁⁻¹ [ G₁₂  C₁ ] = L̄ L̄ᵀ,     L̄ = [ L_S   0    ]
            [ C₂ᵀ  F  ]   [ C₁ᵀ ]                                     [ M     R_Xᵀ ]

    whose factor holds both G's (L_S, the leading q₂ × q₂ block, so log|G| is unchanged) and
    lme4's R_X (R_XᵀR_X = F − CᵀG⁻¹C, the Schur complement of G in A): one Cholesky.
    Then ``solve`` solves with A, and ``RX`` is R_X (None without ``fixed``).

    ``pattern`` (:class:`CouplingPattern` of the same terms, which depends on the level
    codes only) is built here when not given.
    """

    def __init__(self, terms: Sequence[TermLayout], W: np.ndarray,
                 pattern: CouplingPattern | None = None,
                 fixed: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        first, rest = terms[0], list(terms[1:])
        self.q1 = first.q
        self.p1 = first.p
        self._lead = 0
        self.nlevels1 = first.nlevels
        if first.p == 1:   # G₁₁ is diagonal: D = 1 + Σ W a² per level
            self.D = 1.0 + _diagonal_gram(first, W)
            if not (self.D > 0.0).all():
                raise FactorizationError("G₁₁ is not positive definite")
            logdet = float(np.log(self.D).sum())
        else:
            G11 = _block_gram(first.codes, first.nlevels, first.A, W)
            G11.reshape(first.nlevels, first.p * first.p)[:, ::first.p + 1] += 1.0   # + I
            try:
                self.L11 = np.linalg.cholesky(G11)  # (ℓ₁, p₁, p₁) lower
            except np.linalg.LinAlgError as exc:
                raise FactorizationError("G₁₁ is not positive definite") from exc
            logdet = 2.0 * float(np.log(np.diagonal(self.L11, axis1=1, axis2=2)).sum())
            # G₁₁⁻¹ = L₁₁⁻ᵀL₁₁⁻¹ per level, applied by two batched products: G₁₁ ⪰ I, so
            # every L₁₁ has singular values ≥ 1 and its inverse is as accurate as a solve
            self._L11inv = np.linalg.inv(self.L11)
        q2 = self.q2 = sum(t.q for t in rest)
        self.sparse = False
        C1 = C2 = F = None
        if fixed is not None:
            C, F = fixed
            C1, C2 = C[: self.q1], C[self.q1:]
        self._C1 = C1
        m = q2 + (0 if F is None else F.shape[0])   # the order of S̄
        self.RX: np.ndarray | None = None
        if not m:
            self.logdet = logdet
            return
        if q2 > MAX_DENSE_SCHUR:
            raise FactorizationError(
                f"the random-effects terms after the first have {q2} modes; the dense "
                f"Schur complement is limited to {MAX_DENSE_SCHUR}")
        S = np.empty((m, m))
        if q2:
            if pattern is None:
                pattern = CouplingPattern(terms)
            self.sparse = pattern.sparse
            self._pattern = pattern
            self._lead = pattern.lead
            if self.sparse:
                parts = []
                for t in rest:
                    for d in range(t.p):
                        if first.constant is not None and t.constant is not None:
                            parts.append(W * (first.constant * t.constant))
                        else:
                            parts.append(W * first.A[:, 0] * t.A[:, d])
                vals = parts[0] if len(parts) == 1 else np.concatenate(parts)
                self._g21 = np.bincount(pattern.slot, vals, minlength=pattern.nnz)
                self._kt = self._g21 / self.D[pattern.indices]   # Kᵀ = G₂₁G₁₁⁻¹, same pattern
                G21 = None
            else:
                if self.q1 * q2 > MAX_DENSE_CROSS:
                    raise FactorizationError(
                        f"the first random-effects term has {self.q1} modes and the others "
                        f"{q2}; their dense coupling block is limited to "
                        f"{MAX_DENSE_CROSS} entries")
                G21 = [_cross(t, first, W, pattern.cross_index(k, 0))
                       for k, t in enumerate(rest, start=1)]
            self._gram22(rest, W, pattern, S[:q2, :q2])
        else:
            G21 = []
        if C2 is not None and F is not None:
            if q2:
                S[:q2, q2:] = C2
                S[q2:, :q2] = C2.T
            S[q2:, q2:] = F
        if self.sparse:   # p₁ = 1; G₂₁ on the pattern, C₁ dense
            pattern = self._pattern
            if _core is not None:   # pair by pair, any number of pairs, in compiled code
                _core.coupling_outer(*pattern.by_level, pattern.rows, q2, self._g21, self._kt,
                                     S, m)
            elif pattern.pairs is not None:
                pa, pb, target = pattern.pairs
                S[:q2, :q2] -= np.bincount(target, self._g21[pa] * self._kt[pb],
                                           minlength=q2 * q2).reshape(q2, q2)
            else:
                S[:q2, :q2] -= (self._csr(self._kt) @ self.G21.T).toarray()
            if C1 is not None:
                E = self._solve11(C1)                       # G₁₁⁻¹C₁
                S[:q2, q2:] -= self._g21_dot(E)
                S[q2:, :q2] = S[:q2, q2:].T
                S[q2:, q2:] -= C1.T @ E
        else:   # B = [G₂₁; C₁ᵀ] dense, K̄ = G₁₁⁻¹Bᵀ
            if C1 is not None:
                G21.append(C1.T)
            self._B = G21[0] if len(G21) == 1 else np.vstack(G21)
            Kbar = self._solve11(self._B.T)
            self.K = Kbar[:, :q2]   # G₁₁⁻¹G₁₂  (q₁ × q₂)
            S -= self._B @ Kbar
        self.L2 = self._cholesky_S(S)
        if q2:
            logdet += 2.0 * float(np.log(np.diagonal(self.L2)[:q2]).sum())
        self.logdet = logdet
        if F is not None:
            self.RX = np.array(self.L2[q2:, q2:].T)

    @classmethod
    def from_core(cls, D: np.ndarray, Bt: np.ndarray, R: np.ndarray, pattern: CouplingPattern
                  ) -> BlockedCholesky:
        """The factor of scalar terms with a dense coupling block as the compiled core's
        PIRLS built it (glmm/csrc/crossed.c): D = diag(G₁₁), Bt = [G₂₁; C₁ᵀ]ᵀ (q₁ × m) and R
        (upper, RᵀR = S̄), m = q₂ + p with p = 0 unless the fixed effects are included."""
        self = cls.__new__(cls)
        q1, q2 = len(D), pattern.q2
        self.q1, self.p1, self.nlevels1, self.q2 = q1, 1, q1, q2
        self._lead, self.sparse, self._pattern = 0, False, pattern
        self.D, self._B = D, Bt.T
        self._C1 = Bt[:, q2:] if Bt.shape[1] > q2 else None
        self.L2 = R.T   # lower, in LAPACK's (column-major) order
        self.logdet = float(np.log(D).sum()) + 2.0 * float(np.log(np.diagonal(R)[:q2]).sum())
        self.RX = np.array(R[q2:, q2:]) if R.shape[0] > q2 else None
        return self

    @cached_property
    def K(self) -> np.ndarray:
        """G₁₁⁻¹G₁₂ (q₁ × q₂, dense coupling): set by the constructor, or built on first use
        from a factor of :meth:`from_core` (whose own gradient and warm start never need it)."""
        return self._B[: self.q2].T / self.D[:, None]

    def _gram22(self, rest: Sequence[TermLayout], W: np.ndarray, pattern: CouplingPattern,
                out: np.ndarray) -> None:
        """G₂₂ = (ΛᵀZᵀWZΛ + I) over the later terms, into ``out`` (q₂ × q₂)."""
        out[:] = 0.0
        offsets = list(itertools.accumulate([t.q for t in rest], initial=0))
        for i, ti in enumerate(rest):
            if ti.p == 1:   # a scalar term's own block is diagonal
                k = np.arange(offsets[i], offsets[i + 1])
                out[k, k] = _diagonal_gram(ti, W)
            for j in range(i + (ti.p == 1), len(rest)):
                blk = _cross(ti, rest[j], W, pattern.cross_index(i + 1, j + 1))
                out[offsets[i]:offsets[i + 1], offsets[j]:offsets[j + 1]] = blk
                if j != i:
                    out[offsets[j]:offsets[j + 1], offsets[i]:offsets[i + 1]] = blk.T
        out[np.diag_indices(len(out))] += 1.0

    # -- S̄ (S = G₂₂ − G₂₁G₁₁⁻¹G₁₂ and, with ``fixed``, the fixed effects' blocks) ------------
    def _cholesky_S(self, S: np.ndarray) -> np.ndarray:
        """The lower Cholesky factor of S̄.  With a diagonal leading block Δ² (``lead`` of the
        pattern, a rows) it is built blockwise, the dense work left to the rest:

            L̄ = [ Δ    0  ]     B̃ = S̄₂₁Δ⁻¹,   L_C L_Cᵀ = S̄₂₂ − B̃B̃ᵀ
                [ B̃   L_C ]
        """
        a = self._lead
        if not a:
            return cholesky(S, lower=True, what="the Schur complement of G")
        d = np.diagonal(S)[:a]
        if not (d > 0.0).all():
            raise FactorizationError("the Schur complement of G is not positive definite")
        delta = np.sqrt(d)
        L = np.zeros_like(S, order="F")   # LAPACK's order: dpotrs would copy it each solve
        L[np.arange(a), np.arange(a)] = delta
        if len(S) > a:
            B = S[a:, :a] / delta
            L[a:, :a] = B
            L[a:, a:] = cholesky(S[a:, a:] - B @ B.T, lower=True,
                                 what="the Schur complement of G")
        return L

    def _inverse_S(self) -> np.ndarray:
        """S⁻¹ (G's own, q₂ × q₂, from L_S = L̄'s leading block); with a diagonal leading
        block, from the blocks of L_S (no q₂³ inversion):

            S⁻¹ = [ Δ⁻² + EᵀC̃⁻¹E   −EᵀC̃⁻¹ ]     E = B̃Δ⁻¹,  C̃⁻¹ = (L_C L_Cᵀ)⁻¹
                  [ −C̃⁻¹E          C̃⁻¹    ]
        """
        a, q2 = self._lead, self.q2
        LS = self.L2[:q2, :q2]
        if not a:
            return cho_inverse(np.asfortranarray(LS), lower=True)
        delta = np.diagonal(LS)[:a]
        out = np.zeros((q2, q2))
        out[np.arange(a), np.arange(a)] = 1.0 / (delta * delta)
        if q2 > a:
            E = LS[a:, :a] / delta
            Cinv = cho_inverse(np.asfortranarray(LS[a:, a:]), lower=True)
            CE = Cinv @ E
            out[:a, :a] += E.T @ CE
            out[a:, :a] = -CE
            out[:a, a:] = -CE.T
            out[a:, a:] = Cinv
        return out

    # -- B = [G₂₁; C₁ᵀ] (G₂₁ dense, or sparse on the CouplingPattern) ------------------------
    def _csr(self, data: np.ndarray) -> scipy.sparse.csr_matrix:
        import scipy.sparse  # scipy.sparse on first use: a slow import
        p = self._pattern
        return scipy.sparse.csr_matrix((data, p.indices, p.indptr), shape=(self.q2, self.q1))

    @property
    def G21(self) -> np.ndarray | scipy.sparse.csr_matrix:
        return self._csr(self._g21) if self.sparse else self._B[: self.q2]

    def _g21_dot(self, v: np.ndarray) -> np.ndarray:
        """G₂₁ v for v of shape (q₁,) or (q₁, k), G₂₁ sparse: one bincount per column up to
        FEW_COLUMNS columns (X's at the fit's final evaluation: no scipy.sparse import, a
        tenth of a second in a fresh process), else scipy.sparse's product."""
        p = self._pattern
        if v.ndim == 1:
            return np.bincount(p.rows, self._g21 * v[p.indices], minlength=self.q2)
        if v.shape[1] <= FEW_COLUMNS:
            out = np.empty((self.q2, v.shape[1]))
            for j in range(v.shape[1]):
                out[:, j] = np.bincount(p.rows, self._g21 * v[p.indices, j], minlength=self.q2)
            return out
        return self.G21 @ v

    def _b_dot(self, v: np.ndarray) -> np.ndarray:
        """B v = [G₂₁ v; C₁ᵀv] for v of shape (q₁,) or (q₁, k)."""
        if not self.sparse:
            return self._B @ v
        g = self._g21_dot(v)
        return g if self._C1 is None else np.concatenate([g, self._C1.T @ v])

    def _b_tdot(self, x: np.ndarray) -> np.ndarray:
        """Bᵀx = G₁₂ x₂ + C₁ x_β for x of shape (q₂ [+ p],) or (q₂ [+ p], k)."""
        if not self.sparse:
            return self._B.T @ x
        x2 = x[: self.q2]
        if x.ndim == 1:
            p = self._pattern
            out = np.bincount(p.indices, self._g21 * x2[p.rows], minlength=self.q1)
        else:
            out = self.G21.T @ x2
        return out if self._C1 is None else out + self._C1 @ x[self.q2:]

    # -- G₁₁ (block diagonal) --------------------------------------------------------------
    def _solve11(self, r: np.ndarray) -> np.ndarray:
        """G₁₁⁻¹ r for r of shape (q₁,) or (q₁, k)."""
        if self.p1 == 1:
            return r / (self.D if r.ndim == 1 else self.D[:, None])
        shape = r.shape
        rb = r.reshape(self.nlevels1, self.p1, -1)
        Li = self._L11inv
        return np.matmul(np.swapaxes(Li, 1, 2), np.matmul(Li, rb)).reshape(shape)

    # -- G, or A -----------------------------------------------------------------------------
    def solve(self, r: np.ndarray) -> np.ndarray:
        """G⁻¹r, or A⁻¹r with ``fixed``, for r of shape (q [+ p],) or (q [+ p], k):

            x̄ = S̄⁻¹(r̄ − B G₁₁⁻¹r₁),   x₁ = G₁₁⁻¹(r₁ − Bᵀx̄)     (r̄, x̄: all but the first term's)
        """
        r1 = r[: self.q1]
        if self.RX is None and not self.q2:
            return self._solve11(r1)
        x2 = cho_solve(self.L2, r[self.q1:] - self._b_dot(self._solve11(r1)), lower=True)
        x1 = self._solve11(r1 - self._b_tdot(x2))
        return np.concatenate([x1, x2])

    def inverse_times_rows(self, terms: Sequence[TermLayout]) -> list[np.ndarray]:
        """vₜ[i] = (G⁻¹ mᵢ) restricted to the block of term t at observation i's level (G's
        inverse, also when the factor is of the joint matrix A).

        mᵢ is row i of ZΛ (aᵢ,ₜ at level codesₜ[i] of each term), so only the entries of G⁻¹
        on the pattern of ZᵀZ are needed (a selected inverse), from the blocks

            (G⁻¹)₁₁ = G₁₁⁻¹ + K S⁻¹ Kᵀ (diagonal blocks only),  (G⁻¹)₁₂ = −K S⁻¹,
            (G⁻¹)₂₂ = S⁻¹,                                       K = G₁₁⁻¹ G₁₂.

        The leverages are hᵢ = Σₜ aᵢ,ₜ · vₜ[i]; the gradient's trace terms use vₜ directly.
        The entries are gathered at each observation through the pattern's cached
        :meth:`CouplingPattern.positions` of the terms' modes.
        """
        first, rest = terms[0], list(terms[1:])
        p1, l1 = first.p, first.nlevels
        if p1 == 1:   # G₁₁⁻¹ = diag(1/D); (G⁻¹)₁₁'s diagonal below, as (ℓ₁,)
            inv11 = 1.0 / self.D
        else:
            eye = np.tile(np.eye(p1), (l1, 1))                              # q₁ × p₁
            inv11 = self._solve11(eye).reshape(l1, p1, p1)                   # G₁₁⁻¹ blocks
        if rest:
            Sinv = self._inverse_S()
            if self.sparse:   # p₁ = 1: (G⁻¹)₁₁ diagonal = 1/D + Σ_c K∘(KS) over K's pattern
                p = self._pattern
                if _core is not None:   # KS on K's pattern only, the entries used below
                    ks = np.empty(p.nnz)
                    _core.coupling_gather(*p.by_level, p.rows, self.q2, self._kt,
                                          np.ascontiguousarray(Sinv), ks)
                else:
                    ks = np.asarray(self._csr(self._kt).T @ Sinv)[p.indices, p.rows]
                inv11 = inv11 + np.bincount(p.indices, self._kt * ks, minlength=l1)
            else:
                KS = self.K @ Sinv                                          # q₁ × q₂
                if p1 == 1:
                    inv11 = inv11 + np.einsum("kq,kq->k", KS, self.K)
                else:
                    Kb, KSb = self.K.reshape(l1, p1, self.q2), KS.reshape(l1, p1, self.q2)
                    inv11 = inv11 + np.einsum("kaq,kbq->kab", KSb, Kb)
        # (np.take: indexing the (ℓ₁, p₁, p₁) blocks by rows costs several times more)
        v = [(inv11[first.codes] * first.A[:, 0])[:, None] if p1 == 1
             else np.einsum("iab,ib->ia", np.take(inv11, first.codes, axis=0), first.A)]
        if not rest:
            return v
        n = len(first.codes)
        v += [np.zeros((n, t.p)) for t in rest]
        pattern, q2 = self._pattern, self.q2
        # (G⁻¹)₁₂ = −KS⁻¹ (q₁ × q₂; sparse: on the pattern) and S⁻¹, flat
        inv12 = -ks if self.sparse else -KS.ravel()
        Sinv = Sinv.ravel()
        pos1 = pattern.positions(0)
        for j, tj in enumerate(rest, start=1):
            pos = pattern.positions(j)
            for c in range(p1):     # term 1 ← term j, and term j ← term 1
                for d in range(tj.p):
                    g = (inv12[pattern.slots(j, d)] if self.sparse
                         else inv12[pos1[c] * q2 + pos[d]])
                    v[0][:, c] += g * tj.A[:, d]
                    v[j][:, d] += g * first.A[:, c]
            for k, tk in enumerate(rest, start=1):   # term j ← term k
                pos_k = pattern.positions(k)
                for c in range(tj.p):
                    for d in range(tk.p):
                        v[j][:, c] += Sinv[pos[c] * q2 + pos_k[d]] * tk.A[:, d]
        return v
