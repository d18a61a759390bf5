"""glmer's ``control`` (glmm.GlmerControl) and ``start``: each setting changes what it names,
a start reaches lme4's optimum, and every bad value is a typed error naming it.  lme4's
optimum is the cbpp fixture's tight fit (parity/corpus/cbpp.json)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import glmm
from parity import fixtures

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp():
    return fixtures.load("cbpp")


def _fit(ref, **kw) -> glmm.GlmerFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", glmm.GlmmWarning)
        return glmm.glmer(CBPP, ref.data.to_pandas(), **kw)


def _lme4_tight(ref, nAGQ: int = 1):
    return ref.results[nAGQ].tight


def test_default_control_is_the_default_fit(cbpp) -> None:
    a, b = _fit(cbpp), _fit(cbpp, control=glmm.GlmerControl())
    assert a.objective == b.objective and a.optsummary.feval == b.optsummary.feval
    c = _fit(cbpp, control={"gtol": 1e-6})   # a dict of the fields is the same control
    assert c.objective == a.objective


def test_start_reaches_lme4s_optimum(cbpp) -> None:
    t = _lme4_tight(cbpp)
    fit = _fit(cbpp, start={"theta": [0.2], "fixef": [-1.0, -1.0, -1.0, -1.5]})
    np.testing.assert_array_equal(fit.optsummary.start, [0.2, -1.0, -1.0, -1.0, -1.5])
    # the tight tier's bounds (parity/quantities.py): the same optimum from another start
    assert fit.objective == pytest.approx(t.objective, abs=1e-6)
    np.testing.assert_allclose(fit.theta, t.theta, atol=1e-4)
    np.testing.assert_allclose(fit.fixef.to_numpy(), t.fixef, atol=1e-4)


def test_start_theta_vector_at_nagq0(cbpp) -> None:
    t = _lme4_tight(cbpp, 0)
    fit = _fit(cbpp, nAGQ=0, start=[1.5])
    assert fit.optsummary.start.tolist() == [1.5]
    assert fit.objective == pytest.approx(t.objective, abs=1e-6)


def test_max_iter_stops_the_search(cbpp) -> None:
    with pytest.warns(glmm.ConvergenceWarning, match="1 iterations"):
        fit = glmm.glmer(CBPP, cbpp.data.to_pandas(), control=glmm.GlmerControl(max_iter=1))
    assert not fit.converged
    assert fit.objective > _lme4_tight(cbpp).objective + 1e-3   # one step is not the optimum


def test_check_conv_tolerance_and_actions(cbpp) -> None:
    df = cbpp.data.to_pandas()
    tiny = {"check_conv_grad": 1e-12}   # below any gradient the search leaves at its end
    fit = glmm.glmer(CBPP, df, control=tiny)
    with pytest.warns(glmm.GradientWarning, match=r"tol = 1e-12"):
        assert fit.optsummary.checks.codes == (-1,)
    quiet = glmm.glmer(CBPP, df, control={**tiny, "check_conv": "ignore"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", glmm.GlmmWarning)
        assert quiet.optsummary.checks.codes == (-1,)   # kept, not warned
    with pytest.raises(glmm.ConvergenceError, match="max\\|grad\\|"):
        glmm.glmer(CBPP, df, control={**tiny, "check_conv": "stop"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", glmm.GlmmWarning)
        assert glmm.glmer(CBPP, df, control={"check_conv": "stop"}).optsummary.checks.ok


def test_refit_and_pickle_keep_the_control(cbpp) -> None:
    ctrl = glmm.GlmerControl(check_conv="ignore", gtol=1e-8)
    fit = _fit(cbpp, control=ctrl)
    assert fit.refit().control == ctrl
    assert pickle.loads(pickle.dumps(fit)).control == ctrl


@pytest.mark.parametrize(("kw", "error", "match"), [
    ({"control": {"gtol": -1.0}}, glmm.ArgumentError, "gtol must be a finite number"),
    ({"control": {"xtol": float("nan")}}, glmm.ArgumentError, "xtol"),
    ({"control": {"dtol": "1e-3"}}, glmm.ArgumentTypeError, "dtol must be a number"),
    ({"control": {"max_iter": 0}}, glmm.ArgumentError, "max_iter must be between 1"),
    ({"control": {"max_iter": 2.5}}, glmm.ArgumentTypeError, "max_iter must be an integer"),
    ({"control": {"check_conv": "warn"}}, glmm.ArgumentError, "check_conv must be one of"),
    ({"control": {"tolPwrss": 1e-7}}, glmm.ArgumentError,
     r"unknown control settings \['tolPwrss'\]"),
    ({"control": 3}, glmm.ArgumentTypeError, "control must be a glmm.GlmerControl"),
    ({"start": [-0.5]}, glmm.ArgumentError, "below their lower bound"),
    ({"start": [1.0, 2.0]}, glmm.ArgumentError, "start must be a vector of 1 finite numbers θ"),
    ({"start": [float("inf")]}, glmm.ArgumentError, "finite"),
    ({"start": "1"}, glmm.ArgumentTypeError, "start must be a vector"),
    ({"start": {"theta": [1.0], "beta": [0.0]}}, glmm.ArgumentError, r"unknown entries \['beta'\]"),
    ({"start": {"fixef": [0.0]}}, glmm.ArgumentError, r"start\['fixef'\] must be a vector of 4"),
    ({"start": {"fixef": [0.0] * 4}, "nAGQ": 0}, glmm.ArgumentError, "profiled"),
])
def test_bad_control_and_start_are_typed_errors(cbpp, kw, error, match) -> None:
    with pytest.raises(error, match=match):
        glmm.glmer(CBPP, cbpp.data.to_pandas(), **kw)


def test_gaussian_hand_over_refuses_a_glmer_control(cbpp) -> None:
    df = fixtures.load("sleepstudy").data.to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", glmm.GaussianShortcutWarning)
        with pytest.raises(glmm.ArgumentError, match="lmer"):
            glmm.glmer("Reaction ~ Days + (1 | Subject)", df, family="gaussian",
                       control=glmm.GlmerControl())


def test_a_warm_start_at_the_optimum_is_converged(cbpp) -> None:
    first = _fit(cbpp, nAGQ=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", glmm.ConvergenceWarning)
        again = glmm.glmer(CBPP, cbpp.data.to_pandas(), nAGQ=0, start=first.theta)
    assert again.converged and again.objective == pytest.approx(first.objective, abs=1e-9)


def test_numpy_numbers_and_any_mapping_are_accepted(cbpp) -> None:
    from types import MappingProxyType

    ctrl = glmm.GlmerControl.of(MappingProxyType({"max_iter": np.int64(50),
                                                  "gtol": np.float32(1e-6)}))
    assert ctrl.max_iter == 50 and type(ctrl.max_iter) is int and type(ctrl.gtol) is float
    with pytest.raises(glmm.ArgumentError, match="max_iter must be between 1 and"):
        glmm.GlmerControl(max_iter=10**30)


def test_a_bad_user_start_is_named_in_the_error(cbpp) -> None:
    with pytest.raises(glmm.OptimizationError, match="the start given"):
        glmm.glmer(CBPP, cbpp.data.to_pandas(), start=[1e300])
