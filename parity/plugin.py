"""The pytest plugin (registered through the ``pytest11`` entry point).

It gives any test suite:

- the marker ``live_r``: the test needs live R with lme4 and rpy2, and is skipped with the
  reason when they are missing;
- the options ``--parity-source`` (where references come from; default: the fixtures),
  ``--parity-candidate`` (what is compared; default: auto) and ``--parity-r-timeout``
  (the time limit of each live-R call, in seconds; 0 for none);
- the fixtures ``parity_reference`` (a function: case name -> CaseReference, cached for the
  session), ``parity_candidate``, ``parity_rows`` (a function: (case, nAGQ) -> comparison
  rows, cached) and ``r_session`` (the live R session, or a skip).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .candidates import CANDIDATES, Candidate
from .cases import get_case
from .compare import Row
from .deadline import DEFAULT_R_TIMEOUT, check_timeout
from .errors import ParityError, RUnavailableError
from .results import CaseReference
from .sources import SOURCES, ReferenceSource


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parity", "glmm vs lme4 parity")
    group.addoption("--parity-source", choices=SOURCES, default="fixtures",
                    help="reference source for parity tests (default: fixtures)")
    group.addoption("--parity-candidate", choices=("auto", *CANDIDATES), default="auto",
                    help="candidate for parity tests (default: auto)")
    group.addoption("--parity-r-timeout", type=float, default=DEFAULT_R_TIMEOUT,
                    metavar="SECONDS",
                    help="time limit of each live-R call in parity tests; a call that passes "
                         f"it fails its rows; 0 for none (default: {DEFAULT_R_TIMEOUT:g})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live_r: needs live R with lme4 and rpy2 (skipped with the reason when absent)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("live_r") is not None:
        from .r_bridge import r_available

        ok, why = r_available()
        if not ok:
            pytest.skip(f"live R unavailable: {why}")


def _r_timeout(config: pytest.Config) -> float | None:
    return check_timeout(config.getoption("--parity-r-timeout"))


@pytest.fixture(scope="session")
def r_session():
    from .r_bridge import session

    try:
        return session()
    except RUnavailableError as exc:
        pytest.skip(f"live R unavailable: {exc}")


@pytest.fixture(scope="session")
def parity_source(request: pytest.FixtureRequest) -> ReferenceSource:
    from .sources import make_source

    try:
        return make_source(request.config.getoption("--parity-source"),
                           r_timeout=_r_timeout(request.config))
    except RUnavailableError as exc:
        pytest.skip(f"live R unavailable: {exc}")


@pytest.fixture(scope="session")
def parity_reference(parity_source: ReferenceSource) -> Callable[[str], CaseReference]:
    cache: dict[str, CaseReference] = {}

    def get(name: str) -> CaseReference:
        if name not in cache:
            cache[name] = parity_source.reference(get_case(name))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def parity_candidate(request: pytest.FixtureRequest,
                     parity_source: ReferenceSource) -> Candidate:
    from .cli import choose_candidate

    try:
        return choose_candidate(request.config.getoption("--parity-candidate"), parity_source,
                                _r_timeout(request.config))
    except ParityError as exc:
        pytest.skip(f"candidate unavailable: {exc}")


@pytest.fixture(scope="session")
def parity_rows(parity_reference: Callable[[str], CaseReference],
                parity_candidate: Candidate) -> Callable[[str, int], list[Row]]:
    from .runner import compare_nagq

    cache: dict[tuple[str, int], list[Row]] = {}

    def get(name: str, nAGQ: int) -> list[Row]:
        key = (name, nAGQ)
        if key not in cache:
            cache[key] = compare_nagq(parity_reference(name), nAGQ, parity_candidate)
        return cache[key]

    return get
