"""Predictions of a fitted GLMM, as lme4's ``predict.merMod`` (lme4 R/predict.R;
docs/results.md §7):

    η = Xβ̂ + o + Σ_{t ∈ re_form} Zₜ b̃ₜ,      type "link": η;  "response": μ = g⁻¹(η)

``re_form`` chooses the terms: None all of them, "NA" or "~0" none, a formula with some of
the fit's bars those.  Without ``newdata`` X, Z and the offset are the fit's own (the offset
there includes an ``offset=`` argument); with it they are rebuilt on ``newdata``
(:func:`glmm.design.rebuild.rebuild`), and a level of a grouping factor the fit has not seen
is an error, or, with ``allow_new_levels``, contributes b = 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..design.design import Design
from ..design.formula import parse_formula
from ..design.rebuild import rebuild
from ..errors import ArgumentError, FormulaError

_NONE = ("NA", "~0", "~ 0", "~-1", "~ -1", "0", "~ NA", "~NA")


def term_subset(design: Design, re_form: Any) -> tuple[int, ...]:
    """The indices of the terms ``re_form`` names (module docstring)."""
    terms = design.random.terms
    if re_form is None:
        return tuple(range(len(terms)))
    if isinstance(re_form, float) and math.isnan(re_form):
        return ()
    if not isinstance(re_form, str):
        raise ArgumentError(f"re_form must be None, 'NA', '~0' or a formula with some of the "
                            f"fit's terms, got {re_form!r}")
    text = " ".join(re_form.split())
    if text in _NONE:
        return ()
    rhs = text[1:] if text.startswith("~") else text
    try:
        bars = parse_formula(f".response ~ 0 + {rhs}").bars
    except FormulaError as e:
        raise ArgumentError(f"re_form {re_form!r} is not a formula of random-effects terms: "
                            f"{e}") from None
    names = [t.name for t in terms]
    out = []
    for b in bars:
        if b.name not in names:
            raise ArgumentError(f"re_form {re_form!r}: the term ({b.name}) is not a "
                                f"random-effects term of the fit; its terms are "
                                f"{', '.join(f'({n})' for n in names)}")
        out.append(names.index(b.name))
    return tuple(sorted(set(out)))


def b_blocks(design: Design, b: np.ndarray) -> list[np.ndarray]:
    """b̃ per term as (levels × columns) arrays."""
    out, start = [], 0
    for t in design.random.terms:
        out.append(b[start:start + t.nranef].reshape(t.nlevels, t.ncols))
        start += t.nranef
    return out


def linear_predictor(design: Design, beta: np.ndarray, b: np.ndarray, newdata: pd.DataFrame,
                     terms: Sequence[int], allow_new_levels: bool) -> np.ndarray:
    """η on ``newdata`` with the terms ``terms`` (module docstring)."""
    nd = rebuild(design, newdata, terms)
    eta = nd.X @ beta + nd.offset
    blocks = b_blocks(design, b)
    for nt in nd.terms:
        t = design.random.terms[nt.index]
        if nt.new.any() and not allow_new_levels:
            unseen = [s for s, new in zip(nt.labels, nt.new, strict=True) if new]
            if any(s is None for s in unseen):
                raise ArgumentError(f"missing values in the grouping factor {t.group} of the "
                                    f"term ({t.name}) in newdata: not allowed unless "
                                    f"allow_new_levels=True")
            shown = list(dict.fromkeys(unseen))
            raise ArgumentError(f"new levels detected in newdata: the grouping factor "
                                f"{t.group} has level{'s' if len(shown) > 1 else ''} "
                                f"{', '.join(map(repr, shown[:10]))}"
                                f"{', …' if len(shown) > 10 else ''} that the fit has not "
                                f"seen; pass allow_new_levels=True to predict with b = 0 "
                                f"there")
        bb = blocks[nt.index]
        rows = np.where(nt.new[:, None], 0.0, bb[np.maximum(nt.codes, 0)])
        eta = eta + np.einsum("ij,ij->i", nt.Xi, rows)
    return eta


def fitted_linear_predictor(design: Design, beta: np.ndarray, b: np.ndarray,
                            terms: Sequence[int]) -> np.ndarray:
    """η on the fit's own rows with the terms ``terms``: Xβ̂ + o + Σ Zₜb̃ₜ."""
    eta = design.X @ beta + design.offset
    blocks = b_blocks(design, b)
    for i in terms:
        t = design.random.terms[i]
        eta = eta + np.einsum("ij,ij->i", t.Xi, blocks[i][t.codes])
    return eta


def check_type(type: Any) -> str:
    if not isinstance(type, str) or type not in ("link", "response"):
        raise ArgumentError(f"type must be 'link' or 'response', got {type!r}")
    return type
