"""R's expression language, as far as model formulas need it: parse and deparse.

Formula text such as ``"cbind(s, n - s) ~ period + (1 | herd)"`` is parsed with R's grammar
(operator precedence as in R's ``?Syntax``) into a small immutable expression tree
(:class:`Name`, :class:`Num`, :class:`Str`, :class:`Call`), and :func:`deparse` prints a tree
as R's ``deparse()`` does (``a * b``, ``a/b``, ``x^2``, ``I(week > 2)``, ``1e+05``), so that
variable and column names come out exactly as R names them.  :mod:`glmm.design.terms` expands
a right-hand side into R's model terms and :mod:`glmm.design.formula` takes lme4's bars out.

Chains of operators (``x1 + x2 + ... + x5000``) are parsed and deparsed by iteration, never by
recursion.  Brackets nest at most 50 deep, as in R's parser, and expressions at most
:data:`MAX_DEPTH` levels; deeper ones are a :class:`~glmm.errors.FormulaError`.  Parses are
cached (every result is immutable).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

from ..errors import ArgumentTypeError, FormulaError


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


@dataclass(frozen=True, eq=False)
class _Tok:
    """One token of formula text, at character ``pos``."""

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
                                   f"position {i} in {excerpt(text)}")
            toks.append(_Tok("name" if c == "`" else "str", text[i:j + 1], i, "".join(buf)))
            i = j + 1
            continue
        if c == "%":
            j = text.find("%", i + 1)
            if j < 0:
                raise FormulaError(f"unterminated %operator% at position {i} in {excerpt(text)}")
            toks.append(_Tok("op", text[i:j + 1], i))
            i = j + 1
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                toks.append(_Tok("op", "^" if op == "**" else op, i))
                i += len(op)
                break
        else:
            raise FormulaError(f"unexpected character {c!r} at position {i} in {excerpt(text)}")
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
                        f"position {t.pos} in {excerpt(self.text)} (R's parser limit); "
                        f"remove redundant parentheses")
            elif t.text in ")]":
                if not stack or stack[-1].text != pairs[t.text]:
                    raise FormulaError(f"unbalanced parentheses: unexpected {t.text!r} at "
                                       f"position {t.pos} in {excerpt(self.text)}")
                stack.pop()
        if stack:
            raise FormulaError(f"unbalanced parentheses: {stack[-1].text!r} at position "
                               f"{stack[-1].pos} is never closed in {excerpt(self.text)}")

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
        return FormulaError(f"cannot parse {excerpt(self.text)}: {what}, found {got} at "
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
                f"the expression {excerpt(self.text)} is nested more than {MAX_DEPTH} levels "
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
CACHE_SIZE = 512


def check_text(text: object) -> str:
    if text is None or (isinstance(text, str) and not text.strip()):
        raise FormulaError("the formula is empty")
    if not isinstance(text, str):
        raise ArgumentTypeError(f"formula must be a string such as \"y ~ x + (1 | g)\", not "
                                f"{type(text).__name__}")
    return text


def excerpt(text: str, width: int = 200, quote: bool = True) -> str:
    """The text for a message (quoted by repr unless ``quote`` is false), shortened in the
    middle when long."""
    if len(text) > width:
        text = text[:width // 2] + " ... " + text[-width // 2:]
    return repr(text) if quote else text


def parse_expr(text: str) -> Node:
    """Parse one R expression (``"y ~ x + (1 | g)"``, ``"I(age^2)"``) into a tree."""
    return _parse_text(check_text(text))


@lru_cache(maxsize=CACHE_SIZE)
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
