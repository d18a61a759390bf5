"""What every fitted mixed model answers: :class:`MixedModelFit`.

A fit holds its :class:`~glmm.design.design.Design`, the evaluation of the objective at the
optimum (θ̂, β̂, the conditional modes ũ and b̃ = Λ(θ̂)ũ), the objective itself as a function
of the parameters, and the :class:`~glmm.optimize.optsummary.OptSummary` of the search.  A
kind of model (:class:`glmm.results.glmer.GlmerFit`) adds its objective's scale and its
family; everything here is shared.

    logLik = −objective/2,  AIC = objective + 2·df,  BIC = objective + log(nobs)·df

The inference surface is built in one module per concept (docs/results.md): vcov
(:mod:`.vcov`), VarCorr (:mod:`.varcorr`), condVar (:mod:`.condvar`), predict
(:mod:`.predict`), the summary (:mod:`.summary`), getME (:mod:`.getme`); these methods are
thin, and import their module when first called (a fit need not load them).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cached import cached_property
from ..design.design import Design
from ..errors import ArgumentError, ArgumentTypeError
from ..objectives.base import Evaluation, Objective
from ..optimize.driver import SINGULAR_TOL
from ..optimize.optsummary import OptSummary


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class MixedModelFit(ABC):
    """A fitted mixed model.  ``converged`` and ``message`` are the fit's verdict: the
    optimiser's (``optsummary``), or stricter where the fit knows more (a θ that never left
    its start, separation)."""

    design: Design
    evaluation: Evaluation
    objective_fn: Objective
    optsummary: OptSummary
    converged: bool = True
    message: str = ""

    # -- what a kind of model defines ------------------------------------------------------------
    @property
    @abstractmethod
    def objective(self) -> float:
        """lme4's optimised criterion (−2·logLik for a GLMM at nAGQ ≤ 1)."""

    @property
    @abstractmethod
    def df(self) -> int:
        """The number of parameters: p + len(θ), plus a scale where one is estimated."""

    @property
    @abstractmethod
    def sigma(self) -> float:
        """The residual scale σ (1 where the family has none)."""

    @property
    def _has_residual(self) -> bool:
        """Whether the printout shows a residual standard deviation (an estimated σ)."""
        return False

    @abstractmethod
    def _title(self) -> list[str]:
        """The first lines of the printout: what was fitted, and how."""

    # -- the design --------------------------------------------------------------------------------
    @property
    def formula(self) -> str:
        return self.design.formula

    @property
    def fixef_names(self) -> tuple[str, ...]:
        return tuple(self.design.fixed.names)

    @property
    def theta_names(self) -> tuple[str, ...]:
        return tuple(self.design.random.theta_names)

    @property
    def lower(self) -> np.ndarray:
        """θ's lower bounds: 0 on the diagonals of the Tₜ, −∞ elsewhere."""
        return np.asarray(self.design.random.lower, dtype=float)

    @property
    def dropped(self) -> tuple[str, ...]:
        """The columns of X dropped for rank deficiency."""
        return tuple(self.design.fixed.dropped)

    @property
    def na_action(self) -> tuple[int, ...]:
        """Positions in ``data`` of the rows dropped for a missing value in a variable of the
        model, the weights or the offset (lme4's ``na.action(fit)``, there 1-based)."""
        return self.design.na_action

    @property
    def n_omitted(self) -> int:
        """How many rows of ``data`` were dropped for missing values (``na_action``)."""
        return len(self.na_action)

    @property
    def nobs(self) -> int:
        return self.design.n

    # -- the optimum -------------------------------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        return self.evaluation.theta.copy()

    @property
    def fixef(self) -> pd.Series:
        """β̂, named as R's model.matrix columns (a new Series at each call: changing it
        changes nothing in the fit)."""
        return pd.Series(self.evaluation.beta.copy(), index=list(self.fixef_names),
                         name="fixef")

    @property
    def beta(self) -> np.ndarray:
        return self.evaluation.beta.copy()

    @property
    def u(self) -> np.ndarray:
        return self.evaluation.u.copy()

    @property
    def b(self) -> np.ndarray:
        """b̃ = Λ(θ̂)ũ, level-major within each term (lme4's ``getME(fit, "b")``)."""
        return self.evaluation.b

    @property
    def feval(self) -> int:
        """How many times the objective was evaluated."""
        return self.optsummary.feval

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes b̃ per grouping factor: levels × columns, as lme4's ranef();
        the terms on one factor side by side, in term order."""
        b, start = self.b, 0
        parts: dict[str, list[pd.DataFrame]] = {}
        for t in self.design.random.terms:
            block = b[start:start + t.nranef].reshape(t.nlevels, t.ncols)
            start += t.nranef
            parts.setdefault(t.group, []).append(
                pd.DataFrame(block, index=pd.Index(t.levels), columns=list(t.columns)))
        return {g: pd.concat(dfs, axis=1) for g, dfs in parts.items()}

    @property
    def singular(self) -> bool:
        """lme4's isSingular: a θ entry with lower bound 0 within 1e-4 of it."""
        # (θ has a handful of entries: Python floats cost less than numpy calls)
        return any(math.isfinite(lo) and t - lo < SINGULAR_TOL
                   for t, lo in zip(self.theta.tolist(), self.lower.tolist(), strict=True))

    @property
    def loglik(self) -> float:
        return -0.5 * self.objective

    @property
    def aic(self) -> float:
        return self.objective + 2.0 * self.df

    @property
    def bic(self) -> float:
        return self.objective + math.log(self.nobs) * self.df

    # -- the objective as a function ---------------------------------------------------------------
    def devfun(self, params: Sequence[float]) -> float:
        """The objective at ``params`` (θ, or (θ, β) where β is not profiled)."""
        return self.objective_fn(self._params(params))

    def evaluate(self, params: Sequence[float]) -> Evaluation:
        """Like devfun, with the conditional modes and the pieces of the objective."""
        return self.objective_fn.evaluate(self._params(params))

    def _params(self, params: Sequence[float]) -> np.ndarray:
        """``params`` as the objective's parameter vector, or a typed error naming it."""
        k = self.objective_fn.nparams
        what = "θ" if k == len(self.theta_names) else "(θ, β)"
        try:
            x = np.asarray(params, dtype=float)
        except (TypeError, ValueError):
            x = None
        if x is None or x.ndim > 1 or (x.ndim == 0 and params is None):
            raise ArgumentTypeError(f"params must be a vector of {k} numbers {what}, got "
                                    f"{params!r:.80}")
        x = np.atleast_1d(x)   # its length is the objective's to check (split)
        if not np.isfinite(x).all():
            raise ArgumentError(f"params must be finite, got {x.tolist()}")
        return x

    # -- inference -------------------------------------------------------------------------------
    @property
    def _has_scale(self) -> bool:
        """Whether σ is estimated (lme4's useSc): the coef table shows "t value" then."""
        return self._has_residual

    @property
    def _has_pvalues(self) -> bool:
        """Whether coef(summary()) has Pr(>|z|) (lme4: every GLMM, no LMM)."""
        return True

    def _inverse_link(self, eta: np.ndarray) -> np.ndarray:
        return eta

    @property
    def hessian_available(self) -> bool:
        """Whether β is a parameter of the objective, so that a Hessian over (θ, β) exists
        (nAGQ ≥ 1; lme4's ``nrow(H) > length(θ)``)."""
        return self.objective_fn.nparams > len(self.theta_names)

    @cached_property
    def hessian(self) -> np.ndarray:
        """H = ∂²F/∂x² at the optimum over the objective's parameters x (θ, or (θ, β)), by
        central differences of the exact gradient (:func:`glmm.results.vcov.hessian`); the
        one lme4's convergence checks used where they ran (read-only: vcov depends on it)."""
        from . import vcov as _vcov

        H = _vcov.hessian(self.objective_fn, self.optsummary.final)
        H.setflags(write=False)
        return H

    def vcov(self, use_hessian: bool | None = None) -> pd.DataFrame:
        """Var(β̂), p × p, named by the fixed effects: lme4's rule (docs/results.md §1) —
        2·(H⁻¹)_ββ where a Hessian over (θ, β) exists, else σ²(R_XᵀR_X)⁻¹;
        ``use_hessian=False`` asks for σ²(R_XᵀR_X)⁻¹ (with lme4's warning where the two
        differ), True for the Hessian's (an error for nAGQ = 0)."""
        from . import vcov as _vcov

        avail = self.hessian_available
        V_H = None
        if avail:
            V_H = _vcov.vcov_from_hessian(self.hessian, len(self.theta_names))
        V_RX = _vcov.vcov_from_rx(self.objective_fn.rx(self.evaluation), self.sigma)
        V = _vcov.choose(V_H, avail, V_RX, use_hessian)
        names = list(self.fixef_names)
        return pd.DataFrame(V, index=names, columns=names)

    def coef_table(self) -> pd.DataFrame:
        """lme4's ``coef(summary(fit))``: Estimate, Std. Error = √diag(vcov), z value (t value
        where σ is estimated) = Estimate / Std. Error, and Pr(>|z|) = 2Φ(−|z|)."""
        se = np.sqrt(np.diag(self.vcov().to_numpy()))
        est = self.evaluation.beta
        stat = est / se
        cols = {"Estimate": est, "Std. Error": se,
                ("t value" if self._has_scale else "z value"): stat}
        if self._has_pvalues:
            from scipy.special import ndtr  # scipy.special on first use: a slow import

            cols["Pr(>|z|)"] = 2.0 * ndtr(-np.abs(stat))   # 2·(1 − Φ(|z|)), scipy's norm.sf
        return pd.DataFrame(cols, index=list(self.fixef_names))

    def confint(self, method: str = "Wald", level: float = 0.95) -> pd.DataFrame:
        """Wald intervals for β: β̂ ± z_{(1+level)/2}·√diag(vcov) (lme4's
        ``confint(fit, method = "Wald")``, its fixed-effect rows)."""
        if method != "Wald":
            raise ArgumentError(f"confint: method must be 'Wald' (profile and bootstrap "
                                f"intervals are not implemented), got {method!r}")
        if isinstance(level, bool) or not isinstance(level, (int, float)) or \
                not 0.0 < float(level) < 1.0:
            raise ArgumentError(f"confint: level must be a number in (0, 1), got {level!r}")
        a = (1.0 - float(level)) / 2.0
        from scipy.special import ndtri

        z = float(ndtri(1.0 - a))   # Φ⁻¹, scipy's norm.ppf
        se = np.sqrt(np.diag(self.vcov().to_numpy()))
        est = self.evaluation.beta
        return pd.DataFrame({_pct(a): est - z * se, _pct(1.0 - a): est + z * se},
                            index=list(self.fixef_names))

    def varcorr(self) -> pd.DataFrame:
        """lme4's ``as.data.frame(VarCorr(fit))``: grp, var1, var2, vcov, sdcor
        (:func:`glmm.results.varcorr.varcorr_frame`)."""
        from . import varcorr as _varcorr

        return _varcorr.varcorr_frame(self.design.random.terms, self.evaluation.theta,
                                      self.sigma, self._has_residual)

    def condvar(self) -> dict[str, np.ndarray]:
        """The conditional covariances of b given y at the mode, per grouping factor an
        array (levels, p, p): σ²·(ΛG⁻¹Λᵀ)'s diagonal blocks (lme4's ``postVar``;
        :mod:`glmm.results.condvar`)."""
        from . import condvar as _condvar

        return _condvar.conditional_variances(self.design.random, self.evaluation.theta,
                                              self.evaluation.state.W, self.sigma)

    def predict(self, newdata: pd.DataFrame | None = None, re_form: str | None = None,
                type: str = "link", allow_new_levels: bool = False) -> np.ndarray:
        """lme4's ``predict``: η = Xβ̂ + o + Σ Zₜb̃ₜ over the terms of ``re_form`` (None: all,
        "NA" or "~0": none, or a formula with some of the fit's bars), on the fit's rows or
        on ``newdata``; ``type="response"`` gives g⁻¹(η) (:mod:`glmm.results.predict`)."""
        from . import predict as _predict

        kind = _predict.check_type(type)
        terms = _predict.term_subset(self.design, re_form)
        if newdata is None:
            if re_form is None:
                eta = self.evaluation.state.eta.copy()
            else:
                eta = _predict.fitted_linear_predictor(self.design, self.evaluation.beta,
                                                       self.b, terms)
        else:
            eta = _predict.linear_predictor(self.design, self.evaluation.beta, self.b,
                                            newdata, terms, bool(allow_new_levels))
        return eta if kind == "link" else self._inverse_link(eta)

    def _for_anova(self) -> MixedModelFit:
        """The fit anova compares: this one (an LMM fitted by REML gives its ML refit)."""
        return self

    def getME(self, name: str) -> object:
        """lme4's ``getME(fit, name)`` (:mod:`glmm.results.getme` lists the names)."""
        from .getme import getme

        return getme(self, name)

    def summary(self) -> object:
        """lme4's ``summary(fit)``: ``str()`` is laid out as ``print(summary(fit))``;
        ``.to_dict()`` gives the numbers (:class:`glmm.results.summary.Summary`)."""
        from .summary import Summary
        return Summary.of(self)

    # -- the printout ------------------------------------------------------------------------------
    def _random_effects_lines(self) -> list[str]:
        """The standard deviations (and correlations) of the random effects, per term:
        σ·√diag(TTᵀ) and the correlations of TTᵀ, T = Tₜ(θ̂)."""
        from . import varcorr as _varcorr

        rows = [("Groups", "Name", "Std.Dev.", "Corr")]
        sigma = self.sigma
        theta = self.evaluation.theta
        terms = self.design.random.terms
        for t, label in zip(terms, _varcorr.group_names(terms), strict=True):
            T = t.T(theta)
            cov = sigma * sigma * (T @ T.T)
            sd = np.sqrt(np.diag(cov))
            for j, col in enumerate(t.columns):
                corr = ""
                if j > 0:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        r = cov[j, :j] / (sd[j] * sd[:j])
                    corr = " ".join(f"{v:5.2f}" for v in r)
                rows.append((label if j == 0 else "", col, f"{sd[j]:.4g}", corr))
        if not self.design.random.terms:
            return []
        if self._has_residual:
            rows.append(("Residual", "", f"{sigma:.4g}", ""))
        if all(t.ncols == 1 for t in self.design.random.terms):
            rows = [(a, b, c, "") for a, b, c, _ in rows]   # no correlations to show
        width = [max(len(r[k]) for r in rows) for k in range(3)]
        lines = ["Random effects:"]
        for r in rows:
            lines.append(" " + "  ".join(r[k].ljust(width[k]) for k in range(3))
                         + ("  " + r[3] if r[3] else "").rstrip())
        sizes = {t.group: t.nlevels for t in terms}
        groups = "; ".join(f"{g}, {n}" for g, n in sizes.items())   # lme4's layout
        lines.append(f"Number of obs: {self.nobs}, groups:  {groups}")
        return [line.rstrip() for line in lines]

    def _fixef_lines(self, per_line: int = 6) -> list[str]:
        names, values = self.fixef_names, self.evaluation.beta
        lines = ["Fixed Effects:"]
        for i in range(0, len(names), per_line):
            cells = [(n, f"{v:.4g}") for n, v in zip(names[i:i + per_line],
                                                       values[i:i + per_line], strict=True)]
            w = [max(len(a), len(b)) for a, b in cells]
            lines.append("  ".join(a.rjust(k) for (a, _), k in zip(cells, w, strict=True)))
            lines.append("  ".join(b.rjust(k) for (_, b), k in zip(cells, w, strict=True)))
        if len(names) > 5 * per_line:   # a long X: its head and how many more
            lines = [*lines[:11], f"... and {len(names) - 5 * per_line} more"]
        return lines

    def _criterion_lines(self) -> list[str]:
        """The printout's line of the criterion: lme4's AIC, BIC, logLik, deviance, df.resid."""
        return ["      AIC       BIC    logLik  deviance  df.resid",
                f"{self.aic:9.4f} {self.bic:9.4f} {self.loglik:9.4f} {self.objective:9.4f} "
                f"{self.nobs - self.df:9d}"]

    def __repr__(self) -> str:
        lines = [*self._title(), f"Formula: {self.formula}", *self._criterion_lines(),
                 *self._random_effects_lines(), *self._fixef_lines()]
        if not self.converged:
            lines.append(f"optimizer: not converged ({self.message})")
        if self.singular:
            lines.append("boundary (singular) fit: see fit.singular")
        return "\n".join(lines)

    __str__ = __repr__


def _pct(p: float) -> str:
    """R's interval column names: format(100·p, digits = 3) followed by " %"."""
    return f"{float(f'{100 * p:.3g}'):g} %"
