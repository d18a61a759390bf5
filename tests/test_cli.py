"""The CLI runs on fixtures alone, prints one line per case × variant, writes reports, puts
errors on stderr and sets its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parity import fixtures
from parity.cli import main

pytest_plugins = ["pytester"]

ENV = {**os.environ, "PARITY_DISABLE_R": "1", "COLUMNS": "200"}


def _run(*args: str, env: dict | None = None, cwd: Path | None = None
         ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parity", *args], capture_output=True,
                          text=True, env=env or ENV, cwd=cwd, timeout=600, check=False)


def test_default_report_of_the_corpus_fits_one_screen(tmp_path: Path) -> None:
    proc = _run("run", "--no-progress", "--json", str(tmp_path / "r.json"),
                "--markdown", str(tmp_path / "r.md"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) < 60  # one screen: one line per case × variant, not one per quantity
    assert max(len(line.rstrip()) for line in lines) <= 120
    assert lines[0].startswith("parity: glmm")  # candidate auto: the engine, which needs no R
    for case in ("seed", "cbpp", "verbagg", "sleepstudy-gamma"):
        assert any(line.split()[:1] == [case] for line in lines), case
    assert "probe-objective" not in proc.stdout  # quantities only with --detail or failing
    assert lines[-1].startswith("2222 passed, 0 failed, 0 skipped (48 case × variant")
    assert proc.stderr == ""
    rep = json.loads((tmp_path / "r.json").read_text())
    # 34 glmer variants × (14 estimates + 32 results), 14 lmer variants × (15 + 32) (σ too)
    assert rep["summary"] == {"pass": 2222, "fail": 0, "skip": 0}
    assert len(rep["variants"]) == 48 and all(v["status"] == "pass" for v in rep["variants"])
    assert (tmp_path / "r.md").read_text().startswith("# Parity report")


def test_detail_quiet_and_reports_on_stdout(capsys) -> None:
    args = ["run", "--case", "seed", "--no-progress"]
    assert main([*args, "--detail"]) == 0
    out = capsys.readouterr().out
    assert "probe-objective" in out and "default-m2loglik" in out and "seed" in out
    assert main([*args, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["138 passed, 0 failed, 0 skipped (3 case × variant of 1 cases; "
                                "0 failing)"]
    assert main([*args, "--quiet", "--json", "-"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["summary"]["pass"] == 138  # stdout holds the JSON alone
    assert "138 passed" in cap.err  # and the human report went to stderr
    assert main([*args, "--quiet", "--markdown", "-"]) == 0
    assert capsys.readouterr().out.startswith("# Parity report")
    assert main([*args, "--json", "-", "--markdown", "-"]) == 2
    assert "cannot both write to stdout" in capsys.readouterr().err
    assert not Path("-").exists()


def test_failures_give_exit_1_and_are_expanded(tmp_path: Path, capsys) -> None:
    doc = json.loads(fixtures.fixture_path("cbpp").read_text())
    # the stored tight optimum made worse than lme4's default point: the default tier fails
    doc["results"]["nAGQ1"]["tight"]["dev"] += 0.01
    (tmp_path / "cbpp.json").write_text(json.dumps(doc))
    rc = main(["run", "--candidate", "fixture", "--fixtures-dir", str(tmp_path),
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1
    lines = out.splitlines()
    assert any(line.split()[:2] == ["cbpp", "nAGQ1"] and line.split()[-1] == "fail"
               for line in lines)
    assert "failing quantities" in out and "default-m2loglik" in out  # expanded by default
    # the default tier, and the probe at the tight optimum (its reported objective moved too)
    assert lines[-1].startswith("16 passed, 2 failed, 120 skipped")


def test_broken_fixture_is_reported_on_stderr(tmp_path: Path, capsys) -> None:
    (tmp_path / "seed.json").write_text("{not json")
    rc = main(["run", "--candidate", "fixture", "--fixtures-dir", str(tmp_path),
               "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 2  # a malformed input, not a failed comparison
    assert "seed.json" in cap.err and "corrupt JSON" in cap.err
    assert "0 passed, 1 failed" in cap.out  # its case is a failing row


@pytest.mark.parametrize("args", [["--case", "nope"], ["--case", "cbpp*", "--case", "nope*"]])
def test_a_case_that_matches_nothing_exits_2(args: list[str], capsys) -> None:
    assert main(["run", *args, "--no-progress"]) == 2
    cap = capsys.readouterr()
    assert "matches no case of the corpus" in cap.err and "nope" in cap.err
    assert cap.out == ""


def test_case_patterns_select_by_shell_pattern(capsys) -> None:
    assert main(["run", "--case", "cbpp-*", "--quiet", "--no-progress"]) == 0
    assert "(9 case × variant of 3 cases" in capsys.readouterr().out


def test_an_empty_variant_selection_exits_2(capsys) -> None:
    # the hole in a CI guard: this printed "0 passed, 0 failed" and exited 0
    assert main(["run", "--case", "cbpp", "--nagq", "3", "--no-progress"]) == 2
    assert "the selection is empty" in capsys.readouterr().err
    assert main(["run", "--case", "cbpp", "--variant", "REML", "--no-progress"]) == 2


def test_a_run_that_compares_nothing_exits_2(capsys) -> None:
    # the self-check has nothing to compare in the tight tier: every row is skipped
    rc = main(["run", "--candidate", "fixture", "--case", "seed", "--tier", "tight",
               "--no-progress"])
    assert rc == 2
    assert "nothing was compared" in capsys.readouterr().err


def test_fixture_self_check_without_r(capsys) -> None:
    rc = main(["run", "--candidate", "fixture", "--case", "cbpp", "--detail", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "fixture's own lme4 tight fit" in out
    assert "the candidate is the reference's own tight fit" in " ".join(out.split())


def test_help_gives_the_exit_codes(capsys) -> None:
    for cmd in ([], ["run"], ["generate"]):
        with pytest.raises(SystemExit):
            main([*cmd, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "exit codes: 0 every comparison passed" in out
        assert "2 the run could not start or compared nothing" in out


def test_list(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "cbind(incidence, size - incidence)" in out and "nAGQ0 nAGQ1 nAGQ25" in out


def test_disabled_r_is_reported_not_crashed() -> None:
    code = ("from parity.r_bridge import r_available; ok, why = r_available(); "
            "print(ok, why)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV,
                         check=True).stdout
    assert out.startswith("False live R is disabled by PARITY_DISABLE_R")


def test_two_jobs_give_the_rows_of_one(tmp_path: Path) -> None:
    reports = []
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}.json"
        rc = main(["run", "--case", "cbpp*", "--case", "seed", "-j", jobs, "--quiet",
                   "--no-progress", "--json", str(out)])
        assert rc == 0
        reports.append(json.loads(out.read_text()))
    assert reports[0]["rows"] == reports[1]["rows"] and len(reports[0]["rows"]) == 15 * 46


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_bad_jobs_exit_2(bad: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "-j", bad, "--no-progress"])
    assert exc.value.code == 2 and "number of jobs" in capsys.readouterr().err


# -- malformed fixtures: exit 2, the file and the field named, no traceback ---------------------
def _seed_doc() -> dict:
    return json.loads(fixtures.fixture_path("seed").read_text())


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
def test_malformed_fixture_exit_2_names_file_and_field(what: str, tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    edit, field = BROKEN[what]
    path = tmp_path / "seed.json"
    if what == "non-UTF-8":
        path.write_bytes(edit(json.dumps(_seed_doc())))
    else:
        doc = _seed_doc()
        edit(doc)
        path.write_text(json.dumps(doc))
    # the corpus, its fixtures looked for in $PARITY_FIXTURES first: seed found there, broken;
    # cbpp is not there, and comes from the corpus shipped in the package
    monkeypatch.setenv("PARITY_FIXTURES", str(tmp_path))
    rc = main(["run", "--candidate", "fixture", "--case", "seed", "--case", "cbpp",
               "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 2
    assert f"malformed fixture: {path}: {field}" in " ".join(cap.err.split())
    lines = cap.out.splitlines()
    assert any(line.split()[:2] == ["seed", "-"] and "fail" in line for line in lines)
    assert sum(1 for line in lines if line.split()[:1] == ["cbpp"] and "pass" in line) == 3


def test_malformed_fixture_gives_no_traceback_in_a_subprocess(tmp_path: Path) -> None:
    doc = _seed_doc()
    doc["case"]["extra"] = 1
    (tmp_path / "seed.json").write_text(json.dumps(doc))
    proc = _run("run", "--candidate", "fixture", "--fixtures-dir", str(tmp_path),
                "--no-progress")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "$.case.extra" in proc.stderr


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

    rows = [Row("seed", "nAGQ1", "tight", "m2loglik", "fail", float("nan"), float("inf"))]
    rep = json.loads(to_json(rows, {}))
    assert rep["rows"][0]["max_abs"] == "nan" and rep["rows"][0]["max_rel"] == "inf"
    assert rep["variants"][0]["worst"]["tight"] == "inf"


# -- the plugin: the CLI's default source, and nothing heavy on load ------------------------------
def test_plugin_and_cli_default_to_the_same_source(pytester) -> None:
    from parity.cli import _parser

    cli_default = _parser().parse_args(["run"]).source
    pytester.makepyfile(f"""
        def test_source(request):
            assert request.config.getoption("--parity-source") == {cli_default!r}
    """)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert cli_default == "fixtures"


def test_loading_the_plugin_imports_neither_r_nor_the_engine() -> None:
    code = ("import sys, parity.plugin; "
            "print(sorted(m for m in ('glmm', 'rpy2', 'numpy', 'pandas', 'rich', 'jsonschema') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=ENV, check=True).stdout
    assert out.strip() == "[]"


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


# -- the corpus ships inside the package ---------------------------------------------------------
def test_the_corpus_is_package_data() -> None:
    """Every corpus fixture is matched by the wheel's package-data patterns (a non-editable
    install carries them: `pip install .` then `python -m parity run` from any folder)."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parent.parent
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["parity"]
    shipped = [p.relative_to(root / "parity").as_posix()
               for p in (root / "parity" / "corpus").iterdir()]
    assert len(shipped) == 22  # 21 cases (14 glmer, 7 lmer) and the schema's README
    assert all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in shipped)
    assert fixtures.CORPUS_DIR == root / "parity" / "corpus"


def test_the_corpus_runs_from_an_empty_folder(tmp_path: Path) -> None:
    proc = _run("run", "--case", "seed", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("138 passed, 0 failed")
