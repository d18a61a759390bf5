"""The exact gradient of the Laplace objective F₁(θ, β) = log|G| + ‖ũ‖² + A(μ̃).

With M = ZΛ, at the mode: the score s, the Fisher weights W (those of G = MᵀWM + I, lme4's
factor) and W' = dW/dη, the observed weights O = −ds/dη (``Wobs``; H = MᵀOM + I is the
Hessian of ½P, and O = W for canonical links) and κ = dA/dD (1 where the aic is the deviance
plus a constant, binomial and Poisson; Gamma and the inverse Gaussian re-estimate φ from D);
docs/gradients.md §1–5:

    hᵢ = mᵢᵀ G⁻¹ mᵢ                           leverages (a selected inverse of G)
    a  = W' ∘ h,   z = H⁻¹ (Mᵀa + 2(1 − κ)ũ)   one extra solve (with G itself when O = W)
    r  = a − O ∘ (M z) − 2κ s
    ∂F/∂β   = Xᵀ r
    ∂F/∂θₖ  = rᵀ(ZΛₖ ũ) + sᵀ(ZΛₖ z) + 2 tr(G⁻¹ ΛᵀZᵀWZ Λₖ)

(the envelope theorem for A + ‖u‖², whose u-derivative at the mode is 2(1 − κ)ũ, plus the
implicit function theorem for the mode, dũ/dγ = H⁻¹[(∂M/∂γ)ᵀs − MᵀO ∂η/∂γ], folded into the
adjoint z).  Λₖ = ∂Λ/∂θₖ is a 0/1 pattern: for θₖ = Tₜ[a, b], row i of ZΛₖ holds Xₜ[i, a] in
column b of observation i's level of term t; the trace is Σᵢ Wᵢ Xₜ[i, a] (G⁻¹mᵢ)ₜ,b.
nAGQ > 1: :mod:`glmm.objectives.agq`.
"""

from __future__ import annotations

import numpy as np

from ..linalg.blocked import BlockedCholesky
from .model import GlmerModel
from .pirls import PirlsState


def laplace_gradient(model: GlmerModel, theta: np.ndarray, st: PirlsState) -> np.ndarray:
    """(∂F/∂θ, ∂F/∂β) at the mode ``st`` computed for (θ, β) (nAGQ = 1)."""
    return _gradient(model, theta, st, profiled=False)


def profiled_gradient(model: GlmerModel, theta: np.ndarray, st: PirlsState) -> np.ndarray:
    """∂F₀/∂θ at the joint mode ``st`` (nAGQ = 0, β profiled).

    The mode moves in β as well (and Xᵀs = 0 there), so z solves the joint system
    [H, MᵀOX; XᵀOM, XᵀOX] [z_u; z_β] = [Mᵀa + 2(1 − κ)ũ; Xᵀa], and
    r = a − O∘(M z_u + X z_β) − 2κs; the θ formula is otherwise the one above
    (docs/gradients.md §6).
    """
    return _gradient(model, theta, st, profiled=True)


def _gradient(model: GlmerModel, theta: np.ndarray, st: PirlsState, profiled: bool
              ) -> np.ndarray:
    resp = model.response
    W, Wp = resp.weight_derivatives(st.eta, st.mu, st.W)
    Wobs = resp.observed_weights(st.eta, st.mu, W)
    kappa = resp.aic_slope(st.drsum)
    s = st.s
    layouts = st.layouts
    v = st.factor.inverse_times_rows(layouts)
    h = sum((lay.A[:, 0] * vt[:, 0] if lay.p == 1 else np.einsum("ij,ij->i", lay.A, vt))
            for lay, vt in zip(layouts, v, strict=True))
    a = Wp * h
    rhs = model.zlam_t(layouts, a)
    if kappa != 1.0:
        rhs = rhs + 2.0 * (1.0 - kappa) * st.u
    # H = G unless the link is not canonical; H is positive definite at the mode.  The
    # mode's factor is of the joint matrix when β is profiled, so is H's
    Hf = st.factor if Wobs is W else BlockedCholesky(
        layouts, Wobs, model.coupling, model.fixed_blocks(layouts, Wobs) if profiled else None)
    if profiled:
        q = len(st.u)
        zz = Hf.solve(np.concatenate([rhs, model.X.T @ a]))
        z, zb = zz[:q], zz[q:]
        r = a - Wobs * (model.zlam(layouts, z) + model.X @ zb) - 2.0 * kappa * s
    else:
        z = Hf.solve(rhs)
        r = a - Wobs * model.zlam(layouts, z) - 2.0 * kappa * s
    # θₖ = Tₜ[a, b]: rᵀ(ZΛₖũ) = Σᵢ rᵢ xᵢₐ ũ_{fᵢ,b} = ũ[:, b] · J(r ∘ xₐ), a per-level sum
    # (J: the term's level sums) instead of a gather of ũ at every observation; so for s, z
    grad_theta = np.empty(model.ntheta)
    for t, lay, ub, zt, vt in zip(model.terms, layouts, model.u_blocks(st.u),
                                  model.u_blocks(z), v, strict=True):
        rows, cols = t.tril
        for k, (ra, cb) in enumerate(zip(rows, cols, strict=True)):
            if t.intercept:   # xₐ = 1
                rx, sx, Wx = r, s, W
            else:
                x = t.Xi[:, ra]
                rx, sx, Wx = r * x, s * x, W * x
            grad_theta[t.theta_slice.start + k] = (
                ub[:, cb] @ lay.level_sums(rx) + zt[:, cb] @ lay.level_sums(sx)
                + 2.0 * Wx @ vt[:, cb])
    return grad_theta if profiled else np.concatenate([grad_theta, model.X.T @ r])
