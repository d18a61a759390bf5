"""The numerical core against independent computations: the blocked factor against a dense
Cholesky of the explicitly formed G, the Gauss–Hermite rule against normal moments, and
adaptive quadrature against brute-force integration of the same integrand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize

import glmm
from glmm.design.random import numeric_term
from glmm.linalg import blocked as linalg
from glmm.linalg.blocked import BlockedCholesky
from glmm.linalg.coupling import CouplingPattern, TermLayout, distinct_keys, run_starts
from glmm.objectives.blocked import BlockedObjective
from glmm.objectives.ghrule import ghrule
from glmm.objectives.model import GlmerModel, distinct_rows
from glmm.objectives.scalar_term import ScalarTermObjective
from parity import fixtures

# DENSE_TOL, as the comparisons below cite it.  A factor of G = MᵀWM + I (W ∈ [0.1, 2],
# eigenvalues ≥ 1, q ≤ a few hundred, so condition numbers ≲ 1e3) against numpy's dense LAPACK
# on the same matrix: log-determinants agree to rounding (rel/abs 1e-12), solves, inverses and
# R_X to rounding times the condition number (rtol 1e-10, atol 1e-12 for entries near 0).
# A wrong block is off by O(1).


def _dense_Z(layouts: list[TermLayout], n: int) -> np.ndarray:
    blocks = []
    for lay in layouts:
        Zt = np.zeros((n, lay.q))
        for c in range(lay.p):
            Zt[np.arange(n), lay.codes * lay.p + c] = lay.A[:, c]
        blocks.append(Zt)
    return np.hstack(blocks)


#: (levels, columns) per term: scalar, vector, crossed scalar, and mixed terms; the last
#: two have a scalar first term with many levels that meet few of the others' levels, so
#: G₂₁ is kept sparse (CouplingPattern), the others keep it dense
SHAPES = [((7, 1),), ((6, 2),), ((9, 1), (4, 1)), ((8, 2), (3, 1), (2, 2)),
          ((50, 1), (20, 1)), ((50, 1), (12, 2), (5, 1))]


#: the first term nested in the second (each level of the first within one level of the
#: second, so the Schur complement's leading block is diagonal: CouplingPattern.lead); the
#: last two couple densely, one with a vector first term
NESTED = [((40, 1), (8, 1)), ((40, 1), (8, 1), (3, 1)), ((40, 1), (8, 1), (5, 2)),
          ((40, 1), (8, 1), (30, 1)), ((10, 1), (2, 1)), ((10, 2), (2, 1))]


def _random_problem(shape, n: int, seed: int, intercepts: bool = False,
                    nested: bool = False):
    """Random terms (every level used) and weights; G formed densely as the reference.
    ``intercepts``: the scalar terms are (1 | g) terms, A = θ in every row, marked as such
    (TermLayout.constant) so that the factor takes its per-level-sum path.  ``nested``: the
    second term's level is the first's modulo its number of levels."""
    rng = np.random.default_rng(seed)
    layouts = []
    for k, (nl, p) in enumerate(shape):
        codes = np.r_[np.arange(nl), rng.integers(0, nl, n - nl)]
        if nested and k == 1:
            codes = layouts[0].codes % nl
        if intercepts and p == 1:
            theta = float(rng.uniform(0.3, 2.0))
            layouts.append(TermLayout(codes, nl, np.full((n, 1), theta), constant=theta))
        else:
            layouts.append(TermLayout(codes, nl, rng.normal(size=(n, p))))
    W = rng.uniform(0.1, 2.0, n)
    return rng, layouts, W, BlockedCholesky(layouts, W), _dense_Z(layouts, n)


@pytest.mark.parametrize("intercepts", [False, True])
@pytest.mark.parametrize(("shape", "nested"), [(s, False) for s in SHAPES]
                         + [(s, True) for s in NESTED])
def test_blocked_cholesky_matches_dense(shape, nested: bool, intercepts: bool) -> None:
    rng, _, W, f, M = _random_problem(shape, 60, len(shape) * 10 + shape[0][1], intercepts,
                                      nested)
    assert f._lead > 0 or not nested   # the nested shapes take the blockwise path
    G = M.T @ (W[:, None] * M) + np.eye(M.shape[1])
    sign, logdet = np.linalg.slogdet(G)
    # DENSE_TOL: the same matrix factored two ways
    assert sign > 0 and f.logdet == pytest.approx(logdet, rel=1e-12, abs=1e-12)
    r = rng.normal(size=(M.shape[1], 3))
    np.testing.assert_allclose(f.solve(r), np.linalg.solve(G, r), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f.solve(r[:, 0]), np.linalg.solve(G, r[:, 0]), rtol=1e-10,
                               atol=1e-12)


def _check_joint_factor(rng: np.random.Generator, layouts: list[TermLayout], W: np.ndarray,
                        M: np.ndarray) -> BlockedCholesky:
    """The factor of the joint matrix A = [G, C; Cᵀ, F] against a dense A: log|G|, solves
    with A, and R_X as the Cholesky factor of F − CᵀG⁻¹C."""
    n = len(W)
    X = np.c_[np.ones(n), rng.normal(size=(n, 2))]
    C, F = M.T @ (W[:, None] * X), X.T @ (W[:, None] * X)
    f = BlockedCholesky(layouts, W, fixed=(C, F))
    G = M.T @ (W[:, None] * M) + np.eye(M.shape[1])
    A = np.block([[G, C], [C.T, F]])
    # DENSE_TOL: the same matrices factored two ways
    assert f.logdet == pytest.approx(np.linalg.slogdet(G)[1], rel=1e-12, abs=1e-12)
    r = rng.normal(size=(A.shape[0], 3))
    np.testing.assert_allclose(f.solve(r), np.linalg.solve(A, r), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f.solve(r[:, 0]), np.linalg.solve(A, r[:, 0]), rtol=1e-10,
                               atol=1e-12)
    RX = np.linalg.cholesky(F - C.T @ np.linalg.solve(G, C)).T
    assert f.RX is not None
    np.testing.assert_allclose(f.RX, RX, rtol=1e-10, atol=1e-12)
    _check_selected_inverse(f, layouts, np.linalg.solve(G, M.T))   # still G's
    return f


def _check_selected_inverse(f: BlockedCholesky, layouts: list[TermLayout],
                            Ginv_M: np.ndarray) -> None:
    """f.inverse_times_rows against the dense G⁻¹Mᵀ (q × n)."""
    n = Ginv_M.shape[1]
    v = f.inverse_times_rows(layouts)
    start = 0
    for lay, vt in zip(layouts, v, strict=True):
        for c in range(lay.p):
            want = Ginv_M[start + lay.codes * lay.p + c, np.arange(n)]
            # DENSE_TOL: G⁻¹'s entries from the factor and from a dense inverse
            np.testing.assert_allclose(vt[:, c], want, rtol=1e-10, atol=1e-12)
        start += lay.q


@pytest.mark.parametrize("intercepts", [False, True])
@pytest.mark.parametrize(("shape", "nested"), [(s, False) for s in SHAPES]
                         + [(s, True) for s in NESTED])
def test_blocked_cholesky_joint_matches_dense(shape, nested: bool, intercepts: bool) -> None:
    # the fixed effects as the last block: one factor for the (u, β) system and R_X
    rng, layouts, W, _, M = _random_problem(shape, 60, len(shape) * 10 + shape[0][1],
                                            intercepts, nested)
    _check_joint_factor(rng, layouts, W, M)


@pytest.mark.parametrize("max_pairs", [0, CouplingPattern.MAX_PAIRS])
def test_blocked_cholesky_joint_sparse_numpy_paths(monkeypatch, max_pairs: int) -> None:
    # without the compiled core, a sparse coupling block's products in numpy: by pairs
    # (bincount) up to MAX_PAIRS, beyond by a sparse matrix product
    monkeypatch.setattr(linalg, "_core", None)
    monkeypatch.setattr(CouplingPattern, "MAX_PAIRS", max_pairs)
    rng, layouts, W, _, M = _random_problem(SHAPES[-1], 60, 4)
    f = _check_joint_factor(rng, layouts, W, M)
    assert f.sparse and (f._pattern.pairs is None) == (max_pairs == 0)


def test_blocked_cholesky_sparse_product_path(monkeypatch) -> None:
    # beyond MAX_PAIRS, S comes from a sparse matrix product instead of the pair sums
    monkeypatch.setattr(linalg, "_core", None)
    monkeypatch.setattr(CouplingPattern, "MAX_PAIRS", 0)
    rng, _, W, f, M = _random_problem(SHAPES[-1], 60, 3)
    assert f.sparse and f._pattern.pairs is None
    G = M.T @ (W[:, None] * M) + np.eye(M.shape[1])
    # DENSE_TOL: the same matrix factored two ways
    assert f.logdet == pytest.approx(np.linalg.slogdet(G)[1], rel=1e-12)
    r = rng.normal(size=M.shape[1])
    np.testing.assert_allclose(f.solve(r), np.linalg.solve(G, r), rtol=1e-10, atol=1e-12)


def test_coupling_pattern_sparse_only_when_sparse() -> None:
    sparse = [_random_problem(shape, 60, 0)[3].sparse for shape in SHAPES if len(shape) > 1]
    assert sparse == [False, False, True, True]


@pytest.mark.parametrize(("n", "size"), [(1000, 50), (100_000, 100_000), (10, 10_000_000),
                                         (0, 5), (7, 1)])
def test_distinct_keys_is_numpys_unique(n: int, size: int) -> None:
    """CouplingPattern's keys by counting (or, for sparse keys, by np.unique): the same
    distinct keys and inverse as np.unique, an independent implementation."""
    keys = np.random.default_rng(n + size).integers(0, size, n)
    unique, inverse = distinct_keys(keys, size)
    want, want_inverse = np.unique(keys, return_inverse=True)
    np.testing.assert_array_equal(unique, want)
    np.testing.assert_array_equal(inverse, want_inverse.ravel())
    assert unique.dtype == want.dtype and inverse.dtype == want_inverse.dtype


def test_blocked_cholesky_never_densifies_z() -> None:
    # 20,000 levels in the first term: the dense G would be 3.2 GB
    rng = np.random.default_rng(1)
    n, nl = 60_000, 20_000
    lay = [TermLayout(rng.integers(0, nl, n), nl, np.ones((n, 1))),
           TermLayout(rng.integers(0, 30, n), 30, np.ones((n, 1)))]
    f = BlockedCholesky(lay, np.ones(n))
    assert f.q1 == nl and f.q2 == 30 and math.isfinite(f.logdet)
    assert f.G21.shape == (30, nl)  # the only dense blocks are q₂ × q₁ and q₂ × q₂


@pytest.mark.parametrize("k", [1, 2, 5, 11, 25, 100])
def test_ghrule_integrates_normal_moments(k: int) -> None:
    z, w = ghrule(k)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    # E z^{2j} = (2j-1)!!; exact for 2j <= 2k-1
    for j in range(0, min(k, 6)):
        assert np.sum(w * z ** (2 * j)) == pytest.approx(math.prod(range(1, 2 * j, 2)), rel=1e-11)
        assert np.sum(w * z ** (2 * j + 1)) == pytest.approx(0.0, abs=1e-10)


def test_ghrule_range() -> None:
    with pytest.raises(ValueError, match="between 1 and 100"):
        ghrule(101)


@pytest.fixture(scope="module")
def cbpp_model() -> GlmerModel:
    df = fixtures.load("cbpp").data.to_pandas()
    s = df["incidence"].to_numpy()
    trials = df["size"].to_numpy(dtype=float)
    X = np.column_stack([np.ones(len(df))] + [(df["period"] == k).to_numpy(dtype=float)
                                              for k in ("2", "3", "4")])
    fam = glmm.binomial()
    term = numeric_term(df["herd"].cat.codes.to_numpy(), 15, np.ones((len(df), 1)), slice(0, 1))
    return GlmerModel(s / trials, trials, trials, np.zeros(len(df)), X, (term,), fam,
                      (s + 0.5) / (trials + 1))


def test_agq_against_brute_force_integration(cbpp_model) -> None:
    """F_AGQ = Σ_j −2 log ∫ exp(−½ devc_j(v)) dv/√(2π), devc_j(v) = v² + Σ_{i∈j} devᵢ(v).

    The integral is done here by adaptive quadrature (scipy.integrate.quad) on the raw
    integrand, with no mode, scale or Gauss–Hermite rule."""
    m = cbpp_model
    theta, beta = 0.8, np.array([-1.4, -1.0, -1.1, -1.6])
    eta_fixed = m.X @ beta
    term = m.terms[0]
    exact = 0.0
    for j in range(term.nlevels):
        rows = term.codes == j

        def devc(v: float, rows=rows) -> float:
            mu = m.family.link.linkinv(eta_fixed[rows] + theta * v)
            return v * v + float(np.sum(m.family.dev_resids(m.y[rows], mu, m.weights[rows])))

        vmin = scipy.optimize.minimize_scalar(devc).x
        d0 = devc(vmin)
        val, _ = scipy.integrate.quad(lambda v, d0=d0: math.exp(-0.5 * (devc(v) - d0)),
                                      vmin - 12, vmin + 12, epsabs=0, epsrel=1e-13, limit=200)
        exact += d0 - 2.0 * math.log(val / math.sqrt(2 * math.pi))
    err = {k: abs(ScalarTermObjective(m, k, beta)(np.r_[theta, beta]) - exact)
           for k in (2, 9, 25)}
    # a k-node rule centred and scaled at the mode is exact for Gaussian-times-polynomial
    # integrands up to degree 2k-1, so the error falls fast with k; with 25 nodes what is
    # left is the rounding of the 15 per-herd sums (~1e-12)
    assert err[25] < 1e-9
    assert err[2] > err[9] > err[25]
    assert err[2] > 1e-4  # the comparison can tell rules apart


@pytest.mark.parametrize(("impl", "nagq"), [(BlockedObjective, 0), (BlockedObjective, 1),
                                            (ScalarTermObjective, 0), (ScalarTermObjective, 1),
                                            (ScalarTermObjective, 25)])
def test_devfun_is_a_pure_function(cbpp_model, impl, nagq: int) -> None:
    obj = impl(cbpp_model, nagq, np.array([-1.4, -1.0, -1.1, -1.6]))
    p = np.array([0.7, -1.4, -1.0, -1.1, -1.6])[:obj.nparams]
    far = np.array([2.0, 1.0, 1.0, 1.0, 1.0])[:obj.nparams]
    first = obj(p)
    obj(far)  # move the warm start far away
    # PIRLS stops at a Newton decrement of 1e-20·P, which leaves ~1e-14 relative in F; lme4's
    # dependence on its starting point is 1e-7 to 6e-4 (docs/objectives.md §3)
    assert obj(p) == pytest.approx(first, rel=1e-11)


@pytest.mark.parametrize("intercepts", [False, True])
@pytest.mark.parametrize(("shape", "nested"), [(s, False) for s in SHAPES]
                         + [(s, True) for s in NESTED])
def test_selected_inverse_rows_match_dense(shape, nested: bool, intercepts: bool) -> None:
    n = 50
    _, layouts, W, f, M = _random_problem(shape, n, 7 + len(shape), intercepts, nested)
    Ginv_M = np.linalg.inv(M.T @ (W[:, None] * M) + np.eye(M.shape[1])) @ M.T  # q × n
    _check_selected_inverse(f, layouts, Ginv_M)


@pytest.mark.parametrize(("nagq", "impl"), [(0, "general"), (1, "general"), (0, "scalar"),
                                            (1, "scalar"), ("agq", "scalar")])
@pytest.mark.parametrize("case", ["cbpp", "grouseticks", "contraception-slope", "verbagg",
                                  "contraception-uncorrelated", "mmmec", "bacteria", "seed",
                                  # non-canonical links (observed weights) and Gamma (κ ≠ 1)
                                  "cbpp-probit", "cbpp-cloglog", "sleepstudy-gamma"])
def test_exact_gradient_against_central_differences(case: str, nagq: int | str,
                                                    impl: str) -> None:
    """The exact gradient (glmm.objectives.gradient: profiled for nAGQ=0, Laplace for nAGQ=1;
    adaptive quadrature for the case's nAGQ > 1; ``scalar``: glmm.objectives.scalar_term's forms of
    all three for one scalar term) against central differences of the objective, at the fixture's
    "away" point (off the optimum, so the gradient is far from zero)."""
    ref = fixtures.load(case)
    c = ref.case
    if nagq == "agq":
        nagq = max(c.nAGQ)
        if nagq <= 1:
            pytest.skip(f"{case} has no nAGQ > 1 fixture")
    if nagq not in c.nAGQ:
        pytest.skip(f"{case} has no nAGQ={nagq} fixture")
    fit = glmm.glmer(c.formula, ref.data.to_pandas(), family=glmm.make_family(c.family, c.link),
                     nAGQ=0)
    one_scalar = len(fit.model.terms) == 1 and fit.model.terms[0].p == 1
    if impl == "scalar" and not one_scalar:
        pytest.skip("ScalarTermObjective is for one scalar term")
    obj = (ScalarTermObjective if impl == "scalar" else BlockedObjective)(fit.model, nagq, fit.beta)
    p = ref.results[nagq].probes.by_label("away").params
    _, g = obj._evaluate(p, gradient=True)
    assert g is not None  # the exact gradient itself, not the central-difference fallback
    h = 1e-4
    fd = np.array([(obj(p + h * e) - obj(p - h * e)) / (2 * h) for e in np.eye(len(p))])
    # central differences: truncation ~h² (2e-7 on cbpp) plus F's ~1e-12 relative dependence
    # on PIRLS's warm start divided by h; together below 1e-6 of the gradient's scale.  A
    # wrong term (a missing leverage or trace part) is O(1).
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-6 * max(1.0, np.max(np.abs(fd))))


def _slope_term_model(family: str) -> GlmerModel:
    """One scalar term on a covariate, (0 + x | g), with prior weights and an offset."""
    rng = np.random.default_rng(11)
    n, nl = 240, 12
    g, x, z = rng.integers(0, nl, n), rng.normal(size=n), rng.normal(size=n)
    g[:nl] = np.arange(nl)
    X = np.column_stack([np.ones(n), z])
    o = 0.1 * rng.normal(size=n)
    eta = o + 0.2 + 0.5 * z + rng.normal(0, 0.7, nl)[g] * x
    if family == "poisson":
        fam, y, w = glmm.poisson(), rng.poisson(np.exp(eta)).astype(float), np.ones(n)
    else:
        fam = glmm.binomial(link="probit")
        w = rng.integers(1, 6, n).astype(float)   # trials, as prior weights
        y = rng.binomial(w.astype(int), 1.0 / (1.0 + np.exp(-eta))) / w
    mustart = (w * y + 0.5) / (w + 1.0) if family != "poisson" else y + 0.1
    return GlmerModel(y, np.ones(n), w, o, X, (numeric_term(g, nl, x[:, None], slice(0, 1)),),
                      fam, mustart)


@pytest.mark.parametrize("family", ["poisson", "binomial-probit"])
@pytest.mark.parametrize("nagq", [0, 1])
def test_scalar_objective_on_a_slope_term(family: str, nagq: int) -> None:
    """(0 + x | g), x ≠ 1, weights and an offset: the scalar-term objective equals the
    general one, F is even in θ, and its exact gradient matches central differences."""
    m = _slope_term_model(family.split("-")[0])
    beta = np.array([0.2, 0.5])
    scalar, general = ScalarTermObjective(m, nagq, beta), BlockedObjective(m, nagq, beta)
    for theta in (0.6, 1.3, 0.0, -0.6):
        p = np.r_[theta, beta][:scalar.nparams]
        # two computations of the same converged PIRLS mode: rounding only
        assert scalar(p) == pytest.approx(general(p), rel=1e-11)
    p = np.r_[0.6, beta][:scalar.nparams]
    q = p.copy()
    q[0] = -0.6
    assert scalar(p) == pytest.approx(scalar(q), rel=1e-11)   # Λ = θI: F(θ) = F(−θ)
    _, g = scalar._evaluate(p, gradient=True)
    assert g is not None
    h = 1e-4
    fd = np.array([(scalar(p + h * e) - scalar(p - h * e)) / (2 * h) for e in np.eye(len(p))])
    # as test_exact_gradient_against_central_differences: truncation ~h², far below 1e-6
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-6 * max(1.0, np.max(np.abs(fd))))


def _two_term_model() -> GlmerModel:
    """Poisson data with a scalar term (20 levels) and a correlated vector term (6 levels)."""
    rng = np.random.default_rng(7)
    n = 300
    g, h, x = rng.integers(0, 20, n), rng.integers(0, 6, n), rng.normal(size=n)
    y = rng.poisson(np.exp(0.2 + 0.3 * x + rng.normal(0, 0.5, 20)[g]
                           + rng.normal(0, 0.3, 6)[h] * (1 + x))).astype(float)
    X = np.column_stack([np.ones(n), x])
    terms = (numeric_term(g, 20, np.ones((n, 1)), slice(0, 1)),
             numeric_term(h, 6, X, slice(1, 4)))
    return GlmerModel(y, np.ones(n), np.ones(n), np.zeros(n), X, terms, glmm.poisson(), y + 0.1)


def test_u_keeping_b_keeps_b() -> None:
    m = _two_term_model()
    u = np.random.default_rng(1).normal(size=m.q)
    old, new = np.array([0.7, 0.5, 0.2, 0.4]), np.array([1.3, 0.9, -0.1, 0.6])
    # b through T(θ)⁻¹T(θ_old) per level, a 2 × 2 solve of a well-conditioned T: rounding
    np.testing.assert_allclose(m.b(new, m.u_keeping_b(u, old, new)), m.b(old, u),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("joint", [False, True])
def test_mode_prediction_is_first_order(joint: bool) -> None:
    """predict() is the implicit-function (first-order) step: its error against the mode PIRLS
    converges to at the new parameters falls ~4× when the move halves."""
    from glmm.objectives.pirls import pirls, predict

    m = _two_term_model()
    theta0, beta0 = np.array([0.5, 0.3, 0.1, 0.2]), np.array([0.2, 0.3])
    st = pirls(m, theta0, beta0, np.zeros(m.q), joint)
    direction_t, direction_b = np.array([1.0, -0.5, 0.3, 0.4]), np.array([0.5, -1.0])
    errors = []
    for step in (0.02, 0.01):
        theta = theta0 + step * direction_t
        beta = None if joint else beta0 + step * direction_b
        u_pred, b_pred = predict(m, st, theta0, theta, st.beta, beta)
        exact = pirls(m, theta, st.beta if joint else beta, st.u, joint)
        errors.append(np.max(np.abs(np.concatenate([u_pred - exact.u, b_pred - exact.beta]))))
    # second-order remainder: ratio 4 in the limit; a first-order error would give 2
    assert 3.0 < errors[0] / errors[1] < 5.0


@pytest.mark.parametrize("repeated", [True, False])
def test_fixed_blocks_over_cells_match_dense(repeated: bool) -> None:
    # C = ΛᵀZᵀWX and XᵀWX summed over cells of equal (level, row of [X, Xₜ]) against the
    # dense products; with a factor-coded X the cells are fewer than the observations
    rng = np.random.default_rng(11)
    n = 400
    g, h = rng.integers(0, 25, n), rng.integers(0, 5, n)
    x = rng.integers(0, 3, n).astype(float) if repeated else rng.normal(size=n)
    X = np.column_stack([np.ones(n), x, rng.integers(0, 2, n)])
    Xh = np.column_stack([np.ones(n), x])
    terms = (numeric_term(g, 25, np.ones((n, 1)), slice(0, 1)), numeric_term(h, 5, Xh, slice(1, 4)))
    m = GlmerModel(np.ones(n), np.ones(n), np.ones(n), np.zeros(n), X, terms, glmm.poisson(),
                   np.ones(n))
    layouts = m.layouts(np.array([0.8, 1.2, -0.4, 0.6]))
    W = rng.uniform(0.1, 2.0, n)
    C, F = m.fixed_blocks(layouts, W)
    M = _dense_Z(layouts, n)
    # the same sums of products, over cells instead of observations: rounding only
    np.testing.assert_allclose(C, M.T @ (W[:, None] * X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F, X.T @ (W[:, None] * X), rtol=1e-12)
    ncells = [len(c.first) for c in m.cells]
    assert (max(ncells) < n / 2) if repeated else (ncells == [n, n])


def test_distinct_rows_groups_equal_rows() -> None:
    rng = np.random.default_rng(2)
    M = rng.integers(0, 3, size=(200, 3)).astype(float)
    index = distinct_rows(M)
    same = (M[:, None, :] == M[None, :, :]).all(axis=2)
    assert np.array_equal(index[:, None] == index[None, :], same)
    np.testing.assert_array_equal(distinct_rows(rng.normal(size=(50, 2))), np.arange(50))


@pytest.mark.parametrize("order", ["sorted", "shuffled", "sorted, a level unused"])
def test_level_sums_match_dense_indicator(order: str) -> None:
    # the per-level sums over sorted runs (reduceat), by bincount and by J, against J dense
    rng = np.random.default_rng(5)
    codes = np.sort(np.r_[np.arange(7), rng.integers(0, 7, 60)])
    if order == "shuffled":
        codes = rng.permutation(codes)
    if order == "sorted, a level unused":
        codes = np.where(codes == 3, 4, codes)
    n = len(codes)
    lay = TermLayout(codes, 7, np.ones((n, 1)), starts=run_starts(codes, 7))
    assert (lay.starts is not None) == (order == "sorted")
    J = np.zeros((7, n))
    J[codes, np.arange(n)] = 1.0
    r = rng.normal(size=(n, 3))
    # the same sums of standard normals in another order: rounding, ~1e-15 of their size
    np.testing.assert_allclose(lay.level_sums(r[:, 0]), J @ r[:, 0], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(lay.level_sums(r), J @ r, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("sort", [True, False])
def test_cell_sums_are_the_indicator_products_exactly(sort: bool) -> None:
    # TermCells sums by bincounts in the order of the observations (of the cells), which is
    # the order of the 0/1 indicator matrices' products: the same numbers, bit for bit
    import scipy.sparse

    from glmm.linalg.coupling import level_indicator
    from glmm.objectives.model import TermCells

    rng = np.random.default_rng(8)
    n, nl = 1500, 40
    codes = rng.integers(0, nl, n)
    if sort:
        codes = np.sort(codes)
    X = np.column_stack([np.ones(n), rng.integers(0, 4, n), rng.integers(0, 2, n)])
    cells = TermCells.build(codes, nl, distinct_rows(X), X)
    ncells = len(cells.first)
    J = scipy.sparse.csr_matrix((np.ones(n), (cells.cell, np.arange(n))), shape=(ncells, n))
    L = level_indicator(codes[cells.first], nl)
    W = rng.uniform(0.1, 2.0, n) * 10.0 ** rng.integers(-6, 6, n)
    M = rng.normal(size=(ncells, 3)) * 10.0 ** rng.integers(-6, 6, (ncells, 3))
    assert np.array_equal(cells.cell_sums(W), J @ W)
    assert np.array_equal(cells.level_sums(M), L @ M)
    assert np.array_equal(codes[cells.first][cells.cell], codes)   # each cell at one level
    assert np.array_equal(X[cells.first][cells.cell], X)           # and of one row of X


@pytest.mark.parametrize("p", [1, 2, 3])
def test_zlam_of_a_vector_term_is_einsums_arithmetic(p: int) -> None:
    # ZΛu of a (x | g) term, with signed zeros: np.einsum("ij,ij->i") sums from +0.0
    rng = np.random.default_rng(3)
    n, nl = 300, 12
    codes = rng.integers(0, nl, n)
    Xi = rng.normal(size=(n, p))
    Xi[:5] = -1.0
    term = numeric_term(codes, nl, Xi, slice(0, p * (p + 1) // 2))
    m = GlmerModel(np.ones(n), np.ones(n), np.ones(n), np.zeros(n), np.ones((n, 1)), (term,),
                   glmm.poisson(), np.ones(n))
    theta = 0.1 + np.abs(rng.normal(size=p * (p + 1) // 2))   # T > 0: A < 0 in the first rows
    lay = m.layouts(theta)
    u = rng.normal(size=nl * p)
    u[codes[0] * p:(codes[0] + 1) * p] = 0.0   # the first rows' terms are all −0.0
    ub = u.reshape(nl, p)
    want = lay[0].A[:, 0] * ub[codes, 0] if p == 1 else np.einsum("ij,ij->i", lay[0].A, ub[codes])
    got = m.zlam(lay, u)
    assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))
