"""glmm: generalized linear mixed models at numerical parity with R's lme4::glmer.

    fit = glmm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", data=df,
                     family=glmm.binomial(link="logit"), nAGQ=1)
    fit.fixef, fit.theta, fit.ranef, fit.objective, fit.deviance, fit.devfun(params)
"""

from .errors import (
    AGQNotAvailableError,
    ArgumentError,
    ArgumentTypeError,
    ConvergenceWarning,
    FamilyError,
    FixedEffectsError,
    FormulaError,
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
    ResponseError,
    ScaleWarning,
    SeparationError,
    SeparationWarning,
    SingularFitWarning,
    VcovWarning,
)
from .families import Family, Gamma, binomial, inverse_gaussian, make_family, poisson
from .glmer import glmer
from .results.anova import anova
from .results.glmer import GlmerFit

__version__ = "0.1.0"

__all__ = [
    "AGQNotAvailableError",
    "ArgumentError",
    "ArgumentTypeError",
    "ConvergenceWarning",
    "Family",
    "FamilyError",
    "FixedEffectsError",
    "FormulaError",
    "Gamma",
    "GlmerFit",
    "GlmmError",
    "GlmmWarning",
    "GradientWarning",
    "HessianWarning",
    "ModelFrameError",
    "NonIntegerResponseWarning",
    "OptimizationError",
    "PirlsError",
    "RandomEffectsError",
    "RankDeficiencyWarning",
    "ResponseError",
    "ScaleWarning",
    "SeparationError",
    "SeparationWarning",
    "SingularFitWarning",
    "VcovWarning",
    "anova",
    "binomial",
    "glmer",
    "inverse_gaussian",
    "make_family",
    "poisson",
]
