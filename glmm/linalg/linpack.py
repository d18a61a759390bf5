"""LINPACK's pivoted QR as R runs it for ``qr(x, LAPACK = FALSE)``: Fortran ``dqrdc2`` with
the reference BLAS's ``ddot`` and ``dnrm2``, and ``dqrsl``'s Q·y.  R's rank decisions
(lme4's rank check of X) and its ``contr.poly`` values follow from these exact steps, so they
are reproduced operation by operation (the ``exact`` summation order), not taken from LAPACK.
"""

from __future__ import annotations

import math

import numpy as np

#: R's default tolerance of qr()
QR_TOL = 1e-7


def _ddot(x: np.ndarray, y: np.ndarray, exact: bool) -> float:
    """Reference BLAS ``ddot``: the n mod 5 leading products, then groups of five added left to
    right (or numpy's dot when bit-exactness is not needed)."""
    if not exact:
        return float(np.dot(x, y))
    n = len(x)
    m = n % 5
    t = 0.0
    for i in range(m):
        t = t + x[i] * y[i]
    for i in range(m, n, 5):
        t = (t + x[i] * y[i] + x[i + 1] * y[i + 1] + x[i + 2] * y[i + 2]
             + x[i + 3] * y[i + 3] + x[i + 4] * y[i + 4])
    return float(t)


def _dnrm2(x: np.ndarray, exact: bool) -> float:
    """Reference BLAS ``dnrm2`` (LAPACK ≥ 3.10, Blue's algorithm): for entries of ordinary size
    the square root of the sequential sum of squares."""
    if not exact:  # np.linalg.norm's own formula for a vector, without its dispatch
        v = x.ravel(order="K")
        with np.errstate(over="ignore"):
            ss = float(v.dot(v))
        # entries beyond ~1e154 overflow the sum of squares: the scaled norm, as dnrm2's
        if math.isfinite(ss):
            return math.sqrt(ss)
        big = float(np.max(np.abs(v)))
        return big * math.sqrt(float((v / big).dot(v / big))) if math.isfinite(big) else big
    tsml, tbig = 1.4916681462400413e-154, 1.9979190722022350e+146
    if np.all((np.abs(x) >= tsml) & (np.abs(x) <= tbig) | (x == 0)):
        s = 0.0
        for v in x:
            s = s + v * v
        return math.sqrt(s)
    return float(np.linalg.norm(x))  # pragma: no cover - extreme magnitudes


def dqrdc2(x: np.ndarray, tol: float = QR_TOL, exact: bool = False
           ) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """LINPACK ``dqrdc2`` as R ships it: Householder QR with limited column pivoting.

    Returns (qr, rank, qraux, pivot) as R's ``qr()`` does (pivot 0-based).  Columns whose norm
    drops below ``tol`` times their original norm are cycled to the end; the others keep
    their order.  ``exact`` uses the reference-BLAS summation order throughout (slow, for
    small matrices); otherwise numpy kernels, which only matter for borderline pivots.
    """
    a = np.array(x, dtype=float, order="F", copy=True)
    n, p = a.shape
    qraux = np.array([_dnrm2(a[:, j], exact) for j in range(p)])
    work1 = qraux.copy()
    work2 = np.where(qraux == 0.0, 1.0, qraux)
    jpvt = np.arange(p)
    lup = min(n, p)
    k = p + 1  # 1-based as in the Fortran
    for l0 in range(lup):
        l1 = l0 + 1
        while not (l1 >= k or qraux[l0] >= work2[l0] * tol):
            # move column l to the end, shifting the rest left
            order = [*range(l0), *range(l0 + 1, p), l0]
            a[:, :] = a[:, order]
            jpvt, qraux = jpvt[order], qraux[order]
            work1, work2 = work1[order], work2[order]
            k -= 1
        if l1 == n:
            break
        col = a[l0:, l0]
        nrmxl = _dnrm2(col, exact)
        if nrmxl == 0.0:
            continue
        if a[l0, l0] != 0.0:
            nrmxl = math.copysign(nrmxl, a[l0, l0])
        a[l0:, l0] = (1.0 / nrmxl) * a[l0:, l0]
        a[l0, l0] = 1.0 + a[l0, l0]
        for j in range(l0 + 1, p):
            t = -_ddot(a[l0:, l0], a[l0:, j], exact) / a[l0, l0]
            a[l0:, j] = a[l0:, j] + t * a[l0:, l0]
            if qraux[j] == 0.0:
                continue
            tt = 1.0 - (abs(a[l0, j]) / qraux[j]) ** 2
            tt = max(tt, 0.0)
            if abs(tt) < 1e-6:
                qraux[j] = _dnrm2(a[l0 + 1:, j], exact)
                work1[j] = qraux[j]
            else:
                qraux[j] = qraux[j] * math.sqrt(tt)
        qraux[l0] = a[l0, l0]
        a[l0, l0] = -nrmxl
    rank = min(k - 1, n)
    return a, rank, qraux, jpvt


def dqrsl_qy(qr: np.ndarray, qraux: np.ndarray, k: int, y: np.ndarray) -> np.ndarray:
    """LINPACK ``dqrsl`` job 10000: Q·y from the Householder vectors of :func:`dqrdc2`."""
    n = qr.shape[0]
    qy = np.array(y, dtype=float, copy=True)
    ju = min(k, n - 1)
    for j in reversed(range(ju)):
        if qraux[j] == 0.0:
            continue
        v = qr[j:, j].copy()
        v[0] = qraux[j]
        t = -_ddot(v, qy[j:], True) / v[0]
        qy[j:] = qy[j:] + t * v
    return qy
