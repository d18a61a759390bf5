"""Fixtures: every case has one, complete; broken files fail loudly naming file and field;
writes are atomic."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parity import fixtures
from parity.cases import CORPUS
from parity.errors import FixtureError


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_committed_fixture_complete(case) -> None:
    ref = fixtures.load(case.name)
    assert ref.case == case
    lmm = case.method == "lmer"   # lmer's results are keyed REML / ML, θ-only probes
    assert sorted(ref.results) == (sorted("REML" if r else "ML" for r in case.REML) if lmm
                                   else sorted(case.nAGQ))
    assert ref.provenance["lme4_version"] and ref.provenance["locale"] == "C"
    for k, r in ref.results.items():
        assert r.default.raw["control"] == "default" and r.tight.raw["control"] == "tight"
        labels = [p.label for p in r.probes.points]
        assert {"tight", "default", "away"} <= set(labels)
        assert len(r.probes.points) >= 3
        n_theta = len(r.tight.theta)
        for p in r.probes.points:
            assert len(p.params) == (n_theta if lmm or k == 0
                                     else n_theta + len(r.tight.fixef))
            assert len(p.u) == len(r.tight.u)


def _edit(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_deleted_field_names_file_and_field(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d["results"]["nAGQ1"]["tight"].pop("fixef"))
    with pytest.raises(FixtureError) as err:
        fixtures.load("cbpp", path.parent)
    assert err.value.path == str(path)
    assert err.value.field == "$.results.nAGQ1.tight.fixef"
    assert str(path) in str(err.value) and "fixef" in str(err.value)


def test_deleted_top_level_field(fixture_copy) -> None:
    path = fixture_copy("seed")
    _edit(path, lambda d: d.pop("provenance"))
    with pytest.raises(FixtureError, match=r"seed\.json: field \$\.provenance: missing"):
        fixtures.load("seed", path.parent)


def test_wrong_type_names_field(fixture_copy) -> None:
    path = fixture_copy("seed")
    _edit(path, lambda d: d["results"]["nAGQ0"]["probes"]["points"][1].update(objective="big"))
    with pytest.raises(FixtureError) as err:
        fixtures.load("seed", path.parent)
    assert err.value.field == "$.results.nAGQ0.probes.points[1].objective"


def test_corrupt_json_names_file(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    path.write_text(path.read_text()[:5000])  # truncated, as by an interrupted copy
    with pytest.raises(FixtureError, match=r"cbpp\.json: field \$: corrupt JSON at line"):
        fixtures.load("cbpp", path.parent)


def test_unknown_schema_version(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d.update(schema_version=3))
    with pytest.raises(FixtureError, match=r"field \$\.schema_version: unknown schema_version 3"):
        fixtures.load("cbpp", path.parent)


def test_version_1_is_refused_with_how_to_regenerate(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d.update(schema_version=1))
    with pytest.raises(FixtureError, match=r"schema_version 1 is the old glmer-only format.*"
                                           r"regenerate.*parity generate --case NAME"):
        fixtures.load("cbpp", path.parent)


def test_missing_schema_version(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d.pop("schema_version"))
    with pytest.raises(FixtureError, match=r"\$\.schema_version: missing required field"):
        fixtures.load("cbpp", path.parent)


def test_results_must_match_case_nagq(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d["results"].pop("nAGQ25"))
    with pytest.raises(FixtureError, match=r"\$\.results: results for \['nAGQ0', 'nAGQ1'\], "
                                           r"but the case lists nAGQ \[0, 1, 25\]"):
        fixtures.load("cbpp", path.parent)


def test_missing_probe_label(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    _edit(path, lambda d: d["results"]["nAGQ1"]["probes"]["points"][2].update(label="elsewhere"))
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
        doc["results"]["nAGQ1"]["tight"]["dev"]


def test_invalid_document_is_not_written(fixture_copy) -> None:
    path = fixture_copy("cbpp")
    before = path.read_bytes()
    doc = json.loads(before)
    del doc["results"]["nAGQ0"]["default"]["theta"]
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


# -- malformed fixtures: a typed FixtureError naming the file and the field, never a traceback --
def _seed_doc() -> dict:
    return json.loads(fixtures.fixture_path("seed").read_text())


def _column(doc: dict, name: str) -> dict:
    return next(c for c in doc["data"]["columns"] if c["name"] == name)


def _refused(path: Path, field: str, *words: str) -> FixtureError:
    with pytest.raises(FixtureError) as err:
        fixtures.load("seed", path.parent)
    assert err.value.path == str(path)
    assert err.value.field == field, str(err.value)
    for w in words:
        assert w in str(err.value)
    return err.value


# seed's columns: x1 integer, subject factor with levels "1", "2", "3", y double
MALFORMED = {
    "extra key in the case": (lambda d: d["case"].update(extra=1), "$.case.extra",
                              ("unknown field 'extra'",)),
    "extra key at the top": (lambda d: d.update(notes="x"), "$.notes", ("unknown field",)),
    "extra key in a column": (lambda d: _column(d, "y").update(unit="s"),
                              "$.data.columns[2].unit", ("unknown field",)),
    "duplicated column name": (lambda d: _column(d, "y").update(name="x1"),
                               "$.data.columns[2].name", ("'x1' appears twice",)),
    "factor code out of range": (lambda d: _column(d, "subject")["values"].__setitem__(4, 3),
                                 "$.data.columns[1].values[4]", ("factor code 3 outside 0..2",)),
    "negative factor code": (lambda d: _column(d, "subject")["values"].__setitem__(0, -1),
                             "$.data.columns[1].values[0]", ("minimum",)),
    "string in a double column": (lambda d: _column(d, "y")["values"].__setitem__(3, "1"),
                                  "$.data.columns[2].values[3]", ("not of type",)),
    "string in an integer column": (lambda d: _column(d, "x1")["values"].__setitem__(0, "2"),
                                    "$.data.columns[0].values[0]", ("not of type",)),
    "fraction in an integer column": (lambda d: _column(d, "x1")["values"].__setitem__(0, 2.5),
                                      "$.data.columns[0].values[0]", ("not of type",)),
    "integer beyond R's range": (lambda d: _column(d, "x1")["values"].__setitem__(0, 2**31),
                                 "$.data.columns[0].values[0]", ("maximum",)),
    "number in a logical column": (
        lambda d: d["data"]["columns"].append({"name": "l", "type": "logical",
                                               "values": [True] * 14 + [1]}),
        "$.data.columns[3].values[14]", ("not of type",)),
    "level not a string": (lambda d: _column(d, "subject")["levels"].__setitem__(0, 1),
                           "$.data.columns[1].levels[0]", ("not of type 'string'",)),
    "levels repeated": (lambda d: _column(d, "subject").update(levels=["1", "1", "3"]),
                        "$.data.columns[1].levels", ("non-unique",)),
    "levels on a double column": (lambda d: _column(d, "y").update(levels=["a"]),
                                  "$.data.columns[2].levels", ("factor columns only",)),
    "factor without levels": (lambda d: _column(d, "subject").pop("levels"),
                              "$.data.columns[1].levels", ("missing required field",)),
    "ragged columns": (lambda d: _column(d, "y")["values"].pop(),
                       "$.data.columns[2].values", ("14 values, but nrow is 15",)),
    "unknown column type": (lambda d: _column(d, "y").update(type="complex"),
                            "$.data.columns[2].type", ("complex",)),
    "tolPwrss out of range": (lambda d: d["results"]["nAGQ1"]["probes"].update(tolPwrss=0.5),
                              "$.results.nAGQ1.probes.tolPwrss", ("maximum",)),
    "tolPwrss zero": (lambda d: d["results"]["nAGQ1"]["probes"].update(tolPwrss=0),
                      "$.results.nAGQ1.probes.tolPwrss", ("minimum",)),
    "nAGQ repeated": (lambda d: d["case"].update(nAGQ=[0, 1, 1]), "$.case.nAGQ",
                      ("non-unique",)),
    "unknown family": (lambda d: d["case"].update(family="gaussian"), "$.case.family",
                       ("gaussian",)),
    "link of another family": (lambda d: d["case"].update(link="sqrt"), "$.case.link",
                               ("'sqrt' is not a link of binomial",)),
    "formula the parser refuses": (lambda d: d["case"].update(formula="y ~ x1 +"),
                                   "$.case.formula", ("glmm's formula parser refuses",)),
    "formula calling a function off the whitelist": (
        lambda d: d["case"].update(formula="y ~ x1 + poly(x1, 2) + (1 | subject)"),
        "$.case.formula", ("calls 'poly'",)),
    "weights not a column": (lambda d: d["case"].update(weights="w"), "$.case.weights",
                             ("'w' is not a column",)),
    "offset a factor column": (lambda d: d["case"].update(offset="subject"), "$.case.offset",
                               ("factor column",)),
    "case name not a file name": (lambda d: d["case"].update(name="../seed"), "$.case.name",
                                  ("does not match",)),
    "tags not strings": (lambda d: d["case"].update(tags=[1]), "$.case.tags[0]",
                         ("not of type 'string'",)),
    "provenance value not a string": (lambda d: d["provenance"].update(python=3.11),
                                      "$.provenance.python", ("not of type 'string'",)),
    "fit under the wrong control": (
        lambda d: d["results"]["nAGQ0"]["default"].update(control="tight"),
        "$.results.nAGQ0.default.control", ("swapped",)),
    "theta lower of another length": (
        lambda d: d["results"]["nAGQ0"]["tight"]["theta"]["lower"].append(0),
        "$.results.nAGQ0.tight.theta.lower", ("2 entries, but values has 1",)),
    "u and b of different lengths": (lambda d: d["results"]["nAGQ1"]["tight"]["b"].pop(),
                                     "$.results.nAGQ1.tight.b", ("2 entries, but u has 3",)),
    "ranef rows not one per level": (
        lambda d: d["results"]["nAGQ1"]["tight"]["ranef"]["subject"]["values"].pop(),
        "$.results.nAGQ1.tight.ranef.subject.values", ("2 rows, but 3 levels",)),
    "ranef row of the wrong width": (
        lambda d: d["results"]["nAGQ1"]["tight"]["ranef"]["subject"]["values"][1].append(0.5),
        "$.results.nAGQ1.tight.ranef.subject.values[1]", ("2 values, but 1 columns",)),
    "vcov not square": (lambda d: d["results"]["nAGQ1"]["default"]["vcov"]["values"].pop(),
                        "$.results.nAGQ1.default.vcov.values", ("not a 2 x 2 matrix",)),
    "probe params of the wrong length": (
        lambda d: d["results"]["nAGQ1"]["probes"]["points"][2]["params"].pop(),
        "$.results.nAGQ1.probes.points[2].params", ("2 values, but the tight fit has 3",)),
    "probe modes of the wrong length": (
        lambda d: d["results"]["nAGQ0"]["probes"]["points"][0]["u"].append(0.0),
        "$.results.nAGQ0.probes.points[0].u", ("4 values, but the tight fit has 3",)),
    "probe label twice": (
        lambda d: d["results"]["nAGQ0"]["probes"]["points"].append(
            dict(d["results"]["nAGQ0"]["probes"]["points"][0])),
        "$.results.nAGQ0.probes.points[3].label", ("a second probe labelled 'tight'",)),
    "objective null": (lambda d: d["results"]["nAGQ25"]["tight"].update(dev=None),
                       "$.results.nAGQ25.tight.dev", ("not of type 'number'",)),
    "nobs a boolean": (lambda d: d["results"]["nAGQ25"]["tight"].update(nobs=True),
                       "$.results.nAGQ25.tight.nobs", ("not of type 'integer'",)),
    "results not an object": (lambda d: d.update(results=[]), "$.results", ("not of type",)),
    "case not an object": (lambda d: d.update(case="seed"), "$.case", ("not of type",)),
    "schema_version true": (lambda d: d.update(schema_version=True), "$.schema_version",
                            ("unknown schema_version True",)),
}


@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_malformed_fixture_names_file_and_field(what: str, tmp_path: Path) -> None:
    edit, field, words = MALFORMED[what]
    doc = _seed_doc()
    edit(doc)
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(doc))
    _refused(path, field, *words)


RAW = {
    # the JSON text itself, where json.dumps cannot write the fault
    "not UTF-8": (lambda t: t.encode().replace(b"toy", b"to\xff"), "$",
                  ("not UTF-8: byte 0xff at line 1",)),
    "tolPwrss Infinity": (lambda t: t.replace('"tolPwrss": 1e-14', '"tolPwrss": Infinity', 1),
                          "$.results.nAGQ0.probes.tolPwrss", ("non-finite number Infinity",)),
    "NaN objective": (lambda t: t.replace('"dev": ', '"dev": NaN, "was": ', 1),
                      "$.results.nAGQ0.default.dev", ("non-finite number NaN",)),
    "-Infinity in data": (lambda t: t.replace('"values": [1.0,', '"values": [-Infinity,', 1),
                          "$.data.columns[2].values[0]", ("non-finite number -Infinity",)),
    "overflowing double": (lambda t: t.replace('"values": [1.0,', '"values": [1e400,', 1),
                           "$.data.columns[2].values[0]", ("non-finite number 1e400",)),
    "repeated key": (lambda t: t.replace('"formula": ', '"formula": "y ~ 1", "formula": ', 1),
                     "$.case.formula", ("appears more than once",)),
    "huge integer": (lambda t: t.replace('"nrow": 15', '"nrow": ' + "9" * 30, 1),
                     "$.data.nrow", ("too large",)),
    "integer of 5000 digits": (lambda t: t.replace('"nrow": 15', '"nrow": ' + "9" * 5000, 1),
                               "$", ("unreadable JSON",)),
    "NUL in a string": (lambda t: t.replace('toy', 'to\\u0000y', 1), "$.case.description",
                        ("NUL",)),
    "nested too deeply": (lambda t: "[" * 100_000 + "]" * 100_000, "$", ("nested too deeply",)),
    "not an object": (lambda t: "[1, 2]", "$", ("not a JSON object",)),
    "empty file": (lambda t: "", "$", ("corrupt JSON",)),
}


@pytest.mark.parametrize("what", sorted(RAW))
def test_malformed_json_text_names_file_and_field(what: str, tmp_path: Path) -> None:
    edit, field, words = RAW[what]
    text = json.dumps(_seed_doc())
    out = edit(text)
    assert out != text
    path = tmp_path / "seed.json"
    (path.write_bytes if isinstance(out, bytes) else path.write_text)(out)
    _refused(path, field, *words)


def test_schema_tolpwrss_range_is_the_generators() -> None:
    from parity.r_bridge import PROBE_TOLS

    schema = json.loads((Path(fixtures.__file__).parent / "fixture.schema.json").read_text())
    tol = (schema["properties"]["results"]["additionalProperties"]["properties"]["probes"]
           ["properties"]["tolPwrss"])
    assert (tol["minimum"], tol["maximum"]) == (min(PROBE_TOLS), max(PROBE_TOLS))


def test_fixture_case_is_marked_as_read_from_its_file() -> None:
    ref = fixtures.load("seed")
    assert ref.case.read_from == str(fixtures.fixture_path("seed"))
    assert ref.case == CORPUS[0] and CORPUS[0].read_from is None


# -- a property: any mutation of a fixture is refused with its field, or runs through cleanly --
_SEED_TEXT = fixtures.fixture_path("seed").read_text()
_VALUES = (None, True, False, 0, -1, 2, 0.5, -1e300, 1e-320, "", "a", 'system("touch x")',
           [], [1], ["a"], [[1.0]], {}, {"a": 1}, float("nan"), float("inf"), 2**31, 2**64)


def _slots(node, out) -> list:
    """Every (container, key) of the document: the places a mutation can hit."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        out.append((node, k))
        if isinstance(v, (dict, list)):
            _slots(v, out)
    return out


@st.composite
def mutated_seed(draw) -> dict:
    doc = json.loads(_SEED_TEXT)
    for _ in range(draw(st.integers(1, 3))):
        parent, key = draw(st.sampled_from(_slots(doc, [])))
        op = draw(st.sampled_from(("replace", "delete", "add", "repeat")))
        if op == "replace":
            parent[key] = copy.deepcopy(draw(st.sampled_from(_VALUES)))
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(("extra", "values", "0", "name")))] = \
                copy.deepcopy(draw(st.sampled_from(_VALUES)))
        elif isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
    return doc


#: examples of the mutation property; raise it for a longer search (PARITY_FIXTURE_FUZZ=10000)
FUZZ_EXAMPLES = int(os.environ.get("PARITY_FIXTURE_FUZZ", "200"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_seed())
def test_mutated_fixture_is_refused_by_field_or_runs_cleanly(doc: dict) -> None:
    """One to three random edits (replace a value by one of many types, delete, add a key,
    repeat a list item) anywhere in seed.json: loading raises a FixtureError naming a field,
    or the fixture compares, reports and runs without an exception."""
    from parity import report
    from parity.candidates import FixtureCandidate
    from parity.runner import compare_variant, run
    from parity.sources import FixtureSource

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.json"
        path.write_text(json.dumps(doc))
        try:
            ref = fixtures.load("seed", tmp)
        except FixtureError as exc:
            assert exc.path == str(path)
            assert exc.field.startswith("$.") or exc.field.startswith("$["), str(exc)
            return
        rows = [row for k in ref.results for row in compare_variant(ref, k, FixtureCandidate())]
        report.to_json(rows, {})
        report.to_markdown(rows, {})
        result = run([CORPUS[0]], FixtureSource(tmp), FixtureCandidate())
        assert result.rows
