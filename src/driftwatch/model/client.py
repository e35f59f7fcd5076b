"""The one way driftwatch calls a model: litellm underneath, our retries on top."""

# function-level imports: start-up — litellm takes seconds to import, so it loads at the first real
# model call
from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final

from driftwatch.core.errors import DriftwatchError, ModelError
from driftwatch.core.logging import get_logger
from driftwatch.core.retry import (
    backoff_delay,
    describe_error,
    is_transient,
    retry_after_seconds,
    status_of,
)
from driftwatch.model._litellm import fixed_kwargs, prepare_litellm, skip_success_logging
from driftwatch.model.hints import SimulationContext
from driftwatch.model.llamacpp import PROVIDER as LLAMACPP
from driftwatch.model.llamacpp import (
    LocalSettings,
    check_local_model,
    register_llamacpp_provider,
)
from driftwatch.model.profiles import check_profile
from driftwatch.model.simulated import PROVIDER as SIMULATED
from driftwatch.model.simulated import register_simulated_provider, simulation_metadata
from driftwatch.model.toolparse import parse_text_call
from driftwatch.model.types import LIMIT_KEY, ModelReply, ToolCall

__all__ = ["ModelCallError", "ModelClient"]

_log = get_logger("driftwatch.model")


class ModelCallError(ModelError):
    """A model call failed: at once (not retryable) or after its last retry.

    ``str()`` is one line naming the model, the attempts and the last error's status and
    first line. ``status_code`` is that error's HTTP status (None if it had none) and
    ``error_type`` its class name, for ``error.type`` on the span.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        attempts: int,
        status_code: int | None = None,
        error_type: str = "",
    ) -> None:
        super().__init__(message)
        self.model = model
        self.attempts = attempts
        self.status_code = status_code
        self.error_type = error_type


class ModelClient:
    """Calls one model through ``litellm.completion``, with timeouts, retries and cost.

    ``model`` is a litellm model string as the user wrote it (``openai/gpt-4o``,
    ``simulated/drifter``); the part before ``/`` is the provider. Transient failures (429,
    5xx, timeouts, connection errors) are retried up to ``max_retries`` times with
    exponential backoff and seeded jitter, honouring ``Retry-After`` (capped at
    ``backoff_max_s``); ``backoff_base_s`` defaults to 1 s, or 0 for ``simulated/*``, whose
    errors are simulated. litellm's and the provider SDK's own retries are switched off.
    ``temperature`` and ``seed`` are forwarded when set; ``seed`` also seeds the jitter, so
    a seeded client waits the same way every run. ``extra`` is passed to litellm as is (any
    ``metadata`` in it is kept); streaming is not supported. For ``simulated/*`` the
    :class:`SimulationContext` travels in litellm's per-call ``metadata`` and litellm's
    success callbacks are skipped (they cost ~1 ms of CPU per call and nobody needs them
    for a simulator); real providers keep litellm's callbacks.

    Constructing a client is cheap and does not import litellm; the first :meth:`complete`
    does (~5 s). Raises :class:`ModelError` for an unknown ``simulated/*`` profile and
    ``ValueError`` for nonsensical settings.

    Thread-safety: :meth:`complete` may be called from several threads at once; the jitter
    sequence is then shared, so only single-threaded use waits deterministically.
    """

    def __init__(
        self,
        model: str,
        *,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_base_s: float | None = None,
        backoff_max_s: float = 30.0,
        api_base: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if not model or not model.strip():
            raise ModelError("model must be a non-empty litellm model string")
        if timeout_s <= 0 or max_retries < 0 or backoff_max_s < 0:
            raise ValueError("timeout_s must be > 0; max_retries and backoff_max_s >= 0")
        if extra and extra.get("stream"):
            raise ValueError("ModelClient does not support streaming")
        self.model = model
        self._provider = model.split("/", 1)[0] if "/" in model else None
        self.simulated = self._provider == SIMULATED
        if self.simulated:
            check_profile(model.split("/", 1)[1])
        self.local = self._provider == LLAMACPP
        self._extra = dict(extra or {})
        if self.local:  # the extra, the file and the settings, before any run starts
            check_local_model(model.split("/", 1)[1])
            LocalSettings.from_call(self._extra.get("extra_body"))
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        default_base = 0.0 if self.simulated else 1.0
        self.backoff_base_s = default_base if backoff_base_s is None else backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._text_calls = 0  # ids of tool calls read from text, unique within the client
        self._extra = dict(extra or {})
        self._request: dict[str, Any] = {"model": model, "timeout": timeout_s}
        for key, value in (
            ("api_base", api_base),
            ("api_key", api_key),
            ("temperature", temperature),
            ("seed", seed),
        ):
            if value is not None:
                self._request[key] = value
        self._request.update({k: v for k, v in self._extra.items() if k != "metadata"})

    @property
    def provider(self) -> str:
        """litellm's provider: the part of the model string before ``/``; for a bare name
        (``gpt-4o``) litellm is asked, which imports it."""
        if self._provider is None:
            prepare_litellm()
            import litellm

            try:
                self._provider = str(litellm.get_llm_provider(self.model)[1])
            except Exception:  # unknown to litellm: say so, do not fail the run
                self._provider = "unknown"
        return self._provider

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        *,
        simulation: SimulationContext | None = None,
    ) -> ModelReply:
        """Send ``messages`` (OpenAI format) and ``tools`` (OpenAI function tools); return the
        reply. ``simulation`` reaches ``simulated/*`` models (ignored by real ones).

        Blocks for up to ``(max_retries + 1) * timeout_s`` plus backoff. Raises
        :class:`ModelCallError` (a :class:`ModelError`) at once on a non-transient failure
        (400, 401, 403, 404, …) and after ``max_retries + 1`` attempts otherwise. Does not
        mutate ``messages`` or ``tools``.
        """
        request = {**fixed_kwargs(), **self._request, "messages": list(messages)}
        tool_names: frozenset[str] = frozenset()
        if tools:
            request["tools"] = list(tools)
            tool_names = frozenset(str((t.get("function") or {}).get("name")) for t in tools)
        user_metadata = self._extra.get("metadata")
        if self.simulated:
            register_simulated_provider()
        elif self.local:
            register_llamacpp_provider()
        if not self.simulated and user_metadata is not None:
            request["metadata"] = user_metadata
        import litellm

        last_error: BaseException | None = None
        attempt = 0
        for attempt in range(1, self.max_retries + 2):
            scope: AbstractContextManager[None] = nullcontext()
            if self.simulated:
                request["metadata"] = {
                    **(user_metadata or {}),
                    **simulation_metadata(simulation, attempt, self.max_retries),
                }
                scope = skip_success_logging()
            try:
                with scope:
                    response = litellm.completion(**request)
            except DriftwatchError:
                raise
            except Exception as error:
                if not is_transient(error):
                    raise self._failure(error, attempt, retried=False) from error
                last_error = error
                if attempt > self.max_retries:
                    break
                self._wait(attempt, error)
            else:
                return self._reply(response, attempt, tool_names)
        assert last_error is not None  # the loop runs at least once and only breaks on errors
        raise self._failure(last_error, attempt, retried=True) from last_error

    def _wait(self, attempt: int, error: BaseException) -> None:
        with self._rng_lock:
            delay = backoff_delay(
                attempt,
                self.backoff_base_s,
                self.backoff_max_s,
                self._rng,
                retry_after_seconds(error),
            )
        _log.debug(
            "model.retry",
            model=self.model,
            attempt=attempt,
            delay_s=round(delay, 3),
            error=(f"{MALFORMED}: {malformed_reason(error)}" if malformed_reason(error)
                   else describe_error(error)),
        )
        if delay > 0:
            self._sleep(delay)

    def _failure(self, error: BaseException, attempts: int, *, retried: bool) -> ModelCallError:
        what = f"failed after {attempts} attempts" if retried else "failed"
        malformed = malformed_reason(error)
        if malformed is not None:  # the provider answered 200; litellm's "500" is its own
            return ModelCallError(
                f"model {self.model}: {what}: {MALFORMED}: {malformed}",
                model=self.model, attempts=attempts, error_type=MALFORMED_TYPE,
            )
        return ModelCallError(
            f"model {self.model}: {what}: {describe_error(error)}",
            model=self.model,
            attempts=attempts,
            status_code=status_of(error),
            error_type=type(error).__name__,
        )

    def _reply(
        self, response: Any, attempts: int, tool_names: frozenset[str] = frozenset()
    ) -> ModelReply:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise ModelCallError(
                f"model {self.model}: reply has no choices",
                model=self.model,
                attempts=attempts,
                error_type="EmptyReply",
            )
        choice = choices[0]
        message = getattr(choice, "message", None)
        if message is None:
            raise self._malformed("the first choice has no message", attempts)
        text = getattr(message, "content", None)
        text = text if isinstance(text, str) else None
        finish_reason = getattr(choice, "finish_reason", None)
        limit = _limit_of(response, finish_reason)
        calls, wire_calls, malformed = _read_tool_calls(message)
        if not calls and not malformed and tool_names and limit is None:
            text, calls, wire_calls, malformed = self._calls_from_text(text, tool_names)
        if limit is not None:  # a call cut off mid-way is not what the model meant
            calls, wire_calls = [], []
        history_message: dict[str, Any] = {"role": "assistant", "content": text or ""}
        if wire_calls:
            history_message["tool_calls"] = wire_calls
        usage = getattr(response, "usage", None)
        response_model = getattr(response, "model", None)
        response_id = getattr(response, "id", None)
        return ModelReply(
            text=text,
            tool_calls=calls,
            finish_reason=str(finish_reason) if finish_reason is not None else None,
            model=self.model,
            provider=self.provider,
            response_model=str(response_model) if response_model else None,
            response_id=str(response_id) if response_id else None,
            input_tokens=_int_or_none(getattr(usage, "prompt_tokens", None)),
            output_tokens=_int_or_none(getattr(usage, "completion_tokens", None)),
            attempts=attempts,
            cost_usd=self._cost(response),
            message=history_message,
            malformed_tool_calls=tuple(malformed),
            limit=limit,
        )

    def _calls_from_text(
        self, text: str | None, tool_names: frozenset[str]
    ) -> tuple[str | None, list[ToolCall], list[dict[str, Any]], list[str]]:
        """A call the model wrote as JSON in its text becomes a real tool call (and the
        history shows it as one, so the next request is standard)."""
        parsed = parse_text_call(text, tool_names)
        if parsed.malformed is not None:
            return text, [], [], [parsed.malformed]
        if parsed.name is None:
            return parsed.message, [], [], []
        with self._rng_lock:
            self._text_calls += 1
            call_id = f"call_text_{self._text_calls}"
        arguments = parsed.arguments or {}
        wire = {"id": call_id, "type": "function",
                "function": {"name": parsed.name, "arguments": json.dumps(arguments)}}
        return None, [ToolCall(id=call_id, name=parsed.name, arguments=arguments)], [wire], []

    def _malformed(self, reason: str, attempts: int) -> ModelCallError:
        return ModelCallError(f"model {self.model}: {MALFORMED}: {reason}", model=self.model,
                              attempts=attempts, error_type=MALFORMED_TYPE)

    def _cost(self, response: Any) -> float | None:
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, Mapping) and "response_cost" in hidden:
            cost = hidden["response_cost"]  # litellm priced it already (None: model unknown)
            return float(cost) if isinstance(cost, int | float) else None
        import litellm

        try:
            return float(litellm.completion_cost(completion_response=response, model=self.model))
        except Exception:  # a price is optional; never fail a call over it
            return None


MALFORMED: Final = "malformed response (HTTP 200)"
MALFORMED_TYPE: Final = "MalformedResponse"  # error.type on the span
# litellm reports a 200 body it cannot read as an InternalServerError with a made-up
# status 500; these are its words for that (tests/model pins them against litellm itself)
_LITELLM_MALFORMED: Final = (
    ("LiteLLM: provider returned ", "provider returned "),
    ("Invalid response object", "the body is not a chat completion"),
)


def malformed_reason(error: BaseException) -> str | None:
    """Why a provider's 200 answer could not be read, if that is what ``error`` says."""
    text = str(error)
    for marker, reason in _LITELLM_MALFORMED:
        at = text.find(marker)
        if at >= 0:
            if marker.endswith(" "):  # keep litellm's explanation, up to its key dump
                rest = text[at + len(marker):].partition(". Raw keys")[0].partition("\n")[0]
                return (reason + rest).strip()
            return reason
    return None


def _read_tool_calls(message: Any) -> tuple[list[ToolCall], list[dict[str, Any]], list[str]]:
    """The message's tool calls (as ToolCalls and as history entries) and one reason per
    call that could not be read. A call without a name is dropped (nothing could run it,
    and a history entry without a name breaks the next request); one whose arguments are
    not a JSON object is kept (the tool answers with an error the model can read)."""
    calls: list[ToolCall] = []
    wire_calls: list[dict[str, Any]] = []
    malformed: list[str] = []
    for index, call in enumerate(getattr(message, "tool_calls", None) or []):
        function = getattr(call, "function", None)
        name = getattr(function, "name", None)
        if not isinstance(name, str) or not name:
            malformed.append(f"tool call {index} has no function name")
            continue
        raw = getattr(function, "arguments", None)
        raw_arguments = raw if isinstance(raw, str) else json.dumps(raw or {})
        arguments = _parse_arguments(raw_arguments)
        if "_raw" in arguments and len(arguments) == 1:
            malformed.append(f"arguments of {name[:60]} are not a JSON object")
        call_id = str(getattr(call, "id", None) or f"call_{index}")
        calls.append(ToolCall(id=call_id, name=name, arguments=arguments))
        wire_calls.append({"id": call_id, "type": "function",
                           "function": {"name": name, "arguments": raw_arguments}})
    return calls, wire_calls, malformed


def _limit_of(response: Any, finish_reason: object) -> str | None:
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, Mapping) and isinstance(hidden.get(LIMIT_KEY), str):
        return str(hidden[LIMIT_KEY])
    return "max_tokens" if finish_reason == "length" else None


def _parse_arguments(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_raw": raw}


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
