"""Separation: fixed effects that predict the response exactly, so that no finite optimum exists.

For a binomial response under a link whose inverse runs from 0 to 1 (logit, probit, cloglog,
cauchit), and a Poisson response under the log link, let each observation with a positive
prior weight have the sign

    sᵢ = +1 where yᵢ = 1 (binomial: the upper end),  −1 where yᵢ = 0,  0 otherwise.

If a direction d ≠ 0 of β has sᵢ xᵢᵀd ≥ 0 wherever sᵢ ≠ 0 and xᵢᵀd = 0 wherever sᵢ = 0,
with at least one strict inequality, then moving β along d raises p(y | u, β) for every u at
once, so the likelihood (and the Laplace and quadrature approximations of it) keeps rising as
β → ∞ along d: the maximum is not attained.  Such a d exists exactly when the linear program

    maximise Σ sᵢ xᵢᵀd   subject to   sᵢ xᵢᵀd ≥ 0 (sᵢ ≠ 0),  xᵢᵀd = 0 (sᵢ = 0),  −1 ≤ d ≤ 1

has a positive optimum (Albert and Anderson, 1984; Konis, 2007).  It is *complete* when every
observation is at an end of the range and strictly predicted (the fit's −2logLik then goes to
0), *quasi-complete* otherwise.  lme4 has no such check: it stops with "pwrssUpdate did not
converge" or returns the point where its optimiser stopped.  scipy's HiGHS solves the program;
it runs only when a fit shows fitted values at the end of the range (:func:`suspect`), so
regular fits pay for one pass over μ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..families import Family

#: The links under which μ reaches the end of the family's range only as η → ±∞.
SEPARABLE = {"binomial": ("logit", "probit", "cloglog", "cauchit"), "poisson": ("log",)}
#: A fitted μ this close to 0 (or to 1 for binomial) at an observation that sits there
#: makes the check run.  An optimiser stopped by a gradient test of ~1e-6 leaves the μ of
#: the separated observations at about that size, not at the clamps of the families.
SUSPECT_MU = 1e-5


@dataclass(frozen=True, eq=False)
class Separation:
    """A direction d of β along which the likelihood rises without bound."""

    direction: np.ndarray
    columns: tuple[str, ...]      # the columns of X with a non-zero entry of d
    predicted: int                # observations predicted exactly (sᵢ xᵢᵀd > 0)
    complete: bool

    def describe(self) -> str:
        kind = "complete" if self.complete else "quasi-complete"
        cols = ", ".join(self.columns)
        return (f"{kind} separation: the fixed effects {cols} predict the response exactly "
                f"at {self.predicted} observations, so the likelihood rises without bound as "
                "these coefficients run off to ±∞ and no finite estimate exists")


def signs(family: Family, y: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """sᵢ of each observation (0 for zero weights, which drop out), or None when separation
    cannot arise under this family and link."""
    if family.link.name not in SEPARABLE.get(family.name, ()):
        return None
    s = np.where(y == 0.0, -1, 0)
    if family.name == "binomial":
        s = np.where(y == 1.0, 1, s)
    return np.where(weights > 0, s, 0).astype(np.int8)


def suspect(family: Family, y: np.ndarray, weights: np.ndarray, mu: np.ndarray) -> bool:
    """Whether the fitted μ look separated: some observation at an end of the range with its
    μ within SUSPECT_MU of that end."""
    if family.link.name not in SEPARABLE.get(family.name, ()):
        return False
    ends = [(mu < SUSPECT_MU, 0.0)]
    if family.name == "binomial":
        ends.append((mu > 1.0 - SUSPECT_MU, 1.0))
    # the μ test alone first: it is almost always False everywhere
    return any(bool(near.any()) and bool((near & (y == end) & (weights > 0)).any())
               for near, end in ends)


def find_separation(family: Family, y: np.ndarray, weights: np.ndarray, X: np.ndarray,
                    names: tuple[str, ...]) -> Separation | None:
    """The separating direction of the linear program above, or None when there is none."""
    s = signs(family, y, weights)
    if s is None or X.shape[1] == 0:
        return None
    from scipy.optimize import linprog  # only when a fit is suspect: a 0.1 s import

    on_end = s != 0
    inside = (weights > 0) & ~on_end
    # identical rows give identical constraints
    A = np.unique(s[on_end, None] * X[on_end], axis=0)
    E = np.unique(X[inside], axis=0)
    scale = max(1.0, float(np.abs(X).max()))
    res = linprog(-(s[on_end] @ X[on_end]) / scale, A_ub=-A / scale, b_ub=np.zeros(len(A)),
                  A_eq=E / scale if len(E) else None, b_eq=np.zeros(len(E)) if len(E) else None,
                  bounds=(-1.0, 1.0), method="highs")
    if res.status != 0 or -res.fun <= 1e-9 * max(1, on_end.sum()):
        return None
    d = np.asarray(res.x, dtype=float)
    if not inside.any():
        # complete when some d has every margin sᵢxᵢᵀd ≥ t > 0: maximise t over (d, t)
        k = X.shape[1]
        res2 = linprog(np.r_[np.zeros(k), -1.0], A_ub=np.c_[-A / scale, np.ones(len(A))],
                       b_ub=np.zeros(len(A)), bounds=[(-1.0, 1.0)] * k + [(0.0, 1.0)],
                       method="highs")
        if res2.status == 0 and -res2.fun > 1e-9:
            d = np.asarray(res2.x[:k], dtype=float)
    d[np.abs(d) < 1e-9] = 0.0
    margin = (s * (X @ d))[on_end]
    tol = 1e-9 * np.abs(X[on_end]).sum(axis=1)
    predicted = int((margin > tol).sum())
    if predicted == 0:
        return None
    complete = predicted == int(on_end.sum()) and not inside.any()
    return Separation(d, tuple(nm for nm, dj in zip(names, d, strict=True) if dj != 0.0),
                      predicted, complete)
