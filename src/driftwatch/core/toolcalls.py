"""Tool calls as the store's ``tool_calls`` view and rule packs see them: *requested*
(in a chat span's ``gen_ai.output.messages``) and *executed* (an ``execute_tool`` span),
linked by their call id.

Output messages come in two shapes and both are read: the OpenAI shape
(``{"role", "content", "tool_calls": [{"id", "function": {"name", "arguments"}}]}``, what
our own spans and the flattened-key conversion in :mod:`driftwatch.core.aliases` write)
and the GenAI ``parts`` schema (``{"role", "parts": [{"type": "tool_call", "id", "name",
"arguments"}]}``). The SQL of the ``tool_calls`` view (``store/migrations.py``) reads the
same two shapes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord

__all__ = ["RequestedCall", "requested_call_records", "requested_tool_calls",
           "resolve_fallback_arguments", "with_arguments"]


@dataclass(frozen=True, slots=True)
class RequestedCall:
    """One tool call a model asked for. ``arguments`` as sent (a JSON string or an
    object)."""

    call_id: str | None
    name: str
    arguments: Any


def _parsed(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # a client's attribute never makes this raise
        return None


def requested_tool_calls(attributes: Mapping[str, Any]) -> list[RequestedCall]:
    """The tool calls in ``gen_ai.output.messages``, in order (both shapes)."""
    messages = _parsed(attributes.get(sc.GEN_AI_OUTPUT_MESSAGES))
    if isinstance(messages, Mapping):
        messages = [messages]
    if not isinstance(messages, list):
        return []
    calls: list[RequestedCall] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping) and isinstance(function.get("name"), str):
                calls.append(RequestedCall(_id(call.get("id")), function["name"],
                                           function.get("arguments")))
        parts = message.get("parts")
        for part in parts if isinstance(parts, list) else ():
            if (isinstance(part, Mapping) and part.get("type") == "tool_call"
                    and isinstance(part.get("name"), str)):
                calls.append(RequestedCall(_id(part.get("id")), part["name"],
                                           part.get("arguments")))
    return calls


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def resolve_fallback_arguments(
    attributes: Mapping[str, Any], requested: Any
) -> dict[str, Any] | None:
    """The object arguments of an executed call whose instrumentation gave one bare
    value (marked ``driftwatch.tool.arguments.fallback_key``): ``requested``, the
    arguments of the requested call with the same call id, when they are an object (the
    model named the tool's declared parameter). None otherwise: the fallback stays."""
    key = attributes.get(sc.DW_TOOL_ARGUMENTS_FALLBACK_KEY)
    current = _parsed(attributes.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS))
    if not isinstance(key, str) or not isinstance(current, dict) or key not in current:
        return None
    parsed = _parsed(requested) if requested is not None else None
    return parsed if isinstance(parsed, dict) and parsed else None


def requested_call_records(record: SpanRecord) -> list[SpanRecord]:
    """One row per tool call ``record`` (a chat span) asked for, as a rule's batch sees
    it: the chat span with ``tool_name``, ``gen_ai.tool.call.id`` and
    ``gen_ai.tool.call.arguments`` of the call and ``driftwatch.tool_call.source =
    requested``. Not stored: only rule evaluation reads these rows."""
    if record.operation == sc.OP_EXECUTE_TOOL or sc.GEN_AI_OUTPUT_MESSAGES not in record.attributes:
        return []
    rows: list[SpanRecord] = []
    for call in requested_tool_calls(record.attributes):
        attributes = dict(record.attributes)
        attributes[sc.DW_TOOL_CALL_SOURCE] = sc.TOOL_CALL_REQUESTED
        attributes[sc.GEN_AI_TOOL_NAME] = call.name
        attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = (
            call.arguments if isinstance(call.arguments, str)
            else json.dumps(call.arguments, ensure_ascii=False, default=str))
        if call.call_id is None:
            attributes.pop(sc.GEN_AI_TOOL_CALL_ID, None)
        else:
            attributes[sc.GEN_AI_TOOL_CALL_ID] = call.call_id
        rows.append(replace(record, attributes=attributes, tool_name=call.name))
    return rows


def with_arguments(record: SpanRecord, arguments: Mapping[str, Any]) -> SpanRecord:
    """``record`` with ``gen_ai.tool.call.arguments`` replaced (the fallback mark gone)."""
    attributes = dict(record.attributes)
    attributes.pop(sc.DW_TOOL_ARGUMENTS_FALLBACK_KEY, None)
    attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = json.dumps(arguments, ensure_ascii=False,
                                                           default=str)
    return replace(record, attributes=attributes)
