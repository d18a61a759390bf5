"""The names the command line and the pytest plugin share: the reference sources, the
candidates, and the default source.  Kept apart so that loading the pytest plugin, which
every test run in an environment with this package does, imports nothing heavy."""

from __future__ import annotations

#: where lme4's reference comes from: the fixtures, live R, or live R when it loads
SOURCES: tuple[str, ...] = ("auto", "r", "fixtures")
#: the source used unless one is asked for, by ``parity run`` and by the pytest plugin alike
DEFAULT_SOURCE = "fixtures"
#: what is compared with the reference: the engine, live lme4, or the fixture's own fit
CANDIDATES: tuple[str, ...] = ("glmm", "r", "fixture")
