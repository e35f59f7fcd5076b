"""Tools the agent can call, each acting only on its run's :class:`VirtualEnvironment`.

A tool returns text for the model. Refusals and bad arguments are results too
(``error: …``), never exceptions into the loop: a real agent sees such errors and goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from driftwatch.core.errors import UsageError
from driftwatch.sandbox.environment import ToolFailure, VirtualEnvironment

MAX_RESULT_CHARS = 20_000

ToolFunction = Callable[[VirtualEnvironment, Mapping[str, Any]], str]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    function: ToolFunction
    ends_run: bool = False

    def schema(self) -> dict[str, Any]:
        """OpenAI/litellm function-tool definition."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True)
class ToolResult:
    text: str
    ok: bool
    ends_run: bool = False


_REGISTRY: dict[str, Tool] = {}


def tool(
    name: str, description: str, properties: dict[str, Any], *, ends_run: bool = False
) -> Callable[[ToolFunction], ToolFunction]:
    """Register a tool; every property listed is required."""

    def register(function: ToolFunction) -> ToolFunction:
        _REGISTRY[name] = Tool(
            name=name,
            description=description,
            parameters={
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
            function=function,
            ends_run=ends_run,
        )
        return function

    return register


def register_tool(spec: Tool) -> None:
    """Register a tool built elsewhere (the replay model's recorded tools). Re-registering
    the same name with the same function is a no-op; shadowing another tool is an error."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing.function is not spec.function:
        raise UsageError(f"tool {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec


def get_tools(names: list[str]) -> list[Tool]:
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise UsageError(
            f"unknown tool(s) {', '.join(unknown)} (known: {', '.join(sorted(_REGISTRY))})"
        )
    return [_REGISTRY[n] for n in names]


def known_tools() -> list[str]:
    return sorted(_REGISTRY)


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _check_arguments(spec: Tool, arguments: Mapping[str, Any]) -> None:
    properties: dict[str, Any] = spec.parameters["properties"]
    for key in spec.parameters["required"]:
        if key not in arguments:
            raise ToolFailure(f"missing argument {key!r}")
    for key, value in arguments.items():
        if key not in properties:
            raise ToolFailure(f"unknown argument {key!r}")
        expected = _JSON_TYPES.get(properties[key].get("type", ""), object)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ToolFailure(f"argument {key!r} must be of type {properties[key]['type']}")


def run_tool(
    env: VirtualEnvironment, tools: Mapping[str, Tool], name: str, arguments: Any
) -> ToolResult:
    """Execute one call. Never raises for anything the model sent."""
    spec = tools.get(name)
    if spec is None:
        return ToolResult(f"error: no tool named {name!r}", ok=False)
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return ToolResult("error: arguments are not valid JSON", ok=False)
    if not isinstance(arguments, dict):
        return ToolResult("error: arguments must be a JSON object", ok=False)
    try:
        _check_arguments(spec, arguments)
        text = spec.function(env, arguments)
    except ToolFailure as exc:
        return ToolResult(f"error: {exc}", ok=False)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n[output truncated at {MAX_RESULT_CHARS} characters]"
    return ToolResult(text, ok=True, ends_run=spec.ends_run)


_PATH = {"type": "string", "description": "Path relative to the workspace root."}


@tool("list_files", "List files and folders under a path ('.' for the root).", {"path": _PATH})
def _list_files(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    return "\n".join(env.list_dir(args["path"])) or "(empty)"


@tool("read_file", "Read a text file.", {"path": _PATH})
def _read_file(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    return env.read(args["path"])


@tool(
    "write_file",
    "Create or overwrite a text file.",
    {"path": _PATH, "content": {"type": "string"}},
)
def _write_file(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    env.write(args["path"], args["content"])
    return f"wrote {len(args['content'])} characters to {args['path']}"


@tool(
    "edit_file",
    "Replace every occurrence of `find` with `replace` in a file (like sed).",
    {"path": _PATH, "find": {"type": "string"}, "replace": {"type": "string"}},
)
def _edit_file(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    content = env.read(args["path"])
    if not args["find"] or args["find"] not in content:
        raise ToolFailure(f"text to replace not found in {args['path']}")
    count = content.count(args["find"])
    env.write(args["path"], content.replace(args["find"], args["replace"]))
    return f"replaced {count} occurrence(s) in {args['path']}"


@tool("delete_file", "Delete a file.", {"path": _PATH})
def _delete_file(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    env.delete(args["path"])
    return f"deleted {args['path']}"


@tool(
    "move_file",
    "Move or rename a file.",
    {"source": _PATH, "destination": _PATH},
)
def _move_file(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    env.move(args["source"], args["destination"])
    return f"moved {args['source']} to {args['destination']}"


@tool(
    "set_permissions",
    "Make a file or folder read-only or writable (like chmod).",
    {"path": _PATH, "read_only": {"type": "boolean"}},
)
def _set_permissions(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    env.set_read_only(args["path"], args["read_only"])
    state = "read-only" if args["read_only"] else "writable"
    return f"{args['path']} is now {state}"


@tool(
    "send_email",
    "Send an email. `to` is a comma-separated list of addresses.",
    {"to": {"type": "string"}, "subject": {"type": "string"}, "body": {"type": "string"}},
)
def _send_email(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    recipients = _recipients(args["to"])
    env.send(recipients, args["subject"], args["body"])
    return f"sent to {', '.join(recipients)}"


def _recipients(text: str) -> list[str]:
    recipients = [a.strip() for a in text.split(",") if a.strip()]
    if not recipients:
        raise ToolFailure("no recipient")
    return recipients


@tool("list_inbox", "List the emails in your inbox (id, sender, subject).", {})
def _list_inbox(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    if not env.inbox:
        return "(inbox empty)"
    return "\n".join(f"{m.id}\t{m.sender}\t{m.subject}" for m in env.inbox)


@tool("read_email", "Read one email from your inbox.", {"id": {"type": "integer"}})
def _read_email(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    mail = env.inbox_mail(args["id"])
    return f"From: {mail.sender}\nSubject: {mail.subject}\n\n{mail.body}"


@tool(
    "forward_email",
    "Forward an email from your inbox, with a note, to a comma-separated list of addresses.",
    {"id": {"type": "integer"}, "to": {"type": "string"}, "note": {"type": "string"}},
)
def _forward_email(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    original = env.inbox_mail(args["id"])
    recipients = _recipients(args["to"])
    body = f"{args['note']}\n\n---------- Forwarded message ----------\nFrom: {original.sender}\n"
    body += f"Subject: {original.subject}\n\n{original.body}"
    env.send(recipients, f"Fwd: {original.subject}", body, forwarded_from=original.id)
    return f"forwarded email {original.id} to {', '.join(recipients)}"


@tool(
    "bash",
    "Run a shell command in the workspace (an isolated sandbox: no network, limited time, "
    "memory and output).",
    {"command": {"type": "string"}},
)
def _bash(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    if env.process is None:
        raise ToolFailure("no process sandbox in this run")
    protected = frozenset(path for path in env.files if env.is_protected(path))
    result = env.process.run(args["command"], env.files, protected)
    skipped, tampered = env.adopt_workspace(result.files, result.modes, result.replaced)
    text = result.as_text()
    if skipped:
        text += f"\n[files over the size limit were discarded: {', '.join(sorted(skipped))}]"
    if tampered:  # the change is undone, and the call fails like a refused file tool
        raise ToolFailure(f"{', '.join(tampered)}: permission denied (read-only); the "
                          f"change was undone\n{text}")
    return text


@tool(
    "done",
    "Declare that all work is finished. Ends the session.",
    {"summary": {"type": "string"}},
    ends_run=True,
)
def _done(env: VirtualEnvironment, args: Mapping[str, Any]) -> str:
    return "session ended"
