"""Errors users see. Each carries a one-line message and the exit code the CLI uses."""

from __future__ import annotations


class DriftwatchError(Exception):
    """Base class: ``str(error)`` is the one line the CLI prints."""

    exit_code = 1


class UsageError(DriftwatchError):
    """Bad input from the user: a file, a field, a flag."""

    exit_code = 2


class SpecError(UsageError):
    """A scenario or rule-pack file is malformed. Message: ``path:line: field: problem``."""

    def __init__(self, path: str, line: int | None, field: str, problem: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


class NotFoundError(UsageError):
    """A named thing (scenario, rule pack, run) does not exist."""


class StoreError(DriftwatchError):
    """The database could not be opened, written or queried."""


class QueryError(UsageError):
    """User SQL was rejected or failed."""


class ModelError(DriftwatchError):
    """A model call failed after its retries."""


class SandboxError(DriftwatchError):
    """The sandbox refused or could not run something."""
