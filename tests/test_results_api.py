"""The results surface's behaviour: typed errors for bad arguments, predict's re_form and new
levels, pickling, simulate's moments, anova and its refusals, lme4's checkConv, getME and
refit.  lme4's numbers are in tests/test_results_lme4.py."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.polynomial.hermite_e import hermegauss

import glmm
from glmm.optimize.checkconv import check_convergence
from parity import fixtures

REF = json.loads((Path(__file__).parent / "data" / "results" / "lme4_results.json").read_text())
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _fit(formula: str, data: pd.DataFrame, **kw) -> glmm.GlmerFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", glmm.GlmmWarning)
        return glmm.glmer(formula, data, **kw)


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return fixtures.load("cbpp").data.to_pandas()


@pytest.fixture(scope="module")
def g1(cbpp) -> glmm.GlmerFit:
    return _fit(CBPP, cbpp, family="binomial")


@pytest.fixture(scope="module")
def contra() -> glmm.GlmerFit:
    c = fixtures.load("contraception-slope").case
    return _fit(c.formula, fixtures.load("contraception-slope").data.to_pandas(),
                family="binomial")


# -- predict -----------------------------------------------------------------------------------
def test_predict_unseen_level_names_factor_and_level(g1, cbpp) -> None:
    nd = cbpp.iloc[:3].copy()
    nd["herd"] = ["1", "99", "2"]
    with pytest.raises(glmm.ArgumentError, match=r"grouping factor herd has level '99'"):
        g1.predict(nd)
    eta = g1.predict(nd, allow_new_levels=True)
    # the new level gets b = 0: its η is the fixed part alone
    np.testing.assert_allclose(eta[1], g1.predict(nd, re_form="NA")[1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(eta[[0, 2]], g1.predict(nd.iloc[[0, 2]]), rtol=0, atol=1e-14)
    assert eta[2] != eta[1]


def test_predict_missing_group_is_an_error_unless_allowed(g1, cbpp) -> None:
    nd = cbpp.iloc[:2].copy()
    nd["herd"] = pd.Categorical([None, "1"], categories=cbpp["herd"].cat.categories)
    with pytest.raises(glmm.ArgumentError, match="missing values in the grouping factor herd"):
        g1.predict(nd)
    assert np.isfinite(g1.predict(nd, allow_new_levels=True)).all()


def test_predict_unseen_fixed_level_is_an_error(g1, cbpp) -> None:
    nd = cbpp.iloc[:2].copy()
    nd["period"] = ["1", "7"]
    with pytest.raises(glmm.ArgumentError, match=r"factor period has level '7'"):
        g1.predict(nd)


def test_predict_on_the_fit_rows_equals_the_fit(g1, cbpp) -> None:
    """newdata = the fit's own data rebuilds X, Z and the offset exactly (to rounding)."""
    np.testing.assert_allclose(g1.predict(cbpp), g1.predict(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(g1.predict(cbpp, type="response"), g1.fitted(), rtol=1e-13)


def test_re_form_all_some_none(contra) -> None:
    """contraception-slope has one term (1 + urban | district); with the grouseticks-like
    case of several terms, the sum of the terms' parts is the whole."""
    data = fixtures.load("grouseticks").data.to_pandas()
    c = fixtures.load("grouseticks").case
    fit = _fit(c.formula, data, family="poisson")
    terms = [t.name for t in fit.design.random.terms]
    full = fit.predict(data)
    none = fit.predict(data, re_form="NA")
    np.testing.assert_allclose(fit.predict(data, re_form=None), full, rtol=0, atol=0)
    parts = [fit.predict(data, re_form=f"~ ({n})") - none for n in terms]
    np.testing.assert_allclose(none + sum(parts), full, rtol=1e-12, atol=1e-12)
    two = fit.predict(data, re_form=f"~ ({terms[0]}) + ({terms[1]})")
    np.testing.assert_allclose(two, none + parts[0] + parts[1], rtol=1e-12, atol=1e-12)
    # without newdata the same on the fit's rows; with all terms, η at the mode
    np.testing.assert_allclose(fit.predict(re_form=f"~ ({terms[0]})"),
                               none + parts[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fit.predict(), fit.getME("eta"), rtol=0, atol=0)


def test_re_form_and_type_errors(g1) -> None:
    with pytest.raises(glmm.ArgumentError, match=r"the term \(1 \| flock\) is not"):
        g1.predict(re_form="~ (1 | flock)")
    with pytest.raises(glmm.ArgumentError, match="re_form must be"):
        g1.predict(re_form=3)
    with pytest.raises(glmm.ArgumentError, match="type must be 'link' or 'response'"):
        g1.predict(type="probability")
    with pytest.raises(glmm.ArgumentError, match="newdata must be a pandas DataFrame"):
        g1.predict(newdata=[1, 2])


def test_scale_centres_are_reused_on_new_data(cbpp) -> None:
    """A scale() term is rebuilt with the fit's centre and scale (R's predvars): predicting
    on two rows gives the fit's η at those rows, not a rescaling over the two."""
    data = cbpp.assign(x=np.arange(len(cbpp), dtype=float))
    fit = _fit("cbind(incidence, size - incidence) ~ scale(x) + (1 | herd)", data,
               family="binomial")
    np.testing.assert_allclose(fit.predict(data.iloc[[3, 40]]), fit.predict()[[3, 40]],
                               rtol=1e-13, atol=1e-13)


def test_pickle_then_predict(g1, cbpp) -> None:
    back = pickle.loads(pickle.dumps(g1))
    nd = cbpp.iloc[[0, 10, 30]]
    np.testing.assert_array_equal(back.predict(nd), g1.predict(nd))
    np.testing.assert_array_equal(back.vcov().to_numpy(), g1.vcov().to_numpy())
    assert str(back.summary()) == str(g1.summary())


# -- residuals ---------------------------------------------------------------------------------
def test_residual_types(g1) -> None:
    m = g1.model
    mu = g1.fitted()
    np.testing.assert_allclose(g1.residuals("response"), m.y - mu, rtol=0, atol=0)
    # deviance residuals square to the deviance; Pearson's from the binomial variance
    assert float(np.sum(g1.residuals() ** 2)) == pytest.approx(g1.deviance, rel=1e-13)
    np.testing.assert_allclose(g1.residuals("pearson"),
                               (m.y - mu) * np.sqrt(m.weights / (mu * (1 - mu))), rtol=1e-13)
    eta = g1.getME("eta")
    np.testing.assert_allclose(g1.residuals("working"),
                               (m.y - mu) / (np.exp(eta) / (1 + np.exp(eta)) ** 2), rtol=1e-10)
    with pytest.raises(glmm.ArgumentError, match="type must be one of"):
        g1.residuals("raw")


# -- simulate ----------------------------------------------------------------------------------
NSIM = 2000


def test_simulate_conditional_moments(g1) -> None:
    """With b̃ kept (use_u), yᵢ·sizeᵢ ~ Binomial(sizeᵢ, μ̂ᵢ): the mean of 2,000 draws is
    within 5 standard errors √(Var/2000) of μ̂ᵢ in every row (each row fails with
    probability 6e-7), and the pooled ratio of sample to model variance within 5 of its
    standard errors, √(2/1999)/√56 for near-normal rows (a loose bound: binomial kurtosis
    widens it by under 2x here)."""
    Y = g1.simulate(NSIM, seed=1, use_u=True).to_numpy()
    assert Y.shape == (g1.nobs, NSIM)
    mu, size = g1.fitted(), g1.model.weights
    var = mu * (1 - mu) / size
    z = (Y.mean(axis=1) - mu) / np.sqrt(var / NSIM)
    assert np.abs(z).max() < 5.0
    ratio = float(np.mean(Y.var(axis=1, ddof=1) / var))
    assert abs(ratio - 1.0) < 5 * 2 * np.sqrt(2 / (NSIM - 1)) / np.sqrt(g1.nobs)


def test_simulate_marginal_moments(g1) -> None:
    """lme4's default redraws u ~ N(0, 1) per herd: E[yᵢ] = ∫ g⁻¹(xᵢβ + θz) φ(z) dz and
    Var[yᵢ] = E[μ(1−μ)]/sizeᵢ + Var[μ], by 60-node Gauss–Hermite quadrature (exact here to
    1e-12).  The bounds are those of the test above."""
    Y = g1.simulate(NSIM, seed=2).to_numpy()
    z, w = hermegauss(60)
    w = w / w.sum()
    fixed = g1.predict(re_form="NA")
    mu = 1 / (1 + np.exp(-(fixed[:, None] + g1.theta[0] * z[None, :])))
    m1 = mu @ w
    var = (mu * (1 - mu)) @ w / g1.model.weights + (mu ** 2) @ w - m1 ** 2
    zz = (Y.mean(axis=1) - m1) / np.sqrt(var / NSIM)
    assert np.abs(zz).max() < 5.0
    ratio = float(np.mean(Y.var(axis=1, ddof=1) / var))
    assert abs(ratio - 1.0) < 5 * 2 * np.sqrt(2 / (NSIM - 1)) / np.sqrt(g1.nobs)


def test_simulate_gamma_moments() -> None:
    """Gamma: mean μ̂, variance σ²μ̂²/w given b̃ (the model's variance; lme4 1.1-31 draws
    with shape σ·w instead, a bug fixed in 1.1-35)."""
    case = fixtures.load("sleepstudy-gamma")
    fit = _fit(case.case.formula, case.data.to_pandas(), family=glmm.Gamma(link="log"))
    Y = fit.simulate(NSIM, seed=3, use_u=True).to_numpy()
    mu = fit.fitted()
    var = fit.sigma ** 2 * mu ** 2
    z = (Y.mean(axis=1) - mu) / np.sqrt(var / NSIM)
    assert np.abs(z).max() < 5.0
    ratio = float(np.mean(Y.var(axis=1, ddof=1) / var))
    # Gamma with shape ≈ 1/σ² ≈ 120 is close to normal: the same bound
    assert abs(ratio - 1.0) < 5 * 2 * np.sqrt(2 / (NSIM - 1)) / np.sqrt(fit.nobs)


def test_simulate_is_reproducible_and_checks_nsim(g1) -> None:
    a, b = g1.simulate(3, seed=7), g1.simulate(3, seed=7)
    assert list(a.columns) == ["sim_1", "sim_2", "sim_3"]
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(glmm.ArgumentError, match="nsim"):
        g1.simulate(0)


# -- anova -------------------------------------------------------------------------------------
def test_anova_against_lme4(g1, cbpp) -> None:
    """R: anova(g0, g1) with g0 = glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd),
    cbpp, binomial) (tests/data/results/lme4_results.R).  lme4's default fits are what the
    reference holds, so logLik agrees to its default optimum's 6e-4 (docs/objectives.md §3)
    and Chisq to twice that."""
    g0 = _fit("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp, family="binomial")
    tab = glmm.anova(g1, g0, names=["g1", "g0"])
    ref = REF["anova"]["table"]
    assert list(tab.index) == ["g0", "g1"]   # sorted by npar
    assert list(tab.columns) == ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df",
                                 "Pr(>Chisq)"]
    assert tab["npar"].tolist() == [2, 5]
    for row, want in zip(tab.itertuples(), ref, strict=True):
        assert row.logLik == pytest.approx(want["logLik"], abs=1e-3)
        assert row.AIC == pytest.approx(want["AIC"], abs=2e-3)
    assert tab["Chisq"].iloc[1] == pytest.approx(ref[1]["Chisq"], abs=2e-3)
    assert tab["Df"].iloc[1] == 3
    assert tab["Pr(>Chisq)"].iloc[1] == pytest.approx(ref[1]["Pr(>Chisq)"], rel=1e-3)
    assert np.isnan(tab["Chisq"].iloc[0])


def test_anova_refusals(g1, cbpp) -> None:
    small = _fit(CBPP, cbpp.iloc[:50], family="binomial")
    with pytest.raises(glmm.ArgumentError, match="same size of dataset"):
        glmm.anova(g1, small)
    other = cbpp.assign(incidence=cbpp["incidence"][::-1].to_numpy())
    other = other.assign(incidence=np.minimum(other["incidence"], other["size"]))
    with pytest.raises(glmm.ArgumentError, match="same data"):
        glmm.anova(g1, _fit(CBPP, other, family="binomial"))
    probit = _fit(CBPP, cbpp, family=glmm.binomial(link="probit"))
    with pytest.raises(glmm.ArgumentError, match="not nested"):
        glmm.anova(g1, probit)
    assert glmm.anova(g1, probit, nested=False)["Df"].iloc[1] == 0   # lme4's answer
    slope = _fit("cbind(incidence, size - incidence) ~ 1 + (1 | period)", cbpp,
                 family="binomial")
    with pytest.raises(glmm.ArgumentError, match="not nested"):
        glmm.anova(slope, g1)
    with pytest.raises(glmm.ArgumentError, match="at least two"):
        glmm.anova(g1)


# -- vcov rules and checkConv ------------------------------------------------------------------
def test_vcov_rules(g1, cbpp) -> None:
    g0 = _fit(CBPP, cbpp, family="binomial", nAGQ=0)
    with pytest.raises(glmm.ArgumentError, match="use_hessian=True"):
        g0.vcov(use_hessian=True)
    pd.testing.assert_frame_equal(g0.vcov(), g0.vcov(use_hessian=False))
    with pytest.warns(glmm.VcovWarning, match="differ by >1e-04"):
        g1.vcov(use_hessian=False)
    with pytest.raises(glmm.ArgumentError, match="use_hessian"):
        g1.vcov(use_hessian="yes")


def test_checkconv_on_the_optimum(g1) -> None:
    checks = g1.optsummary.checks
    assert checks is not None and checks.ok and not checks.singular
    assert checks.hessian.shape == (5, 5) and checks.max_grad < 1e-5
    np.testing.assert_array_equal(g1.hessian, checks.hessian)


def test_checkconv_messages() -> None:
    """lme4's checkHess on made-up Hessians: a negative eigenvalue, a very large one."""
    x, lower = np.array([1.0, 0.5]), np.array([0.0, -np.inf])
    c = check_convergence(x, lower, 1, np.array([1e-7, 1e-7]), np.diag([1.0, -1.0]))
    assert -3 in c.codes and "degenerate" in " ".join(c.messages)
    c = check_convergence(x, lower, 1, np.array([1e-7, 1e-7]), np.diag([1.0, 1e7]))
    # β's block [1e7] has one eigenvalue (large, ratio 1); the whole H both messages
    assert c.codes == (2, 2, 3) and c.kinds == ("hessian",) * 3
    c = check_convergence(x, lower, 1, np.array([1.0, 1.0]), np.eye(2))
    assert c.codes == (-1,) and "max|grad| = 1" in c.messages[0]
    c = check_convergence(np.array([1e-6, 0.5]), lower, 1, np.ones(2), -np.eye(2))
    assert c.singular and c.ok   # singular fits get no further checks


def test_badly_scaled_covariate_warns_hessian(cbpp) -> None:
    """lme4 warns "very large eigenvalue" for a covariate of scale 1e4 (docs/results.md §2)."""
    data = cbpp.assign(big=np.arange(len(cbpp), dtype=float) * 1e4)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fit = glmm.glmer("cbind(incidence, size - incidence) ~ period + big + (1 | herd)",
                         data, family="binomial")
        # the checks run when first asked for (they need the Hessian), and warn then
        assert not any(isinstance(w.message, glmm.HessianWarning) for w in seen)
        checks = fit.optsummary.checks
    kinds = {type(w.message) for w in seen}
    assert glmm.HessianWarning in kinds
    assert 2 in checks.codes and fit.convergence_checks() is checks


# -- getME, refit, summary ---------------------------------------------------------------------
def test_getme(g1) -> None:
    Z, Lt = g1.getME("Z"), g1.getME("Lambdat")
    np.testing.assert_allclose(Z @ (Lt.T @ g1.u), Z @ g1.b, rtol=1e-14)
    X = g1.getME("X")
    np.testing.assert_allclose(X @ g1.beta + Z @ g1.b + g1.getME("offset"), g1.getME("eta"),
                               rtol=1e-12, atol=1e-12)
    L = g1.getME("L").toarray()
    ZL = (Z @ Lt.T).toarray()
    G = ZL.T @ np.diag(g1.getME("wrk_weights")) @ ZL + np.eye(g1.getME("q"))
    np.testing.assert_allclose(L @ L.T, G, rtol=1e-12, atol=1e-12)
    RX = g1.getME("RX")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", glmm.VcovWarning)
        V = g1.vcov(use_hessian=False).to_numpy()
    np.testing.assert_allclose(np.linalg.inv(RX.T @ RX), V, rtol=1e-10)   # σ = 1
    assert list(g1.getME("theta").index) == ["herd.(Intercept)"]
    assert g1.getME("cnms") == [("herd", ["(Intercept)"])]
    with pytest.raises(glmm.ArgumentError, match="unknown name"):
        g1.getME("Q")


def test_refit(g1, cbpp) -> None:
    same = g1.refit()
    assert same.objective == pytest.approx(g1.objective, abs=1e-8)
    y = g1.simulate(1, seed=5, use_u=True)["sim_1"].to_numpy()
    new = g1.refit(y)
    direct = _fit(CBPP, cbpp.assign(incidence=np.rint(y * cbpp["size"])), family="binomial")
    np.testing.assert_allclose(new.beta, direct.beta, rtol=1e-7, atol=1e-8)
    with pytest.raises(glmm.ArgumentError, match="rows"):
        g1.refit(y[:5])


def test_summary_object(g1) -> None:
    s = g1.summary()
    d = s.to_dict()
    assert d["AICtab"]["df.resid"] == 51 and d["nobs"] == 56 and d["ngrps"] == {"herd": 15}
    assert set(d["coefficients"]["period2"]) == {"Estimate", "Std. Error", "z value",
                                                 "Pr(>|z|)"}
    assert str(s).startswith("Generalized linear mixed model fit by maximum likelihood")


# -- found in review -------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["S", "00"])
def test_predict_with_string_grouping_factor(cbpp, prefix: str) -> None:
    """A string column is a factor, in the fit's frame and in newdata alike: predicting on the
    fit's own rows gives the fit's η, whatever the labels look like ("S3", "003")."""
    labels = [f"{prefix}{int(h):02d}" if prefix == "00" else f"{prefix}{h}"
              for h in cbpp["herd"]]
    df = cbpp.assign(herd=pd.Series(labels, index=cbpp.index, dtype=object))
    fit = _fit(CBPP, df, family="binomial")
    np.testing.assert_allclose(fit.predict(df), fit.predict(), rtol=0, atol=1e-12)
    assert set(fit.ranef["herd"].index) == set(df["herd"])


def test_predict_factor_given_as_numbers_is_a_typed_error(g1, cbpp) -> None:
    nd = cbpp.iloc[:4].copy()
    nd["period"] = [1, 2, 3, 4]   # a factor in the fit
    with pytest.raises(glmm.ArgumentError, match=r"period2.*a factor in the fit"):
        g1.predict(nd)


def test_accessors_return_copies(cbpp) -> None:
    fit = _fit(CBPP, cbpp, family="binomial")
    before = (fit.fixef.copy(), fit.u.copy(), fit.beta.copy())
    shown = fit.fixef
    shown.iloc[0] = 999.0
    fit.u[:] = 0.0
    fit.beta[:] = 0.0
    assert fit.fixef.equals(before[0])
    np.testing.assert_array_equal(fit.u, before[1])
    np.testing.assert_array_equal(fit.beta, before[2])
    with pytest.raises(ValueError):   # the Hessian behind vcov is read-only
        fit.hessian[0, 0] = 0.0


def test_getme_weights_are_the_prior_weights_with_trials(g1, cbpp) -> None:
    # lme4: getME(fit, "weights") of a cbind response is the number of trials (size)
    np.testing.assert_array_equal(g1.getME("weights"), cbpp["size"].to_numpy(dtype=float))


def test_refit_of_a_scalar_is_a_typed_error(g1) -> None:
    with pytest.raises(glmm.ArgumentTypeError, match="refit: y must be a vector"):
        g1.refit("abc")


def test_anova_refuses_a_glmm_beside_an_lmm(cbpp) -> None:
    # the same response and rows: only the kind of model differs
    df = cbpp.assign(y=(cbpp["incidence"] > 0).astype(float))
    glm_fit = _fit("y ~ period + (1 | herd)", df, family="binomial")
    lmm = glmm.lmer("y ~ 1 + (1 | herd)", df)
    with pytest.raises(glmm.ArgumentError, match="not both GLMMs or both LMMs"):
        glmm.anova(lmm, glm_fit)


def test_printout_groups_as_lme4(contra) -> None:
    text = repr(contra)
    assert "groups:  district, 60" in text
    verbagg = fixtures.load("verbagg")
    c = verbagg.case
    fit = _fit(c.formula, verbagg.data.to_pandas(), family="binomial", nAGQ=0)
    assert "groups:  id, 316; item, 24" in repr(fit)   # lme4 separates the factors by "; "
