"""YAML model of the ``windows:`` section of a rule pack: counts and sums over windows.

::

    windows:
      - id: repeated-identical-calls
        severity: medium
        when: operation = 'execute_tool'
        group_by: [tool_name, tool_arguments]   # identical calls are counted together
        more_than: 3                            # fires when the count exceeds 3 …
        per: {turns: 5}                         # … in the last 5 turns
      - id: daily-spend
        severity: high
        when: tool_name = 'pay'
        value: try_cast(tool_arguments->>'amount' as double)   # sum instead of count
        more_than: 200
        per: {attribute: driftwatch.sim.day}    # one window per value of the attribute

The runtime semantics are in :mod:`driftwatch.monitor.rules.window`.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from driftwatch.monitor.rules.spec import (
    CheckedRule,
    SqlExpression,
    SqlNumber,
    SqlPredicate,
)

__all__ = ["WindowPer", "WindowRule"]


class WindowPer(BaseModel):
    """Exactly one of ``turns`` (a sliding window over the last k ≥ 1 turns) or
    ``attribute`` (one window per value of that span attribute, e.g. a simulated day)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    turns: int | None = Field(default=None, ge=1)
    attribute: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.turns is None) == (self.attribute is None):
            raise ValueError("give exactly one of turns or attribute")
        return self

    def describe(self) -> dict[str, int | str]:
        if self.turns is not None:
            return {"turns": self.turns}
        return {"attribute": str(self.attribute)}


class WindowRule(CheckedRule):
    """Spans matching ``when``, counted (or ``value`` summed) per ``group_by`` key and
    window; a finding when the total first exceeds ``more_than`` (n ≥ 0)."""

    when: SqlPredicate
    group_by: list[SqlExpression] = Field(default_factory=list)
    value: SqlNumber | None = None
    more_than: int | float = Field(ge=0)
    per: WindowPer
