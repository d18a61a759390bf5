"""glmm: mixed models at numerical parity with R's lme4: glmer and lmer.

    fit = glmm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", data=df,
                     family=glmm.binomial(link="logit"), nAGQ=1)
    fit.fixef, fit.theta, fit.ranef, fit.objective, fit.deviance, fit.devfun(params)

    fit = glmm.lmer("Reaction ~ Days + (Days | Subject)", data=df, REML=True)
    fit.fixef, fit.theta, fit.sigma, fit.objective (REMLcrit or deviance), fit.refit_ml()
"""

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

__version__ = "0.1.0"

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
