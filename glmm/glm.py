"""The GLM without random effects, fitted by IRLS as R's ``glm.fit``: the start β₀ of the
optimisation (:mod:`glmm.optimize`)."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .linalg import FactorizationError, cho_solve, cholesky
from .model import GlmerModel


def glm_start(model: GlmerModel, max_iter: int = 50, beta: np.ndarray | None = None
              ) -> np.ndarray:
    """β of the GLM without random effects, by IRLS from η = g(μ_start) (as R's glm.fit),
    or from η = o + Xβ when ``beta`` is given.

    Each step solves the weighted normal equations XᵀWX β = XᵀW z with the working response
    z = η − o + (y − μ)/μ', i.e. XᵀWX β = XᵀW(η − o) + Xᵀs, by Cholesky (X has full column
    rank: :mod:`glmm.fixed` drops aliased columns), through the same response pass as PIRLS.
    It stops when the deviance changes by less than 1e-10 relative, or after ``max_iter``
    steps.
    """
    X, o, resp = model.X, model.offset, model.response
    if model.p == 0:   # no fixed effects (y ~ 0 + (1 | g)): nothing to fit
        return np.zeros(0)
    eta = model.family.link.linkfun(model.mustart) if beta is None else o + X @ beta
    dev_old = np.inf
    beta = np.zeros(model.p) if beta is None else beta
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        wk = resp.update(eta)
        for _ in range(max_iter):
            WX = wk.W[:, None] * X
            rhs = WX.T @ (eta - o) + X.T @ wk.s
            try:
                beta = cho_solve(cholesky(X.T @ WX, lower=False), rhs, lower=False)
            except FactorizationError:   # numerically singular XᵀWX: least squares
                sw = np.sqrt(wk.W)
                z = eta - o + wk.s / np.where(wk.W > 0, wk.W, 1.0)
                beta = scipy.linalg.lstsq(sw[:, None] * X, sw * z, check_finite=False)[0]
            eta = o + X @ beta
            wk = resp.update(eta)
            dev = float(wk.dev.sum())
            if abs(dev - dev_old) < 1e-10 * (abs(dev) + 0.1):
                break
            dev_old = dev
    return beta
