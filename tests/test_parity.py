"""The parity suite: every corpus case × nAGQ × quantity, against lme4's reference.

The candidate is chosen as by ``python -m parity run``: the glmm engine when it exists, else
live lme4 against the fixtures when R loads (the same-version check), else the fixtures'
self-consistency.  A quantity a candidate cannot give (the self-check has no devfun away
from its own optimum) is skipped with the reason.
"""

from __future__ import annotations

import pytest

from parity.cases import CORPUS
from parity.compare import QUANTITIES, TIERS

PARAMS = [
    pytest.param(case.name, k, q, id=f"{case.name}-nAGQ{k}-{q}")
    for case in CORPUS
    for k in case.nAGQ
    for tier in TIERS
    for q in QUANTITIES[tier]
]


@pytest.mark.parametrize(("case", "nAGQ", "quantity"), PARAMS)
def test_parity(parity_rows, case: str, nAGQ: int, quantity: str) -> None:
    rows = [r for r in parity_rows(case, nAGQ) if r.quantity == quantity]
    assert len(rows) == 1, f"expected one row for {quantity}, got {rows}"
    row = rows[0]
    if row.status == "skip":
        pytest.skip(row.note)
    assert row.status == "pass", (
        f"{row.test_id}: max |Δ| {row.max_abs}, max rel {row.max_rel}, bound {row.bound}; "
        f"{row.note}")
