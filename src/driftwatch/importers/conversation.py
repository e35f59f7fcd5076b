"""A recorded chat conversation (OpenAI messages) → the spans our agent loop would write.

Importers parse their format into :class:`~driftwatch.core.conversation.Conversation`
objects; :func:`conversation_spans`
turns one into an :class:`ImportedRun`: a run row and the span records of the shape
documented in ``docs/importers.md`` (root ``invoke_agent``, one turn per assistant message,
user messages as ``driftwatch.event user_message`` spans, ``chat`` and ``execute_tool``
spans). Ids and timestamps are derived from the run id and the record's position, so the
same file always produces the same records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from driftwatch.core import jsonfile
from driftwatch.core import semconv as sc
from driftwatch.core.conversation import Conversation, call_results, parsed_arguments
from driftwatch.core.importer import ImportedRun
from driftwatch.core.records import RunInfo, RunStatus, SpanRecord, ns_to_datetime

__all__ = [
    "check_messages",
    "conversation_spans",
    "json_dumps",
    "output_message",
    "scalar_items",
]

EPOCH_NS: Final = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000_000
RUN_SPACING_NS: Final = 3_600 * 1_000_000_000  # run i of a file starts i hours after EPOCH
TICK_NS: Final = 1_000_000  # 1 ms between consecutive span boundaries
RECORDED_VARIANT: Final = "recorded"
_ROLES: Final = frozenset({"system", "user", "assistant", "tool"})


def scalar_items(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The entries of ``mapping`` whose values are JSON scalars (labels for run
    attributes), keys prefixed; nested objects and lists are left out."""
    return {f"{prefix}{key}": value for key, value in mapping.items()
            if value is None or isinstance(value, str | int | float | bool)}


def json_dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept: the same text the agent loop writes (orjson)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _fail(where: str, problem: str) -> ValueError:
    return ValueError(f"{where}: {problem}")


def check_messages(messages: Any, where: str = "messages") -> list[dict[str, Any]]:
    """Validate OpenAI chat messages; raises ``ValueError("<field path>: <problem>")``.

    Checked: roles, string (or null) contents, tool calls with an id, a function name and
    arguments that are a JSON object, tool messages answering an earlier call.
    """
    if not isinstance(messages, list) or not messages:
        raise _fail(where, "must be a non-empty list of messages")
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        here = f"{where}[{index}]"
        if not isinstance(message, dict):
            raise _fail(here, "must be an object")
        role = message.get("role")
        if role not in _ROLES:
            raise _fail(f"{here}.role", f"must be one of {', '.join(sorted(_ROLES))}, got {role!r}")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise _fail(f"{here}.content", "must be a string or null")
        if role in ("system", "user") and content is None:
            raise _fail(f"{here}.content", f"a {role} message needs text")
        if role == "assistant":
            open_calls |= _check_tool_calls(message.get("tool_calls"), f"{here}.tool_calls")
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in open_calls:
                raise _fail(f"{here}.tool_call_id", f"answers no earlier tool call ({call_id!r})")
            open_calls.discard(call_id)
    if not any(m.get("role") == "assistant" for m in messages):
        raise _fail(where, "has no assistant message")
    return messages


def _check_tool_calls(calls: Any, where: str) -> set[str]:
    if calls is None:
        return set()
    if not isinstance(calls, list):
        raise _fail(where, "must be a list")
    ids: set[str] = set()
    for index, call in enumerate(calls):
        here = f"{where}[{index}]"
        if not isinstance(call, dict):
            raise _fail(here, "must be an object")
        call_id, function = call.get("id"), call.get("function")
        if not isinstance(call_id, str) or not call_id:
            raise _fail(f"{here}.id", "must be a non-empty string")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _fail(f"{here}.function.name", "must be a string")
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = jsonfile.loads(arguments) if arguments.strip() else {}
            except jsonfile.JsonDepthError:
                raise _fail(f"{here}.function.arguments",
                            f"nested deeper than {jsonfile.MAX_DEPTH} levels") from None
            except ValueError:
                raise _fail(f"{here}.function.arguments", "not valid JSON") from None
        if not isinstance(arguments, dict):
            raise _fail(f"{here}.function.arguments", "must be a JSON object")
        ids.add(call_id)
    return ids


def output_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """The assistant message as the loop stores it in ``gen_ai.output.messages``: role,
    content and (when present) tool calls with JSON-string arguments."""
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    calls = message.get("tool_calls") or []
    if calls:
        out["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"],
                             "arguments": _arguments_text(call["function"].get("arguments"))},
            }
            for call in calls
        ]
    return out


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json_dumps(arguments or {})


def reply_shape(message: Mapping[str, Any]) -> dict[str, Any]:
    """The derived chat-span attributes (see ``docs/importers.md``)."""
    text = message.get("content")
    return {
        sc.DW_REPLY_TOOL_CALLS: len(message.get("tool_calls") or []),
        sc.DW_REPLY_HAS_TEXT: bool(isinstance(text, str) and text.strip()),
    }


class _SpanWriter:
    """Deterministic ids and a strictly increasing clock for one run's spans."""

    def __init__(self, run_id: str, start_ns: int) -> None:
        self.trace_id = hashlib.sha256(f"trace:{run_id}".encode()).hexdigest()[:32]
        self.run_id = run_id
        self._now = start_ns
        self._count = 0
        self.spans: list[SpanRecord] = []

    def tick(self) -> int:
        self._now += TICK_NS
        return self._now

    def new_id(self) -> str:
        self._count += 1
        return hashlib.sha256(f"span:{self.run_id}:{self._count}".encode()).hexdigest()[:16]

    def add(self, span_id: str, parent: str | None, name: str, start: int,
            attributes: dict[str, Any], kind: str = "INTERNAL") -> None:
        self.spans.append(SpanRecord.create(
            trace_id=self.trace_id, span_id=span_id, parent_span_id=parent, name=name,
            kind=kind, start_time_ns=start, end_time_ns=self.tick(), attributes=attributes,
        ))

    def leaf(self, parent: str, name: str, attributes: dict[str, Any],
             kind: str = "INTERNAL") -> None:
        self.add(self.new_id(), parent, name, self.tick(), attributes, kind)


def _split_turns(messages: Sequence[dict[str, Any]]) -> tuple[list[list[dict[str, Any]]],
                                                               list[dict[str, Any]]]:
    """Group the non-system messages into turns (each ending with its assistant message's
    tool results) and the trailing user messages after the last assistant message."""
    turns: list[list[dict[str, Any]]] = []
    pending: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            continue
        if role == "assistant":
            turns.append([*pending, message])
            pending = []
        elif role == "tool" and turns and not pending:
            turns[-1].append(message)
        else:
            pending.append(message)
    return turns, pending


def conversation_spans(conversation: Conversation, index: int = 0) -> ImportedRun:
    """Build the run row and spans of one (already checked) conversation; ``index`` is its
    position in the file, which sets its synthetic start time."""
    model = conversation.model
    provider = model.split("/", 1)[0] if "/" in model else "unknown"
    run_id = conversation.run_id
    common: dict[str, Any] = {
        sc.DW_RUN_ID: run_id,
        sc.DW_SCENARIO_ID: conversation.scenario_id,
        sc.DW_SCENARIO_VARIANT: RECORDED_VARIANT,
    }
    start = EPOCH_NS + index * RUN_SPACING_NS
    writer = _SpanWriter(run_id, start)
    root_id = writer.new_id()
    turns, trailing = _split_turns(conversation.messages)
    results = iter(call_results(conversation.messages))
    tool_calls = 0
    for number, turn_messages in enumerate(turns, start=1):
        tool_calls += _write_turn(writer, root_id, common, number, turn_messages, results,
                                  model, provider, conversation.seed)
    system = next((m["content"] for m in conversation.messages if m["role"] == "system"), None)
    root_attributes = dict(common)
    root_attributes.update({
        sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
        sc.GEN_AI_AGENT_NAME: conversation.agent_name,
        sc.GEN_AI_CONVERSATION_ID: run_id,
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.GEN_AI_PROVIDER_NAME: provider,
        sc.DW_SEED: conversation.seed,
        sc.DW_BATCH_ID: conversation.batch_id,
        sc.DW_RUN_TURNS: len(turns),
    })
    if system is not None:
        root_attributes[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = system
    writer.add(root_id, None, f"{sc.OP_INVOKE_AGENT} {conversation.agent_name}", start,
               root_attributes)
    attributes: dict[str, Any] = {"stopped_by": "recorded", "tool_calls": tool_calls,
                                  "model_calls": len(turns), **conversation.labels}
    if trailing:
        attributes["final_user_message"] = trailing[-1].get("content")
    info = RunInfo(
        run_id=run_id, trace_id=writer.trace_id, scenario_id=conversation.scenario_id,
        variant=RECORDED_VARIANT, model=model, seed=conversation.seed,
        status=RunStatus.COMPLETED, started_at=ns_to_datetime(start),
        batch_id=conversation.batch_id, turns=len(turns),
        ended_at=ns_to_datetime(writer.spans[-1].end_time_ns), attributes=attributes,
    )
    return ImportedRun(info=info, spans=writer.spans)


def _write_turn(writer: _SpanWriter, root_id: str, common: dict[str, Any], number: int,
                messages: list[dict[str, Any]], results: Iterator[str | None], model: str,
                provider: str, seed: int) -> int:
    """One turn: user events, the chat span, the tool spans, then the turn span itself.
    Returns the number of tool calls."""
    turn_common = {**common, sc.DW_TURN: number}
    turn_id = writer.new_id()
    turn_start = writer.tick()
    calls = 0
    for message in messages:
        role = message["role"]
        if role == "user":
            writer.leaf(turn_id, f"{sc.SPAN_EVENT_PREFIX} user_message", {
                **turn_common, sc.GEN_AI_OPERATION_NAME: sc.OP_EVENT,
                sc.DW_EVENT_KIND: "user_message", sc.DW_EVENT_CONTENT: message["content"],
            })
        elif role == "assistant":
            calls += _write_assistant(writer, turn_id, turn_common, message, results, model,
                                      provider, seed)
    writer.add(turn_id, root_id, sc.SPAN_TURN, turn_start,
               {**turn_common, sc.GEN_AI_OPERATION_NAME: sc.OP_TURN})
    return calls


def _write_assistant(writer: _SpanWriter, turn_id: str, turn_common: dict[str, Any],
                     message: Mapping[str, Any], results: Iterator[str | None], model: str,
                     provider: str, seed: int) -> int:
    calls = message.get("tool_calls") or []
    chat = {
        **turn_common,
        sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
        sc.GEN_AI_PROVIDER_NAME: provider,
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.GEN_AI_REQUEST_SEED: seed,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ["tool_calls" if calls else "stop"],
        sc.GEN_AI_OUTPUT_MESSAGES: json_dumps([output_message(message)]),
        **reply_shape(message),
    }
    writer.leaf(turn_id, f"{sc.OP_CHAT} {model}", chat, kind="CLIENT")
    for call in calls:
        name = call["function"]["name"]
        attributes = {
            **turn_common,
            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: name,
            sc.GEN_AI_TOOL_CALL_ID: call["id"],
            sc.GEN_AI_TOOL_TYPE: "function",
            sc.GEN_AI_TOOL_CALL_ARGUMENTS: json_dumps(
                parsed_arguments(call["function"].get("arguments"))),
        }
        result = next(results)
        if result is not None:
            attributes[sc.GEN_AI_TOOL_CALL_RESULT] = result
        writer.leaf(turn_id, f"{sc.OP_EXECUTE_TOOL} {name}", attributes)
    return len(calls)
