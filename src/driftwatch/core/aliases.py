"""Attributes from other instrumentations, rewritten to the GenAI names monitors read.

Renames of one key (``gen_ai.system`` → ``gen_ai.provider.name``) live in
:data:`driftwatch.core.semconv.ALIASES`. This module handles what a rename cannot (every
shape is listed, with the instrumentation that sends it, in docs/instrumentations.md):

- flattened messages: OpenLLMetry and litellm's OTel callback write
  ``gen_ai.prompt.{i}.role`` / ``.content`` and ``gen_ai.completion.{i}.…`` (tool calls
  as ``….tool_calls.{j}.name`` / ``.arguments`` or ``….function_call.name`` /
  ``.arguments``); OpenInference writes ``llm.input_messages.{i}.message.role`` /
  ``.message.content`` and ``….message.tool_calls.{j}.tool_call.function.name`` /
  ``.arguments``. They become ``gen_ai.input.messages`` / ``gen_ai.output.messages``
  (JSON, OpenAI message shape) and the flattened keys are dropped. Structured messages
  already present win, unless they carry nothing (litellm sends
  ``gen_ai.output.messages`` with empty ``parts`` and the call only in the flattened
  keys): then the flattened content and tool calls are merged into them;
- the operation: ``openinference.span.kind`` (LLM, TOOL, AGENT, EMBEDDING),
  ``traceloop.span.kind`` (tool, agent, workflow → ``invoke_agent``, task →
  ``execute_task``) and ``llm.request.type`` (chat, completion) give
  ``gen_ai.operation.name`` when it is absent;
- tool spans: OpenInference keeps a tool's arguments and result in ``input.value`` /
  ``output.value``, OpenLLMetry in ``traceloop.entity.input`` / ``.output`` (as
  ``{"args": [...], "kwargs": {...}}`` from ``@tool``) and its name in
  ``traceloop.entity.name``. LangChain's shapes are unwrapped: OpenLLMetry's callback
  blob (``{"input_str", "tags", "metadata", "inputs", "kwargs"}``, also sent as
  ``gen_ai.tool.call.arguments``) gives ``inputs`` and the call id; a bare string
  (OpenInference, a one-argument tool) becomes ``{"input": value}`` and is marked
  (``driftwatch.tool.arguments.fallback_key``) so that the tool's declared parameter
  name can replace the key once known (:mod:`driftwatch.core.toolcalls`); a result that
  is a ToolMessage dump or a JSON-quoted string becomes its plain content.

A current GenAI attribute always wins over what would be derived, except a LangChain
blob in ``gen_ai.tool.call.arguments`` / ``.result``, which is unwrapped in place. Spans
with none of these keys (our own) pay one prefix check per key.
"""

from __future__ import annotations

import ast
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
# OpenLLMetry's own current mapping (0.62: workflow → invoke_agent, task → execute_task)
_TRACELOOP_KINDS: Final = {"tool": sc.OP_EXECUTE_TOOL, "agent": sc.OP_INVOKE_AGENT,
                           "workflow": sc.OP_INVOKE_AGENT, "task": sc.OP_EXECUTE_TASK}
_REQUEST_TYPES: Final = {"chat": sc.OP_CHAT, "completion": "text_completion",
                         "embedding": "embeddings"}

# gen_ai.prompt.3.content, gen_ai.completion.0.tool_calls.1.arguments
_OPENLLMETRY: Final = re.compile(r"gen_ai\.(prompt|completion)\.(\d+)\.(.+)")
# llm.output_messages.0.message.tool_calls.1.tool_call.function.name
_OPENINFERENCE: Final = re.compile(r"llm\.(input|output)_messages\.(\d+)\.message\.(.+)")
_TOOL_CALL: Final = re.compile(r"tool_calls\.(\d+)\.(?:tool_call\.)?(.+)")
_FUNCTION_CALL: Final = re.compile(r"function_call\.(name|arguments)")
ARGUMENT_FALLBACK_KEY: Final = "input"
"""The key a bare tool input is stored under when the tool's parameter name is unknown."""
# the keys of LangChain's tool-start callback, as OpenLLMetry records it
_LANGCHAIN_BLOB: Final = frozenset({"input_str", "inputs"})
_LITERAL_MAX: Final = 65_536  # longest input_str read as a Python literal (bounded work)


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
        if not messages:
            continue
        ordered = [_finish_message(messages[n]) for n in sorted(messages)]
        if target not in attributes:
            attributes[target] = json.dumps(ordered, ensure_ascii=False, default=str)
            continue
        structured = _empty_messages(attributes[target])
        if structured is not None:  # litellm: empty parts, the call only in the flat keys
            merged = _merge_messages(structured, ordered)
            attributes[target] = json.dumps(merged, ensure_ascii=False, default=str)
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


def _empty_messages(raw: Any) -> list[dict[str, Any]] | None:
    """The structured messages, parsed, when none of them has content or a tool call
    (else None: they win over the flattened keys)."""
    parsed = _json_value(raw) if isinstance(raw, str) else raw
    if not isinstance(parsed, list) or not all(isinstance(m, dict) for m in parsed):
        return None
    for message in parsed:
        if message.get("content") or message.get("tool_calls") or message.get("parts"):
            return None
    return parsed


def _merge_messages(structured: list[dict[str, Any]],
                    flattened: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each flattened message's content and tool calls into the structured message at
    its position (as ``parts`` when that message uses the parts schema); its other
    fields (role, finish_reason) fill only what the structured one lacks."""
    out = [dict(message) for message in structured]
    for position, flat in enumerate(flattened):
        if position >= len(out):
            out.append(flat)
            continue
        target = out[position]
        for key, value in flat.items():
            if key not in {"content", "tool_calls"}:
                target.setdefault(key, value)
        if "parts" not in target:
            target.update({k: flat[k] for k in ("content", "tool_calls") if k in flat})
            continue
        parts = list(target["parts"] or [])
        if isinstance(flat.get("content"), str) and flat["content"]:
            parts.append({"type": "text", "content": flat["content"]})
        for call in flat.get("tool_calls") or ():
            function = call["function"]
            arguments = function.get("arguments")
            parsed = _json_value(arguments) if isinstance(arguments, str) else arguments
            parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                          "arguments": parsed if isinstance(parsed, dict) else arguments})
        target["parts"] = parts
    return out


def _json_value(text: str) -> Any:
    """``text`` parsed as JSON, or None (also for JSON nested too deep to parse: a
    client's attribute must never make normalisation raise)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


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
    _tool_arguments(attributes)
    _tool_result(attributes)


def _same(value: Any) -> Any:
    return value


def _traceloop_arguments(value: Any) -> Any:
    """OpenLLMetry's ``@tool`` records ``{"args": [...], "kwargs": {...}}``: keyword
    arguments are the tool's arguments (when there are no positional ones)."""
    if not isinstance(value, str):
        return value
    parsed = _json_value(value)
    if isinstance(parsed, dict) and set(parsed) <= {"args", "kwargs"} and not parsed.get("args"):
        return json.dumps(parsed.get("kwargs") or {}, ensure_ascii=False)
    return value


def _tool_arguments(attributes: dict[str, Any]) -> None:
    """Object arguments from LangChain's shapes: the callback blob → its ``inputs`` (and
    the call id); a bare value → ``{"input": value}``, marked as a fallback."""
    raw = attributes.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)
    if not isinstance(raw, str):
        return
    parsed = _json_value(raw)
    if isinstance(parsed, dict) and set(parsed) >= _LANGCHAIN_BLOB:
        kwargs = parsed.get("kwargs")
        call_id = kwargs.get("tool_call_id") if isinstance(kwargs, dict) else None
        if isinstance(call_id, str) and call_id:
            attributes.setdefault(sc.GEN_AI_TOOL_CALL_ID, call_id)
        arguments = _blob_inputs(parsed)
        if arguments is None:
            attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = _fallback(attributes,
                                                                  parsed.get("input_str"))
        else:
            attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = json.dumps(arguments, ensure_ascii=False,
                                                                   default=str)
    elif isinstance(parsed, dict):
        return
    elif raw.strip() and (parsed is None or isinstance(parsed, str | int | float | bool)):
        # one bare value (OpenInference: a one-argument LangChain tool's input)
        attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = _fallback(
            attributes, raw if parsed is None else parsed)


def _blob_inputs(blob: dict[str, Any]) -> dict[str, Any] | None:
    """The tool's arguments in a LangChain callback blob: ``inputs`` when it is an
    object, else ``input_str`` read as JSON or as the Python dict repr LangChain writes."""
    inputs = blob.get("inputs")
    if isinstance(inputs, dict) and inputs:
        return inputs
    text = blob.get("input_str")
    if not isinstance(text, str):
        return None
    parsed = _json_value(text)
    if parsed is None and len(text) <= _LITERAL_MAX:
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return parsed if isinstance(parsed, dict) else None


def _fallback(attributes: dict[str, Any], value: Any) -> str:
    attributes[sc.DW_TOOL_ARGUMENTS_FALLBACK_KEY] = ARGUMENT_FALLBACK_KEY
    return json.dumps({ARGUMENT_FALLBACK_KEY: value}, ensure_ascii=False, default=str)


def _tool_result(attributes: dict[str, Any]) -> None:
    """The plain result: a LangChain ToolMessage (OpenInference's ``{"type": "tool",
    "data": {...}}`` dump, OpenLLMetry's ``{"output": {"lc": 1, ..., "kwargs": {...}}}``
    constructor) gives its ``content`` (and the call id); a JSON-quoted string its text."""
    raw = attributes.get(sc.GEN_AI_TOOL_CALL_RESULT)
    if not isinstance(raw, str):
        return
    parsed = _json_value(raw)
    if isinstance(parsed, str):
        attributes[sc.GEN_AI_TOOL_CALL_RESULT] = parsed
        return
    message = _tool_message(parsed)
    if message is None:
        return
    call_id = message.get("tool_call_id")
    if isinstance(call_id, str) and call_id:
        attributes.setdefault(sc.GEN_AI_TOOL_CALL_ID, call_id)
    content = message.get("content")
    attributes[sc.GEN_AI_TOOL_CALL_RESULT] = (
        content if isinstance(content, str)
        else json.dumps(content, ensure_ascii=False, default=str))


def _tool_message(parsed: Any) -> dict[str, Any] | None:
    """The fields of a serialised LangChain ToolMessage, or None."""
    if not isinstance(parsed, dict):
        return None
    if isinstance(parsed.get("output"), dict):  # OpenLLMetry wraps the return value
        parsed = parsed["output"]
    if parsed.get("lc") == 1 and isinstance(parsed.get("kwargs"), dict):
        fields = parsed["kwargs"]  # langchain's dumpd() constructor form
    elif parsed.get("type") == "tool" and isinstance(parsed.get("data"), dict):
        fields = parsed["data"]  # message_to_dict() form
    else:
        return None
    return fields if fields.get("type", "tool") == "tool" and "content" in fields else None
