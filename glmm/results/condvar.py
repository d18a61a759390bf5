"""The conditional covariance of the random effects at the mode (lme4's ``ranef(fit,
condVar = TRUE)``, the ``postVar`` attribute; lme4 src/predModule.cpp ``condVar``;
docs/results.md §5).

With G = ΛᵀZᵀWZΛ + I = LLᵀ at the mode's working weights W and b = Λu:

    Var(b | y) ≈ σ²·Λ G⁻¹ Λᵀ

lme4 reports its diagonal blocks: per term and level the pₜ × pₜ block of that level's
columns.  Terms on one grouping factor (``(x || g)``, ``(1 | g) + (0 + x | g)``) are put
side by side as ``ranef`` puts their columns, block diagonal: lme4 drops the blocks between
terms.  lme4 takes L from its last PIRLS iteration (the weights of the iterate before the
mode); glmm's W is the mode's own (docs/objectives.md §3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..design.random import RandomEffects

if TYPE_CHECKING:
    import scipy.sparse as sp

#: right-hand sides per sparse solve
_CHUNK = 512


def inverse_blocks(G: sp.spmatrix, blocks: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """The diagonal blocks G⁻¹[a:a+p, a:a+p] for (a, p) in ``blocks``, by sparse LU solves
    against the unit vectors of their columns."""
    import scipy.sparse as sp  # scipy.sparse on first use: a slow import
    import scipy.sparse.linalg as spla
    G = sp.csc_matrix(G)
    lu = spla.splu(G)
    cols = np.concatenate([np.arange(a, a + p) for a, p in blocks]) if blocks else \
        np.zeros(0, dtype=int)
    where: dict[int, int] = {int(c): k for k, c in enumerate(cols)}
    sol = np.empty((G.shape[0], len(cols)))
    for s in range(0, len(cols), _CHUNK):
        c = cols[s:s + _CHUNK]
        E = np.zeros((G.shape[0], len(c)))
        E[c, np.arange(len(c))] = 1.0
        sol[:, s:s + len(c)] = lu.solve(E)
    out = []
    for a, p in blocks:
        idx = [where[a + j] for j in range(p)]
        B = sol[a:a + p][:, idx]
        out.append(0.5 * (B + B.T))
    return out


def conditional_variances(random: RandomEffects, theta: np.ndarray, W: np.ndarray,
                          sigma: float) -> dict[str, np.ndarray]:
    """Per grouping factor an array (levels, P, P) of σ²·(ΛG⁻¹Λᵀ) blocks, P the factor's
    ranef columns (its terms side by side, the cross-term blocks zero)."""
    import scipy.sparse as sp  # scipy.sparse on first use: a slow import
    Z = random.Z
    Lam = random.Lambda(theta)
    ZL = sp.csc_matrix(Z @ Lam)
    G = (ZL.T @ sp.diags(np.asarray(W, dtype=float)) @ ZL + sp.identity(random.q)).tocsc()
    blocks = []
    for i, t in enumerate(random.terms):
        base = int(random.offsets[i])
        blocks.extend((base + k * t.ncols, t.ncols) for k in range(t.nlevels))
    inv = inverse_blocks(G, blocks)
    per_term: list[np.ndarray] = []
    pos = 0
    for t in random.terms:
        Gi = np.stack(inv[pos:pos + t.nlevels])
        pos += t.nlevels
        T = t.T(theta)
        per_term.append(sigma * sigma * np.einsum("ij,ljk,mk->lim", T, Gi, T))
    out: dict[str, np.ndarray] = {}
    for g in random.group_names:
        idx = random.terms_of(g)
        P = sum(random.terms[i].ncols for i in idx)
        nlev = random.terms[idx[0]].nlevels
        A = np.zeros((nlev, P, P))
        c = 0
        for i in idx:
            p = random.terms[i].ncols
            A[:, c:c + p, c:c + p] = per_term[i]
            c += p
        out[g] = A
    return out
