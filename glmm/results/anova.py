"""Likelihood-ratio tests between fits, as lme4's ``anova.merMod`` with several models
(lme4 R/lmer.R ``anovaLmer``; docs/results.md §9).

The fits are sorted by npar (their df: p + len(θ), +1 for a scale; ties keep their order);
for consecutive rows i−1, i:

    Chisq = max(0, 2·(logLikᵢ − logLikᵢ₋₁)),   Df = nparᵢ − nparᵢ₋₁,   Pr(>Chisq) = P(χ²_Df > Chisq)

with deviance = −2·logLik.  lme4 refuses fits to datasets of different sizes and fits to
different data objects; glmm compares the data themselves (the response, the prior weights
and the rows used).  lme4 does not check that the fits are nested; glmm refuses, by default,
consecutive fits that are not: the smaller's fixed-effects columns and random-effects terms
must be among the larger's, with the same family and link (``nested=False`` skips this, as
lme4 does).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pandas as pd

from ..errors import ArgumentError, ArgumentTypeError, RefitMLWarning
from .base import MixedModelFit


def _same_data(a: MixedModelFit, b: MixedModelFit) -> bool:
    da, db = a.design, b.design
    ra, rb = np.asarray(da.response, dtype=object), np.asarray(db.response, dtype=object)
    return (da.na_action == db.na_action and ra.shape == rb.shape and bool(np.all(ra == rb))
            and np.array_equal(da.weights, db.weights))


def _terms(fit: MixedModelFit) -> set[tuple[str, str]]:
    return {(t.group, c) for t in fit.design.random.terms for c in t.columns}


def _nested_problem(small: MixedModelFit, big: MixedModelFit, ns: str, nb: str) -> str | None:
    fs, fb = getattr(small, "family", None), getattr(big, "family", None)
    if (fs is None) != (fb is None):
        return f"{ns} and {nb} are not both GLMMs or both LMMs"
    if fs is not None and fb is not None and (fs.name, fs.link.name) != (fb.name,
                                                                         fb.link.name):
        return (f"{ns} ({fs.name}, {fs.link.name}) and {nb} ({fb.name}, {fb.link.name}) have "
                f"different families or links")
    extra = [c for c in small.fixef_names if c not in big.fixef_names]
    if extra:
        return f"{ns} has fixed effects {extra} that {nb} does not have"
    missing = sorted(_terms(small) - _terms(big))
    if missing:
        shown = ", ".join(f"{c} | {g}" for g, c in missing)
        return f"{ns} has random effects ({shown}) that {nb} does not have"
    return None


def anova(*fits: MixedModelFit, names: Sequence[str] | None = None,
          nested: bool = True, refit: bool = True) -> pd.DataFrame:
    """lme4's ``anova(fit0, fit1, …)`` table: npar, AIC, BIC, logLik, deviance, Chisq, Df,
    Pr(>Chisq), one row per fit named by ``names`` (default "fit0", "fit1", …).  LMMs fitted
    by REML are refitted by ML first (``refit``, lme4's default), with lme4's message as a
    :class:`~glmm.RefitMLWarning`."""
    if len(fits) < 2:
        raise ArgumentError("anova needs at least two fits to compare")
    for f in fits:
        if not isinstance(f, MixedModelFit):
            raise ArgumentTypeError(f"anova compares fitted models, got {type(f).__name__}")
    if refit:
        ml = tuple(f._for_anova() for f in fits)
        if any(a is not b for a, b in zip(ml, fits, strict=True)):
            warnings.warn("refitting model(s) with ML (instead of REML)", RefitMLWarning,
                          stacklevel=2)
        fits = ml
    labels = list(names) if names is not None else [f"fit{i}" for i in range(len(fits))]
    if len(labels) != len(fits):
        raise ArgumentError(f"names has {len(labels)} entries for {len(fits)} fits")
    nobs = {f.nobs for f in fits}
    if len(nobs) > 1:
        raise ArgumentError(f"models were not all fitted to the same size of dataset "
                            f"(numbers of observations: {[f.nobs for f in fits]})")
    for lab, f in zip(labels[1:], fits[1:], strict=True):
        if not _same_data(fits[0], f):
            raise ArgumentError(f"all models must be fit to the same data: {lab} has a "
                                f"different response, prior weights or rows than {labels[0]}")
    order = sorted(range(len(fits)), key=lambda i: fits[i].df)   # stable: ties keep order
    if nested:
        for a, b in pairwise(order):
            why = _nested_problem(fits[a], fits[b], labels[a], labels[b])
            if why is not None:
                raise ArgumentError(f"models are not nested: {why} (lme4 compares them "
                                    f"anyway; pass nested=False to do so)")
    from scipy.special import chdtrc  # scipy.special on first use: a slow import

    rows = []
    prev = None
    for i in order:
        f = fits[i]
        ll = f.loglik
        chisq = df = p = math.nan
        if prev is not None:
            chisq = max(0.0, 2.0 * (ll - prev.loglik))
            df = f.df - prev.df
            p = float(chdtrc(df, chisq)) if df > 0 else math.nan   # scipy's chi2.sf
        rows.append((labels[i], f.df, f.aic, f.bic, ll, -2.0 * ll, chisq, df, p))
        prev = f
    out = pd.DataFrame(rows, columns=["model", "npar", "AIC", "BIC", "logLik", "deviance",
                                      "Chisq", "Df", "Pr(>Chisq)"]).set_index("model")
    out.index.name = None
    return out
