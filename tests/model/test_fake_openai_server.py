"""The loopback fake OpenAI server, spoken to with plain httpx."""

from __future__ import annotations

import json

import httpx
import pytest

from driftwatch.testing.fake_openai import FakeOpenAIServer, Fault

pytestmark = pytest.mark.network_loopback

BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def post(server: FakeOpenAIServer, body: object = BODY, timeout: float = 5.0) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=timeout)


def test_scripted_reply_with_tool_calls_and_usage() -> None:
    script = [
        {
            "content": "hi",
            "tool_calls": [{"name": "f", "arguments": {"a": 1}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }
    ]
    with FakeOpenAIServer(script) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/v1")
        body = post(server).json()
        assert server.requests == [BODY]
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "f",
        "arguments": json.dumps({"a": 1}),
    }
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_status_fault_sends_error_body_and_retry_after() -> None:
    with FakeOpenAIServer([Fault.status(429, retry_after=1.5)]) as server:
        response = post(server)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1.5"
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_delay_fault_outlasts_a_short_client_timeout() -> None:
    with FakeOpenAIServer([Fault.delay(2.0), {"content": "ok"}]) as server:
        with pytest.raises(httpx.ReadTimeout):
            post(server, timeout=0.2)
        assert post(server).json()["choices"][0]["message"]["content"] == "ok"


def test_disconnect_fault_closes_without_a_response() -> None:
    with FakeOpenAIServer([Fault.disconnect()]) as server, pytest.raises(httpx.TransportError):
        post(server)


def test_exhausted_script_and_unknown_paths_are_client_errors() -> None:
    with FakeOpenAIServer([]) as server:
        exhausted = post(server)
        missing = httpx.post(f"{server.base_url}/embeddings", json={}, timeout=5)
    assert exhausted.status_code == 400
    assert "script exhausted" in exhausted.json()["error"]["message"]
    assert missing.status_code == 404


def test_base_url_needs_the_context_manager() -> None:
    with pytest.raises(RuntimeError, match="context manager"):
        _ = FakeOpenAIServer([]).base_url
