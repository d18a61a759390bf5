"""GLM families and links, computed the way lme4 1.1-31 computes them.

lme4 evaluates the families binomial, poisson, Gamma and inverse.gaussian, and the links
logit, probit, cloglog (inverse only), cauchit, log, identity and inverse, in its own C++
(``src/glmFamily.cpp``), not with R's ``family`` objects.  The C++ versions clamp some
values at ε = DBL_EPSILON ≈ 2.22e-16 where R's own functions clamp differently or not at
all; R's ``binomial()$linkinv``, for instance, clamps η at ±30, lme4 clamps μ to [ε, 1−ε].
Everything else (the links sqrt and 1/mu^2, the cloglog link function, and
``family$initialize``) is R's own code, ``stats::make.link`` and ``stats::family``.

This module reproduces both, formula by formula, in vectorised numpy.  Each formula is
stated in the docstring of the function that evaluates it.  Notation: η is the linear
predictor, μ = g⁻¹(η) the mean, w the prior weights, ε = DBL_EPSILON, Φ/φ the standard
normal cdf/density.  For the exact gradient of the Laplace objective, each link also gives
d²μ/dη², and each family dV/dμ.

The link functions keep R's IEEE behaviour: overflow, division by zero and log(0)
give ±inf or 0 without a warning, as they do in R.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import gammaln, ndtr, ndtri, xlog1py, xlogy

from ..errors import FamilyError, NonIntegerResponseWarning, ResponseError

__all__ = [
    "EPS",
    "Family",
    "FamilyError",
    "Gamma",
    "Initialized",
    "Link",
    "binomial",
    "inverse_gaussian",
    "make_family",
    "make_link",
    "poisson",
]

#: DBL_EPSILON, the clamp constant of lme4's C++ (R's ``.Machine$double.eps``).
EPS: float = float(np.finfo(float).eps)

#: R's pnorm returns exactly 0 for η at or below this (the end of its lower-tail algorithm);
#: scipy's ndtr keeps going into subnormal numbers.
_PNORM_ZERO_BELOW = -37.5193

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

Fn = Callable[[np.ndarray], np.ndarray]




def _as_float(x: npt.ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


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
    return ndtri(mu)


def _probit_inv(eta: np.ndarray) -> np.ndarray:
    """μ = min(Φ(η), 1 − ε); no lower clamp in lme4, and Φ(η) = 0 for η ≤ −37.5193 as in R."""
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
            return self._fun(_as_float(mu))

    def linkinv(self, eta: npt.ArrayLike) -> np.ndarray:
        """μ = g⁻¹(η), with lme4's clamps."""
        with np.errstate(over="ignore", divide="ignore"):
            return self._inv(_as_float(eta))

    def mu_eta(self, eta: npt.ArrayLike) -> np.ndarray:
        """dμ/dη, with lme4's clamps."""
        with np.errstate(over="ignore", divide="ignore"):
            return self._mu_eta(_as_float(eta))

    def mu_eta2(self, eta: npt.ArrayLike) -> np.ndarray:
        """d²μ/dη²; 0 where lme4 clamps dμ/dη."""
        # the discarded branch of a clamp may hold 0·inf; only the kept branch matters
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return self._mu_eta2(_as_float(eta))


_LINKS: dict[str, Link] = {
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
        return _LINKS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(k) for k in _LINKS)
        raise FamilyError(f"unknown link {name!r}; known links are {known}") from None


# ---------------------------------------------------------------------------------------
# Log-densities for the aic, in the saddle-point form of Loader (2000), "Fast and accurate
# computation of binomial probabilities", which R's dbinom/dpois/dgamma use.  Written with
# log Γ directly, k log μ − μ − log Γ(k + 1) loses about eps·k·log k to cancellation when
# k is large (1e-9 at counts of a million); this form keeps the error near eps·|k − μ|.
# ---------------------------------------------------------------------------------------

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _stirlerr_direct(x: np.ndarray) -> np.ndarray:
    return gammaln(x + 1.0) - (x + 0.5) * np.log(x) + x - _HALF_LOG_2PI


def _stirlerr_series(x: np.ndarray) -> np.ndarray:
    """1/(12x) − 1/(360x³) + 1/(1260x⁵) − 1/(1680x⁷) + 1/(1188x⁹), by Horner's rule in 1/x²."""
    z = 1.0 / (x * x)
    return (1 / 12 - z * (1 / 360 - z * (1 / 1260 - z * (1 / 1680 - z / 1188)))) / x


#: Counts up to this use a table of δ: binomial and Poisson counts are whole, and a lookup
#: is an order of magnitude faster than log Γ or the series (each of which it holds).
_STIRLERR_TABLE_SIZE = 1024

#: δ(k) for the whole numbers k = 0..1023 (δ(0) = +inf): the definition up to 15, the series
#: above, exactly the values :func:`_stirlerr` computes for them.
with np.errstate(divide="ignore"):
    _STIRLERR_WHOLE = np.concatenate([
        _stirlerr_direct(np.arange(16.0)),
        _stirlerr_series(np.arange(16.0, _STIRLERR_TABLE_SIZE))])
_STIRLERR_WHOLE.setflags(write=False)


def _stirlerr(x: np.ndarray) -> np.ndarray:
    """δ(x) = log Γ(x + 1) − (x + ½) log x + x − ½ log 2π, for x > 0: Stirling's error.

    For x > 15 the asymptotic series 1/(12x) − 1/(360x³) + 1/(1260x⁵) − 1/(1680x⁷) +
    1/(1188x⁹), whose truncation error is below 3e-16 there; below 15 the definition, whose
    terms are small enough.  Whole numbers below 1024 are looked up in a table of the same
    values.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim and ((x >= 0.0) & (x < _STIRLERR_TABLE_SIZE)).all():
        i = x.astype(np.intp)
        if np.array_equal(i, x):
            return _STIRLERR_WHOLE[i]
    whole = (x >= 0.0) & (x <= 15.0) & (x == np.floor(x))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(x > 15.0, _stirlerr_series(x),
                       _STIRLERR_WHOLE[np.where(whole, x, 0.0).astype(np.intp)])
        other = ~whole & ~(x > 15.0)  # fractional x ≤ 15 (the Gamma shape), or NaN
        if other.any():  # log Γ is slow; whole numbers never need it
            out[other] = _stirlerr_direct(x[other])
    return out


def _bd0(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """D(x; m) = x log(x/m) + m − x ≥ 0, for x > 0 and m ≥ 0 (+inf at m = 0).

    With v = (x − m)/(x + m), x log(x/m) = 2x·atanh(v), so D = (x − m)v + 2x(atanh v − v).
    For |v| < 0.1 the second term is summed as the series 2x Σ_{j≥1} v^(2j+1)/(2j+1)
    (eight terms: truncation below 2e-17 relative), which has no cancellation; otherwise
    the definition, whose terms do not nearly cancel.
    """
    d = x - m
    v = d / (x + m)
    small = np.abs(v) < 0.1
    if not small.any():
        return x * np.log(x / m) + m - x
    v2 = v * v
    tail = v2 * (1.0 / 17)  # Σ_{j=1..8} v^(2j)/(2j+1), by Horner's rule from j = 8
    for j in range(7, 0, -1):
        tail = v2 * (1.0 / (2 * j + 1) + tail)
    series = d * v + 2.0 * x * v * tail
    return series if small.all() else np.where(small, series, x * np.log(x / m) + m - x)


def _log_dbinom(k: np.ndarray, m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """log P(K = k) for K ~ Binomial(m, p), integer 0 ≤ k ≤ m, m > 0:

    m log(1 − p) at k = 0, m log p at k = m, and otherwise, with q = 1 − p,
    δ(m) − δ(k) − δ(m − k) − D(k; mp) − D(m − k; mq) + ½ log(m / (2π k (m − k))).
    """
    k, m, p = np.broadcast_arrays(k, m, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        mid = (k > 0) & (k < m)
        if mid.all():  # no count at 0 or m
            return _log_dbinom_inner(k, m, p)
        out = np.where(k == 0, xlog1py(m, -p), xlogy(m, p))
        if mid.any():  # none for 0/1 data
            out[mid] = _log_dbinom_inner(k[mid], m[mid], p[mid])
    return out


def _log_dbinom_inner(k: np.ndarray, m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """:func:`_log_dbinom` for 0 < k < m."""
    mk = m - k
    return (_stirlerr(m) - _stirlerr(k) - _stirlerr(mk)
            - _bd0(k, m * p) - _bd0(mk, m * (1.0 - p))
            + 0.5 * np.log(m / (2.0 * math.pi * k * mk)))


def _log_dpois(k: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """log P(K = k) for K ~ Poisson(μ), integer k ≥ 0:
    −μ at k = 0, else −δ(k) − D(k; μ) − ½ log(2πk)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = -_stirlerr(k) - _bd0(k, mu) - 0.5 * np.log(2.0 * math.pi * k)
    return np.where(k == 0, -mu, inner)


def _log_dgamma(y: np.ndarray, a: float, mu: np.ndarray) -> np.ndarray:
    """log f(y) for the gamma density with shape a and mean μ (scale μ/a), y > 0:

    log f = (a − 1) log y − a y/μ − log Γ(a) + a log(a/μ)
          = ½ log(a/2π) − δ(a) − a(r − 1 − log r) − log y,   r = y/μ,

    where a(r − 1 − log r) = (a/μ)·D(μ; y) is evaluated from y − μ without rounding r.
    """
    return (0.5 * np.log(a / (2.0 * math.pi)) - _stirlerr(np.asarray(a))
            - a / mu * _bd0(mu, y) - np.log(y))


# ---------------------------------------------------------------------------------------
# Families
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Initialized:
    """What ``family$initialize`` leaves behind, as read-only float arrays.

    ``y`` is the response as the model sees it (a proportion for binomial cbind data),
    ``weights`` the prior weights (multiplied by the trials for cbind), ``n`` the binomial
    trials (ones otherwise) and ``mustart`` the starting mean.
    """

    y: np.ndarray
    weights: np.ndarray
    n: np.ndarray
    mustart: np.ndarray

    def __post_init__(self) -> None:
        for a in (self.y, self.weights, self.n, self.mustart):
            a.setflags(write=False)


def _log_ratio(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """log(y/μ), taken as 0 where y = 0 (so that y·log(y/μ) = 0 at y = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # y > 0 = μ: +inf, silently as in R
        return np.log(np.where(y == 0, 1.0, y / mu))


def _is_categorical(y: object) -> bool:
    return isinstance(getattr(y, "dtype", None), pd.CategoricalDtype)


@dataclass(frozen=True, repr=False)
class Family(ABC):
    """A GLM family with its link, as lme4's C++ evaluates it.

    Build one with :func:`binomial`, :func:`poisson`, :func:`Gamma`,
    :func:`inverse_gaussian` or :func:`make_family`.  ``links`` lists the allowed link
    names, canonical first; ``scaled`` says whether lme4 estimates a scale σ (its
    ``useSc``).
    """

    name: ClassVar[str]
    links: ClassVar[tuple[str, ...]]
    #: the links under which log p(y | η) is concave in η for every y the family allows
    log_concave_links: ClassVar[tuple[str, ...]]
    scaled: ClassVar[bool] = False
    link: Link

    @property
    def canonical(self) -> bool:
        """True when the link is the family's canonical link."""
        return self.link.name == self.links[0]

    @property
    def unique_mode(self) -> bool:
        """True when the penalized deviance Σdevᵢ + ‖u‖² is strictly convex in (u, β), so
        that its mode is unique: when log p(y | η) is concave in η (η is linear in u and β).
        That holds for every canonical link and for the binomial probit, cloglog and log,
        Poisson identity, Gamma log and inverse Gaussian inverse links.  It fails for the
        binomial cauchit (heavy tails), Poisson sqrt (μ = η² is even in η: a mode on each side
        of η = 0), Gamma identity (dev convex in η only for η < 2y) and the inverse Gaussian
        log and identity links."""
        return self.link.name in self.log_concave_links

    def __repr__(self) -> str:
        return f"{self.name}(link={self.link.name!r})"

    @abstractmethod
    def variance(self, mu: npt.ArrayLike) -> np.ndarray:
        """V(μ)."""

    @abstractmethod
    def variance_deriv(self, mu: npt.ArrayLike) -> np.ndarray:
        """dV/dμ of the unclamped formula."""

    @abstractmethod
    def dev_resids(self, y: npt.ArrayLike, mu: npt.ArrayLike,
                   wt: npt.ArrayLike) -> np.ndarray:
        """Unit deviances d_i, prior weights included; the deviance is their sum."""

    @abstractmethod
    def aic(self, y: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike, wt: npt.ArrayLike,
            dev: float) -> float:
        """lme4's A = −2 log-likelihood with normalising constants (its C++ ``aic``)."""

    def initialize(self, y: object, weights: npt.ArrayLike | None = None) -> Initialized:
        """R's ``family$initialize``: validate the raw response and give the starting μ.

        ``weights`` defaults to ones.  Raises :class:`FamilyError` for a response the
        family cannot model.
        """
        if _is_categorical(y):
            raise FamilyError(f"response must be numeric for the {self.name!r} family "
                              "(a categorical response is allowed for binomial only)")
        yy = self._numeric(y)
        if yy.ndim != 1:
            raise FamilyError(f"response must be a vector for the {self.name!r} family, "
                              f"not an array of shape {yy.shape}")
        w = self._weights(weights, len(yy))
        return self._start(yy, w)

    @abstractmethod
    def _start(self, y: np.ndarray, w: np.ndarray) -> Initialized:
        """Check a 1-D response and make the :class:`Initialized` from it and the weights."""

    # -- validation shared by the families -------------------------------------------------
    def _numeric(self, y: object) -> np.ndarray:
        """The response as a finite float array (bools and integers are converted)."""
        arr = np.asarray(y)
        if arr.dtype.kind not in "biuf":
            raise FamilyError(f"response must be numeric for the {self.name!r} family, "
                              f"not of dtype {arr.dtype}")
        arr = arr.astype(float)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if not np.isfinite(arr).all():
            raise FamilyError("NA/NaN/Inf in 'y'")
        return arr

    @staticmethod
    def _weights(weights: npt.ArrayLike | None, nobs: int) -> np.ndarray:
        if weights is None:
            return np.ones(nobs)
        w = np.array(weights, dtype=float)  # a copy: Initialized makes its arrays read-only
        if w.shape != (nobs,):
            raise FamilyError(f"weights must be a vector with one value per observation "
                              f"({nobs}), not of shape {w.shape}")
        if not (np.isfinite(w) & (w >= 0)).all():
            raise FamilyError("weights must be finite and non-negative")
        return w


class _Binomial(Family):
    name = "binomial"
    links = ("logit", "probit", "cloglog", "cauchit", "log")
    log_concave_links = ("logit", "probit", "cloglog", "log")

    def variance(self, mu: npt.ArrayLike) -> np.ndarray:
        """V(μ) = max(ε, μ(1 − μ))."""
        mu = _as_float(mu)
        return np.maximum(EPS, mu * (1.0 - mu))

    def variance_deriv(self, mu: npt.ArrayLike) -> np.ndarray:
        """dV/dμ = 1 − 2μ."""
        return 1.0 - 2.0 * _as_float(mu)

    def dev_resids(self, y: npt.ArrayLike, mu: npt.ArrayLike,
                   wt: npt.ArrayLike) -> np.ndarray:
        """d = 2w[y log(y/μ) + (1 − y) log((1 − y)/(1 − μ))], y log(y/μ) = 0 at y = 0."""
        y, mu, wt = _as_float(y), _as_float(mu), _as_float(wt)
        return 2.0 * wt * (y * _log_ratio(y, mu) + (1.0 - y) * _log_ratio(1.0 - y, 1.0 - mu))

    @staticmethod
    def trials(n: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """m, the trials of each row as the aic counts them: n if any n > 1, else w."""
        return n if (n > 1).any() else wt

    def aic(self, y: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike, wt: npt.ArrayLike,
            dev: float) -> float:
        """A = −2 Σ (w/m)·log dbinom(round(m·y); round(m), μ) over the rows with round(m) > 0.

        m = n (the trials) if any n > 1, else m = w, and the division uses the rounded m
        (as lme4's C++ does; R's ``binomial()$aic`` divides by m itself, which differs for
        non-integer weights).  Rounding is half-to-even, like C's nearbyint.  ``dev`` is
        not used.
        """
        y, n, mu, wt = np.broadcast_arrays(*map(_as_float, (y, n, mu, wt)))
        m = self.trials(n, wt)
        k = np.rint(m * y)
        m = np.rint(m)
        keep = m > 0
        if not keep.all():
            k, m, mu, wt = k[keep], m[keep], mu[keep], wt[keep]
        log_dbinom = _log_dbinom(k, m, mu)
        return float(-2.0 * np.sum(wt / m * log_dbinom))

    def saturated_aic(self, y: npt.ArrayLike, n: npt.ArrayLike, wt: npt.ArrayLike) -> float:
        """:meth:`aic` at μ = y (the saturated model, Σdev = 0), for whole counts k = m·y: the
        D terms of :func:`_log_dbinom` vanish, leaving
        A = −2 Σ (w/m)[δ(m) − δ(k) − δ(m − k) + ½ log(m / (2π k (m − k)))] over 0 < k < m
        (0 for a binary y)."""
        y, n, wt = np.broadcast_arrays(*map(_as_float, (y, n, wt)))
        m = self.trials(n, wt)
        k, m = np.rint(m * y), np.rint(m)
        mid = (k > 0) & (k < m)
        if not mid.any():
            return 0.0
        k, m, wt = k[mid], m[mid], wt[mid]
        mk = m - k
        d_m, d_k, d_mk = _stirlerr(np.concatenate([m, k, mk])).reshape(3, -1)   # one lookup
        log_dbinom = d_m - d_k - d_mk + 0.5 * np.log(m / (2.0 * math.pi * k * mk))
        return float(-2.0 * np.sum(wt / m * log_dbinom))

    def initialize(self, y: object, weights: npt.ArrayLike | None = None) -> Initialized:
        """R's binomial initialize, for three forms of response.

        - a vector (0/1, proportions, bools) or a categorical (success = any level but the
          first): n = 1, y = 0 where w = 0, then 0 ≤ y ≤ 1 is required, and
          μ_start = (w·y + 0.5)/(w + 1); warns if some w·y is not an integer;
        - an (n, 2) array of (successes, failures): n = s + f, y = s/n (0 where n = 0),
          weights become w·n, μ_start = (n·y + 0.5)/(n + 1); warns for non-integer counts.
        """
        if _is_categorical(y):
            codes = pd.Categorical(y).codes
            if np.any(codes < 0):
                raise FamilyError("NA/NaN/Inf in 'y'")
            y = codes != 0
        yy = self._numeric(y)
        if yy.ndim == 1:
            w = self._weights(weights, len(yy))
            return self._start(yy, w)
        if yy.ndim == 2 and yy.shape[1] == 2:
            w = self._weights(weights, len(yy))
            return self._start_cbind(yy, w)
        raise FamilyError("for the 'binomial' family, y must be a vector of 0 and 1's\n"
                          "or a 2 column matrix where col 1 is no. successes and col 2 is "
                          "no. failures")

    def _start(self, y: np.ndarray, w: np.ndarray) -> Initialized:
        y = np.where(w == 0, 0.0, y)
        if ((y < 0) | (y > 1)).any():
            raise FamilyError("y values must be 0 <= y <= 1")
        m = w * y
        if (np.abs(m - np.rint(m)) > 1e-3).any():
            warnings.warn("non-integer #successes in a binomial glm!", NonIntegerResponseWarning,
                          stacklevel=3)
        return Initialized(y, w, np.ones_like(y), (w * y + 0.5) / (w + 1.0))

    @staticmethod
    def _start_cbind(counts: np.ndarray, w: np.ndarray) -> Initialized:
        if (counts < 0).any():
            raise FamilyError("successes and failures must be non-negative")
        if (np.abs(counts - np.rint(counts)) > 1e-3).any():
            warnings.warn("non-integer counts in a binomial glm!", NonIntegerResponseWarning,
                          stacklevel=3)
        s = counts[:, 0]
        n = s + counts[:, 1]
        y = np.where(n == 0, 0.0, s / np.where(n == 0, 1.0, n))
        return Initialized(y, w * n, n, (n * y + 0.5) / (n + 1.0))


class _Poisson(Family):
    name = "poisson"
    links = ("log", "sqrt", "identity")
    log_concave_links = ("log", "identity")

    def variance(self, mu: npt.ArrayLike) -> np.ndarray:
        """V(μ) = μ."""
        return _as_float(mu).copy()

    def variance_deriv(self, mu: npt.ArrayLike) -> np.ndarray:
        """dV/dμ = 1."""
        return np.ones_like(_as_float(mu))

    def dev_resids(self, y: npt.ArrayLike, mu: npt.ArrayLike,
                   wt: npt.ArrayLike) -> np.ndarray:
        """d = 2w[y log(y/μ) − (y − μ)], y log(y/μ) = 0 at y = 0."""
        y, mu, wt = _as_float(y), _as_float(mu), _as_float(wt)
        return 2.0 * wt * (y * _log_ratio(y, mu) - (y - mu))

    def aic(self, y: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike, wt: npt.ArrayLike,
            dev: float) -> float:
        """A = −2 Σ w·log dpois(y; μ),  log dpois(y; μ) = y log μ − μ − log Γ(y + 1)
        (evaluated as :func:`_log_dpois`).

        As in R's dpois, a y within 1e-7·max(1, |y|) of an integer is rounded to it, and
        any other y (or a negative one) has probability 0, which makes A = +inf.  ``n`` and
        ``dev`` are not used.
        """
        y, mu, wt = _as_float(y), _as_float(mu), _as_float(wt)
        k = np.rint(y)
        integer = (np.abs(y - k) <= 1e-7 * np.maximum(1.0, np.abs(y))) & (k >= 0)
        if integer.all():
            log_dpois = _log_dpois(k, mu)
        else:
            log_dpois = np.where(integer, _log_dpois(np.where(integer, k, 0.0), mu), -np.inf)
        return float(-2.0 * np.sum(wt * log_dpois))

    def saturated_aic(self, y: npt.ArrayLike, n: npt.ArrayLike, wt: npt.ArrayLike) -> float:
        """:meth:`aic` at μ = y (the saturated model, Σdev = 0), for whole y: the D term of
        :func:`_log_dpois` vanishes, leaving A = 2 Σ w[δ(y) + ½ log(2πy)] over y > 0."""
        y, wt = _as_float(y), _as_float(wt)
        pos = y > 0
        y, wt = y[pos], wt[pos]
        return float(2.0 * np.sum(wt * (_stirlerr(y) + 0.5 * np.log(2.0 * math.pi * y))))

    def _start(self, y: np.ndarray, w: np.ndarray) -> Initialized:
        if (y < 0).any():
            raise FamilyError("negative values not allowed for the 'Poisson' family")
        # R's dpois gives a non-integer y (beyond its 1e-7 tolerance, as in aic) probability
        # 0: lme4 then warns "non-integer x", and its objective is +inf at every parameter
        # value, so its fit stays at the start.  Refused here instead.
        k = np.rint(y)
        off = np.abs(y - k) > 1e-7 * np.maximum(1.0, np.abs(y))
        if off.any():
            i = int(np.argmax(off))
            raise ResponseError(
                f"non-integer counts in a Poisson response ({int(off.sum())} values, the first "
                f"y[{i}] = {y[i]:g}): the Poisson likelihood is 0 there, and lme4 returns an "
                "infinite objective; give whole counts (model rates with an offset)")
        return Initialized(y, w, np.ones_like(y), y + 0.1)


class _PositiveFamily(Family):
    """Gamma and inverse Gaussian: y > 0, μ_start = y, and σ estimated."""

    scaled = True
    _nonpositive_message: ClassVar[str]

    def _start(self, y: np.ndarray, w: np.ndarray) -> Initialized:
        if (y <= 0).any():
            raise FamilyError(self._nonpositive_message)
        return Initialized(y, w, np.ones_like(y), y.copy())


class _Gamma(_PositiveFamily):
    name = "Gamma"
    links = ("inverse", "log", "identity")
    log_concave_links = ("inverse", "log")
    _nonpositive_message = "non-positive values not allowed for the 'Gamma' family"

    def variance(self, mu: npt.ArrayLike) -> np.ndarray:
        """V(μ) = μ²."""
        mu = _as_float(mu)
        return mu * mu

    def variance_deriv(self, mu: npt.ArrayLike) -> np.ndarray:
        """dV/dμ = 2μ."""
        return 2.0 * _as_float(mu)

    def dev_resids(self, y: npt.ArrayLike, mu: npt.ArrayLike,
                   wt: npt.ArrayLike) -> np.ndarray:
        """d = −2w[log(y/μ) − (y − μ)/μ], with log(y/μ) taken as 0 at y = 0."""
        y, mu, wt = _as_float(y), _as_float(mu), _as_float(wt)
        return -2.0 * wt * (_log_ratio(y, mu) - (y - mu) / mu)

    def aic(self, y: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike, wt: npt.ArrayLike,
            dev: float) -> float:
        """A = −2 Σ w·log f(y; shape a = 1/φ, scale μφ) + 2, with φ = dev/Σw.

        f is the gamma density (see :func:`_log_dgamma`).  φ is the dispersion estimate at
        the current μ, so A depends on μ through dev too.  ``n`` is not used.
        """
        y, mu, wt = _as_float(y), _as_float(mu), _as_float(wt)
        phi = dev / np.sum(wt)
        log_f = _log_dgamma(y, 1.0 / phi, mu)
        return float(-2.0 * np.sum(wt * log_f) + 2.0)


class _InverseGaussian(_PositiveFamily):
    name = "inverse.gaussian"
    links = ("1/mu^2", "log", "inverse", "identity")
    log_concave_links = ("1/mu^2", "inverse")
    _nonpositive_message = "positive values only are allowed for the 'inverse.gaussian' family"

    def variance(self, mu: npt.ArrayLike) -> np.ndarray:
        """V(μ) = μ³ (as μ·μ·μ, like lme4's Eigen ``cube()``)."""
        mu = _as_float(mu)
        return mu * mu * mu

    def variance_deriv(self, mu: npt.ArrayLike) -> np.ndarray:
        """dV/dμ = 3μ²."""
        mu = _as_float(mu)
        return 3.0 * mu * mu

    def dev_resids(self, y: npt.ArrayLike, mu: npt.ArrayLike,
                   wt: npt.ArrayLike) -> np.ndarray:
        """d = w(y − μ)² / (y μ²)."""
        y, mu, wt = _as_float(y), _as_float(mu), _as_float(wt)
        r = y - mu
        return wt * (r * r) / (y * (mu * mu))

    def aic(self, y: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike, wt: npt.ArrayLike,
            dev: float) -> float:
        """A = Σw·(log(2π·dev/Σw) + 1) + 3 Σ w log y + 2.  ``n`` and ``mu`` are not used
        (μ enters through ``dev``)."""
        y, wt = _as_float(y), _as_float(wt)
        wsum = np.sum(wt)
        with np.errstate(divide="ignore"):  # dev = 0 (a perfect fit) gives −inf, as in R
            return float(wsum * (np.log(dev / wsum * 2.0 * math.pi) + 1.0)
                         + 3.0 * np.sum(np.log(y) * wt) + 2.0)


_FAMILIES: dict[str, type[Family]] = {
    cls.name: cls for cls in (_Binomial, _Poisson, _Gamma, _InverseGaussian)
}
#: Other spellings that can only mean one family.
_ALIASES = {"gamma": "Gamma", "inverse_gaussian": "inverse.gaussian"}


def _build(cls: type[Family], link: str | None) -> Family:
    name = cls.links[0] if link is None else link
    if name not in cls.links:
        allowed = ", ".join(repr(k) for k in cls.links)
        raise FamilyError(f"link {name!r} not available for the {cls.name} family; "
                          f"available links are {allowed}")
    return cls(_LINKS[name])


def binomial(link: str = "logit") -> Family:
    """The binomial family; links logit (canonical), probit, cloglog, cauchit, log."""
    return _build(_Binomial, link)


def poisson(link: str = "log") -> Family:
    """The Poisson family; links log (canonical), sqrt, identity."""
    return _build(_Poisson, link)


def Gamma(link: str = "inverse") -> Family:
    """The Gamma family; links inverse (canonical), log, identity."""
    return _build(_Gamma, link)


def inverse_gaussian(link: str = "1/mu^2") -> Family:
    """The inverse Gaussian family; links 1/mu^2 (canonical), log, inverse, identity."""
    return _build(_InverseGaussian, link)


def make_family(family: str | Family, link: str | None = None) -> Family:
    """A family from R's name (``"binomial"``, ``"poisson"``, ``"Gamma"``,
    ``"inverse.gaussian"``; also ``"gamma"`` and ``"inverse_gaussian"``) or a
    :class:`Family`, with ``link`` or else the family's own (for a name: canonical) link."""
    if isinstance(family, Family):
        return family if link is None else _build(type(family), link)
    cls = _FAMILIES.get(_ALIASES.get(family, family)) if isinstance(family, str) else None
    if cls is None:
        known = ", ".join(repr(k) for k in _FAMILIES)
        raise FamilyError(f"unknown family {family!r}; supported families are {known} "
                          "(gaussian and the quasi families are not supported)")
    return _build(cls, link)
