"""What every fitted mixed model answers: :class:`MixedModelFit`.

A fit holds its :class:`~glmm.design.design.Design`, the evaluation of the objective at the
optimum (θ̂, β̂, the conditional modes ũ and b̃ = Λ(θ̂)ũ), the objective itself as a function
of the parameters, and the :class:`~glmm.optimize.optsummary.OptSummary` of the search.  A
kind of model (:class:`glmm.results.glmer.GlmerFit`) adds its objective's scale and its
family; everything here is shared.

    logLik = −objective/2,  AIC = objective + 2·df,  BIC = objective + log(nobs)·df
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

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

    @cached_property
    def fixef(self) -> pd.Series:
        """β̂, named as R's model.matrix columns."""
        return pd.Series(self.evaluation.beta, index=list(self.fixef_names), name="fixef")

    @property
    def beta(self) -> np.ndarray:
        return self.evaluation.beta.copy()

    @property
    def u(self) -> np.ndarray:
        return self.evaluation.u

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
        on_bound = np.isfinite(self.lower) & (self.theta - self.lower < SINGULAR_TOL)
        return bool(np.any(on_bound))

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

    # -- the printout ------------------------------------------------------------------------------
    def _random_effects_lines(self) -> list[str]:
        """The standard deviations (and correlations) of the random effects, per term:
        σ·√diag(TTᵀ) and the correlations of TTᵀ, T = Tₜ(θ̂)."""
        rows = [("Groups", "Name", "Std.Dev.", "Corr")]
        sigma = self.sigma
        theta = self.evaluation.theta
        for t in self.design.random.terms:
            T = t.T(theta)
            cov = sigma * sigma * (T @ T.T)
            sd = np.sqrt(np.diag(cov))
            for j, col in enumerate(t.columns):
                corr = ""
                if j > 0:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        r = cov[j, :j] / (sd[j] * sd[:j])
                    corr = " ".join(f"{v:5.2f}" for v in r)
                rows.append((t.group if j == 0 else "", col, f"{sd[j]:.4g}", corr))
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
        groups = ", ".join(f"{g}, {n}" for g, n in self._group_sizes().items())
        lines.append(f"Number of obs: {self.nobs}, groups:  {groups}")
        return [line.rstrip() for line in lines]

    def _group_sizes(self) -> dict[str, int]:
        return {t.group: t.nlevels for t in self.design.random.terms}

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

    def __repr__(self) -> str:
        fit = (f"      AIC       BIC    logLik  deviance  df.resid\n"
               f"{self.aic:9.4f} {self.bic:9.4f} {self.loglik:9.4f} {self.objective:9.4f} "
               f"{self.nobs - self.df:9d}")
        lines = [*self._title(), f"Formula: {self.formula}", fit,
                 *self._random_effects_lines(), *self._fixef_lines()]
        if not self.converged:
            lines.append(f"optimizer: not converged ({self.message})")
        if self.singular:
            lines.append("boundary (singular) fit: see fit.singular")
        return "\n".join(lines)

    __str__ = __repr__
