"""The ``sequences:`` section of a rule pack (fields every rule kind shares are in
:mod:`driftwatch.monitor.rules.spec`).

A sequence relates two spans of one run, ``a`` and ``b``, in one of four patterns::

    b_without_earlier_a   a b-span with no a-span before it (within ``within_turns``)
    a_then_b              a b-span within ``within_turns`` after an a-span
    a_not_followed_by_b   an a-span with no b-span within ``within_turns`` after it
    b_directly_after_a    the next span after an a-span (among ``among``) is a b-span

The runtime semantics are in :mod:`driftwatch.monitor.rules.sequence`.
"""

from __future__ import annotations

import enum

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
)

from driftwatch.monitor.rules.spec import CheckedRule, SqlExpression, SqlPredicate
from driftwatch.store import validate_pair_condition

__all__ = ["SequencePattern", "SequenceRule"]

class SequencePattern(enum.StrEnum):
    B_WITHOUT_EARLIER_A = "b_without_earlier_a"
    A_THEN_B = "a_then_b"
    A_NOT_FOLLOWED_BY_B = "a_not_followed_by_b"
    B_DIRECTLY_AFTER_A = "b_directly_after_a"


# which optional fields each pattern takes; a field given to another pattern is an error
_TAKES_WITHIN = {
    SequencePattern.B_WITHOUT_EARLIER_A,
    SequencePattern.A_THEN_B,
    SequencePattern.A_NOT_FOLLOWED_BY_B,
}
_TAKES_WHERE = {SequencePattern.B_WITHOUT_EARLIER_A, SequencePattern.A_THEN_B}


class SequenceRule(CheckedRule):
    """Two span predicates ``a`` and ``b`` related by ``pattern`` within one run.

    - ``same``: value expressions that must be equal on both spans (correlation key,
      e.g. ``["tool_arguments->>'path'"]``); NULL equals NULL here;
    - ``within_turns``: k ≥ 0 (0 = the same turn); required for
      ``a_not_followed_by_b``, optional for ``a_then_b`` and ``b_without_earlier_a``,
      not allowed for ``b_directly_after_a``;
    - ``reset_on``: a predicate that forgets the a-span(s) seen so far (for the same key);
    - ``among``: only for ``b_directly_after_a``: which spans count as "the next span"
      (default: every span);
    - ``a_values`` / ``b_values``: named value expressions evaluated on a-spans (and
      remembered with them) and on b-spans; ``where``: a boolean expression over the
      structs ``a`` and ``b`` of those values that an (a, b) pair must satisfy (only for
      ``b_without_earlier_a`` and ``a_then_b``; see :mod:`driftwatch.store.pairs`).
    """

    pattern: SequencePattern
    a: SqlPredicate
    b: SqlPredicate
    same: list[SqlExpression] = Field(default_factory=list)
    within_turns: int | None = Field(default=None, ge=0, validate_default=True)
    reset_on: SqlPredicate | None = None
    among: SqlPredicate | None = Field(default=None, validate_default=True)
    a_values: dict[str, SqlExpression] = Field(default_factory=dict)
    b_values: dict[str, SqlExpression] = Field(default_factory=dict)
    where: str | None = Field(default=None, validate_default=True)

    @field_validator("within_turns")
    @classmethod
    def _within_fits_pattern(cls, value: int | None, info: ValidationInfo) -> int | None:
        pattern = info.data.get("pattern")
        if pattern is None:
            return value
        if value is None and pattern is SequencePattern.A_NOT_FOLLOWED_BY_B:
            raise ValueError(f"required for pattern {pattern.value}")
        if value is not None and pattern not in _TAKES_WITHIN:
            raise ValueError(f"not allowed for pattern {pattern.value}")
        return value

    @field_validator("among")
    @classmethod
    def _among_fits_pattern(cls, value: str | None, info: ValidationInfo) -> str | None:
        pattern = info.data.get("pattern")
        if value is not None and pattern not in (None, SequencePattern.B_DIRECTLY_AFTER_A):
            raise ValueError(f"only allowed for pattern {SequencePattern.B_DIRECTLY_AFTER_A.value}")
        return value

    @field_validator("where")
    @classmethod
    def _where_fits_pattern(cls, value: str | None, info: ValidationInfo) -> str | None:
        pattern = info.data.get("pattern")
        if value is None:
            if info.data.get("a_values") or info.data.get("b_values"):
                raise ValueError("required when a_values or b_values are given")
            return None
        if pattern is not None and pattern not in _TAKES_WHERE:
            allowed = " and ".join(sorted(p.value for p in _TAKES_WHERE))
            raise ValueError(f"only allowed for patterns {allowed}")
        if not value.strip():
            raise ValueError("empty condition")
        if "a_values" not in info.data or "b_values" not in info.data:
            return value  # an invalid a_values/b_values is reported on its own
        error = validate_pair_condition(value, info.data["a_values"], info.data["b_values"])
        if error:
            raise ValueError(f"invalid SQL condition: {error}")
        return value
