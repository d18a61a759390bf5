"""Penalized iteratively reweighted least squares: the conditional modes for given θ.

For fixed θ (and β, unless it is profiled), PIRLS minimises the penalized deviance

    P(u, β) = Σᵢ devᵢ(yᵢ, μᵢ) + ‖u‖²,    μ = g⁻¹(o + Xβ + ZΛu)

by Fisher scoring.  At the current η, with m = dμ/dη, the working weights and the score are

    Wᵢ = wᵢ mᵢ² / V(μᵢ),    sᵢ = wᵢ mᵢ (yᵢ − μᵢ) / V(μᵢ)       (s = −½ ∂D/∂η)

and one step solves the penalized weighted least-squares problem in increments:

    u only (nAGQ ≥ 1):   G δu = ΛᵀZᵀs − u,                      G = ΛᵀZᵀWZΛ + I
    u and β (nAGQ = 0):  [ G      ΛᵀZᵀWX ] [δu]   [ΛᵀZᵀs − u]
                         [ XᵀWZΛ  XᵀWX   ] [δβ] = [Xᵀs      ]

solved by the Schur complement on β (R_XᵀR_X = XᵀWX − XᵀWZΛ G⁻¹ ΛᵀZᵀWX, lme4's R_X).
A step that raises P is halved (up to 20 times, as lme4).  Unlike lme4, the loop runs until
the Newton decrement δᵀ(gradient) is at rounding level, and the loop ends without a step,
so its factor L (LLᵀ = G) is built from the weights at the mode itself: the result is a pure
function of the parameters, with no dependence on the starting point and no lagged L
(lme4-internals.md §3.4–3.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .linalg import BlockedCholesky, FactorizationError, TermLayout
from .model import GlmerModel

MAX_ITER = 100
MAX_HALVINGS = 20
#: Converged when the Newton decrement falls below this times max(1, P).  The decrement is
#: ≈ the remaining reduction of P, so this is full convergence in double precision.
DECREMENT_TOL = 1e-20


class PirlsError(ArithmeticError):
    """PIRLS failed: non-finite deviance, or no convergence."""


@dataclass
class PirlsState:
    """The conditional mode and everything at it (weights and factor at the mode itself)."""

    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    dev: np.ndarray          # unit deviances (with prior weights) at μ
    W: np.ndarray            # working weights at μ
    factor: BlockedCholesky  # of G at these weights
    iterations: int
    RX: np.ndarray | None = None  # R_X at the mode (joint mode only)

    @property
    def drsum(self) -> float:
        return float(np.sum(self.dev))

    @property
    def ussq(self) -> float:
        return float(self.u @ self.u)

    @property
    def pdev(self) -> float:
        return self.drsum + self.ussq


def _working(model: GlmerModel, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(μ, W, s) at η."""
    fam = model.family
    mu = fam.link.linkinv(eta)
    m = fam.link.mu_eta(eta)
    var = fam.variance(mu)
    W = model.weights * m * m / var
    s = model.weights * m * (model.y - mu) / var
    return mu, W, s


def pirls(model: GlmerModel, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray,
          joint: bool) -> PirlsState:
    """The conditional mode at θ: ũ(θ, β) when ``joint`` is False, (ũ, β̃)(θ) when True.

    ``u0`` (and ``beta`` when joint) is the starting point; the result does not depend on it.
    """
    layouts = model.layouts(theta)
    X, o, fam = model.X, model.offset, model.family
    u, b = u0.copy(), beta.copy()

    def state(u: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        eta = o + X @ b + model.zlam(layouts, u)
        mu = fam.link.linkinv(eta)
        dev = fam.dev_resids(model.y, mu, model.weights)
        return eta, mu, dev, float(np.sum(dev) + u @ u)

    eta, mu, dev, pdev = state(u, b)
    if not np.isfinite(pdev):
        raise PirlsError("the penalized deviance is not finite at the starting point")
    for it in range(1, MAX_ITER + 1):
        _, W, s = _working(model, eta)
        try:
            factor = BlockedCholesky(layouts, W)
        except FactorizationError as exc:
            raise PirlsError(str(exc)) from exc
        grad_u = model.zlam_t(layouts, s) - u
        RX = None
        if joint:
            Xs = X.T @ s
            du, db, RX = joint_solve(model, layouts, factor, W, grad_u, Xs)
            decrement = float(du @ grad_u + db @ Xs)
        else:
            du = factor.solve(grad_u)
            db = np.zeros_like(b)
            decrement = float(du @ grad_u)
        if decrement < DECREMENT_TOL * max(1.0, pdev):
            # no step is taken: W, the factor and R_X were built at this very mode
            return PirlsState(u, b, eta, mu, dev, W, factor, it, RX)
        step = 1.0
        for _ in range(MAX_HALVINGS + 1):
            un, bn = u + step * du, b + step * db
            eta_n, mu_n, dev_n, pdev_n = state(un, bn)
            if np.isfinite(pdev_n) and pdev_n <= pdev + 1e-12 * abs(pdev):
                break
            step *= 0.5
        else:
            raise PirlsError("PIRLS step-halvings failed to reduce the penalized deviance")
        u, b, eta, mu, dev, pdev = un, bn, eta_n, mu_n, dev_n, pdev_n
    raise PirlsError(f"PIRLS did not converge in {MAX_ITER} iterations")


def joint_solve(model: GlmerModel, layouts: list[TermLayout], factor: BlockedCholesky,
                W: np.ndarray, ru: np.ndarray, rb: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve the joint system for (δu, δβ); also return R_X (upper, R_XᵀR_X = Schur on β)."""
    WX = W[:, None] * model.X
    C = model.zlam_t(layouts, WX)                 # ΛᵀZᵀWX  (q × p)
    GiC = factor.solve(C)                         # G⁻¹ΛᵀZᵀWX
    XtWX = model.X.T @ WX
    schur = XtWX - C.T @ GiC
    try:
        RX = scipy.linalg.cholesky(schur, lower=False, check_finite=False)
    except np.linalg.LinAlgError as exc:
        raise PirlsError("XᵀWX − XᵀWZΛG⁻¹ΛᵀZᵀWX is not positive definite") from exc
    Giru = factor.solve(ru)
    db = scipy.linalg.cho_solve((RX, False), rb - C.T @ Giru, check_finite=False)
    du = Giru - GiC @ db
    return du, db, RX
