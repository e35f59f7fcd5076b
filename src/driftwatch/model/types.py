"""What a model call returns: provider-neutral, frozen, safe to share between threads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ModelReply", "ToolCall"]


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model asked for. ``arguments`` is the parsed JSON object; when the
    model sent something that is not a JSON object, it is ``{"_raw": <the string>}``."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ModelReply:
    """The outcome of one successful :meth:`ModelClient.complete` call.

    ``model`` is the model string as requested (``simulated/drifter``, ``openai/gpt-4o``);
    ``provider`` its litellm provider (the part before ``/``), for ``gen_ai.provider.name``;
    ``response_model`` and ``response_id`` are what the provider reported. Token counts are
    None when the provider sent no usage. ``attempts`` counts tries including the final
    successful one. ``cost_usd`` is litellm's price for the call, None when it does not know
    the model. ``message`` is the OpenAI-format assistant message to append to the history:
    ``role``, ``content`` and, if there are tool calls, ``tool_calls`` with JSON-string
    arguments exactly as received.
    """

    text: str | None
    tool_calls: list[ToolCall]
    finish_reason: str | None
    model: str
    provider: str
    response_model: str | None
    response_id: str | None
    input_tokens: int | None
    output_tokens: int | None
    attempts: int
    cost_usd: float | None
    message: dict[str, Any]
