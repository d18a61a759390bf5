"""The design of a fitted model rebuilt on new data, as lme4's ``predict.merMod`` builds it
(lme4 R/predict.R: ``model.frame(delete.response(terms), newdata, na.action = na.pass, xlev =
levels)``, ``mkNewReTrms``; docs/results.md §7).

* Every variable of the fixed part and of the chosen terms is evaluated on the new data with
  the fit's ``scale()`` centres and scales (R's ``predvars``, :class:`~.evaluate.Scaling`).
* A factor of the fixed part, or of a term's left-hand side, is coded with the fit's levels
  (R's ``xlev``), so X has the fit's contrasts; a level the fit has not seen is an error
  naming the variable and the level.  The columns lme4's rank check dropped are dropped.
* A grouping factor is matched to the term's fitted levels by label (``a:b`` as "alev:blev");
  a level the fit has not seen gets code −1 (the caller decides: an error, or b = 0).
* The offset is the sum of the formula's ``offset()`` terms evaluated on the new data; lme4
  drops an ``offset=`` argument here.
* Rows with a missing value keep their place (``na.pass``): their X row is NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ArgumentError, ModelFrameError
from .design import Design
from .evaluate import Evaluator, NumericMatrix, RVector, Variable, factor
from .expression import Node, deparse, parse_expr
from .frame import ModelFrame
from .model_matrix import model_matrix
from .random import RandomTerm, _grouping_factor
from .terms import variables

__all__ = ["NewDesign", "NewTerm", "rebuild"]


@dataclass(frozen=True)
class NewTerm:
    """One random-effects term on new data: the index of the fit's term, each row's code
    among the fitted levels (−1: a level the fit has not seen, or missing), the rows' labels
    and the term's model matrix Xₜ on the new rows."""

    index: int
    codes: np.ndarray
    labels: tuple[str | None, ...]
    Xi: np.ndarray

    @property
    def new(self) -> np.ndarray:
        """The rows whose level the fit has not seen (or is missing)."""
        return self.codes < 0


@dataclass(frozen=True)
class NewDesign:
    """X (the fit's columns), the offset and the chosen terms on new data."""

    X: np.ndarray
    offset: np.ndarray
    terms: tuple[NewTerm, ...]
    missing: np.ndarray     # rows with a missing value in X's variables


def _fixed_nodes(design: Design) -> tuple[Node, ...]:
    return variables(parse_expr("0"), parse_expr(design.parsed.fixed))[1:]


def _relevel(name: str, v: RVector, levels: Sequence[str]) -> RVector:
    """A factor (or character) variable coded with the fit's ``levels``; an unseen level is
    an :class:`ArgumentError` naming the variable and the level."""
    if v.kind == "factor":
        cat = v.values
        labels = np.asarray(cat.categories.astype(str), dtype=object)[np.asarray(cat.codes)]
        labels[np.asarray(cat.codes) < 0] = None
        ordered = bool(cat.ordered)
    else:
        labels, ordered = np.asarray(v.values, dtype=object), False
    index = {lev: i for i, lev in enumerate(levels)}
    codes = np.empty(len(labels), dtype=np.int64)
    for i, s in enumerate(labels):
        if s is None:
            codes[i] = -1
        elif s in index:
            codes[i] = index[s]
        else:
            raise ArgumentError(f"new level in newdata: factor {name} has level {s!r}, which "
                                f"the fit has not seen (its levels: "
                                f"{', '.join(map(str, levels))})")
    return RVector("factor", pd.Categorical.from_codes(codes, categories=list(levels),
                                                       ordered=ordered))


def _as_variable(v: RVector) -> Variable:
    """An evaluated vector as a model-frame variable, without dropping levels or rows: a
    character vector becomes a factor, as in the fit's frame
    (:func:`glmm.design.evaluate.factor`)."""
    if v.kind == "factor":
        return v.values
    if v.kind == "character":
        return factor(v)
    x = v.values
    if x.ndim == 2:
        return NumericMatrix(x, v.colnames)
    if v.kind == "logical":
        return np.where(np.isnan(x), 0.0, x).astype(bool)
    return x


def _evaluate(ev: Evaluator, nodes: Sequence[Node], levels: dict[str, tuple[str, ...]],
              strict: bool, out: dict[str, Variable], missing: np.ndarray,
              coded: set[str]) -> None:
    """Evaluate ``nodes`` into ``out``; ``strict``: code factors with the fit's levels, mark
    the rows with a missing value in ``missing`` and the names in ``coded``."""
    for node in nodes:
        name = deparse(node)
        if name in out:
            continue
        v = ev.eval(node)
        if v.length == 1 and ev.n != 1:   # a constant (TRUE, pi) recycled
            v = RVector(v.kind, np.repeat(v.values, ev.n, axis=0), v.colnames)
        if v.length != ev.n:
            raise ModelFrameError(f"variable lengths differ (found for '{name}'): it has "
                                  f"{v.length} values, newdata {ev.n} rows")
        if strict and v.kind in ("factor", "character") and name in levels:
            v = _relevel(name, v, levels[name])
        if strict:
            missing |= v.na()
            coded.add(name)
        out[name] = _as_variable(v)


def rebuild(design: Design, newdata: pd.DataFrame, terms: Sequence[int]) -> NewDesign:
    """X, the offset and the terms numbered ``terms`` (indices into
    ``design.random.terms``) of ``design`` on ``newdata`` (module docstring)."""
    if not isinstance(newdata, pd.DataFrame):
        raise ArgumentError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
    n = len(newdata)
    ev = Evaluator(newdata, dict(design.scalings))
    levels = dict(design.levels)
    missing = np.zeros(n, dtype=bool)
    values: dict[str, Variable] = {}
    coded: set[str] = set()
    _evaluate(ev, _fixed_nodes(design), levels, True, values, missing, coded)
    bars = {b.name: b for b in design.parsed.bars}
    chosen: list[tuple[int, RandomTerm, Node]] = []
    for i in terms:
        t = design.random.terms[i]
        bar = bars[t.name]
        lhs, group = parse_expr(bar.lhs), parse_expr(bar.group)
        _evaluate(ev, variables(parse_expr("0"), lhs)[1:], levels, True, values, missing,
                  coded)
        _evaluate(ev, variables(parse_expr("0"), group)[1:], levels, False, values,
                  np.zeros(n, dtype=bool), coded)
        chosen.append((i, t, group))
    frame = ModelFrame(newdata, np.zeros(n), np.ones(n), np.zeros(n), np.arange(n),
                       _na_free(values, missing, coded), dict(ev.scalings))
    mm = model_matrix(design.parsed.fixed, frame)
    where = {nm: j for j, nm in enumerate(mm.names)}
    absent = [nm for nm in design.fixed.names if nm not in where]
    if absent:
        raise ArgumentError(f"newdata does not give the fixed-effects columns {absent} of the "
                            f"fit (it gives {list(mm.names)}): a variable that was a factor "
                            f"in the fit must be one, with the same levels, in newdata")
    X = mm.X[:, [where[nm] for nm in design.fixed.names]].astype(float)
    X[missing] = np.nan
    offset = np.zeros(n)
    for node in _fixed_nodes(design):
        name = deparse(node)
        if name.startswith("offset("):
            offset = offset + np.asarray(values[name], dtype=float)
    new_terms = []
    for i, t, group in chosen:
        mt = model_matrix(bars[t.name].lhs, frame)
        if tuple(mt.names) != tuple(t.columns):
            raise ArgumentError(f"the term ({t.name}) has columns {list(mt.names)} on newdata, "
                                f"{list(t.columns)} in the fit")
        Xi = mt.X.astype(float)
        Xi[missing] = np.nan
        ff = _grouping_factor(group, frame)
        cats = np.asarray(ff.categories.astype(str), dtype=object)
        fc = np.asarray(ff.codes)
        labels = tuple(None if c < 0 else str(cats[c]) for c in fc)
        index = {lev: k for k, lev in enumerate(t.levels)}
        codes = np.array([-1 if s is None else index.get(s, -1) for s in labels],
                         dtype=np.int64)
        new_terms.append(NewTerm(i, codes, labels, Xi))
    return NewDesign(X, offset, tuple(new_terms), missing)


def _na_free(values: dict[str, Variable], missing: np.ndarray, coded: set[str]
             ) -> dict[str, Variable]:
    """The ``coded`` variables with missing factor codes set to the first level and missing
    numbers to 0, so that model.matrix can code every row (those rows are NaN afterwards);
    grouping variables keep their missing values."""
    if not missing.any():
        return values
    out: dict[str, Variable] = {}
    for name, v in values.items():
        if name not in coded:
            out[name] = v
        elif isinstance(v, pd.Categorical):
            codes = np.asarray(v.codes).copy()
            codes[codes < 0] = 0 if len(v.categories) else -1
            out[name] = pd.Categorical.from_codes(codes, categories=v.categories,
                                                  ordered=v.ordered)
        elif isinstance(v, NumericMatrix):
            out[name] = NumericMatrix(np.nan_to_num(v.values), v.colnames)
        elif isinstance(v, np.ndarray) and v.dtype.kind == "f":
            out[name] = np.nan_to_num(v)
        else:
            out[name] = v
    return out
