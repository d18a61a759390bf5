"""The log-densities of R's nmath for the families' aic: dbinom, dpois and dgamma in the
saddle-point form of Loader (2000), with R's stirlerr and bd0; and x log y with its 0 at
x = 0, in numpy (importing scipy.special, for its xlogy, costs more than a small fit)."""

from __future__ import annotations

import math

import numpy as np

# ---------------------------------------------------------------------------------------
# Log-densities for the aic, in the saddle-point form of Loader (2000), "Fast and accurate
# computation of binomial probabilities", which R's dbinom/dpois/dgamma use.  Written with
# log Γ directly, k log μ − μ − log Γ(k + 1) loses about eps·k·log k to cancellation when
# k is large (1e-9 at counts of a million); this form keeps the error near eps·|k − μ|.
# ---------------------------------------------------------------------------------------

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x log y, 0 where x = 0 and y is not NaN (scipy.special.xlogy's convention: the limit
    of x log y as x → 0; log by numpy, so within an ulp of scipy's)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * np.log(y)
    return _zero_at_zero(x, y, out)


def xlog1py(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x log(1 + y), 0 where x = 0 and y is not NaN (scipy.special.xlog1py's convention)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * np.log1p(y)
    return _zero_at_zero(x, y, out)


def _zero_at_zero(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    zero = np.equal(x, 0.0)
    if not zero.any():
        return out
    return np.where(zero & ~np.isnan(y), 0.0, out)


def _stirlerr_direct(x: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln  # scipy.special on first use: a slow import

    return gammaln(x + 1.0) - (x + 0.5) * np.log(x) + x - _HALF_LOG_2PI


def _stirlerr_series(x: np.ndarray) -> np.ndarray:
    """1/(12x) − 1/(360x³) + 1/(1260x⁵) − 1/(1680x⁷) + 1/(1188x⁹), by Horner's rule in 1/x²."""
    z = 1.0 / (x * x)
    return (1 / 12 - z * (1 / 360 - z * (1 / 1260 - z * (1 / 1680 - z / 1188)))) / x


#: Counts up to this use a table of δ (binomial and Poisson counts are whole): a lookup in
#: place of log Γ or the series, whose values it holds.
_STIRLERR_TABLE_SIZE = 1024

#: log k! = log Γ(k + 1) for k = 0..15, the values scipy's gammaln gives, so that the table
#: below is built without importing scipy.special
_LOG_FACTORIAL = np.array([
    0.0, 0.0, 0.6931471805599453, 1.791759469228055, 3.1780538303479458, 4.787491742782046,
    6.579251212010101, 8.525161361065415, 10.60460290274525, 12.801827480081469,
    15.104412573075516, 17.502307845873887, 19.987214495661885, 22.55216385312342,
    25.191221182738683, 27.899271383840894])

#: δ(k) for the whole numbers k = 0..1023 (δ(0) = +inf): the definition up to 15, the series
#: above, exactly the values :func:`stirlerr` computes for them.
with np.errstate(divide="ignore", invalid="ignore"):
    _k = np.arange(16.0)
    _STIRLERR_WHOLE = np.concatenate([
        _LOG_FACTORIAL - (_k + 0.5) * np.log(_k) + _k - _HALF_LOG_2PI,
        _stirlerr_series(np.arange(16.0, _STIRLERR_TABLE_SIZE))])
    del _k
_STIRLERR_WHOLE.setflags(write=False)


def stirlerr(x: np.ndarray) -> np.ndarray:
    """δ(x) = log Γ(x + 1) − (x + ½) log x + x − ½ log 2π, for x > 0: Stirling's error.

    For x > 15 the asymptotic series 1/(12x) − 1/(360x³) + 1/(1260x⁵) − 1/(1680x⁷) +
    1/(1188x⁹), whose truncation error is below 3e-16 there; below 15 the definition, whose
    terms are small enough.  Whole numbers below 1024 are looked up in a table of the same
    values.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim and np.count_nonzero((x >= 0.0) & (x < _STIRLERR_TABLE_SIZE)) == x.size:
        i = x.astype(np.intp)
        if np.count_nonzero(i == x) == x.size:
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


def log_dbinom(k: np.ndarray, m: np.ndarray, p: np.ndarray) -> np.ndarray:
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
    """:func:`log_dbinom` for 0 < k < m."""
    mk = m - k
    return (stirlerr(m) - stirlerr(k) - stirlerr(mk)
            - _bd0(k, m * p) - _bd0(mk, m * (1.0 - p))
            + 0.5 * np.log(m / (2.0 * math.pi * k * mk)))


def log_dpois(k: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """log P(K = k) for K ~ Poisson(μ), integer k ≥ 0:
    −μ at k = 0, else −δ(k) − D(k; μ) − ½ log(2πk)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = -stirlerr(k) - _bd0(k, mu) - 0.5 * np.log(2.0 * math.pi * k)
    return np.where(k == 0, -mu, inner)


def log_dgamma(y: np.ndarray, a: float, mu: np.ndarray) -> np.ndarray:
    """log f(y) for the gamma density with shape a and mean μ (scale μ/a), y > 0:

    log f = (a − 1) log y − a y/μ − log Γ(a) + a log(a/μ)
          = ½ log(a/2π) − δ(a) − a(r − 1 − log r) − log y,   r = y/μ,

    where a(r − 1 − log r) = (a/μ)·D(μ; y) is evaluated from y − μ without rounding r.
    """
    return (0.5 * np.log(a / (2.0 * math.pi)) - stirlerr(np.asarray(a))
            - a / mu * _bd0(mu, y) - np.log(y))
