"""Errors and exit codes. Every user mistake is a :class:`PlannerError`: the CLI prints
``str(err)`` on one line to stderr and exits with ``err.exit_code`` (2 for invalid input or
usage). Anything else that escapes a command is a bug in the planner: the CLI prints one line
naming the command and the exception and exits with :data:`EXIT_INTERNAL` (3), so that a CI job
tells a crash from a violated budget (1) and from a bad input (2).

Exit codes: ``0`` done (every budget met); ``1`` a budget is violated (``planner check``);
``2`` invalid input or usage; ``3`` internal error (a crash; set ``PLANNER_TRACEBACK=1`` to see
the traceback).
"""

from __future__ import annotations

#: Done; for ``planner check``: every budget met.
EXIT_OK = 0
#: ``planner check``: a budget is violated.
EXIT_VIOLATION = 1
#: Invalid input or usage (a :class:`PlannerError`).
EXIT_INVALID = 2
#: Internal error: an unexpected exception (a bug), never a verdict on the user's design.
EXIT_INTERNAL = 3


class PlannerError(Exception):
    """A user-facing error: ``file: field: message`` on one line."""

    exit_code = EXIT_INVALID

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.field = field
        #: 1-based line in ``file`` when known (for CI annotations); not printed.
        self.line = line

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        one_line = " ".join(self.message.split())
        return ": ".join([*parts, one_line])


class SpecError(PlannerError):
    """A spec file that cannot be read, parsed or validated."""


class CatalogError(PlannerError):
    """An unknown catalog name."""


class UsageError(PlannerError):
    """Inconsistent or out-of-range command-line or API arguments."""
