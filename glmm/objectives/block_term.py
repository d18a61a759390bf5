"""The BFGS search of a GLMM with one vector-valued term, (x₁ + … | g), in the compiled core
(glmm/csrc/block.c): for the canonical pairs, F₀ (nAGQ = 0) and F₁ (nAGQ = 1) with their
exact gradients, PIRLS with per-level p₁ × p₁ blocks Gⱼ = I + Σ_{i∈j} WᵢAᵢᵀAᵢ (Aᵢ = XᵢT),
each evaluation warm-started from the last mode as :class:`~glmm.objectives.base.Objective`
does.  The formulas are those of :mod:`glmm.objectives.pirls` and
:mod:`glmm.objectives.gradient` with G block diagonal, so the search follows the numpy one's
path to rounding (its first PIRLS starts from u = 0, numpy's from the last evaluation: the
same mode, to ~1e-9); the last mode the core reached (û, β̂ and the response there) becomes the
objective's last evaluation, its factor built once here, so the optimum needs no PIRLS in
numpy.  Written in C because on a small model (Contraception:
1934 rows, 60 levels) the numpy evaluations are bound by per-call overhead, not arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..compiled import core as _core
from ..linalg.blocked import BlockedCholesky
from ..optimize.bfgs import BAD_START_MESSAGE, DTOL, GTOL, XTOL, BfgsResult, End, Minimizer, message
from ..optimize.bfgs import MAX_ITER as BFGS_MAX_ITER
from .base import Objective
from .model import GlmerModel
from .pirls import PirlsState

#: the largest term the core takes (its per-level blocks live on the stack)
MAX_P1 = 16


def block_capsule(model: GlmerModel, nAGQ: int) -> object | None:
    """The core's model (a ``block_model`` capsule) where it takes this one: a single term of
    2 to MAX_P1 columns, a canonical pair (binomial–logit, Poisson–log) whose aic is Σdev plus
    a constant, nAGQ 0 or 1; else None."""
    resp = model.response
    if (_core is None or len(model.terms) != 1 or not 2 <= model.terms[0].p <= MAX_P1
            or nAGQ > 1 or resp.core_args is None or resp.aic_constant is None):
        return None
    t = model.terms[0]
    kind, binary, y, w, ylogy = resp.core_args
    return _core.block_model(kind, binary, y, w, ylogy,
                             np.ascontiguousarray(t.codes, dtype=np.int64),
                             np.ascontiguousarray(t.Xi, dtype=float), t.nlevels, t.p,
                             np.ascontiguousarray(model.X, dtype=float), model.p,
                             np.ascontiguousarray(model.offset, dtype=float))


def block_bfgs(obj: Objective, capsule: object, R: np.ndarray | None,
               beta0: np.ndarray | None, tolerances: Mapping[str, float] | None
               ) -> Minimizer:
    """``run(x0, start)``: BFGS in the core over θ (R None: F₀) or (θ, ζ), β = β₀ + R⁻¹ζ (F₁),
    with :func:`glmm.optimize.bfgs.minimize_bfgs`'s rules, on ``obj``'s model; the core's
    evaluations are added to ``obj.evaluations``."""
    assert _core is not None
    tol = {"gtol": GTOL, "dtol": DTOL, "xtol": XTOL, "max_iter": BFGS_MAX_ITER,
           **(tolerances or {})}
    Rc = None if R is None else np.ascontiguousarray(R, dtype=float)
    b0 = None if beta0 is None else np.ascontiguousarray(beta0, dtype=float)
    start_beta = np.ascontiguousarray(obj.beta_start, dtype=float)
    offset = obj.model.response.aic_constant
    assert offset is not None

    m = obj.model
    joint = R is None

    def run(x0: np.ndarray, start: tuple[float, np.ndarray] | None) -> BfgsResult:
        x = np.array(x0, dtype=float)
        g = np.zeros(len(x)) if start is None else np.array(start[1], dtype=float)
        mode = (np.empty(m.ntheta), np.empty(m.p), np.empty(m.q),
                *(np.empty(m.n) for _ in range(5)))
        xl = np.empty(len(x))
        (code, converged, f, nfev, gmax, decrement, dmax), evaluations, have = \
            _core.block_minimize(capsule, Rc, b0, start_beta, float(offset), x, g,
                                 None if start is None else float(start[0]),
                                 float(tol["gtol"]), float(tol["dtol"]), float(tol["xtol"]),
                                 int(tol["max_iter"]), mode, xl)
        obj.evaluations += evaluations
        params = None
        if have:   # the last mode the core reached becomes the objective's last evaluation
            theta, beta, u, eta, mu, dev, W, s = mode
            layouts = m.layouts(theta)
            factor = BlockedCholesky(layouts, W, m.coupling,
                                     m.fixed_blocks(layouts, W) if joint else None)
            st = PirlsState(u, beta, eta, mu, dev, W, s, factor, layouts, 0)
            pl = theta if joint else np.concatenate([theta, beta])
            obj.last = (pl, obj._laplace(theta, st))
            if np.array_equal(x, xl):
                params = pl.copy()
        if code == End.BAD_START:
            raise ArithmeticError(BAD_START_MESSAGE)
        return BfgsResult(x, f, g, nfev, bool(converged),
                          message(code, gmax, decrement, dmax, **tol), params)

    return run
