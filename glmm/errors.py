"""The errors and warnings that glmm raises on purpose, in one hierarchy.

Every error ``glmer()`` raises derives from :class:`GlmmError`, and each concrete error is
also a ``ValueError`` or a ``TypeError``, so code written against the built-in types keeps
working.  Anything else escaping the engine (an ``AttributeError``, a numpy or LAPACK error,
a ``RecursionError``) is a bug.  Every warning derives from :class:`GlmmWarning`.

    GlmmError
    ├── FormulaError            the formula cannot be parsed, or glmer cannot use it
    ├── ModelFrameError         the data cannot make a model frame (columns, weights, offset)
    ├── FamilyError             unknown family or link, or a response the family refuses
    ├── ResponseError           a response lme4 refuses (constant, outside the family's range)
    ├── FixedEffectsError       X cannot be built
    ├── RandomEffectsError      lme4's checks on the random-effects structure
    ├── AGQNotAvailableError    nAGQ > 1 without a single scalar term
    ├── ArgumentError           an argument of the wrong value (ValueError)
    ├── ArgumentTypeError       an argument of the wrong type (TypeError)
    ├── SeparationError         the fixed effects predict the response exactly: no optimum
    ├── OptimizationError       the optimiser found no point where the objective is finite
    │   └── ConvergenceError    lme4's convergence checks failed, with check_conv = "stop"
    └── PirlsError              PIRLS failed (also an ArithmeticError: the optimiser backs
                                off from a point where the objective cannot be evaluated)

    GlmmWarning
    ├── ConvergenceWarning      the optimiser stopped without meeting its test
    │   ├── GradientWarning     lme4's checkConv: the scaled gradient at the optimum is large
    │   └── HessianWarning      lme4's checkConv: the Hessian is not positive definite, or
    │                           is ill-conditioned (nearly unidentifiable)
    ├── VcovWarning             lme4's vcov messages: the Hessian's and R_X's matrices
    │                           differ by more than 1e-4, or the Hessian's is unusable
    ├── SingularFitWarning      a variance component on its boundary (lme4's isSingular)
    ├── RankDeficiencyWarning   columns of X dropped as linearly dependent
    ├── NonIntegerResponseWarning  non-integer counts for binomial
    ├── SeparationWarning       quasi-complete separation: some β diverge
    ├── ScaleWarning            predictors on very different scales (lme4's checkScaleX)
    ├── GaussianShortcutWarning glmer with the gaussian family and identity link: fitted
    │                           by lmer, as lme4 does
    └── RefitMLWarning          anova refits REML fits by ML (lme4's message)
"""

from __future__ import annotations


class GlmmError(Exception):
    """Base class of every error glmm raises on purpose."""


class FormulaError(GlmmError, ValueError):
    """A formula that cannot be parsed, or that glmer cannot use."""


class ModelFrameError(GlmmError, ValueError):
    """The data cannot make a model frame for the formula (columns, weights, offset, values)."""


class FamilyError(GlmmError, ValueError):
    """An unknown family or link, a link the family does not allow, or an invalid response."""


class ResponseError(FamilyError):
    """A response that lme4 refuses: constant, or outside the family's support."""


class FixedEffectsError(GlmmError, ValueError):
    """X cannot be built (e.g. a factor with fewer than two levels)."""


class RandomEffectsError(GlmmError, ValueError):
    """lme4's checks on the random-effects structure failed (wording as lme4's)."""


class AGQNotAvailableError(GlmmError, ValueError):
    """nAGQ > 1 asked for a model without a single scalar random-effects term."""


class ArgumentError(GlmmError, ValueError):
    """An argument with a value the function cannot use; the message names the argument."""


class ArgumentTypeError(GlmmError, TypeError):
    """An argument of a type the function cannot use; the message names the argument."""


class SeparationError(GlmmError, ValueError):
    """Complete separation: the fixed effects predict every response exactly, so the
    likelihood has no maximum (:mod:`glmm.optimize.separation`)."""


class OptimizationError(GlmmError, ValueError):
    """The objective cannot be evaluated at the start, or the optimiser ended where it is not
    finite: there is no fit to report."""


class ConvergenceError(OptimizationError):
    """lme4's convergence checks failed where the control asks them to stop the fit
    (``GlmerControl(check_conv="stop")``, lme4's ``action = "stop"``)."""


class PirlsError(GlmmError, ArithmeticError, ValueError):
    """PIRLS failed: non-finite deviance, or no convergence (lme4's pwrssUpdate errors)."""


class GlmmWarning(UserWarning):
    """Base class of every warning glmm issues."""


class ConvergenceWarning(GlmmWarning):
    """The optimizer stopped without meeting its convergence test."""


class GradientWarning(ConvergenceWarning):
    """lme4's ``checkConv`` gradient test: max(min(|R⁻ᵀg|, |g|)) above its tolerance (2e-3)
    at the optimum ("Model failed to converge with max|grad| = …")."""


class HessianWarning(ConvergenceWarning):
    """lme4's ``checkConv`` Hessian tests: negative or zero eigenvalues ("degenerate",
    "numerically singular"), a very large eigenvalue or eigenvalue ratio ("nearly
    unidentifiable")."""


class VcovWarning(GlmmWarning):
    """lme4's ``vcov.merMod`` messages: the matrices from the Hessian and from R_X differ by
    more than 1e-4 (relative), or the Hessian's is not positive definite and R_X's is used."""


class SingularFitWarning(GlmmWarning):
    """The fit is on the boundary: a variance component is zero (lme4's isSingular)."""


class RankDeficiencyWarning(GlmmWarning):
    """Columns of X were dropped as linearly dependent (lme4's rank-deficiency message)."""


class NonIntegerResponseWarning(GlmmWarning):
    """A binomial or Poisson response that is not a whole count (R's "non-integer" warnings)."""


class SeparationWarning(GlmmWarning):
    """Quasi-complete separation: some fixed effects diverge; the fit is where the optimiser
    stopped, not an optimum (:mod:`glmm.optimize.separation`)."""


class ScaleWarning(GlmmWarning):
    """Predictors on very different scales (lme4's checkScaleX "rescale variables?")."""


class GaussianShortcutWarning(GlmmWarning):
    """glmer() with the gaussian family and the identity link, handed over to lmer() as lme4
    does (its deprecation warning)."""


class RefitMLWarning(GlmmWarning):
    """anova() of linear mixed models refits REML fits by maximum likelihood first (lme4's
    message "refitting model(s) with ML (instead of REML)")."""
