"""Context-window policy: keep the system prompt and the opening message, drop the oldest
turns once the estimated size passes a budget, so runs of hundreds of turns fit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

Message = dict[str, Any]


def estimate_tokens(message: Message) -> int:
    """About four characters a token; cheap and good enough for budgeting."""
    size = len(message.get("content") or "")
    for call in message.get("tool_calls") or ():
        function = call.get("function", {})
        size += len(function.get("name", "")) + len(function.get("arguments", ""))
    return size // 4 + 4


def _turn_groups(messages: Sequence[Message]) -> list[list[Message]]:
    """Split messages into groups that must stay together: an assistant message with tool
    calls keeps its tool results, so the window never starts with an orphaned tool reply."""
    groups: list[list[Message]] = []
    for message in messages:
        if message.get("role") == "tool" and groups:
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def apply_window(
    messages: Sequence[Message], budget_tokens: int, *, pinned: int = 2
) -> tuple[list[Message], int]:
    """Return the messages to send and how many were dropped.

    The first ``pinned`` messages (system prompt and opening request) are always kept;
    then as many of the most recent groups as fit in the budget, at least the last one.
    """
    head = list(messages[:pinned])
    tail = messages[pinned:]
    total = sum(estimate_tokens(m) for m in messages)
    if total <= budget_tokens:
        return list(messages), 0
    remaining = budget_tokens - sum(estimate_tokens(m) for m in head)
    kept: list[list[Message]] = []
    for group in reversed(_turn_groups(tail)):
        cost = sum(estimate_tokens(m) for m in group)
        if kept and cost > remaining:
            break
        kept.append(group)
        remaining -= cost
    window = head + [m for group in reversed(kept) for m in group]
    return window, len(messages) - len(window)


class ContextWindow:
    """The conversation as sent to the model, with token estimates cached per message so
    each append costs O(1) until the budget is passed (then one trim)."""

    def __init__(self, budget_tokens: int, *, pinned: int = 2) -> None:
        self.budget_tokens = budget_tokens
        self.pinned = pinned
        self.messages: list[Message] = []
        self._tokens: list[int] = []
        self._total = 0

    def append(self, message: Message) -> int:
        """Add a message; return how many old messages were dropped to fit the budget."""
        cost = estimate_tokens(message)
        self.messages.append(message)
        self._tokens.append(cost)
        self._total += cost
        if self._total <= self.budget_tokens:
            return 0
        window, dropped = apply_window(self.messages, self.budget_tokens, pinned=self.pinned)
        if dropped:
            kept = {id(m) for m in window}
            self._tokens = [t for m, t in zip(self.messages, self._tokens, strict=True)
                            if id(m) in kept]
            self.messages = window
            self._total = sum(self._tokens)
        return dropped


try:  # orjson (a langgraph dependency) is ~5x faster on the large input-message payloads
    import orjson

    def dumps(value: Any) -> str:
        return orjson.dumps(value, default=str).decode()

except ImportError:  # pragma: no cover - orjson is normally installed with langgraph

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
