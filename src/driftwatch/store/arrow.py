"""SpanRecords → one Arrow table. The column set is the ``spans`` view's, in order, so a
batch is written with a single ``INSERT … SELECT`` and rule predicates see the same
columns users query."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

import orjson
import pyarrow as pa

from driftwatch.core import semconv as sc
from driftwatch.core.records import (
    SPAN_FIELD_NAMES,
    Finding,
    FindingKind,
    Severity,
    SpanEvent,
    SpanFields,
    SpanRecord,
    make_span_record,
)

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


_ORJSON_OPTION = orjson.OPT_NON_STR_KEYS


def _encode(value: Any) -> str:
    """Compact UTF-8 JSON with orjson (a dependency; on the ingest hot path encoding
    attributes is the largest cost of turning records into Arrow: 2.2 µs vs 5 µs per
    attribute dict of a tool span with json). orjson writes NaN as null."""
    return orjson.dumps(value, default=str, option=_ORJSON_OPTION).decode()


def _json(value: Any) -> str:
    """Compact JSON text; never raises (odd keys or values degrade to strings)."""
    try:
        return _encode(value)
    except (TypeError, ValueError, RecursionError):
        try:
            return json.dumps(value, separators=(",", ":"), default=str, skipkeys=True)
        except (TypeError, ValueError, RecursionError):
            return json.dumps(str(value))


def to_json(value: Any) -> str:
    """Compact JSON text as stored in the JSON columns; never raises."""
    return _json(value)


def _events_json(events: tuple[SpanEvent, ...]) -> str:
    if not events:
        return "[]"
    return _json([{"name": e.name, "time_ns": e.time_ns, "attributes": e.attributes}
                  for e in events])


def _resources_json(resources: Sequence[dict[str, Any]]) -> list[str]:
    """Spans from one process share a resource: encode each distinct one once."""
    out: list[str] = []
    last: dict[str, Any] | None = None
    last_text = "{}"
    for resource in resources:
        if resource is not last and resource != last:
            last, last_text = resource, _json(resource)
        out.append(last_text)
    return out


def records_to_arrow(records: Sequence[SpanRecord]) -> pa.Table:
    """Column-wise conversion; no per-row Arrow calls."""
    return _span_table(_columns([_fields_of(record) for record in records]))


def span_rows_to_arrow(rows: Sequence[SpanFields]) -> pa.Table:
    """:func:`~driftwatch.core.records.span_fields` rows → the table
    :func:`exact_span_table` gives for the records ``make_span_record(*row)`` would make,
    without making them."""
    columns = _columns(rows)
    return _span_table(columns).append_column(
        EXACT_TIME_COLUMNS[0], pa.array(columns[_START], pa.int64())
    ).append_column(EXACT_TIME_COLUMNS[1], pa.array(columns[_END], pa.int64()))


def exact_span_table(records: Sequence[SpanRecord]) -> pa.Table:
    """:func:`records_to_arrow` plus the nanosecond times (:data:`EXACT_TIME_COLUMNS`),
    so :func:`records_from_arrow` gives back records equal to ``records``: the form the
    collector queues, stores (``SPAN_SCHEMA`` columns) and sends to its monitor process."""
    return span_rows_to_arrow([_fields_of(record) for record in records])


# Extra columns of a span table sent to another process (see :func:`exact_span_table`):
# the stored ``start_time``/``end_time`` keep microseconds, a SpanRecord keeps nanoseconds.
EXACT_TIME_COLUMNS = ("start_time_ns", "end_time_ns")

_fields_of = operator.attrgetter(*SPAN_FIELD_NAMES)  # a record → its span_fields row
_START, _END = SPAN_FIELD_NAMES.index("start_time_ns"), SPAN_FIELD_NAMES.index("end_time_ns")


def _columns(rows: Sequence[SpanFields]) -> list[Sequence[Any]]:
    """Rows → one sequence per SpanRecord field, in field order."""
    return list(zip(*rows, strict=True)) or [()] * len(SPAN_FIELD_NAMES)


def _span_table(columns: list[Sequence[Any]]) -> pa.Table:
    """Columns in SpanRecord field order → a ``SPAN_SCHEMA`` table."""
    c = dict(zip(SPAN_FIELD_NAMES, columns, strict=True))
    starts, ends = c["start_time_ns"], c["end_time_ns"]
    return pa.Table.from_pydict(
        {
            "trace_id": c["trace_id"],
            "span_id": c["span_id"],
            "parent_span_id": c["parent_span_id"],
            "run_id": c["run_id"],
            "turn": c["turn"],
            "name": c["name"],
            "kind": c["kind"],
            "operation": c["operation"],
            "model": c["model"],
            "provider": c["provider"],
            "tool_name": c["tool_name"],
            "input_tokens": c["input_tokens"],
            "output_tokens": c["output_tokens"],
            "start_time": [ns // 1000 for ns in starts],
            "end_time": [ns // 1000 for ns in ends],
            "duration_ms": [(end - start) / 1e6 for start, end in zip(starts, ends, strict=True)],
            "status_code": c["status_code"],
            "status_message": c["status_message"],
            "attributes": [_json(value) for value in c["attributes"]],
            "resource": _resources_json(c["resource"]),
            "events": [_events_json(value) for value in c["events"]],
        },
        schema=SPAN_SCHEMA,
    )


def records_from_arrow(table: pa.Table) -> list[SpanRecord]:
    """The inverse of :func:`records_to_arrow` (of :func:`exact_span_table` for exact
    times; without them, times are the stored microseconds). The typed columns are taken as
    they are, not derived again. JSON columns must be what :func:`records_to_arrow` wrote
    (an invalid document raises ``ValueError``)."""
    loads = orjson.loads
    columns = {name: column_values(table.column(name)) for name in SPAN_SCHEMA.names
               if name not in ("start_time", "end_time", "duration_ms")}
    if all(name in table.column_names for name in EXACT_TIME_COLUMNS):
        starts = column_values(table.column(EXACT_TIME_COLUMNS[0]))
        ends = column_values(table.column(EXACT_TIME_COLUMNS[1]))
    else:
        starts, ends = (
            [None if v is None else v * 1000
             for v in column_values(table.column(name).cast(pa.int64()))]
            for name in ("start_time", "end_time")
        )
    resources: dict[str, dict[str, Any]] = {}

    def resource_of(text: str | None) -> dict[str, Any]:
        parsed = resources.get(text or "")
        if parsed is None:
            parsed = resources[text or ""] = loads(text) if text else {}
        return parsed

    c = columns
    # positional, in SpanRecord's field order (a keyword call costs a third more)
    return [
        make_span_record(trace_id, span_id, parent, name, kind, start, end, status, message,
                   loads(attributes) if attributes else {}, resource_of(resource),
                   _events_from_json(events, loads), run_id, turn, operation, model,
                   provider, tool_name, input_tokens, output_tokens)
        for (trace_id, span_id, parent, name, kind, start, end, status, message, attributes,
             resource, events, run_id, turn, operation, model, provider, tool_name,
             input_tokens, output_tokens) in zip(
            c["trace_id"], c["span_id"], c["parent_span_id"], c["name"], c["kind"], starts,
            ends, c["status_code"], c["status_message"], c["attributes"], c["resource"],
            c["events"], c["run_id"], c["turn"], c["operation"], c["model"], c["provider"],
            c["tool_name"], c["input_tokens"], c["output_tokens"], strict=True)
    ]


def column_values(column: pa.ChunkedArray) -> list[Any]:
    """Python values of a column. Through NumPy where that is exact (text, and integers
    without nulls): several times faster than ``to_pylist``."""
    if pa.types.is_string(column.type) or (
        pa.types.is_integer(column.type) and column.null_count == 0
    ):
        return cast(list[Any], column.to_numpy().tolist())
    return cast(list[Any], column.to_pylist())


def _events_from_json(text: str | None, loads: Callable[[str], Any]) -> tuple[SpanEvent, ...]:
    if not text or text == "[]":
        return ()
    return tuple(
        SpanEvent(name=item["name"], time_ns=item["time_ns"], attributes=item["attributes"])
        for item in loads(text)
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


FINDING_SCHEMA = pa.schema(
    [
        ("finding_id", pa.string()),
        ("run_id", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("turn", pa.int32()),
        ("monitor", pa.string()),
        ("rule_id", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.string()),
        ("severity_level", pa.int32()),
        ("message", pa.string()),
        ("evidence", pa.string()),  # JSON text; stored as DuckDB JSON
        ("detected_at", pa.timestamp("us", tz="UTC")),
        ("monitor_spec", pa.string()),
    ]
)


def findings_to_arrow(findings: Sequence[Finding]) -> pa.Table:
    """Findings → one Arrow table with the ``findings`` view's columns, in order."""
    return pa.Table.from_pydict(
        {
            "finding_id": [f.finding_id for f in findings],
            "run_id": [f.run_id for f in findings],
            "trace_id": [f.trace_id for f in findings],
            "span_id": [f.span_id for f in findings],
            "turn": [f.turn for f in findings],
            "monitor": [f.monitor for f in findings],
            "rule_id": [f.rule_id for f in findings],
            "kind": [FindingKind(f.kind).value for f in findings],
            "severity": [Severity.parse(f.severity).label for f in findings],
            "severity_level": [int(Severity.parse(f.severity)) for f in findings],
            "message": [f.message for f in findings],
            "evidence": [_json(f.evidence) for f in findings],
            "detected_at": [f.detected_at for f in findings],
            "monitor_spec": [_json(f.monitor_spec) for f in findings],
        },
        schema=FINDING_SCHEMA,
    )
