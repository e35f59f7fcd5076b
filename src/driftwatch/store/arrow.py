"""SpanRecords → one Arrow table. The column set is the ``spans`` view's, in order, so a
batch is written with a single ``INSERT … SELECT`` and rule predicates see the same
columns users query."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Sequence
from typing import Any, cast

import pyarrow as pa

from driftwatch.core import semconv as sc
from driftwatch.core.records import (
    Finding,
    FindingKind,
    Severity,
    SpanEvent,
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


def _make_encoder() -> Callable[[Any], str]:
    """A compact JSON encoder built once: on the ingest hot path, encoding attributes is
    the largest cost of turning records into Arrow.

    orjson when it is installed (it comes with langgraph; measured 2.2 µs vs 5 µs per
    attribute dict of a tool span), else the stdlib C encoder built once (``json.dumps``
    with options builds a new encoder per call: 2.5 µs vs 0.8 µs for a small dict).
    Both write compact UTF-8 JSON; orjson writes NaN as null.
    """
    try:
        import orjson
    except ImportError:  # pragma: no cover - depends on the environment
        pass
    else:
        dumps = orjson.dumps
        option = orjson.OPT_NON_STR_KEYS

        def encode_orjson(value: Any) -> str:
            return dumps(value, default=str, option=option).decode()

        return encode_orjson
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - no C accelerator (e.g. PyPy)
        encoder = json.JSONEncoder(separators=(",", ":"), default=str, ensure_ascii=False)
        return encoder.encode
    # markers=None: no shared circular-reference state, so the encoder is thread-safe;
    # a circular value ends in RecursionError, which _json handles.
    iterencode = make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True)

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


_encode = _make_encoder()


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


def _events_json(record: SpanRecord) -> str:
    if not record.events:
        return "[]"
    return _json(
        [{"name": e.name, "time_ns": e.time_ns, "attributes": e.attributes} for e in record.events]
    )


def _resources_json(records: Sequence[SpanRecord]) -> list[str]:
    """Spans from one process share a resource: encode each distinct one once."""
    out: list[str] = []
    last: dict[str, Any] | None = None
    last_text = "{}"
    for record in records:
        resource = record.resource
        if resource is not last and resource != last:
            last, last_text = resource, _json(resource)
        out.append(last_text)
    return out


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
            "resource": _resources_json(records),
            "events": [_events_json(r) for r in records],
        },
        schema=SPAN_SCHEMA,
    )


# Extra columns of a span table sent to another process (see :func:`with_exact_times`):
# the stored ``start_time``/``end_time`` keep microseconds, a SpanRecord keeps nanoseconds.
EXACT_TIME_COLUMNS = ("start_time_ns", "end_time_ns")


def with_exact_times(table: pa.Table, records: Sequence[SpanRecord]) -> pa.Table:
    """``table`` (from :func:`records_to_arrow` on ``records``) plus the nanosecond times,
    so :func:`records_from_arrow` gives back records equal to ``records``."""
    return table.append_column(
        EXACT_TIME_COLUMNS[0], pa.array([r.start_time_ns for r in records], pa.int64())
    ).append_column(EXACT_TIME_COLUMNS[1], pa.array([r.end_time_ns for r in records], pa.int64()))


def records_from_arrow(table: pa.Table) -> list[SpanRecord]:
    """The inverse of :func:`records_to_arrow` (with :func:`with_exact_times` for exact
    times; without, times are the stored microseconds). The typed columns are taken as
    they are, not derived again. JSON columns must be what :func:`records_to_arrow` wrote
    (an invalid document raises ``ValueError``)."""
    import orjson

    loads = orjson.loads
    columns = {name: _column_values(table.column(name)) for name in SPAN_SCHEMA.names
               if name not in ("start_time", "end_time", "duration_ms")}
    if all(name in table.column_names for name in EXACT_TIME_COLUMNS):
        starts = _column_values(table.column(EXACT_TIME_COLUMNS[0]))
        ends = _column_values(table.column(EXACT_TIME_COLUMNS[1]))
    else:
        starts, ends = (
            [None if v is None else v * 1000
             for v in _column_values(table.column(name).cast(pa.int64()))]
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


def _column_values(column: pa.ChunkedArray) -> list[Any]:
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
