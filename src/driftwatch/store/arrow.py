"""SpanRecords → one Arrow table. The column set is the ``spans`` view's, in order, so a
batch is written with a single ``INSERT … SELECT`` and rule predicates see the same
columns users query."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord

SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("run_id", pa.string()),
        ("turn", pa.int32()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("operation", pa.string()),
        ("model", pa.string()),
        ("provider", pa.string()),
        ("tool_name", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("start_time", pa.timestamp("us", tz="UTC")),
        ("end_time", pa.timestamp("us", tz="UTC")),
        ("duration_ms", pa.float64()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("attributes", pa.string()),  # JSON text; stored as DuckDB JSON
        ("resource", pa.string()),
        ("events", pa.string()),
    ]
)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)


def _events_json(record: SpanRecord) -> str:
    if not record.events:
        return "[]"
    return _json(
        [{"name": e.name, "time_ns": e.time_ns, "attributes": e.attributes} for e in record.events]
    )


def records_to_arrow(records: Sequence[SpanRecord]) -> pa.Table:
    """Column-wise conversion; no per-row Arrow calls."""
    return pa.Table.from_pydict(
        {
            "trace_id": [r.trace_id for r in records],
            "span_id": [r.span_id for r in records],
            "parent_span_id": [r.parent_span_id for r in records],
            "run_id": [r.run_id for r in records],
            "turn": [r.turn for r in records],
            "name": [r.name for r in records],
            "kind": [r.kind for r in records],
            "operation": [r.operation for r in records],
            "model": [r.model for r in records],
            "provider": [r.provider for r in records],
            "tool_name": [r.tool_name for r in records],
            "input_tokens": [r.input_tokens for r in records],
            "output_tokens": [r.output_tokens for r in records],
            "start_time": [r.start_time_ns // 1000 for r in records],
            "end_time": [r.end_time_ns // 1000 for r in records],
            "duration_ms": [(r.end_time_ns - r.start_time_ns) / 1e6 for r in records],
            "status_code": [r.status_code for r in records],
            "status_message": [r.status_message for r in records],
            "attributes": [_json(r.attributes) for r in records],
            "resource": [_json(r.resource) for r in records],
            "events": [_events_json(r) for r in records],
        },
        schema=SPAN_SCHEMA,
    )


# Convenience columns that rule predicates (and the tool_calls view) expose on top of the
# stored ones, computed from well-known attributes.
DERIVED_ATTRIBUTE_COLUMNS: dict[str, str] = {
    "tool_arguments": sc.GEN_AI_TOOL_CALL_ARGUMENTS,
    "tool_result": sc.GEN_AI_TOOL_CALL_RESULT,
    "tool_call_id": sc.GEN_AI_TOOL_CALL_ID,
    "event_kind": sc.DW_EVENT_KIND,
    "scenario_id": sc.DW_SCENARIO_ID,
    "variant": sc.DW_SCENARIO_VARIANT,
    "output_messages": sc.GEN_AI_OUTPUT_MESSAGES,
}
