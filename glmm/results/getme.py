"""lme4's ``getME(fit, name)``: the pieces of a fit by lme4's names (lme4 R/lmer.R
``getME.merMod``).

    X, Z (n × q, sparse), Zt, Lambda, Lambdat (q × q, sparse), theta, beta, u, b = Λu,
    L (the lower Cholesky factor of G = ΛᵀZᵀWZΛ + I, sparse, without lme4's fill-reducing
    permutation), RX, mu, eta, y, offset, weights (prior), wrk_weights (W at the mode),
    flist (grouping factors), cnms (each term's columns), Gp, lower, n, p, q, theta_names,
    devcomp (ldL2, ussq, drsum, objective)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ArgumentError

if TYPE_CHECKING:
    from .base import MixedModelFit

NAMES = ("X", "Z", "Zt", "Lambda", "Lambdat", "theta", "beta", "u", "b", "L", "RX", "mu",
         "eta", "y", "offset", "weights", "wrk_weights", "flist", "cnms", "Gp", "lower", "n",
         "p", "q", "theta_names", "devcomp")


def getme(fit: MixedModelFit, name: str) -> Any:
    if not isinstance(name, str) or name not in NAMES:
        raise ArgumentError(f"getME: unknown name {name!r}; the names are {', '.join(NAMES)}")
    d, ev = fit.design, fit.evaluation
    st = ev.state
    re = d.random
    if name == "X":
        return d.X.copy()
    if name in ("Z", "Zt"):
        import scipy.sparse as sp  # scipy.sparse on first use: a slow import
        return re.Z.copy() if name == "Z" else sp.csc_matrix(re.Z.T)
    if name in ("Lambda", "Lambdat"):
        import scipy.sparse as sp
        L = re.Lambda(ev.theta)
        return L if name == "Lambda" else sp.csc_matrix(L.T)
    if name == "theta":
        return pd.Series(ev.theta, index=list(re.theta_names), name="theta")
    if name == "beta":
        return ev.beta.copy()
    if name == "u":
        return ev.u.copy()
    if name == "b":
        return ev.b.copy()
    if name == "L":
        import scipy.sparse as sp
        ZL = sp.csc_matrix(re.Z @ re.Lambda(ev.theta))
        G = (ZL.T @ sp.diags(st.W) @ ZL + sp.identity(re.q)).toarray()
        return sp.csc_matrix(np.linalg.cholesky(G))
    if name == "RX":
        return fit.objective_fn.rx(ev).copy()
    if name == "mu":
        return st.mu.copy()
    if name == "eta":
        return st.eta.copy()
    if name == "y":
        return fit.objective_fn.model.y.copy()
    if name == "offset":
        return d.offset.copy()
    if name == "weights":   # lme4's resp$weights: the prior weights (× trials for cbind)
        return fit.objective_fn.model.weights.copy()
    if name == "wrk_weights":
        return st.W.copy()
    if name == "flist":
        return {t.group: pd.Categorical.from_codes(t.codes, categories=list(t.levels))
                for t in re.terms}
    if name == "cnms":
        return [(t.group, list(t.columns)) for t in re.terms]
    if name == "Gp":
        return np.asarray(re.offsets).copy()
    if name == "lower":
        return np.asarray(re.lower, dtype=float).copy()
    if name == "n":
        return d.n
    if name == "p":
        return d.p
    if name == "q":
        return re.q
    if name == "theta_names":
        return tuple(re.theta_names)
    return {"ldL2": ev.ldL2, "ussq": ev.ussq, "drsum": ev.drsum, "objective": ev.objective}
