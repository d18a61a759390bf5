"""Bad input to ``glmer()``: each refused with a typed error that names its cause, or handled as
lme4 handles it (issue 12).

Where lme4 fits, the expected numbers are lme4's (1.1-31, R 4.2.2), run on the same data as
noted beside them; where lme4 refuses, its message is quoted in a comment.  Nothing is
compared with our own output.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import glmm
from glmm.design.expression import MAX_BRACKETS, MAX_DEPTH, deparse, parse_expr
from glmm.design.fixed import fixed_effects
from glmm.design.formula import parse_formula
from glmm.design.frame import model_frame
from glmm.design.terms import terms
from parity import fixtures

CBPP_FIXED = "cbind(incidence, size - incidence) ~ {} + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return fixtures.load("cbpp").data.to_pandas()


def _toy(n: int = 40) -> pd.DataFrame:
    """A binomial problem with a numeric x, counts, and two grouping factors."""
    rng = np.random.default_rng(12)
    return pd.DataFrame({"y": rng.integers(0, 2, n).astype(float),
                         "x": rng.normal(size=n), "z": rng.normal(size=n),
                         "cnt": rng.integers(1, 6, n),
                         "g": np.repeat(list("abcdefgh"), n // 8),
                         "h": np.tile(list("uvw"), n)[:n],
                         "w": np.ones(n)})


def _with(df: pd.DataFrame, column: str, row: int, value: object) -> pd.DataFrame:
    out = df.copy()
    out[column] = out[column].astype(float)
    out.loc[row, column] = value
    return out


def _assert_tight(fit: glmm.GlmerFit, objective: float, fixef: list[float],
                  theta: list[float]) -> None:
    # parity's tight tier (parity.compare): −2logLik within 1e-6, parameters within 1e-4
    assert fit.objective == pytest.approx(objective, abs=1e-6)
    np.testing.assert_allclose(fit.fixef.to_numpy(), fixef, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fit.theta, theta, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Non-finite values: lme4 stops ("NA/NaN/Inf in foreign function call (arg 1)" for X, "NA/NaN/
# Inf in 'y'", "PIRLS loop resulted in NaN value" for an offset); before, an infinite x was
# dropped as "rank deficient" and an intercept-only fit came back converged
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("formula", "column", "value", "named", "kwargs"), [
    ("y ~ x + (1 | g)", "x", math.inf, r"NA/NaN/Inf in x: it is infinite in 1 row \(index 3\)",
     {}),
    ("y ~ log(cnt) + (1 | g)", "cnt", 0, r"NA/NaN/Inf in log\(cnt\)", {}),
    ("y ~ x + (1 | g)", "y", -math.inf, r"NA/NaN/Inf in 'y'", {}),
    ("y ~ 1 + (x | g)", "x", -math.inf, r"NA/NaN/Inf in x", {}),
    ("y ~ x + offset(z) + (1 | g)", "z", math.inf, r"NA/NaN/Inf in offset\(z\)", {}),
    ("y ~ x + (1 | cnt)", "cnt", math.inf, r"NA/NaN/Inf in cnt", {}),
    ("y ~ x + (1 | g)", "w", math.inf, r"NA/NaN/Inf in weights", {"weights": "w"}),
    ("y ~ x + (1 | g)", "z", math.inf, r"NA/NaN/Inf in offset", {"offset": "z"}),
    ("y ~ x + I(z^400) + (1 | g)", "z", 10.0, r"NA/NaN/Inf in I\(z\^400\)", {}),
])
def test_non_finite_values_are_refused_naming_the_variable(formula, column, value, named,
                                                           kwargs) -> None:
    df = _with(_toy(), column, 3, value)
    with pytest.raises(glmm.ModelFrameError, match=named):
        glmm.glmer(formula, df, "binomial", **kwargs)


def test_non_finite_arrays_given_as_weights_or_offset_are_refused() -> None:
    df = _toy()
    bad = np.r_[np.inf, np.ones(len(df) - 1)]
    with pytest.raises(glmm.ModelFrameError, match=r"NA/NaN/Inf in weights.*index 0"):
        glmm.glmer("y ~ x + (1 | g)", df, "binomial", weights=bad)
    with pytest.raises(glmm.ModelFrameError, match=r"NA/NaN/Inf in offset.*index 0"):
        glmm.glmer("y ~ x + (1 | g)", df, "binomial", offset=-bad)


def test_an_overflowing_product_of_finite_variables_is_refused_naming_the_column() -> None:
    df = _toy().assign(big=1e200)
    df.loc[::2, "big"] = -1e200   # not constant: a real column of X
    with pytest.raises(glmm.FixedEffectsError,
                       match=r"infinite values in column big:I\(x \* 1e\+200\)"):
        glmm.glmer("y ~ big:I(x * 1e200) + (1 | g)", df.assign(x=df["x"] + 2.0), "binomial")
    with pytest.raises(glmm.FixedEffectsError, match=r"term \(0 \+ big:xx \| g\)"):
        glmm.glmer("y ~ 1 + (0 + big:xx | g)", df.assign(xx=df["big"]), "binomial")


def test_nan_from_a_function_drops_the_row_as_r_does() -> None:
    """R's log(-1) is NaN, which na.omit drops (with R's "NaNs produced" warning)."""
    df = _toy()
    df.loc[[2, 5], "x"] = -200.0
    frame = model_frame(parse_formula("y ~ log(x + 100) + (1 | g)"), df)
    assert frame.n == len(df) - 2 and frame.omitted.tolist() == [2, 5]


# ---------------------------------------------------------------------------------------------
# NA rows: dropped as na.omit drops them, and counted on the fit
# ---------------------------------------------------------------------------------------------
def test_na_rows_are_dropped_as_na_omit_and_reported() -> None:
    """An NA in the response, a predictor, an offset() term's variable, the grouping factor
    and the weights each drop its row; an NA in a column the model does not use does not.
    lme4: glmer(deaths ~ uvb + (1 | region) + offset(log(expected)), poisson, weights = w) on
    mmmec with the same NAs, parity's tight control: nobs 349, na.action rows 4 11 21 31 41
    (1-based)."""
    mm = fixtures.load("mmmec").data.to_pandas()
    mm["deaths"] = mm["deaths"].astype("Int64")
    mm.loc[3, "deaths"] = pd.NA
    mm.loc[10, "uvb"] = np.nan
    mm.loc[20, "expected"] = np.nan
    mm.loc[30, "region"] = np.nan
    mm["w"] = pd.array([1.0] * len(mm), dtype="Float64")
    mm.loc[40, "w"] = pd.NA
    mm["other"] = 0.0
    mm.loc[50, "other"] = np.nan
    fit = glmm.glmer("deaths ~ uvb + (1 | region) + offset(log(expected))", mm, "poisson",
                     weights="w")
    assert fit.nobs == 349
    assert fit.na_action == (3, 10, 20, 30, 40) and fit.n_omitted == 5
    _assert_tight(fit, 2206.6902654703, [-0.1456961169, -0.0335267396], [0.4104947109])


def test_a_fit_without_missing_values_omits_nothing(cbpp) -> None:
    fit = glmm.glmer(CBPP_FIXED.format("period"), cbpp, "binomial")
    assert fit.na_action == () and fit.n_omitted == 0


# ---------------------------------------------------------------------------------------------
# What used to escape as an untyped exception
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("formula", ["y ~ x + (0 | g)", "y ~ x + (-1 | g)",
                                     "y ~ x + (x | g) + (0 | h)"])
def test_a_term_without_columns_is_refused(formula) -> None:
    """lme4 stops with "length(theta) > 0L is not TRUE" for a lone (0 | g); beside another
    term it fits without it, but its summary() and ranef() then fail.  Before: "cannot
    reshape array of size 0", and an AttributeError about BlockedCholesky.L2."""
    with pytest.raises(glmm.RandomEffectsError, match=r"has no columns.*\(1 \| [gh]\)"):
        glmm.glmer(formula, _toy(), "binomial")


def test_a_duplicated_column_name_is_refused_where_the_model_uses_it() -> None:
    df = _toy()
    dup = pd.concat([df, df[["x"]].rename(columns={"x": "x"})], axis=1)
    with pytest.raises(glmm.ModelFrameError, match=r"column 'x': the data has 2 columns"):
        glmm.glmer("y ~ x + (1 | g)", dup, "binomial")
    dup_w = pd.concat([df, df[["w"]]], axis=1)
    with pytest.raises(glmm.ModelFrameError, match=r"column 'w': the data has 2 columns"):
        glmm.glmer("y ~ x + (1 | g)", dup_w, "binomial", weights="w")


def test_a_duplicated_column_the_model_does_not_use_does_not_matter(cbpp) -> None:
    tight = fixtures.load("cbpp").results[1].tight
    dup = pd.concat([cbpp, cbpp[["prop"]]], axis=1)
    fit = glmm.glmer(CBPP_FIXED.format("period"), dup, "binomial")
    _assert_tight(fit, tight.objective, tight.fixef, tight.theta)


@pytest.mark.parametrize("weights", ["wc", np.array(["a"] * 40), [object()] * 40,
                                     np.ones((40, 2))])
def test_weights_that_are_not_a_numeric_vector_are_refused(weights) -> None:
    df = _toy().assign(wc="a")
    with pytest.raises(glmm.ModelFrameError, match=r"weights"):
        glmm.glmer("y ~ x + (1 | g)", df, "binomial", weights=weights)


def test_a_logical_offset_is_refused_as_r_does() -> None:
    # R: "'offset' must be numeric"; logical weights R takes as 0/1
    df = _toy()
    with pytest.raises(glmm.ModelFrameError, match=r"invalid type \(logical\).*'\(offset\)'"):
        glmm.glmer("y ~ x + (1 | g)", df, "binomial", offset=np.ones(len(df), dtype=bool))


def test_all_zero_weights_or_no_trials_are_refused_upfront() -> None:
    """lme4: "Response is constant"; before, a PirlsError about XᵀWX."""
    df = _toy().assign(zero=0)
    with pytest.raises(glmm.ModelFrameError, match=r"every weight is 0"):
        glmm.glmer("y ~ x + (1 | g)", df, "binomial", weights=np.zeros(len(df)))
    with pytest.raises(glmm.ResponseError, match=r"cbind\(zero, zero\) has 0 trials"):
        glmm.glmer("cbind(zero, zero) ~ x + (1 | g)", df, "binomial")
    # trials only where the weight is 0
    df["s"] = np.r_[1, np.zeros(len(df) - 1, dtype=int)]
    with pytest.raises(glmm.ResponseError, match=r"0 trials .* in every row of positive"):
        glmm.glmer("cbind(s, zero) ~ x + (1 | g)", df, "binomial",
                   weights=np.r_[0.0, np.ones(len(df) - 1)])


def test_matrices_of_different_shapes_are_refused_as_r_does() -> None:
    # R: "non-conformable arrays"; before, numpy's broadcast error
    with pytest.raises(glmm.FormulaError, match=r"non-conformable arrays in '>'"):
        glmm.glmer("cbind(y, y) > cbind(y, y, y) ~ x + (1 | g)", _toy(), "binomial")
    with pytest.raises(glmm.FormulaError, match=r"non-conformable arrays in '&'"):
        glmm.glmer("y ~ I(cbind(x, z) & cbind(x, x, x)) + (1 | g)", _toy(), "binomial")


# ---------------------------------------------------------------------------------------------
# Long and deep formulas
# ---------------------------------------------------------------------------------------------
def test_400_terms_fit_as_lme4_fits_them(cbpp) -> None:
    """lme4 fits 400 (repeated) terms; before, a RecursionError.  lme4: that formula on cbpp
    with parity's tight control."""
    fit = glmm.glmer(CBPP_FIXED.format(" + ".join(["period"] * 400)), cbpp, "binomial")
    _assert_tight(fit, 184.0525637430, [-1.3985321438, -0.9923326827, -1.1286720380,
                                        -1.5803139023], [0.6422614300])


def test_long_chains_of_every_kind_parse() -> None:
    """Chains of left-associative operators, indexing, interactions of grouping factors and
    random-effects terms, each thousands long (R's parser takes them all)."""
    n = 3000
    cases = {
        "y ~ " + " + ".join(f"x{i}" for i in range(n)) + " + (1 | g)": (n, 1),
        "y ~ " + " - ".join(["x"] * n) + " + (1 | g)": (0, 1),   # R: no terms left
        "y ~ x + " + " + ".join(f"(1 | g{i})" for i in range(n)): (1, n),
        "y ~ x + (1 | " + ":".join(f"g{i}" for i in range(n)) + ")": (1, 1),
        "y ~ x + (" + " + ".join(f"x{i}" for i in range(n)) + " || g)": (1, n + 1),
    }
    for formula, (nterms, nbars) in cases.items():
        p = parse_formula(formula)
        assert len(terms(p.fixed).terms) == nterms and len(p.bars) == nbars
    text = "I(" + " * ".join(["x"] * n) + ")" + "[1]" * n
    assert deparse(parse_expr(text)) == text


def test_brackets_nest_as_deep_as_in_r(cbpp) -> None:
    """R's parser takes 50 nested brackets and stops at 51 ("contextstack overflow");
    before, 400 nested parentheses gave a RecursionError."""
    tight = fixtures.load("cbpp").results[1].tight
    deep = "(" * MAX_BRACKETS + "period" + ")" * MAX_BRACKETS
    fit = glmm.glmer(CBPP_FIXED.format(deep), cbpp, "binomial")
    _assert_tight(fit, tight.objective, tight.fixef, tight.theta)
    for k in (MAX_BRACKETS + 1, 400):
        with pytest.raises(glmm.FormulaError, match=r"contextstack overflow"):
            parse_formula(CBPP_FIXED.format("(" * k + "period" + ")" * k))
        with pytest.raises(glmm.FormulaError, match=r"contextstack overflow"):
            parse_formula(CBPP_FIXED.format("log(" * k + "size" + ")" * k))


def test_deeper_nesting_than_the_parser_takes_is_refused() -> None:
    """Unary and '^' chains nest on the right (R takes about 10,000 and 5,000); beyond
    MAX_DEPTH the parser refuses with a FormulaError, not a RecursionError."""
    for text in ("y ~ " + "-" * 400 + "x + (1 | g)", "y ~ x" + "^x" * 400 + " + (1 | g)"):
        with pytest.raises(glmm.FormulaError, match=rf"nested more than {MAX_DEPTH} levels"):
            parse_formula(text)
    assert parse_formula("y ~ " + "-" * (MAX_DEPTH // 2) + "x + (1 | g)").fixed


def test_nested_grouping_factors_beyond_the_bracket_limit_are_refused() -> None:
    # (1 | a/b/c/...) expands to c:(b:a), whose brackets nest one level per factor
    ok = parse_formula("y ~ x + (1 | " + "/".join(f"g{i}" for i in range(30)) + ")")
    assert len(ok.bars) == 30
    with pytest.raises(glmm.FormulaError, match=r"nests more than 50 factors"):
        parse_formula("y ~ x + (1 | " + "/".join(f"g{i}" for i in range(60)) + ")")


@pytest.mark.parametrize(("formula", "pattern"), [
    ("y ~ x^1e999 + (1 | g)", r"invalid power in formula"),       # before: OverflowError
    ("y ~ 1e999L + (1 | g)", r"the constant Inf is not a term"),  # before: OverflowError
    ("y ~ 0x" + "f" * 300 + " + (1 | g)", r"the constant Inf"),   # before: OverflowError
    ("y ~ `+`() + (1 | g)", r"'\+' with 0 operands"),             # before: IndexError
    ("y ~ `*`(x) + (1 | g)", r"'\*' with 1 operands"),            # before: IndexError
    ("y ~ x + `(`() + (1 | g)", r"'\(' with 0 operands"),         # before: IndexError
    ("y ~ (a+b+c+d+e+f+g+h+i+j+k+l+m+n+o+p)^16 + (1 | g)", r"more than 20000 terms"),
])
def test_malformed_operators_and_constants_are_formula_errors(formula, pattern) -> None:
    with pytest.raises(glmm.FormulaError, match=pattern):
        parse_formula(formula)


def test_a_huge_power_is_the_closure_of_its_terms() -> None:
    # R's terms(~ (a + b)^1000000): a, b, a:b (more powers add nothing)
    assert terms("(a + b)^1000000").labels == ("a", "b", "a:b")


def test_literals_that_r_reads_as_doubles() -> None:
    # R: deparse(quote(1.5L)) is "1.5", of 1e10L "1e+10" (both warn), of 0x10L "16L"
    assert [deparse(parse_expr(t)) for t in ("1.5L", "1e10L", "0x10L", "3L")] == [
        "1.5", "1e+10", "16L", "3L"]


def test_log_needs_its_argument(cbpp) -> None:
    with pytest.raises(glmm.FormulaError, match=r"log\(\) takes x and base"):
        glmm.glmer(CBPP_FIXED.format("log(base = 2)"), cbpp, "binomial")


def test_a_formula_that_is_not_a_string_is_a_type_error(cbpp) -> None:
    with pytest.raises(glmm.ArgumentTypeError, match=r"formula must be a string"):
        glmm.glmer(42, cbpp, "binomial")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# lme4's checkControl (glmerControl()$checkControl): check.nlev.gtr.1 "stop",
# check.nobs.vs.nRE "stop", check.nobs.vs.nlev "stop" (allow.n: nlev <= nobs, which keeping
# only levels with rows always meets), check.rankX "message+drop.cols", check.scaleX "warning"
# ---------------------------------------------------------------------------------------------
def test_a_grouping_factor_with_one_level_stops() -> None:
    with pytest.raises(glmm.RandomEffectsError,
                       match=r"grouping factors must have > 1 sampled level \(problems: k\)"):
        glmm.glmer("y ~ x + (1 | k)", _toy().assign(k="a"), "binomial")


def test_more_random_effects_than_observations_stops() -> None:
    df = _toy().assign(id=np.arange(40))
    with pytest.raises(glmm.RandomEffectsError,
                       match=r"number of observations \(=40\) < number of random effects "
                             r"\(=80\) for term \(x \| id\)"):
        glmm.glmer("y ~ x + (x | id)", df, "binomial")


def test_as_many_levels_as_observations_is_allowed() -> None:
    """glmer allows nlev = nobs (lme4 fitted y ~ x + (1 | id) with id = 1:n)."""
    df = _toy().assign(id=np.arange(40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", glmm.GlmmWarning)
        fit = glmm.glmer("y ~ x + (1 | id)", df, "binomial")
    assert fit.nobs == 40


def _scale_warnings(formula: str, df: pd.DataFrame) -> list[str]:
    parsed = parse_formula(formula)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fixed_effects(parsed, model_frame(parsed, df))
    return [str(w.message) for w in caught if issubclass(w.category, glmm.ScaleWarning)]


@pytest.mark.parametrize(("factor", "warns"), [
    (1000 * 0.99, False), (1000 * 1.01, True), (1e-3 * 1.01, False), (1e-3 * 0.99, True)])
def test_scale_of_x_is_checked_as_lme4_checks_it(cbpp, factor, warns) -> None:
    """lme4's checkScaleX warns when a continuous column's sd is beyond 1000 or below 1/1000
    (or two are that far apart).  lme4 on cbpp with xs = size · factor / sd(size): a warning
    "Some predictor variables are on very different scales" for the factors 1010 and
    0.00099, none for 990 and 0.00101."""
    df = cbpp.assign(xs=cbpp["size"] * factor / cbpp["size"].std(ddof=1))
    got = _scale_warnings(CBPP_FIXED.format("xs"), df)
    assert bool(got) == warns
    if warns:
        assert got[0].startswith("Some predictor variables are on very different scales: "
                                 "consider rescaling") and "for xs" in got[0]


def test_scales_far_apart_warn_as_in_lme4(cbpp) -> None:
    """sd 224 and 0.0035 are each within 1000 of 1 but 64,000 apart: lme4 warns."""
    df = cbpp.assign(a=cbpp["size"] * 30, b=cbpp["prop"] / 40)
    got = _scale_warnings(CBPP_FIXED.format("a + b + period"), df)
    assert len(got) == 1 and "for b to" in got[0] and "for a)" in got[0]
    assert _scale_warnings(CBPP_FIXED.format("size + prop + period"), cbpp) == []


def test_r_constants_in_expressions_are_named_and_valued_as_in_r() -> None:
    # R: deparse(quote(I(x > TRUE))) is "I(x > TRUE)", and the column "I(x > TRUE)TRUE"
    parsed = parse_formula("y ~ I(x > TRUE) + I(x + NA) + (1 | g)")
    assert parsed.fixed == "I(x > TRUE) + I(x + NA)"
    df = _toy().assign(x=np.linspace(-1.0, 3.0, 40))
    frame = model_frame(parse_formula("y ~ I(x > TRUE) + (1 | g)"), df)
    names = fixed_effects(parse_formula("y ~ I(x > TRUE) + (1 | g)"), frame).names
    assert names == ("(Intercept)", "I(x > TRUE)TRUE")
    # x + NA is NA in every row: nothing left (R: "0 (non-NA) cases")
    with pytest.raises(glmm.ModelFrameError, match=r"0 \(non-NA\) cases"):
        model_frame(parsed, df)
    # x + Inf is Inf: lme4 stops with "NA/NaN/Inf in foreign function call"
    with pytest.raises(glmm.ModelFrameError, match=r"NA/NaN/Inf in I\(x \+ Inf\)"):
        glmm.glmer("y ~ I(x + Inf) + (1 | g)", df, "binomial")


@pytest.mark.parametrize(("data", "pattern"), [
    (_toy().iloc[:0], r"data has no rows"),
    (pd.concat({"a": _toy()[["y", "x"]], "b": _toy()[["g"]]}, axis=1), r"MultiIndex columns"),
    (_toy().assign(x=pd.Series([10**400] + [1] * 39, dtype=object)),
     r"NA/NaN/Inf in x: it is infinite in 1 row \(index 0\)"),
])
def test_data_that_cannot_make_a_frame_is_refused(data, pattern) -> None:
    # before: "0 (non-NA) cases: every row has a missing value" for no rows, a wrong count
    # of columns for a MultiIndex, and an OverflowError for an integer beyond any double
    with pytest.raises(glmm.ModelFrameError, match=pattern):
        glmm.glmer("y ~ x + (1 | g)", data, "binomial")


def test_extreme_values_raise_no_numpy_warnings() -> None:
    """Found by the fuzz run: numpy's RuntimeWarnings escaped from scale() of a constant
    column and from the rank check of a column near 1e200.  R: scale() of a constant is NaN
    (so model.frame keeps 0 rows); qr(cbind(1, c(1e200, 1, ...), c(2e200, 2, ...)), LAPACK =
    FALSE)$rank is 2."""
    from glmm.linalg.linpack import dqrdc2

    df = _toy().assign(c=2.0)
    X = np.column_stack([np.ones(40), np.r_[1e200, np.ones(39)], np.r_[2e200, np.full(39, 2.0)]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(glmm.ModelFrameError, match=r"0 \(non-NA\) cases"):
            model_frame(parse_formula("y ~ scale(c) + (1 | g)"), df)
        assert dqrdc2(X)[1] == 2
