"""OTLP log and metric requests: ``ExportLogsServiceRequest`` → a ``LOG_SCHEMA`` table,
``ExportMetricsServiceRequest`` → counts.

The same wire forms and the same strictness as :mod:`driftwatch.tracing.otlp` (trace
requests): protobuf or OTLP/JSON (hex ids, lowerCamelCase or snake_case names, 64-bit
integers as strings). A log record that does not make sense (an id of the wrong length,
a value of the wrong type) is rejected with a reason; a request that is not a logs (or
metrics) request raises :class:`~driftwatch.tracing.otlp.OtlpDecodeError`.

A record's event name is its ``event_name`` field, else its ``event.name`` attribute
(what SDKs before the field wrote). Bodies and attribute values keep their structure
(maps and lists), stored as JSON.

Metrics are only counted (data points per request): see docs/collector.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import pyarrow as pa

from driftwatch.store.logs import LOG_SCHEMA
from driftwatch.tracing.otlp import (
    OtlpDecoded,
    OtlpDecodeError,
    _field,
    _hex_id,
    _integer,
    _json_attributes,
    _json_value,
    _list,
    _object,
    _pb_attributes,
    _pb_value,
    _SpanError,
    _text,
    _uint64,
    parse_request,
)

__all__ = ["MetricsDecoded", "logs_from_json", "logs_from_protobuf", "metrics_from_json",
           "metrics_from_protobuf"]

_INT64: Final = 2**63
_EVENT_NAME_ATTRIBUTE: Final = "event.name"
_POINT_KINDS: Final = ("gauge", "sum", "histogram", "exponential_histogram", "summary")
_JSON_POINT_KINDS: Final = {"gauge": "gauge", "sum": "sum", "histogram": "histogram",
                            "exponentialHistogram": "exponential_histogram",
                            "exponential_histogram": "exponential_histogram",
                            "summary": "summary"}

_Row = tuple[Any, ...]


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _timestamp(nanos: int) -> datetime | None:
    if nanos <= 0:
        return None
    return datetime.fromtimestamp(nanos // 1000 / 1e6, tz=UTC)


def _row(trace_id: str | None, span_id: str | None, time_ns: int, observed_ns: int,
         severity_number: int, severity_text: str, event_name: str, body: Any,
         attributes: dict[str, Any], resource_json: str, scope_name: str,
         received_at: datetime) -> _Row:
    if not -_INT64 < time_ns < _INT64 or not -_INT64 < observed_ns < _INT64:
        raise _SpanError("time is out of range")
    if event_name == "" and isinstance(attributes.get(_EVENT_NAME_ATTRIBUTE), str):
        event_name = attributes[_EVENT_NAME_ATTRIBUTE]
    return (trace_id, span_id, _timestamp(time_ns), _timestamp(observed_ns), time_ns,
            severity_number, severity_text or None, event_name or None,
            None if body is None else _dumps(body), _dumps(attributes), resource_json,
            scope_name or None, received_at)


def _table(rows: list[_Row]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(LOG_SCHEMA)
    return pa.table([pa.array(list(column), type=field.type)
                     for column, field in zip(columns, LOG_SCHEMA, strict=True)],
                    schema=LOG_SCHEMA)


# --- logs, protobuf -----------------------------------------------------------------------


def logs_from_protobuf(data: bytes, received_at: datetime | None = None) -> OtlpDecoded:
    """Decode a protobuf ``ExportLogsServiceRequest``: ``table`` in ``LOG_SCHEMA``."""
    # start-up: the protobuf modules load only when a protobuf request arrives
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )

    request = parse_request(ExportLogsServiceRequest, data)
    return logs_from_message(request, received_at)


def logs_from_message(request: Any, received_at: datetime | None = None) -> OtlpDecoded:
    """:func:`logs_from_protobuf` for a request message already parsed."""
    out = OtlpDecoded()
    now = received_at or datetime.now(UTC)
    rows: list[_Row] = []
    for r_index, resource_logs in enumerate(request.resource_logs):
        where_r = f"resource_logs[{r_index}]"
        try:
            resource = _dumps(_pb_attributes(resource_logs.resource.attributes))
        except _SpanError as error:
            out.reject(f"{where_r}.resource", str(error),
                       sum(len(s.log_records) for s in resource_logs.scope_logs))
            continue
        for s_index, scope_logs in enumerate(resource_logs.scope_logs):
            scope_name = scope_logs.scope.name
            for index, record in enumerate(scope_logs.log_records):
                try:
                    rows.append(_row(
                        _pb_id(record.trace_id, 16, "trace_id"),
                        _pb_id(record.span_id, 8, "span_id"),
                        record.time_unix_nano, record.observed_time_unix_nano,
                        record.severity_number, record.severity_text, record.event_name,
                        _pb_value(record.body) if record.HasField("body") else None,
                        _pb_attributes(record.attributes), resource, scope_name, now))
                except _SpanError as error:
                    out.reject(f"{where_r}.scope_logs[{s_index}].log_records[{index}]",
                               str(error))
    out.table = _table(rows)
    return out


def _pb_id(raw: bytes, size: int, name: str) -> str | None:
    """A log record's ids are optional (empty, or all zeros: not in a span)."""
    if not raw or not any(raw):
        return None
    if len(raw) != size:
        raise _SpanError(f"{name} must be {size} bytes, got {len(raw)}")
    return raw.hex()


# --- logs, JSON -------------------------------------------------------------------------


def logs_from_json(obj: Mapping[str, Any], received_at: datetime | None = None) -> OtlpDecoded:
    """Decode an OTLP/JSON ``ExportLogsServiceRequest`` already parsed from JSON."""
    if not isinstance(obj, Mapping):
        raise OtlpDecodeError(f"expected a JSON object, got {type(obj).__name__}")
    resource_logs_list = _field(obj, "resourceLogs", "resource_logs", [])
    if not isinstance(resource_logs_list, list):
        raise OtlpDecodeError("resourceLogs must be a list")
    out = OtlpDecoded()
    now = received_at or datetime.now(UTC)
    rows: list[_Row] = []
    for r_index, resource_logs in enumerate(resource_logs_list):
        where_r = f"resourceLogs[{r_index}]"
        try:
            scopes = [_object(item, "scopeLogs[]") for item in
                      _list(_object(resource_logs, where_r), "scopeLogs", "scope_logs")]
            records_per_scope = [_list(scope, "logRecords", "log_records") for scope in scopes]
        except _SpanError as error:
            raise OtlpDecodeError(f"{where_r}: {error}") from None
        try:
            resource_obj = _object(_field(resource_logs, "resource", "resource", {}), "resource")
            resource = _dumps(_json_attributes(_list(resource_obj, "attributes", "attributes")))
        except _SpanError as error:
            out.reject(f"{where_r}.resource", str(error), sum(map(len, records_per_scope)))
            continue
        for s_index, (scope, records) in enumerate(zip(scopes, records_per_scope, strict=True)):
            scope_obj = _field(scope, "scope", "scope", {})
            scope_name = scope_obj.get("name") if isinstance(scope_obj, Mapping) else None
            for index, record in enumerate(records):
                try:
                    rows.append(_json_record(record, resource, scope_name, now))
                except _SpanError as error:
                    out.reject(f"{where_r}.scopeLogs[{s_index}].logRecords[{index}]",
                               str(error))
    out.table = _table(rows)
    return out


def _json_record(record: Any, resource: str, scope_name: Any, now: datetime) -> _Row:
    record = _object(record, "logRecord")
    trace = _field(record, "traceId", "trace_id", "")
    span = _field(record, "spanId", "span_id", "")
    body = _field(record, "body", "body", None)
    severity = _integer(_field(record, "severityNumber", "severity_number", 0), "severityNumber")
    return _row(
        _hex_id(trace, 16, "traceId") if trace and trace.strip("0") else None,
        _hex_id(span, 8, "spanId") if span and span.strip("0") else None,
        _uint64(_field(record, "timeUnixNano", "time_unix_nano", 0), "timeUnixNano"),
        _uint64(_field(record, "observedTimeUnixNano", "observed_time_unix_nano", 0),
                "observedTimeUnixNano"),
        _severity(severity),
        _text(_field(record, "severityText", "severity_text", ""), "severityText"),
        _text(_field(record, "eventName", "event_name", ""), "eventName"),
        None if body is None else _json_value(body, "body"),
        _json_attributes(_list(record, "attributes", "attributes")), resource,
        scope_name if isinstance(scope_name, str) else "", now)


def _severity(value: int) -> int:
    if not 0 <= value <= 24:
        raise _SpanError(f"severityNumber {value} is out of range")
    return value


# --- metrics ----------------------------------------------------------------------------


@dataclass(slots=True)
class MetricsDecoded:
    """What a metrics request held: metrics and data points (nothing is stored)."""

    metrics: int = 0
    points: int = 0


def metrics_from_protobuf(data: bytes) -> MetricsDecoded:
    """Count the metrics and data points of a protobuf ``ExportMetricsServiceRequest``."""
    # start-up: the protobuf modules load only when a protobuf request arrives
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    request = parse_request(ExportMetricsServiceRequest, data)
    return metrics_from_message(request)


def metrics_from_message(request: Any) -> MetricsDecoded:
    """:func:`metrics_from_protobuf` for a request message already parsed."""
    out = MetricsDecoded()
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out.metrics += 1
                kind = metric.WhichOneof("data")
                if kind in _POINT_KINDS:
                    out.points += len(getattr(metric, kind).data_points)
    return out


def metrics_from_json(obj: Mapping[str, Any]) -> MetricsDecoded:
    """Count the metrics and data points of an OTLP/JSON ``ExportMetricsServiceRequest``."""
    if not isinstance(obj, Mapping):
        raise OtlpDecodeError(f"expected a JSON object, got {type(obj).__name__}")
    out = MetricsDecoded()
    try:
        for resource_metrics in _list(obj, "resourceMetrics", "resource_metrics"):
            for scope in _list(_object(resource_metrics, "resourceMetrics[]"), "scopeMetrics",
                               "scope_metrics"):
                for metric in _list(_object(scope, "scopeMetrics[]"), "metrics", "metrics"):
                    out.metrics += 1
                    out.points += _json_points(_object(metric, "metric").items())
    except _SpanError as error:
        raise OtlpDecodeError(str(error)) from None
    return out


def _json_points(items: Iterable[tuple[str, Any]]) -> int:
    for key, value in items:
        if key in _JSON_POINT_KINDS:
            return len(_list(_object(value, key), "dataPoints", "data_points"))
    return 0
