"""Attributes from other instrumentations, rewritten to the GenAI names monitors read.

Renames of one key (``gen_ai.system`` → ``gen_ai.provider.name``) live in
:data:`driftwatch.core.semconv.ALIASES`. This module handles what a rename cannot:

- flattened messages: OpenLLMetry and litellm's OTel callback write
  ``gen_ai.prompt.{i}.role`` / ``.content`` and ``gen_ai.completion.{i}.…`` (tool calls
  as ``….tool_calls.{j}.name`` / ``.arguments``); OpenInference writes
  ``llm.input_messages.{i}.message.role`` / ``.message.content`` and
  ``….message.tool_calls.{j}.tool_call.function.name`` / ``.arguments``. They become
  ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (JSON, OpenAI message shape) and
  the flattened keys are dropped;
- the operation: ``openinference.span.kind`` (LLM, TOOL, AGENT, EMBEDDING),
  ``traceloop.span.kind`` (tool, agent) and ``llm.request.type`` (chat, completion)
  give ``gen_ai.operation.name`` when it is absent;
- tool spans: OpenInference keeps a tool's arguments and result in ``input.value`` /
  ``output.value``, OpenLLMetry in ``traceloop.entity.input`` / ``.output`` (as
  ``{"args": [...], "kwargs": {...}}``) and its name in ``traceloop.entity.name``.

A current GenAI attribute always wins over what would be derived. Spans with none of
these keys (our own) pay one prefix check per key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

from driftwatch.core import semconv as sc

__all__ = ["FOREIGN_PREFIXES", "normalize_foreign"]

FOREIGN_PREFIXES: Final = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.request.type",
    "openinference.span.kind",
    "traceloop.",
    "input.value",
    "output.value",
    "tool_call.",
)

_OPENINFERENCE_KINDS: Final = {
    "LLM": sc.OP_CHAT,
    "TOOL": sc.OP_EXECUTE_TOOL,
    "AGENT": sc.OP_INVOKE_AGENT,
    "EMBEDDING": "embeddings",
}
_TRACELOOP_KINDS: Final = {"tool": sc.OP_EXECUTE_TOOL, "agent": sc.OP_INVOKE_AGENT}
_REQUEST_TYPES: Final = {"chat": sc.OP_CHAT, "completion": "text_completion",
                         "embedding": "embeddings"}

# gen_ai.prompt.3.content, gen_ai.completion.0.tool_calls.1.arguments
_OPENLLMETRY: Final = re.compile(r"gen_ai\.(prompt|completion)\.(\d+)\.(.+)")
# llm.output_messages.0.message.tool_calls.1.tool_call.function.name
_OPENINFERENCE: Final = re.compile(r"llm\.(input|output)_messages\.(\d+)\.message\.(.+)")
_TOOL_CALL: Final = re.compile(r"tool_calls\.(\d+)\.(?:tool_call\.)?(.+)")
_FUNCTION_CALL: Final = re.compile(r"function_call\.(name|arguments)")


def normalize_foreign(attributes: dict[str, Any]) -> dict[str, Any]:
    """Rewrite foreign attributes in ``attributes`` (already alias-renamed) in place and
    return it. Never raises: a shape it does not know is left as it is."""
    _messages(attributes)
    _operation(attributes)
    if attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_EXECUTE_TOOL:
        _tool(attributes)
    elif attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT:
        name = attributes.get("traceloop.entity.name") or attributes.get("agent.name")
        if name is not None:
            attributes.setdefault(sc.GEN_AI_AGENT_NAME, name)
    return attributes


def _messages(attributes: dict[str, Any]) -> None:
    found: dict[str, dict[int, dict[str, Any]]] = {}
    flattened: list[str] = []
    for key, value in attributes.items():
        match = _OPENLLMETRY.fullmatch(key) or _OPENINFERENCE.fullmatch(key)
        if match is None:
            continue
        side = "input" if match.group(1) in {"prompt", "input"} else "output"
        message = found.setdefault(side, {}).setdefault(int(match.group(2)), {})
        _set_message_field(message, match.group(3), value)
        flattened.append(key)
    for side, target in (("input", sc.GEN_AI_INPUT_MESSAGES),
                         ("output", sc.GEN_AI_OUTPUT_MESSAGES)):
        messages = found.get(side)
        if messages and target not in attributes:
            ordered = [_finish_message(messages[n]) for n in sorted(messages)]
            attributes[target] = json.dumps(ordered, ensure_ascii=False, default=str)
    for key in flattened:
        del attributes[key]


def _set_message_field(message: dict[str, Any], path: str, value: Any) -> None:
    call = _TOOL_CALL.fullmatch(path)
    if call is not None:
        calls: dict[int, dict[str, Any]] = message.setdefault("_tool_calls", {})
        entry = calls.setdefault(int(call.group(1)), {})
        field = call.group(2).removeprefix("function.")
        entry[field] = value
        return
    function = _FUNCTION_CALL.fullmatch(path)
    if function is not None:  # old OpenAI function calling: one call per message
        calls = message.setdefault("_tool_calls", {})
        calls.setdefault(0, {})[function.group(1)] = value
        return
    message[path] = value


def _finish_message(message: dict[str, Any]) -> dict[str, Any]:
    calls = message.pop("_tool_calls", None)
    if calls:
        message["tool_calls"] = [
            {
                "id": call.get("id"),
                "type": "function",
                "function": {"name": call.get("name"), "arguments": call.get("arguments")},
            }
            for _, call in sorted(calls.items())
        ]
    return message


def _operation(attributes: dict[str, Any]) -> None:
    if sc.GEN_AI_OPERATION_NAME in attributes:
        return
    for key, table in (
        ("openinference.span.kind", _OPENINFERENCE_KINDS),
        ("traceloop.span.kind", _TRACELOOP_KINDS),
        ("llm.request.type", _REQUEST_TYPES),
    ):
        value = attributes.get(key)
        operation = table.get(value) if isinstance(value, str) else None
        if operation is not None:
            attributes[sc.GEN_AI_OPERATION_NAME] = operation
            return


def _tool(attributes: dict[str, Any]) -> None:
    sources: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
        (sc.GEN_AI_TOOL_NAME, "tool_call.function.name", _same),
        (sc.GEN_AI_TOOL_NAME, "traceloop.entity.name", _same),
        (sc.GEN_AI_TOOL_CALL_ID, "tool_call.id", _same),
        (sc.GEN_AI_TOOL_CALL_ARGUMENTS, "tool_call.function.arguments", _same),
        (sc.GEN_AI_TOOL_CALL_ARGUMENTS, "input.value", _same),
        (sc.GEN_AI_TOOL_CALL_ARGUMENTS, "traceloop.entity.input", _traceloop_arguments),
        (sc.GEN_AI_TOOL_CALL_RESULT, "output.value", _same),
        (sc.GEN_AI_TOOL_CALL_RESULT, "traceloop.entity.output", _same),
    )
    for target, source, convert in sources:
        if target not in attributes and source in attributes:
            attributes[target] = convert(attributes[source])


def _same(value: Any) -> Any:
    return value


def _traceloop_arguments(value: Any) -> Any:
    """OpenLLMetry's ``@tool`` records ``{"args": [...], "kwargs": {...}}``: keyword
    arguments are the tool's arguments (when there are no positional ones)."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    if isinstance(parsed, dict) and set(parsed) <= {"args", "kwargs"} and not parsed.get("args"):
        return json.dumps(parsed.get("kwargs") or {}, ensure_ascii=False)
    return value
