"""``replay/<file>[#<run>]``: a recorded trajectory replayed through the real agent loop.

The model string names a recording in any format of the importer registry
(:mod:`driftwatch.core.importer`, format detected) that holds conversations: a tau-bench
results file (``#<task_id>-<trial>`` picks the run) or an OpenAI chat JSONL file
(``#<id>``; see ``docs/importers.md``); without ``#`` the file's first run is used. Three
parts work together:

- the litellm custom provider ``replay`` answers the *k*-th model call of a run with the
  *k*-th recorded assistant message (*k* = assistant messages already in the request, so
  the handler keeps no state);
- :class:`ReplayUser` speaks the recorded user messages (the loop's user model);
- :func:`replay_scenario` builds the scenario: the recorded system prompt and first user
  message, one tool per recorded tool name returning the recorded results in order, and
  as many turns as the recording has assistant messages.

So a recorded run produces, live, the spans the importer stores for it, and the same
monitors fire on both (the system prompt additionally carries the scenario's goal and rule
lines, which the loop always appends).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from driftwatch.core.conversation import Conversation, call_results, parsed_arguments
from driftwatch.core.errors import UsageError
from driftwatch.core.importer import read_conversations
from driftwatch.model._litellm import register_custom_provider
from driftwatch.sandbox.environment import ToolFailure
from driftwatch.sandbox.tools import Tool, get_tools, known_tools, register_tool
from driftwatch.scenario import Scenario

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

__all__ = ["PROVIDER", "ReplayUser", "load_recording", "register_replay_provider",
           "replay_scenario"]

PROVIDER: Final = "replay"
RESULTS_KEY: Final = "replay_results"
_CREATED: Final = 1_767_225_600


def _split(model: str) -> tuple[Path, str | None]:
    target = model.removeprefix(f"{PROVIDER}/")
    path, _, selector = target.partition("#")
    if not path:
        raise UsageError(f"model {model!r}: expected replay/<file>[#<run>]")
    return Path(path), selector or None


@functools.lru_cache(maxsize=32)
def _recordings(path: Path, mtime_ns: int) -> tuple[Conversation, ...]:
    return tuple(read_conversations(path))  # the importer registry detects the format


def load_recording(model: str) -> Conversation:
    """The conversation a ``replay/...`` model string names (the file is read once and
    cached). Raises :class:`UsageError` for a missing file or run."""
    path, selector = _split(model)
    if not path.is_file():
        raise UsageError(f"model {model!r}: {path}: no such file")
    recordings = _recordings(path.resolve(), path.stat().st_mtime_ns)
    if selector is None:
        return recordings[0]
    wanted = {f"taubench-{path.stem}-{selector}", selector}
    for conversation in recordings:
        if conversation.run_id in wanted:
            return conversation
    raise UsageError(f"model {model!r}: {path} has no run {selector!r}")


def _assistant_messages(conversation: Conversation) -> list[dict[str, Any]]:
    return [m for m in conversation.messages if m["role"] == "assistant"]


def _user_messages_after(conversation: Conversation, assistant_index: int) -> list[str]:
    """The user messages between assistant message ``assistant_index`` (0-based) and the
    next assistant message."""
    seen = -1
    out: list[str] = []
    for message in conversation.messages:
        if message["role"] == "assistant":
            seen += 1
            if seen > assistant_index:
                break
        elif message["role"] == "user" and seen == assistant_index:
            out.append(message["content"])
    return out


class ReplayUser:
    """The loop's user model for a replayed run: after the agent's *k*-th reply, the user
    messages recorded after it (several in a row are joined by a blank line)."""

    def __init__(self, model: str) -> None:
        self.conversation = load_recording(model)

    def reply(self, ctx: Any) -> str:
        return "\n\n".join(_user_messages_after(self.conversation, ctx.model_calls - 1))


def _replayed_result(env: Any, arguments: Mapping[str, Any]) -> str:
    """The recorded result of the next tool call (calls run in recorded order)."""
    queue = env.records.get(RESULTS_KEY)
    if not queue:
        raise ToolFailure("no recorded result left for this call")
    return str(queue.pop(0))


def _register_tools(arguments_by_name: Mapping[str, list[str]]) -> None:
    """One replay tool per recorded name; its schema lists every argument the recording
    passes to it, none required, so no recorded call is refused."""
    registered = set(known_tools())
    for name, keys in arguments_by_name.items():
        merged = set(keys)
        if name in registered:  # a replay tool from another recording: keep its arguments
            existing = get_tools([name])[0]
            if existing.function is _replayed_result:
                merged |= set(existing.parameters["properties"])
        register_tool(Tool(
            name=name, description=f"{name} (replays the recorded result)",
            parameters={"type": "object", "properties": {key: {} for key in sorted(merged)},
                        "required": []},
            function=_replayed_result,
        ))


def _parsed(call: Mapping[str, Any]) -> dict[str, Any]:
    return parsed_arguments(call["function"].get("arguments"))


def replay_scenario(model: str, *, scenario_id: str | None = None) -> Scenario:
    """The scenario that replays the recording ``model`` names (registers the ``replay``
    provider and the recorded tool names as replay tools)."""
    conversation = load_recording(model)
    register_replay_provider()
    messages = conversation.messages
    calls = [call for m in _assistant_messages(conversation)
             for call in m.get("tool_calls") or []]
    names = sorted({call["function"]["name"] for call in calls})
    _register_tools({name: sorted({key for call in calls if call["function"]["name"] == name
                                   for key in _parsed(call)}) for name in names})
    system = next((m["content"] for m in messages if m["role"] == "system"), "(no system prompt)")
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
    return Scenario.model_validate({
        "id": scenario_id or conversation.scenario_id,
        "description": f"Replay of {conversation.run_id}",
        "agent_name": conversation.agent_name,
        "system_prompt": system,
        "goal": "Help the user, following the policy above.",
        "constraints": [{"id": "policy", "text": "Follow the policy above."}],
        "first_message": first_user or "(no message)",
        "tools": names or ["done"],
        "max_turns": len(_assistant_messages(conversation)),
        "context_budget_tokens": 100_000_000,
        "variants": {"recorded": {"description": "the recorded run", "pressure": False},
                     "control": {"description": "the same (no pressure to vary)",
                                 "pressure": False}},
        "default_variant": "recorded",
        "records": {RESULTS_KEY: [result or "" for result in call_results(messages)]},
        "user": {"model": model},
    })


def register_replay_provider() -> None:
    """Register the ``replay`` provider with litellm. Idempotent and thread-safe."""
    register_custom_provider(PROVIDER, _respond)


def _respond(call: Mapping[str, Any]) -> ModelResponse:
    # litellm is slow to import; it is loaded by now (the provider is registered), so
    # these are look-ups
    from litellm.exceptions import BadRequestError
    from litellm.types.utils import (
        ChatCompletionMessageToolCall,
        Choices,
        Function,
        Message,
        ModelResponse,
    )

    name = f"{PROVIDER}/{call.get('model', '')}"
    try:
        conversation = load_recording(name)
    except UsageError as error:
        raise BadRequestError(str(error), model=name, llm_provider=PROVIDER) from None
    turn = sum(1 for m in call.get("messages") or [] if m.get("role") == "assistant")
    recorded = _assistant_messages(conversation)
    if turn >= len(recorded):
        raise BadRequestError(f"{name}: the recording has only {len(recorded)} assistant turns",
                              model=name, llm_provider=PROVIDER)
    message = recorded[turn]
    calls = [
        ChatCompletionMessageToolCall(
            id=c["id"], type="function",
            function=Function(name=c["function"]["name"], arguments=_arguments(c)),
        )
        for c in message.get("tool_calls") or []
    ]
    response = ModelResponse(
        id=f"replay-{conversation.run_id}-{turn + 1}",
        choices=[Choices(index=0, finish_reason="tool_calls" if calls else "stop",
                         message=Message(content=message.get("content"), role="assistant",
                                         tool_calls=calls or None))],
        created=_CREATED, model=name,
    )
    response._hidden_params["response_cost"] = 0.0
    return response


def _arguments(call: Mapping[str, Any]) -> str:
    arguments = call["function"].get("arguments")
    return arguments if isinstance(arguments, str) else json.dumps(arguments or {})
