"""Fitted values and residuals of a GLMM at the mode, as lme4's ``fitted.merMod`` and
``residuals.glmResp`` define them (lme4 R/lmer.R, src/respModule.cpp; docs/results.md §6).

y is the response as the model sees it (a proportion for binomial counts), w the prior
weights (times the trials for counts), μ̂ = g⁻¹(η̂) at the conditional mode, dᵢ the unit
deviance (prior weights included):

    response   yᵢ − μ̂ᵢ
    working    (yᵢ − μ̂ᵢ) / μ_η(η̂ᵢ)                 μ_η = dμ/dη
    pearson    (yᵢ − μ̂ᵢ) · √(wᵢ / V(μ̂ᵢ))
    deviance   sign(yᵢ − μ̂ᵢ) · √dᵢ                  (−√dᵢ where yᵢ = μ̂ᵢ, as lme4's ifelse)

``scaled=True`` divides by σ (lme4's ``residuals(, scaled = TRUE)``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError
from ..families import Family

TYPES = ("deviance", "pearson", "working", "response")


def residuals(family: Family, y: np.ndarray, mu: np.ndarray, eta: np.ndarray,
              weights: np.ndarray, type: str = "deviance") -> np.ndarray:
    """The residuals of ``type`` (module docstring)."""
    if not isinstance(type, str) or type not in TYPES:
        raise ArgumentError(f"type must be one of {', '.join(map(repr, TYPES))}, got {type!r}")
    r = y - mu
    if type == "response":
        return r
    if type == "working":
        return r / family.link.mu_eta(eta)
    if type == "pearson":
        with np.errstate(divide="ignore", invalid="ignore"):
            return r * np.sqrt(weights / family.variance(mu))
    d = np.sqrt(np.maximum(family.dev_resids(y, mu, weights), 0.0))
    return np.where(y > mu, d, -d)
