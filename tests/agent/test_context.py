"""The context-window policy keeps the system prompt and never orphans tool replies."""

from __future__ import annotations

from driftwatch.agent import apply_window


def conversation(turns: int) -> list[dict]:
    messages: list[dict] = [{"role": "system", "content": "S" * 400},
                            {"role": "user", "content": "start"}]
    for i in range(turns):
        messages.append({"role": "assistant", "content": f"turn {i}",
                         "tool_calls": [{"id": f"c{i}", "type": "function",
                                         "function": {"name": "read_file",
                                                      "arguments": '{"path": "a"}'}}]})
        messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": "x" * 200})
    return messages


def test_small_conversation_is_untouched() -> None:
    messages = conversation(2)
    window, dropped = apply_window(messages, 10_000)
    assert window == messages
    assert dropped == 0


def test_long_conversation_drops_oldest_turns_and_keeps_the_head() -> None:
    messages = conversation(200)
    window, dropped = apply_window(messages, 2_000)
    assert dropped > 0
    assert window[:2] == messages[:2]
    assert window[-1] == messages[-1]
    assert window[2]["role"] == "assistant"  # never starts the kept part with a tool reply
    assert len(window) + dropped == len(messages)


def test_context_window_matches_apply_window_and_keeps_a_running_total() -> None:
    from driftwatch.agent.context import ContextWindow, estimate_tokens

    window = ContextWindow(2_000)
    dropped_total = 0
    for message in conversation(200):
        dropped_total += window.append(message)
    expected, _ = apply_window(conversation(200), 2_000)
    assert window.messages[:2] == expected[:2]
    assert window.messages[-1] == expected[-1]
    assert sum(estimate_tokens(m) for m in window.messages) <= 2_000
    assert dropped_total + len(window.messages) == len(conversation(200))
