"""What a model call returns: provider-neutral, frozen, safe to share between threads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = ["LIMIT_KEY", "ModelReply", "ToolCall"]

LIMIT_KEY: Final = "driftwatch_limit"
"""A provider's ``_hidden_params`` key naming the limit that stopped its generation (the
in-process llama.cpp provider sets ``"time_limit"``); finish reason ``length`` means
``"max_tokens"``."""


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
    arguments exactly as received (``content`` is always a string, ``""`` when the model
    said nothing: some OpenAI-compatible servers' chat templates fail on a missing one).
    ``malformed_tool_calls`` holds one reason per tool call that could not be read (an
    empty name, arguments that are not a JSON object, a call written as broken JSON);
    ``limit`` is ``"max_tokens"`` or ``"time_limit"`` when the generation was cut off at
    its limit (its tool calls are then dropped: a truncated call cannot be trusted).
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
    malformed_tool_calls: tuple[str, ...] = ()
    limit: str | None = None
