"""Shared test helpers.  The parity plugin (parity.plugin) is loaded through its entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from parity import fixtures


@pytest.fixture()
def fixture_copy(tmp_path: Path):
    """Copy a committed fixture into a temporary folder and return its path."""

    def copy(name: str) -> Path:
        dst = tmp_path / f"{name}.json"
        shutil.copyfile(fixtures.fixture_path(name), dst)
        return dst

    return copy
