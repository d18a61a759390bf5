"""``parity generate`` (and scripts/generate_fixtures.py, its thin wrapper): an interrupted
run leaves committed fixtures intact, and --check reports drift.  R is replaced by a stand-in
that replays committed fixtures, so these tests run with or without R; the live-R path is
exercised by CI's --check and by tests/test_own_models.py."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import ClassVar

import pytest

from parity import fixtures
from parity.cases import CORPUS
from parity.dataset import Dataset
from parity.errors import RFitError

ROOT = Path(__file__).resolve().parent.parent


def _script():
    """The script, with R replaced where parity.generate opens its session."""
    spec = importlib.util.spec_from_file_location("generate_fixtures",
                                                  ROOT / "scripts" / "generate_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return _Wrapper(mod)


class _Wrapper:
    def __init__(self, mod) -> None:
        self.mod = mod

    def main(self, argv: list[str]) -> int:
        return self.mod.main(self.mod.wrap(argv))


@pytest.fixture(autouse=True)
def _replay(monkeypatch):
    """``use(session)`` puts a stand-in where parity opens its R session."""
    import parity.r_bridge

    def use(session) -> None:
        monkeypatch.setattr(parity.r_bridge, "session", lambda: session)

    return use


class ReplaySession:
    """Answers like RSession, from the committed fixtures; can fail on one case."""

    versions: ClassVar[dict[str, str]] = {
                "r_version": "4.2.2", "r_version_string": "R", "lme4_version": "1.1.31",
                "matrix_version": "1.5.3", "minqa_version": "1.2.5", "platform": "replay",
                "blas": "", "la_library": ""}

    def __init__(self, fail_on: str | None = None, edit=None) -> None:
        self.fail_on = fail_on
        self.edit = edit or (lambda _name, _doc: None)
        self.docs = {}

    def _doc(self, name: str) -> dict:
        if name not in self.docs:
            doc = copy.deepcopy(fixtures.load_document(fixtures.fixture_path(name)))
            self.edit(name, doc)
            self.docs[name] = doc
        return self.docs[name]

    def make_data(self, expr: str, timeout=None) -> Dataset:
        for case in CORPUS:
            if case.data_r == expr:
                return fixtures.load(case.name).data
        raise AssertionError(expr)

    def fit(self, data, spec, nAGQ, kind, timeout=None):
        if spec["name"] == self.fail_on:
            raise RFitError(f"R glmer() failed: simulated failure in {spec['name']}")
        return copy.deepcopy(self._doc(spec["name"])["results"][f"nAGQ{nAGQ}"][kind])

    def probe(self, data, spec, nAGQ, points, tols=None, timeout=None):
        probes = copy.deepcopy(self._doc(spec["name"])["results"][f"nAGQ{nAGQ}"]["probes"])
        for p in probes["points"]:
            p.pop("label")
        assert [p["params"] for p in probes["points"]] == points
        return probes


@pytest.fixture()
def fixture_dir(tmp_path: Path) -> Path:
    for name in ("seed", "cbpp", "bacteria", "grouseticks-nested"):
        (tmp_path / f"{name}.json").write_bytes(fixtures.fixture_path(name).read_bytes())
    return tmp_path


def test_interrupted_generation_keeps_committed_fixtures(fixture_dir, _replay, capsys):
    mod = _script()
    _replay(ReplaySession(fail_on="cbpp"))
    before = {p.name: p.read_bytes() for p in fixture_dir.iterdir()}
    rc = mod.main(["seed", "cbpp", "bacteria", "--out", str(fixture_dir), "--no-progress"])
    assert rc == 2
    assert "simulated failure in cbpp" in capsys.readouterr().err
    after = {p.name: p.read_bytes() for p in fixture_dir.iterdir()}
    assert sorted(after) == sorted(before)  # no temporary files left behind
    assert after["cbpp.json"] == before["cbpp.json"]  # the failing case: untouched
    assert after["bacteria.json"] == before["bacteria.json"]  # never reached: untouched
    assert after["seed.json"] != before["seed.json"]  # done before the failure: replaced whole
    assert fixtures.load("seed", fixture_dir).results[1].tight.objective == \
        fixtures.load("seed").results[1].tight.objective


def test_check_passes_without_drift(fixture_dir, _replay, capsys):
    mod = _script()
    _replay(ReplaySession())
    before = {p.name: p.read_bytes() for p in fixture_dir.iterdir()}
    # grouseticks-nested: lme4's reported tight objective is 6e-6 above its lag-free probe, so
    # the drift check must compare reported with reported
    rc = mod.main(["--check", "seed", "cbpp", "grouseticks-nested", "--out", str(fixture_dir),
                   "--no-progress"])
    assert rc == 0, capsys.readouterr().out
    assert "no drift" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in fixture_dir.iterdir()} == before


def test_check_reports_drift(fixture_dir, _replay, capsys):
    def drift(name: str, doc: dict) -> None:
        if name == "cbpp":
            doc["results"]["nAGQ1"]["tight"]["fixef"]["values"][1] += 1e-3  # > 1e-4·max(1,|β|)
            doc["results"]["nAGQ25"]["probes"]["points"][0]["objective"] *= 1 + 1e-7

    mod = _script()
    _replay(ReplaySession(edit=drift))
    rc = mod.main(["--check", "seed", "cbpp", "--out", str(fixture_dir), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "drifted" in out and "fixef" in out and "probe-objective" in out
    assert "seed" not in out.split("drifted", 1)[1]


def test_check_needs_committed_fixture(tmp_path, _replay, capsys):
    mod = _script()
    _replay(ReplaySession())
    rc = mod.main(["--check", "seed", "--out", str(tmp_path), "--no-progress"])
    assert rc == 2
    assert "no such fixture file" in capsys.readouterr().err


def test_generate_writes_where_it_is_told(tmp_path, _replay, monkeypatch, capsys):
    _replay(ReplaySession())
    from parity.cli import main

    monkeypatch.setenv("PARITY_FIXTURES", str(tmp_path / "env"))
    assert main(["generate", "--case", "seed", "--no-progress"]) == 0
    assert (tmp_path / "env" / "seed.json").is_file()  # $PARITY_FIXTURES, without --out
    assert main(["generate", "--case", "seed", "--out", str(tmp_path / "out"),
                 "--no-progress"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert fixtures.load("seed", tmp_path / "out").case == fixtures.load("seed").case
    assert main(["generate", "--case", "nope", "--no-progress"]) == 2
