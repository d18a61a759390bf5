"""A typed, lossless table: the data of a case, as R built it.

Factor level order decides the columns of Z, the rows of ``ranef`` and the treatment
contrasts, so a column keeps its levels explicitly instead of relying on a sort.  Doubles
round-trip exactly through JSON (Python writes the shortest repr that reads back bit for bit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

ColumnKind = Literal["factor", "double", "integer", "logical"]
KINDS: tuple[str, ...] = ("factor", "double", "integer", "logical")


@dataclass(frozen=True)
class Column:
    """One column.  ``values`` holds Python scalars with ``None`` for NA; for a factor they
    are 0-based codes into ``levels``."""

    name: str
    kind: ColumnKind
    values: tuple[Any, ...]
    levels: tuple[str, ...] | None = None
    ordered: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r}")
        if (self.kind == "factor") != (self.levels is not None):
            raise ValueError(f"column {self.name!r}: levels go with factor columns only")
        if self.kind == "factor":
            n = len(self.levels or ())
            bad = [c for c in self.values if c is not None and not 0 <= c < n]
            if bad:
                raise ValueError(f"column {self.name!r}: factor code {bad[0]} outside 0..{n - 1}")

    def to_pandas(self) -> pd.Series:
        if self.kind == "factor":
            codes = np.array([-1 if c is None else c for c in self.values], dtype=np.int64)
            cat = pd.Categorical.from_codes(codes, categories=list(self.levels or ()),
                                            ordered=self.ordered)
            return pd.Series(cat, name=self.name)
        has_na = any(v is None for v in self.values)
        if self.kind == "double":
            arr = np.array([math.nan if v is None else v for v in self.values], dtype=float)
            return pd.Series(arr, name=self.name)
        dtype = {"integer": ("int64", "Int64"), "logical": ("bool", "boolean")}[self.kind]
        return pd.Series(list(self.values), name=self.name, dtype=dtype[1] if has_na else dtype[0])

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind}
        if self.kind == "factor":
            out["levels"] = list(self.levels or ())
            out["ordered"] = self.ordered
        out["values"] = list(self.values)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Column:
        levels = obj.get("levels")
        return cls(
            name=obj["name"],
            kind=obj["type"],
            values=tuple(obj["values"]),
            levels=None if levels is None else tuple(levels),
            ordered=bool(obj.get("ordered", False)),
        )


@dataclass(frozen=True)
class Dataset:
    """Columns of equal length, in R's column order."""

    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        lengths = {len(c.values) for c in self.columns}
        if len(lengths) > 1:
            raise ValueError(f"columns have different lengths: {sorted(lengths)}")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column names in {names}")

    @property
    def nrow(self) -> int:
        return len(self.columns[0].values) if self.columns else 0

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"no column {name!r}; the columns are {self.names}")

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame with Categorical factors (levels in R's order) and R's column types."""
        return pd.DataFrame({c.name: c.to_pandas() for c in self.columns})

    def to_json(self) -> dict[str, Any]:
        return {"nrow": self.nrow, "columns": [c.to_json() for c in self.columns]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Dataset:
        return cls(tuple(Column.from_json(c) for c in obj["columns"]))


#: R's integer range (its NA is -2^31)
_R_INT_MAX = 2**31 - 1


def dataset_from_pandas(df: pd.DataFrame, factors: Sequence[str] = ()) -> Dataset:
    """The table R would fit from ``df``: a lossless :class:`Dataset`.

    Numbers become ``double`` columns (``integer`` for integer dtypes within R's range),
    booleans ``logical``, a Categorical a factor with its categories in order, and strings a
    factor whose levels are sorted as R sorts them in the C locale (by bytes).  Columns named
    in ``factors`` become factors too: integers with their levels in numeric order (labelled
    as R's ``as.character``), strings as above.  Missing values are NA.  Anything else (dates,
    mixed objects, non-integer numbers named as factors) is a TypeError naming the column.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"the data must be a pandas DataFrame, not {type(df).__name__}")
    names = list(df.columns)
    bad = next((n for n in names if not isinstance(n, str) or not n), None)
    if bad is not None or len(set(names)) != len(names):
        raise ValueError(f"column names must be unique, non-empty strings: {names}")
    missing = [f for f in factors if f not in names]
    if missing:
        raise ValueError(f"factors names {missing[0]!r}, which is not a column of the data "
                         f"(the columns are {', '.join(names)})")
    return Dataset(tuple(_column(n, df[n], n in factors) for n in names))


def _column(name: str, s: pd.Series, as_factor: bool) -> Column:
    na = s.isna().to_numpy()
    if isinstance(s.dtype, pd.CategoricalDtype):
        levels = tuple(str(c) for c in s.cat.categories)
        codes = tuple(None if c < 0 else int(c) for c in s.cat.codes)
        return Column(name, "factor", codes, levels, bool(s.cat.ordered))
    if pd.api.types.is_bool_dtype(s.dtype):
        vals = tuple(None if m else bool(v) for v, m in zip(s.to_numpy(object), na, strict=True))
        return Column(name, "logical", vals)
    if pd.api.types.is_numeric_dtype(s.dtype):
        arr = s.to_numpy(dtype=float, na_value=math.nan)
        if as_factor:
            return _numeric_factor(name, arr)
        finite = arr[~na]
        if not np.all(np.isfinite(finite)):
            raise ValueError(f"column {name!r} holds an infinite value")
        if pd.api.types.is_integer_dtype(s.dtype) and np.all(np.abs(finite) <= _R_INT_MAX):
            return Column(name, "integer", tuple(None if m else int(v)
                                                 for v, m in zip(arr, na, strict=True)))
        return Column(name, "double", tuple(None if m else float(v)
                                            for v, m in zip(arr, na, strict=True)))
    values = s.to_numpy(object)
    if not all(m or isinstance(v, str) for v, m in zip(values, na, strict=True)):
        raise TypeError(f"column {name!r} of dtype {s.dtype} is neither numbers, booleans, "
                        "strings nor a Categorical")
    strs = [None if m else str(v) for v, m in zip(values, na, strict=True)]
    levels = tuple(sorted({v for v in strs if v is not None}, key=lambda v: v.encode("utf-8")))
    index = {lev: i for i, lev in enumerate(levels)}
    return Column(name, "factor", tuple(None if v is None else index[v] for v in strs), levels)


def _numeric_factor(name: str, arr: np.ndarray) -> Column:
    present = arr[~np.isnan(arr)]
    if not np.all(np.isfinite(present)) or not np.all(present == np.round(present)):
        raise TypeError(f"column {name!r} is named in factors but holds non-integer numbers; "
                        "give its values as strings")
    uniq = sorted({int(v) for v in present})
    index = {v: i for i, v in enumerate(uniq)}
    codes = tuple(None if math.isnan(v) else index[int(v)] for v in arr)
    return Column(name, "factor", codes, tuple(str(v) for v in uniq))
