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

The family's answers (fitted values, residuals, simulation, refit) are here; what every fit
answers is on :class:`~glmm.results.base.MixedModelFit` (docs/results.md).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ArgumentError, ArgumentTypeError, GradientWarning, HessianWarning
from ..families import Family
from ..objectives.model import GlmerModel
from ..optimize.checkconv import ConvergenceChecks, check_convergence
from ..optimize.control import GlmerControl
from .base import MixedModelFit


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class GlmerFit(MixedModelFit):
    """A GLMM fitted by :func:`glmm.glmer`: the design with a family's response (``model``),
    nAGQ and lme4's scales of the objective (above)."""

    model: GlmerModel
    family: Family
    nAGQ: int
    control: GlmerControl = field(default_factory=GlmerControl)

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

    def _inverse_link(self, eta: np.ndarray) -> np.ndarray:
        return self.family.link.linkinv(eta)

    # -- fitted values and residuals (glmm/results/residuals.py) -----------------------------
    def fitted(self) -> np.ndarray:
        """μ̂ = g⁻¹(η̂) at the mode (lme4's ``fitted``; a proportion for binomial counts)."""
        return self.evaluation.state.mu.copy()

    def residuals(self, type: str = "deviance", scaled: bool = False) -> np.ndarray:
        """lme4's ``residuals(fit, type)``: "deviance" (the default), "pearson", "working" or
        "response" (:mod:`glmm.results.residuals`); ``scaled`` divides by σ."""
        from .residuals import residuals as _residuals

        m, st = self.model, self.evaluation.state
        r = _residuals(self.family, m.y, st.mu, st.eta, m.weights, type)
        return r / self.sigma if scaled else r

    def weights(self, type: str = "prior") -> np.ndarray:
        """lme4's ``weights(fit, type)``: "prior" (times the trials for binomial counts, as
        lme4's) or "working" (W at the mode)."""
        if type == "prior":
            return self.model.weights.copy()
        if type == "working":
            return self.evaluation.state.W.copy()
        raise ArgumentError(f"weights: type must be 'prior' or 'working', got {type!r}")

    # -- lme4's checkConv (glmm/optimize/checkconv.py) -------------------------------------------
    def convergence_checks(self) -> ConvergenceChecks:
        """lme4's ``checkConv`` at the optimum: the singular check always; for nAGQ ≥ 1 the
        scaled gradient and the Hessian's checks, on the exact gradient and on
        :attr:`hessian` (glmer passes no derivatives at nAGQ = 0, so lme4 runs none there).
        Computed once, on first use (``fit.optsummary.checks`` is the same), with the
        control's tolerances, and lme4's warnings as :class:`~glmm.GradientWarning` and
        :class:`~glmm.HessianWarning` (none where the control's ``check_conv`` is
        "ignore")."""
        if "_convergence_checks" not in self.__dict__:
            checks = self._check_convergence()
            object.__setattr__(self, "_convergence_checks", checks)
            if self.control.check_conv == "warning":
                for msg, kind in zip(checks.messages, checks.kinds, strict=True):
                    warnings.warn(msg, GradientWarning if kind == "gradient"
                                  else HessianWarning, stacklevel=3)
        return self.__dict__["_convergence_checks"]

    def _check_convergence(self) -> ConvergenceChecks:
        x = np.asarray(self.optsummary.final, dtype=float)
        k = len(self.theta_names)
        lower = np.concatenate([self.lower, np.full(len(x) - k, -np.inf)])
        c = self.control
        tols = {"grad_tol": c.check_conv_grad, "singular_tol": c.check_conv_singular,
                "hess_tol": c.check_conv_hess}
        if not self.hessian_available:
            return check_convergence(x, lower, k, None, None, **tols)
        obj = self.objective_fn
        last = obj.last
        try:
            g = obj.value_and_gradient(x)[1]
        finally:
            obj.last = last
        singular = check_convergence(x, lower, k, None, None, **tols).singular
        return check_convergence(x, lower, k, g, None if singular else self.hessian, **tols)

    # -- simulation and refitting ---------------------------------------------------------------
    def simulate(self, nsim: int = 1, seed: int | np.random.Generator | None = None,
                 re_form: str | None = None, use_u: bool = False) -> pd.DataFrame:
        """n × nsim responses drawn at the fit's parameters (:mod:`glmm.results.simulate`),
        on the model's scale (a proportion for binomial counts), columns sim_1, sim_2, ….

        As lme4's ``simulate``, by default every term draws new effects u ~ N(0, I)
        (``re.form = NA``); ``re_form`` with some of the fit's bars keeps b̃ for those, and
        ``use_u=True`` keeps b̃ for all (lme4's ``use.u = TRUE``)."""
        from . import predict as _predict
        from .simulate import simulate_responses

        if use_u:
            keep: tuple[int, ...] = tuple(range(len(self.design.random.terms)))
        elif re_form is None:
            keep = ()
        else:
            keep = _predict.term_subset(self.design, re_form)
        Y = simulate_responses(self.design, self.family, self.evaluation.beta,
                               self.evaluation.theta, self.b, self.model.weights, self.sigma,
                               nsim, seed, keep)
        return pd.DataFrame(Y, columns=[f"sim_{k + 1}" for k in range(Y.shape[1])])

    def refit(self, y: object = None) -> GlmerFit:
        """The same design and family fitted again to a new response ``y`` (lme4's
        ``refit``): the raw response as the formula reads it (a two-column count matrix for
        ``cbind``), or the model's scale (a proportion, for counts with the fit's trials);
        None refits the fit's own response."""
        from ..glmer import refit_design
        d = self.design
        if y is None:
            resp: object = d.response
        else:
            arr = np.asarray(y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else y)
            if arr.ndim == 0:
                raise ArgumentTypeError(f"refit: y must be a vector with one value per row, "
                                        f"got {y!r:.60}")
            raw = np.asarray(d.response) if not isinstance(d.response, pd.Categorical) else None
            if arr.shape[0] != d.n:
                raise ArgumentError(f"refit: y has {arr.shape[0]} rows, the fit {d.n}")
            if raw is not None and raw.ndim == 2 and arr.ndim == 1:
                trials = raw.sum(axis=1)
                succ = arr * trials
                resp = np.column_stack([succ, trials - succ])
            else:
                resp = arr
        return refit_design(d, self.family, self.nAGQ, resp, self.control)

    def _title(self) -> list[str]:
        # lme4's methTitle
        how = ("Laplace Approximation" if self.nAGQ == 1
               else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {self.nAGQ}")
        return [f"Generalized linear mixed model fit by maximum likelihood ({how})",
                f" Family: {self.family.name}  ( {self.family.link.name} )"]
