"""Two or more crossed scalar terms in the compiled core: PIRLS, its warm start, R_X and the
exact gradient of :mod:`glmm.objectives.pirls` and :mod:`glmm.objectives.gradient`, for models like
VerbAgg's ``(1 | id) + (1 | item)``.

The numpy forms of these spend a crossed model's PIRLS step in a few dozen numpy and scipy
calls on small blocks (VerbAgg: 316 subjects × 24 items).  The core does each
step in one pass over the observations that assembles the blocked factor's dense blocks
(:class:`~glmm.linalg.blocked.BlockedCholesky`: D = diag(G₁₁), [G₂₁; C₁ᵀ] and the Schur complement
S̄), and hands the factor back as a BlockedCholesky (:meth:`~glmm.linalg.blocked.BlockedCholesky.
from_core`).  The formulas, the convergence rule and the step-halving are the numpy forms';
the tests hold the two equal.

It applies to scalar terms whose coupling block G₂₁ is dense (crossed factors whose levels
mostly meet; a sparse one, as grouseticks' nested factors or rarely meeting 5,000 × 200
levels, keeps numpy's sparse path), for binomial–logit and
Poisson–log.  The fixed effects' sums go through X's distinct rows (as
:class:`~glmm.objectives.model.TermCells`): each observation's row of X's distinct rows, and per
term its cells, the (level, row) pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cached import cached_property
from ..compiled import core as _core
from ..linalg.blocked import MAX_DENSE_CROSS, MAX_DENSE_SCHUR, BlockedCholesky
from .model import GlmerModel, distinct_rows
from .pirls import CORE_ERRORS, PirlsError, PirlsState


class CrossedTerms:
    """A model's crossed scalar terms as the compiled core holds them (checked there once)."""

    def __init__(self, model: GlmerModel) -> None:
        assert model.response.core_args is not None and _core is not None
        self.model = model

    @cached_property
    def _capsule(self) -> object:
        """The model in the compiled core (its crossed_model capsule), made on first use."""
        model = self.model
        args, terms = model.response.core_args, model.terms
        assert args is not None and _core is not None
        rows = distinct_rows(model.X)
        groups, first = _groups(rows, int(rows.max(initial=-1)) + 1)
        cells = []
        for t in terms:
            cell, one = _groups(t.codes * len(first) + groups, t.nlevels * len(first))
            cells.append((cell, t.codes[one], groups[one]))
        return _core.crossed_model(
            *args, tuple(t.codes for t in terms),
            tuple(None if t.intercept else np.ascontiguousarray(t.Xi[:, 0]) for t in terms),
            tuple(t.nlevels for t in terms), model.p, groups,
            np.ascontiguousarray(model.X[first]), tuple(cells))

    def __getstate__(self) -> dict[str, Any]:
        """The state without the core's capsule (which does not pickle; it is made again on
        first use)."""
        state = self.__dict__.copy()
        state.pop("_capsule", None)
        return state

    @classmethod
    def of(cls, model: GlmerModel) -> CrossedTerms | None:
        """The model's terms in the core, or None where the core does not apply: fewer than
        two terms or more than ``MAX_TERMS``, a vector term, a sparse coupling block, another
        family or link, or no compiled core."""
        terms = model.terms
        if (_core is None or model.response.core_args is None
                or not 2 <= len(terms) <= _core.MAX_TERMS or any(t.p != 1 for t in terms)):
            return None
        q1 = terms[0].nlevels
        q2 = model.q - q1
        if model.coupling.sparse or q2 > MAX_DENSE_SCHUR or q1 * q2 > MAX_DENSE_CROSS:
            return None
        return cls(model)

    def _theta(self, theta: np.ndarray) -> tuple[float, ...]:
        """Each scalar term's θ, as the core takes them."""
        return tuple(float(theta[t.theta_slice.start]) for t in self.model.terms)

    def pirls(self, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray, joint: bool
              ) -> PirlsState:
        """:func:`glmm.objectives.pirls.pirls`: the mode ũ(θ, β), or (ũ, β̃)(θ) when ``joint``."""
        m = self.model
        q1 = m.terms[0].nlevels
        k = m.q - q1 + (m.p if joint else 0)   # the order of S̄
        u, b = u0.copy(), beta.copy()
        eta, mu, dev, W, s = (np.empty(m.n) for _ in range(5))
        D, Bt, R = np.empty(q1), np.empty((q1, k)), np.empty((k, k))
        status, iterations = _core.crossed_pirls(
            self._capsule, self._theta(theta), joint, m.offset + m.X @ b, u,
            b if joint else None, eta, mu, dev, W, s, D, Bt, R)
        if status:
            raise PirlsError(CORE_ERRORS[status])
        factor = BlockedCholesky.from_core(D, Bt, R, m.coupling)
        return PirlsState(u, b, eta, mu, dev, W, s, factor, m.layouts(theta), iterations,
                          (D, Bt, R))

    def predict(self, st: PirlsState, theta_old: np.ndarray, theta: np.ndarray,
                beta_old: np.ndarray, beta: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """:func:`glmm.objectives.pirls.predict` from a mode of :meth:`pirls`."""
        assert st.core is not None
        u = np.empty(len(st.u))
        db = None if beta is not None else np.empty(len(beta_old))
        _core.crossed_predict(self._capsule, self._theta(theta_old),
                              self._theta(theta - theta_old), beta is None, st.u, st.s, st.W,
                              *st.core, None if beta is None else beta - beta_old, u, db)
        return (u, beta) if db is None else (u, beta_old + db)

    def rx(self, theta: np.ndarray, W: np.ndarray) -> np.ndarray:
        """lme4's R_X at θ and weights W (the fixed effects' block of the joint factor)."""
        RX = np.empty((self.model.p, self.model.p))
        status = _core.crossed_rx(self._capsule, self._theta(theta), W, RX)
        if status:
            raise PirlsError(CORE_ERRORS[status])
        return RX

    def gradient(self, theta: np.ndarray, st: PirlsState, profiled: bool) -> np.ndarray:
        """:func:`glmm.objectives.gradient.profiled_gradient` (``profiled``) or
        :func:`~glmm.objectives.gradient.laplace_gradient` at a mode of :meth:`pirls` (a canonical
        pair: O = W, κ = 1): the selected inverse from the factor's blocks, one pass over the
        observations for the leverages and the right-hand side and one for r and the sums."""
        assert st.core is not None
        m = self.model
        g = np.empty(m.ntheta + (0 if profiled else m.p))
        _core.crossed_gradient(self._capsule, self._theta(theta), profiled, *st.core, st.u, st.mu,
                               st.W, st.s, g)
        return g


def _groups(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of an integer ``key`` in [0, size), numbered in increasing order:
    each entry's number and each number's first entry (np.unique's inverse and index; by a
    table of ``size`` entries instead of a sort while the table is small)."""
    if size > 4 * len(key):
        _, first, index = np.unique(key, return_index=True, return_inverse=True)
        return index.ravel().astype(np.int64), first
    present = np.zeros(size, dtype=bool)
    present[key] = True
    number = np.cumsum(present) - 1
    index = number[key]
    first = np.empty(int(present.sum()), dtype=np.int64)
    first[index[::-1]] = np.arange(len(key) - 1, -1, -1)   # the last write, the first entry
    return index, first
