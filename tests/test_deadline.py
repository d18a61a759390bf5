"""parity.deadline: a call in a forked child, killed when its time limit passes.

No R here: the calls are plain Python, so these run everywhere; tests/test_r_bridge.py runs
R's own long calls under the limit."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from parity.deadline import call_with_deadline, check_timeout
from parity.errors import RFitError, RTimeoutError


def test_returns_the_value_computed_in_a_child() -> None:
    parent = os.getpid()
    pid, value = call_with_deadline(lambda: (os.getpid(), {"a": [1.5, None]}), 30, "call")
    assert pid != parent and value == {"a": [1.5, None]}


def test_no_limit_runs_here() -> None:
    assert call_with_deadline(os.getpid, None, "call") == os.getpid()
    assert call_with_deadline(os.getpid, 0, "call") == os.getpid()


def test_exception_is_raised_again_in_the_parent() -> None:
    def fail() -> None:
        raise RFitError("R said no")

    with pytest.raises(RFitError, match="R said no"):
        call_with_deadline(fail, 30, "call")


def test_unpicklable_exception_becomes_rfiterror() -> None:
    class Local(Exception):  # defined in a function: pickle cannot find it
        pass

    def fail() -> None:
        raise Local("odd")

    with pytest.raises(RFitError, match="Local: odd"):
        call_with_deadline(fail, 30, "call")


def test_timeout_stops_the_child(tmp_path: Path) -> None:
    pid_file, marker = tmp_path / "pid", tmp_path / "woke"

    def sleepy() -> None:
        pid_file.write_text(str(os.getpid()))
        time.sleep(30)
        marker.touch()

    with pytest.raises(RTimeoutError, match=r"the slow call did not finish within 0\.5 s"):
        call_with_deadline(sleepy, 0.5, "the slow call")
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(int(pid_file.read_text()), 0)
    assert not marker.exists()


def test_child_that_dies_is_a_typed_error() -> None:
    with pytest.raises(RFitError, match="died without an answer"):
        call_with_deadline(lambda: os.kill(os.getpid(), signal.SIGKILL), 30, "call")


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "soon"])
def test_bad_limits_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="r_timeout"):
        check_timeout(bad)  # type: ignore[arg-type]
