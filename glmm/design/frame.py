"""The model frame: every variable of a glmer formula evaluated over the data, NA rows removed.

This is lme4's ``glFormula`` up to ``model.frame(subbars(formula), data, weights, offset,
drop.unused.levels = TRUE)`` followed by ``factorize`` and ``mkRespMod``'s checks:

1. Each variable (``y``, ``I(age^2)``, ``scale(x)``, ``offset(log(e))``, ``cbind(s, n - s)``,
   the grouping factors) is evaluated on the **whole** data with R's semantics, so that
   ``scale(x)`` centres over every non-missing ``x`` as R does before rows are dropped.
2. Rows with a missing value (NA, NaN, None) in any variable, the weights or the offset are
   removed (``na.omit``), keeping data order; :attr:`ModelFrame.omitted` lists them.  An
   infinite value left in any of them is refused, naming the variable (lme4 stops too).
3. Factors lose their unused levels (``drop.unused.levels``) but keep their level order;
   character variables become factors with levels sorted in the C locale (byte order);
   logicals stay logical.
4. ``model.response``, ``model.weights`` and ``model.offset`` are read off: the offset is the
   ``offset=`` argument plus every ``offset()`` term, summed in formula order.  Weights that
   are all 0, or a two-column response without trials, are refused (lme4: "Response is
   constant").

The evaluator understands the R that formulas use: arithmetic (R's ``^``), comparisons,
``&``, ``|``, ``!``, and the functions in :data:`FUNCTIONS`.  Elementary functions call the C
library through :mod:`math`, as R does, so values agree with R bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from ..cached import cached_property
from ..errors import FormulaError, ModelFrameError, ResponseError
from .evaluate import (
    NUMPY_KINDS,
    Evaluator,
    NumericMatrix,
    RVector,
    Scaling,
    Variable,
    c_sorted,
    drop_unused_levels,
    factor,
    from_column,
    is_missing,
    level_names,
)
from .expression import Node, deparse
from .formula import ParsedFormula, frame_variables


@dataclass(frozen=True, eq=False)
class ModelFrame:
    """The model frame of a glmer formula over a DataFrame.

    ``data`` holds the kept rows of the input (factor columns re-levelled as R's frame does;
    built on first use from ``source``, the input); ``rows`` their positions in the input;
    ``variables`` every evaluated formula variable by R's name for it (``"I(age^2)"``),
    restricted to the kept rows.
    """

    source: pd.DataFrame = field(repr=False)
    response: np.ndarray | pd.Categorical
    weights: np.ndarray
    offset: np.ndarray
    rows: np.ndarray
    variables: Mapping[str, Variable] = field(default_factory=dict)
    #: each scale() call's centres and scales over the whole data (R's predvars)
    scalings: Mapping[str, Scaling] = field(default_factory=dict)

    @property
    def levels(self) -> dict[str, tuple[str, ...]]:
        """The levels of every factor variable of the frame, by R's name for it (R's
        ``xlev``, which rebuilds the contrasts and the grouping factors on new data)."""
        return {name: level_names(v) for name, v in self.variables.items()
                if isinstance(v, pd.Categorical)}

    @cached_property
    def data(self) -> pd.DataFrame:
        return _kept_data(self.source, self.rows)

    @property
    def n(self) -> int:
        """Number of observations (rows kept)."""
        return len(self.rows)

    @property
    def omitted(self) -> np.ndarray:
        """Positions in the input of the rows dropped for a missing value (``na.omit``; lme4's
        ``na.action(fit)``, there 1-based)."""
        if len(self.rows) == len(self.source):   # (the rows are distinct)
            return np.zeros(0, dtype=np.intp)
        keep = np.zeros(len(self.source), dtype=bool)
        keep[self.rows] = True
        return np.flatnonzero(~keep)

    def variable(self, name: str) -> Variable:
        """The evaluated variable R calls ``name`` (a deparsed expression)."""
        try:
            return self.variables[name]
        except KeyError:
            raise KeyError(f"the model frame has no variable {name!r}; it has "
                           f"{', '.join(self.variables)}") from None


# ---------------------------------------------------------------------------------------------
# The frame
# ---------------------------------------------------------------------------------------------
def _finish(name: str, v: RVector, keep: np.ndarray) -> Variable:
    """A variable restricted to the kept rows, in its model-frame form."""
    if v.kind == "factor":
        return drop_unused_levels(v.values if len(keep) == len(v.values) else v.values[keep])
    every = len(keep) == len(v.values)   # (the kept rows are distinct and in order)
    if v.kind == "character":
        return factor(RVector("character", v.values if every else v.values[keep]))
    x = v.values if every else v.values[keep]   # no copy of a variable that keeps every row
    if x.ndim == 2:
        return NumericMatrix(x, v.colnames)
    if v.kind == "logical":
        return x.astype(bool)
    if v.kind == "integer" and (np.abs(x) < 2.0**53).all():
        return x.astype(np.int64)
    return x


def _argument(what: str, arg: str | np.ndarray | None, ev: Evaluator) -> np.ndarray | None:
    """The ``weights=`` or ``offset=`` argument over all rows (NaN for NA): a column name of
    the data, or a numeric vector with one value per row."""
    if arg is None:
        return None
    if isinstance(arg, str):
        if arg not in ev.data.columns:
            raise FormulaError(f"unknown variable {arg!r} given as {what}: no such column in "
                               f"the data")
        v = ev.column(arg)
    elif isinstance(arg, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
        v = from_column(f"({what})", pd.Series(arg))
    else:
        try:
            x = np.asarray(arg)
        except (TypeError, ValueError) as e:
            raise ModelFrameError(f"{what} must be a numeric vector with one value per row "
                                  f"of the data, or a column name: {e}") from None
        if x.dtype.kind not in "biuf":
            kind = {"U": "character", "S": "character", "O": "object"}.get(x.dtype.kind,
                                                                          str(x.dtype))
            raise ModelFrameError(f"invalid type ({kind}) for variable '({what})': {what} "
                                  f"must be numeric")
        v = RVector(NUMPY_KINDS[x.dtype.kind], x.astype(float))
    # R takes logical weights as 0/1 but refuses a logical offset ("'offset' must be numeric")
    kinds = ("double", "integer", "logical") if what == "weights" else ("double", "integer")
    if v.kind not in kinds:
        raise ModelFrameError(f"invalid type ({v.kind}) for variable '({what})': {what} must "
                              f"be numeric")
    if v.values.ndim != 1:
        raise ModelFrameError(f"{what} must be a vector with one value per row of the data, "
                              f"not an array of shape {v.values.shape}")
    if v.length != ev.n:
        raise ModelFrameError(f"variable lengths differ (found for '({what})'): {what} has "
                              f"{v.length} values, the data {ev.n} rows")
    return np.asarray(v.values, dtype=float)


@lru_cache(maxsize=512)
def _frame_plan(parsed: ParsedFormula) -> tuple[tuple[str, Node], ...]:
    """The frame's variables with R's names for them (a pure function of the formula, so it
    is worked out once per formula)."""
    return tuple((deparse(v), v) for v in frame_variables(parsed))


def model_frame(parsed: ParsedFormula, data: pd.DataFrame,
                weights: str | np.ndarray | None = None,
                offset: str | np.ndarray | None = None) -> ModelFrame:
    """Evaluate every variable of ``parsed`` over ``data``, drop rows with a missing value
    (``na.omit``), and read off the response, prior weights and offset."""
    if not isinstance(data, pd.DataFrame):
        raise ModelFrameError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if isinstance(data.columns, pd.MultiIndex):
        raise ModelFrameError("data has MultiIndex columns: flatten them to one name per "
                              "column (the formula names columns by a single name)")
    if len(data) == 0:
        raise ModelFrameError("data has no rows")
    ev = Evaluator(data)
    plan = _frame_plan(parsed)
    names = [name for name, _ in plan]
    values: dict[str, RVector] = {}
    for name, node in plan:
        v = ev.eval(node)
        if v.length != ev.n:
            raise ModelFrameError(f"variable lengths differ (found for '{name}'): it has "
                                  f"{v.length} values, the data {ev.n} rows")
        values[name] = v
    w_all = _argument("weights", weights, ev)
    o_all = _argument("offset", offset, ev)

    missing = np.zeros(ev.n, dtype=bool)
    finite: set[str] = set()   # numeric variables finite in every row: no NA, and no ±Inf
    for name, v in values.items():
        x = v.values
        if v.kind in ("double", "integer") and np.count_nonzero(np.isfinite(x)) == x.size:
            finite.add(name)
        else:
            missing |= v.na()
    for extra in (w_all, o_all):
        if extra is not None:
            missing |= np.isnan(extra)
    rows = np.flatnonzero(~missing) if np.count_nonzero(missing) else np.arange(ev.n)
    if len(rows) == 0:
        raise ModelFrameError("0 (non-NA) cases: every row has a missing value in a variable "
                              "of the model")

    response = _response(parsed.response, values[names[0]], rows, names[0] in finite)
    variables = {name: _finish(name, v, rows) for name, v in values.items()}
    for name in names[1:]:
        if values[name].kind in ("double", "integer") and name not in finite:   # (kept rows)
            x = variables[name]
            _refuse_infinite(name, x.values if isinstance(x, NumericMatrix) else x, rows, data)

    n = len(rows)
    if w_all is None:   # unit weights: nothing to check
        w = np.ones(n)
    else:
        w = w_all[rows].copy()
        _refuse_infinite("weights", w, rows, data)
        if (w < 0).any():
            raise ModelFrameError("negative weights are not allowed (lme4: all(weights >= 0) "
                                  "is not TRUE)")
        if not (w > 0).any():
            raise ModelFrameError(f"every weight is 0 in the {n} rows of the model: no "
                                  f"observation carries information (lme4 stops with "
                                  f"'Response is constant'); give the observations positive "
                                  f"weights")
    _refuse_no_trials(parsed.response, response, w)
    if o_all is not None:
        _refuse_infinite("offset", o_all[rows], rows, data)
    # model.offset: the offset= argument (or 0), plus each offset() term in formula order
    total: np.ndarray | float = 0.0 if o_all is None else o_all[rows]
    for name in names:
        if name.startswith("offset("):
            x = variables[name]
            if isinstance(x, (pd.Categorical, NumericMatrix)) or np.asarray(x).dtype == bool:
                raise ModelFrameError(f"'offset' must be numeric: {name}")
            total = total + np.asarray(x, dtype=float)
    off = np.zeros(n) if isinstance(total, float) else np.zeros(n) + total   # 0.0: no offset
    return ModelFrame(data, response, w, off, rows, variables, dict(ev.scalings))


def _refuse_infinite(what: str, x: np.ndarray, rows: np.ndarray, data: pd.DataFrame) -> None:
    """Refuse ±Inf in a variable, the weights or the offset (NaN rows are gone by now).  lme4
    stops: "NA/NaN/Inf in foreign function call" for X, "PIRLS loop resulted in NaN value"
    for an offset, an R error for weights.  A fit without those rows, or with the column
    dropped as rank deficient, would be a different model.  (R reads a numeric grouping
    variable's Inf as a level label; it is refused too, as surely a data error.)"""
    finite = np.isfinite(x)
    if finite.all():
        return
    bad = ~finite.all(axis=1) if finite.ndim == 2 else ~finite
    at = data.index[rows[bad]]
    shown = ", ".join(repr(label) for label in at[:3].tolist()) + (", ..." if len(at) > 3 else "")
    rows_text = f"{len(at)} row{'s' if len(at) > 1 else ''} (index {shown})"
    raise ModelFrameError(f"NA/NaN/Inf in {what}: it is infinite in {rows_text}; a GLMM "
                          f"cannot be fitted with it (lme4 stops too): remove those rows, or "
                          f"transform the variable so that it is finite")


def _refuse_no_trials(name: str, response: np.ndarray | pd.Categorical, w: np.ndarray) -> None:
    """A two-column response (successes, failures) with no trials in any row of positive
    weight leaves nothing to fit (lme4: "Response is constant")."""
    if not (isinstance(response, np.ndarray) and response.ndim == 2
            and response.shape[1] == 2):
        return
    if not np.count_nonzero(w * response.sum(axis=1) > 0):
        raise ResponseError(f"the response {name} has 0 trials (successes + failures) in every "
                            f"row of positive weight: there is nothing to fit (lme4 stops with "
                            f"'Response is constant')")


def _response(name: str, v: RVector, rows: np.ndarray, finite: bool = False
              ) -> np.ndarray | pd.Categorical:
    """``model.response``: a factor stays a factor (unused levels dropped), a logical becomes
    0/1, a matrix (``cbind``) stays a matrix; every value must be finite (``finite``: known
    to be)."""
    if v.kind == "factor":
        return drop_unused_levels(v.values if len(rows) == len(v.values) else v.values[rows])
    if v.kind == "character":
        raise ModelFrameError(f"response must be numeric or factor: {name} is character")
    y = np.asarray(v.values if len(rows) == len(v.values) else v.values[rows], dtype=float)
    if not finite and not np.isfinite(y).all():
        raise ModelFrameError(f"NA/NaN/Inf in 'y': the response {name} has infinite values")
    return y


def _kept_data(data: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The data at the kept rows, factors without unused levels and strings as factors;
    ``data`` itself (no copy) when that changes nothing."""
    out = data if len(rows) == len(data) else data.iloc[rows]
    changes: dict[str, pd.Categorical] = {}
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy()
            ncat = len(s.cat.categories)
            used = np.bincount(codes[codes >= 0], minlength=ncat) > 0
            if not np.all(used):
                changes[col] = s.cat.remove_unused_categories()
        elif pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype):
            present = [v for v in s.tolist() if not is_missing(v)]
            if present and all(isinstance(v, str) for v in present):
                changes[col] = pd.Categorical(s, categories=c_sorted(set(present)))
    if out is data and not changes:
        return data
    out = out.copy()
    for col, v in changes.items():
        out[col] = v
    return out
