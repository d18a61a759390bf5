"""Randomised parity against live lme4: random GLMM problems, fitted by glmm and by lme4.

The search itself (``test_random_problems_agree_with_lme4``) is marked ``slow`` and runs only
when asked for, with live R::

    .venv/bin/python -m pytest -p no:cacheprovider -m slow tests/test_random_parity.py

Environment variables:

- ``PARITY_RANDOM_EXAMPLES``: how many problems (default 150: every structure and
  family, ~1 s each);
- ``PARITY_RANDOM_SEED``: an integer draws a different set of problems; without it the set
  is fixed (hypothesis's derandomised mode), so that a run is repeatable;
- ``PARITY_RANDOM_REPORT``: a path; every outcome is written there as JSON, each failure and
  each "better" case with its R and Python reproductions;
- ``PARITY_RANDOM_KEEP_GOING``: non-empty: count every failure instead of stopping (and
  shrinking) at the first; the test still fails at the end if any problem failed.

A failure shrinks to a minimal problem (hypothesis gives up shrinking after five minutes),
and its message holds a ready-to-paste R script and a Python snippet.  The problems it found
failing are kept in ``FOUND`` (also slow).  The verdicts are defined in
parity.random_parity.  The other tests here are fast and check the generator, the
reproductions and the verdicts.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, find, given, seed, settings

import parity.random_parity as rp
from parity.compare import TIGHT_OBJECTIVE, Row
from parity.random_problems import (
    NAGQ_VALUES,
    STRUCTURES,
    Problem,
    min_rows,
    problems,
    python_script,
    r_double,
    r_script,
)

EXAMPLES_ENV = "PARITY_RANDOM_EXAMPLES"
SEED_ENV = "PARITY_RANDOM_SEED"
REPORT_ENV = "PARITY_RANDOM_REPORT"
KEEP_GOING_ENV = "PARITY_RANDOM_KEEP_GOING"
DEFAULT_EXAMPLES = 150

SMALL = Problem(family="poisson", link="log", response="count", structure="scalar",
                levels=(4, 0), rows=30, factor_covariate=True, intercept=1.0, slope=0.5,
                sd=(0.8, 0.0), corr=0.0, weights="continuous", offset="argument", shape=0.0,
                nAGQ=1, seed=12)


# -- the search against live R (slow) ------------------------------------------------------
class _Summary:
    """A plugin registered by the ``tally`` fixture: the tally in the terminal summary."""

    def __init__(self, tally: rp.Tally) -> None:
        self.tally = tally

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not len(self.tally):
            return
        terminalreporter.section("randomised parity against live lme4")
        for line in self.tally.summary():
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest):
    t = rp.Tally()
    request.config.pluginmanager.register(_Summary(t), "parity-random-summary")
    yield t
    path = os.environ.get(REPORT_ENV)
    if path and len(t):
        t.write(path)


@pytest.fixture(scope="session")
def asked_for_slow(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("randomised parity against live R is slow: run it with `-m slow` "
                    f"({EXAMPLES_ENV}=N sets the number of problems)")


@pytest.mark.slow
@pytest.mark.live_r
def test_random_problems_agree_with_lme4(asked_for_slow, r_session, tally) -> None:
    keep_going = bool(os.environ.get(KEEP_GOING_ENV))
    chosen_seed = os.environ.get(SEED_ENV)

    @settings(max_examples=int(os.environ.get(EXAMPLES_ENV, DEFAULT_EXAMPLES)), deadline=None,
              database=None, derandomize=chosen_seed is None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow],
              # no explain phase: its extra runs cost a fit each, and the failure already
              # prints the whole problem
              phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
    @given(problem=problems())
    def check(problem: Problem) -> None:
        outcome = rp.compare_problem(problem, r_session)
        tally.add(outcome)
        if outcome.verdict == "fail" and not keep_going:
            raise AssertionError(outcome.explain())

    if chosen_seed is not None:
        check = seed(int(chosen_seed))(check)
    check()
    failures = tally.of("fail")
    assert not failures, "\n\n".join(o.explain() for o in failures)


#: Problems the search found failing (or, the last, "flat"), kept as regressions: each one
#: ran against live lme4 1.1-31 here, and the comment says what glmm did then.
FOUND: dict[str, Problem] = {
    # glmm's devfun at its own optimum (θ = 2.42) 484.50 where lme4's is 504.30: another mode
    # (PIRLS started from u = 0, not from lme4's stored linear predictor)
    "sqrt-scalar-mode": Problem(
        family="poisson", link="sqrt", response="count", structure="scalar", levels=(4, 0),
        rows=195, factor_covariate=True, intercept=1.1, slope=0.0, sd=(0.5, 0.0), corr=0.0,
        weights="continuous", offset="none", shape=0.0, nAGQ=1, seed=262),
    # OptimizationError: PIRLS did not converge at the start (Fisher scoring's linear rate,
    # 0.71 a step); lme4 fits it (singular)
    "sqrt-crossed-start": Problem(
        family="poisson", link="sqrt", response="count", structure="crossed", levels=(12, 3),
        rows=40, factor_covariate=False, intercept=1.0, slope=0.15, sd=(0.0, 0.0), corr=0.0,
        weights="continuous", offset="formula", shape=0.0, nAGQ=1, seed=38440996),
    # quasi-separation (zc: all y = 0) at nAGQ = 0: an OptimizationError at the start, now a
    # SeparationError naming zc; lme4 fits without a warning (nAGQ = 1 fits, with a
    # SeparationWarning)
    "logit-crossed-separation": Problem(
        family="binomial", link="logit", response="binary", structure="crossed", levels=(3, 3),
        rows=96, factor_covariate=True, intercept=-2.0, slope=0.7, sd=(0.15, 0.0), corr=0.0,
        weights="none", offset="argument", shape=0.0, nAGQ=0, seed=479737),
    # quasi-separation: the same objective to 1e-13, zc = 175 where lme4 stops at 4.02
    "cloglog-flat": Problem(
        family="binomial", link="cloglog", response="binary", structure="scalar", levels=(4, 0),
        rows=18, factor_covariate=True, intercept=0.2, slope=0.2, sd=(0.2, 0.0), corr=0.0,
        weights="integer", offset="none", shape=0.0, nAGQ=5, seed=80429266),
}


@pytest.mark.slow
@pytest.mark.live_r
@pytest.mark.parametrize("name", list(FOUND))
def test_found_problems_agree_with_lme4(asked_for_slow, r_session, tally, name: str) -> None:
    outcome = rp.compare_problem(FOUND[name], r_session)
    tally.add(outcome)
    assert outcome.verdict != "fail", outcome.explain()


# -- the generator -------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(problem=problems())
def test_drawn_problems_are_well_formed(problem: Problem) -> None:
    data = problem.dataset()
    assert data.nrow == problem.rows >= min_rows(problem.structure, problem.levels)
    assert problem.nAGQ in NAGQ_VALUES and (problem.nAGQ <= 1 or problem.structure == "scalar")
    frame = data.to_pandas()
    # every grouping factor's every level is used, so lme4 drops none
    for name in ("g", "h", "a", "b"):
        if name in frame:
            assert frame[name].value_counts().min() >= 1
    if problem.family == "binomial":
        y = frame["s"] / frame["n"] if problem.response == "cbind" else frame["y"]
        assert ((y >= 0) & (y <= 1)).all()
    elif problem.family == "poisson":
        assert (frame["y"] >= 0).all() and frame["y"].dtype == np.int64
    else:
        assert (frame["y"] > 0).all()
    if problem.weights_column:
        assert (frame[problem.weights_column] > 0).all()
    assert problem.dataset() == data  # the same seed, the same data


@pytest.mark.parametrize("want", [
    *[("structure", v) for v in STRUCTURES], *[("nAGQ", v) for v in NAGQ_VALUES],
    *[("response", v) for v in ("binary", "proportion", "cbind", "count", "positive")],
    *[("weights", v) for v in ("none", "integer", "trials", "continuous")],
    *[("offset", v) for v in ("none", "argument", "formula")],
    *[("link", v) for v in ("logit", "probit", "cloglog", "log", "sqrt")],
])
def test_the_strategy_reaches(want: tuple[str, object]) -> None:
    field, value = want
    found = find(problems(), lambda p: getattr(p, field) == value,  # the first, unshrunk
                 settings=settings(database=None, max_examples=2000, phases=[Phase.generate]))
    assert getattr(found, field) == value


@pytest.mark.parametrize("structure, levels", [("scalar", (15, 0)), ("vector", (15, 0)),
                                               ("nested", (6, 4)), ("crossed", (12, 8))])
def test_every_level_is_used_at_the_fewest_rows(structure: str, levels: tuple[int, int]) -> None:
    # lme4 drops unused levels of a grouping factor; the data never have any
    for s in range(40):
        p = dataclasses.replace(SMALL, structure=structure, levels=levels, seed=s,
                                rows=min_rows(structure, levels))
        frame = p.dataset().to_pandas()
        cells = frame.groupby(["a", "b"], observed=False).size() if structure == "nested" \
            else frame.groupby("g", observed=False).size()
        assert cells.min() >= 1, (p, cells[cells == 0])
        if structure == "crossed":
            assert frame.groupby("h", observed=False).size().min() >= 1


def test_formula_and_arguments() -> None:
    p = dataclasses.replace(SMALL, structure="crossed", levels=(3, 4), offset="formula",
                            response="count", factor_covariate=False)
    assert p.formula == "y ~ x + offset(off) + (1 | g) + (1 | h)"
    assert (p.weights_column, p.offset_column) == ("w", None)
    q = dataclasses.replace(SMALL, family="binomial", link="probit", response="cbind",
                            weights="none", structure="uncorrelated", levels=(5, 0), rows=40)
    assert q.formula == "cbind(s, n - s) ~ x + z + (x || g)"
    assert (q.weights_column, q.offset_column) == (None, "off")
    with pytest.raises(ValueError, match="nAGQ > 1"):
        dataclasses.replace(SMALL, structure="vector", rows=40, nAGQ=5)


# -- the reproductions ---------------------------------------------------------------------
#: Doubles that R's parser does not read back exactly from their shortest decimal repr
#: (found by comparing R's parse of repr(v) with its parse of v.hex()).
R_MISREAD = (0.005754, 7.856e-05, 58.467333, 0.0838303514515348, -0.0291377828780986,
             1519.67604314015)


def test_r_double_needs_no_correctly_rounded_parser() -> None:
    # a short exact decimal stays readable; anything else is written in hexadecimal
    assert r_double(0.015625) == "0.015625" and r_double(-3.0) == "-3.0"
    assert all(r_double(v) == v.hex() for v in R_MISREAD)
    assert r_double(None) == "NA" and r_double(float("inf")) == "Inf"


@pytest.mark.live_r
def test_r_script_data_reach_r_bit_for_bit(r_session) -> None:
    from parity.dataset import Column, Dataset

    values = (*R_MISREAD, 0.1, 2 / 3, 1e-300, 0.015625, -1.5)
    data = Dataset((Column("v", "double", values),))
    script = r_script(SMALL, data)
    expr = script[script.index("data.frame("):script.index("\ndefault <-")]
    assert r_session.make_data(expr) == data
    gamma = dataclasses.replace(SMALL, family="Gamma", response="positive", shape=2.0)
    full = gamma.dataset()
    script = r_script(gamma, full)
    expr = script[script.index("data.frame("):script.index("\ndefault <-")]
    assert r_session.make_data(expr) == full


def test_python_script_rebuilds_the_data_and_the_fit() -> None:
    import glmm

    data = SMALL.dataset()
    namespace: dict[str, object] = {}
    code = python_script(SMALL, data, params=[0.5, 1.0, 0.3, 0.0, 0.0])
    exec(compile(code, "<python_script>", "exec"), namespace)  # prints the fit
    pd.testing.assert_frame_equal(namespace["data"], data.to_pandas())
    fit = glmm.glmer(SMALL.formula, data.to_pandas(), family=glmm.poisson(), nAGQ=1,
                     weights="w", offset="off")
    assert namespace["fit"].objective == fit.objective


# -- the verdicts --------------------------------------------------------------------------
def _outcome(probe: str = "pass", tight: str = "pass", default: str = "pass",
             gap: float = 0.0, warned: bool = False, own_default: str = "pass",
             lme4_there: float | None = None) -> rp.Outcome:
    rows = [Row("c", 1, "probe", "probe-objective", probe),
            Row("c", 1, "tight", "m2loglik", tight),
            Row("c", 1, "default", "default-fixef", default)]
    out = rp.Outcome(SMALL, "pass", rows=rows, objective_gap=gap, lme4_tight_objective=100.0,
                     lme4_warnings=["Model failed to converge"] if warned else [],
                     lme4_at_glmm=None if lme4_there is None else 100.0 + lme4_there)
    if own_default == "fail":
        out.lme4_default_rows = [Row("c", 1, "default", "default-fixef", "fail")]
    rp._judge(out)
    return out


def test_verdicts() -> None:
    bound = float(TIGHT_OBJECTIVE.bound(np.array(100.0)))
    assert _outcome().verdict == "pass"
    assert _outcome(probe="fail").verdict == "fail"
    # lower by more than the tight bound, on the same objective: better, whatever the tiers
    assert _outcome(tight="fail", default="fail", gap=-2 * bound).verdict == "better"
    assert _outcome(tight="fail", gap=-0.5 * bound).verdict == "fail"
    # ... but never when the objectives differ
    assert _outcome(probe="fail", tight="fail", gap=-0.65).verdict == "fail"
    # lme4 warned: only the probes are required
    assert _outcome(tight="fail", default="fail", gap=3.0, warned=True).verdict == "pass"
    assert _outcome(probe="fail", warned=True).verdict == "fail"
    # the default tier binds only where lme4's own tight optimum meets it
    assert _outcome(default="fail").verdict == "fail"
    assert _outcome(default="fail", own_default="fail").verdict == "pass"
    # parameters apart at the same objective, by both devfuns: a flat direction, not a failure
    flat = _outcome(tight="fail", default="fail", gap=0.5 * bound, lme4_there=-0.5 * bound)
    assert flat.verdict == "flat"
    assert _outcome(tight="fail", gap=0.5 * bound, lme4_there=2 * bound).verdict == "fail"
    assert _outcome(tight="fail", gap=0.5 * bound).verdict == "fail"  # lme4 not probed there


def test_tally_counts_each_problem_once() -> None:
    t = rp.Tally()
    t.add(_outcome())
    t.add(_outcome(probe="fail"))  # the same problem again: replaces the first
    other = _outcome(gap=-1.0)
    other.problem = dataclasses.replace(SMALL, seed=13)
    t.add(other)
    assert len(t) == 2 and [o.verdict for o in t.of("fail")] == ["fail"]
    text = "\n".join(t.summary())
    assert "2 problems" in text and "fail 1" in text and "better 1" in text


# -- the comparison, on one problem against live R -----------------------------------------
@pytest.mark.live_r
def test_a_small_problem_passes(r_session) -> None:
    out = rp.compare_problem(SMALL, r_session)
    assert out.verdict == "pass", out.explain()
    assert out.tier_ok("probe") and out.tier_ok("tight") and out.tier_ok("default")
    assert {r.tier for r in out.rows} == {"probe", "tight", "default"}
    assert abs(out.objective_gap) <= TIGHT_OBJECTIVE.bound(np.array(out.lme4_tight_objective))


@pytest.mark.live_r
def test_a_devfun_off_by_1e7_relative_fails(r_session, monkeypatch) -> None:
    from parity.candidates import GlmmCandidate

    class Shifted(GlmmCandidate):
        def devfun(self, ref, nAGQ, points):
            return [dataclasses.replace(p, objective=p.objective * (1 + 1e-7))
                    for p in super().devfun(ref, nAGQ, points)]

    monkeypatch.setattr(rp, "GlmmCandidate", Shifted)
    out = rp.compare_problem(SMALL, r_session)
    assert out.verdict == "fail" and not out.tier_ok("probe")
    assert "library(lme4)" in out.explain() and "glmm.glmer(" in out.explain()
