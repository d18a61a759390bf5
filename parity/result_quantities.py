"""The quantities of a glmer fit beyond its estimates (issue 15): vcov (lme4's default and
R_X's), the coef table, VarCorr, condVar, fitted values, the four residual types, predictions
on new data, Wald intervals and the printed summary.

Each is compared twice:

- ``probe-<name>`` (tier ``probe``): the candidate at lme4's own tight parameters (θ, β; θ
  for nAGQ = 0) against lme4's values at its tight fit, so that only the two computations
  differ, not the optima;
- ``<name>`` (tier ``tight``): the candidate at its own optimum against the same values.

lme4's values are the tight fit's ``results`` (``parity_results`` in ``r/glmer_case.R``) and
its ``ranef``'s condVar.  A candidate without an engine fit of its own (live R, or the drift
check's regenerated fixture) gives its tight fit's stored ``results``; the glmm candidate
computes the same layout from its :class:`~glmm.GlmerFit` (:func:`glmm_results`).  The new
data are rebuilt from the rule the fixture records (:func:`newdata_frames`), so both engines
predict on the same rows.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .compare import Row, Tolerance, compare_values
from .results import FitResult, VariantReference

if TYPE_CHECKING:
    from .quantities import CandidateOutput


@dataclasses.dataclass(frozen=True)
class Values:
    """A result as compared: flat values, a label per value, and the structure (names) that
    must agree before values are compared."""

    values: np.ndarray
    labels: tuple[str, ...] = ()
    names: Any = None

# -- tolerances ---------------------------------------------------------------------------------
AT_PARAMS_PREDICTION = Tolerance(
    scaled=1e-8,
    reason="at the same (θ, β) μ̂, η̂ and every residual are functions of the mode u alone, "
           "which solves the same strictly convex problem in both engines; lme4's tight fit "
           "converged PIRLS to tolPwrss = 1e-13 (its last step in u ≲ 3e-7 of a step that "
           "converges quadratically), so what is left is rounding and that last step's square.",
)
AT_PARAMS_VCOV = Tolerance(
    abs=1e-3,
    reason="compared relative to √(vᵢᵢvⱼⱼ) (lme4's): lme4's Hessian is a finite difference of "
           "F with step 1e-4 (truncation O(h²) and the lagged F of its PIRLS), glmm's a "
           "central difference of the exact gradient; V_RX (no differencing, lme4's R_X from "
           "its last PIRLS iteration) agrees far closer, under the same bound.",
)
AT_PARAMS_CONDVAR = Tolerance(
    abs=1e-6,
    reason="compared relative to √(cᵢᵢcⱼⱼ) of lme4's block, each sd at least 1e-3·σ "
           "(CONDVAR_SD_FLOOR): σ²ΛG⁻¹Λᵀ at the mode, where "
           "lme4's L carries the working weights of its previous PIRLS iteration (at "
           "tolPwrss = 1e-13, ~1e-7 relative), glmm's the mode's own.",
)
AT_PARAMS_COEF = Tolerance(
    abs=1e-8, rel=5e-4,
    reason="the table as Estimate/SE, SE/SE and z over lme4's SE, and the p-value as the "
           "normal quantile Φ⁻¹(1 − p/2) it was computed from: vcov within 1e-3 of vᵢᵢ puts "
           "the SE within 5e-4 relative, and z and the quantile follow; the estimates are the "
           "same parameters.",
)
AT_PARAMS_CONFINT = Tolerance(
    abs=1e-3,
    reason="the Wald limits over lme4's SE: β̂ ± 1.96·SE, the SE within 5e-4 relative "
           "(vcov's bound), hence 1.96·5e-4 ≈ 1e-3 of an SE.",
)
AT_PARAMS_VARCORR = Tolerance(
    scaled=1e-8,
    reason="the variances and correlations are functions of θ (the same) and σ, which for "
           "Gamma and the inverse Gaussian is √(pwrss/n) at the mode (the predictions' bound); "
           "σ = 1 otherwise.",
)
LMM_AT_PARAMS = Tolerance(
    scaled=1e-8,
    reason="an LMM's results at the same θ are closed-form (one factorisation: β̂, σ̂, û, "
           "R_X and L; no PIRLS and no finite differences, vcov is σ²(R_XᵀR_X)⁻¹ in both "
           "engines), so only rounding separates them (measured ≤ 2e-10 on the corpus).",
)
#: the summary's unit for a number printed to more digits than its accuracy (a p-value)
SUMMARY_FLOOR = 5e-4
SUMMARY_DIGITS = Tolerance(
    abs=1.0, rel=1e-12,
    reason="the printed summary line by line: the text between the numbers equal (R's Data: and "
           "Control: lines, which name R objects, left out), and each number "
           "within the larger of one unit of lme4's last printed digit and 5e-4 of its value "
           "(for a number p below 1, read as a tail probability, 5e-4·2 ln(1/p), since p "
           "moves by z²δ ≈ 2 ln(1/p)·δ when z moves by δ relative); the 5e-4 floor is the "
           "standard errors' accuracy, so it decides wherever R prints more digits than that "
           "(p-values, estimates to 5–7 digits), the optimizer's name, code and message "
           "left out of its line (each engine's own): the numbers agree "
           "below that (≤ 5e-4 relative for a standard error at the same parameters, ~1e-4 "
           "at the optimum), so a printed number differs only where the two round to either "
           "side of a digit; rel covers the division by the unit.",
)
#: at the optimum every quantity follows the parameters at first order
_FIRST_ORDER = ("the candidate's optimum is within the tight tier's parameter bound, 1e-4 of "
                "max(1, |x|), of lme4's; each quantity follows (θ, β) at first order, with a "
                "sensitivity of a few units of max(1, |value|) per unit of parameter (a row's "
                "η sums p covariates times β and q columns of Z times b), hence ")
AT_PARAMS_RESIDUAL = Tolerance(
    scaled=3e-8,
    reason="each residual carries μ̂'s error (the predictions' 1e-8) times its sensitivity "
           "to μ̂: √(wᵢ/V(μ̂)) (and V's change) for the Pearson and deviance residuals, "
           "1/g⁻¹′(η̂) for the working residuals; on the corpus it amplifies the error up to "
           "~3× on the residual's own scale (measured 1.6e-8 on cbpp-cloglog at nAGQ = 0). "
           "Binary fits with μ̂ near 0 or 1 amplify more (7× measured at μ̂ = 0.82): outside "
           "this bound, a false alarm there, never a false pass.",
)
AT_OPTIMUM_PREDICTION = Tolerance(
    scaled=1e-3, reason=_FIRST_ORDER + "10 × 1e-4 of max(1, |value|).")
AT_OPTIMUM_VCOV = Tolerance(
    abs=2e-3, reason=_FIRST_ORDER + "the finite-difference bound (1e-3 of √(vᵢᵢvⱼⱼ)) plus "
                                    "1e-3 for vcov's first-order change with (θ, β).")
AT_OPTIMUM_CONDVAR = Tolerance(
    abs=2e-3, reason=_FIRST_ORDER + "2e-3 of √(cᵢᵢcⱼⱼ): the block scales as σ²θ², whose "
                                    "relative change is 2Δθ/θ.")
AT_OPTIMUM_COEF = Tolerance(
    abs=1e-3, rel=1e-3, reason=_FIRST_ORDER + "the estimates within 1e-3 of an SE for β "
                                              "of SE ≳ 0.1, and the SE and z within vcov's "
                                              "2e-3 halved.")
AT_OPTIMUM_CONFINT = Tolerance(
    abs=3e-3, reason=_FIRST_ORDER + "β̂ within 1e-3 of an SE, plus 1.96 × 1e-3 for the SE.")
AT_OPTIMUM_VARCORR = Tolerance(
    scaled=1e-3, reason=_FIRST_ORDER + "the variances σ²θ² at 2Δθ/θ.")


class NotAtReference(Exception):
    """An lme4 candidate's results are at its own tight fit, which is not at the reference's
    parameters: they are not the probe tier's computation at the same point."""


class MissingResults(ValueError):
    """The fixture's tight fit has no ``results`` (made before they were added)."""


# -- the new data ---------------------------------------------------------------------------------
def newdata_frames(data: pd.DataFrame, rule: dict[str, Any]) -> tuple[pd.DataFrame,
                                                                       pd.DataFrame | None]:
    """The fixture's new data rebuilt from its rule: the rows ``rows`` (``known``), and those
    with the rows ``new_level_rows`` appended again with factor ``column`` set to the unseen
    ``level`` (None where the rule has no new-level rows)."""
    known = data.iloc[list(rule["rows"])].copy()
    if not rule["new_level_rows"] or rule["column"] is None:
        return known, None
    col, level = rule["column"], rule["level"]
    extra = data.iloc[list(rule["new_level_rows"])].copy()
    cats = [*data[col].cat.categories, level]
    known_all = known.copy()
    known_all[col] = pd.Categorical(known_all[col].astype(str), categories=cats)
    extra[col] = pd.Categorical([level] * len(extra), categories=cats)
    return known, pd.concat([known_all, extra], ignore_index=True)


def _reference_results(ref: VariantReference) -> dict[str, Any]:
    res = ref.tight.raw.get("results")
    if res is None:
        raise MissingResults(f"{ref.label}: the fixture's tight fit has no results (it was "
                             "made before they were added): regenerate it with live R")
    return res


def _candidate_results(out: CandidateOutput, ref: VariantReference, at_reference: bool
                       ) -> dict[str, Any] | None:
    """The candidate's results: at lme4's tight parameters, or at its own optimum.  None for
    the fixture candidate at lme4's parameters (it would be lme4's values themselves)."""
    fit = out.fit
    if fit is None:
        raise ValueError("the candidate gave no fit")
    if fit.results is not None:   # an engine: it computes them (GlmmCandidate.results)
        return fit.results(ref.tight.params(ref.variant) if at_reference else None,
                           _reference_results(ref))
    if fit.raw is ref.tight.raw:   # the fixture candidate
        return None
    if at_reference and not np.array_equal(fit.params(ref.variant), ref.tight.params(ref.variant)):
        raise NotAtReference("the candidate's tight fit is not at the reference's parameters "
                             "(lme4 refitted): its results are compared in the tight tier")
    res = fit.raw.get("results")   # live R, or a regenerated fixture
    if res is None:
        raise MissingResults("the candidate's fit has no results")
    return {**res, "condvar": _lme4_condvar(fit)}


def _lme4_condvar(fit: FitResult) -> dict[str, Any]:
    res = fit.raw.get("results") or {}
    if "condvar" in res:   # at the converged mode (parity_converged in r/glmer_case.R)
        return res["condvar"]
    return {g: t["condVar"] for g, t in fit.raw["ranef"].items()}


# -- the readers: a results dict -> Values ------------------------------------------------------
Extract = Callable[[dict[str, Any], dict[str, Any]], Values]


def _vector(path: tuple[str, ...]) -> Extract:
    def read(res: dict[str, Any], _ref: dict[str, Any]) -> Values:
        x: Any = res
        for k in path:
            x = None if x is None else x[k]
        values = np.zeros(0) if x is None else np.asarray(x, dtype=float)
        return Values(values, tuple(f"[{i}]" for i in range(values.size)), values.size)
    return read


def _vcov(kind: str) -> Extract:
    """V over √(vᵢᵢvⱼⱼ) of lme4's V."""
    def read(res: dict[str, Any], ref: dict[str, Any]) -> Values:
        V = np.asarray(res[kind]["values"], dtype=float)
        d = np.sqrt(np.diag(np.asarray(ref[kind]["values"], dtype=float)))
        names = tuple(res[kind]["names"])
        if V.shape != (len(d), len(d)):
            return Values(V.ravel(), names=(names, V.shape))
        labels = tuple(f"[{a}, {b}]" for a in names for b in names)
        return Values((V / np.outer(d, d)).ravel(), labels, (names, V.shape))
    return read


def _response_residuals(res: dict[str, Any], ref: dict[str, Any]) -> Values:
    """y − μ̂ over max(1, |μ̂|) of lme4's μ̂: it carries μ̂'s error, on μ̂'s scale (y − μ̂ can be
    far smaller than μ̂, e.g. Gamma's reaction times)."""
    r = np.asarray(res["residuals"]["response"], dtype=float)
    mu = np.asarray(ref["fitted"], dtype=float)
    if r.shape != mu.shape:
        return Values(r, names=r.size)
    return Values(r / np.maximum(1.0, np.abs(mu)), tuple(f"[{i}]" for i in range(r.size)),
                  r.size)


def _coef(res: dict[str, Any], ref: dict[str, Any]) -> Values:
    """Estimate/SE, SE/SE, z (or t) and, where the table has p-values, Φ⁻¹(1 − p/2), each
    over lme4's SE where it has a scale (an LMM's table has t values and no p-values)."""
    from scipy import stats

    t = np.asarray(res["coef_table"]["values"], dtype=float)
    names = (tuple(res["coef_table"]["rows"]), tuple(res["coef_table"]["columns"]))
    se = np.asarray(ref["coef_table"]["values"], dtype=float)[:, 1]
    ncol = len(ref["coef_table"]["columns"])
    if t.ndim != 2 or t.shape != (len(se), ncol) or ncol not in (3, 4):
        return Values(t.ravel(), names=names)
    cols = [t[:, 0] / se, t[:, 1] / se, t[:, 2]]
    kinds = ["Estimate/SE", "SE/SE", names[1][2]]
    if ncol == 4:
        p = np.maximum(t[:, 3], 1e-300)   # R's 2Φ(−|z|) underflows to 0 beyond |z| ≈ 38
        cols.append(stats.norm.isf(p / 2.0))
        kinds.append("quantile of p")
    labels = tuple(f"[{r}, {c}]" for r in names[0] for c in kinds)
    return Values(np.column_stack(cols).ravel(), labels, names)


def _confint(res: dict[str, Any], ref: dict[str, Any]) -> Values:
    ci = np.asarray(res["confint"]["values"], dtype=float)
    se = np.asarray(ref["coef_table"]["values"], dtype=float)[:, 1]
    names = (tuple(res["confint"]["rows"]), tuple(res["confint"]["columns"]))
    if ci.shape != (len(se), 2):
        return Values(ci.ravel(), names=names)
    labels = tuple(f"[{r}, {c}]" for r in names[0] for c in names[1])
    return Values((ci / se[:, None]).ravel(), labels, names)


def _varcorr(res: dict[str, Any], ref: dict[str, Any]) -> Values:
    """vcov and sdcor per row.  A correlation is compared only where both its standard
    deviations in lme4's fit are at least CONDVAR_SD_FLOOR·σ: at a zero variance it is 0/0,
    and near one it is not identified (θ's tight bound is absolute), so there it reads 0 in
    both (the standard deviations themselves are still compared)."""
    vc = res["varcorr"]
    rows = tuple(zip(vc["grp"], vc["var1"], vc["var2"], strict=True))
    vcov = np.asarray(vc["vcov"], dtype=float)
    sdcor = np.asarray(vc["sdcor"], dtype=float).copy()
    rv = ref["varcorr"]
    ref_rows = list(zip(rv["grp"], rv["var1"], rv["var2"], strict=True))
    if len(ref_rows) == len(rows):
        sd = {(g, v1): float(s) for g, v1, v2, s in zip(rv["grp"], rv["var1"], rv["var2"],
                                                        rv["sdcor"], strict=True)
              if v2 is None}
        floor = CONDVAR_SD_FLOOR * _sigma(ref)
        for i, (g, v1, v2) in enumerate(ref_rows):
            if v2 is not None and not (sd.get((g, v1), 0.0) >= floor
                                       and sd.get((g, v2), 0.0) >= floor):
                sdcor[i] = 0.0
    labels = tuple(f"{k}{list(r)}" for k in ("vcov", "sdcor") for r in rows)
    return Values(np.concatenate([vcov, sdcor]), labels, rows)


#: condVar's entries are over √(cᵢᵢcⱼⱼ), each standard deviation at least this many σ (σ = 1
#: for a family without a scale): b = σΛ(θ)u and θ's tight bound is absolute (1e-4·max(1,
#: |θ|)), so near θ = 0 a conditional sd is only known to ~1e-4·σ, and its relative change is
#: unbounded
CONDVAR_SD_FLOOR = 1e-3


def _sigma(res: dict[str, Any]) -> float:
    """σ from VarCorr's Residual row (1 where the family has no scale)."""
    vc = res["varcorr"]
    for grp, sd in zip(vc["grp"], vc["sdcor"], strict=True):
        if grp == "Residual":
            return float(sd)
    return 1.0


def _condvar_blocks(res: dict[str, Any]) -> list[tuple[str, tuple[str, ...], np.ndarray]]:
    """(group, the block's columns, levels × p × p) per condVar block, in lme4's layout: one
    block per term, the terms of one factor (x || g) separate."""
    cv = res["condvar"]
    out = []
    for g, blocks in cv.items():
        if isinstance(blocks, np.ndarray):   # glmm: one array per factor (levels, P, P)
            out.append((g, (), blocks))
            continue
        for blk in blocks:
            out.append((g, tuple(blk["columns"]), np.asarray(blk["values"], dtype=float)))
    return out


def _condvar(res: dict[str, Any], ref: dict[str, Any]) -> Values:
    """lme4's blocks; glmm's factor arrays cut into the same blocks (the blocks between terms
    of one factor are zero there and not compared).  Over √(cᵢᵢcⱼⱼ) of lme4's block."""
    want = _condvar_blocks(ref)
    have = {g: a for g, cols, a in _condvar_blocks(res) if not cols}
    mine = {(g, cols): a for g, cols, a in _condvar_blocks(res) if cols}
    values, labels, names = [], [], []
    offset: dict[str, int] = {}
    for g, cols, a in want:
        p = a.shape[1] if a.ndim == 3 else 0
        if g in have:
            j = offset.get(g, 0)
            b = have[g][:, j:j + p, j:j + p]
            offset[g] = j + p
        else:
            b = mine.get((g, cols), np.zeros((0, 0, 0)))
        names.append((g, cols, b.shape))
        if b.shape != a.shape:
            continue
        # a standard deviation below CONDVAR_SD_FLOOR (a singular fit's θ ≈ 0, where θ's
        # own 1e-4 tight bound allows any relative change) is scaled by the floor instead
        d = np.maximum(np.sqrt(np.einsum("lii->li", a)), CONDVAR_SD_FLOOR * _sigma(ref))
        values.append((b / (d[:, :, None] * d[:, None, :])).ravel())
        labels += [f"{g}[{lev}]{list(cols)}[{i},{k}]" for lev in range(a.shape[0])
                   for i in range(p) for k in range(p)]
    return Values(np.concatenate(values) if values else np.zeros(0), tuple(labels),
                   tuple(names))


_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_R_ONLY = ("Data:", "Control:")   # R's names of its data and control objects
#: the optimizer's line: each engine names its own optimizer and gives its own code and message
#: (lme4's bobyqa may end a converged fit with "a trust region step failed to reduce q")
_OPTIMIZER = re.compile(r"^optimizer \(.*\) convergence code.*$")


def _unit(token: str) -> float:
    """One unit of the token's last printed digit."""
    mant, _, exp = token.lower().partition("e")
    decimals = len(mant.partition(".")[2])
    return 10.0 ** (-decimals) * (10.0 ** int(exp) if exp else 1.0)


def _summary_tokens(lines: list[str]) -> tuple[tuple[str, ...], list[str]]:
    text, numbers = [], []
    for line in lines:
        if line.strip().startswith(_R_ONLY):
            continue
        words = []
        line = _OPTIMIZER.sub("optimizer (…) convergence code (…)", line)
        for tok in line.split():
            if _NUMBER.match(tok):
                numbers.append(tok)
                words.append("#")
            else:
                words.append(tok)
        text.append(" ".join(words))
    return tuple(text), numbers


def _summary(res: dict[str, Any], ref: dict[str, Any]) -> Values:
    text, numbers = _summary_tokens(res["summary"])
    _ref_text, ref_numbers = _summary_tokens(ref["summary"])
    if len(numbers) != len(ref_numbers):
        return Values(np.zeros(0), names=text)
    refs = np.abs([float(t) for t in ref_numbers])
    with np.errstate(divide="ignore"):   # a tail probability p moves by z²δ ≈ 2 ln(1/p)·δ
        spread = np.where((refs > 0) & (refs < 1), 2.0 * np.log(1.0 / refs), 1.0)
    units = np.maximum([_unit(t) for t in ref_numbers],
                       SUMMARY_FLOOR * refs * np.maximum(1.0, spread))
    values = np.array([float(t) for t in numbers]) / units
    labels = tuple(f"{t} (number {i + 1})" for i, t in enumerate(ref_numbers))
    return Values(values, labels, text)


# -- the comparison ----------------------------------------------------------------------------
def compare_result(name: str, tier: str, tol: Tolerance, extract: Extract, at_reference: bool,
                   case: str, ref: VariantReference, out: CandidateOutput) -> Row:
    """The row of one result quantity: ``extract`` reads it from lme4's results and from the
    candidate's (at lme4's parameters, or at its optimum), the candidate's over lme4's scale."""
    try:
        mine = {**_reference_results(ref), "condvar": _lme4_condvar(ref.tight)}
        theirs = _candidate_results(out, ref, at_reference)
    except NotAtReference as exc:
        return Row(case, ref.label, tier, name, "skip", bound=tol.describe(), note=str(exc))
    except ValueError as exc:
        return Row(case, ref.label, tier, name, "fail", bound=tol.describe(), note=str(exc))
    if theirs is None:
        return Row(case, ref.label, tier, name, "skip", bound=tol.describe(),
                   note="the candidate is the reference's own tight fit")
    want, got = extract(mine, mine), extract(theirs, mine)
    if got.names != want.names:
        return Row(case, ref.label, tier, name, "fail", bound=tol.describe(),
                   note=f"names differ: candidate {got.names} vs reference {want.names}")
    return compare_values(case, ref.label, tier, name, got.values, want.values, tol,
                          want.labels)


#: (name, extract, bound at lme4's parameters, bound at the optimum)
SPECS: tuple[tuple[str, Extract, Tolerance, Tolerance], ...] = (
    ("vcov", _vcov("vcov_default"), AT_PARAMS_VCOV, AT_OPTIMUM_VCOV),
    ("vcov-rx", _vcov("vcov_rx"), AT_PARAMS_VCOV, AT_OPTIMUM_VCOV),
    ("coef-table", _coef, AT_PARAMS_COEF, AT_OPTIMUM_COEF),
    ("confint", _confint, AT_PARAMS_CONFINT, AT_OPTIMUM_CONFINT),
    ("varcorr", _varcorr, AT_PARAMS_VARCORR, AT_OPTIMUM_VARCORR),
    ("condvar", _condvar, AT_PARAMS_CONDVAR, AT_OPTIMUM_CONDVAR),
    ("fitted", _vector(("fitted",)), AT_PARAMS_PREDICTION, AT_OPTIMUM_PREDICTION),
    *((f"residuals-{t}", _vector(("residuals", t)), AT_PARAMS_RESIDUAL, AT_OPTIMUM_PREDICTION)
      for t in ("deviance", "pearson", "working")),
    ("residuals-response", _response_residuals, AT_PARAMS_PREDICTION, AT_OPTIMUM_PREDICTION),
    ("predict", _vector(("predict", "known")), AT_PARAMS_PREDICTION, AT_OPTIMUM_PREDICTION),
    ("predict-new-levels", _vector(("predict", "new_levels", "link")), AT_PARAMS_PREDICTION,
     AT_OPTIMUM_PREDICTION),
    ("predict-new-levels-response", _vector(("predict", "new_levels", "response")),
     AT_PARAMS_PREDICTION, AT_OPTIMUM_PREDICTION),
    ("predict-fixed", _vector(("predict", "fixed_only")), AT_PARAMS_PREDICTION,
     AT_OPTIMUM_PREDICTION),
    ("summary", _summary, SUMMARY_DIGITS, SUMMARY_DIGITS),
)
