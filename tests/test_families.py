"""glmm.families.family against R: every expected number comes from fixtures/families.json, which
scripts/generate_family_fixtures.py writes from live R 4.2.2 / lme4 1.1-31 (R's family
objects, lme4's C++ ``glmFamily``, and R's symbolic ``D`` for the derivatives)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from glmm import families as F
from glmm.errors import FamilyError

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "families.json"
DOC: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))

#: Ours and R evaluate the same closed forms in IEEE double precision, so they agree to a
#: few ulps (most values are bit-identical; the largest gaps seen are ~6e-14, from R's
#: pnorm far in the tail and from R's less accurate dgamma at small dispersion).  1e-12
#: leaves room for libm differences and still catches any wrong formula or clamp.
RTOL = 1e-12


def close(actual: Any, expected: Any, rtol: float = RTOL) -> None:
    # atol = 0: an expected 0 (e.g. R's pnorm underflow) must be matched exactly
    np.testing.assert_allclose(np.asarray(actual, dtype=float),
                               np.asarray(expected, dtype=float), rtol=rtol, atol=0)


def _family(entry: dict[str, Any], link: str | None = None) -> F.Family:
    return F.make_family(entry["family"], link)


def _id(entry: dict[str, Any]) -> str:
    return "-".join(str(entry[k]) for k in ("family", "link", "label") if k in entry)


LINKS = DOC["links"]
EXTREME = [e for e in LINKS if "extreme" in e]
DEVIANCE = DOC["deviance"]
INITIALIZE = DOC["initialize"]


# -- the fixture itself ---------------------------------------------------------------------

def test_fixture_is_from_lme4_1_1_31():
    assert DOC["schema_version"] == 1
    assert DOC["provenance"]["lme4_version"] == "1.1.31"
    assert DOC["provenance"]["r_version"] == "4.2.2"


def test_eps_is_r_double_eps():
    assert DOC["eps"] == F.EPS


def test_fixture_covers_every_allowed_link():
    pairs = {(e["family"], e["link"]) for e in LINKS}
    assert pairs == {(f, lk) for f in ("binomial", "poisson", "Gamma", "inverse.gaussian")
                     for lk in F.make_family(f).links}


# -- links on a moderate grid ------------------------------------------------------------------

@pytest.mark.parametrize("entry", LINKS, ids=_id)
def test_linkfun(entry):
    close(_family(entry, entry["link"]).link.linkfun(entry["mu"]), entry["lme4"]["linkfun"])


@pytest.mark.parametrize("entry", LINKS, ids=_id)
def test_linkinv(entry):
    close(_family(entry, entry["link"]).link.linkinv(entry["eta"]), entry["lme4"]["linkinv"])


@pytest.mark.parametrize("entry", LINKS, ids=_id)
def test_mu_eta(entry):
    link = _family(entry, entry["link"]).link
    close(link.mu_eta(entry["eta"]), entry["lme4"]["mu_eta"])
    close(link.mu_eta(entry["eta"]), entry["mu_eta_D"])  # R's symbolic dμ/dη


@pytest.mark.parametrize("entry", LINKS, ids=_id)
def test_mu_eta2_is_r_symbolic_second_derivative(entry):
    close(_family(entry, entry["link"]).link.mu_eta2(entry["eta"]), entry["mu_eta2_D"])


@pytest.mark.parametrize("entry", LINKS, ids=_id)
def test_links_on_moderate_grid_agree_with_r_family_objects(entry):
    link = _family(entry, entry["link"]).link
    r = entry["r"]
    close(link.linkfun(entry["mu"]), r["linkfun"])
    close(link.linkinv(entry["eta"]), r["linkinv"])
    close(link.mu_eta(entry["eta"]), r["mu_eta"])


# -- links at extreme η: lme4's C++ clamps ------------------------------------------------

@pytest.mark.parametrize("entry", EXTREME, ids=_id)
def test_extremes_follow_lme4_cpp(entry):
    link = _family(entry, entry["link"]).link
    eta = entry["eta_extreme"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # R is silent about overflow and underflow here
        mu, d1, d2 = link.linkinv(eta), link.mu_eta(eta), link.mu_eta2(eta)
    close(mu, entry["extreme"]["lme4"]["linkinv"])
    close(d1, entry["extreme"]["lme4"]["mu_eta"])
    assert np.all(np.isfinite(d2))


@pytest.mark.parametrize("entry", EXTREME, ids=_id)
def test_mu_eta2_is_zero_where_lme4_clamps_mu_eta(entry):
    mu_eta = np.asarray(entry["extreme"]["lme4"]["mu_eta"])
    clamped = mu_eta == F.EPS
    d2 = _family(entry, entry["link"]).link.mu_eta2(entry["eta_extreme"])
    assert np.all(d2[clamped] == 0.0)
    assert np.all(d2[~clamped & (mu_eta > 0)] != 0.0)  # unclamped and not underflowed


def test_extreme_grid_exercises_the_r_lme4_differences():
    """The fixture reaches the η where R's own family functions clamp differently."""
    differ = {e["link"] for e in EXTREME
              if e["extreme"]["r"]["linkinv"] != e["extreme"]["lme4"]["linkinv"]
              or e["extreme"]["r"]["mu_eta"] != e["extreme"]["lme4"]["mu_eta"]}
    assert {"logit", "probit", "cauchit"} <= differ


EPS = F.EPS
# The clamp values of lme4's C++ links (docs/lme4-conventions.md §8, the table of lme4's
# src/glmFamily.cpp): logit/cloglog clamp μ to [ε, 1−ε] and dμ/dη at
# ε; probit and cauchit clamp μ at 1−ε only (dμ/dη unclamped); log clamps both at ε.
NOTES_TABLE = [
    ("logit", -40.0, EPS, EPS), ("logit", 40.0, 1 - EPS, EPS),
    ("cloglog", -40.0, EPS, EPS), ("cloglog", 40.0, 1 - EPS, EPS),
    ("probit", -40.0, 0.0, 0.0), ("probit", 40.0, 1 - EPS, 0.0),
    ("cauchit", 1e17, 1 - EPS, 1 / (np.pi * 1e34)),
    ("log", -40.0, EPS, EPS),
]


@pytest.mark.parametrize(("link", "eta", "mu", "mu_eta"), NOTES_TABLE)
def test_clamps_of_notes_table(link, eta, mu, mu_eta):
    lk = F.make_link(link)
    assert lk.linkinv([eta])[0] == mu
    close(lk.mu_eta([eta]), [mu_eta], rtol=1e-15)


def test_cauchit_and_probit_have_no_lower_clamp():
    # notes §5 table: min(pcauchy, 1−ε) and min(pnorm, 1−ε); R's own linkinv gives ε here
    assert 0 < F.make_link("cauchit").linkinv([-1e17])[0] < EPS
    assert F.make_link("probit").linkinv([-40.0])[0] == 0.0


# -- variance -----------------------------------------------------------------------------

@pytest.mark.parametrize("entry", DOC["variance"], ids=_id)
def test_variance(entry):
    fam = _family(entry)
    close(fam.variance(entry["mu"]), entry["lme4"])
    close(fam.variance_deriv(entry["mu"]), entry["variance_deriv_D"])


def test_binomial_variance_is_clamped_like_lme4_not_r():
    entry = next(e for e in DOC["variance"] if e["family"] == "binomial")
    ours = F.binomial().variance(entry["mu"])
    assert ours[0] == EPS == entry["lme4"][0] != entry["r"][0]


# -- deviance residuals and aic -------------------------------------------------------------

@pytest.mark.parametrize("entry", DEVIANCE, ids=_id)
def test_dev_resids(entry):
    d = _family(entry).dev_resids(entry["y"], entry["mu"], entry["wt"])
    close(d, entry["lme4"]["dev_resids"])
    close(d, entry["r"]["dev_resids"])
    close(d.sum(), entry["lme4"]["dev"])


@pytest.mark.parametrize("entry", DEVIANCE, ids=_id)
def test_aic_is_lme4_cpp_aic(entry):
    c = entry["lme4"]
    aic = _family(entry).aic(entry["y"], entry["n"], entry["mu"], entry["wt"], c["dev"])
    if c["aic_is_inf"]:
        assert aic == np.inf
    else:
        close(aic, c["aic"])


def test_binomial_aic_divides_by_rounded_weights_like_lme4():
    """With non-integer weights (m = w), lme4's C++ divides w by round(m), R by m."""
    entry = next(e for e in DEVIANCE if e["label"] == "noninteger_weights")
    aic = F.binomial().aic(entry["y"], entry["n"], entry["mu"], entry["wt"], 0.0)
    close(aic, entry["lme4"]["aic"])
    assert abs(aic - entry["r"]["aic"]) > 1e-3


def test_poisson_aic_is_infinite_for_non_integer_counts():
    entry = next(e for e in DEVIANCE if e["label"] == "noninteger_y")
    assert entry["lme4"]["aic_is_inf"] and entry["r"]["aic_is_inf"]
    assert F.poisson().aic(entry["y"], entry["n"], entry["mu"], entry["wt"], 0.0) == np.inf


# -- initialize ------------------------------------------------------------------------------

def _response(spec: dict[str, Any], categorical_as_series: bool = False) -> Any:
    kind = spec["kind"]
    if kind == "numeric":
        return np.asarray(spec["values"], dtype=float)
    if kind == "logical":
        return np.asarray(spec["values"], dtype=bool)
    if kind == "factor":
        cat = pd.Categorical.from_codes(spec["codes"], categories=spec["levels"])
        return pd.Series(cat) if categorical_as_series else cat
    columns = [spec["successes"], spec["failures"]]
    if kind == "matrix3":
        columns.append(spec["successes"])
    return np.column_stack(columns).astype(float)


@pytest.mark.parametrize("entry", INITIALIZE, ids=_id)
def test_initialize(entry):
    fam = _family(entry)
    y, w, r = _response(entry["response"]), np.asarray(entry["weights"]), entry["r"]
    if "error" in r:
        with pytest.raises(FamilyError, match=re.escape(r["error"])):
            fam.initialize(y, w)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        init = fam.initialize(y, w)
    assert [str(c.message) for c in caught] == r["warnings"]
    for field in ("y", "weights", "n", "mustart"):
        close(getattr(init, field), r[field])


def test_initialize_accepts_categorical_series():
    entry = next(e for e in INITIALIZE if e["response"]["kind"] == "factor")
    init = F.binomial().initialize(_response(entry["response"], True), entry["weights"])
    close(init.y, entry["r"]["y"])
    close(init.mustart, entry["r"]["mustart"])


def test_initialize_default_weights_are_ones():
    entry = next(e for e in INITIALIZE if e["label"] == "zero_one")
    init = F.binomial().initialize(_response(entry["response"]))
    close(init.weights, entry["r"]["weights"])
    close(init.mustart, entry["r"]["mustart"])


def test_initialized_arrays_are_read_only_copies():
    y, w = np.array([0.0, 2.0]), np.array([1.0, 3.0])
    init = F.poisson().initialize(y, w)
    for field in ("y", "weights", "n", "mustart"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(init, field)[0] = 1.0
    y[0] = w[0] = 5.0  # the caller's arrays stay writeable and are not shared
    assert init.y[0] == 0.0 and init.weights[0] == 1.0


@pytest.mark.parametrize("family", ["poisson", "Gamma", "inverse.gaussian"])
def test_categorical_response_only_for_binomial(family):
    y = pd.Categorical(["a", "b", "a"])
    with pytest.raises(FamilyError, match=f"numeric for the '{re.escape(family)}' family"):
        F.make_family(family).initialize(y)


@pytest.mark.parametrize("family", ["binomial", "poisson", "Gamma"])
def test_non_finite_response(family):
    with pytest.raises(FamilyError, match=re.escape("NA/NaN/Inf in 'y'")):
        F.make_family(family).initialize(np.array([1.0, np.nan]))


def test_categorical_with_missing_values():
    y = pd.Categorical(["a", None, "b"])
    with pytest.raises(FamilyError, match=re.escape("NA/NaN/Inf in 'y'")):
        F.binomial().initialize(y)


def test_string_response():
    with pytest.raises(FamilyError, match="response must be numeric"):
        F.binomial().initialize(np.array(["yes", "no"]))


def test_matrix_response_for_poisson():
    with pytest.raises(FamilyError, match=r"must be a vector for the 'poisson' family"):
        F.poisson().initialize(np.ones((3, 2)))


def test_negative_cbind_counts():
    with pytest.raises(FamilyError, match="successes and failures must be non-negative"):
        F.binomial().initialize(np.array([[1.0, 2.0], [-1.0, 3.0]]))


@pytest.mark.parametrize(("weights", "message"), [
    (np.ones(2), r"one value per observation \(3\), not of shape \(2,\)"),
    (np.array([1.0, -1.0, 1.0]), "finite and non-negative"),
    (np.array([1.0, np.nan, 1.0]), "finite and non-negative"),
])
def test_bad_weights(weights, message):
    with pytest.raises(FamilyError, match=message):
        F.poisson().initialize(np.array([1.0, 2.0, 3.0]), weights)


# -- constructors, names, errors ---------------------------------------------------------------

@pytest.mark.parametrize(("make", "name", "link", "scaled"), [
    (F.binomial, "binomial", "logit", False),
    (F.poisson, "poisson", "log", False),
    (F.Gamma, "Gamma", "inverse", True),
    (F.inverse_gaussian, "inverse.gaussian", "1/mu^2", True),
])
def test_defaults_are_r_defaults(make, name, link, scaled):
    fam = make()
    assert (fam.name, fam.link.name, fam.canonical, fam.scaled) == (name, link, True, scaled)
    assert fam == F.make_family(name)


@pytest.mark.parametrize(("family", "link"), [
    ("binomial", "probit"), ("poisson", "sqrt"), ("Gamma", "log"), ("inverse.gaussian", "inverse"),
])
def test_non_canonical_links(family, link):
    fam = F.make_family(family, link)
    assert fam.link.name == link
    assert not fam.canonical


@pytest.mark.parametrize(("family", "bad", "allowed"), [
    ("binomial", "identity", "'logit', 'probit', 'cloglog', 'cauchit', 'log'"),
    ("poisson", "logit", "'log', 'sqrt', 'identity'"),
    ("Gamma", "1/mu^2", "'inverse', 'log', 'identity'"),
    ("inverse.gaussian", "sqrt", "'1/mu^2', 'log', 'inverse', 'identity'"),
    ("binomial", "foo", "'logit', 'probit', 'cloglog', 'cauchit', 'log'"),
])
def test_link_not_allowed(family, bad, allowed):
    msg = f"link '{bad}' not available for the {family} family; available links are {allowed}"
    with pytest.raises(FamilyError, match=re.escape(msg)):
        F.make_family(family, bad)


@pytest.mark.parametrize("name", ["quasipoisson", "Binomial", "inverse gaussian", "Gaussian"])
def test_unknown_family(name):
    with pytest.raises(FamilyError, match=f"unknown family '{name}'"):
        F.make_family(name)


def test_unknown_link():
    with pytest.raises(FamilyError, match="unknown link 'logistic'"):
        F.make_link("logistic")


def test_family_error_is_value_error():
    assert issubclass(FamilyError, ValueError)


def test_aliases_and_family_objects():
    assert F.make_family("gamma") == F.Gamma()
    assert F.make_family("inverse_gaussian", "log") == F.inverse_gaussian("log")
    fam = F.binomial("cloglog")
    assert F.make_family(fam) is fam
    assert F.make_family(fam, "probit") == F.binomial("probit")
    assert F.binomial("log") != F.poisson("log")
    assert repr(F.inverse_gaussian()) == "inverse.gaussian(link='1/mu^2')"


#: η ranges inside each link's domain, and away from lme4's clamps of μ (where the deviance
#: turns flat, e.g. probit beyond |η| = 8.12)
ETA_DOMAIN = {"log": (-8.0, 3.0), "identity": (1e-3, 20.0), "inverse": (1e-3, 20.0),
              "1/mu^2": (1e-3, 20.0), "sqrt": (-6.0, 6.0), "logit": (-20.0, 20.0),
              "probit": (-6.0, 6.0), "cloglog": (-8.0, 3.0), "cauchit": (-50.0, 50.0)}
RESPONSES = {"binomial": (0.0, 0.3, 1.0), "poisson": (0.0, 1.0, 5.0), "Gamma": (0.5, 2.0),
             "inverse.gaussian": (0.5, 2.0)}


@pytest.mark.parametrize(("family", "link"), [
    (fam.name, link) for fam in (F.binomial(), F.poisson(), F.Gamma(), F.inverse_gaussian())
    for link in fam.links])
def test_unique_mode_is_midpoint_convexity_of_the_deviance(family: str, link: str) -> None:
    """Family.unique_mode says the unit deviance is convex in η for every y; check it by
    midpoint convexity on random pairs of η (and find a violation where it says not)."""
    fam = F.make_family(family, link)
    lo, hi = ETA_DOMAIN[link]
    if (family, link) == ("binomial", "log"):
        lo, hi = -8.0, -1e-3   # μ = e^η < 1
    rng = np.random.default_rng(0)
    a, b = rng.uniform(lo, hi, (2, 20_000))
    worst = -np.inf
    for y in RESPONSES[family]:
        def dev(eta: np.ndarray, y: float = y) -> np.ndarray:
            return fam.dev_resids(np.full(eta.shape, y), fam.link.linkinv(eta),
                                  np.ones(eta.shape))
        with np.errstate(all="ignore"):
            excess = dev((a + b) / 2) - (dev(a) + dev(b)) / 2
            scale = 1.0 + np.abs(dev(a)) + np.abs(dev(b))
        worst = max(worst, float(np.nanmax(excess / scale)))
    # rounding of the deviances is ~1e-15 of their size; the violations found are ≥ 0.1
    assert (worst <= 1e-9) == fam.unique_mode, worst


def test_stirlerr_table_is_the_definition_at_whole_numbers() -> None:
    """The table of δ(k) for k ≤ 15, built from constants so that importing glmm does not
    import scipy.special, equals the definition log Γ(k + 1) − (k + ½) log k + k − ½ log 2π
    evaluated with scipy's gammaln, bit for bit."""
    from scipy.special import gammaln

    from glmm.families import nmath

    k = np.arange(1.0, 16.0)
    want = gammaln(k + 1.0) - (k + 0.5) * np.log(k) + k - 0.5 * np.log(2.0 * np.pi)
    np.testing.assert_array_equal(nmath.stirlerr(k), want)


def test_importing_glmm_does_not_import_scipy_special() -> None:
    """scipy.special (with scipy.stats, the slowest import below glmm) loads only when a fit
    needs it: not for import glmm, nor for a binomial–logit fit on the compiled path."""
    import subprocess
    import sys

    code = ("import sys, glmm, pandas as pd\n"
            "assert 'scipy.special' not in sys.modules, 'import'\n"
            "df = pd.DataFrame({'y': [0, 1, 1, 0, 1, 0, 0, 1] * 3,"
            " 'x': [0.1 * i for i in range(24)], 'g': pd.Categorical(['a', 'b', 'c'] * 8)})\n"
            "glmm.glmer('y ~ x + (1 | g)', df, family='binomial')\n"
            "assert glmm.compiled.core is None or 'scipy.special' not in sys.modules, 'fit'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
