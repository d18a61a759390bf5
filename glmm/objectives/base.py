"""lme4's objectives as pure functions of the parameters.

With (ũ, β̃) the conditional mode from PIRLS and L the Cholesky factor of G at the mode:

    nAGQ = 0:  F₀(θ)    = log|L|² + ‖ũ‖² + A(μ̃)        (β̃ profiled by joint PIRLS)
    nAGQ = 1:  F₁(θ, β) = log|L|² + ‖ũ‖² + A(μ̃)        (Laplace; u-only PIRLS)

A is the family's aic (−2 log-likelihood, normalising constants included; for Gamma and
inverse Gaussian with the dispersion φ = Σdev/Σw re-estimated at μ̃).  No R_X term and no
2π constant appear: docs/objectives.md §6–7 (A: §9).

    nAGQ = k > 1 (one scalar term): adaptive Gauss–Hermite quadrature, :mod:`glmm.objectives.agq`.

:class:`Objective` is what every implementation shares:
:class:`glmm.objectives.blocked.BlockedObjective` computes F₀ and F₁ for any model;
:class:`glmm.objectives.scalar_term.ScalarTermObjective` computes the same functions, and F_k, for
a model with one scalar term, where G is diagonal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ArgumentError
from ..optimize.bfgs import Minimizer, central_differences
from ..optimize.start import glm_start
from .model import GlmerModel
from .pirls import ConditionalMode, PirlsError, first_step

#: PIRLS starts from the first-order prediction of the mode (:func:`glmm.objectives.pirls.predict`)
#: when θ moves by at most this fraction of its size; after a longer move (a long
#: line-search step) from the old mode rescaled to keep b = Λu.
PREDICT_RANGE = 0.5


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The objective at one parameter vector, with the mode it was computed at."""

    objective: float
    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    ldL2: float
    ussq: float
    drsum: float
    aic: float
    state: ConditionalMode
    model: GlmerModel

    @property
    def b(self) -> np.ndarray:
        """b = Λ(θ)u, computed on demand (the optimiser never needs it)."""
        return self.model.b(self.theta, self.u)


class Objective:
    """F as a function of the parameters: θ for nAGQ = 0 (β profiled), (θ, β) otherwise.

    What every implementation shares: the parameter vector, the count of evaluations, F
    alone or with its exact gradient (central differences where an implementation cannot
    give it), and the warm start.  Where the mode is unique (the family's
    :attr:`~glmm.families.family.Family.unique_mode`: P strictly convex), PIRLS starts from the last
    mode, carried to the new parameters (:meth:`_warm_start`); if PIRLS fails from there it
    restarts from the fixed start u = 0 (with the starting β when β is profiled), so the
    value never depends on the call history (only its last bits do).  Where P may have
    several modes (Poisson sqrt, binomial cauchit, …), every evaluation starts as lme4's
    does, with one Fisher step from the stored linear predictor ``lp0``
    (:func:`glmm.objectives.pirls.first_step`; u = 0 while ``lp0`` is None): a warm start carried
    over a long step can land in another mode, and F would depend on the path, and that step
    picks the mode lme4 picks.  An
    implementation gives the mode (:meth:`_pirls`), its first-order
    prediction (:meth:`_predict`), F and ∇F at it (:meth:`_criterion`) and lme4's R_X
    (:meth:`rx`).
    """

    def __init__(self, model: GlmerModel, nAGQ: int, beta_start: np.ndarray) -> None:
        self.model = model
        self.nAGQ = nAGQ
        self.beta_start = np.asarray(beta_start, dtype=float)
        self.last: tuple[np.ndarray, Evaluation] | None = None  # parameters, evaluation
        self.evaluations = 0
        #: where P may have several modes, the linear predictor without the offset that
        #: every evaluation's PIRLS starts from (lme4's lp0:
        #: :func:`glmm.objectives.pirls.initial_lp`, or the nAGQ = 0 optimum's for nAGQ ≥ 1);
        #: unused where the mode is unique
        self.lp0: np.ndarray | None = None

    @property
    def nparams(self) -> int:
        return self.model.ntheta + (0 if self.nAGQ == 0 else self.model.p)

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        params = np.asarray(params, dtype=float)
        k = self.model.ntheta
        if len(params) != self.nparams:
            what = "θ" if self.nAGQ == 0 else "(θ, β)"
            raise ArgumentError(f"expected {self.nparams} parameters {what}, got {len(params)}")
        return params[:k], (None if self.nAGQ == 0 else params[k:])

    def mode(self, theta: np.ndarray, beta: np.ndarray | None) -> ConditionalMode:
        """The conditional mode at θ (and β, unless None: then β is profiled)."""
        joint = beta is None
        if not self.model.family.unique_mode and self.lp0 is not None:
            u0, b0 = first_step(self.model, theta, beta, self.lp0)
            return self._pirls(theta, b0, u0, joint)
        if self.last is not None and self.model.family.unique_mode:
            u0, b0 = self._warm_start(theta, beta, self.last[1])
            try:
                return self._pirls(theta, b0, u0, joint)
            except PirlsError:
                pass
        return self._pirls(theta, self.beta_start if joint else beta, np.zeros(self.model.q),
                           joint)

    def glm_beta(self, beta: np.ndarray) -> np.ndarray:
        """β̂ of the GLM without random effects (where nAGQ ≥ 1 starts), by IRLS from β."""
        return glm_start(self.model, beta=beta)

    def evaluate(self, params: np.ndarray) -> Evaluation:
        return self._evaluate(params, gradient=False)[0]

    def __call__(self, params: np.ndarray) -> float:
        return self.evaluate(params).objective

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """F and its exact gradient: in θ for nAGQ = 0, in (θ, β) otherwise; central
        differences where the implementation cannot give it (:meth:`_criterion`)."""
        ev, g = self._evaluate(params, gradient=True)
        if g is None:
            return central_differences(self, np.asarray(params, dtype=float), ev.objective)
        return ev.objective, g

    def _evaluate(self, params: np.ndarray, gradient: bool
                  ) -> tuple[Evaluation, np.ndarray | None]:
        theta, beta = self.split(params)
        self.evaluations += 1
        # exp overflow and log(0) on the way are expected (a rejected PIRLS step, a clamp)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            st = self.mode(theta, beta)
            ev = self._laplace(theta, st)
            value, g = self._criterion(theta, st, ev.objective, gradient)
        if value != ev.objective:   # adaptive quadrature
            ev = dataclasses.replace(ev, objective=value)
        self.last = (np.array(params, dtype=float), ev)
        return ev, g

    def _laplace(self, theta: np.ndarray, st: ConditionalMode) -> Evaluation:
        """The evaluation at the mode ``st`` with F = log|L|² + ‖ũ‖² + A(μ̃) (F₀ and F₁)."""
        drsum, ldL2, ussq = st.drsum, st.logdet, st.ussq
        aic = self.model.response.aic(st.mu, drsum)
        return Evaluation(ldL2 + ussq + aic, theta, st.beta, st.u, ldL2, ussq, drsum, aic, st,
                          self.model)

    def evaluation_at(self, params: np.ndarray) -> Evaluation:
        """The evaluation at ``params``: the last one when it was at these very parameters
        (the optimiser's final point), else a new one."""
        params = np.asarray(params, dtype=float)
        last = self.last
        if (last is not None and last[0].shape == params.shape
                and np.count_nonzero(last[0] != params) == 0):
            return self.last[1]
        return self.evaluate(params)

    def _warm_start(self, theta: np.ndarray, beta: np.ndarray | None, last: Evaluation
                    ) -> tuple[np.ndarray, np.ndarray]:
        """The starting point (u, β) for PIRLS at the new parameters, from the last
        evaluation: the first-order prediction of the mode (:meth:`_predict`) when θ moved by
        at most PREDICT_RANGE of its size, else the old mode rescaled so that b = Λu is kept
        (the old u would put η far off).  A non-finite start makes PIRLS fail at once."""
        theta_old = last.theta   # θ has at least one entry
        near = float(np.abs(theta - theta_old).max()) <= \
            PREDICT_RANGE * max(float(np.abs(theta_old).max()), 0.1)
        if not near:
            return (self.model.u_keeping_b(last.state.u, theta_old, theta),
                    last.beta if beta is None else beta)
        return self._predict(last, theta, beta)

    def compiled_bfgs(self, R: np.ndarray | None, beta0: np.ndarray | None,
                      tolerances: Mapping[str, float] | None = None) -> Minimizer | None:
        """:func:`glmm.optimize.bfgs.minimize_bfgs` on this objective run in compiled code, as
        ``run(x0, start)``, where an implementation has it (else None).  The coordinates are
        θ (nAGQ = 0), or (θ, ζ) with β = β₀ + R⁻¹ζ (nAGQ = 1; ``R`` and ``beta0`` given);
        ``tolerances`` are minimize_bfgs's stopping rules where not its defaults."""
        return None

    # -- what an implementation gives ----------------------------------------------------------
    def _predict(self, last: Evaluation, theta: np.ndarray, beta: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """The first-order prediction (u, β) of the mode at (θ, β) from the last one."""
        raise NotImplementedError

    def _pirls(self, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray, joint: bool
               ) -> ConditionalMode:
        raise NotImplementedError

    def _criterion(self, theta: np.ndarray, st: ConditionalMode, laplace: float,
                   gradient: bool) -> tuple[float, np.ndarray | None]:
        """(F, ∇F or None) at the mode ``st``; ``laplace`` is log|L|² + ‖ũ‖² + A(μ̃)."""
        raise NotImplementedError

    def rx(self, ev: Evaluation) -> np.ndarray:
        """lme4's R_X at an evaluation's mode (upper triangular)."""
        raise NotImplementedError
