"""The live R bridge (skipped with the reason when R, lme4 or rpy2 is missing).

Expected values here are lme4's own, recorded in tests/data/lme4-reference-values.md from separate
Rscript runs, never computed by this project's code."""

from __future__ import annotations

import pytest

from parity import fixtures
from parity.cases import get_case
from parity.dataset import Column, Dataset

pytestmark = pytest.mark.live_r


def test_versions(r_session) -> None:
    v = r_session.versions
    assert v["r_version"].startswith("4.") and v["lme4_version"]


def test_data_round_trip_keeps_types_and_levels(r_session) -> None:
    ref = fixtures.load("verbagg")
    again = r_session.make_data(get_case("verbagg").data_r)
    assert again == ref.data
    assert again.column("resp").ordered  # VerbAgg resp is an ordered factor


def test_c_locale_level_order(r_session) -> None:
    ds = r_session.make_data('data.frame(g = factor(c("b", "B", "a", "_")), x = c(1.5, NA, 3, 4))')
    # C collation: by byte, so "B" < "_" < "a" < "b" (a locale sort would give _ a b B)
    assert ds.column("g").levels == ("B", "_", "a", "b")
    assert ds.column("x").values == (1.5, None, 3.0, 4.0)


def test_python_data_reaches_r_unchanged(r_session) -> None:
    ds = Dataset((Column("g", "factor", (1, 0, None), ("z", "a")),
                  Column("n", "integer", (1, None, 3)),
                  Column("l", "logical", (True, None, False)),
                  Column("x", "double", (0.1, 1e-300, None))))
    df = r_session.dataframe(ds)
    from parity.r_bridge import dataset_from_r

    assert dataset_from_r(df) == ds


def test_cbpp_default_fit_matches_recorded_lme4(r_session) -> None:
    case = get_case("cbpp")
    data = r_session.make_data(case.data_r)
    fit = r_session.fit(data, case.spec(), 1, "default")
    # tests/data/lme4-reference-values.md #1, #2: cbpp nAGQ=1 with default control
    assert fit["dev"] == pytest.approx(184.053132779061, abs=1e-9)
    assert fit["deviance"] == pytest.approx(73.4742835743, abs=1e-9)
    assert fit["aic"] == pytest.approx(194.05313278, abs=1e-8)
    assert fit["fixef"]["values"][0] == pytest.approx(-1.398342864471, abs=1e-11)
    assert fit["optinfo"]["feval"] == 285
    assert fit["fixef"]["names"] == ["(Intercept)", "period2", "period3", "period4"]


def test_probe_at_fixed_parameters_matches_recorded_lme4(r_session) -> None:
    case = get_case("cbpp")
    data = r_session.make_data(case.data_r)
    res = r_session.probe(data, case.spec(), 1, [[1, -1.4, -1, -1.1, -1.6]])
    # #5: at θ=1, β=(-1.4,-1,-1.1,-1.6) a fresh lme4 devfun gives 186.7266391122 (its L
    # lags one PIRLS iteration); independent converged R code gives 186.726638820616, which
    # lme4 reproduces once PIRLS restarts from its own mode
    pt = res["points"][0]
    assert pt["objective_lagged"] == pytest.approx(186.7266391122, abs=1e-9)
    assert pt["objective"] == pytest.approx(186.726638820616, abs=1e-9)
    res25 = r_session.probe(data, case.spec(), 25, [[1, -1.4, -1, -1.1, -1.6]])
    assert res25["points"][0]["objective"] == pytest.approx(102.5707362250, abs=1e-9)  # #8


def test_warnings_and_messages_are_captured(r_session) -> None:
    case = get_case("contraception-urban-district")
    data = r_session.make_data(case.data_r)
    fit = r_session.fit(data, case.spec(), 1, "tight")
    assert any("nearly unidentifiable" in w for w in fit["warnings"])


def test_r_failure_is_a_typed_error(r_session) -> None:
    from parity.errors import RFitError

    with pytest.raises(RFitError, match="could not build the data"):
        r_session.make_data("stop('no such data')")


# -- the time limit of live-R calls (parity.deadline) --------------------------------------------
def test_sleeping_data_expression_is_a_failing_row(tmp_path) -> None:
    from parity.candidates import FixtureCandidate
    from parity.cases import Case
    from parity.runner import run
    from parity.sources import LiveRSource

    woke = tmp_path / "woke"
    sleepy = Case("sleepy", "cbpp after a 20 s sleep",
                  f'{{Sys.sleep(20); system("touch {woke}"); lme4::cbpp}}',
                  "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial",
                  "logit", (1,))
    result = run([sleepy], LiveRSource(timeout=2), FixtureCandidate())
    assert [(r.tier, r.status) for r in result.rows] == [("reference", "fail")]
    assert "did not finish within 2 s" in result.rows[0].note
    assert not woke.exists()  # R was stopped in its sleep, not waited for


def test_long_fit_times_out_and_the_session_survives(r_session) -> None:
    from parity.candidates import LiveRCandidate
    from parity.cases import Case
    from parity.errors import RTimeoutError
    from parity.results import CaseReference

    # VerbAgg four times over: lme4 fits it in several seconds, far beyond the 1 s limit
    expr = "do.call(rbind, rep(list(lme4::VerbAgg), 4))"
    case = Case("verbagg-x4", "VerbAgg four times", expr, get_case("verbagg").formula,
                "binomial", "logit", (1,))
    big = CaseReference(case, {}, r_session.make_data(expr), {})
    with pytest.raises(RTimeoutError, match=r"glmer\(\) \(case 'verbagg-x4', nAGQ=1, tight "
                                            r"control\) did not finish within 1 s"):
        LiveRCandidate(timeout=1).fit(big, case.variant(1))
    # the parent's R was not touched: the recorded cbpp fit still comes out (#1)
    cbpp = get_case("cbpp")
    fit = r_session.fit(r_session.make_data(cbpp.data_r), cbpp.spec(), 1, "default")
    assert fit["dev"] == pytest.approx(184.053132779061, abs=1e-9)


def test_cli_r_timeout_gives_failing_rows(capsys) -> None:
    from parity.cli import main

    # 1 ms: not even R's data expression for seed finishes in a forked child
    rc = main(["run", "--source", "r", "--candidate", "fixture", "--case", "seed",
               "--r-timeout", "0.001", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "did not finish within 0.001 s" in " ".join(out.split())
