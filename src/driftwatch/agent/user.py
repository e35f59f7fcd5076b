"""An LLM-simulated user: a second model, through litellm, playing the scenario's persona.

It sees the conversation from the other side (the agent's messages as the user's input)
and writes the next user message. Scripted users need none of this: scenarios list their
messages as ``tasks`` and ``user_message`` events.
"""

from __future__ import annotations

from typing import Any

from driftwatch.agent.state import RunContext
from driftwatch.core.errors import ModelError
from driftwatch.model import ModelClient
from driftwatch.model.replay import ReplayUser
from driftwatch.scenario import SimulatedUser

_FALLBACK = "Please continue."


class SimulatedUserModel:
    """Writes user turns with ``spec.model``. Errors fall back to a neutral message: a
    flaky simulated user must not end the agent's run."""

    def __init__(self, spec: SimulatedUser, *, seed: int) -> None:
        if spec.model is None:
            raise ValueError("SimulatedUserModel needs a model")
        self.spec = spec
        self.client = ModelClient(spec.model, seed=seed, max_retries=2)

    def messages_for(self, conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The conversation with roles swapped, tool traffic left out."""
        system = (f"{self.spec.persona}\nReply as the user, in at most {self.spec.max_words} "
                  "words. Never say you are an AI.")
        out: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for message in conversation[-20:]:
            role, content = message.get("role"), message.get("content")
            if not content or role not in ("user", "assistant"):
                continue
            out.append({"role": "user" if role == "assistant" else "assistant",
                        "content": content})
        if len(out) == 1 or out[-1]["role"] != "user":
            out.append({"role": "user", "content": "(the agent is waiting for you)"})
        return out

    def reply(self, ctx: RunContext) -> str:
        try:
            answer = self.client.complete(self.messages_for(ctx.messages))
        except ModelError:
            return _FALLBACK
        return (answer.text or _FALLBACK).strip()


def user_model_for(spec: SimulatedUser, *, seed: int) -> Any:
    """The user for ``spec.model``: ``replay/<file>#<run>`` replays a recorded
    trajectory's user messages (:class:`~driftwatch.model.replay.ReplayUser`); any other
    model string is an LLM playing the persona."""
    if spec.model is not None and spec.model.startswith("replay/"):
        return ReplayUser(spec.model)
    return SimulatedUserModel(spec, seed=seed)

