"""F₀ and F₁ for any model: :class:`BlockedObjective`, PIRLS with the blocked factor of
:mod:`glmm.linalg.blocked` (:mod:`glmm.objectives.pirls`), the gradients of
:mod:`glmm.objectives.gradient`, and the compiled core where it applies: for crossed scalar
terms (:mod:`glmm.objectives.crossed`) and, with the whole search, for one vector-valued
term (:mod:`glmm.objectives.block_term`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..cached import cached_property
from ..errors import AGQNotAvailableError
from ..linalg.blocked import BlockedCholesky
from ..optimize.bfgs import Minimizer
from .base import Evaluation, Objective
from .block_term import block_bfgs, block_capsule
from .crossed import CrossedTerms
from .gradient import laplace_gradient, profiled_gradient
from .model import GlmerModel
from .pirls import ConditionalMode, PirlsState, pirls, predict


class BlockedObjective(Objective):
    """F₀ and F₁ for any model: PIRLS with the blocked factor (:mod:`glmm.objectives.pirls`), the
    gradients of :mod:`glmm.objectives.gradient`, the mode's prediction of
    :func:`glmm.objectives.pirls.predict`."""

    def __init__(self, model: GlmerModel, nAGQ: int, beta_start: np.ndarray,
                 compiled: bool = True) -> None:
        if nAGQ > 1:
            raise AGQNotAvailableError(
                "BlockedObjective computes nAGQ 0 and 1; adaptive quadrature (nAGQ > 1) is "
                "glmm.objectives.scalar_term.ScalarTermObjective's, for a single scalar term")
        super().__init__(model, nAGQ, beta_start)
        #: the compiled core's PIRLS, warm start, R_X and gradient where they apply
        #: (:class:`glmm.objectives.crossed.CrossedTerms`) unless ``compiled`` is False; None:
        #: numpy's
        self._crossed = CrossedTerms.of(model) if compiled else None
        #: whether the core's search may run (one vector-valued term; :attr:`_block`)
        self._compiled = compiled

    @cached_property
    def _block(self) -> object | None:
        """The core's model of one vector-valued term (block_term.block_capsule), made on
        first use; None where the core does not take the model."""
        return block_capsule(self.model, self.nAGQ) if self._compiled else None

    def __getstate__(self) -> dict[str, Any]:
        """The state without the core's capsule (which does not pickle; it is made again on
        first use)."""
        state = self.__dict__.copy()
        state.pop("_block", None)
        return state

    def compiled_bfgs(self, R: np.ndarray | None, beta0: np.ndarray | None,
                      tolerances: Mapping[str, float] | None = None) -> Minimizer | None:
        """The search in the core for one vector-valued term (glmm/csrc/block.c): the same
        F, gradient, warm start and BFGS rules, and the core's last mode as :attr:`last`.
        None for any other model."""
        capsule = self._block
        return None if capsule is None else block_bfgs(self, capsule, R, beta0, tolerances)

    def _predict(self, last: Evaluation, theta: np.ndarray, beta: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
        st = last.state
        assert isinstance(st, PirlsState)
        if self._crossed is not None:
            return self._crossed.predict(st, last.theta, theta, last.beta, beta)
        return predict(self.model, st, last.theta, theta, last.beta, beta)

    def _pirls(self, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray, joint: bool
               ) -> PirlsState:
        if self._crossed is not None:
            return self._crossed.pirls(theta, beta, u0, joint)
        return pirls(self.model, theta, beta, u0, joint)

    def _criterion(self, theta: np.ndarray, st: ConditionalMode, laplace: float,
                   gradient: bool) -> tuple[float, np.ndarray | None]:
        assert isinstance(st, PirlsState)
        if not gradient:
            return laplace, None
        if self._crossed is not None:
            return laplace, self._crossed.gradient(theta, st, self.nAGQ == 0)
        try:
            return laplace, (profiled_gradient if self.nAGQ == 0 else laplace_gradient)(
                self.model, theta, st)
        except ArithmeticError:   # H (observed weights) not positive definite
            return laplace, None

    def rx(self, ev: Evaluation) -> np.ndarray:
        st = ev.state
        assert isinstance(st, PirlsState)
        if st.RX is not None:
            return st.RX
        m = self.model
        if self._crossed is not None:
            return self._crossed.rx(ev.theta, st.W)
        rx = BlockedCholesky(st.layouts, st.W, m.coupling, m.fixed_blocks(st.layouts, st.W)).RX
        assert rx is not None
        return rx
