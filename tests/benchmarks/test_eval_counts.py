"""The evaluation-count guard: deterministic, so CI can hold the line on optimiser cost
without timing anything.  A change that needs more objective evaluations on a benchmark model
than the recorded count + 10% fails; lower the record (eval_counts.json) when a change wins.

The simulated 1e5-row models are guarded too (about 0.3 s and 2.5 s a fit); the 1e6-row Poisson
and LMM are not (1–4 s and 400 MB in every test run).  The lmer rows count the compiled
search's evaluations and the final one in numpy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import glmm
from parity.bench_models import BY_NAME, frame

RECORD = json.loads((Path(__file__).with_name("eval_counts.json")).read_text())["counts"]
#: Headroom over the record: BFGS's path can move by an iteration or two with the last bits
#: of the objective (another BLAS, another CPU), which is not a regression.
HEADROOM = 1.10


@pytest.mark.parametrize("name", sorted(RECORD))
def test_evaluations_within_record(name: str) -> None:
    m = BY_NAME[name]
    if m.method == "lmer":
        fit = glmm.lmer(m.formula, frame(m), REML=m.REML)
    else:
        fit = glmm.glmer(m.formula, frame(m), family=glmm.make_family(m.family, m.link),
                         nAGQ=m.nAGQ)
    limit = math.ceil(RECORD[name] * HEADROOM)  # at least one evaluation of slack
    assert fit.feval <= limit, f"{name}: {fit.feval} evaluations, record {RECORD[name]}"
