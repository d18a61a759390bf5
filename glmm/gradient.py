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
links (and nAGQ ≠ 1) use finite differences of the objective instead.
"""

from __future__ import annotations

import numpy as np

from .model import GlmerModel
from .pirls import PirlsState


def exact_gradient_available(model: GlmerModel, nAGQ: int) -> bool:
    fam = model.family
    return nAGQ == 1 and fam.canonical and fam.name in ("binomial", "poisson")


def laplace_gradient(model: GlmerModel, theta: np.ndarray, st: PirlsState) -> np.ndarray:
    """(∂F/∂θ, ∂F/∂β) at the mode ``st`` computed for (θ, β)."""
    fam, w = model.family, model.weights
    eta, mu = st.eta, st.mu
    m = fam.link.mu_eta(eta)
    m2 = fam.link.mu_eta2(eta)
    V = fam.variance(mu)
    Vp = fam.variance_deriv(mu)
    W = w * m * m / V
    Wp = w * (2.0 * m * m2 / V - m ** 3 * Vp / (V * V))
    s = w * m * (model.y - mu) / V
    layouts = model.layouts(theta)
    v = st.factor.inverse_times_rows(layouts)
    h = sum(np.einsum("ij,ij->i", lay.A, vt) for lay, vt in zip(layouts, v, strict=True))
    a = Wp * h
    z = st.factor.solve(model.zlam_t(layouts, a))
    r = a - W * model.zlam(layouts, z) - 2.0 * s
    grad_theta = np.empty(model.ntheta)
    for t, ub, zb, vt in zip(model.terms, model.u_blocks(st.u), model.u_blocks(z), v,
                             strict=True):
        rows, cols = t.tril
        for k, (ra, cb) in enumerate(zip(rows, cols, strict=True)):
            x = t.Xi[:, ra]
            grad_theta[t.theta_slice.start + k] = (
                r @ (x * ub[t.codes, cb]) + s @ (x * zb[t.codes, cb])
                + 2.0 * (W * x) @ vt[:, cb])
    return np.concatenate([grad_theta, model.X.T @ r])
