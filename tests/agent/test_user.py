"""The LLM-simulated user goes through litellm's real HTTP path and sees the conversation
from the user's side."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from driftwatch.agent.user import SimulatedUserModel
from driftwatch.scenario import SimulatedUser
from driftwatch.testing.fake_openai import FakeOpenAIServer, Fault

pytestmark = pytest.mark.network_loopback


def test_user_model_writes_the_next_user_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    conversation = [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "My order never arrived."},
        {"role": "assistant", "content": "Sorry to hear that. What is your order number?"},
    ]
    with FakeOpenAIServer([{"content": "It is 4411. Please hurry."}]) as server:
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        user = SimulatedUserModel(SimulatedUser(model="openai/fake-user",
                                                persona="An impatient customer."), seed=1)
        text = user.reply(SimpleNamespace(messages=conversation))  # type: ignore[arg-type]
        sent = server.requests[0]
    body = sent if isinstance(sent, dict) else json.loads(sent)
    assert text == "It is 4411. Please hurry."
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "assistant", "user"]  # the agent's words reach it as "user"
    assert "An impatient customer." in body["messages"][0]["content"]


def test_a_failing_user_model_falls_back_instead_of_ending_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeOpenAIServer([Fault.status(400)]) as server:
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        user = SimulatedUserModel(SimulatedUser(model="openai/fake-user"), seed=1)
        text = user.reply(SimpleNamespace(messages=[]))  # type: ignore[arg-type]
    assert text == "Please continue."
