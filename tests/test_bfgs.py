"""glmm.optimize.bfgs, the optimiser of every fit, on problems with known minima."""

from __future__ import annotations

import numpy as np
import pytest

from glmm.optimize.bfgs import central_differences, minimize_bfgs
from glmm.optimize.driver import _minimize


def rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    a, b = x
    f = 100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2
    g = np.array([-400.0 * a * (b - a * a) - 2.0 * (1.0 - a), 200.0 * (b - a * a)])
    return f, g


def test_rosenbrock_reaches_its_minimum() -> None:
    res = minimize_bfgs(rosenbrock, np.array([-1.2, 1.0]))
    assert res.converged
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-6)  # minimum at (1, 1)
    assert res.f < 1e-12


def test_ill_conditioned_quadratic() -> None:
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    A = Q @ np.diag(np.logspace(0, 3, 6)) @ Q.T          # condition number 1e3
    b = rng.normal(size=6)
    res = minimize_bfgs(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(6))
    assert res.converged
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), atol=1e-6)
    assert res.nfev < 60  # a few more than the dimension; steepest descent would need ~1e3


def test_points_that_cannot_be_evaluated_are_stepped_back_from() -> None:
    # F = (x − 1.5)² is undefined beyond x = 2; the first step from 0 lands at 2.5
    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        if x[0] > 2.0:
            raise ArithmeticError("outside the domain")
        return float((x[0] - 1.5) ** 2), np.array([2.0 * (x[0] - 1.5)])

    res = minimize_bfgs(fg, np.array([-1.0]))
    assert res.converged
    assert res.x[0] == pytest.approx(1.5, abs=1e-6)


def test_a_start_that_cannot_be_evaluated_is_an_error() -> None:
    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        raise ArithmeticError("nowhere defined")

    with pytest.raises(ArithmeticError, match="starting point"):
        minimize_bfgs(fg, np.zeros(2))


def test_a_theta_stuck_at_a_symmetric_maximum_is_released() -> None:
    # F(θ) = (θ² − ¼)² is even, with a local maximum at θ = 0 (gradient 0) and minima at ±½
    def f(x: np.ndarray) -> float:
        return float((x[0] ** 2 - 0.25) ** 2 + (x[1] - 2.0) ** 2)

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        return f(x), np.array([4.0 * x[0] * (x[0] ** 2 - 0.25), 2.0 * (x[1] - 2.0)])

    stuck = minimize_bfgs(fg, np.array([0.0, 0.0]))
    assert stuck.x[0] == 0.0                     # BFGS alone cannot leave θ = 0
    res = _minimize(f, fg, np.array([0.0, 0.0]), diagonal=[0])
    np.testing.assert_allclose(res.x, [0.5, 2.0], atol=1e-6)


def test_central_differences_of_a_known_function() -> None:
    x = np.array([0.3, -1.2])
    f, g = central_differences(lambda x: float(np.sin(x[0]) * np.exp(x[1])), x)
    assert f == np.sin(0.3) * np.exp(-1.2)
    # truncation h² times the third derivative / 6 with h = 6e-6, and rounding eps·|f|/h:
    # below 1e-9 here
    np.testing.assert_allclose(g, [np.cos(0.3) * np.exp(-1.2), np.sin(0.3) * np.exp(-1.2)],
                               atol=1e-9)


@pytest.mark.parametrize("start", [(np.inf, np.zeros(1)), (np.nan, np.zeros(1)),
                                   (1.0, np.array([np.nan]))])
def test_non_finite_start_is_refused_not_converged(start) -> None:
    """A search given F = +inf at its start used to stall at once and call that converged
    (the decrease on offer is "below the rounding level" of an infinite F)."""
    def fg(x):
        return float(x @ x), 2 * x
    with pytest.raises(ArithmeticError, match="cannot be evaluated at the starting point"):
        minimize_bfgs(fg, np.ones(1), start=start)
