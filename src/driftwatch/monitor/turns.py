"""A run's records grouped into turns, and what the agent said and did in each: the shared
ground of the drift, goal-drift, loop, say–do and judge monitors.

When is a turn complete? Our agent loop ends the ``driftwatch.turn`` span of turn *n*
after every span of that turn, so turn *n* is complete when that span arrives. Agents
that send no turn spans (external agents over OTLP) often still put ``driftwatch.turn``
on their spans: there turn *n* is complete when a span of a higher turn arrives. Once a
run has sent a turn span, a higher turn only closes turn *n* two turns later (a lost
turn span must not hold state forever). Agents with no turn attribute at all are cut
into *steps*: each ``chat`` span starts one (a model call and the tool calls after it);
steps are numbered 1, 2, … and marked ``synthetic`` (findings then carry no turn). A
record of a turn already complete (reordered in transit) joins the next turn to close.
The root ``invoke_agent`` span belongs to no turn; :attr:`TurnTracker.root` keeps it.

Not thread-safe: one tracker per run, driven by one monitor on one thread.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord

__all__ = [
    "ToolCallView",
    "Turn",
    "TurnTracker",
    "assistant_text",
    "canonical_json",
    "initial_instructions",
    "input_system_text",
    "is_turn_span",
    "message_text",
    "system_instructions",
]

_SPAN_MEMORY = 4096  # span id → turn, to place findings (a few turns of a busy agent)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces: equal arguments give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _loads(raw: Any) -> Any:
    """Parsed JSON (shared between monitors: callers must not mutate it), ``raw`` itself
    if it is not a string, None if it is not JSON."""
    return _parse(raw) if isinstance(raw, str) else raw


@functools.lru_cache(maxsize=1024)  # several monitors read the same attributes
def _parse(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)  # a loop repeats its calls: the same text again
def _canonical_text(raw: str) -> str:
    """``canonical_json`` of the arguments parsed from ``raw`` (as ``_loads`` parses it)."""
    return canonical_json(_parse(raw))


def message_text(message: Mapping[str, Any]) -> str:
    """The text of one message, OpenAI style (``content`` a string or a list of parts)
    or GenAI-semconv style (``parts`` of type ``text``)."""
    chunks: list[str] = []
    content = message.get("content")
    if isinstance(content, str):
        chunks.append(content)
    parts = message.get("parts") if "parts" in message else content
    if isinstance(parts, list):
        for part in parts:
            if isinstance(part, Mapping) and part.get("type") in ("text", None):
                text = part.get("content", part.get("text"))
                if isinstance(text, str):
                    chunks.append(text)
    return "\n".join(chunk for chunk in chunks if chunk)


def _messages(record: SpanRecord, key: str) -> list[Mapping[str, Any]]:
    parsed = _loads(record.attributes.get(key))
    if isinstance(parsed, Mapping):
        parsed = [parsed]
    return (
        [item for item in parsed if isinstance(item, Mapping)] if isinstance(parsed, list) else []
    )


def assistant_text(record: SpanRecord) -> str:
    """What the model said in a ``chat`` span (``gen_ai.output.messages``), or ""."""
    texts = [
        message_text(message)
        for message in _messages(record, sc.GEN_AI_OUTPUT_MESSAGES)
        if message.get("role", "assistant") == "assistant"
    ]
    return "\n".join(text for text in texts if text)


def _output_tool_calls(record: SpanRecord) -> list[tuple[str, Any]]:
    """(name, arguments) of the tool calls a chat span's output asked for."""
    calls: list[tuple[str, Any]] = []
    for message in _messages(record, sc.GEN_AI_OUTPUT_MESSAGES):
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping) and function.get("name"):
                calls.append((str(function["name"]), _loads(function.get("arguments"))))
        for part in message.get("parts") or ():
            if isinstance(part, Mapping) and part.get("type") == "tool_call" and part.get("name"):
                calls.append((str(part["name"]), _loads(part.get("arguments"))))
    return calls


def system_instructions(root: SpanRecord) -> str | None:
    """``gen_ai.system_instructions`` of the root span (a string or JSON text parts)."""
    raw = root.attributes.get(sc.GEN_AI_SYSTEM_INSTRUCTIONS)
    if not isinstance(raw, str) or not raw.strip():
        return None
    parsed = _loads(raw) if raw.lstrip().startswith("[") else None
    if isinstance(parsed, list):
        return message_text({"parts": parsed}) or None
    return raw


def input_system_text(record: SpanRecord) -> str | None:
    """The system message(s) of a chat span's ``gen_ai.input.messages``, if any."""
    texts = [
        message_text(message)
        for message in _messages(record, sc.GEN_AI_INPUT_MESSAGES)
        if message.get("role") == "system"
    ]
    joined = "\n".join(text for text in texts if text)
    return joined or None


def _first_user_text(record: SpanRecord) -> str | None:
    for message in _messages(record, sc.GEN_AI_INPUT_MESSAGES):
        if message.get("role") == "user":
            return message_text(message) or None
    return None


def initial_instructions(record: SpanRecord) -> tuple[str, str] | None:
    """(text, source) of the run's initial goal and constraints, if ``record`` has them:
    the root span's ``gen_ai.system_instructions``; a chat span's system message(s), or
    failing those its first user message. Feed records in order and keep the first hit
    (our loop ends the root span last, so the first chat span usually answers)."""
    found: tuple[str | None, str] = (None, "")
    if record.operation == sc.OP_INVOKE_AGENT:
        found = (system_instructions(record), "gen_ai.system_instructions")
    # both chat sources read the input messages: most spans of agents that do not
    # capture content lack them, and are asked again on every batch until one has them
    elif record.operation == sc.OP_CHAT and sc.GEN_AI_INPUT_MESSAGES in record.attributes:
        found = (input_system_text(record), "system message")
        if found[0] is None:
            found = (_first_user_text(record), "first user message")
    return (found[0], found[1]) if found[0] else None


def is_turn_span(record: SpanRecord) -> bool:
    return record.operation == sc.OP_TURN or record.name == sc.SPAN_TURN


@dataclass(frozen=True, slots=True)
class ToolCallView:
    """One tool call: ``canonical`` is ``name(canonical JSON arguments)``; ``record`` is the
    ``execute_tool`` span (None when read from a chat span's requested calls)."""

    name: str
    arguments: Any
    record: SpanRecord | None

    @property
    def canonical(self) -> str:
        """Computed on demand (a JSON encoding per call is a large share of a say-do
        step, which needs it only for calls without a span). An executed call is labelled
        with its span's ``gen_ai.tool.name`` as recorded."""
        if self.record is None:
            return f"{self.name}({canonical_json(self.arguments)})"
        raw = self.record.attributes.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)
        if isinstance(raw, str) and raw:  # the arguments are _parse(raw): cache by text
            return f"{self.record.tool_name}({_canonical_text(raw)})"
        return f"{self.record.tool_name}({canonical_json(self.arguments)})"

    def argument_text(self) -> str:
        """Every string in the arguments, space-separated (paths, ids, subjects …)."""
        out: list[str] = []
        stack = [self.arguments]
        while stack:
            value = stack.pop()
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, Mapping):
                stack.extend(reversed(list(value.values())))
            elif isinstance(value, list | tuple):
                stack.extend(reversed(value))
        return " ".join(out)


@dataclass(slots=True)
class Turn:
    """The records of one complete turn (or step), in arrival order.

    Several monitors read the same turn (see :mod:`driftwatch.monitor.turngroup`), so
    what :meth:`texts`, :meth:`said` and :meth:`tool_calls` derive is computed once and
    shared: treat the turn and what they return as read-only. (The cache is keyed by
    the number of records, so a turn still being filled is recomputed.)"""

    number: int
    records: list[SpanRecord] = field(default_factory=list)
    turn_span: SpanRecord | None = None
    synthetic: bool = False
    _derived_for: int = field(default=-1, init=False, repr=False, compare=False)
    _said: list[str] | None = field(default=None, init=False, repr=False, compare=False)
    _calls: list[ToolCallView] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def finding_turn(self) -> int | None:
        """The turn to put on a finding: None for a synthetic step."""
        return None if self.synthetic else self.number

    @property
    def anchor(self) -> SpanRecord | None:
        """The span a finding about the whole turn points at."""
        return self.turn_span or (self.records[-1] if self.records else None)

    def chats(self) -> list[SpanRecord]:
        return [r for r in self.records if r.operation == sc.OP_CHAT]

    def _fresh(self) -> None:
        if self._derived_for != len(self.records):
            self._derived_for = len(self.records)
            self._said = self._calls = None

    def said(self) -> list[str]:
        """:func:`assistant_text` of each chat span, aligned with :meth:`chats`."""
        self._fresh()
        if self._said is None:
            self._said = [assistant_text(r) for r in self.chats()]
        return self._said

    def texts(self) -> list[str]:
        """What the agent said this turn, one string per chat span that said something."""
        return [text for text in self.said() if text.strip()]

    def tool_calls(self) -> list[ToolCallView]:
        """The calls executed this turn (``execute_tool`` spans); when there are none,
        the calls the chat spans asked for (agents that trace only model calls)."""
        self._fresh()
        if self._calls is None:
            self._calls = self._find_tool_calls()
        return self._calls

    def _find_tool_calls(self) -> list[ToolCallView]:
        executed = [
            ToolCallView(
                name=r.tool_name or r.name.removeprefix(f"{sc.OP_EXECUTE_TOOL} "),
                arguments=_arguments(r),
                record=r,
            )
            for r in self.records
            if r.operation == sc.OP_EXECUTE_TOOL
        ]
        if executed:
            return executed
        return [
            ToolCallView(name, args, None)
            for chat in self.chats()
            for name, args in _output_tool_calls(chat)
        ]


def _arguments(record: SpanRecord) -> Any:
    raw = record.attributes.get(sc.GEN_AI_TOOL_CALL_ARGUMENTS)
    return _loads(raw) if raw not in (None, "") else {}


class TurnTracker:
    """Groups one run's records into :class:`Turn` objects (see the module docstring for
    when a turn is complete). ``max_open`` bounds the turns buffered at once."""

    def __init__(self, *, max_open: int = 8) -> None:
        self.root: SpanRecord | None = None
        self._open: dict[int, Turn] = {}
        self._closed_upto: int | None = None
        self._turn_spans_seen = False
        self._synthetic: Turn | None = None
        self._steps = 0
        self._max_open = max_open
        self._span_turns: OrderedDict[str, int] = OrderedDict()

    @property
    def last_complete(self) -> int | None:
        return self._closed_upto

    def turn_of_span(self, span_id: str | None) -> int | None:
        """The turn (or step) number a recent span was placed in, if remembered."""
        return self._span_turns.get(span_id) if span_id else None

    def add(self, records: Iterable[SpanRecord]) -> list[Turn]:
        """Take the next records; return the turns they complete, in turn order."""
        done: list[Turn] = []
        root_operation = sc.OP_INVOKE_AGENT  # the loop runs once per record of every run
        for record in records:
            if record.operation == root_operation:
                self.root = record
            elif record.turn is None and not self._open and self._closed_upto is None:
                self._add_step(record, done)
            else:
                self._add_turned(record, done)
        return done

    def finish(self) -> list[Turn]:
        """The end of the run: every buffered turn, complete or not."""
        done: list[Turn] = []
        if self._synthetic is not None:
            done.append(self._synthetic)
            self._synthetic = None
        done.extend(self._close_through(max(self._open, default=0)))
        return done

    def _remember(self, record: SpanRecord, number: int) -> None:
        self._span_turns[record.span_id] = number
        if len(self._span_turns) > _SPAN_MEMORY:
            self._span_turns.popitem(last=False)

    def _add_step(self, record: SpanRecord, done: list[Turn]) -> None:
        current = self._synthetic
        if current is None or (record.operation == sc.OP_CHAT and current.chats()):
            if current is not None:
                done.append(current)
            self._steps += 1
            current = self._synthetic = Turn(self._steps, synthetic=True)
        current.records.append(record)
        self._remember(record, current.number)

    def _add_turned(self, record: SpanRecord, done: list[Turn]) -> None:
        if self._synthetic is not None:  # turn numbers showed up after all
            done.append(self._synthetic)
            self._synthetic = None
        after = self._closed_upto if self._closed_upto is not None else 0
        number = record.turn
        if number is None:  # no turn in a run with turns: the latest open turn
            number = max(self._open, default=after + 1)
        elif number <= after:  # late: the next turn to close takes it
            number = min(self._open, default=after + 1)
        turn = self._open.get(number)
        if turn is None:
            turn = self._open[number] = Turn(number)
        turn.records.append(record)
        self._remember(record, number)
        if record.turn == number and is_turn_span(record):
            turn.turn_span = record
            self._turn_spans_seen = True
            done.extend(self._close_through(number))
        else:
            closed = self._close_through(number - (2 if self._turn_spans_seen else 1))
            if closed:
                done.extend(closed)
        if len(self._open) > self._max_open:
            done.extend(self._close_through(min(self._open)))

    def _close_through(self, number: int) -> list[Turn]:
        # called for every record, and usually closes nothing: check that first
        open_turns = self._open
        if not open_turns:
            return []
        lowest = min(open_turns)
        if lowest > number:
            return []
        closed = []  # lowest first; a handful of turns are open at most
        while lowest <= number:
            closed.append(open_turns.pop(lowest))
            if not open_turns:
                break
            lowest = min(open_turns)
        self._closed_upto = max(closed[-1].number, self._closed_upto or 0)
        return closed
