"""Run cases through a reference source and a candidate, and collect comparison rows.

With ``jobs > 1`` the cases are spread over that many worker processes (started fresh, so
each has its own R session and its own engine); the rows come back in case order, the same
as with one job.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .candidates import Candidate
from .cases import Case
from .compare import TIERS, Row
from .errors import FixtureError, ParityError
from .quantities import REGISTRY, CandidateOutput, Quantity, quantities
from .results import CaseReference
from .sources import ReferenceSource
from .workers import in_workers


@dataclass
class RunResult:
    """The rows of a run.  ``fixture_errors`` are the malformed fixtures met on the way
    (each also a failing ``reference`` row): the run's input was bad, not a comparison."""

    source: str
    candidate: str
    rows: list[Row] = field(default_factory=list)
    fixture_errors: list[FixtureError] = field(default_factory=list)

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status == "fail"]

    @property
    def compared(self) -> int:
        """How many rows compared something (passed or failed)."""
        return sum(1 for r in self.rows if r.status != "skip")


def compare_variant(ref: CaseReference, key: object, candidate: Candidate,
                    tiers: Iterable[str] = TIERS,
                    registry: Sequence[Quantity] = REGISTRY) -> list[Row]:
    """Every row of one case at one variant (its key, label or Variant).  An error of the
    candidate becomes failing rows; a method the candidate cannot fit, one skipped row."""
    name = ref.case.name
    r = ref.variant(key)
    label = r.variant.label
    wanted = quantities(tuple(tiers), ref.case.method, registry)
    why = candidate.unavailable(ref.case.method)
    if why:
        return [Row(name, label, "candidate", "available", "skip", note=why)]
    out = CandidateOutput()
    errors: dict[str, str] = {}
    with warnings.catch_warnings():  # the rows are the output; a fit's warnings are not
        warnings.simplefilter("ignore")
        if any(q.tier == "probe" for q in wanted):
            try:
                out.probes = candidate.devfun(ref, r.variant,
                                              [p.params for p in r.probes.points])
            except ParityError as exc:
                errors["probe"] = str(exc)
        if any(_needs_fit(q) for q in wanted):
            try:
                out.fit = candidate.fit(ref, r.variant)
            except ParityError as exc:
                errors["fit"] = f"the candidate's fit failed: {exc}"
    rows = []
    for q in wanted:
        error = errors.get("fit" if _needs_fit(q) else "probe")
        if error:
            rows.append(Row(name, label, q.tier, q.name, "fail", note=error))
        elif q.tier == "tight" and candidate.skip_tight:
            rows.append(Row(name, label, q.tier, q.name, "skip", note=candidate.skip_tight))
        else:
            rows.append(q.compare(name, r, out))
    return rows


def _needs_fit(q: Quantity) -> bool:
    """Whether the quantity reads the candidate's fit (every tier but the probes, and the
    results at lme4's parameters, which are computed from the fit)."""
    return q.tier != "probe" or bool(getattr(q, "needs_fit", False))


def selected_variants(case: Case, variants: Iterable[str] | None) -> list[str]:
    """The labels of the case's variants that ``variants`` (labels) selects; all of them
    without a selection."""
    wanted = None if variants is None else set(variants)
    return [v.label for v in case.variants if wanted is None or v.label in wanted]


def run_case(case: Case, source: ReferenceSource, candidate: Candidate,
             tiers: Sequence[str] = TIERS, variants: Iterable[str] | None = None,
             on_step: Callable[[str, bool], None] | None = None) -> RunResult:
    """The rows of one case (see :func:`run`)."""
    step = on_step or (lambda _m, _d: None)
    result = RunResult(source.description, candidate.description)
    labels = selected_variants(case, variants)
    if not labels:
        return result
    step(f"{case.name}: reference", False)
    try:
        ref = source.reference(case)
    except ParityError as exc:
        if isinstance(exc, FixtureError):
            result.fixture_errors.append(exc)
        result.rows.append(Row(case.name, "", "reference", "reference", "fail", note=str(exc)))
        return result
    for label in labels:
        step(f"{case.name} {label}", False)
        result.rows += compare_variant(ref, label, candidate, tiers)
        step(f"{case.name} {label}", True)
    return result


def run(cases: Iterable[Case], source: ReferenceSource, candidate: Candidate,
        tiers: Sequence[str] = TIERS, variants: Iterable[str] | None = None,
        on_step: Callable[[str, bool], None] | None = None, jobs: int = 1) -> RunResult:
    """Compare every case and selected variant (labels; all without a selection).

    ``on_step(label, done)`` is told when a unit of work starts (done=False) and ends
    (done=True): one case at one variant, or with ``jobs > 1`` one whole case.
    """
    cases = list(cases)
    wanted = None if variants is None else tuple(variants)
    result = RunResult(source.description, candidate.description)
    if jobs <= 1 or len(cases) <= 1:
        parts = [run_case(c, source, candidate, tiers, wanted, on_step) for c in cases]
    else:
        parts = _parallel(cases, source, candidate, tuple(tiers), wanted, on_step, jobs)
    for part in parts:
        result.rows += part.rows
        result.fixture_errors += part.fixture_errors
    return result


# -- worker processes -----------------------------------------------------------------------
_worker: dict[str, object] = {}


def _start_worker(source_recipe: tuple, candidate_recipe: tuple) -> None:
    from .candidates import make_candidate
    from .sources import make_source

    _worker["source"] = make_source(*source_recipe)
    _worker["candidate"] = make_candidate(*candidate_recipe)


def _run_in_worker(case: Case, tiers: tuple[str, ...],
                   variants: tuple[str, ...] | None) -> RunResult:
    source, candidate = _worker["source"], _worker["candidate"]
    assert isinstance(source, ReferenceSource) and isinstance(candidate, Candidate)
    return run_case(case, source, candidate, tiers, variants)


def _parallel(cases: list[Case], source: ReferenceSource, candidate: Candidate,
              tiers: tuple[str, ...], variants: tuple[str, ...] | None,
              on_step: Callable[[str, bool], None] | None, jobs: int) -> list[RunResult]:
    step = on_step or (lambda _m, _d: None)
    parts: dict[int, RunResult] = {}
    for i, part in in_workers(_run_in_worker, cases, jobs, tiers, variants,
                              initializer=_start_worker,
                              initargs=(source.recipe, candidate.recipe)):
        parts[i] = part
        step(cases[i].name, True)
    return [parts[i] for i in range(len(cases))]
