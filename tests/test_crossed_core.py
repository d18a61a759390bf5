"""The compiled core's crossed scalar terms (glmm.objectives.crossed.CrossedTerms;
glmm/csrc/crossed.c: PIRLS and R_X, crossed_gradient.c: the exact gradient and the warm start)
against glmm.objectives.pirls and glmm.objectives.gradient, the numpy forms of the same
computations, which test_engine_numerics checks against dense algebra and central differences
and the parity suite against lme4."""

from __future__ import annotations

import numpy as np
import pytest
from test_scalar_core import simulated_response

import glmm
from glmm import compiled
from glmm.design.random import numeric_term
from glmm.linalg.blocked import BlockedCholesky
from glmm.objectives.blocked import BlockedObjective
from glmm.objectives.crossed import CrossedTerms
from glmm.objectives.model import GlmerModel
from glmm.objectives.pirls import PirlsError, PirlsState, pirls, predict
from parity import fixtures

pytestmark = pytest.mark.skipif(compiled.core is None, reason="glmm._core was not built")


@pytest.fixture(autouse=True)
def _quiet_numpy():
    # numpy's PIRLS, called here without the objective around it: exp overflow on a rejected
    # trial step is expected (the objective silences it the same way)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        yield


def _crossed(family: str, slope: bool = False, weights: bool = False, scale: float = 1.0,
             continuous: bool = False, seed: int = 5) -> GlmerModel:
    """Crossed terms (1 | g) + (1 | h) [+ (0 + x | k)] whose levels all meet (a dense
    coupling block), X with a factor column (repeated rows) or a continuous one."""
    rng = np.random.default_rng(seed)
    ng, nh, nk = 30, 8, 5
    g, h = np.repeat(np.arange(ng), nh), np.tile(np.arange(nh), ng)
    n = len(g)
    k = rng.integers(0, nk, n)
    x = rng.normal(size=n)
    z = rng.normal(size=n) if continuous else rng.integers(0, 3, n).astype(float)
    X = np.column_stack([np.ones(n), z, (h % 2).astype(float)])
    eta = scale * (0.2 + 0.3 * z + rng.normal(0, 0.7, ng)[g] + rng.normal(0, 0.5, nh)[h]
                   + (rng.normal(0, 0.4, nk)[k] * x if slope else 0.0))
    w = rng.integers(1, 4, n).astype(float) if weights else np.ones(n)
    y, fam, mustart = simulated_response(family, eta, w, rng)
    terms = [numeric_term(g, ng, np.ones((n, 1)), slice(0, 1)),
             numeric_term(h, nh, np.ones((n, 1)), slice(1, 2))]
    if slope:
        terms.append(numeric_term(k, nk, x[:, None], slice(2, 3)))
    return GlmerModel(y, np.ones(n), w, np.zeros(n), X, tuple(terms), fam, mustart)


def _verbagg() -> GlmerModel:
    ref = fixtures.load("verbagg")
    c = ref.case
    return glmm.glmer(c.formula, ref.data.to_pandas(), family=glmm.make_family(c.family, c.link),
                      nAGQ=0).model


def _assert_same_mode(a: PirlsState, b: PirlsState, joint: bool) -> None:
    # the same converged PIRLS computed twice, with sums in another order: the two may stop
    # one Newton step apart (the last decrement is at 1e-20·P, ‖δu‖ ~ 1e-10·√P), which leaves
    # the mode at ~1e-9 and log|L|², a sum of logs, at rounding; a wrong block is off by O(1)
    np.testing.assert_allclose(a.u, b.u, rtol=0, atol=1e-8)
    np.testing.assert_allclose(a.beta, b.beta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(a.W, b.W, rtol=1e-8, atol=0)
    assert a.drsum == pytest.approx(b.drsum, rel=1e-12)
    assert a.logdet == pytest.approx(b.logdet, rel=1e-11)
    # the factor the gradient and the warm start use: at the same weights the two are the
    # same matrix, so solves and the selected inverse agree to rounding times its condition
    f = BlockedCholesky(a.layouts, a.W, None, None)
    rng = np.random.default_rng(0)
    r = rng.normal(size=len(a.u) + (len(a.beta) if joint else 0))
    if joint:
        assert a.RX is not None and b.RX is not None
        np.testing.assert_allclose(a.RX, b.RX, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(a.factor.solve(r), b.factor.solve(r), rtol=1e-9, atol=1e-10)
    else:
        assert a.RX is None
        np.testing.assert_allclose(a.factor.solve(r), f.solve(r), rtol=1e-9, atol=1e-10)
    for va, vb in zip(a.factor.inverse_times_rows(a.layouts),
                      b.factor.inverse_times_rows(b.layouts), strict=True):
        np.testing.assert_allclose(va, vb, rtol=1e-8, atol=1e-11)


MODELS = {
    "binary": lambda: _crossed("binomial"),
    "proportions, weights": lambda: _crossed("binomial", weights=True),
    "counts, slope term": lambda: _crossed("poisson", slope=True, weights=True),
    "large counts, clamped form": lambda: _crossed("poisson", scale=3.0),
    "no repeated rows of X": lambda: _crossed("binomial", continuous=True),
}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("joint", [True, False])
def test_core_pirls_equals_numpy_pirls(name: str, joint: bool) -> None:
    m = MODELS[name]()
    crossed = CrossedTerms.of(m)
    assert crossed is not None
    beta = np.array([0.1, 0.2, -0.1])
    for theta in (np.array([0.9, 0.5, 0.3]), np.array([0.2, 1.4, -0.6])):
        theta = theta[:m.ntheta]
        a = crossed.pirls(theta, beta, np.zeros(m.q), joint)
        b = pirls(m, theta, beta, np.zeros(m.q), joint)
        _assert_same_mode(a, b, joint)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("joint", [True, False])
def test_core_prediction_equals_numpy_prediction(name: str, joint: bool) -> None:
    """The warm start (the mode's first-order prediction at nearby parameters), each from its
    own mode at the same θ (modes that agree to ~1e-9: the prediction is linear in them)."""
    m = MODELS[name]()
    crossed = CrossedTerms.of(m)
    theta = np.array([0.9, 0.5, 0.3])[:m.ntheta]
    beta = np.array([0.1, 0.2, -0.1])
    a = crossed.pirls(theta, beta, np.zeros(m.q), joint)
    b = pirls(m, theta, beta, np.zeros(m.q), joint)
    new_theta = theta + np.array([0.05, -0.03, 0.02])[:m.ntheta]
    new_beta = None if joint else beta + np.array([0.02, -0.01, 0.03])
    got = crossed.predict(a, theta, new_theta, a.beta, new_beta)
    want = predict(m, b, theta, new_theta, b.beta, new_beta)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-8)
    assert not np.allclose(got[0], a.u, atol=1e-4)   # it moved


@pytest.mark.parametrize("name", MODELS)
def test_core_rx_equals_numpy_rx(name: str) -> None:
    """lme4's R_X at the weights of a u-only mode (the whitening of nAGQ = 1), against the
    numpy blocked factor of the joint matrix at the same weights: rounding only."""
    m = MODELS[name]()
    theta = np.array([0.9, 0.5, 0.3])[:m.ntheta]
    st = pirls(m, theta, np.array([0.1, 0.2, -0.1]), np.zeros(m.q), False)
    want = BlockedCholesky(st.layouts, st.W, m.coupling, m.fixed_blocks(st.layouts, st.W)).RX
    np.testing.assert_allclose(CrossedTerms.of(m).rx(theta, st.W), want, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("nagq", [0, 1])
def test_core_gradient_equals_numpy_gradient(name: str, nagq: int) -> None:
    """The exact gradient (glmm.objectives.crossed.CrossedTerms.gradient against
    glmm.objectives.gradient's numpy form, each at its own PIRLS mode), off the optimum so that
    every part of it is far from 0."""
    m = MODELS[name]()
    beta = np.array([0.1, 0.2, -0.1])
    for theta in (np.array([0.9, 0.5, 0.3]), np.array([0.2, 1.4, -0.6])):
        p = np.r_[theta[:m.ntheta], beta] if nagq else theta[:m.ntheta]
        core = BlockedObjective(m, nagq, beta)
        numpy = BlockedObjective(m, nagq, beta, compiled=False)
        ev_c, g_c = core._evaluate(p, gradient=True)
        ev_n, g_n = numpy._evaluate(p, gradient=True)
        assert ev_c.state.core is not None and ev_n.state.core is None
        # the modes agree to ~1e-9 (test_core_pirls_equals_numpy_pirls), and the gradient, a
        # first derivative there, to ~1e-9 of its scale; a wrong term is off by O(1)
        assert g_c is not None and g_n is not None
        np.testing.assert_allclose(g_c, g_n, rtol=0, atol=1e-8 * max(1.0, np.abs(g_n).max()))
        assert ev_c.objective == pytest.approx(ev_n.objective, rel=1e-12)


@pytest.mark.parametrize("nagq", [0, 1])
def test_core_objective_equals_numpy_on_verbagg(nagq: int) -> None:
    """F and its exact gradient at the fixture's probe points, with PIRLS in the core and in
    numpy (the rest of the evaluation is the same code)."""
    m = _verbagg()
    ref = fixtures.load("verbagg")
    assert CrossedTerms.of(m) is not None
    for label in ("tight", "away"):
        p = np.asarray(ref.results[nagq].probes.by_label(label).params)
        beta = p[m.ntheta:] if nagq else np.zeros(m.p)
        core = BlockedObjective(m, nagq, beta)
        numpy = BlockedObjective(m, nagq, beta, compiled=False)
        ev_c, g_c = core._evaluate(p, gradient=True)
        ev_n, g_n = numpy._evaluate(p, gradient=True)
        assert g_c is not None and g_n is not None
        assert ev_c.objective == pytest.approx(ev_n.objective, rel=1e-12)
        np.testing.assert_allclose(g_c, g_n, rtol=0, atol=1e-8 * max(1.0, np.abs(g_n).max()))
        _assert_same_mode(ev_c.state, ev_n.state, nagq == 0)


def test_core_applies_only_to_dense_crossed_scalar_terms() -> None:
    # (glmm.objectives.crossed.CrossedTerms.of: where it is None, the numpy forms compute)
    assert CrossedTerms.of(_verbagg()) is not None
    m = _crossed("binomial")
    one = GlmerModel(m.y, m.n_trials, m.weights, m.offset, m.X, m.terms[:1], m.family,
                     m.mustart)
    assert CrossedTerms.of(one) is None           # one term: glmm.objectives.scalar_term
    probit = GlmerModel(m.y, m.n_trials, m.weights, m.offset, m.X, m.terms,
                        glmm.binomial(link="probit"), m.mustart)
    assert CrossedTerms.of(probit) is None                    # not a canonical pair
    rng = np.random.default_rng(2)
    n = 2000                                             # 400 × 50 levels, rarely meeting
    g, h = rng.integers(0, 400, n), rng.integers(0, 50, n)
    g[:400], h[:50] = np.arange(400), np.arange(50)
    sparse = GlmerModel(np.ones(n), np.ones(n), np.ones(n), np.zeros(n), np.ones((n, 1)),
                        (numeric_term(g, 400, np.ones((n, 1)), slice(0, 1)),
                         numeric_term(h, 50, np.ones((n, 1)), slice(1, 2))), glmm.poisson(),
                        np.ones(n))
    assert sparse.coupling.sparse and CrossedTerms.of(sparse) is None
    x = np.column_stack([np.ones(m.n), np.arange(m.n) % 3.0])
    vector = GlmerModel(m.y, m.n_trials, m.weights, m.offset, m.X,
                        (m.terms[0], numeric_term(m.terms[1].codes, 8, x, slice(1, 4))), m.family,
                        m.mustart)
    assert CrossedTerms.of(vector) is None                    # a vector term


def test_core_pirls_failures_are_pirls_errors() -> None:
    m = _crossed("binomial")
    with pytest.raises(PirlsError, match="not finite at the starting point"):
        CrossedTerms.of(m).pirls(np.array([np.nan, 0.5]), np.zeros(3), np.zeros(m.q), True)


def test_core_pirls_rejects_bad_arrays() -> None:
    m = _crossed("binomial")
    kind, binary, y, w, ylogy = m.response.core_args
    n, q1, q2, p = m.n, 30, 8, 3
    codes = tuple(t.codes for t in m.terms)
    groups = np.zeros(n, dtype=np.int64)
    cells = tuple((t.codes, np.arange(t.nlevels), np.zeros(t.nlevels, dtype=np.int64))
                  for t in m.terms)

    def model(codes=codes, nlevels=(30, 8), cells=cells) -> object:
        # every observation on X's first row: a valid (if wrong) description of X
        return compiled.core.crossed_model(kind, binary, y, w, ylogy, codes, (None, None),
                                           nlevels, p, groups, np.ones((1, p)), cells)

    def pirls(terms: object, nu: int = q1 + q2, theta: tuple = (0.5, 0.5)) -> None:
        out = [np.empty(n) for _ in range(5)]
        compiled.core.crossed_pirls(terms, theta, True, np.zeros(n), np.zeros(nu), np.zeros(p),
                                    *out, np.empty(q1), np.empty((q1, q2 + p)),
                                    np.empty((q2 + p, q2 + p)))

    pirls(model())
    with pytest.raises(ValueError, match=r"codes: values outside \[0, 7\)"):
        model(nlevels=(30, 7))
    with pytest.raises(TypeError, match="tuples of 2 to"):
        model(codes=codes[:1])
    with pytest.raises(TypeError, match=r"a \(cell, level, row\) tuple per term"):
        model(cells=(cells[0], cells[1][:2]))
    with pytest.raises(ValueError, match="u: expected 38"):
        pirls(model(), nu=q1 + q2 + 1)
    with pytest.raises(TypeError, match="theta: a tuple of 2 floats"):
        pirls(model(), theta=(0.5,))
    with pytest.raises(ValueError, match="PyCapsule"):
        pirls(object())


def test_coupling_pairs_reject_bad_patterns() -> None:
    # the sparse coupling block's pair loops (glmm.linalg.blocked, with the core) check their
    # pattern
    core = compiled.core
    rows, order = np.array([0, 1, 1]), np.array([0, 2, 1])
    a, S = np.ones(3), np.zeros((2, 2))
    core.coupling_outer(np.array([0, 2, 3]), order, rows, 2, a, a, S, 2)
    # level 0 holds entries 0 and 2 (rows 0, 1), level 1 entry 1 (row 1): every pair at a level
    np.testing.assert_array_equal(S, -np.array([[1.0, 1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="colptr: not increasing"):
        core.coupling_outer(np.array([0, 3, 2, 3]), order, rows, 2, a, a, S, 2)
    with pytest.raises(ValueError, match="colptr: must run from 0 to nnz"):
        core.coupling_outer(np.array([0, 2, 2]), order, rows, 2, a, a, S, 2)
    with pytest.raises(ValueError, match=r"rows: values outside \[0, 2\)"):
        core.coupling_gather(np.array([0, 2, 3]), order, np.array([0, 2, 1]), 2, a, S,
                             np.empty(3))
    with pytest.raises(ValueError, match="S: too small"):
        core.coupling_outer(np.array([0, 2, 3]), order, rows, 2, a, a, np.zeros(3), 2)


def _model_args(m: GlmerModel) -> list:
    """crossed_model's arguments for a model, as glmm.objectives.crossed.CrossedTerms passes them,
    with every observation on X's first row (a valid, if wrong, description of X)."""
    kind, binary, y, w, ylogy = m.response.core_args
    p = m.p
    codes = tuple(t.codes.copy() for t in m.terms)
    cells = tuple((t.codes.copy(), np.arange(t.nlevels), np.zeros(t.nlevels, dtype=np.int64))
                  for t in m.terms)
    return [kind, binary, y, w, ylogy, codes, (None, None), tuple(t.nlevels for t in m.terms),
            p, np.zeros(m.n, dtype=np.int64), np.ones((1, p)), cells]


def _pirls_at(model: object, m: GlmerModel) -> tuple:
    q1, q2, p = m.terms[0].nlevels, m.q - m.terms[0].nlevels, m.p
    u, out = np.zeros(m.q), [np.empty(m.n) for _ in range(5)]
    status = compiled.core.crossed_pirls(model, (0.5, 0.5), True, np.zeros(m.n), u,
                                         np.zeros(p), *out, np.empty(q1),
                                         np.empty((q1, q2 + p)), np.empty((q2 + p, q2 + p)))
    return status, u, out


def test_core_refuses_what_crashed_it() -> None:
    """Arguments that made the crossed core read or write outside its arrays (found by
    test_core_fuzz; each in a forked child, so that a crash fails this test alone)."""
    from test_core_fuzz import in_child
    m = _crossed("binomial")
    core = compiled.core

    def model(**change: object) -> object:
        args = _model_args(m)
        for k, v in change.items():
            args[{"nlevels": 7, "p": 8}[k]] = v
        return core.crossed_model(*args)

    # the model's index arrays changed after it was built: it read them through the
    # caller's buffers, checked once; it now holds its own copies, and gives what it gave
    args = _model_args(m)
    before = _pirls_at(core.crossed_model(*args), m)

    def changed_after() -> None:
        args = _model_args(m)
        built = core.crossed_model(*args)
        args[5][0][:] = 10**9
        args[9][:] = -(2**40)
        args[11][1][0][:] = 2**40
        after = _pirls_at(built, m)
        assert after[0] == before[0]
        np.testing.assert_array_equal(after[1], before[1])   # the same computation
    assert in_child(changed_after) == "returned"
    # negative nlevels made every code pass the (unsigned) range check
    assert in_child(lambda: model(nlevels=(-1, 8))).startswith(
        "ValueError: nlevels: expected a size in [0, ")
    # nlevels whose byte counts wrap modulo 2⁶⁴ matched u, D and Bt of 38, 30 and 30 × 11
    assert in_child(lambda: _pirls_at(model(nlevels=(30 + 2**61, 8)), m)).startswith(
        "ValueError: nlevels: expected a size in [0, ")
    # crossed_rx allocates the joint factor from the declared sizes (checked: q1·m overflows
    # no size), and says so when that is too much
    assert in_child(lambda: core.crossed_rx(model(nlevels=(2**59, 8)), (0.5, 0.5),
                                            np.ones(m.n), np.empty((3, 3)))) == \
        f"MemoryError: crossed_rx: no memory for the model's joint factor ({2**59} x 11 and " \
        "11 x 11)"


def test_core_checks_the_cells_against_the_codes() -> None:
    # a cell whose level or row of X is not its observations': the sums of C went to the
    # wrong level, silently
    m = _crossed("binomial")
    args = _model_args(m)
    cell, level, row = args[11][1]
    args[11] = (args[11][0], (cell, (level + 1) % len(level), row))
    with pytest.raises(ValueError, match=r"^cells: term 1's observation 0 \(level 0, row 0 "
                                         r"of Xg\) is in cell 0, at level 1 and row 0$"):
        compiled.core.crossed_model(*args)


def test_coupling_refuses_what_crashed_it() -> None:
    from test_core_fuzz import in_child
    core = compiled.core
    rows, order, colptr = np.array([0, 1, 1]), np.array([0, 2, 1]), np.array([0, 2, 3])
    a, S = np.ones(3), np.zeros((2, 2))
    # out over the pattern's entries: their values were overwritten while in use
    assert in_child(lambda: core.coupling_gather(colptr, order, rows, 2, a, S,
                                                 order.view(np.float64))) == \
        "ValueError: out and order share memory, and the call writes out"
    # a negative q2 let any row pass the (unsigned) range check
    assert in_child(lambda: core.coupling_outer(colptr, order, np.array([0, 1, 10**9]), -1,
                                                a, a, S, 0)).startswith(
        "ValueError: q2: expected a size in [0, ")
    # no offsets at all: a SystemError (an error return without an exception)
    with pytest.raises(ValueError, match=r"^colptr: expected q1 \+ 1 ≥ 1 offsets, got none$"):
        core.coupling_outer(np.zeros(0, dtype=np.int64), order, rows, 2, a, a, S, 2)
    with pytest.raises(ValueError, match=r'^model: expected the PyCapsule "glmm._core'):
        core.crossed_rx(datetime_capsule(), (0.5, 0.5), np.ones(3), np.empty((1, 1)))


def datetime_capsule() -> object:
    """A PyCapsule of another kind (the datetime module's C API)."""
    import datetime
    return datetime.datetime_CAPI
