"""The covariance of β̂, as lme4's ``vcov.merMod`` chooses it (docs/results.md §1).

With H the Hessian of the objective F = −2·logLik over (θ, β) at the optimum and R_X the
fixed-effects factor of the last PIRLS system (R_XᵀR_X = XᵀWX − XᵀWZΛG⁻¹ΛᵀZᵀWX):

    V_H  = 2·(H⁻¹)_ββ             the β block of the inverse of the whole H (no σ² factor)
    V_RX = σ²·(R_XᵀR_X)⁻¹          conditional on θ

lme4's rule: V_H when a Hessian over (θ, β) exists (nAGQ ≥ 1), unless ``use.hessian = FALSE``;
V_RX for nAGQ = 0.  With ``use.hessian = FALSE`` where V_H exists, lme4 warns if any
|V_RX − V_H| > 1e-4·V_H (elementwise, signed threshold); where V_H is not positive definite it
warns and falls back to V_RX.

lme4 builds H by central differences of F with step 1e-4 (lme4 R/deriv.R, ``deriv12``); glmm
by central differences of the exact gradient
(:meth:`glmm.objectives.base.Objective.value_and_gradient`), 2·k gradient evaluations for k
parameters, symmetrised.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ArgumentError, VcovWarning
from ..objectives.base import Objective

#: relative step of the central differences of the gradient: the truncation error is
#: O(h²·F⁗) ≈ 1e-8 relative, the rounding error O(ε_g/h) with ε_g ≈ 1e-11 for the exact
#: gradient; h from 1e-3 to 1e-5 agrees to 1e-7 on cbpp
HESSIAN_STEP = 1e-4
#: lme4's threshold for "vcov from the Hessian and from R_X differ"
DIFFER_TOL = 1e-4


def hessian(objective: Objective, params: np.ndarray, step: float = HESSIAN_STEP
            ) -> np.ndarray:
    """H = ∂²F/∂x² at ``params`` by central differences of the exact gradient:
    H[:, j] = (∇F(x + hⱼeⱼ) − ∇F(x − hⱼeⱼ)) / (2hⱼ), hⱼ = step·max(1, |xⱼ|); then (H + Hᵀ)/2.

    The objective's warm start is left where it was found: the evaluation it remembers last
    is put back, so later evaluations start as they would have."""
    x = np.asarray(params, dtype=float)
    k = len(x)
    H = np.empty((k, k))
    last = objective.last
    try:
        for j in range(k):
            h = step * max(1.0, abs(float(x[j])))
            e = np.zeros(k)
            e[j] = h
            gp = objective.value_and_gradient(x + e)[1]
            gm = objective.value_and_gradient(x - e)[1]
            H[:, j] = (gp - gm) / (2.0 * h)
    finally:
        objective.last = last
    return 0.5 * (H + H.T)


def vcov_from_hessian(H: np.ndarray, ntheta: int) -> np.ndarray | None:
    """V_H = 2·(H⁻¹)_ββ, symmetrised as lme4's ``forceSymmetric(h + t(h))`` of the halves;
    None where H is singular or V_H is not positive definite (lme4 then falls back to R_X)."""
    try:
        Hi = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return None
    hb = Hi[ntheta:, ntheta:]
    V = hb + hb.T
    if not np.isfinite(V).all() or (V.size and np.linalg.eigvalsh(V).min() <= 0.0):
        return None
    return V


def vcov_from_rx(RX: np.ndarray, sigma: float) -> np.ndarray:
    """V_RX = σ²·(R_XᵀR_X)⁻¹ = σ²·R_X⁻¹R_X⁻ᵀ (lme4's ``sigma(x)^2 * pp$unsc()``)."""
    p = RX.shape[0]
    Ri = np.linalg.solve(np.triu(RX), np.eye(p))
    return sigma * sigma * (Ri @ Ri.T)


def choose(V_H: np.ndarray | None, hessian_available: bool, V_RX: np.ndarray,
           use_hessian: bool | None) -> np.ndarray:
    """lme4's choice between V_H and V_RX, with its warnings (module docstring)."""
    if use_hessian is not None and not isinstance(use_hessian, (bool, np.bool_)):
        raise ArgumentError(f"use_hessian must be None, True or False, got {use_hessian!r}")
    if use_hessian and not hessian_available:
        raise ArgumentError("use_hessian=True, but no Hessian over (θ, β) exists for this fit "
                            "(nAGQ = 0 profiles β: lme4 uses R_X)")
    if use_hessian is False:
        if hessian_available and V_H is not None and np.any(
                np.abs(V_RX - V_H) > DIFFER_TOL * V_H):
            warnings.warn("variance-covariance matrix computed from finite-difference Hessian "
                          "and from RX differ by >1e-04: consider 'use.hessian=TRUE'",
                          VcovWarning, stacklevel=4)
        return V_RX
    if not hessian_available:
        return V_RX
    if V_H is None:
        warnings.warn("variance-covariance matrix computed from finite-difference Hessian is "
                      "not positive definite or contains NA values: falling back to var-cov "
                      "estimated from RX", VcovWarning, stacklevel=4)
        return V_RX
    return V_H
