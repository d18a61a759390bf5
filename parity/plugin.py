"""The pytest plugin (registered through the ``pytest11`` entry point).

It gives any test suite:

- parity tests for your own models: ``pytest --parity-cases FILE [--parity-fixtures-dir DIR]``
  (or the ini keys ``parity_cases`` and ``parity_fixtures_dir``) collects one test per case ×
  variant × quantity of the case file, with ids like ``visits-nAGQ1-fixef``; nothing needs
  writing by hand;
- the marker ``live_r``: the test needs live R with lme4 and rpy2, and is skipped with the
  reason when they are missing;
- the options ``--parity-source`` (where references come from; the CLI's default, the
  fixtures), ``--parity-candidate`` (what is compared; default: auto) and
  ``--parity-r-timeout`` (the time limit of each live-R call, in seconds; 0 for none);
- the fixtures ``parity_reference`` (a function: case name -> CaseReference, cached for the
  session), ``parity_candidate``, ``parity_rows`` (a function: (case, variant) -> comparison
  rows, cached; the variant is its label, its nAGQ, or the Variant) and ``r_session`` (the
  live R session, or a skip).  They know the corpus and the cases of ``--parity-cases``.

Loading the plugin imports neither R nor the engine (nor numpy): every import of the harness
happens when a parity test or fixture is first used.  Under pytest-xdist each worker builds
its own references and candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .choices import CANDIDATES, DEFAULT_SOURCE, SOURCES
from .deadline import DEFAULT_R_TIMEOUT, check_timeout
from .errors import ParityError, RUnavailableError

if TYPE_CHECKING:
    from .candidates import Candidate
    from .cases import Case
    from .compare import Row
    from .results import CaseReference
    from .sources import ReferenceSource


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parity", "glmm vs lme4 parity")
    group.addoption("--parity-cases", metavar="FILE", default=None,
                    help="a TOML case file: collect one parity test per case × variant × "
                         "quantity (ini: parity_cases)")
    group.addoption("--parity-fixtures-dir", metavar="DIR", default=None,
                    help="read the fixtures from DIR only (ini: parity_fixtures_dir; default: "
                         "$PARITY_FIXTURES, ./fixtures, then the corpus in the package)")
    group.addoption("--parity-source", choices=SOURCES, default=DEFAULT_SOURCE,
                    help=f"reference source for parity tests (default: {DEFAULT_SOURCE}, as "
                         "`parity run`)")
    group.addoption("--parity-candidate", choices=("auto", *CANDIDATES), default="auto",
                    help="candidate for parity tests (default: auto)")
    group.addoption("--parity-r-timeout", type=float, default=DEFAULT_R_TIMEOUT,
                    metavar="SECONDS",
                    help="time limit of each live-R call in parity tests; a call that passes "
                         f"it fails its rows; 0 for none (default: {DEFAULT_R_TIMEOUT:g})")
    parser.addini("parity_cases", "a TOML case file whose parity tests to collect")
    parser.addini("parity_fixtures_dir", "the folder of the fixtures of parity tests")


def _setting(config: pytest.Config, option: str, ini: str) -> Path | None:
    """An option, else its ini key (relative to the ini file's folder)."""
    value = config.getoption(option)
    if value:
        return Path(value).resolve()
    value = config.getini(ini)
    if value:
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / value).resolve()
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live_r: needs live R with lme4 and rpy2 (skipped with the reason when absent)")
    config.stash[_HARNESS] = _Harness(config)
    cases = _setting(config, "--parity-cases", "parity_cases")
    if cases is None:
        return
    if not cases.is_file():
        raise pytest.UsageError(f"--parity-cases {cases}: no such case file")
    # collect the case file even where the run's own paths do not reach it
    args = [Path(a.split("::")[0]).resolve() for a in config.args]
    if not any(cases == a or a in cases.parents for a in args):
        config.args.append(str(cases))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    harness = parent.config.stash[_HARNESS]
    if harness.cases_file is not None and file_path.resolve() == harness.cases_file:
        return ParityCaseFile.from_parent(parent, path=file_path)
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("live_r") is not None:
        from .r_bridge import r_available

        ok, why = r_available()
        if not ok:
            pytest.skip(f"live R unavailable: {why}")


class _Harness:
    """The session's parity state: settings, the known cases, and, built on first use, the
    source, the candidate and the cached references and rows."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.cases_file = _setting(config, "--parity-cases", "parity_cases")
        self.fixtures_dir = _setting(config, "--parity-fixtures-dir", "parity_fixtures_dir")
        self.timeout = check_timeout(config.getoption("--parity-r-timeout"))
        self._cases: dict[str, Case] | None = None
        self._source: ReferenceSource | None = None
        self._candidate: Candidate | None = None
        self._refs: dict[str, CaseReference] = {}
        self._rows: dict[tuple[str, str], list[Row]] = {}

    def file_cases(self) -> list[Case]:
        from .casefile import load_cases

        return [] if self.cases_file is None else load_cases(self.cases_file)

    def case(self, name: str) -> Case:
        """A case of the case file, else of the corpus (UnknownCaseError)."""
        from .cases import get_case

        if self._cases is None:
            self._cases = {c.name: c for c in self.file_cases()}
        return self._cases[name] if name in self._cases else get_case(name)

    def source(self) -> ReferenceSource:
        from .sources import make_source

        if self._source is None:
            try:
                self._source = make_source(self.config.getoption("--parity-source"),
                                           self.fixtures_dir, self.timeout)
            except RUnavailableError as exc:
                pytest.skip(f"live R unavailable: {exc}")
        return self._source

    def candidate(self) -> Candidate:
        from .cli import choose_candidate

        if self._candidate is None:
            try:
                self._candidate = choose_candidate(self.config.getoption("--parity-candidate"),
                                                   self.source(), self.timeout)
            except ParityError as exc:
                pytest.skip(f"candidate unavailable: {exc}")
        return self._candidate

    def reference(self, name: str) -> CaseReference:
        if name not in self._refs:
            self._refs[name] = self.source().reference(self.case(name))
        return self._refs[name]

    def rows(self, name: str, variant: object) -> list[Row]:
        from .runner import compare_variant

        label = self.case(name).variant(variant).label  # type: ignore[arg-type]
        key = (name, label)
        if key not in self._rows:
            self._rows[key] = compare_variant(self.reference(name), label, self.candidate())
        return self._rows[key]


_HARNESS = pytest.StashKey[_Harness]()


class ParityCaseFile(pytest.File):
    """A case file: one test per case × variant × quantity."""

    def collect(self) -> Iterator[pytest.Item]:
        from .quantities import quantities

        harness = self.config.stash[_HARNESS]
        try:
            cases = harness.file_cases()
        except ParityError as exc:
            raise self.CollectError(str(exc)) from None
        for case in cases:
            for v in case.variants:
                for q in quantities(method=case.method):
                    yield ParityItem.from_parent(self, name=f"{case.name}-{v.label}-{q.name}",
                                                 case=case.name, variant=v.label,
                                                 quantity=q.name)


class ParityItem(pytest.Item):
    """One quantity of one case × variant, passing when the comparison passes."""

    def __init__(self, *, case: str, variant: str, quantity: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.case, self.variant, self.quantity = case, variant, quantity

    def runtest(self) -> None:
        rows = self.config.stash[_HARNESS].rows(self.case, self.variant)
        check_row(rows, self.quantity)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
                     ) -> str | Any:
        if isinstance(excinfo.value, (ParityError, AssertionError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"parity: {self.name}"


def check_row(rows: list[Row], quantity: str) -> None:
    """Pass, skip (with the note) or fail (AssertionError with the numbers) on the row of
    ``quantity``; a variant the candidate cannot fit is skipped as a whole."""
    unavailable = [r for r in rows if r.tier == "candidate"]
    if unavailable:
        pytest.skip(unavailable[0].note)
    found = [r for r in rows if r.quantity == quantity]
    assert len(found) == 1, f"expected one row for {quantity}, got {found}"
    row = found[0]
    if row.status == "skip":
        pytest.skip(row.note)
    assert row.status == "pass", (
        f"{row.test_id}: max |Δ| {row.max_abs}, |Δ|/bound {row.ratio}, bound {row.bound}; "
        f"{row.note}")


@pytest.fixture(scope="session")
def r_session() -> Any:
    from .r_bridge import session

    try:
        return session()
    except RUnavailableError as exc:
        pytest.skip(f"live R unavailable: {exc}")


@pytest.fixture(scope="session")
def parity_source(request: pytest.FixtureRequest) -> ReferenceSource:
    return request.config.stash[_HARNESS].source()


@pytest.fixture(scope="session")
def parity_reference(request: pytest.FixtureRequest) -> Callable[[str], CaseReference]:
    return request.config.stash[_HARNESS].reference


@pytest.fixture(scope="session")
def parity_candidate(request: pytest.FixtureRequest) -> Candidate:
    return request.config.stash[_HARNESS].candidate()


@pytest.fixture(scope="session")
def parity_rows(request: pytest.FixtureRequest) -> Callable[[str, object], list[Row]]:
    return request.config.stash[_HARNESS].rows
