"""Case files: your own models, in TOML, one ``[[case]]`` table per model.

    [[case]]
    name = "visits"
    data = "visits.csv"        # CSV or Parquet, relative to this file; or data_r = "lme4::cbpp"
    formula = "count ~ age + offset(log(exposure)) + (1 | clinic) + (1 | region)"
    family = "poisson"         # method = "glmer" by default; "lmer" and "glmer.nb" too
    link = "log"
    nAGQ = [0, 1]              # lmer: REML = [true, false]
    factors = ["clinic", "region"]   # read as factors; string columns are factors anyway

The other keys are ``description``, ``method``, ``weights`` and ``offset`` (column names),
and ``tags``.  A case file is written by its user, as a conftest.py is, so its ``data_r`` is R
code that R evaluates when the fixture is made; a fixture file, by contrast, is data, and
nothing in it is ever evaluated (:mod:`parity.trust`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .cases import Case, unique_names
from .errors import CaseError

#: The keys of a ``[[case]]`` table.
CASE_KEYS: tuple[str, ...] = (
    "name", "description", "method", "data", "data_r", "formula", "family", "link", "nAGQ",
    "REML", "weights", "offset", "factors", "tags")


def load_cases(path: Path | str) -> list[Case]:
    """The cases of a case file, each checked against its data; CaseError naming the file,
    the case and the field otherwise."""
    p = Path(path)
    where = str(p)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CaseError("-", "-", "no such case file", where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError("-", "-", f"cannot read the case file: {exc}", where) from None
    except tomllib.TOMLDecodeError as exc:
        raise CaseError("-", "-", f"not TOML: {exc}", where) from None
    extra = sorted(set(doc) - {"case"})
    if extra:
        raise CaseError("-", extra[0], "unknown table; a case file holds [[case]] tables", where)
    tables = doc.get("case")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict)
                                                             for t in tables):
        raise CaseError("-", "case", "no [[case]] tables", where)
    cases = [_case(t, i, p) for i, t in enumerate(tables)]
    try:
        unique_names(cases, where)
    except CaseError as exc:
        raise CaseError(exc.case, exc.field, exc.problem, where) from None
    return cases


def _case(table: dict[str, Any], index: int, path: Path) -> Case:
    where = str(path)
    name = table.get("name")
    label = name if isinstance(name, str) else f"[[case]] #{index + 1}"
    if not isinstance(name, str):
        raise CaseError(label, "name", "every case has a name (a string)", where)
    unknown = sorted(set(table) - set(CASE_KEYS))
    if unknown:
        raise CaseError(label, unknown[0], f"unknown key; the keys are {', '.join(CASE_KEYS)}",
                        where)
    try:
        if ("data" in table) == ("data_r" in table):
            raise CaseError(label, "data", "give exactly one of data (a CSV or Parquet file) "
                                           "and data_r (an R expression)")
        kw = {k: table[k] for k in ("nAGQ", "REML", "weights", "offset", "factors", "tags",
                                    "description", "method", "family", "link") if k in table}
        if "formula" not in table:
            raise CaseError(label, "formula", "every case has a formula")
        if "data_r" in table:
            return _from_r(name, table, kw)
        file = table["data"]
        if not isinstance(file, str):
            raise CaseError(label, "data", f"{file!r} is not a file name")
        df = read_table(path.parent / file, label)
        return Case.from_dataframe(name, df, table["formula"], data_file=file, **kw)
    except CaseError as exc:
        raise CaseError(exc.case, exc.field, exc.problem, where) from None
    except TypeError as exc:  # a value of the wrong type for its key
        raise CaseError(label, "-", str(exc), where) from None


def _from_r(name: str, table: dict[str, Any], kw: dict[str, Any]) -> Case:
    method = kw.pop("method", "glmer")
    from .variants import METHOD_FAMILIES

    families = METHOD_FAMILIES.get(method, {})
    family = kw.pop("family", next(iter(families)) if len(families) == 1 else None)
    if family is None:
        raise CaseError(name, "family", "every glmer case names its family")
    link = kw.pop("link", families.get(family, ("?",))[0])
    if "nAGQ" not in kw and "REML" not in kw:
        kw["REML" if method == "lmer" else "nAGQ"] = (True,) if method == "lmer" else (1,)
    return Case(name, kw.pop("description", ""), table["data_r"], table["formula"], family,
                link, method=method, **kw)


def read_table(path: Path, case: str) -> Any:
    """A CSV (``.csv``, ``.tsv``) or Parquet (``.parquet``) file as a pandas DataFrame."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except FileNotFoundError:
        raise CaseError(case, "data", f"no such file: {path}") from None
    except ImportError as exc:
        raise CaseError(case, "data", f"reading {path.name} needs a Parquet engine (pip "
                                      f"install pyarrow): {exc}") from None
    except Exception as exc:  # pandas' parser errors
        raise CaseError(case, "data", f"cannot read {path}: {exc}") from None
    raise CaseError(case, "data", f"{path.name}: a data file is .csv, .tsv or .parquet")
