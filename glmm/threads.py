"""The BLAS thread pools during a fit.

A fit's dense blocks are small (q₂ up to a few hundred): a multi-threaded BLAS spends more
waking its threads than computing, and its threads spin on after a call; one thread also
makes the summation order, and so the optimiser's path, independent of the machine's core
count.  So a fit runs inside ``blas_limit(1)``.  Even InstEval's S̄ (order 1145), which two
threads factor in ~60% of one's time on a quiet 2-core machine, stays on one: OpenBLAS's
threads spin-wait, and with one core busy elsewhere a 2-thread dpotrf of order 1200 took
0.8 s against 0.016 s on one thread (measured), an InstEval fit 15 s against 0.76.

Two OpenBLAS libraries serve a fit: numpy's, loaded with numpy, and scipy's, the LAPACK of
:mod:`glmm.linalg.lapack` and of the compiled core's LMM, which is loaded on first use.
threadpoolctl limits only the pools loaded when the limit is set, so scipy's modules are
loaded through :func:`scipy_linalg`, which limits a pool they bring in as the limits active
at that moment would have (and restores it as they exit).  Each limit also looks for new
pools at its entry when extension modules were imported since the last look (a look
scans every loaded library: 2–8 ms).

:func:`scipy_linalg` loads one of scipy.linalg's extension modules (its f2py LAPACK, its
Cython LAPACK and BLAS) without running scipy.linalg's ``__init__``, whose imports (numpy's
f2py and testing among them) take ~0.1 s, most of a small fit's process time; where that
fails, the ordinary import.  The routines are the same objects scipy.linalg.lapack exports.
Until scipy.linalg itself is imported, a one-shot meta path finder (:class:`_BindOnImport`)
waits for that import, whoever makes it, to make the modules loaded early the package's
attributes, as an ordinary import would have.  Until then those modules sit in sys.modules
without their parent package (``importlib.reload`` of one of them would fail).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
from types import ModuleType
from typing import Any

__all__ = ["blas_limit", "scipy_linalg"]

_lock = threading.RLock()
#: the BLAS pools found so far (a threadpoolctl ThreadpoolController), None before the first look
_pools: Any = None
#: the paths of the pools' libraries found so far
_known: set[str] = set()
#: len(sys.modules) at the last look, and the names seen by then: a pool is loaded only with
#: an extension module
_modules_seen = -1
_names_seen: set[str] = set()
#: the module the first look loads first: scipy's f2py LAPACK, which every fit with fixed
#: effects calls (glmm.linalg.lapack) and which brings scipy's BLAS pool
_FIRST = "scipy.linalg._flapack"
#: the active limits of each thread, outermost first
_local = threading.local()
#: scipy.linalg's extension modules loaded before scipy.linalg itself (see _extension)
_early: list[str] = []


def _frames() -> list[blas_limit]:
    frames = getattr(_local, "frames", None)
    if frames is None:
        frames = _local.frames = []
    return frames


def _limit(pools: Any, n: int, frame: blas_limit) -> None:
    """Set each pool (a threadpoolctl LibController) to n threads, as threadpoolctl's limit
    does, through the controllers directly: a pool already at n is left alone (a fit's
    limit then costs a few µs, not threadpoolctl's ~15)."""
    for pool in pools.lib_controllers:
        before = pool.get_num_threads()
        if before != n:
            pool.set_num_threads(n)
            if before is not None:   # a count it cannot read is not restored (threadpoolctl)
                frame.undo.append((pool, before))


def _new_extension() -> bool:
    """Whether an extension module was imported since the last look: a fit's BLAS pools
    (numpy's, scipy's) come with extension modules.  (A library that a pure-Python module
    loads through ctypes is found at the next look after an extension module's import; no
    fit calls one.)"""
    global _modules_seen
    if len(sys.modules) == _modules_seen:
        return False
    _modules_seen = len(sys.modules)
    new = [m for name, m in list(sys.modules.items()) if name not in _names_seen]
    _names_seen.update(sys.modules)
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return any(str(getattr(m, "__file__", None) or "").endswith(suffixes) for m in new)


def _look() -> None:
    """Find the BLAS pools loaded since the last look, where an extension module was
    imported since (a look scans every loaded library: ~7 ms on a small machine); limit each
    new one under every active limit of this thread in turn, so that each limit's exit
    restores what the one outside it set (the outermost: the pool's own count).  The first
    look loads scipy's LAPACK first (:data:`_FIRST`), so that one scan finds both pools."""
    global _pools
    if _pools is None and _FIRST not in sys.modules:
        _extension(_FIRST)
    if not _new_extension() and _pools is not None:
        return
    from threadpoolctl import ThreadpoolController

    _bind_early()
    found = ThreadpoolController().select(user_api="blas")
    new = [c for c in found.lib_controllers if c.filepath not in _known]
    _known.update(c.filepath for c in new)
    if _pools is None:
        _pools = found
    elif new:
        _pools.lib_controllers.extend(new)
    else:
        return
    if new and _frames():
        sub = found.select(filepath=[c.filepath for c in new])
        for frame in _frames():
            _limit(sub, frame.n, frame)


class blas_limit:   # (lower case: used as a function, `with blas_limit(1):`)
    """Limit the BLAS thread pools to ``n`` threads (``with blas_limit(n):``), and restore
    them at the exit.  Limits nest; a pool loaded inside one through :func:`scipy_linalg` is
    limited too.  The pools are the process's: two threads inside limits at once restore
    them in the order they exit (as threadpoolctl's own limits do).  Each limit is entered
    once; it keeps the (pool, count before) pairs its exit restores, the last one first.
    (A class, not a generator: a small fit enters one, and a generator's context manager
    costs several µs more.)"""

    __slots__ = ("_entered", "n", "undo")

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive thread count, got {n!r}")
        self.n = n
        self.undo: list[tuple[Any, int]] = []
        self._entered = False

    def __enter__(self) -> None:
        with _lock:
            if self._entered:   # its undo list is one entry's: a second would mix them up
                raise RuntimeError("a blas_limit is entered once: make a new one")
            self._entered = True
            _look()
            _limit(_pools, self.n, self)
            _frames().append(self)

    def __exit__(self, *exc: object) -> None:
        with _lock:
            _frames().remove(self)
            undo, self.undo = self.undo, []
            for pool, before in reversed(undo):
                pool.set_num_threads(before)


def scipy_linalg(module: str | None = None) -> ModuleType:
    """scipy.linalg (``module`` None), or its extension module ``module`` ("_flapack",
    "cython_lapack", "cython_blas") alone, loaded on first use; the BLAS pool it loads is
    limited as the active :func:`blas_limit` limits the others."""
    name = "scipy.linalg" if module is None else f"scipy.linalg.{module}"
    mod = sys.modules.get(name)
    if mod is None:
        with _lock:
            mod = _extension(name) if module is not None else importlib.import_module(name)
            _look()
    return mod


def _extension(name: str) -> ModuleType:
    """The extension module ``name`` of scipy.linalg, loaded from its file where scipy.linalg
    is not loaded yet (nor, then, scipy's own ``__init__``, 2–3 ms of version checks):
    registered under its own name, it is the module a later ``import scipy.linalg`` takes.
    Anything unexpected (no such file, a scipy that needs its ``__init__`` to load its
    libraries) falls back to the ordinary import."""
    if name in sys.modules or "scipy.linalg" in sys.modules:
        _bind_early()
        return importlib.import_module(name)
    try:
        scipy = sys.modules.get("scipy")
        top = scipy.__spec__ if scipy is not None else importlib.util.find_spec("scipy")
        if top is None or not top.submodule_search_locations:
            raise ImportError("scipy is not a package on sys.path")
        where = [os.path.join(d, "linalg") for d in top.submodule_search_locations]
        spec = importlib.machinery.PathFinder.find_spec(name, where)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            raise ImportError(f"no extension module {name}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:   # no half-made module stays behind
            sys.modules.pop(name, None)
            raise
        _early.append(name)
        if not any(isinstance(f, _BindOnImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _BindOnImport())
        return mod
    except ImportError:
        return importlib.import_module(name)   # through scipy.linalg's __init__


def _bind_early() -> None:
    """Once scipy.linalg is loaded, make the modules loaded before it its attributes, as the
    import system does for a submodule it loads itself."""
    with _lock:
        package = sys.modules.get("scipy.linalg")
        while package is not None and _early:
            name = _early.pop()
            setattr(package, name.rpartition(".")[2], sys.modules[name])


class _BindOnImport:
    """A meta path finder, installed while modules loaded early wait for their package: the
    import of scipy.linalg, whoever makes it, ends with :func:`_bind_early`, so that
    ``scipy.linalg.cython_lapack`` and the like are its attributes as after an ordinary
    import.  It finds nothing itself (the other finders find scipy.linalg, and it wraps their
    loader), stays until scipy.linalg is executed (a probe such as
    ``importlib.util.find_spec("scipy.linalg")`` leaves it in place) and leaves the module's
    own loader in place."""

    def __init__(self) -> None:
        self._finding = False

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "scipy.linalg" or self._finding:
            return None
        self._finding = True   # the other finders' spec, not this one's again
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenBind(spec.loader, self)
        return spec


class _ThenBind:
    """A loader that runs ``loader``, puts it back as the module's loader, binds the early
    modules and removes ``finder``."""

    def __init__(self, loader: Any, finder: _BindOnImport) -> None:
        self._loader, self._finder = loader, finder

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        _bind_early()
