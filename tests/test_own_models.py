"""Your own models, end to end, exactly as the README's "Guard your own model in CI" shows:
a CSV and a case file with two models (an offset column; crossed grouping factors) in a
temporary folder, ``parity generate`` with live R, then ``parity run`` and ``pytest
--parity-cases`` on the fixtures; a 1% edit of one reference fixef fails both, and a
``--case`` that matches nothing exits non-zero.  The case file and the commands are read from
the README, so the example there is the one tested."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parity import Case, load_cases
from parity.errors import CaseError

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("## Guard your own model in CI", 1)[1].split("\n## ", 1)[0]


def readme_case_file() -> str:
    return re.search(r"```toml\n(.*?)```", _section(), re.S).group(1)


def readme_commands() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", _section(), re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line]


def visits(rows: int = 240, seed: int = 14) -> pd.DataFrame:
    """Clinic visits: counts over an exposure, 12 clinics crossed with 4 regions."""
    rng = np.random.default_rng(seed)
    clinic = rng.integers(1, 13, rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    age = np.round(rng.uniform(20, 80, rows), 1)
    exposure = np.round(rng.uniform(0.5, 3.0, rows), 2)
    u_clinic = rng.normal(0, 0.4, 13)[clinic]
    u_region = {"north": 0.3, "south": -0.2, "east": 0.1, "west": -0.25}
    eta = (-1.0 + 0.015 * age + np.log(exposure) + u_clinic
           + np.array([u_region[r] for r in region]))
    return pd.DataFrame({"count": rng.poisson(np.exp(eta)), "age": age,
                         "log_exposure": np.log(exposure), "clinic": clinic,
                         "region": region})


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PARITY_FIXTURES"}
    return {**env, "COLUMNS": "200"}


def _run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    if cmd[:1] == ["python"]:
        cmd = [sys.executable, *cmd[1:]]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env(),
                          timeout=600, check=False, **kw)


def test_the_readme_case_file_reads_and_names_its_columns(tmp_path: Path) -> None:
    (tmp_path / "cases.toml").write_text(readme_case_file())
    visits().to_csv(tmp_path / "visits.csv", index=False)
    cases = load_cases(tmp_path / "cases.toml")
    assert [c.name for c in cases] == ["visits", "visits-crossed"]
    assert cases[0].offset == "log_exposure" and cases[0].link == "log"
    assert [c.kind for c in cases[0].data.columns] == ["integer", "double", "double", "factor",
                                                       "factor"]
    assert cases[1].data.column("region").levels == ("east", "north", "south", "west")


@pytest.mark.parametrize(("edit", "field", "words"), [
    (lambda t: t.replace('offset = "log_exposure"', 'offset = "log(exposure)"'), "offset",
     "not a column name"),
    (lambda t: t.replace("count ~ age + (1 | clinic)\"", "count ~ agee + (1 | clinic)\""),
     "formula", "'agee', which is not a column"),
    (lambda t: t.replace('family = "poisson"', 'family = "poison"', 1), "family", "poison"),
    (lambda t: t.replace("nAGQ = [0, 1]", "nAGQ = [0, 101]", 1), "nAGQ", "101"),
    (lambda t: t.replace('data = "visits.csv"', 'data = "nope.csv"', 1), "data",
     "no such file"),
    (lambda t: t.replace("[[case]]", "[[case]]\nlnk = 1", 1), "lnk", "unknown key"),
])
def test_a_bad_case_file_names_the_file_case_and_field(edit, field: str, words: str,
                                                       tmp_path: Path) -> None:
    (tmp_path / "cases.toml").write_text(edit(readme_case_file()))
    visits().to_csv(tmp_path / "visits.csv", index=False)
    with pytest.raises(CaseError) as err:
        load_cases(tmp_path / "cases.toml")
    assert (err.value.case, err.value.field) == ("visits", field)
    assert words in str(err.value) and str(tmp_path / "cases.toml") in str(err.value)
    # the CLI says the same on stderr and exits 2, before R is touched
    proc = _run(["python", "-m", "parity", "run", "--cases", "cases.toml"], tmp_path)
    assert proc.returncode == 2 and words in proc.stderr and proc.stdout == ""


def test_a_case_from_a_dataframe_equals_the_case_file_case(tmp_path: Path) -> None:
    (tmp_path / "cases.toml").write_text(readme_case_file())
    df = visits()
    df.to_csv(tmp_path / "visits.csv", index=False)
    own = Case.from_dataframe("visits", pd.read_csv(tmp_path / "visits.csv"),
                              "count ~ age + (1 | clinic)", family="poisson",
                              offset="log_exposure", nAGQ=[0, 1], factors=["clinic"],
                              data_file="visits.csv")
    filed = load_cases(tmp_path / "cases.toml")[0]
    assert own == filed and own.data == filed.data


@pytest.mark.live_r
def test_own_models_end_to_end(pytester: pytest.Pytester) -> None:
    folder = pytester.path
    (folder / "cases.toml").write_text(readme_case_file())
    visits().to_csv(folder / "visits.csv", index=False)
    generate, run, test = readme_commands()
    assert generate[:3] == ["python", "-m", "parity"] and generate[3] == "generate"

    proc = _run(generate, folder)
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in (folder / "fixtures").iterdir())
    assert written == ["visits-crossed.json", "visits.json"]

    proc = _run([*run, "--source", "fixtures"], folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("184 passed, 0 failed, 0 skipped (4 case")

    assert test[0] == "pytest"
    result = pytester.runpytest_subprocess(*test[1:], "-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=184)  # 2 models × 2 nAGQ × (14 + 32 results), no test written
    result = pytester.runpytest_subprocess(*test[1:], "-p", "no:cacheprovider", "--co", "-q")
    assert "cases.toml::visits-nAGQ1-fixef" in result.stdout.str()

    # one reference fixef 1% off: both the run and the tests fail, on that quantity
    path = folder / "fixtures" / "visits.json"
    doc = json.loads(path.read_text())
    doc["results"]["nAGQ1"]["tight"]["fixef"]["values"][1] *= 1.01
    path.write_text(json.dumps(doc))
    proc = _run([*run, "--source", "fixtures"], folder)
    assert proc.returncode == 1
    # fixef fails, and so do the results computed at lme4's tight parameters (the probe
    # tier's), which now include that moved β; the estimates' other rows pass
    assert "fixef" in proc.stdout and "16 failed" in proc.stdout.splitlines()[-1]
    result = pytester.runpytest_subprocess(*test[1:], "-p", "no:cacheprovider")
    result.assert_outcomes(passed=168, failed=16)
    out = result.stdout.str()
    assert "visits-nAGQ1-fixef" in out and "visits-nAGQ1-probe-fitted" in out
    assert "visits-nAGQ0-" not in out.split("short test summary")[-1]  # nAGQ 0 untouched

    # a --case that matches nothing: exit 2, never a quiet pass
    proc = _run([*run, "--case", "visit"], folder)
    assert proc.returncode == 2 and "matches no case" in proc.stderr
    # a folder of fixtures is a corpus by itself: no case file needed
    proc = _run(["python", "-m", "parity", "run", "--fixtures-dir", "fixtures", "--case",
                 "visits-crossed"], folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.live_r
def test_an_lmer_case_is_fitted_by_r_and_by_glmm(tmp_path: Path) -> None:
    """glmer_case.R fits lmer cases (REML and ML); glmm.lmer passes both variants."""
    df = visits()
    df["score"] = 50 + 0.2 * df["age"] + np.random.default_rng(1).normal(0, 3, len(df))
    df.to_csv(tmp_path / "scores.csv", index=False)
    (tmp_path / "cases.toml").write_text(
        '[[case]]\nname = "scores"\nmethod = "lmer"\ndata = "scores.csv"\n'
        'formula = "score ~ age + (1 | clinic)"\nREML = [true, false]\nfactors = ["clinic"]\n')
    proc = _run(["python", "-m", "parity", "generate", "--cases", "cases.toml"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "fixtures" / "scores.json").read_text())
    assert sorted(doc["results"]) == ["ML", "REML"] and doc["case"]["method"] == "lmer"
    reml, ml = doc["results"]["REML"]["tight"], doc["results"]["ML"]["tight"]
    assert reml["dev"] != ml["dev"]  # the REML criterion and the ML deviance
    # lme4 against its own fixture (the self-check) passes both variants
    proc = _run(["python", "-m", "parity", "run", "--cases", "cases.toml", "--candidate",
                 "fixture"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _run(["python", "-m", "parity", "run", "--cases", "cases.toml", "--candidate",
                 "glmm", "--detail"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "94 passed, 0 failed" in proc.stdout   # 2 variants × (15 + 32 results)
