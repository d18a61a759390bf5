"""``lmer()``: formula and data in, a fitted linear mixed model out, on the same design and
blocked factor as ``glmer()`` (docs/architecture.md, docs/lmm.md).

    formula, data ─ build_design ─ Design (X, the terms, offset, weights) + y
                                      └─ GlmerModel (gaussian, identity) ─ LmmObjective d(θ)
    θ₀ (lme4's) ─ BFGS on θ with the exact gradient ─ Optimum ─ LmerFit
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .design.design import Design, build_design
from .errors import ArgumentError, ArgumentTypeError, ConvergenceWarning, ResponseError
from .families import gaussian
from .objectives.lmm import TOLERANCES, LmmObjective, check_theta, lme4_start
from .objectives.model import GlmerModel
from .optimize.driver import BOUNDARY_TOL, Optimum, optimize_theta
from .results.lmer import LmerFit, warn_singular
from .threads import blas_limit

#: The ``control`` entries lmer accepts.
CONTROL_KEYS = ("lme4_start",)


def lmer(formula: str, data: pd.DataFrame, REML: bool = True,
         weights: str | np.ndarray | None = None, offset: str | np.ndarray | None = None,
         control: Mapping[str, object] | None = None,
         start: np.ndarray | list[float] | None = None) -> LmerFit:
    """Fit a linear mixed model as lme4's ``lmer`` does: θ̂ minimising the profiled REML
    criterion (``REML=True``) or the profiled deviance, β and σ profiled out.

    ``weights`` and ``offset`` are column names of ``data`` or arrays (lme4's prior weights:
    Var(εᵢ) = σ²/wᵢ; the offset is subtracted from y).  ``start`` is θ's starting value
    (lme4's ``start``); without it θ₀ is lme4's: 1 on diagonals, 0 elsewhere, or, when every
    term is ``(1 | f)`` on a distinct factor, √(var(ave(y, f))/v_e) (``control`` entry
    ``lme4_start=False`` turns that rule off).  A REML request for a model without fixed
    effects is an ML fit, as in lme4.
    """
    if not isinstance(REML, (bool, np.bool_)):
        raise ArgumentTypeError(f"REML must be True or False, got {REML!r}")
    ctrl = _control(control)
    with blas_limit(1):
        design = build_design(formula, data, weights=weights, offset=offset)
        model = lmm_model(design)
        if start is not None:
            theta0 = check_theta(start, design.random.ntheta)
            label = "start"
        else:
            theta0 = None
            if ctrl.get("lme4_start", True):
                theta0 = lme4_start(model)
            label = "lme4's θ₀"
            if theta0 is None:
                theta0 = np.asarray(design.random.theta0, dtype=float)
        return fit_lmm(design, model, bool(REML), theta0, label)


def _control(control: Mapping[str, object] | None) -> dict[str, object]:
    if control is None:
        return {}
    if not isinstance(control, Mapping):
        raise ArgumentTypeError(f"control must be a mapping, got {type(control).__name__}")
    unknown = sorted(set(control) - set(CONTROL_KEYS))
    if unknown:
        raise ArgumentError(f"unknown control entries {unknown}; lmer accepts "
                            f"{list(CONTROL_KEYS)}")
    return dict(control)


def lmm_model(design: Design) -> GlmerModel:
    """The design with its response: y numeric and not constant (lme4's lmer refuses a
    factor response; a constant one leaves no residual variance to estimate)."""
    y = design.response
    if isinstance(getattr(y, "dtype", None), pd.CategoricalDtype):
        raise ResponseError("the response of lmer must be numeric, not a factor")
    yy = np.asarray(y)
    if yy.dtype.kind not in "biuf":
        raise ResponseError(f"the response of lmer must be numeric, not of dtype {yy.dtype}")
    yy = yy.astype(float, copy=False)   # the design's own array: no copy of n values
    if yy.ndim != 1:
        raise ResponseError(f"the response of lmer must be a vector, not an array of shape "
                            f"{yy.shape}")
    lo, hi = float(yy.min()), float(yy.max())   # (NaN where y has one)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ResponseError("NA/NaN/Inf in 'y'")
    w = np.asarray(design.weights, dtype=float)
    if not w.min() > 0:   # (False for a NaN weight too)
        raise ResponseError("lmer needs positive prior weights (a zero weight makes the "
                            "criterion's −Σlog w infinite); drop those observations")
    if lo == hi:
        raise ResponseError("the response is constant: there is no variance to estimate")
    # X as the design has it (Fortran order): the LMM's sums read it by columns, and no
    # compiled PIRLS reads its rows (glmer's model copies it to C order for those)
    return GlmerModel(yy, np.ones_like(yy), w, np.asarray(design.offset, dtype=float),
                      np.asarray(design.X, dtype=float), design.random.terms, gaussian(), yy)


def fit_lmm(design: Design, model: GlmerModel, REML: bool, theta0: np.ndarray,
            start_label: str = "start") -> LmerFit:
    """Minimise lme4's profiled criterion over θ from ``theta0`` and return the fit."""
    lower = np.asarray(design.random.lower, dtype=float)
    obj = LmmObjective(model, REML)
    try:
        opt = optimize_theta(obj, np.asarray(theta0, dtype=float), lower, TOLERANCES)
    except ArithmeticError as exc:
        raise ArgumentError(f"the criterion cannot be evaluated at the {start_label} "
                            f"θ = {np.asarray(theta0).tolist()}: {exc}") from exc
    opt = _onto_bound(obj, opt, lower)
    fit = LmerFit(design=design, model=model, REML=obj.REML, evaluation=opt.evaluation,
                  objective_fn=obj, optsummary=opt.summary(), converged=opt.converged,
                  message=opt.message)
    if not fit.converged:
        warnings.warn(f"the optimizer did not converge: {fit.message}", ConvergenceWarning,
                      stacklevel=3)
    if fit.singular:
        warn_singular(stacklevel=3)
    return fit


#: F's rounding level, relative: sums of n terms and a log.
ROUNDING = 1e-12


def _onto_bound(obj: LmmObjective, opt: Optimum, lower: np.ndarray) -> Optimum:
    """lme4's check.boundary with a rounding margin: a θ entry within BOUNDARY_TOL of its
    bound goes to it when d there is not above d at the optimum by more than its rounding.
    Near a boundary optimum d rises as (θ − bound)², so an optimiser without bounds ends a few
    1e-9 off it, where the two values differ in their last bits only (lme4's bounded BOBYQA
    ends on the bound)."""
    params, ev = opt.params, opt.evaluation
    for i, (x, lo) in enumerate(zip(params.tolist(), lower.tolist(), strict=True)):
        if math.isfinite(lo) and 0 < x - lo < BOUNDARY_TOL:
            trial = params.copy()
            trial[i] = lo
            tev = obj.evaluate(trial)
            if tev.objective <= ev.objective + ROUNDING * abs(ev.objective):
                params, ev = trial, tev
    if ev is opt.evaluation:
        return opt
    return dataclasses.replace(opt, params=params, evaluation=ev, nfev=obj.evaluations)
