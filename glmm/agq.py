"""The adaptive Gauss–Hermite objective of lme4 (nAGQ > 1, one scalar term) and its exact
gradient.

With (ũ, β) the u-only mode, Lⱼⱼ² = 1 + θ²ΣᵢWᵢxᵢ² per level j, sⱼ = 1/Lⱼⱼ, and the
standard-normal rule (zₖ, wₖ):

    devcⱼ(v) = v² + Σ_{i∈j} devᵢ(η̃ᵢ + θ xᵢ (v − ũⱼ))
    Mⱼ       = Σₖ wₖ exp(zₖ²/2 − ½[devcⱼ(ũⱼ + zₖ sⱼ) − devcⱼ(ũⱼ)])
    F        = Σⱼ devcⱼ(ũⱼ) + log|L|² − 2 Σⱼ log Mⱼ

on lme4's deviance-residual scale (lme4 issue 161).  All nodes of all levels are evaluated
at once, as (n × nAGQ) arrays.

The gradient, per level j, with ωₖ = wₖ e^{zₖ²/2} and nodes vⱼₖ = ũⱼ + zₖ sⱼ:

        Fⱼ = log Lⱼⱼ² − 2 log Σₖ ωₖ exp(−½ devcⱼ(vⱼₖ))
        dFⱼ/dγ = (dLⱼⱼ²/dγ)/Lⱼⱼ² + Σₖ πⱼₖ [∂devcⱼ/∂γ + devcⱼ'(vⱼₖ)(dũⱼ/dγ + zₖ dsⱼ/dγ)]

    πⱼₖ the normalised node weights; ∂devc/∂β = −2Σᵢ sᵢXᵢ, ∂devc/∂θ = −2Σᵢ sᵢxᵢv,
    devc'(v) = 2v − 2θΣᵢ sᵢxᵢ (scores at the node); the mode moves by
    dũ/dβ = −θΣOxX/H², dũ/dθ = (Σsx − θũΣOx²)/H² with the observed weights O and
    H² = 1 + θ²ΣOx² (O = W, H = L for canonical links), and dL²/dγ = 2θΣWx²[γ = θ] +
    θ²ΣW'x² dη̃/dγ with dη̃/dγ = ∂η/∂γ + θx dũ/dγ.  Every family: the quadrature objective
    has no aic term.
"""

from __future__ import annotations

import numpy as np

from .model import GlmerModel
from .pirls import PirlsState


def agq_objective(model: GlmerModel, theta: np.ndarray, st: PirlsState,
                  rule: tuple[np.ndarray, np.ndarray], gradient: bool = False
                  ) -> tuple[float, np.ndarray | None]:
    """(F, ∂F/∂(θ, β) or None) at the mode ``st`` computed for (θ, β)."""
    resp, term = model.response, model.terms[0]
    f, x = term.codes, term.Xi[:, 0]
    th = float(theta[0])
    per_level = term.level_sums
    z, wk = rule
    u = st.u
    sj = 1.0 / st.factor.diag11()                                         # 1/Lⱼⱼ
    v = u[:, None] + sj[:, None] * z                                      # ℓ × k: the nodes
    eta_k = st.eta[:, None] + (th * x)[:, None] * (v - u[:, None])[f]     # n × k
    dev_k, s_k = resp.deviance_and_score(eta_k, score=gradient)
    devc = v * v + per_level(dev_k)
    devc0 = u * u + per_level(st.dev)
    logs = np.log(wk) + 0.5 * z * z - 0.5 * (devc - devc0[:, None])
    top = logs.max(axis=1, keepdims=True)
    e = np.exp(logs - top)
    esum = e.sum(axis=1)
    value = float(np.sum(devc0) + st.factor.logdet - 2.0 * np.sum(top[:, 0] + np.log(esum)))
    if not gradient:
        return value, None
    assert s_k is not None
    pi = e / esum[:, None]
    X = model.X

    n, p = X.shape

    def per_level_X(a: np.ndarray) -> np.ndarray:  # (n,) → ℓ × p;  (n, k) → ℓ × k × p
        if a.ndim == 1:
            return per_level(a[:, None] * X)
        k = a.shape[1]
        return per_level((a[:, :, None] * X[:, None, :]).reshape(n, k * p)).reshape(-1, k, p)

    W, Wp = resp.weight_derivatives(st.eta, st.mu, st.W)
    Wobs = resp.observed_weights(st.eta, st.mu, W)
    L2 = 1.0 + th * th * per_level(W * x * x)
    # the mode's sensitivity, through the observed curvature H = 1 + θ²ΣOx² of ½devc
    H2 = L2 if Wobs is W else 1.0 + th * th * per_level(Wobs * x * x)
    du_db = -th * per_level_X(Wobs * x) / H2[:, None]                       # ℓ × p
    du_dth = (per_level(st.s * x) - th * u * per_level(Wobs * x * x)) / H2  # ℓ
    # dL²/dγ through W at the moving mode
    deta_db = X + (th * x)[:, None] * du_db[f]                          # n × p
    deta_dth = x * u[f] + th * x * du_dth[f]                            # n
    dL2_db = th * th * per_level((Wp * x * x)[:, None] * deta_db)
    dL2_dth = 2.0 * th * per_level(W * x * x) + th * th * per_level(Wp * x * x * deta_dth)
    ds_db = -0.5 * sj[:, None] ** 3 * dL2_db
    ds_dth = -0.5 * sj ** 3 * dL2_dth
    sx = per_level(s_k * x[:, None])                                      # ℓ × k
    dprime = 2.0 * v - 2.0 * th * sx
    g_th = -2.0 * sx * v + dprime * (du_dth[:, None] + z * ds_dth[:, None])
    g_b = -2.0 * per_level_X(s_k) + dprime[:, :, None] * (
        du_db[:, None, :] + z[None, :, None] * ds_db[:, None, :])        # ℓ × k × p
    grad_th = np.sum(dL2_dth / L2) + np.sum(pi * g_th)
    grad_b = np.sum(dL2_db / L2[:, None], axis=0) + np.einsum("jk,jkc->c", pi, g_b)
    return value, np.concatenate([[grad_th], grad_b])
