"""The compiled search for one vector-valued term (glmm/csrc/block.c,
glmm/objectives/block_term.py) against numpy's BlockedObjective: the same F and exact
gradient at given parameters (two implementations of the formulas of
glmm/objectives/pirls.py and gradient.py, each from a cold PIRLS start), and the same
optimum reached by the same number of search evaluations.  lme4's values for the corpus case
are the parity suite's (contraception-slope); here the core is held to numpy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_scalar_core import _case_model, simulated_response

import glmm
from glmm import compiled
from glmm.design.random import numeric_term
from glmm.objectives import blocked
from glmm.objectives.block_term import block_capsule
from glmm.objectives.blocked import BlockedObjective
from glmm.objectives.model import GlmerModel
from parity import fixtures

core = compiled.core
pytestmark = pytest.mark.skipif(core is None, reason="glmm._core was not built")


def _simulated(family: str, p1: int, weights: bool, n: int = 400, nl: int = 25,
               seed: int = 5) -> GlmerModel:
    """One term (1 + x₁ + … | g) of p1 columns, correlated random effects."""
    rng = np.random.default_rng(seed)
    g = np.r_[np.arange(nl), rng.integers(0, nl, n - nl)]
    Xi = np.column_stack([np.ones(n), *(rng.normal(size=n) for _ in range(p1 - 1))])
    X = np.column_stack([np.ones(n), Xi[:, 1] if p1 > 1 else rng.normal(size=n)])
    L = np.tril(rng.normal(0, 0.4, (p1, p1))) + 0.5 * np.eye(p1)
    b = rng.normal(size=(nl, p1)) @ L.T
    o = 0.1 * rng.normal(size=n)
    eta = o + X @ np.array([0.2, 0.3]) + np.einsum("ij,ij->i", Xi, b[g])
    w = rng.integers(1, 5, n).astype(float) if weights else np.ones(n)
    y, fam, mustart = simulated_response(family, eta, w, rng)
    term = numeric_term(g, nl, Xi, slice(0, p1 * (p1 + 1) // 2))
    return GlmerModel(y, np.ones(n), w, o, X, (term,), fam, mustart)


MODELS = {
    "contraception-slope": lambda: _case_model("contraception-slope")[0],
    "Poisson, three columns, weights": lambda: _simulated("poisson", 3, True),
    "binomial, two columns, proportions": lambda: _simulated("binomial", 2, True),
}


def _core_value(m: GlmerModel, nagq: int, capsule: object, theta: np.ndarray,
                beta: np.ndarray) -> tuple[float, np.ndarray]:
    """The core's F and gradient in (θ, β) (nAGQ = 1: R = I, β₀ = 0, so ζ = β) or in θ."""
    k = len(theta)
    if nagq == 0:
        g = np.zeros(k)
        f = core.block_evaluate(capsule, None, None, beta, float(m.response.aic_constant),
                                theta, g)
        return f, g
    g = np.zeros(k + m.p)
    f = core.block_evaluate(capsule, np.eye(m.p), np.zeros(m.p), None,
                            float(m.response.aic_constant), np.r_[theta, beta], g)
    return f, g


@pytest.mark.parametrize("case", MODELS)
@pytest.mark.parametrize("nagq", [0, 1])
def test_core_value_and_gradient_are_numpys(case: str, nagq: int) -> None:
    m = MODELS[case]()
    rng = np.random.default_rng(11)
    beta = np.linalg.lstsq(m.X, m.family.link.linkfun(m.mustart), rcond=None)[0]
    capsule = block_capsule(m, nagq)
    assert capsule is not None
    k = m.ntheta
    for _ in range(4):
        theta = np.where(rng.uniform(size=k) < 0.5, 1.0, 0.3) * rng.uniform(0.2, 1.2, k)
        theta[[0, m.terms[0].p]] = rng.uniform(0.3, 1.5, 2)   # two diagonal entries
        b = beta + rng.normal(0, 0.1, m.p)
        obj = BlockedObjective(m, nagq, b, compiled=False)   # a cold start, as the core's
        f, g = obj.value_and_gradient(theta if nagq == 0 else np.r_[theta, b])
        fc, gc = _core_value(m, nagq, capsule, theta, b)
        # the same converged PIRLS mode twice (the decrement at 1e-20·P leaves the mode at
        # ~1e-9 and F at rounding); the gradient, a first derivative at the mode, at ~1e-9 of
        # its scale; a wrong formula is off by O(1)
        assert fc == pytest.approx(f, rel=1e-12)
        np.testing.assert_allclose(gc, g, rtol=1e-7, atol=1e-7 * max(1.0, np.abs(g).max()))


@pytest.mark.parametrize("case", MODELS)
@pytest.mark.parametrize("nagq", [0, 1])
def test_core_gradient_is_its_criterions(case: str, nagq: int) -> None:
    """The core's gradient against central differences of its own F, each value from a cold
    PIRLS (h = 1e-5·max(1, |x|): error ~h²F‴ + ε·F/h, ~1e-7 of the gradient's scale here),
    independently of numpy's formulas."""
    m = MODELS[case]()
    capsule = block_capsule(m, nagq)
    beta = np.linalg.lstsq(m.X, m.family.link.linkfun(m.mustart), rcond=None)[0]
    theta = np.full(m.ntheta, 0.3)
    theta[[0, m.terms[0].p]] = (0.8, 0.5)
    k = m.ntheta

    def value(x: np.ndarray) -> float:
        return _core_value(m, nagq, capsule, x[:k], x[k:] if nagq else beta)[0]

    x = theta if nagq == 0 else np.r_[theta, beta]
    g = _core_value(m, nagq, capsule, theta, beta)[1]
    fd = np.empty(len(x))
    for i in range(len(x)):
        h = 1e-5 * max(1.0, abs(x[i]))
        e = np.zeros(len(x))
        e[i] = h
        fd[i] = (value(x + e) - value(x - e)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(g).max()))


def _glmer(nagq: int, in_core: bool) -> glmm.GlmerFit:
    """glmer on the corpus's contraception-slope, with the core's search or numpy's."""
    ref = fixtures.load("contraception-slope")
    c = ref.case
    saved = blocked.BlockedObjective.compiled_bfgs
    if not in_core:
        blocked.BlockedObjective.compiled_bfgs = lambda self, R, beta0, tolerances=None: None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", glmm.GlmmWarning)
            return glmm.glmer(c.formula, ref.data.to_pandas(),
                              family=glmm.make_family(c.family, c.link), nAGQ=nagq)
    finally:
        blocked.BlockedObjective.compiled_bfgs = saved


@pytest.mark.parametrize("nagq", [0, 1])
def test_core_search_reaches_numpys_optimum(nagq: int) -> None:
    """The whole fit with the core's search and with numpy's: the same optimum (the paths
    differ by rounding only: ~1e-15 in the final point, measured) in no more evaluations
    (the core's last mode is the fit's: no evaluation in numpy at the optimum)."""
    a, b = _glmer(nagq, True), _glmer(nagq, False)
    assert "compiled" in a.optsummary.optimizer and "compiled" not in b.optsummary.optimizer
    assert a.objective == pytest.approx(b.objective, rel=1e-12)
    # each search stops once its gradient is below BFGS's tolerance, so two paths that part
    # by rounding may end ~1e-7 apart (measured here: ~1e-15); a wrong formula moves the
    # optimum by far more
    np.testing.assert_allclose(a.theta, b.theta, rtol=0, atol=1e-7)
    np.testing.assert_allclose(a.beta, b.beta, rtol=0, atol=1e-7)
    assert a.feval <= b.feval


def test_core_only_where_it_applies() -> None:
    m = _case_model("contraception-slope")[0]
    assert block_capsule(m, 0) is not None and block_capsule(m, 1) is not None
    assert block_capsule(m, 2) is None                           # quadrature: one scalar term
    assert BlockedObjective(m, 1, np.zeros(m.p), compiled=False).compiled_bfgs(
        np.eye(m.p), np.zeros(m.p)) is None
    probit = _simulated("binomial", 2, False)
    probit = GlmerModel(probit.y, probit.n_trials, probit.weights, probit.offset, probit.X,
                        probit.terms, glmm.make_family("binomial", "probit"), probit.mustart)
    assert block_capsule(probit, 1) is None                      # not a canonical pair
    scalar = _case_model("cbpp")[0]
    assert block_capsule(scalar, 1) is None                      # a scalar term


def test_core_refuses_bad_arguments() -> None:
    m = _simulated("poisson", 2, False)
    kind, binary, y, w, ylogy = m.response.core_args
    t = m.terms[0]
    args = [kind, binary, y, w, ylogy, t.codes, np.ascontiguousarray(t.Xi), t.nlevels, 2,
            np.ascontiguousarray(m.X), m.p, m.offset]
    core.block_model(*args)
    bad = list(args)
    bad[5] = t.codes.copy()
    bad[5][3] = t.nlevels
    with pytest.raises(ValueError, match="f: level codes outside"):
        core.block_model(*bad)
    bad = list(args)
    bad[8] = 1
    with pytest.raises(ValueError, match="p1: expected 2 to 16"):
        core.block_model(*bad)
    bad = list(args)
    bad[8] = 3
    with pytest.raises(ValueError, match="Xi"):
        core.block_model(*bad)
    capsule = core.block_model(*args)
    with pytest.raises(ValueError, match="x: expected"):
        core.block_evaluate(capsule, None, None, np.zeros(m.p), 0.0, np.zeros(5), np.zeros(5))
    with pytest.raises(TypeError, match="beta_start"):
        core.block_evaluate(capsule, None, None, None, 0.0, np.ones(3), np.zeros(3))
