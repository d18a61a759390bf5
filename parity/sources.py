"""Where the reference comes from: committed fixtures, or lme4 run live through rpy2.

Both give the same :class:`~parity.results.CaseReference`.  ``auto`` picks live R when R,
lme4 and rpy2 all load, and the fixtures otherwise.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path

from . import fixtures
from .cases import Case
from .deadline import DEFAULT_R_TIMEOUT, check_timeout
from .errors import FixtureError, ParityError
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
        path = fixtures.fixture_path(case.name, self.directory)
        ref = fixtures.load(case.name, self.directory)
        if ref.case != case:
            mine, theirs = ref.case.spec(), case.spec()
            field = next((k for k in mine if mine[k] != theirs[k]), "name")
            raise FixtureError(path, f"$.case.{field}",
                               f"the stored case differs from the case asked for "
                               f"({mine[field]!r}, not {theirs[field]!r})")
        return ref


class LiveRSource(ReferenceSource):
    name = "r"

    def __init__(self, timeout: float | None = DEFAULT_R_TIMEOUT) -> None:
        """``timeout``: the limit in seconds for each R call (None: none)."""
        from .r_bridge import session

        self.timeout = check_timeout(timeout)
        self.session = session()  # raises RUnavailableError
        v = self.session.versions
        self.description = f"live lme4 {v['lme4_version']} on R {v['r_version']}"

    def reference(self, case: Case) -> CaseReference:
        """lme4's reference, fitted now.  The case's ``data_r`` is evaluated only if the case
        is code; one read from a fixture file must be its corpus entry (UnsafeInputError)."""
        from .generate import generate_document

        label = f"<live R: {case.name}>"
        doc = generate_document(case, self.session, timeout=self.timeout)
        fixtures.validate(doc, label)
        return dataclasses.replace(CaseReference.from_json(doc, label), case=case)


def make_source(kind: str = "auto", directory: Path | str | None = None,
                r_timeout: float | None = DEFAULT_R_TIMEOUT) -> ReferenceSource:
    """The reference source by name.  ``r`` raises RUnavailableError when R is missing;
    ``r_timeout`` limits each of its R calls (seconds, None for none)."""
    if kind == "fixtures":
        return FixtureSource(directory)
    if kind == "r":
        return LiveRSource(r_timeout)
    if kind == "auto":
        from .r_bridge import r_available

        ok, _ = r_available()
        return LiveRSource(r_timeout) if ok else FixtureSource(directory)
    raise ParityError(f"unknown source {kind!r}; choose from {SOURCES}")
