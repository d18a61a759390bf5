"""Fuzzing the compiled core (glmm/csrc/): every entry point of ``glmm._core`` must reject a
bad argument with an exception, never crash the process.

Valid argument sets are captured from glmm's own calls on corpus fits (cbpp and mmmec: one
scalar term; VerbAgg: crossed terms; grouseticks: the sparse coupling block), or built here
where glmer does not call an entry point (``bfgs``).  Forked children then make many calls,
each with one or two arguments (or the argument count) mutated: None, wrong types, wrong
dtypes, byte orders and shapes, wrong lengths, empty, strided, Fortran-ordered and read-only
arrays, level codes out of range, NaN, infinities and huge values, sizes that overflow,
arrays aliasing other arguments, foreign capsules, broken objectives, and the index arrays a
crossed model was built from changed after it was built.  Each call must return or raise
TypeError or ValueError (MemoryError where a size asks for too much; whatever a planted
objective raises), and no child may die from a signal.

The run is deterministic: call i of seed s is the same everywhere, and a failure names it.
``GLMM_CORE_FUZZ_CALLS`` sets the number of calls (default 4000; e.g. 100000 for a long run)
and ``GLMM_CORE_FUZZ_SEED`` the seed.
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import resource
import signal
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import glmm
from glmm import compiled
from glmm.objectives import lmm_crossprod
from glmm.objectives.scalar_term import ScalarTermObjective
from glmm.optimize import bfgs
from parity import fixtures

core = compiled.core
pytestmark = pytest.mark.skipif(core is None, reason="glmm._core was not built")

#: every entry point of glmm._core (test_every_entry_point_is_fuzzed holds the list complete)
ENTRY_POINTS = ("scalar_model", "scalar_pirls", "scalar_gradient", "scalar_rx", "scalar_predict",
                "scalar_minimize", "bfgs", "crossed_model", "crossed_pirls", "crossed_gradient",
                "crossed_predict", "crossed_rx", "coupling_outer", "coupling_gather", "lmm_model",
                "lmm_classes", "lmm_evaluate", "lmm_solution", "lmm_minimize", "lmm_order",
                "lmm_gram", "block_model", "block_evaluate", "block_minimize", "fixed_checks")
#: the entry points that make a model's capsule, and the index arrays among their arguments
#: (the ones a model copies)
MODEL_MAKERS = {"scalar_model": lambda a: (a[5],),
                "crossed_model": lambda a: (a[5], (a[9],), tuple(a[11])),
                "lmm_model": lambda a: (a[2], a[3], a[5], a[6]),
                "lmm_classes": lambda a: (a[1], a[4]),
                "block_model": lambda a: (a[5],)}
CALLS = int(os.environ.get("GLMM_CORE_FUZZ_CALLS", "4000"))
SEED = int(os.environ.get("GLMM_CORE_FUZZ_SEED", "12"))
WORKERS = 4
#: not a timing assertion: a child that hangs is killed and reported, instead of stalling the
#: suite (a normal run takes a few seconds)
HANG_SECONDS = 600
#: the share of calls to a crossed model's entry points made with a model whose index arrays
#: were changed after it was built
REBUILD = 0.15


class Planted(Exception):
    """Raised by a broken objective given to ``bfgs``: the core must pass it on."""


# -- valid argument sets ----------------------------------------------------------------------
def _copy(v: Any) -> Any:
    """A deep copy of an argument: arrays copied (as C-contiguous), tuples element by element;
    capsules and callables shared."""
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, tuple):
        return tuple(_copy(e) for e in v)
    return v


@contextmanager
def _recording(calls: dict[str, list[tuple]], models: dict[int, tuple], keep: int
               ) -> Iterator[None]:
    """While active, the first ``keep`` calls of each entry point are recorded into
    ``calls`` (their arguments as passed, copied), and each model's arguments into
    ``models`` (the maker and them) by its capsule's id (the capsules kept alive in ``calls``)."""
    originals = {name: getattr(core, name) for name in ENTRY_POINTS}
    seen: Counter[str] = Counter()

    def recorder(name: str, fn: Callable) -> Callable:
        def call(*args: Any) -> Any:
            copied = _copy(args)
            out = fn(*args)
            if name in MODEL_MAKERS:   # every model, for the calls that take it
                models[id(out)] = (name, copied)
                calls.setdefault("_capsules", []).append((out,))
            if seen[name] < keep:
                seen[name] += 1
                calls.setdefault(name, []).append(copied)
            return out
        return call

    try:
        for name, fn in originals.items():
            setattr(core, name, recorder(name, fn))
        yield
    finally:
        for name, fn in originals.items():
            setattr(core, name, fn)


def _fit(case: str, nagq: int) -> glmm.GlmerFit:
    ref = fixtures.load(case)
    c = ref.case
    return glmm.glmer(c.formula, ref.data.to_pandas(), family=glmm.make_family(c.family, c.link),
                      nAGQ=nagq)


def _quadratic(x: list[float]) -> tuple[float, list[float]]:
    """F = Σ (i + 1)(xᵢ − 1)² + x₀x₁ (for any length), in plain Python (no BLAS in a forked
    child)."""
    f = sum((i + 1) * (v - 1.0) ** 2 for i, v in enumerate(x))
    g = [2.0 * (i + 1) * (v - 1.0) for i, v in enumerate(x)]
    if len(x) > 1:
        f += x[0] * x[1]
        g[0] += x[1]
        g[1] += x[0]
    return f, g


def _tiny_model() -> object:
    """A valid crossed_model of 4 observations: another model's capsule for the others'
    arrays."""
    codes = (np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    cells = tuple((c, np.arange(2), np.zeros(2, dtype=np.int64)) for c in codes)
    return core.crossed_model(0, True, np.array([0.0, 1, 1, 0]), np.ones(4), None, codes,
                              (None, None), (2, 2), 1, np.zeros(4, dtype=np.int64),
                              np.ones((1, 1)), cells)


@contextmanager
def _dense_cost(cost: float, classes: float = np.inf, supernodal: bool = False
                ) -> Iterator[None]:
    """lmm_crossprod's choice of the dense or the sparse coupling block, or of the classes
    form (a scalar term 1), forced one way; with ``supernodal``, a sparse block's S̄ factored
    by supernodes (lmm_order, lmm_model's last argument) whatever its order."""
    names = ("DENSE_COST", "CLASSES_COST", "SUPERNODAL_MIN_ORDER", "SUPERNODAL_RATIO")
    saved = [getattr(lmm_crossprod, k) for k in names]
    lmm_crossprod.DENSE_COST, lmm_crossprod.CLASSES_COST = cost, classes
    if supernodal:
        lmm_crossprod.SUPERNODAL_MIN_ORDER, lmm_crossprod.SUPERNODAL_RATIO = 0, np.inf
    try:
        yield
    finally:
        for k, v in zip(names, saved, strict=True):
            setattr(lmm_crossprod, k, v)


def capture() -> tuple[dict[str, list[tuple]], dict[int, tuple]]:
    """Valid argument sets for every entry point, and crossed models' arguments by capsule."""
    calls: dict[str, list[tuple]] = {}
    models: dict[int, tuple] = {}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the corpus fits' own (singular fits and the like)
        for case, nagq in (("cbpp", 0), ("cbpp", 1), ("cbpp", 5), ("mmmec", 1), ("verbagg", 0),
                           ("verbagg", 1), ("grouseticks", 1)):
            with _recording(calls, models, keep=2):
                fit = _fit(case, nagq)
            if len(fit.model.terms) == 1:   # the scalar term's warm start, u-only PIRLS and R_X
                for q in (0, 1):
                    obj = ScalarTermObjective(fit.model, q, fit.beta)
                    params = fit.theta if q == 0 else np.r_[fit.theta, fit.beta]
                    with _recording(calls, models, keep=8):
                        obj.evaluate(params)
                        theta, beta = obj.split(params * 1.01)
                        obj._predict(obj.last[1], theta, beta)
                        obj._pirls(theta, fit.beta, np.zeros(fit.model.q), joint=False)
                        obj.rx(obj.last[1])
    # lmer: one vector term (every level's block dense), nested and crossed scalar terms,
    # forced through the sparse and the dense coupling block (S̄ whole, or by supernodes) and
    # the classes form; lmm_evaluate by hand (lmer's fits call lmm_minimize)
    for case, cost, classes, sn in (("sleepstudy", 0.1, np.inf, False),
                                    ("pastes", np.inf, np.inf, False),
                                    ("pastes", np.inf, np.inf, True),
                                    ("penicillin", 0.0, np.inf, False),
                                    ("penicillin", np.inf, 0.0, False)):
        ref = fixtures.load(case)
        c = ref.case
        with _recording(calls, models, keep=2), _dense_cost(cost, classes, sn):
            fit = glmm.lmer(c.formula, ref.data.to_pandas(), REML=False)
            obj = fit.objective_fn
            core.lmm_evaluate(obj._capsule, fit.theta * 1.1, np.zeros(len(fit.theta)))
            core.lmm_evaluate(obj._capsule, fit.theta, None)
    # one vector-valued term: the core's search (glmer) and block_evaluate by hand, F₁ and F₀
    with _recording(calls, models, keep=2):
        fit = _fit("contraception-slope", 1)
        m = fit.model
        capsule = core.block_model(*m.response.core_args, m.terms[0].codes,
                                   np.ascontiguousarray(m.terms[0].Xi), m.terms[0].nlevels,
                                   m.terms[0].p, np.ascontiguousarray(m.X), m.p, m.offset)
        aic = float(m.response.aic_constant)
        core.block_evaluate(capsule, np.eye(m.p), np.zeros(m.p), None, aic,
                            np.r_[fit.theta, fit.beta], np.zeros(m.ntheta + m.p))
        core.block_evaluate(capsule, None, None, fit.beta, aic, fit.theta, np.zeros(m.ntheta))
    calls["bfgs"] = [
        (_quadratic, np.zeros(3), np.zeros(3), None, None, bfgs.GTOL, bfgs.DTOL, bfgs.XTOL,
         bfgs.MAX_ITER),
        (_quadratic, np.full(3, 0.5), np.array(_quadratic([0.5] * 3)[1]),
         _quadratic([0.5] * 3)[0], bytes([0, 1, 1]), bfgs.GTOL, bfgs.DTOL, bfgs.XTOL, 50)]
    calls["_capsules"] = [*calls.get("_capsules", []), (_tiny_model(),),
                          (core.scalar_model(0, True, np.array([0.0, 1, 1]), np.ones(3), None,
                                             np.array([0, 1, 1]), None, 2, 1, np.ones((3, 1)),
                                             np.zeros(3)),)]
    return calls, models


# -- mutations ------------------------------------------------------------------------------
_INTS = (-1, -2, 0, 1, 2, 7, 2**31, 2**32 + 3, 2**60, 2**61 + 30, 2**62, 2**63 - 1, 2**63,
         2**64 + 1, 2**70, -(2**63))
_FLOATS = (float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 5e-324, 0.0, -0.0, 1e20)
_JUNK = (None, "abc", b"", [], [1.0, 2.0], {}, object(), 1.5, 3, True, np.float64(2.0), 10**400)


def _arrays(v: Any) -> Iterator[np.ndarray]:
    """The arrays among an argument list (into tuples)."""
    if isinstance(v, np.ndarray):
        yield v
    elif isinstance(v, (tuple, list)):
        for e in v:
            yield from _arrays(e)


def _mutate_array(a: np.ndarray, rng: np.random.Generator, call: tuple) -> tuple[str, Any]:
    integer = a.dtype.kind == "i"
    ops = ["None", "dtype", "longer", "shorter", "empty", "reshaped", "strided", "read-only",
           "values", "values", "values", "list", "junk", "alias", "alias", "view", "byteswapped",
           "structured", "bytes", "3x"]
    if a.ndim == 2:
        ops += ["transposed", "fortran"]
    op = ops[rng.integers(len(ops))]
    flat = a.ravel()
    if op == "None":
        return op, None
    if op == "dtype":
        dt = ["float32", "int32", "int64", "float64", "complex128", "bool", "uint64",
              "float16", "int8"][rng.integers(9)]
        return f"as {dt}", a.astype(dt)
    if op == "longer":
        return op, np.append(flat, flat[:1] if flat.size else np.zeros(1, a.dtype)).astype(a.dtype)
    if op == "shorter":
        return op, flat[:-1].copy() if flat.size else np.zeros(1, a.dtype)
    if op == "empty":
        return op, np.empty((0,) * a.ndim, a.dtype)
    if op == "reshaped":
        return op, flat.reshape(1, -1) if a.ndim == 1 else flat.copy()
    if op == "strided":
        return op, np.repeat(a, 2, axis=-1)[..., ::2] if a.size else a[::-1]
    if op == "transposed":
        return op, np.ascontiguousarray(a.T)
    if op == "fortran":
        return op, np.asfortranarray(a)
    if op == "read-only":
        b = a.copy()
        b.setflags(write=False)
        return op, b
    if op == "values":
        b = a.copy()
        if not b.size or a.dtype not in (np.float64, np.int64):
            return "values (none to change)", b
        i = rng.integers(b.size)
        if integer:
            v = [-1, -(2**63), 2**62, 2**31, 10**9, int(b.max()) + 1, b.size,
                 int(b.max()) + 1000][rng.integers(8)]
        else:
            v = _FLOATS[rng.integers(len(_FLOATS))]
        b.flat[i] = v
        return f"[{i}] = {v}", b
    if op == "list":
        return op, a.tolist()
    if op == "junk":
        j = _JUNK[rng.integers(len(_JUNK))]
        return f"junk {j!r:.20}", j
    others = [b for b in _arrays(call) if b is not a]
    index = [b for b in others if b.dtype == np.int64]
    if op == "view" and index and rng.random() < 0.5:   # above all, an index array's memory
        others = index
    if op == "alias" and others:
        b = others[rng.integers(len(others))]
        return f"alias of another argument {b.dtype}{b.shape}", b
    if op == "view" and others:   # another argument's memory, reinterpreted to this shape
        b = others[rng.integers(len(others))].ravel()
        if b.dtype.itemsize == a.dtype.itemsize and b.size >= a.size:
            return f"view of another {b.dtype}{b.shape}", b[:a.size].view(a.dtype).reshape(a.shape)
    if op == "byteswapped":
        return op, a.byteswap().view(a.dtype.newbyteorder())
    if op == "structured":
        return op, a.view([("v", a.dtype)])
    if op == "bytes":
        return op, a.tobytes()
    return "3x longer", np.concatenate([flat] * 3)


def _mutate(v: Any, rng: np.random.Generator, call: tuple) -> tuple[str, Any]:
    """A wrong value in place of the argument v, and what it is."""
    if v is not None and rng.random() < 0.1:
        return "None", None
    if isinstance(v, np.ndarray):
        return _mutate_array(v, rng, call)
    if isinstance(v, tuple):
        op = rng.integers(5)
        if op == 0 or not v:
            return "tuple + 1", (*v, v[0] if v else None)
        if op == 1:
            return "tuple − 1", v[:-1]
        if op == 2:
            return "list", list(v)
        k = int(rng.integers(len(v)))
        desc, e = _mutate(v[k], rng, call)
        return f"[{k}] {desc}", (*v[:k], e, *v[k + 1:])
    if isinstance(v, (bool, np.bool_)):
        return "flag", (None, np.array([1, 2]), "yes", 2, 2.5, object())[rng.integers(6)]
    if isinstance(v, (int, np.integer)):
        if rng.random() < 0.3:
            return "junk", _JUNK[rng.integers(len(_JUNK))]
        r = rng.random()
        if r < 0.6:
            w = _INTS[rng.integers(len(_INTS))]
        elif r < 0.8:   # the same size in bytes, modulo 2⁶⁴ (8·2⁶¹ = 2⁶⁴)
            w = int(v) + 2**61
        else:
            w = int(v) + (-1, 1)[rng.integers(2)]
        return f"int {w}", w
    if isinstance(v, float):
        if rng.random() < 0.3:
            return "junk", _JUNK[rng.integers(len(_JUNK))]
        w = _FLOATS[rng.integers(len(_FLOATS))]
        return f"float {w}", w
    if v is None:
        return "for None", (np.zeros(int(rng.integers(0, 4))), 0.0, [0.0], "x",
                            np.zeros(int(rng.integers(0, 4)), dtype=np.int64))[rng.integers(5)]
    if callable(v):
        return _bad_objective(rng)
    if type(v).__name__ == "PyCapsule":
        return ("foreign capsule", datetime.datetime_CAPI) if rng.random() < 0.3 else (
            ("another model", _MODELS[rng.integers(len(_MODELS))]) if _MODELS else ("None", None))
    return "junk", _JUNK[rng.integers(len(_JUNK))]


def _bad_objective(rng: np.random.Generator) -> tuple[str, Any]:
    def raises(x: list) -> Any:
        raise Planted("planted")

    def arithmetic(x: list) -> Any:
        raise ZeroDivisionError("F undefined here")

    bad: list[tuple[str, Any]] = [
        ("not callable", 3), ("raises", raises), ("ArithmeticError", arithmetic),
        ("returns None", lambda x: None), ("returns a float", lambda x: 1.0),
        ("returns a 3-tuple", lambda x: (1.0, x, x)),
        ("returns (str, g)", lambda x: ("a", x)), ("returns (F, None)", lambda x: (1.0, None)),
        ("short gradient", lambda x: (1.0, x[:-1])), ("long gradient", lambda x: (1.0, x * 2)),
        ("NaN F", lambda x: (float("nan"), x)),
        ("inf gradient", lambda x: (0.0, [np.inf] * len(x))),
        ("string gradient", lambda x: (0.0, "ab"[: len(x)]))]
    # (not an F that steps run into a wall of: at the wall, steps shrink below rounding, F
    # stays put and each is accepted, as glmm.optimize.bfgs accepts them, so that a huge max_iter
    # runs for hours)
    return bad[rng.integers(len(bad))]


#: other models' capsules (both kinds), for the model argument of the entry points that take
#: one (set in the parent before forking)
_MODELS: list[object] = []


def _maker(name: str) -> str | None:
    """The entry point that makes the model an entry point takes as its first argument, if
    it takes one (lmm_model's or lmm_classes' capsule: either, for the lmm_ calls)."""
    kind = name.split("_")[0]
    maker = f"{kind}_model"
    takes = name not in MODEL_MAKERS and name not in ("lmm_order", "lmm_gram")   # no model
    return maker if maker in MODEL_MAKERS and takes else None


def mutated_call(calls: dict[str, list[tuple]], models: dict[int, tuple], seed: int, index: int
                 ) -> tuple[str, Callable[[], Any], str]:
    """Call ``index`` of ``seed``: (entry point, the call, what was mutated)."""
    rng = np.random.default_rng([seed, index])
    name = ENTRY_POINTS[index % len(ENTRY_POINTS)]
    bases = calls[name]
    base = bases[rng.integers(len(bases))]
    args = list(_copy(base))
    fn = getattr(core, name)
    maker, margs0 = models[id(base[0])] if _maker(name) else (None, ())
    if maker and rng.random() < REBUILD:   # the call's model built from mutated arguments
        margs = list(_copy(margs0))
        k = int(rng.integers(len(margs)))
        desc, margs[k] = _mutate(margs[k], rng, tuple(margs))

        def call() -> Any:
            args[0] = getattr(core, maker)(*margs)
            return fn(*args)
        return name, call, f"the model's arg {k}: {desc}"
    if maker and rng.random() < REBUILD:
        # the model rebuilt from copies of its arrays, whose index arrays are then changed in
        # place
        margs = _copy(margs0)
        capsule = getattr(core, maker)(*margs)
        targets = MODEL_MAKERS[maker](margs)
        k = int(rng.integers(len(targets)))
        arrays = [a for a in _arrays(targets[k]) if a.size]
        a = arrays[rng.integers(len(arrays))]
        i = int(rng.integers(a.size))
        a.flat[i] = (10**9, -1, 2**40)[rng.integers(3)]
        args[0] = capsule
        return name, lambda: fn(*args), f"{maker}'s index array {k} changed after"
    if rng.random() < 0.05:
        cut = int(rng.integers(len(args) + 2))
        args = args[:cut] if cut < len(args) else [*args, None]
        return name, lambda: fn(*args), f"{len(args)} arguments"
    changed = []
    for _ in range(1 if rng.random() < 0.8 else 2):
        k = int(rng.integers(len(args)))
        desc, args[k] = _mutate(args[k], rng, tuple(args))
        changed.append(f"arg {k}: {desc}")
    return name, lambda: fn(*args), "; ".join(changed)


# -- the children ---------------------------------------------------------------------------
def _limit_memory(extra: int = 2 << 30) -> None:
    """An address-space limit ``extra`` bytes above the child's current size: a size that asks
    for too much becomes a MemoryError rather than the kernel's OOM kill."""
    try:
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + extra, resource.getrlimit(
            resource.RLIMIT_AS)[1]))
    except (OSError, ValueError, StopIteration):   # not Linux: no limit
        pass


#: what a call may raise: the core's own errors, what an oversized request gives, and what a
#: planted objective raises (passed on by bfgs)
TYPED = {"TypeError", "ValueError", "MemoryError", "Planted"}


def _worker(calls: dict, models: dict, seed: int, indices: range, current: Any,
            conn: Any) -> None:
    _limit_memory()
    counts: Counter[str] = Counter()
    with np.errstate(all="ignore"):
        for i in indices:
            current.value = i
            name, call, _ = mutated_call(calls, models, seed, i)
            try:
                call()
                counts[f"{name}: returned"] += 1
            except Exception as exc:   # every ordinary one, counted
                counts[f"{name}: {type(exc).__name__}"] += 1
            except BaseException as exc:   # not ordinary: reported
                counts[f"{name}: BaseException {type(exc).__name__}"] += 1
    current.value = -1
    conn.send(dict(counts))
    conn.close()


def _describe(calls: dict, models: dict, seed: int, i: int) -> str:
    if i < 0:
        return "the end"
    try:
        name, _, desc = mutated_call(calls, models, seed, i)
    except Exception as exc:   # a broken mutation, named
        return f"call {i}, whose mutation failed: {exc!r}"
    return f"call {i}: {name}({desc})"


def _receive(conn: Any) -> Any:
    """What a child sent, or None if it sent nothing (died, or hung for HANG_SECONDS)."""
    try:
        return conn.recv() if conn.poll(HANG_SECONDS) else None
    except EOFError:
        return None


def run_fuzz(calls: dict, models: dict, seed: int, total: int, workers: int = WORKERS,
             max_failures: int = 20) -> tuple[Counter[str], list[str]]:
    """``total`` mutated calls in ``workers`` forked children: the outcomes' counts, and a
    line for each call at which a child died or hung.  A child that dies is replaced by one
    that goes on from the next call (up to ``max_failures`` deaths in all)."""
    ctx = multiprocessing.get_context("fork")
    counts: Counter[str] = Counter()
    failures: list[str] = []
    pending = [range(w, total, workers) for w in range(workers)]
    while pending and len(failures) < max_failures:
        running = []
        for indices in pending:
            current = ctx.Value("q", -1)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker,
                               args=(calls, models, seed, indices, current, send))
            proc.start()
            send.close()
            running.append((indices, proc, recv, current))
        pending = []
        for indices, proc, recv, current in running:
            result = _receive(recv)
            proc.join(HANG_SECONDS)
            if proc.is_alive():
                proc.kill()
                proc.join()
            if result is not None and not proc.exitcode:
                counts.update(result)
                continue
            i = current.value
            what = _describe(calls, models, seed, i)
            if proc.exitcode and proc.exitcode < 0 and result is None:
                failures.append(f"killed by {signal.Signals(-proc.exitcode).name} at {what}")
            else:
                failures.append(f"hung or died (exit code {proc.exitcode}) at {what}")
            if i >= 0 and i != indices[-1]:   # the rest of this child's calls, in another
                pending.append(indices[indices.index(i) + 1:])
    return counts, failures


def in_child(fn: Callable[[], Any]) -> str:
    """fn() in a forked child: "returned", "<exception type>: <message>", or "killed by
    <signal>" (a crash in the core fails the test that asked, not the test run)."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def target() -> None:
        try:
            fn()
            send.send("returned")
        except Exception as exc:   # reported to the parent
            send.send(f"{type(exc).__name__}: {exc}")

    proc = ctx.Process(target=target)
    proc.start()
    send.close()
    result = _receive(recv)
    proc.join()
    if proc.exitcode and proc.exitcode < 0:
        return f"killed by {signal.Signals(-proc.exitcode).name}"
    return result if result is not None else f"exit code {proc.exitcode}"


# -- the tests ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def captured() -> tuple[dict, dict]:
    calls, models = capture()
    _MODELS[:] = [c for (c,) in calls.pop("_capsules")]
    return calls, models


def test_every_entry_point_is_fuzzed(captured: tuple[dict, dict]) -> None:
    calls, models = captured
    assert {n for n in dir(core) if callable(getattr(core, n))} == set(ENTRY_POINTS)
    assert set(calls) == set(ENTRY_POINTS)
    for name, sets in calls.items():   # the captured sets are valid: each returns
        for args in sets:
            with np.errstate(all="ignore"):
                getattr(core, name)(*_copy(args))
    assert all(id(args[0]) in models for name in ENTRY_POINTS if _maker(name)
               for args in calls[name])


def test_no_mutated_call_crashes_the_core(captured: tuple[dict, dict]) -> None:
    calls, models = captured
    counts, failures = run_fuzz(calls, models, SEED, CALLS)
    assert not failures, "\n".join(failures)
    assert sum(counts.values()) == CALLS
    untyped = {k: v for k, v in counts.items()
               if k.split(": ")[1] not in TYPED | {"returned"}}
    assert not untyped, f"calls that raised another exception: {untyped}"
    by_outcome = Counter(k.split(": ")[1] for k in counts.elements())
    print(f"\n{CALLS} mutated calls (seed {SEED}):", dict(by_outcome))
    for name in ENTRY_POINTS:   # every entry point was called, and refused most mutations
        assert counts[f"{name}: TypeError"] + counts[f"{name}: ValueError"] > 0, name
