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
R_XᵀR_X = XᵀWX − XᵀWZΛ G⁻¹ ΛᵀZᵀWX is lme4's R_X: :class:`~glmm.linalg.BlockedCholesky`).
A step that raises P is halved (up to 20 times, as lme4).  Unlike lme4, the loop runs until
the Newton decrement δᵀ(gradient) is at rounding level, and the loop ends without a step,
so its factor L (LLᵀ = G) is built from the weights at the mode itself: the result is a pure
function of the parameters, with no dependence on the starting point and no lagged L
(lme4-internals.md §3.4–3.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .compiled import core as _core
from .linalg import (
    MAX_DENSE_CROSS,
    MAX_DENSE_SCHUR,
    BlockedCholesky,
    FactorizationError,
    TermLayout,
)
from .model import GlmerModel, distinct_rows
from .response import Response, Working

MAX_ITER = 100
MAX_HALVINGS = 20
#: Converged when the Newton decrement falls below this times max(1, P).  The decrement is
#: ≈ the remaining reduction of P, so this is full convergence in double precision.
DECREMENT_TOL = 1e-20


class PirlsError(ArithmeticError):
    """PIRLS failed: non-finite deviance, or no convergence."""


#: PIRLS's failures, as every implementation reports them
START_NOT_FINITE = "the penalized deviance is not finite at the starting point"
SYSTEM_NOT_FINITE = "the PIRLS system is not finite"
HALVING_FAILED = "PIRLS step-halvings failed to reduce the penalized deviance"
NOT_CONVERGED = f"PIRLS did not converge in {MAX_ITER} iterations"
SCHUR_NOT_PD = "the Schur complement of G is not positive definite"

#: the compiled core's PIRLS failures, by status (glmm/_core.c)
CORE_ERRORS = {1: START_NOT_FINITE, 2: SYSTEM_NOT_FINITE, 3: HALVING_FAILED, 4: NOT_CONVERGED,
               7: SCHUR_NOT_PD}


@dataclass
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


@dataclass
class PirlsState(ConditionalMode):
    """The mode with its blocked factor (weights and factor at the mode itself)."""

    factor: BlockedCholesky  # of G at these weights; of the joint (u, β) matrix if joint
    layouts: list[TermLayout]
    iterations: int
    #: the compiled core's arrays of the factor, (D, Bt, R) (:func:`pirls_compiled`), or None
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
    (u, β), and the response is evaluated once per trial point (:mod:`glmm.response`).
    """
    layouts = model.layouts(theta)
    X, resp = model.X, model.response
    u, b = u0.copy(), beta.copy()
    eta = model.offset + X @ b + model.zlam(layouts, u)
    wk = resp.update(eta)
    pdev = float(wk.dev.sum() + u @ u)
    if not np.isfinite(pdev):
        raise PirlsError(START_NOT_FINITE)
    q = len(u)
    for it in range(1, MAX_ITER + 1):
        try:
            factor = BlockedCholesky(layouts, wk.W, model.coupling,
                                     model.fixed_blocks(layouts, wk.W) if joint else None)
        except FactorizationError as exc:
            raise PirlsError(str(exc)) from exc
        grad_u = model.zlam_t(layouts, wk.s) - u
        if joint:
            grad = np.concatenate([grad_u, X.T @ wk.s])
            delta = factor.solve(grad)
            decrement = float(delta @ grad)
            du, db = delta[:q], delta[q:]
            deta = model.zlam(layouts, du) + X @ db
        else:
            du = factor.solve(grad_u)
            decrement = float(du @ grad_u)
        if decrement < DECREMENT_TOL * max(1.0, pdev):
            # no step is taken: W, the factor and R_X were built at this very mode
            return PirlsState(u, b, eta, wk.mu, wk.dev, wk.W, wk.s, factor, layouts, it)
        if not joint:
            deta = model.zlam(layouts, du)
        step, eta, wk, u, pdev = halving_step(resp, eta, deta, u, du, pdev)
        if joint:
            b = b + step * db
    raise PirlsError(NOT_CONVERGED)


def core_terms(model: GlmerModel) -> object | None:
    """The compiled core's form of the model's terms (``glmm._core.crossed_model``, checked
    and held there once) for :func:`pirls_compiled` and
    :func:`glmm.gradient.core_gradient`, or None where they do not apply.  They apply to two
    or more scalar terms (at most ``MAX_TERMS``) whose coupling block G₂₁ is dense
    (:class:`~glmm.linalg.CouplingPattern`: crossed factors whose levels mostly meet, as
    VerbAgg's subjects and items), for binomial–logit and Poisson–log.

    The fixed effects' sums go through X's distinct rows (as :class:`~glmm.model.TermCells`):
    each observation's row of Xg, X's distinct rows, and per term its cells, the (level, row
    of Xg) pairs, with each observation's cell and each cell's level and row."""
    args, terms = model.response.core_args, model.terms
    if args is None or not 2 <= len(terms) <= _core.MAX_TERMS or any(t.p != 1 for t in terms):
        return None
    q1 = terms[0].nlevels
    q2 = model.q - q1
    if model.coupling.sparse or q2 > MAX_DENSE_SCHUR or q1 * q2 > MAX_DENSE_CROSS:
        return None
    rows = distinct_rows(model.X)
    groups, first = _groups(rows, int(rows.max(initial=-1)) + 1)
    cells = []
    for t in terms:
        cell, one = _groups(t.codes * len(first) + groups, t.nlevels * len(first))
        cells.append((cell, t.codes[one], groups[one]))
    return _core.crossed_model(
        *args, tuple(t.codes for t in terms),
        tuple(None if t.intercept else np.ascontiguousarray(t.Xi[:, 0]) for t in terms),
        tuple(t.nlevels for t in terms), model.p, groups, np.ascontiguousarray(model.X[first]),
        tuple(cells))


def _groups(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of an integer ``key`` in [0, size), numbered in increasing order:
    each entry's number and each number's first entry (np.unique's inverse and index; by a
    table of ``size`` entries instead of a sort while the table is small)."""
    if size > 4 * len(key):
        _, first, index = np.unique(key, return_index=True, return_inverse=True)
        return index.ravel().astype(np.int64), first
    present = np.zeros(size, dtype=bool)
    present[key] = True
    number = np.cumsum(present) - 1
    index = number[key]
    first = np.empty(int(present.sum()), dtype=np.int64)
    first[index[::-1]] = np.arange(len(key) - 1, -1, -1)   # the last write, the first entry
    return index, first


def core_theta(model: GlmerModel, theta: np.ndarray) -> tuple[float, ...]:
    """Each scalar term's θ, as the compiled core takes them."""
    return tuple(float(theta[t.theta_slice.start]) for t in model.terms)


def pirls_compiled(model: GlmerModel, terms: object, theta: np.ndarray, beta: np.ndarray,
                   u0: np.ndarray, joint: bool) -> PirlsState:
    """:func:`pirls` in the compiled core (``terms`` from :func:`core_terms`): the same steps,
    halvings and convergence rule, each step one pass over the observations that assembles
    the blocked factor's dense blocks directly, without the numpy calls of
    :class:`~glmm.linalg.BlockedCholesky`."""
    n, q1 = model.n, model.terms[0].nlevels
    m = model.q - q1 + (model.p if joint else 0)
    u, b = u0.copy(), beta.copy()
    eta, mu, dev, W, s = (np.empty(n) for _ in range(5))
    D, Bt, R = np.empty(q1), np.empty((q1, m)), np.empty((m, m))
    status, iterations = _core.crossed_pirls(
        terms, core_theta(model, theta), joint, model.offset + model.X @ b, u,
        b if joint else None, eta, mu, dev, W, s, D, Bt, R)
    if status:
        raise PirlsError(CORE_ERRORS[status])
    factor = BlockedCholesky.from_core(D, Bt, R, model.coupling)
    return PirlsState(u, b, eta, mu, dev, W, s, factor, model.layouts(theta), iterations,
                      (D, Bt, R))


def predict_compiled(model: GlmerModel, terms: object, st: PirlsState, theta_old: np.ndarray,
                     theta: np.ndarray, beta_old: np.ndarray, beta: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict` in the compiled core, from a mode of :func:`pirls_compiled`."""
    assert st.core is not None
    u = np.empty(len(st.u))
    db = None if beta is not None else np.empty(len(beta_old))
    _core.crossed_predict(terms, core_theta(model, theta_old),
                          core_theta(model, theta - theta_old), beta is None, st.u, st.s, st.W,
                          *st.core, None if beta is None else beta - beta_old, u, db)
    return (u, beta) if db is None else (u, beta_old + db)


def rx_compiled(model: GlmerModel, terms: object, theta: np.ndarray, W: np.ndarray
                ) -> np.ndarray:
    """lme4's R_X at θ and weights W (the fixed effects' block of the joint factor) in the
    compiled core (``terms`` from :func:`core_terms`)."""
    RX = np.empty((model.p, model.p))
    if _core.crossed_rx(terms, core_theta(model, theta), W, RX):
        raise PirlsError(SCHUR_NOT_PD)
    return RX


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
