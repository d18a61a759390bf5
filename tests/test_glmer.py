"""glmm.glmer as a user calls it: the API, response forms, errors and accessors.

Numbers come from lme4 (the fixtures, or tests/data/lme4-reference-values.md where cited by
number); the parity suite (test_parity.py) compares every corpus case quantity by quantity."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import glmm
from parity import fixtures

CBIND = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return fixtures.load("cbpp").data.to_pandas()


@pytest.fixture(scope="module")
def cbpp_fit(cbpp):
    return glmm.glmer(CBIND, cbpp, family=glmm.binomial(), nAGQ=1)


def test_accessor_types_and_names(cbpp_fit) -> None:
    f = cbpp_fit
    assert isinstance(f.fixef, pd.Series)
    assert list(f.fixef.index) == ["(Intercept)", "period2", "period3", "period4"]
    assert isinstance(f.theta, np.ndarray) and f.theta_names == ("herd.(Intercept)",)
    assert list(f.ranef) == ["herd"]
    herd = f.ranef["herd"]
    assert list(herd.columns) == ["(Intercept)"] and list(herd.index[:3]) == ["1", "2", "3"]
    assert (f.df, f.nobs, f.sigma) == (5, 56, 1.0)
    assert f.aic == pytest.approx(f.objective + 10) and f.loglik == pytest.approx(-f.objective / 2)
    assert f.bic == pytest.approx(f.objective + np.log(56) * 5)
    np.testing.assert_allclose(f.ranef["herd"].to_numpy().ravel(), f.b)


def test_devfun_takes_lme4_parameter_vectors(cbpp_fit, cbpp) -> None:
    # tests/data/lme4-reference-values.md #5: converged Laplace at θ=1, β=(-1.4,-1,-1.1,-1.6)
    assert cbpp_fit.devfun([1, -1.4, -1, -1.1, -1.6]) == pytest.approx(186.726638820616,
                                                                      abs=1e-8)
    f0 = glmm.glmer(CBIND, cbpp, family="binomial", nAGQ=0)
    # #7: nAGQ=0 objective at θ=1 with β profiled, and its β̃
    ev = f0.evaluate([1.0])
    assert ev.objective == pytest.approx(186.723145113705, abs=1e-8)
    np.testing.assert_allclose(ev.beta, [-1.404588623004, -0.934934109789, -1.071227380689,
                                         -1.512466025918], atol=1e-9)
    with pytest.raises(ValueError, match=r"expected 1 parameters θ, got 5"):
        f0.devfun([1, -1.4, -1, -1.1, -1.6])


def test_agq_loglik_mirrors_lme4_and_offers_absolute(cbpp) -> None:
    f = glmm.glmer(CBIND, cbpp, family="binomial", nAGQ=25)
    assert f.loglik == pytest.approx(-f.objective / 2)
    # #10: for cbpp, A(μ) − Σdev(μ) = 83.9567075379, the constants nAGQ > 1 leaves out
    assert -2 * f.loglik_absolute - f.objective == pytest.approx(83.9567075379, abs=1e-8)


def test_binomial_response_forms_agree(cbpp) -> None:
    cb = glmm.glmer(CBIND, cbpp, family="binomial")
    prop = glmm.glmer("prop ~ period + (1 | herd)", cbpp, family="binomial", weights="size")
    arr = glmm.glmer("prop ~ period + (1 | herd)", cbpp, family="binomial",
                     weights=cbpp["size"].to_numpy(dtype=float))
    # lme4-reference-values.md: the proportion + weights and cbind forms give identical fits
    assert prop.objective == pytest.approx(cb.objective, abs=1e-9)
    assert arr.objective == pytest.approx(prop.objective, abs=1e-12)


def test_factor_logical_and_numeric_01_responses_agree() -> None:
    bact = fixtures.load("bacteria").data.to_pandas()
    f_factor = glmm.glmer("y ~ trt + (1 | ID)", bact, family="binomial")
    df = bact.assign(yl=bact["y"] == "y", y01=(bact["y"] == "y").astype(float))
    f_bool = glmm.glmer("yl ~ trt + (1 | ID)", df, family="binomial")
    f_num = glmm.glmer("y01 ~ trt + (1 | ID)", df, family="binomial")
    assert f_bool.objective == pytest.approx(f_factor.objective, abs=1e-9)
    assert f_num.objective == pytest.approx(f_factor.objective, abs=1e-9)


def test_offset_argument_equals_offset_term() -> None:
    mm = fixtures.load("mmmec").data.to_pandas()
    term = glmm.glmer("deaths ~ uvb + (1 | region) + offset(log(expected))", mm, "poisson")
    arg = glmm.glmer("deaths ~ uvb + (1 | region)", mm, "poisson",
                     offset=np.log(mm["expected"].to_numpy()))
    assert arg.objective == pytest.approx(term.objective, abs=1e-9)


def test_agq_refused_like_lme4() -> None:
    sleep = fixtures.load("sleepstudy-gamma").data.to_pandas()
    with pytest.raises(glmm.AGQNotAvailableError,
                       match="nAGQ > 1 is only available for models with a single, scalar"):
        glmm.glmer("Reaction ~ Days + (Days | Subject)", sleep, glmm.Gamma(link="log"), nAGQ=3)


@pytest.mark.parametrize(("bad", "error"), [(-1, glmm.ArgumentError), (101, glmm.ArgumentError),
                                            (1.5, glmm.ArgumentTypeError),
                                            (True, glmm.ArgumentTypeError),
                                            ("1", glmm.ArgumentTypeError)])
def test_bad_nagq(cbpp, bad, error) -> None:
    with pytest.raises(error, match="nAGQ must be an integer between 0 and 100"):
        glmm.glmer(CBIND, cbpp, "binomial", nAGQ=bad)


def test_bad_family(cbpp) -> None:
    with pytest.raises(ValueError, match="quasibinomial"):
        glmm.glmer(CBIND, cbpp, family="quasibinomial")
    # gaussian is lmer's (tests/test_lmer.py), which refuses a two-column response
    with pytest.warns(glmm.GaussianShortcutWarning), \
            pytest.raises(glmm.ResponseError, match="must be a vector"):
        glmm.glmer(CBIND, cbpp, family="gaussian")


def test_rank_deficient_x_drops_and_reports(cbpp) -> None:
    df = cbpp.assign(dup=cbpp["prop"] * 2.0)
    with pytest.warns(UserWarning, match="rank deficient so dropping 1 column"):
        f = glmm.glmer("cbind(incidence, size - incidence) ~ prop + dup + (1 | herd)", df,
                       "binomial")
    assert f.dropped == ("dup",) and list(f.fixef.index) == ["(Intercept)", "prop"]


def test_singular_fit_is_reported() -> None:
    # every group holds the same responses at the same x: no between-group variance
    df = pd.DataFrame({"g": pd.Categorical(np.repeat(list("abcdef"), 6)),
                       "x": np.tile(np.arange(6.0), 6),
                       "y": np.tile([0.0, 1.0, 0.0, 1.0, 1.0, 1.0], 6)})
    with pytest.warns(glmm.SingularFitWarning, match="boundary"):
        f = glmm.glmer("y ~ x + (1 | g)", df, "binomial")
    assert f.singular and f.theta[0] == 0.0


def test_regular_fit_raises_no_warning(cbpp) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = glmm.glmer(CBIND, cbpp, "binomial", nAGQ=0)
    assert f.converged and not f.singular


def test_glm_start_falls_back_to_irls(cbpp, cbpp_fit, monkeypatch) -> None:
    """With the compiled core, nAGQ ≥ 1 starts from the GLM's β̂ as the joint mode at θ = 0;
    where that PIRLS fails, from IRLS instead.  Both are the GLM's β̂, so the optimum is the
    same."""
    from glmm.objectives.pirls import PirlsError
    from glmm.objectives.scalar_term import ScalarTermObjective

    calls = []
    pirls = ScalarTermObjective._pirls_compiled

    def fail_at_zero(self, th, beta, u0, joint):
        if th == 0.0:
            calls.append(th)
            raise PirlsError("forced")
        return pirls(self, th, beta, u0, joint)

    monkeypatch.setattr(ScalarTermObjective, "_pirls_compiled", fail_at_zero)
    fit = glmm.glmer(CBIND, cbpp, family=glmm.binomial(), nAGQ=1)
    assert calls == [0.0]
    tight = fixtures.load("cbpp").results[1].tight
    # parity's tight tier (parity.compare): −2logLik within 1e-6, parameters within 1e-4
    assert fit.objective == pytest.approx(cbpp_fit.objective, abs=1e-6)
    np.testing.assert_allclose(fit.fixef.to_numpy(), np.asarray(tight.fixef), rtol=1e-4)


#: lme4 1.1-31 (R 4.2.2), glmer(…, control = glmerControl(optimizer = "bobyqa",
#: optCtrl = list(rhoend = 1e-10))): −2logLik and θ of models without fixed effects
NO_FIXED = {
    "cbpp": ("cbind(incidence, size - incidence) ~ 0 + (1 | herd)", 236.74990954,
             [2.24660674]),
    "verbagg": ("r2 ~ 0 + (1 | id) + (1 | item)", 8203.53505405, [1.37354287, 1.13876682]),
}


@pytest.mark.parametrize("case", NO_FIXED)
@pytest.mark.parametrize("core", [True, False])
def test_no_fixed_effects_match_lme4(case: str, core: bool, monkeypatch) -> None:
    """y ~ 0 + (1 | g): an empty β through every path (the compiled core's, and numpy's)."""
    if not core:
        monkeypatch.setattr(glmm.families.response, "_core", None)   # no core arguments: numpy
    formula, m2ll, theta = NO_FIXED[case]
    fit = glmm.glmer(formula, fixtures.load(case).data.to_pandas(), family="binomial", nAGQ=1)
    assert fit.model.p == 0 and len(fit.beta) == 0
    # the parity suite's tight tier: −2logLik within 1e-6 (ours is at or below lme4's), θ 1e-4
    assert -2.0 * fit.loglik == pytest.approx(m2ll, abs=1e-6)
    np.testing.assert_allclose(fit.theta, theta, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("params", "error", "match"), [
    (None, glmm.ArgumentTypeError, "params must be a vector of 5 numbers"),
    ("θ", glmm.ArgumentTypeError, "params must be a vector of 5 numbers"),
    ([[1.0] * 5], glmm.ArgumentTypeError, "params must be a vector of 5 numbers"),
    ([1.0, 2.0], glmm.ArgumentError, r"expected 5 parameters \(θ, β\), got 2"),
    ([1.0, np.nan, 0, 0, 0], glmm.ArgumentError, "params must be finite")])
def test_devfun_refuses_bad_parameters_by_name(cbpp_fit, params, error, match) -> None:
    with pytest.raises(error, match=match):
        cbpp_fit.devfun(params)
    with pytest.raises(error, match=match):
        cbpp_fit.evaluate(params)
