"""What may reach R's evaluator: code from the program, never a string read from a file.

A fixture file is data.  Its data frame goes to R as vectors (never parsed), and of its
strings only these reach R, each checked here first:

- the formula: parsed by the engine's own parser (:func:`glmm.design.formula.parse_expr`), and every
  function it calls must be an operator of the formula language or one of the functions the
  engine's model frame evaluates (:data:`glmm.design.evaluate.FUNCTIONS`).  R checks its own
  parse of the text against the same list before it evaluates anything (``parity_formula`` in
  ``r/glmer_case.R``), so a text that the two parsers read differently is refused too;
- family and link: one of :data:`parity.cases.FAMILY_LINKS`;
- weights and offset: the name of a numeric column of the data, passed to R as a symbol;
- the control kind: ``default`` or ``tight``, whose settings are written in the R code.

A case's ``data_r`` is an R expression, so it is evaluated only for a case defined in code
(the corpus in :mod:`parity.cases`, or a case built in a Python file, which is code by its
nature as a conftest.py is).  A case read from a fixture file keeps its ``data_r`` as a record
only: :func:`data_expression` gives the corpus's own expression when the case is the corpus
entry of that name, and refuses otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .cases import FAMILY_LINKS, Case, find_case
from .errors import UnsafeInputError

#: The formula language's operators that R may see in a formula: model-formula operators
#: (``~ + - * / : ^ %in% | ||`` and parentheses) and those of the engine's evaluator.
FORMULA_OPERATORS: frozenset[str] = frozenset(
    ("~", "+", "-", "*", "/", ":", "^", "%in%", "|", "||", "(", "%%", "%/%",
     "==", "!=", "<", ">", "<=", ">=", "&", "&&", "!"))

#: The control settings a fit may name; their values are written in ``r/glmer_case.R``.
CONTROL_KINDS: tuple[str, ...] = ("default", "tight")


def allowed_functions() -> frozenset[str]:
    """Every function a formula sent to R may call: the operators, and the functions the
    engine's model frame evaluates."""
    from glmm.design.evaluate import FUNCTIONS

    return FORMULA_OPERATORS | frozenset(FUNCTIONS)


def check_formula(formula: object, field: str = "formula") -> str:
    """The formula text, if the engine's parser reads it and it calls only allowed functions;
    else UnsafeInputError naming ``field``."""
    from glmm.design.expression import Call, parse_expr
    from glmm.errors import GlmmError

    if not isinstance(formula, str):
        raise UnsafeInputError(field, f"a formula must be a string, not "
                                      f"{type(formula).__name__}")
    try:
        node = parse_expr(formula)
    except (GlmmError, ValueError, RecursionError) as exc:
        raise UnsafeInputError(field, f"glmm's formula parser refuses {formula!r}: {exc}; a "
                                      "formula is sent to R only once glmm's parser reads it") \
            from None
    if not (isinstance(node, Call) and node.fn == "~" and len(node.args) == 2):
        raise UnsafeInputError(field, f"{formula!r} is not a two-sided formula (y ~ terms)")
    allowed = allowed_functions()
    stack: list[Any] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Call):
            if n.fn not in allowed:
                raise UnsafeInputError(
                    field, f"{formula!r} calls {n.fn!r}, which is not a function of the "
                           f"formula language; a formula may call {', '.join(sorted(allowed))}")
            stack.extend(n.args)
    return formula


def check_family(family: object, link: object, where: str = "case") -> None:
    if family not in FAMILY_LINKS:
        raise UnsafeInputError(f"{where}.family",
                               f"{family!r} is not one of {', '.join(FAMILY_LINKS)}")
    links = FAMILY_LINKS[str(family)]
    if link not in links:
        raise UnsafeInputError(f"{where}.link", f"{link!r} is not a link of {family}; choose "
                                               f"from {', '.join(links)}")


def check_column_argument(value: object, arg: str, columns: Mapping[str, str],
                          where: str = "case") -> None:
    """``value`` (weights or offset) is None or the name of a numeric column; ``columns``
    maps each column name to its kind."""
    if value is None:
        return
    if not isinstance(value, str) or value not in columns:
        raise UnsafeInputError(f"{where}.{arg}", f"{value!r} is not a column of the data (the "
                                                 f"columns are {', '.join(columns)}); {arg} "
                                                 "names a column")
    if columns[value] not in ("double", "integer"):
        raise UnsafeInputError(f"{where}.{arg}", f"column {value!r} is a {columns[value]} "
                                                 f"column; {arg} must name a numeric column")


def check_spec(spec: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """The parts of a case spec that R sees, each checked: formula, family, link, weights,
    offset.  ``columns`` maps the data's column names to their kinds."""
    check_formula(spec.get("formula"), "case.formula")
    check_family(spec.get("family"), spec.get("link"))
    for arg in ("weights", "offset"):
        check_column_argument(spec.get(arg), arg, columns)
    return {k: spec.get(k) for k in ("formula", "family", "link", "weights", "offset")}


def check_control(kind: object) -> str:
    if kind not in CONTROL_KINDS:
        raise UnsafeInputError("control", f"{kind!r} is not one of {', '.join(CONTROL_KINDS)}")
    return str(kind)


def check_nagq(nAGQ: object) -> int:
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, int) or not 0 <= nAGQ <= 100:
        raise UnsafeInputError("nAGQ", f"{nAGQ!r} is not an integer within 0..100")
    return nAGQ


def data_expression(case: Case) -> str:
    """The R expression that makes the case's data, if it may be evaluated.

    A case defined in code gives its own ``data_r``.  A case read from a fixture file gives
    the expression of the corpus case of the same name, and only if it is that case; any
    other is refused with UnsafeInputError, and nothing from the file reaches R.
    """
    if case.read_from is None:
        return case.data_r
    corpus = find_case(case.name)
    if corpus is not None and corpus == case:
        return corpus.data_r
    raise UnsafeInputError(
        "case.data_r",
        f"case {case.name!r} was read from {case.read_from} and is not the corpus case of "
        "that name: its data_r is R code from a file, which the harness never evaluates. "
        "Use the corpus case (parity.cases.get_case), or define the case in Python code; a "
        "fixture's data are already inline in its data field.")


def column_kinds(columns: Iterable[Any]) -> dict[str, str]:
    """Column name -> kind, for :func:`check_spec`."""
    return {c.name: c.kind for c in columns}
