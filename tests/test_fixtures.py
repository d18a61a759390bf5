"""Fixtures: every case has one, complete; broken files fail loudly naming file and field;
writes are atomic."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from parity import fixtures
from parity.cases import CORPUS
from parity.errors import FixtureError


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_committed_fixture_complete(case) -> None:
    ref = fixtures.load(case.name)
    assert ref.case == case
    assert sorted(ref.results) == sorted(case.nAGQ)
    assert ref.provenance["lme4_version"] and ref.provenance["locale"] == "C"
    for k, r in ref.results.items():
        assert r.default.raw["control"] == "default" and r.tight.raw["control"] == "tight"
        labels = [p.label for p in r.probes.points]
        assert {"tight", "default", "away"} <= set(labels)
        assert len(r.probes.points) >= 3
        n_theta = len(r.tight.theta)
        for p in r.probes.points:
            assert len(p.params) == (n_theta if k == 0 else n_theta + len(r.tight.fixef))
            assert len(p.u) == len(r.tight.u)


def _edit(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_deleted_field_names_file_and_field(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d["results"]["1"]["tight"].pop("fixef"))
    with pytest.raises(FixtureError) as err:
        fixtures.load("cbpp", path.parent)
    assert err.value.path == str(path)
    assert err.value.field == "$.results['1'].tight.fixef"
    assert str(path) in str(err.value) and "fixef" in str(err.value)


def test_deleted_top_level_field(fixture_copy) -> None:
    path = fixture_copy("seed")
    _edit(path, lambda d: d.pop("provenance"))
    with pytest.raises(FixtureError, match=r"seed\.json: field \$\.provenance: missing"):
        fixtures.load("seed", path.parent)


def test_wrong_type_names_field(fixture_copy) -> None:
    path = fixture_copy("seed")
    _edit(path, lambda d: d["results"]["0"]["probes"]["points"][1].update(objective="big"))
    with pytest.raises(FixtureError) as err:
        fixtures.load("seed", path.parent)
    assert err.value.field == "$.results['0'].probes.points[1].objective"


def test_corrupt_json_names_file(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    path.write_text(path.read_text()[:5000])  # truncated, as by an interrupted copy
    with pytest.raises(FixtureError, match=r"cbpp\.json: field \$: corrupt JSON at line"):
        fixtures.load("cbpp", path.parent)


def test_unknown_schema_version(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d.update(schema_version=2))
    with pytest.raises(FixtureError, match=r"field \$\.schema_version: unknown schema_version 2"):
        fixtures.load("cbpp", path.parent)


def test_missing_schema_version(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d.pop("schema_version"))
    with pytest.raises(FixtureError, match=r"\$\.schema_version: missing required field"):
        fixtures.load("cbpp", path.parent)


def test_results_must_match_case_nagq(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d["results"].pop("25"))
    with pytest.raises(FixtureError, match=r"\$\.results: results for nAGQ \[0, 1\]"):
        fixtures.load("cbpp", path.parent)


def test_missing_probe_label(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d["results"]["1"]["probes"]["points"][2].update(label="elsewhere"))
    with pytest.raises(FixtureError, match="no probe labelled 'away'"):
        fixtures.load("cbpp", path.parent)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="no such fixture file"):
        fixtures.load("cbpp", tmp_path)


def test_write_round_trips_exactly(tmp_path: Path) -> None:
    doc = fixtures.load_document(fixtures.fixture_path("cbpp"))
    out = fixtures.write(doc, tmp_path / "cbpp.json")
    assert json.loads(out.read_text()) == doc
    assert fixtures.load("cbpp", tmp_path).results[1].tight.objective == \
        doc["results"]["1"]["tight"]["dev"]


def test_invalid_document_is_not_written(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    before = path.read_bytes()
    doc = json.loads(before)
    del doc["results"]["0"]["default"]["theta"]
    with pytest.raises(FixtureError, match="theta"):
        fixtures.write(doc, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["cbpp.json"]


def test_failed_write_leaves_old_file(fixture_copy, monkeypatch) -> None:
    path = fixture_copy("cbpp")
    before = path.read_bytes()
    doc = json.loads(before)
    doc["provenance"]["generated_utc"] = "2099-01-01T00:00:00Z"

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        fixtures.write(doc, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["cbpp.json"]
