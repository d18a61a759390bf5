"""GlmerFit: the result of ``glmer()``, with lme4's accessors and their scales.

    objective  lme4's optimised criterion, devcomp$cmp["dev"] = −2·logLik(fit):
               log|L|² + ‖ũ‖² + A(μ̃) for nAGQ ≤ 1 (family constants included);
               the quadrature objective on the deviance-residual scale for nAGQ > 1
    deviance   R's deviance(fit): Σ squared deviance residuals at μ̂ (not −2·logLik)
    loglik     −objective/2, mirroring lme4 1.1-31 also for nAGQ > 1 (lme4 issue 161);
               ``loglik_absolute`` adds back A(μ̂) − Σdev(μ̂) there, the normalising
               constants that the quadrature objective leaves out
    aic, bic   objective + 2·df, objective + log(nobs)·df; df = p + len(θ) (+1 when σ is
               estimated, i.e. Gamma and inverse Gaussian)
    sigma      1 for binomial and Poisson; √(pwrss/n) otherwise, pwrss = Σw(y−μ)²/V(μ) + ‖u‖²
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..families import Family
from ..objectives.model import GlmerModel
from .base import MixedModelFit


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class GlmerFit(MixedModelFit):
    """A GLMM fitted by :func:`glmm.glmer`: the design with a family's response (``model``),
    nAGQ and lme4's scales of the objective (above)."""

    model: GlmerModel
    family: Family
    nAGQ: int

    # -- lme4's scalar summaries -----------------------------------------------------------
    @property
    def objective(self) -> float:
        return float(self.evaluation.objective)

    @property
    def deviance(self) -> float:
        return float(self.evaluation.drsum)

    @property
    def loglik_absolute(self) -> float:
        """The log-likelihood with the family's normalising constants for every nAGQ."""
        if self.nAGQ <= 1:
            return self.loglik
        ev = self.evaluation
        return -0.5 * (self.objective + ev.aic - ev.drsum)

    @property
    def df(self) -> int:
        return len(self.fixef_names) + len(self.theta) + (1 if self.family.scaled else 0)

    @property
    def sigma(self) -> float:
        if not self.family.scaled:
            return 1.0
        m, st = self.model, self.evaluation.state
        wrss = float(np.sum(m.weights * (m.y - st.mu) ** 2 / m.family.variance(st.mu)))
        return math.sqrt((wrss + st.ussq) / m.n)

    @property
    def _has_residual(self) -> bool:
        return self.family.scaled

    def _title(self) -> list[str]:
        # lme4's methTitle
        how = ("Laplace Approximation" if self.nAGQ == 1
               else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {self.nAGQ}")
        return [f"Generalized linear mixed model fit by maximum likelihood ({how})",
                f" Family: {self.family.name}  ( {self.family.link.name} )"]
