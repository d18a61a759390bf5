"""Make a fixture document for a case from live R: default fit, tight fit and probes."""

from __future__ import annotations

import datetime as _dt
import math
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any

from . import __version__
from .cases import Case
from .deadline import DEFAULT_R_TIMEOUT
from .fixtures import SCHEMA_VERSION
from .r_bridge import RSession
from .trust import data_expression

#: Label -> parameter vector; the probes of one nAGQ.
ProbePoints = list[tuple[str, list[float]]]


def away_point(tight: dict[str, Any], nAGQ: int) -> list[float]:
    """A parameter vector away from both optima, where PIRLS still converges easily.

    Diagonal entries of θ (lower bound 0) are scaled up by 25% and shifted by 0.05, so the
    point stays off the boundary; off-diagonal entries are shifted by 0.05.  Each β_j moves
    by half its standard error from the tight fit's vcov, so that the step is on the
    column's own scale (a fixed step on a coefficient of age² would move η by tens).
    """
    theta = tight["theta"]["values"]
    lower = tight["theta"]["lower"]
    th = [1.25 * t + 0.05 if lo == 0 else t + 0.05 for t, lo in zip(theta, lower, strict=True)]
    if nAGQ == 0:
        return th
    beta = tight["fixef"]["values"]
    vcov = tight["vcov"]
    if vcov is not None and all(vcov["values"][j][j] > 0 for j in range(len(beta))):
        step = [0.5 * math.sqrt(vcov["values"][j][j]) for j in range(len(beta))]
    else:
        step = [0.01 * max(1.0, abs(b)) for b in beta]
    return th + [b + s for b, s in zip(beta, step, strict=True)]


def probe_points(default: dict[str, Any], tight: dict[str, Any], nAGQ: int) -> ProbePoints:
    def params(fit: dict[str, Any]) -> list[float]:
        th = list(fit["theta"]["values"])
        return th if nAGQ == 0 else th + list(fit["fixef"]["values"])

    return [("tight", params(tight)), ("default", params(default)),
            ("away", away_point(tight, nAGQ))]


def provenance(session: RSession) -> dict[str, Any]:
    v = session.versions
    try:
        rpy2_version = metadata.version("rpy2")
    except metadata.PackageNotFoundError:
        rpy2_version = "absent"
    return {
        "r_version": v["r_version"],
        "r_version_string": v["r_version_string"],
        "lme4_version": v["lme4_version"],
        "matrix_version": v["matrix_version"],
        "minqa_version": v["minqa_version"],
        "platform": v["platform"],
        "blas": v["blas"],
        "lapack": v["la_library"],
        "generated_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": f"parity {__version__} (scripts/generate_fixtures.py)",
        "python": platform.python_version(),
        "rpy2_version": rpy2_version,
        "host": f"{platform.system()} {platform.machine()}",
        "locale": "C",
    }


def generate_document(
    case: Case,
    session: RSession,
    probe_params: dict[int, ProbePoints] | None = None,
    on_step: Callable[[str], None] | None = None,
    timeout: float | None = DEFAULT_R_TIMEOUT,
) -> dict[str, Any]:
    """The fixture document of ``case``, fitted now in live R.

    ``probe_params`` replaces the probe points of an nAGQ (``--check`` passes the committed
    fixture's points, so that old and new probes are evaluated at identical parameters).
    The case's ``data_r`` is evaluated only if the case is code (see
    :func:`parity.trust.data_expression`); each R call runs under ``timeout`` seconds.
    """
    step = on_step or (lambda _msg: None)
    expr = data_expression(case)  # refuses R code read from a file, before R runs anything
    step(f"{case.name}: data")
    data = session.make_data(expr, timeout=timeout)
    spec = case.spec()
    results: dict[str, Any] = {}
    for k in case.nAGQ:
        step(f"{case.name} nAGQ={k}: default fit")
        default = session.fit(data, spec, k, "default", timeout=timeout)
        step(f"{case.name} nAGQ={k}: tight fit")
        tight = session.fit(data, spec, k, "tight", timeout=timeout)
        points = (probe_params or {}).get(k) or probe_points(default, tight, k)
        step(f"{case.name} nAGQ={k}: probes")
        probes = session.probe(data, spec, k, [p for _, p in points], timeout=timeout)
        for (label, _), pt in zip(points, probes["points"], strict=True):
            pt["label"] = label
        probes["points"] = [{"label": p.pop("label"), **p} for p in probes["points"]]
        results[str(k)] = {"default": default, "tight": tight, "probes": probes}
    return {
        "schema_version": SCHEMA_VERSION,
        "case": spec,
        "provenance": provenance(session),
        "data": data.to_json(),
        "results": results,
    }


def committed_probe_points(doc: dict[str, Any]) -> dict[int, ProbePoints]:
    return {int(k): [(p["label"], p["params"]) for p in r["probes"]["points"]]
            for k, r in doc["results"].items()}


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use scripts/generate_fixtures.py")
