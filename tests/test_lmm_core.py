"""The compiled LMM criterion (glmm/csrc/lmm.c, glmm/objectives/lmm_crossprod.py) against
lme4's devfun, and its exact gradient.

lmer's BFGS runs in the core wherever the core takes the model (a first term of any size,
scalar later terms), and so does every evaluation of the fit (lmm_solution), which
tests/test_lmer.py holds to lme4.  Here the core's own criterion is held to lme4's devfun at
lme4's probe θ (tests/data/lmm/lme4_reference.json), with the coupling block dense, sparse,
sparse with S̄ factored by supernodes in a minimum-degree order of its rows, and in classes,
its gradient to central differences of its own value, and its solution to numpy's.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from test_lmer import CASES, PARAMS, REF, frame

import glmm
from glmm.compiled import core
from glmm.design.design import build_design
from glmm.lmer import lmm_model
from glmm.objectives import lmm_crossprod
from glmm.objectives.lmm import LmmObjective
from glmm.threads import blas_limit

pytestmark = pytest.mark.skipif(core is None, reason="glmm._core was not built")

#: lme4's devfun at θ has no inner iteration: its value is exact to rounding, as is the
#: core's (sums of n terms, a log): the probe tier's bound.
PROBE_REL = 1e-10


KINDS = ("dense", "sparse", "supernodal", "classes")


@contextmanager
def coupling(kind: str) -> Iterator[None]:
    """lmm_crossprod's coupling block forced dense or sparse (S̄ factored whole, or by
    supernodes in a minimum-degree order of its rows: lmm.c, sn_factor), or term 1 (scalar)
    in classes of equal M₁₁,ₖ (lmm.c, evaluate_classes)."""
    names = ("DENSE_COST", "CLASSES_COST", "SUPERNODAL_MIN_ORDER", "SUPERNODAL_RATIO")
    saved = [getattr(lmm_crossprod, k) for k in names]
    lmm_crossprod.DENSE_COST = 0.0 if kind == "dense" else np.inf
    lmm_crossprod.CLASSES_COST = 0.0 if kind == "classes" else np.inf
    lmm_crossprod.SUPERNODAL_MIN_ORDER = 0 if kind == "supernodal" else 10**9
    lmm_crossprod.SUPERNODAL_RATIO = np.inf
    try:
        yield
    finally:
        for k, v in zip(names, saved, strict=True):
            setattr(lmm_crossprod, k, v)


def capsule_of(obj: LmmObjective, kind: str) -> object:
    """The objective's capsule made with the coupling of ``kind``; a test of the classes
    form is skipped where term 1 is not scalar or its classes exceed MAX_CLASSES."""
    if kind == "classes":
        m, t = obj.model, obj.model.terms[0]
        if t.p > 1:
            pytest.skip("term 1 is not scalar: no classes form")
        classes = len(np.unique(np.bincount(t.codes, m.weights * t.Xi[:, 0] ** 2)))
        m2 = sum(u.nlevels for u in m.terms[1:]) + m.p + 1
        if classes * m2 * m2 > lmm_crossprod.MAX_CLASSES:
            pytest.skip(f"{classes} classes of order {m2}: beyond MAX_CLASSES")
    made: list[str] = []
    real, real_model = core.lmm_classes, core.lmm_model

    def record(*a: object) -> object:
        made.append("classes")
        return real(*a)

    def record_model(*a: object) -> object:
        made.append("dense" if a[10] else "supernodal" if a[15] else "sparse")
        return real_model(*a)

    core.lmm_classes, core.lmm_model = record, record_model
    try:
        with coupling(kind):
            capsule = obj._capsule
    finally:
        core.lmm_classes, core.lmm_model = real, real_model
    assert capsule is not None
    assert made == [kind]
    return capsule


def objective(case: str, criterion: str, shift: float = 0.0) -> LmmObjective:
    formula, file, wo = CASES[case]
    df = frame(file).copy()
    response = formula.split("~")[0].strip()
    df[response] = df[response] + shift
    kw = {} if wo is None else {"weights": wo[0], "offset": wo[1]}
    return LmmObjective(lmm_model(build_design(formula, df, **kw)), criterion == "REML")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("case", "criterion"), PARAMS)
def test_core_criterion_is_lme4s_devfun(case: str, criterion: str, kind: str) -> None:
    capsule = capsule_of(objective(case, criterion), kind)
    probes = REF[case][criterion]["probes"]
    for theta, want in zip(probes["theta"], probes["value"], strict=True):
        got = core.lmm_evaluate(capsule, np.atleast_1d(np.asarray(theta, dtype=float)), None)
        assert abs(got - want) <= PROBE_REL * abs(want), (theta, got, want)


@pytest.mark.parametrize("criterion", ["REML", "ML"])
def test_core_criterion_with_a_large_mean(criterion: str) -> None:
    """y + 10⁶ (X has an intercept): the same criterion, lme4's values.  M's ỹ is y less its
    least-squares fit, so r² does not come from Σwy² ≈ 10¹⁴ less nearly as much."""
    capsule = objective("sleepstudy", criterion, shift=1e6)._capsule
    probes = REF["sleepstudy"][criterion]["probes"]
    for theta, want in zip(probes["theta"], probes["value"], strict=True):
        got = core.lmm_evaluate(capsule, np.asarray(theta, dtype=float), None)
        assert abs(got - want) <= PROBE_REL * abs(want), (theta, got, want)


def _central(capsule: object, theta: np.ndarray) -> np.ndarray:
    out = np.empty(len(theta))
    for i in range(len(theta)):
        h = 1e-5 * max(1.0, abs(theta[i]))
        e = np.zeros(len(theta))
        e[i] = h
        out[i] = (core.lmm_evaluate(capsule, theta + e, None)
                  - core.lmm_evaluate(capsule, theta - e, None)) / (2 * h)
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("case", "criterion"),
                         [p for p in PARAMS if p[0] != "InstEval"])
def test_core_gradient_is_the_criterions(case: str, criterion: str, kind: str) -> None:
    """At each probe θ and at θ with an entry on its bound (0), the core's gradient is that
    of its criterion: central differences (h = 1e-5, error ~h²·F''' + ε·F/h ≈ 1e-7 here)."""
    capsule = capsule_of(objective(case, criterion), kind)
    thetas = [np.atleast_1d(np.asarray(t, dtype=float))
              for t in REF[case][criterion]["probes"]["theta"]]
    thetas.append(np.where(np.arange(len(thetas[0])) == 0, 0.0, thetas[0]))
    for theta in thetas:
        g = np.zeros(len(theta))
        core.lmm_evaluate(capsule, theta, g)
        fd = _central(capsule, theta)
        assert np.allclose(g, fd, rtol=1e-5, atol=1e-5), (theta, g, fd)


def _half(df):
    out = df.copy()
    out["half"] = (out["Days"] < 5).map({True: "a", False: "b"}).astype("category")
    return out


def _unbalanced(df):
    """Every fourth subject without days 7–9: term 1's levels of 10 and of 7 rows."""
    codes = pd.Categorical(df["Subject"]).codes
    return df[~((codes % 4 == 0) & (df["Days"] > 6))].reset_index(drop=True)


@pytest.mark.parametrize(("formula", "weighted"), [
    ("Reaction ~ Days + (Days | Subject) + (1 | half)", False),   # p₁ = 2, a later term
    ("Reaction ~ 0 + (Days | Subject) + (1 | half)", False),      # p = 0 (REML is ML)
    ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject) + (1 | half)", False),
    ("Reaction ~ Days + (1 | Subject) + (1 | half)", False),      # classes of 10 and 7 rows
    ("Reaction ~ Days + (1 | Subject) + (1 | half)", True),       # weighted: 18 classes
    ("Reaction ~ 0 + (1 | Subject)", True),                       # no X, no later term
])
@pytest.mark.parametrize("REML", [True, False])
@pytest.mark.parametrize("route", ["product", "sums"])
def test_core_equals_numpy(formula: str, weighted: bool, REML: bool, route: str,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Models outside the corpus (no lme4 reference here): the core's value and gradient are
    numpy's (glmm.objectives.lmm, §1–§3 of docs/lmm.md: another implementation of the same
    formulas, by the per-observation selected inverse), to rounding, at several θ, with the
    coupling block dense, sparse and supernodal, and in classes where term 1 is scalar; M
    formed by either route (one product of the dense [Z X ỹ], or per-level sums)."""
    if route == "sums":
        monkeypatch.setattr(lmm_crossprod, "MAX_PRODUCT", 0)
    df = _unbalanced(_half(frame("sleepstudy.csv")))
    if weighted:
        df["w"] = 1.0 + (df.index % 7) / 3.0
    model = lmm_model(build_design(formula, df, weights="w" if weighted else None))
    assert lmm_crossprod.compiled_applies(model)
    rng = np.random.default_rng(7)
    kinds = KINDS if model.terms[0].p == 1 else KINDS[:3]
    for kind in kinds:
        obj = LmmObjective(model, REML)
        capsule = capsule_of(obj, kind)
        for _ in range(3):
            theta = rng.uniform(0.05, 1.5, model.ntheta)
            f, g = obj.value_and_gradient(theta)
            gc = np.zeros(model.ntheta)
            fc = core.lmm_evaluate(capsule, theta, gc)
            assert abs(fc - f) <= 1e-12 * abs(f)   # sums of n terms and logs: rounding
            assert np.allclose(gc, g, rtol=1e-9, atol=1e-9 * max(1.0, abs(f)))


def _banded(n_g: int = 400, n_h: int = 250, seed: int = 11) -> pd.DataFrame:
    """Students g and instructors h (in 10 departments d) as in InstEval, but banded: each g
    meets 3 neighbouring h, so that S̄ (h and d after g) is sparse and a minimum-degree order
    factors it in many small supernodes with structure below them, then a dense tail."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_g), rng.integers(3, 10, n_g))   # 7 sizes: not the classes form
    h = (g * n_h // n_g + rng.integers(0, 3, len(g))) % n_h
    d = h * 10 // n_h
    x = rng.normal(size=len(g))
    y = (0.5 * x + rng.normal(0, 0.6, n_g)[g] + rng.normal(0, 0.4, n_h)[h]
         + rng.normal(0, 0.3, 10)[d] + rng.normal(size=len(g)))
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(g), "h": pd.Categorical(h),
                         "d": pd.Categorical(d)})


@pytest.mark.parametrize("REML", [True, False])
def test_supernodal_factor_equals_numpy(REML: bool) -> None:
    """S̄ of order 313, sparse: by supernodes in the minimum-degree order (the default here:
    its factor is a small fraction of a dense one's flops), the core's value and gradient are
    numpy's (another implementation, §1–§3 of docs/lmm.md) and the dense factor's, to
    rounding, at several θ."""
    model = lmm_model(build_design("y ~ x + (1 | g) + (1 | h) + (1 | d)", _banded()))
    obj = LmmObjective(model, REML)
    made: list[bool] = []
    real = core.lmm_model

    def record(*a: object) -> object:
        made.append(bool(a[15]))
        return real(*a)

    core.lmm_model = record
    try:
        capsule = obj._capsule
    finally:
        core.lmm_model = real
    assert made == [True]   # the default thresholds take the supernodal factor
    plain = capsule_of(LmmObjective(model, REML), "sparse")
    rng = np.random.default_rng(3)
    for _ in range(3):
        theta = rng.uniform(0.05, 1.5, model.ntheta)
        with blas_limit(1):   # as in a fit: numpy's dense S̄ (order 263) on one thread
            f, g = obj.value_and_gradient(theta)
        gc, gp = np.zeros(model.ntheta), np.zeros(model.ntheta)
        fc = core.lmm_evaluate(capsule, theta, gc)
        fp = core.lmm_evaluate(plain, theta, gp)
        # sums of n terms and logs, in other orders: rounding
        assert abs(fc - f) <= 1e-12 * abs(f) and abs(fc - fp) <= 1e-12 * abs(f)
        assert np.allclose(gc, g, rtol=1e-9, atol=1e-9 * max(1.0, abs(f)))
        assert np.allclose(gc, gp, rtol=1e-9, atol=1e-9 * max(1.0, abs(f)))
        # the solution by back-substitution on L̄₂'s pattern, its later modes taken back from
        # the supernodal order to u's: numpy's solve (rounding of two solves)
        order = obj._crossproducts.order
        assert order is not None and (order != np.arange(len(order))).any()
        got, (want, _) = obj.evaluate(theta), obj._evaluate(theta, False)
        assert abs(got.objective - want.objective) <= 1e-12 * abs(want.objective)
        np.testing.assert_allclose(got.u, want.u, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.beta, want.beta, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got.RX, want.RX, rtol=1e-10, atol=1e-10)


def test_a_later_vector_term_is_fitted_in_numpy() -> None:
    """(Days | half) after (1 | Subject) (lme4 orders terms by their levels: Subject first) is
    not the core's: lmer searches in numpy, and reaches the optimum of the same model that
    its devfun (numpy) and the core agree on elsewhere."""
    df = _half(frame("sleepstudy.csv"))
    model = lmm_model(build_design("Reaction ~ Days + (1 | Subject) + (Days | half)", df))
    assert model.terms[0].p == 1 and not lmm_crossprod.compiled_applies(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", glmm.GlmmWarning)
        f = glmm.lmer("Reaction ~ Days + (1 | Subject) + (Days | half)", df)
    assert "compiled" not in f.optsummary.optimizer
    assert f.optsummary.converged


def test_lmer_searches_in_the_core() -> None:
    f = glmm.lmer(*CASES["sleepstudy"][:1], frame("sleepstudy.csv"))
    assert "compiled" in f.optsummary.optimizer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", glmm.SingularFitWarning)
        f2 = glmm.lmer(CASES["Dyestuff2"][0], frame("Dyestuff2.csv"))
    assert "compiled" in f2.optsummary.optimizer


def test_core_refuses_a_bad_model() -> None:
    """The capsule's arrays are checked: a level whose rows do not end with X's and ỹ's."""
    obj = objective("Penicillin", "REML")
    with coupling("sparse"):
        args = _model_args(obj)
    rows = args[6].copy()
    rows[-1] = 0
    with pytest.raises(ValueError, match="rows"):
        core.lmm_model(*args[:6], rows, *args[7:])
    obj = objective("sleepstudy", "REML")   # term 1's θ pairs: each once, column by column
    args = _model_args(obj)
    tril = args[2].copy()
    tril[2:4] = tril[0:2]
    with pytest.raises(ValueError, match="tril"):
        core.lmm_model(*args[:2], tril, *args[3:])


def _model_args(obj: LmmObjective) -> tuple:
    captured: list[tuple] = []
    real = core.lmm_model

    def record(*a: object) -> object:
        captured.append(a)
        return real(*a)

    core.lmm_model = record
    try:
        lmm_crossprod.lmm_crossproducts(obj.model, obj.REML)
    finally:
        core.lmm_model = real
    return captured[0]


@pytest.mark.parametrize(("formula", "weighted", "shift"), [
    ("Reaction ~ Days + (1 | Subject) + (1 | half)", False, 0.0),   # classes of 10 and 7 rows
    ("Reaction ~ Days + (1 | Subject) + (1 | half)", True, 0.0),    # weighted: 18 classes
    ("Reaction ~ Days + (1 | Subject) + (1 | half)", False, 1e6),   # y far from 0
    ("Reaction ~ 0 + (1 | Subject) + (1 | half)", True, 0.0),       # p = 0: no R_X
    ("Reaction ~ Days + (1 | Subject)", True, 0.0),                 # no later term
    ("Reaction ~ Days + (Days | Subject) + (1 | half)", True, 0.0),  # p₁ = 2, a later term
    ("Reaction ~ 0 + (Days | Subject)", False, 0.0),                # p₁ = 2, no X
])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("REML", [True, False])
def test_core_fit_equals_the_observations(formula: str, weighted: bool, shift: float,
                                          kind: str, REML: bool) -> None:
    """An evaluation of the fit (at θ̂, lme4's check.boundary probes, the devfun) is the
    core's (lmm_solution: back-substitution in Ā's factor; in the classes form term 1's modes
    from its rows of the normal equations, docs/lmm.md §6); the sums over the observations
    (the blocked factor of A, the residuals: another route to the same numbers) give the same
    û, β̂, ldL2, ldRX2, R_X, pwrss and criterion to rounding, and the same η, also on the
    bound, with the coupling dense, sparse and in classes."""
    df = _unbalanced(_half(frame("sleepstudy.csv")))
    response = df["Reaction"] + shift
    df["Reaction"] = response
    w = "w" if weighted else None
    if weighted:
        df["w"] = 1.0 + (df.index % 7) / 3.0
    model = lmm_model(build_design(formula, df, weights=w))
    obj = LmmObjective(model, REML)
    capsule_of(obj, kind)   # skips the classes form where term 1 is not scalar
    made = obj._crossproducts
    assert made is not None and (made.levels is not None) == (kind == "classes")
    rng = np.random.default_rng(11)
    thetas = [rng.uniform(0.05, 1.5, model.ntheta) for _ in range(3)]
    thetas.append(np.where(np.arange(model.ntheta) == 0, 0.0, thetas[0]))
    for theta in thetas:
        got = obj.evaluate(theta)
        assert got.state.__class__.__name__ == "SolvedState"
        want, _ = obj._evaluate(theta, False)   # numpy's, over the observations
        # the criterion: sums of n terms and logs, rounding (as the core's, above)
        assert abs(got.objective - want.objective) <= 1e-12 * abs(want.objective)
        for a, b in ((got.ldL2, want.ldL2), (got.ldRX2, want.ldRX2), (got.pwrss, want.pwrss),
                     (got.wrss, want.wrss)):
            assert abs(a - b) <= 1e-10 * max(1.0, abs(b)), (a, b)
        # û, β̂ and R_X: solves of a system whose condition (y + 1e6: ~1e8 in β's
        # intercept) scales the rounding of either route
        scale = max(1.0, shift)
        np.testing.assert_allclose(got.u, want.u, rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(got.beta, want.beta, rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(got.RX, want.RX, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got.state.eta, want.state.eta, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(got.state.s, want.state.s, rtol=0, atol=1e-8)


def test_a_model_outside_the_core_evaluates_over_the_observations() -> None:
    """A later vector term is not the core's: every evaluation sums over the observations."""
    df = _half(frame("sleepstudy.csv"))
    obj = LmmObjective(lmm_model(build_design("Reaction ~ Days + (1 | Subject) + (Days | half)",
                                              df)), True)
    assert obj._crossproducts is None
    assert obj.evaluate(np.ones(obj.model.ntheta)).state.__class__.__name__ == "PirlsState"


@pytest.mark.parametrize("t", [1.0, 1e2, 1e3, 1e4])
def test_core_wrss_does_not_cancel(t: float) -> None:
    """wrss where ‖û‖² dwarfs it (one level per observation, θ large): r² − ‖û‖² would lose
    its digits; the core's evaluation then sums wᵢeᵢ² as numpy does."""
    df = frame("sleepstudy.csv")
    df["obs"] = pd.Categorical(np.arange(len(df)))
    obj = LmmObjective(lmm_model(build_design("Reaction ~ Days + (1 | obs) + (1 | Subject)",
                                              df)), True)
    assert obj._crossproducts is not None
    theta = np.array([t, 1.0])
    got, (want, _) = obj.evaluate(theta), obj._evaluate(theta, False)
    # a sum of n squares either way; numpy's own rounding grows with θ (a solve of a system
    # whose condition grows as θ²), 4e-9 at θ = 1e4
    assert abs(got.wrss - want.wrss) <= 1e-7 * want.wrss


def _gram_problem(rng: np.random.Generator, n: int, p: int, weighted: bool) -> tuple:
    """Rows of A = [Z X y]: two random Z entries per row (distinct columns in [0, 8)), X's p
    columns and y at the last p + 1 columns; A dense; the weights or None."""
    q = 8
    z = np.argsort(rng.random((n, q)), axis=1)[:, :2]
    col = np.hstack([z, np.tile(np.arange(q, q + p + 1), (n, 1))]).astype(np.int64)
    val = rng.standard_normal((n, 2 + p + 1))
    val[:, -1] += 50.0   # a mean far from 0: yᵀWy would cancel against the fit
    A = np.zeros((n, q + p + 1))
    np.put_along_axis(A, col, val, axis=1)
    return col, val, A, (rng.uniform(0.5, 2.0, n) if weighted else None)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("p", [0, 1, 3])
def test_core_gram_is_the_shifted_product(weighted: bool, p: int) -> None:
    """lmm_gram's β₀ and M = [Z X ỹ]ᵀW[Z X ỹ], ỹ = y − Xβ₀, against numpy: β₀ by least
    squares (an SVD, not the core's Cholesky) and the dense product; M exactly symmetric."""
    rng = np.random.default_rng(7)
    n = 60
    col, val, A, w = _gram_problem(rng, n, p, weighted)
    m, k = A.shape[1], col.shape[1]
    sw = np.ones(n) if w is None else np.sqrt(w)
    X, y = A[:, m - 1 - p:m - 1], A[:, -1]
    want_beta = np.linalg.lstsq(sw[:, None] * X, sw * y, rcond=None)[0]
    A[:, -1] = y - X @ want_beta
    want = A.T @ (A if w is None else w[:, None] * A)
    M, beta0 = np.full((m, m), np.nan), np.full(p, np.nan)   # overwritten, not added to
    assert core.lmm_gram(n, k, m, p, col, val, w, M, beta0) is True
    # β₀ of a well-conditioned X; M's entries are sums of n products (of O(1) entries, and
    # of y, mean 50, where p = 0 leaves it unshifted), rounding ~n·ε relative to Σ|aa|
    np.testing.assert_allclose(beta0, want_beta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M, want, rtol=1e-13, atol=1e-11)
    assert np.array_equal(M, M.T)


def test_core_gram_without_a_positive_definite_xtwx() -> None:
    """Two equal columns of X: lmm_gram says so (False) and leaves M unshifted; p = 0 is the
    plain product; a column given twice in a row, or outside [0, m), is refused."""
    rng = np.random.default_rng(3)
    n = 40
    col, val, A, _ = _gram_problem(rng, n, 2, False)
    m, k = A.shape[1], col.shape[1]
    val[:, 3] = val[:, 2]
    A[:, m - 2] = A[:, m - 3]
    M = np.empty((m, m))
    assert core.lmm_gram(n, k, m, 2, col, val, None, M, np.empty(2)) is False
    np.testing.assert_allclose(M, A.T @ A, rtol=0, atol=1e-9)   # y's mean 50: sums ~1e5
    assert core.lmm_gram(n, k, m, 0, col, val, None, M, np.empty(0)) is True
    np.testing.assert_allclose(M, A.T @ A, rtol=0, atol=1e-9)
    bad = col.copy()
    bad[4, 1] = bad[4, 0]
    with pytest.raises(ValueError, match="row 4 gives column"):
        core.lmm_gram(n, k, m, 2, bad, val, None, M, np.empty(2))
    with pytest.raises(ValueError, match="col: columns outside"):
        core.lmm_gram(n, k, m - 1, 2, col, val, None, np.empty((m - 1, m - 1)), np.empty(2))


def test_level_classes_are_numpys_unique() -> None:
    """Term 1's level classes (values, counts, each level's class) are np.unique's, balanced
    (one class) or not, levels in any order."""
    rng = np.random.default_rng(5)
    for _ in range(500):
        n = int(rng.integers(1, 40))
        d = rng.integers(0, int(rng.integers(1, 5)), n) * float(rng.choice([1.0, 0.5, 3.0]))
        values, counts, inverse = lmm_crossprod._level_classes(d)
        want = np.unique(d, return_inverse=True, return_counts=True)
        assert np.array_equal(values, want[0])
        assert np.array_equal(inverse, want[1].ravel()) and inverse.dtype == np.int64
        assert np.array_equal(counts, want[2]) and counts.dtype == np.int64


@pytest.mark.parametrize("route", ["product", "sums"])
def test_a_nearly_collinear_x_shifts_by_least_squares(route: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """X's two columns 1e-5 apart (kept by lme4's rank check: ~2e-6 of a column's norm is
    left, its tolerance 1e-7) leave XᵀWX a pivot² ~3e-12 of its diagonal: β₀ is then numpy's
    least squares on either route (not the ill-determined normal equations).  The ML
    criterion depends on X's column space only, so it is numpy's criterion for the same
    space spanned by well-scaled columns, to what X's conditioning leaves of it."""
    if route == "sums":
        monkeypatch.setattr(lmm_crossprod, "MAX_PRODUCT", 0)
    df = frame("sleepstudy.csv")
    rng = np.random.default_rng(2)
    df["x2"] = df["Days"] + 1e-5 * rng.standard_normal(len(df))
    formula = "Reaction ~ Days + x2 + (Days | Subject)"
    model = lmm_model(build_design(formula, df))
    assert model.p == 3
    made = lmm_crossprod.lmm_crossproducts(model, False)
    assert made is not None
    want = np.linalg.lstsq(model.X, model.y, rcond=None)[0]
    # the normal equations' β₀ (condition ~3e11) would be off by ~1e-5 relative
    np.testing.assert_allclose(made.beta0, want, rtol=1e-8)
    well = df.assign(x2=(df["x2"] - df["Days"]) * 1e5)   # the same column space, scaled
    ref = LmmObjective(lmm_model(build_design(formula, well)), False)
    # eliminating X's nearly dependent columns loses ~κ(XᵀX)·ε of r², n·κ·ε of the criterion
    bound = len(df) * np.linalg.cond(model.X.T @ model.X) * np.finfo(float).eps
    for theta in ([0.5, 0.1, 0.3], [1.2, -0.2, 0.05]):
        f = float(ref._evaluate(np.array(theta), gradient=False)[0].objective)   # numpy
        fc = core.lmm_evaluate(made.capsule, np.array(theta), np.zeros(3))
        assert abs(fc - f) <= bound
