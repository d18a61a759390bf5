"""Candidates: the things compared against lme4's reference.

- ``glmm``: this project's engine, ``glmm.glmer``; its devfun gives the probes.
- ``r``: live lme4 through rpy2, fitted now with the tight control and probed with the
  converged devfun.  Against fixtures this is the same-version check: the committed fixtures
  must still be what this R and lme4 compute.
- ``fixture``: the reference's own tight fit.  It needs neither R nor the engine, and checks
  that a fixture agrees with itself: the tight fit's reported objective and modes against
  the separately computed probe at the same parameters, and the tight optimum against the
  default fit.  It skips the tight tier, where it would only compare a number with itself.
"""

from __future__ import annotations

import dataclasses
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .choices import CANDIDATES
from .deadline import DEFAULT_R_TIMEOUT, check_timeout
from .errors import ParityError
from .result_quantities import newdata_frames
from .results import CaseReference, FitResult, ProbeResult, RanefTable
from .variants import Variant


class CandidateUnavailableError(ParityError):
    """The requested candidate cannot run here (no engine yet, or no R)."""


class CandidateFitError(ParityError):
    """The candidate raised an error on a case; reported as failing rows."""


class Candidate(ABC):
    name: str
    description: str
    #: why the tight tier is skipped for this candidate, or None
    skip_tight: str | None = None
    #: the arguments of :func:`make_candidate` that make this candidate again (in a worker)
    recipe: tuple[Any, ...] = ()

    def unavailable(self, method: str) -> str | None:
        """Why this candidate cannot fit a case of ``method``, or None if it can."""
        return None

    @abstractmethod
    def fit(self, ref: CaseReference, variant: Variant) -> FitResult:
        """The candidate's optimum for the case at this variant."""

    @abstractmethod
    def devfun(self, ref: CaseReference, variant: Variant,
               points: Sequence[np.ndarray]) -> list[ProbeResult | None]:
        """The candidate's converged objective and modes at each parameter vector, or None
        where it has no value."""


class FixtureCandidate(Candidate):
    name = "fixture"
    recipe = ("fixture",)
    description = "the fixture's own lme4 tight fit (self-consistency; needs no R, no engine)"
    skip_tight = "the candidate is the reference's own tight fit"

    def fit(self, ref: CaseReference, variant: Variant) -> FitResult:
        return ref.variant(variant).tight

    def devfun(self, ref: CaseReference, variant: Variant,
               points: Sequence[np.ndarray]) -> list[ProbeResult | None]:
        tight = ref.variant(variant).tight
        at = tight.params(variant)
        raw = tight.raw
        out: list[ProbeResult | None] = []
        for p in points:
            if p.shape == at.shape and np.array_equal(p, at):
                out.append(ProbeResult(params=at, objective=tight.objective, u=tight.u,
                                       b=np.asarray(raw["b"], dtype=float),
                                       beta=tight.fixef, label="tight fit"))
            else:
                out.append(None)
        return out


class LiveRCandidate(Candidate):
    name = "r"
    description = "live lme4 through rpy2 (tight fit, converged devfun)"

    def __init__(self, timeout: float | None = DEFAULT_R_TIMEOUT) -> None:
        """``timeout``: the limit in seconds for each R call (None: none).  A call that
        passes it raises RTimeoutError, which the runner reports as failing rows."""
        from .r_bridge import session

        self.timeout = check_timeout(timeout)
        self.recipe = ("r", self.timeout)
        self.session = session()  # raises RUnavailableError
        v = self.session.versions
        self.description = f"live lme4 {v['lme4_version']} on R {v['r_version']} (tight fit)"

    def fit(self, ref: CaseReference, variant: Variant) -> FitResult:
        """lme4's tight fit, with its objective replaced by the converged devfun at its
        optimum (and logLik, AIC, BIC shifted alike), as the engine reports it.

        R sees the reference's data as vectors and its spec once checked
        (:mod:`parity.trust`); nothing of a fixture file is evaluated as code."""
        fit = FitResult.from_json(self.session.fit(ref.data, ref.case.spec(), variant.value,
                                                   "tight", timeout=self.timeout))
        exact = self.devfun(ref, variant, [fit.params(variant)])[0]
        assert exact is not None  # the live devfun answers at every point
        return fit.at_objective(exact.objective)

    def devfun(self, ref: CaseReference, variant: Variant,
               points: Sequence[np.ndarray]) -> list[ProbeResult | None]:
        res = self.session.probe(ref.data, ref.case.spec(), variant.value,
                                 [list(map(float, p)) for p in points],
                                 tols=(ref.variant(variant).probes.tolPwrss,),
                                 timeout=self.timeout)
        return [ProbeResult.from_json(p) for p in res["points"]]


class GlmmCandidate(Candidate):
    name = "glmm"
    recipe = ("glmm",)

    def __init__(self) -> None:
        import glmm

        self.glmm = glmm
        self.description = f"glmm {glmm.__version__} (this project's engine)"
        self._fits: dict[tuple[str, str], object] = {}
        self._results: dict[tuple[str, str, tuple[float, ...] | None], dict[str, Any]] = {}

    def unavailable(self, method: str) -> str | None:
        if method not in ("glmer", "lmer"):
            return f"glmm has no {method}() yet: not available"
        return None

    def _fit(self, ref: CaseReference, variant: Variant):
        key = (ref.case.name, variant.label)
        if key not in self._fits:
            c = ref.case
            why = self.unavailable(c.method)
            if why:
                raise CandidateUnavailableError(why)
            try:
                if c.method == "lmer":
                    self._fits[key] = self.glmm.lmer(
                        c.formula, ref.data.to_pandas(), REML=bool(variant.value),
                        weights=c.weights, offset=c.offset)
                else:
                    self._fits[key] = self.glmm.glmer(
                        c.formula, ref.data.to_pandas(),
                        family=self.glmm.make_family(c.family, c.link),
                        nAGQ=variant.nAGQ, weights=c.weights, offset=c.offset)
            except Exception as exc:  # any failure of the engine is a row
                raise CandidateFitError(f"glmm.{c.method} failed: {type(exc).__name__}: "
                                        f"{exc}") from exc
        return self._fits[key]

    def fit(self, ref: CaseReference, variant: Variant) -> FitResult:
        f = self._fit(ref, variant)
        ranef = {g: RanefTable(tuple(map(str, df.index)), tuple(map(str, df.columns)),
                               df.to_numpy(dtype=float))
                 for g, df in f.ranef.items()}
        return FitResult(
            fixef_names=tuple(f.fixef.index), fixef=f.fixef.to_numpy(dtype=float),
            theta_names=tuple(f.theta_names), theta=np.asarray(f.theta, dtype=float),
            ranef=ranef, objective=f.objective, deviance=f.deviance, loglik=f.loglik,
            aic=f.aic, bic=f.bic, df=f.df, nobs=f.nobs, sigma=f.sigma, u=f.u, native=f,
            results=lambda at, reference: self.results(ref, variant, at, reference))

    def results(self, ref: CaseReference, variant: Variant, at: np.ndarray | None,
                reference: dict[str, Any]) -> dict[str, Any]:
        """The fit's answers beyond its estimates in a fixture's ``results`` layout, with its
        condVar (:func:`glmm_results`): at the parameters ``at`` (lme4's), or at the optimum
        (None), on the new data and rows that lme4's ``reference`` results record; kept per
        case, variant and point."""
        key = (ref.case.name, variant.label, None if at is None else tuple(map(float, at)))
        if key not in self._results:
            f = self._fit(ref, variant)
            try:
                self._results[key] = glmm_results(f if at is None else glmm_at(f, at),
                                                  ref.data.to_pandas(), reference)
            except Exception as exc:  # any failure of the engine is a row
                raise CandidateFitError(f"glmm's results failed: {type(exc).__name__}: "
                                        f"{exc}") from exc
        return self._results[key]

    def devfun(self, ref: CaseReference, variant: Variant,
               points: Sequence[np.ndarray]) -> list[ProbeResult | None]:
        f = self._fit(ref, variant)
        out: list[ProbeResult | None] = []
        for p in points:
            try:
                ev = f.evaluate(p)
            except Exception as exc:  # any failure of the engine is a row
                raise CandidateFitError(f"glmm devfun failed at {list(p)}: "
                                        f"{type(exc).__name__}: {exc}") from exc
            out.append(ProbeResult(params=np.asarray(p, dtype=float), objective=ev.objective,
                                   u=ev.u, b=ev.b, beta=ev.beta, ldL2=ev.ldL2, ussq=ev.ussq,
                                   drsum=ev.drsum))
        return out


# -- glmm's answers in the fixture's layout ------------------------------------------
def _named(df: pd.DataFrame) -> dict[str, Any]:
    return {"names": [str(c) for c in df.columns], "values": df.to_numpy(dtype=float).tolist()}


def _table(df: pd.DataFrame) -> dict[str, Any]:
    return {"rows": [str(r) for r in df.index], "columns": [str(c) for c in df.columns],
            "values": df.to_numpy(dtype=float).tolist()}


def glmm_results(fit: Any, data: pd.DataFrame, reference: dict[str, Any]) -> dict[str, Any]:
    """A glmm fit's answers in the layout of a fixture's ``results`` (and its condVar per
    grouping factor, levels × p × p): predictions on the new data of lme4's ``reference``
    results, fitted values and residuals at its ``observed_rows`` (all rows where none)."""
    known, every = newdata_frames(data, reference["newdata"])
    rows = reference.get("observed_rows")
    obs = slice(None) if rows is None else np.asarray(rows, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vcov_default = fit.vcov()
        vcov_rx = fit.vcov(use_hessian=False)
        vc = fit.varcorr()
        out = {
            "vcov_default": _named(vcov_default), "vcov_rx": _named(vcov_rx),
            "coef_table": _table(fit.coef_table()),
            "varcorr": {
                "grp": [str(g) for g in vc["grp"]],
                "var1": [None if pd.isna(v) else str(v) for v in vc["var1"]],
                "var2": [None if pd.isna(v) else str(v) for v in vc["var2"]],
                "vcov": vc["vcov"].astype(float).tolist(),
                "sdcor": vc["sdcor"].astype(float).tolist()},
            "fitted": np.asarray(fit.fitted(), dtype=float)[obs].tolist(),
            "residuals": {t: np.asarray(fit.residuals(t), dtype=float)[obs].tolist()
                          for t in ("deviance", "pearson", "working", "response")},
            "predict": {
                "known": fit.predict(known).tolist(),
                "new_levels": None if every is None else {
                    "link": fit.predict(every, allow_new_levels=True).tolist(),
                    "response": fit.predict(every, allow_new_levels=True,
                                            type="response").tolist()},
                "fixed_only": fit.predict(known if every is None else every,
                                          re_form="NA").tolist()},
            "confint": _table(fit.confint()),
            # the lines R's capture.output() gives of print(): str() and print's newline
            "summary": str(fit.summary()).split("\n"),
            "condvar": fit.condvar(),
        }
    return out


def glmm_at(fit: Any, params: np.ndarray) -> Any:
    """The glmm fit with its evaluation moved to ``params`` (lme4's tight parameters): the
    same design and objective, the mode and every result at those parameters, and the
    Hessian (and lme4's checks) there too."""
    ev = fit.evaluate(params)
    final = np.asarray(params, dtype=float).copy()
    opt = dataclasses.replace(fit.optsummary, final=final, fmin=float(ev.objective))
    at = dataclasses.replace(fit, evaluation=ev, optsummary=opt)
    if hasattr(at, "convergence_checks"):   # a GLMM's checkConv (an LMM has none here)
        opt.attach_checks(at.convergence_checks)
    return at


def engine_available() -> tuple[bool, str]:
    import glmm

    if callable(getattr(glmm, "glmer", None)):
        return True, f"glmm {glmm.__version__}"
    return False, "the glmm engine has no glmer() yet"


def make_candidate(name: str, r_timeout: float | None = DEFAULT_R_TIMEOUT) -> Candidate:
    """Build a candidate by name; raise CandidateUnavailableError (or RUnavailableError for
    ``r``) when it cannot run here.  ``r_timeout`` limits each R call of ``r`` (seconds)."""
    if name == "fixture":
        return FixtureCandidate()
    if name == "r":
        return LiveRCandidate(r_timeout)
    if name == "glmm":
        ok, why = engine_available()
        if not ok:
            raise CandidateUnavailableError(f"candidate 'glmm' is unavailable: {why}")
        return GlmmCandidate()
    raise CandidateUnavailableError(f"unknown candidate {name!r}; choose from {CANDIDATES}")
