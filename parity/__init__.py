"""parity: the harness that compares the glmm engine with R's lme4, model by model.

``parity.Case`` and ``parity.load_cases`` are the public way to name your own models (see the
README's "Guard your own model in CI"); they are imported on first use, so that importing
the package (as the pytest plugin does in every test run) stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Case", "__version__", "load_cases"]


def __getattr__(name: str) -> Any:
    if name == "Case":
        from .cases import Case

        return Case
    if name == "load_cases":
        from .casefile import load_cases

        return load_cases
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
