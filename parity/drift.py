"""The drift check: a committed fixture against the same case regenerated now.

It guards against an R, lme4 or Matrix upgrade changing what the fixtures claim.  The
regenerated probes are evaluated at the committed probe points, so that they compare at
identical parameters.  The regenerated tight fit is compared as a candidate would be (on its
converged objective), and the regenerated default fit with the committed one under
:data:`DRIFT_QUANTITIES`.
"""

from __future__ import annotations

import numpy as np

from .compare import DEFAULT_FIXEF, DEFAULT_THETA, DRIFT_DEFAULT_OBJECTIVE, TIERS, Row
from .quantities import CandidateOutput, Measure, Quantity, candidate_fit, named_vector, quantities
from .results import CaseReference, VariantReference

#: lme4's default fit, committed against regenerated (the default fit stops early, so its
#: optimiser's path decides where: see DRIFT_DEFAULT_OBJECTIVE's reason).
DRIFT_QUANTITIES: tuple[Quantity, ...] = (
    Quantity("default-fit-m2loglik", "default", DRIFT_DEFAULT_OBJECTIVE,
             lambda ref: Measure.of(ref.default.objective),
             lambda out, _ref: Measure.of(candidate_fit(out).objective)),
    named_vector("default-fit-fixef", "default", DEFAULT_FIXEF, "fixef", lambda ref: ref.default),
    named_vector("default-fit-theta", "default", DEFAULT_THETA, "theta", lambda ref: ref.default),
)


def compare_references(old: CaseReference, new: CaseReference) -> list[Row]:
    """Every drift row of one case: its spec and data, then per variant the probes, the tight
    fit as a candidate, and the default fit."""
    name = old.case.name
    rows: list[Row] = []
    same_case = old.case == new.case
    rows.append(Row(name, "", "data", "case-spec", "pass" if same_case else "fail",
                    note="" if same_case else "the case spec differs"))
    same_data = old.data == new.data
    rows.append(Row(name, "", "data", "data", "pass" if same_data else "fail",
                    note="" if same_data else "R now builds different data for this case"))
    for key, o in old.results.items():
        n = new.results.get(key)
        if n is None:
            rows.append(Row(name, o.label, "data", "results", "fail",
                            note="no regenerated result"))
            continue
        rows += _variant_rows(name, o, n)
    return rows


def _variant_rows(name: str, o: VariantReference, n: VariantReference) -> list[Row]:
    rows: list[Row] = []
    same_points = len(o.probes.points) == len(n.probes.points) and all(
        a.label == b.label and np.array_equal(a.params, b.params)
        for a, b in zip(o.probes.points, n.probes.points, strict=False))
    at_tight = n.probes.by_label("tight")
    tight = n.tight if at_tight is None else n.tight.at_objective(at_tight.objective)
    out = CandidateOutput(fit=tight, probes=list(n.probes.points) if same_points else None)
    for q in quantities(TIERS, None):
        if q.tier == "probe" and not same_points:
            rows.append(Row(name, o.label, "probe", q.name, "fail",
                            note="regenerated probes are not at the committed points"))
        else:
            rows.append(q.compare(name, o, out))
    default = CandidateOutput(fit=n.default)
    rows += [q.compare(name, o, default) for q in DRIFT_QUANTITIES]
    return rows
