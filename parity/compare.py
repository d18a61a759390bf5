"""Tolerances and the comparison of two arrays under one: the tiers' bounds, each with its
reason, and the :class:`Row` a comparison gives.  Which quantities are compared, and where
each is read from, is the registry in :mod:`parity.quantities`.

The three tiers:

- ``probe``: the candidate's objective and conditional modes at fixed parameters, against
  lme4's devfun converged with a tiny tolPwrss.  This isolates the objective from the
  optimiser.
- ``tight``: the candidate's optimum against lme4's true optimum (the ``tight`` fit).
- ``default``: the candidate's optimum against what a user gets from ``glmer()`` with
  default settings, which stops early.

Every bound has the form ``|cand - ref| <= abs + rel*|ref| + scaled*max(1, |ref|)``
(one-sided bounds count only ``cand - ref``), and every bound says why it is what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

TIERS: tuple[str, ...] = ("probe", "tight", "default")


@dataclass(frozen=True)
class Tolerance:
    reason: str
    abs: float = 0.0
    rel: float = 0.0
    scaled: float = 0.0
    one_sided: bool = False

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("every tolerance says why it is what it is (reason)")

    def bound(self, ref: np.ndarray) -> np.ndarray:
        a = np.abs(ref)
        return self.abs + self.rel * a + self.scaled * np.maximum(1.0, a)

    def describe(self) -> str:
        parts = []
        if self.abs:
            parts.append(f"{self.abs:g}")
        if self.rel:
            parts.append(f"{self.rel:g}·|ref|")
        if self.scaled:
            parts.append(f"{self.scaled:g}·max(1,|ref|)")
        lhs = "cand−ref" if self.one_sided else "|Δ|"
        return f"{lhs} ≤ " + " + ".join(parts)

    def scaled_by(self, factor: float) -> Tolerance:
        return Tolerance(self.reason, self.abs * factor, self.rel * factor, self.scaled * factor,
                         self.one_sided)


# -- probe tier ---------------------------------------------------------------------------
#: The probes' bounds hold at this tolPwrss; a coarser one widens them by sqrt(tolPwrss/1e-14)
#: (the probe quantities' scale in parity.quantities).
PROBE_BASE_TOL_PWRSS = 1e-14
PROBE_OBJECTIVE = Tolerance(
    rel=1e-8,
    reason="the probes are lme4's devfun at tolPwrss=1e-14, re-run from their own mode so "
           "that lme4's one-iteration-lagged L is the L at the mode; what is left is "
           "rounding (≤ 3e-9 absolute on the corpus).  1e-8 relative is far below any "
           "change of objective definition (a missing constant, or the lagged L of the "
           "default tolPwrss, is ≥ 1e-7 relative).",
)
PROBE_MODES = Tolerance(
    abs=1e-6,
    reason="the modes u and b solve a smooth, strictly convex problem; at tolPwrss=1e-14 the "
           "last PIRLS step is below 1e-7, so converged solvers agree to well under 1e-6.",
)


# -- tight tier ---------------------------------------------------------------------------
TIGHT_OBJECTIVE = Tolerance(
    abs=1e-6, rel=1e-10,
    reason="both optimisers can reach the optimum of the same objective to ~1e-7 in -2logLik; "
           "the relative part only covers rounding of large values, because a mostly relative "
           "bound would let large models off.",
)
TIGHT_PARAMETER = Tolerance(
    scaled=1e-4,
    reason="-2logLik within ~1e-7 of the optimum puts parameters within "
           "~sqrt(2e-7/curvature) of it; weakly identified directions (small θ, correlated "
           "β) have curvature ~1e-2, hence 1e-4, relative for large values.",
)
TIGHT_RANEF = Tolerance(
    abs=1e-4,
    reason="b = Λ(θ)u moves at first order with θ and β, which agree to ~1e-4.",
)
TIGHT_DEVIANCE = Tolerance(
    scaled=1e-4,
    reason="the deviance-residual sum is not stationary at the optimum; it moves at first "
           "order with parameters that agree to ~1e-4 relative.",
)

# -- default tier -------------------------------------------------------------------------
DEFAULT_OBJECTIVE = Tolerance(
    rel=1e-7, one_sided=True,
    reason="lme4's default fit stops early (Nelder-Mead on xt≈1e-4·sd, up to ~1e-3 in "
           "-2logLik), so the candidate's optimum must only be no worse than lme4's default "
           "point, both on the converged objective; 1e-7 relative absorbs rounding.",
)
DEFAULT_FIXEF = Tolerance(
    scaled=2e-3,
    reason="lme4's default Nelder-Mead stops when the simplex spans 1e-4·sd(β) per "
           "coordinate, ~1e-3 of the value in practice.",
)
DEFAULT_THETA = Tolerance(
    scaled=1e-2,
    reason="θ is weakly determined (flat profile) and lme4's default stops on xt = 1e-5 per "
           "coordinate of a simplex that can still be long along the flat direction.",
)


# -- the LMM's tiers (lmer) -------------------------------------------------------------------
LMM_PROBE_OBJECTIVE = Tolerance(
    rel=1e-10,
    reason="an LMM's profiled criterion has no inner iteration: at fixed θ it is one "
           "Cholesky factor and one solve, so lme4's value is exact up to rounding (sums of n "
           "terms, a log-determinant: ~1e-13 relative); 1e-10 leaves room for the order of the "
           "sums and still sees any change of definition (a constant, a divisor n − p).",
)
LMM_TIGHT_PARAMETER = Tolerance(
    scaled=1e-5,
    reason="with the criterion exact, both tight optimisers reach θ to ~1e-7 (lme4's bobyqa "
           "at rhoend = 1e-10, glmm's BFGS with the exact gradient to ‖g‖∞ ≤ 1e-7); β̂, σ̂ "
           "and b̃ are smooth functions of θ̂, hence 1e-5 of max(1, |value|).",
)
LMM_DEFAULT_OBJECTIVE = Tolerance(
    rel=1e-10, one_sided=True,
    reason="lme4's default fit (nloptwrap BOBYQA, xtol_rel = 1e-4) stops up to ~1e-9 above "
           "the optimum; the candidate must be no worse than that point, 1e-10 relative "
           "absorbing the criterion's rounding.",
)


DRIFT_DEFAULT_OBJECTIVE = Tolerance(
    abs=1e-5, rel=1e-10,
    reason="lme4's default fit stops early, and where its optimiser's path changes it stops "
           "elsewhere on the flat floor of the optimum: the same lme4 1.1-31 and Debian "
           "packages on another x86-64 machine (libm picks its exp and log by processor) "
           "took contraception-slope's default fit through 1124 evaluations instead of 1033, "
           "2.2e-6 lower in -2logLik; an lme4 upgrade that changes the default optimiser moves "
           "it by 1e-4 or more.  The tight fits and the probes, which do not depend on the "
           "path, keep their bounds.",
)


@dataclass(frozen=True)
class Row:
    """One compared quantity of one case × variant.  ``status`` is "pass", "fail" or "skip".

    ``variant`` is the variant's label (``nAGQ1``, ``REML``), empty for a row about the whole
    case (its reference could not be read).  ``ratio`` is the worst |Δ|/bound over the
    elements (cand − ref over the bound for a one-sided bound): at most 1 passes.
    """

    case: str
    variant: str
    tier: str
    quantity: str
    status: str
    max_abs: float | None = None
    max_rel: float | None = None
    ratio: float | None = None
    bound: str = ""
    note: str = ""

    @property
    def test_id(self) -> str:
        return "-".join(p for p in (self.case, self.variant, self.quantity) if p)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def compare_values(case: str, variant: str, tier: str, quantity: str,
                   cand: Sequence[float] | float | np.ndarray,
                   ref: Sequence[float] | float | np.ndarray, tol: Tolerance,
                   labels: Sequence[str] = ()) -> Row:
    """Elementwise comparison of two equally shaped arrays under ``tol``."""
    c = np.atleast_1d(np.asarray(cand, dtype=float))
    r = np.atleast_1d(np.asarray(ref, dtype=float))
    if c.shape != r.shape:
        return Row(case, variant, tier, quantity, "fail", bound=tol.describe(),
                   note=f"shape {c.shape} differs from the reference's {r.shape}")
    if c.size == 0:
        return Row(case, variant, tier, quantity, "pass", 0.0, 0.0, 0.0, tol.describe(), "empty")
    diff = c - r
    bound = tol.bound(r)
    over = diff if tol.one_sided else np.abs(diff)
    excess = over - bound
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(bound > 0, over / bound, np.where(over > 0, np.inf, 0.0))
        rel = np.abs(diff) / np.abs(r)
    if not np.all(np.isfinite(c)):
        excess = np.where(np.isfinite(c), excess, np.inf)
        ratio = np.where(np.isfinite(c), ratio, np.inf)
    worst = int(np.argmax(excess))
    rel = np.where(np.abs(r) > 0, rel, np.where(diff == 0, 0.0, np.inf))
    ok = bool(np.all(excess <= 0))
    note = ""
    if not ok:
        where = labels[worst] if worst < len(labels) else f"[{worst}]"
        note = (f"worst at {where}: candidate {float(c.flat[worst])!r}, "
                f"reference {float(r.flat[worst])!r}")
    return Row(case, variant, tier, quantity, "pass" if ok else "fail",
               float(np.max(np.abs(diff))), float(np.max(rel)), max(0.0, float(np.max(ratio))),
               tol.describe(), note)
