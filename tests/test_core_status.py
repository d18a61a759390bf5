"""Every status the compiled core returns (``core.STATUS``, glmm/csrc/core.h), one test each: a
call that makes the core return it, and what it becomes in glmm (a PirlsError with the message
:data:`glmm.objectives.pirls.CORE_ERRORS` maps it to, MemoryError for NO_MEMORY).  Where the
numpy form of the same computation meets the same failure, its message is the same: the two
paths report through one set of messages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_core_fuzz import _limit_memory, in_child
from test_crossed_core import _crossed
from test_scalar_core import _model

from glmm import compiled, poisson
from glmm.objectives import pirls
from glmm.objectives.crossed import CrossedTerms
from glmm.objectives.model import GlmerModel
from glmm.objectives.pirls import CORE_ERRORS, PirlsError
from glmm.objectives.scalar_term import ScalarTermObjective

core = compiled.core
pytestmark = pytest.mark.skipif(core is None, reason="glmm._core was not built")

#: the statuses this file tests, one test each (test_every_status_is_tested holds it complete)
TESTED = ("OK", "START_NOT_FINITE", "SYSTEM_NOT_FINITE", "HALVING_FAILED", "NOT_CONVERGED",
          "RX_NOT_PD", "NO_MEMORY", "SCHUR_NOT_PD")


def test_every_status_is_tested() -> None:
    assert set(core.STATUS) == set(TESTED)
    # and the failures among them are mapped (OK is no failure; NO_MEMORY is MemoryError)
    assert set(CORE_ERRORS) == {core.STATUS[s] for s in TESTED} - {
        core.STATUS["OK"], core.STATUS["NO_MEMORY"]}


def _pair(m: GlmerModel, nagq: int = 1) -> tuple[ScalarTermObjective, ScalarTermObjective]:
    """The scalar-term objective in the core and in numpy."""
    beta = np.zeros(m.p)
    compiled_, numpy_ = (ScalarTermObjective(m, nagq, beta, compiled=c) for c in (True, False))
    assert compiled_.compiled and not numpy_.compiled
    return compiled_, numpy_


def _failure(m: GlmerModel, theta: float, status: str, joint: bool = False,
             u0: np.ndarray | None = None) -> None:
    """The core's PIRLS at θ returns ``status``, which the objective raises as PirlsError with
    CORE_ERRORS's message; numpy's PIRLS fails there with the same message."""
    obj, numpy_ = _pair(m)
    u = np.zeros(m.q) if u0 is None else u0
    code, _, _ = core.scalar_pirls(
        obj._capsule, theta, joint, m.offset + m.X @ np.zeros(m.p), u.copy(),
        np.zeros(m.p) if joint else None, *(np.empty(m.n) for _ in range(5)), np.empty(m.q),
        *((np.empty((m.q, m.p)), np.empty((m.q, m.p)), np.empty((m.p, m.p))) if joint
          else (None, None, None)))
    assert code == core.STATUS[status]
    assert CORE_ERRORS[code] == getattr(pirls, status)
    for o in (obj, numpy_):
        with np.errstate(all="ignore"), pytest.raises(PirlsError) as info:
            o._pirls(np.array([theta]), np.zeros(m.p), u, joint)
        assert str(info.value) == getattr(pirls, status)


def test_ok() -> None:
    m = _model("binomial")
    obj, _ = _pair(m)
    code, iterations, _ = core.scalar_pirls(
        obj._capsule, 0.5, False, m.offset + m.X @ np.zeros(m.p), np.zeros(m.q), None,
        *(np.empty(m.n) for _ in range(5)), np.empty(m.q), None, None, None)
    assert code == core.STATUS["OK"] == 0 and iterations > 0


def test_start_not_finite() -> None:
    # u₀ = NaN: P is NaN at the start
    _failure(_model("binomial"), 0.5, "START_NOT_FINITE", u0=np.full(15, np.nan))


def test_system_not_finite() -> None:
    # y = 1 throughout and θ = 1e308: the per-level sums θΣxs and θ²ΣWx² overflow, and
    # δu = ∞/∞ is NaN, while P at the start (η = o) is finite
    m = _model("binomial")
    _failure(dataclasses.replace(m, y=np.ones(m.n)), 1e308, "SYSTEM_NOT_FINITE")


def test_halving_failed() -> None:
    # counts of 1e15 from μ ≈ 1: the Newton step in η is ~1e14, and even 2⁻²⁰ of it makes
    # μ = e^η overflow, so no halving lowers P
    m = _model("poisson")
    m = dataclasses.replace(m, y=np.full(m.n, 1e15), family=poisson())
    _failure(m, 1.0, "HALVING_FAILED")


def test_not_converged() -> None:
    # y = 1 throughout with θ = 1e20: the penalty on b = θu is negligible, the mode lies far
    # out where μ is clamped at 1 − ε, and the Newton steps creep towards it without reaching
    # the decrement's tolerance in 100 iterations
    m = _model("binomial")
    _failure(dataclasses.replace(m, y=np.ones(m.n)), 1e20, "NOT_CONVERGED")


def test_rx_not_pd() -> None:
    # X with a column of zeros: XᵀWX − CᵀD⁻¹C has a zero pivot
    m = _model("binomial")
    m = dataclasses.replace(m, X=np.column_stack([np.ones(m.n), np.zeros(m.n)]))
    _failure(m, 0.5, "RX_NOT_PD", joint=True)
    # and R_X of a u-only mode (lme4's R_X at the optimum), by scalar_rx
    obj, _ = _pair(m)
    ev = obj.evaluate(np.array([0.5, 0.0, 0.0]))
    assert core.scalar_rx(obj._capsule, 0.5, ev.state.W, ev.state.D,
                          np.empty((2, 2))) == core.STATUS["RX_NOT_PD"]
    with pytest.raises(PirlsError) as info:
        obj.rx(ev)
    assert str(info.value) == pirls.RX_NOT_PD


def test_schur_not_pd() -> None:
    # crossed terms, X with a column of zeros: the joint factor's S̄ has a zero pivot
    m = _crossed("binomial")
    m = dataclasses.replace(m, X=np.column_stack([m.X[:, :2], np.zeros(m.n)]))
    terms = CrossedTerms.of(m)
    assert terms is not None
    theta = np.array([0.5, 0.5])
    with pytest.raises(PirlsError) as info:
        terms.pirls(theta, np.zeros(m.p), np.zeros(m.q), True)
    assert str(info.value) == pirls.SCHUR_NOT_PD == CORE_ERRORS[core.STATUS["SCHUR_NOT_PD"]]
    assert core.crossed_rx(terms._capsule, (0.5, 0.5), np.full(m.n, 0.25),
                           np.empty((m.p, m.p))) == core.STATUS["SCHUR_NOT_PD"]


def test_no_memory() -> None:
    # PIRLS's scratch refused by an address-space limit, in a forked child: the core returns
    # NO_MEMORY, raised as MemoryError.  Its per-level scratch (7 doubles a level, 280 MB for
    # 5e6 levels, most of them without observations) is above glibc's largest mmap threshold
    # (32 MB), so it always needs new address space, which the limit refuses
    n, nl = 12, 5_000_000
    y = (np.arange(n) % 2).astype(float)
    f = np.arange(n, dtype=np.int64) % 3
    model = core.scalar_model(0, True, y, np.ones(n), None, f, None, nl, 1, np.ones((n, 1)),
                              np.zeros(n))
    args = (model, 0.5, False, np.zeros(n), np.zeros(nl), None,
            *(np.empty(n) for _ in range(5)), np.empty(nl), None, None, None)
    assert core.scalar_pirls(*args)[0] == core.STATUS["OK"]

    def limited() -> None:
        _limit_memory(extra=32 << 20)
        core.scalar_pirls(*args)

    assert in_child(limited) == "MemoryError: "
