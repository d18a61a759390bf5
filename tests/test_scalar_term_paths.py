"""The numpy scalar-term path (:class:`~glmm.objectives.scalar_term.ScalarTermObjective` with
``compiled=False``: PIRLS, gradient and warm start for G = diag(D)) against the general path
(:class:`~glmm.objectives.blocked.BlockedObjective` with ``compiled=False``: the blocked factor
and the general gradients) on every corpus case with one scalar term, at nAGQ 0 and 1.  The scalar
path serves the models the compiled core does not (non-canonical pairs such as probit and
cloglog, non-integer counts, no compiler) and nAGQ > 1, which the general path does not
compute; these two independent computations of F, ∇F and the mode must agree."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import glmm
from glmm.objectives.blocked import BlockedObjective
from glmm.objectives.model import GlmerModel
from glmm.objectives.scalar_term import ScalarTermObjective
from parity import fixtures

#: the corpus cases whose model has one scalar random-effects term
CASES = ["bacteria", "cbpp", "cbpp-cloglog", "cbpp-probit", "cbpp-prop",
         "contraception-urban-district", "mmmec", "seed"]


def _fit(case: str, nagq: int) -> glmm.GlmerFit:
    ref = fixtures.load(case)
    c = ref.case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the corpus fits' own (singular fits and the like)
        return glmm.glmer(c.formula, ref.data.to_pandas(),
                          family=glmm.make_family(c.family, c.link), nAGQ=nagq)


def _points(fit: glmm.GlmerFit, nagq: int) -> list[np.ndarray]:
    """The optimum, and points on a path away from it (θ up to 30% off, β shifted)."""
    opt = fit.theta if nagq == 0 else np.r_[fit.theta, fit.beta]
    shift = np.r_[0.3 * np.maximum(fit.theta, 0.1), np.zeros(0 if nagq == 0 else len(fit.beta))]
    if nagq:
        shift[len(fit.theta):] = 0.05
    return [opt, opt + 0.1 * shift, opt + shift, opt - 0.5 * shift]


@pytest.mark.parametrize("nagq", [0, 1])
@pytest.mark.parametrize("case", CASES)
def test_scalar_path_equals_general_path(case: str, nagq: int) -> None:
    fit = _fit(case, nagq)
    m: GlmerModel = fit.model
    assert len(m.terms) == 1 and m.terms[0].p == 1
    scalar = ScalarTermObjective(m, nagq, fit.beta, compiled=False)
    general = BlockedObjective(m, nagq, fit.beta, compiled=False)
    assert not scalar.compiled
    for p in _points(fit, nagq):   # in turn: each evaluation warm-starts from the last
        ev_s, g_s = scalar._evaluate(p, gradient=True)
        ev_g, g_g = general._evaluate(p, gradient=True)
        assert g_s is not None and g_g is not None
        # the same PIRLS iterations (the same steps from the same start, the same stopping
        # rule) by two factorisations, diagonal G against the blocked Cholesky, and two
        # gradient formulas: they agree to rounding, ≤ 1e-12 of the scale on the corpus;
        # 1e-10 leaves room for a different rounding of the last step, and a wrong formula is
        # off by O(1)
        assert ev_s.objective == pytest.approx(ev_g.objective, rel=1e-10)
        for a, b in ((ev_s.u, ev_g.u), (ev_s.beta, ev_g.beta), (g_s, g_g)):
            scale = max(1.0, float(np.max(np.abs(b))))
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * scale)
