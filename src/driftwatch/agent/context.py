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


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
