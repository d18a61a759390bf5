"""Penalized iteratively reweighted least squares: the conditional modes for given θ.

For fixed θ (and β, unless it is profiled), PIRLS minimises the penalized deviance

    P(u, β) = Σᵢ devᵢ(yᵢ, μᵢ) + ‖u‖²,    μ = g⁻¹(o + Xβ + ZΛu)

by Fisher scoring.  At the current η, with m = dμ/dη, the working weights and the score are

    Wᵢ = wᵢ mᵢ² / V(μᵢ),    sᵢ = wᵢ mᵢ (yᵢ − μᵢ) / V(μᵢ)       (s = −½ ∂D/∂η)

and one step solves the penalized weighted least-squares problem in increments:

    u only (nAGQ ≥ 1):   G δu = ΛᵀZᵀs − u,                      G = ΛᵀZᵀWZΛ + I
    u and β (nAGQ = 0):  [ G      ΛᵀZᵀWX ] [δu]   [ΛᵀZᵀs − u]
                         [ XᵀWZΛ  XᵀWX   ] [δβ] = [Xᵀs      ]

solved with one blocked factor of the whole matrix, β's block last (its Schur complement
R_XᵀR_X = XᵀWX − XᵀWZΛ G⁻¹ ΛᵀZᵀWX is lme4's R_X: :class:`~glmm.linalg.blocked.BlockedCholesky`).
A step that raises P is halved (up to 20 times, as lme4).  Unlike lme4, the loop runs until
the Newton decrement δᵀ(gradient) is at rounding level, and the loop ends without a step,
so its factor L (LLᵀ = G) is built from the weights at the mode itself: the result is a pure
function of the parameters, with no lagged L (docs/objectives.md §3), and, where P has
one mode (:attr:`glmm.families.family.Family.unique_mode`), no dependence on the starting point.
Where it may have several, the start picks the mode: :func:`first_step` takes lme4's.
For a non-canonical link, Fisher scoring converges only linearly, so the last steps are
Newton's, with the observed weights (NEWTON_FROM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..compiled import core as _core
from ..errors import PirlsError
from ..families.response import Response, Working
from ..linalg.lapack import FactorizationError
from .model import GlmerModel

if TYPE_CHECKING:   # imported where used: one scalar term's fits run no blocked factor
    from ..linalg.blocked import BlockedCholesky
    from ..linalg.coupling import TermLayout

MAX_ITER = 100
MAX_HALVINGS = 20
#: Converged when the Newton decrement falls below this times max(1, P).  The decrement is
#: ≈ the remaining reduction of P, so this is full convergence in double precision.
DECREMENT_TOL = 1e-20
#: Below this decrement (times max(1, P)) a non-canonical link takes Newton's steps, with the
#: observed weights O = −ds/dη, where O ≥ 0.  Fisher scoring (the weights W) converges only
#: linearly where O ≠ W, at a rate that can need hundreds of steps to reach DECREMENT_TOL;
#: Newton's converges quadratically to the same mode, and this close to it the steps that
#: chose the mode (Fisher's, lme4's) have been taken.
NEWTON_FROM = 1e-8




#: PIRLS's failures, as every implementation reports them
START_NOT_FINITE = "the penalized deviance is not finite at the starting point"
SYSTEM_NOT_FINITE = "the PIRLS system is not finite"
HALVING_FAILED = "PIRLS step-halvings failed to reduce the penalized deviance"
NOT_CONVERGED = f"PIRLS did not converge in {MAX_ITER} iterations"
SCHUR_NOT_PD = "the Schur complement of G is not positive definite"
RX_NOT_PD = "XᵀWX − XᵀWZΛG⁻¹ΛᵀZᵀWX is not positive definite"   # one scalar term's

#: the compiled core's failures, by status: its STATUS (glmm/csrc/core.h) gives each of these
#: names its code (NO_MEMORY is raised as MemoryError).  The one map from its statuses to
#: messages.
CORE_ERRORS: dict[int, str] = {} if _core is None else {
    _core.STATUS[name]: message for name, message in (
        ("START_NOT_FINITE", START_NOT_FINITE), ("SYSTEM_NOT_FINITE", SYSTEM_NOT_FINITE),
        ("HALVING_FAILED", HALVING_FAILED), ("NOT_CONVERGED", NOT_CONVERGED),
        ("RX_NOT_PD", RX_NOT_PD), ("SCHUR_NOT_PD", SCHUR_NOT_PD))}


@dataclass(eq=False)
class ConditionalMode:
    """The conditional mode and the response at it: what every objective reads."""

    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    dev: np.ndarray          # unit deviances (with prior weights) at μ
    W: np.ndarray            # working weights at μ
    s: np.ndarray            # scores at μ

    @property
    def drsum(self) -> float:
        return float(self.dev.sum())

    @property
    def ussq(self) -> float:
        return float(self.u @ self.u)

    @property
    def logdet(self) -> float:
        """log|L|² (lme4's ldL2) at the mode's weights."""
        raise NotImplementedError


@dataclass(eq=False)
class PirlsState(ConditionalMode):
    """The mode with its blocked factor (weights and factor at the mode itself)."""

    factor: BlockedCholesky  # of G at these weights; of the joint (u, β) matrix if joint
    layouts: list[TermLayout]
    iterations: int
    #: the compiled core's arrays of the factor, (D, Bt, R) (:mod:`glmm.objectives.crossed`), or
    #: None
    core: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def logdet(self) -> float:
        return self.factor.logdet

    @property
    def RX(self) -> np.ndarray | None:
        """R_X at the mode (joint mode only)."""
        return self.factor.RX


def pirls(model: GlmerModel, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray,
          joint: bool) -> PirlsState:
    """The conditional mode at θ: ũ(θ, β) when ``joint`` is False, (ũ, β̃)(θ) when True.

    ``u0`` (and ``beta`` when joint) is the starting point; the result does not depend on it.
    η is carried along the steps (η + t·δη, δη = ZΛδu + Xδβ) rather than rebuilt from
    (u, β), and the response is evaluated once per trial point (:mod:`glmm.families.response`).
    """
    from ..linalg.blocked import BlockedCholesky

    layouts = model.layouts(theta)
    X, resp = model.X, model.response
    u, b = u0.copy(), beta.copy()
    eta = model.offset + X @ b + model.zlam(layouts, u)
    wk = resp.update(eta)
    pdev = float(wk.dev.sum() + u @ u)
    if not np.isfinite(pdev):
        raise PirlsError(START_NOT_FINITE)
    q = len(u)
    canonical = model.family.canonical
    for it in range(1, MAX_ITER + 1):
        try:
            factor = BlockedCholesky(layouts, wk.W, model.coupling,
                                     model.fixed_blocks(layouts, wk.W) if joint else None)
        except FactorizationError as exc:
            raise PirlsError(str(exc)) from exc
        grad_u = model.zlam_t(layouts, wk.s) - u
        grad = np.concatenate([grad_u, X.T @ wk.s]) if joint else grad_u
        delta = factor.solve(grad)
        decrement = float(delta @ grad)
        if decrement < DECREMENT_TOL * max(1.0, pdev):
            # no step is taken: W, the factor and R_X were built at this very mode
            return PirlsState(u, b, eta, wk.mu, wk.dev, wk.W, wk.s, factor, layouts, it)
        if not canonical and decrement < NEWTON_FROM * max(1.0, pdev):
            Wobs = resp.observed_weights(eta, wk.mu, wk.W)
            if (Wobs >= 0).all():   # then the true Hessian is ⪰ I: Newton's step
                try:
                    delta = BlockedCholesky(layouts, Wobs, model.coupling,
                                            model.fixed_blocks(layouts, Wobs) if joint else None
                                            ).solve(grad)
                except FactorizationError:   # β's block singular under O: Fisher's step
                    pass
        du = delta[:q]
        if joint:
            db = delta[q:]
            deta = model.zlam(layouts, du) + X @ db
        else:
            deta = model.zlam(layouts, du)
        step, eta, wk, u, pdev = halving_step(resp, eta, deta, u, du, pdev)
        if joint:
            b = b + step * db
    raise PirlsError(NOT_CONVERGED)


def first_step(model: GlmerModel, theta: np.ndarray, beta: np.ndarray | None,
               lp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lme4's first PIRLS iteration of an evaluation: one Fisher-scoring step from the stored
    linear predictor η = o + lp (lme4's ``lp0``, the offset excluded), whatever u and β were.
    With W and s at that η, and the working response z = lp − Xβ + (y − μ)/m (so that
    W z = W(lp − Xβ) + s), the step solves for the whole u (and β when it is profiled,
    ``beta`` None) rather than an increment:

        u only:   G u = ΛᵀZᵀ(W(lp − Xβ) + s)
        u and β:  [ G      ΛᵀZᵀWX ] [u]   [ΛᵀZᵀ(W lp + s)]
                  [ XᵀWZΛ  XᵀWX   ] [β] = [Xᵀ(W lp + s)  ]

    Returns (u, β); PIRLS continues from there (docs/objectives.md §4).  Where the
    mode is not unique, this step, and not the last evaluation's mode, decides which mode
    PIRLS reaches, as in lme4.
    """
    from ..linalg.blocked import BlockedCholesky

    layouts = model.layouts(theta)
    joint = beta is None
    wk = model.response.update(model.offset + lp)
    if not np.isfinite(wk.dev.sum()):
        raise PirlsError(START_NOT_FINITE)
    try:
        factor = BlockedCholesky(layouts, wk.W, model.coupling,
                                 model.fixed_blocks(layouts, wk.W) if joint else None)
    except FactorizationError as exc:
        raise PirlsError(str(exc)) from exc
    if joint:
        r = wk.W * lp + wk.s
        sol = factor.solve(np.concatenate([model.zlam_t(layouts, r), model.X.T @ r]))
        return sol[:model.q], sol[model.q:]
    assert beta is not None
    r = wk.W * (lp - model.X @ beta) + wk.s
    return factor.solve(model.zlam_t(layouts, r)), beta


def initial_lp(model: GlmerModel, theta: np.ndarray) -> np.ndarray:
    """lme4's first stored linear predictor: the joint mode at θ (lme4's start θ₀) reached
    from η = o + g(μ_start), as Xβ̃ + ZΛũ (``mkGlmerDevfun``).  Raises PirlsError where PIRLS
    cannot reach it."""
    u, beta = first_step(model, theta, None, model.family.link.linkfun(model.mustart))
    st = pirls(model, theta, beta, u, joint=True)
    return st.eta - model.offset


def halving_step(resp: Response, eta: np.ndarray, deta: np.ndarray, u: np.ndarray,
                 du: np.ndarray, pdev: float
                 ) -> tuple[float, np.ndarray, Working, np.ndarray, float]:
    """The step t = 1, ½, ¼, … (at most MAX_HALVINGS halvings) along (δu, δη) that first
    does not raise P = Σdev + ‖u‖² (up to 1e-12 relative, its rounding), and
    (t, η, the response there, u, P) after it."""
    step = 1.0
    for _ in range(MAX_HALVINGS + 1):
        eta_n = eta + deta if step == 1.0 else eta + step * deta
        wk_n = resp.update(eta_n)
        u_n = u + du if step == 1.0 else u + step * du
        pdev_n = float(wk_n.dev.sum() + u_n @ u_n)
        if pdev_n <= pdev + 1e-12 * abs(pdev):   # False for NaN
            return step, eta_n, wk_n, u_n, pdev_n
        step *= 0.5
    raise PirlsError(HALVING_FAILED)


def predict(model: GlmerModel, st: PirlsState, theta_old: np.ndarray, theta: np.ndarray,
            beta_old: np.ndarray, beta: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """A first-order prediction of the mode at (θ, β) from the mode ``st`` at (θ_old,
    β_old): the implicit function theorem on the mode equation ΛᵀZᵀs(η) = u.  With
    Λ_Δ = Λ(θ − θ_old) (Λ is linear in θ) and δη = ZΛ_Δũ + X(β − β_old),

        r_u = Λ_ΔᵀZᵀs − ΛᵀZᵀW δη,     δu = G⁻¹r_u                      (β given)
        joint (β = None, δη without the X term):  [G, C; Cᵀ, XᵀWX][δu; δβ] = [r_u; −XᵀWδη]

    Returns the predicted (u, β); PIRLS then starts there.
    """
    dlay = model.layouts(theta - theta_old)
    deta = model.zlam(dlay, st.u)
    if beta is not None:
        deta = deta + model.X @ (beta - beta_old)
    Wd = st.W * deta
    ru = model.zlam_t(dlay, st.s) - model.zlam_t(st.layouts, Wd)
    if beta is not None:
        return st.u + st.factor.solve(ru), beta
    delta = st.factor.solve(np.concatenate([ru, -(model.X.T @ Wd)]))
    q = len(st.u)
    return st.u + delta[:q], beta_old + delta[q:]
