"""Strings from a fixture file never reach R's evaluator (parity/trust.py).

Each test plants ``system("touch <marker>")`` in a field of seed.json, then drives every path
that sends a fixture to R: ``fixtures.load`` and the unvalidated ``CaseReference.from_json``,
``LiveRCandidate.fit`` and ``.devfun``, ``LiveRSource.reference`` and the CLI with live R as
the candidate.  R runs in forked children (parity/deadline.py), so a planted call that ran
anywhere leaves its marker file; none may.  A control test shows that the same text, given
as code, does create its marker.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from parity import fixtures
from parity.candidates import LiveRCandidate
from parity.cases import get_case
from parity.cli import main
from parity.errors import FixtureError, ParityError, RFitError, UnsafeInputError
from parity.results import CaseReference
from parity.sources import LiveRSource

pytestmark = pytest.mark.live_r


def _plant(marker: Path) -> str:
    return f'system("touch {marker}")'


def _seed() -> dict:
    return json.loads(fixtures.fixture_path("seed").read_text())


def _column(doc: dict, name: str) -> dict:
    return next(c for c in doc["data"]["columns"] if c["name"] == name)


#: field -> how the call is planted there (as a whole value, or inside a valid-looking one)
FIELD_PLANTS = {
    "name": lambda d, code: d["case"].update(name=code),
    "description": lambda d, code: d["case"].update(description=code),
    "data_r": lambda d, code: d["case"].update(data_r=f"{{{code}; {d['case']['data_r']}}}"),
    "formula": lambda d, code: d["case"].update(formula=code),
    "formula-term": lambda d, code: d["case"].update(
        formula=f"y ~ x1 + {code} + (1 | subject)"),
    "formula-backquoted": lambda d, code: d["case"].update(
        formula=f"y ~ x1 + `system`(\"{code[14:-2]}\") + (1 | subject)"),
    "formula-two-expressions": lambda d, code: d["case"].update(
        formula=f"y ~ x1 + (1 | subject)\n{code}"),
    "family": lambda d, code: d["case"].update(family=code),
    "link": lambda d, code: d["case"].update(link=code),
    "weights": lambda d, code: d["case"].update(weights=code),
    "offset": lambda d, code: d["case"].update(offset=code),
    "tags": lambda d, code: d["case"].update(tags=[code]),
    "column-name": lambda d, code: _column(d, "x1").update(name=code),
    "factor-level": lambda d, code: _column(d, "subject")["levels"].__setitem__(0, code),
    # the strings of the provenance and the results that the schema constrains
    "provenance-locale": lambda d, code: d["provenance"].update(locale=code),
    "fit-control": lambda d, code: d["results"]["nAGQ1"]["tight"].update(control=code),
    "probe-label": lambda d, code: d["results"]["nAGQ1"]["probes"]["points"][0].update(label=code),
}
#: constrained strings, planted one at a time above
CONSTRAINED = {"locale", "control", "label"}


def _string_slots(node, out: list) -> list:
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in items:
        if isinstance(v, str) and k not in CONSTRAINED:
            out.append((node, k))
        elif isinstance(v, (dict, list)):
            _string_slots(v, out)
    return out


def _plant_everywhere_else(doc: dict, tmp: Path) -> list[Path]:
    """A distinct planted call in every string of the provenance and the results but the
    constrained ones."""
    markers = []
    for part in ("provenance", "results"):
        for i, (node, key) in enumerate(_string_slots(doc[part], [])):
            m = tmp / f"{part}-{i}"
            node[key] = _plant(m)
            markers.append(m)
    return markers


def _drive(doc: dict, folder: Path) -> list[str]:
    """Send the planted document down every path to R; what each path said."""
    folder.mkdir(exist_ok=True)
    (folder / "seed.json").write_text(json.dumps(doc))
    said = []
    refs = []
    try:
        refs.append(fixtures.load("seed", folder))
    except FixtureError as exc:
        said.append(f"load: {exc.field}")
    try:
        refs.append(CaseReference.from_json(doc))  # no validation at all
    except (ValueError, TypeError, KeyError) as exc:
        said.append(f"from_json: {type(exc).__name__}")
    candidate, source = LiveRCandidate(), LiveRSource()
    for ref in refs:
        points = [p.params for p in ref.results[1].probes.points]
        v = ref.case.variant(1)
        calls = [lambda r=ref, v=v: candidate.fit(r, v),
                 lambda r=ref, p=points, v=v: candidate.devfun(r, v, p)]
        if ref.case != get_case("seed"):
            # a case equal to the corpus entry makes LiveRSource evaluate the corpus's own
            # code only, which needs no test here (and costs a full regeneration); without
            # its inline data, the case's data_r is what LiveRSource would evaluate
            calls.append(lambda r=ref: source.reference(dataclasses.replace(r.case, data=None)))
        for call in calls:
            try:
                call()
                said.append("ran")
            except ParityError as exc:
                said.append(f"{type(exc).__name__}: {exc}")
    rc = main(["run", "--source", "fixtures", "--candidate", "r", "--case", "seed", "--nagq",
               "1", "--fixtures-dir", str(folder), "--no-progress"])
    said.append(f"cli exit {rc}")
    return said


def test_control_the_marker_shows_code_that_runs(r_session, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    r_session.make_data(f"{{{_plant(marker)}; data.frame(a = 1)}}")  # code, by design
    assert marker.exists()


@pytest.mark.parametrize("field", sorted(FIELD_PLANTS))
def test_planted_call_in_a_field_never_runs(field: str, tmp_path: Path,
                                                         capsys) -> None:
    marker = tmp_path / "ran"
    doc = _seed()
    FIELD_PLANTS[field](doc, _plant(marker))
    said = _drive(doc, tmp_path / "fixtures")
    capsys.readouterr()
    assert not marker.exists(), said


def test_planted_calls_in_provenance_and_results_never_run(tmp_path: Path, capsys) -> None:
    doc = _seed()
    markers = _plant_everywhere_else(doc, tmp_path)
    assert len(markers) > 50
    said = _drive(doc, tmp_path / "fixtures")
    capsys.readouterr()
    assert not [m.name for m in markers if m.exists()], said
    assert said[0] == "ran"  # the planted strings loaded and R did fit the fixture's data


def test_file_case_data_r_is_refused_with_the_field(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    doc = _seed()
    FIELD_PLANTS["data_r"](doc, _plant(marker))
    ref = CaseReference.from_json(doc)
    with pytest.raises(UnsafeInputError) as err:  # a file case without its inline data
        LiveRSource().reference(dataclasses.replace(ref.case, data=None))
    assert err.value.field == "case.data_r"
    assert "never evaluates" in str(err.value)
    assert not marker.exists()


def test_file_case_refits_on_its_inline_data_never_its_data_r(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    doc = _seed()
    doc["case"]["description"] = "a copy of seed under another name"
    doc["case"]["name"] = "seed-copy"
    FIELD_PLANTS["data_r"](doc, _plant(marker))
    ref = CaseReference.from_json(doc)
    again = LiveRSource().reference(ref.case)  # a fixture is a case by itself, data and all
    assert again.data == ref.data and sorted(again.results) == [0, 1, 25]
    assert not marker.exists()


def test_fixture_of_the_corpus_case_regenerates_from_the_corpus_code() -> None:
    ref = fixtures.load("seed")
    again = LiveRSource().reference(ref.case)  # the corpus's data_r, not the file's
    assert again.data == ref.data


def test_unchecked_formula_is_refused_by_r_itself(r_session, tmp_path: Path) -> None:
    # Python's check bypassed: R's parity_formula checks its own parse against the whitelist
    marker = tmp_path / "ran"
    ref = fixtures.load("seed")
    for formula in (f"y ~ x1 + {_plant(marker)} + (1 | subject)",
                    f"{_plant(marker)}; y ~ x1 + (1 | subject)"):
        spec = {"formula": formula, "family": "binomial", "link": "logit"}
        with pytest.raises(RFitError, match=r"whitelist|2 expressions"):
            r_session.call("parity_fit", r_session.dataframe(ref.data),
                           r_session._r_spec(spec), 1, "tight")
    assert not marker.exists()


@pytest.mark.parametrize(("spec", "field"), [
    ({"formula": "y ~ x1 + system('x') + (1 | subject)"}, "case.formula"),
    ({"family": "quasi"}, "case.family"),
    ({"link": "system('x')"}, "case.link"),
    ({"weights": "w"}, "case.weights"),
    ({"offset": "subject"}, "case.offset"),
])
def test_session_refuses_unchecked_strings(r_session, spec: dict, field: str) -> None:
    ref = fixtures.load("seed")
    bad = {**ref.case.spec(), **spec}
    with pytest.raises(UnsafeInputError) as err:
        r_session.fit(ref.data, bad, 1, "tight")
    assert err.value.field == field
    with pytest.raises(UnsafeInputError):
        r_session.probe(ref.data, bad, 1, [[1.0, 0.0, 0.0]])
