"""Datasets keep R's column types and factor level order, and round-trip losslessly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity import fixtures
from parity.dataset import Column, Dataset


def test_factor_levels_keep_r_order() -> None:
    # cbpp herd levels are "1".."15" in numeric order in R; a string sort would give 1, 10, 11
    data = fixtures.load("cbpp").data
    herd = data.column("herd")
    assert herd.levels[:3] == ("1", "2", "3")
    df = data.to_pandas()
    assert list(df["herd"].cat.categories[:3]) == ["1", "2", "3"]
    assert df["herd"].iloc[0] == "1"


def test_pandas_types() -> None:
    ds = Dataset((
        Column("f", "factor", (1, 0, None), ("b", "a"), ordered=True),
        Column("x", "double", (0.1, None, 2.5)),
        Column("i", "integer", (1, 2, 3)),
        Column("j", "integer", (1, None, 3)),
        Column("l", "logical", (True, False, True)),
    ))
    df = ds.to_pandas()
    assert df["f"].cat.ordered and list(df["f"].cat.categories) == ["b", "a"]
    assert df["f"].tolist()[:2] == ["a", "b"] and pd.isna(df["f"].iloc[2])
    assert np.isnan(df["x"].iloc[1])
    assert df["i"].dtype == np.int64 and str(df["j"].dtype) == "Int64"
    assert df["l"].dtype == bool


def test_invalid_columns_rejected() -> None:
    with pytest.raises(ValueError, match=r"factor code 2 outside 0\.\.1"):
        Column("f", "factor", (0, 2), ("a", "b"))
    with pytest.raises(ValueError, match="levels go with factor columns only"):
        Column("x", "double", (1.0,), ("a",))
    with pytest.raises(ValueError, match="different lengths"):
        Dataset((Column("a", "double", (1.0,)), Column("b", "double", (1.0, 2.0))))
    with pytest.raises(ValueError, match="duplicate column names"):
        Dataset((Column("a", "double", (1.0,)), Column("a", "double", (1.0,))))


@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
                min_size=1, max_size=30))
def test_doubles_round_trip_exactly_through_json(values: list[float | None]) -> None:
    ds = Dataset((Column("x", "double", tuple(values)),))
    back = Dataset.from_json(json.loads(json.dumps(ds.to_json())))
    assert back == ds
