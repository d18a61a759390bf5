"""The corpus holds what the foundation issue lists; a case is checked when it is made, with
a typed error naming the case and the field, before R is touched."""

from __future__ import annotations

import pandas as pd
import pytest

from parity.cases import CORPUS, Case, get_case, select_cases
from parity.errors import CaseError, UnknownCaseError

REQUIRED = {
    # name: (formula fragment, family, link, nAGQ, weights)
    "seed": ("y ~ x1 + (1 | subject)", "binomial", "logit", (0, 1, 25), None),
    "cbpp": ("cbind(incidence, size - incidence)", "binomial", "logit", (0, 1, 25), None),
    "cbpp-prop": ("prop ~ period", "binomial", "logit", (0, 1, 25), "size"),
    "cbpp-probit": ("cbind(", "binomial", "probit", (0, 1, 25), None),
    "cbpp-cloglog": ("cbind(", "binomial", "cloglog", (0, 1, 25), None),
    "grouseticks": ("(1 | BROOD) + (1 | INDEX) + (1 | LOCATION)", "poisson", "log", (0, 1), None),
    "grouseticks-nested": ("(1 | LOCATION/BROOD)", "poisson", "log", (0, 1), None),
    "contraception-urban-district": ("(1 | urban:district)", "binomial", "logit", (0, 1, 7),
                                     None),
    "contraception-slope": ("(urban | district)", "binomial", "logit", (0, 1), None),
    "contraception-uncorrelated": ("(age || district)", "binomial", "logit", (1,), None),
    "verbagg": ("(1 | id) + (1 | item)", "binomial", "logit", (0, 1), None),
    "mmmec": ("offset(log(expected))", "poisson", "log", (0, 1, 11), None),
    "bacteria": ("(1 | ID)", "binomial", "logit", (0, 1, 5), None),
    "sleepstudy-gamma": ("(Days | Subject)", "Gamma", "log", (1,), None),
}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_required_case(name: str) -> None:
    frag, family, link, nagq, weights = REQUIRED[name]
    c = get_case(name)
    assert frag in c.formula
    assert (c.family, c.link, c.nAGQ, c.weights) == (family, link, nagq, weights)


def test_names_unique_and_selectable() -> None:
    names = [c.name for c in CORPUS]
    assert len(names) == len(set(names))
    assert [c.name for c in select_cases(["verbagg", "seed"])] == ["seed", "verbagg"]


def test_unknown_case_is_a_clear_error() -> None:
    with pytest.raises(UnknownCaseError, match=r"unknown case 'nope'.*cbpp"):
        get_case("nope")
    with pytest.raises(UnknownCaseError, match=r"--case 'nope\*' matches no case of the corpus"):
        select_cases(["cbpp", "nope*"])
    assert [c.name for c in select_cases(["contraception-*"])] == [
        "contraception-urban-district", "contraception-slope", "contraception-uncorrelated"]


@pytest.mark.parametrize(("family", "link", "nagq", "field", "match"), [
    ("gaussian", "identity", (1,), "family", "'gaussian' is not a family of glmer"),
    ("poisson", "logit", (1,), "link", "'logit' is not a link of poisson"),
    ("binomial", "logit", (101,), "nAGQ", "101 is not an integer within 0..100"),
    ("binomial", "logit", (), "nAGQ", "at least one nAGQ"),
    ("binomial", "logit", (1, 1), "nAGQ", "repeats a value"),
])
def test_malformed_case_rejected(family: str, link: str, nagq: tuple[int, ...], field: str,
                                 match: str) -> None:
    with pytest.raises(CaseError, match=match) as err:
        Case("x", "x", "data.frame()", "y ~ 1 + (1|g)", family, link, nagq)
    assert (err.value.case, err.value.field) == ("x", field)
    assert str(err.value).startswith(f"case 'x': field {field}: ")


def _df() -> pd.DataFrame:
    return pd.DataFrame({"count": [1, 0, 3, 2], "age": [30.5, 41.0, 52.5, 60.0],
                         "exposure": [1.0, 2.0, 1.5, 3.0], "clinic": [2, 1, 10, 2],
                         "region": ["b", "a", "B", "a"]})


@pytest.mark.parametrize(("kw", "field", "match"), [
    ({"formula": "count ~ agee + (1 | clinic)"}, "formula",
     "uses 'agee', which is not a column of the data"),
    ({"offset": "log(exposure)"}, "offset", r"not a column name.*offset\(log\(x\)\)"),
    ({"offset": "expo"}, "offset", "'expo' is not a column of the data"),
    ({"offset": "region"}, "offset", "column 'region' is a factor column"),
    ({"weights": "w"}, "weights", "'w' is not a column"),
    ({"family": "poisson", "link": "logit"}, "link", "'logit' is not a link of poisson"),
    ({"family": "binomail"}, "family", "'binomail' is not a family of glmer"),
    ({"nAGQ": [0, 1.5]}, "nAGQ", "1.5 is not an integer"),
    ({"nAGQ": [-1]}, "nAGQ", "-1 is not an integer within 0..100"),
    ({"method": "glm"}, "method", "'glm' is not one of glmer, lmer, glmer.nb"),
    ({"method": "lmer", "family": None, "nAGQ": [1]}, "nAGQ", "a lmer case lists REML"),
    ({"factors": ["clinik"]}, "data", "factors names 'clinik', which is not a column"),
    ({"formula": "count ~ age +"}, "formula", "glmm's formula parser refuses"),
    ({"formula": "count ~ system('x') + (1 | clinic)"}, "formula", "calls 'system'"),
])
def test_case_from_a_dataframe_is_checked_before_r(kw: dict, field: str, match: str) -> None:
    args = {"formula": "count ~ age + (1 | clinic)", "family": "poisson", "nAGQ": [1], **kw}
    with pytest.raises(CaseError, match=match) as err:
        Case.from_dataframe("visits", _df(), args.pop("formula"), **args)
    assert (err.value.case, err.value.field) == ("visits", field)


def test_case_from_a_dataframe_types_its_columns_as_r_would() -> None:
    c = Case.from_dataframe("visits", _df(), "count ~ age + (1 | clinic) + (1 | region)",
                            family="poisson", nAGQ=[0, 1], offset="exposure",
                            factors=["clinic"])
    cols = {col.name: col for col in c.data.columns}
    assert [cols[n].kind for n in ("count", "age", "exposure")] == ["integer", "double",
                                                                     "double"]
    # integers named as factors: levels in numeric order, labelled as R's as.character
    assert cols["clinic"].levels == ("1", "2", "10") and cols["clinic"].values == (1, 0, 2, 1)
    # strings: a factor with levels in C-locale (byte) order, upper case first
    assert cols["region"].levels == ("B", "a", "b") and cols["region"].values == (2, 1, 0, 1)
    assert [v.label for v in c.variants] == ["nAGQ0", "nAGQ1"]
    assert c.link == "log" and c.method == "glmer"  # the family's canonical link


def test_lmer_case_has_reml_variants() -> None:
    c = Case.from_dataframe("lm", _df(), "age ~ exposure + (1 | clinic)", method="lmer",
                            REML=[True, False], factors=["clinic"])
    assert (c.family, c.link) == ("gaussian", "identity")
    assert [(v.label, v.key, v.theta_only) for v in c.variants] == [
        ("REML", "REML", True), ("ML", "ML", True)]
    assert c.spec()["REML"] == [True, False] and "nAGQ" not in c.spec()


def test_a_case_needs_its_data() -> None:
    with pytest.raises(CaseError, match="needs its data") as err:
        Case("x", "", None, "y ~ 1 + (1 | g)", "binomial", "logit", (1,))
    assert err.value.field == "data"


@pytest.mark.parametrize("name", ["", "../x", "a b", "-x", "x" * 101])
def test_a_case_name_is_a_file_name(name: str) -> None:
    with pytest.raises(CaseError, match="is not a case name"):
        Case(name, "", "df", "y ~ 1 + (1 | g)", "binomial", "logit", (1,))


def test_spec_round_trip() -> None:
    for c in CORPUS:
        assert Case.from_spec(c.spec()) == c
