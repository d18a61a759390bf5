"""glmm.families.response (PIRLS's fused response pass) against R: every expected number comes from
fixtures/families.json (lme4 1.1-31's C++ glmFamily, written by
scripts/generate_family_fixtures.py), as in tests/test_families.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from glmm import families as F
from glmm.families.response import Response

DOC: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "families.json").read_text("utf-8"))

#: The fused pass evaluates the same quantities in a different but algebraically equal form
#: (a binary y's deviance in one term, μ'/V = 1 for the logit), and μ goes through
#: g⁻¹(g(μ)) here: a few ulps per value, far below any formula or clamp error.
RTOL = 1e-10


def _response(entry: dict[str, Any], link: str | None = None) -> tuple[Response, np.ndarray]:
    fam = F.make_family(entry["family"], link)
    y, n, wt, mu = (np.asarray(entry[k], dtype=float) for k in ("y", "n", "wt", "mu"))
    return Response(fam, y, n, wt), fam.link.linkfun(mu)


@pytest.mark.parametrize("entry", DOC["deviance"], ids=lambda e: f"{e['family']}-{e['label']}")
def test_deviance_and_aic_match_lme4(entry: dict[str, Any]) -> None:
    resp, eta = _response(entry)
    wk = resp.update(eta)
    # lme4's deviance forms cancel (y log(y/μ) against y − μ): with μ one ulp off after
    # g⁻¹(g(μ)), the rounding of those terms, up to ~eps·2w(y + μ) each, is what can differ
    y, wt, mu = (np.asarray(entry[k], dtype=float) for k in ("y", "wt", "mu"))
    atol = 16 * F.EPS * 2 * wt * (y + mu + 1)
    expected = np.asarray(entry["lme4"]["dev_resids"], dtype=float)
    for dev in (wk.dev, resp.deviance_and_score(eta, score=False)[0]):
        excess = np.abs(dev - expected) - (atol + RTOL * np.abs(expected))
        assert np.all(excess <= 0), f"deviances {dev} vs lme4 {expected}"
    aic = resp.aic(wk.mu, float(np.sum(wk.dev)))
    if entry["lme4"]["aic_is_inf"]:
        assert aic == np.inf
    else:
        # for whole counts A = Σdev + (A − Σdev), the constant exact (the saturated aic), so
        # A carries the deviances' own rounding, bounded per row by atol above (5e-9 of the
        # 2.5e7 counts of huge_counts; lme4's aic sums log-densities and has none of it)
        assert aic == pytest.approx(entry["lme4"]["aic"], rel=RTOL, abs=float(atol.sum()))


@pytest.mark.parametrize(("label", "constant"), [
    ("bernoulli", True), ("cbind", True), ("many_trials", True), ("zero_weight", True),
    ("noninteger_weights", False), ("counts", True), ("noninteger_y", False),
    ("basic", False)])
def test_aic_offset_only_for_whole_counts(label: str, constant: bool) -> None:
    # A − Σdev is constant in μ only when the counts m·y and trials m are whole
    entry = next(e for e in DOC["deviance"] if e["label"] == label)
    resp, _ = _response(entry)
    assert (resp.aic_constant is not None) == constant


@pytest.mark.parametrize("label", ["bernoulli", "cbind", "many_trials", "zero_weight", "counts",
                                   "huge_counts"])
def test_saturated_aic_is_the_aic_at_mu_equal_y(label: str) -> None:
    # the constant A − Σdev: the family's aic at the saturated μ = y, where Σdev = 0, without
    # the D terms that vanish there; the same Loader form, so agreement is to rounding
    entry = next(e for e in DOC["deviance"] if e["label"] == label)
    fam = F.make_family(entry["family"])
    y, n, wt = (np.asarray(entry[k], dtype=float) for k in ("y", "n", "wt"))
    expected = fam.aic(y, n, y, wt, 0.0)
    assert fam.saturated_aic(y, n, wt) == pytest.approx(expected, rel=1e-13, abs=1e-13)
    binary = label in ("bernoulli", "zero_weight")   # y ∈ {0, 1}: every term is 0
    assert (expected == 0.0) == binary


@pytest.mark.parametrize("link", ["logit", "log"])
def test_weights_and_scores_match_lme4_including_clamps(link: str) -> None:
    """W = w μ'²/V and s = w μ'(y − μ)/V from lme4's own μ, μ' (and its clamps far out)."""
    family = "binomial" if link == "logit" else "poisson"
    entry = next(e for e in DOC["links"] if e["link"] == link and e["family"] == family)
    fam = F.make_family(entry["family"], link)
    for eta, lme4 in ((entry["eta"], entry["lme4"]),
                      (entry["eta_extreme"], entry["extreme"]["lme4"])):
        eta = np.asarray(eta, dtype=float)
        mu, m = np.asarray(lme4["linkinv"]), np.asarray(lme4["mu_eta"])
        V = np.maximum(F.EPS, mu * (1 - mu)) if link == "logit" else mu
        y = np.where(np.arange(len(eta)) % 2 == 0, 1.0, 0.0)
        for w in (np.ones(len(eta)), np.linspace(0.5, 2.0, len(eta))):
            wk = Response(fam, y, np.ones(len(eta)), w).update(eta)
            np.testing.assert_allclose(wk.mu, mu, rtol=RTOL)
            # as lme4 (√W = √w μ'/√V): no overflow of μ'² for a huge μ
            np.testing.assert_allclose(wk.W, w * m * (m / V), rtol=RTOL)
            np.testing.assert_allclose(wk.s, w * (m / V) * (y - mu), rtol=RTOL, atol=1e-300)
            # the unit deviances at lme4's (clamped) μ, from their definitions: the fused
            # pass computes them in other forms (one exponential; no logarithm for Poisson
            # while μ is not clamped), which must agree also where the clamps act
            if link == "logit":
                dev = -2.0 * w * np.log(np.where(y == 1.0, mu, 1.0 - mu))
            else:
                dev = 2.0 * w * (np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
                                 - (y - mu))
            # rounding of the two forms: a few ulps of the terms (2w·|η| at most here)
            np.testing.assert_allclose(wk.dev, dev, rtol=RTOL,
                                       atol=8 * F.EPS * float(np.max(2 * w * (np.abs(eta) + 1))))


def test_node_deviances_broadcast_per_column() -> None:
    entry = next(e for e in DOC["deviance"] if e["label"] == "cbind")
    resp, eta = _response(entry)
    cols = np.column_stack([eta, eta + 0.3, eta - 1.0])
    dev, s = resp.deviance_and_score(cols)
    assert dev.shape == s.shape == cols.shape
    for k in range(3):
        d1, s1 = resp.deviance_and_score(cols[:, k])
        np.testing.assert_array_equal(dev[:, k], d1)
        np.testing.assert_array_equal(s[:, k], s1)

