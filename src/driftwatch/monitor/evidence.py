"""Turning a matched span into a finding's message and evidence.

Messages are ``str.format``-style templates written by rule authors and filled with
values that may come from a model, so filling never raises and never follows attributes:
``{tool_arguments[path]}`` indexes, ``{name.__class__}`` is left as written, and so is any
placeholder whose value is missing or None.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from typing import Any

from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord
from driftwatch.store.arrow import DERIVED_ATTRIBUTE_COLUMNS

__all__ = [
    "MAX_EVIDENCE_BYTES",
    "MAX_MESSAGE_CHARS",
    "record_columns",
    "safe_format",
    "truncate_strings",
    "truncate_text",
]

MAX_EVIDENCE_BYTES = 2048
MAX_MESSAGE_CHARS = 1000

_formatter = string.Formatter()


class _Missing(Exception):
    """A placeholder that cannot be filled; it stays in the text as written."""


_FIELD = re.compile(r"([^.\[]+)((?:\[[^\]]*\])*)$")
_INDEX = re.compile(r"\[([^\]]*)\]")


def _lookup(field_name: str, values: Mapping[str, Any]) -> Any:
    match = _FIELD.match(field_name)  # attribute access (".x") never matches
    if match is None or match.group(1) not in values:
        raise _Missing
    value = values[match.group(1)]
    for key in _INDEX.findall(match.group(2)):
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list | tuple) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise _Missing
    if value is None:
        raise _Missing
    return value


def safe_format(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``template`` from ``values``; unfillable placeholders are kept verbatim and a
    malformed template is returned unchanged. The result is capped at
    :data:`MAX_MESSAGE_CHARS`."""
    try:
        parts = list(_formatter.parse(template))
    except ValueError:
        return truncate_text(template, MAX_MESSAGE_CHARS, unit="chars")
    out: list[str] = []
    for literal, field_name, format_spec, conversion in parts:
        out.append(literal)
        if field_name is None:
            continue
        placeholder = "{" + field_name
        placeholder += f"!{conversion}" if conversion else ""
        placeholder += f":{format_spec}" if format_spec else ""
        placeholder += "}"
        try:
            value = _lookup(field_name, values)
            if conversion:
                value = _formatter.convert_field(value, conversion)
            if isinstance(value, dict | list):
                value = json.dumps(value, ensure_ascii=False, default=str)
            out.append(format(value, format_spec or ""))
        except (_Missing, ValueError, TypeError):
            out.append(placeholder)
    return truncate_text("".join(out), MAX_MESSAGE_CHARS, unit="chars")


def truncate_text(text: str, limit: int = MAX_EVIDENCE_BYTES, *, unit: str = "bytes") -> str:
    """Cut ``text`` to ``limit`` UTF-8 bytes (or characters) and say how much was cut."""
    if unit == "chars":
        if len(text) <= limit:
            return text
        return text[:limit] + f"… [{len(text) - limit} chars truncated]"
    encoded = text.encode("utf-8", errors="replace")
    if len(encoded) <= limit:
        return text
    kept = encoded[:limit].decode("utf-8", errors="ignore")
    return kept + f"… [{len(encoded) - limit} bytes truncated]"


def truncate_strings(value: Any, limit: int = MAX_EVIDENCE_BYTES) -> Any:
    """A copy of a JSON-like value with every string cut to ``limit`` bytes (a
    ``write_file`` call's content must not bloat every finding)."""
    if isinstance(value, str):
        return truncate_text(value, limit)
    if isinstance(value, Mapping):
        return {str(key): truncate_strings(item, limit) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [truncate_strings(item, limit) for item in value]
    return value


def _parsed_tool_arguments(record: SpanRecord) -> Any:
    raw = record.attributes.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)
    parsed = record.tool_arguments()
    if parsed or raw in (None, ""):
        return parsed
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def record_columns(record: SpanRecord) -> dict[str, Any]:
    """The record as predicates see it (the ``spans`` view plus the derived columns),
    with JSON columns as Python values: what message templates are filled from."""
    attrs = record.attributes
    columns: dict[str, Any] = {
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "parent_span_id": record.parent_span_id,
        "run_id": record.run_id,
        "turn": record.turn,
        "name": record.name,
        "kind": record.kind,
        "operation": record.operation,
        "model": record.model,
        "provider": record.provider,
        "tool_name": record.tool_name,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "duration_ms": record.duration_ms,
        "status_code": record.status_code,
        "status_message": record.status_message,
        "attributes": attrs,
        "resource": record.resource,
    }
    for column, attribute in DERIVED_ATTRIBUTE_COLUMNS.items():
        columns[column] = attrs.get(attribute)
    columns["tool_arguments"] = _parsed_tool_arguments(record)
    # a requested call's row is marked by the rule-pack monitor, which made it
    columns["tool_call_source"] = (
        sc.TOOL_CALL_EXECUTED if record.operation == sc.OP_EXECUTE_TOOL else None)
    return columns
