"""glmm: generalized linear mixed models at numerical parity with R's lme4::glmer.

    fit = glmm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", data=df,
                     family=glmm.binomial(link="logit"), nAGQ=1)
    fit.fixef, fit.theta, fit.ranef, fit.objective, fit.deviance, fit.devfun(params)
"""

from .families import Family, Gamma, binomial, inverse_gaussian, make_family, poisson
from .fit import GlmerFit
from .glmer import ConvergenceWarning, SingularFitWarning, glmer
from .objective import AGQNotAvailableError

__version__ = "0.1.0"

__all__ = [
    "AGQNotAvailableError",
    "ConvergenceWarning",
    "Family",
    "Gamma",
    "GlmerFit",
    "SingularFitWarning",
    "binomial",
    "glmer",
    "inverse_gaussian",
    "make_family",
    "poisson",
]
