"""Typed results: what a reference (lme4) or a candidate (the engine, or live lme4) reports.

The fixtures keep everything R returned; these classes keep what the comparison reads.
Both a fixture and a candidate engine build the same objects, so the comparison never
knows where a number came from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cases import Case
from .dataset import Dataset
from .variants import Variant, parse_label


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float)


@dataclass(frozen=True)
class RanefTable:
    """The conditional modes b of one grouping factor: levels × columns, as ``ranef()``."""

    levels: tuple[str, ...]
    columns: tuple[str, ...]
    values: np.ndarray


@dataclass(frozen=True)
class FitResult:
    """One fit, on lme4's scales.

    ``objective`` is lme4's optimised criterion, ``devcomp$cmp["dev"]``, which equals
    ``-2*logLik`` (the family's aic terms included for nAGQ ≤ 1; the quadrature objective on
    the deviance-residual scale for nAGQ > 1).  ``deviance`` is R's ``deviance()``: the sum
    of squared deviance residuals.
    """

    fixef_names: tuple[str, ...]
    fixef: np.ndarray
    theta_names: tuple[str, ...]
    theta: np.ndarray
    ranef: dict[str, RanefTable]
    objective: float
    deviance: float
    loglik: float
    aic: float
    bic: float
    df: int
    nobs: int
    sigma: float
    u: np.ndarray
    #: lme4's fit as a fixture stores it (empty for the engine's fits)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: the candidate's own fit object (glmm's GlmerFit), for quantities this class lacks
    native: Any = field(default=None, repr=False, compare=False)
    #: an engine's answers beyond its estimates, in the layout of a fixture's ``results``:
    #: ``results(params, reference)`` at those parameters (None: at its optimum), on the new
    #: data and rows that lme4's results ``reference`` record
    #: (:mod:`parity.result_quantities`); None for lme4's fits, whose ``raw`` holds them
    results: Callable[[np.ndarray | None, dict[str, Any]], dict[str, Any]] | None = field(
        default=None, repr=False, compare=False)

    def at_objective(self, objective: float) -> FitResult:
        """This fit with its objective replaced (by lme4's converged devfun at its optimum),
        and logLik, AIC and BIC shifted alike."""
        shift = objective - self.objective
        return dataclasses.replace(self, objective=objective, loglik=self.loglik - shift / 2,
                                   aic=self.aic + shift, bic=self.bic + shift)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FitResult:
        ranef = {
            g: RanefTable(tuple(t["levels"]), tuple(t["columns"]),
                          _arr(t["values"]).reshape(len(t["levels"]), len(t["columns"])))
            for g, t in obj["ranef"].items()
        }
        return cls(
            fixef_names=tuple(obj["fixef"]["names"]),
            fixef=_arr(obj["fixef"]["values"]),
            theta_names=tuple(obj["theta"]["names"]),
            theta=_arr(obj["theta"]["values"]),
            ranef=ranef,
            objective=float(obj["dev"]),
            deviance=float(obj["deviance"]),
            loglik=float(obj["loglik"]),
            aic=float(obj["aic"]),
            bic=float(obj["bic"]),
            df=int(obj["df"]),
            nobs=int(obj["nobs"]),
            sigma=float(obj["sigma"]),
            u=_arr(obj["u"]),
            raw=obj,
        )

    def params(self, variant: Variant | int) -> np.ndarray:
        """The devfun's argument at this fit: θ where the objective takes θ alone (nAGQ = 0,
        lmer), (θ, β) otherwise (lme4's order).  An int is a glmer nAGQ."""
        theta_only = variant == 0 if isinstance(variant, int) else variant.theta_only
        return self.theta.copy() if theta_only else np.concatenate([self.theta, self.fixef])


@dataclass(frozen=True)
class ProbeResult:
    """lme4's devfun, converged, at one parameter vector; with its conditional modes."""

    params: np.ndarray
    objective: float
    u: np.ndarray
    b: np.ndarray
    beta: np.ndarray
    label: str = ""
    ldL2: float | None = None
    ussq: float | None = None
    drsum: float | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ProbeResult:
        return cls(
            params=_arr(obj["params"]),
            objective=float(obj["objective"]),
            u=_arr(obj["u"]),
            b=_arr(obj["b"]),
            beta=_arr(obj["beta"]),
            label=str(obj.get("label", "")),
            ldL2=obj.get("ldL2"),
            ussq=obj.get("ussq"),
            drsum=obj.get("drsum"),
        )


@dataclass(frozen=True)
class ProbeSet:
    tolPwrss: float
    points: tuple[ProbeResult, ...]

    def by_label(self, label: str) -> ProbeResult | None:
        return next((p for p in self.points if p.label == label), None)


@dataclass(frozen=True)
class VariantReference:
    """lme4's answers for one variant of a case: its default fit, its tight fit (the true
    optimum) and its converged objective at fixed parameters (the probes)."""

    variant: Variant
    default: FitResult
    tight: FitResult
    probes: ProbeSet

    @property
    def label(self) -> str:
        return self.variant.label


@dataclass(frozen=True)
class CaseReference:
    """Everything lme4 says about one case: provenance, the data it fitted, and per variant
    the default fit, the tight fit and the probes.  ``results`` is keyed by the variant's key
    (the nAGQ for glmer and glmer.nb, ``"REML"`` or ``"ML"`` for lmer); ``raw`` is the fixture
    document."""

    case: Case
    provenance: dict[str, Any]
    data: Dataset
    results: dict[int | str, VariantReference]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any], read_from: str = "a fixture document"
                  ) -> CaseReference:
        """The reference of a fixture document (validated by :mod:`parity.fixtures`); its
        case is marked as read from ``read_from``, so its ``data_r`` is never evaluated."""
        data = Dataset.from_json(doc["data"])
        case = Case.from_spec(doc["case"], read_from, data)
        refs = []
        for label, r in doc["results"].items():
            refs.append(VariantReference(
                variant=parse_label(case.method, label),
                default=FitResult.from_json(r["default"]),
                tight=FitResult.from_json(r["tight"]),
                probes=ProbeSet(float(r["probes"]["tolPwrss"]),
                                tuple(ProbeResult.from_json(p) for p in r["probes"]["points"])),
            ))
        return cls(case=case, provenance=dict(doc["provenance"]), data=data,
                   results={r.variant.key: r for r in sorted(refs, key=lambda r: r.variant)},
                   raw=doc)

    def variant(self, key: int | str | Variant) -> VariantReference:
        """The results of one variant (its key, label, or the Variant)."""
        return self.results[self.case.variant(key).key]
