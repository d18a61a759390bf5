"""R's ``terms()``: a right-hand side expanded into model terms (``terms.formula``, C code
``termsform`` in R's ``src/library/stats/src/model.c``): the variables in order of appearance,
the terms as sets of variables sorted by degree, the intercept, the offsets, and the
factor-coding pattern (1 = contrasts, 2 = indicator columns) that ``model.matrix`` uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ..cached import cached_property
from ..errors import FormulaError
from .expression import CACHE_SIZE, Call, Name, Node, Num, deparse, excerpt, parse_expr


# ---------------------------------------------------------------------------------------------
# terms(): R's expansion of a model formula into terms
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelTerms:
    """R's ``terms`` object for a right-hand side.

    ``variables`` are the variables in order of first appearance (R's ``attr(, "variables")``,
    offsets included); ``terms`` are bit masks over ``variables`` (bit i = variable i), sorted
    by degree and otherwise in the order R generates them; ``codes[t][i]`` is R's factor
    pattern for variable i in term t: 1 = code by contrasts, 2 = code by indicator columns
    (the variable's margin is not in the model), 0 = absent.
    """

    variables: tuple[Node, ...]
    terms: tuple[int, ...]
    intercept: bool
    offsets: tuple[int, ...]
    codes: tuple[tuple[int, ...], ...]

    @cached_property
    def variable_names(self) -> tuple[str, ...]:
        return tuple(deparse(v) for v in self.variables)

    def term_variables(self, term: int) -> tuple[int, ...]:
        """Indices of the variables of a term, in variable order."""
        return _bits(term)

    @cached_property
    def variables_by_term(self) -> tuple[tuple[int, ...], ...]:
        """:meth:`term_variables` of every term, in term order (worked out once: a model
        matrix of the same terms is built at every fit)."""
        return tuple(_bits(t) for t in self.terms)

    @cached_property
    def used_variables(self) -> tuple[int, ...]:
        """The indices of the variables in some term (not the offsets), in order."""
        return tuple(sorted({i for vs in self.variables_by_term for i in vs}))

    @property
    def labels(self) -> tuple[str, ...]:
        """R's ``term.labels``: variable names joined by ``:`` in variable order."""
        names = self.variable_names
        return tuple(":".join(names[i] for i in self.term_variables(t)) for t in self.terms)


def _bits(mask: int) -> tuple[int, ...]:
    """The positions of the set bits of ``mask``, lowest first."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return tuple(out)


_SPECIAL = frozenset({"+", ":", "*", "%in%", "/", "^", "-", "("})
#: The formula operators with two operands, whose chains ``encode`` follows by iteration.
_BINARY_SPECIAL = frozenset({"+", ":", "*", "%in%", "/", "^", "-"})
#: At most this many terms from one expansion (``(a + b + ... + t)^20`` would have 2^20 - 1;
#: R would build them all, slowly).
MAX_TERMS = 20_000


def _is_const(node: Node, value: float) -> bool:
    return isinstance(node, Num) and node.value == value


class _TermsBuilder:
    """A port of ``termsform``'s ExtractVars / EncodeVars (R's model.c)."""

    def __init__(self) -> None:
        self.variables: list[Node] = []
        self.index: dict[str, int] = {}
        self.intercept = True
        self.parity = True

    def install(self, node: Node) -> int:
        key = deparse(node)
        if key not in self.index:
            self.index[key] = len(self.variables)
            self.variables.append(node)
        return self.index[key]

    def extract(self, node: Node) -> None:
        """ExtractVars: record the variables in order of appearance (a depth-first walk with
        an explicit stack, left operands first)."""
        stack = [node]
        while stack:
            node = stack.pop()
            if _is_const(node, 0) or _is_const(node, 1):
                continue
            if isinstance(node, Name):
                if node.id == ".":
                    raise FormulaError("'.' in a formula (all other columns) is not "
                                       "supported; name the variables")
                self.install(node)
                continue
            if not isinstance(node, Call):
                raise FormulaError(f"invalid model formula: the constant {deparse(node)} is "
                                   f"not a term (only 0 and 1 are)")
            if node.fn == "~":
                raise FormulaError("invalid model formula: '~' inside the right-hand side")
            if node.fn == "^" and len(node.args) == 2:
                if not isinstance(node.args[1], Num):
                    raise FormulaError(f"invalid power in formula: {deparse(node)}")
                stack.append(node.args[0])
            elif node.fn in _SPECIAL:
                stack.extend(reversed(node.args))
            else:
                self.install(node)

    def encode(self, node: Node) -> list[int]:
        """EncodeVars: the list of terms (bit masks) that a formula expression stands for.
        A chain of binary formula operators down the left operands (``a + b - c + d``) is
        folded from its innermost call outwards, in R's order (left before right)."""
        chain: list[Call] = []
        while (isinstance(node, Call) and node.fn in _BINARY_SPECIAL
               and len(node.args) == 2):
            chain.append(node)
            node = node.args[0]
        acc = self._encode_operand(node)
        seen = set(acc)
        for call in reversed(chain):
            acc, seen = self._combine(call, acc, seen)
        return acc

    def _encode_operand(self, node: Node) -> list[int]:
        if _is_const(node, 1):
            self.intercept = self.parity
            return []
        if _is_const(node, 0):
            self.intercept = not self.parity
            return []
        if isinstance(node, Name) or (isinstance(node, Call) and node.fn not in _SPECIAL):
            return [1 << self.install(node)]
        if not isinstance(node, Call):
            raise FormulaError(f"invalid model formula: {deparse(node)}")
        fn, args = node.fn, node.args
        if len(args) == 1 and fn in ("(", "+"):
            return self.encode(args[0])
        if len(args) == 1 and fn == "-":
            self.parity = not self.parity
            self.encode(args[0])
            self.parity = not self.parity
            return []
        raise FormulaError(f"invalid model formula: {fn!r} with {len(args)} operands in "
                           f"{deparse(node)}")

    def _combine(self, call: Call, left: list[int], seen: set[int]
                 ) -> tuple[list[int], set[int]]:
        """The terms of ``call`` = (left op right) from those of its left operand (``seen`` is
        ``set(left)``): returns the new list and its set."""
        fn, right_node = call.fn, call.args[1]
        if fn == "-":
            self.parity = not self.parity
            removed = set(self.encode(right_node))
            self.parity = not self.parity
            return [t for t in left if t not in removed], seen - removed
        if fn == "^":
            return _set_of(self._power(call, left))
        right = self.encode(right_node)
        if fn == "+":
            new = [t for t in dict.fromkeys(right) if t and t not in seen]
            return left + new, seen.union(new)
        if fn == ":":
            return _set_of(_product(left, right, call))
        if fn == "*":
            return _set_of(_trim(left + right + _product(left, right, call)))
        if fn == "%in%":
            allr = _union(right)
            return _set_of(_trim([a | allr for a in left]))
        alll = _union(left)  # "/"
        return _set_of(_trim(left + [alll | b for b in right]))

    @staticmethod
    def _power(call: Call, left: list[int]) -> list[int]:
        power = call.args[1]
        if (not isinstance(power, Num) or not math.isfinite(power.value) or power.value < 1
                or power.value != int(power.value)):
            raise FormulaError(f"invalid power in formula: {deparse(call)}")
        right = left
        for _ in range(int(power.value) - 1):
            nxt = _product(left, right, call)
            if nxt == right:  # closed under interaction: higher powers add nothing
                break
            right = nxt
        return right


def _set_of(terms_: list[int]) -> tuple[list[int], set[int]]:
    return terms_, set(terms_)


def _product(left: list[int], right: list[int], call: Call) -> list[int]:
    """The interactions a:b of every pair, trimmed."""
    if len(left) * len(right) > MAX_TERMS:
        raise FormulaError(f"the formula expands to more than {MAX_TERMS} terms at "
                           f"{excerpt(deparse(call), quote=False)}; write the terms you need")
    return _trim([a | b for a in left for b in right])


def _trim(terms_: list[int]) -> list[int]:
    """TrimRepeats: drop empty and repeated terms, keeping first occurrences."""
    return [t for t in dict.fromkeys(terms_) if t]


def _union(terms_: list[int]) -> int:
    acc = 0
    for t in terms_:
        acc |= t
    return acc


def terms(rhs: Node | str) -> ModelTerms:
    """R's ``terms()`` of a right-hand side (no response): variables, sorted terms, intercept,
    offsets and the factor-coding pattern (cached for text).

    Terms are sorted by degree (number of variables), keeping R's generation order within a
    degree: ``a*b`` gives ``a, b, a:b``; ``(a+b):c`` gives ``a:c, b:c`` (left-major); ``a/b``
    gives ``a, a:b``.  Terms containing an ``offset()`` variable are removed.  A variable in a
    term is coded by contrasts (1) when the term without it is empty or is contained in an
    earlier term, else by indicators (2) (``TermCode`` in model.c).
    """
    if isinstance(rhs, str):
        return _terms_of_text(rhs)
    return _terms_of(rhs)


@lru_cache(maxsize=CACHE_SIZE)
def _terms_of_text(rhs: str) -> ModelTerms:
    return _terms_of(parse_expr(rhs))


def _terms_of(node: Node) -> ModelTerms:
    b = _TermsBuilder()
    b.extract(node)
    encoded = b.encode(node)
    names = list(b.index)  # the variables' deparsed names, in order
    offsets = tuple(i for i, nm in enumerate(names) if nm.startswith("offset("))
    offset_mask = _union([1 << i for i in offsets])
    kept = [t for t in encoded if not t & offset_mask]
    ordered = sorted(kept, key=lambda t: t.bit_count())  # stable: R's order within a degree
    codes = []
    for k, t in enumerate(ordered):
        row = [0] * len(names)
        for i in _bits(t):
            rest = t & ~(1 << i)
            margin = rest == 0 or any(rest & ~prev == 0 for prev in ordered[:k])
            row[i] = 1 if margin else 2
        codes.append(tuple(row))
    return ModelTerms(tuple(b.variables), tuple(ordered), b.intercept, offsets, tuple(codes))


def variables(response: Node, *rhs: Node) -> tuple[Node, ...]:
    """R's ``ExtractVars`` over a response and right-hand sides: every variable once, in
    order of first appearance (the response first)."""
    b = _TermsBuilder()
    b.install(response)
    for node in rhs:
        b.extract(node)
    return tuple(b.variables)
