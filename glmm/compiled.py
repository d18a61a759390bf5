"""The optional compiled core, ``glmm/_core.c`` (built by setup.py), for binomial–logit and
Poisson–log: for one scalar random-effects term, PIRLS, the gradient, the warm start, R_X and
the whole BFGS search (:mod:`glmm.scalar_term`); for two or more crossed scalar terms with a
dense coupling block, PIRLS, the gradient, the warm start and R_X (:mod:`glmm.crossed`).
``core`` is the extension module, or None when the package was installed without a C
compiler; numpy then computes the same, slower."""

from __future__ import annotations

from types import ModuleType

core: ModuleType | None
try:
    from . import _core as core
except ImportError:   # pragma: no cover - a build without a C compiler
    core = None
