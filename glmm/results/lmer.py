"""LmerFit: the result of ``lmer()``, with lme4's accessors of an ``lmerMod`` and their scales.

    objective  lme4's optimised criterion: REMLcrit(fit) for a REML fit, deviance(fit) for an
               ML fit (docs/lmm.md §2)
    remlcrit   lme4's REMLcrit(fit), from the fit's ldL2, ldRX2 and pwrss, whichever criterion
               was fitted
    deviance   lme4's deviance(fit, REML = FALSE): the ML criterion from the same pieces
    sigma      √(pwrss/(n − p)) (REML) or √(pwrss/n) (ML)
    loglik     −objective/2 (lme4's logLik: the REML log-likelihood of a REML fit)
    aic, bic   objective + 2·df, objective + log(nobs)·df, df = p + len(θ) + 1
    vcov       σ²(R_XᵀR_X)⁻¹ (the base class's rule: no Hessian over β exists for an LMM)
    coef_table t values, no p-values (lme4's LMM)
    residuals  lme4's residuals.lmResp: "response" (default) and "working" y − μ̂,
               "pearson" and "deviance" √w(y − μ̂); ``scaled`` divides by σ
    simulate   y* = Xβ̂ + o + Z(σΛu*) + σε*, u*, ε* ~ N(0, I), prior weights ignored (lme4's
               ``simulate`` of an lmerMod); conditioned terms keep b̃
    summary    lme4's print(summary()) of an lmerMod: "REML criterion at convergence" for a
               REML fit, the AIC table for an ML fit
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ArgumentError, ArgumentTypeError
from ..objectives.lmm import LmmEvaluation
from ..objectives.model import GlmerModel
from . import predict as _predict
from .base import MixedModelFit
from .rformat import format_real
from .simulate import simulate_responses
from .summary import Summary

#: lme4's residual types of an LMM (residuals.lmResp; "partial" is not implemented there)
RESIDUAL_TYPES = ("response", "working", "pearson", "deviance")


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

    @property
    def _has_pvalues(self) -> bool:
        return False

    def _title(self) -> list[str]:
        how = "REML" if self.REML else "maximum likelihood"
        return [f"Linear mixed model fit by {how}"]

    # -- fitted values, residuals, weights -------------------------------------------------
    def fitted(self) -> np.ndarray:
        """μ̂ = o + Xβ̂ + ZΛ(θ̂)û (lme4's ``fitted``)."""
        return self.evaluation.state.mu.copy()

    def residuals(self, type: str = "response", scaled: bool = False) -> np.ndarray:
        """lme4's ``residuals(fit, type)`` of an LMM: "response" (the default) and "working"
        are y − μ̂, "pearson" and "deviance" √w(y − μ̂); ``scaled`` divides by σ."""
        if not isinstance(type, str) or type not in RESIDUAL_TYPES:
            raise ArgumentError(f"type must be one of {', '.join(map(repr, RESIDUAL_TYPES))}, "
                                f"got {type!r}")
        m = self.model
        r = m.y - self.evaluation.state.mu
        if type in ("pearson", "deviance"):
            r = np.sqrt(m.weights) * r
        return r / self.sigma if scaled else r

    def weights(self, type: str = "prior") -> np.ndarray:
        """lme4's ``weights(fit, type)``: the prior weights ("prior", and "working": an
        LMM's working weights are its prior weights)."""
        if type in ("prior", "working"):
            return self.model.weights.copy()
        raise ArgumentError(f"weights: type must be 'prior' or 'working', got {type!r}")

    # -- simulation, refitting, the summary --------------------------------------------------
    def simulate(self, nsim: int = 1, seed: int | np.random.Generator | None = None,
                 re_form: str | None = None, use_u: bool = False) -> pd.DataFrame:
        """n × nsim responses at the fit's parameters, columns sim_1, …: new effects
        b* = σΛ(θ̂)u* for the terms not conditioned on (all, by default; ``re_form`` keeps b̃
        for some, ``use_u=True`` for all) and residuals σε*, the prior weights ignored, as
        lme4's ``simulate`` of an lmerMod."""
        if use_u:
            keep: tuple[int, ...] = tuple(range(len(self.design.random.terms)))
        elif re_form is None:
            keep = ()
        else:
            keep = _predict.term_subset(self.design, re_form)
        # Λ(σθ)u* = σΛ(θ)u*: simulate_responses draws b = Λ(θ)u for the θ it is given
        Y = simulate_responses(self.design, self.model.family, self.evaluation.beta,
                               self.sigma * self.evaluation.theta, self.b,
                               np.ones(self.nobs), self.sigma, nsim, seed, keep)
        return pd.DataFrame(Y, columns=[f"sim_{k + 1}" for k in range(Y.shape[1])])

    def refit(self, y: object = None) -> LmerFit:
        """The same design fitted again, with the same criterion, to a new response ``y``
        (lme4's ``refit``), from this fit's θ̂; None refits the fit's own response."""
        import dataclasses

        from ..lmer import fit_lmm, lmm_model

        d = self.design
        if y is not None:
            arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y)
            if arr.ndim == 0:
                raise ArgumentTypeError(f"refit: y must be a vector with one value per row, "
                                        f"got {y!r:.60}")
            if arr.shape[0] != d.n:
                raise ArgumentError(f"refit: y has {arr.shape[0]} rows, the fit {d.n}")
            d = dataclasses.replace(d, response=arr)
        return fit_lmm(d, lmm_model(d), REML=self.REML, theta0=self.theta,
                       start_label="fit's θ̂")

    def summary(self) -> LmerSummary:
        """lme4's ``summary(fit)`` of an lmerMod (``str()``: its printout)."""
        return LmerSummary.of(self)

    def refit_ml(self) -> LmerFit:
        """lme4's refitML: an ML fit of the same model from the REML θ̂ (this fit when it is
        already ML)."""
        if not self.REML:
            return self
        from ..lmer import fit_lmm  # imported here: glmm.lmer imports this module

        return fit_lmm(self.design, self.model, REML=False, theta0=self.theta,
                       start_label="REML θ̂")

    def _for_anova(self) -> LmerFit:
        return self.refit_ml()

    def _criterion_lines(self) -> list[str]:
        if self.REML:
            return [f"REML criterion at convergence: {self.objective:.4f}"]
        return super()._criterion_lines()


class LmerSummary(Summary):
    """lme4's summary of an lmerMod: the class is 'lmerMod', and a REML fit shows its
    criterion ("REML criterion at convergence: 1743.6") where an ML fit shows the AIC
    table."""

    def _title_lines(self) -> list[str]:
        return [f"{self.title[0]} ['lmerMod']", *self.title[1:]]

    def _aic_lines(self) -> list[str]:
        if self.title[0].endswith("REML"):
            # REML fits: −2·logLik is the REML criterion, printed with digits 5 (round 1)
            crit = format_real([round(self.deviance, 1)], 7)[0].strip()
            return [f"REML criterion at convergence: {crit}"]
        return super()._aic_lines()


def warn_singular(stacklevel: int) -> None:
    """lme4's checkConv message for a singular fit, as a :class:`SingularFitWarning`."""
    from ..errors import SingularFitWarning

    warnings.warn("boundary (singular) fit: see help('isSingular') (a θ entry is within 1e-4 "
                  "of its lower bound)", SingularFitWarning, stacklevel=stacklevel + 1)

