"""Make a fixture document for a case from live R: per variant, the default fit, the tight fit
and the probes.  ``python -m parity generate`` (:mod:`parity.cli`) writes them."""

from __future__ import annotations

import datetime as _dt
import math
import platform
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any

from . import __version__
from .cases import Case
from .deadline import DEFAULT_R_TIMEOUT
from .errors import ParityError
from .fixtures import SCHEMA_VERSION
from .r_bridge import RSession
from .trust import data_expression
from .variants import Variant
from .workers import in_workers

#: Label -> parameter vector; the probes of one variant.
ProbePoints = list[tuple[str, list[float]]]


def away_point(tight: dict[str, Any], variant: Variant) -> list[float]:
    """A parameter vector away from both optima, where PIRLS still converges easily.

    Diagonal entries of θ (lower bound 0) are scaled up by 25% and shifted by 0.05, so the
    point stays off the boundary; off-diagonal entries are shifted by 0.05.  Each β_j moves
    by half its standard error from the tight fit's vcov, so that the step is on the
    column's own scale (a fixed step on a coefficient of age² would move η by tens).
    """
    theta = tight["theta"]["values"]
    lower = tight["theta"]["lower"]
    th = [1.25 * t + 0.05 if lo == 0 else t + 0.05 for t, lo in zip(theta, lower, strict=True)]
    if variant.theta_only:
        return th
    beta = tight["fixef"]["values"]
    vcov = tight["vcov"]
    if vcov is not None and all(vcov["values"][j][j] > 0 for j in range(len(beta))):
        step = [0.5 * math.sqrt(vcov["values"][j][j]) for j in range(len(beta))]
    else:
        step = [0.01 * max(1.0, abs(b)) for b in beta]
    return th + [b + s for b, s in zip(beta, step, strict=True)]


def probe_points(default: dict[str, Any], tight: dict[str, Any],
                 variant: Variant) -> ProbePoints:
    """The probes of a variant: lme4's tight and default optima, and a point away from both."""
    def params(fit: dict[str, Any]) -> list[float]:
        th = list(fit["theta"]["values"])
        return th if variant.theta_only else th + list(fit["fixef"]["values"])

    return [("tight", params(tight)), ("default", params(default)),
            ("away", away_point(tight, variant))]


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
        "generator": f"parity {__version__} (python -m parity generate)",
        "python": platform.python_version(),
        "rpy2_version": rpy2_version,
        "host": f"{platform.system()} {platform.machine()}",
        "locale": "C",
    }


def generate_document(
    case: Case,
    session: RSession,
    probe_params: dict[str, ProbePoints] | None = None,
    on_step: Callable[[str], None] | None = None,
    timeout: float | None = DEFAULT_R_TIMEOUT,
) -> dict[str, Any]:
    """The fixture document of ``case``, fitted now in live R.

    ``probe_params`` replaces the probe points of a variant, by label (``--check`` passes the
    committed fixture's points, so that old and new probes are evaluated at identical
    parameters).  The data are the case's own when it has them; otherwise its ``data_r`` is
    evaluated, only if the case is code (see :func:`parity.trust.data_expression`), and the
    case is checked against what it made.  Each R call runs under ``timeout`` seconds.
    """
    step = on_step or (lambda _msg: None)
    step(f"{case.name}: data")
    if case.data is not None:
        data = case.data
    else:
        expr = data_expression(case)  # refuses R code read from a file, before R runs it
        data = session.make_data(expr, timeout=timeout)
        case.with_data(data)  # CaseError: a formula variable or column the data lack
    spec = case.spec()
    results: dict[str, Any] = {}
    for v in case.variants:
        step(f"{case.name} {v}: default fit")
        default = session.fit(data, spec, v.value, "default", timeout=timeout)
        step(f"{case.name} {v}: tight fit")
        tight = session.fit(data, spec, v.value, "tight", timeout=timeout)
        points = (probe_params or {}).get(v.label) or probe_points(default, tight, v)
        step(f"{case.name} {v}: probes")
        probes = session.probe(data, spec, v.value, [p for _, p in points], timeout=timeout)
        for (label, _), pt in zip(points, probes["points"], strict=True):
            pt["label"] = label
        probes["points"] = [{"label": p.pop("label"), **p} for p in probes["points"]]
        results[v.label] = {"default": default, "tight": tight, "probes": probes}
    return {
        "schema_version": SCHEMA_VERSION,
        "case": spec,
        "provenance": provenance(session),
        "data": data.to_json(),
        "results": results,
    }


def committed_probe_points(doc: dict[str, Any]) -> dict[str, ProbePoints]:
    """The probe points of a fixture document, by variant label."""
    return {k: [(p["label"], p["params"]) for p in r["probes"]["points"]]
            for k, r in doc["results"].items()}


def steps(case: Case) -> int:
    """How many steps :func:`generate_document` reports for the case."""
    return 1 + 3 * len(case.variants)


def generate_all(cases: Sequence[Case], probe_params: dict[str, dict[str, ProbePoints]],
                 jobs: int = 1, timeout: float | None = DEFAULT_R_TIMEOUT,
                 on_step: Callable[[str], None] | None = None
                 ) -> Iterator[tuple[Case, dict[str, Any] | ParityError]]:
    """Each case's fixture document, made in live R, as each is done: (case, document), or
    (case, the error) for a case that failed.  ``probe_params`` holds, by case name, the probe
    points to reuse.  With ``jobs > 1`` the cases are spread over that many worker processes,
    each with its own R session (``on_step`` then hears of whole cases)."""
    step = on_step or (lambda _msg: None)
    if jobs <= 1 or len(cases) <= 1:
        from . import r_bridge

        for case in cases:
            try:
                yield case, generate_document(case, r_bridge.session(),
                                              probe_params.get(case.name), step, timeout)
            except ParityError as exc:
                yield case, exc
        return
    for i, doc in in_workers(_generate_in_worker, list(cases), jobs, probe_params, timeout):
        case = cases[i]
        for _ in range(steps(case)):
            step(f"{case.name}: done")
        yield case, doc


def _generate_in_worker(case: Case, probe_params: dict[str, dict[str, ProbePoints]],
                        timeout: float | None) -> dict[str, Any] | ParityError:
    from . import r_bridge

    try:
        return generate_document(case, r_bridge.session(), probe_params.get(case.name), None,
                                 timeout)
    except ParityError as exc:
        return exc
