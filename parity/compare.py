"""The comparison layer: per-quantity differences between a reference and a candidate,
judged under three named tolerance tiers.

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

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .results import FitResult, NAGQReference, ProbeResult

TIERS: tuple[str, ...] = ("probe", "tight", "default")

#: The quantities each tier reports, in report order.  Test ids are case-nAGQk-quantity.
QUANTITIES: dict[str, tuple[str, ...]] = {
    "probe": ("probe-objective", "probe-u", "probe-b"),
    "tight": ("m2loglik", "loglik", "aic", "bic", "deviance", "fixef", "theta", "ranef"),
    "default": ("default-m2loglik", "default-fixef", "default-theta"),
}


@dataclass(frozen=True)
class Tolerance:
    reason: str
    abs: float = 0.0
    rel: float = 0.0
    scaled: float = 0.0
    one_sided: bool = False

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
#: Base bounds for probes made at tolPwrss = 1e-14.
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


def probe_tolerances(tol_pwrss: float) -> tuple[Tolerance, Tolerance]:
    """(objective, modes) bounds for probes made at ``tol_pwrss``.

    PIRLS stops when the relative change of the penalised deviance falls below tolPwrss.
    Near the mode that change is quadratic in the step, so the last step in u (and, through
    the lagged L, the error in the objective) is of order sqrt(tolPwrss).  The base bounds
    hold at 1e-14; a case whose PIRLS only converges at a larger tolPwrss (large data, where
    the step-halving test sees summation noise) gets bounds scaled by
    sqrt(tolPwrss / 1e-14).  The generator records the tolPwrss in the fixture.
    """
    factor = math.sqrt(max(tol_pwrss, PROBE_BASE_TOL_PWRSS) / PROBE_BASE_TOL_PWRSS)
    if factor == 1.0:
        return PROBE_OBJECTIVE, PROBE_MODES
    return PROBE_OBJECTIVE.scaled_by(factor), PROBE_MODES.scaled_by(factor)


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


@dataclass(frozen=True)
class Row:
    """One compared quantity.  ``status`` is "pass", "fail" or "skip"."""

    case: str
    nAGQ: int
    tier: str
    quantity: str
    status: str
    max_abs: float | None = None
    max_rel: float | None = None
    bound: str = ""
    note: str = ""

    @property
    def test_id(self) -> str:
        return f"{self.case}-nAGQ{self.nAGQ}-{self.quantity}"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def compare_values(case: str, nAGQ: int, tier: str, quantity: str, cand: Sequence[float] | float,
                   ref: Sequence[float] | float, tol: Tolerance, labels: Sequence[str] = ()
                   ) -> Row:
    """Elementwise comparison of two equally shaped arrays under ``tol``."""
    c = np.atleast_1d(np.asarray(cand, dtype=float))
    r = np.atleast_1d(np.asarray(ref, dtype=float))
    if c.shape != r.shape:
        return Row(case, nAGQ, tier, quantity, "fail", bound=tol.describe(),
                   note=f"shape {c.shape} differs from the reference's {r.shape}")
    if c.size == 0:
        return Row(case, nAGQ, tier, quantity, "pass", 0.0, 0.0, tol.describe(), "empty")
    diff = c - r
    excess = (diff if tol.one_sided else np.abs(diff)) - tol.bound(r)
    if not np.all(np.isfinite(c)):
        excess = np.where(np.isfinite(c), excess, np.inf)
    worst = int(np.argmax(excess))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.abs(diff) / np.abs(r)
    rel = np.where(np.abs(r) > 0, rel, np.where(diff == 0, 0.0, np.inf))
    ok = bool(np.all(excess <= 0))
    note = ""
    if not ok:
        where = labels[worst] if worst < len(labels) else f"[{worst}]"
        note = (f"worst at {where}: candidate {float(c.flat[worst])!r}, "
                f"reference {float(r.flat[worst])!r}")
    return Row(case, nAGQ, tier, quantity, "pass" if ok else "fail",
               float(np.max(np.abs(diff))), float(np.max(rel)), tol.describe(), note)


def _names_row(case: str, nAGQ: int, tier: str, quantity: str, cand: Sequence[str],
               ref: Sequence[str], tol: Tolerance) -> Row | None:
    if tuple(cand) == tuple(ref):
        return None
    return Row(case, nAGQ, tier, quantity, "fail", bound=tol.describe(),
               note=f"names differ: candidate {list(cand)} vs reference {list(ref)}")


def compare_probes(case: str, ref: NAGQReference, cand: Sequence[ProbeResult | None]) -> list[Row]:
    """The probe tier: candidate devfun against lme4's converged devfun, point by point."""
    k = ref.nAGQ
    obj_tol, mode_tol = probe_tolerances(ref.probes.tolPwrss)
    pairs = [(p, c) for p, c in zip(ref.probes.points, cand, strict=True) if c is not None]
    if not pairs:
        return [Row(case, k, "probe", q, "skip", note="the candidate has no devfun at these points")
                for q in QUANTITIES["probe"]]
    labels = [p.label for p, _ in pairs]
    rows = [compare_values(case, k, "probe", "probe-objective", [c.objective for _, c in pairs],
                           [p.objective for p, _ in pairs], obj_tol, labels)]
    for q in ("u", "b"):
        cand_v = [getattr(c, q) for _, c in pairs]
        ref_v = [getattr(p, q) for p, _ in pairs]
        if any(a.shape != b.shape for a, b in zip(cand_v, ref_v, strict=True)):
            rows.append(Row(case, k, "probe", f"probe-{q}", "fail", bound=mode_tol.describe(),
                            note="the candidate's modes differ in length from lme4's"))
            continue
        flat_labels = [lab for lab, v in zip(labels, ref_v, strict=True) for _ in range(v.size)]
        rows.append(compare_values(case, k, "probe", f"probe-{q}", np.concatenate(cand_v),
                                   np.concatenate(ref_v), mode_tol, flat_labels))
    if len(pairs) < len(ref.probes.points):
        missing = [p.label for p, c in zip(ref.probes.points, cand, strict=True) if c is None]
        rows = [Row(**{**r.to_json(), "note": (r.note + f" (no candidate value at {missing})")
                       .strip()}) for r in rows]
    return rows


def compare_tight(case: str, ref: NAGQReference, cand: FitResult,
                  reported: bool = False) -> list[Row]:
    """The tight tier: the candidate's optimum against lme4's true optimum.

    The reference −2logLik is lme4's converged devfun at its tight optimum (the ``tight``
    probe), not the value its tight fit reports: that one still carries the lagged L of
    tolPwrss = 1e-13, up to 6e-6 too high (grouseticks-nested).  logLik, AIC and BIC are
    shifted by the same amount, so that they still check df and the nAGQ scale.
    ``reported=True`` compares with the reported value instead, for a candidate that is
    itself a reported lme4 fit (the drift check).
    """
    k, t = ref.nAGQ, ref.tight
    at_tight = ref.probes.by_label("tight")
    objective = t.objective if reported or at_tight is None else at_tight.objective
    shift = objective - t.objective
    rows = [
        compare_values(case, k, "tight", "m2loglik", cand.objective, objective, TIGHT_OBJECTIVE),
        compare_values(case, k, "tight", "loglik", cand.loglik, t.loglik - shift / 2,
                       TIGHT_OBJECTIVE.scaled_by(0.5)),  # logLik = -(-2logLik)/2
        compare_values(case, k, "tight", "aic", cand.aic, t.aic + shift, TIGHT_OBJECTIVE),
        compare_values(case, k, "tight", "bic", cand.bic, t.bic + shift, TIGHT_OBJECTIVE),
        compare_values(case, k, "tight", "deviance", cand.deviance, t.deviance, TIGHT_DEVIANCE),
    ]
    rows.append(
        _names_row(case, k, "tight", "fixef", cand.fixef_names, t.fixef_names, TIGHT_PARAMETER)
        or compare_values(case, k, "tight", "fixef", cand.fixef, t.fixef, TIGHT_PARAMETER,
                          t.fixef_names))
    rows.append(
        _names_row(case, k, "tight", "theta", cand.theta_names, t.theta_names, TIGHT_PARAMETER)
        or compare_values(case, k, "tight", "theta", cand.theta, t.theta, TIGHT_PARAMETER,
                          t.theta_names))
    rows.append(_compare_ranef(case, k, cand, t))
    return rows


def _compare_ranef(case: str, k: int, cand: FitResult, ref: FitResult) -> Row:
    tol = TIGHT_RANEF
    if list(cand.ranef) != list(ref.ranef):
        return Row(case, k, "tight", "ranef", "fail", bound=tol.describe(),
                   note=f"grouping factors differ: {list(cand.ranef)} vs {list(ref.ranef)}")
    c_vals, r_vals, labels = [], [], []
    for g, r in ref.ranef.items():
        c = cand.ranef[g]
        if (c.levels, c.columns) != (r.levels, r.columns):
            return Row(case, k, "tight", "ranef", "fail", bound=tol.describe(),
                       note=f"{g}: levels or columns differ from lme4's")
        c_vals.append(c.values.ravel())
        r_vals.append(r.values.ravel())
        labels += [f"{g}[{lev}, {col}]" for lev in r.levels for col in r.columns]
    return compare_values(case, k, "tight", "ranef", np.concatenate(c_vals),
                          np.concatenate(r_vals), tol, labels)


def compare_default(case: str, ref: NAGQReference, cand: FitResult) -> list[Row]:
    """The default tier: no worse than what glmer() gives with default settings."""
    k, d = ref.nAGQ, ref.default
    at_default = ref.probes.by_label("default")
    if at_default is None:  # fixtures are validated to have it
        raise ValueError(f"{case} nAGQ={k}: the reference has no probe at lme4's default fit")
    rows = [compare_values(case, k, "default", "default-m2loglik", cand.objective,
                           at_default.objective, DEFAULT_OBJECTIVE)]
    rows.append(
        _names_row(case, k, "default", "default-fixef", cand.fixef_names, d.fixef_names,
                   DEFAULT_FIXEF)
        or compare_values(case, k, "default", "default-fixef", cand.fixef, d.fixef,
                          DEFAULT_FIXEF, d.fixef_names))
    rows.append(
        _names_row(case, k, "default", "default-theta", cand.theta_names, d.theta_names,
                   DEFAULT_THETA)
        or compare_values(case, k, "default", "default-theta", cand.theta, d.theta,
                          DEFAULT_THETA, d.theta_names))
    return rows


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


def compare_default_fits(case: str, old: NAGQReference, new: FitResult) -> list[Row]:
    """Drift of lme4's default fit between a committed fixture and a regenerated one."""
    k, d = old.nAGQ, old.default
    rows = [compare_values(case, k, "default", "default-fit-m2loglik", new.objective,
                           d.objective, DRIFT_DEFAULT_OBJECTIVE)]
    for q, tol, names, vals, new_names, new_vals in (
        ("default-fit-fixef", DEFAULT_FIXEF, d.fixef_names, d.fixef, new.fixef_names, new.fixef),
        ("default-fit-theta", DEFAULT_THETA, d.theta_names, d.theta, new.theta_names, new.theta),
    ):
        rows.append(_names_row(case, k, "default", q, new_names, names, tol)
                    or compare_values(case, k, "default", q, new_vals, vals, tol, names))
    return rows
