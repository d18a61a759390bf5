"""The registry of compared quantities: one entry per quantity.

Each :class:`Quantity` is a name, a tier, how to read it from lme4's reference, how to read it
from a candidate, and a :class:`~parity.compare.Tolerance` with its reason.  The runner, the
report, the drift check and the pytest plugin only walk :data:`REGISTRY`; a new quantity
(vcov, VarCorr, condVar, predictions, ...) is a new entry here and nothing else.

The readers:

- ``reference(ref)`` reads lme4's value from the variant's reference
  (:class:`~parity.results.VariantReference`: its default fit, tight fit and probes);
- ``candidate(out, ref)`` reads the candidate's value from its :class:`CandidateOutput` (its
  optimum as a :class:`~parity.results.FitResult`, whose ``native`` is the candidate's own fit
  object, e.g. glmm's ``GlmerFit``, and ``raw`` lme4's fit as a fixture stores it; and its
  objective at the reference's probe points).  ``ref`` is there for alignment only (which
  points, which names), never as a value.

Both return a :class:`Measure`; the two are compared element by element, after their
``names`` (the structure: fixef names, ranef levels) are found equal.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import result_quantities
from .compare import (
    DEFAULT_FIXEF,
    DEFAULT_OBJECTIVE,
    DEFAULT_THETA,
    LMM_DEFAULT_OBJECTIVE,
    LMM_PROBE_OBJECTIVE,
    LMM_TIGHT_PARAMETER,
    PROBE_BASE_TOL_PWRSS,
    PROBE_MODES,
    PROBE_OBJECTIVE,
    TIERS,
    TIGHT_DEVIANCE,
    TIGHT_OBJECTIVE,
    TIGHT_PARAMETER,
    TIGHT_RANEF,
    Row,
    Tolerance,
    compare_values,
)
from .results import FitResult, ProbeResult, VariantReference
from .variants import METHODS


@dataclass(frozen=True)
class Measure:
    """A quantity's value as a flat array, with a label per element (for "worst at ...").

    ``names`` is the structure that must match exactly before values are compared (None: no
    structure).  ``present`` (candidates only) marks the elements the candidate has a value
    for; the others are left out of the comparison and named in the row's note.
    """

    values: np.ndarray
    labels: tuple[str, ...] = ()
    names: Any = None
    present: np.ndarray | None = None

    @classmethod
    def of(cls, values: Any, labels: Sequence[str] = (), names: Any = None) -> Measure:
        return cls(np.atleast_1d(np.asarray(values, dtype=float)).ravel(), tuple(labels), names)


@dataclass
class CandidateOutput:
    """What a candidate gave for one variant: its optimum and its objective at the
    reference's probe points (None where it has no value, e.g. the fixture self-check)."""

    fit: FitResult | None = None
    probes: list[ProbeResult | None] | None = None


Reader = Callable[[VariantReference], Measure]
CandidateReader = Callable[[CandidateOutput, VariantReference], Measure]


@dataclass(frozen=True)
class Quantity:
    """One compared quantity (see the module's doc).  ``scale(ref)`` widens the tolerance
    for a reference whose own precision is coarser (the probes' tolPwrss)."""

    name: str
    tier: str
    tolerance: Tolerance
    reference: Reader
    candidate: CandidateReader
    scale: Callable[[VariantReference], float] | None = None
    methods: frozenset[str] = field(default=frozenset(METHODS))
    #: a method's own tolerance where its tier is stricter (lmer: no inner iteration, so
    #: lme4's criterion is exact), used unscaled
    by_method: tuple[tuple[str, Tolerance], ...] = ()

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"quantity {self.name}: unknown tier {self.tier!r}")

    def tolerance_for(self, ref: VariantReference) -> Tolerance:
        own = dict(self.by_method).get(ref.variant.method)
        if own is not None:
            return own
        factor = 1.0 if self.scale is None else self.scale(ref)
        return self.tolerance if factor == 1.0 else self.tolerance.scaled_by(factor)

    def compare(self, case: str, ref: VariantReference, out: CandidateOutput) -> Row:
        """The row of this quantity: the candidate's value against lme4's."""
        tol = self.tolerance_for(ref)
        label = ref.variant.label
        want = self.reference(ref)
        got = self.candidate(out, ref)
        if got.names != want.names:
            return Row(case, label, self.tier, self.name, "fail", bound=tol.describe(),
                       note=f"names differ: candidate {_show(got.names)} vs reference "
                            f"{_show(want.names)}")
        c, r, labels, note = got.values, want.values, want.labels, ""
        if got.present is not None:
            if got.present.shape != r.shape:
                return Row(case, label, self.tier, self.name, "fail", bound=tol.describe(),
                           note="the candidate's values differ in length from lme4's")
            if not got.present.any():
                return Row(case, label, self.tier, self.name, "skip", bound=tol.describe(),
                           note="the candidate has no value at these points")
            if not got.present.all():
                missing = sorted({lab for lab, p in zip(labels, got.present, strict=True)
                                  if not p})
                note = f"(no candidate value at {missing})"
            c, r = c[got.present], r[got.present]
            labels = tuple(lab for lab, p in zip(labels, got.present, strict=True) if p)
        row = compare_values(case, label, self.tier, self.name, c, r, tol, labels)
        if note:
            row = Row(**{**row.to_json(), "note": f"{row.note} {note}".strip()})
        return row


def _show(names: Any) -> str:
    return str(list(names)) if isinstance(names, tuple) else str(names)


# -- readers ------------------------------------------------------------------------------
def _probe_scale(ref: VariantReference) -> float:
    """PIRLS stops when the relative change of the penalised deviance falls below tolPwrss;
    near the mode that change is quadratic in the step, so the last step in u (and, through
    the lagged L, the error in the objective) is of order sqrt(tolPwrss).  The base bounds
    hold at 1e-14; probes that only converged at a larger tolPwrss (large data, where the
    step-halving test sees summation noise) widen them by sqrt(tolPwrss / 1e-14)."""
    return math.sqrt(max(ref.probes.tolPwrss, PROBE_BASE_TOL_PWRSS) / PROBE_BASE_TOL_PWRSS)


def _probe_quantity(name: str, part: str, tol: Tolerance) -> Quantity:
    """lme4's converged devfun at the reference's probe points against the candidate's, point
    by point (``part``: a field of :class:`~parity.results.ProbeResult`)."""

    def read(p: ProbeResult) -> np.ndarray:
        return np.atleast_1d(np.asarray(getattr(p, part), dtype=float)).ravel()

    def reference(ref: VariantReference) -> Measure:
        points = ref.probes.points
        return Measure(np.concatenate([read(p) for p in points]),
                       tuple(p.label for p in points for _ in range(read(p).size)))

    def candidate(out: CandidateOutput, ref: VariantReference) -> Measure:
        values, present = [], []
        probes = out.probes or [None] * len(ref.probes.points)
        for want, got in zip(ref.probes.points, probes, strict=True):
            n = read(want).size
            v = np.full(n, np.nan) if got is None else read(got)
            if v.size != n:  # a length mismatch fails the quantity
                return Measure(v, present=np.ones(v.size, dtype=bool))
            values.append(v)
            present.append(np.full(n, got is not None))
        return Measure(np.concatenate(values), present=np.concatenate(present))

    return Quantity(name, "probe", tol, reference, candidate, scale=_probe_scale)


def _at_tight(ref: VariantReference) -> float:
    """lme4's converged objective at its tight optimum (the ``tight`` probe).  The tight fit's
    own reported value still carries the lagged L of tolPwrss = 1e-13, up to 6e-6 too high
    (grouseticks-nested); logLik, AIC and BIC are shifted by the same amount, so that they
    still check df and the nAGQ scale."""
    probe = ref.probes.by_label("tight")
    return ref.tight.objective if probe is None else probe.objective


def _shift(ref: VariantReference) -> float:
    return _at_tight(ref) - ref.tight.objective


def candidate_fit(out: CandidateOutput) -> FitResult:
    if out.fit is None:  # the runner reads fit quantities only from a fit
        raise ValueError("the candidate gave no fit")
    return out.fit


def _scalar(name: str, tier: str, tol: Tolerance, ref_value: Callable[[VariantReference], float],
            cand_value: Callable[[FitResult], float]) -> Quantity:
    return Quantity(name, tier, tol, lambda ref: Measure.of(ref_value(ref)),
                    lambda out, _ref: Measure.of(cand_value(candidate_fit(out))))


def named_vector(name: str, tier: str, tol: Tolerance, part: str,
           fit_of: Callable[[VariantReference], FitResult]) -> Quantity:
    """A named vector of a fit (``fixef``, ``theta``): the names must agree, then the values."""

    def read(f: FitResult) -> Measure:
        names = tuple(getattr(f, f"{part}_names"))
        return Measure.of(getattr(f, part), names, names)

    return Quantity(name, tier, tol, lambda ref: read(fit_of(ref)),
                    lambda out, _ref: read(candidate_fit(out)))


def _ranef(f: FitResult) -> Measure:
    """Every grouping factor's conditional modes; the factors, levels and columns must agree."""
    names = tuple((g, t.levels, t.columns) for g, t in f.ranef.items())
    labels = tuple(f"{g}[{lev}, {col}]" for g, t in f.ranef.items()
                   for lev in t.levels for col in t.columns)
    values = [t.values.ravel() for t in f.ranef.values()]
    return Measure(np.concatenate(values) if values else np.zeros(0), labels, names)


def _default_point(ref: VariantReference) -> float:
    probe = ref.probes.by_label("default")
    if probe is None:  # fixtures are validated to have it
        raise ValueError(f"{ref.label}: the reference has no probe at lme4's default fit")
    return probe.objective


def _lmm(q: Quantity, tol: Tolerance) -> Quantity:
    """``q`` with lmer's stricter tolerance ``tol`` (docs/lmm.md; the LMM tiers)."""
    return dataclasses.replace(q, by_method=(("lmer", tol),))


REGISTRY: tuple[Quantity, ...] = (
    # probe tier: the objective and the modes at fixed parameters
    _lmm(_probe_quantity("probe-objective", "objective", PROBE_OBJECTIVE), LMM_PROBE_OBJECTIVE),
    _probe_quantity("probe-u", "u", PROBE_MODES),
    _probe_quantity("probe-b", "b", PROBE_MODES),
    # tight tier: the candidate's optimum against lme4's true optimum
    _scalar("m2loglik", "tight", TIGHT_OBJECTIVE, _at_tight, lambda f: f.objective),
    _scalar("loglik", "tight", TIGHT_OBJECTIVE.scaled_by(0.5),  # logLik = -(-2logLik)/2
            lambda ref: ref.tight.loglik - _shift(ref) / 2, lambda f: f.loglik),
    _scalar("aic", "tight", TIGHT_OBJECTIVE, lambda ref: ref.tight.aic + _shift(ref),
            lambda f: f.aic),
    _scalar("bic", "tight", TIGHT_OBJECTIVE, lambda ref: ref.tight.bic + _shift(ref),
            lambda f: f.bic),
    _scalar("deviance", "tight", TIGHT_DEVIANCE, lambda ref: ref.tight.deviance,
            lambda f: f.deviance),
    _lmm(named_vector("fixef", "tight", TIGHT_PARAMETER, "fixef", lambda ref: ref.tight),
         LMM_TIGHT_PARAMETER),
    _lmm(named_vector("theta", "tight", TIGHT_PARAMETER, "theta", lambda ref: ref.tight),
         LMM_TIGHT_PARAMETER),
    _lmm(Quantity("ranef", "tight", TIGHT_RANEF, lambda ref: _ranef(ref.tight),
                  lambda out, _ref: _ranef(candidate_fit(out))), LMM_TIGHT_PARAMETER),
    Quantity("sigma", "tight", LMM_TIGHT_PARAMETER, lambda ref: Measure.of(ref.tight.sigma),
             lambda out, _ref: Measure.of(candidate_fit(out).sigma),
             methods=frozenset({"lmer"})),
    # default tier: no worse than glmer() with default settings
    _lmm(_scalar("default-m2loglik", "default", DEFAULT_OBJECTIVE, _default_point,
                 lambda f: f.objective), LMM_DEFAULT_OBJECTIVE),
    named_vector("default-fixef", "default", DEFAULT_FIXEF, "fixef", lambda ref: ref.default),
    named_vector("default-theta", "default", DEFAULT_THETA, "theta", lambda ref: ref.default),
)


@dataclass(frozen=True)
class ResultQuantity(Quantity):
    """A result of a glmer fit beyond its estimates (:mod:`parity.result_quantities`), at
    lme4's tight parameters (``at_reference``, the probe tier) or at the candidate's optimum;
    it reads the candidate's fit also in the probe tier (``needs_fit``)."""

    extract: Any = None
    at_reference: bool = False
    needs_fit: bool = True

    def compare(self, case: str, ref: VariantReference, out: CandidateOutput) -> Row:
        return result_quantities.compare_result(self.name, self.tier, self.tolerance_for(ref),
                                                self.extract, self.at_reference, case, ref, out)


def _unread(*_args: Any) -> Measure:  # pragma: no cover - ResultQuantity.compare reads both
    raise NotImplementedError("a result quantity reads both sides in compare()")


def _results(at_reference: bool) -> tuple[ResultQuantity, ...]:
    tier = "probe" if at_reference else "tight"
    return tuple(
        ResultQuantity(f"probe-{name}" if at_reference else name, tier,
                       at_params if at_reference else at_optimum, _unread, _unread,
                       methods=frozenset({"glmer", "lmer"}), extract=extract,
                       at_reference=at_reference,
                       by_method=(("lmer", result_quantities.LMM_AT_PARAMS),)
                       if at_reference and name != "summary" else ())
        for name, extract, at_params, at_optimum in result_quantities.SPECS)


#: the results of a glmer fit: at lme4's parameters (probe tier), then at the optimum
REGISTRY = (*REGISTRY, *_results(True), *_results(False))

_names = [q.name for q in REGISTRY]
if len(set(_names)) != len(_names):  # pragma: no cover - a registry edit mistake
    raise RuntimeError("two quantities of one name in the registry")


def quantities(tiers: Sequence[str] = TIERS, method: str | None = None,
               registry: Sequence[Quantity] = REGISTRY) -> list[Quantity]:
    """The registry's quantities of these tiers (and this method), in registry order."""
    return [q for q in registry if q.tier in tiers and (method is None or method in q.methods)]


#: The quantity names of each tier, in report order.  Test ids are case-variant-quantity.
QUANTITIES: dict[str, tuple[str, ...]] = {
    tier: tuple(q.name for q in REGISTRY if q.tier == tier) for tier in TIERS}
