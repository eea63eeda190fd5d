"""Errors. Every user mistake is a :class:`PlannerError`: the CLI prints ``str(err)`` on one line
to stderr and exits with ``err.exit_code`` (2 for invalid input or usage)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_INVALID = 2


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
