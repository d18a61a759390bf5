"""Gauss–Hermite rules against the standard normal density, as lme4's ``GHrule``.

numpy's ``hermgauss(k)`` integrates against exp(−x²): ∫ f(x) e^{−x²} dx ≈ Σ ωₖ f(xₖ).  With
z = √2·x and w = ω/√π the rule integrates against φ(z): ∫ f(z) φ(z) dz ≈ Σ wₖ f(zₖ), Σ wₖ = 1.
lme4 1.1-31 stores fastGHQuad's values of the same rule; they agree to about 1e-15.
"""

from __future__ import annotations

from functools import cache

import numpy as np


@cache
def ghrule(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(nodes z, weights w) of the k-point rule; 1 ≤ k ≤ 100 as in lme4."""
    if not 1 <= k <= 100:
        raise ValueError(f"nAGQ must be between 1 and 100, got {k}")
    x, omega = np.polynomial.hermite.hermgauss(k)
    z = np.sqrt(2.0) * x
    w = omega / np.sqrt(np.pi)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w
