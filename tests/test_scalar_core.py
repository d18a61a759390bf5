"""The compiled core (glmm/csrc/) against the numpy forms of the same computations, which
are themselves checked against the general objective, central differences and brute-force
integration (test_engine_numerics.py); both against lme4 in the parity suite."""

from __future__ import annotations

import numpy as np
import pytest

import glmm
from glmm import compiled
from glmm.design.random import numeric_term
from glmm.objectives.model import GlmerModel
from glmm.objectives.pirls import PirlsError
from glmm.objectives.scalar_term import ScalarTermObjective
from parity import fixtures

CASES = ["cbpp", "cbpp-prop", "seed", "mmmec", "bacteria"]


def test_the_core_is_built() -> None:
    # the project's install (scripts/setup.sh, CI) has a C compiler; without the core every
    # scalar-term fit silently takes the slower numpy path
    assert compiled.core is not None, "glmm._core was not built"


def _case_model(case: str) -> tuple[GlmerModel, fixtures.CaseReference]:
    ref = fixtures.load(case)
    c = ref.case
    fit = glmm.glmer(c.formula, ref.data.to_pandas(), family=glmm.make_family(c.family, c.link),
                     nAGQ=0)
    return fit.model, ref


def _pair(m: GlmerModel, nagq: int, beta: np.ndarray
          ) -> tuple[ScalarTermObjective, ScalarTermObjective]:
    core = ScalarTermObjective(m, nagq, beta)
    numpy = ScalarTermObjective(m, nagq, beta, compiled=False)
    assert core.compiled and not numpy.compiled
    return core, numpy


def _assert_same(core: ScalarTermObjective, numpy: ScalarTermObjective, p: np.ndarray) -> None:
    ev_c, g_c = core._evaluate(p, gradient=True)
    ev_n, g_n = numpy._evaluate(p, gradient=True)
    assert g_c is not None and g_n is not None
    # the same converged PIRLS mode computed twice: the two may stop one iteration apart
    # (the last Newton decrement is at 1e-20·P, i.e. ‖δu‖ ~ 1e-10·√P), which leaves F at
    # rounding (~1e-14 relative), the mode at ~1e-9 and the gradient, a first derivative at
    # the mode, at ~1e-9 of its scale; a wrong formula is off by O(1)
    assert ev_c.objective == pytest.approx(ev_n.objective, rel=1e-12)
    np.testing.assert_allclose(ev_c.u, ev_n.u, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ev_c.beta, ev_n.beta, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ev_c.state.mu, ev_n.state.mu, rtol=1e-8, atol=0)
    np.testing.assert_allclose(g_c, g_n, rtol=0, atol=1e-8 * max(1.0, np.max(np.abs(g_n))))
    assert ev_c.drsum == pytest.approx(ev_n.drsum, rel=1e-12)
    assert ev_c.ldL2 == pytest.approx(ev_n.ldL2, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("which", ["nagq0", "nagq1", "agq"])
def test_core_equals_numpy_on_the_corpus(case: str, which: str) -> None:
    """F, the mode and the exact gradient at the fixture's probe points (the optimum and a
    point away from it), for nAGQ = 0, 1 and the case's quadrature."""
    m, ref = _case_model(case)
    nagq = {"nagq0": 0, "nagq1": 1, "agq": max(ref.case.nAGQ)}[which]
    for label in ("tight", "away"):
        p = ref.results[nagq].probes.by_label(label).params
        core, numpy = _pair(m, nagq, np.asarray(p)[m.ntheta:] if nagq else np.zeros(m.p))
        _assert_same(core, numpy, p)
        # R_X at the mode (the joint mode's own; the start's whitening for nAGQ ≥ 1)
        np.testing.assert_allclose(core.rx(core.last[1]), numpy.rx(numpy.last[1]),
                                   rtol=1e-9, atol=1e-12)
        # the warm start: the mode's first-order prediction at a nearby point, each from its
        # own last evaluation at p (whose modes agree to ~1e-9, as above)
        theta, beta = core.split(np.asarray(p, dtype=float) * 1.01)
        for a, b in zip(core._predict(core.last[1], theta, beta),
                        numpy._predict(numpy.last[1], theta, beta), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)


def _model(family: str, n: int = 300, nl: int = 15, slope: bool = False, weights: bool = False,
           scale: float = 1.0, extreme: float = 0.0, seed: int = 3) -> GlmerModel:
    """Simulated data with one scalar term; ``scale`` multiplies η, and ``extreme`` is the
    offset of the first five rows (beyond ±36: lme4's clamps act there)."""
    rng = np.random.default_rng(seed)
    g = np.r_[np.arange(nl), rng.integers(0, nl, n - nl)]
    z = rng.normal(size=n)
    x = rng.normal(size=n) if slope else np.ones(n)
    X = np.column_stack([np.ones(n), z])
    o = 0.1 * rng.normal(size=n)
    o[:5] = extreme
    eta = scale * (o + 0.3 * z + rng.normal(0, 0.8, nl)[g] * x)
    w = rng.integers(1, 5, n).astype(float) if weights else np.ones(n)
    y, fam, mustart = simulated_response(family, eta, w, rng)
    return GlmerModel(y, np.ones(n), w, o, X, (numeric_term(g, nl, x[:, None], slice(0, 1)),),
                      fam, mustart)


def simulated_response(family: str, eta: np.ndarray, w: np.ndarray, rng: np.random.Generator
                       ) -> tuple[np.ndarray, glmm.Family, np.ndarray]:
    """y drawn at the linear predictor η (binomial proportions of w trials, or Poisson
    counts, η capped at 12), its family (canonical link) and R's μ start."""
    if family == "poisson":
        y = rng.poisson(np.exp(np.minimum(eta, 12.0))).astype(float)
        return y, glmm.poisson(), y + 0.1
    y = rng.binomial(w.astype(int), 1.0 / (1.0 + np.exp(-eta))) / w
    return y, glmm.binomial(), (w * y + 0.5) / (w + 1.0)


@pytest.mark.parametrize(("family", "kw"), [
    ("binomial", {"slope": True}),                  # (0 + x | g), binary y
    ("binomial", {"weights": True}),                # proportions with prior weights
    ("poisson", {"slope": True, "weights": True}),  # y log y − y form
    ("poisson", {"scale": 4.0}),                    # counts up to e¹²: lme4's clamped form
])
@pytest.mark.parametrize("nagq", [0, 1, 7])
def test_core_equals_numpy_on_simulated_models(family: str, kw: dict, nagq: int) -> None:
    m = _model(family, **kw)
    args = m.response.core_args
    assert args is not None
    if family == "poisson":   # both of Poisson's deviance forms are exercised
        assert (args[4] is None) == ("scale" in kw)
    beta = np.array([0.2, 0.4])
    for theta in (0.3, 1.1, -0.7):
        core, numpy = _pair(m, nagq, beta)
        _assert_same(core, numpy, np.r_[theta, beta][:core.nparams])


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_core_equals_numpy_where_the_clamps_act(family: str) -> None:
    """Linear predictors beyond ±36, where lme4 clamps μ' (binomial) and μ (Poisson) at ε:
    the response pass switches to the clamped forms on the whole vector in both."""
    m = _model(family, extreme=-45.0 if family == "poisson" else 40.0)
    beta = np.array([0.2, 0.4])
    core, numpy = _pair(m, 1, beta)
    p = np.r_[0.5, beta]
    st = core.evaluate(p).state
    assert (st.mu.min() <= glmm.families.EPS if family == "poisson"
            else st.mu.max() >= 1.0 - glmm.families.EPS)   # a clamp acted
    _assert_same(core, numpy, p)


def test_core_failures_are_pirls_errors() -> None:
    m = _model("binomial")
    core, numpy = _pair(m, 1, np.array([0.2, 0.4]))
    u0 = np.full(m.q, np.nan)
    messages = []
    for obj in (core, numpy):
        with pytest.raises(PirlsError, match="not finite at the starting point") as info:
            obj._pirls(np.array([0.5]), np.array([0.2, 0.4]), u0, joint=False)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def _model_args(m: GlmerModel) -> list:
    """Valid arguments of the core's scalar_model for a simulated scalar-term model."""
    kind, binary, y, w, ylogy = m.response.core_args
    return [kind, binary, y, w, ylogy, m.terms[0].codes, None, m.q, m.p, np.ascontiguousarray(m.X),
            m.offset]


def _pirls_args(model: object, m: GlmerModel, joint: bool) -> list:
    """Valid arguments of the core's scalar_pirls for a scalar_model of ``m``."""
    n, nl, p = m.n, m.q, m.p
    return [model, 0.5, joint, m.offset + m.X @ np.zeros(p), np.zeros(nl),
            np.zeros(p) if joint else None, *(np.empty(n) for _ in range(5)), np.empty(nl),
            *((np.empty((nl, p)), np.empty((nl, p)), np.empty((p, p))) if joint
              else (None, None, None))]


def test_core_rejects_bad_arrays() -> None:
    m = _model("binomial")
    n, nl = m.n, m.q
    f = m.terms[0].codes
    x = np.ones(n)

    def model(**change: object) -> object:
        args = _model_args(m)
        for k, v in change.items():
            args[{"kind": 0, "f": 5, "x": 6}[k]] = v
        return compiled.core.scalar_model(*args)

    def pirls(u: np.ndarray | None = None) -> tuple:
        args = _pirls_args(model(x=x), m, False)
        if u is not None:
            args[4] = u
        return compiled.core.scalar_pirls(*args)

    assert pirls()[0] == 0
    with pytest.raises(ValueError, match=r"^u: expected 15 float64"):
        pirls(u=np.zeros(nl + 1))
    with pytest.raises(ValueError, match=r"^f: expected .* int64"):
        model(f=f.astype(np.int32))
    with pytest.raises(ValueError, match=r"^x: expected .* float64"):
        model(x=x.astype(np.float32))
    with pytest.raises(ValueError, match="level codes outside"):
        model(f=np.where(f == 0, nl, f))
    with pytest.raises(ValueError, match="unknown response kind 7"):
        model(kind=7)
    with pytest.raises(ValueError, match="not C-contiguous"):   # a strided view
        model(x=np.ones(2 * n)[::2])
    with pytest.raises(ValueError, match=r'^model: expected the PyCapsule "glmm._core.'
                                         r'ScalarModel" of scalar_model, got PyCapsule$'):
        compiled.core.scalar_pirls(*[compiled.core.crossed_model(*_tiny_crossed()),
                                     *_pirls_args(None, m, False)[1:]])


def _tiny_crossed() -> tuple:
    """A valid crossed_model's arguments (4 observations): another kind of capsule."""
    codes = (np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    cells = tuple((c, np.arange(2), np.zeros(2, dtype=np.int64)) for c in codes)
    return (0, True, np.array([0.0, 1, 1, 0]), np.ones(4), None, codes, (None, None), (2, 2), 1,
            np.zeros(4, dtype=np.int64), np.ones((1, 1)), cells)


def test_core_names_a_missing_x() -> None:
    # the model needs X (the gradient and joint PIRLS read it); the message names the argument
    # as the caller passes it
    m = _model("binomial")
    args = _model_args(m)
    args[9] = None
    with pytest.raises(TypeError, match=r"^X is required$"):
        compiled.core.scalar_model(*args)


def test_core_constants_are_pirls_constants() -> None:
    # the C loop stops and halves as glmm.objectives.pirls does
    from glmm.objectives import pirls
    assert (compiled.core.MAX_ITER, compiled.core.MAX_HALVINGS, compiled.core.DECREMENT_TOL) \
        == (pirls.MAX_ITER, pirls.MAX_HALVINGS, pirls.DECREMENT_TOL)


def test_core_refuses_what_crashed_it() -> None:
    """Arguments that made the core read or write outside its arrays before it checked them
    (found by test_core_fuzz; each call in a forked child, so that a crash fails this test
    alone): now a TypeError or ValueError naming the argument."""
    from test_core_fuzz import in_child
    m = _model("binomial")
    nl, p = m.q, m.p

    def pirls(joint: bool = True, model: dict[str, int] | None = None, **change: object) -> str:
        margs = _model_args(m)
        for k, v in (model or {}).items():
            margs[{"nlevels": 7, "p": 8}[k]] = v

        def call() -> None:
            args = _pirls_args(compiled.core.scalar_model(*margs), m, joint)
            for k, v in change.items():
                args[{"beta": 5, "eta": 6}[k]] = v
            compiled.core.scalar_pirls(*args)
        return in_child(call)

    assert pirls() == "returned" and pirls(joint=False) == "returned"
    # joint, beta None: TAKE(beta, …) let it through as optional
    assert pirls(beta=None) == "TypeError: beta is required"
    # sizes whose byte counts wrap modulo 2⁶⁴ (8·2⁶¹ = 2⁶⁴) matched the arrays' lengths
    assert pirls(joint=False, model={"nlevels": nl + 2**61}).startswith(
        "ValueError: nlevels: expected a size in [0, ")
    assert pirls(model={"p": p + 2**61}).startswith("ValueError: p: expected a size in [0, ")
    # an array the call writes over one the model holds: PIRLS wrote doubles into the offset
    assert pirls(eta=m.offset) == \
        "ValueError: eta shares memory with the model's o, and the call writes eta"


def test_core_model_copies_the_level_codes() -> None:
    # the model's level codes are a copy, checked once: a later change to the caller's array
    # (a code out of range) cannot reach it
    m = _model("binomial")
    args = _model_args(m)
    args[5] = args[5].copy()
    model = compiled.core.scalar_model(*args)
    before = compiled.core.scalar_pirls(*_pirls_args(model, m, True))
    args[5][:] = 10**9
    after = compiled.core.scalar_pirls(*_pirls_args(model, m, True))
    assert before[0] == 0 and after == before


def test_core_checks_shapes_not_only_lengths() -> None:
    # a (p, nlev) C or a flat X has the right number of values and the wrong layout: each
    # was read as if it had the right one
    m = _model("binomial")
    model = compiled.core.scalar_model(*_model_args(m))
    args = _pirls_args(model, m, True)
    args[12] = np.empty((m.p, m.q))
    with pytest.raises(ValueError, match=r"^C: expected a 15 × 2 float64 array, got shape \(2, 15"):
        compiled.core.scalar_pirls(*args)
    margs = _model_args(m)
    margs[9] = margs[9].ravel()
    with pytest.raises(ValueError, match=r"^X: expected a 300 × 2 float64 array, got shape \(600,"):
        compiled.core.scalar_model(*margs)
    args = _pirls_args(model, m, True)
    args[6] = np.empty(m.n).astype(">f8")   # big-endian
    with pytest.raises(ValueError, match=r"^eta: expected 300 float64 values"):
        compiled.core.scalar_pirls(*args)
    args = _pirls_args(model, m, True)
    args[4] = np.zeros(m.q)
    args[4].setflags(write=False)   # u is written
    with pytest.raises(ValueError, match=r"^u: expected a C-contiguous, writable float64 array"):
        compiled.core.scalar_pirls(*args)
    with pytest.raises(TypeError, match=r"^scalar_pirls: expected 15 arguments, got 14$"):
        compiled.core.scalar_pirls(*args[:-1])
    args = _pirls_args(model, m, True)
    args[1] = "0.5"
    with pytest.raises(TypeError, match=r"^theta: expected a float, got str$"):
        compiled.core.scalar_pirls(*args)


def test_every_core_status_has_its_message() -> None:
    # the statuses the core returns (glmm/csrc/core.h's STATUS) map to the PIRLS messages of the
    # same names, in one place (glmm.objectives.pirls.CORE_ERRORS); NO_MEMORY is raised as
    # MemoryError
    from glmm.objectives import pirls
    from glmm.optimize.bfgs import End
    failures = {name: code for name, code in compiled.core.STATUS.items()
                if name not in ("OK", "NO_MEMORY")}
    assert compiled.core.STATUS["OK"] == 0
    assert {code: getattr(pirls, name) for name, code in failures.items()} == pirls.CORE_ERRORS
    # and BFGS's ends are glmm.optimize.bfgs.End's
    assert compiled.core.BFGS_END == {e.name: e.value for e in End}
