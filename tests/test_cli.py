"""The CLI runs on fixtures alone, prints the table, writes reports and sets its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parity.cli import main

pytest_plugins = ["pytester"]


def test_run_on_fixtures_without_r_prints_table(tmp_path: Path) -> None:
    env = {**os.environ, "PARITY_DISABLE_R": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "parity", "run", "--source", "fixtures", "--no-progress",
         "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "candidate: glmm" in out  # auto: the engine, which needs no R
    for case in ("seed", "cbpp", "verbagg", "sleepstudy-gamma"):
        assert case in out
    assert "probe-objective" in out and "default-m2loglik" in out
    assert " 0 failed" in out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["summary"]["fail"] == 0 and rep["summary"]["skip"] == 0
    assert rep["summary"]["pass"] == 476  # 34 case × nAGQ pairs × 14 quantities
    assert (tmp_path / "r.md").read_text().startswith("# Parity report")


def test_failures_give_exit_1(tmp_path: Path, capsys) -> None:
    src = Path(__file__).resolve().parent.parent / "fixtures" / "cbpp.json"
    doc = json.loads(src.read_text())
    # the stored tight optimum made worse than lme4's default point: the default tier fails
    doc["results"]["1"]["tight"]["dev"] += 0.01
    (tmp_path / "cbpp.json").write_text(json.dumps(doc))
    rc = main(["run", "--source", "fixtures", "--candidate", "fixture", "--case", "cbpp",
               "--fixtures-dir", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "fail" in out and "default-m2loglik" in out


def test_broken_fixture_is_reported(tmp_path: Path, capsys) -> None:
    (tmp_path / "seed.json").write_text("{not json")
    rc = main(["run", "--source", "fixtures", "--candidate", "fixture", "--case", "seed",
               "--fixtures-dir", str(tmp_path), "--no-progress"])
    assert rc == 2  # a malformed input, not a failed comparison
    assert "seed.json" in capsys.readouterr().out


def test_unknown_case_exit_2(capsys) -> None:
    assert main(["run", "--source", "fixtures", "--case", "nope", "--no-progress"]) == 2
    assert "unknown case 'nope'" in capsys.readouterr().out


def test_fixture_self_check_without_r(capsys) -> None:
    rc = main(["run", "--source", "fixtures", "--candidate", "fixture", "--case", "cbpp",
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "fixture's own lme4 tight fit" in out
    assert "the candidate is the reference's own tight fit" in out


def test_list(capsys) -> None:
    assert main(["list"]) == 0
    assert "cbind(incidence, size - incidence)" in capsys.readouterr().out


def test_disabled_r_is_reported_not_crashed() -> None:
    code = ("from parity.r_bridge import r_available; ok, why = r_available(); "
            "print(ok, why)")
    env = {**os.environ, "PARITY_DISABLE_R": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert out.startswith("False live R is disabled by PARITY_DISABLE_R")


# -- malformed fixtures: exit 2, the file and the field named, no traceback ---------------------
def _seed_doc() -> dict:
    return json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "seed.json")
                      .read_text())


def _dup_column(d: dict) -> None:
    d["data"]["columns"][2]["name"] = d["data"]["columns"][0]["name"]


def _code_out_of_range(d: dict) -> None:
    d["data"]["columns"][1]["values"][0] = 7  # subject has 3 levels


BROKEN = {
    # the four of issue 12, each a traceback and exit 1 before
    "non-UTF-8": (lambda t: t.encode().replace(b"toy", b"to\xff"), "field $: not UTF-8"),
    "extra key in the case": (lambda d: d["case"].update(extra=1), "field $.case.extra"),
    "duplicated column name": (_dup_column, "field $.data.columns[2].name"),
    "factor code out of range": (_code_out_of_range, "field $.data.columns[1].values[0]"),
    # a fixture whose case is not the corpus entry of its name
    "case differs from the corpus": (lambda d: d["case"].update(description="other"),
                                     "field $.case.description"),
}


@pytest.mark.parametrize("what", sorted(BROKEN))
def test_malformed_fixture_exit_2_names_file_and_field(what: str, tmp_path: Path,
                                                       capsys) -> None:
    edit, field = BROKEN[what]
    path = tmp_path / "seed.json"
    if what == "non-UTF-8":
        path.write_bytes(edit(json.dumps(_seed_doc())))
    else:
        doc = _seed_doc()
        edit(doc)
        path.write_text(json.dumps(doc))
    rc = main(["run", "--source", "fixtures", "--candidate", "fixture", "--case", "seed",
               "--case", "cbpp", "--fixtures-dir", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 2
    assert f"malformed fixture: {path}: {field}" in " ".join(out.split())
    assert "reference" in out and "fail" in out  # its case is a failing row, the run goes on
    assert "no such fixture file" in out  # cbpp, absent from the folder: also reported


def test_malformed_fixture_gives_no_traceback_in_a_subprocess(tmp_path: Path) -> None:
    doc = _seed_doc()
    doc["case"]["extra"] = 1
    (tmp_path / "seed.json").write_text(json.dumps(doc))
    env = {**os.environ, "PARITY_DISABLE_R": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "parity", "run", "--source", "fixtures", "--candidate",
         "fixture", "--case", "seed", "--fixtures-dir", str(tmp_path), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "$.case.extra" in proc.stdout


# -- --r-timeout ------------------------------------------------------------------------------
def test_r_timeout_is_documented_in_help(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--r-timeout SECONDS" in out and "default: 300" in out


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "soon"])
def test_bad_r_timeout_exit_2(bad: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--source", "fixtures", "--r-timeout", bad, "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--r-timeout" in err and "not a number of seconds >= 0" in err


def test_json_report_with_a_nan_difference() -> None:
    from parity.compare import Row
    from parity.report import to_json

    rows = [Row("seed", 1, "tight", "m2loglik", "fail", float("nan"), float("inf"))]
    rep = json.loads(to_json(rows, {}))
    assert rep["rows"][0]["max_abs"] == "nan" and rep["rows"][0]["max_rel"] == "inf"


@pytest.mark.live_r
def test_plugin_passes_its_r_timeout(pytester) -> None:
    pytester.makepyfile("""
        def test_timeout(parity_candidate, parity_source):
            assert parity_candidate.timeout == 7.5 and parity_source.timeout == 7.5
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--parity-source", "r",
                                          "--parity-candidate", "r", "--parity-r-timeout",
                                          "7.5")
    result.assert_outcomes(passed=1)
