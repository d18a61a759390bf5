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

Nothing here looks at data, and every result is immutable (frozen dataclasses and tuples), so
the parses of formula text are cached: refitting a formula, or building X and Z from the
pieces of one, does not parse the same text again.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from .errors import FormulaError

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
            value = float(int(body, 16)) if body[:2].lower() == "0x" else float(body)
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
                                   f"position {i} in {text!r}")
            toks.append(_Tok("name" if c == "`" else "str", text[i:j + 1], i, "".join(buf)))
            i = j + 1
            continue
        if c == "%":
            j = text.find("%", i + 1)
            if j < 0:
                raise FormulaError(f"unterminated %operator% at position {i} in {text!r}")
            toks.append(_Tok("op", text[i:j + 1], i))
            i = j + 1
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                toks.append(_Tok("op", "^" if op == "**" else op, i))
                i += len(op)
                break
        else:
            raise FormulaError(f"unexpected character {c!r} at position {i} in {text!r}")
    toks.append(_Tok("end", "", n))
    return toks


class _Parser:
    """A precedence-climbing parser for R expressions (the subset formulas use)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self._check_parentheses()

    def _check_parentheses(self) -> None:
        stack: list[_Tok] = []
        pairs = {")": "(", "]": "["}
        for t in self.toks:
            if t.kind != "op":
                continue
            if t.text in "([":
                stack.append(t)
            elif t.text in ")]":
                if not stack or stack[-1].text != pairs[t.text]:
                    raise FormulaError(f"unbalanced parentheses: unexpected {t.text!r} at "
                                       f"position {t.pos} in {self.text!r}")
                stack.pop()
        if stack:
            raise FormulaError(f"unbalanced parentheses: {stack[-1].text!r} at position "
                               f"{stack[-1].pos} is never closed in {self.text!r}")

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
        return FormulaError(f"cannot parse {self.text!r}: {what}, found {got} at position {t.pos}")

    def parse(self) -> Node:
        node = self.expr(0)
        if self.peek().kind != "end":
            raise self.error(self.peek(), "expected the end of the expression")
        return node

    def expr(self, min_prec: int) -> Node:
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
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty")
    return text


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
        return node.id if _is_syntactic(node.id) else f"`{node.id}`"
    if isinstance(node, Num):
        if node.integer:
            return f"{int(node.value)}L"
        return format_number(node.value)
    if isinstance(node, Str):
        return _quote_string(node.value)
    fn, args = node.fn, node.args
    if fn == "(" and len(args) == 1:
        return f"({deparse(args[0])})"
    if fn == "[" and len(args) == 2:
        return f"{deparse(args[0])}[{deparse(args[1])}]"
    info = _binary_info(fn)
    if len(args) == 2 and info is not None:
        prec, right_assoc, spaced = info
        lhs, rhs = deparse(args[0]), deparse(args[1])
        if _needs_parens(prec, right_assoc, args[0], True):
            lhs = f"({lhs})"
        if _needs_parens(prec, right_assoc, args[1], False):
            rhs = f"({rhs})"
        return f"{lhs} {fn} {rhs}" if spaced else f"{lhs}{fn}{rhs}"
    if len(args) == 1 and fn in _UNARY:
        inner = deparse(args[0])
        if _needs_parens(_UNARY[fn], False, args[0], True):
            inner = f"({inner})"
        return f"{fn}{inner}"
    parts = [deparse(a) if nm is None else f"{nm if _is_syntactic(nm) else '`' + nm + '`'} = "
             f"{deparse(a)}" for a, nm in zip(args, node.names, strict=True)]
    head = fn if _is_syntactic(fn) else f"`{fn}`"
    return f"{head}({', '.join(parts)})"


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
        return tuple(i for i in range(len(self.variables)) if term >> i & 1)

    @property
    def labels(self) -> tuple[str, ...]:
        """R's ``term.labels``: variable names joined by ``:`` in variable order."""
        names = self.variable_names
        return tuple(":".join(names[i] for i in self.term_variables(t)) for t in self.terms)


_SPECIAL = frozenset({"+", ":", "*", "%in%", "/", "^", "-", "("})


def _is_const(node: Node, value: float) -> bool:
    return isinstance(node, Num) and node.value == value


class _TermsBuilder:
    """A port of ``termsform``'s ExtractVars / EncodeVars (R's model.c)."""

    def __init__(self) -> None:
        self.variables: list[Node] = []
        self.keys: list[str] = []
        self.intercept = True
        self.parity = True

    def install(self, node: Node) -> int:
        key = deparse(node)
        if key not in self.keys:
            self.keys.append(key)
            self.variables.append(node)
        return self.keys.index(key)

    def extract(self, node: Node) -> None:
        """ExtractVars: record the variables in order of appearance."""
        if _is_const(node, 0) or _is_const(node, 1):
            return
        if isinstance(node, Name):
            if node.id == ".":
                raise FormulaError("'.' in a formula (all other columns) is not supported; "
                                   "name the variables")
            self.install(node)
            return
        if not isinstance(node, Call):
            raise FormulaError(f"invalid model formula: the constant {deparse(node)} is not a "
                               f"term (only 0 and 1 are)")
        if node.fn == "~":
            raise FormulaError("invalid model formula: '~' inside the right-hand side")
        if node.fn == "^" and len(node.args) == 2:
            if not isinstance(node.args[1], Num):
                raise FormulaError(f"invalid power in formula: {deparse(node)}")
            self.extract(node.args[0])
            return
        if node.fn in _SPECIAL:
            for a in node.args:
                self.extract(a)
            return
        self.install(node)

    def encode(self, node: Node) -> list[int]:
        """EncodeVars: the list of terms (bit masks) that a formula expression stands for."""
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
        if fn == "(" or (fn == "+" and len(args) == 1):
            return self.encode(args[0])
        if fn == "+":
            return _trim(self.encode(args[0]) + self.encode(args[1]))
        if fn == ":":
            left, right = self.encode(args[0]), self.encode(args[1])
            return _trim([a | b for a in left for b in right])
        if fn == "*":
            left, right = self.encode(args[0]), self.encode(args[1])
            return _trim(left + right + [a | b for a in left for b in right])
        if fn == "%in%":
            left, right = self.encode(args[0]), self.encode(args[1])
            allr = _union(right)
            return _trim([a | allr for a in left])
        if fn == "/":
            left, right = self.encode(args[0]), self.encode(args[1])
            alll = _union(left)
            return _trim(left + [alll | b for b in right])
        if fn == "^":
            power = args[1]
            if not isinstance(power, Num) or power.value < 1 or power.value != int(power.value):
                raise FormulaError(f"invalid power in formula: {deparse(node)}")
            left = self.encode(args[0])
            right = left
            for _ in range(int(power.value) - 1):
                right = _trim([a | b for a in left for b in right])
            return right
        if fn == "-":
            if len(args) == 1:
                left, delete = [], args[0]
            else:
                left, delete = self.encode(args[0]), args[1]
            self.parity = not self.parity
            right = self.encode(delete)
            self.parity = not self.parity
            return [t for t in left if t not in right]
        raise FormulaError(f"invalid model formula: {deparse(node)}")  # pragma: no cover


def _trim(terms_: list[int]) -> list[int]:
    """TrimRepeats: drop empty and repeated terms, keeping first occurrences."""
    out: list[int] = []
    for t in terms_:
        if t and t not in out:
            out.append(t)
    return out


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
    names = [deparse(v) for v in b.variables]
    offsets = tuple(i for i, nm in enumerate(names) if nm.startswith("offset("))
    offset_mask = _union([1 << i for i in offsets])
    kept = [t for t in encoded if not t & offset_mask]
    ordered = sorted(kept, key=lambda t: t.bit_count())  # stable: R's order within a degree
    codes = []
    for k, t in enumerate(ordered):
        row = []
        for i in range(len(names)):
            if not t >> i & 1:
                row.append(0)
                continue
            rest = t & ~(1 << i)
            margin = rest == 0 or any(rest & ~prev == 0 for prev in ordered[:k])
            row.append(1 if margin else 2)
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


def _any_bars(node: Node) -> bool:
    if _is_bar(node):
        return True
    return isinstance(node, Call) and any(_any_bars(a) for a in node.args)


def _expand_double_verts(node: Node) -> Node:
    """lme4 ``expandDoubleVerts``: ``(x + z || g)`` becomes ``(1 | g) + (0 + x | g) + (0 + z | g)``,
    one term per term label of ``~ x + z`` plus an intercept term unless the lhs removes it."""
    if not isinstance(node, Call):
        return node
    if node.fn == "||" and len(node.args) == 2:
        lhs_terms = terms(node.args[0])
        pieces = (["1"] if lhs_terms.intercept else []) + [f"0+{lab}" for lab in lhs_terms.labels]
        group = deparse(node.args[1])
        text = "~(" + ")+(".join(f"{p}|{group}" for p in pieces) + ")"
        expanded = parse_expr(text)
        assert isinstance(expanded, Call)
        return expanded.args[0]
    return Call(node.fn, tuple(_expand_double_verts(a) for a in node.args), node.names)


def _find_bars(node: Node) -> list[Call]:
    """lme4 ``findbars``' inner ``fb``: the bars, left to right."""
    if not isinstance(node, Call):
        return []
    if node.fn == "(":
        return _find_bars(node.args[0])
    if node.fn == "|" and len(node.args) == 2:
        return [node]
    if len(node.args) == 1:
        return _find_bars(node.args[0])
    if len(node.args) >= 2:
        return _find_bars(node.args[0]) + _find_bars(node.args[1])
    return []


def _expand_slash(bar: Call) -> list[Call]:
    """lme4 ``expandSlash``: ``(lhs | a/b)`` becomes ``(lhs | b:a), (lhs | a)``; ``a/b/c`` gives
    ``c:(b:a), b:a, a``."""
    lhs, group = bar.args

    def slash_terms(x: Node) -> Node | list:
        if not _contains_name(x, "/"):
            return x
        if not (isinstance(x, Call) and x.fn == "/"):
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
    if not isinstance(trms, list):
        return [bar]
    for leaf in flatten(trms):
        if not isinstance(leaf, Name):
            raise FormulaError(
                f"grouping factor {deparse(group)}: '/' nesting needs plain factors on its "
                f"left (lme4 mis-expands {deparse(leaf)}); write the interaction terms out")
    return [Call("|", (lhs, g)) for g in flatten(make_interaction(trms))]


def _contains_name(node: Node, fn: str) -> bool:
    return isinstance(node, Call) and (node.fn == fn or any(_contains_name(a, fn)
                                                            for a in node.args))


def _no_bars(node: Node) -> Node | None:
    """lme4 ``nobars_``: the expression with every bar term removed (None if nothing is left)."""
    if not _any_bars(node):
        return node
    if _is_bar(node):
        return None
    assert isinstance(node, Call)
    if node.fn not in ("~", "(") and any(_is_bar(a) for a in node.args):
        return None
    if len(node.args) == 1:
        inner = _no_bars(node.args[0])
        return None if inner is None else Call(node.fn, (inner,), node.names)
    left, right = _no_bars(node.args[0]), _no_bars(node.args[1])
    if left is None:
        return right
    if right is None:
        return left
    return Call(node.fn, (left, right, *node.args[2:]), node.names)


def _check_group(group: Node, whole: Node) -> None:
    """Grouping factors are names, possibly combined with ``:`` (lme4 evaluates them in the model
    frame, which holds only variables)."""
    if isinstance(group, Name):
        return
    if isinstance(group, Call) and group.fn in (":", "(") and len(group.args) in (1, 2):
        for a in group.args:
            _check_group(a, whole)
        return
    raise FormulaError(f"unsupported grouping factor {deparse(whole)}: use a variable name or "
                       f"an interaction of names such as a:b")


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
        raise FormulaError(f"not a formula (no '~'): {formula!r}")
    if len(node.args) != 2:
        raise FormulaError(f"the formula has no response: {formula!r}")
    lhs, rhs = node.args
    if _contains_name(lhs, "~") or _contains_name(rhs, "~"):
        raise FormulaError(f"invalid model formula: more than one '~' in {formula!r}")
    bars: list[Bar] = []
    for bar in _find_bars(_expand_double_verts(rhs)):
        for b in _expand_slash(bar):
            _check_group(b.args[1], b.args[1])
            lhs_node = b.args[0]
            terms(lhs_node)  # validates the lhs as a model formula
            bars.append(Bar(deparse(lhs_node), deparse(b.args[1])))
    if not bars:
        raise FormulaError(f"No random effects terms specified in formula: {formula!r} has "
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
