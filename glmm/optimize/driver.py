"""Optimisation of lme4's objectives: starting values, the stages, boundary handling.

Start: β₀ from the GLM without random effects (:mod:`glmm.optimize.start`), θ₀ = lme4's start (1 on
diagonals, 0 off).

nAGQ = 0: minimise F₀(θ), β profiled by joint PIRLS.
nAGQ ≥ 1: minimise F(θ, β) from (θ₀, β₀) directly.  lme4 first runs an nAGQ = 0 stage
(``nAGQ0initStep``); with the exact gradient (:mod:`glmm.objectives.gradient`,
:mod:`glmm.objectives.agq`, every family and link) that stage costs more joint-PIRLS evaluations
than it saves (docs/lme4-conventions.md §6; the whitening of β: docs/gradients.md §9).

Both run :func:`glmm.optimize.bfgs.minimize_bfgs` with no bounds on θ: F is unchanged when a
column of a factor Tₜ changes sign (u's matching entries change sign with it), so F is even
in each diagonal entry and θ = 0 is a stationary point.  A bounded method projects a long
first step onto such a point and stops there, a local maximum (cbpp with the probit link does
exactly that).  Unbounded, the iterates pass through 0; at the end each column of Tₜ with a
negative diagonal entry is flipped, which lands θ in lme4's region (diagonal ≥ 0), and a
diagonal entry left at 0 is probed (it may be a maximum; see :func:`_minimize`).  β is
whitened: β = β₀ + (√2 R_X)⁻¹ ζ, where R_X is lme4's factor at the start, so that the Hessian
in ζ starts near the identity (∂²F/∂β² ≈ 2 R_XᵀR_X) whatever the scale of X's columns; BFGS
then scales only the θ block of its first inverse Hessian.  Finally, as lme4's
``check.boundary``, a θ entry within 1e-5 of its lower bound is moved to the bound when that
does not raise F.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..design.random import theta_diagonal
from ..linalg.lapack import triangular_solve
from ..objectives.base import Evaluation, Objective
from ..objectives.model import GlmerModel
from .bfgs import BfgsResult, Minimizer, finite_start, minimize_bfgs
from .optsummary import OptSummary

#: lme4's check.boundary tolerance and singularity tolerance (isSingular).
BOUNDARY_TOL = 1e-5
SINGULAR_TOL = 1e-4


@dataclass(frozen=True, eq=False)
class Optimum:
    params: np.ndarray
    evaluation: Evaluation
    nfev: int
    converged: bool
    message: str
    start: np.ndarray
    gradient_norm: float     # max |∇F| at the search's last point, in its coordinates
    optimizer: str

    def summary(self) -> OptSummary:
        return OptSummary(self.optimizer, self.start, self.params, self.evaluation.objective,
                          self.nfev, self.gradient_norm, self.converged, self.message)


#: Where a diagonal θ entry ends at 0, F is probed with the entry at these values, in turn
#: (see _minimize): far off, for a lower minimum that a first step jumped over, and near,
#: where F(h) − F(0) ≈ ½F''(0)h² shows whether 0 is a maximum along the entry (F'' < 0).
ESCAPE_THETA = (0.1, 1e-3)


def _minimize(value: Callable[[np.ndarray], float],
              value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
              x0: np.ndarray, diagonal: Sequence[int], unit: np.ndarray | None = None,
              start: tuple[float, np.ndarray] | None = None,
              compiled: Minimizer | None = None,
              tolerances: Mapping[str, float] | None = None) -> BfgsResult:
    """BFGS (:mod:`glmm.optimize.bfgs`) on the exact gradient, from x0; ``unit`` marks the
    coordinates already scaled to unit curvature (the whitened β); ``start`` is (F, ∇F) at
    x0 when already known; ``compiled`` is the same search run in compiled code
    (:meth:`glmm.objectives.base.Objective.compiled_bfgs`), used instead when given;
    ``tolerances`` are :func:`minimize_bfgs`'s stopping rules (gtol, dtol, xtol) where an
    objective asks for others than the defaults.

    A diagonal θ entry (indices ``diagonal`` of x) that ends at 0 may sit on a maximum: F is
    even in it there, so its gradient is 0 either way.  F is then probed with the entry at
    each ESCAPE_THETA value, and the search restarts from the first point where F is lower.
    """
    if start is not None:
        start = finite_start(start)

    def run(x: np.ndarray, start: tuple[float, np.ndarray] | None = None) -> BfgsResult:
        if compiled is not None:
            return compiled(x, start)
        return minimize_bfgs(value_and_gradient, x, unit=unit, start=start,
                             **dict(tolerances or {}))

    def escape(res: BfgsResult) -> np.ndarray | None:
        """A point with one diagonal entry moved off 0 where F is lower, or None."""
        for i in diagonal:
            if abs(res.x[i]) < SINGULAR_TOL:
                for h in ESCAPE_THETA:
                    trial = res.x.copy()
                    trial[i] = h
                    if value(trial) < res.f - 1e-10 * max(1.0, abs(res.f)):
                        return trial
        return None

    res = run(x0, start)
    for _ in range(len(diagonal)):
        trial = escape(res)
        if trial is None:
            break
        res = run(trial)
    return res


def diagonal_theta(model: GlmerModel) -> list[int]:
    """Positions in θ of the diagonal entries of the Tₜ."""
    return [t.theta_slice.start + k for t in model.terms for k in theta_diagonal(t.p)]


def canonical_theta(model: GlmerModel, theta: np.ndarray) -> np.ndarray:
    """θ with every column of every Tₜ(θ) flipped to a non-negative diagonal entry."""
    out = np.array(theta, dtype=float)
    values = out.tolist()
    if min((values[i] for i in diagonal_theta(model)), default=0.0) >= 0.0:
        return out   # no column to flip (a −0.0 entry too: the flip would change nothing)
    for t in model.terms:
        T = t.T(out)
        T[:, np.diag(T) < 0] *= -1.0
        out[t.theta_slice] = T[t.tril]
    return out


def _to_boundary(obj: Objective, params: np.ndarray, lower: np.ndarray,
                 best: Evaluation, tol: float = BOUNDARY_TOL) -> tuple[np.ndarray, Evaluation]:
    """lme4's check.boundary: θ within ``tol`` of its bound goes to it if F does not rise."""
    # (θ has a handful of entries: Python floats cost less than numpy's scalars)
    for i, (x, lo) in enumerate(zip(params.tolist(), lower.tolist(), strict=True)):
        if math.isfinite(lo) and 0 < x - lo < tol:
            trial = params.copy()
            trial[i] = lo
            ev = obj.evaluate(trial)
            if ev.objective <= best.objective:
                params, best = trial, ev
    return params, best


def optimize_theta(obj: Objective, theta0: np.ndarray, lower: np.ndarray,
                   tolerances: Mapping[str, float] | None = None,
                   boundary_tol: float = BOUNDARY_TOL) -> Optimum:
    """Stage 0: θ̂ minimising F₀(θ) (nAGQ = 0), or an LMM's profiled criterion; ``tolerances``
    are BFGS's stopping rules where they are not its defaults (an LMM's, a GlmerControl's),
    ``boundary_tol`` lme4's check.boundary tolerance."""
    compiled = obj.compiled_bfgs(None, None, tolerances)
    res = _minimize(obj, obj.value_and_gradient, theta0, diagonal_theta(obj.model),
                    compiled=compiled, tolerances=tolerances)
    params = canonical_theta(obj.model, np.asarray(res.x, dtype=float))
    ev = obj.evaluation_at(params)
    params, ev = _to_boundary(obj, params, lower, ev, boundary_tol)
    return Optimum(params, ev, obj.evaluations, res.converged, res.message,
                   np.array(theta0, dtype=float), _max_abs(res.g), _name(compiled))


def optimize_theta_beta(obj: Objective, theta0: np.ndarray, beta0: np.ndarray,
                        lower: np.ndarray, tolerances: Mapping[str, float] | None = None,
                        boundary_tol: float = BOUNDARY_TOL) -> Optimum:
    """(θ̂, β̂) minimising F(θ, β) (nAGQ ≥ 1), β whitened by √2·R_X, R_X at the u-only
    mode of the start (θ₀, β₀), whose evaluation is also BFGS's first; ``tolerances`` and
    ``boundary_tol`` as :func:`optimize_theta`'s."""
    k = len(theta0)
    p0 = np.concatenate([theta0, beta0])
    f0, g0 = obj.value_and_gradient(p0)
    R = np.sqrt(2.0) * obj.rx(obj.evaluation_at(p0))

    def to_params(x: np.ndarray) -> np.ndarray:
        beta = beta0 + triangular_solve(R, x[k:], lower=False)
        return np.concatenate([x[:k], beta])

    def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = obj.value_and_gradient(to_params(x))
        # chain rule through β = β̂₀ + R⁻¹ζ: ∂F/∂ζ = R⁻ᵀ ∂F/∂β
        gz = triangular_solve(R, g[k:], lower=False, trans=True)
        return f, np.concatenate([g[:k], gz])

    x0 = np.concatenate([theta0, np.zeros(len(beta0))])
    start = (f0, np.concatenate([g0[:k], triangular_solve(R, g0[k:], lower=False, trans=True)]))
    compiled = obj.compiled_bfgs(R, beta0, tolerances)
    res = _minimize(lambda x: obj(to_params(x)), value_and_gradient, x0,
                    diagonal_theta(obj.model), unit=np.arange(len(x0)) >= k, start=start,
                    compiled=compiled, tolerances=tolerances)
    # the minimiser's own β at x when it computed it (then the evaluation there is reused)
    params = to_params(np.asarray(res.x, dtype=float)) if res.params is None else res.params
    params[:k] = canonical_theta(obj.model, params[:k])
    ev = obj.evaluation_at(params)
    full_lower = np.concatenate([lower, np.full(len(beta0), -np.inf)])
    params, ev = _to_boundary(obj, params, full_lower, ev, boundary_tol)
    return Optimum(params, ev, obj.evaluations, res.converged, res.message, p0,
                   _max_abs(res.g), _name(compiled))


def _max_abs(g: np.ndarray) -> float:
    """max |gᵢ| (0 for no entries, NaN where one is NaN), on Python floats: g has θ's and β's
    few entries."""
    values = [abs(v) for v in g.tolist()]
    return math.nan if any(v != v for v in values) else max(values, default=0.0)


def _name(compiled: Minimizer | None) -> str:
    """The optimiser's name in an :class:`OptSummary`."""
    return "BFGS (glmm.optimize.bfgs" + (", compiled)" if compiled is not None else ")")
