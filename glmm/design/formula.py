"""A glmer formula taken apart as lme4 takes it apart: :func:`parse_formula`.

The response, the fixed-effects right-hand side and the random-effects terms, each a port of
the lme4 function named beside it (``expandDoubleVerts``, ``findbars`` with ``expandSlash``,
``nobars``), giving a :class:`ParsedFormula` whose strings are R's own deparsed text.  Nothing
here looks at data, and every result is immutable, so parses are cached: refitting a formula,
or building X and Z from the pieces of one, does not parse the same text again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from ..errors import FormulaError
from .expression import (
    CACHE_SIZE,
    MAX_BRACKETS,
    Call,
    Name,
    Node,
    Num,
    check_text,
    deparse,
    excerpt,
    parse_expr,
)
from .terms import terms, variables


# ---------------------------------------------------------------------------------------------
# lme4's random-effects terms
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    """One random-effects term ``(lhs | group)`` after expansion, as R deparses its parts."""

    lhs: str
    group: str

    @property
    def name(self) -> str:
        """lme4's term name, ``deparse(bar)``: ``"1 | herd"``, ``"0 + age | district"``."""
        return f"{self.lhs} | {self.group}"


@dataclass(frozen=True)
class ParsedFormula:
    """A glmer formula taken apart as lme4 takes it apart.

    ``fixed`` is ``nobars()`` of the right-hand side, deparsed (offset() terms stay in it, as
    in lme4; ``"1"`` when nothing but bars was there); ``bars`` follow formula order after
    ``||`` and ``/`` expansion; ``offsets`` are the expressions inside the fixed part's
    ``offset()`` terms.
    """

    response: str
    fixed: str
    bars: tuple[Bar, ...]
    offsets: tuple[str, ...]


def _is_bar(node: Node) -> bool:
    return isinstance(node, Call) and node.fn in ("|", "||") and len(node.args) == 2


def _calls(node: Node) -> Iterator[Call]:
    """Every call in the tree, parents before children (an explicit stack, not recursion, so
    chains of any length are walked)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Call):
            yield n
            stack.extend(reversed(n.args))


def _any_bars(node: Node) -> bool:
    return any(_is_bar(c) for c in _calls(node))


def _contains_name(node: Node, fn: str) -> bool:
    return any(c.fn == fn for c in _calls(node))


def _left_chain(node: Call, stop: Callable[[Call], bool]) -> tuple[Node, list[Call]]:
    """The calls down ``node``'s first arguments (``a + b + c`` is ``(a + b) + c``) until a
    call for which ``stop`` holds, innermost first, and the node where that chain ends: the
    calls a rewrite folds by iteration."""
    chain: list[Call] = []
    cur: Node = node
    while isinstance(cur, Call) and cur.args and not stop(cur):
        chain.append(cur)
        cur = cur.args[0]
    chain.reverse()
    return cur, chain


def _expand_double_verts(node: Node) -> Node:
    """lme4 ``expandDoubleVerts``: ``(x + z || g)`` becomes ``(1 | g) + (0 + x | g) + (0 + z | g)``,
    one term per term label of ``~ x + z`` plus an intercept term unless the lhs removes it."""
    if not _contains_name(node, "||"):
        return node
    if not isinstance(node, Call) or not node.args:
        return node
    if node.fn == "||" and len(node.args) == 2:
        lhs_terms = terms(node.args[0])
        pieces = (["1"] if lhs_terms.intercept else []) + [f"0+{lab}" for lab in lhs_terms.labels]
        group = deparse(node.args[1])
        text = "~(" + ")+(".join(f"{p}|{group}" for p in pieces) + ")"
        expanded = parse_expr(text)
        assert isinstance(expanded, Call)
        return expanded.args[0]
    base, chain = _left_chain(node, lambda c: c.fn == "||" and len(c.args) == 2)
    acc = _expand_double_verts(base)
    for call in chain:
        rest = tuple(_expand_double_verts(a) for a in call.args[1:])
        acc = Call(call.fn, (acc, *rest), call.names)
    return acc


def _find_bars(node: Node) -> list[Call]:
    """lme4 ``findbars``' inner ``fb``: the bars, left to right (a depth-first walk that
    looks into the first two arguments of a call, as ``fb`` does)."""
    out: list[Call] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if not isinstance(n, Call) or not n.args:
            continue
        if n.fn == "|" and len(n.args) == 2:
            out.append(n)
        elif n.fn == "(" or len(n.args) == 1:
            stack.append(n.args[0])
        else:
            stack.extend((n.args[1], n.args[0]))
    return out


def _expand_slash(bar: Call) -> list[Call]:
    """lme4 ``expandSlash``: ``(lhs | a/b)`` becomes ``(lhs | b:a), (lhs | a)``; ``a/b/c`` gives
    ``c:(b:a), b:a, a``."""
    lhs, group = bar.args
    nslash = sum(c.fn == "/" for c in _calls(group))
    if nslash == 0:
        return [bar]
    if nslash > MAX_BRACKETS:
        raise FormulaError(f"grouping factor {excerpt(deparse(group), quote=False)} nests "
                           f"more than {MAX_BRACKETS} factors with '/'; its interactions would "
                           f"nest deeper than R's parser allows")

    def slash_terms(x: Node) -> Node | list:
        if not _contains_name(x, "/"):
            return x
        if not (isinstance(x, Call) and x.fn == "/" and len(x.args) == 2):
            raise FormulaError(f"unparseable formula for grouping factor: {deparse(group)}")
        return [slash_terms(x.args[0]), slash_terms(x.args[1])]

    def make_interaction(x: Node | list) -> Node | list:
        if not isinstance(x, list):
            return x
        first = make_interaction(x[0])
        head = first[0] if isinstance(first, list) else first
        return [Call(":", (x[1], head)), first]

    def flatten(x: Node | list) -> list[Node]:
        return [y for item in x for y in flatten(item)] if isinstance(x, list) else [x]

    trms = slash_terms(group)
    for leaf in flatten(trms):
        if not isinstance(leaf, Name):
            raise FormulaError(
                f"grouping factor {deparse(group)}: '/' nesting needs plain factors on its "
                f"left (lme4 mis-expands {deparse(leaf)}); write the interaction terms out")
    return [Call("|", (lhs, g)) for g in flatten(make_interaction(trms))]


def _no_bars(node: Node) -> Node | None:
    """lme4 ``nobars_``: the expression with every bar term removed (None if nothing is left).

    Folded along the chain of first arguments (:func:`_left_chain`): a call whose operands
    come back unchanged is kept as it is; a call with a bar among its arguments (other than
    ``~`` and ``(``) goes; otherwise the bars' operands are dropped from it."""
    if not isinstance(node, Call) or _is_bar(node):
        return None if _is_bar(node) else node
    base, chain = _left_chain(node, _is_bar)
    acc: Node | None = None if _is_bar(base) else base
    for call in chain:
        first = call.args[0]
        if call.fn not in ("~", "(") and any(_is_bar(a) for a in call.args):
            acc = None
        elif len(call.args) == 1:
            acc = None if acc is None else (call if acc is first else
                                            Call(call.fn, (acc,), call.names))
        else:
            right = _no_bars(call.args[1])
            if acc is None:
                acc = right
            elif right is not None:
                acc = (call if acc is first and right is call.args[1] else
                       Call(call.fn, (acc, right, *call.args[2:]), call.names))
    return acc


def _check_group(group: Node) -> None:
    """Grouping factors are names, possibly combined with ``:`` (lme4 evaluates them in the model
    frame, which holds only variables)."""
    stack = [group]
    while stack:
        g = stack.pop()
        if isinstance(g, Name):
            continue
        if isinstance(g, Call) and g.fn in (":", "(") and len(g.args) in (1, 2):
            stack.extend(g.args)
            continue
        text = excerpt(deparse(group), quote=False)
        raise FormulaError(f"unsupported grouping factor {text}: use a variable name or an "
                           f"interaction of names such as a:b")


def parse_formula(formula: str) -> ParsedFormula:
    """Split a glmer formula into response, fixed part and random-effects terms, as lme4 does
    (cached: the same text gives the same, immutable, object).

    >>> parse_formula("y ~ x + (1 | a/b)").bars
    (Bar(lhs='1', group='b:a'), Bar(lhs='1', group='a'))
    """
    return _parse_formula(check_text(formula))


@lru_cache(maxsize=CACHE_SIZE)
def _parse_formula(formula: str) -> ParsedFormula:
    node = parse_expr(formula)
    if not (isinstance(node, Call) and node.fn == "~"):
        raise FormulaError(f"not a formula (no '~'): {excerpt(formula)}")
    if len(node.args) != 2:
        raise FormulaError(f"the formula has no response: {excerpt(formula)}")
    lhs, rhs = node.args
    if _contains_name(lhs, "~") or _contains_name(rhs, "~"):
        raise FormulaError(f"invalid model formula: more than one '~' in {excerpt(formula)}")
    bars: list[Bar] = []
    for bar in _find_bars(_expand_double_verts(rhs)):
        for b in _expand_slash(bar):
            _check_group(b.args[1])
            lhs_node = b.args[0]
            terms(lhs_node)  # validates the lhs as a model formula
            bars.append(Bar(deparse(lhs_node), deparse(b.args[1])))
    if not bars:
        raise FormulaError(f"No random effects terms specified in formula: {excerpt(formula)} has "
                           f"no (expr | group) term")
    fixed = _no_bars(rhs)
    fixed_node = Num(1.0) if fixed is None else fixed
    fixed_terms = terms(fixed_node)
    offsets = []
    for i in fixed_terms.offsets:
        v = fixed_terms.variables[i]
        assert isinstance(v, Call)
        if len(v.args) != 1:
            raise FormulaError(f"offset() takes one argument: {deparse(v)}")
        offsets.append(deparse(v.args[0]))
    return ParsedFormula(deparse(lhs), deparse(fixed_node), tuple(bars), tuple(offsets))


def frame_variables(parsed: ParsedFormula) -> tuple[Node, ...]:
    """Every variable the model frame holds (lme4 builds it from ``subbars(formula)``): the
    response, the fixed part's variables (offset() terms included), then each bar's lhs and
    grouping variables; each once, in that order."""
    parts = [parse_expr(parsed.fixed)]
    for bar in parsed.bars:
        parts += [parse_expr(bar.lhs), parse_expr(bar.group)]
    return variables(parse_expr(parsed.response), *parts)
