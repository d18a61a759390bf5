"""The corpus holds what the foundation issue lists, and rejects malformed cases."""

from __future__ import annotations

import pytest

from parity.cases import CORPUS, Case, get_case, select_cases
from parity.errors import UnknownCaseError

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


@pytest.mark.parametrize(("family", "link", "nagq", "match"), [
    ("gaussian", "identity", (1,), "unknown family"),
    ("poisson", "logit", (1,), "link 'logit' is not one of"),
    ("binomial", "logit", (101,), "nAGQ"),
    ("binomial", "logit", (), "nAGQ"),
])
def test_malformed_case_rejected(family: str, link: str, nagq: tuple[int, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Case("x", "x", "data.frame()", "y ~ 1 + (1|g)", family, link, nagq)


def test_spec_round_trip() -> None:
    for c in CORPUS:
        assert Case.from_spec(c.spec()) == c
