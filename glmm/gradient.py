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
links use finite differences of the objective instead.  nAGQ > 1: :func:`agq_gradient`.
"""

from __future__ import annotations

import numpy as np

from .model import GlmerModel
from .pirls import PirlsState, joint_solve


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
    W, Wp = model.response.weight_derivatives(st.eta, st.mu)
    s = st.s
    layouts = st.layouts
    v = st.factor.inverse_times_rows(layouts)
    h = sum(np.einsum("ij,ij->i", lay.A, vt) for lay, vt in zip(layouts, v, strict=True))
    a = Wp * h
    if profiled:
        z, zb, _ = joint_solve(model, layouts, st.factor, W, model.zlam_t(layouts, a),
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


def agq_gradient(model: GlmerModel, theta: np.ndarray, st: PirlsState,
                 rule: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(∂F/∂θ, ∂F/∂β) of the adaptive Gauss–Hermite objective (one scalar term, nAGQ > 1).

    Per level j, with ωₖ = wₖ e^{zₖ²/2}, nodes vⱼₖ = ũⱼ + zₖ sⱼ and sⱼ = 1/Lⱼⱼ:

        Fⱼ = log Lⱼⱼ² − 2 log Σₖ ωₖ exp(−½ devcⱼ(vⱼₖ))
        dFⱼ/dγ = (dLⱼⱼ²/dγ)/Lⱼⱼ² + Σₖ πⱼₖ [∂devcⱼ/∂γ + devcⱼ'(vⱼₖ)(dũⱼ/dγ + zₖ dsⱼ/dγ)]

    πⱼₖ the normalised node weights; ∂devc/∂β = −2Σᵢ sᵢXᵢ, ∂devc/∂θ = −2Σᵢ sᵢxᵢv,
    devc'(v) = 2v − 2θΣᵢ sᵢxᵢ (scores at the node); the mode moves by
    dũ/dβ = −θΣWxX/L², dũ/dθ = (Σsx − θũΣWx²)/L² (canonical links: observed = Fisher W),
    and dL²/dγ = 2θΣWx²[γ = θ] + θ²ΣW'x² dη̃/dγ with dη̃/dγ = ∂η/∂γ + θx dũ/dγ.
    """
    X, resp = model.X, model.response
    term = model.terms[0]
    f, x = term.codes, term.Xi[:, 0]
    th = float(theta[0])
    per_level = term.level_sums

    def per_level_X(v: np.ndarray) -> np.ndarray:  # (n,) → ℓ × p;  (n, k) → ℓ × k × p
        cols = [per_level(v * (X[:, c] if v.ndim == 1 else X[:, c:c + 1]))
                for c in range(X.shape[1])]
        return np.stack(cols, axis=-1)

    W, Wp = resp.weight_derivatives(st.eta, st.mu)
    u = st.u
    L2 = 1.0 + th * th * per_level(W * x * x)
    # the mode's sensitivity
    du_db = -th * per_level_X(W * x) / L2[:, None]                       # ℓ × p
    du_dth = (per_level(st.s * x) - th * u * per_level(W * x * x)) / L2  # ℓ
    # dL²/dγ through W at the moving mode
    deta_db = X + (th * x)[:, None] * du_db[f]                          # n × p
    deta_dth = x * u[f] + th * x * du_dth[f]                            # n
    dL2_db = th * th * np.stack([per_level(Wp * x * x * deta_db[:, c])
                                 for c in range(X.shape[1])], axis=1)
    dL2_dth = 2.0 * th * per_level(W * x * x) + th * th * per_level(Wp * x * x * deta_dth)
    sj = 1.0 / np.sqrt(L2)
    ds_db = -0.5 * sj[:, None] ** 3 * dL2_db
    ds_dth = -0.5 * sj ** 3 * dL2_dth
    z, wk = rule
    v = u[:, None] + sj[:, None] * z                                     # ℓ × k: the nodes
    eta_k = st.eta[:, None] + (th * x)[:, None] * (v - u[:, None])[f]    # n × k
    devc = v * v + per_level(resp.unit_deviance(eta_k))
    logs = np.log(wk) + 0.5 * z * z - 0.5 * devc
    sk = resp.score(eta_k)
    sx = per_level(sk * x[:, None])                                     # ℓ × k
    dprime = 2.0 * v - 2.0 * th * sx
    g_th = -2.0 * sx * v + dprime * (du_dth[:, None] + z * ds_dth[:, None])
    g_b = -2.0 * per_level_X(sk) + dprime[:, :, None] * (
        du_db[:, None, :] + z[None, :, None] * ds_db[:, None, :])        # ℓ × k × p
    pi = np.exp(logs - logs.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    grad_th = np.sum(dL2_dth / L2) + np.sum(pi * g_th)
    grad_b = np.sum(dL2_db / L2[:, None], axis=0) + np.einsum("jk,jkc->c", pi, g_b)
    return np.concatenate([[grad_th], grad_b])
