"""Cases: the models the harness fits in lme4 and compares, and the corpus of them.

A case is one model: its data, its method (``glmer``, ``lmer`` or ``glmer.nb``), formula,
family and link, prior weights and offset as column names, and the variants to fit (nAGQ
values for glmer, REML and ML for lmer; see :mod:`parity.variants`).

The data come either from an R expression (``data_r``, evaluated by R once, when the fixture
is made) or from a table given in Python (:meth:`Case.from_dataframe`, or a CSV or Parquet
file named in a case file, :mod:`parity.casefile`).  Either way the fixture stores the data as
R fitted them, and every later fit, in R or in Python, reads them from there.

Every case is checked when it is made, before R is touched: a bad name, method, family, link
or variant list, weights or an offset that are not a column name, and, when the data are at
hand, a formula variable, weights, offset or factor that is not a column of the data, each
raise :class:`~parity.errors.CaseError` naming the case and the field.

An R expression is code, so it is evaluated only for a case defined in code or in a case file
(both written by the user, as a conftest.py is); a case read from a fixture file remembers the
file (``read_from``), and :func:`parity.trust.data_expression` refuses its ``data_r``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .dataset import Dataset, dataset_from_pandas
from .errors import CaseError, UnknownCaseError
from .variants import MAX_NAGQ, METHOD_FAMILIES, METHODS, VARIANT_ARGUMENT, Variant

if TYPE_CHECKING:
    import pandas as pd

#: Every family any method fits, with its links: what :mod:`parity.trust` lets reach R.
FAMILY_LINKS: dict[str, tuple[str, ...]] = {
    fam: links for families in METHOD_FAMILIES.values() for fam, links in families.items()}

#: A case name is also its fixture's file name and part of test ids.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: A column name as weights or offset may give it: an R name, never an expression.
_COLUMN_NAME = re.compile(r"^(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*$")

#: The fields of a case's spec, in the order a fixture stores them.
SPEC_FIELDS: tuple[str, ...] = (
    "name", "description", "method", "data_r", "data_file", "formula", "family", "link",
    "nAGQ", "REML", "weights", "offset", "factors", "tags")


@dataclass(frozen=True)
class Case:
    """One model to fit in lme4 and compare.

    ``nAGQ`` lists the variants of a ``glmer`` or ``glmer.nb`` case, ``REML`` those of an
    ``lmer`` case (True: REML, False: ML); the other stays empty.  ``data`` is the table itself
    (a case from a data frame, a data file or a fixture), ``data_r`` the R expression that
    makes it (the corpus); ``data_file`` records the file the data were read from.
    """

    name: str
    description: str
    data_r: str | None
    formula: str
    family: str
    link: str
    nAGQ: tuple[int, ...] = ()
    weights: str | None = None
    offset: str | None = None
    tags: tuple[str, ...] = ()
    method: str = "glmer"
    REML: tuple[bool, ...] = ()
    factors: tuple[str, ...] = ()
    data_file: str | None = None
    #: the data, when they are at hand; not compared (a source compares them itself)
    data: Dataset | None = field(default=None, compare=False, repr=False)
    #: None for a case defined in code or a case file; the fixture it was read from otherwise.
    #: Not part of the spec, and not compared: a fixture's case equals its corpus entry.
    read_from: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("nAGQ", "REML", "tags", "factors"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                self._fail(name, f"{value!r} is not a list")
            object.__setattr__(self, name, tuple(value))
        self._check()

    # -- checks ---------------------------------------------------------------------------
    def _fail(self, field_name: str, problem: str) -> None:
        raise CaseError(getattr(self, "name", "?"), field_name, problem)

    def _check(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            self._fail("name", f"{self.name!r} is not a case name (letters, digits, '.', '_' "
                               "and '-', starting with a letter or digit; it names the fixture "
                               "file)")
        for text in ("description", "formula"):
            if not isinstance(getattr(self, text), str):
                self._fail(text, f"{getattr(self, text)!r} is not a string")
        if self.method not in METHODS:
            self._fail("method", f"{self.method!r} is not one of {', '.join(METHODS)}")
        families = METHOD_FAMILIES[self.method]
        if self.family not in families:
            self._fail("family", f"{self.family!r} is not a family of {self.method}; its "
                                 f"families are {', '.join(families)}")
        if self.link not in families[self.family]:
            self._fail("link", f"{self.link!r} is not a link of {self.family}; its links are "
                               f"{', '.join(families[self.family])}")
        self._check_variants()
        if self.data_r is None and self.data is None:
            self._fail("data", "a case needs its data: data_r (an R expression), a data "
                               "frame, or a data file")
        if self.data_r is not None and not isinstance(self.data_r, str):
            self._fail("data_r", f"{self.data_r!r} is not a string")
        for name in ("weights", "offset"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and _COLUMN_NAME.match(value)):
                hint = (" (a transformed offset goes in the formula: + offset(log(x)))"
                        if name == "offset" else "")
                self._fail(name, f"{value!r} is not a column name: {name} names a numeric "
                                 f"column of the data{hint}")
        for name in ("tags", "factors"):
            bad = next((t for t in getattr(self, name) if not isinstance(t, str)), None)
            if bad is not None:
                self._fail(name, f"{bad!r} is not a string")
        self._check_formula()
        if self.data is not None:
            self._check_columns(self.data)

    def _check_variants(self) -> None:
        arg = VARIANT_ARGUMENT[self.method]
        other = "REML" if arg == "nAGQ" else "nAGQ"
        if getattr(self, other):
            self._fail(other, f"a {self.method} case lists {arg}, not {other}")
        values = getattr(self, arg)
        if not values:
            self._fail(arg, f"a {self.method} case lists at least one {arg} value")
        if len(set(values)) != len(values):
            self._fail(arg, f"{list(values)} repeats a value")
        for v in values:
            if arg == "nAGQ" and (isinstance(v, bool) or not isinstance(v, int)
                                  or not 0 <= v <= MAX_NAGQ):
                self._fail("nAGQ", f"{v!r} is not an integer within 0..{MAX_NAGQ}")
            if arg == "REML" and not isinstance(v, bool):
                self._fail("REML", f"{v!r} is not true or false")

    def _check_formula(self) -> None:
        from .trust import check_formula

        try:
            check_formula(self.formula, "formula")
        except ValueError as exc:
            self._fail("formula", getattr(exc, "problem", str(exc)))

    def _check_columns(self, data: Dataset) -> None:
        kinds = {c.name: c.kind for c in data.columns}
        missing = [v for v in formula_variables(self.formula) if v not in kinds]
        if missing:
            self._fail("formula", f"{self.formula!r} uses {missing[0]!r}, which is not a column "
                                  f"of the data (the columns are {', '.join(kinds)})")
        for name in ("weights", "offset"):
            value = getattr(self, name)
            if value is None:
                continue
            if value not in kinds:
                self._fail(name, f"{value!r} is not a column of the data (the columns are "
                                 f"{', '.join(kinds)})")
            if kinds[value] not in ("double", "integer"):
                self._fail(name, f"column {value!r} is a {kinds[value]} column; {name} names "
                                 "a numeric column")
        for f in self.factors:
            if f not in kinds:
                self._fail("factors", f"{f!r} is not a column of the data (the columns are "
                                      f"{', '.join(kinds)})")

    # -- views ----------------------------------------------------------------------------
    @property
    def variants(self) -> tuple[Variant, ...]:
        """The variants to fit, in the order the case lists them."""
        values = self.REML if self.method == "lmer" else self.nAGQ
        return tuple(Variant(self.method, v) for v in values)

    def variant(self, key: int | str | Variant) -> Variant:
        """The case's variant of this key (an nAGQ, a label, or a Variant)."""
        for v in self.variants:
            if key in (v, v.key, v.label):
                return v
        raise KeyError(f"case {self.name}: no variant {key!r}; its variants are "
                       f"{', '.join(v.label for v in self.variants)}")

    def spec(self) -> dict[str, Any]:
        """The model as stored in a fixture and handed to R (the data aside)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in SPEC_FIELDS}
        arg = VARIANT_ARGUMENT[self.method]
        for k in ("nAGQ", "REML", "tags", "factors"):
            out[k] = list(out[k])
        del out["REML" if arg == "nAGQ" else "nAGQ"]
        return out

    def with_data(self, data: Dataset) -> Case:
        """This case with its data at hand (checked against them)."""
        return Case(**{**self._fields(), "data": data})

    def _fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (*SPEC_FIELDS, "data", "read_from")}

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def from_spec(cls, obj: Mapping[str, Any], read_from: str = "a fixture document",
                  data: Dataset | None = None) -> Case:
        """The case of a stored spec, marked as read from ``read_from`` (never code)."""
        unknown = sorted(set(obj) - set(SPEC_FIELDS))
        if unknown:
            raise CaseError(str(obj.get("name", "?")), unknown[0],
                            f"unknown field; the fields are {', '.join(SPEC_FIELDS)}")
        kw = {k: obj[k] for k in SPEC_FIELDS if k in obj}
        for k in ("nAGQ", "REML", "tags", "factors"):
            kw[k] = tuple(kw.get(k, ()))
        kw.setdefault("description", "")
        kw.setdefault("data_r", None)
        return cls(**kw, data=data, read_from=str(read_from))

    @classmethod
    def from_dataframe(cls, name: str, df: pd.DataFrame, formula: str, *,
                       family: str | None = None, link: str | None = None,
                       nAGQ: Sequence[int] = (), REML: Sequence[bool] = (),
                       method: str = "glmer", weights: str | None = None,
                       offset: str | None = None, factors: Sequence[str] = (),
                       description: str = "", tags: Sequence[str] = (),
                       data_file: str | None = None) -> Case:
        """A case on a pandas DataFrame.

        Columns become R's types: numbers ``double`` (``integer`` for integer dtypes within
        R's range), booleans ``logical``, Categoricals factors with their categories in order,
        and strings factors with their levels sorted as R sorts them in the C locale.  The
        columns named in ``factors`` become factors too.  ``family`` defaults to the method's
        only family (lmer, glmer.nb), ``link`` to the family's first (canonical) link, and the
        variants to nAGQ = 1 (glmer) or REML (lmer).
        """
        method_families = METHOD_FAMILIES.get(method, {})
        if family is None:
            if len(method_families) != 1:
                raise CaseError(name, "family", f"a {method} case names its family (one of "
                                                f"{', '.join(method_families) or '?'})")
            family = next(iter(method_families))
        if link is None:
            link = method_families.get(family, ("?",))[0]
        if not nAGQ and not REML:
            if method == "lmer":
                REML = (True,)
            else:
                nAGQ = (1,)
        try:
            data = dataset_from_pandas(df, factors)
        except (TypeError, ValueError) as exc:
            raise CaseError(name, "data", str(exc)) from None
        return cls(name, description, None, formula, family, link, tuple(nAGQ), weights,
                   offset, tuple(tags), method, tuple(REML), tuple(factors), data_file, data)


def formula_variables(formula: str) -> list[str]:
    """The variables a formula reads from the data, in order of first use (glmm's parser)."""
    from glmm.design.expression import Call, Name, parse_expr

    out: list[str] = []
    stack: list[Any] = [parse_expr(formula)]
    while stack:
        node = stack.pop()
        if isinstance(node, Name) and node.id not in out and node.id != ".":
            out.append(node.id)
        elif isinstance(node, Call):
            stack.extend(reversed(node.args))
    return out


#: The corpus by name, filled on first use of CORPUS (see ``__getattr__`` below).
_BY_NAME: dict[str, Case] = {}


def find_case(name: str) -> Case | None:
    """The corpus case of this name, or None."""
    return {c.name: c for c in __getattr__("CORPUS")}.get(name)


def get_case(name: str) -> Case:
    """The corpus case of this name; UnknownCaseError naming the corpus otherwise."""
    try:
        return {c.name: c for c in __getattr__("CORPUS")}[name]
    except KeyError:
        raise UnknownCaseError(
            f"unknown case {name!r}; the corpus has: {', '.join(_BY_NAME)}") from None


_SEED_DATA = (
    "data.frame(x1 = rep(1:5, 3), subject = factor(sort(rep(1:3, 5))), "
    "y = c(1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1))"
)
_CBPP = "transform(lme4::cbpp, prop = incidence / size)"
_GROUSE = "transform(lme4::grouseticks, cHEIGHT = HEIGHT - mean(HEIGHT))"
_CONTRA = "mlmRev::Contraception"
_CBIND = "cbind(incidence, size - incidence) ~ period + (1 | herd)"

def _corpus() -> tuple[Case, ...]:
    return (
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
             _CONTRA, "use ~ age + urban + livch + (urban | district)", "binomial", "logit",
             (0, 1)),
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
        # linear mixed models (lmer), REML and ML
        Case("sleepstudy", "sleepstudy, LMM with correlated (Days | Subject)",
             "lme4::sleepstudy", "Reaction ~ Days + (Days | Subject)", "gaussian", "identity",
             method="lmer", REML=(True, False)),
        Case("dyestuff", "Dyestuff, LMM with one scalar term", "lme4::Dyestuff",
             "Yield ~ 1 + (1 | Batch)", "gaussian", "identity", method="lmer",
             REML=(True, False)),
        Case("dyestuff2", "Dyestuff2, LMM whose fit is singular (theta = 0)", "lme4::Dyestuff2",
             "Yield ~ 1 + (1 | Batch)", "gaussian", "identity", method="lmer",
             REML=(True, False)),
        Case("penicillin", "Penicillin, LMM with crossed scalar terms", "lme4::Penicillin",
             "diameter ~ 1 + (1 | plate) + (1 | sample)", "gaussian", "identity",
             method="lmer", REML=(True, False)),
        Case("pastes", "Pastes, LMM with nested terms batch/cask", "lme4::Pastes",
             "strength ~ 1 + (1 | batch/cask)", "gaussian", "identity", method="lmer",
             REML=(True, False)),
        Case("sleepstudy-weights", "sleepstudy, LMM with prior weights and an offset",
             "transform(lme4::sleepstudy, w = 1 + (Days %% 3) / 2, o = 0.25 * Days^2)",
             "Reaction ~ Days + (Days | Subject)", "gaussian", "identity", weights="w",
             offset="o", method="lmer", REML=(True, False)),
        Case("insteval", "InstEval, LMM with three crossed scalar terms (73,421 rows)",
             "lme4::InstEval[, c(\"s\", \"d\", \"service\", \"dept\", \"y\")]",
             "y ~ service + (1 | s) + (1 | d) + (1 | dept)", "gaussian", "identity",
             method="lmer", REML=(True, False), tags=("large",)),
    )


def __getattr__(name: str) -> Any:
    """``CORPUS``, the corpus, built (and each case checked) on first use: checking a case
    imports parity.trust, which imports this module."""
    if name != "CORPUS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _BY_NAME:
        cases = _corpus()
        _BY_NAME.update((c.name, c) for c in cases)
        if len(_BY_NAME) != len(cases):  # pragma: no cover - a corpus edit mistake
            raise RuntimeError("duplicate case names in the corpus")
    return tuple(_BY_NAME.values())


def select_cases(patterns: Sequence[str] | None = None,
                 cases: Sequence[Case] | None = None, where: str = "the corpus") -> list[Case]:
    """The cases whose names match any of ``patterns`` (names or shell patterns such as
    ``cbpp*``), in their order; all of them without patterns (``cases``: the corpus by
    default).  A pattern that matches no case raises UnknownCaseError naming it and ``where``
    the cases came from."""
    if cases is None:
        cases = __getattr__("CORPUS")
    if not patterns:
        return list(cases)
    names = [c.name for c in cases]
    for p in patterns:
        if not fnmatch.filter(names, p):
            raise UnknownCaseError(f"--case {p!r} matches no case of {where}; its cases are: "
                                   f"{', '.join(names) or '(none)'}")
    return [c for c in cases if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]


def unique_names(cases: Sequence[Case], where: str) -> None:
    """CaseError if two cases share a name (their fixtures would be one file)."""
    seen: set[str] = set()
    for c in cases:
        if c.name in seen:
            raise CaseError(c.name, "name", f"a second case of this name in {where}")
        seen.add(c.name)
