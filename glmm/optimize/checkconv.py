"""lme4's convergence checks at the optimum (``checkConv`` and ``checkHess``, lme4
R/checkConv.R), on the gradient g and the Hessian H of the objective over its parameters.

In lme4's order, with its default tolerances (``glmerControl()$checkConv``):

1. singular: some θ with lower bound 0 below 1e-4 — "boundary (singular) fit"; then no other
   check runs;
2. gradient: with RᵀR = H (Cholesky), the scaled gradient R⁻ᵀg (lme4's ``solve(chol(H), g)``);
   m = max(min(|R⁻ᵀg|, |g|)) > 2e-3 — "Model failed to converge with max|grad| = m";
3. Hessian, first of β's block (type "fixed-effect"), then of the whole H, with its
   eigenvalues λ and tol = 1e-6: any λ < −tol — "degenerate Hessian with k negative
   eigenvalues" (code −3); else any |λ| < tol, or no Cholesky factor — "numerically singular"
   (code −4); else max λ · tol > 1 — "very large eigenvalue" (code 2), and min λ / max λ < tol —
   "very large eigenvalue ratio" (code 3).

lme4 computes g and H by finite differences of its objective; glmm has the exact gradient,
and H by central differences of it (:func:`glmm.results.vcov.hessian`).  For nAGQ = 0 glmer
passes no derivatives, so only the singular check runs (lme4 1.1-31 as well).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: lme4's defaults (``glmerControl()$checkConv``)
GRAD_TOL = 2e-3
SINGULAR_TOL = 1e-4
HESS_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class ConvergenceChecks:
    """The outcome of lme4's ``checkConv`` at the optimum.

    ``codes`` and ``messages`` are lme4's (``optinfo$conv$lme4``: −1 gradient, −3/−4 and 2/3
    Hessian); ``warnings`` pairs each message with its kind ("gradient" or "hessian").
    ``gradient`` and ``hessian`` are where the checks were made (None for nAGQ = 0);
    ``scaled_gradient`` is R⁻ᵀg; ``max_grad`` lme4's m.
    """

    singular: bool
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = field(default=None, repr=False)
    scaled_gradient: np.ndarray | None = None
    max_grad: float | None = None
    codes: tuple[int, ...] = ()
    messages: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.messages


def _hess_messages(H: np.ndarray, tol: float, what: str) -> list[tuple[int, str]]:
    """lme4's ``checkHess``."""
    out: list[tuple[int, str]] = []
    try:
        ev = np.linalg.eigvalsh(H)
    except np.linalg.LinAlgError:
        return [(-6, f"Problem with {what} Hessian check (infinite or missing values?)")]
    neg = int(np.sum(ev < -tol))
    if neg:
        return [(-3, f"Model failed to converge: degenerate {what} Hessian with {neg} "
                     f"negative eigenvalues")]
    chol_ok = True
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        chol_ok = False
    if np.any(np.abs(ev) < tol) or not chol_ok:
        return [(-4, f"{what} Hessian is numerically singular: parameters are not uniquely "
                     f"determined")]
    if ev.max() * tol > 1:
        out.append((2, "Model is nearly unidentifiable: very large eigenvalue\n - Rescale "
                       "variables?"))
    if ev.min() / ev.max() < tol:
        out.append((3, "Model is nearly unidentifiable: large eigenvalue ratio\n - Rescale "
                       "variables?"))
    return out


def check_convergence(params: np.ndarray, lower: np.ndarray, ntheta: int,
                      gradient: np.ndarray | None, hessian: np.ndarray | None,
                      grad_tol: float = GRAD_TOL, singular_tol: float = SINGULAR_TOL,
                      hess_tol: float = HESS_TOL) -> ConvergenceChecks:
    """lme4's ``checkConv`` on the derivatives at ``params`` (θ then β)."""
    theta = np.asarray(params, dtype=float)[:ntheta]
    bounded = np.asarray(lower, dtype=float)[:ntheta] == 0.0
    singular = bool(np.any(theta[bounded] < singular_tol))
    if singular or gradient is None or hessian is None:
        return ConvergenceChecks(singular, gradient, hessian)
    g = np.asarray(gradient, dtype=float)
    H = np.asarray(hessian, dtype=float)
    found: list[tuple[int, str, str]] = []
    scgrad: np.ndarray | None
    try:
        R = np.linalg.cholesky(H).T            # RᵀR = H, lme4's chol(H)
        scgrad = np.linalg.solve(R, g)          # lme4's solve(chol(H), g)
    except np.linalg.LinAlgError:
        scgrad = None
        found.append((-1, "unable to evaluate scaled gradient", "gradient"))
    m = None
    if scgrad is not None:
        m = float(np.max(np.minimum(np.abs(scgrad), np.abs(g))))
        if m > grad_tol:
            found.append((-1, f"Model failed to converge with max|grad| = {m:.6g} (tol = "
                              f"{grad_tol:g}, component 1)", "gradient"))
    p = len(g) - ntheta
    if p > 0:
        for code, msg in _hess_messages(H[ntheta:, ntheta:], hess_tol, "fixed-effect"):
            found.append((code, msg, "hessian"))
    for code, msg in _hess_messages(H, hess_tol, ""):
        found.append((code, msg, "hessian"))   # lme4's words, "degenerate  Hessian" too
    return ConvergenceChecks(False, g, H, scgrad, m, tuple(c for c, _, _ in found),
                             tuple(msg for _, msg, _ in found), tuple(k for _, _, k in found))
