"""Wall time of glmm.glmer and glmm.lmer on the small benchmark models (pytest-benchmark; on
request only).

The side-by-side comparison with lme4 and the Python peers is scripts/bench.py; this keeps a
history of glmm alone (``--benchmark-autosave``, ``--benchmark-compare``).
"""

from __future__ import annotations

import pytest

import glmm
from parity.bench_models import BY_NAME, frame

SMALL = ["cbpp-0", "cbpp-1", "cbpp-25", "grouseticks-1", "contraception-slope-1", "verbagg-0",
         "verbagg-1", "lmer-sleepstudy-REML", "lmer-penicillin-REML"]


@pytest.mark.parametrize("name", SMALL)
def test_fit_time(benchmark, name: str) -> None:
    m = BY_NAME[name]
    df = frame(m)
    if m.method == "lmer":
        fit = benchmark.pedantic(glmm.lmer, args=(m.formula, df), rounds=3, iterations=1,
                                 kwargs={"REML": m.REML})
    else:
        fam = glmm.make_family(m.family, m.link)
        fit = benchmark.pedantic(glmm.glmer, args=(m.formula, df), rounds=3, iterations=1,
                                 kwargs={"family": fam, "nAGQ": m.nAGQ})
    assert fit.converged
