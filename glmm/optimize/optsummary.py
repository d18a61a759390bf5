"""The record of one optimisation: what lme4 keeps in ``fit@optinfo`` and MixedModels.jl in
its ``OptSummary``, for the search glmm runs (:mod:`glmm.optimize.driver`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .checkconv import ConvergenceChecks


@dataclass(frozen=True, eq=False)
class OptSummary:
    """How the optimum was found.

    ``start`` and ``final`` are the objective's parameters (θ for nAGQ = 0, (θ, β) otherwise)
    where the search began and where it ended; ``fmin`` the objective there; ``feval`` the
    number of evaluations of the objective (each one PIRLS); ``gradient_norm`` the largest
    entry of the gradient at the search's last point, in its own coordinates (β whitened by
    √2·R_X for nAGQ ≥ 1: docs/gradients.md §9); ``converged`` and ``message`` the
    optimiser's own verdict (the fit's may be stricter: :attr:`glmm.GlmerFit.converged`);
    :attr:`checks` is lme4's ``checkConv`` at the optimum, run on first use.
    """

    optimizer: str
    start: np.ndarray
    final: np.ndarray
    fmin: float
    feval: int
    gradient_norm: float
    converged: bool
    message: str

    def attach_checks(self, run: Callable[[], ConvergenceChecks]) -> None:
        """Let :attr:`checks` be computed by ``run`` when first asked for (the fit attaches
        its own: they need the Hessian at the optimum)."""
        object.__setattr__(self, "_run_checks", run)

    @property
    def checks(self) -> ConvergenceChecks | None:
        """lme4's ``checkConv`` at the optimum
        (:class:`~glmm.optimize.checkconv.ConvergenceChecks`), computed on first use and kept;
        None where none is attached."""
        if "_checks" not in self.__dict__:
            run = self.__dict__.get("_run_checks")
            object.__setattr__(self, "_checks", None if run is None else run())
        return self.__dict__["_checks"]

    def __str__(self) -> str:
        def vec(x: np.ndarray) -> str:
            return "[" + ", ".join(f"{v:.6g}" for v in x) + "]"

        return "\n".join([
            f"optimizer:     {self.optimizer}",
            f"start:         {vec(self.start)}",
            f"final:         {vec(self.final)}",
            f"fmin:          {self.fmin:.10g}",
            f"evaluations:   {self.feval}",
            f"max |gradient| {self.gradient_norm:.3g}",
            f"converged:     {self.converged} ({self.message})",
            *([f"checkConv:     {'; '.join(c.messages) or 'OK'}"]
              if (c := self.__dict__.get("_checks")) is not None else []),
        ])
