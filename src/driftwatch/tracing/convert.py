"""OpenTelemetry SDK spans → :class:`~driftwatch.core.records.SpanRecord`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from driftwatch.core.records import SpanEvent, SpanRecord


def _plain(value: Any) -> Any:
    """OTel attribute values are primitives or (immutable) sequences of them; JSON and
    monitors want lists."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if not attributes:
        return {}
    return {key: _plain(value) for key, value in attributes.items()}


def span_to_record(span: ReadableSpan) -> SpanRecord:
    """Convert one finished SDK span. Pure and thread-safe; raises ``ValueError`` for a
    span without a context (the SDK never produces one)."""
    context = span.context
    if context is None:
        raise ValueError(f"span {span.name!r} has no context")
    parent = span.parent
    start = span.start_time or 0
    end = span.end_time or start
    status = span.status
    events = tuple(
        SpanEvent(
            name=event.name, time_ns=event.timestamp, attributes=_attributes(event.attributes)
        )
        for event in span.events
    )
    return SpanRecord.create(
        trace_id=format(context.trace_id, "032x"),
        span_id=format(context.span_id, "016x"),
        parent_span_id=format(parent.span_id, "016x") if parent is not None else None,
        name=span.name,
        kind=span.kind.name,
        start_time_ns=start,
        end_time_ns=end,
        status_code=status.status_code.name,
        status_message=status.description or None,
        attributes=_attributes(span.attributes),
        resource=_attributes(span.resource.attributes),
        events=events,
    )
