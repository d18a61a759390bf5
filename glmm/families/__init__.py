"""The GLM families and links as lme4 evaluates them (:mod:`.links`, :mod:`.family`, with R's
log-densities in :mod:`.nmath`), and the response they give the objectives
(:mod:`.response`)."""

from .family import (
    Family,
    Gamma,
    Initialized,
    binomial,
    gaussian,
    inverse_gaussian,
    make_family,
    poisson,
)
from .links import EPS, Link, make_link

__all__ = ["EPS", "Family", "Gamma", "Initialized", "Link", "binomial", "gaussian",
           "inverse_gaussian", "make_family", "make_link", "poisson"]
