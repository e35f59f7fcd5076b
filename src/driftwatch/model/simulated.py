"""Offline simulated models, served to litellm as the custom provider ``simulated``.

These are simulators, not language models: ``simulated/<profile>`` picks tool calls from
the scenario's hints with a seeded random policy (profiles in
:mod:`driftwatch.model.profiles`), so whole batches run offline, fast and reproducibly, with
a known ground truth for the monitors to find.

How the run's state reaches the handler: the caller puts a
:class:`~driftwatch.model.hints.SimulationContext` in litellm's per-call ``metadata`` under
:data:`METADATA_CONTEXT`, with the 1-based retry attempt under :data:`METADATA_ATTEMPT` and
the caller's retry budget under :data:`METADATA_MAX_RETRIES` (the ``flaky`` profile needs
both). :class:`~driftwatch.model.client.ModelClient` does this; a direct
``litellm.completion(model="simulated/drifter", ..., metadata={...})`` works the same way.
Without a context the reply is plain text with no tool calls; ``flaky`` without a retry
budget never fails.

Replies are real litellm ``ModelResponse`` objects: one assistant message, at most one tool
call (id ``call_<turn>_0``, JSON-string arguments), finish reason ``tool_calls`` or
``stop``, usage estimated as characters / 4, and a response cost of 0.0. Streaming is not
supported. ``flaky`` raises litellm's own transient errors (``RateLimitError``,
``ServiceUnavailableError``, ``InternalServerError``, ``Timeout``); an unknown profile
raises litellm's ``BadRequestError`` (status 400, not retried).

Thread-safety: the handler is stateless; :func:`register_simulated_provider` is idempotent
and guarded by a lock.
"""

# function-level imports: start-up — litellm takes seconds to import, so it loads at the first
# model call
from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from driftwatch.core.errors import ModelError
from driftwatch.model._litellm import register_custom_provider
from driftwatch.model.hints import SimulationContext
from driftwatch.model.profiles import (
    KNOWN_PROFILES,
    SimulatedTurn,
    check_profile,
    flaky_fault,
    plan_turn,
)

if TYPE_CHECKING:
    from litellm.types.utils import ModelResponse

__all__ = [
    "METADATA_ATTEMPT",
    "METADATA_CONTEXT",
    "METADATA_MAX_RETRIES",
    "PROVIDER",
    "register_simulated_provider",
    "simulation_metadata",
]

PROVIDER: Final = "simulated"
METADATA_CONTEXT: Final = "driftwatch_simulation"
METADATA_ATTEMPT: Final = "driftwatch_attempt"
METADATA_MAX_RETRIES: Final = "driftwatch_max_retries"
_CREATED: Final = 1_767_225_600  # fixed, so replies do not depend on wall time

_lock = threading.Lock()


def simulation_metadata(
    context: SimulationContext | None, attempt: int = 1, max_retries: int = 0
) -> dict[str, Any]:
    """The litellm ``metadata`` entries that carry ``context`` to the simulated handler."""
    return {METADATA_CONTEXT: context, METADATA_ATTEMPT: attempt, METADATA_MAX_RETRIES: max_retries}


def register_simulated_provider() -> None:
    """Register the ``simulated`` provider with litellm (importing it on first use), and its
    profiles in ``litellm.model_cost`` at zero price.

    Idempotent and thread-safe; if some other handler is already registered under the name
    ``simulated``, it is left in place.
    """
    if not register_custom_provider(PROVIDER, _respond):
        return
    import litellm  # loaded by the registration above

    with _lock:
        for profile in KNOWN_PROFILES:
            # a free, known model: litellm's per-call model-info and pricing lookups then hit
            # the map at once instead of scanning its fallbacks (~10% of the call)
            litellm.model_cost.setdefault(
                f"{PROVIDER}/{profile}",
                {
                    "litellm_provider": PROVIDER,
                    "mode": "chat",
                    "input_cost_per_token": 0.0,
                    "output_cost_per_token": 0.0,
                },
            )


def _respond(call: Mapping[str, Any]) -> ModelResponse:
    from litellm.exceptions import BadRequestError

    profile = str(call.get("model", ""))
    try:
        check_profile(profile)
    except ModelError as error:
        raise BadRequestError(str(error), model=profile, llm_provider=PROVIDER) from None
    metadata = (call.get("litellm_params") or {}).get("metadata") or {}
    context = metadata.get(METADATA_CONTEXT)
    if context is not None and not isinstance(context, SimulationContext):
        raise BadRequestError(
            f"metadata[{METADATA_CONTEXT!r}] must be a SimulationContext, "
            f"got {type(context).__name__}",
            model=profile,
            llm_provider=PROVIDER,
        )
    if profile == "flaky" and context is not None:
        _maybe_fail(
            profile,
            context,
            int(metadata.get(METADATA_ATTEMPT, 1)),
            int(metadata.get(METADATA_MAX_RETRIES, 0)),
        )
    planned = plan_turn(profile, context)
    return _build_response(profile, context, planned, call.get("messages") or [])


def _maybe_fail(profile: str, context: SimulationContext, attempt: int, max_retries: int) -> None:
    from litellm.exceptions import (
        InternalServerError,
        RateLimitError,
        ServiceUnavailableError,
        Timeout,
    )

    fault = flaky_fault(context.seed, context.turn, attempt, max_retries)
    message = f"simulated transient {fault} (turn {context.turn}, attempt {attempt})"
    if fault == "rate_limit":
        raise RateLimitError(message, llm_provider=PROVIDER, model=profile)
    if fault == "service_unavailable":
        raise ServiceUnavailableError(message, llm_provider=PROVIDER, model=profile)
    if fault == "internal_server_error":
        raise InternalServerError(message, llm_provider=PROVIDER, model=profile)
    if fault == "timeout":
        raise Timeout(message, model=profile, llm_provider=PROVIDER)


def _build_response(
    profile: str,
    context: SimulationContext | None,
    planned: SimulatedTurn,
    messages: Sequence[Mapping[str, Any]],
) -> ModelResponse:
    from litellm.types.utils import (
        ChatCompletionMessageToolCall,
        Choices,
        Function,
        Message,
        ModelResponse,
    )

    tool_calls = None
    reply_chars = len(planned.text or "")
    if planned.action is not None and context is not None:
        arguments = json.dumps(planned.action.arguments, sort_keys=True)
        reply_chars += len(planned.action.tool) + len(arguments)
        tool_calls = [
            ChatCompletionMessageToolCall(
                id=f"call_{context.turn}_0",
                type="function",
                function=Function(name=planned.action.tool, arguments=arguments),
            )
        ]
    message = Message(content=planned.text, role="assistant", tool_calls=tool_calls)
    prompt_tokens = max(1, _prompt_chars(messages) // 4)
    completion_tokens = max(1, reply_chars // 4)
    turn_part = f"{context.seed}-{context.turn}" if context is not None else "none"
    response = ModelResponse(
        id=f"chatcmpl-sim-{profile}-{turn_part}",
        choices=[
            Choices(index=0, message=message, finish_reason="tool_calls" if tool_calls else "stop")
        ],
        created=_CREATED,
        model=f"{PROVIDER}/{profile}",
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    )
    # a simulated call is free; saying so spares litellm a cost-map lookup per call (set
    # after construction: pydantic's __init__ resets the constructor's hidden_params)
    response._hidden_params["response_cost"] = 0.0
    return response


def _prompt_chars(messages: Sequence[Mapping[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif content is not None:
            total += len(json.dumps(content, default=str))
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping):
                function = call.get("function") or {}
                total += len(str(function.get("name", "")))
                total += len(str(function.get("arguments", "")))
    return total
