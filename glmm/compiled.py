"""The optional compiled core, ``glmm/_core.c`` (built by setup.py), for binomial–logit and
Poisson–log: for one scalar random-effects term, PIRLS, the gradient, the warm start, R_X and
the whole BFGS search (:mod:`glmm.objectives.scalar_term`); for two or more crossed scalar terms
with a dense coupling block, PIRLS, the gradient, the warm start and R_X
(:mod:`glmm.objectives.crossed`); the sparse coupling block's pair sums
(:mod:`glmm.linalg.blocked`). ``core`` is the extension module, or None when the package was
installed without a C compiler; numpy then computes the same, slower.

Its entry points are internal, but none trusts its arguments: each checks them all before it
computes (dtypes, shapes, contiguity, writability, sizes and the overflow of sizes derived
from them, index arrays within bounds, written arrays sharing no memory with another
argument, capsules) and raises TypeError or ValueError naming the one at fault, so that no
argument can make it read or write outside its arrays (tests/test_core_fuzz.py holds it to
that).  A call releases the GIL: no other thread may write its arrays meanwhile.  The
statuses it returns (``core.STATUS`` names them) become messages in one place,
:data:`glmm.objectives.pirls.CORE_ERRORS`."""

from __future__ import annotations

from types import ModuleType

core: ModuleType | None
try:
    from . import _core as core
except ImportError:   # pragma: no cover - a build without a C compiler
    core = None
