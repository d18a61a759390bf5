"""The drift check: a committed fixture against the same case regenerated now.

It guards against an R, lme4 or Matrix upgrade changing what the fixtures claim.  The
regenerated probes are evaluated at the committed probe points, so that they compare at
identical parameters.
"""

from __future__ import annotations

import numpy as np

from .compare import Row, compare_default, compare_default_fits, compare_probes, compare_tight
from .results import CaseReference


def compare_references(old: CaseReference, new: CaseReference) -> list[Row]:
    name = old.case.name
    rows: list[Row] = []
    same_case = old.case == new.case
    rows.append(Row(name, -1, "data", "case-spec", "pass" if same_case else "fail",
                    note="" if same_case else "the case spec differs"))
    same_data = old.data == new.data
    rows.append(Row(name, -1, "data", "data", "pass" if same_data else "fail",
                    note="" if same_data else "R now builds different data for this case"))
    for k, o in old.results.items():
        n = new.results.get(k)
        if n is None:
            rows.append(Row(name, k, "data", "results", "fail", note="no regenerated result"))
            continue
        same_points = len(o.probes.points) == len(n.probes.points) and all(
            a.label == b.label and np.array_equal(a.params, b.params)
            for a, b in zip(o.probes.points, n.probes.points, strict=False))
        if same_points:
            rows += compare_probes(name, o, list(n.probes.points))
        else:
            rows.append(Row(name, k, "probe", "probe-objective", "fail",
                            note="regenerated probes are not at the committed points"))
        rows += compare_tight(name, o, n.tight, reported=True)
        rows += compare_default(name, o, n.tight)
        rows += compare_default_fits(name, o, n.default)
    return rows
