"""GLM families as lme4 1.1-31 computes them: variance, unit deviance, aic, the response
checks and ``family$initialize`` (R's own code, ``stats::family``), for binomial, poisson,
gaussian, Gamma and inverse.gaussian with their links (:mod:`glmm.families.links`).

Notation: η is the linear predictor, μ = g⁻¹(η) the mean, w the prior weights,
ε = DBL_EPSILON.  For the exact gradient of the Laplace objective each family also gives dV/dμ.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..errors import FamilyError, NonIntegerResponseWarning, ResponseError
from .links import EPS, LINKS, Link, as_float, as_float_arrays
from .nmath import log_dbinom, log_dgamma, log_dpois, stirlerr

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
        if np.count_nonzero(np.isfinite(arr)) < arr.size:
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
        if np.count_nonzero(np.isfinite(w) & (w >= 0)) < w.size:
            raise FamilyError("weights must be finite and non-negative")
        return w


class _Binomial(Family):
    name = "binomial"
    links = ("logit", "probit", "cloglog", "cauchit", "log")
    log_concave_links = ("logit", "probit", "cloglog", "log")

    def variance(self, mu: npt.ArrayLike) -> np.ndarray:
        """V(μ) = max(ε, μ(1 − μ))."""
        mu = as_float(mu)
        return np.maximum(EPS, mu * (1.0 - mu))

    def variance_deriv(self, mu: npt.ArrayLike) -> np.ndarray:
        """dV/dμ = 1 − 2μ."""
        return 1.0 - 2.0 * as_float(mu)

    def dev_resids(self, y: npt.ArrayLike, mu: npt.ArrayLike,
                   wt: npt.ArrayLike) -> np.ndarray:
        """d = 2w[y log(y/μ) + (1 − y) log((1 − y)/(1 − μ))], y log(y/μ) = 0 at y = 0."""
        y, mu, wt = as_float(y), as_float(mu), as_float(wt)
        return 2.0 * wt * (y * _log_ratio(y, mu) + (1.0 - y) * _log_ratio(1.0 - y, 1.0 - mu))

    @staticmethod
    def trials(n: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """m, the trials of each row as the aic counts them: n if any n > 1, else w."""
        return n if np.count_nonzero(n > 1) else wt

    def aic(self, y: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike, wt: npt.ArrayLike,
            dev: float) -> float:
        """A = −2 Σ (w/m)·log dbinom(round(m·y); round(m), μ) over the rows with round(m) > 0.

        m = n (the trials) if any n > 1, else m = w, and the division uses the rounded m
        (as lme4's C++ does; R's ``binomial()$aic`` divides by m itself, which differs for
        non-integer weights).  Rounding is half-to-even, like C's nearbyint.  ``dev`` is
        not used.
        """
        y, n, mu, wt = as_float_arrays(y, n, mu, wt)
        m = self.trials(n, wt)
        k = np.rint(m * y)
        m = np.rint(m)
        keep = m > 0
        if np.count_nonzero(keep) < keep.size:
            k, m, mu, wt = k[keep], m[keep], mu[keep], wt[keep]
        logd = log_dbinom(k, m, mu)
        return float(-2.0 * np.sum(wt / m * logd))

    def saturated_aic(self, y: npt.ArrayLike, n: npt.ArrayLike, wt: npt.ArrayLike) -> float:
        """:meth:`aic` at μ = y (the saturated model, Σdev = 0), for whole counts k = m·y: the
        D terms of :func:`log_dbinom` vanish, leaving
        A = −2 Σ (w/m)[δ(m) − δ(k) − δ(m − k) + ½ log(m / (2π k (m − k)))] over 0 < k < m
        (0 for a binary y)."""
        y, n, wt = as_float_arrays(y, n, wt)
        m = self.trials(n, wt)
        k, m = np.rint(m * y), np.rint(m)
        mid = (k > 0) & (k < m)
        if not np.count_nonzero(mid):
            return 0.0
        k, m, wt = k[mid], m[mid], wt[mid]
        mk = m - k
        d_m, d_k, d_mk = stirlerr(np.concatenate([m, k, mk])).reshape(3, -1)   # one lookup
        log_dbinom = d_m - d_k - d_mk + 0.5 * np.log(m / (2.0 * math.pi * k * mk))
        return float(-2.0 * np.add.reduce(wt / m * log_dbinom))

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
        if np.count_nonzero((y < 0) | (y > 1)):
            raise FamilyError("y values must be 0 <= y <= 1")
        m = w * y
        if np.count_nonzero(np.abs(m - np.rint(m)) > 1e-3):
            warnings.warn("non-integer #successes in a binomial glm!", NonIntegerResponseWarning,
                          stacklevel=3)
        return Initialized(y, w, np.ones_like(y), (w * y + 0.5) / (w + 1.0))

    @staticmethod
    def _start_cbind(counts: np.ndarray, w: np.ndarray) -> Initialized:
        if np.count_nonzero(counts < 0):
            raise FamilyError("successes and failures must be non-negative")
        if np.count_nonzero(np.abs(counts - np.rint(counts)) > 1e-3):
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
        return as_float(mu).copy()

    def variance_deriv(self, mu: npt.ArrayLike) -> np.ndarray:
        """dV/dμ = 1."""
        return np.ones_like(as_float(mu))

    def dev_resids(self, y: npt.ArrayLike, mu: npt.ArrayLike,
                   wt: npt.ArrayLike) -> np.ndarray:
        """d = 2w[y log(y/μ) − (y − μ)], y log(y/μ) = 0 at y = 0."""
        y, mu, wt = as_float(y), as_float(mu), as_float(wt)
        return 2.0 * wt * (y * _log_ratio(y, mu) - (y - mu))

    def aic(self, y: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike, wt: npt.ArrayLike,
            dev: float) -> float:
        """A = −2 Σ w·log dpois(y; μ),  log dpois(y; μ) = y log μ − μ − log Γ(y + 1)
        (evaluated as :func:`log_dpois`).

        As in R's dpois, a y within 1e-7·max(1, |y|) of an integer is rounded to it, and
        any other y (or a negative one) has probability 0, which makes A = +inf.  ``n`` and
        ``dev`` are not used.
        """
        y, mu, wt = as_float(y), as_float(mu), as_float(wt)
        k = np.rint(y)
        integer = (np.abs(y - k) <= 1e-7 * np.maximum(1.0, np.abs(y))) & (k >= 0)
        if integer.all():
            logd = log_dpois(k, mu)
        else:
            logd = np.where(integer, log_dpois(np.where(integer, k, 0.0), mu), -np.inf)
        return float(-2.0 * np.sum(wt * logd))

    def saturated_aic(self, y: npt.ArrayLike, n: npt.ArrayLike, wt: npt.ArrayLike) -> float:
        """:meth:`aic` at μ = y (the saturated model, Σdev = 0), for whole y: the D term of
        :func:`log_dpois` vanishes, leaving A = 2 Σ w[δ(y) + ½ log(2πy)] over y > 0."""
        y, wt = as_float(y), as_float(wt)
        pos = y > 0
        y, wt = y[pos], wt[pos]
        return float(2.0 * np.sum(wt * (stirlerr(y) + 0.5 * np.log(2.0 * math.pi * y))))

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


class _Gaussian(Family):
    """The gaussian family as lme4's C++ evaluates it (``GaussianDist``), σ estimated.  With
    the identity link :func:`glmm.glmer` hands the model to :func:`glmm.lmer`, as lme4 does;
    with another link it is a GLMM with the Laplace objective."""

    name = "gaussian"
    links = ("identity", "log", "inverse")
    log_concave_links = ("identity",)
    scaled = True

    def variance(self, mu: npt.ArrayLike) -> np.ndarray:
        """V(μ) = 1."""
        return np.ones_like(as_float(mu))

    def variance_deriv(self, mu: npt.ArrayLike) -> np.ndarray:
        """dV/dμ = 0."""
        return np.zeros_like(as_float(mu))

    def dev_resids(self, y: npt.ArrayLike, mu: npt.ArrayLike,
                   wt: npt.ArrayLike) -> np.ndarray:
        """d = w(y − μ)²."""
        r = as_float(y) - as_float(mu)
        return as_float(wt) * (r * r)

    def aic(self, y: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike, wt: npt.ArrayLike,
            dev: float) -> float:
        """A = N(log(2π·dev/N) + 1) + 2 − Σ log w, N the number of observations (not Σw, as
        lme4's ``GaussianDist::aic``).  ``n`` is not used; μ enters through ``dev``."""
        wt = as_float(wt)
        nn = float(wt.size)
        with np.errstate(divide="ignore"):  # dev = 0 (a perfect fit) gives −inf, as in R
            return float(nn * (np.log(2.0 * math.pi * dev / nn) + 1.0) + 2.0
                         - np.sum(np.log(wt)))

    def _start(self, y: np.ndarray, w: np.ndarray) -> Initialized:
        # R's gaussian()$initialize: μ_start = y, which the log and inverse links must map
        if self.link.name == "log" and (y <= 0).any():
            raise FamilyError("cannot find valid starting values: please specify some "
                              "(the log link needs y > 0)")
        if self.link.name == "inverse" and (y == 0).any():
            raise FamilyError("cannot find valid starting values: please specify some "
                              "(the inverse link needs y != 0)")
        return Initialized(y, w, np.ones_like(y), y.copy())


class _Gamma(_PositiveFamily):
    name = "Gamma"
    links = ("inverse", "log", "identity")
    log_concave_links = ("inverse", "log")
    _nonpositive_message = "non-positive values not allowed for the 'Gamma' family"

    def variance(self, mu: npt.ArrayLike) -> np.ndarray:
        """V(μ) = μ²."""
        mu = as_float(mu)
        return mu * mu

    def variance_deriv(self, mu: npt.ArrayLike) -> np.ndarray:
        """dV/dμ = 2μ."""
        return 2.0 * as_float(mu)

    def dev_resids(self, y: npt.ArrayLike, mu: npt.ArrayLike,
                   wt: npt.ArrayLike) -> np.ndarray:
        """d = −2w[log(y/μ) − (y − μ)/μ], with log(y/μ) taken as 0 at y = 0."""
        y, mu, wt = as_float(y), as_float(mu), as_float(wt)
        return -2.0 * wt * (_log_ratio(y, mu) - (y - mu) / mu)

    def aic(self, y: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike, wt: npt.ArrayLike,
            dev: float) -> float:
        """A = −2 Σ w·log f(y; shape a = 1/φ, scale μφ) + 2, with φ = dev/Σw.

        f is the gamma density (see :func:`log_dgamma`).  φ is the dispersion estimate at
        the current μ, so A depends on μ through dev too.  ``n`` is not used.
        """
        y, mu, wt = as_float(y), as_float(mu), as_float(wt)
        phi = dev / np.sum(wt)
        log_f = log_dgamma(y, 1.0 / phi, mu)
        return float(-2.0 * np.sum(wt * log_f) + 2.0)


class _InverseGaussian(_PositiveFamily):
    name = "inverse.gaussian"
    links = ("1/mu^2", "log", "inverse", "identity")
    log_concave_links = ("1/mu^2", "inverse")
    _nonpositive_message = "positive values only are allowed for the 'inverse.gaussian' family"

    def variance(self, mu: npt.ArrayLike) -> np.ndarray:
        """V(μ) = μ³ (as μ·μ·μ, like lme4's Eigen ``cube()``)."""
        mu = as_float(mu)
        return mu * mu * mu

    def variance_deriv(self, mu: npt.ArrayLike) -> np.ndarray:
        """dV/dμ = 3μ²."""
        mu = as_float(mu)
        return 3.0 * mu * mu

    def dev_resids(self, y: npt.ArrayLike, mu: npt.ArrayLike,
                   wt: npt.ArrayLike) -> np.ndarray:
        """d = w(y − μ)² / (y μ²)."""
        y, mu, wt = as_float(y), as_float(mu), as_float(wt)
        r = y - mu
        return wt * (r * r) / (y * (mu * mu))

    def aic(self, y: npt.ArrayLike, n: npt.ArrayLike, mu: npt.ArrayLike, wt: npt.ArrayLike,
            dev: float) -> float:
        """A = Σw·(log(2π·dev/Σw) + 1) + 3 Σ w log y + 2.  ``n`` and ``mu`` are not used
        (μ enters through ``dev``)."""
        y, wt = as_float(y), as_float(wt)
        wsum = np.sum(wt)
        with np.errstate(divide="ignore"):  # dev = 0 (a perfect fit) gives −inf, as in R
            return float(wsum * (np.log(dev / wsum * 2.0 * math.pi) + 1.0)
                         + 3.0 * np.sum(np.log(y) * wt) + 2.0)


_FAMILIES: dict[str, type[Family]] = {
    cls.name: cls for cls in (_Binomial, _Poisson, _Gaussian, _Gamma, _InverseGaussian)
}
#: Other spellings that can only mean one family.
_ALIASES = {"gamma": "Gamma", "inverse_gaussian": "inverse.gaussian"}


def _build(cls: type[Family], link: str | None) -> Family:
    name = cls.links[0] if link is None else link
    if name not in cls.links:
        allowed = ", ".join(repr(k) for k in cls.links)
        raise FamilyError(f"link {name!r} not available for the {cls.name} family; "
                          f"available links are {allowed}")
    return cls(LINKS[name])


def binomial(link: str = "logit") -> Family:
    """The binomial family; links logit (canonical), probit, cloglog, cauchit, log."""
    return _build(_Binomial, link)


def poisson(link: str = "log") -> Family:
    """The Poisson family; links log (canonical), sqrt, identity."""
    return _build(_Poisson, link)


def gaussian(link: str = "identity") -> Family:
    """The gaussian family; links identity (canonical), log, inverse."""
    return _build(_Gaussian, link)


def Gamma(link: str = "inverse") -> Family:
    """The Gamma family; links inverse (canonical), log, identity."""
    return _build(_Gamma, link)


def inverse_gaussian(link: str = "1/mu^2") -> Family:
    """The inverse Gaussian family; links 1/mu^2 (canonical), log, inverse, identity."""
    return _build(_InverseGaussian, link)


def make_family(family: str | Family, link: str | None = None) -> Family:
    """A family from R's name (``"binomial"``, ``"poisson"``, ``"gaussian"``, ``"Gamma"``,
    ``"inverse.gaussian"``; also ``"gamma"`` and ``"inverse_gaussian"``) or a
    :class:`Family`, with ``link`` or else the family's own (for a name: canonical) link."""
    if isinstance(family, Family):
        return family if link is None else _build(type(family), link)
    cls = _FAMILIES.get(_ALIASES.get(family, family)) if isinstance(family, str) else None
    if cls is None:
        known = ", ".join(repr(k) for k in _FAMILIES)
        raise FamilyError(f"unknown family {family!r}; supported families are {known} "
                          "(the quasi families are not supported)")
    return _build(cls, link)
