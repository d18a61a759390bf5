"""The GLM response at a linear predictor: lme4's glmResp, as one fused pass.

PIRLS needs, at every trial η, the unit deviances (to accept the step) and, at the accepted
η, the Fisher weights and the scores:

    μ = g⁻¹(η),   Wᵢ = wᵢ μ'ᵢ² / V(μᵢ),   sᵢ = wᵢ μ'ᵢ (yᵢ − μᵢ) / V(μᵢ)   (s = −½ ∂D/∂η)

:meth:`Response.update` computes all four in one pass.  For the canonical pairs
binomial–logit and Poisson–log it uses the closed forms (μ' = μ(1 − μ) and μ' = V = μ)
and, for a binary response, the deviance without its (zero) y-only part,

    binomial, y ∈ {0, 1}:  devᵢ = −2wᵢ[yᵢ log μᵢ + (1 − yᵢ) log(1 − μᵢ)]
    otherwise lme4's forms, with y log(y/μ) = 0 at y = 0

with lme4's clamps on μ, μ' and V (:mod:`glmm.families.family`); other pairs call the family's
functions one by one.

The aic.  For binomial with whole counts and Poisson with whole y, A(μ) − Σdevᵢ(μ) does not
depend on μ (both are −2 log-likelihoods, one relative to the saturated model), so
A = Σdev + c with c in closed form (:meth:`Response._constant_aic_part`); otherwise (Gamma,
inverse Gaussian, non-integer counts) the family's aic is evaluated at each μ.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..compiled import core as _core
from ..errors import ResponseError
from .family import Family
from .links import EPS
from .nmath import xlogy


def check_response(y: np.ndarray) -> None:
    """lme4's checkResponse (``check.response.not.const = "stop"``): a response with one
    distinct value (counted as lme4 counts its resp$y: proportions for binomial) has no
    information on the random effects, and its fixed effects run off to ±∞."""
    if len(y) and bool(np.all(y == y[0])):
        raise ResponseError(f"Response is constant: every value is {y[0]:g}; glmer (as lme4) "
                            "needs at least two distinct response values")



class Working(NamedTuple):
    """The response at one η: μ, unit deviances (prior weights included), W and s."""

    mu: np.ndarray
    dev: np.ndarray
    W: np.ndarray
    s: np.ndarray


class Response:
    """y, prior weights w, binomial trials, offset and family, with their constant parts."""

    def __init__(self, family: Family, y: np.ndarray, n_trials: np.ndarray,
                 weights: np.ndarray) -> None:
        self.family = family
        self.y, self.n_trials, self.weights = y, n_trials, weights
        pair = (family.name, family.link.name)
        self._kind = pair if pair in (("binomial", "logit"), ("poisson", "log")) else None
        # binomial with binary y: one of the two deviance terms is 0 and the y-only part c is
        # 0, so the short form has no cancellation; otherwise lme4's own form (large counts
        # would lose digits to c − 2w y log μ)
        self._binary = (family.name == "binomial"
                        and bool(np.count_nonzero((y == 0.0) | (y == 1.0)) == y.size))
        if self._binary:   # μ where y = 1 and 1 − μ where y = 0, as (1 − y) + (2y − 1)μ
            self._minus_two_w, self._two_y_minus_1 = -2.0 * weights, 2.0 * y - 1.0
        self._one_minus_y, self._two_w = 1.0 - y, 2.0 * weights
        self._unit = bool(np.count_nonzero(weights != 1.0) == 0)
        # Poisson–log: y log(y/μ) − (y − μ) = (y log y − y) − yη + μ where μ = e^η is not
        # clamped, with no logarithm per step.  The terms cancel where the deviance is small
        # against them, so this form is used only while their rounding, ~ε·w·(|y log y| + y)
        # per row, stays below ~1e-11 (F itself, which holds Σ w y log y through the aic, keeps
        # its relative rounding at ε either way)
        self._ylogy = None
        if self._kind == ("poisson", "log"):
            ylogy = xlogy(y, y)
            if float(np.max(weights * (np.abs(ylogy) + y), initial=0.0)) <= 1e4:
                self._ylogy = ylogy - y
        #: A − Σdev where it does not depend on μ (whole counts), else None
        self.aic_constant = self._constant_aic_part()
        #: the compiled core's response arguments (kind: 0 binomial–logit, 1 Poisson–log;
        #: binary y; y; w; y log y − y or None), or None: another pair, or no compiled core.
        #: The core's response pass serves its own PIRLS only; this module's serves the rest.
        self.core_args = None if _core is None or self._kind is None else (
            0 if self._kind[0] == "binomial" else 1, self._binary, np.ascontiguousarray(y),
            np.ascontiguousarray(weights), self._ylogy)

    # -- one pass ----------------------------------------------------------------------------
    def update(self, eta: np.ndarray) -> Working:
        """μ, unit deviances, W and s at η (every array of length n)."""
        y, w = self.y, self.weights
        if self._kind == ("binomial", "logit"):
            # μ' = max(ε, dlogis(η)) and V = max(ε, μ(1 − μ)) with μ clamped to [ε, 1 − ε]:
            # μ'/V = 1 (up to rounding) both where nothing is clamped (μ' = V = μ(1 − μ)) and
            # where dlogis(η) < ε (μ' = V = ε), so W = w μ' and s = w(y − μ)
            # one exponential for both: with e = exp(−|η|), μ = 1/(1 + e) for η ≥ 0 and
            # e/(1 + e) below (expit's own forms), dlogis(η) = e/(1 + e)².  The clamps act
            # only for |η| ≳ 36, where dlogis(η) < 2ε: one test instead of three clamps.
            e = np.exp(-np.abs(eta))
            f = 1.0 + e
            mu = np.where(eta >= 0.0, 1.0, e) / f
            m = e / (f * f)
            if m.min() < 2.0 * EPS:
                m = np.maximum(m, EPS)
                mu = np.maximum(np.minimum(mu, 1.0 - EPS), EPS)
            dev = self._binomial_deviance(y, w, mu, ())
            r = y - mu
            return Working(mu, dev, m if self._unit else w * m, r if self._unit else w * r)
        if self._kind == ("poisson", "log"):
            # μ = μ' = V (the clamp acts for η ≲ −36)
            mu = np.exp(eta)
            if self._ylogy is not None and mu.min() >= EPS:
                dev = 2.0 * w * (self._ylogy - y * eta + mu)
            else:
                mu = np.maximum(mu, EPS)
                dev = 2.0 * w * (xlogy(y, y / mu) - (y - mu))
            r = y - mu
            return Working(mu, dev, mu if self._unit else w * mu, r if self._unit else w * r)
        fam = self.family
        mu = fam.link.linkinv(eta)
        m = fam.link.mu_eta(eta)
        mV = m / fam.variance(mu)
        return Working(mu, fam.dev_resids(y, mu, w), w * m * mV, w * mV * (y - mu))

    def deviance_and_score(self, eta: np.ndarray, score: bool = True
                           ) -> tuple[np.ndarray, np.ndarray | None]:
        """(devᵢ, sᵢ) at η of shape (n,) or (n, k), one column per quadrature node;
        s is None unless ``score``."""
        col = (slice(None), None) if eta.ndim == 2 else (slice(None),)
        y, w = self.y[col], self.weights[col]
        if self._kind is not None:
            if self._kind == ("binomial", "logit"):
                with np.errstate(over="ignore"):   # expit's form: 1/(1 + e^(−η)), 0 below −709
                    mu = 1.0 / (1.0 + np.exp(-eta))
                mu = np.maximum(np.minimum(mu, 1.0 - EPS), EPS)
                dev = self._binomial_deviance(y, w, mu, col)
            else:
                mu = np.maximum(np.exp(eta), EPS)
                dev = 2.0 * w * (xlogy(y, y / mu) - (y - mu))
            return dev, ((y - mu) if self._unit else w * (y - mu)) if score else None
        fam = self.family
        mu = fam.link.linkinv(eta)
        dev = fam.dev_resids(y, mu, w)
        if not score:
            return dev, None
        return dev, w * fam.link.mu_eta(eta) * (y - mu) / fam.variance(mu)

    def _binomial_deviance(self, y: np.ndarray, w: np.ndarray, mu: np.ndarray,
                           col: tuple) -> np.ndarray:
        """2w[y log(y/μ) + (1 − y) log((1 − y)/(1 − μ))] (y log(y/μ) = 0 at y = 0)."""
        if self._binary:   # −2w log μ where y = 1, −2w log(1 − μ) where y = 0
            return self._minus_two_w[col] * np.log(self._one_minus_y[col]
                                                   + self._two_y_minus_1[col] * mu)
        c = self._one_minus_y[col]
        with np.errstate(divide="ignore", invalid="ignore"):   # (one errstate for both logs)
            a, b = y * np.log(y / mu), c * np.log(c / (1.0 - mu))
        # x log(x/μ) = 0 at x = 0 (xlogy's convention; μ ∈ [ε, 1 − ε], so x/μ is not NaN)
        return self._two_w[col] * (np.where(y == 0.0, 0.0, a) + np.where(c == 0.0, 0.0, b))

    def weight_derivatives(self, eta: np.ndarray, mu: np.ndarray, W: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
        """(W, W' = dW/dη) at η, given μ and W there:  W' = w[2μ'μ''/V − μ'³V'/V²],
        which is W(1 − 2μ) for binomial–logit and W for Poisson–log (up to their clamps,
        where W' is ±wε instead of lme4's 0 or ∓wε)."""
        if self._kind == ("binomial", "logit"):
            return W, W * (1.0 - 2.0 * mu)
        if self._kind == ("poisson", "log"):
            return W, W
        fam, w = self.family, self.weights
        m = fam.link.mu_eta(eta)
        V = fam.variance(mu)
        W = w * m * m / V
        Wp = w * (2.0 * m * fam.link.mu_eta2(eta) / V - m ** 3 * fam.variance_deriv(mu) / (V * V))
        return W, Wp

    def observed_weights(self, eta: np.ndarray, mu: np.ndarray, W: np.ndarray) -> np.ndarray:
        """O = −ds/dη = W − w(y − μ)(μ''/V − μ'²V'/V²): the weights of the true Hessian of
        ½P in u; O = W for the canonical pairs binomial–logit and Poisson–log."""
        if self._kind is not None:
            return W
        fam = self.family
        m = fam.link.mu_eta(eta)
        V = fam.variance(mu)
        return W - self.weights * (self.y - mu) * (
            fam.link.mu_eta2(eta) / V - m * m * fam.variance_deriv(mu) / (V * V))

    def aic_slope(self, drsum: float) -> float:
        """κ = dA/dD at D = ``drsum``: 1 where A = D + const (binomial, Poisson); for Gamma,
        A = 2n(log Γ(a) − a log a + a) + n + 2Σw log y + 2 with a = n/D and n = Σw, so
        κ = (2n²/D²)(log a − ψ(a)); for the inverse Gaussian, A = n(log(2πD/n) + 1) + …,
        so κ = n/D; for the gaussian, κ = N/D with N the number of observations."""
        name = self.family.name
        if name in ("binomial", "poisson"):
            return 1.0
        if name == "gaussian":   # A = N(log(2πD/N) + 1) + …, N the number of observations
            return len(self.y) / drsum
        n = float(self.weights.sum())
        if name == "Gamma":
            a = n / drsum
            from scipy.special import digamma

            return 2.0 * n * n / (drsum * drsum) * (math.log(a) - float(digamma(a)))
        return n / drsum

    # -- the aic -------------------------------------------------------------------------------
    def aic(self, mu: np.ndarray, drsum: float) -> float:
        """lme4's A(μ); ``drsum`` = Σdevᵢ(μ)."""
        if self.aic_constant is not None:
            return drsum + self.aic_constant
        return float(self.family.aic(self.y, self.n_trials, mu, self.weights, drsum))

    def _constant_aic_part(self) -> float | None:
        """A − Σdev when it does not depend on μ (whole counts), else None.  A = −2Σ log-density
        and Σdev then share their μ terms, so A − Σdev is A at μ = y, where Σdev = 0 (the
        family's ``saturated_aic``)."""
        y, fam = self.y, self.family
        if fam.name == "binomial":
            m = fam.trials(self.n_trials, self.weights)
            k = m * y
            whole = bool(np.count_nonzero(m == np.rint(m)) == m.size
                         and np.count_nonzero(np.abs(k - np.rint(k)) <= 1e-12 * m) == k.size)
        elif fam.name == "poisson":
            whole = bool(np.count_nonzero(y == np.rint(y)) == y.size)
        else:
            whole = False
        if not whole:
            return None
        return fam.saturated_aic(y, self.n_trials, self.weights)
