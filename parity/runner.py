"""Run cases through a reference source and a candidate, and collect comparison rows."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .candidates import Candidate
from .cases import Case
from .compare import QUANTITIES, TIERS, Row, compare_default, compare_probes, compare_tight
from .errors import FixtureError, ParityError
from .results import CaseReference
from .sources import ReferenceSource


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


def compare_nagq(ref: CaseReference, nAGQ: int, candidate: Candidate,
                 tiers: Iterable[str] = TIERS) -> list[Row]:
    """All rows of one case at one nAGQ.  An error of the candidate becomes failing rows."""
    name = ref.case.name
    r = ref.results[nAGQ]
    tiers = tuple(tiers)
    rows: list[Row] = []
    if "probe" in tiers:
        try:
            probes = candidate.devfun(ref, nAGQ, [p.params for p in r.probes.points])
            rows += compare_probes(name, r, probes)
        except ParityError as exc:
            rows += [Row(name, nAGQ, "probe", q, "fail", note=str(exc))
                     for q in QUANTITIES["probe"]]
    if "tight" in tiers or "default" in tiers:
        try:
            fit = candidate.fit(ref, nAGQ)
        except ParityError as exc:
            rows += [Row(name, nAGQ, tier, q, "fail", note=f"the candidate's fit failed: {exc}")
                     for tier in ("tight", "default") if tier in tiers for q in QUANTITIES[tier]]
            return rows
        if "tight" in tiers:
            if candidate.skip_tight:
                rows += [Row(name, nAGQ, "tight", q, "skip", note=candidate.skip_tight)
                         for q in QUANTITIES["tight"]]
            else:
                rows += compare_tight(name, r, fit)
        if "default" in tiers:
            rows += compare_default(name, r, fit)
    return rows


def run(cases: Iterable[Case], source: ReferenceSource, candidate: Candidate,
        tiers: Iterable[str] = TIERS, nagq: Iterable[int] | None = None,
        on_step: Callable[[str, bool], None] | None = None) -> RunResult:
    """Compare every case and nAGQ.  ``on_step(label, done)`` is told when a unit of work
    (one case at one nAGQ) starts (done=False) and ends (done=True)."""
    step = on_step or (lambda _m, _d: None)
    wanted = None if nagq is None else set(nagq)
    tiers = tuple(tiers)
    result = RunResult(source.description, candidate.description)
    for case in cases:
        step(f"{case.name}: reference", False)
        try:
            ref = source.reference(case)
        except ParityError as exc:
            if isinstance(exc, FixtureError):
                result.fixture_errors.append(exc)
            result.rows.append(Row(case.name, -1, "reference", "reference", "fail", note=str(exc)))
            continue
        for k in ref.results:
            if wanted is not None and k not in wanted:
                continue
            step(f"{case.name} nAGQ={k}", False)
            result.rows += compare_nagq(ref, k, candidate, tiers)
            step(f"{case.name} nAGQ={k}", True)
    return result
