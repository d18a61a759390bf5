#!/usr/bin/env python3
"""Regenerate fixtures/families.json: GLM families and links as R and lme4 compute them.

    scripts/generate_family_fixtures.py              # writes fixtures/families.json
    scripts/generate_family_fixtures.py --out PATH   # somewhere else

Needs live R with lme4 (``scripts/install-r.sh``).  Every expected value in the file comes
from R: ``family$linkfun/linkinv/mu.eta/variance/dev.resids/aic/initialize`` of R's own
family objects, the same quantities from lme4's C++ ``glmFamily`` (``lme4::glmFamily``),
and first/second derivatives by R's symbolic ``stats::D``.  The R code is
``parity/r/families.R``.  The grids below are inputs only; they are chosen so that every
value R returns is finite (the file is written with ``allow_nan=False``).

Layout (``schema_version`` 1):

- ``provenance``: R/lme4 versions, UTC date, generator.
- ``eps``: R's ``.Machine$double.eps``.
- ``links``: one entry per family × allowed link with inputs ``eta``, ``mu`` and
  ``eta_extreme``, and outputs ``r`` and ``lme4`` (``linkfun(mu)``, ``linkinv(eta)``,
  ``mu_eta(eta)``), ``mu_eta_D``/``mu_eta2_D`` (dμ/dη and d²μ/dη² by ``D``), and, for the
  links that clamp, ``extreme`` (``linkinv``/``mu_eta`` at ``eta_extreme``, ``r``/``lme4``).
- ``variance``: per family, ``mu`` and ``r``/``lme4`` values of V(μ), ``variance_deriv_D``.
- ``deviance``: per family and labelled case, inputs ``y``, ``n``, ``mu``, ``wt`` and
  ``r``/``lme4`` outputs ``dev_resids``, ``dev`` (their sum), ``aic`` (evaluated at that
  ``dev``) and ``aic_is_inf``; ``aic`` is ``null`` where R or lme4 returns +Inf.
- ``initialize``: per family and labelled response, inputs ``response`` (``kind``:
  ``numeric``, ``logical``, ``factor`` with 0-based ``codes`` and ``levels``, ``cbind`` with
  ``successes``/``failures``, or ``matrix3``: three columns) and ``weights``; output ``r``
  with ``y``, ``weights``, ``n``, ``mustart`` and ``warnings``, or ``error`` (R's message).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from parity.atomic import write_text_atomic
from parity.errors import ParityError
from parity.r_bridge import RSession, session

SCHEMA_VERSION = 1
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "fixtures" / "families.json"

LINKS: dict[str, tuple[str, ...]] = {
    "binomial": ("logit", "probit", "cloglog", "cauchit", "log"),
    "poisson": ("log", "sqrt", "identity"),
    "Gamma": ("inverse", "log", "identity"),
    "inverse.gaussian": ("1/mu^2", "log", "inverse", "identity"),
}

#: Moderate η for each link: no clamp is active and R's and lme4's formulas coincide.
_ETA_REAL = [-4.5, -2.0, -0.7, 0.0, 0.3, 1.1, 3.6]
_ETA_POSITIVE = [0.05, 0.4, 1.0, 2.2, 7.5]
ETA: dict[str, list[float]] = {
    "logit": _ETA_REAL, "probit": _ETA_REAL, "cloglog": _ETA_REAL, "cauchit": _ETA_REAL,
    "log": _ETA_REAL, "identity": _ETA_POSITIVE, "inverse": _ETA_POSITIVE,
    "sqrt": _ETA_POSITIVE, "1/mu^2": _ETA_POSITIVE,
}

#: Extreme η where lme4's C++ clamps (or R's own linkinv clamps differently).
ETA_EXTREME: dict[str, list[float]] = {
    "logit": [-800.0, -40.0, -36.5, 36.5, 40.0, 800.0],
    "probit": [-40.0, -37.6, -37.4, -30.0, 8.3, 9.0, 40.0],
    "cloglog": [-40.0, -37.0, 3.6, 3.7, 5.0, 40.0],
    "cauchit": [-1e17, -1e10, 1e10, 1e17],
    "log": [-745.0, -40.0, -36.0, 700.0],
}

#: μ on which each family's links and variance are evaluated.
MU_UNIT = [0.01, 0.15, 0.4, 0.5, 0.72, 0.93, 0.999]
MU_POSITIVE = [0.05, 0.6, 1.0, 2.5, 11.0, 130.0]
MU: dict[str, list[float]] = {
    "binomial": MU_UNIT, "poisson": MU_POSITIVE, "Gamma": MU_POSITIVE,
    "inverse.gaussian": MU_POSITIVE,
}
#: The variance grid adds μ where lme4 clamps μ(1−μ) at ε.
VARIANCE_MU: dict[str, list[float]] = {**MU, "binomial": [1e-17, *MU_UNIT, 1 - 1e-16]}


def _ones(k: int) -> list[float]:
    return [1.0] * k


def _cbind(successes: list[float], failures: list[float],
           prior: list[float]) -> dict[str, list[float]]:
    """y, n and wt as binomial initialize leaves them for cbind(successes, failures)."""
    n = [s + f for s, f in zip(successes, failures, strict=True)]
    return {"y": [s / m if m else 0.0 for s, m in zip(successes, n, strict=True)], "n": n,
            "wt": [w * m for w, m in zip(prior, n, strict=True)]}


#: (family, label) -> y, n, mu, wt for dev_resids and aic.
DEVIANCE: list[tuple[str, str, dict[str, list[float]]]] = [
    ("binomial", "bernoulli", {"y": [0, 1, 1, 0, 1, 0], "n": _ones(6),
                               "mu": [0.1, 0.35, 0.6, 0.8, 0.95, 0.5], "wt": _ones(6)}),
    ("binomial", "proportion_with_trials", {
        "y": [0, 0.25, 0.5, 2 / 3, 1], "n": _ones(5), "mu": [0.1, 0.3, 0.45, 0.7, 0.9],
        "wt": [4, 4, 2, 3, 5]}),
    ("binomial", "cbind", {**_cbind([0, 2, 1, 7, 3, 0], [5, 6, 0, 5, 0, 0],
                                    [1, 2, 1, 0.5, 1, 1]),
                           "mu": [0.2, 0.3, 0.8, 0.55, 0.9, 0.4]}),
    ("binomial", "noninteger_weights", {
        "y": [0, 1, 1, 0.4, 0, 1], "n": _ones(6), "mu": [0.3, 0.6, 0.7, 0.35, 0.2, 0.8],
        "wt": [0.5, 1.7, 2.5, 3.3, 0.2, 0.6]}),
    ("binomial", "zero_weight", {"y": [1, 0, 1], "n": _ones(3), "mu": [0.25, 0.4, 0.6],
                                 "wt": [0, 1, 2]}),
    ("binomial", "many_trials", {**_cbind([48_712, 3, 250_017, 99_990],
                                          [51_288, 99_997, 249_983, 10], _ones(4)),
                                 "mu": [0.4875, 4e-5, 0.50001, 0.99989]}),
    ("poisson", "counts", {"y": [0, 1, 3, 7, 12, 0], "n": _ones(6),
                           "mu": [0.5, 1.3, 2.9, 8.2, 10.0, 0.01], "wt": _ones(6)}),
    ("poisson", "weighted", {"y": [0, 1, 3, 7, 12, 0], "n": _ones(6),
                             "mu": [0.5, 1.3, 2.9, 8.2, 10.0, 0.01],
                             "wt": [0.5, 2, 1.25, 1, 3, 0]}),
    ("poisson", "large_counts", {"y": [150, 1000, 4096, 37], "n": _ones(4),
                                 "mu": [148.2, 1012.5, 4090.0, 36.6], "wt": _ones(4)}),
    ("poisson", "huge_counts", {"y": [1_000_000, 25_000_017, 3], "n": _ones(3),
                                "mu": [1_000_950.5, 24_999_000.0, 2.9999], "wt": _ones(3)}),
    ("poisson", "noninteger_y", {"y": [1.5, 2, 0], "n": _ones(3), "mu": [1.0, 2.0, 1.0],
                                 "wt": _ones(3)}),
    ("Gamma", "basic", {"y": [0.3, 1.2, 2.5, 4.1, 9.6], "n": _ones(5),
                        "mu": [0.5, 1.0, 3.0, 3.5, 8.0], "wt": _ones(5)}),
    ("Gamma", "weighted", {"y": [0.3, 1.2, 2.5, 4.1, 9.6], "n": _ones(5),
                           "mu": [0.5, 1.0, 3.0, 3.5, 8.0], "wt": [0.5, 2, 1.5, 1, 0.25]}),
    ("Gamma", "near_fit", {"y": [1.02, 0.97, 2.05, 3.9, 5.1, 10.3], "n": _ones(6),
                           "mu": [1, 1, 2, 4, 5, 10], "wt": _ones(6)}),
    ("Gamma", "tiny_dispersion", {"y": [1.0001, 0.99995, 2.0003, 3.9998, 5.0001], "n": _ones(5),
                                  "mu": [1, 1, 2, 4, 5], "wt": _ones(5)}),
    ("inverse.gaussian", "basic", {"y": [0.3, 1.2, 2.5, 4.1, 9.6], "n": _ones(5),
                                   "mu": [0.5, 1.0, 3.0, 3.5, 8.0], "wt": _ones(5)}),
    ("inverse.gaussian", "weighted", {"y": [0.3, 1.2, 2.5, 4.1, 9.6], "n": _ones(5),
                                      "mu": [0.5, 1.0, 3.0, 3.5, 8.0],
                                      "wt": [0.5, 2, 1.5, 1, 0.25]}),
    ("inverse.gaussian", "near_fit", {"y": [1.02, 0.97, 2.05, 3.9, 5.1, 10.3], "n": _ones(6),
                                      "mu": [1, 1, 2, 4, 5, 10], "wt": _ones(6)}),
]

#: (family, label, response, weights) for family$initialize.
INITIALIZE: list[tuple[str, str, dict[str, Any], list[float]]] = [
    ("binomial", "zero_one", {"kind": "numeric", "values": [0, 1, 1, 0, 1]}, _ones(5)),
    ("binomial", "logical", {"kind": "logical", "values": [0, 1, 1, 0]}, [1, 2, 1, 0.5]),
    ("binomial", "factor", {"kind": "factor", "codes": [0, 1, 2, 1, 0],
                            "levels": ["low", "mid", "high"]}, _ones(5)),
    ("binomial", "proportion_with_trials", {"kind": "numeric", "values": [0, 0.25, 0.5, 1]},
     [4, 4, 2, 3]),
    ("binomial", "cbind", {"kind": "cbind", "successes": [0, 2, 1, 7, 3, 0],
                           "failures": [5, 6, 0, 5, 0, 0]}, [1, 2, 1, 0.5, 1, 1]),
    ("binomial", "zero_weight_ignores_y", {"kind": "numeric", "values": [0, 1, 2.5]},
     [1, 1, 0]),
    ("binomial", "noninteger_successes", {"kind": "numeric", "values": [0.3, 1, 0]}, _ones(3)),
    ("binomial", "cbind_noninteger_counts", {"kind": "cbind", "successes": [1.5, 2],
                                             "failures": [1, 3]}, _ones(2)),
    ("binomial", "above_one", {"kind": "numeric", "values": [0, 1.2]}, _ones(2)),
    ("binomial", "negative", {"kind": "numeric", "values": [-0.1, 1]}, _ones(2)),
    ("binomial", "three_columns", {"kind": "matrix3", "successes": [1, 2],
                                   "failures": [1, 0]}, _ones(2)),
    ("poisson", "counts", {"kind": "numeric", "values": [0, 2, 5, 1]}, [1, 0.5, 2, 1]),
    ("poisson", "logical", {"kind": "logical", "values": [0, 1, 1]}, _ones(3)),
    ("poisson", "negative", {"kind": "numeric", "values": [1, -1]}, _ones(2)),
    ("Gamma", "positive", {"kind": "numeric", "values": [0.5, 2, 3.3]}, [1, 2, 0.5]),
    ("Gamma", "zero", {"kind": "numeric", "values": [0.5, 0]}, _ones(2)),
    ("inverse.gaussian", "positive", {"kind": "numeric", "values": [0.5, 2, 3.3]},
     [1, 2, 0.5]),
    ("inverse.gaussian", "zero", {"kind": "numeric", "values": [0.5, 0]}, _ones(2)),
]


class _R:
    """The R functions of parity/r/families.R, called with Python lists."""

    def __init__(self, s: RSession) -> None:
        self.s = s
        s.ro.r(resources.files("parity").joinpath("r/families.R").read_text(encoding="utf-8"))

    def vec(self, x: list[float]) -> Any:
        return self.s.ro.FloatVector([float(v) for v in x])

    def link(self, family: str, link: str) -> dict[str, Any]:
        eta, mu, extreme = ETA[link], MU[family], ETA_EXTREME.get(link, [])
        out = self.s.call("parity_fam_link", family, link, self.vec(eta), self.vec(mu),
                          self.vec(extreme))
        return {"family": family, "link": link, "eta": eta, "mu": mu, "eta_extreme": extreme,
                **out}

    def variance(self, family: str) -> dict[str, Any]:
        mu = VARIANCE_MU[family]
        return {"family": family, "mu": mu,
                **self.s.call("parity_fam_variance", family, self.vec(mu))}

    def deviance(self, family: str, label: str, case: dict[str, list[float]]) -> dict[str, Any]:
        inputs = {k: [float(v) for v in case[k]] for k in ("y", "n", "mu", "wt")}
        out = self.s.call("parity_fam_deviance", family,
                          *(self.vec(inputs[k]) for k in ("y", "n", "mu", "wt")))
        return {"family": family, "label": label, **inputs, **out}

    def initialize(self, family: str, label: str, response: dict[str, Any],
                   weights: list[float]) -> dict[str, Any]:
        ro = self.s.ro
        kind = response["kind"]
        if kind == "factor":
            a, b, levels = response["codes"], [], response["levels"]
        elif kind in ("cbind", "matrix3"):
            a, b, levels = response["successes"], response["failures"], []
        else:
            a, b, levels = response["values"], [], []
        out = self.s.call("parity_fam_initialize", family, kind, self.vec(a), self.vec(b),
                          ro.StrVector(levels), self.vec(weights))
        return {"family": family, "label": label, "response": response,
                "weights": [float(w) for w in weights], "r": out}


def _missing(node: Any, path: str = "$") -> list[str]:
    """JSON paths of null leaves (R's NA or NaN), apart from lme4's infinite aic."""
    if isinstance(node, dict):
        if node.get("aic_is_inf"):
            node = {k: v for k, v in node.items() if k != "aic"}
        return [p for k, v in node.items() for p in _missing(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _missing(v, f"{path}[{i}]")]
    return [path] if node is None else []


def generate(s: RSession) -> dict[str, Any]:
    """The whole document; raises ValueError if R returned NA or NaN anywhere."""
    r = _R(s)
    v = s.versions
    doc = {
        "schema_version": SCHEMA_VERSION,
        "provenance": {
            "r_version": v["r_version"], "r_version_string": v["r_version_string"],
            "lme4_version": v["lme4_version"],
            "generated_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "generator": "scripts/generate_family_fixtures.py (R: parity/r/families.R)",
        },
        "eps": s.ro.r(".Machine$double.eps")[0],
        "links": [r.link(f, lk) for f, links in LINKS.items() for lk in links],
        "variance": [r.variance(f) for f in LINKS],
        "deviance": [r.deviance(*c) for c in DEVIANCE],
        "initialize": [r.initialize(*c) for c in INITIALIZE],
    }
    if bad := _missing(doc):
        raise ValueError(f"R returned NA/NaN at {', '.join(bad)}")
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    args = ap.parse_args(argv)
    try:
        doc = generate(session())
    except ParityError as exc:
        print(f"generate_family_fixtures: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    print(f"wrote {write_text_atomic(args.out, text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
