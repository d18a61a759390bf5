"""The parity suite: every corpus case × variant × quantity, against lme4's reference.

The candidate is chosen as by ``python -m parity run``: the glmm engine when it exists, else
live lme4 against the fixtures when R loads (the same-version check), else the fixtures'
self-consistency.  A quantity a candidate cannot give (the self-check has no devfun away
from its own optimum) is skipped with the reason.  The quantities are the registry's
(parity.quantities), so a quantity added there is a test here too.
"""

from __future__ import annotations

import pytest

from parity.cases import CORPUS
from parity.plugin import check_row
from parity.quantities import quantities

PARAMS = [
    pytest.param(case.name, v.label, q.name, id=f"{case.name}-{v.label}-{q.name}")
    for case in CORPUS
    for v in case.variants
    for q in quantities(method=case.method)
]


@pytest.mark.parametrize(("case", "variant", "quantity"), PARAMS)
def test_parity(parity_rows, case: str, variant: str, quantity: str) -> None:
    check_row(parity_rows(case, variant), quantity)
