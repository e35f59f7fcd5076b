"""YAML models every rule kind shares (:class:`CheckedRule`, ids, checked SQL), and the
two kinds that need no runtime state: ``rules`` (:class:`Rule`, one span) and
``final_state`` (:class:`FinalStateCheck`, the sandbox after the run).

SQL is checked when the pack loads: a predicate must be a boolean expression over the
batch columns (:func:`~driftwatch.store.validate_predicate`), a value expression (``same``,
``group_by``, ``value``) one scalar expression over them. A problem becomes a
``path:line: field: problem`` error through :mod:`driftwatch.core.yamlfile`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from driftwatch.core.records import FindingKind, Severity
from driftwatch.store import validate_predicate
from driftwatch.store.predicates import validate_value

__all__ = [
    "CheckedRule",
    "FinalStateCheck",
    "Identifier",
    "Rule",
    "SqlExpression",
    "SqlNumber",
    "SqlPredicate",
]

Identifier = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")]


def _predicate(value: str) -> str:
    if not value.strip():
        raise ValueError("empty predicate")
    error = validate_predicate(value)
    if error:
        raise ValueError(f"invalid SQL predicate: {error}")
    return value


def _expression(value: str) -> str:
    error = validate_value(value)
    if error:
        raise ValueError(f"invalid SQL expression: {error}")
    return value


def _number(value: str) -> str:
    error = validate_value(value, numeric=True)
    if error:
        raise ValueError(f"invalid SQL expression: {error}")
    return value


SqlPredicate = Annotated[str, AfterValidator(_predicate)]
"""A SQL boolean expression over one span (checked at load)."""
SqlExpression = Annotated[str, AfterValidator(_expression)]
"""A scalar SQL expression over one span, e.g. ``tool_arguments->>'path'``."""
SqlNumber = Annotated[str, AfterValidator(_number)]
"""A numeric SQL expression over one span, e.g. ``try_cast(tool_arguments->>'x' as double)``."""


def _parse_severity(value: Any) -> Severity:
    if isinstance(value, str | int | Severity):
        return Severity.parse(value)
    raise ValueError(f"expected a severity name, got {type(value).__name__}")


class CheckedRule(BaseModel):
    """Fields every rule kind has. ``message`` is a ``str.format`` template filled
    safely (:func:`~driftwatch.monitor.evidence.safe_format`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    severity: Severity
    kind: FindingKind = FindingKind.VIOLATION
    description: str = ""
    message: str | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Severity:
        return _parse_severity(value)


class Rule(CheckedRule):
    """A SQL boolean expression over one span; true → a finding for that span."""

    when: SqlPredicate


class FinalStateCheck(CheckedRule):
    """A SQL boolean expression over the sandbox state after the run (table
    ``files(path, content, sha256)``); false → a finding for the run."""

    expect: str

    @field_validator("expect")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty expectation")
        return value
