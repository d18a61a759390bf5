"""Speed benchmarks run only on request: ``pytest --benchmark-only tests/benchmarks``.

Tests that take pytest-benchmark's ``benchmark`` fixture are skipped in a normal run (wall
time is never asserted); the evaluation-count guard, which is deterministic, always runs.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("benchmark_only", default=False):
        return
    skip = pytest.mark.skip(reason="a speed benchmark: run with pytest --benchmark-only")
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)
