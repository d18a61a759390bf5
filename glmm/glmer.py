"""``glmer()``: formula and data in, a fitted GLMM out — the data flow of the engine
(docs/architecture.md).

    formula, data ─ build_design ─ Design (X, the terms, offset, weights)
                                      │  + family.initialize (y, trials, μ_start)
                                      └─ GlmerModel ─ objective F(θ[, β])
    GLM start β₀ ─ BFGS on θ (nAGQ = 0) or on (θ, β) (nAGQ ≥ 1) ─ Optimum ─ GlmerFit

What only some fits run (the blocked objective, a user's start, lmer) is imported where it
is used: a small fit's process loads and compiles only the modules it runs.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .design.design import Design, build_design
from .design.fixed import FixedEffects
from .errors import (
    AGQNotAvailableError,
    ArgumentError,
    ArgumentTypeError,
    ConvergenceError,
    ConvergenceWarning,
    GaussianShortcutWarning,
    OptimizationError,
    SeparationError,
    SeparationWarning,
    SingularFitWarning,
)
from .families import Family, Initialized, make_family
from .families.response import check_response
from .objectives.base import Objective
from .objectives.model import GlmerModel
from .objectives.pirls import initial_lp
from .objectives.scalar_term import ScalarTermObjective
from .optimize import separation
from .optimize.control import GlmerControl
from .optimize.driver import Optimum, optimize_theta, optimize_theta_beta
from .optimize.start import glm_start
from .results.glmer import GlmerFit
from .threads import blas_limit

if TYPE_CHECKING:
    from .results.lmer import LmerFit


def _model(design: Design, family: Family, init: Initialized) -> GlmerModel:
    """The design with a family's response: the numerical problem the objectives solve."""
    return GlmerModel(np.asarray(init.y, dtype=float), np.asarray(init.n, dtype=float),
                      np.asarray(init.weights, dtype=float),
                      np.asarray(design.offset, dtype=float),
                      np.ascontiguousarray(design.X, dtype=float), design.random.terms, family,
                      np.asarray(init.mustart, dtype=float))


def glmer(formula: str, data: pd.DataFrame, family: str | Family = "binomial", nAGQ: int = 1,
          weights: str | np.ndarray | None = None,
          offset: str | np.ndarray | None = None,
          control: GlmerControl | Mapping[str, object] | None = None,
          start: Start = None) -> GlmerFit | LmerFit:
    """Fit a GLMM as lme4's ``glmer`` does, and return its optimum.

    ``family`` is a family object (``glmm.binomial(link="probit")``) or an R family name.
    ``nAGQ`` = 0 optimises θ with β profiled by joint PIRLS; 1 is the Laplace approximation;
    2–100 is adaptive Gauss–Hermite quadrature, for one scalar random-effects term only.
    ``weights`` and ``offset`` are column names of ``data`` or arrays.  ``control`` is a
    :class:`glmm.GlmerControl` (or a mapping of its fields): the search's stopping rules and
    lme4's convergence checks.  ``start`` is lme4's: θ's starting values as a vector, or a
    dict with ``theta`` and/or ``fixef`` (β's starting values, used for nAGQ ≥ 1; for
    nAGQ = 0 β is profiled and ``fixef`` is refused).  The gaussian family with the identity
    link is an LMM: handed over to :func:`glmm.lmer` (REML, as lme4 does).
    """
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, (int, np.integer)):
        raise ArgumentTypeError(f"nAGQ must be an integer between 0 and 100, got {nAGQ!r}")
    if not 0 <= nAGQ <= 100:
        raise ArgumentError(f"nAGQ must be an integer between 0 and 100, got {nAGQ!r}")
    nAGQ = int(nAGQ)
    fam = make_family(family)
    ctrl = GlmerControl.of(control)
    if fam.name == "gaussian" and fam.link.name == "identity":
        if control is not None:
            raise ArgumentError("control: a gaussian model with the identity link is fitted "
                                "by lmer(), whose settings are lmer's; call glmm.lmer()")
        return _to_lmer(formula, data, nAGQ, weights, offset, start)
    # one BLAS thread: the dense blocks here are small (glmm.threads)
    with blas_limit(1):
        design = build_design(formula, data, weights=weights, offset=offset)
        init = fam.initialize(design.response, design.weights)
        check_response(init.y)
        re = design.random
        if nAGQ > 1 and (len(re.terms) != 1 or re.terms[0].ncols != 1):
            raise AGQNotAvailableError(
                "nAGQ > 1 is only available for models with a single, scalar random-effects "
                "term")
        theta0, beta0 = _start(start, design, nAGQ)
        return _fit(design, fam, nAGQ, _model(design, fam, init), ctrl, theta0, beta0)


def refit_design(design: Design, fam: Family, nAGQ: int, response: object,
                 control: GlmerControl) -> GlmerFit:
    """The fit of ``design`` and ``fam`` to a new raw ``response`` (lme4's ``refit``)."""
    design = dataclasses.replace(design, response=response)
    with blas_limit(1):
        init = fam.initialize(design.response, design.weights)
        check_response(init.y)
        return _fit(design, fam, nAGQ, _model(design, fam, init), control)


#: glmer's ``start``: θ as a vector, or a dict with "theta" and/or "fixef"
Start = np.ndarray | list[float] | dict[str, object] | None


def _start(start: Start, design: Design, nAGQ: int) -> tuple[np.ndarray | None,
                                                             np.ndarray | None]:
    """(θ₀, β₀) from lme4's ``start`` (None where not given), checked against the design:
    θ of the model's length, finite, its diagonal entries ≥ 0 (lme4's lower bounds); β of
    X's columns (after any rank drop)."""
    if start is None:
        return None, None
    from .objectives.lmm import check_theta

    if isinstance(start, dict):
        unknown = sorted(set(map(str, start)) - {"theta", "fixef"})
        if unknown:
            raise ArgumentError(f"start: unknown entries {unknown}; glmer takes 'theta' and "
                                "'fixef'")
        theta, beta = start.get("theta"), start.get("fixef")
    elif isinstance(start, (str, bytes)):
        raise ArgumentTypeError(f"start must be a vector θ or a dict with 'theta' and/or "
                                f"'fixef', got {start!r:.80}")
    else:
        theta, beta = start, None
    theta0 = None
    if theta is not None:
        what = "start['theta']" if isinstance(start, dict) else "start"
        theta0 = check_theta(theta, design.random.ntheta, what)
        below = np.flatnonzero(theta0 < np.asarray(design.random.lower))
        if below.size:
            raise ArgumentError(f"{what}: entries {below.tolist()} are below their "
                                f"lower bound 0 (the diagonal of a relative covariance "
                                f"factor): {theta0.tolist()!r:.80}")
    beta0 = None
    if beta is not None:
        if nAGQ == 0:
            raise ArgumentError("start['fixef']: at nAGQ = 0 β is profiled out by PIRLS and "
                                "has no starting value; give it for nAGQ ≥ 1")
        beta0 = check_theta(beta, len(design.fixed.names), "start['fixef']",
                            "β (X's columns after any rank drop: "
                            f"{list(design.fixed.names)!r:.60})")
    return theta0, beta0


def _to_lmer(formula: str, data: pd.DataFrame, nAGQ: int, weights: str | np.ndarray | None,
             offset: str | np.ndarray | None, start: Start) -> LmerFit:
    """lme4's hand-over: glmer(family = gaussian) is lmer() with lmer's defaults (REML), with
    its warning; lmer has no nAGQ (lme4: "unused argument")."""
    from .lmer import lmer

    warnings.warn("calling glmer() with family=gaussian (identity link) as a shortcut to "
                  "lmer() is deprecated; please call lmer() directly",
                  GaussianShortcutWarning, stacklevel=3)
    if nAGQ != 1:
        raise ArgumentError(f"nAGQ is not an argument of lmer (got nAGQ = {nAGQ}): a "
                            "gaussian model with the identity link is fitted exactly")
    if isinstance(start, dict):
        raise ArgumentError("start: lmer() takes θ's starting values as a vector (β and σ "
                            "are profiled out)")
    return lmer(formula, data, weights=weights, offset=offset, start=start)


def _objective(model: GlmerModel, nAGQ: int, beta0: np.ndarray) -> Objective:
    """The objective's implementation for this model: one scalar term has a diagonal G."""
    if len(model.terms) == 1 and model.terms[0].p == 1:
        return ScalarTermObjective(model, nAGQ, beta0)
    from .objectives.blocked import BlockedObjective  # two or more terms, or a vector term

    return BlockedObjective(model, nAGQ, beta0)


def _fit(design: Design, fam: Family, nAGQ: int, model: GlmerModel, control: GlmerControl,
         theta0: np.ndarray | None = None, beta0: np.ndarray | None = None) -> GlmerFit:
    re, fixed = design.random, design.fixed
    lower = np.asarray(re.lower, dtype=float)
    user_start = theta0 is not None or beta0 is not None
    if theta0 is None:
        theta0 = np.asarray(re.theta0, dtype=float)
    try:
        obj, opt = _optimize(model, nAGQ, theta0, lower, control, beta0)
    except ArithmeticError as exc:   # no start where F is finite (PirlsError is one too)
        found = _refuse_separated(model, fixed)
        if found is not None:   # quasi-complete: PIRLS follows those β off to ±∞
            raise SeparationError(f"{found.describe()}; PIRLS diverges with them at the start "
                                  f"({exc}); drop or merge those predictors") from exc
        top = float((model.y * model.n_trials).max(initial=0.0))
        hint = (f"; counts this large (up to {top:.3g}) leave PIRLS too few digits: rescale "
                "the response" if top > 1e12 else "")
        where = ("the start given (start=)" if user_start else
                 "the start (θ = lme4's start, β from the GLM without random effects)")
        raise OptimizationError(f"the objective cannot be evaluated at {where}: {exc}{hint}"
                                ) from exc
    ev = opt.evaluation
    params = opt.params
    if not (np.isfinite(ev.objective) and np.count_nonzero(np.isfinite(params)) == params.size):
        raise OptimizationError(f"the optimizer ended where the objective is not finite "
                                f"(F = {ev.objective}); there is no fit to report")
    converged, message = opt.converged, opt.message
    # lme4's start is never the optimum; a start the user gave may be (a warm start)
    if converged and not user_start and len(theta0) and np.array_equal(ev.theta, theta0):
        converged = False
        message = (f"θ did not move from its start {theta0.tolist()}: the objective does not "
                   "depend on θ here, or the search could not leave the start")
    separated = None
    if separation.suspect(fam, model.y, model.weights, ev.state.mu):
        separated = _refuse_separated(model, fixed)
        if separated is not None:
            converged, message = False, separated.describe()
    fit = GlmerFit(design=design, model=model, family=fam, nAGQ=nAGQ, evaluation=ev,
                   objective_fn=obj, optsummary=opt.summary(), converged=converged,
                   message=message, control=control)
    # lme4's checkConv needs the Hessian (2k gradient evaluations, as many as the fit took):
    # it runs when first asked for (fit.optsummary.checks, summary(), vcov()), or now where
    # a failed check is to stop the fit
    fit.optsummary.attach_checks(fit.convergence_checks)
    if control.check_conv == "stop" and (checks := fit.optsummary.checks) is not None \
            and checks.messages:
        raise ConvergenceError("lme4's convergence checks failed (control check_conv = "
                               "'stop'): " + "; ".join(checks.messages))
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


def _optimize(model: GlmerModel, nAGQ: int, theta0: np.ndarray, lower: np.ndarray,
              control: GlmerControl, start_beta: np.ndarray | None = None
              ) -> tuple[Objective, Optimum]:
    """The objective and its optimum from θ₀ and the GLM's β (or the user's ``start_beta``)."""
    # nAGQ = 0 profiles β by joint PIRLS, whose mode does not depend on where it starts: one
    # IRLS step of the GLM is start enough (the converged GLM took as many joint PIRLS steps
    # after it); nAGQ ≥ 1 starts BFGS at β₀ and whitens by R_X there, so it takes the GLM fit,
    # continued from that step
    beta0 = glm_start(model, max_iter=1)
    obj = _objective(model, nAGQ, beta0)
    if not model.family.unique_mode:
        obj.lp0 = _stored_lp(model, nAGQ, theta0, lower, beta0)
    search = control.search
    if nAGQ == 0:
        return obj, optimize_theta(obj, theta0, lower, search, control.boundary_tol)
    # with the exact gradient, no nAGQ = 0 stage first: (θ, β) from the GLM fit
    b0 = obj.glm_beta(beta0) if start_beta is None else start_beta
    return obj, optimize_theta_beta(obj, theta0, b0, lower, search, control.boundary_tol)


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
