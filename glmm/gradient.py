"""The exact gradient of the Laplace objective F₁(θ, β) = log|G| + ‖ũ‖² + A(μ̃).

For families whose aic is the deviance plus a constant (binomial, Poisson) and canonical
links (so the observed and Fisher weights agree, H = G), with M = ZΛ, the score s, the
working weights W and their derivative W' = dW/dη at the mode (speed-design.md §2):

    hᵢ = mᵢᵀ G⁻¹ mᵢ                  leverages (a selected inverse of G)
    a  = W' ∘ h,   z = G⁻¹ Mᵀ a       one extra solve with the factor in hand
    r  = a − W ∘ (M z) − 2 s
    ∂F/∂β   = Xᵀ r
    ∂F/∂θₖ  = rᵀ(ZΛₖ ũ) + sᵀ(ZΛₖ z) + 2 tr(G⁻¹ ΛᵀZᵀWZ Λₖ)

Λₖ = ∂Λ/∂θₖ is a 0/1 pattern: for θₖ = Tₜ[a, b], row i of ZΛₖ holds Xₜ[i, a] in column b of
observation i's level of term t; the trace is Σᵢ Wᵢ Xₜ[i, a] (G⁻¹mᵢ)ₜ,b.  Other families and
links use finite differences of the objective instead.  nAGQ > 1: :mod:`glmm.agq`.
"""

from __future__ import annotations

import numpy as np

from .model import GlmerModel
from .pirls import PirlsState, schur_solve


def exact_gradient_available(model: GlmerModel, nAGQ: int) -> bool:
    fam = model.family
    return fam.canonical and fam.name in ("binomial", "poisson")


def laplace_gradient(model: GlmerModel, theta: np.ndarray, st: PirlsState) -> np.ndarray:
    """(∂F/∂θ, ∂F/∂β) at the mode ``st`` computed for (θ, β) (nAGQ = 1)."""
    return _gradient(model, theta, st, profiled=False)


def profiled_gradient(model: GlmerModel, theta: np.ndarray, st: PirlsState) -> np.ndarray:
    """∂F₀/∂θ at the joint mode ``st`` (nAGQ = 0, β profiled).

    The mode moves in β as well, so z solves the joint system of PIRLS,
    [G, ΛᵀZᵀWX; XᵀWZΛ, XᵀWX] [z_u; z_β] = [Mᵀa; Xᵀa], and r = a − W∘(M z_u + X z_β) − 2s;
    the θ formula is otherwise the one above (speed-design.md §3).
    """
    return _gradient(model, theta, st, profiled=True)


def _gradient(model: GlmerModel, theta: np.ndarray, st: PirlsState, profiled: bool
              ) -> np.ndarray:
    W, Wp = model.response.weight_derivatives(st.eta, st.mu, st.W)
    s = st.s
    layouts = st.layouts
    v = st.factor.inverse_times_rows(layouts)
    h = sum((lay.A[:, 0] * vt[:, 0] if lay.p == 1 else np.einsum("ij,ij->i", lay.A, vt))
            for lay, vt in zip(layouts, v, strict=True))
    a = Wp * h
    if profiled:
        assert st.C is not None and st.GiC is not None and st.RX is not None
        z, zb = schur_solve(st.factor, st.C, st.GiC, st.RX, model.zlam_t(layouts, a),
                            model.X.T @ a)
        r = a - W * (model.zlam(layouts, z) + model.X @ zb) - 2.0 * s
    else:
        z = st.factor.solve(model.zlam_t(layouts, a))
        r = a - W * model.zlam(layouts, z) - 2.0 * s
    grad_theta = np.empty(model.ntheta)
    for t, ub, zt, vt in zip(model.terms, model.u_blocks(st.u), model.u_blocks(z), v,
                             strict=True):
        rows, cols = t.tril
        for k, (ra, cb) in enumerate(zip(rows, cols, strict=True)):
            x = t.Xi[:, ra]
            grad_theta[t.theta_slice.start + k] = (
                r @ (x * ub[t.codes, cb]) + s @ (x * zt[t.codes, cb])
                + 2.0 * (W * x) @ vt[:, cb])
    return grad_theta if profiled else np.concatenate([grad_theta, model.X.T @ r])
