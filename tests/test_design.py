"""The model-building layer against lme4: formula parsing, model frame, X, Z, Λ, θ and names.

Every expected value comes from R (``fixtures/design.json``, written by
``scripts/generate_design_fixtures.py`` from ``lme4::glFormula`` in the C locale); nothing is
compared with our own output.  Each case gives the same data to both sides: the corpus data
(checked by digest against the fixture) or a synthetic set stored in the fixture.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import glmm.design.fixed as fixed_module
from glmm.design.expression import deparse, format_number, parse_expr
from glmm.design.fixed import column_checks, fixed_effects
from glmm.design.formula import parse_formula
from glmm.design.frame import ModelFrameError, model_frame
from glmm.design.model_matrix import contr_poly
from glmm.design.random import RandomEffectsError, random_effects
from glmm.design.terms import terms
from glmm.errors import FixedEffectsError, FormulaError, ScaleWarning
from glmm.linalg.linpack import dqrdc2
from parity import fixtures
from parity.dataset import Dataset

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "design.json"


@cache
def _doc() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def _cases(ok: bool) -> list[dict[str, Any]]:
    return [c for c in _doc()["cases"] if c["expect_error"] != ok]


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in cases]


OK_CASES = _cases(True)
ERROR_CASES = _cases(False)


@cache
def _dataset(ref: str) -> Dataset:
    if ref.startswith("corpus:"):
        return fixtures.load(ref.split(":", 1)[1]).data
    return Dataset.from_json(_doc()["datasets"][ref])


def _data(case: dict[str, Any]) -> pd.DataFrame:
    ds = _dataset(case["data"])
    text = json.dumps(ds.to_json(), sort_keys=True, allow_nan=False, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert digest == case["data_sha256"], (
        f"{case['data']} changed since design.json was generated; rerun "
        f"scripts/generate_design_fixtures.py")
    df = ds.to_pandas()
    for col in case["as_character"]:  # R turned these factors into character vectors
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


class Built:
    """Our parse, frame, X and random effects for one case (built once)."""

    def __init__(self, case: dict[str, Any]) -> None:
        self.parsed = parse_formula(case["formula"])
        self.frame = model_frame(self.parsed, _data(case), weights=case["weights"],
                                 offset=case["offset"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.fixed = fixed_effects(self.parsed, self.frame)
        self.warnings = [str(w.message) for w in caught]
        self.random = random_effects(self.parsed, self.frame)


@cache
def _built(name: str) -> Built:
    case = next(c for c in OK_CASES if c["name"] == name)
    return Built(case)


def _r(case: dict[str, Any]) -> dict[str, Any]:
    return case["r"]


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", _doc()["cases"], ids=_ids(_doc()["cases"]))
def test_parsed_formula_matches_lme4(case: dict[str, Any]) -> None:
    want = _r(case)["parsed"]
    if case["name"] == "error-no-bars":
        assert want["bars"] == []
        return
    got = parse_formula(case["formula"])
    assert got.response == want["response"]
    assert got.fixed == want["fixed"]
    assert [b.name for b in got.bars] == want["bars"]
    assert list(got.offsets) == want["offsets"]


@pytest.mark.parametrize("item", _doc()["deparse"], ids=lambda d: d["text"][:30])
def test_deparse_matches_r(item: dict[str, str]) -> None:
    assert deparse(parse_expr(item["text"])) == item["r"]


@pytest.mark.parametrize("item", _doc()["numbers"], ids=lambda d: repr(d["value"]))
def test_number_labels_match_r_as_character(item: dict[str, Any]) -> None:
    assert format_number(item["value"]) == item["r"]


@pytest.mark.parametrize("item", _doc()["terms"], ids=lambda d: d["rhs"])
def test_terms_match_r(item: dict[str, Any]) -> None:
    t = terms(item["rhs"])
    assert list(t.variable_names) == item["variables"]
    assert list(t.labels) == item["labels"]
    assert int(t.intercept) == item["intercept"]
    assert list(t.offsets) == item["offsets"]
    rows = item["factor_rows"]
    names = list(t.variable_names)
    got = [[codes[names.index(v)] for v in rows] for codes in t.codes]
    assert got == item["factors"]


@pytest.mark.parametrize("item", _doc()["contr_poly"], ids=lambda d: f"n={d['n']}")
def test_contr_poly_matches_r_bit_for_bit(item: dict[str, Any]) -> None:
    values, names = contr_poly(item["n"])
    assert list(names) == item["names"]
    want = np.column_stack(item["columns"])
    assert values.shape == want.shape
    np.testing.assert_array_equal(values, want)


# ---------------------------------------------------------------------------------------------
# The model frame
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", OK_CASES, ids=_ids(OK_CASES))
def test_rows_kept(case: dict[str, Any]) -> None:
    fr = _built(case["name"]).frame
    assert fr.n == _r(case)["nrow"]
    np.testing.assert_array_equal(fr.rows, _r(case)["rows"])
    assert len(fr.data) == fr.n


@pytest.mark.parametrize("case", OK_CASES, ids=_ids(OK_CASES))
def test_response(case: dict[str, Any]) -> None:
    want = _r(case)["response"]
    got = _built(case["name"]).frame.response
    if want["type"] == "factor":
        assert isinstance(got, pd.Categorical)
        assert list(got.categories) == want["levels"]
        np.testing.assert_array_equal(got.codes, want["codes"])
        return
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    if want["type"] == "matrix":
        np.testing.assert_array_equal(got, np.column_stack(want["values"]))
    else:  # numeric, or logical as 0/1
        np.testing.assert_array_equal(got, np.asarray(want["values"], dtype=float))


@pytest.mark.parametrize("case", OK_CASES, ids=_ids(OK_CASES))
def test_weights_and_offset(case: dict[str, Any]) -> None:
    fr = _built(case["name"]).frame
    r = _r(case)
    want_w = np.ones(fr.n) if r["weights"] is None else np.asarray(r["weights"])
    want_o = np.zeros(fr.n) if r["offset"] is None else np.asarray(r["offset"])
    np.testing.assert_array_equal(fr.weights, want_w)
    np.testing.assert_array_equal(fr.offset, want_o)


def test_weights_and_offset_as_arrays_give_the_column_results() -> None:
    case = next(c for c in OK_CASES if c["name"] == "weights-offset-na")
    df = _data(case)
    parsed = parse_formula(case["formula"])
    fr = model_frame(parsed, df, weights=df["w"].to_numpy(), offset=df["na_unused"].to_numpy())
    np.testing.assert_array_equal(fr.rows, _r(case)["rows"])
    np.testing.assert_array_equal(fr.weights, _r(case)["weights"])
    np.testing.assert_array_equal(fr.offset, _r(case)["offset"])


# ---------------------------------------------------------------------------------------------
# X
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", OK_CASES, ids=_ids(OK_CASES))
def test_fixed_effects_matrix(case: dict[str, Any]) -> None:
    b = _built(case["name"])
    want = _r(case)["X"]
    assert list(b.fixed.names) == want["names"]
    assert list(b.fixed.dropped) == want["dropped"]
    want_X = (np.column_stack(want["columns"]) if want["columns"]
              else np.zeros((b.frame.n, 0)))
    assert b.fixed.X.shape == want_X.shape
    np.testing.assert_array_equal(b.fixed.X, want_X)
    assert b.warnings == want["messages"]


# ---------------------------------------------------------------------------------------------
# Random effects
# ---------------------------------------------------------------------------------------------
def _sparse(tri: dict[str, Any], values: np.ndarray | None = None) -> sp.csc_matrix:
    x = np.asarray(tri["x"] if values is None else values, dtype=float)
    return sp.csc_matrix((x, (tri["i"], tri["j"])), shape=tuple(tri["dim"]))


@pytest.mark.parametrize("case", OK_CASES, ids=_ids(OK_CASES))
def test_term_order_columns_and_levels(case: dict[str, Any]) -> None:
    re_ = _built(case["name"]).random
    rt = _r(case)["reTrms"]
    assert [t.name for t in re_.terms] == rt["term_names"]
    assert [(t.group, list(t.columns)) for t in re_.terms] == [
        (c["group"], c["columns"]) for c in rt["cnms"]]
    assert [t.nlevels for t in re_.terms] == rt["nl"]
    assert list(re_.group_names) == [f["name"] for f in rt["flist"]]
    assert [a + 1 for a in re_.assign] == rt["assign"]
    for f in rt["flist"]:
        term = re_.terms[re_.terms_of(f["name"])[0]]
        assert list(term.levels) == f["levels"]
        np.testing.assert_array_equal(term.codes, f["codes"])
        assert term.codes.dtype == np.int64


@pytest.mark.parametrize("case", OK_CASES, ids=_ids(OK_CASES))
def test_Z_matches_lme4_Zt(case: dict[str, Any]) -> None:
    re_ = _built(case["name"]).random
    want = _sparse(_r(case)["reTrms"]["Zt"]).T.tocsc()
    Z = re_.Z
    assert sp.issparse(Z) and Z.format == "csc"
    assert Z.shape == want.shape
    diff = (Z - want).tocsc()
    diff.eliminate_zeros()
    assert diff.nnz == 0
    # the same stored pattern (lme4 drops zeros with drop0)
    assert Z.nnz == want.nnz
    assert (abs(Z) != 0).astype(int).sum() == want.nnz


@pytest.mark.parametrize("case", OK_CASES, ids=_ids(OK_CASES))
def test_theta_start_bounds_names_and_Gp(case: dict[str, Any]) -> None:
    re_ = _built(case["name"]).random
    rt = _r(case)["reTrms"]
    np.testing.assert_array_equal(re_.theta0, rt["theta"])
    want_lower = np.array([-np.inf if v is None else v for v in rt["lower"]])
    np.testing.assert_array_equal(re_.lower, want_lower)
    assert list(re_.theta_names) == rt["theta_names"]
    np.testing.assert_array_equal(re_.offsets, rt["Gp"])
    assert re_.q == rt["Gp"][-1]
    assert sum(t.ntheta for t in re_.terms) == len(rt["theta"])


@pytest.mark.parametrize("case", OK_CASES, ids=_ids(OK_CASES))
def test_Lambda_matches_lme4_Lambdat_with_Lind(case: dict[str, Any]) -> None:
    re_ = _built(case["name"]).random
    rt = _r(case)["reTrms"]
    rng = np.random.default_rng(7)
    theta = rng.normal(size=len(rt["theta"]))
    lind = np.asarray(rt["Lind"]) - 1
    want = _sparse(rt["Lambdat"], theta[lind]).T.tocsc()  # Λ = (Λᵀ)ᵀ with x = θ[Lind]
    got = re_.Lambda(theta)
    assert got.shape == want.shape
    assert abs(got - want).max() == 0
    # the same structural pattern as lme4's Lambdat, whatever θ is
    assert got.nnz == len(rt["Lind"])
    # T_i is each term's diagonal block of lme4's Λ (its first level)
    dense_want = want.toarray() if want.shape[0] <= 2000 else None
    for i, (t, Ti) in enumerate(zip(re_.terms, re_.T(theta), strict=True)):
        start = rt["Gp"][i]
        block = want[start:start + t.ncols, start:start + t.ncols].toarray()
        np.testing.assert_array_equal(Ti, block)
        assert np.all(np.triu(Ti, 1) == 0)
    if dense_want is not None:
        np.testing.assert_array_equal(got.toarray(), dense_want)


# ---------------------------------------------------------------------------------------------
# Cases lme4 refuses
# ---------------------------------------------------------------------------------------------
#: our exception for each refused case, and whether our message carries lme4's wording
REFUSALS: dict[str, tuple[type[Exception], str | None]] = {
    "error-one-level": (RandomEffectsError, None),
    "error-zdims": (RandomEffectsError, None),
    "error-fixed-one-level": (FixedEffectsError, None),
    "error-no-bars": (FormulaError, None),
    "error-unknown-variable": (FormulaError, "nosuch"),
    "error-negative-weights": (ModelFrameError, r"all\(weights >= 0\) is not TRUE"),
    "error-infinite-response": (ModelFrameError, None),
    "error-character-response": (ModelFrameError, None),
}


@pytest.mark.parametrize("case", ERROR_CASES, ids=_ids(ERROR_CASES))
def test_refused_like_lme4(case: dict[str, Any]) -> None:
    r = _r(case)
    message = r["error"] or r["resp_error"]
    assert message, "lme4 accepted this case"
    exc_type, pattern = REFUSALS[case["name"]]
    with pytest.raises(exc_type, match=pattern or re.escape(message)):
        parsed = parse_formula(case["formula"])
        frame = model_frame(parsed, _data(case), weights=case["weights"],
                            offset=case["offset"])
        fixed_effects(parsed, frame)
        random_effects(parsed, frame)


def test_every_refusal_is_mapped() -> None:
    assert {c["name"] for c in ERROR_CASES} == set(REFUSALS)


# ---------------------------------------------------------------------------------------------
# Formula errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("formula", "pattern"), [
    ("y ~ x + (1 | g", r"unbalanced parentheses: '\(' at position 8 is never closed"),
    ("y ~ x) + (1 | g)", r"unbalanced parentheses: unexpected '\)'"),
    ("y ~ x + [1 | g)", r"unbalanced parentheses"),
    ("y x + (1 | g)", r"expected an operator"),
    ("y + x", r"not a formula \(no '~'\)"),
    ("~ x + (1 | g)", r"no response"),
    ("y ~ x", r"No random effects terms specified in formula"),
    ("y ~ x ~ z + (1 | g)", r"more than one '~'"),
    ("", r"the formula is empty"),
    ("y ~ . + (1 | g)", r"'\.' in a formula"),
    ("y ~ (a + b)^x + (1 | g)", r"invalid power in formula"),
    ("y ~ 2 + x + (1 | g)", r"the constant 2 is not a term"),
    ("y ~ x + (1 | log(g))", r"unsupported grouping factor log\(g\)"),
    ("y ~ x + (1 | a:b/c)", r"'/' nesting needs plain factors"),
    ("y ~ x + (1 | g) + 'a", r"unterminated string"),
    ("y ~ x + (1 | g) # c", r"unexpected character '#'"),
    ("y ~ offset(a, b) + (1 | g)", r"offset\(\) takes one argument"),
])
def test_formula_errors(formula: str, pattern: str) -> None:
    with pytest.raises(FormulaError, match=pattern):
        parse_formula(formula)


def _toy() -> pd.DataFrame:
    return pd.DataFrame({"y": [0.0, 1.0, 1.0, 0.0], "x": [1.0, 2.0, 3.0, 4.0],
                         "g": pd.Categorical(["a", "a", "b", "b"])})


@pytest.mark.parametrize(("formula", "pattern"), [
    ("y ~ zz + (1 | g)", r"unknown variable 'zz'"),
    ("y ~ x + (1 | hh)", r"unknown variable 'hh'"),
    ("y ~ foo(x) + (1 | g)", r"unsupported function or operator 'foo'"),
    ("y ~ I(x + g) + (1 | g)", r"non-numeric argument"),
])
def test_frame_formula_errors(formula: str, pattern: str) -> None:
    with pytest.raises(FormulaError, match=pattern):
        model_frame(parse_formula(formula), _toy())


def test_weights_errors() -> None:
    parsed = parse_formula("y ~ x + (1 | g)")
    with pytest.raises(FormulaError, match="unknown variable 'ww' given as weights"):
        model_frame(parsed, _toy(), weights="ww")
    with pytest.raises(ModelFrameError,
                       match=r"variable lengths differ \(found for '\(weights\)'\)"):
        model_frame(parsed, _toy(), weights=np.ones(3))
    with pytest.raises(ModelFrameError, match=r"invalid type \(factor\) for variable '\(offset\)'"):
        model_frame(parsed, _toy(), offset="g")


def test_errors_are_value_errors() -> None:
    for exc in (FormulaError, ModelFrameError, FixedEffectsError, RandomEffectsError):
        assert issubclass(exc, ValueError)


def test_parses_are_cached_and_errors_are_not() -> None:
    """A formula's text is parsed once (the result is immutable); a bad formula raises on
    every call."""
    text = "y ~ x + (1 | g)"
    assert parse_formula(text) is parse_formula(text)
    for _ in range(2):
        with pytest.raises(FormulaError, match="more than one '~'"):
            parse_formula("y ~ x ~ z + (1 | g)")
        with pytest.raises(FormulaError, match="the formula is empty"):
            parse_formula(None)  # type: ignore[arg-type]


def test_model_frame_reads_the_data_every_time() -> None:
    """Nothing is cached on the data: a DataFrame changed between calls gives the new frame."""
    parsed = parse_formula("y ~ x + (1 | g)")
    df = _toy()
    first = model_frame(parsed, df)
    df["x"] = [10.0, 20.0, 30.0, 40.0]
    df["g"] = pd.Categorical(["a", "b", "b", "c"])
    second = model_frame(parsed, df)
    np.testing.assert_array_equal(first.variable("x"), [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(second.variable("x"), [10.0, 20.0, 30.0, 40.0])
    assert list(second.variable("g").categories) == ["a", "b", "c"]
    re = random_effects(parsed, second)
    assert re.terms[0].levels == ("a", "b", "c")


def test_unused_factor_levels_are_dropped() -> None:
    """Levels without rows (in the data, or after NA rows are removed) leave the frame, the
    grouping factor and X; the others keep their order."""
    df = pd.DataFrame({"y": [0.0, 1.0, 1.0, 0.0, 1.0], "x": [1.0, 2.0, 3.0, 4.0, np.nan],
                       "g": pd.Categorical(["b", "b", "a", "a", "c"],
                                           categories=["z", "b", "a", "c"])})
    parsed = parse_formula("y ~ g + (1 | g)")
    frame = model_frame(parse_formula("y ~ g + x + (1 | g)"), df)
    assert list(frame.variable("g").categories) == ["b", "a"]
    frame = model_frame(parsed, df)
    assert list(frame.variable("g").categories) == ["b", "a", "c"]
    assert random_effects(parsed, frame).terms[0].levels == ("b", "a", "c")
    assert fixed_effects(parsed, frame).names == ("(Intercept)", "ga", "gc")


def test_numeric_categories_are_labelled_per_categories_object() -> None:
    """A categorical with numeric categories gets R's labels; the labels are kept per
    categories Index, so a column whose categories change (a new Index) gets its own, and a
    duplicate label is refused every time."""
    parsed = parse_formula("y ~ 1 + (1 | g)")
    df = pd.DataFrame({"y": [0.0, 1.0, 1.0, 0.0], "g": pd.Categorical([1, 2, 2, 10])})
    for _ in range(2):
        assert list(model_frame(parsed, df).variable("g").categories) == ["1", "2", "10"]
    df["g"] = df["g"].cat.rename_categories([1.5, 2.0, 3.25])
    assert list(model_frame(parsed, df).variable("g").categories) == ["1.5", "2", "3.25"]
    df["g"] = pd.Categorical([1, "1", "1", 1], categories=[1, "1"])
    for _ in range(2):
        with pytest.raises(ModelFrameError, match="not distinct"):
            model_frame(parsed, df)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("residual", [1.0, 1e-3, 1e-6, 1e-9, 0.0])
def test_clearly_full_rank_only_where_dqrdc2_keeps_every_column(residual: float, compiled: bool,
                                                                monkeypatch) -> None:
    """The shortcut past LINPACK's QR: it must say True only where dqrdc2 keeps all columns
    in place, and say False (sending X to dqrdc2) in the margin above dqrdc2's tolerance and
    below it.  The last column is the first plus ``residual``·‖x₁‖ times a unit vector
    orthogonal to the first two, so |R₃₃| / ‖x₃‖ ≈ residual.  Both routes: the compiled
    core's (column_checks) and numpy's."""
    if compiled and fixed_module._core is None:
        pytest.skip("no compiled core")
    if not compiled:
        monkeypatch.setattr(fixed_module, "_core", None)
    rng = np.random.default_rng(5)
    X = np.column_stack([np.ones(40), rng.normal(size=40), rng.normal(size=40)])
    e = rng.normal(size=40)
    e -= X[:, :2] @ np.linalg.lstsq(X[:, :2], e, rcond=None)[0]   # ⟂ the first two columns
    X[:, 2] = X[:, 0] + residual * np.linalg.norm(X[:, 0]) * e / np.linalg.norm(e)
    _, rank, _, pivot = dqrdc2(X)
    fast, _ = column_checks(np.asfortranarray(X), ("(Intercept)", "x", "z"))
    if fast:
        assert rank == 3 and list(pivot) == [0, 1, 2]
    assert fast == (residual >= 1e-3)           # the margin: 1e3 × RANK_TOL = 1e-4
    assert (rank == 3) == (residual >= 1e-6)    # dqrdc2 itself: RANK_TOL = 1e-7


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("n", [1, 2, 7, 300])
def test_column_checks_sd_is_r_sd_of_the_continuous_columns(n: int, compiled: bool,
                                                             monkeypatch) -> None:
    """The standard deviations of column_checks (the core's: one call for X; numpy's: column
    by column) against numpy's std(ddof = 1), R's sd, where a column has an entry other than
    0 and 1, NaN where it has none (ones, 0/1 indicators, zeros) and for every column when
    n < 2; a C-ordered X (not the design's Fortran order) takes numpy's route."""
    if compiled and fixed_module._core is None:
        pytest.skip("no compiled core")
    if not compiled:
        monkeypatch.setattr(fixed_module, "_core", None)
    rng = np.random.default_rng(11)
    X = np.asfortranarray(np.column_stack([
        np.ones(n), rng.integers(0, 2, n).astype(float), np.zeros(n), rng.normal(5.0, 3.0, n),
        np.r_[np.zeros(n - 1), 0.5], 1e8 + rng.normal(size=n)]))
    names = ("(Intercept)", "b", "z", "x", "h", "big")
    want = [np.nan, np.nan, np.nan] + ([np.std(X[:, j], ddof=1) for j in (3, 4, 5)] if n > 1
                                       else [np.nan] * 3)
    for got in (column_checks(X, names)[1], column_checks(np.ascontiguousarray(X), names)[1]):
        # two-pass sums of n terms: rounding ~n·ε relative (1e8 + noise: the mean's rounding,
        # ~1e-8 absolute, is what the second pass is there to keep out)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=0)


@pytest.mark.parametrize("compiled", [True, False])
def test_column_checks_rank_shortcut_declines_what_it_cannot_vouch_for(compiled: bool,
                                                                       monkeypatch) -> None:
    """No shortcut past dqrdc2 for fewer rows than columns, for a column of zeros, and for
    columns whose squared norm overflows (1e200) or is subnormal (1e-170): each goes to the
    pivoted QR.  Well-scaled columns take the shortcut."""
    if compiled and fixed_module._core is None:
        pytest.skip("no compiled core")
    if not compiled:
        monkeypatch.setattr(fixed_module, "_core", None)
    rng = np.random.default_rng(2)
    names = ("(Intercept)", "x", "z")
    X = np.asfortranarray(np.column_stack([np.ones(6), rng.normal(size=6), rng.normal(size=6)]))
    assert column_checks(X, names)[0] is True
    assert column_checks(np.asfortranarray(X[:2]), names)[0] is False   # n < p
    for scale in (0.0, 1e200, 1e-170):
        Y = X.copy(order="F")
        Y[:, 2] *= scale
        assert column_checks(Y, names)[0] is False


def test_a_rank_deficient_x_checks_the_scale_of_the_columns_kept() -> None:
    """The scale check reads the standard deviations of the columns kept after a dropped
    one: x2 = 2·x is dropped, big (sd ~ 1e5) is named in the warning, x2 is not."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=40)
    df = pd.DataFrame({"y": rng.integers(0, 2, 40), "x": x, "x2": 2.0 * x,
                       "big": 1e5 * rng.normal(size=40), "g": np.repeat(list("abcd"), 10)})
    parsed = parse_formula("y ~ x + x2 + big + (1 | g)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fixed = fixed_effects(parsed, model_frame(parsed, df))
    assert fixed.dropped == ("x2",)
    scale = [str(w.message) for w in caught if issubclass(w.category, ScaleWarning)]
    assert len(scale) == 1 and "for big)" in scale[0] and "x2" not in scale[0]


def test_a_stored_column_reads_as_its_series_does() -> None:
    # the model frame reads each column's stored array (no Series built around it): the
    # same R vector as from the Series, for every kind of column
    from glmm.design.evaluate import from_column, stored_column

    df = pd.DataFrame({
        "f": [1.5, np.nan, -2.0, 4.0], "f32": np.array([1, 2, 3, 4], dtype=np.float32),
        "i": [1, 2, 3, 4], "u": np.array([1, 2, 3, 4], dtype=np.uint8),
        "b": [True, False, True, True], "I": pd.array([1, None, 3, 4], dtype="Int64"),
        "B": pd.array([True, None, False, True], dtype="boolean"),
        "F": pd.array([0.5, None, 1.0, 2.0], dtype="Float64"),
        "s": ["b", "a", None, "b"], "S": pd.array(["x", None, "y", "x"], dtype="string"),
        "o": pd.Series([1, 2.5, None, 4], dtype=object),
        "c": pd.Categorical(["u", "v", None, "u"]),
        "cn": pd.Categorical([3, 1, 3, 2]),
        "co": pd.Categorical(["lo", "hi", "lo", "hi"], categories=["lo", "hi"], ordered=True)})
    for name in df.columns:
        fast, slow = from_column(name, stored_column(df, name)), from_column(name, df[name])
        assert fast.kind == slow.kind, name
        if fast.kind == "factor":
            assert list(fast.values.categories) == list(slow.values.categories), name
            assert fast.values.ordered == slow.values.ordered, name
            assert np.array_equal(fast.values.codes, slow.values.codes), name
        elif fast.kind == "character":
            assert list(fast.values) == list(slow.values), name
        else:
            assert np.array_equal(fast.values, slow.values, equal_nan=True), name
    twice = pd.concat([df[["f"]], df[["f"]]], axis=1)
    with pytest.raises(ModelFrameError, match="2 columns of that name"):
        stored_column(twice, "f")
