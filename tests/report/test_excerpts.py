"""Reading what the agent said from GenAI output messages, and cutting long texts."""

from __future__ import annotations

import json

import pytest

from driftwatch.report.excerpts import agent_text, clip


@pytest.mark.parametrize(("messages", "text"), [
    ([{"role": "assistant", "content": "plain"}], "plain"),
    ([{"role": "assistant", "content": [{"type": "text", "text": "a"},
                                        {"type": "tool_call", "name": "x"}]}], "a"),
    ([{"role": "assistant", "parts": [{"type": "text", "content": "semconv parts"}]}],
     "semconv parts"),
    ([{"role": "assistant", "content": "one"}, {"role": "assistant", "content": "two"}],
     "one\ntwo"),
    ([{"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}], ""),
])
def test_agent_text_from_output_messages(messages: list[object], text: str) -> None:
    assert agent_text(json.dumps(messages)) == text


def test_agent_text_of_missing_or_raw_content() -> None:
    assert agent_text(None) == ""
    assert agent_text("") == ""
    assert agent_text("not json <b>") == "not json <b>"


def test_clip_says_how_much_was_left_out() -> None:
    assert clip("abcdef", 4) == "abcd… [2 more characters]"
    assert clip("abc", 4) == "abc"
    assert clip(None) == ""
