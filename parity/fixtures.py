"""Fixture files: one JSON document per corpus case, validated on load, written atomically.

The schema is ``fixture.schema.json`` beside this module and is described for people in
``fixtures/README.md``.  Loading checks, in order: the file exists and is JSON; its
``schema_version`` is one this code reads; the document matches the schema; and the parts
agree with each other (one result per nAGQ of the case, names and values of equal length).
Each failure raises :class:`~parity.errors.FixtureError` naming the file and the field.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from .atomic import write_text_atomic
from .errors import FixtureError
from .results import CaseReference

SCHEMA_VERSION = 1

#: The committed fixtures: ``fixtures/`` at the repository root.
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_path(name: str, directory: Path | str | None = None) -> Path:
    return Path(directory or DEFAULT_DIR) / f"{name}.json"


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(resources.files("parity").joinpath("fixture.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate(doc: Any, path: Path | str) -> None:
    """Raise FixtureError unless ``doc`` is a valid fixture document of this schema version."""
    if not isinstance(doc, dict):
        raise FixtureError(path, "$", "the document is not a JSON object")
    if "schema_version" not in doc:
        raise FixtureError(path, "$.schema_version", "missing required field")
    version = doc["schema_version"]
    if version != SCHEMA_VERSION:
        raise FixtureError(path, "$.schema_version",
                           f"unknown schema_version {version!r}; this code reads {SCHEMA_VERSION}")
    error = jsonschema.exceptions.best_match(_validator().iter_errors(doc))
    if error is not None:
        field = error.json_path
        problem = error.message
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [k for k in error.validator_value if k not in error.instance]
            if missing:
                field = f"{field}.{missing[0]}"
                problem = "missing required field"
        raise FixtureError(path, field, problem)
    _check_consistency(doc, path)


def _check_consistency(doc: dict[str, Any], path: Path | str) -> None:
    want = sorted(doc["case"]["nAGQ"])
    have = sorted(int(k) for k in doc["results"])
    if want != have:
        raise FixtureError(path, "$.results",
                           f"results for nAGQ {have}, but the case lists nAGQ {want}")
    nrow = doc["data"]["nrow"]
    for i, col in enumerate(doc["data"]["columns"]):
        if len(col["values"]) != nrow:
            raise FixtureError(path, f"$.data.columns[{i}].values",
                               f"{len(col['values'])} values, but nrow is {nrow}")
    for key, res in doc["results"].items():
        for kind in ("default", "tight"):
            fit = res[kind]
            for part in ("fixef", "theta"):
                if len(fit[part]["names"]) != len(fit[part]["values"]):
                    raise FixtureError(path, f"$.results['{key}'].{kind}.{part}",
                                       "names and values differ in length")
        labels = [p["label"] for p in res["probes"]["points"]]
        for needed in ("tight", "default", "away"):
            if needed not in labels:
                raise FixtureError(path, f"$.results['{key}'].probes.points",
                                   f"no probe labelled {needed!r}")


def load_document(path: Path | str) -> dict[str, Any]:
    """Read and validate one fixture file; returns the raw document."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FixtureError(p, "$", "no such fixture file") from None
    except OSError as exc:
        raise FixtureError(p, "$", f"cannot read: {exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FixtureError(p, "$", f"corrupt JSON at line {exc.lineno} column {exc.colno}: "
                                   f"{exc.msg}") from exc
    validate(doc, p)
    return doc


def load(name: str, directory: Path | str | None = None) -> CaseReference:
    """The reference of one case, from ``<directory>/<name>.json``."""
    path = fixture_path(name, directory)
    doc = load_document(path)
    if doc["case"]["name"] != name:
        raise FixtureError(path, "$.case.name",
                           f"the file holds case {doc['case']['name']!r}, not {name!r}")
    return CaseReference.from_json(doc)


def dumps(doc: dict[str, Any]) -> str:
    """JSON with one line per list of scalars: diffable, and exact for doubles."""

    def enc(x: Any, indent: int) -> str:
        pad = " " * indent
        if isinstance(x, dict):
            if not x:
                return "{}"
            items = [f'{pad} {json.dumps(k)}: {enc(v, indent + 1)}' for k, v in x.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(x, list) and any(isinstance(v, (dict, list)) for v in x):
            items = [f"{pad} {enc(v, indent + 1)}" for v in x]
            return "[\n" + ",\n".join(items) + "\n" + pad + "]"
        return json.dumps(x, allow_nan=False)

    return enc(doc, 0) + "\n"


def write(doc: dict[str, Any], path: Path | str) -> Path:
    """Validate, then write atomically (see :mod:`parity.atomic`).

    An invalid document raises FixtureError before anything is written, and a failed write
    leaves the previous file untouched.
    """
    validate(doc, path)
    return write_text_atomic(path, dumps(doc))
