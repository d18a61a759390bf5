"""GLM links as lme4 1.1-31 evaluates them: g, g⁻¹, dμ/dη and d²μ/dη².

lme4 evaluates the links logit, probit, cloglog (inverse only), cauchit, log, identity and
inverse in its own C++ (``src/glmFamily.cpp``), not with R's ``family`` objects; the C++
versions clamp some values at ε = DBL_EPSILON ≈ 2.22e-16 where R's own functions clamp
differently or not at all (R's ``binomial()$linkinv`` clamps η at ±30, lme4 clamps μ to
[ε, 1−ε]).  The links sqrt and 1/mu^2 and the cloglog link function are R's own
(``stats::make.link``).  Each formula is stated in the docstring of the function that
evaluates it; Φ/φ are the standard normal cdf/density.  The link functions keep R's IEEE
behaviour: overflow, division by zero and log(0) give ±inf or 0 without a warning.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..errors import FamilyError

#: DBL_EPSILON, the clamp constant of lme4's C++ (R's ``.Machine$double.eps``).
EPS: float = float(np.finfo(float).eps)

#: R's pnorm returns exactly 0 for η at or below this (the end of its lower-tail algorithm);
#: scipy's ndtr keeps going into subnormal numbers.
_PNORM_ZERO_BELOW = -37.5193

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

Fn = Callable[[np.ndarray], np.ndarray]




def as_float(x: npt.ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def as_float_arrays(*xs: npt.ArrayLike) -> list[np.ndarray]:
    """The arguments as float arrays of one shape: broadcast only where their shapes differ
    (np.broadcast_arrays costs more than a small model's whole aic)."""
    arrays = [as_float(x) for x in xs]
    if any(a.shape != arrays[0].shape for a in arrays):
        return list(np.broadcast_arrays(*arrays))
    return arrays


# ---------------------------------------------------------------------------------------
# Links.  Each link is four functions of a float array: g(μ), g⁻¹(η), dμ/dη, d²μ/dη².
# Where lme4 clamps dμ/dη at ε, d²μ/dη² is 0 (the derivative of the clamped branch).
# ---------------------------------------------------------------------------------------

def _logit_fun(mu: np.ndarray) -> np.ndarray:
    """g(μ) = log(μ / (1 − μ))  (R's qlogis)."""
    return np.log(mu / (1.0 - mu))


def _logit_inv(eta: np.ndarray) -> np.ndarray:
    """μ = min(max(1 / (1 + e^(−η)), ε), 1 − ε)  (plogis, clamped by lme4's C++)."""
    return np.clip(1.0 / (1.0 + np.exp(-eta)), EPS, 1.0 - EPS)


def _dlogis(eta: np.ndarray) -> np.ndarray:
    """Logistic density e/(1 + e)² with e = e^(−|η|), which cannot overflow."""
    e = np.exp(-np.abs(eta))
    f = 1.0 + e
    return e / (f * f)


def _logit_mu_eta(eta: np.ndarray) -> np.ndarray:
    """dμ/dη = max(ε, dlogis(η)),  dlogis(η) = μ(1 − μ) unclamped."""
    return np.maximum(EPS, _dlogis(eta))


def _logit_mu_eta2(eta: np.ndarray) -> np.ndarray:
    """d²μ/dη² = dlogis(η)·(1 − 2·plogis(η)) = −tanh(η/2)·dlogis(η); 0 where clamped."""
    d = _dlogis(eta)
    return np.where(d < EPS, 0.0, -np.tanh(0.5 * eta) * d)


def _probit_fun(mu: np.ndarray) -> np.ndarray:
    """g(μ) = Φ⁻¹(μ)."""
    from scipy.special import ndtri  # scipy.special on first use: a slow import

    return ndtri(mu)


def _probit_inv(eta: np.ndarray) -> np.ndarray:
    """μ = min(Φ(η), 1 − ε); no lower clamp in lme4, and Φ(η) = 0 for η ≤ −37.5193 as in R."""
    from scipy.special import ndtr

    p = np.where(eta > _PNORM_ZERO_BELOW, ndtr(eta), 0.0)
    return np.minimum(p, 1.0 - EPS)


def _dnorm(eta: np.ndarray) -> np.ndarray:
    """φ(η) = e^(−η²/2) / √(2π); no clamp in lme4."""
    return _INV_SQRT_2PI * np.exp(-0.5 * eta * eta)


def _probit_mu_eta2(eta: np.ndarray) -> np.ndarray:
    """d²μ/dη² = −η·φ(η)."""
    return -eta * _dnorm(eta)


def _cloglog_fun(mu: np.ndarray) -> np.ndarray:
    """g(μ) = log(−log(1 − μ))  (R's make.link formula; lme4 calls it from C++)."""
    return np.log(-np.log(1.0 - mu))


def _cloglog_inv(eta: np.ndarray) -> np.ndarray:
    """μ = min(max(1 − exp(−e^η), ε), 1 − ε), with 1 − exp(−x) as −expm1(−x)."""
    return np.clip(-np.expm1(-np.exp(eta)), EPS, 1.0 - EPS)


def _cloglog_mu_eta(eta: np.ndarray) -> np.ndarray:
    """dμ/dη = max(ε, exp(η − e^η))."""
    return np.maximum(EPS, np.exp(eta - np.exp(eta)))


def _cloglog_mu_eta2(eta: np.ndarray) -> np.ndarray:
    """d²μ/dη² = exp(η − e^η)·(1 − e^η); 0 where dμ/dη is clamped."""
    e = np.exp(eta)
    d = np.exp(eta - e)
    return np.where(d < EPS, 0.0, d * (1.0 - e))


def _cauchit_fun(mu: np.ndarray) -> np.ndarray:
    """g(μ) = tan(π(μ − ½)), evaluated as R's qcauchy: −1/tan(πμ) for μ < ½ and
    1/tan(π(1 − μ)) for μ > ½ (exact tails), 0 at μ = ½, ∓inf at μ = 0, 1."""
    upper = 1.0 / np.tan(np.pi * (0.5 - mu + 0.5))
    lower = -1.0 / np.tan(np.pi * mu)
    return np.where(mu == 0.5, 0.0, np.where(mu > 0.5, upper, lower))


def _cauchit_inv(eta: np.ndarray) -> np.ndarray:
    """μ = min(F(η), 1 − ε) with the Cauchy cdf F(η) = ½ + atan(η)/π, evaluated as R's
    pcauchy: for |η| > 1, F = −atan(1/η)/π (η < −1) or 1 − atan(1/η)/π (η > 1).
    No lower clamp in lme4."""
    t = np.arctan(1.0 / eta) / np.pi
    p = np.where(np.abs(eta) <= 1.0, 0.5 + np.arctan(eta) / np.pi,
                 np.where(eta > 0, 0.5 - t + 0.5, -t))
    return np.minimum(p, 1.0 - EPS)


def _cauchit_mu_eta(eta: np.ndarray) -> np.ndarray:
    """dμ/dη = 1/(π(1 + η²)); no clamp in lme4."""
    return 1.0 / (np.pi * (1.0 + eta * eta))


def _cauchit_mu_eta2(eta: np.ndarray) -> np.ndarray:
    """d²μ/dη² = −2η / (π(1 + η²)²)."""
    f = 1.0 + eta * eta
    return -2.0 * eta / (np.pi * f * f)


def _log_inv(eta: np.ndarray) -> np.ndarray:
    """μ = dμ/dη = max(ε, e^η)."""
    return np.maximum(EPS, np.exp(eta))


def _log_mu_eta2(eta: np.ndarray) -> np.ndarray:
    """d²μ/dη² = e^η, and 0 where e^η < ε (the clamped branch)."""
    e = np.exp(eta)
    return np.where(e < EPS, 0.0, e)


def _identity(x: np.ndarray) -> np.ndarray:
    """g(μ) = μ, μ = η."""
    return x.copy()


def _ones(eta: np.ndarray) -> np.ndarray:
    return np.ones_like(eta)


def _zeros(eta: np.ndarray) -> np.ndarray:
    return np.zeros_like(eta)


def _reciprocal(x: np.ndarray) -> np.ndarray:
    """g(μ) = 1/μ, μ = 1/η (no clamp)."""
    return 1.0 / x


def _inverse_mu_eta(eta: np.ndarray) -> np.ndarray:
    """dμ/dη = −(1/η)²."""
    r = 1.0 / eta
    return -(r * r)


def _inverse_mu_eta2(eta: np.ndarray) -> np.ndarray:
    """d²μ/dη² = 2/η³."""
    r = 1.0 / eta
    return 2.0 * r * r * r


def _sqrt_inv(eta: np.ndarray) -> np.ndarray:
    """μ = η²  (R's make.link("sqrt"), whose g(μ) = √μ)."""
    return eta * eta


def _sqrt_mu_eta(eta: np.ndarray) -> np.ndarray:
    """dμ/dη = 2η."""
    return 2.0 * eta


def _sqrt_mu_eta2(eta: np.ndarray) -> np.ndarray:
    """d²μ/dη² = 2."""
    return np.full_like(eta, 2.0)


def _mu2_fun(mu: np.ndarray) -> np.ndarray:
    """g(μ) = 1/μ² (R's make.link("1/mu^2"))."""
    return 1.0 / (mu * mu)


def _mu2_inv(eta: np.ndarray) -> np.ndarray:
    """μ = 1/√η."""
    return 1.0 / np.sqrt(eta)


def _mu2_mu_eta(eta: np.ndarray) -> np.ndarray:
    """dμ/dη = −1/(2η^1.5)."""
    return -1.0 / (2.0 * eta**1.5)


def _mu2_mu_eta2(eta: np.ndarray) -> np.ndarray:
    """d²μ/dη² = ¾·η^(−5/2)."""
    return 0.75 / eta**2.5


@dataclass(frozen=True)
class Link:
    """A link g with μ = g⁻¹(η): R's name and four vectorised functions of float arrays.

    Get one with :func:`make_link`; two links are equal when their names are.
    """

    name: str
    _fun: Fn = field(repr=False, compare=False)
    _inv: Fn = field(repr=False, compare=False)
    _mu_eta: Fn = field(repr=False, compare=False)
    _mu_eta2: Fn = field(repr=False, compare=False)

    def linkfun(self, mu: npt.ArrayLike) -> np.ndarray:
        """η = g(μ)."""
        with np.errstate(divide="ignore"):
            return self._fun(as_float(mu))

    def linkinv(self, eta: npt.ArrayLike) -> np.ndarray:
        """μ = g⁻¹(η), with lme4's clamps."""
        with np.errstate(over="ignore", divide="ignore"):
            return self._inv(as_float(eta))

    def mu_eta(self, eta: npt.ArrayLike) -> np.ndarray:
        """dμ/dη, with lme4's clamps."""
        with np.errstate(over="ignore", divide="ignore"):
            return self._mu_eta(as_float(eta))

    def mu_eta2(self, eta: npt.ArrayLike) -> np.ndarray:
        """d²μ/dη²; 0 where lme4 clamps dμ/dη."""
        # the discarded branch of a clamp may hold 0·inf; only the kept branch matters
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return self._mu_eta2(as_float(eta))


LINKS: dict[str, Link] = {
    link.name: link
    for link in (
        Link("logit", _logit_fun, _logit_inv, _logit_mu_eta, _logit_mu_eta2),
        Link("probit", _probit_fun, _probit_inv, _dnorm, _probit_mu_eta2),
        Link("cloglog", _cloglog_fun, _cloglog_inv, _cloglog_mu_eta, _cloglog_mu_eta2),
        Link("cauchit", _cauchit_fun, _cauchit_inv, _cauchit_mu_eta, _cauchit_mu_eta2),
        Link("log", np.log, _log_inv, _log_inv, _log_mu_eta2),
        Link("identity", _identity, _identity, _ones, _zeros),
        Link("inverse", _reciprocal, _reciprocal, _inverse_mu_eta, _inverse_mu_eta2),
        Link("sqrt", np.sqrt, _sqrt_inv, _sqrt_mu_eta, _sqrt_mu_eta2),
        Link("1/mu^2", _mu2_fun, _mu2_inv, _mu2_mu_eta, _mu2_mu_eta2),
    )
}


def make_link(name: str) -> Link:
    """The link called ``name`` in R (``"logit"``, ``"1/mu^2"``, ...)."""
    try:
        return LINKS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(k) for k in LINKS)
        raise FamilyError(f"unknown link {name!r}; known links are {known}") from None
