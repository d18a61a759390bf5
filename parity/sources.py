"""Where the reference comes from: committed fixtures, or lme4 run live through rpy2.

Both give the same :class:`~parity.results.CaseReference`.  ``auto`` picks live R when R,
lme4 and rpy2 all load, and the fixtures otherwise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from . import fixtures
from .cases import Case
from .errors import ParityError
from .results import CaseReference

SOURCES: tuple[str, ...] = ("auto", "r", "fixtures")


class ReferenceSource(ABC):
    name: str
    description: str

    @abstractmethod
    def reference(self, case: Case) -> CaseReference:
        """lme4's reference for the case."""


class FixtureSource(ReferenceSource):
    name = "fixtures"

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory or fixtures.DEFAULT_DIR)
        self.description = f"fixtures in {self.directory}"

    def reference(self, case: Case) -> CaseReference:
        ref = fixtures.load(case.name, self.directory)
        if ref.case != case:
            raise ParityError(
                f"{fixtures.fixture_path(case.name, self.directory)}: the stored case spec "
                "differs from the corpus; regenerate it with scripts/generate_fixtures.py")
        return ref


class LiveRSource(ReferenceSource):
    name = "r"

    def __init__(self) -> None:
        from .r_bridge import session

        self.session = session()  # raises RUnavailableError
        v = self.session.versions
        self.description = f"live lme4 {v['lme4_version']} on R {v['r_version']}"

    def reference(self, case: Case) -> CaseReference:
        from .generate import generate_document

        doc = generate_document(case, self.session)
        fixtures.validate(doc, f"<live R: {case.name}>")
        return CaseReference.from_json(doc)


def make_source(kind: str = "auto", directory: Path | str | None = None) -> ReferenceSource:
    """The reference source by name.  ``r`` raises RUnavailableError when R is missing."""
    if kind == "fixtures":
        return FixtureSource(directory)
    if kind == "r":
        return LiveRSource()
    if kind == "auto":
        from .r_bridge import r_available

        ok, _ = r_available()
        return LiveRSource() if ok else FixtureSource(directory)
    raise ParityError(f"unknown source {kind!r}; choose from {SOURCES}")
