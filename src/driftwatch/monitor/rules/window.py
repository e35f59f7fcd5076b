"""Window rules at runtime: counts and sums of matching spans per group and window.

Contract of :class:`WindowTracker` (the caller is
:class:`~driftwatch.monitor.rules.stateful.StatefulRules`): spans are stepped in stream
order, one thread, never raises for data. Semantics:

- each span matching ``when`` adds 1 (count) or its ``value`` (sum; a NULL or non-finite
  value is skipped, as SQL's ``sum`` skips NULL) to the window of its ``group_by`` key;
- ``per: {turns: k}``: the window is the last k turns, ``now - k + 1 … now``, where
  ``now`` is the run's highest turn so far (a span without a turn counts in ``now``);
- ``per: {attribute: name}``: one window per value of that span attribute (resource
  attributes too); a span without it belongs to the last value seen in the run (the
  simulated day is a run-level clock), spans before any value to the value ``None``;
- a window *breaches* when its total exceeds ``more_than``; it fires once per breach, on
  the span that crossed the line, not on every span while breached. A sliding window
  re-arms once its total is back at or below the limit (checked when the next matching
  span arrives); an attribute window fires at most once per value.

Sums are exact decimals (``0.1 + 0.2`` is ``0.3``), so a limit is not crossed by float
rounding. State is bounded: per group only the turns still in the window, at most
:data:`MAX_EVIDENCE_SPANS` remembered spans per turn (or per attribute value), and at most
``cap`` groups (least recently used forgotten first, reported as ``state_capped``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from driftwatch.core.records import SpanRecord
from driftwatch.monitor.rules.sequence import MAX_KEYS, BoundedMap, Hit, Key, SpanRef, hashable
from driftwatch.monitor.rules.window_spec import WindowRule

__all__ = ["MAX_EVIDENCE_SPANS", "WindowTracker"]

MAX_EVIDENCE_SPANS: Final = 20
"""Spans listed in a window finding's evidence (the most recent ones)."""

_MISSING: Final = object()


# (span id, turn, tool name, value or None): what evidence lists of each counted span
_Counted = tuple[str, int, str | None, int | float | None]


@dataclass(slots=True)
class _Bucket:
    """Matching spans of one turn (sliding windows) or one attribute value."""

    turn: int
    count: int = 0
    total: Decimal = Decimal(0)
    spans: deque[_Counted] = field(default_factory=lambda: deque(maxlen=MAX_EVIDENCE_SPANS))


@dataclass(slots=True)
class _Group:
    """One window: its buckets in turn order and running totals over them."""

    buckets: deque[_Bucket] = field(default_factory=deque)
    count: int = 0
    total: Decimal = Decimal(0)
    breached: bool = False

    def drop_before(self, first_turn: int) -> None:
        while self.buckets and self.buckets[0].turn < first_turn:
            bucket = self.buckets.popleft()
            self.count -= bucket.count
            self.total -= bucket.total

    def add(self, turn: int, counted: _Counted, amount: Decimal) -> None:
        """Add a span to the bucket of ``turn`` (created in turn order if new)."""
        buckets = self.buckets
        if buckets and buckets[-1].turn == turn:
            bucket = buckets[-1]
        else:
            bucket = next((b for b in buckets if b.turn == turn), None) or _Bucket(turn)
            if bucket.count == 0:
                # keep buckets in turn order; a span of an older turn is rare (late export)
                position = len(buckets)
                while position and buckets[position - 1].turn > turn:
                    position -= 1
                buckets.insert(position, bucket)
        bucket.count += 1
        bucket.total += amount
        bucket.spans.append(counted)
        self.count += 1
        self.total += amount


def _amount(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        amount = value if isinstance(value, Decimal) else Decimal(repr(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return amount if amount.is_finite() else None


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


_ONE: Final = Decimal(1)


class WindowTracker:
    """The state of one :class:`WindowRule` in one run (see the module docstring)."""

    def __init__(self, rule: WindowRule, cap: int = MAX_KEYS) -> None:
        self.rule = rule
        self._limit = Decimal(repr(rule.more_than))
        self._sums = rule.value is not None
        self._groups: BoundedMap[_Group] = BoundedMap(cap)
        self._attribute = rule.per.attribute
        self._current: Any = None  # last attribute value seen in the run

    @property
    def every_span(self) -> bool:
        """True when every span must be shown (``see``), to follow the attribute."""
        return self._attribute is not None

    def see(self, record: SpanRecord) -> None:
        """Follow the window attribute on any span of the run, matching or not."""
        if self._attribute is not None:
            value = record.attributes.get(self._attribute, _MISSING)
            if value is _MISSING:
                value = record.resource.get(self._attribute, _MISSING)
            if value is not _MISSING:
                self._current = value

    def step(
        self,
        record: SpanRecord,
        turn: int,
        now: int,
        key: Key,
        raw_key: tuple[Any, ...],
        value: Any,
    ) -> list[Hit]:
        """Add one span matching ``when`` (call :meth:`see` first); ``value`` is its
        ``value`` expression's result (ignored for counts)."""
        amount = _amount(value) if self._sums else _ONE
        if amount is None:
            return []
        counted = (record.span_id, turn, record.tool_name, _number(amount) if self._sums else None)
        if self._attribute is not None:
            bucket_value = self._current
            group_key: Key = (*key, hashable(bucket_value))
            group = self._groups.get(group_key) or _Group()
            # one bucket per attribute value: its turn is the first turn of that value
            group.add(group.buckets[0].turn if group.buckets else turn, counted, amount)
            self._groups.put(group_key, group)
            window = {"attribute": self._attribute, "value": bucket_value}
        else:
            first = now - (self.rule.per.turns or 1) + 1
            if turn < first:
                return []  # a late span of a turn already out of the window
            group = self._groups.get(key) or _Group()
            group.drop_before(first)
            if self._total(group) <= self._limit:
                group.breached = False
            group.add(turn, counted, amount)
            self._groups.put(key, group)
            window = {"first_turn": first, "last_turn": now}
        if group.breached or self._total(group) <= self._limit:
            return []
        group.breached = True
        window.setdefault("first_turn", group.buckets[0].turn)
        return [self._hit(record, turn, group, raw_key, window)]

    def _total(self, group: _Group) -> Decimal | int:
        return group.total if self._sums else group.count

    def _hit(
        self,
        record: SpanRecord,
        turn: int,
        group: _Group,
        raw_key: tuple[Any, ...],
        window: dict[str, Any],
    ) -> Hit:
        rule = self.rule
        counted = [span for bucket in group.buckets for span in bucket.spans]
        spans = [
            {"span_id": span_id, "turn": span_turn, "tool_name": tool_name}
            | ({"value": amount} if self._sums else {})
            for span_id, span_turn, tool_name, amount in counted[-MAX_EVIDENCE_SPANS:]
        ]
        values: dict[str, Any] = {
            "count": group.count,
            "more_than": rule.more_than,
            "window": window,
            "first_turn": window["first_turn"],
            "last_turn": window.get("last_turn", turn),
        }
        if "value" in window:
            values["bucket"] = window["value"]
        if self._sums:
            values["sum"] = _number(group.total)
        if rule.group_by:
            values["group"] = dict(zip(rule.group_by, raw_key, strict=True))
            values["key"] = list(raw_key)
        evidence: dict[str, Any] = {
            "predicate": rule.when,
            "per": rule.per.describe(),
            "window": window,
            "count": group.count,
            "more_than": rule.more_than,
            "spans": spans,
        }
        if self._sums:
            evidence["value"] = rule.value
            evidence["sum"] = values["sum"]
        if rule.group_by:
            evidence["group"] = values["group"]
        if self._groups.evicted:
            evidence["state_capped"] = (
                f"{self._groups.evicted} groups were forgotten (limit {self._groups.cap} per run)"
            )
        return Hit(anchor=SpanRef.of(record, turn), turn=turn, values=values, evidence=evidence)
