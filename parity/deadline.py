"""Run a call under a time limit, in a forked child that is killed when the limit passes.

rpy2 runs R inside this process, and R looks at its own time limit (``setTimeLimit``) only
at its interrupt points: a ``Sys.sleep``, a long compiled loop or a ``system()`` call runs
past it.  So each timed R call runs in a child made by ``fork()``: the child inherits the
running R session (as R's own ``parallel::mcparallel`` does), makes the call and sends back
its result, pickled, through a pipe.  When the limit passes, the child's whole process group
(R and anything R started) is killed and :class:`~parity.errors.RTimeoutError` is raised.
The parent's R is never touched by the call, so it stays usable after a timeout.

Results must pickle; an exception raised by the call is raised again in the parent.
Where ``fork()`` does not exist the call runs in this process, without a limit.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import RFitError, RTimeoutError

T = TypeVar("T")

#: The default limit for one R call (building a case's data, one fit, one set of probes), in
#: seconds.  The corpus's slowest call takes a few seconds; 300 s leaves room for slow
#: machines and still ends a hung call within a run's patience.
DEFAULT_R_TIMEOUT = 300.0


def check_timeout(seconds: float | None) -> float | None:
    """``seconds`` as a float, None (or 0) for no limit; ValueError if negative or not finite."""
    if seconds is None or seconds == 0:
        return None
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"r_timeout: {seconds!r} is not a number of seconds") from None
    if not (s > 0 and s != float("inf")):
        raise ValueError(f"r_timeout: {seconds!r} must be a positive, finite number of seconds "
                         "(0 or None for no limit)")
    return s


def call_with_deadline(fn: Callable[[], T], seconds: float | None, what: str) -> T:
    """``fn()``, run in a forked child that is killed after ``seconds`` (None: no limit, and
    no child).  ``what`` names the call in the timeout's message."""
    limit = check_timeout(seconds)
    if limit is None or not hasattr(os, "fork"):
        return fn()
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _child(fn, read_end, write_end)
    os.close(write_end)
    try:
        os.setpgid(pid, pid)  # also done in the child; whichever runs first
    except OSError:
        pass
    payload = None
    try:
        payload = _read_until(read_end, time.monotonic() + limit)
    finally:
        os.close(read_end)
        _reap(pid, kill=payload is None)
    if payload is None:
        raise RTimeoutError(f"{what} did not finish within {limit:g} s (the R time limit, "
                            "--r-timeout); R was stopped. Raise the limit if the call is "
                            "just slow.")
    try:
        status, value = pickle.loads(payload)
    except Exception:  # nothing, or a partial answer: the child died while answering
        raise RFitError(f"{what}: the R process died without an answer (a crash in R or in "
                        "compiled code it called)") from None
    if status == "ok":
        return value
    raise value


def _child(fn: Callable[[], object], read_end: int, write_end: int) -> None:
    code = 0
    try:
        os.close(read_end)
        os.setpgid(0, 0)  # its own group, so that a timeout also ends what R started
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        # R's console output goes through Python's sys.stdout and sys.stderr, which may be a
        # progress bar's proxy whose lock another thread of the parent held at the fork:
        # write straight to the file descriptors instead
        sys.stdout = open(1, "w", closefd=False, buffering=1)
        sys.stderr = open(2, "w", closefd=False, buffering=1)
        try:
            payload = pickle.dumps(("ok", fn()))
        except BaseException as exc:  # sent to the parent, which raises it
            payload = _pickled_error(exc)
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _pickled_error(exc: BaseException) -> bytes:
    try:
        payload = pickle.dumps(("error", exc))
        pickle.loads(payload)
        return payload
    except Exception:
        return pickle.dumps(("error", RFitError(f"{type(exc).__name__}: {exc}")))


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Everything written to ``fd`` until EOF, or None if the deadline passes first."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _reap(pid: int, kill: bool) -> None:
    """Wait for the child, killing its process group first if ``kill`` (a timeout, or an
    interrupt of the parent); then end what R started in that group and left running."""
    if kill:
        for send in (os.killpg, os.kill):
            try:
                send(pid, signal.SIGKILL)
                break
            except OSError:
                continue
    try:
        os.waitpid(pid, 0)  # without kill: the child has answered and is exiting
    except ChildProcessError:
        pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
