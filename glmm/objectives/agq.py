"""The adaptive Gauss–Hermite objective of lme4 (nAGQ > 1, one scalar term) and its exact
gradient.

With (ũ, β) the u-only mode, Lⱼⱼ² = Dⱼ = 1 + θ²ΣᵢWᵢxᵢ² per level j, sⱼ = 1/Lⱼⱼ, and the
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

The sums over nodes are taken first, so that nothing of size n × nAGQ × p is formed: with
Aⱼ = Σₖ πⱼₖ devcⱼ'(vⱼₖ), Bⱼ = Σₖ πⱼₖ zₖ devcⱼ'(vⱼₖ) and, from dsⱼ/dγ = −½sⱼ³ dLⱼⱼ²/dγ,
cⱼ = 1/Lⱼⱼ² − ½Bⱼsⱼ³,

        dF/dγ = Σⱼ cⱼ dLⱼⱼ²/dγ + Σⱼ Aⱼ dũⱼ/dγ + Σⱼₖ πⱼₖ ∂devcⱼ(vⱼₖ)/∂γ,

and every Σⱼ (per-level factor)·(Σ_{i∈j} …) is a sum over observations with the factor
gathered at each observation's level: with ω = θ² c_f W'x² and tᵢ = Σₖ π_{fᵢk} sᵢₖ,

        ∂F/∂β = Xᵀ(ω − 2t + a_f Ox),   aⱼ = −θ(Σ_{i∈j} ωᵢθxᵢ + Aⱼ)/H²ⱼ
        ∂F/∂θ = 2θ c_fᵀ(Wx²) + ωᵀ(x ũ_f + θx (dũ/dθ)_f) + Aᵀdũ/dθ − 2 Σⱼₖ πⱼₖ vⱼₖ Σ_{i∈j} sᵢₖxᵢ
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .model import GlmerModel

if TYPE_CHECKING:
    from .scalar_term import ScalarMode


def agq_objective(model: GlmerModel, theta: np.ndarray, st: ScalarMode,
                  rule: tuple[np.ndarray, np.ndarray], gradient: bool = False
                  ) -> tuple[float, np.ndarray | None]:
    """(F, ∂F/∂(θ, β) or None) at the u-only mode ``st`` computed for (θ, β)."""
    resp, term = model.response, model.terms[0]
    f, x = term.codes, term.Xi[:, 0]
    th = float(theta[0])
    per_level = term.level_sums
    z, wk = rule
    u, D = st.u, st.D
    sj = 1.0 / np.sqrt(D)                                                 # 1/Lⱼⱼ
    dv = sj[:, None] * z                                                  # ℓ × k: v − ũ
    v = u[:, None] + dv                                                   # the nodes
    tx = th * x
    eta_k = st.eta[:, None] + tx[:, None] * np.take(dv, f, axis=0)        # n × k
    dev_k, s_k = resp.deviance_and_score(eta_k, score=gradient)
    devc = v * v + per_level(dev_k)
    devc0 = u * u + per_level(st.dev)
    logs = (np.log(wk) + 0.5 * z * z) - 0.5 * (devc - devc0[:, None])
    top = logs.max(axis=1, keepdims=True)
    e = np.exp(logs - top)
    esum = e.sum(axis=1)
    value = float(np.sum(devc0) + st.logdet - 2.0 * np.sum(top[:, 0] + np.log(esum)))
    if not gradient:
        return value, None
    assert s_k is not None
    pi = e / esum[:, None]
    W, Wp = resp.weight_derivatives(st.eta, st.mu, st.W)
    Wobs = resp.observed_weights(st.eta, st.mu, W)
    x2 = x * x
    Ox = Wobs * x
    H2 = D if Wobs is W else 1.0 + th * th * per_level(Ox * x)
    du_dth = (per_level(st.s * x) - th * u * per_level(Ox * x)) / H2     # ℓ
    sx = per_level(s_k * x[:, None])                                      # ℓ × k
    dprime = 2.0 * (v - th * sx)                                          # devc'(v)
    pd = pi * dprime
    A, B = pd.sum(axis=1), pd @ z
    c = 1.0 / D - 0.5 * B * sj ** 3
    cf = c[f]
    omega = (th * th) * cf * (Wp * x2)
    t = np.einsum("ik,ik->i", np.take(pi, f, axis=0), s_k)
    a = -th * (per_level(omega * tx) + A) / H2
    grad_b = model.X.T @ (omega - 2.0 * t + a[f] * Ox)
    grad_th = (2.0 * th * (cf @ (W * x2)) + omega @ (x * u[f] + tx * du_dth[f])
               + A @ du_dth - 2.0 * np.sum(pi * v * sx))
    return value, np.concatenate([[grad_th], grad_b])
