"""lme4's profiled criteria of a linear mixed model, and their exact gradient in θ.

    y = o + Xβ + ZΛ(θ)u + ε,   u ~ N(0, σ²I_q),   ε ~ N(0, σ²W⁻¹),   W = diag(w) (prior weights)

At θ, one blocked factor (:class:`~glmm.linalg.blocked.BlockedCholesky`, W = w, no PIRLS) of

    A = [ ΛᵀZᵀWZΛ + I   ΛᵀZᵀWX ] = [ L_θ L_θᵀ   ·       ]
        [ XᵀWZΛ         XᵀWX   ]   [ ·         R_XᵀR_X ]      (L_θ: lme4's L)

gives log|L_θ|² (ldL2), R_X (ldRX2 = log|R_X|²) and, solving A[û; β̂] = [ΛᵀZᵀW(y − o); XᵀW(y − o)],
the penalised weighted residual sum of squares

    r²(θ) = Σᵢ wᵢ(yᵢ − oᵢ − xᵢᵀβ̂ − mᵢᵀû)² + ‖û‖²        (lme4's pwrss; mᵢᵀ: row i of ZΛ)

from which β and σ are profiled out (docs/lmm.md §1–§2, Bates et al. 2015 eqs. 34 and 41):

    ML:    d(θ)   = ldL2 − Σlog w + n·(1 + log(2π r²/n)),                σ̂² = r²/n
    REML:  d_R(θ) = ldL2 + ldRX2 − Σlog w + (n − p)·(1 + log(2π r²/(n − p))),  σ̂² = r²/(n − p)

The gradient (docs/lmm.md §3), for θₖ = Tₜ[a, b] and ν = n or n − p:

    ∂d/∂θₖ = 2 Σᵢ wᵢ Xₜ[i, a] [(G⁻¹mᵢ)ₜ,b − REML·(Y x̃ᵢ)ₜ,b] − (2ν/r²) Σᵢ wᵢ eᵢ Xₜ[i, a] û_{ℓₜ(i), b}

with G = L_θL_θᵀ, e the residuals, Y = G⁻¹C(R_XᵀR_X)⁻¹ (C = ΛᵀZᵀWX) and x̃ᵢ = xᵢ − CᵀG⁻¹mᵢ;
(G⁻¹mᵢ)ₜ is the selected inverse of :meth:`BlockedCholesky.inverse_times_rows`.

That is numpy's route, over the observations.  Where the compiled core takes the model
(glmm/objectives/lmm_crossprod.py), the search and every evaluation are the core's instead,
on the cross-products of [Z X y] (docs/lmm.md §6): the same numbers to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cached import cached_property
from ..compiled import core as _core
from ..errors import ArgumentError
from ..linalg.blocked import BlockedCholesky
from ..linalg.lapack import FactorizationError
from ..optimize.bfgs import BAD_START_MESSAGE, DTOL, GTOL, XTOL, BfgsResult, End, Minimizer, message
from ..optimize.bfgs import MAX_ITER as BFGS_MAX_ITER
from .base import Evaluation, Objective
from .lmm_crossprod import LmmCrossProducts, column_level_sums, lmm_crossproducts
from .model import GlmerModel
from .pirls import ConditionalMode, PirlsState

LOG_2PI = math.log(2.0 * math.pi)
#: BFGS's stopping rules for the LMM (:func:`glmm.optimize.bfgs.minimize_bfgs`), tighter than
#: the GLMM's: an evaluation is one factor (no PIRLS), d(θ) and its gradient are exact to
#: rounding, and near θ̂ BFGS converges superlinearly, so a few more evaluations take θ from
#: ~1e-6 to ~1e-9 of the optimum (the GLMM's xtol = 1e-6 left sleepstudy's weighted fit's
#: ranef 2.7e-5 from lme4's tight ones).
TOLERANCES = {"gtol": 1e-7, "dtol": 1e-14, "xtol": 1e-9}


@dataclass(frozen=True)
class LmmEvaluation(Evaluation):
    """The profiled criterion at θ with its pieces (lme4's ``devcomp$cmp``): ``ldL2``,
    ``ldRX2``, ``wrss`` = Σw e², ``ussq`` = ‖û‖², ``pwrss`` = wrss + ussq, σ̂ and R_X (upper).
    ``drsum`` is wrss and ``aic`` is NaN (there is no family aic); ``state`` holds û, β̂,
    μ = η = o + Xβ̂ + ZΛû, W = w and, from numpy's route, the blocked factor (the core's
    route: :class:`SolvedState`, without it)."""

    REML: bool
    wrss: float
    pwrss: float
    ldRX2: float
    sigma: float
    RX: np.ndarray

    @property
    def remlcrit(self) -> float:
        """lme4's REMLcrit from the same pieces (ν = n − p), whichever criterion was fitted."""
        return _criterion(self.ldL2, self.ldRX2, self.pwrss, self.model, True)

    @property
    def deviance(self) -> float:
        """lme4's deviance(fit, REML = FALSE): the ML criterion from the same pieces."""
        return _criterion(self.ldL2, self.ldRX2, self.pwrss, self.model, False)

    @property
    def vcov(self) -> np.ndarray:
        """σ̂²(R_XᵀR_X)⁻¹, lme4's vcov of an LMM."""
        eye = np.eye(len(self.RX))
        Rinv = np.linalg.solve(self.RX, eye)   # R_X is p × p, upper, well conditioned
        return self.sigma ** 2 * (Rinv @ Rinv.T)


def log_weights(model: GlmerModel) -> float:
    """Σ log wᵢ (lme4's ldW), once per model."""
    return model.log_weight_sum


def _criterion(ldL2: float, ldRX2: float, pwrss: float, model: GlmerModel, REML: bool
               ) -> float:
    n, p = model.n, model.p
    nu = n - p if REML else n
    value = ldL2 - log_weights(model) + nu * (1.0 + LOG_2PI + math.log(pwrss / nu))
    return value + ldRX2 if REML else value


def reml_effective(REML: bool, p: int) -> bool:
    """lme4 stores REML as p (the number of fixed effects) and tests it as a flag, so a REML
    request for a model without fixed effects (p = 0) is an ML fit."""
    return bool(REML) and p > 0


class LmmObjective(Objective):
    """lme4's profiled criterion d_R(θ) (``REML``) or d(θ) as a function of θ alone, with its
    exact gradient; every evaluation is one factor (the core's of Ā, or numpy's blocked one of
    A, W = w): no PIRLS, so no warm start and no dependence on the evaluation history."""

    def __init__(self, model: GlmerModel, REML: bool) -> None:
        super().__init__(model, 0, np.zeros(model.p))
        self.REML = reml_effective(REML, model.p)

    # numpy's θ-free sums over the observations, made on first use: where the core takes the
    # model, every evaluation (:meth:`evaluate`) and the search are the core's, so these are
    # never needed
    @cached_property
    def _ry(self) -> np.ndarray:
        """W(y − o)."""
        m = self.model
        return m.weights * (m.y - m.offset)

    @cached_property
    def _Xry(self) -> np.ndarray:
        """XᵀW(y − o)."""
        return self.model.X.T @ self._ry

    @cached_property
    def _F(self) -> np.ndarray:
        """XᵀWX."""
        w, X = self.model.weights, self.model.X
        return X.T @ (w[:, None] * X)

    @cached_property
    def _Q(self) -> list[np.ndarray]:
        """Per term and level, Σ wᵢ Xₜ[i]ᵀ [xᵢᵀ, yᵢ − oᵢ]  (ℓ × pₜ × (p + 1)), so that
        ΛᵀZᵀW[X, y − o] at level l is Tₜᵀ of it: θ-free sums, formed once."""
        model = self.model
        w, X = model.weights, model.X
        cols = [*np.ascontiguousarray(X.T), model.y - model.offset]
        unit = model.unit_weights
        return [np.stack([column_level_sums(t, None if unit and t.intercept else
                                            w * t.Xi[:, c], cols)
                          for c in range(t.p)], axis=1)
                for t in model.terms]

    def mode(self, theta: np.ndarray, beta: np.ndarray | None) -> PirlsState:
        return self._solve(theta)

    @cached_property
    def _crossproducts(self) -> LmmCrossProducts | None:
        """The model's θ-free cross-products M
        (:func:`~glmm.objectives.lmm_crossprod.lmm_crossproducts`), made on first use; None
        where the core does not take the model."""
        return lmm_crossproducts(self.model, self.REML)

    @property
    def _capsule(self) -> object | None:
        """M in the compiled core (an ``lmm_model`` capsule), or None."""
        made = self._crossproducts
        return None if made is None else made.capsule

    def __getstate__(self) -> dict[str, Any]:
        """The state without the core's capsule (which does not pickle; it is made again on
        first use)."""
        state = self.__dict__.copy()
        state.pop("_crossproducts", None)
        return state

    def compiled_bfgs(self, R: np.ndarray | None, beta0: np.ndarray | None,
                      tolerances: Mapping[str, float] | None = None) -> Minimizer | None:
        """BFGS over θ run in the compiled core, evaluations and all (glmm/csrc/lmm.c): the
        same criterion and exact gradient from M's blocks (docs/lmm.md §6), and
        :func:`glmm.optimize.bfgs.minimize_bfgs`'s rules.  :attr:`evaluations` counts the
        core's evaluations; the fit's pieces at the final point (û, β̂, R_X) come from
        :meth:`evaluate`, also the core's.  None where the core does not take the model."""
        capsule = self._capsule
        if capsule is None:
            return None
        assert _core is not None
        tol = {"gtol": GTOL, "dtol": DTOL, "xtol": XTOL, "max_iter": BFGS_MAX_ITER,
               **(tolerances or {})}

        def run(x0: np.ndarray, start: tuple[float, np.ndarray] | None) -> BfgsResult:
            x = np.array(x0, dtype=float)
            g = np.zeros(len(x)) if start is None else np.array(start[1], dtype=float)
            code, converged, f, nfev, gmax, decrement, dmax = _core.lmm_minimize(
                capsule, x, g, None if start is None else float(start[0]),
                float(tol["gtol"]), float(tol["dtol"]), float(tol["xtol"]),
                int(tol["max_iter"]))
            self.evaluations += nfev
            if code == End.BAD_START:
                raise ArithmeticError(BAD_START_MESSAGE)
            return BfgsResult(x, f, g, nfev, bool(converged),
                              message(code, gmax, decrement, dmax, **tol))

        return run

    def _solve(self, theta: np.ndarray) -> PirlsState:
        """û and β̂ at θ with the factor of A; the 'mode' of an LMM is a linear solve."""
        m = self.model
        w = m.weights
        layouts = m.layouts(theta)
        # [C, ΛᵀZᵀW(y − o)] per term: Tₜᵀ Q at every level (level-major rows, as u)
        CR = np.concatenate([np.einsum("ca,lcj->laj", t.T(theta), Q).reshape(t.nranef, -1)
                             for t, Q in zip(m.terms, self._Q, strict=True)])
        factor = BlockedCholesky(layouts, w, m.coupling, (CR[:, :-1], self._F))
        sol = factor.solve(np.concatenate([CR[:, -1], self._Xry]))
        u, beta = sol[:m.q], sol[m.q:]
        eta = m.offset + m.X @ beta + m.zlam(layouts, u)
        res = m.y - eta
        wres = w * res
        return PirlsState(u, beta, eta, eta, wres * res, w, wres, factor, layouts, 0)

    def evaluate(self, params: np.ndarray) -> Evaluation:
        """The evaluation at θ: the core's (:meth:`_core_evaluation`: one factor of Ā) where
        it takes the model, else numpy's (:meth:`_evaluate`: one blocked factor of A)."""
        made = self._crossproducts
        if made is None:
            return super().evaluate(params)
        theta, _ = self.split(params)
        self.evaluations += 1
        ev = self._core_evaluation(np.array(theta, dtype=float), made)
        self.last = (np.array(params, dtype=float), ev)
        return ev

    def _core_evaluation(self, theta: np.ndarray, made: LmmCrossProducts) -> LmmEvaluation:
        """The fit's pieces at θ from the core's factor of Ā (lmm.c, ``lmm_solution``,
        docs/lmm.md §6): ldL2, ldRX2, r² = pwrss, R_X and z = [û; β̂ − β₀] by
        back-substitution, with no pass over the observations; wrss = pwrss − ‖û‖² (where
        that does not cancel), and the n-vectors (η, the residuals) are computed when first
        read (:class:`SolvedState`).  The classes form keeps no level's coupling in the core,
        and a scalar term 1's modes come from its rows of the normal equations, with
        (dₖ, cₖ) kept beside the capsule (:class:`~glmm.objectives.lmm_crossprod.TermOneLevels`):

            ûₖ = θ₁(cₖ,ỹ − Σⱼ cₖⱼλⱼz̄ⱼ) / (θ₁²dₖ + 1),   z̄ = [û₂; β̂ − β₀],  λ = diag(Λ̄₂)

        FactorizationError where Ā is not positive definite at θ (or r² = 0), as in numpy."""
        assert _core is not None
        m = self.model
        p, q = m.p, m.q
        u, delta, RX = np.zeros(q), np.empty(p), np.empty((p, p))
        F, ldL2, ldRX2, pwrss, term1 = _core.lmm_solution(made.capsule, theta, u, delta, RX)
        if not math.isfinite(F):
            raise FactorizationError(f"Ā is not positive definite at θ = {theta.tolist()}")
        if made.order is not None:   # the core's later modes in its supernodal order
            q1 = m.terms[0].nranef
            u[q1 + made.order] = u[q1:].copy()
        if not term1:
            lv = made.levels
            assert lv is not None
            q1 = len(lv.d)
            lam = np.empty(q - q1)   # Λ̄₂'s diagonal on the later terms' rows
            at = 0
            for t in m.terms[1:]:
                lam[at:at + t.nlevels] = theta[t.theta_slice.start]
                at += t.nlevels
            coupled = np.bincount(lv.level, lv.value * (lam * u[q1:])[lv.row], minlength=q1)
            t1 = float(theta[0])
            u[:q1] = t1 * (lv.tail[:, -1] - lv.tail[:, :-1] @ delta - coupled) / (
                t1 * t1 * lv.d + 1.0)
        ussq = float(u @ u)
        nu = m.n - m.p if self.REML else m.n
        value = _criterion(ldL2, ldRX2, pwrss, m, self.REML)
        beta = made.beta0 + delta
        st = SolvedState(u, beta, m, theta)
        # wrss = r² − ‖û‖² keeps r²'s relative accuracy to a factor 2 while ‖û‖² ≤ r²/2
        # (then wrss ≥ r²/2); beyond, where it would cancel, Σ wᵢeᵢ² over the observations
        wrss = pwrss - ussq if 2.0 * ussq <= pwrss else st.drsum
        return LmmEvaluation(value, theta, beta, u, ldL2, ussq, wrss, math.nan, st, m,
                             self.REML, wrss, pwrss, ldRX2, math.sqrt(pwrss / nu), RX)

    def _evaluate(self, params: np.ndarray, gradient: bool
                  ) -> tuple[LmmEvaluation, np.ndarray | None]:
        """The evaluation (and gradient) at θ from sums over the observations: the blocked
        factor of A (:meth:`_solve`) and the residuals (docs/lmm.md §1–§3)."""
        theta, _ = self.split(params)
        self.evaluations += 1
        st = self._solve(theta)   # FactorizationError (an ArithmeticError) where A is not PD
        RX = st.factor.RX
        if RX is None:   # no fixed effects with a single scalar term: nothing after G₁₁
            RX = np.zeros((0, 0))
        wrss, ussq = st.drsum, st.ussq
        pwrss = wrss + ussq
        ldL2 = st.factor.logdet
        ldRX2 = 2.0 * float(np.log(np.diagonal(RX)).sum()) if len(RX) else 0.0
        m = self.model
        if not pwrss > 0.0:
            raise ArithmeticError("the penalised residual sum of squares is 0")
        nu = m.n - m.p if self.REML else m.n
        value = _criterion(ldL2, ldRX2, pwrss, m, self.REML)
        ev = LmmEvaluation(value, theta, st.beta, st.u, ldL2, ussq, wrss, math.nan, st, m,
                           self.REML, wrss, pwrss, ldRX2, math.sqrt(pwrss / nu), RX)
        self.last = (np.array(params, dtype=float), ev)
        return ev, (self._gradient(theta, st, pwrss, nu) if gradient else None)

    def _gradient(self, theta: np.ndarray, st: PirlsState, pwrss: float, nu: int
                  ) -> np.ndarray:
        m = self.model
        w, layouts, factor = m.weights, st.layouts, st.factor
        v = factor.inverse_times_rows(layouts)   # (G⁻¹mᵢ) per term at i's level
        if self.REML:
            # Y = G⁻¹C(R_XᵀR_X)⁻¹ = −(A⁻¹[0; I_p])ᵤ; x̃ = X − ZΛ G⁻¹C, G⁻¹C = Y R_XᵀR_X
            p, q = m.p, m.q
            Y = -factor.solve(np.vstack([np.zeros((q, p)), np.eye(p)]))[:q]
            RX = factor.RX
            assert RX is not None   # p > 0 for REML
            K = Y @ (RX.T @ RX)
            Xt = m.X - np.column_stack([m.zlam(layouts, K[:, j]) for j in range(p)])
            for vt, t, Yt in zip(v, m.terms, _term_rows(m, Y), strict=True):
                vt -= np.einsum("ibj,ij->ib", np.take(Yt, t.codes, axis=0), Xt)
        scale = 2.0 * nu / pwrss
        e = st.s   # W e
        out = np.empty(m.ntheta)
        for t, lay, ub, vt in zip(m.terms, layouts, m.u_blocks(st.u), v, strict=True):
            rows, cols = t.tril
            for k, (ra, cb) in enumerate(zip(rows, cols, strict=True)):
                if t.intercept:
                    wx, ex = w, e
                else:
                    x = t.Xi[:, ra]
                    wx, ex = w * x, e * x
                out[t.theta_slice.start + k] = (2.0 * wx @ vt[:, cb]
                                                - scale * (ub[:, cb] @ lay.level_sums(ex)))
        return out

    def rx(self, ev: Evaluation) -> np.ndarray:
        assert isinstance(ev, LmmEvaluation)
        return ev.RX


def _term_rows(model: GlmerModel, Y: np.ndarray) -> list[np.ndarray]:
    """Y (q × k) split per term as (ℓₜ, pₜ, k) arrays (u's layout: level-major)."""
    out, start = [], 0
    for t in model.terms:
        stop = start + t.nlevels * t.p
        out.append(Y[start:stop].reshape(t.nlevels, t.p, Y.shape[1]))
        start = stop
    return out


class SolvedState(ConditionalMode):
    """The mode of an evaluation in the core (:meth:`LmmObjective._core_evaluation`): û and
    β̂, with the n-vectors computed when first read, by the formulas of
    :meth:`LmmObjective._solve` (η = μ = o + Xβ̂ + ZΛû, s = We, dev = w e², e = y − η)."""

    def __init__(self, u: np.ndarray, beta: np.ndarray, model: GlmerModel,
                 theta: np.ndarray) -> None:
        # no dataclass __init__: it would set the n-vectors, which are computed here
        self.u, self.beta, self.W = u, beta, model.weights
        self._model, self._theta = model, theta

    @cached_property
    def eta(self) -> np.ndarray:  # type: ignore[override]
        m = self._model
        return m.offset + m.X @ self.beta + m.zlam(m.layouts(self._theta), self.u)

    @property
    def mu(self) -> np.ndarray:  # type: ignore[override]
        return self.eta

    @cached_property
    def s(self) -> np.ndarray:  # type: ignore[override]
        """W e."""
        return self.W * (self._model.y - self.eta)

    @cached_property
    def dev(self) -> np.ndarray:  # type: ignore[override]
        """wᵢeᵢ²."""
        return self.s * (self._model.y - self.eta)


def lme4_start(model: GlmerModel) -> np.ndarray | None:
    """lme4's start for models whose terms are all ``(1 | f)`` on distinct factors
    (``mkLmerDevfun``): θᵢ = √(vᵢ/v_e), vᵢ = var(ave(y, fᵢ)) (the variance of the group
    means spread over the rows), v_e = var(y) − Σvᵢ, when v_e > 0; else None (θ₀ = 1)."""
    terms = model.terms
    if not all(t.intercept for t in terms):
        return None
    if len({t.group for t in terms}) != len(terms):
        return None
    y = model.y   # lme4 uses model.response: the raw y, without offset or weights
    v = []
    spread = np.empty(len(y))   # ave(y, f): one buffer for every term
    for t in terms:
        counts = np.bincount(t.codes, minlength=t.nlevels)   # ≥ 1: the frame drops unused levels
        means = np.bincount(t.codes, y, minlength=t.nlevels) / counts
        v.append(_var_in_place(np.take(means, t.codes, out=spread, mode="clip")))
    ve = _var_in_place(np.array(y)) - sum(v)   # var(y), in a copy
    if not (math.isfinite(ve) and ve > 0.0):
        return None
    return np.sqrt(np.asarray(v) / ve)


def _var_in_place(x: np.ndarray) -> float:
    """np.var(x, ddof=1) of a vector, computed in x's own memory (x is overwritten): numpy's
    own steps (numpy/_core/_methods.py, _var: the pairwise sum over n, divided by n, the
    squared deviations in place, their sum over n − 1), so the same bits, without the n-long
    array of deviations that np.var allocates."""
    n = len(x)
    mean = np.add.reduce(x, keepdims=True)
    np.true_divide(mean, n, out=mean)
    np.subtract(x, mean, out=x)
    np.square(x, out=x)
    return float(np.add.reduce(x) / max(n - 1, 0))


def check_theta(theta: object, ntheta: int, what: str = "start", symbol: str = "θ"
                ) -> np.ndarray:
    """θ (or the vector ``symbol``) as a float vector of length ``ntheta``, or an
    ArgumentError naming ``what``."""
    try:
        x = np.atleast_1d(np.asarray(theta, dtype=float))
    except (TypeError, ValueError):
        raise ArgumentError(f"{what} must be a vector of {ntheta} numbers {symbol}, got "
                            f"{theta!r:.80}") from None
    if x.ndim != 1 or len(x) != ntheta or not np.isfinite(x).all():
        raise ArgumentError(f"{what} must be a vector of {ntheta} finite numbers {symbol}, "
                            f"got {x.tolist()!r:.80}")
    return x
