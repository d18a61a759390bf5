"""The design of a mixed model: everything it has before a response distribution is chosen.

    η = o + Xβ + ZΛ(θ)u

:func:`build_design` runs lme4's ``glFormula`` / ``lFormula`` steps on a formula and a data
frame: parse (:mod:`.formula`), the model frame with NA rows dropped (:mod:`.frame`), X with
lme4's rank check (:mod:`.fixed`) and the random-effects terms in lme4's order with θ's
start, bounds and names (:mod:`.random`).  The :class:`Design` keeps the raw response
variable and the prior weights as the frame read them; a GLMM adds a family to it
(``family$initialize``, :func:`glmm.glmer`); an LMM (:func:`glmm.lmer`) uses the same design.

It also keeps what rebuilds X and Z for new data, as R's ``predvars`` and ``xlev`` do: the
levels of every factor variable and the centres and scales of every ``scale()`` call, each as
computed on the fitted data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .evaluate import Scaling
from .fixed import FixedEffects, fixed_effects
from .formula import ParsedFormula, parse_formula
from .frame import model_frame
from .random import RandomEffects, random_effects


@dataclass(frozen=True, eq=False)
class Design:
    """X, the random-effects terms, the offset and the prior weights of a model over its
    data, with the response variable as the model frame holds it.

    ``na_action`` lists the positions in the data of the rows dropped for a missing value
    (lme4's ``na.action(fit)``, there 1-based); ``levels`` and ``scalings`` are what rebuilds
    the design on new data; ``weights_name`` and ``offset_name`` are the columns that gave the
    prior weights and the offset argument, where given by name (lme4's call prints them).
    """

    formula: str
    parsed: ParsedFormula
    fixed: FixedEffects
    random: RandomEffects
    response: np.ndarray | pd.Categorical = field(repr=False)
    weights: np.ndarray = field(repr=False)
    offset: np.ndarray = field(repr=False)
    na_action: tuple[int, ...] = ()
    levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    scalings: Mapping[str, Scaling] = field(default_factory=dict)
    weights_name: str | None = None
    offset_name: str | None = None

    @property
    def X(self) -> np.ndarray:
        return self.fixed.X

    @property
    def n(self) -> int:
        """The number of observations (rows kept)."""
        return len(self.offset)

    @property
    def p(self) -> int:
        return self.fixed.p

    @property
    def q(self) -> int:
        return self.random.q


def build_design(formula: str, data: pd.DataFrame, weights: str | np.ndarray | None = None,
                 offset: str | np.ndarray | None = None) -> Design:
    """The design of ``formula`` over ``data``: lme4's formula steps, and its checks, up to
    the response distribution (``weights`` and ``offset``: column names or arrays)."""
    parsed = parse_formula(formula)
    frame = model_frame(parsed, data, weights=weights, offset=offset)
    fixed = fixed_effects(parsed, frame)
    random = random_effects(parsed, frame)
    return Design(formula=formula, parsed=parsed, fixed=fixed, random=random,
                  response=frame.response, weights=frame.weights, offset=frame.offset,
                  na_action=tuple(frame.omitted.tolist()), levels=frame.levels,
                  scalings=dict(frame.scalings),
                  weights_name=weights if isinstance(weights, str) else None,
                  offset_name=offset if isinstance(offset, str) else None)
