"""Worker processes for ``-j N``: spread items over N fresh processes.

Each worker is started with ``spawn`` (a new interpreter, not a fork of this one), so each
has its own R session and its own engine, and none inherits this process's threads (a
progress bar's) or its R.  Nor R's environment: R's start-up puts its library path in
``LD_LIBRARY_PATH``, where a worker's Python could find another libpython than its own, so
the workers start with the values from before R (``parity.r_bridge.ENV_BEFORE_R``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_workers(fn: Callable[..., R], items: Sequence[T], jobs: int, *args: Any,
               initializer: Callable[..., None] | None = None,
               initargs: tuple[Any, ...] = ()) -> Iterator[tuple[int, R]]:
    """``(i, fn(items[i], *args))`` for every item, as each is done, computed in ``jobs``
    worker processes (each started by ``initializer(*initargs)``).  ``fn`` and its arguments
    must pickle; an exception ``fn`` raises is raised here.  Closing the iterator early
    cancels the items not yet started."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=max(1, min(jobs, len(items))), mp_context=context,
                               initializer=initializer, initargs=initargs)
    try:
        with _environment_before_r():  # the workers start in the first submits
            futures = {pool.submit(fn, item, *args): i for i, item in enumerate(items)}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _environment_before_r() -> Iterator[None]:
    from .r_bridge import ENV_BEFORE_R

    saved = {k: os.environ.get(k) for k in ENV_BEFORE_R}
    try:
        for k, v in ENV_BEFORE_R.items():
            _set(k, v)
        yield
    finally:
        for k, v in saved.items():
            _set(k, v)


def _set(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value
