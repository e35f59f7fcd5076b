"""Tool calls written as text: small local models (and servers without a tool parser) often
answer with the call as JSON in the message instead of in ``tool_calls``.

:func:`parse_text_call` reads one such call out of a reply's text. It accepts the shapes
models write in practice — ``{"tool": name, "arguments": {...}}``, ``{"name": ...,
"arguments"|"parameters": ...}``, ``{"function": {"name": ..., "arguments": ...}}``, inside
a code fence or after some prose — and the text form the in-process provider asks for,
``{"tool": "none", "message": "..."}`` for a plain answer. A reply that tries to call a tool
and fails (broken JSON, an unknown tool, arguments that are not an object) is *malformed*:
the caller records and counts it, and the run goes on.

Pure functions, no litellm; safe from any thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["NO_TOOL", "TextCall", "call_schema", "parse_text_call"]

NO_TOOL: Final = "none"
"""The ``tool`` value of a plain answer in the JSON form (see :func:`call_schema`)."""

_FENCE: Final = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
# a reply that mentions these keys in JSON-ish form meant to call a tool
_ATTEMPT: Final = re.compile(r"[{\[]\s*\"(?:tool|name|function|arguments|parameters)\"\s*:")


@dataclass(frozen=True)
class TextCall:
    """What the text of a reply holds: a call (``name`` and ``arguments``), a plain answer
    (``message``), or neither; ``malformed`` says why an attempted call could not be read."""

    name: str | None = None
    arguments: dict[str, Any] | None = None
    message: str | None = None
    malformed: str | None = None


def parse_text_call(  # noqa: PLR0911 - one return per shape of reply, in reading order
    text: str | None, tool_names: Collection[str]
) -> TextCall:
    """Read one tool call (or a JSON-wrapped answer) from ``text``.

    Text with no JSON object that looks like a call is a plain answer (``message`` is the
    text). Never raises.
    """
    if not text or not text.strip():
        return TextCall(message=text)
    candidate = _first_object(text)
    if candidate is None:
        if _ATTEMPT.search(text):
            return TextCall(malformed="a tool call that is not valid JSON")
        return TextCall(message=text)
    name, arguments, message = _fields(candidate)
    if name is None or name == NO_TOOL:
        if message is not None:
            return TextCall(message=message)
        if name is None and not _ATTEMPT.search(text):
            return TextCall(message=text)  # some other JSON the model chose to write
        return TextCall(malformed="a JSON object without a tool name")
    if name not in tool_names:
        return TextCall(malformed=f"unknown tool {name[:60]!r}")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return TextCall(malformed=f"arguments of {name} are not valid JSON")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return TextCall(malformed=f"arguments of {name} are not a JSON object")
    return TextCall(name=name, arguments=arguments)


def call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON schema whose instances are exactly the replies :func:`parse_text_call` reads
    as a call of one of ``tools`` (OpenAI function tools) or as a plain answer; a grammar
    built from it constrains a local model's decoding to well-formed calls."""
    choices: list[dict[str, Any]] = []
    for tool in tools:
        function = tool.get("function") or {}
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        choices.append({
            "type": "object",
            "properties": {"tool": {"const": function.get("name")}, "arguments": parameters},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        })
    choices.append({
        "type": "object",
        "properties": {"tool": {"const": NO_TOOL}, "message": {"type": "string"}},
        "required": ["tool", "message"],
        "additionalProperties": False,
    })
    return {"anyOf": choices}


def _first_object(text: str) -> dict[str, Any] | None:
    fenced = _FENCE.search(text)
    for source in ((fenced.group(1),) if fenced else ()) + (text,):
        decoder = json.JSONDecoder()
        at = source.find("{")
        while at >= 0:
            try:
                value, _ = decoder.raw_decode(source, at)
            except json.JSONDecodeError:
                at = source.find("{", at + 1)
                continue
            if isinstance(value, dict):
                return value
            at = source.find("{", at + 1)
    return None


def _fields(candidate: dict[str, Any]) -> tuple[str | None, Any, str | None]:
    function = candidate.get("function")
    if isinstance(function, dict):
        candidate = {**candidate, **function}
    name = candidate.get("tool", candidate.get("name"))
    if isinstance(function, str) and name is None:
        name = function
    arguments = candidate.get("arguments", candidate.get("parameters"))
    message = candidate.get("message")
    return (name if isinstance(name, str) else None, arguments,
            message if isinstance(message, str) else None)
