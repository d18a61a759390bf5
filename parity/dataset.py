"""A typed, lossless table: the data of a case, as R built it.

Factor level order decides the columns of Z, the rows of ``ranef`` and the treatment
contrasts, so a column keeps its levels explicitly instead of relying on a sort.  Doubles
round-trip exactly through JSON (Python writes the shortest repr that reads back bit for bit).
"""

from __future__ import annotations

import math
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
