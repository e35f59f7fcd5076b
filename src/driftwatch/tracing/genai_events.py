"""GenAI events (OTLP log records) → the message attributes of their span.

Instrumentations that send content as events rather than span attributes:

- ``gen_ai.client.inference.operation.details`` (the current conventions; util-genai
  and openai-v2 with ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` and
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=event_only`` or
  ``span_and_event``): its ``gen_ai.input.messages``, ``gen_ai.output.messages``,
  ``gen_ai.system_instructions`` and ``gen_ai.tool.definitions`` attributes, already in
  the parts schema, become the span attributes of the same names (as JSON text, the form
  a span attribute has);
- the older per-message events (openai-v2 on its default conventions with
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``):
  ``gen_ai.{system,user,assistant,tool}.message`` become ``gen_ai.input.messages`` and
  ``gen_ai.choice`` events ``gen_ai.output.messages``, in event time order (choices by
  ``index``), converted to the parts schema: ``{role, parts: [{type: text, content} |
  {type: tool_call, id, name, arguments} | {type: tool_call_response, id, response}],
  finish_reason}``.

:func:`merge_content` puts what the events give into a span's attributes: a key the
span itself carries wins over the events; a key filled from events earlier is
refilled from all of them (events of one span can arrive in several requests), and
:data:`FROM_LOGS` lists the keys that came from events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

from driftwatch.core import semconv as sc

__all__ = ["FROM_LOGS", "content_from_events", "is_genai_event", "merge_content"]

FROM_LOGS: Final = sc.DW_CONTENT_FROM_LOGS
_DETAILS: Final = "gen_ai.client.inference.operation.details"
_MESSAGE_ROLES: Final = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_CHOICE: Final = "gen_ai.choice"
_DETAIL_KEYS: Final = (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES,
                       sc.GEN_AI_SYSTEM_INSTRUCTIONS, "gen_ai.tool.definitions")

# (event_name, time_unix_nano, body JSON text, attributes JSON text), as stored
Event = tuple[str, int, str | None, str | None]


def is_genai_event(name: str | None) -> bool:
    """Events whose content :func:`content_from_events` reads."""
    return bool(name) and (name in (_DETAILS, _CHOICE) or name in _MESSAGE_ROLES)


def content_from_events(events: Iterable[Event]) -> dict[str, str]:
    """The span attributes (JSON text values) that ``events`` (one span's, in time
    order) give; {} when they carry no content."""
    content: dict[str, str] = {}
    inputs: list[dict[str, Any]] = []
    choices: list[tuple[int, dict[str, Any]]] = []
    for name, _time_ns, body_text, attributes_text in events:
        if name == _DETAILS:
            attributes = _loads(attributes_text)
            if isinstance(attributes, Mapping):
                for key in _DETAIL_KEYS:
                    value = attributes.get(key)
                    if value is not None and value != "":
                        content[key] = value if isinstance(value, str) else _dumps(value)
        elif name in _MESSAGE_ROLES:
            message = _legacy_message(_MESSAGE_ROLES[name], _loads(body_text))
            if message is not None:
                inputs.append(message)
        elif name == _CHOICE:
            choice = _legacy_choice(_loads(body_text))
            if choice is not None:
                choices.append(choice)
    if inputs and sc.GEN_AI_INPUT_MESSAGES not in content:
        content[sc.GEN_AI_INPUT_MESSAGES] = _dumps(inputs)
    if choices and sc.GEN_AI_OUTPUT_MESSAGES not in content:
        choices.sort(key=lambda item: item[0])
        content[sc.GEN_AI_OUTPUT_MESSAGES] = _dumps([message for _, message in choices])
    return content


def merge_content(attributes_text: str | None, content: Mapping[str, str]) -> str | None:
    """``attributes_text`` (a span's attributes, JSON) with ``content`` merged in as the
    module docstring says; None when nothing changes."""
    if not content:
        return None
    attributes = _loads(attributes_text)
    if not isinstance(attributes, dict):
        attributes = {}
    earlier = attributes.get(FROM_LOGS)
    filled = set(earlier) if isinstance(earlier, list) else set()
    changed = False
    for key, value in content.items():
        if (key not in attributes or key in filled) and attributes.get(key) != value:
            attributes[key] = value
            filled.add(key)
            changed = True
    if not changed:
        return None
    attributes[FROM_LOGS] = sorted(filled)
    return _dumps(attributes)


# --- the older per-message events ---------------------------------------------------------


def _legacy_message(role: str, body: Any) -> dict[str, Any] | None:
    if not isinstance(body, Mapping):
        return {"role": role, "parts": []}
    parts: list[dict[str, Any]] = []
    if role == "tool":
        parts.append({"type": "tool_call_response", "id": body.get("id"),
                      "response": body.get("content")})
    else:
        parts.extend(_text_parts(body.get("content")))
        parts.extend(_tool_call_parts(body.get("tool_calls")))
    return {"role": str(body.get("role") or role), "parts": parts}


def _legacy_choice(body: Any) -> tuple[int, dict[str, Any]] | None:
    if not isinstance(body, Mapping):
        return None
    message = body.get("message")
    message = message if isinstance(message, Mapping) else {}
    parts = [*_text_parts(message.get("content")), *_tool_call_parts(message.get("tool_calls"))]
    index = body.get("index")
    out: dict[str, Any] = {"role": str(message.get("role") or "assistant"), "parts": parts}
    if body.get("finish_reason"):
        out["finish_reason"] = body["finish_reason"]
    return (index if isinstance(index, int) else 0), out


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    if isinstance(content, Sequence):  # OpenAI content parts: [{"type": "text", "text": …}]
        out = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                out.append({"type": "text", "content": part["text"]})
        return out
    return []


def _tool_call_parts(calls: Any) -> list[dict[str, Any]]:
    if not isinstance(calls, Sequence) or isinstance(calls, str):
        return []
    out = []
    for call in calls:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        function = function if isinstance(function, Mapping) else {}
        arguments = function.get("arguments")
        parsed = _loads(arguments) if isinstance(arguments, str) else arguments
        out.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                    "arguments": arguments if parsed is None else parsed})
    return out


def _loads(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
