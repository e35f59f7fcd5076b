"""Sequence rules at runtime: one small state machine per rule and run.

Contract of :class:`SequenceTracker` (the caller is
:class:`~driftwatch.monitor.rules.stateful.StatefulRules`):

- spans are stepped in stream order (the order records reach the monitor: span *end*
  order for live spans), whatever the micro-batch boundaries, so splitting a run's
  records differently across batches gives the same hits;
- ``turn`` is the span's turn, or the run's highest turn so far for a span without one;
- one thread, no locks, never raises for data; state is bounded: at most ``cap``
  correlation keys (least recently used forgotten first, counted in ``evicted`` and
  reported as ``state_capped`` in evidence), and per key only the last a-span
  (``a_not_followed_by_b``: the first a-span of each turn whose window is still open,
  so at most ``within_turns + 1`` per key).

Per span, in this order: deadlines (``advance``), then the span as b (or as the "next"
span), then ``reset_on``, then the span as a. So a span never pairs with itself, and a
span matching both ``reset_on`` and ``a`` renews a.

Semantics, with ``k = within_turns``:

- ``b_without_earlier_a``: a b-span fires unless an a-span with the same key came before
  it (and, with k, at most k turns before). One a licenses every later b; to demand a
  fresh a for each b, set ``reset_on`` to the ``b`` predicate.
- ``a_then_b``: a b-span fires when the last a-span with the same key came before it (at
  most k turns before); that a is used up.
- ``where`` (with ``a_values``/``b_values``, for the two patterns above): the last a-span
  pairs with a b-span only if the condition holds on their values; for
  ``b_without_earlier_a`` the b fires unless it pairs, for ``a_then_b`` it fires if it
  pairs (and only then is the a used up).
- ``a_not_followed_by_b``: an a-span at turn t fires at turn t + k (the finding's turn)
  unless a b-span with the same key arrives by the end of turn t + k. It is detected when
  a span of a later turn arrives, or at run end if the run reached turn t + k; a run
  that ended earlier is censored (no finding). A b answers every open a of its key.
- ``b_directly_after_a``: after an a-span, the next span matching ``among`` (every span
  when unset) with the same key is looked at: a b-span fires; any other span ends the wait.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord
from driftwatch.monitor.evidence import truncate_strings
from driftwatch.monitor.rules.sequence_spec import SequencePattern, SequenceRule

__all__ = [
    "MAX_KEYS",
    "BoundedMap",
    "Hit",
    "Key",
    "PairCheck",
    "SequenceTracker",
    "SpanRef",
    "hashable",
]

MAX_KEYS: Final = 10_000
"""Correlation keys (sequences) or groups (windows) kept per rule and run."""
REF_ARGUMENT_BYTES: Final = 512
"""Strings in a remembered span's tool arguments are cut to this many bytes."""
RAW_ARGUMENT_CHARS: Final = 4096
"""Longer tool-argument JSON is parsed and cut when a span is remembered, not later."""

Key = tuple[Hashable, ...]
V = TypeVar("V")


def hashable(value: Any) -> Hashable:
    """A hashable stand-in for a SQL value (lists and structs come back as list/dict)."""
    if isinstance(value, list | tuple):
        return tuple(hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), hashable(v)) for k, v in value.items()))
    return value  # type: ignore[no-any-return]


def _arguments(raw: Any) -> dict[str, Any] | None:
    """Tool arguments for evidence: a JSON object with long strings cut, else None."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, dict) or not raw:
        return None
    truncated: dict[str, Any] = truncate_strings(raw, REF_ARGUMENT_BYTES)
    return truncated


@dataclass(frozen=True, slots=True)
class SpanRef:
    """What a finding's evidence keeps of a span. Cheap to make (most are never shown):
    arguments stay raw JSON text up to :data:`RAW_ARGUMENT_CHARS` and are parsed (and
    their strings cut to :data:`REF_ARGUMENT_BYTES`) only for evidence."""

    span_id: str
    trace_id: str
    turn: int | None
    name: str
    operation: str | None
    tool_name: str | None
    raw_arguments: Any
    event_kind: Any

    @classmethod
    def of(cls, record: SpanRecord, turn: int | None) -> SpanRef:
        raw = record.attributes.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)
        if raw is not None and not (isinstance(raw, str) and len(raw) <= RAW_ARGUMENT_CHARS):
            raw = _arguments(raw)  # a big write's content is not kept whole
        return cls(
            span_id=record.span_id,
            trace_id=record.trace_id,
            turn=turn,
            name=record.name,
            operation=record.operation,
            tool_name=record.tool_name,
            raw_arguments=raw,
            event_kind=record.attributes.get(sc.DW_EVENT_KIND),
        )

    @property
    def tool_arguments(self) -> dict[str, Any] | None:
        return _arguments(self.raw_arguments)

    def as_dict(self) -> dict[str, Any]:
        return {
            "span_id": self.span_id,
            "turn": self.turn,
            "name": self.name,
            "operation": self.operation,
            "tool_name": self.tool_name,
            "tool_arguments": self.tool_arguments,
            "event_kind": None if self.event_kind is None else str(self.event_kind),
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """A sequence or window rule fired. The finding points at ``anchor`` (span and
    trace) with ``turn``; ``values`` fill the message template, ``evidence`` is stored."""

    anchor: SpanRef
    turn: int | None
    values: dict[str, Any]
    evidence: dict[str, Any]


class BoundedMap(Generic[V]):
    """An LRU map of at most ``cap`` keys; ``evicted`` counts the keys it had to forget."""

    def __init__(self, cap: int = MAX_KEYS) -> None:
        self._items: OrderedDict[Key, V] = OrderedDict()
        self.cap = cap
        self.evicted = 0

    def get(self, key: Key) -> V | None:
        return self._items.get(key)

    def put(self, key: Key, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.cap:
            self._items.popitem(last=False)
            self.evicted += 1

    def pop(self, key: Key) -> V | None:
        return self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Key]:
        return iter(self._items)

    def items(self) -> Iterator[tuple[Key, V]]:
        return iter(self._items.items())


class PairCheck(Protocol):
    """:class:`driftwatch.store.PairCondition`: does ``where`` hold for these values?"""

    def holds(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[bool, str | None]: ...


@dataclass(frozen=True, slots=True)
class _Seen:
    turn: int
    ref: SpanRef
    values: Mapping[str, Any] | None = None  # the a-span's a_values, for ``where``


@dataclass(frozen=True, slots=True)
class _Open:
    """An a-span of ``a_not_followed_by_b`` waiting for its b."""

    ref: SpanRef
    raw_key: tuple[Any, ...]
    serial: int


class SequenceTracker:
    """The state of one :class:`SequenceRule` in one run (see the module docstring)."""

    def __init__(
        self, rule: SequenceRule, cap: int = MAX_KEYS, condition: PairCheck | None = None
    ) -> None:
        self.rule = rule
        self._pattern = rule.pattern
        self._condition = condition
        self.condition_errors: list[str] = []  # ``where`` failures, newest last (at most 5)
        self._seen: BoundedMap[_Seen] = BoundedMap(cap)
        self._open: BoundedMap[dict[int, _Open]] = BoundedMap(cap)
        self._deadlines: list[tuple[int, int, Key, int]] = []  # (deadline, serial, key, turn)
        self._serials = itertools.count()

    @property
    def every_span(self) -> bool:
        """True when every span of the run must be stepped, matched or not."""
        return self._pattern is SequencePattern.B_DIRECTLY_AFTER_A and self.rule.among is None

    @property
    def evicted(self) -> int:
        return self._seen.evicted + self._open.evicted

    def advance(self, now: int) -> list[Hit]:
        """Fire every open ``a_not_followed_by_b`` window that ended before turn ``now``."""
        hits: list[Hit] = []
        while self._deadlines and self._deadlines[0][0] < now:
            deadline, serial, key, turn = heapq.heappop(self._deadlines)
            waiting = self._open.get(key)
            item = waiting.get(turn) if waiting else None
            if waiting is None or item is None or item.serial != serial:
                continue  # answered, reset or forgotten since
            del waiting[turn]
            if not waiting:
                self._open.pop(key)
            hits.append(self._hit(item.ref, deadline, item.ref, None, item.raw_key))
        return hits

    def finish(self, last_turn: int | None) -> list[Hit]:
        """At run end: fire the open windows the run fully lived through."""
        return [] if last_turn is None else self.advance(last_turn + 1)

    def step(
        self,
        record: SpanRecord,
        turn: int,
        roles: frozenset[str] | set[str],
        key: Key,
        raw_key: tuple[Any, ...],
        pair_values: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    ) -> list[Hit]:
        """Apply one span. ``roles`` ⊆ {"a", "b", "reset", "among"}: the predicates it
        matched; ``raw_key`` the values of the ``same`` expressions, ``key`` the same made
        hashable; ``pair_values`` the span's ``a_values`` and ``b_values`` (rules with
        ``where``)."""
        hits: list[Hit] = []
        pattern = self._pattern
        within = self.rule.within_turns
        if pattern is SequencePattern.A_NOT_FOLLOWED_BY_B:
            if "b" in roles:
                self._open.pop(key)
        elif pattern is SequencePattern.B_DIRECTLY_AFTER_A:
            if self.rule.among is None or "among" in roles:
                seen = self._seen.pop(key)
                if seen is not None and "b" in roles:
                    b = SpanRef.of(record, turn)
                    hits.append(self._hit(b, turn, seen.ref, b, raw_key))
        elif "b" in roles:
            seen = self._seen.get(key)
            in_window = seen is not None and (within is None or turn - seen.turn <= within)
            if in_window and seen is not None and self._condition is not None:
                in_window = self._pairs(seen, pair_values)
            if pattern is SequencePattern.B_WITHOUT_EARLIER_A and not in_window:
                b = SpanRef.of(record, turn)
                a_ref = seen.ref if seen else None
                hits.append(self._hit(b, turn, a_ref, b, raw_key, seen, pair_values))
            elif pattern is SequencePattern.A_THEN_B and in_window and seen is not None:
                self._seen.pop(key)
                b = SpanRef.of(record, turn)
                hits.append(self._hit(b, turn, seen.ref, b, raw_key, seen, pair_values))
        if "reset" in roles:
            self._seen.pop(key)
            self._open.pop(key)
        if "a" in roles:
            a_values = pair_values[0] if pair_values is not None else None
            self._remember(record, turn, key, raw_key, a_values)
        return hits

    def _pairs(
        self, seen: _Seen, pair_values: tuple[Mapping[str, Any], Mapping[str, Any]] | None
    ) -> bool:
        """Does ``where`` hold for the remembered a-span and this b-span? (Only called
        when the rule has a ``where``.)"""
        assert self._condition is not None
        b_values = pair_values[1] if pair_values is not None else {}
        holds, error = self._condition.holds(seen.values or {}, b_values)
        if error is not None:
            self.condition_errors = [*self.condition_errors[-4:], error]
        return holds

    def _remember(
        self,
        record: SpanRecord,
        turn: int,
        key: Key,
        raw_key: tuple[Any, ...],
        a_values: Mapping[str, Any] | None = None,
    ) -> None:
        if self._pattern is not SequencePattern.A_NOT_FOLLOWED_BY_B:
            self._seen.put(key, _Seen(turn, SpanRef.of(record, turn), a_values))
            return
        waiting = self._open.get(key) or {}
        if turn not in waiting:  # the first a of a turn opens the window for that turn
            serial = next(self._serials)
            waiting[turn] = _Open(SpanRef.of(record, turn), raw_key, serial)
            deadline = turn + (self.rule.within_turns or 0)
            heapq.heappush(self._deadlines, (deadline, serial, key, turn))
        self._open.put(key, waiting)
        if len(self._deadlines) > 4 * self._open.cap:  # answered ones linger until due
            self._deadlines = [
                (opened + (self.rule.within_turns or 0), item.serial, open_key, opened)
                for open_key, by_turn in self._open.items()
                for opened, item in by_turn.items()
            ]
            heapq.heapify(self._deadlines)

    def _hit(
        self,
        anchor: SpanRef,
        turn: int,
        a: SpanRef | None,
        b: SpanRef | None,
        raw_key: tuple[Any, ...],
        seen: _Seen | None = None,
        pair_values: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    ) -> Hit:
        rule = self.rule
        a_dict = a.as_dict() if a else None
        b_dict = b.as_dict() if b else None
        evidence: dict[str, Any] = {"pattern": rule.pattern.value, "a": a_dict, "b": b_dict}
        values: dict[str, Any] = {"pattern": rule.pattern.value, "a": a_dict, "b": b_dict}
        if rule.where is not None:
            a_values = dict(seen.values or {}) if seen is not None else None
            b_values = dict(pair_values[1]) if pair_values is not None else {}
            values["a_values"], values["b_values"] = a_values or {}, b_values
            evidence["where"] = rule.where
            evidence["a_values"] = truncate_strings(a_values, REF_ARGUMENT_BYTES)
            evidence["b_values"] = truncate_strings(b_values, REF_ARGUMENT_BYTES)
            if self.condition_errors:
                evidence["where_errors"] = list(self.condition_errors)
        if rule.same:
            evidence["same"] = values["same"] = dict(zip(rule.same, raw_key, strict=True))
            values["key"] = list(raw_key)
        if rule.within_turns is not None:
            evidence["within_turns"] = values["within_turns"] = rule.within_turns
        if self._pattern is SequencePattern.A_NOT_FOLLOWED_BY_B:
            evidence["deadline_turn"] = values["deadline_turn"] = turn
        if self.evicted:
            evidence["state_capped"] = (
                f"{self.evicted} correlation keys were forgotten (limit {self._seen.cap} per run)"
            )
        return Hit(anchor=anchor, turn=turn, values=values, evidence=evidence)
