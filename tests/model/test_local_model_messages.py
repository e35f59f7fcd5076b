"""Messages every OpenAI-compatible server accepts, tool calls read from text, and replies
cut at their limit — over the loopback fake OpenAI server (the real HTTP path)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from driftwatch.model import ModelClient
from driftwatch.testing.fake_openai import FakeOpenAIServer

pytestmark = [pytest.mark.network_loopback, pytest.mark.usefixtures("litellm_ready")]

TOOLS = [{"type": "function", "function": {
    "name": "read_file", "description": "Read a file.",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]
MESSAGES = [{"role": "user", "content": "Read a.txt"}]


def client(server: FakeOpenAIServer, sleeps: Any) -> ModelClient:
    return ModelClient("openai/fake-model", api_base=server.base_url, api_key="test",
                       max_retries=0, sleep=sleeps)


def test_a_tool_call_reply_carries_content_in_the_history(sleeps: Any) -> None:
    """llama-cpp-python's server answered 500 ("'dict object' has no attribute 'content'")
    to a history whose assistant tool-call message had no content."""
    with FakeOpenAIServer([{"content": None, "tool_calls": [
            {"name": "read_file", "arguments": {"path": "a.txt"}}]}, {"content": "ok"}]) as server:
        model = client(server, sleeps)
        first = model.complete(MESSAGES, TOOLS)
        model.complete([*MESSAGES, first.message,
                        {"role": "tool", "tool_call_id": first.tool_calls[0].id,
                         "content": "hello"}], TOOLS)
        sent = server.requests[1]["messages"][1]
    assert first.message["content"] == ""
    assert sent["role"] == "assistant"
    assert sent["content"] == ""


def test_a_call_written_as_json_text_becomes_a_tool_call(sleeps: Any) -> None:
    text = 'Reading it now: {"name": "read_file", "arguments": {"path": "a.txt"}}'
    with FakeOpenAIServer([{"content": text}]) as server:
        reply = client(server, sleeps).complete(MESSAGES, TOOLS)
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("read_file", {"path": "a.txt"})]
    wire = reply.message["tool_calls"][0]
    assert wire["function"] == {"name": "read_file", "arguments": json.dumps({"path": "a.txt"})}
    assert reply.malformed_tool_calls == ()


def test_a_broken_call_in_text_is_counted_not_raised(sleeps: Any) -> None:
    with FakeOpenAIServer([{"content": '{"tool": "delete_everything", "arguments": {}}'},
                           {"content": '{"name": "read_file", "arguments": {"path": '}]) as server:
        model = client(server, sleeps)
        unknown = model.complete(MESSAGES, TOOLS)
        broken = model.complete(MESSAGES, TOOLS)
    assert (unknown.tool_calls, unknown.malformed_tool_calls) == (
        [], ("unknown tool 'delete_everything'",))
    assert broken.malformed_tool_calls == ("a tool call that is not valid JSON",)


def test_arguments_that_are_not_json_are_counted(sleeps: Any) -> None:
    with FakeOpenAIServer([{"tool_calls": [{"name": "read_file", "arguments": "path=a"}]}]) as s:
        reply = client(s, sleeps).complete(MESSAGES, TOOLS)
    assert reply.malformed_tool_calls == ("arguments of read_file are not a JSON object",)


def test_a_reply_cut_at_max_tokens_has_its_limit_and_no_calls(sleeps: Any) -> None:
    with FakeOpenAIServer([{"finish_reason": "length", "tool_calls": [
            {"name": "read_file", "arguments": '{"path": "a'}]}]) as server:
        reply = client(server, sleeps).complete(MESSAGES, TOOLS)
    assert reply.limit == "max_tokens"
    assert reply.tool_calls == []
    assert "tool_calls" not in reply.message
