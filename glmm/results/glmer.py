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
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import ArgumentError, ArgumentTypeError
from ..families import Family
from ..objectives.base import Evaluation, ObjectiveFunction
from ..objectives.model import GlmerModel


@dataclass(frozen=True)
class RanefLayout:
    """How u maps to ``ranef()``: per grouping factor, its level labels and, per term, the
    columns it contributes (terms that share a factor are bound side by side)."""

    groups: tuple[tuple[str, tuple[str, ...]], ...]            # (group, levels)
    term_group: tuple[str, ...]                                # group of each term
    term_columns: tuple[tuple[str, ...], ...]                  # cnms of each term


@dataclass(frozen=True)
class GlmerFit:
    formula: str
    family: Family
    nAGQ: int
    fixef_names: tuple[str, ...]
    theta: np.ndarray
    theta_names: tuple[str, ...]
    lower: np.ndarray
    evaluation: Evaluation
    model: GlmerModel = field(repr=False)
    objective_fn: ObjectiveFunction = field(repr=False)
    layout: RanefLayout = field(repr=False)
    converged: bool = True
    message: str = ""
    feval: int = 0
    dropped: tuple[str, ...] = ()
    #: positions in ``data`` of the rows dropped for a missing value in a variable of the
    #: model, the weights or the offset (lme4's ``na.action(fit)``, there 1-based)
    na_action: tuple[int, ...] = ()

    # -- lme4's scalar summaries -----------------------------------------------------------
    @property
    def objective(self) -> float:
        return float(self.evaluation.objective)

    @property
    def deviance(self) -> float:
        return float(self.evaluation.drsum)

    @property
    def loglik(self) -> float:
        return -0.5 * self.objective

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
    def nobs(self) -> int:
        return self.model.n

    @property
    def n_omitted(self) -> int:
        """How many rows of ``data`` were dropped for missing values (``na_action``)."""
        return len(self.na_action)

    @property
    def aic(self) -> float:
        return self.objective + 2.0 * self.df

    @property
    def bic(self) -> float:
        return self.objective + math.log(self.nobs) * self.df

    @property
    def sigma(self) -> float:
        if not self.family.scaled:
            return 1.0
        m, st = self.model, self.evaluation.state
        wrss = float(np.sum(m.weights * (m.y - st.mu) ** 2 / m.family.variance(st.mu)))
        return math.sqrt((wrss + st.ussq) / m.n)

    @property
    def singular(self) -> bool:
        """lme4's isSingular: a θ entry with lower bound 0 within 1e-4 of it."""
        on_bound = np.isfinite(self.lower) & (self.theta - self.lower < 1e-4)
        return bool(np.any(on_bound))

    # -- modes -----------------------------------------------------------------------------
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
        return self.evaluation.b

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes b per grouping factor: levels × columns, as lme4's ranef()."""
        return ranef_tables(self.model, self.layout, self.theta, self.u)

    # -- the objective as a function ---------------------------------------------------------
    def devfun(self, params: Sequence[float]) -> float:
        """The converged objective at params: θ for nAGQ = 0 (β profiled), (θ, β) otherwise."""
        return self.objective_fn(self._params(params))

    def evaluate(self, params: Sequence[float]) -> Evaluation:
        """Like devfun, with the conditional modes and the pieces of the objective."""
        return self.objective_fn.evaluate(self._params(params))

    def _params(self, params: Sequence[float]) -> np.ndarray:
        """``params`` as the objective's parameter vector, or a typed error naming it."""
        what = "θ" if self.nAGQ == 0 else "(θ, β)"
        k = self.objective_fn.nparams
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


def ranef_tables(model: GlmerModel, layout: RanefLayout, theta: np.ndarray,
                 u: np.ndarray) -> dict[str, pd.DataFrame]:
    parts: dict[str, list[pd.DataFrame]] = {g: [] for g, _ in layout.groups}
    levels = dict(layout.groups)
    for t, ub, g, cols in zip(model.terms, model.u_blocks(u), layout.term_group,
                              layout.term_columns, strict=True):
        b = ub @ t.T(theta).T
        parts[g].append(pd.DataFrame(b, index=pd.Index(levels[g]), columns=list(cols)))
    return {g: pd.concat(dfs, axis=1) for g, dfs in parts.items()}
