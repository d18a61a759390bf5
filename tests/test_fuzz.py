"""Fuzzing the formula parser and ``glmer()`` (issue 12, build point 7).

Random and mutated formulas, and random and mutated data frames: the parser returns a
:class:`~glmm.design.formula.ParsedFormula` or raises a :class:`~glmm.FormulaError`, and ``glmer()``
returns a fit with a finite objective, β and θ, or raises a :class:`~glmm.GlmmError`.
Anything else is a bug, and hypothesis shrinks it to a small example.

The number of examples of each test is ``GLMM_FUZZ_EXAMPLES`` (by default 300 for the
parser and 150 for ``glmer()``).  ``GLMM_FUZZ_REPORT=path`` writes the counts by outcome (the
result, or the error's type) there as JSON; ``scripts/fuzz.py`` runs the long campaign and
prints them.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import glmm
from glmm.design.expression import deparse, parse_expr
from glmm.design.formula import ParsedFormula, parse_formula

#: Examples per test: ``GLMM_FUZZ_EXAMPLES`` for both, else 300 parses and 150 glmer() calls.
EXAMPLES = int(os.environ.get("GLMM_FUZZ_EXAMPLES", "300"))
FIT_EXAMPLES = int(os.environ.get("GLMM_FUZZ_EXAMPLES", "150"))
OUTCOMES: dict[str, Counter[str]] = {"parser": Counter(), "glmer": Counter(),
                                     "glmer-warnings": Counter()}

FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    path = os.environ.get("GLMM_FUZZ_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({k: dict(v.most_common()) for k, v in OUTCOMES.items()}, fh, indent=2)


# ---------------------------------------------------------------------------------------------
# Formulas
# ---------------------------------------------------------------------------------------------
#: Columns of the random data frames, and expressions over them.
RESPONSES = ["y", "cnt", "x", "g", "yl", "cbind(cnt, 5 - cnt)", "cbind(cnt, cnt)", "y > 0",
             "factor(y)", "I(cnt / 5)", "cbind(y, 1 - y, y)", "w", "log(cnt)", "cbind(y)"]
FIXED = ["x", "z", "g", "h", "cnt", "yl", "x:z", "x * g", "I(x^2)", "log(cnt)", "log(x)",
         "scale(x)", "offset(z)", "factor(cnt)", "0", "1", "-1", "x:g", "sqrt(cnt)", "exp(x)",
         "I(x > 0)", "(x + z)^2", "x %in% g", "g/x", "poly(x, 2)", "I(x * 1e6)", "x - x",
         "log(cnt, base = 2)", "cbind(x, z)", "as.numeric(g)", "I(1e300 * x)", "k", "s"]
RANDOM = ["(1 | g)", "(x | g)", "(1 | h)", "(0 + x | g)", "(x || g)", "(1 | g:h)", "(1 | g/h)",
          "(0 | g)", "(1 | x)", "(z | h)", "(1 | cnt)", "(1 | k)", "(1 + x + z | g)",
          "(1 | id)", "(x | id)", "(1 | s)", "(g | h)", "(1 | yl)"]
#: Characters and tokens a mutation inserts.
TOKENS = ["(", ")", "|", "||", "+", "-", "*", "/", ":", "^", "~", ",", " ", "0", "1", "x", "g",
          "%in%", "%%", "`", '"', "'", "[", "]", "=", "!", "&", "1e999", "0x", ".", "log(",
          "I(", "offset(", "cbind(", "\n", "\\", "#", "$", "@", "{", "Inf", "NA"]


@st.composite
def formulas(draw: st.DrawFn, clean: bool = False) -> str:
    """A glmer formula from the pieces above; unless ``clean``, from all of them, perhaps
    mutated character by character (``clean`` ones use the first few, which fit)."""
    def pick(pieces: list[str], k: int) -> st.SearchStrategy[str]:
        return st.sampled_from(pieces[:k] if clean else pieces)

    lhs = draw(pick(RESPONSES, 1))
    fixed = draw(st.lists(pick(FIXED, 4), max_size=3))
    rand = draw(st.lists(pick(RANDOM, 4), min_size=1 if clean else 0, max_size=2))
    text = f"{lhs} ~ " + " + ".join([*fixed, *rand] or ["1"])
    for _ in range(0 if clean else draw(st.integers(0, 3))):
        text = _mutate(draw, text)
    return text


def _mutate(draw: st.DrawFn, text: str) -> str:
    i = draw(st.integers(0, len(text)))
    kind = draw(st.sampled_from(["insert", "delete", "replace", "repeat"]))
    if kind == "insert":
        return text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
    if kind == "delete":
        j = draw(st.integers(i, min(len(text), i + 4)))
        return text[:i] + text[j:]
    if kind == "replace":
        return text[:i] + draw(st.sampled_from(TOKENS)) + text[i + 1:]
    j = draw(st.integers(i, min(len(text), i + 8)))
    return text[:i] + text[i:j] * draw(st.integers(2, 60)) + text[j:]


token_soup = st.lists(st.sampled_from([*TOKENS, "y", "z", "~", " + "]), max_size=40).map(
    "".join)
anything = st.text(max_size=60)


def _outcome(exc: BaseException | None) -> str:
    return "ok" if exc is None else type(exc).__name__


def _check_parse(text: str) -> None:
    try:
        parsed = parse_formula(text)
    except glmm.FormulaError as exc:
        OUTCOMES["parser"][_outcome(exc)] += 1
        return
    OUTCOMES["parser"]["ok"] += 1
    assert isinstance(parsed, ParsedFormula)
    # the parsed pieces are R's deparsed text, which the model frame parses again
    for piece in (parsed.response, parsed.fixed, *(b.lhs for b in parsed.bars),
                  *(b.group for b in parsed.bars)):
        assert deparse(parse_expr(piece)) == piece


@FUZZ
@given(st.one_of(formulas(), token_soup, anything))
@example("y ~ x| + (x || g)")   # a bar around a || term recursed without end (found here)
def test_parser_returns_a_parse_or_a_formula_error(text: str) -> None:
    _check_parse(text)


# ---------------------------------------------------------------------------------------------
# Data frames
# ---------------------------------------------------------------------------------------------
BAD_VALUES = [np.nan, None, np.inf, -np.inf, 1e300, -1e300, 0.0, -1.0, 1e-300, "a", True]


@st.composite
def frames(draw: st.DrawFn, clean: bool = False) -> pd.DataFrame:
    """A small data frame with the columns the formulas use, drawn from a seed; unless
    ``clean``, of any size and mutated: bad values planted, dtypes changed, columns made
    constant or duplicated."""
    n = draw(st.sampled_from([20, 40] if clean else [0, 1, 2, 3, 5, 8, 12, 20, 40]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ng = draw(st.integers(2 if clean else 1, 6))
    cols: dict[str, Any] = {
        "y": rng.integers(0, 2, n).astype(float),
        "cnt": rng.poisson(draw(st.sampled_from([0.5, 3.0, 50.0])), n),
        "x": rng.normal(size=n) * draw(st.sampled_from([1.0, 1e-8, 1e8])),
        "z": rng.normal(size=n),
        "g": pd.Categorical(rng.choice(list("abcdef")[:ng], n)),
        "h": rng.integers(0, draw(st.integers(1, 4)), n),
        "yl": rng.random(n) < 0.5,
        "w": rng.random(n) + 0.5,
        "id": np.arange(n),
        "k": np.full(n, "one"),
        "s": np.array([f"lev{i % 7}" for i in range(n)], dtype=object),
    }
    df = pd.DataFrame(cols)
    for _ in range(0 if clean or not n else draw(st.integers(0, 4))):
        col = draw(st.sampled_from(list(cols)))
        what = draw(st.sampled_from(["value", "dtype", "constant"]))
        if what == "value":
            rows = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n))
            value = draw(st.sampled_from(BAD_VALUES))
            df[col] = df[col].astype(object)
            df.loc[rows, col] = value
        elif what == "dtype":
            target = draw(st.sampled_from(["object", "category", "Float64", "Int64", "str",
                                           "boolean", "float32"]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # 1e300 as float32
                try:
                    df[col] = df[col].astype(target)
                except (TypeError, ValueError, OverflowError):
                    pass
        else:
            df[col] = df[col].iloc[0]
    if not clean and draw(st.integers(0, 9)) == 0:   # a second column of the same name
        col = draw(st.sampled_from(list(cols)))
        df = pd.concat([df, df[[col]]], axis=1)
    return df


FAMILIES = ["binomial", "poisson", glmm.binomial(link="probit"), glmm.binomial(link="cloglog"),
            glmm.poisson(link="sqrt"), glmm.poisson(link="identity"), "Gamma",
            glmm.Gamma(link="log"), "inverse.gaussian", "gaussian", "nosuch"]


@st.composite
def glmer_calls(draw: st.DrawFn) -> dict[str, Any]:
    """The arguments of a glmer() call: half of them a clean model that should fit (fit
    outcomes are what the finiteness checks need), half fuzzed throughout."""
    clean = draw(st.booleans())
    df = draw(frames(clean))
    n = len(df)
    if clean:
        weights = draw(st.sampled_from([None, "w", "array"]))
        offset = draw(st.sampled_from([None, "z", "array"]))
        family = draw(st.sampled_from(FAMILIES[:5]))
        nagq = draw(st.sampled_from([0, 1, 3]))
    else:
        weights = draw(st.sampled_from([None, "w", "array", "nosuch", "zeros", "strings"]))
        offset = draw(st.sampled_from([None, "z", "array", "g"]))
        family = draw(st.sampled_from(FAMILIES))
        nagq = draw(st.sampled_from([0, 1, 2, 7, 25, -1, 1.5, True]))
    arrays = {"array": np.linspace(0.5, 2.0, n), "zeros": np.zeros(n),
              "strings": np.array(["1"] * n)}
    return {"formula": draw(formulas(clean)), "data": df, "family": family, "nAGQ": nagq,
            "weights": arrays.get(weights, weights), "offset": arrays.get(offset, offset)}


def _check_glmer(call: dict[str, Any]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = glmm.glmer(**call)
        except glmm.GlmmError as exc:
            OUTCOMES["glmer"][_outcome(exc)] += 1
            return
        finally:
            for w in caught:   # where a warning not of glmm's own comes from
                where = ("" if issubclass(w.category, glmm.GlmmWarning) else
                         f" ({os.path.basename(w.filename)}:{w.lineno}: {w.message})")
                OUTCOMES["glmer-warnings"][w.category.__name__ + where] += 1
    OUTCOMES["glmer"]["ok"] += 1
    assert isinstance(fit, glmm.GlmerFit)
    assert np.isfinite(fit.objective), f"objective {fit.objective}"
    assert np.isfinite(fit.fixef.to_numpy()).all(), f"fixef {fit.fixef}"
    assert np.isfinite(fit.theta).all(), f"theta {fit.theta}"


@settings(FUZZ, max_examples=FIT_EXAMPLES)
@given(glmer_calls())
def test_glmer_returns_a_finite_fit_or_a_glmm_error(call: dict[str, Any]) -> None:
    _check_glmer(call)
