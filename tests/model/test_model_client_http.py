"""ModelClient over litellm's real OpenAI HTTP path, against the loopback fake server."""

from __future__ import annotations

import copy

import pytest

from driftwatch.core.errors import ModelError
from driftwatch.model import ModelCallError, ModelClient
from driftwatch.testing.fake_openai import FakeOpenAIServer, Fault

pytestmark = [pytest.mark.network_loopback, pytest.mark.usefixtures("litellm_ready")]

MESSAGES = [
    {"role": "system", "content": "You are a careful assistant."},
    {"role": "user", "content": "Summarise report.md"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    }
]
OK = {"content": "done"}


def client_for(server: FakeOpenAIServer, sleeps, **kwargs) -> ModelClient:
    return ModelClient(
        "openai/fake-model", api_base=server.base_url, api_key="test", sleep=sleeps, **kwargs
    )


def test_success_parses_tool_calls_usage_and_history_message(sleeps) -> None:
    script = [
        {
            "content": "Let me read it.",
            "id": "chatcmpl-42",
            "tool_calls": [
                {"id": "call_a", "name": "read_file", "arguments": {"path": "report.md"}}
            ],
            "usage": {"prompt_tokens": 30, "completion_tokens": 5},
        }
    ]
    with FakeOpenAIServer(script) as server:
        reply = client_for(server, sleeps, temperature=0.2, seed=7).complete(MESSAGES, TOOLS)
        sent = server.requests[0]
    assert reply.text == "Let me read it."
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("call_a", "read_file", {"path": "report.md"})
    ]
    assert (reply.finish_reason, reply.input_tokens, reply.output_tokens) == ("tool_calls", 30, 5)
    assert (reply.model, reply.provider) == ("openai/fake-model", "openai")
    assert (reply.response_model, reply.response_id, reply.attempts) == (
        "fake-model",
        "chatcmpl-42",
        1,
    )
    assert reply.cost_usd is None  # litellm has no price for fake-model
    assert reply.message == {
        "role": "assistant",
        "content": "Let me read it.",
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path": "report.md"}'},
            }
        ],
    }
    assert sent["model"] == "fake-model"
    assert sent["tools"][0]["function"]["name"] == "read_file"
    assert (sent["temperature"], sent["seed"]) == (0.2, 7)
    assert sleeps.delays == []


def test_history_message_is_accepted_on_the_next_call_and_inputs_are_not_mutated(sleeps) -> None:
    script = [
        {"tool_calls": [{"id": "call_a", "name": "read_file", "arguments": {"path": "a"}}]},
        OK,
    ]
    with FakeOpenAIServer(script) as server:
        client = client_for(server, sleeps)
        history = copy.deepcopy(MESSAGES)
        first = client.complete(history, TOOLS)
        assert first.text is None
        history += [first.message, {"role": "tool", "tool_call_id": "call_a", "content": "x"}]
        before = copy.deepcopy(history)
        second = client.complete(history, TOOLS)
        assert history == before
        assert server.requests[1]["messages"][2]["tool_calls"][0]["id"] == "call_a"
    assert (second.text, second.tool_calls, second.finish_reason) == ("done", [], "stop")
    assert "tool_calls" not in second.message


def test_known_model_gets_a_cost_from_litellm(sleeps) -> None:
    script = [
        {
            "content": "hi",
            "model": "gpt-4o-2024-08-06",
            "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
        }
    ]
    with FakeOpenAIServer(script) as server:
        client = ModelClient(
            "openai/gpt-4o", api_base=server.base_url, api_key="test", sleep=sleeps
        )
        reply = client.complete(MESSAGES)
    assert reply.cost_usd is not None
    assert reply.cost_usd > 0


def test_rate_limit_is_retried_honouring_retry_after(sleeps) -> None:
    with FakeOpenAIServer([Fault.status(429, retry_after=0.1), OK]) as server:
        reply = client_for(server, sleeps).complete(MESSAGES)
        assert len(server.requests) == 2
    assert (reply.text, reply.attempts) == ("done", 2)
    assert sleeps.delays == [pytest.approx(0.1)]


def test_retry_after_is_capped_by_backoff_max(sleeps) -> None:
    with FakeOpenAIServer([Fault.status(429, retry_after=120), OK]) as server:
        reply = client_for(server, sleeps, backoff_max_s=5.0).complete(MESSAGES)
    assert reply.attempts == 2
    assert sleeps.delays == [5.0]


def test_server_errors_are_retried_with_exponential_backoff(sleeps) -> None:
    with FakeOpenAIServer([Fault.status(500), Fault.status(503), OK]) as server:
        reply = client_for(server, sleeps, seed=1).complete(MESSAGES)
        assert len(server.requests) == 3
    assert reply.attempts == 3
    first, second = sleeps.delays
    assert 0.5 <= first <= 1.0  # base 1 s, equal jitter
    assert 1.0 <= second <= 2.0


def test_seeded_jitter_is_deterministic(sleeps) -> None:
    delays = []
    for _ in range(2):
        recorder = type(sleeps)()
        with FakeOpenAIServer([Fault.status(500), Fault.status(500), OK]) as server:
            client_for(server, recorder, seed=3).complete(MESSAGES)
        delays.append(recorder.delays)
    assert delays[0] == delays[1]


def test_timeout_is_retried(sleeps) -> None:
    with FakeOpenAIServer([Fault.delay(3.0), OK]) as server:
        reply = client_for(server, sleeps, timeout_s=0.3).complete(MESSAGES)
        assert len(server.requests) == 2
    assert (reply.text, reply.attempts) == ("done", 2)


def test_dropped_connection_is_retried(sleeps) -> None:
    with FakeOpenAIServer([Fault.disconnect(), OK]) as server:
        reply = client_for(server, sleeps).complete(MESSAGES)
    assert (reply.text, reply.attempts) == ("done", 2)


def test_persistent_server_error_raises_after_max_retries_plus_one_attempts(sleeps) -> None:
    with FakeOpenAIServer([Fault.status(500, message="upstream exploded")] * 5) as server:
        with pytest.raises(ModelError) as caught:
            client_for(server, sleeps, max_retries=2).complete(MESSAGES)
        assert len(server.requests) == 3
    message = str(caught.value)
    assert "\n" not in message
    assert "openai/fake-model" in message
    assert "3 attempts" in message
    assert "500" in message
    assert "upstream exploded" in message
    assert len(sleeps.delays) == 2
    assert isinstance(caught.value, ModelCallError)
    assert (caught.value.attempts, caught.value.status_code) == (3, 500)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_raise_at_once_without_retry(sleeps, status: int) -> None:
    with FakeOpenAIServer([Fault.status(status, message="nope"), OK]) as server:
        with pytest.raises(ModelError) as caught:
            client_for(server, sleeps).complete(MESSAGES)
        assert len(server.requests) == 1
    message = str(caught.value)
    assert "\n" not in message
    assert "openai/fake-model" in message
    assert str(status) in message
    assert sleeps.delays == []


def test_extra_arguments_reach_the_provider(sleeps) -> None:
    with FakeOpenAIServer([OK]) as server:
        client_for(server, sleeps, extra={"max_tokens": 5, "top_p": 0.5}).complete(MESSAGES)
        sent = server.requests[0]
    assert (sent["max_tokens"], sent["top_p"]) == (5, 0.5)
    assert "metadata" not in sent


def test_provider_is_the_model_prefix_or_asked_of_litellm() -> None:
    assert ModelClient("anthropic/claude-x").provider == "anthropic"
    assert ModelClient("gpt-4o").provider == "openai"


@pytest.mark.parametrize(
    "kwargs", [{"timeout_s": 0}, {"max_retries": -1}, {"extra": {"stream": True}}]
)
def test_nonsensical_settings_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is not the point
        ModelClient("openai/gpt-4o", **kwargs)
