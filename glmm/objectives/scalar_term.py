"""The objectives for one scalar random-effects term: ``y ~ … + (1 | g)``, or ``(0 + x | g)``.

With a single term of one column, Λ = θI and row i of ZΛ holds θxᵢ in the column of its
level fᵢ (xᵢ = 1 for an intercept), so G is diagonal,

    G = ΛᵀZᵀWZΛ + I = diag(D),   Dⱼ = 1 + θ² Σ_{i∈j} Wᵢxᵢ²,   log|L|² = Σⱼ log Dⱼ,

and every step of the general machinery (:mod:`glmm.objectives.pirls`,
:mod:`glmm.objectives.gradient`, the blocked factor of :mod:`glmm.linalg.blocked`) reduces to
per-level sums (``bincount``) and elementwise arithmetic.  This is the most common GLMM, and on a
small one (cbpp: 56 rows, 15 herds) the general path's cost is its count of numpy calls and Python
objects, not its flops; here an evaluation with its gradient is a few dozen numpy calls.  The
formulas are those of the general modules with G diagonal (same objective, same convergence rule):

    PIRLS, u given β:   δu = (θ Σ_{i∈j} xᵢsᵢ − uⱼ) / Dⱼ           (one Newton step per level)
    PIRLS, u and β:     C = ΛᵀZᵀWX (ℓ × p, row j = θ Σ_{i∈j} Wᵢxᵢ Xᵢ),
                        R_XᵀR_X = XᵀWX − Cᵀ diag(D)⁻¹ C,  solved by the Schur complement
    gradient (Laplace): hᵢ = θ²xᵢ²/D_fᵢ,  a = W'∘h,  z = (θ Σ xa + 2(1 − κ)ũ)/D°,
                        r = a − O∘(θx z_f) − 2κs,
                        ∂F/∂β = Xᵀr,  ∂F/∂θ = rᵀ(x ũ_f) + sᵀ(x z_f) + 2θ Σⱼ (Σ_{i∈j} Wᵢxᵢ²)/Dⱼ
                        (D° = 1 + θ² Σ Oxᵢ², the observed curvature; D° = D for canonical links)
    gradient, nAGQ = 0: the same with z from the joint system [D°, C°; C°ᵀ, XᵀOX] [z; z_β] =
                        [θ Σ xa + 2(1 − κ)ũ; Xᵀa] (C° = ΛᵀZᵀOX) and r = a − O∘(θx z_f + X z_β) − 2κs
    nAGQ > 1:           :func:`glmm.objectives.agq.agq_objective` on the u-only mode.

For binomial–logit and Poisson–log, PIRLS, the gradient, the warm start and R_X run in the
compiled core (:mod:`glmm.compiled`: C, the same formulas, one call for the whole PIRLS
loop) when it was built, and for nAGQ ≤ 1 with whole counts so does the BFGS search over
them (:meth:`ScalarTermObjective.compiled_bfgs`); otherwise, and for every other pair, in
numpy below.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cached import cached_property
from ..compiled import core as _core
from ..families.response import Working
from ..linalg.lapack import FactorizationError, cho_solve, cholesky
from ..optimize.bfgs import BAD_START_MESSAGE, DTOL, GTOL, XTOL, BfgsResult, End, Minimizer, message
from ..optimize.bfgs import MAX_ITER as BFGS_MAX_ITER
from .agq import agq_objective
from .base import Evaluation, Objective
from .ghrule import ghrule
from .model import GlmerModel
from .pirls import (
    CORE_ERRORS,
    DECREMENT_TOL,
    MAX_ITER,
    NEWTON_FROM,
    NOT_CONVERGED,
    RX_NOT_PD,
    START_NOT_FINITE,
    SYSTEM_NOT_FINITE,
    ConditionalMode,
    PirlsError,
    halving_step,
)


@dataclass(eq=False)
class ScalarMode(ConditionalMode):
    """The mode for one scalar term, with D at the mode's own weights (G = diag(D))."""

    D: np.ndarray            # Dⱼ = Lⱼⱼ²
    iterations: int
    RX: np.ndarray | None = None   # R_X, C = ΛᵀZᵀWX and D⁻¹C at the mode (joint mode only)
    C: np.ndarray | None = None
    GiC: np.ndarray | None = None

    @property
    def logdet(self) -> float:
        """log|L|² = Σⱼ log Dⱼ."""
        return float(np.log(self.D).sum())


class ScalarTermObjective(Objective):
    """F for a model with one scalar random-effects term, as
    :class:`glmm.objectives.blocked.BlockedObjective` computes it for any model, and also for
    nAGQ > 1 (adaptive Gauss–Hermite), with the same warm start
    (:meth:`glmm.objectives.base.Objective._warm_start`).

    ``compiled=False`` keeps PIRLS and the gradient in numpy even where the compiled core
    applies (:attr:`compiled` tells which path is in use).
    """

    def __init__(self, model: GlmerModel, nAGQ: int, beta_start: np.ndarray,
                 compiled: bool = True) -> None:
        if len(model.terms) != 1 or model.terms[0].p != 1:
            raise ValueError("ScalarTermObjective needs a model with one scalar term")
        super().__init__(model, nAGQ, beta_start)
        self.rule = ghrule(nAGQ) if nAGQ > 1 else None
        term = model.terms[0]
        self._level = term.codes        # fᵢ, each observation's level
        self._column = term.Xi[:, 0]    # xᵢ, the term's column
        self._intercept = term.intercept   # x = 1: (1 | g)
        self._column2 = self._column * self._column
        self._X, self._offset, self._resp = model.X, model.offset, model.response
        self._sum = term.level_sums   # Σ_{i∈j} aᵢ for every level j, of a vector or matrix
        # None: no compiled core, or not a canonical pair
        self.compiled = compiled and self._resp.core_args is not None

    @cached_property
    def _capsule(self) -> object:
        """The model in the compiled core (its scalar_model: the response, the term, X and
        the offset, checked there once), made on first use."""
        args = self._resp.core_args
        assert _core is not None and args is not None
        return _core.scalar_model(*args, self._level,
                                  None if self._intercept else np.ascontiguousarray(self._column),
                                  self.model.q, self._X.shape[1], np.ascontiguousarray(self._X),
                                  np.ascontiguousarray(self._offset, dtype=float))

    def __getstate__(self) -> dict[str, Any]:
        """The state without the core's capsule (which does not pickle; it is made again on
        first use)."""
        state = self.__dict__.copy()
        state.pop("_capsule", None)
        return state

    def _schur(self, th: float, W: np.ndarray, D: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """C = ΛᵀZᵀWX, D⁻¹C and R_X (upper, R_XᵀR_X = XᵀWX − CᵀD⁻¹C) for weights W."""
        X = self._X
        WX = W[:, None] * X
        C = th * self._sum(WX if self._intercept else self._column[:, None] * WX)
        GiC = C / D[:, None]
        try:
            RX = cholesky(X.T @ WX - C.T @ GiC, lower=False)
        except FactorizationError as exc:
            raise PirlsError(RX_NOT_PD) from exc
        return C, GiC, RX

    # -- PIRLS ----------------------------------------------------------------------------------
    def _pirls(self, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray, joint: bool
               ) -> ScalarMode:
        """:func:`glmm.objectives.pirls.pirls` for G = diag(D): ũ(θ, β), or (ũ, β̃)(θ) when
        ``joint``."""
        if self.compiled:
            return self._pirls_compiled(float(theta[0]), beta, u0, joint)
        resp, X, f = self._resp, self._X, self._level
        th = float(theta[0])
        tx = th * self._column
        tx2 = th * th * self._column2
        u, b = u0.copy(), beta.copy()
        eta = self._offset + X @ b + tx * u[f]
        wk = resp.update(eta)
        canonical = self.model.family.canonical
        db = None
        pdev = float(wk.dev.sum() + u @ u)
        if not np.isfinite(pdev):
            raise PirlsError(START_NOT_FINITE)
        for it in range(1, MAX_ITER + 1):
            D = 1.0 + self._sum(wk.W * tx2)     # ≥ 1: W ≥ 0
            grad_u = self._sum(tx * wk.s) - u
            RX = C = GiC = None
            if joint:
                Xs = X.T @ wk.s
                C, GiC, RX = self._schur(th, wk.W, D)
                Giru = grad_u / D
                db = cho_solve(RX, Xs - C.T @ Giru, lower=False)
                du = Giru - GiC @ db
                decrement = float(du @ grad_u + db @ Xs)
            else:
                du = grad_u / D
                decrement = float(du @ grad_u)
            if not math.isfinite(decrement):   # NaN or infinite weights
                raise PirlsError(SYSTEM_NOT_FINITE)
            if decrement < DECREMENT_TOL * max(1.0, pdev):
                return ScalarMode(u, b, eta, wk.mu, wk.dev, wk.W, wk.s, D, it, RX, C, GiC)
            if not canonical and decrement < NEWTON_FROM * max(1.0, pdev):
                du, db = self._newton(th, eta, wk, grad_u, Xs if joint else None, du, db)
            deta = tx * du[f]
            if joint:
                deta += X @ db
            step, eta, wk, u, pdev = halving_step(resp, eta, deta, u, du, pdev)
            if joint:
                b = b + step * db
        raise PirlsError(NOT_CONVERGED)

    def _newton(self, th: float, eta: np.ndarray, wk: Working, grad_u: np.ndarray,
                Xs: np.ndarray | None, du: np.ndarray, db: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """Newton's step (δu, δβ) for :meth:`_pirls`: Fisher's with the observed weights O in
        place of W (D° = 1 + θ² Σ Ox², and its Schur complement when ``Xs``, Xᵀs, is given),
        where O ≥ 0; else Fisher's step (``du``, ``db``) unchanged
        (glmm.objectives.pirls.NEWTON_FROM)."""
        Wobs = self._resp.observed_weights(eta, wk.mu, wk.W)
        if not (Wobs >= 0).all():
            return du, db
        D = 1.0 + self._sum(Wobs * (th * th * self._column2))
        if Xs is None:
            return grad_u / D, None
        try:
            C, GiC, RX = self._schur(th, Wobs, D)
        except PirlsError:   # β's block singular under O: Fisher's step
            return du, db
        Giru = grad_u / D
        db = cho_solve(RX, Xs - C.T @ Giru, lower=False)
        return Giru - GiC @ db, db

    def _pirls_compiled(self, th: float, beta: np.ndarray, u0: np.ndarray, joint: bool
                        ) -> ScalarMode:
        """:meth:`_pirls` in the compiled core."""
        n, nlev = len(self._level), len(u0)
        p = self._X.shape[1] if joint else 0
        u, b = u0.copy(), beta.copy()
        # one array each, not one (5, n) block: a block that large is mapped fresh (and its
        # pages touched) at every evaluation
        eta, mu, dev, W, s = (np.empty(n) for _ in range(5))
        D = np.empty(nlev)
        C = GiC = RX = None
        if joint:
            C, GiC, RX = np.empty((nlev, p)), np.empty((nlev, p)), np.empty((p, p))
        status, iterations, _ = _core.scalar_pirls(
            self._capsule, th, joint, self._offset + self._X @ b, u, b if joint else None, eta, mu,
            dev, W, s, D, C, GiC, RX)
        if status:
            raise PirlsError(CORE_ERRORS[status])
        return ScalarMode(u, b, eta, mu, dev, W, s, D, iterations, RX, C, GiC)

    def glm_beta(self, beta: np.ndarray) -> np.ndarray:
        """β̂ of the GLM without random effects, from β.  In the compiled core, as the joint
        mode at θ = 0: there ZΛ = 0, so P(u, β) = Σdev(o + Xβ) + ‖u‖² is minimised by u = 0
        and the GLM's β̂, and joint PIRLS is IRLS with step-halving and a stricter stop (one
        C call; IRLS in numpy costs more per step than this whole fit on cbpp).  IRLS
        where the core does not apply or this fails."""
        if self.compiled:
            try:
                return self._pirls_compiled(0.0, beta, np.zeros(self.model.q), True).beta
            except PirlsError:
                pass
        return super().glm_beta(beta)

    def compiled_bfgs(self, R: np.ndarray | None, beta0: np.ndarray | None,
                      tolerances: Mapping[str, float] | None = None) -> Minimizer | None:
        """BFGS run in the compiled core, evaluations and all, for F₀ and F₁ of a canonical
        pair whose aic is Σdev plus a constant, so that on a small model no Python runs between
        evaluations.  The core evaluates F as
        :meth:`_evaluate` does (the same warm start and cold-start fallback, PIRLS, F and
        the exact gradient, in (θ, ζ) with β = β₀ + R⁻¹ζ for nAGQ = 1), and BFGS follows
        :func:`glmm.optimize.bfgs.minimize_bfgs`'s rules.  For nAGQ > 1 F is lme4's adaptive
        quadrature objective at the u-only mode (glmm/csrc/agq.c, the formulas of
        :func:`~glmm.objectives.agq.agq_objective`).  Afterwards :attr:`last` and
        :attr:`evaluations` are as if the evaluations had been made here.  None where the
        core does not apply: another pair, or non-integer counts at nAGQ ≤ 1 (whose aic
        the core does not evaluate; the quadrature objective has none)."""
        offset = self._resp.aic_constant
        if not self.compiled or (offset is None and self.nAGQ <= 1):
            return None
        joint = self.nAGQ == 0
        z, wk = self.rule if self.rule is not None else (None, None)
        tol = {"gtol": GTOL, "dtol": DTOL, "xtol": XTOL, "max_iter": BFGS_MAX_ITER,
               **(tolerances or {})}
        n, nlev, p = len(self._level), self.model.q, self._X.shape[1]
        Rc = None if joint else np.ascontiguousarray(R)
        b0 = None if joint else np.ascontiguousarray(beta0, dtype=float)

        def mode_set() -> tuple:
            return (np.empty(1), np.empty(p), np.empty(nlev), np.empty(nlev),
                    *(np.empty(n) for _ in range(5)),
                    *((np.empty((nlev, p)), np.empty((nlev, p)), np.empty((p, p))) if joint
                      else (None, None, None)))

        def run(x0: np.ndarray, start: tuple[float, np.ndarray] | None) -> BfgsResult:
            last = None
            if self.last is not None:
                ev = self.last[1]
                st = ev.state
                assert isinstance(st, ScalarMode)
                last = (ev.theta, st.beta, st.u, st.D, st.eta, st.mu, st.dev, st.W, st.s,
                        st.C, st.GiC, st.RX)
            sets = (mode_set(), mode_set())
            x = np.array(x0, dtype=float)
            g = np.zeros(len(x)) if start is None else np.array(start[1], dtype=float)
            xl = np.empty(len(x))
            (code, converged, f, nfev, gmax, decrement, dmax), which, iterations = \
                _core.scalar_minimize(self._capsule, np.ascontiguousarray(self.beta_start), Rc,
                                      b0, 0.0 if offset is None else offset, last, *sets, x, g, xl,
                                      None if start is None else float(start[0]),
                                      float(tol["gtol"]), float(tol["dtol"]),
                                      float(tol["xtol"]), int(tol["max_iter"]), z, wk)
            self.evaluations += nfev
            params = None
            if which >= 0:   # the last mode the core reached becomes this objective's last
                th, b, u, D, eta, mu, dev, W, s, C, GiC, RX = sets[which]
                st = ScalarMode(u, b, eta, mu, dev, W, s, D, iterations, RX, C, GiC)
                pl = th if joint else np.concatenate([th, b])
                ev = self._laplace(th, st)
                if self.rule is not None:   # the quadrature objective at that mode
                    value = agq_objective(self.model, th, st, self.rule)[0]
                    ev = dataclasses.replace(ev, objective=value)
                self.last = (pl, ev)
                if np.array_equal(x, xl):
                    params = pl.copy()
            if code == End.BAD_START:
                raise ArithmeticError(BAD_START_MESSAGE)
            return BfgsResult(x, f, g, nfev, bool(converged),
                              message(code, gmax, decrement, dmax, **tol), params)

        return run

    def _predict(self, last: Evaluation, theta: np.ndarray, beta: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`glmm.objectives.pirls.predict` for G = diag(D): with δη = (θ − θ_old)xũ_f + XΔβ,
        r_u = (θ − θ_old)Σxs − θ_old ΣxWδη and δu = r_u/D (joint: the Schur solve)."""
        st = last.state
        assert isinstance(st, ScalarMode)
        th_old = float(last.theta[0])
        dth = float(theta[0]) - th_old
        if self.compiled:
            u = np.empty(len(st.u))
            if beta is not None:
                _core.scalar_predict(self._capsule, th_old, dth, st.u, st.s, st.W, st.D,
                                     beta - last.beta, None, None, None, u, None)
                return u, beta
            db = np.empty(len(last.beta))
            _core.scalar_predict(self._capsule, th_old, dth, st.u, st.s, st.W, st.D, None, st.C,
                                 st.GiC, st.RX, u, db)
            return u, last.beta + db
        deta = dth * self._column * st.u[self._level]
        if beta is not None:
            deta = deta + self._X @ (beta - last.beta)
        Wd = st.W * deta
        ru = self._sum(self._column * (dth * st.s - th_old * Wd))
        Giru = ru / st.D
        if beta is not None:
            return st.u + Giru, beta
        assert st.C is not None and st.GiC is not None and st.RX is not None
        db = cho_solve(st.RX, -(self._X.T @ Wd) - st.C.T @ Giru, lower=False)
        return st.u + Giru - st.GiC @ db, last.beta + db

    # -- the objective and its gradient -----------------------------------------------------------
    def _criterion(self, theta: np.ndarray, st: ConditionalMode, laplace: float,
                   gradient: bool) -> tuple[float, np.ndarray | None]:
        assert isinstance(st, ScalarMode)
        if self.nAGQ > 1:
            assert self.rule is not None
            return agq_objective(self.model, theta, st, self.rule, gradient)
        return laplace, (self._gradient(float(theta[0]), st) if gradient else None)

    def _gradient(self, th: float, st: ScalarMode) -> np.ndarray | None:
        """∂F/∂(θ, β) (nAGQ = 1) or ∂F₀/∂θ (nAGQ = 0) at the mode ``st``; None where D° ≤ 0."""
        if self.compiled:   # a canonical pair: O = W, κ = 1, D° = D ≥ 1
            g = np.empty(1 if self.nAGQ == 0 else 1 + self._X.shape[1])
            _core.scalar_gradient(self._capsule, th, st.D, st.u, st.mu, st.W, st.s,
                                  *((st.C, st.GiC, st.RX) if self.nAGQ == 0
                                    else (None, None, None)), g)
            return g
        resp, f, x = self._resp, self._level, self._column
        W, Wp = resp.weight_derivatives(st.eta, st.mu, st.W)
        Wobs = resp.observed_weights(st.eta, st.mu, W)
        kappa = resp.aic_slope(st.drsum)
        s, u, D = st.s, st.u, st.D
        tx = th * x
        Df = D[f]
        a = Wp * (tx * tx / Df)                      # W' ∘ leverages
        rhs = self._sum(tx * a)
        if kappa != 1.0:
            rhs = rhs + 2.0 * (1.0 - kappa) * u
        Do = D if Wobs is W else 1.0 + self._sum(Wobs * (tx * tx))
        if not (Do > 0.0).all():
            return None
        if self.nAGQ == 0:
            if Wobs is W:
                C, GiC, RX = st.C, st.GiC, st.RX
                assert C is not None and GiC is not None and RX is not None
            else:
                try:
                    C, GiC, RX = self._schur(th, Wobs, Do)
                except PirlsError:
                    return None
            ab = self._X.T @ a
            Giru = rhs / Do
            zb = cho_solve(RX, ab - C.T @ Giru, lower=False)
            z = Giru - GiC @ zb
            r = a - Wobs * (tx * z[f] + self._X @ zb) - 2.0 * kappa * s
        else:
            z = rhs / Do
            r = a - Wobs * (tx * z[f]) - 2.0 * kappa * s
        g_theta = r @ (x * u[f]) + s @ (x * z[f]) + 2.0 * th * float(
            np.sum(self._sum(W * self._column2) / D))
        if self.nAGQ == 0:
            return np.array([g_theta])
        return np.concatenate([[g_theta], self._X.T @ r])

    def rx(self, ev: Evaluation) -> np.ndarray:
        """lme4's R_X at an evaluation's mode (upper triangular)."""
        st = ev.state
        assert isinstance(st, ScalarMode)
        if st.RX is not None:
            return st.RX
        if self.compiled:
            p = self._X.shape[1]
            RX = np.empty((p, p))
            status = _core.scalar_rx(self._capsule, float(ev.theta[0]), st.W, st.D, RX)
            if status:
                raise PirlsError(CORE_ERRORS[status])
            return RX
        return self._schur(float(ev.theta[0]), st.W, st.D)[2]
