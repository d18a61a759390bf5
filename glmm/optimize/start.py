"""The GLM without random effects, fitted by IRLS as R's ``glm.fit``: the start β₀ of the
optimisation (:mod:`glmm.optimize.driver`)."""

from __future__ import annotations

import numpy as np

from ..errors import PirlsError
from ..families.response import Working
from ..linalg.lapack import FactorizationError, cho_solve, cholesky
from ..objectives.model import GlmerModel
from ..objectives.pirls import MAX_HALVINGS, START_NOT_FINITE
from ..threads import scipy_linalg


def glm_start(model: GlmerModel, max_iter: int = 50, beta: np.ndarray | None = None
              ) -> np.ndarray:
    """β of the GLM without random effects, by IRLS from η = g(μ_start) (as R's glm.fit),
    or from η = o + Xβ when ``beta`` is given.

    Each step solves the weighted normal equations XᵀWX β = XᵀW z with the working response
    z = η − o + (y − μ)/μ', i.e. XᵀWX β = XᵀW(η − o) + Xᵀs, by Cholesky (X has full column
    rank: :mod:`glmm.design.fixed` drops aliased columns), through the same response pass as PIRLS.
    As in glm.fit, a step to a point where the deviance is not finite (μ outside the
    family's range, e.g. μ < 0 with Poisson's identity link) is halved back towards the last
    β, up to MAX_HALVINGS times.  It stops when the deviance changes by less than 1e-10
    relative, or after ``max_iter`` steps.  Raises :class:`PirlsError` when the very first
    step gives no valid point (glm.fit's "no valid set of coefficients has been found").
    """
    X, o, resp = model.X, model.offset, model.response
    if model.p == 0:   # no fixed effects (y ~ 0 + (1 | g)): nothing to fit
        return np.zeros(0)
    eta = model.family.link.linkfun(model.mustart) if beta is None else o + X @ beta
    dev_old = np.inf
    last = beta   # the last β with a finite deviance, None until there is one
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        wk = resp.update(eta)
        if not np.isfinite(wk.dev.sum()):
            raise PirlsError(f"{START_NOT_FINITE} of the GLM without random effects")
        for _ in range(max_iter):
            beta = _irls_step(X, o, eta, wk)
            for _ in range(MAX_HALVINGS + 1):
                eta = o + X @ beta
                wk = resp.update(eta)
                dev = float(wk.dev.sum())
                if np.isfinite(dev) or last is None:
                    break
                beta = 0.5 * (beta + last)
            if not np.isfinite(dev):
                raise PirlsError(
                    "no valid set of coefficients was found for the GLM without random "
                    f"effects (the deviance is not finite: μ leaves the {model.family.name} "
                    f"family's range under the {model.family.link.name} link); lme4 fails "
                    "here too")
            last = beta
            if abs(dev - dev_old) < 1e-10 * (abs(dev) + 0.1):
                break
            dev_old = dev
    return beta


def _irls_step(X: np.ndarray, o: np.ndarray, eta: np.ndarray, wk: Working) -> np.ndarray:
    """β solving the weighted normal equations at the working weights and scores ``wk``."""
    WX = wk.W[:, None] * X
    rhs = WX.T @ (eta - o) + X.T @ wk.s
    try:
        return cho_solve(cholesky(X.T @ WX, lower=False), rhs, lower=False)
    except FactorizationError:   # numerically singular XᵀWX: least squares
        sw = np.sqrt(wk.W)
        z = eta - o + wk.s / np.where(wk.W > 0, wk.W, 1.0)
        return scipy_linalg().lstsq(sw[:, None] * X, sw * z, check_finite=False)[0]
