"""Where the reference comes from: fixtures, or lme4 run live through rpy2.

Both give the same :class:`~parity.results.CaseReference`.  ``fixtures`` (the default of the
CLI and of the pytest plugin) reads them as :mod:`parity.fixtures` finds them; ``r`` fits
each case now; ``auto`` picks live R when R, lme4 and rpy2 all load, and the fixtures
otherwise.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from . import fixtures
from .cases import Case
from .choices import SOURCES
from .deadline import DEFAULT_R_TIMEOUT, check_timeout
from .errors import FixtureError, ParityError
from .results import CaseReference


class ReferenceSource(ABC):
    name: str
    description: str
    #: the arguments of :func:`make_source` that make this source again (in a worker)
    recipe: tuple[Any, ...]

    @abstractmethod
    def reference(self, case: Case) -> CaseReference:
        """lme4's reference for the case."""


class FixtureSource(ReferenceSource):
    name = "fixtures"

    def __init__(self, directory: Path | str | None = None) -> None:
        """``directory``: the only folder to read; None: each case's fixture is looked for
        along :func:`parity.fixtures.search_path`."""
        self.directory = None if directory is None else Path(directory)
        self.recipe = ("fixtures", self.directory)
        self.description = (f"fixtures in {self.directory}" if self.directory is not None else
                            f"fixtures (${fixtures.FIXTURES_ENV}, ./{fixtures.LOCAL_DIR}, then "
                            f"{fixtures.CORPUS_DIR})")

    def reference(self, case: Case) -> CaseReference:
        """The stored reference of the case; FixtureError if the fixture's case (or, when the
        case has its data at hand, its data) differs from the case asked for."""
        path = fixtures.fixture_path(case.name, self.directory)
        ref = fixtures.load(case.name, self.directory)
        if ref.case != case:
            mine, theirs = ref.case.spec(), case.spec()
            field = next((k for k in {**mine, **theirs} if mine.get(k) != theirs.get(k)),
                         "name")
            raise FixtureError(path, f"$.case.{field}",
                               f"the stored case differs from the case asked for "
                               f"({mine.get(field)!r}, not {theirs.get(field)!r})")
        if case.data is not None and case.data != ref.data:
            raise FixtureError(path, "$.data", "the stored data differ from the case's data "
                                               "(was the data file changed?)")
        return ref


class LiveRSource(ReferenceSource):
    name = "r"

    def __init__(self, timeout: float | None = DEFAULT_R_TIMEOUT) -> None:
        """``timeout``: the limit in seconds for each R call (None: none)."""
        from .r_bridge import session

        self.timeout = check_timeout(timeout)
        self.recipe = ("r", None, self.timeout)
        self.session = session()  # raises RUnavailableError
        v = self.session.versions
        self.description = f"live lme4 {v['lme4_version']} on R {v['r_version']}"

    def reference(self, case: Case) -> CaseReference:
        """lme4's reference, fitted now, on the case's data if it has them, else on what its
        ``data_r`` makes (evaluated only if the case is code, or the corpus entry of its
        name: UnsafeInputError otherwise)."""
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
