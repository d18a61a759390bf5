"""Hard models and responses that lme4 refuses: each is fitted as lme4 fits it, or refused with
a typed error, never returned as a quietly wrong fit.

Reference numbers come from lme4 1.1-31 (R 4.2.2) with the harness's tight control,
``glmerControl(optimizer = c("bobyqa", "bobyqa"), tolPwrss = 1e-13, optCtrl = list(rhoend =
1e-10, maxfun = 100000L))``, run on the data frames written here; the R lines are beside them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmm
from parity.compare import PROBE_OBJECTIVE, TIGHT_OBJECTIVE, TIGHT_PARAMETER

#: d <- data.frame(g = factor(rep(1:8, each = 6)), x = rep(c(-1, -0.5, 0, 0.3, 0.7, 1.2), 8),
#:                 y = <Y01 below>)
Y01 = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1,
       1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0]


def poisson01() -> pd.DataFrame:
    return pd.DataFrame({"g": pd.Categorical(np.repeat(np.arange(1, 9), 6)),
                         "x": np.tile([-1, -0.5, 0, 0.3, 0.7, 1.2], 8),
                         "y": np.asarray(Y01, dtype=float)})


#: glmer(y ~ x + (1 | g), d, family = poisson, nAGQ = k, control = tight):
#: nAGQ -> (−2logLik, AIC, BIC, θ)
POISSON01_LME4 = {
    0: (74.2053761745, 80.2053761745, 85.8189792072, 0.15793209),
    1: (74.2021483104, 80.2021483104, 85.8157513431, 0.17133994),
    3: (30.2053737666, 36.2053737666, 41.8189767993, 0.15794414),
}


@pytest.mark.parametrize("nAGQ", sorted(POISSON01_LME4))
def test_poisson_response_of_zeros_and_ones_keeps_its_constants(nAGQ: int) -> None:
    """A Poisson y that happens to be 0/1 is still Poisson: A − Σdev = 2Σw·y, not 0 (that
    shortcut holds for binomial only)."""
    m2ll, aic, bic, theta = POISSON01_LME4[nAGQ]
    fit = glmm.glmer("y ~ x + (1 | g)", poisson01(), family="poisson", nAGQ=nAGQ)
    # the harness's tight tier: −2logLik within 1e-6 (+1e-10 relative), θ within 1e-4
    assert fit.objective == pytest.approx(m2ll, abs=1e-6)
    assert fit.aic == pytest.approx(aic, abs=1e-6)
    assert fit.bic == pytest.approx(bic, abs=1e-6)
    assert fit.theta[0] == pytest.approx(theta, abs=1e-4)
    if nAGQ > 1:
        # lme4 reports the quadrature objective without the constants; with them it is the
        # Laplace-scale −2logLik: lme4's value plus 2Σy = 44 exactly
        assert -2.0 * fit.loglik_absolute == pytest.approx(m2ll + 2.0 * sum(Y01), abs=1e-6)


# -- reproductions of random problems (tests/data/repro/README.md) ------------------------------
REPRO = Path(__file__).parent / "data" / "repro"


def repro(name: str) -> tuple[dict, pd.DataFrame]:
    doc = json.loads((REPRO / f"{name}.json").read_text())
    cols = {k: pd.Categorical(v["values"], categories=v["levels"]) if v["factor"]
            else np.asarray(v["values"], dtype=float) for k, v in doc["columns"].items()}
    return doc, pd.DataFrame(cols)


def assert_tight(fit: glmm.GlmerFit, tight: dict) -> None:
    """The harness's tight tier (parity.compare): −2logLik, fixef and θ."""
    ref = np.asarray(tight["m2loglik"])
    assert abs(fit.objective - ref) <= TIGHT_OBJECTIVE.bound(ref)
    for got, want in ((fit.fixef.to_numpy(), list(tight["fixef"].values())),
                      (fit.theta, np.atleast_1d(tight["theta"]))):
        want = np.asarray(want, dtype=float)
        assert np.all(np.abs(got - want) <= TIGHT_PARAMETER.bound(want)), (got, want)


@pytest.mark.parametrize("name, nAGQ", [("poisson_sqrt_wrong_mode", 1),
                                         ("poisson_sqrt_wrong_mode", 3),
                                         ("poisson_sqrt_two_modes_weighted", 1),
                                         ("poisson_sqrt_crossed_linear_rate", 1)])
def test_several_modes_fit_as_lme4_and_devfun_is_pure(name: str, nAGQ: int) -> None:
    """Poisson sqrt: μ = η² is even in η, so the penalized deviance can have a mode on each
    side of η = 0.  Every evaluation starts PIRLS as lme4's does, from one stored linear
    predictor, so the fit reaches lme4's optimum and devfun gives lme4's values whatever was
    evaluated before."""
    doc, df = repro(name)
    ref = doc["fits"][str(nAGQ)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", glmm.GlmmWarning)
        # lme4 says "boundary (singular) fit" only as a message
        warnings.simplefilter("ignore", glmm.SingularFitWarning)
        fit = glmm.glmer(doc["formula"], df, family=glmm.poisson(link="sqrt"), nAGQ=nAGQ,
                         weights=doc.get("weights"))
    assert_tight(fit, ref["tight"])
    values = []
    for probe in ref["probes"] * 2:   # each probe after the other: a long step between them
        params = np.atleast_1d(probe["params"])
        got = fit.devfun(params)
        assert abs(got - probe["value"]) <= PROBE_OBJECTIVE.bound(np.asarray(probe["value"]))
        values.append(got)
    assert values[:len(ref["probes"])] == values[len(ref["probes"]):]


def test_theta_leaving_a_maximum_at_zero() -> None:
    """nAGQ = 0: F₀ is even in θ, so θ = 0 is stationary; here it is a maximum along θ (the
    optimum is at θ = 0.032), and the fit must not stop there as a singular fit."""
    doc, df = repro("poisson_log_nagq0_theta0")
    with warnings.catch_warnings():
        warnings.simplefilter("error", glmm.GlmmWarning)
        fit = glmm.glmer(doc["formula"], df, family="poisson", nAGQ=0)
    assert not fit.singular
    assert_tight(fit, doc["fits"]["0"]["tight"])


# -- responses and models lme4 refuses ------------------------------------------------------
def simulated(y: np.ndarray | None = None, seed: int = 1) -> pd.DataFrame:
    """100 rows in 10 groups, x standard normal; y given or Poisson with mean 2."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=100)
    return pd.DataFrame({"g": pd.Categorical(np.repeat(np.arange(10), 10)), "x": x,
                         "y": rng.poisson(2.0, size=100).astype(float) if y is None else y})


@pytest.mark.parametrize(("formula", "family", "value"), [
    ("y ~ x + (1 | g)", "poisson", 0.0), ("y ~ x + (1 | g)", "poisson", 3.0),
    ("y ~ x + (1 | g)", "binomial", 1.0), ("y ~ x + (1 | g)", "binomial", 0.0),
    ("cbind(y, 4 - y) ~ x + (1 | g)", "binomial", 1.0)])
def test_constant_response_is_refused_as_lme4(formula: str, family: str, value: float) -> None:
    """lme4: "Response is constant" (checkResponse, on the proportions for cbind)."""
    with pytest.raises(glmm.ResponseError, match="Response is constant"):
        glmm.glmer(formula, simulated(np.full(100, value)), family=family)


def test_non_integer_poisson_response_is_refused() -> None:
    """lme4 warns "non-integer x" and returns −2logLik = +inf with θ at its start."""
    df = simulated()
    df.loc[3, "y"] = 2.5
    with pytest.raises(glmm.ResponseError, match=r"non-integer counts .* y\[3\] = 2.5"):
        glmm.glmer("y ~ x + (1 | g)", df, family="poisson")


def test_near_integer_poisson_response_is_rounded_as_r() -> None:
    """R's dpois rounds a y within 1e-7·max(1, y) of an integer: the same fit as rounded."""
    df = simulated()
    exact = glmm.glmer("y ~ x + (1 | g)", df, family="poisson")
    df["y"] = df["y"] * (1 + 1e-12)
    near = glmm.glmer("y ~ x + (1 | g)", df, family="poisson")
    # y moved by ≤ 1e-11: the objective by about Σ|∂F/∂y|·1e-11 ≈ 1e-9
    assert near.objective == pytest.approx(exact.objective, abs=1e-8)


@pytest.mark.parametrize("nAGQ", [0, 1])
def test_complete_separation_is_refused(nAGQ: int) -> None:
    """y = (x > 0): lme4 stops with "pwrssUpdate did not converge in (maxit) iterations"."""
    df = simulated()
    df["y"] = (df["x"] > 0).astype(float)
    with pytest.raises(glmm.SeparationError, match=r"complete separation: .*\(Intercept\), x"):
        glmm.glmer("y ~ x + (1 | g)", df, family="binomial", nAGQ=nAGQ)


def test_quasi_complete_separation_warns_and_is_not_converged() -> None:
    """cbpp with no incidence in period 4: period4's coefficient runs off to −∞.  lme4 returns
    −2logLik 161.1070181784 (period4 −24.1) with a scale warning; the fit here is lower on the
    same objective, names the column and is not reported as converged."""
    from parity import fixtures
    df = fixtures.load("cbpp").data.to_pandas()
    df["inc"] = df["incidence"].where(df["period"] != "4", 0)
    with pytest.warns(glmm.SeparationWarning, match="quasi-complete separation.*period4"):
        fit = glmm.glmer("cbind(inc, size - inc) ~ period + (1 | herd)", df, family="binomial")
    assert not fit.converged and "period4" in fit.message
    assert fit.objective <= 161.1070181784
    assert fit.fixef["period4"] < -20


def test_identity_link_leaving_its_domain_is_a_typed_error() -> None:
    """Poisson identity where the GLM's first step gives μ < 0: glm.fit says "no valid set of
    coefficients has been found", lme4 "PIRLS loop resulted in NaN value"."""
    rng = np.random.default_rng(1)
    df = simulated()
    df["y"] = rng.poisson(np.maximum(0.05, 1 + 2 * df["x"])).astype(float)
    with pytest.raises(glmm.OptimizationError, match="no valid set of coefficients"):
        glmm.glmer("y ~ x + (1 | g)", df, family=glmm.poisson(link="identity"))


def test_huge_counts_are_a_typed_error_naming_the_scale() -> None:
    """Counts near 1e15: lme4 stops with "Downdated VtV is not positive definite"."""
    df = simulated()
    df["y"] = np.round(1e15 * np.exp(df["x"] / 10))
    with pytest.raises(glmm.OptimizationError, match="counts this large"):
        glmm.glmer("y ~ x + (1 | g)", df, family="poisson")


def test_theta_that_never_moves_is_not_converged() -> None:
    """(0 + z | g) with z = 0 everywhere: Z = 0, F does not depend on θ, and θ stays at its
    start; that is no optimum."""
    df = simulated()
    df["z"] = 0.0
    with pytest.warns(glmm.ConvergenceWarning, match="θ did not move from its start"):
        fit = glmm.glmer("y ~ x + (0 + z | g)", df, family="poisson")
    assert not fit.converged


def test_fitted_values_near_zero_without_separation_fit_as_usual() -> None:
    """μ < 1e-5 at some zero counts (a large negative offset there) makes the separation check
    run; it finds no separating direction, and the fit is the regular one."""
    df = simulated()
    df["o"] = 0.0
    zeros = np.flatnonzero(df["y"].to_numpy() == 0)[:5]
    df.loc[zeros, "o"] = -20.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", glmm.GlmmWarning)
        fit = glmm.glmer("y ~ x + (1 | g)", df, family="poisson", offset="o")
    assert fit.converged
    assert fit.evaluation.state.mu[zeros].max() < glmm.optimize.separation.SUSPECT_MU


def test_quasi_separation_that_stops_pirls_at_the_start_is_named() -> None:
    """A crossed binary model at nAGQ = 0 whose factor level zc has only y = 0 (a random
    problem drawn against lme4, tests/test_random_parity.py's FOUND): joint PIRLS follows
    β_zc off to −∞ at the start; the error names the separation, not only PIRLS."""
    from parity.random_problems import Problem

    problem = Problem(
        family="binomial", link="logit", response="binary", structure="crossed", levels=(3, 3),
        rows=96, factor_covariate=True, intercept=-2.0, slope=0.7, sd=(0.15, 0.0), corr=0.0,
        weights="none", offset="argument", shape=0.0, nAGQ=0, seed=479737)
    df = problem.dataset().to_pandas()
    with pytest.raises(glmm.SeparationError, match=r"quasi-complete separation.*zc"):
        glmm.glmer(problem.formula, df, family="binomial", nAGQ=0,
                   offset=df[problem.offset_column].to_numpy())
