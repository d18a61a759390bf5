"""The optional compiled core ``glmm._core``, built by setup.py from the C sources in
``glmm/csrc/`` (one file per concept: the response, dense Cholesky, PIRLS's shared parts, one
scalar term, its BFGS search, the crossed terms, the sparse coupling, BFGS, the LMM, X's
checks, the argument checks and the module).  For binomial–logit and Poisson–log: for one scalar
random-effects term, PIRLS, the gradient, the warm start, R_X and the whole BFGS search
(:mod:`glmm.objectives.scalar_term`); for two or more crossed scalar terms with a dense
coupling block, PIRLS, the gradient, the warm start and R_X (:mod:`glmm.objectives.crossed`);
the sparse coupling block's pair sums (:mod:`glmm.linalg.blocked`).  For a linear mixed
model, its profiled criterion, the exact gradient and the whole BFGS search over θ, from its
cross-products, which for a small model it also forms (:mod:`glmm.objectives.lmm_crossprod`,
docs/lmm.md §6).  lme4's checks of the fixed-effects matrix X: the rank shortcut and the
continuous columns' standard deviations, in one call (:func:`glmm.design.fixed.column_checks`).
``core`` is the
extension module, or None when the package was installed without a C compiler; numpy then
computes the same, slower.

A model's arrays reach the core once, in a capsule (``scalar_model``, ``crossed_model``,
``lmm_model``) that holds them checked; each call then passes only what changes (θ, β, u and
the arrays it writes).  A capsule does not pickle: its owner makes it on first use and leaves
it out of its pickled state.

Its entry points are internal, but none trusts its arguments: each checks them all before it
computes (dtypes, shapes, contiguity, writability, sizes and the overflow of sizes derived
from them, index arrays within bounds, written arrays sharing no memory with another
argument or with the model's, capsules) and raises TypeError or ValueError naming the one at
fault, so that no argument can make it read or write outside its arrays
(tests/test_core_fuzz.py holds it to that).  A call releases the GIL: no other thread may
write its arrays meanwhile.  The statuses it returns (``core.STATUS`` names them) become
messages in one place, :data:`glmm.objectives.pirls.CORE_ERRORS`."""

from __future__ import annotations

from types import ModuleType

core: ModuleType | None
try:
    from . import _core as core
except ImportError:   # pragma: no cover - a build without a C compiler
    core = None
