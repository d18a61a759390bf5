"""The fit as an object: it pickles to an equal fit, prints short and lme4-like, and keeps its
design and optimisation record (glmm.results.base.MixedModelFit), for every corpus case.

The numbers printed are lme4's quantities as the parity suite checks them; here the test is
that the printout shows the fit's own values and stays short."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import glmm
from parity import fixtures
from parity.cases import CORPUS

CASES = [(c.name, k) for c in CORPUS for k in c.nAGQ]


def _fit(name: str, nagq: int) -> glmm.GlmerFit:
    ref = fixtures.load(name)
    c = ref.case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", glmm.GlmmWarning)   # singular fits print a line too
        return glmm.glmer(c.formula, ref.data.to_pandas(),
                          family=glmm.make_family(c.family, c.link), nAGQ=nagq,
                          weights=c.weights, offset=c.offset)


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}-nAGQ{k}" for n, k in CASES])
def fitted(request) -> glmm.GlmerFit:
    return _fit(*request.param)


def test_pickle_round_trip_gives_an_equal_fit(fitted: glmm.GlmerFit) -> None:
    back = pickle.loads(pickle.dumps(fitted))
    assert type(back) is type(fitted)
    assert back.objective == fitted.objective and back.converged == fitted.converged
    for a, b in ((back.theta, fitted.theta), (back.beta, fitted.beta), (back.u, fitted.u),
                 (back.b, fitted.b)):
        np.testing.assert_array_equal(a, b)
    assert back.fixef.equals(fitted.fixef)
    assert all(back.ranef[g].equals(fitted.ranef[g]) for g in fitted.ranef)
    # the objective still works after the round trip (compiled state rebuilt on first use),
    # and away from the optimum gives the original's value: the same function
    away = fitted.optsummary.final + 0.05
    assert back.devfun(away) == pytest.approx(fitted.devfun(away), rel=1e-12, abs=1e-10)


def test_repr_is_short_and_shows_the_fit(fitted: glmm.GlmerFit) -> None:
    text = repr(fitted)
    lines = text.splitlines()
    assert len(lines) < 40, text
    assert str(fitted) == text
    assert f"Formula: {fitted.formula}" in lines
    assert f" Family: {fitted.family.name}  ( {fitted.family.link.name} )" in lines
    assert f"{fitted.aic:9.4f}" in text and f"{fitted.objective:9.4f}" in text
    assert f"Number of obs: {fitted.nobs}," in text
    for t in fitted.design.random.terms:
        assert t.group in text
    assert ("boundary (singular) fit" in text) == fitted.singular


def test_optsummary_records_the_search(fitted: glmm.GlmerFit) -> None:
    s = fitted.optsummary
    assert s.feval == fitted.feval > 0
    k = len(fitted.theta) + (0 if fitted.nAGQ == 0 else len(fitted.beta))
    assert len(s.start) == len(s.final) == k
    np.testing.assert_array_equal(s.final[:len(fitted.theta)], fitted.theta)
    assert s.fmin == fitted.objective
    assert np.isfinite(s.gradient_norm) and s.gradient_norm >= 0
    # lme4's start: θ = 1 on the diagonals, 0 below (docs/lme4-conventions.md §1)
    np.testing.assert_array_equal(s.start[:len(fitted.theta)], fitted.design.random.theta0)
    assert "evaluations" in str(s) and s.message in str(s)


def test_design_keeps_what_rebuilds_it() -> None:
    """The design keeps the factor levels (R's xlev) and scale()'s centre and scale (R's
    predvars), as R computes them on the fitted data."""
    ref = fixtures.load("grouseticks")
    df = ref.data.to_pandas().copy()
    c = ref.case
    fit = glmm.glmer(c.formula.replace("YEAR", "YEAR + scale(HEIGHT)", 1), df,
                     family=glmm.make_family(c.family, c.link), nAGQ=0)
    sc = fit.design.scalings["scale(HEIGHT)"]
    h = df["HEIGHT"].to_numpy(dtype=float)
    assert sc.center == pytest.approx((h.mean(),), rel=1e-15)
    assert sc.scale == pytest.approx((h.std(ddof=1),), rel=1e-14)
    assert fit.design.levels["YEAR"] == tuple(df["YEAR"].cat.categories)
