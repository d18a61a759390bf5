"""glmm: mixed models at numerical parity with R's lme4: glmer and lmer.

    fit = glmm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", data=df,
                     family=glmm.binomial(link="logit"), nAGQ=1)
    fit.fixef, fit.theta, fit.ranef, fit.objective, fit.deviance, fit.devfun(params)

    fit = glmm.lmer("Reaction ~ Days + (Days | Subject)", data=df, REML=True)
    fit.fixef, fit.theta, fit.sigma, fit.objective (REMLcrit or deviance), fit.refit_ml()

The names below are loaded on first use (PEP 562): ``import glmm`` reads this file only, and
a fit then loads the modules it runs, not those of summaries, predictions, anova or lmer.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: each public name's module (relative to the package)
_MODULES: dict[str, str] = {
    "AGQNotAvailableError": "errors",
    "ArgumentError": "errors",
    "ArgumentTypeError": "errors",
    "ConvergenceError": "errors",
    "ConvergenceWarning": "errors",
    "FamilyError": "errors",
    "FixedEffectsError": "errors",
    "FormulaError": "errors",
    "GaussianShortcutWarning": "errors",
    "GlmmError": "errors",
    "GlmmWarning": "errors",
    "GradientWarning": "errors",
    "HessianWarning": "errors",
    "ModelFrameError": "errors",
    "NonIntegerResponseWarning": "errors",
    "OptimizationError": "errors",
    "PirlsError": "errors",
    "RandomEffectsError": "errors",
    "RankDeficiencyWarning": "errors",
    "RefitMLWarning": "errors",
    "ResponseError": "errors",
    "ScaleWarning": "errors",
    "SeparationError": "errors",
    "SeparationWarning": "errors",
    "SingularFitWarning": "errors",
    "VcovWarning": "errors",
    "Family": "families",
    "Gamma": "families",
    "binomial": "families",
    "gaussian": "families",
    "inverse_gaussian": "families",
    "make_family": "families",
    "poisson": "families",
    "glmer": "glmer",
    "lmer": "lmer",
    "GlmerControl": "optimize.control",
    "anova": "results.anova",
    "GlmerFit": "results.glmer",
    "LmerFit": "results.lmer",
}

__all__ = [
    "AGQNotAvailableError",
    "ArgumentError",
    "ArgumentTypeError",
    "ConvergenceError",
    "ConvergenceWarning",
    "Family",
    "FamilyError",
    "FixedEffectsError",
    "FormulaError",
    "Gamma",
    "GaussianShortcutWarning",
    "GlmerControl",
    "GlmerFit",
    "GlmmError",
    "GlmmWarning",
    "GradientWarning",
    "HessianWarning",
    "LmerFit",
    "ModelFrameError",
    "NonIntegerResponseWarning",
    "OptimizationError",
    "PirlsError",
    "RandomEffectsError",
    "RankDeficiencyWarning",
    "RefitMLWarning",
    "ResponseError",
    "ScaleWarning",
    "SeparationError",
    "SeparationWarning",
    "SingularFitWarning",
    "VcovWarning",
    "anova",
    "binomial",
    "gaussian",
    "glmer",
    "inverse_gaussian",
    "lmer",
    "make_family",
    "poisson",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """glmm itself.  ``glmm.glmer`` and ``glmm.lmer`` are functions of submodules of the same
    names, and importing a submodule binds it as the package's attribute: that binding is
    taken as the function, whichever import comes first."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("glmer", "lmer") and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

if TYPE_CHECKING:
    from .errors import (
        AGQNotAvailableError,
        ArgumentError,
        ArgumentTypeError,
        ConvergenceError,
        ConvergenceWarning,
        FamilyError,
        FixedEffectsError,
        FormulaError,
        GaussianShortcutWarning,
        GlmmError,
        GlmmWarning,
        GradientWarning,
        HessianWarning,
        ModelFrameError,
        NonIntegerResponseWarning,
        OptimizationError,
        PirlsError,
        RandomEffectsError,
        RankDeficiencyWarning,
        RefitMLWarning,
        ResponseError,
        ScaleWarning,
        SeparationError,
        SeparationWarning,
        SingularFitWarning,
        VcovWarning,
    )
    from .families import Family, Gamma, binomial, gaussian, inverse_gaussian, make_family, poisson
    from .glmer import glmer
    from .lmer import lmer
    from .optimize.control import GlmerControl
    from .results.anova import anova
    from .results.glmer import GlmerFit
    from .results.lmer import LmerFit
