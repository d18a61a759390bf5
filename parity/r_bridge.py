"""The bridge to R's lme4 through rpy2.  All R code lives in ``r/glmer_case.R``.

Nothing here imports rpy2 at module import time: :func:`session` does, and turns every way
in which R can be missing (no rpy2, no R, no lme4, an R too old for this rpy2) into
:class:`~parity.errors.RUnavailableError`.  Every R call runs in the C locale.

Building data, fitting and probing each run under a time limit (:mod:`parity.deadline`: a
forked child, killed when the limit passes, raising :class:`~parity.errors.RTimeoutError`).
A case's strings reach R only once :mod:`parity.trust` has checked them, and its data go to
R as vectors, never as code.
"""

from __future__ import annotations

import math
import os
import threading
from importlib import resources
from typing import Any

from .dataset import Column, Dataset
from .deadline import DEFAULT_R_TIMEOUT, call_with_deadline
from .errors import RFitError, RUnavailableError, UnsafeInputError
from .trust import (
    allowed_functions,
    check_control,
    check_family,
    check_formula,
    check_nagq,
    check_spec,
    column_kinds,
)
from .variants import METHODS

#: tolPwrss values tried in order for the probe devfun.  lme4's PIRLS can fail at 1e-14 on
#: large data (the step-halving test then sees summation noise), so the generator takes the
#: first value at which every probe point converges and records it in the fixture.
PROBE_TOLS: tuple[float, ...] = (1e-14, 1e-13, 1e-12, 1e-11, 1e-10)

_lock = threading.Lock()
_session: RSession | None = None
_failure: RUnavailableError | None = None


#: Set this environment variable to a non-empty value to behave as if R were absent.
DISABLE_ENV = "PARITY_DISABLE_R"

#: The environment variables R's start-up sets in this process (from R's ldpaths), with their
#: values before it did: a worker process (parity.workers) must start without R's library
#: path, or its Python may load another libpython found there.
R_ENVIRONMENT = ("LD_LIBRARY_PATH", "R_HOME")
ENV_BEFORE_R: dict[str, str | None] = {}


class RSession:
    """An embedded R with lme4 loaded and the bridge functions sourced."""

    def __init__(self) -> None:
        if os.environ.get(DISABLE_ENV):
            raise RUnavailableError(f"live R is disabled by {DISABLE_ENV}")
        if not ENV_BEFORE_R:
            ENV_BEFORE_R.update((k, os.environ.get(k)) for k in R_ENVIRONMENT)
        try:
            import rpy2.rinterface as ri
            import rpy2.robjects as ro
        except Exception as exc:  # ImportError, or R failing to start inside rpy2
            raise RUnavailableError(f"rpy2 cannot load R: {type(exc).__name__}: {exc}") from exc
        self.ri = ri
        self.ro = ro
        code = resources.files("parity").joinpath("r/glmer_case.R").read_text(encoding="utf-8")
        try:
            ro.r(code)
        except Exception as exc:
            raise RUnavailableError(
                "R started but the lme4 bridge failed to load (is lme4 installed? "
                f"`scripts/install-r.sh` installs it): {exc}") from exc
        self.versions: dict[str, str] = self.call("parity_versions")
        try:
            ro.r["parity_warm_up"]()
        except Exception:  # only a speed-up of the forked calls; they report real failures
            pass

    # -- calling R -------------------------------------------------------------------------
    def call(self, fun: str, *args: Any) -> Any:
        try:
            res = self.ro.r[fun](*args)
        except Exception as exc:
            raise RFitError(f"R {fun}() failed: {str(exc).strip()}") from exc
        return to_python(res)

    def make_data(self, expr: str, timeout: float | None = DEFAULT_R_TIMEOUT) -> Dataset:
        """Evaluate an R data expression and read the data.frame back losslessly.

        ``expr`` is R code, run as it is: give it code from the program only, never a string
        read from a file (:func:`parity.trust.data_expression` gives a case's).  It runs
        under the time limit ``timeout`` (seconds; None for none), as every call below.
        """
        def run() -> Dataset:
            try:
                df = self.ro.r["parity_make_data"](expr)
            except Exception as exc:
                raise RFitError(f"R could not build the data {expr!r}: {str(exc).strip()}") \
                    from None
            return dataset_from_r(df)

        return call_with_deadline(run, timeout, f"R's data expression {_short(expr)}")

    def fit(self, data: Dataset, spec: dict[str, Any], setting: int | bool, kind: str,
            timeout: float | None = DEFAULT_R_TIMEOUT) -> dict[str, Any]:
        """The spec's method (glmer, or lmer) on ``data`` with the ``default`` or ``tight``
        control; a plain dict.  ``setting`` is the variant: the nAGQ for glmer, the REML flag
        for lmer.

        The spec's strings are checked first (:func:`parity.trust.check_spec`); the data go
        to R as vectors.
        """
        checked = check_spec(spec, column_kinds(data.columns))
        method, k = _check_setting(spec, setting)
        control = check_control(kind)
        return call_with_deadline(
            lambda: self.call("parity_fit", self.dataframe(data),
                              self._r_spec({**checked, "method": method}), k, control),
            timeout, f"lme4's {method}() ({_what(spec, k)}, {control} control)")

    def probe(self, data: Dataset, spec: dict[str, Any], setting: int | bool,
              points: list[list[float]], tols: tuple[float, ...] = PROBE_TOLS,
              timeout: float | None = DEFAULT_R_TIMEOUT) -> dict[str, Any]:
        """lme4's converged devfun at each parameter vector (θ for nAGQ = 0 and lmer, (θ, β)
        otherwise)."""
        checked = {**check_spec(spec, column_kinds(data.columns))}
        checked["method"], k = _check_setting(spec, setting)
        pts = [[float(x) for x in p] for p in points]
        tol_values = [float(t) for t in tols]
        if not tol_values or not all(0 < t < 1 for t in tol_values):
            raise UnsafeInputError("tols", f"{tols!r}: tolPwrss values are within (0, 1)")

        def run() -> dict[str, Any]:
            ro = self.ro
            r_points = ro.r["list"](*[ro.FloatVector(p) for p in pts])
            return self.call("parity_probe", self.dataframe(data), self._r_spec(checked), k,
                             r_points, ro.FloatVector(tol_values))

        return call_with_deadline(run, timeout, f"lme4's devfun ({_what(spec, k)}, probes)")

    # -- Python -> R -----------------------------------------------------------------------
    def spec(self, spec: dict[str, Any], data: Dataset | None = None) -> Any:
        """The spec as R's ``parity_call`` reads it, once checked: formula (glmm's parser and
        function whitelist), family and link, weights and offset (column names of ``data``
        when given).  The whitelist goes along, for R's own check of its parse."""
        if data is not None:
            return self._r_spec(check_spec(spec, column_kinds(data.columns)))
        check_formula(spec.get("formula"), "case.formula")
        check_family(spec.get("family"), spec.get("link"))
        for arg in ("weights", "offset"):
            if spec.get(arg) is not None and not isinstance(spec[arg], str):
                raise UnsafeInputError(f"case.{arg}", f"{spec[arg]!r} is not a column name")
        return self._r_spec(spec)

    def _r_spec(self, spec: dict[str, Any]) -> Any:
        ro = self.ro
        items = {k: ro.StrVector([spec[k]]) for k in ("formula", "family", "link")}
        if spec.get("method") is not None:
            items["method"] = ro.StrVector([_check_method(spec["method"])])
        for k in ("weights", "offset"):
            if spec.get(k) is not None:
                items[k] = ro.StrVector([spec[k]])
        items["functions"] = ro.StrVector(sorted(allowed_functions()))
        return ro.ListVector(items)

    def dataframe(self, data: Dataset) -> Any:
        """An R data.frame with the same column types and factor levels."""
        ro, ri = self.ro, self.ri
        cols = {}
        for c in data.columns:
            if c.kind == "factor":
                codes = ro.IntVector([ri.NA_Integer if v is None else v + 1 for v in c.values])
                vec = ro.r["parity_factor"](codes, ro.StrVector(list(c.levels or ())),
                                            ro.BoolVector([c.ordered]))
            elif c.kind == "double":
                vec = ro.FloatVector([ri.NA_Real if v is None else v for v in c.values])
            elif c.kind == "integer":
                vec = ro.IntVector([ri.NA_Integer if v is None else v for v in c.values])
            else:
                vec = ro.BoolVector([ri.NA_Logical if v is None else v for v in c.values])
            cols[c.name] = vec
        return ro.r["parity_data_frame"](ro.ListVector(cols))


def _check_method(method: object) -> str:
    if method not in METHODS:
        raise UnsafeInputError("case.method", f"{method!r} is not one of {', '.join(METHODS)}")
    return str(method)


def _check_setting(spec: dict[str, Any], setting: object) -> tuple[str, Any]:
    """(method, setting) once checked: the nAGQ of glmer and glmer.nb, lmer's REML flag."""
    method = _check_method(spec.get("method", "glmer"))
    if method == "lmer":
        if not isinstance(setting, bool):
            raise UnsafeInputError("REML", f"{setting!r} is not true or false")
        return method, setting
    return method, check_nagq(setting)


def _short(text: str, n: int = 60) -> str:
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def _what(spec: dict[str, Any], setting: object) -> str:
    name = spec.get("name")
    what = f"REML={setting}" if isinstance(setting, bool) else f"nAGQ={setting}"
    return f"case {name!r}, {what}" if name else f"{spec.get('formula')!r}, {what}"


def session() -> RSession:
    """The process-wide R session, started on first use.  A failure is remembered."""
    global _session, _failure
    with _lock:
        if _session is not None:
            return _session
        if _failure is not None:
            raise _failure
        try:
            _session = RSession()
        except RUnavailableError as exc:
            _failure = exc
            raise
        return _session


def r_available() -> tuple[bool, str]:
    """(True, versions) when live R with lme4 works here, else (False, the reason)."""
    try:
        s = session()
    except RUnavailableError as exc:
        return False, str(exc)
    return True, f"R {s.versions['r_version']}, lme4 {s.versions['lme4_version']}"


# -- R -> Python ---------------------------------------------------------------------------
def to_python(obj: Any) -> Any:
    """Convert a result of the bridge's R functions into plain Python.

    Named lists become dicts and unnamed lists become lists.  Atomic vectors become lists
    (with ``None`` for NA and NaN; ±Inf stay floats) unless they carry the attribute
    ``parity_scalar``, in which case they become one value.  A matrix becomes a list of rows.
    """
    import rpy2.rinterface as ri

    if obj is ri.NULL or isinstance(obj, type(ri.NULL)):
        return None
    if isinstance(obj, ri.ListSexpVector):
        names = obj.names
        items = [to_python(x) for x in obj]
        if names is ri.NULL or names is None:
            return items
        return {str(n): v for n, v in zip(names, items, strict=True)}
    if isinstance(obj, (ri.FloatSexpVector, ri.IntSexpVector, ri.BoolSexpVector,
                        ri.StrSexpVector)):
        values = [_scalar(obj, v) for v in obj]
        attrs = set(obj.list_attrs()) if hasattr(obj, "list_attrs") else set()
        if "parity_scalar" in attrs:
            return values[0]
        if "dim" in attrs:
            dim = list(obj.do_slot("dim"))
            if len(dim) == 2:
                nr, nc = dim
                return [[values[i + j * nr] for j in range(nc)] for i in range(nr)]
        return values
    raise TypeError(f"cannot convert R object of type {type(obj).__name__}")


def _scalar(vec: Any, v: Any) -> Any:
    import rpy2.rinterface as ri

    if isinstance(vec, ri.FloatSexpVector):
        return None if math.isnan(v) else float(v)
    if isinstance(vec, ri.IntSexpVector):
        return None if v == ri.NA_Integer else int(v)
    if isinstance(vec, ri.BoolSexpVector):
        return None if v == ri.NA_Logical else bool(v)
    return None if v is ri.NA_Character else str(v)


def dataset_from_r(df: Any) -> Dataset:
    import rpy2.rinterface as ri

    cols = []
    for name, vec in zip(df.names, df, strict=True):
        attrs = set(vec.list_attrs())
        cls = list(vec.do_slot("class")) if "class" in attrs else []
        if "factor" in cls:
            levels = tuple(str(x) for x in vec.do_slot("levels"))
            codes = tuple(None if v == ri.NA_Integer else int(v) - 1 for v in vec)
            cols.append(Column(str(name), "factor", codes, levels, "ordered" in cls))
        elif isinstance(vec, ri.FloatSexpVector):
            cols.append(Column(str(name), "double", tuple(_scalar(vec, v) for v in vec)))
        elif isinstance(vec, ri.IntSexpVector):
            cols.append(Column(str(name), "integer", tuple(_scalar(vec, v) for v in vec)))
        elif isinstance(vec, ri.BoolSexpVector):
            cols.append(Column(str(name), "logical", tuple(_scalar(vec, v) for v in vec)))
        elif isinstance(vec, ri.StrSexpVector):
            # character columns become factors with C-locale sorted levels, as glmer would
            strs = [None if v is ri.NA_Character else str(v) for v in vec]
            levels = tuple(sorted({s for s in strs if s is not None},
                                  key=lambda s: s.encode("utf-8")))
            index = {lev: i for i, lev in enumerate(levels)}
            cols.append(Column(str(name), "factor",
                               tuple(None if s is None else index[s] for s in strs), levels))
        else:
            raise TypeError(f"column {name!r}: unsupported R type {type(vec).__name__}")
    return Dataset(tuple(cols))
