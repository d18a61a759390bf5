"""The benchmark models of issue 4: their data and model specs, shared by scripts/bench.py
and the evaluation-count guard in tests/benchmarks/.

Corpus data come from the fixtures; simulated data are made here, seeded, so that every
engine and every run sees the same rows.  ``write_data`` stores a model's data as one .npz
(numeric columns as float64; factors as 0-based codes plus ``<name>__levels``), the format
every benchmark worker reads, whatever its language or environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import fixtures


@dataclass(frozen=True)
class BenchModel:
    name: str
    data: str        # "fixture:<case>" or "sim:<kind>"
    formula: str
    family: str
    link: str
    nAGQ: int
    repeat: int = 5  # timed fits per engine (after the warm-up: scripts/bench.py --warmup)
    #: the formula for the peers, where their syntax differs (PyPI glmm's cbind() takes two
    #: columns; mixedlm's parser has no cbind, scripts/bench.py rewrites it)
    peer_formula: str | None = None
    #: "glmer", or "lmer" (then ``family``/``link`` are gaussian/identity, nAGQ unused, and
    #: ``REML`` says which criterion)
    method: str = "glmer"
    REML: bool = True

    @property
    def variant(self) -> str:
        """The column the table shows: nAGQ for glmer, REML or ML for lmer."""
        if self.method == "lmer":
            return "REML" if self.REML else "ML"
        return str(self.nAGQ)


def _lmm(name: str, data: str, formula: str, REML: bool, repeat: int) -> BenchModel:
    return BenchModel(name, data, formula, "gaussian", "identity", 0, repeat, method="lmer",
                      REML=REML)


_CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
_CBPP_PEER = "cbind(incidence, failures) ~ period + (1 | herd)"
_VERBAGG = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"


MODELS: tuple[BenchModel, ...] = (
    BenchModel("cbpp-0", "fixture:cbpp", _CBPP, "binomial", "logit", 0, 20, _CBPP_PEER),
    BenchModel("cbpp-1", "fixture:cbpp", _CBPP, "binomial", "logit", 1, 20, _CBPP_PEER),
    BenchModel("cbpp-25", "fixture:cbpp", _CBPP, "binomial", "logit", 25, 20, _CBPP_PEER),
    BenchModel("grouseticks-1", "fixture:grouseticks",
               "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
               "poisson", "log", 1),
    BenchModel("contraception-slope-1", "fixture:contraception-slope",
               "use ~ age + urban + livch + (urban | district)", "binomial", "logit", 1,
               peer_formula="usen ~ age + urban + livch + (urban | district)"),
    BenchModel("verbagg-0", "fixture:verbagg", _VERBAGG, "binomial", "logit", 0, 3,
               "r2n" + _VERBAGG[2:]),
    BenchModel("verbagg-1", "fixture:verbagg", _VERBAGG, "binomial", "logit", 1, 3,
               "r2n" + _VERBAGG[2:]),
    BenchModel("bernoulli-1e5", "sim:bernoulli-1e5", "y ~ x + (1 | g)", "binomial", "logit", 1,
               1),
    BenchModel("bernoulli-crossed-1e5", "sim:bernoulli-crossed-1e5", "y ~ x + (1 | g) + (1 | h)",
               "binomial", "logit", 1, 1),
    BenchModel("poisson-1e6", "sim:poisson-1e6", "y ~ x + (1 | g)", "poisson", "log", 1, 1),
    _lmm("lmer-sleepstudy-REML", "csv:sleepstudy.csv", "Reaction ~ Days + (Days | Subject)",
         True, 20),
    _lmm("lmer-penicillin-REML", "csv:Penicillin.csv",
         "diameter ~ 1 + (1 | plate) + (1 | sample)", True, 20),
    _lmm("lmer-insteval-ML", "csv:InstEval.csv.gz",
         "y ~ service + (1 | s) + (1 | d) + (1 | dept)", False, 1),
    _lmm("lmer-crossed-1e6-REML", "sim:lmm-crossed-1e6", "y ~ x + (1 | g) + (1 | h)", True, 1),
)
BY_NAME = {m.name: m for m in MODELS}


# -- data --------------------------------------------------------------------------------
def simulate(kind: str) -> dict[str, np.ndarray]:
    """Deterministic simulated data (seeded): factors as 0-based codes, named "g", "h"."""
    rng = np.random.default_rng(20261125)
    if kind in ("bernoulli-1e5", "bernoulli-crossed-1e5"):
        n, ng, nh = 100_000, 5_000, 200
        g = rng.permutation(np.arange(n) % ng)
        h = rng.integers(0, nh, n)
        x = rng.normal(size=n)
        eta = -0.5 + 0.8 * x + rng.normal(0, 0.8, ng)[g]
        if kind == "bernoulli-crossed-1e5":
            eta += rng.normal(0, 0.5, nh)[h]
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
        return {"y": y, "x": x, "g": g, "h": h}
    if kind == "poisson-1e6":
        n, ng = 1_000_000, 10_000
        g = rng.permutation(np.arange(n) % ng)
        x = rng.normal(size=n)
        eta = 0.3 + 0.4 * x + rng.normal(0, 0.5, ng)[g]
        return {"y": rng.poisson(np.exp(eta)).astype(float), "x": x, "g": g}
    if kind == "lmm-crossed-1e6":   # two crossed factors of 1e4 and 100 levels
        n, ng, nh = 1_000_000, 10_000, 100
        g = rng.permutation(np.arange(n) % ng)
        h = rng.integers(0, nh, n)
        x = rng.normal(size=n)
        y = (1.0 + 0.5 * x + rng.normal(0, 0.7, ng)[g] + rng.normal(0, 0.4, nh)[h]
             + rng.normal(size=n))
        return {"y": y, "x": x, "g": g, "h": h}
    raise ValueError(f"unknown simulation {kind!r}")


#: where the "csv:" data live (lme4's data sets, written by tests/data/lmm/lme4_reference.R)
LMM_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "lmm"
#: their factors (R's factor columns; the level order does not change a criterion)
LMM_FACTORS = {"sleepstudy.csv": ("Subject",), "Penicillin.csv": ("plate", "sample"),
               "InstEval.csv.gz": ("s", "d", "service", "dept")}


def write_data(model: BenchModel, path: Path) -> None:
    """One .npz: numeric columns as float64; factors as '<name>' codes + '<name>__levels'."""
    arrays: dict[str, np.ndarray] = {}
    if model.data.startswith("fixture:"):
        ds = fixtures.load(model.data.split(":", 1)[1]).data
        for c in ds.columns:
            if c.kind == "factor":
                if any(v is None for v in c.values):
                    raise ValueError(f"{model.name}: NA in factor {c.name}")
                arrays[c.name] = np.asarray(c.values, dtype=np.int64)
                arrays[c.name + "__levels"] = np.asarray(c.levels, dtype=str)
            else:
                arrays[c.name] = np.asarray([np.nan if v is None else v for v in c.values],
                                            dtype=float)
        # the peer's syntax: cbind() of two columns, and a numeric 0/1 binary response
        if {"incidence", "size"} <= set(arrays):
            arrays["failures"] = arrays["size"] - arrays["incidence"]
        for factor in ("r2", "use"):   # levels N, Y: success is Y
            if factor in arrays:
                arrays[factor + "n"] = (arrays[factor] == 1).astype(float)
    elif model.data.startswith("csv:"):
        file = model.data.split(":", 1)[1]
        df = pd.read_csv(LMM_DATA / file, dtype=str)
        for c in df.columns:
            if c in LMM_FACTORS.get(file, ()):
                cat = pd.Categorical(df[c])
                arrays[c] = np.asarray(cat.codes, dtype=np.int64)
                arrays[c + "__levels"] = np.asarray(cat.categories, dtype=str)
            else:
                arrays[c] = df[c].astype(float).to_numpy()
    else:
        for name, v in simulate(model.data.split(":", 1)[1]).items():
            if v.dtype.kind in "iu":
                arrays[name] = v.astype(np.int64)
                arrays[name + "__levels"] = np.asarray([str(i + 1) for i in range(v.max() + 1)])
            else:
                arrays[name] = v
    np.savez(path, **arrays)


def load_frame(path: str | Path) -> pd.DataFrame:
    """The .npz of ``write_data`` as a DataFrame with Categorical factors."""
    z = np.load(path)
    cols = {}
    for name in z.files:
        if name.endswith("__levels"):
            continue
        if name + "__levels" in z.files:
            cols[name] = pd.Categorical.from_codes(z[name], categories=list(z[name + "__levels"]))
        else:
            cols[name] = z[name]
    return pd.DataFrame(cols)




def frame(model: BenchModel) -> pd.DataFrame:
    """The model's data as a DataFrame (through the same .npz format the workers read)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        write_data(model, path)
        return load_frame(path)
