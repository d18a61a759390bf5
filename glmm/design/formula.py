"""R's formula language, as far as ``glmer`` needs it: parse, deparse, ``terms()`` and lme4's bars.

A formula such as ``"cbind(s, n - s) ~ period + (1 | herd)"`` is parsed with R's grammar
(operator precedence as in R's ``?Syntax``) into a small expression tree.  Three things are
then done to it, each a port of the R function named beside it:

* :func:`parse_formula` splits the random-effects terms out as lme4 does
  (``expandDoubleVerts``, ``findbars`` with ``expandSlash``, ``nobars``), giving a
  :class:`ParsedFormula` whose strings are R's own deparsed text.
* :func:`deparse` prints an expression as R's ``deparse()`` does (``a * b``, ``a/b``, ``x^2``,
  ``I(week > 2)``, ``1e+05``), so variable and column names come out exactly as R names them.
* :func:`terms` expands a right-hand side into R's model terms (``terms.formula``, C code
  ``termsform`` in ``src/library/stats/src/model.c``): the variables in order of appearance,
  the terms as sets of variables sorted by degree, the intercept, the offsets, and the
  factor-coding pattern (1 = contrasts, 2 = indicator columns) that ``model.matrix`` uses.

Formulas may be as long as R's: chains of operators (``x1 + x2 + ... + x5000``) are folded by
iteration, never by recursion.  Brackets nest at most 50 deep, as in R's parser, and
expressions at most :data:`MAX_DEPTH` levels; deeper ones are a :class:`FormulaError`.

Nothing here looks at data, and every result is immutable (frozen dataclasses and tuples), so
the parses of formula text are cached: refitting a formula, or building X and Z from the
pieces of one, does not parse the same text again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache

from ..errors import ArgumentTypeError, FormulaError

__all__ = [
    "Bar",
    "Call",
    "FormulaError",
    "Name",
    "Node",
    "Num",
    "ParsedFormula",
    "Str",
    "Terms",
    "deparse",
    "format_number",
    "frame_variables",
    "parse_expr",
    "parse_formula",
    "terms",
]




# ---------------------------------------------------------------------------------------------
# The expression tree
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Name:
    """A symbol, e.g. ``herd`` or a backquoted ``my var``."""

    id: str


@dataclass(frozen=True)
class Num:
    """A numeric constant; ``integer`` for R's ``2L``."""

    value: float
    integer: bool = False


@dataclass(frozen=True)
class Str:
    """A string constant."""

    value: str


@dataclass(frozen=True)
class Call:
    """A call ``fn(args)``.  Operators are calls too, as in R: ``a + b`` is ``Call("+", (a, b))``,
    ``-a`` is ``Call("-", (a,))`` and ``(a)`` is ``Call("(", (a,))``.  ``names`` holds the
    argument names (``None`` for positional ones)."""

    fn: str
    args: tuple[Node, ...]
    names: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        if not self.names:
            object.__setattr__(self, "names", (None,) * len(self.args))


Node = Name | Num | Str | Call

# R's operator precedences (PREC_* in R's Defn.h) and whether the operator deparses with
# spaces around it (PP_BINARY) or without (PP_BINARY2).
_PREC_TILDE, _PREC_OR, _PREC_AND, _PREC_NOT, _PREC_COMPARE = 4, 5, 6, 7, 8
_PREC_SUM, _PREC_PROD, _PREC_PERCENT, _PREC_COLON, _PREC_SIGN, _PREC_POWER = 9, 10, 11, 12, 13, 14
_PREC_SUBSET, _PREC_DOLLAR = 15, 16

#: binary operator -> (precedence, right associative, spaced when deparsed)
_BINARY: dict[str, tuple[int, bool, bool]] = {
    "~": (_PREC_TILDE, False, True),
    "|": (_PREC_OR, False, True), "||": (_PREC_OR, False, True),
    "&": (_PREC_AND, False, True), "&&": (_PREC_AND, False, True),
    "==": (_PREC_COMPARE, False, True), "!=": (_PREC_COMPARE, False, True),
    "<": (_PREC_COMPARE, False, True), ">": (_PREC_COMPARE, False, True),
    "<=": (_PREC_COMPARE, False, True), ">=": (_PREC_COMPARE, False, True),
    "+": (_PREC_SUM, False, True), "-": (_PREC_SUM, False, True),
    "*": (_PREC_PROD, False, True), "/": (_PREC_PROD, False, False),
    "%%": (_PREC_PERCENT, False, False), "%/%": (_PREC_PERCENT, False, False),
    ":": (_PREC_COLON, False, False),
    "^": (_PREC_POWER, True, False),
    "$": (_PREC_DOLLAR, False, False), "@": (_PREC_DOLLAR, False, False),
}
#: unary operator -> precedence of its operand
_UNARY: dict[str, int] = {"-": _PREC_SIGN, "+": _PREC_SIGN, "!": _PREC_NOT, "~": _PREC_TILDE}
_RESERVED = frozenset(
    "if else repeat while function for next break TRUE FALSE NULL Inf NaN NA NA_integer_ "
    "NA_real_ NA_character_ NA_complex_ in".split())


#: R's constants, which the parser reads as names and deparse writes bare (``x > TRUE``).
_CONSTANTS = frozenset("TRUE FALSE NULL Inf NaN NA NA_integer_ NA_real_ NA_character_".split())


def _binary_info(op: str) -> tuple[int, bool, bool] | None:
    if op in _BINARY:
        return _BINARY[op]
    if len(op) >= 2 and op.startswith("%") and op.endswith("%"):
        return (_PREC_PERCENT, False, True)  # user %op%, e.g. %in%: spaced
    return None


# ---------------------------------------------------------------------------------------------
# Tokenizer and parser
# ---------------------------------------------------------------------------------------------
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+L?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?")
_OPERATORS = ("%%", "||", "&&", "==", "!=", "<=", ">=", "**", "~", "+", "-", "*", "/", "^", ":",
              "(", ")", ",", "|", "&", "!", "<", ">", "=", "[", "]", "$", "@")


@dataclass(frozen=True)
class _Tok:
    kind: str  # "num", "str", "name", "op", "end"
    text: str
    pos: int
    value: object = None


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        m = _NUMBER.match(text, i)
        if m and (c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit())):
            s = m.group(0)
            integer = s.endswith("L")
            body = s[:-1] if integer else s
            value = _hex_value(body) if body[:2].lower() == "0x" else float(body)
            # R reads 1.5L, 1e10L and 1e999L as doubles (with a warning)
            integer = integer and value.is_integer() and abs(value) <= _INT_MAX
            toks.append(_Tok("num", s, i, (value, integer)))
            i = m.end()
            continue
        if c.isalpha() or c == ".":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "._"):
                j += 1
            toks.append(_Tok("name", text[i:j], i, text[i:j]))
            i = j
            continue
        if c in "\"'`":
            j, buf = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    esc = text[j + 1]
                    buf.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(esc, esc))
                    j += 2
                else:
                    buf.append(text[j])
                    j += 1
            if j >= n:
                raise FormulaError(f"unterminated {'name' if c == '`' else 'string'} starting at "
                                   f"position {i} in {_excerpt(text)}")
            toks.append(_Tok("name" if c == "`" else "str", text[i:j + 1], i, "".join(buf)))
            i = j + 1
            continue
        if c == "%":
            j = text.find("%", i + 1)
            if j < 0:
                raise FormulaError(f"unterminated %operator% at position {i} in {_excerpt(text)}")
            toks.append(_Tok("op", text[i:j + 1], i))
            i = j + 1
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                toks.append(_Tok("op", "^" if op == "**" else op, i))
                i += len(op)
                break
        else:
            raise FormulaError(f"unexpected character {c!r} at position {i} in {_excerpt(text)}")
    toks.append(_Tok("end", "", n))
    return toks


def _hex_value(body: str) -> float:
    """A hexadecimal constant as R reads it: a double, Inf beyond the largest one."""
    try:
        return float(int(body, 16))
    except OverflowError:
        return math.inf


#: The largest R integer (.Machine$integer.max).
_INT_MAX = 2**31 - 1
#: R's parser keeps at most 50 open brackets (CONTEXTSTACK_SIZE in gram.y): deeper nesting is
#: R's "contextstack overflow" error.
MAX_BRACKETS = 50
#: The deepest expression tree the parser builds, counting brackets, unary operators and the
#: right operands of ``^`` chains (R's parser allows longer unary and ``^`` chains, which no
#: formula needs); a chain of left-associative operators (``a + b + c + ...``) adds one level
#: whatever its length, and is handled at any length.
MAX_DEPTH = 100


class _Parser:
    """A precedence-climbing parser for R expressions (the subset formulas use).

    Left-associative chains (``x1 + x2 + ... + x1000``) are built by iteration; only brackets,
    unary operators and right operands recurse, and their depth is bounded by
    :data:`MAX_BRACKETS` and :data:`MAX_DEPTH`, so every walk of the tree stays shallow.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0
        self._check_parentheses()

    def _check_parentheses(self) -> None:
        stack: list[_Tok] = []
        pairs = {")": "(", "]": "["}
        for t in self.toks:
            if t.kind != "op":
                continue
            if t.text in "([":
                stack.append(t)
                if len(stack) > MAX_BRACKETS:
                    raise FormulaError(
                        f"contextstack overflow: more than {MAX_BRACKETS} nested brackets at "
                        f"position {t.pos} in {_excerpt(self.text)} (R's parser limit); "
                        f"remove redundant parentheses")
            elif t.text in ")]":
                if not stack or stack[-1].text != pairs[t.text]:
                    raise FormulaError(f"unbalanced parentheses: unexpected {t.text!r} at "
                                       f"position {t.pos} in {_excerpt(self.text)}")
                stack.pop()
        if stack:
            raise FormulaError(f"unbalanced parentheses: {stack[-1].text!r} at position "
                               f"{stack[-1].pos} is never closed in {_excerpt(self.text)}")

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, text: str) -> None:
        t = self.take()
        if t.kind != "op" or t.text != text:
            raise self.error(t, f"expected {text!r}")

    def error(self, t: _Tok, what: str) -> FormulaError:
        got = "the end" if t.kind == "end" else repr(t.text)
        return FormulaError(f"cannot parse {_excerpt(self.text)}: {what}, found {got} at "
                            f"position {t.pos}")

    def parse(self) -> Node:
        node = self.expr(0)
        if self.peek().kind != "end":
            raise self.error(self.peek(), "expected the end of the expression")
        return node

    def expr(self, min_prec: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(
                f"the expression {_excerpt(self.text)} is nested more than {MAX_DEPTH} levels "
                f"deep (brackets, unary operators or '^' chains) near position "
                f"{self.peek().pos}; simplify it")
        try:
            return self._expr(min_prec)
        finally:
            self.depth -= 1

    def _expr(self, min_prec: int) -> Node:
        left = self.prefix()
        while True:
            t = self.peek()
            if t.kind != "op":
                if t.kind in ("name", "num", "str"):
                    raise self.error(t, "expected an operator")
                return left
            if t.text == "(":
                if not isinstance(left, Name):
                    raise self.error(t, "only named functions can be called")
                self.take()
                left = self.call_args(left.id)
                continue
            if t.text == "[":
                self.take()
                index = self.expr(0)
                self.expect("]")
                left = Call("[", (left, index))
                continue
            info = _binary_info(t.text)
            if info is None:
                return left
            prec, right_assoc, _ = info
            if prec < min_prec:
                return left
            self.take()
            right = self.expr(prec if right_assoc else prec + 1)
            left = Call(t.text, (left, right))

    def prefix(self) -> Node:
        t = self.take()
        if t.kind == "num":
            value, integer = t.value  # type: ignore[misc]
            return Num(value, integer)
        if t.kind == "str":
            return Str(str(t.value))
        if t.kind == "name":
            return Name(str(t.value))
        if t.kind == "op" and t.text == "(":
            inner = self.expr(0)
            self.expect(")")
            return Call("(", (inner,))
        if t.kind == "op" and t.text in _UNARY:
            return Call(t.text, (self.expr(_UNARY[t.text]),))
        raise self.error(t, "expected a term")

    def call_args(self, fn: str) -> Call:
        args: list[Node] = []
        names: list[str | None] = []
        if self.peek().kind == "op" and self.peek().text == ")":
            self.take()
            return Call(fn, ())
        while True:
            name = None
            t, nxt = self.peek(), self.toks[self.i + 1]
            if t.kind in ("name", "str") and nxt.kind == "op" and nxt.text == "=":
                name = str(t.value)
                self.i += 2
            args.append(self.expr(0))
            names.append(name)
            t = self.take()
            if t.kind == "op" and t.text == ")":
                return Call(fn, tuple(args), tuple(names))
            if not (t.kind == "op" and t.text == ","):
                raise self.error(t, f"expected ',' or ')' in the arguments of {fn}()")


#: How many distinct texts each cache of this module keeps (formulas, their pieces).
_CACHE_SIZE = 512


def _check_text(text: object) -> str:
    if text is None or (isinstance(text, str) and not text.strip()):
        raise FormulaError("the formula is empty")
    if not isinstance(text, str):
        raise ArgumentTypeError(f"formula must be a string such as \"y ~ x + (1 | g)\", not "
                                f"{type(text).__name__}")
    return text


def _excerpt(text: str, width: int = 200, quote: bool = True) -> str:
    """The text for a message (quoted by repr unless ``quote`` is false), shortened in the
    middle when long."""
    if len(text) > width:
        text = text[:width // 2] + " ... " + text[-width // 2:]
    return repr(text) if quote else text


def parse_expr(text: str) -> Node:
    """Parse one R expression (``"y ~ x + (1 | g)"``, ``"I(age^2)"``) into a tree."""
    return _parse_text(_check_text(text))


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_text(text: str) -> Node:
    return _Parser(text).parse()


# ---------------------------------------------------------------------------------------------
# Deparsing
# ---------------------------------------------------------------------------------------------
def format_number(x: float, digits: int = 15) -> str:
    """A double as R prints it with ``digits`` significant digits (``as.character``, deparse).

    R's ``formatReal``: find the fewest significant digits (at most ``digits``) that show the
    value, then use fixed notation unless scientific is narrower (``1e+05`` but ``123456``).
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    mant, exp_s = f"{x:.{digits - 1}e}".split("e")
    e = int(exp_s)
    sig = mant.replace("-", "").replace(".", "").rstrip("0") or "0"
    nsig = len(sig)
    neg = 1 if x < 0 else 0
    rgt = max(0, nsig - e - 1)
    width_fixed = neg + (e + 1 if e >= 0 else 1) + (rgt + 1 if rgt else 0)
    width_sci = neg + (nsig + 1 if nsig > 1 else nsig) + (4 if abs(e) < 100 else 5)
    if width_fixed <= width_sci:
        return f"{x:.{rgt}f}"
    m = sig[0] + ("." + sig[1:] if nsig > 1 else "")
    return f"{'-' if neg else ''}{m}e{'-' if e < 0 else '+'}{abs(e):02d}"


def _is_syntactic(name: str) -> bool:
    if name in _RESERVED or not name:
        return False
    if name == "." or name == "...":
        return True
    first = name[0]
    if not (first.isalpha() or first == "."):
        return False
    if first == "." and len(name) > 1 and name[1].isdigit():
        return False
    return all(ch.isalnum() or ch in "._" for ch in name)


def _quote_string(s: str) -> str:
    esc = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{esc}"'


def _needs_parens(main_prec: int, main_right: bool, arg: Node, left: bool) -> bool:
    """R's deparse ``needsparens``: parenthesize an operand whose operator binds more loosely
    than the main operator, or equally tightly on the side where associativity would regroup."""
    if not isinstance(arg, Call):
        return False
    if len(arg.args) == 1 and arg.fn in _UNARY:
        if not left:
            return False
        prec = _PREC_SIGN if arg.fn in "+-" else _UNARY[arg.fn]
    elif len(arg.args) == 2 and _binary_info(arg.fn) is not None:
        prec = _binary_info(arg.fn)[0]  # type: ignore[index]
        if main_prec == _PREC_COMPARE and prec == _PREC_COMPARE:
            return True
    else:
        return False
    return main_prec > prec or (main_prec == prec and left == main_right)


def deparse(node: Node) -> str:
    """The expression as R's ``deparse()`` writes it (one line, 15 significant digits)."""
    if isinstance(node, Name):
        return node.id if _is_syntactic(node.id) or node.id in _CONSTANTS else f"`{node.id}`"
    if isinstance(node, Num):
        if node.integer:
            return f"{int(node.value)}L"
        return format_number(node.value)
    if isinstance(node, Str):
        return _quote_string(node.value)
    fn, args = node.fn, node.args
    if fn == "(" and len(args) == 1:
        return f"({deparse(args[0])})"
    if _is_chained(node):
        return _deparse_chain(node)
    if len(args) == 1 and fn in _UNARY:
        inner = deparse(args[0])
        if _needs_parens(_UNARY[fn], False, args[0], True):
            inner = f"({inner})"
        return f"{fn}{inner}"
    parts = [deparse(a) if nm is None else f"{nm if _is_syntactic(nm) else '`' + nm + '`'} = "
             f"{deparse(a)}" for a, nm in zip(args, node.names, strict=True)]
    head = fn if _is_syntactic(fn) else f"`{fn}`"
    return f"{head}({', '.join(parts)})"


def _is_chained(node: Node) -> bool:
    """A binary operator call (``a + b``, ``a:b``, ``a | b``) or an index ``x[i]``: the calls
    whose left operand :func:`deparse` follows by iteration."""
    return (isinstance(node, Call) and len(node.args) == 2
            and (node.fn == "[" or _binary_info(node.fn) is not None))


def _deparse_chain(node: Call) -> str:
    """Deparse ``node`` and the chain of operator calls down its left operands (as long as
    they need no parentheses there) in one pass: ``x1 + x2 + ... + x10000`` is one chain."""
    chain = [node]
    while True:
        call, left = chain[-1], chain[-1].args[0]
        if not _is_chained(left) or (call.fn != "[" and _left_needs_parens(call, left)):
            break
        chain.append(left)
    innermost = chain[-1]
    first = deparse(innermost.args[0])
    if innermost.fn != "[" and _left_needs_parens(innermost, innermost.args[0]):
        first = f"({first})"
    parts = [first]
    for call in reversed(chain):
        rhs = deparse(call.args[1])
        if call.fn == "[":
            parts.append(f"[{rhs}]")
            continue
        prec, right_assoc, spaced = _binary_info(call.fn)  # type: ignore[misc]
        if _needs_parens(prec, right_assoc, call.args[1], False):
            rhs = f"({rhs})"
        parts.append(f" {call.fn} {rhs}" if spaced else f"{call.fn}{rhs}")
    return "".join(parts)


def _left_needs_parens(call: Call, left: Node) -> bool:
    prec, right_assoc, _ = _binary_info(call.fn)  # type: ignore[misc]
    return _needs_parens(prec, right_assoc, left, True)


# ---------------------------------------------------------------------------------------------
# terms(): R's expansion of a model formula into terms
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Terms:
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
                           f"{_excerpt(deparse(call), quote=False)}; write the terms you need")
    return _trim([a | b for a in left for b in right])


def _trim(terms_: list[int]) -> list[int]:
    """TrimRepeats: drop empty and repeated terms, keeping first occurrences."""
    return [t for t in dict.fromkeys(terms_) if t]


def _union(terms_: list[int]) -> int:
    acc = 0
    for t in terms_:
        acc |= t
    return acc


def terms(rhs: Node | str) -> Terms:
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


@lru_cache(maxsize=_CACHE_SIZE)
def _terms_of_text(rhs: str) -> Terms:
    return _terms_of(parse_expr(rhs))


def _terms_of(node: Node) -> Terms:
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
    return Terms(tuple(b.variables), tuple(ordered), b.intercept, offsets, tuple(codes))


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
        raise FormulaError(f"grouping factor {_excerpt(deparse(group), quote=False)} nests "
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
        text = _excerpt(deparse(group), quote=False)
        raise FormulaError(f"unsupported grouping factor {text}: use a variable name or an "
                           f"interaction of names such as a:b")


def parse_formula(formula: str) -> ParsedFormula:
    """Split a glmer formula into response, fixed part and random-effects terms, as lme4 does
    (cached: the same text gives the same, immutable, object).

    >>> parse_formula("y ~ x + (1 | a/b)").bars
    (Bar(lhs='1', group='b:a'), Bar(lhs='1', group='a'))
    """
    return _parse_formula(_check_text(formula))


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_formula(formula: str) -> ParsedFormula:
    node = parse_expr(formula)
    if not (isinstance(node, Call) and node.fn == "~"):
        raise FormulaError(f"not a formula (no '~'): {_excerpt(formula)}")
    if len(node.args) != 2:
        raise FormulaError(f"the formula has no response: {_excerpt(formula)}")
    lhs, rhs = node.args
    if _contains_name(lhs, "~") or _contains_name(rhs, "~"):
        raise FormulaError(f"invalid model formula: more than one '~' in {_excerpt(formula)}")
    bars: list[Bar] = []
    for bar in _find_bars(_expand_double_verts(rhs)):
        for b in _expand_slash(bar):
            _check_group(b.args[1])
            lhs_node = b.args[0]
            terms(lhs_node)  # validates the lhs as a model formula
            bars.append(Bar(deparse(lhs_node), deparse(b.args[1])))
    if not bars:
        raise FormulaError(f"No random effects terms specified in formula: {_excerpt(formula)} has "
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
    b = _TermsBuilder()
    b.install(parse_expr(parsed.response))
    b.extract(parse_expr(parsed.fixed))
    for bar in parsed.bars:
        b.extract(parse_expr(bar.lhs))
        b.extract(parse_expr(bar.group))
    return tuple(b.variables)
