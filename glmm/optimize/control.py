"""``GlmerControl``: the settings of a glmer fit that a user may change, lme4's
``glmerControl()`` where glmm has the same setting.

glmm's search is its own (BFGS on the exact gradient, :mod:`glmm.optimize.bfgs`), so its
stopping rules are BFGS's, not bobyqa's: ``max_iter`` iterations (lme4 counts ``maxfun``
evaluations), ``gtol`` on the largest gradient entry, ``dtol`` on the decrement and ``xtol``
on the step.  What lme4 and glmm share keeps lme4's meaning and default:

    boundary_tol         check.boundary: a θ entry this close to its bound moves to it
                         when F does not rise (lme4's ``boundary.tol``, 1e-5)
    check_conv           the action of lme4's convergence checks: "warning" (lme4's
                         default), "ignore" (no warning; ``fit.optsummary.checks`` still
                         holds them) or "stop" (the checks run at fit time and a failed one
                         raises :class:`~glmm.ConvergenceError`)
    check_conv_grad      check.conv.grad's tol (2e-3) on the scaled gradient
    check_conv_singular  check.conv.singular's tol (1e-4) on θ at its bound
    check_conv_hess      check.conv.hess's tol (1e-6) on the Hessian's eigenvalues

PIRLS has no setting here: glmm converges it to a decrement of 1e-20 (docs/objectives.md),
where lme4 stops at ``tolPwrss`` = 1e-7, so lme4's ``tolPwrss`` would not mean the same.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ArgumentError, ArgumentTypeError
from . import bfgs, checkconv
from .driver import BOUNDARY_TOL

#: lme4's actions of check.conv.*
ACTIONS = ("warning", "ignore", "stop")
#: the compiled search counts iterations in a C long (and no fit needs more)
MAX_ITER_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class GlmerControl:
    """The settings of :func:`glmm.glmer` (module docstring); the defaults are glmer's."""

    max_iter: int = bfgs.MAX_ITER
    gtol: float = bfgs.GTOL
    dtol: float = bfgs.DTOL
    xtol: float = bfgs.XTOL
    boundary_tol: float = BOUNDARY_TOL
    check_conv: str = "warning"
    check_conv_grad: float = checkconv.GRAD_TOL
    check_conv_singular: float = checkconv.SINGULAR_TOL
    check_conv_hess: float = checkconv.HESS_TOL

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "check_conv":
                if not isinstance(value, str):
                    raise ArgumentTypeError(f"GlmerControl: check_conv must be one of "
                                            f"{list(ACTIONS)}, got {value!r}")
                if value not in ACTIONS:
                    raise ArgumentError(f"GlmerControl: check_conv must be one of "
                                        f"{list(ACTIONS)}, got {value!r}")
            elif f.name == "max_iter":
                if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                    raise ArgumentTypeError(f"GlmerControl: max_iter must be an integer, got "
                                            f"{value!r}")
                if not 1 <= value <= MAX_ITER_LIMIT:
                    raise ArgumentError(f"GlmerControl: max_iter must be between 1 and "
                                        f"{MAX_ITER_LIMIT}, got {value}")
                object.__setattr__(self, f.name, int(value))
            else:
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise ArgumentTypeError(f"GlmerControl: {f.name} must be a number, got "
                                            f"{value!r}")
                value = float(value)
                if not (math.isfinite(value) and value >= 0):
                    raise ArgumentError(f"GlmerControl: {f.name} must be a finite number "
                                        f"≥ 0, got {value!r}")
                object.__setattr__(self, f.name, float(value))

    @property
    def search(self) -> dict[str, Any]:
        """BFGS's stopping rules, as :func:`glmm.optimize.bfgs.minimize_bfgs` takes them."""
        return {"gtol": self.gtol, "dtol": self.dtol, "xtol": self.xtol,
                "max_iter": self.max_iter}

    @classmethod
    def of(cls, control: object) -> GlmerControl:
        """``control`` as a GlmerControl: None is the defaults (one shared instance: it is
        frozen, and its checks cost more than a small fit's search); a mapping its fields."""
        if control is None:
            return DEFAULT if cls is GlmerControl else cls()
        if isinstance(control, cls):
            return control
        if isinstance(control, Mapping):
            names = {f.name for f in fields(cls)}
            unknown = sorted(set(map(str, control)) - names)
            if unknown:
                raise ArgumentError(f"unknown control settings {unknown}; GlmerControl has "
                                    f"{sorted(names)}")
            return cls(**control)
        raise ArgumentTypeError(f"control must be a glmm.GlmerControl (or a mapping of its "
                                f"fields), got {type(control).__name__}")


#: glmer's defaults
DEFAULT = GlmerControl()
