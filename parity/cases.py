"""The parity corpus: every model that the harness runs through lme4 and the engine.

A case names the R expression that makes its data, the model (formula, family and link,
prior weights and offset given as column names) and the nAGQ values to fit.  The data are
made once by R, stored in the fixture, and every later fit, in R or in Python, reads them
from there.  The R expression is code, so it is evaluated only for a case defined in code;
a case read from a fixture file remembers the file (``read_from``), and
:func:`parity.trust.data_expression` refuses its ``data_r``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .errors import UnknownCaseError

FAMILY_LINKS: dict[str, tuple[str, ...]] = {
    "binomial": ("logit", "probit", "cloglog", "cauchit", "log"),
    "poisson": ("log", "sqrt", "identity"),
    "Gamma": ("inverse", "log", "identity"),
    "inverse.gaussian": ("1/mu^2", "log", "inverse", "identity"),
}


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    data_r: str
    formula: str
    family: str
    link: str
    nAGQ: tuple[int, ...]
    weights: str | None = None
    offset: str | None = None
    tags: tuple[str, ...] = field(default=())
    #: None for a case defined in code; the file (or document) it was read from otherwise.
    #: Not part of the spec, and not compared: a fixture's case equals its corpus entry.
    read_from: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.family not in FAMILY_LINKS:
            raise ValueError(f"case {self.name}: unknown family {self.family!r}")
        if self.link not in FAMILY_LINKS[self.family]:
            raise ValueError(f"case {self.name}: link {self.link!r} is not one of "
                             f"{FAMILY_LINKS[self.family]} for {self.family}")
        if not self.nAGQ or any(not 0 <= k <= 100 for k in self.nAGQ):
            raise ValueError(f"case {self.name}: nAGQ must be a non-empty list within 0..100")

    def spec(self) -> dict[str, Any]:
        """The model as stored in a fixture and handed to R."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "read_from"}
        out["nAGQ"] = list(self.nAGQ)
        out["tags"] = list(self.tags)
        return out

    @classmethod
    def from_spec(cls, obj: dict[str, Any], read_from: str = "a fixture document") -> Case:
        """The case of a stored spec, marked as read from ``read_from`` (never code)."""
        known = {f.name for f in fields(cls)} - {"read_from"}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ValueError(f"case spec: unknown field {unknown[0]!r}; the fields are "
                             f"{', '.join(sorted(known))}")
        kw = dict(obj)
        kw["nAGQ"] = tuple(kw["nAGQ"])
        kw["tags"] = tuple(kw.get("tags", ()))
        return cls(**kw, read_from=str(read_from))


_SEED_DATA = (
    "data.frame(x1 = rep(1:5, 3), subject = factor(sort(rep(1:3, 5))), "
    "y = c(1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1))"
)
_CBPP = "transform(lme4::cbpp, prop = incidence / size)"
_GROUSE = "transform(lme4::grouseticks, cHEIGHT = HEIGHT - mean(HEIGHT))"
_CONTRA = "mlmRev::Contraception"
_CBIND = "cbind(incidence, size - incidence) ~ period + (1 | herd)"

CORPUS: tuple[Case, ...] = (
    Case("seed", "The 15-row toy example from the seed question: y ~ x1 + (1|subject)",
         _SEED_DATA, "y ~ x1 + (1 | subject)", "binomial", "logit", (0, 1, 25)),
    Case("cbpp", "cbpp, binomial counts as cbind(successes, failures)",
         _CBPP, _CBIND, "binomial", "logit", (0, 1, 25)),
    Case("cbpp-prop", "cbpp as a proportion with weights = size",
         _CBPP, "prop ~ period + (1 | herd)", "binomial", "logit", (0, 1, 25), weights="size"),
    Case("cbpp-probit", "cbpp with the probit link",
         _CBPP, _CBIND, "binomial", "probit", (0, 1, 25)),
    Case("cbpp-cloglog", "cbpp with the cloglog link",
         _CBPP, _CBIND, "binomial", "cloglog", (0, 1, 25)),
    Case("grouseticks", "grouseticks, Poisson, three scalar terms (lme4 reorders them)",
         _GROUSE, "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
         "poisson", "log", (0, 1)),
    Case("grouseticks-nested", "grouseticks, Poisson, nested syntax LOCATION/BROOD",
         _GROUSE, "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)", "poisson", "log", (0, 1)),
    Case("contraception-urban-district", "Contraception, interaction grouping urban:district",
         _CONTRA, "use ~ age + I(age^2) + urban + livch + (1 | urban:district)",
         "binomial", "logit", (0, 1, 7)),
    Case("contraception-slope", "Contraception, correlated random slope (urban | district)",
         _CONTRA, "use ~ age + urban + livch + (urban | district)", "binomial", "logit", (0, 1)),
    Case("contraception-uncorrelated", "Contraception, uncorrelated terms (age || district)",
         _CONTRA, "use ~ age + urban + livch + (age || district)", "binomial", "logit", (1,)),
    Case("verbagg", "VerbAgg, crossed random effects (1|id) + (1|item)",
         "lme4::VerbAgg", "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
         "binomial", "logit", (0, 1)),
    Case("mmmec", "Mmmec, Poisson with offset(log(expected))",
         "mlmRev::Mmmec", "deaths ~ uvb + (1 | region) + offset(log(expected))",
         "poisson", "log", (0, 1, 11)),
    Case("bacteria", "MASS bacteria, two-level factor response",
         "MASS::bacteria", "y ~ trt + I(week > 2) + (1 | ID)", "binomial", "logit", (0, 1, 5)),
    Case("sleepstudy-gamma", "sleepstudy, Gamma(log) with correlated (Days | Subject)",
         "lme4::sleepstudy", "Reaction ~ Days + (Days | Subject)", "Gamma", "log", (1,)),
)

_BY_NAME = {c.name: c for c in CORPUS}
if len(_BY_NAME) != len(CORPUS):  # pragma: no cover - a corpus edit mistake
    raise RuntimeError("duplicate case names in the corpus")


def find_case(name: str) -> Case | None:
    """The corpus case of this name, or None."""
    return _BY_NAME.get(name)


def get_case(name: str) -> Case:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownCaseError(
            f"unknown case {name!r}; the corpus has: {', '.join(_BY_NAME)}") from None


def select_cases(names: list[str] | None = None) -> list[Case]:
    """The named cases in corpus order, or all of them."""
    if not names:
        return list(CORPUS)
    wanted = {get_case(n).name for n in names}
    return [c for c in CORPUS if c.name in wanted]
