"""Methods and their variants: which lme4 function fits a case, and the settings it is fitted at.

A case names one lme4 method.  Each method has its own variant argument, and a case lists the
values of that argument to fit:

- ``glmer`` and ``glmer.nb``: ``nAGQ`` (0 = joint PIRLS, 1 = Laplace, > 1 = adaptive
  Gauss-Hermite), variants labelled ``nAGQ0``, ``nAGQ1``, ...;
- ``lmer``: ``REML`` (true: the REML criterion, false: maximum likelihood), variants labelled
  ``REML`` and ``ML``.

A variant's label keys its results in a fixture and names it in test ids
(``cbpp-nAGQ1-fixef``); its ``key`` indexes a reference's results in Python (the nAGQ for
glmer, the label for lmer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: method -> the families (each with its links, the first being the default) it fits
METHOD_FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "glmer": {
        "binomial": ("logit", "probit", "cloglog", "cauchit", "log"),
        "poisson": ("log", "sqrt", "identity"),
        "Gamma": ("inverse", "log", "identity"),
        "inverse.gaussian": ("1/mu^2", "log", "inverse", "identity"),
    },
    "lmer": {"gaussian": ("identity",)},
    "glmer.nb": {"negative.binomial": ("log", "sqrt", "identity")},
}
METHODS: tuple[str, ...] = tuple(METHOD_FAMILIES)

#: method -> the name of its variant argument
VARIANT_ARGUMENT: dict[str, str] = {"glmer": "nAGQ", "glmer.nb": "nAGQ", "lmer": "REML"}

#: nAGQ's range, as lme4 accepts it for one scalar random effect (its upper limit is 100 in
#: practice: more nodes change nothing at double precision)
MAX_NAGQ = 100

_LABEL = re.compile(r"^(?:nAGQ(0|[1-9][0-9]?|100)|(REML)|(ML))$")


@dataclass(frozen=True, order=True)
class Variant:
    """One setting of a method's variant argument: ``Variant("glmer", 1)`` or
    ``Variant("lmer", True)`` (REML)."""

    method: str
    value: int | bool

    @property
    def label(self) -> str:
        """``nAGQ1``, ``REML`` or ``ML``: the key in a fixture and the part of a test id."""
        if self.method == "lmer":
            return "REML" if self.value else "ML"
        return f"nAGQ{self.value}"

    @property
    def key(self) -> int | str:
        """The index of this variant in a reference's results: the nAGQ, or the label."""
        if self.method == "lmer":
            return self.label
        return int(self.value)

    @property
    def nAGQ(self) -> int | None:
        """The nAGQ of a glmer or glmer.nb variant, None for lmer."""
        return None if self.method == "lmer" else int(self.value)

    @property
    def theta_only(self) -> bool:
        """Whether the method's objective takes θ alone (β profiled out): nAGQ = 0, and lmer;
        otherwise it takes (θ, β)."""
        return self.method == "lmer" or self.value == 0

    def __str__(self) -> str:
        return self.label


def parse_label(method: str, label: str) -> Variant:
    """The variant of ``method`` labelled ``label``; ValueError if it is not one."""
    m = _LABEL.match(label)
    if m is None or (method == "lmer") != (m.group(1) is None):
        want = "REML or ML" if method == "lmer" else "nAGQ0 .. nAGQ100"
        raise ValueError(f"{label!r} is not a variant of {method} ({want})")
    if method == "lmer":
        return Variant(method, m.group(2) is not None)
    return Variant(method, int(m.group(1)))
