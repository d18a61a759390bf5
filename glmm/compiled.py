"""The optional compiled core, ``glmm/_core.c`` (built by setup.py): PIRLS, the gradient,
the warm start and R_X for one scalar random-effects term, for binomial–logit and
Poisson–log.  ``core`` is the extension module, or None when the package was
installed without a C compiler; numpy then computes the same, slower on small models."""

from __future__ import annotations

from types import ModuleType

core: ModuleType | None
try:
    from . import _core as core
except ImportError:   # pragma: no cover - a build without a C compiler
    core = None
