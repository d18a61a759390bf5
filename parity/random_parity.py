"""One random problem compared with live lme4, and the tally of many.

:func:`compare_problem` fits a :class:`~parity.random_problems.Problem` in lme4 (default and
tight control) and in glmm, probes lme4's converged devfun at lme4's tight and default optima,
at a point away from both (``parity.generate.probe_points``) and at glmm's own optimum, and
compares in the harness's tiers (``parity.runner.compare_variant``, with parity.compare's
tolerances), on the estimates: the results beyond them (vcov, residuals, the summary, ...:
:mod:`parity.result_quantities`) are held on the corpus, where their bounds were derived;
random problems reach what those bounds do not yet model (binary fits with μ̂ near 0 or 1,
where a Pearson residual amplifies μ̂'s error by far more than the corpus's ~3; correlations
and printed variances at a singular boundary).  The verdict:

- ``fail``: a probe is outside the probe tier (glmm's objective differs from lme4's at the
  same parameters), or lme4 fitted without warnings and glmm is outside the tight or the
  default tier, or glmm raised where lme4 fitted without warnings, or raised something that
  is not a ``GlmmError``.  The default tier's bounds assume that lme4's default fit stops
  near its optimum; where lme4's own tight optimum is outside them, no candidate at the
  optimum can meet them, and they are recorded, not required;
- ``better``: the probes hold and glmm's −2logLik is below lme4's tight optimum by more than
  the tight tier's bound: the same objective, and glmm found a lower point of it (lme4 can
  stop on the θ = 0 boundary of a ``(x | g)`` model above the true optimum);
- ``flat``: lme4 fitted without warnings, glmm's −2logLik is within the tight tier's bound of
  lme4's tight optimum, and so is lme4's own devfun at glmm's optimum, but glmm's parameters
  are outside the tight tier.  By lme4's own objective both points are optima: the objective
  is flat along the direction between them (quasi-separation, where a coefficient can run
  off to ±∞ at no cost).  The tight tier's parameter bound is derived from its objective
  bound assuming a curvature of at least ~1e-2, which fails here, so the objective decides;
  such cases are counted and listed, not failed;
- ``pass``: otherwise.  Where lme4 warned (no convergence, a singular Hessian, ...), only
  the probes must hold; the tight and default tiers are recorded and not required;
- ``lme4-error``: lme4 refused the problem, so there is nothing to compare; glmm's result
  is recorded.
- ``glmm-refused``: glmm raised a ``GlmmError`` where lme4 fitted with warnings, or a
  ``SeparationError`` (no finite estimate exists) whatever lme4 said.

:class:`Tally` counts outcomes by family, structure and nAGQ, prints the summary, and writes
every outcome (each failure with its R and Python reproductions) as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .candidates import CandidateFitError, GlmmCandidate
from .compare import TIGHT_OBJECTIVE, Row
from .errors import RFitError
from .generate import probe_points
from .quantities import REGISTRY, CandidateOutput, ResultQuantity, quantities
from .r_bridge import RSession
from .random_problems import Problem, python_script, r_script
from .results import CaseReference, FitResult, ProbeResult, ProbeSet, VariantReference
from .runner import compare_variant
from .variants import Variant

#: the quantities a random problem is judged on: the estimates' (module docstring)
ESTIMATES = tuple(q for q in REGISTRY if not isinstance(q, ResultQuantity))

#: The time limit of each R call, in seconds.  lme4 fits and probes each of these problems in
#: well under a second; a call still running after a minute is stuck, and is stopped.
R_TIMEOUT = 60.0

VERDICTS: tuple[str, ...] = ("pass", "better", "flat", "fail", "lme4-error", "glmm-refused")


@dataclass
class Outcome:
    """What happened to one problem."""

    problem: Problem
    verdict: str
    why: str = ""
    rows: list[Row] = field(default_factory=list)
    lme4_warnings: list[str] = field(default_factory=list)
    lme4_messages: list[str] = field(default_factory=list)
    glmm_warnings: list[str] = field(default_factory=list)
    #: glmm's −2logLik minus lme4's at its tight optimum (converged devfun)
    objective_gap: float | None = None
    lme4_tight_params: list[float] | None = None
    lme4_tight_objective: float | None = None
    #: lme4's converged devfun at glmm's optimum (None where lme4's PIRLS failed there)
    lme4_at_glmm: float | None = None
    glmm_objective: float | None = None
    #: the default tier's rows that lme4's own tight optimum fails: where there are any,
    #: lme4's default fit stopped further from its optimum than the default tier's bounds,
    #: which then cannot hold for any candidate at the optimum and are not required
    lme4_default_rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    r_script: str = ""
    python_script: str = ""

    @property
    def lme4_clean(self) -> bool:
        return self.verdict not in ("lme4-error",) and not self.lme4_warnings

    @property
    def default_applies(self) -> bool:
        return not self.lme4_default_rows

    def tier_ok(self, tier: str) -> bool | None:
        """All rows of ``tier`` pass (None when the tier has no rows)."""
        rows = [r for r in self.rows if r.tier == tier]
        return all(r.status == "pass" for r in rows) if rows else None

    @property
    def failed_rows(self) -> list[Row]:
        return [r for r in self.rows if r.status == "fail"]

    def explain(self) -> str:
        """The failure, with its reproductions."""
        lines = [f"{self.problem.name}: {self.verdict}: {self.why}"]
        lines += [f"  {r.tier}/{r.quantity}: max|Δ|={r.max_abs!r} (bound {r.bound}) {r.note}"
                  for r in self.failed_rows]
        if self.glmm_objective is not None:
            lines.append(f"  −2logLik: glmm {self.glmm_objective!r}; lme4's devfun at its tight "
                         f"optimum {self.lme4_tight_objective!r}, at glmm's "
                         f"{self.lme4_at_glmm!r}")
        if self.lme4_warnings:
            lines.append(f"  lme4 warned: {self.lme4_warnings}")
        if self.glmm_warnings:
            lines.append(f"  glmm warned: {self.glmm_warnings}")
        lines += ["", "--- R ---", self.r_script, "--- Python ---", self.python_script]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        out = {
            "name": self.problem.name, "problem": repr(self.problem),
            "family": self.problem.family, "link": self.problem.link,
            "response": self.problem.response, "structure": self.problem.structure,
            "nAGQ": self.problem.nAGQ, "rows": self.problem.rows,
            "verdict": self.verdict, "why": self.why, "lme4_clean": self.lme4_clean,
            "probe_ok": self.tier_ok("probe"), "tight_ok": self.tier_ok("tight"),
            "default_ok": self.tier_ok("default"), "default_applies": self.default_applies,
            "lme4_default_rows": [r.to_json() for r in self.lme4_default_rows],
            "objective_gap": self.objective_gap,
            "lme4_tight_objective": self.lme4_tight_objective,
            "glmm_objective": self.glmm_objective, "lme4_at_glmm": self.lme4_at_glmm,
            "lme4_warnings": self.lme4_warnings, "lme4_messages": self.lme4_messages,
            "glmm_warnings": self.glmm_warnings, "seconds": round(self.seconds, 3),
            "failed_rows": [r.to_json() for r in self.failed_rows],
        }
        if self.verdict in ("fail", "better", "flat"):
            out["r_script"] = self.r_script
            out["python_script"] = self.python_script
        return out


def compare_problem(problem: Problem, session: RSession) -> Outcome:
    """Fit ``problem`` in lme4 and glmm and judge the difference (see the module's doc)."""
    start = time.perf_counter()
    out = _compare(problem, session)
    out.seconds = time.perf_counter() - start
    return out


def _compare(problem: Problem, session: RSession) -> Outcome:
    data, case, k = problem.dataset(), problem.case(), problem.nAGQ
    variant = Variant("glmer", k)
    spec = case.spec()
    out = Outcome(problem, "pass")
    fits: dict[str, dict[str, Any]] = {}
    try:
        for kind in ("default", "tight"):
            fits[kind] = session.fit(data, spec, k, kind, timeout=R_TIMEOUT)
    except RFitError as exc:  # RTimeoutError included
        glmm_said = _glmm_alone(problem, data)
        out.verdict, out.why = "lme4-error", f"lme4's {kind} fit: {exc}; glmm: {glmm_said}"
        return out
    default, tight = fits["default"], fits["tight"]
    out.lme4_warnings = [*default["warnings"], *tight["warnings"]]
    out.lme4_messages = [*default["messages"], *tight["messages"]]
    tight_fit = FitResult.from_json(tight)
    out.lme4_tight_params = [float(v) for v in tight_fit.params(k)]
    _scripts(out, data)

    candidate = GlmmCandidate()
    bare = CaseReference(case, {}, data, {})
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            glmm_fit = candidate.fit(bare, variant)
    except CandidateFitError as exc:
        cause = exc.__cause__
        import glmm

        # a fit refused with a reason lme4 does not check (no finite estimate exists), or
        # any typed refusal where lme4 itself warned
        if isinstance(cause, glmm.SeparationError) or (
                isinstance(cause, glmm.GlmmError) and out.lme4_warnings):
            out.verdict, out.why = "glmm-refused", str(exc)
        else:
            out.verdict, out.why = "fail", f"lme4 fitted it, {exc}"
        return out
    out.glmm_warnings = [f"{w.category.__name__}: {w.message}" for w in caught]
    out.glmm_objective = glmm_fit.objective

    labelled = [*probe_points(default, tight, variant),
                ("glmm", list(map(float, glmm_fit.params(k))))]
    probes = _probe(session, data, spec, k, labelled)
    if probes is None:
        out.verdict, out.why = "fail", "lme4's devfun failed at its own tight and default optima"
        return out
    nref = VariantReference(variant, FitResult.from_json(default), tight_fit, probes)
    ref = CaseReference(case, {}, data, {k: nref})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out.rows = compare_variant(ref, k, candidate, registry=ESTIMATES)
    at_tight = probes.by_label("tight")
    assert at_tight is not None  # probe_points' first label
    out.lme4_tight_objective = at_tight.objective
    out.objective_gap = glmm_fit.objective - at_tight.objective
    at_glmm = probes.by_label("glmm")
    out.lme4_at_glmm = None if at_glmm is None else at_glmm.objective
    # lme4's own tight optimum, on the converged objective, as a candidate of the default tier
    own = dataclasses.replace(tight_fit, objective=at_tight.objective)
    own_out = CandidateOutput(fit=own)
    out.lme4_default_rows = [row for q in quantities(("default",))
                             if (row := q.compare(case.name, nref, own_out)).status == "fail"]
    _judge(out)
    return out


def _judge(out: Outcome) -> None:
    gap, ref = out.objective_gap, out.lme4_tight_objective
    assert gap is not None and ref is not None
    bound = float(TIGHT_OBJECTIVE.bound(np.array(ref)))
    if not out.tier_ok("probe"):
        out.verdict, out.why = "fail", "glmm's devfun differs from lme4's at the same parameters"
    elif gap < -bound:
        out.verdict, out.why = "better", f"glmm's −2logLik is {-gap:.6g} below lme4's tight optimum"
    elif out.lme4_clean and not out.tier_ok("tight") and _equally_good(out, bound):
        out.verdict = "flat"
        out.why = (f"glmm's optimum is as good as lme4's by lme4's devfun (−2logLik {gap:+.3g}, "
                   f"lme4's devfun there {out.lme4_at_glmm - ref:+.3g}), its parameters "
                   f"differ: " + "; ".join(f"{r.quantity} {r.note}" for r in out.failed_rows
                                           if r.tier == "tight"))
    elif out.lme4_clean and not out.tier_ok("tight"):
        out.verdict = "fail"
        out.why = (f"lme4 fitted without warnings and glmm is outside the tight tier "
                   f"(−2logLik {gap:+.6g} from lme4's tight optimum)")
    elif out.lme4_clean and out.default_applies and not out.tier_ok("default"):
        out.verdict = "fail"
        out.why = (f"lme4 fitted without warnings and glmm is outside the default tier "
                   f"(−2logLik {gap:+.6g} from lme4's tight optimum)")


def _equally_good(out: Outcome, bound: float) -> bool:
    """lme4's devfun and glmm's both put glmm's optimum within ``bound`` of lme4's."""
    gap, ref, there = out.objective_gap, out.lme4_tight_objective, out.lme4_at_glmm
    return (gap is not None and ref is not None and there is not None
            and abs(gap) <= bound and abs(there - ref) <= bound)


def _probe(session: RSession, data: Any, spec: dict[str, Any], k: int,
           labelled: list[tuple[str, list[float]]]) -> ProbeSet | None:
    """lme4's converged devfun at the labelled points; without glmm's optimum if lme4's
    PIRLS fails there, None if it fails at lme4's own points."""
    for pts in (labelled, labelled[:-1]):
        try:
            res = session.probe(data, spec, k, [p for _, p in pts], timeout=R_TIMEOUT)
        except RFitError:
            continue
        points = tuple(ProbeResult.from_json({**p, "label": label})
                       for (label, _), p in zip(pts, res["points"], strict=True))
        return ProbeSet(float(res["tolPwrss"]), points)
    return None


def _glmm_alone(problem: Problem, data: Any) -> str:
    """glmm's result on a problem that lme4 refused, in a few words."""
    import glmm

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = glmm.glmer(problem.formula, data.to_pandas(),
                             family=glmm.make_family(problem.family, problem.link),
                             nAGQ=problem.nAGQ, weights=problem.weights_column,
                             offset=problem.offset_column)
    except Exception as exc:  # recorded, whatever it is
        return f"raised {type(exc).__name__}: {exc}"
    said = "; ".join(f"{w.category.__name__}: {w.message}" for w in caught) or "no warning"
    return f"fitted (converged={fit.converged}, −2logLik={fit.objective!r}; {said})"


def _scripts(out: Outcome, data: Any) -> None:
    params = out.lme4_tight_params
    note = f"lme4's tight optimum (θ{', β' if out.problem.nAGQ else ''}): {params}"
    out.r_script = r_script(out.problem, data, params, comment=note)
    out.python_script = python_script(out.problem, data, params,
                                      comment="glmm's devfun at " + note)


# -- the tally -----------------------------------------------------------------------------
@dataclass
class Tally:
    """Outcomes of a run, each problem counted once (a shrinking search re-runs some)."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.outcomes[repr(outcome.problem)] = outcome

    def __len__(self) -> int:
        return len(self.outcomes)

    def of(self, verdict: str) -> list[Outcome]:
        return [o for o in self.outcomes.values() if o.verdict == verdict]

    def summary(self) -> list[str]:
        all_ = list(self.outcomes.values())
        if not all_:
            return ["randomised parity: no problems run"]
        lme4_fitted = [o for o in all_ if o.verdict != "lme4-error"]
        compared = [o for o in lme4_fitted if o.rows]
        clean = [o for o in lme4_fitted if o.lme4_clean]
        warned = [o for o in lme4_fitted if not o.lme4_clean]
        verdicts = Counter(o.verdict for o in all_)

        def count(group: list[Outcome], verdict: str) -> int:
            return sum(o.verdict == verdict for o in group)

        def within(group: list[Outcome], *tiers: str) -> int:
            return sum(all(o.tier_ok(t) for t in tiers) for o in group)

        lines = [
            f"randomised parity against live lme4: {len(all_)} problems "
            f"({sum(o.seconds for o in all_):.0f} s); verdicts: "
            + ", ".join(f"{v} {verdicts[v]}" for v in VERDICTS if verdicts[v]),
            "  by family(link)/response: " + _counts(
                f"{o.problem.family}({o.problem.link})/{o.problem.response}" for o in all_),
            "  by structure: " + _counts(o.problem.structure for o in all_),
            "  by nAGQ: " + _counts(str(o.problem.nAGQ) for o in all_),
            f"  lme4 fitted {len(lme4_fitted)}; glmm fitted {len(compared)} of those, "
            f"{within(compared, 'probe')} within probe",
            f"  lme4 without warnings: {len(clean)}; within tight {within(clean, 'tight')}, "
            f"within tight and default {within(clean, 'tight', 'default')}, better "
            f"{count(clean, 'better')}, flat {count(clean, 'flat')}, failed "
            f"{count(clean, 'fail')}",
            f"    of those within tight, default tier not required (lme4's own tight optimum "
            f"is outside it): {sum(not o.default_applies for o in clean if o.tier_ok('tight'))}",
            f"  lme4 with warnings: {len(warned)}; within tight {within(warned, 'tight')}, "
            f"better {count(warned, 'better')}, glmm refused {count(warned, 'glmm-refused')}, "
            f"failed {count(warned, 'fail')}",
        ]
        for o in self.of("better"):
            lines.append(f"  better: {o.problem.name}: glmm {o.glmm_objective!r}, lme4 tight "
                         f"{o.lme4_tight_objective!r} (lme4 warned: {o.lme4_warnings or 'no'})")
        for o in self.of("flat") + self.of("lme4-error") + self.of("glmm-refused"):
            lines.append(f"  {o.verdict}: {o.problem.name}: {o.why}")
        for o in self.of("fail"):
            lines.append(f"  FAIL: {o.problem.name}: {o.why}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary(),
                "outcomes": [o.to_json() for o in self.outcomes.values()]}

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n",
                              encoding="utf-8")


def _counts(keys: Iterable[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(Counter(keys).items()))
