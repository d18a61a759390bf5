"""The variance components, as lme4's ``VarCorr`` and ``as.data.frame(VarCorr(fit))``
(lme4 R/lmer.R ``mkVarCorr``, ``as.data.frame.VarCorr.merMod``; docs/results.md §4).

Per term t with Tₜ = Tₜ(θ̂) (lower triangular, filled column-major from θ):

    Σₜ = σ²·TₜTₜᵀ,   sdⱼ = √Σₜ[j, j],   corr[i, j] = Σₜ[i, j] / (sdᵢ sdⱼ)

σ is ``sigma()``: 1 for binomial and Poisson, √(pwrss/n) for Gamma and the inverse Gaussian
(where lme4 scales the variances by σ² although b = Λu is not scaled: lme4 2.0 calls this a
bug; glmm keeps lme4 1.1-31's numbers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..design.random import RandomTerm


def group_names(terms: Sequence[RandomTerm]) -> list[str]:
    """The names of the terms' blocks: the grouping factors, made unique by R's
    ``make.names(unique = TRUE)`` where one factor has several terms ("Subject",
    "Subject.1"), as lme4's mkVarCorr does (only then)."""
    names = [t.group for t in terms]
    if len(set(names)) == len(names):
        return names
    clean = [re.sub(r"[^A-Za-z0-9._]", ".", n) for n in names]
    seen: dict[str, int] = {}
    out = []
    taken = set(clean)
    for n in clean:
        if n not in seen:
            seen[n] = 0
            out.append(n)
            continue
        k = seen[n]
        while True:   # R's make.unique: n.1, n.2, …, skipping names already taken
            k += 1
            cand = f"{n}.{k}"
            if cand not in taken:
                break
        seen[n] = k
        taken.add(cand)
        out.append(cand)
    return out


def covariances(terms: Sequence[RandomTerm], theta: np.ndarray, sigma: float
                ) -> list[np.ndarray]:
    """Σₜ = σ²·TₜTₜᵀ per term."""
    out = []
    for t in terms:
        T = t.T(theta)
        out.append(sigma * sigma * (T @ T.T))
    return out


def varcorr_frame(terms: Sequence[RandomTerm], theta: np.ndarray, sigma: float,
                  residual: bool) -> pd.DataFrame:
    """lme4's ``as.data.frame(VarCorr(fit))``: per term the variances (var2 missing, sdcor =
    the standard deviation), then the covariances in column-major lower-triangle order (var1
    the column's name, var2 the row's, sdcor the correlation); a last row "Residual" with σ²
    and σ where the family has a scale."""
    rows: list[tuple[str, str | None, str | None, float, float]] = []
    for name, t, S in zip(group_names(terms), terms, covariances(terms, theta, sigma),
                          strict=True):
        sd = np.sqrt(np.diag(S))
        cols = t.columns
        for j, c in enumerate(cols):
            rows.append((name, c, None, float(S[j, j]), float(sd[j])))
        for j in range(len(cols)):
            for i in range(j + 1, len(cols)):
                with np.errstate(invalid="ignore", divide="ignore"):
                    r = S[i, j] / (sd[i] * sd[j])
                rows.append((name, cols[j], cols[i], float(S[i, j]), float(r)))
    if residual:
        rows.append(("Residual", None, None, sigma * sigma, sigma))
    return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
