"""R's evaluation of formula variables over a data frame: R vectors (:class:`RVector`), the
operators and functions formulas use (:data:`FUNCTIONS`, elementary functions through the C
library, as R calls them, so values agree with R bit for bit), and R's ``factor()``.

:class:`Evaluator` evaluates one expression (``I(age^2)``, ``scale(x)``, ``log(e)``,
``cbind(s, n - s)``, ``a:b``) on the whole data with R's semantics: arithmetic with R's
``^``, comparisons, ``&``, ``|``, ``!``, NA propagation, integer and logical types.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..errors import FormulaError, ModelFrameError
from .expression import Call, Name, Node, Num, Str, deparse, format_number

if TYPE_CHECKING:
    from pandas.api.extensions import ExtensionArray


@dataclass(frozen=True, eq=False)
class NumericMatrix:
    """A matrix-valued variable (``cbind(...)``, ``scale(x)``) with R's column names, if any."""

    values: np.ndarray
    colnames: tuple[str, ...] | None = None


#: A variable of the model frame: a 1-D float or int64 array (numeric), a bool array
#: (logical), a Categorical with string categories (factor), or a NumericMatrix.
Variable = np.ndarray | pd.Categorical | NumericMatrix


# ---------------------------------------------------------------------------------------------
# R vectors during evaluation
# ---------------------------------------------------------------------------------------------
Kind = Literal["double", "integer", "logical", "character", "factor"]


@dataclass(frozen=True)
class RVector:
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


def c_sorted(labels: set[str] | list[str]) -> list[str]:
    """Sort as R does in the C locale: by the bytes of the UTF-8 encoding."""
    return sorted(labels, key=lambda s: s.encode("utf-8"))


#: numpy dtype kinds read as R vectors directly (other dtypes go through pandas' tests).
NUMPY_KINDS: dict[str, Kind] = {"b": "logical", "i": "integer", "u": "integer", "f": "double"}


class IndexMemo:
    """Values worked out from a pandas Index (a factor's categories), kept while the Index
    lives: an Index is immutable, so a column's Index seen again gives the same values, and
    a small fit would otherwise spend more on them (a dtype validates its labels, ~20 µs;
    ``tolist`` of the categories, ~5 µs) than on its other steps.  Keyed by id, with a weak
    reference that forgets the entry when the Index goes (its id may then be reused)."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[weakref.ref, Any]] = {}

    def get(self, cats: pd.Index, make: Callable[[pd.Index], Any]) -> Any:
        key = id(cats)
        hit = self._memo.get(key)
        if hit is not None and hit[0]() is cats:
            return hit[1]
        value = make(cats)
        memo = self._memo

        def forget(ref: weakref.ref) -> None:
            if memo.get(key, (None,))[0] is ref:
                del memo[key]

        memo[key] = (weakref.ref(cats, forget), value)
        return value


#: per categories Index: its labelled dtypes, by ``ordered`` (_labelled_dtype)
_DTYPES = IndexMemo()
#: per categories Index: its levels as strings (level_names)
_NAMES = IndexMemo()


def level_names(cat: pd.Categorical) -> tuple[str, ...]:
    """The levels of a factor as strings, in order (its categories' ``str``)."""
    return _NAMES.get(cat.categories, lambda c: tuple(map(str, c.tolist())))


def _labelled_dtype(name: str, cats: pd.Index, ordered: bool) -> pd.CategoricalDtype:
    """The dtype with R's labels (``as.character``) of ``cats``, distinct, in their order."""
    by_order = _DTYPES.get(cats, lambda c: {})
    dtype = by_order.get(ordered)
    if dtype is None:
        labels = [_level_label(c) for c in cats.tolist()]
        if len(set(labels)) != len(labels):
            raise ModelFrameError(f"column {name!r}: factor levels {labels} are not distinct "
                                  f"as R labels")
        dtype = by_order[ordered] = pd.CategoricalDtype(labels, ordered=ordered)
    return dtype


def stored_column(data: pd.DataFrame, name: str) -> np.ndarray | ExtensionArray:
    """Column ``name`` of ``data`` as pandas stores it: an ndarray or an ExtensionArray.
    ``data[name]`` builds a Series around it (~5 µs, more than reading a small column
    costs); the frame's ``_get_column_array`` does not, where the names are unique and this
    pandas has it.  A name held by several columns is refused."""
    columns = data.columns
    if columns.is_unique and hasattr(data, "_get_column_array"):
        return data._get_column_array(columns.get_loc(name))
    col = data[name]
    if isinstance(col, pd.DataFrame):
        raise ModelFrameError(f"column {name!r}: the data has {col.shape[1]} columns of that "
                              f"name; rename them so that each name is unique")
    return col.array


def from_column(name: str, col: pd.Series | np.ndarray | ExtensionArray) -> RVector:
    """The R vector of a column (a Series, or the array it holds: :func:`stored_column`)."""
    if isinstance(col, pd.Series):
        col = col.array
    if isinstance(col, pd.arrays.NumpyExtensionArray):
        col = col.to_numpy()
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cat = col if isinstance(col, pd.Categorical) else pd.Categorical(col)
        cats = cat.categories
        # string categories are already R's labels (and distinct, as categories are)
        if isinstance(cats.dtype, pd.StringDtype):
            return RVector("factor", cat)
        values = cats.tolist()
        if all(isinstance(c, str) for c in values):
            return RVector("factor", cat)
        dtype = _labelled_dtype(name, cats, cat.ordered)
        # the codes are the categorical's own, valid for as many categories
        return RVector("factor", pd.Categorical.from_codes(cat.codes, dtype=dtype,
                                                        validate=False))
    if isinstance(col, np.ndarray) and dtype.kind in NUMPY_KINDS:
        # a numpy column's only NA is NaN (of a float column), so a cast is all it needs
        return RVector(NUMPY_KINDS[dtype.kind], np.array(col, dtype=float))
    if pd.api.types.is_bool_dtype(dtype):
        arr = col.to_numpy(dtype=float, na_value=np.nan)
        return RVector("logical", arr)
    if pd.api.types.is_integer_dtype(dtype):
        return RVector("integer", col.to_numpy(dtype=float, na_value=np.nan))
    if pd.api.types.is_float_dtype(dtype):
        return RVector("double", col.to_numpy(dtype=float, na_value=np.nan))
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        values = [None if is_missing(v) else v for v in col.tolist()]
        present = [v for v in values if v is not None]
        if all(isinstance(v, str) for v in present):
            return RVector("character", np.array(values, dtype=object))
        if all(isinstance(v, (bool, np.bool_)) for v in present):
            return RVector("logical", np.array([np.nan if v is None else float(v) for v in values]))
        if all(isinstance(v, (int, float, np.integer, np.floating)) for v in present):
            return RVector("double",
                           np.array([np.nan if v is None else _double(v) for v in values]))
        raise ModelFrameError(f"column {name!r}: mixed object values cannot be an R vector")
    raise ModelFrameError(f"column {name!r}: unsupported dtype {dtype}")


def _double(v: int | float) -> float:
    """A number as a double; a Python integer beyond the largest double is ±Inf."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def is_missing(v: Any) -> bool:
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


@dataclass(frozen=True)
class Scaling:
    """What ``scale(x)`` subtracted and divided by, per column (R's ``attr(, "scaled:center")``
    and ``"scaled:scale"``; None where it did not): what rebuilds the same variable on new
    data (R's ``predvars``)."""

    center: tuple[float, ...] | None
    scale: tuple[float, ...] | None


def _scale(x: np.ndarray, center: bool, scale: bool) -> tuple[np.ndarray, Scaling]:
    """R's ``scale.default``: subtract ``colMeans(x, na.rm = TRUE)``, then divide by
    ``sqrt(sum(v^2) / max(1, length(v) - 1))`` over the non-missing entries of each column."""
    m = np.array(x, dtype=float, copy=True)
    if m.ndim == 1:
        m = m[:, None]
    centers, scales = [], []
    for j in range(m.shape[1]):
        col = m[:, j]
        ok = ~np.isnan(col)
        if center:
            cnt = int(ok.sum())
            mean = float(_longdouble_sum(col[ok]) / np.longdouble(cnt)) if cnt else math.nan
            col = col - mean
            centers.append(mean)
        if scale:
            v = col[~np.isnan(col)]
            with np.errstate(all="ignore"):   # a constant column is NaN in R too (0/0)
                ss = float(_longdouble_sum(v * v))
                sd = math.sqrt(ss / max(1, len(v) - 1))
                col = col / sd
            scales.append(sd)
        m[:, j] = col
    return m, Scaling(tuple(centers) if center else None, tuple(scales) if scale else None)


def _rescale(x: np.ndarray, s: Scaling) -> np.ndarray:
    """``scale(x, center = s.center, scale = s.scale)``: the recorded centres and scales
    applied to new values (R's ``predvars``)."""
    m = np.array(x, dtype=float, copy=True)
    if m.ndim == 1:
        m = m[:, None]
    if m.shape[1] != len(s.center or s.scale or ()):
        raise ModelFrameError(f"scale(): the new data has {m.shape[1]} columns where the fit "
                              f"had {len(s.center or s.scale or ())}")
    if s.center is not None:
        m = m - np.asarray(s.center)
    if s.scale is not None:
        with np.errstate(all="ignore"):
            m = m / np.asarray(s.scale)
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


class Evaluator:
    """Evaluates formula expressions over ``data``.  ``scalings`` (each ``scale()`` call's
    centres and scales by R's text of the call, as a fit recorded them) makes those calls
    reuse them instead of computing them from ``data``: R's ``predvars`` on new data."""

    def __init__(self, data: pd.DataFrame,
                 scalings: dict[str, Scaling] | None = None) -> None:
        self.data = data
        self.n = len(data)
        self.cache: dict[str, RVector] = {}
        #: each scale() call's centres and scales, by R's text of the call
        self.scalings: dict[str, Scaling] = {}
        self.recorded: dict[str, Scaling] = dict(scalings or {})

    def column(self, name: str) -> RVector:
        if name not in self.cache:
            if name in self.data.columns:
                self.cache[name] = from_column(name, stored_column(self.data, name))
            elif name in ("TRUE", "T"):
                return RVector("logical", np.array([1.0]))
            elif name in ("FALSE", "F"):
                return RVector("logical", np.array([0.0]))
            elif name == "pi":
                return RVector("double", np.array([math.pi]))
            elif name in _CONSTANTS:
                kind, value = _CONSTANTS[name]
                return RVector(kind, np.array([value]))
            else:
                raise FormulaError(f"unknown variable {name!r}: no such column in the data "
                                   f"(columns: {', '.join(map(str, self.data.columns))})")
        return self.cache[name]

    def eval(self, node: Node) -> RVector:
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

    def binary(self, fn: str, x: RVector, y: RVector) -> RVector:
        if fn in _ARITH:
            return self.arith(fn, x, y)
        if fn in _COMPARE:
            return self.compare(fn, x, y)
        return self.logic(fn[0], x, y)

    def _eval_operand(self, node: Node) -> RVector:
        if isinstance(node, Name):
            return self.column(node.id)
        if isinstance(node, Num):
            return RVector("integer" if node.integer else "double", np.array([node.value]))
        if isinstance(node, Str):
            return RVector("character", np.array([node.value], dtype=object))
        fn, args = node.fn, node.args
        if len(args) == 1 and (fn == "(" or fn == "+"):
            return self.eval(args[0])
        if fn == "-" and len(args) == 1:
            v = self.eval(args[0])
            return RVector("integer" if v.kind == "integer" else "double", -v.numeric("unary -"))
        if fn == "!" and len(args) == 1:
            v = self.eval(args[0]).numeric("!")
            return RVector("logical", np.where(np.isnan(v), np.nan, (v == 0).astype(float)))
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

    def arith(self, op: str, x: RVector, y: RVector) -> RVector:
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
        return RVector(kind, r, x.colnames or y.colnames)

    def compare(self, op: str, x: RVector, y: RVector) -> RVector:
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
            return RVector("logical", out)
        a, b = self._align(x.numeric(op), y.numeric(op), op)
        with np.errstate(invalid="ignore"):
            r = {"==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater,
                 "<=": np.less_equal, ">=": np.greater_equal}[op](a, b).astype(float)
        r[np.isnan(a + b)] = np.nan
        return RVector("logical", r)

    def logic(self, op: str, x: RVector, y: RVector) -> RVector:
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
        return RVector("logical", r)

    def function(self, node: Call) -> RVector:
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
                return RVector("double", _UNARY_MATH["log10"](x))
            if base.size == 1 and float(base[0]) == 2.0:
                return RVector("double", _UNARY_MATH["log2"](x))
            with np.errstate(all="ignore"):
                return RVector("double", _log(x) / _log(base))
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
            key = deparse(node)
            if key in self.recorded:
                m, self.scalings[key] = _rescale(x, self.recorded[key]), self.recorded[key]
            else:
                m, self.scalings[key] = _scale(x, flags.get("center", True),
                                               flags.get("scale", True))
            return RVector("double", m)
        if len(node.args) != 1 or kw:
            raise FormulaError(f"{fn}() takes one unnamed argument here: {deparse(node)}")
        v = self.eval(pos[0])
        if fn in ("I", "offset"):
            return v
        if fn in ("factor", "as.factor"):
            if fn == "as.factor" and v.kind == "factor":
                return v
            return RVector("factor", factor(v))
        if fn in ("as.numeric", "as.double"):
            if v.kind == "factor":
                codes = np.asarray(v.values.codes, dtype=float)
                return RVector("double", np.where(codes < 0, np.nan, codes + 1))
            return RVector("double", v.numeric(fn))
        with np.errstate(all="ignore"):
            return RVector("double", _UNARY_MATH[fn](v.numeric(f"{fn}()")))

    def cbind(self, node: Call) -> RVector:
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
        out = np.empty((lengths.pop(), len(cols)))   # (np.column_stack costs more)
        for j, c in enumerate(cols):
            out[:, j] = c
        return RVector("double", out, colnames)


def _as_strings(v: RVector) -> np.ndarray:
    if v.kind == "character":
        return v.values
    cat: pd.Categorical = v.values
    cats = np.asarray(cat.categories, dtype=object)
    codes = np.asarray(cat.codes)
    return np.array([None if c < 0 else cats[c] for c in codes], dtype=object)


def drop_unused_levels(cat: pd.Categorical) -> pd.Categorical:
    """R's ``droplevels``: the factor without its unused levels, in their order.  When every
    level is used (the usual case) that is the factor itself, found by marking the codes used
    instead of building a new Categorical."""
    k = len(cat.categories)
    used = np.zeros(k + 1, dtype=bool)
    used[cat.codes] = True   # an NA's code, −1, marks the extra last slot
    if np.count_nonzero(used[:k]) == k:
        return cat
    return cat.remove_unused_categories()


def factor(v: RVector) -> pd.Categorical:
    """R's ``factor(x)``: levels are the sorted distinct values (C-locale order for strings)
    shown by ``as.character``; an existing factor keeps its order and loses unused levels."""
    if v.kind == "factor":
        return drop_unused_levels(v.values)
    if v.kind == "character":
        labels = np.asarray(v.values, dtype=object)
        levels = c_sorted({s for s in labels if s is not None})
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
        return drop_unused_levels(x)
    if isinstance(x, NumericMatrix):
        raise FormulaError("a matrix cannot be a grouping factor")
    arr = np.asarray(x)
    if arr.dtype == bool:
        return factor(RVector("logical", arr.astype(float)))
    if np.issubdtype(arr.dtype, np.integer):
        return factor(RVector("integer", arr.astype(float)))
    return factor(RVector("double", arr.astype(float)))
