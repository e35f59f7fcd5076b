"""The rule-pack monitor: SQL predicates over each span, sequence and window rules over
a run's spans, final-state checks after a run.

All SQL of all packs (single-span predicates, the predicates and value expressions of
sequences and windows) is evaluated on a micro-batch with one query
(:class:`~driftwatch.store.predicates.PredicateEvaluator`), whatever the number of runs in
it; matches are then grouped per run and filtered by each pack's ``scenarios``, and the
stateful rules step through each run's records in order
(:class:`~driftwatch.monitor.rules.stateful.StatefulRules`).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from driftwatch.core import semconv as sc
from driftwatch.core.errors import UsageError
from driftwatch.core.records import Finding, SpanRecord
from driftwatch.core.toolcalls import (
    requested_call_records,
    requested_tool_calls,
    resolve_fallback_arguments,
    with_arguments,
)
from driftwatch.monitor.base import BaseMonitor
from driftwatch.monitor.evidence import (
    record_columns,
    safe_format,
    truncate_strings,
    truncate_text,
)
from driftwatch.monitor.registry import monitor
from driftwatch.monitor.rules.pack import (
    FinalStateCheck,
    Rule,
    RulePack,
    SequenceRule,
    WindowRule,
    builtin_pack_paths,
    discover_packs,
    load_rule_pack,
    load_rule_packs,
    resolve_packs,
)
from driftwatch.monitor.rules.sections import Evaluation, section_rules
from driftwatch.monitor.rules.stateful import StatefulRules
from driftwatch.store import FinalStateEvaluator, PredicateEvaluator
from driftwatch.store.span_batch import SpanBatch

__all__ = [
    "FinalStateCheck",
    "Rule",
    "RulePack",
    "RulePackMonitor",
    "SequenceRule",
    "WindowRule",
    "builtin_pack_paths",
    "discover_packs",
    "load_rule_pack",
    "load_rule_packs",
    "resolve_packs",
]


_RECENT_CHATS = 16  # chat spans kept per run to find the request of a tool span's call
_PENDING = 64  # tool spans with bare-value arguments per run, waiting for their request


@dataclass(slots=True)
class _RunState:
    scenario_id: str | None = None
    trace_id: str | None = None
    last_turn: int | None = None
    errored_rules: set[str] = field(default_factory=set)
    # the run's latest chat spans with output messages (requests of calls yet to run)
    recent_chats: deque[SpanRecord] = field(default_factory=lambda: deque(maxlen=_RECENT_CHATS))
    # (rule id, call id) already flagged by a rule that selects tool_call_source
    flagged_calls: set[tuple[str, str]] = field(default_factory=set)
    # call id → a tool span with bare-value arguments whose request has not arrived, and
    # the single-span rules that already matched it
    pending: OrderedDict[str, tuple[SpanRecord, set[str]]] = field(default_factory=OrderedDict)


@dataclass(slots=True)
class _Late:
    """A tool span seen before its request, evaluated again with the request's arguments
    at the request's chat span (``source``: its batch index)."""

    source: int
    record: SpanRecord
    matched: set[str]


def _with_requested_arguments(state: _RunState, record: SpanRecord) -> SpanRecord | None:
    """A tool span whose arguments are a bare-value fallback, with the arguments of the
    run's request of the same call id instead (None when no recent chat span asked)."""
    call_id = record.attributes.get(sc.GEN_AI_TOOL_CALL_ID)
    if not isinstance(call_id, str) or not call_id:
        return None
    for chat in reversed(state.recent_chats):
        for call in requested_tool_calls(chat.attributes):
            if call.call_id == call_id:
                arguments = resolve_fallback_arguments(record.attributes, call.arguments)
                return None if arguments is None else with_arguments(record, arguments)
    return None


def _wait_for_request(state: _RunState, record: SpanRecord) -> None:
    call_id = record.attributes.get(sc.GEN_AI_TOOL_CALL_ID)
    if isinstance(call_id, str) and call_id:
        state.pending[call_id] = (record, set())
        while len(state.pending) > _PENDING:
            state.pending.popitem(last=False)


def _answered(state: _RunState, chat: SpanRecord) -> list[tuple[SpanRecord, set[str]]]:
    """The waiting tool spans whose request ``chat`` is, with the request's arguments."""
    out: list[tuple[SpanRecord, set[str]]] = []
    for call in requested_tool_calls(chat.attributes):
        if call.call_id is None or call.call_id not in state.pending:
            continue
        record, matched = state.pending.pop(call.call_id)
        arguments = resolve_fallback_arguments(record.attributes, call.arguments)
        if arguments is not None:
            out.append((with_arguments(record, arguments), matched))
    return out


def _requested_rows(flat: Sequence[SpanRecord]) -> tuple[list[SpanRecord], list[int]]:
    """The requested tool calls' rows of a batch, and the index of each one's chat span."""
    rows: list[SpanRecord] = []
    sources: list[int] = []
    for index, record in enumerate(flat):
        found = requested_call_records(record)
        rows.extend(found)
        sources.extend([index] * len(found))
    return rows, sources


def _scenario_of(record: SpanRecord) -> str | None:
    value = record.attributes.get(sc.DW_SCENARIO_ID) or record.resource.get(sc.DW_SCENARIO_ID)
    return str(value) if value else None


@monitor("rule_pack")
class RulePackMonitor(BaseMonitor):
    """Evaluates rule packs. ``packs`` are loaded packs, pack ids or paths; none given
    means every discoverable pack (built-in and ``./monitors``).

    Findings: ``violation`` (or the rule's ``kind``) per matching span and per sequence or
    window match (see :mod:`~driftwatch.monitor.rules.sequence` and
    :mod:`~driftwatch.monitor.rules.window` for when they fire); after the run, the
    ``a_not_followed_by_b`` windows the run lived through and one per final-state
    expectation that is false; ``monitor_error`` once per run for a rule whose SQL fails
    at runtime (the other rules are still evaluated).
    """

    def __init__(self, packs: Sequence[RulePack | str | Path] = ()) -> None:
        self.packs = self._resolve(packs)
        self._rules: dict[str, tuple[Rule, RulePack]] = {}
        self._checks: dict[str, tuple[FinalStateCheck, RulePack]] = {}
        self._stateful_ids: dict[str, RulePack] = {}
        for pack in self.packs:
            for section, _, item in section_rules(pack):
                self._claim(item.id, pack)
                if section.evaluation is Evaluation.SPAN:
                    self._rules[item.id] = (cast(Rule, item), pack)
                elif section.evaluation is Evaluation.STATEFUL:
                    self._stateful_ids[item.id] = pack
                else:
                    self._checks[item.id] = (cast(FinalStateCheck, item), pack)
        self._stateful = StatefulRules(self.packs)
        predicates = {rule_id: rule.when for rule_id, (rule, _) in self._rules.items()}
        predicates.update(self._stateful.predicates())
        self._rule_order = {rule_id: n for n, rule_id in enumerate(predicates)}
        values = self._stateful.values()
        self._pack_scopes = self._scopes([*predicates, *values])
        self._scoped = any(pack.scenarios is not None for pack in self.packs)
        self._predicates = (
            PredicateEvaluator(predicates, values=values) if predicates or values else None
        )
        self._final_state = (
            FinalStateEvaluator(
                {check_id: check.expect for check_id, (check, _) in self._checks.items()}
            )
            if self._checks
            else None
        )
        self._runs: dict[str, _RunState] = {}

    def _scopes(self, sql_ids: Sequence[str]) -> list[tuple[frozenset[str] | None, list[str]]]:
        """Per pack: its scenarios (None: unscoped) and the ids of its predicates and
        value expressions."""
        grouped: dict[int, list[str]] = {id(pack): [] for pack in self.packs}
        for sql_id in sql_ids:
            owner = self._stateful.owner(sql_id)
            pack = owner[1] if owner else self._rules[sql_id][1]
            grouped[id(pack)].append(sql_id)
        return [
            (None if pack.scenarios is None else frozenset(pack.scenarios), grouped[id(pack)])
            for pack in self.packs
        ]

    def _applicable_sql_ids(self, scenarios: set[str | None]) -> list[str] | None:
        """The SQL ids of the packs that apply to at least one of ``scenarios`` (None:
        all of them). A pack scoped to other scenarios can match nothing in the batch, and
        its errors are not reported for runs outside its scope, so skipping it changes no
        finding; it spares the query most built-in packs for external agents."""
        if not self._scoped:
            return None
        applicable: list[str] = []
        for scope, sql_ids in self._pack_scopes:
            if scope is None or not scope.isdisjoint(scenarios):
                applicable.extend(sql_ids)
        return applicable

    @staticmethod
    def _resolve(packs: Sequence[RulePack | str | Path]) -> list[RulePack]:
        if not packs:
            return list(discover_packs().values())
        given = [item for item in packs if isinstance(item, RulePack)]
        named = [item for item in packs if not isinstance(item, RulePack)]
        return given + (resolve_packs(named) if named else [])

    def _claim(self, rule_id: str, pack: RulePack) -> None:
        owner = self._rules.get(rule_id) or self._checks.get(rule_id)
        owner_pack = owner[1] if owner else self._stateful_ids.get(rule_id)
        if owner_pack is not None:
            raise UsageError(
                f"rule id {rule_id!r} is defined in pack {owner_pack.pack!r} and in {pack.pack!r}"
            )

    def close(self) -> None:
        """Release the predicate evaluator's DuckDB connection."""
        if self._predicates is not None:
            self._predicates.close()
            self._predicates = None
        self._stateful.close()

    @property
    def rule_count(self) -> int:
        return len(self._rules) + len(self._stateful) + len(self._checks)

    def _state(self, run_id: str) -> _RunState:
        state = self._runs.get(run_id)
        if state is None:
            state = self._runs[run_id] = _RunState()
        return state

    # --- per span ---------------------------------------------------------------------

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        return self.observe_batch({run_id: records}).get(run_id, ())

    def observe_batch(
        self, records_by_run: Mapping[str, Sequence[SpanRecord]]
    ) -> Mapping[str, Sequence[Finding]]:
        records_by_run, owners, late = self._note(records_by_run)
        flat = SpanBatch.concat(records_by_run.values())  # the engine's tables, if any
        results: dict[str, list[Finding]] = {run_id: [] for run_id in records_by_run}
        if self._predicates is None or not flat:
            return results
        scenarios = [
            _scenario_of(record) or self._runs[run_id].scenario_id
            for record, run_id in zip(flat, owners, strict=True)
        ]
        present = set(scenarios)
        present.update(self._runs[run_id].scenario_id for run_id in records_by_run)
        # one row per requested tool call, only when a rule can see them; then the tool
        # spans whose request came after them, with the request's arguments
        extra, extra_source = (_requested_rows(flat) if self._predicates.selects_requested
                               else ([], []))
        late_at = len(extra)
        extra.extend(item.record for item in late)
        extra_source.extend(item.source for item in late)
        evaluation = self._predicates.evaluate_all(
            flat, only=self._applicable_sql_ids(present), extra=extra)
        count = len(flat)

        def position(index: int) -> tuple[int, int]:
            """Where a batch row sits among the spans: a requested call right after its
            chat span."""
            return (index, 0) if index < count else (extra_source[index - count], 1)

        columns: dict[int, dict[str, Any]] = {}  # one span may match several rules
        stateful: dict[int, list[str]] = {}
        found: dict[str, list[tuple[int, int, Finding]]] = {run_id: [] for run_id in results}
        order = self._rule_order
        for index, rule_id in sorted(
            evaluation.matches, key=lambda m: (*position(m[0]), m[0], order[m[1]])
        ):
            if rule_id not in self._rules:
                if index < count:  # sequences and windows see spans only
                    stateful.setdefault(index, []).append(rule_id)
                continue
            source, sub = position(index)
            record = flat[index] if index < count else extra[index - count]
            run_id = owners[source]
            rule, pack = self._rules[rule_id]
            if index - count >= late_at and rule_id in late[index - count - late_at].matched:
                continue  # it matched this tool span when it arrived
            requested = index >= count and record.operation != sc.OP_EXECUTE_TOOL
            if not pack.applies_to(scenarios[source]) or self._flagged_before(
                    run_id, rule_id, record, requested=requested):
                continue
            self._note_pending_match(run_id, record, rule_id)
            if index not in columns:
                columns[index] = record_columns(record)
                if requested:
                    columns[index]["tool_call_source"] = sc.TOOL_CALL_REQUESTED
            finding = self._violation(run_id, record, columns[index], rule, pack)
            found[run_id].append((source, sub, finding))
        if len(self._stateful):
            start = 0
            for run_id, records in records_by_run.items():
                positions = range(start, start + len(records))
                start += len(records)
                items = [(i, flat[i], scenarios[i]) for i in positions]
                hits = self._stateful.observe(
                    run_id, items, stateful, evaluation.values, self.finding
                )
                found[run_id].extend((index, 2, finding) for index, finding in hits)
        for run_id, ordered in found.items():  # span order; single-span rules first
            results[run_id] = [item[2] for item in sorted(ordered, key=lambda x: x[:2])]
        self._report_errors(records_by_run, evaluation.errors, results)
        return results

    def _note(
        self, records_by_run: Mapping[str, Sequence[SpanRecord]]
    ) -> tuple[dict[str, Sequence[SpanRecord]], list[str], list[_Late]]:
        """Update each run's state from its records. Returns the records (a tool span
        with bare-value arguments replaced by one with its request's arguments), the run
        of each, in order, and the tool spans of earlier batches whose request is in
        this one."""
        owners: list[str] = []
        late: list[_Late] = []
        resolved_by_run: dict[str, Sequence[SpanRecord]] = {}
        for run_id, records in records_by_run.items():
            state = self._state(run_id)
            resolved: list[SpanRecord] | None = None
            base = len(owners)
            for offset, record in enumerate(records):
                state.scenario_id = state.scenario_id or _scenario_of(record)
                state.trace_id = state.trace_id or record.trace_id
                if record.turn is not None:
                    state.last_turn = max(record.turn, state.last_turn or record.turn)
                if record.operation == sc.OP_EXECUTE_TOOL:
                    if sc.DW_TOOL_ARGUMENTS_FALLBACK_KEY in record.attributes:
                        fixed = _with_requested_arguments(state, record)
                        if fixed is not None:
                            resolved = resolved or list(records)
                            resolved[offset] = fixed
                        else:
                            _wait_for_request(state, record)
                elif sc.GEN_AI_OUTPUT_MESSAGES in record.attributes:
                    state.recent_chats.append(record)
                    if state.pending:
                        late.extend(_Late(base + offset, fixed, matched)
                                    for fixed, matched in _answered(state, record))
            resolved_by_run[run_id] = records if resolved is None else resolved
            owners.extend([run_id] * len(records))
        return resolved_by_run, owners, late

    def _note_pending_match(self, run_id: str, record: SpanRecord, rule_id: str) -> None:
        """Remember that ``rule_id`` matched a tool span still waiting for its request
        (its late evaluation must not flag it again)."""
        pending = self._runs[run_id].pending
        call_id = record.attributes.get(sc.GEN_AI_TOOL_CALL_ID)
        if pending and isinstance(call_id, str) and call_id in pending:
            waiting, matched = pending[call_id]
            if waiting.span_id == record.span_id:
                matched.add(rule_id)

    def _flagged_before(
        self, run_id: str, rule_id: str, record: SpanRecord, *, requested: bool
    ) -> bool:
        """A rule that selects ``tool_call_source`` flags each call once per run: a call
        both requested and executed (one call id) gives one finding, at the row seen
        first. Rows without a call id cannot be matched and are always flagged."""
        assert self._predicates is not None
        if rule_id not in self._predicates.selects_requested:
            return False
        call_id = record.attributes.get(sc.GEN_AI_TOOL_CALL_ID)
        is_call = requested or record.operation == sc.OP_EXECUTE_TOOL
        if not is_call or not isinstance(call_id, str) or not call_id:
            return False
        key = (rule_id, call_id)
        flagged = self._runs[run_id].flagged_calls
        if key in flagged:
            return True
        flagged.add(key)
        return False

    def _report_errors(
        self,
        records_by_run: Mapping[str, Sequence[SpanRecord]],
        errors: Mapping[str, str],
        results: dict[str, list[Finding]],
    ) -> None:
        """One ``monitor_error`` per run and rule whose SQL failed (compile or runtime)."""
        for sql_id, error in errors.items():
            owner = self._stateful.owner(sql_id)
            rule_id, pack = owner if owner else (sql_id, self._rules[sql_id][1])
            for run_id in records_by_run:
                state = self._runs[run_id]
                if rule_id in state.errored_rules or not pack.applies_to(state.scenario_id):
                    continue
                state.errored_rules.add(rule_id)
                results[run_id].append(
                    self.error_finding(
                        run_id=run_id,
                        rule_id=rule_id,
                        error_type="RuleEvaluationError",
                        error=error if owner is None else f"{sql_id}: {error}",
                        phase="observe",
                        trace_id=state.trace_id,
                    )
                )

    def _violation(
        self,
        run_id: str,
        record: SpanRecord,
        columns: Mapping[str, Any],
        rule: Rule,
        pack: RulePack,
    ) -> Finding:
        values = {"rule_id": rule.id, "pack": pack.pack, **columns}
        if rule.message:
            message = safe_format(rule.message, values)
        else:
            message = rule.description or f"rule {rule.id} matched span {record.name}"
        result = columns["tool_result"]
        if result is not None and not isinstance(result, str):
            result = str(result)
        return self.finding(
            run_id=run_id,
            rule_id=rule.id,
            kind=rule.kind,
            severity=rule.severity,
            message=message,
            record=record,
            evidence={
                "pack": pack.pack,
                "description": rule.description,
                "predicate": rule.when,
                "span_name": record.name,
                "tool_name": record.tool_name,
                "tool_arguments": truncate_strings(columns["tool_arguments"]),
                "tool_result": truncate_text(result) if result is not None else None,
            },
        )

    # --- after the run ----------------------------------------------------------------

    def end_run(self, run_id: str, final_state: Mapping[str, Any] | None) -> Sequence[Finding]:
        state = self._runs.pop(run_id, None) or _RunState()
        settled = self._stateful.end_run(run_id, self.finding)
        return [*settled, *self._final_findings(run_id, state, final_state)]

    def _final_findings(
        self, run_id: str, state: _RunState, final_state: Mapping[str, Any] | None
    ) -> list[Finding]:
        if final_state is None or self._final_state is None:
            return []
        scenario_id = state.scenario_id or final_state.get("scenario_id")
        applicable = [
            (check, pack)
            for check, pack in self._checks.values()
            if pack.applies_to(str(scenario_id) if scenario_id else None)
        ]
        if not applicable:
            return []
        outcomes = self._final_state.evaluate(final_state)
        findings: list[Finding] = []
        for check, pack in applicable:
            holds, error = outcomes.get(check.id, (None, "no result for this expectation"))
            if error:
                findings.append(
                    self.error_finding(
                        run_id=run_id,
                        rule_id=check.id,
                        error_type="FinalStateEvaluationError",
                        error=error,
                        phase="end_run",
                        trace_id=state.trace_id,
                        turn=state.last_turn,
                    )
                )
            elif holds is False:
                findings.append(self._unmet(run_id, state, check, pack, scenario_id))
        return findings

    def _unmet(
        self,
        run_id: str,
        state: _RunState,
        check: FinalStateCheck,
        pack: RulePack,
        scenario_id: Any,
    ) -> Finding:
        values = {
            "run_id": run_id,
            "rule_id": check.id,
            "pack": pack.pack,
            "scenario_id": scenario_id,
            "turn": state.last_turn,
        }
        if check.message:
            message = safe_format(check.message, values)
        else:
            message = check.description or f"final-state expectation {check.id} does not hold"
        return self.finding(
            run_id=run_id,
            rule_id=check.id,
            kind=check.kind,
            severity=check.severity,
            message=message,
            trace_id=state.trace_id,
            turn=state.last_turn,
            evidence={"pack": pack.pack, "description": check.description, "expect": check.expect},
        )
