"""lmer: linear mixed models by REML and ML against lme4 1.1-31 (R 4.2.2, C locale).

The reference numbers are lme4's, computed by tests/data/lmm/lme4_reference.R (which writes
tests/data/lmm/lme4_reference.json; the R code of every number is there) on the data files
beside it.  Per case and criterion: lme4's default fit (``lmerControl()``), a tight fit
(nloptwrap with ``xtol_rel = 1e-14, ftol_abs = 1e-15, xtol_abs = 1e-14``) and lme4's devfun
at three fixed θ.  The tiers (docs/lmm.md):

- probe: the LMM criterion has no inner iteration, so lme4's value at θ is exact up to
  rounding: ≤ 1e-10 relative;
- tight: the criterion within 1e-6 + 1e-10·|value| (a tight optimum is flat: F − F* is
  quadratic in θ − θ*); fixef, θ, σ, ranef within 1e-5·max(1, |value|) (the tight fits of
  two optimisers agree to ~1e-7 in θ; the bound leaves room for the curvature of d in θ);
- default: glmm's criterion never above lme4's default fit's (+1e-10 relative, rounding).
"""

from __future__ import annotations

import json
import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmm
from glmm.errors import ArgumentError, ArgumentTypeError, ResponseError

DATA = Path(__file__).parent / "data" / "lmm"
REF = json.loads((DATA / "lme4_reference.json").read_text())

#: case -> (formula, data file, weights and offset columns or None)
CASES = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "sleepstudy.csv", None),
    "Dyestuff": ("Yield ~ 1 + (1 | Batch)", "Dyestuff.csv", None),
    "Dyestuff2": ("Yield ~ 1 + (1 | Batch)", "Dyestuff2.csv", None),
    "Penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin.csv", None),
    "Pastes": ("strength ~ 1 + (1 | batch/cask)", "Pastes.csv", None),
    "sleepstudy-weights": ("Reaction ~ Days + (Days | Subject)", "sleepstudy.csv", ("w", "o")),
    "InstEval": ("y ~ service + (1 | s) + (1 | d) + (1 | dept)", "InstEval.csv.gz", None),
}
CRITERIA = ("REML", "ML")
PARAMS = [(c, k) for c in CASES for k in CRITERIA]


@cache
def frame(file: str) -> pd.DataFrame:
    """The data as R wrote them; character columns as factors with R's sorted levels
    (level order does not change any criterion; ranef is compared level by level)."""
    df = pd.read_csv(DATA / file, dtype={"Subject": str, "s": str, "d": str, "service": str,
                                         "dept": str})
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = pd.Categorical(df[c])
    if file == "sleepstudy.csv":   # R: ss$w <- 1 + (Days %% 3)/2; ss$o <- 0.25 * Days^2
        df["w"] = 1.0 + (df["Days"] % 3) / 2.0
        df["o"] = 0.25 * df["Days"] ** 2
    return df


@cache
def fit(case: str, criterion: str) -> glmm.LmerFit:
    formula, file, wo = CASES[case]
    kw = {} if wo is None else {"weights": wo[0], "offset": wo[1]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", glmm.SingularFitWarning)
        return glmm.lmer(formula, frame(file), REML=criterion == "REML", **kw)


def close(got: float, want: float, rel: float) -> bool:
    return abs(got - want) <= rel * max(1.0, abs(want))


@pytest.mark.parametrize(("case", "criterion"), PARAMS)
def test_probe(case: str, criterion: str) -> None:
    """fit.devfun(θ) is lme4's devfun(θ) at θ̂_tight, θ̂·1.1 + 0.01 and max(θ̂/2, 0.05)."""
    f = fit(case, criterion)
    probes = REF[case][criterion]["probes"]
    for theta, want in zip(probes["theta"], probes["value"], strict=True):
        got = f.devfun(np.atleast_1d(theta))
        assert abs(got - want) <= 1e-10 * abs(want), (theta, got, want)


@pytest.mark.parametrize(("case", "criterion"), PARAMS)
def test_tight(case: str, criterion: str) -> None:
    f = fit(case, criterion)
    t = REF[case][criterion]["tight"]
    assert f.REML == (criterion == "REML")
    assert abs(f.objective - t["criterion"]) <= 1e-6 + 1e-10 * abs(t["criterion"])
    for got, want in ((f.theta, t["theta"]), (f.fixef.to_numpy(), t["fixef"]),
                      (np.array([f.sigma]), t["sigma"])):
        want = np.atleast_1d(np.asarray(want, dtype=float))
        assert all(close(g, w, 1e-5) for g, w in zip(got, want, strict=True)), (got, want)
    for group, r in t["ranef"].items():
        ours = f.ranef[group].loc[r["levels"]].to_numpy().ravel(order="F")
        want = np.asarray(r["values"], dtype=float)
        assert all(close(g, w, 1e-5) for g, w in zip(ours, want, strict=True)), group
    assert f.singular == t["singular"]


@pytest.mark.parametrize(("case", "criterion"), PARAMS)
def test_default_never_worse(case: str, criterion: str) -> None:
    f = fit(case, criterion)
    want = REF[case][criterion]["default"]["criterion"]
    assert f.objective <= want + 1e-10 * abs(want)


@pytest.mark.parametrize(("case", "criterion"), PARAMS)
def test_accessors(case: str, criterion: str) -> None:
    """REMLcrit, deviance(REML = FALSE), logLik, AIC, BIC, vcov at the fit, against lme4's
    tight fit: the tight tier's bound, and vcov within 1e-4 relative (σ²(R_XᵀR_X)⁻¹ moves with
    θ and σ, each within the 1e-5 of the tight tier)."""
    f = fit(case, criterion)
    t = REF[case][criterion]["tight"]
    for got, want in ((f.remlcrit, t["remlcrit"]), (f.deviance, t["deviance_ml"]),
                      (f.loglik, t["loglik"]), (f.aic, t["aic"]), (f.bic, t["bic"])):
        assert abs(got - want) <= 1e-6 + 1e-10 * abs(want), (got, want)
    assert f.df == len(f.fixef) + len(f.theta) + 1
    p = len(f.fixef)
    want = np.asarray(t["vcov"], dtype=float).reshape(p, p, order="F")
    np.testing.assert_allclose(f.vcov_beta.to_numpy(), want, rtol=1e-4)
    if criterion == "REML":
        assert f.objective == f.remlcrit
    else:
        assert f.objective == f.deviance


@pytest.mark.parametrize(("case", "criterion"), [p for p in PARAMS if p[0] != "InstEval"])
def test_gradient_matches_central_differences(case: str, criterion: str) -> None:
    """The exact gradient of docs/lmm.md §3 at a point off the optimum (θ̂·1.1 + 0.05),
    against central differences with step 1e-5: their error is ~1e-7 at gradients of 1–40."""
    f = fit(case, criterion)
    obj = f.objective_fn
    th = f.theta * 1.1 + 0.05
    _, g = obj.value_and_gradient(th)
    for i in range(len(th)):
        e = np.zeros_like(th)
        e[i] = 1e-5 * max(1.0, abs(th[i]))
        fd = (obj(th + e) - obj(th - e)) / (2 * e[i])
        assert abs(g[i] - fd) <= 1e-6 * max(1.0, abs(fd)), (i, g[i], fd)


def test_singular_fit_warns_as_lme4() -> None:
    """Dyestuff2: θ̂ = 0, lme4's "boundary (singular) fit: see help('isSingular')"."""
    with pytest.warns(glmm.SingularFitWarning, match=r"boundary \(singular\) fit"):
        f = glmm.lmer("Yield ~ 1 + (1 | Batch)", frame("Dyestuff2.csv"))
    assert f.singular and f.theta[0] == 0.0


def test_refit_ml() -> None:
    """lme4's refitML(fm) of the sleepstudy REML fit: the ML optimum (lme4's tight ML fit
    and refitML agree with glmm's within the tight tier)."""
    f = fit("sleepstudy", "REML")
    r = f.refit_ml()
    ref = REF["extra"]["refitML"]
    assert not r.REML and r.refit_ml() is r
    assert abs(r.objective - ref["deviance"]) <= 1e-6 + 1e-10 * ref["deviance"]
    ml = REF["sleepstudy"]["ML"]["tight"]
    assert abs(r.objective - ml["criterion"]) <= 1e-6 + 1e-10 * ml["criterion"]
    assert all(close(g, w, 1e-5) for g, w in zip(r.theta, ml["theta"], strict=True))
    assert close(r.sigma, ml["sigma"], 1e-5)


def test_summary_layout() -> None:
    text = repr(fit("sleepstudy", "REML"))
    assert text.startswith("Linear mixed model fit by REML\n")
    assert "REML criterion at convergence: 1743.6283" in text
    assert " Residual " in text
    ml = repr(fit("sleepstudy", "ML"))
    assert ml.startswith("Linear mixed model fit by maximum likelihood\n")
    assert "1763.9393" in ml   # lme4: AIC 1763.9393


def test_glmer_gaussian_identity_hands_over_to_lmer() -> None:
    """lme4: glmer(Reaction ~ Days + (Days | Subject), sleepstudy, family = gaussian) warns
    and returns lmer's REML fit."""
    ref = REF["extra"]["glmer_gaussian"]
    with pytest.warns(glmm.GaussianShortcutWarning, match="please call lmer\\(\\) directly"):
        g = glmm.glmer("Reaction ~ Days + (Days | Subject)", frame("sleepstudy.csv"),
                       family="gaussian")
    assert isinstance(g, glmm.LmerFit) and g.REML
    assert abs(g.objective - ref["remlcrit"]) <= 1e-10 * ref["remlcrit"] + 1e-6
    with pytest.warns(glmm.GaussianShortcutWarning), pytest.raises(ArgumentError, match="nAGQ"):
        glmm.glmer("Reaction ~ Days + (Days | Subject)", frame("sleepstudy.csv"),
                   family=glmm.gaussian(), nAGQ=0)


def test_glmer_gaussian_log_link_is_a_glmm() -> None:
    """lme4: glmer(Reaction ~ Days + (1 | Subject), sleepstudy, family = gaussian(link =
    "log"), control = glmerControl(optimizer = c("bobyqa", "bobyqa"), tolPwrss = 1e-13,
    optCtrl = list(rhoend = 1e-10, maxfun = 100000L))): a singular GLMM with σ estimated
    (the harness's tight tier)."""
    ref = REF["extra"]["glmer_gaussian_log"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", glmm.SingularFitWarning)
        g = glmm.glmer("Reaction ~ Days + (1 | Subject)", frame("sleepstudy.csv"),
                       family=glmm.gaussian(link="log"))
    assert isinstance(g, glmm.GlmerFit)
    assert abs(g.objective - ref["dev"]) <= 1e-6 + 1e-10 * ref["dev"]
    assert abs(g.aic - ref["aic"]) <= 1e-6 + 1e-10 * ref["aic"]
    assert g.df == ref["df"]
    assert all(close(a, b, 1e-4) for a, b in zip(g.fixef, ref["fixef"], strict=True))
    assert close(g.sigma, ref["sigma"], 1e-5)
    assert abs(g.theta[0] - ref["theta"]) <= 1e-4


def test_reml_without_fixed_effects_is_ml() -> None:
    """lme4 stores REML as p and tests it as a flag: lmer(Reaction ~ 0 + (1 | Subject)) is an
    ML fit ("Linear mixed model fit by maximum likelihood")."""
    f = glmm.lmer("Reaction ~ 0 + (1 | Subject)", frame("sleepstudy.csv"))
    assert not f.REML
    assert f.objective == f.deviance


def test_start_and_control() -> None:
    d = frame("sleepstudy.csv")
    f = glmm.lmer("Reaction ~ Days + (Days | Subject)", d, start=[0.5, 0.0, 0.5])
    ref = REF["sleepstudy"]["REML"]["tight"]["criterion"]
    assert abs(f.objective - ref) <= 1e-6 + 1e-10 * ref
    np.testing.assert_array_equal(f.optsummary.start, [0.5, 0.0, 0.5])
    # lme4's start for (1 | f) terms: θ₀ = √(var(ave(y, f))/v_e) (R: 0.888682119015 for
    # Reaction ~ Days + (1 | Subject))
    g = glmm.lmer("Reaction ~ Days + (1 | Subject)", d)
    assert math.isclose(g.optsummary.start[0], 0.888682119015, rel_tol=1e-11)
    h = glmm.lmer("Reaction ~ Days + (1 | Subject)", d, control={"lme4_start": False})
    np.testing.assert_array_equal(h.optsummary.start, [1.0])
    assert abs(h.objective - g.objective) <= 1e-8


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"start": [1.0, 0.0]}, ArgumentError, "start must be a vector of 3"),
    ({"start": [1.0, np.nan, 1.0]}, ArgumentError, "finite"),
    ({"start": "abc"}, ArgumentError, "start"),
    ({"REML": "yes"}, ArgumentTypeError, "REML must be True or False"),
    ({"control": {"optimizer": "bobyqa"}}, ArgumentError, "unknown control entries"),
    ({"control": 3}, ArgumentTypeError, "control must be a mapping"),
])
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        glmm.lmer("Reaction ~ Days + (Days | Subject)", frame("sleepstudy.csv"), **kwargs)


def test_bad_responses() -> None:
    d = frame("sleepstudy.csv").copy()
    d["f"] = pd.Categorical(np.where(d["Days"] > 4, "a", "b"))
    d["c"] = 3.0
    d["z"] = np.where(d["Days"] == 0, 0.0, 1.0)
    with pytest.raises(ResponseError, match="numeric, not a factor"):
        glmm.lmer("f ~ Days + (1 | Subject)", d)
    with pytest.raises(ResponseError, match="constant"):
        glmm.lmer("c ~ Days + (1 | Subject)", d)
    with pytest.raises(ResponseError, match="positive prior weights"):
        glmm.lmer("Reaction ~ Days + (1 | Subject)", d, weights="z")


def test_anova_refits_reml_fits_by_ml() -> None:
    """lme4: anova(lmer(Reaction ~ Days + (1 | Subject), sleepstudy), lmer(Reaction ~ Days +
    (Days | Subject), sleepstudy)) messages "refitting model(s) with ML (instead of REML)"
    and compares the ML refits (tight tier on AIC, BIC, logLik, deviance and Chisq)."""
    d = frame("sleepstudy.csv")
    small = glmm.lmer("Reaction ~ Days + (1 | Subject)", d)
    big = fit("sleepstudy", "REML")
    ref = REF["extra"]["anova"]
    with pytest.warns(glmm.RefitMLWarning, match=r"refitting model\(s\) with ML"):
        tab = glmm.anova(small, big)
    assert tab["npar"].tolist() == ref["npar"]
    for col, key in (("AIC", "AIC"), ("BIC", "BIC"), ("logLik", "logLik"),
                     ("deviance", "deviance")):
        for got, want in zip(tab[col], ref[key], strict=True):
            assert abs(got - want) <= 1e-6 + 1e-10 * abs(want), (col, got, want)
    assert abs(tab["Chisq"].iloc[1] - ref["Chisq"][1]) <= 1e-6
    assert tab["Df"].iloc[1] == ref["Df"][1]
    assert math.isclose(tab["Pr(>Chisq)"].iloc[1], ref["p"][1], rel_tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", glmm.RefitMLWarning)
        glmm.anova(small.refit_ml(), big.refit_ml())   # ML fits: no refit, no message


def test_results_surface_uses_lme4s_lmm_definitions() -> None:
    """vcov = σ²(R_XᵀR_X)⁻¹; t values without p-values; VarCorr's Residual row; residuals
    y − μ̂ (√w(y − μ̂) for pearson); lme4's summary layout; predict = fitted."""
    f = fit("sleepstudy-weights", "REML")
    t = REF["sleepstudy-weights"]["REML"]["tight"]
    ct = f.coef_table()
    assert list(ct.columns) == ["Estimate", "Std. Error", "t value"]
    np.testing.assert_allclose(ct["Std. Error"] ** 2, np.asarray(t["vcov"])[[0, 3]], rtol=1e-4)
    vc = f.varcorr()
    assert vc["grp"].iloc[-1] == "Residual" and math.isclose(vc["sdcor"].iloc[-1], f.sigma)
    y = frame("sleepstudy.csv")["Reaction"].to_numpy()
    w = frame("sleepstudy.csv")["w"].to_numpy()
    np.testing.assert_allclose(f.residuals(), y - f.fitted(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(f.residuals("pearson"), np.sqrt(w) * (y - f.fitted()),
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(f.predict(), f.fitted())
    text = str(f.summary())
    assert text.startswith("Linear mixed model fit by REML ['lmerMod']")
    assert "REML criterion at convergence: 1732.6" in text and "Pr(>" not in text
    sims = f.simulate(3, seed=1)
    assert sims.shape == (f.nobs, 3)
    r = f.refit(y)
    assert abs(r.objective - f.objective) <= 1e-8 * abs(f.objective)


@pytest.mark.parametrize("n", [2, 3, 17, 129, 12_345, 200_000])
def test_lme4_start_variance_is_numpys(n: int) -> None:
    """lme4_start's variances of ave(y, f) are computed in one reused buffer; numpy's np.var
    (an independent implementation of the same steps) gives the same bits, so θ₀ is
    unchanged."""
    from glmm.objectives.lmm import _var_in_place

    rng = np.random.default_rng(n)
    for _ in range(4):
        x = rng.normal(size=n) * 10.0 ** rng.uniform(-5, 5) + 1e3 * rng.normal()
        assert _var_in_place(x.copy()) == float(np.var(x, ddof=1))
