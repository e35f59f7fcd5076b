"""OTLP JSON files (what the OpenTelemetry collector's file exporter writes): one
``ExportTraceServiceRequest`` per line → :class:`SpanRecord` objects.

A strict, minimal decoder kept apart from the importers on purpose: :func:`decode_request`
is the one function to swap for the collector's shared decoder
(``driftwatch.tracing.otlp.records_from_otlp_json``) once both are on one branch. Spans are
grouped into runs by ``driftwatch.run.id`` (else ``gen_ai.conversation.id``, else the trace
id); the run row comes from the run's ``invoke_agent`` span when there is one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from driftwatch.core import semconv as sc
from driftwatch.core.records import (
    RunInfo,
    RunStatus,
    SpanEvent,
    SpanRecord,
    ns_to_datetime,
)
from driftwatch.ingest.conversation import ImportedRun, ImportFormatError

__all__ = ["decode_request", "read_otlp_json"]

_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_KINDS: Final = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS: Final = ("UNSET", "OK", "ERROR")


def read_otlp_json(path: Path) -> list[ImportedRun]:
    """Decode every line (blank lines skipped), then group the spans into runs. Raises
    :class:`ImportFormatError` naming the first bad line and field."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(str(path), None, "", f"cannot read: {exc}") from None
    records: list[SpanRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.extend(decode_request(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ImportFormatError(str(path), number, "line",
                                    f"not valid JSON ({exc.msg})") from None
        except ValueError as exc:
            field, _, problem = str(exc).partition(": ")
            raise ImportFormatError(str(path), number, field, problem) from None
    if not records:
        raise ImportFormatError(str(path), None, "", "no spans")
    return group_runs(records, batch_id=f"import-otlp-json-{path.stem}")


def decode_request(request: Any) -> list[SpanRecord]:
    """One ``ExportTraceServiceRequest`` (OTLP/JSON: hex ids, 64-bit integers as strings or
    numbers, enums as numbers or names); raises ``ValueError("<field path>: <problem>")``."""
    if not isinstance(request, dict):
        raise ValueError("request: must be an object")
    out: list[SpanRecord] = []
    for r, resource_spans in enumerate(_list(request, "resourceSpans", "request")):
        where = f"resourceSpans[{r}]"
        resource = _attributes(_object(resource_spans, "resource", where).get("attributes"),
                               f"{where}.resource.attributes")
        for s, scope_spans in enumerate(_list(resource_spans, "scopeSpans", where)):
            scope_where = f"{where}.scopeSpans[{s}]"
            for i, span in enumerate(_list(scope_spans, "spans", scope_where)):
                out.append(_span(span, resource, f"{scope_where}.spans[{i}]"))
    return out


def _span(span: Any, resource: dict[str, Any], where: str) -> SpanRecord:
    if not isinstance(span, dict):
        raise ValueError(f"{where}: must be an object")
    trace_id = _hex(span, "traceId", 32, where)
    span_id = _hex(span, "spanId", 16, where)
    parent = span.get("parentSpanId") or None
    if parent is not None:
        parent = _hex(span, "parentSpanId", 16, where)
    name = span.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: must be a non-empty string")
    start = _int(span.get("startTimeUnixNano"), f"{where}.startTimeUnixNano")
    end = _int(span.get("endTimeUnixNano", start), f"{where}.endTimeUnixNano")
    if end < start:
        raise ValueError(f"{where}.endTimeUnixNano: before startTimeUnixNano")
    status = span.get("status") or {}
    if not isinstance(status, dict):
        raise ValueError(f"{where}.status: must be an object")
    message = status.get("message")
    return SpanRecord.create(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name,
        kind=_enum(span.get("kind", 1), _KINDS, "SPAN_KIND_", f"{where}.kind"),
        start_time_ns=start, end_time_ns=end,
        status_code=_enum(status.get("code", 0), _STATUS, "STATUS_CODE_", f"{where}.status.code"),
        status_message=message if isinstance(message, str) and message else None,
        attributes=_attributes(span.get("attributes"), f"{where}.attributes"),
        resource=resource,
        events=tuple(_event(e, f"{where}.events[{n}]")
                     for n, e in enumerate(span.get("events") or [])),
    )


def _event(event: Any, where: str) -> SpanEvent:
    if not isinstance(event, dict) or not isinstance(event.get("name"), str):
        raise ValueError(f"{where}.name: must be a string")
    return SpanEvent(name=event["name"], time_ns=_int(event.get("timeUnixNano", 0),
                                                       f"{where}.timeUnixNano"),
                     attributes=_attributes(event.get("attributes"), f"{where}.attributes"))


def _list(parent: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = parent.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{where}.{key}: must be a list")
    return value


def _object(parent: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(parent, dict):
        raise ValueError(f"{where}: must be an object")
    value = parent.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}.{key}: must be an object")
    return value


def _hex(span: Mapping[str, Any], key: str, digits: int, where: str) -> str:
    value = span.get(key)
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) != digits:
        raise ValueError(f"{where}.{key}: must be {digits} hex digits")
    return value.lower()


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{where}: must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{where}: must be an integer")


def _enum(value: Any, names: tuple[str, ...], prefix: str, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value] if names[value] != "UNSPECIFIED" else "INTERNAL"
    if isinstance(value, str) and value.removeprefix(prefix) in names:
        name = value.removeprefix(prefix)
        return name if name != "UNSPECIFIED" else "INTERNAL"
    raise ValueError(f"{where}: unknown value {value!r}")


def _attributes(items: Any, where: str) -> dict[str, Any]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ValueError(f"{where}: must be a list")
    out: dict[str, Any] = {}
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ValueError(f"{where}[{n}].key: must be a string")
        out[item["key"]] = _value(item.get("value"), f"{where}[{n}].value")
    return out


def _value(value: Any, where: str) -> Any:
    """An OTLP ``AnyValue``: an object with exactly one of the typed fields."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"{where}: must be an AnyValue object with one field")
    (kind, inner), = value.items()
    decode = _DECODERS.get(kind)
    if decode is None:
        raise ValueError(f"{where}: unsupported {kind}")
    return decode(inner, where)


def _string(inner: Any, where: str) -> str:
    if not isinstance(inner, str):
        raise ValueError(f"{where}: stringValue must be a string")
    return inner


def _bool(inner: Any, where: str) -> bool:
    if not isinstance(inner, bool):
        raise ValueError(f"{where}: boolValue must be true or false")
    return inner


def _double(inner: Any, where: str) -> float:
    if isinstance(inner, bool) or not isinstance(inner, int | float | str):
        raise ValueError(f"{where}: doubleValue must be a number")
    try:
        return float(inner)
    except ValueError:
        raise ValueError(f"{where}: doubleValue must be a number") from None


def _array(inner: Any, where: str) -> list[Any]:
    if not isinstance(inner, dict):
        raise ValueError(f"{where}: arrayValue must be an object")
    return [_value(v, f"{where}.values[{i}]") for i, v in enumerate(inner.get("values") or [])]


def _kvlist(inner: Any, where: str) -> dict[str, Any]:
    if not isinstance(inner, dict):
        raise ValueError(f"{where}: kvlistValue must be an object")
    return _attributes(inner.get("values") or [], f"{where}.values")


_DECODERS: Final[dict[str, Callable[[Any, str], Any]]] = {
    "stringValue": _string, "boolValue": _bool, "intValue": _int, "doubleValue": _double,
    "arrayValue": _array, "kvlistValue": _kvlist,
}


def group_runs(records: list[SpanRecord], *, batch_id: str) -> list[ImportedRun]:
    """Spans grouped by run (file order kept), each with a run row built from its root
    (``invoke_agent``) span, or from the spans alone when the root is missing. A span
    without a run or conversation id joins the run named by another span of its trace
    (instrumentations often set ``session.id`` on the root span only)."""
    named: dict[str, str] = {}
    for record in records:
        if record.run_id != record.trace_id and (
                record.operation == sc.OP_INVOKE_AGENT or record.trace_id not in named):
            named[record.trace_id] = record.run_id
    by_run: dict[str, list[SpanRecord]] = {}
    for record in records:
        joined = record
        if record.run_id == record.trace_id and record.trace_id in named:
            joined = replace(record, run_id=named[record.trace_id])
        by_run.setdefault(joined.run_id, []).append(joined)
    return [_run(run_id, spans, batch_id) for run_id, spans in by_run.items()]


def _run(run_id: str, spans: list[SpanRecord], batch_id: str) -> ImportedRun:
    root = next((s for s in spans if s.operation == sc.OP_INVOKE_AGENT), None)
    attrs = root.attributes if root is not None else {}
    turns = max((s.turn for s in spans if s.turn is not None), default=0)
    errored = root is not None and root.status_code == "ERROR"
    seed = attrs.get(sc.DW_SEED)
    first = next((s for s in spans if s.attributes.get(sc.DW_SCENARIO_ID)), None)
    info = RunInfo(
        run_id=run_id, trace_id=(root or spans[0]).trace_id,
        scenario_id=attrs.get(sc.DW_SCENARIO_ID) or (first.attributes[sc.DW_SCENARIO_ID]
                                                     if first else None),
        variant=attrs.get(sc.DW_SCENARIO_VARIANT), model=(root.model if root else None),
        seed=seed if isinstance(seed, int) else None,
        status=RunStatus.ERRORED if errored else RunStatus.COMPLETED,
        started_at=ns_to_datetime(min(s.start_time_ns for s in spans)),
        ended_at=ns_to_datetime(max(s.end_time_ns for s in spans)),
        batch_id=attrs.get(sc.DW_BATCH_ID) or batch_id, turns=turns,
        error=root.status_message if errored and root is not None else None,
        attributes={"source": "otlp-json",
                    "tool_calls": sum(s.operation == sc.OP_EXECUTE_TOOL for s in spans),
                    "model_calls": sum(s.operation == sc.OP_CHAT for s in spans)},
    )
    return ImportedRun(info=info, spans=spans)
