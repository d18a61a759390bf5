"""``glmer()``: formula and data in, a fitted GLMM out — the data flow of the engine.

    formula ─ parse_formula ─┬─ model_frame ─ family.initialize ─┐
                             ├─ fixed_effects (X) ───────────────┼─ GlmerModel ─ Objective
                             └─ random_effects (Z, θ, order) ────┘        │
                  GLM start β₀ ─ BFGS on θ (nAGQ = 0) or on (θ, β) (nAGQ ≥ 1) ─ GlmerFit
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from .errors import ConvergenceWarning, SingularFitWarning
from .families import Family, make_family
from .fit import GlmerFit, RanefLayout
from .fixed import FixedEffects, fixed_effects
from .formula import parse_formula
from .frame import model_frame
from .glm import glm_start
from .model import GlmerModel, term_spec
from .objective import AGQNotAvailableError, Objective, ObjectiveFunction
from .optimize import optimize_theta, optimize_theta_beta
from .scalar_term import ScalarTermObjective
from .terms import RandomEffects, random_effects


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
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, (int, np.integer)) or not 0 <= nAGQ <= 100:
        raise ValueError(f"nAGQ must be an integer between 0 and 100, got {nAGQ!r}")
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
        fixed = fixed_effects(parsed, frame)
        re = random_effects(parsed, frame)
        if nAGQ > 1 and (len(re.terms) != 1 or re.terms[0].ncols != 1):
            raise AGQNotAvailableError(
                "nAGQ > 1 is only available for models with a single, scalar random-effects "
                "term")
        model = _model(re, init.y, init.n, init.weights, frame.offset, fixed.X, fam,
                       init.mustart)
        return _fit(formula, fam, nAGQ, model, re, fixed)


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
    # nAGQ = 0 profiles β by joint PIRLS, whose mode does not depend on where it starts: one
    # IRLS step of the GLM is start enough (the converged GLM took as many joint PIRLS steps
    # after it); nAGQ ≥ 1 starts BFGS at β₀ and whitens by R_X there, so it takes the GLM fit,
    # continued from that step
    beta0 = glm_start(model, max_iter=1)
    lower = np.asarray(re.lower, dtype=float)
    theta0 = np.asarray(re.theta0, dtype=float)
    obj = _objective(model, nAGQ, beta0)
    if nAGQ > 0:
        beta0 = obj.glm_beta(beta0)
    if nAGQ == 0:
        opt = optimize_theta(obj, theta0, lower)
    else:
        # with the exact gradient, no nAGQ = 0 stage first: (θ, β) from the GLM fit
        # (speed-design.md §7)
        opt = optimize_theta_beta(obj, theta0, beta0, lower)
    ev = opt.evaluation
    fit = GlmerFit(
        formula=formula, family=fam, nAGQ=nAGQ,
        fixef_names=tuple(fixed.names),
        theta=ev.theta.copy(), theta_names=tuple(re.theta_names), lower=lower,
        evaluation=ev, model=model,
        objective_fn=obj,
        layout=_layout(re), converged=opt.converged, message=opt.message,
        feval=opt.nfev,
        dropped=tuple(fixed.dropped),
    )
    if not fit.converged:
        warnings.warn(f"the optimizer did not converge: {fit.message}", ConvergenceWarning,
                      stacklevel=3)
    if fit.singular:
        warnings.warn("boundary (singular) fit: a θ entry is within 1e-4 of its lower bound "
                      "(lme4's isSingular)", SingularFitWarning, stacklevel=3)
    return fit
