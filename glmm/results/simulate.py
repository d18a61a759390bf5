"""Responses simulated from a fitted GLMM at its parameters (lme4's ``simulate.merMod``,
lme4 R/predict.R ``.simulateFun``; docs/results.md §8).

For each simulation, the terms not conditioned on get new spherical effects u ~ N(0, I),
b = Λ(θ̂)u; the conditioned terms keep b̃ (``re_form``, as in predict; lme4's default
conditions on none):

    η = Xβ̂ + o + Zb,   μ = g⁻¹(η),   y ~ family(μ)

    binomial   size·y ~ Binomial(size, μ), size = the prior weights times the trials; y is
               returned on the model's scale (a proportion where there are trials)
    Poisson    y ~ Poisson(μ) (prior weights ignored, with a warning, as lme4)
    Gamma      y ~ Gamma(shape = w/σ², scale = μσ²/w): mean μ, variance σ²μ²/w
    inverse Gaussian   y ~ IG(mean μ, shape λ = w/σ²): variance σ²μ³/w

lme4 1.1-31 draws Gamma with shape σ·w, which does not have the model's variance (fixed in
lme4 1.1-35); glmm draws the model's.  numpy's generator cannot reproduce R's random
numbers, so these agree with lme4 in distribution, not draw by draw.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ..design.design import Design
from ..errors import ArgumentError, GlmmWarning
from ..families import Family
from .predict import b_blocks


def simulate_responses(design: Design, family: Family, beta: np.ndarray, theta: np.ndarray,
                       b: np.ndarray, weights: np.ndarray, sigma: float, nsim: int,
                       seed: int | np.random.Generator | None, keep: Sequence[int]
                       ) -> np.ndarray:
    """An n × nsim array of simulated responses (module docstring); ``keep`` are the terms
    conditioned on (their b̃ kept)."""
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ArgumentError(f"nsim must be a positive integer, got {nsim!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = design.n
    base = design.X @ beta + design.offset
    blocks = b_blocks(design, b)
    out = np.empty((n, int(nsim)))
    if family.name == "poisson" and np.any(weights != 1.0):
        warnings.warn("modeling frequencies as a Poisson response ignores the prior weights "
                      "(as lme4's simulate)", GlmmWarning, stacklevel=4)
    for k in range(int(nsim)):
        eta = base.copy()
        for i, t in enumerate(design.random.terms):
            if i in keep:
                bb = blocks[i]
            else:
                u = rng.standard_normal((t.nlevels, t.ncols))
                bb = u @ t.T(theta).T
            eta += np.einsum("ij,ij->i", t.Xi, bb[t.codes])
        mu = family.link.linkinv(eta)
        out[:, k] = _draw(family, mu, weights, sigma, rng)
    return out


def _draw(family: Family, mu: np.ndarray, w: np.ndarray, sigma: float,
          rng: np.random.Generator) -> np.ndarray:
    name = family.name
    if name == "binomial":
        size = np.rint(w).astype(np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(size > 0, rng.binomial(size, np.clip(mu, 0.0, 1.0)) / size, 0.0)
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    phi = sigma * sigma
    if name == "Gamma":
        shape = w / phi
        return rng.gamma(shape, mu / shape)
    if name == "inverse.gaussian":
        return rng.wald(mu, w / phi)
    if name == "gaussian":
        return mu + sigma / np.sqrt(w) * rng.standard_normal(len(mu))
    raise ArgumentError(f"simulate: no draws for the {name} family")
