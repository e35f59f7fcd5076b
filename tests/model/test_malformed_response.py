"""A provider's 200 answer that is not a chat completion is recorded as a malformed
response — in the error, on the span and in the run — not as the "HTTP 500" litellm makes
of it (the provider never sent a 500)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from driftwatch.model import ModelCallError, ModelClient
from driftwatch.testing.fake_openai import FakeOpenAIServer, Fault

pytestmark = [
    pytest.mark.network_loopback,
    pytest.mark.usefixtures("litellm_ready"),
    # litellm's pydantic models warn while they swallow such a body; outside pytest that is
    # a warning on stderr, here (warnings as errors) it would replace the error under test
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

MESSAGES = [{"role": "user", "content": "Summarise report.md"}]
# bodies the fake server sends as they are, with status 200
NOT_A_LIST = {"choices": "garbage"}
NO_MESSAGE_OBJECT = {"choices": [{"index": 0, "message": 5}]}
NAMELESS_CALL = {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                 "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                     "role": "assistant", "content": None,
                     "tool_calls": [{"id": "c1", "type": "function",
                                     "function": {"arguments": "{}"}}]}}]}


def call(script: list[Any], sleeps: Any, retries: int = 1) -> ModelCallError:
    with FakeOpenAIServer(script) as server:
        client = ModelClient("openai/fake-model", api_base=server.base_url, api_key="test",
                             max_retries=retries, sleep=sleeps)
        with pytest.raises(ModelCallError) as caught:
            client.complete(MESSAGES)
    return caught.value


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (NOT_A_LIST, "provider returned 'choices' that is not a list (str)"),
        (NO_MESSAGE_OBJECT, "the body is not a chat completion"),
    ],
)
def test_an_unreadable_200_is_a_malformed_response_not_http_500(
    body: dict[str, Any], reason: str, sleeps: Any
) -> None:
    error = call([body, body], sleeps)
    assert str(error) == ("model openai/fake-model: failed after 2 attempts: "
                          f"malformed response (HTTP 200): {reason}")
    assert "500" not in str(error)
    assert (error.status_code, error.error_type, error.attempts) == (None, "MalformedResponse", 2)


def test_a_tool_call_without_a_function_name_is_dropped_and_counted(sleeps: Any) -> None:
    """litellm accepts it (with warnings); a nameless call would run as tool '' and break
    the next request's history, so it is dropped and counted, and the run goes on."""
    with FakeOpenAIServer([NAMELESS_CALL]) as server:
        client = ModelClient("openai/fake-model", api_base=server.base_url, api_key="test",
                             max_retries=0, sleep=sleeps)
        reply = client.complete(MESSAGES)
    assert reply.tool_calls == []
    assert reply.malformed_tool_calls == ("tool call 0 has no function name",)
    assert reply.message == {"role": "assistant", "content": ""}


def test_a_real_500_is_still_reported_as_http_500(sleeps: Any) -> None:
    error = call([Fault.status(500, message="upstream exploded")] * 2, sleeps)
    assert "HTTP 500" in str(error)
    assert (error.status_code, error.error_type) == (500, "InternalServerError")


def test_the_run_and_its_span_name_the_malformed_response(tmp_path: Path) -> None:
    from driftwatch.runner.run import run_scenario
    from driftwatch.store import Store

    with FakeOpenAIServer([NOT_A_LIST] * 3) as server:
        summary = run_scenario(
            "oversight-config", model="openai/fake-model", seed=1, turns=2,
            db_path=tmp_path / "m.duckdb",
            model_options={"api_base": server.base_url, "api_key": "test", "max_retries": 2,
                           "backoff_base_s": 0})
    assert summary.error is not None
    assert "malformed response (HTTP 200)" in summary.error
    with Store(tmp_path / "m.duckdb", read_only=True) as store:
        [(status, attributes)] = store.query(
            "select status_code, attributes from spans where operation = 'chat'").rows
    attributes = json.loads(attributes) if isinstance(attributes, str) else attributes
    assert status == "ERROR"
    assert attributes["error.type"] == "MalformedResponse"
