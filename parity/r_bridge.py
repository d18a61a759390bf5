"""The bridge to R's lme4 through rpy2.  All R code lives in ``r/glmer_case.R``.

Nothing here imports rpy2 at module import time: :func:`session` does, and turns every way
in which R can be missing (no rpy2, no R, no lme4, an R too old for this rpy2) into
:class:`~parity.errors.RUnavailableError`.  Every R call runs in the C locale.
"""

from __future__ import annotations

import math
import os
import threading
from importlib import resources
from typing import Any

from .dataset import Column, Dataset
from .errors import RFitError, RUnavailableError

#: tolPwrss values tried in order for the probe devfun.  lme4's PIRLS can fail at 1e-14 on
#: large data (the step-halving test then sees summation noise), so the generator takes the
#: first value at which every probe point converges and records it in the fixture.
PROBE_TOLS: tuple[float, ...] = (1e-14, 1e-13, 1e-12, 1e-11, 1e-10)

_lock = threading.Lock()
_session: RSession | None = None
_failure: RUnavailableError | None = None


#: Set this environment variable to a non-empty value to behave as if R were absent.
DISABLE_ENV = "PARITY_DISABLE_R"


class RSession:
    """An embedded R with lme4 loaded and the bridge functions sourced."""

    def __init__(self) -> None:
        if os.environ.get(DISABLE_ENV):
            raise RUnavailableError(f"live R is disabled by {DISABLE_ENV}")
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

    # -- calling R -------------------------------------------------------------------------
    def call(self, fun: str, *args: Any) -> Any:
        try:
            res = self.ro.r[fun](*args)
        except Exception as exc:
            raise RFitError(f"R {fun}() failed: {str(exc).strip()}") from exc
        return to_python(res)

    def make_data(self, expr: str) -> Dataset:
        """Evaluate an R data expression and read the data.frame back losslessly."""
        try:
            df = self.ro.r["parity_make_data"](expr)
        except Exception as exc:
            raise RFitError(f"R could not build the data {expr!r}: {str(exc).strip()}") from exc
        return dataset_from_r(df)

    def fit(self, data: Dataset, spec: dict[str, Any], nAGQ: int, kind: str) -> dict[str, Any]:
        """glmer() on ``data`` with the ``default`` or ``tight`` control; a plain dict."""
        return self.call("parity_fit", self.dataframe(data), self.spec(spec), nAGQ, kind)

    def probe(self, data: Dataset, spec: dict[str, Any], nAGQ: int,
              points: list[list[float]], tols: tuple[float, ...] = PROBE_TOLS) -> dict[str, Any]:
        """lme4's converged devfun at each parameter vector (θ for nAGQ=0, (θ, β) otherwise)."""
        ro = self.ro
        pts = ro.r["list"](*[ro.FloatVector(p) for p in points])
        return self.call("parity_probe", self.dataframe(data), self.spec(spec), nAGQ, pts,
                         ro.FloatVector(tols))

    # -- Python -> R -----------------------------------------------------------------------
    def spec(self, spec: dict[str, Any]) -> Any:
        ro = self.ro
        keep = {k: spec[k] for k in ("formula", "family", "link")}
        items = {k: ro.StrVector([v]) for k, v in keep.items()}
        for k in ("weights", "offset"):
            if spec.get(k) is not None:
                items[k] = ro.StrVector([spec[k]])
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
