"""glmm: generalized linear mixed models at numerical parity with R's lme4::glmer.

The engine (formula, PIRLS, Laplace and adaptive Gauss-Hermite objectives, optimizer) is
being built; until it lands this package only carries its version.  The parity harness
(:mod:`parity`) already runs against real lme4.
"""

__version__ = "0.1.0"
