"""The CLI runs on fixtures alone, prints the table, writes reports and sets its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from parity.cli import main


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
    assert rc == 1
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
