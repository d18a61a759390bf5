"""Random GLMM problems for randomised parity against live R.

A :class:`Problem` is the structural description of one model and its data: the family and
link, the kind of response, the random-effects structure, the sizes, the effect sizes and
variance components, prior weights, an offset, nAGQ, and a seed.  :meth:`Problem.dataset`
draws the data from the seed with numpy, so the same problem always gives the same data,
and a shrinking search (hypothesis) can simplify the structure and the seed alike.
:func:`problems` is that search's strategy; it imports hypothesis only when called.

The model that generates the data is the model fitted:

    η = offset + β₀ + β₁x (+ βz for the factor z) + random effects,   μ = g⁻¹(η),

with x ~ N(0, 1) on a grid of 1/64, and the random effects normal with the drawn standard
deviations (and, for ``(x | g)``, the drawn correlation).  Sizes are kept small, so that
lme4 fits each problem in well under a second.

:func:`r_script` and :func:`python_script` print a problem's data inline with the glmer
call, ready to paste into R or Python.  Doubles are written in a form each language reads
back bit for bit (R's own parser is not correctly rounded for every decimal, so a double
whose exact decimal expansion is long is written in C99 hexadecimal, which R reads exactly).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import ndtr

from .cases import Case
from .dataset import Column, Dataset

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

#: (family, link) -> the kinds of response drawn for it
RESPONSES: dict[tuple[str, str], tuple[str, ...]] = {
    ("binomial", "logit"): ("binary", "proportion", "cbind"),
    ("binomial", "probit"): ("binary", "proportion", "cbind"),
    ("binomial", "cloglog"): ("binary", "proportion", "cbind"),
    ("poisson", "log"): ("count",),
    ("poisson", "sqrt"): ("count",),
    ("Gamma", "log"): ("positive",),
}

#: The random-effects structures, each as the bars of the formula.
STRUCTURES: dict[str, str] = {
    "scalar": "(1 | g)",
    "vector": "(x | g)",
    "uncorrelated": "(x || g)",
    "nested": "(1 | a/b)",
    "crossed": "(1 | g) + (1 | h)",
}

#: nAGQ values drawn; those above 1 only for the single scalar term, as lme4 allows.
NAGQ_VALUES: tuple[int, ...] = (1, 0, 2, 5, 9)

#: The largest data set drawn.  At 300 rows lme4's default and tight fits, and its probes,
#: take ~0.1–0.5 s together for these models.
MAX_ROWS = 300

#: Ranges of the linear predictor's intercept and slope, per (family, link): chosen so that
#: μ stays in the range where the family is informative (binomial means not all 0 or 1,
#: Poisson means from ~0.3 to ~50 at x = 0; η > 0 for the sqrt link, whose μ = η² is even).
EFFECTS: dict[tuple[str, str], tuple[tuple[float, float], tuple[float, float]]] = {
    ("binomial", "logit"): ((-2.0, 2.0), (-1.5, 1.5)),
    ("binomial", "probit"): ((-1.2, 1.2), (-0.9, 0.9)),
    ("binomial", "cloglog"): ((-2.0, 0.8), (-1.0, 1.0)),
    ("poisson", "log"): ((-1.0, 3.0), (-0.8, 0.8)),
    ("poisson", "sqrt"): ((1.0, 5.0), (-0.5, 0.5)),
    ("Gamma", "log"): ((-1.0, 3.0), (-1.0, 1.0)),
}

#: Largest random-effect standard deviations drawn (first and second component); the sqrt
#: link's are smaller, so that η stays positive.
MAX_SD: dict[str, tuple[float, float]] = {"sqrt": (0.6, 0.3)}
DEFAULT_MAX_SD: tuple[float, float] = (1.5, 1.0)


@dataclass(frozen=True)
class Problem:
    """One random GLMM problem: everything needed to draw its data and state its model.

    ``levels`` is (number of levels of g, 0) for the single-factor structures, (levels of a,
    levels of b within each a) for ``nested`` and (levels of g, levels of h) for ``crossed``.
    ``sd`` are the random effects' standard deviations: (intercept, slope) for the vector
    structures, (a, a:b) for nested, (g, h) for crossed.  ``weights`` is ``"none"``,
    ``"integer"`` (1–3, for 0/1 binomial responses), ``"trials"`` (the binomial
    proportion's number of trials) or ``"continuous"`` (0.5–2 on a grid of 1/8).
    ``offset`` is ``"none"``, ``"argument"`` (glmer's offset=) or ``"formula"``
    (``+ offset(off)``).  ``shape`` is the Gamma shape parameter (0 for the other families).
    """

    family: str
    link: str
    response: str
    structure: str
    levels: tuple[int, int]
    rows: int
    factor_covariate: bool
    intercept: float
    slope: float
    sd: tuple[float, float]
    corr: float
    weights: str
    offset: str
    shape: float
    nAGQ: int
    seed: int

    def __post_init__(self) -> None:
        if self.response not in RESPONSES.get((self.family, self.link), ()):
            raise ValueError(f"response {self.response!r} is not drawn for "
                             f"{self.family}({self.link})")
        if self.structure not in STRUCTURES:
            raise ValueError(f"structure {self.structure!r}: choose from {list(STRUCTURES)}")
        if self.nAGQ > 1 and self.structure != "scalar":
            raise ValueError("nAGQ > 1 needs the single scalar term (structure 'scalar')")
        if self.rows < min_rows(self.structure, self.levels):
            raise ValueError(f"rows={self.rows} is below {min_rows(self.structure, self.levels)}"
                             f" for {self.structure} with levels {self.levels}")

    # -- the model -----------------------------------------------------------------------
    @property
    def formula(self) -> str:
        lhs = "cbind(s, n - s)" if self.response == "cbind" else "y"
        rhs = ["x"]
        if self.factor_covariate:
            rhs.append("z")
        if self.offset == "formula":
            rhs.append("offset(off)")
        rhs.append(STRUCTURES[self.structure])
        return f"{lhs} ~ {' + '.join(rhs)}"

    @property
    def weights_column(self) -> str | None:
        return {"none": None, "trials": "n"}.get(self.weights, "w")

    @property
    def offset_column(self) -> str | None:
        return "off" if self.offset == "argument" else None

    @property
    def name(self) -> str:
        """A short label: family, link, response, structure, nAGQ, and a checksum of the
        whole problem."""
        return (f"random-{self.family}-{self.link}-{self.response}-{self.structure}"
                f"-nAGQ{self.nAGQ}-{zlib.crc32(repr(self).encode()):08x}")

    def case(self) -> Case:
        """The problem as a parity case (its data are inline, never an R expression)."""
        return Case(self.name, f"randomised problem {self!r}", "<inline data>", self.formula,
                    self.family, self.link, (self.nAGQ,), weights=self.weights_column,
                    offset=self.offset_column, tags=("random",))

    # -- the data ------------------------------------------------------------------------
    def dataset(self) -> Dataset:
        """The problem's data, drawn from its seed."""
        rng = np.random.default_rng(self.seed)
        n = self.rows
        x = np.round(rng.normal(size=n) * 64) / 64
        cols: list[Column] = []
        eta = self.intercept + self.slope * x
        if self.factor_covariate:
            z = rng.integers(0, 3, n)
            eta = eta + np.array([0.0, *rng.normal(0.0, 0.5, 2)])[z]
            cols.append(_factor("z", z, ("a", "b", "c")))
        eta = eta + self._random_effects(rng, x, cols)
        if self.offset != "none":
            off = np.round(rng.normal(0.0, 0.3, n) * 64) / 64
            eta = eta + off
            cols.append(Column("off", "double", tuple(map(float, off))))
        cols.insert(0, Column("x", "double", tuple(map(float, x))))
        if self.weights in ("integer", "continuous"):
            w = (rng.integers(1, 4, n).astype(float) if self.weights == "integer"
                 else rng.integers(4, 17, n) / 8)
            kind = "integer" if self.weights == "integer" else "double"
            cols.append(Column("w", kind, tuple(int(v) if kind == "integer" else float(v)
                                                for v in w)))
        return Dataset((*self._response(rng, eta), *cols))

    def _random_effects(self, rng: np.random.Generator, x: np.ndarray,
                        cols: list[Column]) -> np.ndarray:
        n, (n1, n2), (sd1, sd2) = self.rows, self.levels, self.sd
        if self.structure in ("scalar", "vector", "uncorrelated"):
            g = _assign(rng, n1, n)
            cols.append(_factor("g", g, _labels("g", n1)))
            b0 = rng.normal(0.0, 1.0, n1)
            b1 = rng.normal(0.0, 1.0, n1)
            if self.structure == "scalar":
                return sd1 * b0[g]
            r = self.corr if self.structure == "vector" else 0.0
            slope = sd2 * (r * b0 + math.sqrt(1.0 - r * r) * b1)
            return sd1 * b0[g] + slope[g] * x
        if self.structure == "nested":
            cell = _assign(rng, n1 * n2, n)
            a, b = cell // n2, cell % n2
            cols += [_factor("a", a, _labels("a", n1)), _factor("b", b, _labels("b", n2))]
            return sd1 * rng.normal(0.0, 1.0, n1)[a] + sd2 * rng.normal(0.0, 1.0, n1 * n2)[cell]
        g, h = _assign(rng, n1, n), _assign(rng, n2, n)
        cols += [_factor("g", g, _labels("g", n1)), _factor("h", h, _labels("h", n2))]
        return sd1 * rng.normal(0.0, 1.0, n1)[g] + sd2 * rng.normal(0.0, 1.0, n2)[h]

    def _response(self, rng: np.random.Generator, eta: np.ndarray) -> tuple[Column, ...]:
        n = self.rows
        if self.family == "binomial":
            mu = _binomial_mean(self.link, eta)
            if self.response == "binary":
                return (Column("y", "integer", tuple(int(v) for v in rng.random(n) < mu)),)
            trials = rng.integers(1, 13, n)
            s = rng.binomial(trials, mu)
            if self.response == "cbind":
                return (Column("s", "integer", tuple(map(int, s))),
                        Column("n", "integer", tuple(map(int, trials))))
            return (Column("y", "double", tuple(map(float, s / trials))),
                    Column("n", "integer", tuple(map(int, trials))))
        if self.family == "poisson":
            mu = np.exp(eta) if self.link == "log" else eta * eta
            return (Column("y", "integer", tuple(map(int, rng.poisson(mu)))),)
        mu = np.exp(eta)
        y = rng.gamma(self.shape, mu / self.shape)
        return (Column("y", "double", tuple(map(float, y))),)


def min_rows(structure: str, levels: tuple[int, int]) -> int:
    """Fewest rows drawn: twice the number of random effects q, plus 10 (lme4 refuses
    n ≤ q, and a few more rows than that would make almost every fit singular)."""
    n1, n2 = levels
    q = {"scalar": n1, "vector": 2 * n1, "uncorrelated": 2 * n1, "nested": n1 + n1 * n2,
         "crossed": n1 + n2}[structure]
    return 2 * q + 10


def _assign(rng: np.random.Generator, nlevels: int, n: int) -> np.ndarray:
    """Codes 0..nlevels-1 for n rows, every level used at least once, unbalanced."""
    codes = np.concatenate([np.arange(nlevels), rng.integers(0, nlevels, n - nlevels)])
    rng.shuffle(codes)
    return codes


def _labels(prefix: str, n: int) -> tuple[str, ...]:
    # unpadded, so that level order (g1, g2, ..., g10) differs from a sort of the labels
    return tuple(f"{prefix}{i + 1}" for i in range(n))


def _factor(name: str, codes: np.ndarray, levels: tuple[str, ...]) -> Column:
    return Column(name, "factor", tuple(map(int, codes)), levels)


def _binomial_mean(link: str, eta: np.ndarray) -> np.ndarray:
    if link == "logit":
        return 1.0 / (1.0 + np.exp(-eta))
    if link == "probit":
        return ndtr(eta)
    return -np.expm1(-np.exp(eta))  # cloglog


# -- the strategy --------------------------------------------------------------------------
def problems() -> SearchStrategy[Problem]:
    """A hypothesis strategy over :class:`Problem`.  Structural choices come first and
    shrink towards the first option (binomial logit 0/1, the scalar term, nAGQ = 1, no
    weights, no offset), sizes towards the smallest, effects towards zero."""
    from hypothesis import strategies as st

    @st.composite
    def draw(draw: Any) -> Problem:
        family, link = draw(st.sampled_from(list(RESPONSES)))
        response = draw(st.sampled_from(RESPONSES[family, link]))
        structure = draw(st.sampled_from(list(STRUCTURES)))
        if structure == "nested":
            levels = (draw(st.integers(2, 6)), draw(st.integers(2, 4)))
        elif structure == "crossed":
            levels = (draw(st.integers(3, 12)), draw(st.integers(3, 8)))
        else:
            levels = (draw(st.integers(3, 15)), 0)
        lo = min_rows(structure, levels)
        rows = draw(st.integers(lo, max(lo, MAX_ROWS)))
        (i_lo, i_hi), (s_lo, s_hi) = EFFECTS[family, link]
        max_sd = MAX_SD.get(link, DEFAULT_MAX_SD)
        single = structure == "scalar"
        sd = (draw(_grid(0.0, max_sd[0])), 0.0 if single else draw(_grid(0.0, max_sd[1])))
        # a correlation of two effects only where both vary (else it does not change the data)
        corr = draw(_grid(-0.9, 0.9)) if structure == "vector" and min(sd) > 0 else 0.0
        if response == "proportion":
            weights = "trials"
        elif response == "cbind":
            weights = "none"
        else:
            weights = draw(st.sampled_from(
                ("none", "integer" if response == "binary" else "continuous")))
        return Problem(
            family=family, link=link, response=response, structure=structure, levels=levels,
            rows=rows,
            factor_covariate=draw(st.booleans()),
            intercept=draw(_grid(i_lo, i_hi)),
            slope=draw(_grid(s_lo, s_hi)),
            sd=sd, corr=corr,
            weights=weights,
            offset=draw(st.sampled_from(("none", "argument", "formula"))),
            shape=draw(st.sampled_from((2.0, 0.5, 1.0, 5.0, 20.0))) if family == "Gamma"
            else 0.0,
            nAGQ=draw(st.sampled_from(NAGQ_VALUES if single else NAGQ_VALUES[:2])),
            seed=draw(st.integers(0, 2**32 - 1)),
        )

    return draw()


def _grid(lo: float, hi: float, step: float = 0.05) -> SearchStrategy[float]:
    """Values lo..hi on a grid of ``step`` (short numbers in the reproductions); shrinks
    towards the grid point nearest zero."""
    from hypothesis import strategies as st

    a, b = round(lo / step), round(hi / step)
    return st.integers(a, b).map(lambda k: round(k * step, 10))


# -- reproductions -------------------------------------------------------------------------
R_TIGHT_CONTROL = ('glmerControl(optimizer = c("bobyqa", "bobyqa"), tolPwrss = 1e-13, '
                   "optCtrl = list(rhoend = 1e-10, maxfun = 100000L))")


def r_double(v: float | None) -> str:
    """A double as R reads it back bit for bit: its exact decimal expansion when that is
    short (R's parser rounds such a number exactly), else C99 hexadecimal."""
    if v is None:
        return "NA"
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Inf" if v > 0 else "-Inf")
    exact = Decimal(v)
    digits = exact.as_tuple().digits
    if len(digits) <= 15 and exact == Decimal(repr(v)):
        return repr(v)
    return v.hex()


def _r_column(c: Column) -> str:
    if c.kind == "factor":
        levels = ", ".join(f'"{lev}"' for lev in c.levels or ())
        codes = ", ".join("NA" if v is None else f"{v + 1}L" for v in c.values)
        return f"factor(c({levels})[c({codes})], levels = c({levels}))"
    if c.kind == "double":
        return f"c({', '.join(r_double(v) for v in c.values)})"
    if c.kind == "integer":
        return f"c({', '.join('NA' if v is None else f'{v}L' for v in c.values)})"
    return f"c({', '.join('NA' if v is None else str(v).upper() for v in c.values)})"


def r_script(problem: Problem, data: Dataset, params: list[float] | None = None,
             comment: str = "") -> str:
    """A ready-to-paste R script: the data inline, lme4's default and tight fits, and, with
    ``params``, lme4's devfun there (θ for nAGQ = 0, (θ, β) otherwise)."""
    cols = ",\n".join(f"  {c.name} = {_r_column(c)}" for c in data.columns)
    args = [f"data = data, family = {problem.family}(link = \"{problem.link}\")",
            f"nAGQ = {problem.nAGQ}L"]
    if problem.weights_column:
        args.append(f"weights = {problem.weights_column}")
    if problem.offset_column:
        args.append(f"offset = {problem.offset_column}")
    call = f"glmer({problem.formula}, {', '.join(args)}"
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    out = (f"{head}# {problem!r}\n"
           "library(lme4)\n"
           f"data <- data.frame(\n{cols}\n)\n"
           f"default <- {call})\n"
           f"tight <- {call},\n  control = {R_TIGHT_CONTROL})\n"
           "# lme4's objective, devcomp$cmp[\"dev\"] (-2 logLik at nAGQ <= 1)\n"
           "print(c(default = unname(default@devcomp$cmp[\"dev\"]),\n"
           "        tight = unname(tight@devcomp$cmp[\"dev\"])), digits = 17)\n"
           "print(getME(tight, \"theta\"), digits = 17); print(fixef(tight), digits = 17)\n")
    if params is not None:
        point = ", ".join(r_double(float(v)) for v in params)
        out += ("devfun <- update(tight, devFunOnly = TRUE)  # tolPwrss = 1e-13\n"
                f"print(devfun(c({point})), digits = 17)\n")
    return out


def _py_column(c: Column) -> str:
    if c.kind == "factor":
        return (f"pd.Categorical.from_codes({[-1 if v is None else v for v in c.values]}, "
                f"categories={list(c.levels or ())})")
    return repr(list(c.values))


def python_script(problem: Problem, data: Dataset, params: list[float] | None = None,
                  comment: str = "") -> str:
    """A ready-to-paste Python snippet: the same data inline and glmm.glmer's fit; with
    ``params``, also glmm's devfun there."""
    cols = "\n".join(f"    {c.name!r}: {_py_column(c)}," for c in data.columns)
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    out = (f"{head}# or: data = parity.random_problems.{problem!r}.dataset().to_pandas()\n"
           "import pandas as pd\n\nimport glmm\n\n"
           f"data = pd.DataFrame({{\n{cols}\n}})\n"
           f"fit = glmm.glmer({problem.formula!r}, data, "
           f"family=glmm.make_family({problem.family!r}, {problem.link!r}), "
           f"nAGQ={problem.nAGQ}, weights={problem.weights_column!r}, "
           f"offset={problem.offset_column!r})\n"
           "print(fit.objective, list(fit.theta), fit.fixef.to_dict())\n")
    if params is not None:
        out += f"print(fit.devfun({[float(p) for p in params]!r}))\n"
    return out
