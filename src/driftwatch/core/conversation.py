"""A recorded chat conversation: what importers read from other tools' files and what the
``replay/*`` model plays back.

It lives in ``core`` because two layers share it: the importers (which turn it into spans)
and the replay model below them (which must not import the importers). The messages are
OpenAI chat messages, already checked by the importer that read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from driftwatch.core import jsonfile

__all__ = ["Conversation", "call_results", "parsed_arguments"]


@dataclass(frozen=True)
class Conversation:
    """One recorded run: OpenAI-format ``messages`` plus where it goes in the store."""

    run_id: str
    messages: list[dict[str, Any]]
    scenario_id: str
    model: str
    seed: int
    batch_id: str
    labels: dict[str, Any] = field(default_factory=dict)
    agent_name: str = "agent"


def parsed_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments (a JSON string or an object) as a dict ({} when not an object)."""
    if isinstance(arguments, dict):
        return arguments
    parsed = (jsonfile.loads(arguments) if isinstance(arguments, str) and arguments.strip()
              else {})
    return parsed if isinstance(parsed, dict) else {}


def call_results(messages: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """The result of every tool call, in call order: the first unused ``tool`` message with
    the call's id before the next assistant message (ids repeat within some recordings,
    so they are matched per turn, not globally). None when the call got no answer."""
    out: list[str | None] = []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        answers: list[Mapping[str, Any]] = []
        for later in messages[index + 1:]:
            if later.get("role") == "assistant":
                break
            if later.get("role") == "tool":
                answers.append(later)
        for call in message.get("tool_calls") or []:
            match = next((a for a in answers if a.get("tool_call_id") == call["id"]), None)
            if match is not None:
                answers.remove(match)
            out.append(None if match is None else match.get("content"))
    return out
