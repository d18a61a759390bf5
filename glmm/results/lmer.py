"""LmerFit: the result of ``lmer()``, with lme4's accessors of an ``lmerMod`` and their scales.

    objective  lme4's optimised criterion: REMLcrit(fit) for a REML fit, deviance(fit) for an
               ML fit (docs/lmm.md §2)
    remlcrit   lme4's REMLcrit(fit), from the fit's ldL2, ldRX2 and pwrss, whichever criterion
               was fitted
    deviance   lme4's deviance(fit, REML = FALSE): the ML criterion from the same pieces
    sigma      √(pwrss/(n − p)) (REML) or √(pwrss/n) (ML)
    loglik     −objective/2 (lme4's logLik: the REML log-likelihood of a REML fit)
    aic, bic   objective + 2·df, objective + log(nobs)·df, df = p + len(θ) + 1
    vcov       σ²(R_XᵀR_X)⁻¹
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..objectives.lmm import LmmEvaluation
from ..objectives.model import GlmerModel
from .base import MixedModelFit


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class LmerFit(MixedModelFit):
    """An LMM fitted by :func:`glmm.lmer`: the design with its response (``model``) and the
    criterion fitted (``REML``; False for a REML request without fixed effects, as lme4)."""

    model: GlmerModel
    REML: bool

    @property
    def _lmm(self) -> LmmEvaluation:
        ev = self.evaluation
        assert isinstance(ev, LmmEvaluation)
        return ev

    # -- lme4's scalar summaries -----------------------------------------------------------
    @property
    def objective(self) -> float:
        return float(self.evaluation.objective)

    @property
    def remlcrit(self) -> float:
        """lme4's REMLcrit(fit): the REML criterion at the fit's θ̂ (for an ML fit,
        recomputed from its pieces with n − p, as lme4 does)."""
        return self._lmm.remlcrit

    @property
    def deviance(self) -> float:
        """lme4's deviance(fit, REML = FALSE): the ML criterion at the fit's θ̂ (for a REML
        fit, from the same ldL2 and pwrss; not the ML optimum, which :meth:`refit_ml` finds)."""
        return self._lmm.deviance

    @property
    def df(self) -> int:
        return len(self.fixef_names) + len(self.theta) + 1

    @property
    def sigma(self) -> float:
        return float(self._lmm.sigma)

    @property
    def pwrss(self) -> float:
        """Σw(y − μ̂)² + ‖ũ‖², lme4's devcomp$cmp["pwrss"]."""
        return float(self._lmm.pwrss)

    @property
    def RX(self) -> np.ndarray:
        """lme4's R_X (upper triangular): R_XᵀR_X = XᵀWX − XᵀWZΛG⁻¹ΛᵀZᵀWX."""
        return self._lmm.RX.copy()

    @property
    def vcov_beta(self) -> pd.DataFrame:
        """σ²(R_XᵀR_X)⁻¹, lme4's vcov(fit) of an LMM, named by the fixed effects."""
        names = list(self.fixef_names)
        return pd.DataFrame(self._lmm.vcov, index=names, columns=names)

    @property
    def _has_residual(self) -> bool:
        return True

    def _title(self) -> list[str]:
        how = "REML" if self.REML else "maximum likelihood"
        return [f"Linear mixed model fit by {how}"]

    def refit_ml(self) -> LmerFit:
        """lme4's refitML: an ML fit of the same model from the REML θ̂ (this fit when it is
        already ML)."""
        if not self.REML:
            return self
        from ..lmer import fit_lmm  # imported here: glmm.lmer imports this module

        return fit_lmm(self.design, self.model, REML=False, theta0=self.theta,
                       start_label="REML θ̂")

    def __repr__(self) -> str:
        if self.REML:
            crit = f"REML criterion at convergence: {self.objective:.4f}"
        else:
            crit = (f"      AIC       BIC    logLik  deviance  df.resid\n"
                    f"{self.aic:9.4f} {self.bic:9.4f} {self.loglik:9.4f} {self.objective:9.4f} "
                    f"{self.nobs - self.df:9d}")
        lines = [*self._title(), f"Formula: {self.formula}", crit,
                 *self._random_effects_lines(), *self._fixef_lines()]
        if not self.converged:
            lines.append(f"optimizer: not converged ({self.message})")
        if self.singular:
            lines.append("boundary (singular) fit: see fit.singular")
        return "\n".join(lines)

    __str__ = __repr__


def warn_singular(stacklevel: int) -> None:
    """lme4's checkConv message for a singular fit, as a :class:`SingularFitWarning`."""
    from ..errors import SingularFitWarning

    warnings.warn("boundary (singular) fit: see help('isSingular') (a θ entry is within 1e-4 "
                  "of its lower bound)", SingularFitWarning, stacklevel=stacklevel + 1)

