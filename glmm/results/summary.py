"""lme4's ``summary(fit)`` and its printout (lme4 R/lmer.R ``summary.merMod``,
``print.summary.merMod``, ``methTitle``, ``.prt.*``, ``formatVC``; docs/results.md §10).

Every block prints with digits = 4 (R's default ``max(3, getOption("digits") − 3)``):

    title (wrapped at 78 columns) [glmerMod]; Family; Formula; Weights and Offset (the
                                          columns named by the weights and offset arguments)
    AIC BIC logLik deviance df.resid      round(·, 1); deviance = −2·logLik
    Scaled residuals                      quantiles of the Pearson residuals / σ
    Random effects                        Groups, Name, Variance, Std.Dev., Corr
    Number of obs, groups
    Fixed effects                         printCoefmat, with significance stars
    Correlation of Fixed Effects          round(·, 3), names abbreviated (p ≤ 12)
    optimizer convergence code and the messages, where there are any

The ``Data:`` and ``Control:`` lines name R objects; a fit from a data frame has none, so they
are not printed (nor Weights and Offset where those arguments are arrays).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .rformat import (
    abbreviate,
    format_pval,
    format_real,
    print_matrix,
    print_named,
    strwrap,
    zapsmall,
)
from .varcorr import covariances, group_names

if TYPE_CHECKING:
    from .base import MixedModelFit

DIGITS = 4
#: lme4's ``lme4.summary.cor.max``
COR_MAX = 12


def _quantiles(x: np.ndarray) -> np.ndarray:
    """R's ``quantile`` (type 7) at 0, ¼, ½, ¾, 1."""
    return np.quantile(x, [0.0, 0.25, 0.5, 0.75, 1.0])


@dataclass(frozen=True, eq=False)
class Summary:
    """What ``summary(fit)`` holds; ``str()`` is lme4's printout."""

    title: list[str]
    formula: str
    aic: float
    bic: float
    loglik: float
    deviance: float
    df_resid: int
    scaled_residuals: np.ndarray
    varcorr: pd.DataFrame
    random_lines: list[str]
    ngroups: dict[str, int]
    nobs: int
    coefficients: pd.DataFrame
    correlation: pd.DataFrame
    messages: list[str]
    optimizer: str
    extra: dict[str, Any] = field(default_factory=dict)
    #: lme4's lines of the call after the formula: the weights and offset arguments by name
    call_lines: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, fit: MixedModelFit) -> Summary:
        coefs = fit.coef_table()
        V = fit.vcov().to_numpy()
        sd = np.sqrt(np.diag(V))
        corr = pd.DataFrame(V / np.outer(sd, sd), index=coefs.index, columns=coefs.index)
        res = np.asarray(fit.residuals("pearson"), dtype=float) / fit.sigma   # type: ignore[attr-defined]
        msgs = []
        checks = fit.optsummary.checks
        if fit.singular:
            msgs.append("boundary (singular) fit: see help('isSingular')")
        if checks is not None:   # lme4 prints a message once, also where H_ββ and H both trip
            msgs.extend(m for m in dict.fromkeys(checks.messages) if m not in msgs)
        if not fit.converged:
            msgs.append(f"the optimizer did not converge: {fit.message}")
        groups: dict[str, int] = {}
        for t in fit.design.random.terms:
            groups.setdefault(t.group, t.nlevels)
        d = fit.design
        call = [*([f"Weights: {d.weights_name}"] if d.weights_name else []),
                *([f" Offset: {d.offset_name}"] if d.offset_name else [])]
        return cls(fit._title(), fit.formula, fit.aic, fit.bic, fit.loglik, -2.0 * fit.loglik,
                   fit.nobs - fit.df, res, fit.varcorr(), _random_table(fit), groups,
                   fit.nobs, coefs, corr, msgs, fit.optsummary.optimizer, call_lines=call)

    # -- the printout ------------------------------------------------------------------------
    def _title_lines(self) -> list[str]:
        head, rest = self.title[0], self.title[1:]
        klass = "glmerMod"
        if len(head) + len(klass) > 80:
            wrapped = strwrap(head, 78, exdent=2)
            wrapped[-1] = f"{wrapped[-1]} [{klass}]"
        else:
            wrapped = [f"{head} ['{klass}']"]
        return [*wrapped, *rest]

    def _aic_lines(self) -> list[str]:
        vals = [round(v, 1) for v in (self.aic, self.bic, self.loglik, self.deviance)]
        f = format_real([*vals, float(self.df_resid)], 7)
        f[-1] = str(self.df_resid)
        return print_named(["AIC", "BIC", "logLik", "deviance", "df.resid"],
                           [s.strip() for s in f[:-1]] + [f[-1]])

    def _resid_lines(self) -> list[str]:
        q = zapsmall(_quantiles(self.scaled_residuals), DIGITS + 1)
        return ["Scaled residuals: ",
                *print_named(["Min", "1Q", "Median", "3Q", "Max"], format_real(q, DIGITS)), ""]

    def _coef_lines(self) -> list[str]:
        cf = self.coefficients
        cols = list(cf.columns)
        xm = cf.to_numpy(dtype=float).copy()
        cells = [[""] * len(cols) for _ in range(len(cf))]
        # printCoefmat(digits = 4) (lme4 1.1-31 passes no zap.ind): estimates and errors
        # together
        cs = xm[:, :2]
        acs = np.abs(cs[np.isfinite(cs) & (cs != 0)])
        digmin = 1 + (np.floor(np.log10([acs.min(), acs.max()])) if acs.size else np.zeros(2))
        rnd = int(max(1, *(DIGITS - digmin)))
        f = format_real(np.round(cs, rnd).ravel(order="F"), DIGITS)
        for j in range(2):
            for i in range(len(cf)):
                cells[i][j] = f[j * len(cf) + i]
        for i in range(len(cf)):   # entries that round to 0 but are not (x0 in printCoefmat)
            for j in range(2):
                if (xm[i, j] == 0) != (float(cells[i][j]) == 0):
                    cells[i][j] = format_real([xm[i, j]], DIGITS - 1)[0]
        dig_tst = max(1, min(5, DIGITS - 1))
        for i, s in enumerate(format_real(np.round(xm[:, 2], dig_tst), DIGITS)):
            cells[i][2] = s
        stars = None
        if len(cols) > 3:
            pv = xm[:, 3]
            for i, s in enumerate(format_pval(pv, dig_tst)):
                cells[i][3] = s
            if np.any(pv < 0.1):
                cut = [(0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."), (1.0, " ")]
                stars = [next(sym for c, sym in cut if p <= c) for p in pv]
                w = max(len(s) for s in stars)
                stars = [s.ljust(w) for s in stars]
        header = cols + ([""] if stars else [])
        if stars:
            for i in range(len(cf)):
                cells[i].append(stars[i])
        lines = print_matrix(cells, header, list(cf.index), right=True)
        if stars:
            lines += ["---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
        return lines

    def _corr_lines(self) -> list[str]:
        p = len(self.correlation)
        if p <= 1:
            return []
        if p > COR_MAX:
            return ["", f"Correlation matrix not shown by default, as p = {p} > {COR_MAX}."]
        rn = list(self.correlation.index)
        vals = format_real(np.round(self.correlation.to_numpy().ravel(), 3), 7, nsmall=3)
        C = np.array(vals, dtype=object).reshape(p, p)
        rows = abbreviate(rn, 11)
        cols = abbreviate(rn, 6)
        cells = [[C[i, j] if i > j else "" for j in range(p - 1)] for i in range(1, p)]
        return ["", "Correlation of Fixed Effects:",
                *print_matrix(cells, cols[:-1], rows[1:], right=False)]

    def __str__(self) -> str:
        groups = "; ".join(f"{g}, {n}" for g, n in self.ngroups.items())
        lines = [*self._title_lines(), f"Formula: {self.formula}", *self.call_lines, "",
                 *self._aic_lines(),
                 "", *self._resid_lines(), "Random effects:", *self.random_lines,
                 f"Number of obs: {self.nobs}, groups:  {groups}", "", "Fixed effects:",
                 *self._coef_lines(), *self._corr_lines()]
        if self.messages:
            # R's .prt.warn ends the block with a blank line
            lines += [f"optimizer ({self.optimizer}) convergence code: 0 (OK)",
                      *self.messages, ""]
        return "\n".join(lines)

    __repr__ = __str__

    def to_dict(self) -> dict[str, Any]:
        """The summary's numbers as plain Python values."""
        return {
            "title": list(self.title), "formula": self.formula,
            "AICtab": {"AIC": self.aic, "BIC": self.bic, "logLik": self.loglik,
                       "deviance": self.deviance, "df.resid": self.df_resid},
            "scaled_residuals": dict(zip(["Min", "1Q", "Median", "3Q", "Max"],
                                         _quantiles(self.scaled_residuals).tolist(),
                                         strict=True)),
            "varcorr": self.varcorr.to_dict(orient="records"),
            "ngrps": dict(self.ngroups), "nobs": self.nobs,
            "coefficients": {k: v for k, v in self.coefficients.to_dict(orient="index").items()},
            "correlation": self.correlation.to_numpy().tolist(),
            "messages": list(self.messages),
        }


def _random_table(fit: MixedModelFit) -> list[str]:
    """lme4's ``formatVC`` (Variance and Std.Dev., digits 4) printed as R prints it."""
    terms = fit.design.random.terms
    sigma = fit.sigma
    covs = covariances(terms, fit.evaluation.theta, sigma)
    names = group_names(terms)
    groups, cnames, sds, corr_rows = [], [], [], []
    for name, t, S in zip(names, terms, covs, strict=True):
        sd = np.sqrt(np.diag(S))
        for j, c in enumerate(t.columns):
            groups.append(name if j == 0 else "")
            cnames.append(c)
            sds.append(float(sd[j]))
        corr_rows.append((S / np.outer(sd, sd), t.ncols))
    if fit._has_residual:
        groups.append("Residual")
        cnames.append("")
        sds.append(sigma)
    var_f = format_real(np.square(sds), DIGITS)   # common width, as R's format()
    sd_f = format_real(sds, DIGITS)
    header = ["Groups", "Name", "Variance", "Std.Dev."]
    cells = [[g, c, v, s] for g, c, v, s in zip(groups, cnames, var_f, sd_f, strict=True)]
    maxlen = max(p for _, p in corr_rows)
    if maxlen > 1:
        dig = max(2, DIGITS - 2)
        block: list[list[str]] = []
        for R, p in corr_rows:
            cc = np.array(format_real(np.round(R, dig).ravel(), 7, nsmall=dig),
                          dtype=object).reshape(p, p)
            for i in range(p):
                block.append([cc[i, j] if i > j else "" for j in range(maxlen - 1)])
        while len(block) < len(cells):
            block.append([""] * (maxlen - 1))
        header += ["Corr"] + [""] * (maxlen - 2)
        cells = [row + extra for row, extra in zip(cells, block, strict=True)]
    return print_matrix(cells, header, [""] * len(cells), right=False)
