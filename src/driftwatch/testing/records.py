"""Hand-made span records for testing monitors: call a monitor on these, no agent needed."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
from typing import Any

from driftwatch.core import Finding, SpanRecord
from driftwatch.core import semconv as sc


class RecordFactory:
    """Builds SpanRecords of one run with incrementing span ids and times 1 ms apart."""

    def __init__(self, run_id: str = "run-test", scenario_id: str | None = None,
                 trace_id: str = "0" * 31 + "1", start_ns: int = 1_767_225_600_000_000_000) -> None:
        self.run_id = run_id
        self.scenario_id = scenario_id
        self.trace_id = trace_id
        self._ids = itertools.count(1)
        self._time = start_ns
        self._lock = threading.Lock()

    def _next(self) -> tuple[str, int]:
        with self._lock:
            self._time += 1_000_000
            return f"{next(self._ids):016x}", self._time

    def record(self, name: str, turn: int | None = None, *, kind: str = "INTERNAL",
               status_code: str = "UNSET", attributes: dict[str, Any] | None = None,
               **more: Any) -> SpanRecord:
        """A record of this run; ``attributes`` (keys with dots) and ``more`` are merged."""
        span_id, start = self._next()
        attrs: dict[str, Any] = {sc.DW_RUN_ID: self.run_id}
        if self.scenario_id:
            attrs[sc.DW_SCENARIO_ID] = self.scenario_id
        if turn is not None:
            attrs[sc.DW_TURN] = turn
        attrs.update(attributes or {})
        attrs.update(more)
        return SpanRecord.create(trace_id=self.trace_id, span_id=span_id, name=name, kind=kind,
                                 start_time_ns=start, end_time_ns=start + 500_000,
                                 status_code=status_code, attributes=attrs)

    def tool_call(self, tool: str, arguments: dict[str, Any], turn: int, *, result: str = "ok",
                  call_id: str | None = None) -> SpanRecord:
        return self.record(
            f"{sc.OP_EXECUTE_TOOL} {tool}", turn,
            attributes={sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME: tool,
               sc.GEN_AI_TOOL_CALL_ID: call_id or f"call_{turn}",
               sc.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps(arguments),
               sc.GEN_AI_TOOL_CALL_RESULT: result},
        )

    def chat(self, text: str, turn: int, *, model: str = "simulated/test",
             tool_calls: Sequence[dict[str, Any]] = ()) -> SpanRecord:
        message = {"role": "assistant", "content": text, "tool_calls": list(tool_calls) or None}
        return self.record(
            f"{sc.OP_CHAT} {model}", turn, kind="CLIENT",
            attributes={sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT, sc.GEN_AI_REQUEST_MODEL: model,
               sc.GEN_AI_PROVIDER_NAME: model.split("/", maxsplit=1)[0],
               sc.GEN_AI_OUTPUT_MESSAGES: json.dumps([message]),
               sc.GEN_AI_USAGE_INPUT_TOKENS: 10, sc.GEN_AI_USAGE_OUTPUT_TOKENS: len(text) // 4},
        )

    def event(self, kind: str, content: str, turn: int, *, pressure: float = 0.0) -> SpanRecord:
        return self.record(
            f"{sc.SPAN_EVENT_PREFIX} {kind}", turn,
            attributes={sc.GEN_AI_OPERATION_NAME: sc.OP_EVENT, sc.DW_EVENT_KIND: kind,
               sc.DW_EVENT_CONTENT: content, sc.DW_EVENT_PRESSURE: pressure},
        )


class RecordingSink:
    """A finding sink that keeps every finding it is sent, in order."""

    name = "recording"

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def send(self, findings: Sequence[Finding]) -> None:
        self.findings.extend(findings)

    def close(self) -> None:
        return None


class RecordingConsumer:
    """A record consumer that keeps everything in memory (for in-process trace tests)."""

    def __init__(self) -> None:
        self.records: list[SpanRecord] = []
        self._lock = threading.Lock()

    def submit(self, record: SpanRecord) -> None:
        with self._lock:
            self.records.append(record)

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        return True

    def close(self, timeout_s: float | None = 30.0) -> None:
        return None


VOLATILE_ATTRIBUTES = frozenset({sc.DW_RUN_ID, sc.GEN_AI_CONVERSATION_ID, sc.GEN_AI_RESPONSE_ID})


def span_dicts(records: Sequence[SpanRecord]) -> list[dict[str, Any]]:
    """Records as plain dicts without ids and times, parents by name, in start order:
    what two runs with the same seed must agree on."""
    by_id = {r.span_id: r for r in records}
    out = []
    for record in sorted(records, key=lambda r: (r.start_time_ns, r.span_id)):
        parent = by_id.get(record.parent_span_id or "")
        out.append({
            "name": record.name,
            "kind": record.kind,
            "parent": parent.name if parent else None,
            "status": record.status_code,
            "attributes": {k: v for k, v in sorted(record.attributes.items())
                           if k not in VOLATILE_ATTRIBUTES},
        })
    return out


def finding_locations(findings: Sequence[Finding]) -> list[tuple[str, str | None, int | None]]:
    """(rule id, span id, turn) of each finding: what a monitor test usually asserts on."""
    return [(item.rule_id, item.span_id, item.turn) for item in findings]

