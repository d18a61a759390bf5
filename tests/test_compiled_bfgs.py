"""The compiled core's BFGS (glmm/csrc/bfgs.c) against glmm.optimize.bfgs.minimize_bfgs: on problems
with known minima through a Python objective, and on the scalar-term objective, whose whole search
the core runs (ScalarTermObjective.compiled_bfgs) against the same search driven from Python
over the same compiled evaluations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from test_bfgs import rosenbrock
from test_scalar_core import CASES, _case_model, _model

from glmm import compiled
from glmm.objectives import base as objective
from glmm.objectives.model import GlmerModel
from glmm.objectives.scalar_term import ScalarTermObjective
from glmm.optimize import bfgs
from glmm.optimize.bfgs import BfgsResult, End, message, minimize_bfgs
from glmm.optimize.driver import Optimum, optimize_theta, optimize_theta_beta
from glmm.optimize.start import glm_start

core = compiled.core
pytestmark = pytest.mark.skipif(core is None, reason="glmm._core was not built")

Fg = Callable[[np.ndarray], tuple[float, np.ndarray]]


def core_bfgs(fg: Fg, x0: np.ndarray, unit: np.ndarray | None = None,
              start: tuple[float, np.ndarray] | None = None) -> BfgsResult:
    """minimize_bfgs's signature on the core's search."""
    x = np.array(x0, dtype=float)
    g = np.zeros(len(x)) if start is None else np.array(start[1], dtype=float)
    code, converged, f, nfev, gmax, decrement, dmax = core.bfgs(
        lambda v: fg(np.array(v)), x, g, None if start is None else start[0],
        None if unit is None else np.asarray(unit, dtype=np.uint8).tobytes(),
        bfgs.GTOL, bfgs.DTOL, bfgs.XTOL, bfgs.MAX_ITER)
    if code == End.BAD_START:
        raise ArithmeticError(bfgs.BAD_START_MESSAGE)
    return BfgsResult(x, f, g, nfev, bool(converged), message(code, gmax, decrement, dmax))


def test_core_bfgs_constants_are_glmm_constants() -> None:
    assert (core.C1, core.MAX_BACKTRACKS, core.STALL_GMAX, core.STALL_DECREMENT, core.FLAT_F) == \
        (bfgs.C1, bfgs.MAX_BACKTRACKS, bfgs.STALL_GMAX, bfgs.STALL_DECREMENT, bfgs.FLAT_F)
    assert core.PREDICT_RANGE == objective.PREDICT_RANGE


def _domain(x: np.ndarray) -> tuple[float, np.ndarray]:
    # F = (x − 1.5)² is undefined beyond x = 2; the first step from −1 lands at 2.5
    if x[0] > 2.0:
        raise ArithmeticError("outside the domain")
    return float((x[0] - 1.5) ** 2), np.array([2.0 * (x[0] - 1.5)])


def _flat(x: np.ndarray) -> tuple[float, np.ndarray]:
    # a gradient that promises a decrease F never delivers: every backtrack fails
    return 1.0, np.array([1.0, -0.5])


rng = np.random.default_rng(3)
_Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
_A = _Q @ np.diag(np.logspace(0, 3, 6)) @ _Q.T
_b = rng.normal(size=6)


def _quadratic(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(0.5 * x @ _A @ x - _b @ x), _A @ x - _b


PROBLEMS = {
    "rosenbrock": (rosenbrock, np.array([-1.2, 1.0]), None, False),
    "quadratic, half unit": (_quadratic, np.zeros(6), np.arange(6) >= 3, False),
    "quadratic, all unit, start given": (_quadratic, np.zeros(6), np.ones(6, bool), True),
    "step back from the domain's edge": (_domain, np.array([-1.0]), None, False),
    "stalled": (_flat, np.zeros(2), None, False),
}


@pytest.mark.parametrize("name", PROBLEMS)
def test_core_bfgs_follows_minimize_bfgs(name: str) -> None:
    fg, x0, unit, given = PROBLEMS[name]
    start = fg(x0) if given else None
    py = minimize_bfgs(fg, x0, unit=unit, start=start)
    c = core_bfgs(fg, x0, unit=unit, start=start)
    # the same rules on the same values: the same path, up to the order of the additions in
    # the small products Hg, gᵀd and the update (rounding, ~1e-16 relative per step)
    assert (c.nfev, c.converged, c.message) == (py.nfev, py.converged, py.message)
    np.testing.assert_allclose(c.x, py.x, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c.g, py.g, rtol=1e-9, atol=1e-12)
    # F's rounding at these points is that of its O(1) terms, ~1e-16
    assert c.f == pytest.approx(py.f, rel=1e-12, abs=1e-14)


def test_core_bfgs_bad_start_and_foreign_errors() -> None:
    def nowhere(x: np.ndarray) -> tuple[float, np.ndarray]:
        raise ArithmeticError("nowhere defined")

    with pytest.raises(ArithmeticError, match="starting point"):
        core_bfgs(nowhere, np.zeros(2))

    def broken(x: np.ndarray) -> tuple[float, np.ndarray]:
        raise KeyError("not a failure of F: a bug")

    with pytest.raises(KeyError, match="a bug"):
        core_bfgs(broken, np.zeros(2))
    with pytest.raises(ValueError, match="wrong length"):
        core_bfgs(lambda x: (0.0, np.zeros(3)), np.zeros(2))


# -- the scalar-term search -------------------------------------------------------------------
def _search(m: GlmerModel, nagq: int, in_core: bool) -> tuple[Optimum, ScalarTermObjective]:
    """glmer's search (glmm.glmer._fit) with the core's BFGS, or with minimize_bfgs over the
    same compiled evaluations."""
    beta1 = glm_start(m, max_iter=1)
    obj = ScalarTermObjective(m, nagq, beta1)
    assert obj.compiled
    if not in_core:
        obj.compiled_bfgs = lambda R, beta0, tolerances=None: None   # type: ignore[method-assign]
    theta0, lower = np.ones(1), np.zeros(1)
    if nagq == 0:
        return optimize_theta(obj, theta0, lower), obj
    return optimize_theta_beta(obj, theta0, obj.glm_beta(beta1), lower), obj


SIMULATED = {"binary, slope": ("binomial", {"slope": True}),
             "proportions, weights": ("binomial", {"weights": True}),
             "counts, y log y form": ("poisson", {"slope": True, "weights": True}),
             "large counts, clamped form": ("poisson", {"scale": 4.0})}


#: the corpus's scalar-term cases with whole counts (cbpp-prop's y·w, unweighted here, are not:
#: its aic is not Σdev plus a constant, and the core's search does not apply)
WHOLE = [c for c in CASES if c != "cbpp-prop"]


@pytest.mark.parametrize("case", WHOLE + list(SIMULATED))
@pytest.mark.parametrize("nagq", [0, 1, 5, 25])   # 5, 25: the quadrature (agq.c vs agq.py)
def test_core_search_equals_the_python_search(case: str, nagq: int) -> None:
    m = _case_model(case)[0] if case in WHOLE else _model(*SIMULATED[case][:1],
                                                             **SIMULATED[case][1])
    a, obj_a = _search(m, nagq, in_core=True)
    b, obj_b = _search(m, nagq, in_core=False)
    assert obj_a.compiled_bfgs(np.eye(m.p), np.zeros(m.p)) is not None
    # F and ∇F differ between the two by the order of their sums (compensated in the core,
    # pairwise in numpy: ~1e-15 relative), which the searches carry to ~1e-12 in their final
    # points (measured ≤ 5e-13 on these models); one changed rule moves the path by a step
    assert (a.nfev, a.converged, a.message) == (b.nfev, b.converged, b.message)
    np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-9)
    assert a.evaluation.objective == pytest.approx(b.evaluation.objective, rel=1e-13)
    # the core's last mode became the objective's: a fresh evaluation at its parameters, in
    # Python, finds the same mode (the same converged PIRLS, to ~1e-9: test_scalar_core)
    params, ev = obj_a.last
    fresh = ScalarTermObjective(m, nagq, obj_a.beta_start).evaluate(params)
    assert ev.objective == pytest.approx(fresh.objective, rel=1e-12)
    np.testing.assert_allclose(ev.u, fresh.u, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ev.beta, fresh.beta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ev.state.W, fresh.state.W, rtol=1e-8, atol=0)
    assert obj_a.evaluations == obj_b.evaluations


def test_core_quadrature_with_non_integer_counts() -> None:
    """cbpp-prop (proportions, no weights: non-integer counts) at nAGQ = 5: the core's search
    equals the Python one over the same PIRLS (the quadrature objective has no aic)."""
    m = _case_model("cbpp-prop")[0]
    a, _ = _search(m, 5, in_core=True)
    b, _ = _search(m, 5, in_core=False)
    assert (a.nfev, a.converged) == (b.nfev, b.converged)
    np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-9)   # as above
    assert a.evaluation.objective == pytest.approx(b.evaluation.objective, rel=1e-13)


def test_core_search_where_pirls_cannot_start() -> None:
    m = _model("binomial")
    obj = ScalarTermObjective(m, 0, np.zeros(2))
    run = obj.compiled_bfgs(None, None)
    assert run is not None
    with pytest.raises(ArithmeticError, match="starting point"):
        run(np.array([np.nan]), None)
    assert obj.evaluations == 1 and obj.last is None


def test_core_search_only_where_the_core_applies() -> None:
    prop = _case_model("cbpp-prop")[0]   # non-integer counts: the aic is evaluated at each μ
    assert prop.response.aic_constant is None
    assert ScalarTermObjective(prop, 1, np.zeros(prop.p)).compiled_bfgs(
        np.eye(prop.p), np.zeros(prop.p)) is None
    # the quadrature objective has no aic: the core takes non-integer counts there
    assert ScalarTermObjective(prop, 7, np.zeros(prop.p)).compiled_bfgs(
        np.eye(prop.p), np.zeros(prop.p)) is not None
    m = _model("binomial")
    assert ScalarTermObjective(m, 1, np.zeros(2), compiled=False).compiled_bfgs(
        np.eye(2), np.zeros(2)) is None
    obj = ScalarTermObjective(m, 1, np.zeros(2))
    n, q = m.n, m.q

    def minimize(beta0: np.ndarray | None, set0: tuple) -> None:
        mode = (np.zeros(1), np.zeros(2), np.zeros(q), np.ones(q),
                *(np.zeros(n) for _ in range(5)), None, None, None)
        core.scalar_minimize(obj._capsule, np.zeros(2), np.eye(2), beta0, 0.0, None, set0, mode,
                             np.zeros(3), np.zeros(3), np.zeros(3), None, 1e-6, 1e-10, 1e-6, 10,
                             None, None)

    good = (np.zeros(1), np.zeros(2), np.zeros(q), np.ones(q), *(np.zeros(n) for _ in range(5)),
            None, None, None)
    with pytest.raises(TypeError, match="beta0 is required with R"):
        minimize(None, good)
    with pytest.raises(TypeError, match="set0: expected a tuple of 12 arrays"):
        minimize(np.zeros(2), good[:11])
    with pytest.raises(ValueError, match="u: expected"):
        minimize(np.zeros(2), (*good[:2], np.zeros(q + 1), *good[3:]))


def test_core_bfgs_refuses_bad_arguments() -> None:
    """The core's BFGS names a broken objective or setting (a non-tuple from fg gave a
    SystemError; a negative max_iter or NaN tolerance ran, reading dmax from memory never
    written)."""
    x = np.zeros(2)

    def run(fg: object = lambda v: (0.0, v), **change: object) -> tuple:
        args = [fg, x.copy(), np.zeros(2), None, None, bfgs.GTOL, bfgs.DTOL, bfgs.XTOL,
                bfgs.MAX_ITER]
        for k, v in change.items():
            args[{"g": 2, "unit": 4, "gtol": 5, "max_iter": 8}[k]] = v
        return core.bfgs(*args)

    assert run()[0] == End.GRADIENT
    with pytest.raises(TypeError, match=r"^fg: expected a tuple \(F, gradient\) from the "
                                        r"objective, got list$"):
        run(lambda v: [0.0, v])
    with pytest.raises(TypeError, match=r"^fg: expected a callable"):
        run(3)
    with pytest.raises(ValueError, match=r"^max_iter: expected a size in \[0, "):
        run(max_iter=-1)
    with pytest.raises(ValueError, match=r"^gtol: expected a number, got NaN$"):
        run(gtol=float("nan"))
    with pytest.raises(ValueError, match=r"^unit: expected one byte per coordinate \(2\), got 3$"):
        run(unit=b"\x00\x01\x01")
    with pytest.raises(ValueError, match=r"^g: expected 2 float64 values"):
        run(g=np.zeros(3))


def test_core_minimize_refuses_what_crashed_it() -> None:
    """minimize's arguments that crashed it before it checked them (found by test_core_fuzz;
    in a forked child, so that a crash fails this test alone)."""
    from test_core_fuzz import in_child
    m = _model("binomial")
    obj = ScalarTermObjective(m, 1, np.zeros(2))
    n, q = m.n, m.q

    def mode() -> tuple:
        return (np.zeros(1), np.zeros(2), np.zeros(q), np.ones(q),
                *(np.zeros(n) for _ in range(5)), None, None, None)

    def minimize(set1: Callable[[tuple], tuple] | None = None, xl: np.ndarray | None = None
                 ) -> str:
        set0 = mode()
        args = (obj._capsule, np.zeros(2), np.eye(2), np.zeros(2), 0.0, None, set0,
                mode() if set1 is None else set1(set0), np.r_[1.0, 0.0, 0.0], np.zeros(3),
                np.zeros(3) if xl is None else xl, None, 1e-6, 1e-10, 1e-6, 10, None, None)
        return in_child(lambda: core.scalar_minimize(*args))

    assert minimize() == "returned"
    # the two sets a trial is written to, sharing arrays: each trial overwrote the other
    assert minimize(set1=lambda s0: (*mode()[:2], s0[2], *mode()[3:])) == \
        "ValueError: set0.u and set1.u share memory, and the call writes set0.u"
    # xl over an array the model holds: the search wrote its point into the response
    assert minimize(xl=m.response.core_args[2][:3]) == \
        "ValueError: xl shares memory with the model's y, and the call writes xl"
