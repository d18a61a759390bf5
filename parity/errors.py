"""Error types of the parity harness.  Each names what went wrong and where."""

from __future__ import annotations


class ParityError(Exception):
    """Base class of every error the harness raises on purpose."""


class RUnavailableError(ParityError):
    """R, lme4 or rpy2 cannot be used here (missing, or failed to load).

    The harness catches this to fall back to fixtures, and the pytest plugin turns it into a
    skip with this message as the reason.
    """


class RFitError(ParityError):
    """R raised an error while fitting or evaluating a case."""


class RTimeoutError(RFitError):
    """An R call did not finish within its time limit (``--r-timeout``); R was stopped."""


class UnsafeInputError(ParityError, ValueError):
    """A string that would reach R's evaluator is refused: a formula that glmm's parser or
    its function whitelist refuses, a family, link, weights, offset or control outside its
    whitelist, or the ``data_r`` of a case read from a file (see :mod:`parity.trust`).

    ``field`` names the input at fault (``case.formula``, ``case.weights``, ...).
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.field, self.problem))


class FixtureError(ParityError):
    """A fixture file is missing, corrupt, of an unknown schema version, or fails validation.

    ``path`` is the file and ``field`` the JSON path of the offending field (``$`` for the
    whole document).
    """

    #: what to do about it, appended to the message
    HINT = ("fixtures are written only by `python -m parity generate`: regenerate this one "
            "(`parity generate --case NAME`, with --cases FILE for your own cases)")

    def __init__(self, path: object, field: str, problem: str) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}: field {field}: {problem} ({self.HINT})")

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:  # pickles through __init__
        return (type(self), (self.path, self.field, self.problem))


class CaseError(ParityError, ValueError):
    """A case that cannot be fitted as given: ``case`` names it and ``field`` the field at
    fault (``formula``, ``offset``, ``nAGQ``, ...); ``where`` is the case file, if any."""

    def __init__(self, case: str, field: str, problem: str, where: str = "") -> None:
        self.case = case
        self.field = field
        self.problem = problem
        self.where = where
        at = f"{where}: " if where else ""
        super().__init__(f"{at}case {case!r}: field {field}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str, str]]:
        return (type(self), (self.case, self.field, self.problem, self.where))


class UnknownCaseError(ParityError, KeyError):
    """A case name (or a --case pattern) that matches no case."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])
