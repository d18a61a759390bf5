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

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import FormulaError, ModelFrameError, ResponseError
from .expression import Call, Name, Node, Num, Str, deparse, format_number
from .formula import ParsedFormula, frame_variables

__all__ = [
    "FUNCTIONS",
    "ModelFrame",
    "ModelFrameError",
    "NumericMatrix",
    "Variable",
    "model_frame",
    "r_factor",
]




@dataclass(frozen=True)
class NumericMatrix:
    """A matrix-valued variable (``cbind(...)``, ``scale(x)``) with R's column names, if any."""

    values: np.ndarray
    colnames: tuple[str, ...] | None = None


#: A variable of the model frame: a 1-D float or int64 array (numeric), a bool array
#: (logical), a Categorical with string categories (factor), or a NumericMatrix.
Variable = np.ndarray | pd.Categorical | NumericMatrix


@dataclass(frozen=True)
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
# R vectors during evaluation
# ---------------------------------------------------------------------------------------------
Kind = Literal["double", "integer", "logical", "character", "factor"]


@dataclass(frozen=True)
class _Vec:
    """An R vector while evaluating.  double/integer/logical values are float64 with NaN for NA
    (logical as 0/1), possibly 2-D; character values an object array with None for NA; factor
    values a Categorical."""

    kind: Kind
    values: Any
    colnames: tuple[str, ...] | None = None

    @property
    def length(self) -> int:
        return len(self.values)

    def na(self) -> np.ndarray:
        """R's ``is.na`` per row (a matrix row is NA if any of its entries is)."""
        if self.kind == "factor":
            return np.asarray(self.values.codes) < 0
        if self.kind == "character":
            return np.array([v is None for v in self.values], dtype=bool)
        v = np.isnan(self.values)
        return v.any(axis=1) if v.ndim == 2 else v

    def numeric(self, what: str) -> np.ndarray:
        if self.kind in ("double", "integer", "logical"):
            return self.values
        raise FormulaError(f"non-numeric argument to {what}: a {self.kind} variable")


def _level_label(x: Any) -> str:
    """``as.character`` of one level value."""
    if isinstance(x, str):
        return x
    if isinstance(x, (bool, np.bool_)):
        return "TRUE" if x else "FALSE"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return format_number(float(x))
    return str(x)


def _c_sorted(labels: set[str] | list[str]) -> list[str]:
    """Sort as R does in the C locale: by the bytes of the UTF-8 encoding."""
    return sorted(labels, key=lambda s: s.encode("utf-8"))


#: numpy dtype kinds read as R vectors directly (other dtypes go through pandas' tests).
_NUMPY_KINDS: dict[str, Kind] = {"b": "logical", "i": "integer", "u": "integer", "f": "double"}


def _from_column(name: str, col: pd.Series) -> _Vec:
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cat = col.array if isinstance(col.array, pd.Categorical) else pd.Categorical(col)
        cats = cat.categories
        # string categories are already R's labels (and distinct, as categories are)
        if isinstance(cats.dtype, pd.StringDtype):
            return _Vec("factor", cat)
        values = cats.tolist()
        if all(isinstance(c, str) for c in values):
            return _Vec("factor", cat)
        labels = [_level_label(c) for c in values]
        if len(set(labels)) != len(labels):
            raise ModelFrameError(f"column {name!r}: factor levels {labels} are not distinct as "
                                  f"R labels")
        return _Vec("factor", pd.Categorical.from_codes(cat.codes, categories=labels,
                                                        ordered=cat.ordered))
    if isinstance(dtype, np.dtype) and dtype.kind in _NUMPY_KINDS:
        # a numpy column's only NA is NaN (of a float column), so a cast is all it needs
        return _Vec(_NUMPY_KINDS[dtype.kind], col.to_numpy(dtype=float, copy=True))
    if pd.api.types.is_bool_dtype(dtype):
        arr = col.to_numpy(dtype=float, na_value=np.nan)
        return _Vec("logical", arr)
    if pd.api.types.is_integer_dtype(dtype):
        return _Vec("integer", col.to_numpy(dtype=float, na_value=np.nan))
    if pd.api.types.is_float_dtype(dtype):
        return _Vec("double", col.to_numpy(dtype=float, na_value=np.nan))
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        values = [None if _is_missing(v) else v for v in col.tolist()]
        present = [v for v in values if v is not None]
        if all(isinstance(v, str) for v in present):
            return _Vec("character", np.array(values, dtype=object))
        if all(isinstance(v, (bool, np.bool_)) for v in present):
            return _Vec("logical", np.array([np.nan if v is None else float(v) for v in values]))
        if all(isinstance(v, (int, float, np.integer, np.floating)) for v in present):
            return _Vec("double", np.array([np.nan if v is None else _double(v) for v in values]))
        raise ModelFrameError(f"column {name!r}: mixed object values cannot be an R vector")
    raise ModelFrameError(f"column {name!r}: unsupported dtype {dtype}")


def _double(v: int | float) -> float:
    """A number as a double; a Python integer beyond the largest double is ±Inf."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA:
        return True
    return isinstance(v, float) and math.isnan(v)


# ---------------------------------------------------------------------------------------------
# Elementary functions through the C library (what R calls)
# ---------------------------------------------------------------------------------------------
def _libm(fn: Callable[[float], float], lo: float | None = None,
          at_lo: float = -math.inf) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorize a :mod:`math` function with R's results outside its domain: NaN below ``lo``,
    ``at_lo`` at ``lo``, ±Inf on overflow."""

    def one(x: float) -> float:
        if math.isnan(x):
            return x
        if lo is not None:
            if x < lo:
                return math.nan
            if x == lo:
                return at_lo
        try:
            return fn(x)
        except OverflowError:
            return math.inf
        except ValueError:
            return math.nan

    vec = np.frompyfunc(one, 1, 1)
    return lambda a: np.asarray(vec(np.asarray(a, dtype=float)), dtype=float)


def _r_pow(x: float, y: float) -> float:
    """R's ``x ^ y`` (``R_POW``/``R_pow`` in arithmetic.c)."""
    if y == 2.0:
        return x * x
    if x == 1.0 or y == 0.0:
        return 1.0
    if x == 0.0:
        return 0.0 if y > 0 else (math.inf if y < 0 else y)
    if math.isfinite(x) and math.isfinite(y):
        try:
            return math.pow(x, y)
        except ValueError:
            return math.nan
        except OverflowError:
            odd = float(y).is_integer() and y % 2 == 1
            return -math.inf if x < 0 and odd else math.inf
    if math.isnan(x) or math.isnan(y):
        return x + y
    return float(np.power(x, y))  # infinite cases follow C99 pow


_pow = np.frompyfunc(_r_pow, 2, 1)
_log = _libm(math.log, 0.0)
_UNARY_MATH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log": _log,
    "log2": _libm(math.log2, 0.0),
    "log10": _libm(math.log10, 0.0),
    "log1p": _libm(math.log1p, -1.0),
    "exp": _libm(math.exp),
    "expm1": _libm(math.expm1),
    "sqrt": np.sqrt,  # IEEE-exact everywhere
    "abs": np.abs,
    "floor": np.floor,
    "ceiling": np.ceil,
}


def _longdouble_sum(v: np.ndarray) -> np.longdouble:
    """R's ``sum``/``colMeans`` accumulator: a sequential sum in long double."""
    if len(v) == 0:
        return np.longdouble(0)
    return np.cumsum(v.astype(np.longdouble))[-1]


def _scale(x: np.ndarray, center: bool, scale: bool) -> np.ndarray:
    """R's ``scale.default``: subtract ``colMeans(x, na.rm = TRUE)``, then divide by
    ``sqrt(sum(v^2) / max(1, length(v) - 1))`` over the non-missing entries of each column."""
    m = np.array(x, dtype=float, copy=True)
    if m.ndim == 1:
        m = m[:, None]
    for j in range(m.shape[1]):
        col = m[:, j]
        ok = ~np.isnan(col)
        if center:
            cnt = int(ok.sum())
            mean = float(_longdouble_sum(col[ok]) / np.longdouble(cnt)) if cnt else math.nan
            col = col - mean
        if scale:
            v = col[~np.isnan(col)]
            with np.errstate(all="ignore"):   # a constant column is NaN in R too (0/0)
                ss = float(_longdouble_sum(v * v))
                col = col / math.sqrt(ss / max(1, len(v) - 1))
        m[:, j] = col
    return m


# ---------------------------------------------------------------------------------------------
# The evaluator
# ---------------------------------------------------------------------------------------------
_ARITH = ("+", "-", "*", "/", "^", "%%", "%/%")
_COMPARE = ("==", "!=", "<", ">", "<=", ">=")
_BINARY_OPS = frozenset((*_ARITH, *_COMPARE, "&", "|", "&&", "||"))

#: The functions a formula may call, with what they do.
FUNCTIONS: dict[str, str] = {
    "I": "as is",
    "offset": "an offset term (its value is added to the linear predictor)",
    "log": "natural logarithm, or log(x, base)",
    "log2": "base-2 logarithm", "log10": "base-10 logarithm", "log1p": "log(1 + x)",
    "exp": "exponential", "expm1": "exp(x) - 1", "sqrt": "square root", "abs": "absolute value",
    "floor": "floor", "ceiling": "ceiling",
    "scale": "centre and scale (scale(x, center = TRUE, scale = TRUE))",
    "cbind": "bind columns into a matrix (e.g. a binomial response cbind(successes, failures))",
    "factor": "make a factor", "as.factor": "make a factor",
    "as.numeric": "as a number", "as.double": "as a number",
}


#: R's constants that the parser reads as names: (kind, value), NA as NaN.
_CONSTANTS: dict[str, tuple[Kind, float]] = {
    "Inf": ("double", math.inf), "NaN": ("double", math.nan), "NA": ("logical", math.nan),
    "NA_real_": ("double", math.nan), "NA_integer_": ("integer", math.nan)}


class _Evaluator:
    def __init__(self, data: pd.DataFrame) -> None:
        self.data = data
        self.n = len(data)
        self.cache: dict[str, _Vec] = {}

    def column(self, name: str) -> _Vec:
        if name not in self.cache:
            if name in self.data.columns:
                col = self.data[name]
                if isinstance(col, pd.DataFrame):
                    raise ModelFrameError(
                        f"column {name!r}: the data has {col.shape[1]} columns of that name; "
                        f"rename them so that each name is unique")
                self.cache[name] = _from_column(name, col)
            elif name in ("TRUE", "T"):
                return _Vec("logical", np.array([1.0]))
            elif name in ("FALSE", "F"):
                return _Vec("logical", np.array([0.0]))
            elif name == "pi":
                return _Vec("double", np.array([math.pi]))
            elif name in _CONSTANTS:
                kind, value = _CONSTANTS[name]
                return _Vec(kind, np.array([value]))
            else:
                raise FormulaError(f"unknown variable {name!r}: no such column in the data "
                                   f"(columns: {', '.join(map(str, self.data.columns))})")
        return self.cache[name]

    def eval(self, node: Node) -> _Vec:
        """The value of ``node``.  A chain of binary operators down the left operands
        (``x1 + x2 + ... + x1000``) is evaluated by iteration from its innermost call."""
        chain: list[Call] = []
        while isinstance(node, Call) and len(node.args) == 2 and node.fn in _BINARY_OPS:
            chain.append(node)
            node = node.args[0]
        value = self._eval_operand(node)
        for call in reversed(chain):
            value = self.binary(call.fn, value, self.eval(call.args[1]))
        return value

    def binary(self, fn: str, x: _Vec, y: _Vec) -> _Vec:
        if fn in _ARITH:
            return self.arith(fn, x, y)
        if fn in _COMPARE:
            return self.compare(fn, x, y)
        return self.logic(fn[0], x, y)

    def _eval_operand(self, node: Node) -> _Vec:
        if isinstance(node, Name):
            return self.column(node.id)
        if isinstance(node, Num):
            return _Vec("integer" if node.integer else "double", np.array([node.value]))
        if isinstance(node, Str):
            return _Vec("character", np.array([node.value], dtype=object))
        fn, args = node.fn, node.args
        if len(args) == 1 and (fn == "(" or fn == "+"):
            return self.eval(args[0])
        if fn == "-" and len(args) == 1:
            v = self.eval(args[0])
            return _Vec("integer" if v.kind == "integer" else "double", -v.numeric("unary -"))
        if fn == "!" and len(args) == 1:
            v = self.eval(args[0]).numeric("!")
            return _Vec("logical", np.where(np.isnan(v), np.nan, (v == 0).astype(float)))
        if fn in FUNCTIONS:
            return self.function(node)
        raise FormulaError(f"unsupported function or operator {fn!r} in {deparse(node)}; a "
                           f"formula may use {', '.join(FUNCTIONS)} and arithmetic")

    @staticmethod
    def _align(a: np.ndarray, b: np.ndarray, op: str) -> tuple[np.ndarray, np.ndarray]:
        """R recycling for a matrix against a vector of its row count; two matrices must have
        the same shape (R's "non-conformable arrays")."""
        if a.ndim == 2 and b.ndim == 2 and a.shape != b.shape:
            raise FormulaError(f"non-conformable arrays in '{op}': a {a.shape[0]} × "
                               f"{a.shape[1]} and a {b.shape[0]} × {b.shape[1]} matrix")
        if a.ndim == 2 and b.ndim == 1 and len(b) == a.shape[0]:
            b = b[:, None]
        elif b.ndim == 2 and a.ndim == 1 and len(a) == b.shape[0]:
            a = a[:, None]
        return a, b

    def arith(self, op: str, x: _Vec, y: _Vec) -> _Vec:
        a, b = self._align(x.numeric(f"'{op}'"), y.numeric(f"'{op}'"), op)
        with np.errstate(all="ignore"):
            if op == "+":
                r = a + b
            elif op == "-":
                r = a - b
            elif op == "*":
                r = a * b
            elif op == "/":
                r = a / b
            elif op == "^":
                r = np.asarray(_pow(a, b), dtype=float)
            elif op == "%%":
                r = a - np.floor(a / b) * b
            else:
                r = np.floor(a / b)
        ints = x.kind in ("integer", "logical") and y.kind in ("integer", "logical")
        kind: Kind = "integer" if ints and op in ("+", "-", "*", "%%", "%/%") else "double"
        return _Vec(kind, r, x.colnames or y.colnames)

    def compare(self, op: str, x: _Vec, y: _Vec) -> _Vec:
        text = {"factor", "character"}
        if x.kind in text or y.kind in text:
            if not (x.kind in text and y.kind in text):
                raise FormulaError(f"comparison {op!r} between a {x.kind} and a {y.kind} "
                                   f"variable is not supported")
            xs, ys = _as_strings(x), _as_strings(y)
            xs, ys = np.broadcast_arrays(xs, ys)
            out = np.empty(len(xs))
            for i, (s, t) in enumerate(zip(xs, ys, strict=True)):
                if s is None or t is None:
                    out[i] = np.nan
                else:
                    sb, tb = s.encode("utf-8"), t.encode("utf-8")
                    out[i] = float({"==": sb == tb, "!=": sb != tb, "<": sb < tb,
                                    ">": sb > tb, "<=": sb <= tb, ">=": sb >= tb}[op])
            return _Vec("logical", out)
        a, b = self._align(x.numeric(op), y.numeric(op), op)
        with np.errstate(invalid="ignore"):
            r = {"==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater,
                 "<=": np.less_equal, ">=": np.greater_equal}[op](a, b).astype(float)
        r[np.isnan(a + b)] = np.nan
        return _Vec("logical", r)

    def logic(self, op: str, x: _Vec, y: _Vec) -> _Vec:
        """R's three-valued ``&`` and ``|``."""
        xa, ya = self._align(x.numeric(op), y.numeric(op), op)
        a, b = xa != 0, ya != 0
        na_a, na_b = np.isnan(xa), np.isnan(ya)
        a, b, na_a, na_b = np.broadcast_arrays(a, b, na_a, na_b)
        if op == "&":
            false = (~a & ~na_a) | (~b & ~na_b)
            r = np.where(false, 0.0, np.where(na_a | na_b, np.nan, 1.0))
        else:
            true = (a & ~na_a) | (b & ~na_b)
            r = np.where(true, 1.0, np.where(na_a | na_b, np.nan, 0.0))
        return _Vec("logical", r)

    def function(self, node: Call) -> _Vec:
        fn = node.fn
        pos = [a for a, nm in zip(node.args, node.names, strict=True) if nm is None]
        kw = {nm: a for a, nm in zip(node.args, node.names, strict=True) if nm is not None}
        if fn == "cbind":
            return self.cbind(node)
        if fn == "log" and (len(pos) == 2 or "base" in kw):
            if len(pos) != (1 if "base" in kw else 2) or set(kw) - {"base"}:
                raise FormulaError(f"log() takes x and base: {deparse(node)}")
            x = self.eval(pos[0]).numeric("log")
            base_node = kw.get("base", pos[1] if len(pos) > 1 else None)
            assert base_node is not None
            base = self.eval(base_node).numeric("log")
            if base.size == 1 and float(base[0]) == 10.0:
                return _Vec("double", _UNARY_MATH["log10"](x))
            if base.size == 1 and float(base[0]) == 2.0:
                return _Vec("double", _UNARY_MATH["log2"](x))
            with np.errstate(all="ignore"):
                return _Vec("double", _log(x) / _log(base))
        if fn == "scale":
            if len(pos) != 1 or set(kw) - {"center", "scale", "x"}:
                raise FormulaError(f"scale() takes x, center = TRUE/FALSE, scale = TRUE/FALSE: "
                                   f"{deparse(node)}")
            flags = {}
            for k in ("center", "scale"):
                if k in kw:
                    v = self.eval(kw[k])
                    if v.kind != "logical" or v.length != 1:
                        raise FormulaError(f"scale(): only {k} = TRUE or FALSE is supported")
                    flags[k] = bool(v.values[0])
            x = self.eval(pos[0]).numeric("scale")
            return _Vec("double", _scale(x, flags.get("center", True), flags.get("scale", True)))
        if len(node.args) != 1 or kw:
            raise FormulaError(f"{fn}() takes one unnamed argument here: {deparse(node)}")
        v = self.eval(pos[0])
        if fn in ("I", "offset"):
            return v
        if fn in ("factor", "as.factor"):
            if fn == "as.factor" and v.kind == "factor":
                return v
            return _Vec("factor", _factor(v))
        if fn in ("as.numeric", "as.double"):
            if v.kind == "factor":
                codes = np.asarray(v.values.codes, dtype=float)
                return _Vec("double", np.where(codes < 0, np.nan, codes + 1))
            return _Vec("double", v.numeric(fn))
        with np.errstate(all="ignore"):
            return _Vec("double", _UNARY_MATH[fn](v.numeric(f"{fn}()")))

    def cbind(self, node: Call) -> _Vec:
        """``cbind(...)`` with ``deparse.level = 1`` column names (argument names, or the names
        of symbol arguments, else "")."""
        cols: list[np.ndarray] = []
        names: list[str] = []
        for a, nm in zip(node.args, node.names, strict=True):
            v = self.eval(a)
            x = v.numeric("cbind")
            if x.ndim == 2:
                cols.extend(x.T)
                names.extend(v.colnames or [""] * x.shape[1])
            else:
                cols.append(np.broadcast_to(x, (self.n,)) if x.size == 1 else x)
                names.append(nm if nm is not None else (a.id if isinstance(a, Name) else ""))
        lengths = {len(c) for c in cols}
        if len(lengths) != 1:
            raise FormulaError(f"cbind(): arguments of different lengths in {deparse(node)}")
        colnames = tuple(names) if any(names) else None
        return _Vec("double", np.column_stack(cols).astype(float, copy=False), colnames)


def _as_strings(v: _Vec) -> np.ndarray:
    if v.kind == "character":
        return v.values
    cat: pd.Categorical = v.values
    cats = np.asarray(cat.categories, dtype=object)
    codes = np.asarray(cat.codes)
    return np.array([None if c < 0 else cats[c] for c in codes], dtype=object)


def _drop_unused_levels(cat: pd.Categorical) -> pd.Categorical:
    """R's ``droplevels``: the factor without its unused levels, in their order.  When every
    level is used (the usual case) that is the factor itself, found by a bincount of the codes
    instead of building a new Categorical."""
    codes = np.asarray(cat.codes)
    if (np.bincount(codes[codes >= 0], minlength=len(cat.categories)) > 0).all():
        return cat
    return cat.remove_unused_categories()


def _factor(v: _Vec) -> pd.Categorical:
    """R's ``factor(x)``: levels are the sorted distinct values (C-locale order for strings)
    shown by ``as.character``; an existing factor keeps its order and loses unused levels."""
    if v.kind == "factor":
        return _drop_unused_levels(v.values)
    if v.kind == "character":
        labels = np.asarray(v.values, dtype=object)
        levels = _c_sorted({s for s in labels if s is not None})
    else:
        x = v.numeric("factor")
        if x.ndim != 1:
            raise FormulaError("factor() of a matrix")
        ok = ~np.isnan(x)
        if v.kind == "logical":
            fmt = [("TRUE" if t else "FALSE") for t in x[ok]]
        elif v.kind == "integer":
            fmt = [str(int(t)) for t in x[ok]]
        else:
            fmt = [format_number(float(t)) for t in x[ok]]
        labels = np.full(len(x), None, dtype=object)
        labels[ok] = fmt
        order = np.argsort(x[ok], kind="stable")
        levels = list(dict.fromkeys(np.asarray(fmt, dtype=object)[order].tolist()))
    index = {lev: i for i, lev in enumerate(levels)}
    codes = np.array([-1 if s is None else index[s] for s in labels], dtype=np.int64)
    return pd.Categorical.from_codes(codes, categories=levels)


def r_factor(x: Variable) -> pd.Categorical:
    """lme4's ``makeFac`` then ``factor(x, exclude = NA)`` for a frame variable: a factor loses
    unused levels; a numeric, logical or integer variable becomes a factor whose levels are
    its sorted distinct values, labelled as R's ``as.character`` labels them."""
    if isinstance(x, pd.Categorical):
        return _drop_unused_levels(x)
    if isinstance(x, NumericMatrix):
        raise FormulaError("a matrix cannot be a grouping factor")
    arr = np.asarray(x)
    if arr.dtype == bool:
        return _factor(_Vec("logical", arr.astype(float)))
    if np.issubdtype(arr.dtype, np.integer):
        return _factor(_Vec("integer", arr.astype(float)))
    return _factor(_Vec("double", arr.astype(float)))


# ---------------------------------------------------------------------------------------------
# The frame
# ---------------------------------------------------------------------------------------------
def _finish(name: str, v: _Vec, keep: np.ndarray) -> Variable:
    """A variable restricted to the kept rows, in its model-frame form."""
    if v.kind == "factor":
        return _drop_unused_levels(v.values if len(keep) == len(v.values) else v.values[keep])
    if v.kind == "character":
        return _factor(_Vec("character", v.values[keep]))
    x = v.values[keep]
    if x.ndim == 2:
        return NumericMatrix(x, v.colnames)
    if v.kind == "logical":
        return x.astype(bool)
    if v.kind == "integer" and (np.abs(x) < 2.0**53).all():
        return x.astype(np.int64)
    return x


def _argument(what: str, arg: str | np.ndarray | None, ev: _Evaluator) -> np.ndarray | None:
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
        v = _from_column(f"({what})", pd.Series(arg))
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
        v = _Vec(_NUMPY_KINDS[x.dtype.kind], x.astype(float))
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
    ev = _Evaluator(data)
    plan = _frame_plan(parsed)
    names = [name for name, _ in plan]
    values: dict[str, _Vec] = {}
    for name, node in plan:
        v = ev.eval(node)
        if v.length != ev.n:
            raise ModelFrameError(f"variable lengths differ (found for '{name}'): it has "
                                  f"{v.length} values, the data {ev.n} rows")
        values[name] = v
    w_all = _argument("weights", weights, ev)
    o_all = _argument("offset", offset, ev)

    missing = np.zeros(ev.n, dtype=bool)
    for v in values.values():
        missing |= v.na()
    for extra in (w_all, o_all):
        if extra is not None:
            missing |= np.isnan(extra)
    rows = np.flatnonzero(~missing)
    if len(rows) == 0:
        raise ModelFrameError("0 (non-NA) cases: every row has a missing value in a variable "
                              "of the model")

    response = _response(parsed.response, values[names[0]], rows)
    for name in names[1:]:
        if values[name].kind in ("double", "integer"):
            _refuse_infinite(name, values[name].values[rows], rows, data)
    variables = {name: _finish(name, v, rows) for name, v in values.items()}

    n = len(rows)
    w = np.ones(n) if w_all is None else w_all[rows].copy()
    _refuse_infinite("weights", w, rows, data)
    if (w < 0).any():
        raise ModelFrameError("negative weights are not allowed (lme4: all(weights >= 0) "
                              "is not TRUE)")
    if not (w > 0).any():
        raise ModelFrameError(f"every weight is 0 in the {n} rows of the model: no "
                              f"observation carries information (lme4 stops with 'Response "
                              f"is constant'); give the observations positive weights")
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
    off = np.zeros(n) + total
    return ModelFrame(data, response, w, off, rows, variables)


def _refuse_infinite(what: str, x: np.ndarray, rows: np.ndarray, data: pd.DataFrame) -> None:
    """Refuse ±Inf in a variable, the weights or the offset (NaN rows are gone by now).  lme4
    stops: "NA/NaN/Inf in foreign function call" for X, "PIRLS loop resulted in NaN value"
    for an offset, an R error for weights.  A fit without those rows, or with the column
    dropped as rank deficient, would be a different model.  (R reads a numeric grouping
    variable's Inf as a level label; it is refused too, as surely a data error.)"""
    bad = ~np.isfinite(x)
    if bad.ndim == 2:
        bad = bad.any(axis=1)
    if not bad.any():
        return
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
    if not (w * response.sum(axis=1) > 0).any():
        raise ResponseError(f"the response {name} has 0 trials (successes + failures) in every "
                            f"row of positive weight: there is nothing to fit (lme4 stops with "
                            f"'Response is constant')")


def _response(name: str, v: _Vec, rows: np.ndarray) -> np.ndarray | pd.Categorical:
    """``model.response``: a factor stays a factor (unused levels dropped), a logical becomes
    0/1, a matrix (``cbind``) stays a matrix; every value must be finite."""
    if v.kind == "factor":
        return _drop_unused_levels(v.values if len(rows) == len(v.values) else v.values[rows])
    if v.kind == "character":
        raise ModelFrameError(f"response must be numeric or factor: {name} is character")
    y = np.asarray(v.values[rows], dtype=float)
    if not np.isfinite(y).all():
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
            present = [v for v in s.tolist() if not _is_missing(v)]
            if present and all(isinstance(v, str) for v in present):
                changes[col] = pd.Categorical(s, categories=_c_sorted(set(present)))
    if out is data and not changes:
        return data
    out = out.copy()
    for col, v in changes.items():
        out[col] = v
    return out
