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


class FixtureError(ParityError):
    """A fixture file is missing, corrupt, of an unknown schema version, or fails validation.

    ``path`` is the file and ``field`` the JSON path of the offending field (``$`` for the
    whole document).
    """

    def __init__(self, path: object, field: str, problem: str) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        super().__init__(f"{self.path}: field {field}: {problem}")


class UnknownCaseError(ParityError, KeyError):
    """A case name that is not in the corpus."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])
