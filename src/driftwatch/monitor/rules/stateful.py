"""Sequence and window rules of a set of packs, run on micro-batches.

:class:`StatefulRules` hands its SQL to the rule-pack monitor, which evaluates it with
the single-span rules in one :class:`~driftwatch.store.PredicateEvaluator` query per
micro-batch; it then walks each run's records in order through the per-run trackers
(:mod:`~driftwatch.monitor.rules.sequence`, :mod:`~driftwatch.monitor.rules.window`) and turns their
hits into findings.

SQL ids are ``<rule id>#<role>``: roles ``a``, ``b``, ``reset``, ``among`` and ``when``
for predicates, ``key<n>`` (``same`` / ``group_by``), ``value``, and ``a.<name>`` /
``b.<name>`` (``a_values`` / ``b_values``) for value expressions. ``#`` cannot occur in
a rule id, so these never clash with single-span rules. Called from one thread (the
monitor's caller); keeps state per run until :meth:`StatefulRules.end_run`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from driftwatch.core.records import Finding, FindingKind, Severity, SpanRecord
from driftwatch.monitor.evidence import safe_format
from driftwatch.monitor.rules.sequence import Hit, Key, PairCheck, SequenceTracker, hashable
from driftwatch.monitor.rules.sequence_spec import SequencePattern, SequenceRule
from driftwatch.monitor.rules.window import WindowTracker
from driftwatch.monitor.rules.window_spec import WindowRule
from driftwatch.store import PairCondition

if TYPE_CHECKING:
    from driftwatch.monitor.rules.pack import RulePack

__all__ = ["FindingFactory", "StatefulRules"]

SEPARATOR = "#"
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})  # hashable as they are


class FindingFactory(Protocol):
    """:meth:`driftwatch.monitor.BaseMonitor.finding`."""

    def __call__(
        self,
        *,
        run_id: str,
        rule_id: str,
        message: str,
        severity: Severity,
        kind: FindingKind = ...,
        record: SpanRecord | None = ...,
        trace_id: str | None = ...,
        span_id: str | None = ...,
        turn: int | None = ...,
        evidence: Mapping[str, Any] | None = ...,
    ) -> Finding: ...


@dataclass(slots=True)
class _Entry:
    rule: SequenceRule | WindowRule
    pack: RulePack
    key_ids: list[str]
    value_id: str | None
    # ``where`` rules: the condition and the value ids of a_values / b_values by name
    condition: PairCondition | None = None
    pair_ids: tuple[dict[str, str], dict[str, str]] | None = None


@dataclass(frozen=True, slots=True)
class _Span:
    index: int  # in the micro-batch
    record: SpanRecord
    scenario_id: str | None
    now: int  # the run's highest turn so far


@dataclass(slots=True)
class _Run:
    now: int | None = None  # the highest turn so far
    trackers: dict[str, SequenceTracker | WindowTracker] = field(default_factory=dict)
    # trackers that look at spans they did not match, in rule order
    deadlines: list[tuple[_Entry, SequenceTracker]] = field(default_factory=list)
    clocks: list[WindowTracker] = field(default_factory=list)
    every_span: list[str] = field(default_factory=list)


def _pair_values(
    entry: _Entry, roles: set[str], values: Mapping[str, Sequence[Any]], index: int
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The span's ``a_values`` (if it is an a) and ``b_values`` (if a b), for ``where``."""
    if entry.pair_ids is None:
        return None
    a_ids, b_ids = entry.pair_ids
    a = {name: values[sql_id][index] for name, sql_id in a_ids.items()} if "a" in roles else {}
    b = {name: values[sql_id][index] for name, sql_id in b_ids.items()} if "b" in roles else {}
    return a, b


class StatefulRules:
    """Sequence and window rules of ``packs`` (ids already checked unique)."""

    def __init__(self, packs: Sequence[RulePack]) -> None:
        self._entries: dict[str, _Entry] = {}
        self._predicates: dict[str, str] = {}
        self._values: dict[str, str] = {}
        self._roles: dict[str, tuple[str, str]] = {}  # sql id → (rule id, role)
        self._runs: dict[str, _Run] = {}
        self._position: dict[str, int] = {}
        for pack in packs:
            for sequence in pack.sequences:
                roles = {"a": sequence.a, "b": sequence.b}
                if sequence.reset_on is not None:
                    roles["reset"] = sequence.reset_on
                if sequence.among is not None:
                    roles["among"] = sequence.among
                self._add(sequence, pack, roles, sequence.same, None)
                if sequence.where is not None:
                    self._add_condition(sequence)
            for window in pack.windows:
                self._add(window, pack, {"when": window.when}, window.group_by, window.value)

    def _add(
        self,
        rule: SequenceRule | WindowRule,
        pack: RulePack,
        roles: dict[str, str],
        keys: list[str],
        value: str | None,
    ) -> None:
        for role, sql in roles.items():
            sql_id = f"{rule.id}{SEPARATOR}{role}"
            self._predicates[sql_id] = sql
            self._roles[sql_id] = (rule.id, role)
        key_ids = [f"{rule.id}{SEPARATOR}key{n}" for n in range(len(keys))]
        self._values.update(zip(key_ids, keys, strict=True))
        value_id = f"{rule.id}{SEPARATOR}value" if value is not None else None
        if value_id is not None and value is not None:
            self._values[value_id] = value
        self._position[rule.id] = len(self._entries)
        self._entries[rule.id] = _Entry(rule, pack, key_ids, value_id)

    def _add_condition(self, sequence: SequenceRule) -> None:
        assert sequence.where is not None
        sides: list[dict[str, str]] = []
        for side, expressions in (("a", sequence.a_values), ("b", sequence.b_values)):
            ids = {name: f"{sequence.id}{SEPARATOR}{side}.{name}" for name in expressions}
            self._values.update((ids[name], expr) for name, expr in expressions.items())
            sides.append(ids)
        entry = self._entries[sequence.id]
        entry.pair_ids = (sides[0], sides[1])
        entry.condition = PairCondition(sequence.where, sequence.a_values, sequence.b_values)

    def close(self) -> None:
        """Release the connections of ``where`` conditions."""
        for entry in self._entries.values():
            if entry.condition is not None:
                entry.condition.close()

    def __len__(self) -> int:
        return len(self._entries)

    def predicates(self) -> dict[str, str]:
        """SQL id → boolean expression, in rule order."""
        return dict(self._predicates)

    def values(self) -> dict[str, str]:
        """SQL id → value expression."""
        return dict(self._values)

    def owner(self, sql_id: str) -> tuple[str, RulePack] | None:
        """The rule id and pack an SQL id belongs to; None if it is not one of ours."""
        rule_id = sql_id.partition(SEPARATOR)[0] if SEPARATOR in sql_id else None
        entry = self._entries.get(rule_id) if rule_id else None
        return (entry.rule.id, entry.pack) if entry else None

    def observe(
        self,
        run_id: str,
        items: Sequence[tuple[int, SpanRecord, str | None]],
        matched: Mapping[int, Sequence[str]],
        values: Mapping[str, Sequence[Any]],
        make_finding: FindingFactory,
    ) -> list[tuple[int, Finding]]:
        """Step the run's records through its trackers, in order. ``items`` are
        ``(batch index, record, scenario id)``; ``matched`` maps a batch index to the SQL
        ids of ours it matched, ``values`` an SQL id to one value per batch index.
        Returns ``(batch index of the span that completed the pattern, finding)``."""
        run = self._runs.get(run_id) or self._new_run(run_id)
        found: list[tuple[int, Finding]] = []
        for index, record, scenario_id in items:
            if record.turn is not None and (run.now is None or record.turn > run.now):
                run.now = record.turn
            now = run.now if run.now is not None else 0
            hits: list[tuple[_Entry, Hit]] = []
            for deadline_entry, waiting in run.deadlines:
                due = waiting.advance(now)
                if due:
                    hits.extend((deadline_entry, hit) for hit in due)
            for clock in run.clocks:
                clock.see(record)
            sql_ids = matched.get(index)
            if sql_ids or run.every_span:
                span = _Span(index, record, scenario_id, now)
                hits.extend(self._step(run, span, sql_ids or (), values))
            if hits:
                found.extend(
                    (index, self._finding(run_id, entry, hit, make_finding)) for entry, hit in hits
                )
        return found

    def _step(
        self, run: _Run, span: _Span, sql_ids: Sequence[str], values: Mapping[str, Sequence[Any]]
    ) -> list[tuple[_Entry, Hit]]:
        """The span through every tracker it concerns, in rule order."""
        hits: list[tuple[_Entry, Hit]] = []
        index, record = span.index, span.record
        turn = record.turn if record.turn is not None else span.now
        for entry, roles in self._roles_at(sql_ids, run):
            if not entry.pack.applies_to(span.scenario_id):
                continue
            raw_key = tuple([values[key_id][index] for key_id in entry.key_ids])
            key: Key = raw_key
            if not all(type(value) in _SCALARS for value in raw_key):
                key = tuple(hashable(value) for value in raw_key)
            tracker = self._tracker(run, entry)
            if isinstance(tracker, SequenceTracker):
                pairs = _pair_values(entry, roles, values, index)
                step = tracker.step(record, turn, roles, key, raw_key, pairs)
            elif "when" in roles:
                value = values[entry.value_id][index] if entry.value_id else None
                step = tracker.step(record, turn, span.now, key, raw_key, value)
            else:
                step = []
            hits.extend((entry, hit) for hit in step)
        return hits

    def end_run(self, run_id: str, make_finding: FindingFactory) -> list[Finding]:
        """Fire what the run's end settles (``a_not_followed_by_b`` windows the run
        lived through) and drop the run's state."""
        run = self._runs.pop(run_id, None)
        if run is None:
            return []
        return [
            self._finding(run_id, entry, hit, make_finding)
            for entry, tracker in run.deadlines
            for hit in tracker.finish(run.now)
        ]

    # --- internals ------------------------------------------------------------------

    def _new_run(self, run_id: str) -> _Run:
        run = self._runs[run_id] = _Run()
        for entry in self._entries.values():  # attribute windows follow every span
            if isinstance(entry.rule, WindowRule) and entry.rule.per.attribute is not None:
                self._tracker(run, entry)
        return run

    def _roles_at(self, sql_ids: Sequence[str], run: _Run) -> list[tuple[_Entry, set[str]]]:
        by_rule: dict[str, set[str]] = {}
        for sql_id in sql_ids:  # in rule order: the evaluator sorts matches so
            rule_id, role = self._roles[sql_id]
            by_rule.setdefault(rule_id, set()).add(role)
        if run.every_span:  # "next span" rules see every span
            missing = [rule_id for rule_id in run.every_span if rule_id not in by_rule]
            if missing:
                by_rule.update((rule_id, set()) for rule_id in missing)
                if len(by_rule) > 1:
                    order = self._position.__getitem__
                    by_rule = {rule_id: by_rule[rule_id] for rule_id in sorted(by_rule, key=order)}
        return [(self._entries[rule_id], roles) for rule_id, roles in by_rule.items()]

    def _tracker(self, run: _Run, entry: _Entry) -> SequenceTracker | WindowTracker:
        tracker = run.trackers.get(entry.rule.id)
        if tracker is not None:
            return tracker
        rule = entry.rule
        if isinstance(rule, SequenceRule):
            condition: PairCheck | None = entry.condition
            sequence = SequenceTracker(rule, condition=condition)
            if rule.pattern is SequencePattern.A_NOT_FOLLOWED_BY_B:
                run.deadlines.append((entry, sequence))
                run.deadlines.sort(key=lambda item: self._position[item[0].rule.id])
            if sequence.every_span:
                run.every_span.append(rule.id)
            tracker = sequence
        else:
            window = WindowTracker(rule)
            if window.every_span:
                run.clocks.append(window)
            tracker = window
        run.trackers[rule.id] = tracker
        return tracker

    @staticmethod
    def _finding(run_id: str, entry: _Entry, hit: Hit, make_finding: FindingFactory) -> Finding:
        rule, pack = entry.rule, entry.pack
        values = {
            **hit.anchor.as_dict(),
            "run_id": run_id,
            "rule_id": rule.id,
            "pack": pack.pack,
            **hit.values,
            "turn": hit.turn,
        }
        if rule.message:
            message = safe_format(rule.message, values)
        else:
            what = "sequence" if isinstance(rule, SequenceRule) else "window"
            message = rule.description or f"{what} rule {rule.id} fired at turn {hit.turn}"
        return make_finding(
            run_id=run_id,
            rule_id=rule.id,
            kind=rule.kind,
            severity=rule.severity,
            message=message,
            trace_id=hit.anchor.trace_id,
            span_id=hit.anchor.span_id,
            turn=hit.turn,
            evidence={"pack": pack.pack, "description": rule.description, **hit.evidence},
        )
