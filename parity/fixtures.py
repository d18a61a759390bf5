"""Fixture files: one JSON document per case, validated on load, written atomically.

The schema is ``fixture.schema.json`` beside this module and is described for people in
``parity/corpus/README.md``.  Loading checks, in order: the file exists and is UTF-8 JSON; its
``schema_version`` is one this code reads; every number is finite and no key repeats; the
document matches the schema (which also types each data column's values); and the parts agree
with each other (the case is a valid case on the stored data, one result per variant of the
case, names and values of equal length, factor codes within their levels, unique column names).
Each failure raises :class:`~parity.errors.FixtureError` naming the file and the field;
nothing in a fixture is ever evaluated as code (see :mod:`parity.trust`).

Where fixtures are found (:func:`search_path`): in the folder given (``--fixtures-dir``), and
only there; otherwise, case by case, in ``$PARITY_FIXTURES``, then ``./fixtures``, then the
corpus shipped inside this package (``parity/corpus``), the first that holds ``<name>.json``.
"""

from __future__ import annotations

import json
import math
import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import write_text_atomic
from .errors import CaseError, FixtureError, ParityError
from .results import CaseReference
from .variants import VARIANT_ARGUMENT, parse_label

if TYPE_CHECKING:
    import jsonschema

    from .cases import Case

SCHEMA_VERSION = 2

#: The corpus fixtures, shipped inside the package (package data).
CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
#: Where fixtures are looked for before ./fixtures and the corpus.
FIXTURES_ENV = "PARITY_FIXTURES"
#: The folder in the working directory looked in after $PARITY_FIXTURES.
LOCAL_DIR = "fixtures"


def search_path(directory: Path | str | None = None) -> list[Path]:
    """The folders a fixture is looked for in, in order: ``directory`` alone if given, else
    ``$PARITY_FIXTURES`` (if set), ``./fixtures`` and the package's corpus."""
    if directory is not None:
        return [Path(directory)]
    env = os.environ.get(FIXTURES_ENV)
    return [*([Path(env)] if env else []), Path.cwd() / LOCAL_DIR, CORPUS_DIR]


def output_dir(corpus: bool) -> Path:
    """Where ``parity generate`` writes without ``--out``: ``$PARITY_FIXTURES`` if set, else
    the package's corpus for the corpus and ``./fixtures`` for cases of a case file."""
    env = os.environ.get(FIXTURES_ENV)
    if env:
        return Path(env)
    return CORPUS_DIR if corpus else Path.cwd() / LOCAL_DIR


def fixture_path(name: str, directory: Path | str | None = None) -> Path:
    """The fixture file of case ``name``: ``<directory>/<name>.json`` if a folder is given,
    else the first that exists along :func:`search_path` (the corpus's path if none does)."""
    folders = search_path(directory)
    for folder in folders:
        p = folder / f"{name}.json"
        if p.is_file():
            return p
    return folders[-1] / f"{name}.json"


def fixture_names(directory: Path | str) -> list[str]:
    """The case names of the fixtures in a folder (its ``*.json`` files), sorted."""
    return sorted(p.stem for p in Path(directory).glob("*.json") if p.is_file())


def cases_in(directory: Path | str) -> tuple[list[Case], list[FixtureError]]:
    """The cases stored in a folder of fixtures (a folder of fixtures is a corpus by itself),
    each with its data, and the fixtures that could not be read."""
    cases, errors = [], []
    for name in fixture_names(directory):
        try:
            cases.append(load(name, directory).case)
        except FixtureError as exc:
            errors.append(exc)
    return cases, errors


@cache
def _validator() -> jsonschema.protocols.Validator:
    jsonschema = _jsonschema()
    schema = json.loads(resources.files("parity").joinpath("fixture.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _jsonschema() -> Any:
    try:
        import jsonschema
    except ImportError:
        raise ParityError("reading fixtures needs jsonschema, which comes with the harness's "
                          "extra: pip install 'glmm-lme4[parity]'") from None
    return jsonschema


def validate(doc: Any, path: Path | str) -> None:
    """Raise FixtureError unless ``doc`` is a valid fixture document of this schema version.

    Beyond the schema: every number finite, no key twice in an object, no NUL in a string,
    and the parts consistent with each other (see :func:`_check_consistency`).
    """
    if not isinstance(doc, dict):
        raise FixtureError(path, "$", "the document is not a JSON object")
    if "schema_version" not in doc:
        raise FixtureError(path, "$.schema_version", "missing required field")
    version = doc["schema_version"]
    if type(version) is int and version == 1:
        raise FixtureError(path, "$.schema_version",
                           f"schema_version 1 is the old glmer-only format; this code reads "
                           f"{SCHEMA_VERSION} (a method, and results keyed by variant): "
                           "regenerate the fixture with live R")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise FixtureError(path, "$.schema_version",
                           f"unknown schema_version {version!r}; this code reads {SCHEMA_VERSION}")
    _check_values(doc, path)
    error = _jsonschema().exceptions.best_match(_validator().iter_errors(doc))
    if error is not None:
        field = error.json_path
        problem = error.message
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [k for k in error.validator_value if k not in error.instance]
            if missing:
                field = _child(field, missing[0])
                problem = "missing required field"
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = error.schema.get("properties", {})
            extra = [k for k in error.instance if k not in allowed]
            if extra:
                field = _child(field, extra[0])
                problem = (f"unknown field {extra[0]!r}; the fields here are "
                           f"{', '.join(allowed)}")
        raise FixtureError(path, field, problem)
    _check_consistency(doc, path)


# -- JSON values the schema cannot see --------------------------------------------------------
_PLAIN_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")  # as jsonschema's json_path writes keys

#: Beyond 2**53 a JSON integer is no longer exact as a double, and no fixture field is that big.
_MAX_INTEGER = 2**53


def _child(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if _PLAIN_KEY.match(key) else f"{where}['{key}']"


class _NotFinite(str):
    """The text of a JSON number that is not a finite double (NaN, Infinity, 1e400)."""


class _KeyedTwice(dict):
    """A JSON object in which a key appeared more than once (the first such key is kept)."""

    repeated: str = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
    dup = _KeyedTwice(out)
    dup.repeated = repeated
    return dup


def _float(text: str) -> float | _NotFinite:
    x = float(text)
    return x if math.isfinite(x) else _NotFinite(text)


def _check_values(doc: Any, path: Path | str) -> None:
    """Non-finite numbers, repeated keys, huge integers and NUL characters, in document order."""
    stack: list[tuple[str, Any]] = [("$", doc)]
    while stack:
        where, x = stack.pop()
        if isinstance(x, dict):
            if isinstance(x, _KeyedTwice):
                raise FixtureError(path, _child(where, x.repeated),
                                   "this key appears more than once in its object")
            stack += reversed([(_child(where, str(k)), v) for k, v in x.items()])
        elif isinstance(x, list):
            stack += reversed([(_child(where, i), v) for i, v in enumerate(x)])
        elif isinstance(x, _NotFinite) or (isinstance(x, float) and not math.isfinite(x)):
            raise FixtureError(path, where, f"non-finite number {x}: a fixture holds finite "
                                            "numbers only (null is NA)")
        elif isinstance(x, int) and not isinstance(x, bool) and abs(x) > _MAX_INTEGER:
            raise FixtureError(path, where, f"integer {x} is too large (beyond 2^53)")
        elif isinstance(x, str) and "\x00" in x:
            raise FixtureError(path, where, "a string with a NUL character")


# -- consistency between the parts ------------------------------------------------------------
def _check_consistency(doc: dict[str, Any], path: Path | str) -> None:
    case = _check_case(doc, path)
    want = sorted(v.label for v in case.variants)
    have = sorted(doc["results"])
    if want != have:
        arg = VARIANT_ARGUMENT[case.method]
        raise FixtureError(path, "$.results",
                           f"results for {have}, but the case lists {arg} "
                           f"{list(getattr(case, arg))} ({want})")
    for key, res in doc["results"].items():
        where = f"$.results.{key}"
        for kind in ("default", "tight"):
            _check_fit(res[kind], kind, f"{where}.{kind}", path)
        _check_probes(res, parse_label(case.method, key).theta_only, where, path)


def _check_case(doc: dict[str, Any], path: Path | str) -> Case:
    """The document's case, checked as every case is, on the stored data."""
    from .cases import Case
    from .dataset import Dataset

    _check_data(doc["data"], path)
    try:
        return Case.from_spec(doc["case"], str(path), Dataset.from_json(doc["data"]))
    except CaseError as exc:
        raise FixtureError(path, f"$.case.{exc.field}", exc.problem) from None


def _check_data(data: dict[str, Any], path: Path | str) -> dict[str, str]:
    """Column name -> kind, once the columns are consistent."""
    nrow = data["nrow"]
    kinds: dict[str, str] = {}
    for i, col in enumerate(data["columns"]):
        where = f"$.data.columns[{i}]"
        name = col["name"]
        if name in kinds:
            raise FixtureError(path, f"{where}.name",
                               f"column name {name!r} appears twice; column names are unique")
        kinds[name] = col["type"]
        values = col["values"]
        if len(values) != nrow:
            raise FixtureError(path, f"{where}.values", f"{len(values)} values, but nrow is {nrow}")
        if col["type"] != "factor":
            extra = [k for k in ("levels", "ordered") if k in col]
            if extra:
                raise FixtureError(path, f"{where}.{extra[0]}",
                                   f"a {col['type']} column has no {extra[0]}: they go with "
                                   "factor columns only")
            continue
        n = len(col["levels"])
        bad = next((j for j, v in enumerate(values) if v is not None and v >= n), None)
        if bad is not None:
            raise FixtureError(path, f"{where}.values[{bad}]",
                               f"factor code {values[bad]} outside 0..{n - 1} (codes index "
                               f"the {n} levels)")
    return kinds


def _lengths(where: str, path: Path | str, **parts: Any) -> None:
    """The named lists have equal lengths."""
    sizes = {k: len(v) for k, v in parts.items()}
    if len(set(sizes.values())) > 1:
        first = next(iter(sizes))
        odd = next(k for k, n in sizes.items() if n != sizes[first])
        raise FixtureError(path, f"{where}.{odd}", f"{sizes[odd]} entries, but {first} has "
                                                    f"{sizes[first]}")


def _check_fit(fit: dict[str, Any], kind: str, where: str, path: Path | str) -> None:
    if fit["control"] != kind:
        raise FixtureError(path, f"{where}.control",
                           f"{fit['control']!r} under {kind!r}: the fits are swapped")
    for part in ("fixef", "theta"):
        names, values = fit[part]["names"], fit[part]["values"]
        if len(names) != len(values):
            raise FixtureError(path, f"{where}.{part}", "names and values differ in length")
    _lengths(f"{where}.theta", path, values=fit["theta"]["values"], lower=fit["theta"]["lower"])
    _lengths(where, path, u=fit["u"], b=fit["b"])
    for g, table in fit["ranef"].items():
        w = _child(f"{where}.ranef", g)
        ncol = len(table["columns"])
        if len(table["values"]) != len(table["levels"]):
            raise FixtureError(path, f"{w}.values", f"{len(table['values'])} rows, but "
                                                    f"{len(table['levels'])} levels")
        row = next((i for i, r in enumerate(table["values"]) if len(r) != ncol), None)
        if row is not None:
            raise FixtureError(path, f"{w}.values[{row}]",
                               f"{len(table['values'][row])} values, but {ncol} columns")
    vcov = fit["vcov"]
    if vcov is not None:
        n = len(vcov["names"])
        if len(vcov["values"]) != n or any(len(r) != n for r in vcov["values"]):
            raise FixtureError(path, f"{where}.vcov.values", f"not a {n} x {n} matrix")


def _check_probes(res: dict[str, Any], theta_only: bool, where: str, path: Path | str) -> None:
    tight = res["tight"]
    n_theta, n_beta, n_u = (len(tight["theta"]["values"]), len(tight["fixef"]["values"]),
                            len(tight["u"]))
    n_params = n_theta if theta_only else n_theta + n_beta
    points = res["probes"]["points"]
    labels = [p["label"] for p in points]
    for needed in ("tight", "default", "away"):
        if needed not in labels:
            raise FixtureError(path, f"{where}.probes.points", f"no probe labelled {needed!r}")
    for i, p in enumerate(points):
        w = f"{where}.probes.points[{i}]"
        if labels.index(p["label"]) != i:
            raise FixtureError(path, f"{w}.label", f"a second probe labelled {p['label']!r}")
        for part, n, what in (("params", n_params, "θ" if theta_only else "θ and β"),
                              ("u", n_u, "u"), ("b", n_u, "u"), ("beta", n_beta, "β")):
            if len(p[part]) != n:
                raise FixtureError(path, f"{w}.{part}", f"{len(p[part])} values, but the "
                                                        f"tight fit has {n} ({what})")


def _parse(text: str, path: Path) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_float=_float,
                          parse_constant=_NotFinite)
    except json.JSONDecodeError as exc:
        raise FixtureError(path, "$", f"corrupt JSON at line {exc.lineno} column {exc.colno}: "
                                      f"{exc.msg}") from None
    except RecursionError:
        raise FixtureError(path, "$", "JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer literal of more than 4300 digits
        raise FixtureError(path, "$", f"unreadable JSON: {exc}") from None


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FixtureError(path, "$", f"not UTF-8: byte 0x{raw[exc.start]:02x} at line {line} "
                                      f"column {col} ({exc.reason}); a fixture is UTF-8 "
                                      "JSON") from None


def load_document(path: Path | str) -> dict[str, Any]:
    """Read and validate one fixture file; returns the raw document."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise FixtureError(p, "$", "no such fixture file") from None
    except OSError as exc:
        raise FixtureError(p, "$", f"cannot read: {exc}") from exc
    doc = _parse(_decode(raw, p), p)
    validate(doc, p)
    return doc


def load(name: str, directory: Path | str | None = None) -> CaseReference:
    """The reference of one case, from its fixture (see :func:`fixture_path`)."""
    path = fixture_path(name, directory)
    doc = load_document(path)
    if doc["case"]["name"] != name:
        raise FixtureError(path, "$.case.name",
                           f"the file holds case {doc['case']['name']!r}, not {name!r}")
    try:
        return CaseReference.from_json(doc, read_from=str(path))
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # pragma: no cover
        # validate() checks everything from_json reads; this names the file if it missed one
        raise FixtureError(path, "$", f"cannot be read: {type(exc).__name__}: {exc}") from exc


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
