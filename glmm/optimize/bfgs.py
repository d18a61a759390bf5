"""A small dense BFGS for smooth objectives with a gradient (docs/optimizer.md).

The problems here have a handful of parameters (θ and a whitened β) and an objective that
can be as cheap as a few array passes; scipy's minimisers spend more per iteration than a
small model's whole evaluation.  The method, with H ≈ ∇²F⁻¹:

    d = −H g;   x⁺ = x + t d,  t = 1 first (the very first step: no coordinate moves by
                more than ½), backtracked (safeguarded quadratic interpolation) until
                F(x⁺) ≤ F(x) + c₁ t gᵀd   (Armijo),  or F(x⁺) within F's last bits of
                F(x) (FLAT_F) with a smaller ‖g⁺‖∞
    s = x⁺ − x, y = g⁺ − g;  H₀ = (sᵀy / yᵀy) I before the first update (Shanno–Phua; only
                on the coordinates not marked ``unit``, the others keep 1);
    H⁺ = (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ,  ρ = 1/(sᵀy), skipped when sᵀy ≤ 0.

It stops when ‖g‖∞ ≤ ``gtol``; or when the quasi-Newton decrement gᵀHg, ≈ twice the
reduction still available, is below ``dtol`` and the quasi-Newton step Hg is below ``xtol``
in every coordinate (after the first update, once H carries curvature); or when no step
along d reduces F (``converged`` then says whether ‖g‖∞ is small or the decrease on offer,
gᵀHg, is at F's rounding level).  A point where F cannot be evaluated (an
exception listed in ``failures``) counts as F = +∞.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

C1 = 1e-4            # Armijo's sufficient decrease
MAX_BACKTRACKS = 30

# Stopping rules, on lme4's deviance scale.  The parity suite's tight tier asks for −2logLik
# within 1e-6 and parameters within 1e-4 of lme4's tight optimum, and the exact gradient is
# good to ~1e-9.
#: ‖g‖∞ at the optimum: with gtol = 1e-4 the largest θ difference in the parity suite rose
#: to 3.5e-5 (seed), a third of its bound; at 1e-6 it is 3e-6.
GTOL = 1e-6
#: gᵀHg ≈ 2(F − F*): F within 5e-11 of its minimum, far inside the 1e-6 bound ...
DTOL = 1e-10
#: ... and Hg, the predicted remaining move, far inside the 1e-4 bound on parameters.
XTOL = 1e-6
#: When no step along d lowers F, the search still counts as converged if ‖g‖∞ is within this
#: of the gradient test, or if the decrease on offer, gᵀHg, is below STALL_DECREMENT·|F|: F
#: is itself only good to ~1e-12 relative (PIRLS converged to a decrement of 1e-20, sums of
#: n terms), so a smaller decrease cannot be seen in F.
STALL_GMAX = 1e-3
STALL_DECREMENT = 1e-10
#: A trial point whose F is within FLAT_F·|F| of F(x) (its last bits: near the optimum of a
#: large criterion, InstEval's 2.4e5, the decrease on offer is below them) counts as a
#: decrease when its gradient is smaller: Armijo's test cannot see the step, the gradient can.
FLAT_F = 1e-15
#: At most this many iterations.
MAX_ITER = 500
BAD_START_MESSAGE = "the objective cannot be evaluated at the starting point"


@dataclass(frozen=True, eq=False)
class BfgsResult:
    """Where a search ended: x, F and ∇F there, the evaluations it took, its verdict."""

    x: np.ndarray
    f: float
    g: np.ndarray
    nfev: int
    converged: bool
    message: str
    #: the objective's parameters at x, when the minimiser computed them there (see
    #: glmm.objectives.scalar_term.ScalarTermObjective.compiled_bfgs); else None
    params: np.ndarray | None = None


#: A search from x0 given (F, ∇F) there or None: ``run(x0, start)`` (minimize_bfgs on a fixed
#: objective, or the compiled core's equivalent).
Minimizer = Callable[[np.ndarray, tuple[float, np.ndarray] | None], BfgsResult]


class End(IntEnum):
    """How the search ended (the compiled core's BFGS reports the same codes)."""

    GRADIENT = 0     # ‖g‖∞ ≤ gtol
    DECREMENT = 1    # gᵀHg ≤ dtol and ‖Hg‖∞ ≤ xtol
    STALLED = 2      # no step along d lowers F
    ITERATIONS = 3   # max_iter iterations
    BAD_START = 4    # F cannot be evaluated at x0 (the core's; minimize_bfgs raises)


def message(end: int, gmax: float, decrement: float, dmax: float, *, gtol: float = GTOL,
            dtol: float = DTOL, xtol: float = XTOL, max_iter: int = MAX_ITER) -> str:
    """The result's message for how the search ended, with ‖g‖∞, gᵀHg and ‖Hg‖∞ there."""
    if end == End.GRADIENT:
        return f"‖g‖∞ = {gmax:.2e} ≤ {gtol:g}"
    if end == End.DECREMENT:
        return (f"quasi-Newton decrement {decrement:.2e} ≤ {dtol:g} and step "
                f"{dmax:.2e} ≤ {xtol:g}")
    if end == End.STALLED:
        return (f"no decrease along the search direction (‖g‖∞ = {gmax:.2e}, "
                f"quasi-Newton decrement {decrement:.2e})")
    return f"{max_iter} iterations"


def finite_start(start: tuple[float, np.ndarray]) -> tuple[float, np.ndarray]:
    """(F, ∇F) at x0 as given; ArithmeticError where either is not finite (a search from
    there would stall at once and take F = +∞ as the rounding level)."""
    f, g = float(start[0]), np.asarray(start[1], dtype=float)
    if not (math.isfinite(f) and np.count_nonzero(np.isfinite(g)) == g.size):
        raise ArithmeticError(BAD_START_MESSAGE)
    return f, g


def minimize_bfgs(fg: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, *,
                  gtol: float = GTOL, dtol: float = DTOL, xtol: float = XTOL,
                  max_iter: int = MAX_ITER, unit: np.ndarray | None = None,
                  start: tuple[float, np.ndarray] | None = None,
                  failures: tuple[type[Exception], ...] = (ArithmeticError,)) -> BfgsResult:
    """Minimise F from x0; ``fg(x)`` returns (F(x), ∇F(x)); ``start`` is (F, ∇F) at x0 if
    already known.  ``unit`` marks coordinates already scaled to unit curvature: the first
    inverse-Hessian scaling (Shanno–Phua) is then taken from, and applied to, the others only."""
    nfev = 0

    def evaluate(x: np.ndarray) -> tuple[float, np.ndarray | None]:
        nonlocal nfev
        nfev += 1
        try:
            f, g = fg(x)
        except failures:
            return np.inf, None
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            return np.inf, None
        return float(f), np.asarray(g, dtype=float)

    x = np.array(x0, dtype=float)
    if start is None:
        f, g = evaluate(x)
        if g is None:
            raise ArithmeticError(BAD_START_MESSAGE)
    else:
        f, g = finite_start(start)
    n = len(x)
    H = np.eye(n)
    scaled = False
    for _ in range(max_iter):
        gmax = float(np.abs(g).max()) if n else 0.0
        if gmax <= gtol:
            return BfgsResult(x, f, g, nfev, True, message(End.GRADIENT, gmax, 0.0, 0.0, gtol=gtol))
        d = -(H @ g)
        slope = float(g @ d)
        if slope >= 0.0:  # H lost positive definiteness to rounding: restart
            H, scaled = np.eye(n), False
            d, slope = -g, -float(g @ g)
        dmax = float(np.abs(d).max())
        if scaled and -slope <= dtol and dmax <= xtol:
            return BfgsResult(x, f, g, nfev, True,
                              message(End.DECREMENT, gmax, -slope, dmax, dtol=dtol, xtol=xtol))
        # the first step, with H = I, moves no coordinate by more than ½: a full unit step
        # from lme4's θ₀ = 1 can land exactly on θ = 0, a stationary point of F by symmetry
        t = 1.0 if scaled else min(1.0, 0.5 / gmax)
        for _ in range(MAX_BACKTRACKS):
            xn = x + t * d
            fn, gn = evaluate(xn)
            if gn is not None and (fn <= f + C1 * t * slope
                                   or (fn <= f + FLAT_F * abs(f)
                                       and float(np.abs(gn).max()) < gmax)):
                break
            if gn is None:
                t *= 0.1
            else:  # minimiser of the quadratic through f, slope and fn, kept in [0.1t, 0.5t]
                tq = -slope * t * t / (2.0 * (fn - f - slope * t))
                t = min(max(tq, 0.1 * t), 0.5 * t)
        else:   # converged if the decrease on offer is at F's rounding level
            return BfgsResult(x, f, g, nfev,
                              gmax <= STALL_GMAX
                              or -slope <= STALL_DECREMENT * max(1.0, abs(f)),
                              message(End.STALLED, gmax, -slope, dmax))
        assert gn is not None
        s, y = xn - x, gn - g
        sy, yy = float(s @ y), float(y @ y)
        if sy > 1e-12 * math.sqrt(float(s @ s) * yy):
            if not scaled:
                if unit is None or np.all(unit):
                    H = np.eye(n) * (sy / yy)
                else:   # Shanno–Phua on the coordinates not already scaled to unit curvature
                    free = ~unit
                    gamma = float(s[free] @ y[free]) / float(y[free] @ y[free])
                    H = np.diag(np.where(unit, 1.0, gamma if gamma > 0 else 1.0))
                scaled = True
            rho = 1.0 / sy
            Hy = H @ y
            sHy = s[:, None] * Hy
            H = H - rho * (sHy + sHy.T) + (rho * rho * float(y @ Hy) + rho) * (s[:, None] * s)
        x, f, g = xn, fn, gn
    return BfgsResult(x, f, g, nfev, False, message(End.ITERATIONS, 0.0, 0.0, 0.0,
                                                     max_iter=max_iter))


#: Central differences: step ε^(1/3)·max(1, |xᵢ|), which balances truncation (∝ h²) and
#: rounding of F (∝ 1/h); the gradient is then good to ~1e-7 relative.
FD_STEP = float(np.finfo(float).eps) ** (1.0 / 3.0)


def central_differences(value: Callable[[np.ndarray], float], x: np.ndarray,
                        f: float | None = None) -> tuple[float, np.ndarray]:
    """(F(x), ∇F(x) by central differences): 2·len(x) evaluations, one more unless F(x) is
    given as ``f``."""
    if f is None:
        f = value(x)
    g = np.empty(len(x))
    for i in range(len(x)):
        h = FD_STEP * max(1.0, abs(x[i]))
        e = np.zeros(len(x))
        e[i] = h
        g[i] = (value(x + e) - value(x - e)) / (2.0 * h)
    return f, g
