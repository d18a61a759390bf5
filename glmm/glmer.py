"""``glmer()``: formula and data in, a fitted GLMM out — the data flow of the engine.

    formula ─ parse_formula ─┬─ model_frame ─ family.initialize ─┐
                             ├─ fixed_effects (X) ───────────────┼─ GlmerModel ─ Objective
                             └─ random_effects (Z, θ, order) ────┘        │
                  GLM start β₀ ─ BFGS on θ (nAGQ = 0) or on (θ, β) (nAGQ ≥ 1) ─ GlmerFit
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from .design.fixed import FixedEffects, fixed_effects
from .design.formula import parse_formula
from .design.frame import model_frame
from .design.random import RandomEffects, random_effects
from .errors import (
    ArgumentError,
    ArgumentTypeError,
    ConvergenceWarning,
    OptimizationError,
    SeparationError,
    SeparationWarning,
    SingularFitWarning,
)
from .families import Family, make_family
from .families.response import check_response
from .objectives.base import AGQNotAvailableError, Objective, ObjectiveFunction
from .objectives.model import GlmerModel, term_spec
from .objectives.pirls import initial_lp
from .objectives.scalar_term import ScalarTermObjective
from .optimize import separation
from .optimize.driver import Optimum, optimize_theta, optimize_theta_beta
from .optimize.start import glm_start
from .results.glmer import GlmerFit, RanefLayout


def _model(re: RandomEffects, y: np.ndarray, n: np.ndarray, w: np.ndarray, o: np.ndarray,
           X: np.ndarray, family: Family, mustart: np.ndarray) -> GlmerModel:
    terms = [term_spec(t.codes, t.nlevels, t.Xi, re.theta_slice(i))
             for i, t in enumerate(re.terms)]
    return GlmerModel(np.asarray(y, dtype=float), np.asarray(n, dtype=float),
                      np.asarray(w, dtype=float), np.asarray(o, dtype=float),
                      np.ascontiguousarray(X, dtype=float), tuple(terms), family,
                      np.asarray(mustart, dtype=float))


def _layout(re: RandomEffects) -> RanefLayout:
    groups: dict[str, tuple[str, ...]] = {}
    for t in re.terms:
        groups.setdefault(t.group, tuple(t.levels))
    return RanefLayout(tuple(groups.items()), tuple(t.group for t in re.terms),
                       tuple(tuple(t.columns) for t in re.terms))


def glmer(formula: str, data: pd.DataFrame, family: str | Family = "binomial", nAGQ: int = 1,
          weights: str | np.ndarray | None = None,
          offset: str | np.ndarray | None = None) -> GlmerFit:
    """Fit a GLMM as lme4's ``glmer`` does, and return its optimum.

    ``family`` is a family object (``glmm.binomial(link="probit")``) or an R family name.
    ``nAGQ`` = 0 optimises θ with β profiled by joint PIRLS; 1 is the Laplace approximation;
    2–100 is adaptive Gauss–Hermite quadrature, for one scalar random-effects term only.
    ``weights`` and ``offset`` are column names of ``data`` or arrays.
    """
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, (int, np.integer)):
        raise ArgumentTypeError(f"nAGQ must be an integer between 0 and 100, got {nAGQ!r}")
    if not 0 <= nAGQ <= 100:
        raise ArgumentError(f"nAGQ must be an integer between 0 and 100, got {nAGQ!r}")
    nAGQ = int(nAGQ)
    fam = make_family(family)
    # The dense blocks here are small (q₂ ≤ a few hundred): a multi-threaded BLAS spends
    # more waking its threads than computing (grouseticks: 45 s with 2 OpenBLAS threads,
    # 5.4 s with 1), and its threads spin on after a call; one thread also makes the
    # summation order, and so the optimiser's path, independent of the machine's core count.
    with _threads().limit(limits=1, user_api="blas"):
        parsed = parse_formula(formula)
        frame = model_frame(parsed, data, weights=weights, offset=offset)
        init = fam.initialize(frame.response, frame.weights)
        check_response(init.y)
        fixed = fixed_effects(parsed, frame)
        re = random_effects(parsed, frame)
        if nAGQ > 1 and (len(re.terms) != 1 or re.terms[0].ncols != 1):
            raise AGQNotAvailableError(
                "nAGQ > 1 is only available for models with a single, scalar random-effects "
                "term")
        model = _model(re, init.y, init.n, init.weights, frame.offset, fixed.X, fam,
                       init.mustart)
        fit = _fit(formula, fam, nAGQ, model, re, fixed)
    # the rows na.omit dropped (lme4's na.action)
    return dataclasses.replace(fit, na_action=tuple(frame.omitted.tolist()))


_controller: ThreadpoolController | None = None


def _threads() -> ThreadpoolController:
    """The process's thread pools, inspected once (inspecting them costs milliseconds)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def _objective(model: GlmerModel, nAGQ: int, beta0: np.ndarray) -> ObjectiveFunction:
    """The objective's implementation for this model: one scalar term has a diagonal G."""
    if len(model.terms) == 1 and model.terms[0].p == 1:
        return ScalarTermObjective(model, nAGQ, beta0)
    return Objective(model, nAGQ, beta0)


def _fit(formula: str, fam: Family, nAGQ: int, model: GlmerModel, re: RandomEffects,
         fixed: FixedEffects) -> GlmerFit:
    lower = np.asarray(re.lower, dtype=float)
    theta0 = np.asarray(re.theta0, dtype=float)
    try:
        obj, opt = _optimize(model, nAGQ, theta0, lower)
    except ArithmeticError as exc:   # no start where F is finite (PirlsError is one too)
        found = _refuse_separated(model, fixed)
        if found is not None:   # quasi-complete: PIRLS follows those β off to ±∞
            raise SeparationError(f"{found.describe()}; PIRLS diverges with them at the start "
                                  f"({exc}); drop or merge those predictors") from exc
        top = float((model.y * model.n_trials).max(initial=0.0))
        hint = (f"; counts this large (up to {top:.3g}) leave PIRLS too few digits: rescale "
                "the response" if top > 1e12 else "")
        raise OptimizationError(f"the objective cannot be evaluated at the start (θ = lme4's "
                                f"start, β from the GLM without random effects): {exc}{hint}"
                                ) from exc
    ev = opt.evaluation
    if not (np.isfinite(ev.objective) and np.isfinite(opt.params).all()):
        raise OptimizationError(f"the optimizer ended where the objective is not finite "
                                f"(F = {ev.objective}); there is no fit to report")
    converged, message = opt.converged, opt.message
    if converged and len(theta0) and np.array_equal(ev.theta, theta0):
        converged = False
        message = (f"θ did not move from its start {theta0.tolist()}: the objective does not "
                   "depend on θ here, or the search could not leave the start")
    separated = None
    if separation.suspect(fam, model.y, model.weights, ev.state.mu):
        separated = _refuse_separated(model, fixed)
        if separated is not None:
            converged, message = False, separated.describe()
    fit = GlmerFit(
        formula=formula, family=fam, nAGQ=nAGQ,
        fixef_names=tuple(fixed.names),
        theta=ev.theta.copy(), theta_names=tuple(re.theta_names), lower=lower,
        evaluation=ev, model=model,
        objective_fn=obj,
        layout=_layout(re), converged=converged, message=message,
        feval=opt.nfev,
        dropped=tuple(fixed.dropped),
    )
    if separated is not None:
        warnings.warn(f"{message}; the estimates are where the optimizer stopped, not an "
                      "optimum", SeparationWarning, stacklevel=3)
    elif not fit.converged:
        warnings.warn(f"the optimizer did not converge: {fit.message}", ConvergenceWarning,
                      stacklevel=3)
    if fit.singular:
        warnings.warn("boundary (singular) fit: a θ entry is within 1e-4 of its lower bound "
                      "(lme4's isSingular)", SingularFitWarning, stacklevel=3)
    return fit


def _optimize(model: GlmerModel, nAGQ: int, theta0: np.ndarray, lower: np.ndarray
              ) -> tuple[ObjectiveFunction, Optimum]:
    """The objective and its optimum from lme4's θ₀ and the GLM's β."""
    # nAGQ = 0 profiles β by joint PIRLS, whose mode does not depend on where it starts: one
    # IRLS step of the GLM is start enough (the converged GLM took as many joint PIRLS steps
    # after it); nAGQ ≥ 1 starts BFGS at β₀ and whitens by R_X there, so it takes the GLM fit,
    # continued from that step
    beta0 = glm_start(model, max_iter=1)
    obj = _objective(model, nAGQ, beta0)
    if not model.family.unique_mode:
        obj.lp0 = _stored_lp(model, nAGQ, theta0, lower, beta0)
    if nAGQ == 0:
        return obj, optimize_theta(obj, theta0, lower)
    # with the exact gradient, no nAGQ = 0 stage first: (θ, β) from the GLM fit
    return obj, optimize_theta_beta(obj, theta0, obj.glm_beta(beta0), lower)


def _stored_lp(model: GlmerModel, nAGQ: int, theta0: np.ndarray, lower: np.ndarray,
               beta0: np.ndarray) -> np.ndarray:
    """Where the mode may not be unique, the linear predictor every evaluation starts from,
    as lme4 chooses it: the joint mode at θ₀ reached from g(μ_start) for nAGQ = 0; for
    nAGQ ≥ 1 the joint mode at the nAGQ = 0 optimum (lme4's first stage, whose last
    evaluation fixes the start of every evaluation of the second)."""
    lp = initial_lp(model, theta0)
    if nAGQ == 0:
        return lp
    stage1 = _objective(model, 0, beta0)
    stage1.lp0 = lp
    return optimize_theta(stage1, theta0, lower).evaluation.state.eta - model.offset


def _refuse_separated(model: GlmerModel, fixed: FixedEffects) -> separation.Separation | None:
    """Raise :class:`SeparationError` under complete separation; the quasi-complete
    separation, if any, else None."""
    found = separation.find_separation(model.family, model.y, model.weights, model.X,
                                       tuple(fixed.names))
    if found is not None and found.complete:
        raise SeparationError(f"{found.describe()} (lme4 stops with \"pwrssUpdate did not "
                              "converge\"); drop or merge those predictors")
    return found
