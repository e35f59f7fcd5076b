"""Which model-call (and alert-delivery) failures are worth retrying, and how long to wait
before the next try. In core because the model layer and the alert sinks share it.

Transient: HTTP 408 and 429, any 5xx, timeouts and connection errors (litellm maps
provider SDK errors onto its own exception classes, which carry ``status_code``). Anything
else (bad request, authentication, permission, not found, context window) is final. A
context-window overflow is final whatever class or status it arrives as: llama.cpp's
"Requested tokens (10724) exceed context window of 8192" reaches litellm as a ValueError,
which litellm reports as a connection error with status 500; retried, it fails the same way
every time.

Pure functions over exception objects; nothing here imports litellm, so classification
works on whatever the call raised. Safe from any thread.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from typing import Any, Final, cast

__all__ = [
    "backoff_delay",
    "describe_error",
    "is_context_overflow",
    "is_transient",
    "parse_retry_after",
    "retry_after_seconds",
    "status_of",
]

_TRANSIENT_STATUS: Final = frozenset({408, 429})
# by name, so classification does not import litellm, openai or httpx
_TRANSIENT_TYPES: Final = frozenset(
    {
        "Timeout",
        "APITimeoutError",
        "APIConnectionError",
        "TimeoutException",
        "ConnectTimeout",
        "ReadTimeout",
        "WriteTimeout",
        "PoolTimeout",
        "ConnectError",
        "ReadError",
        "WriteError",
        "RemoteProtocolError",
        "ServiceUnavailableError",
        "InternalServerError",
        "RateLimitError",
        "BadGatewayError",
    }
)
# the words servers use for a prompt that does not fit (llama.cpp, OpenAI, vLLM, Ollama)
_CONTEXT_OVERFLOW: Final = re.compile(
    r"exceeds? (?:the )?context window|context[_ ]length[_ ]exceeded|maximum context length"
    r"|context window exceeded|prompt is too long|exceeds? the model's context",
    re.IGNORECASE,
)
_MAX_MESSAGE: Final = 300
# litellm repeats class names: "litellm.RateLimitError: RateLimitError: OpenAIException - …"
_REDUNDANT_PREFIX: Final = re.compile(r"^(?:litellm\.\w+:\s*)?(?:\w+Error:\s*)*")


def status_of(error: BaseException) -> int | None:
    """The HTTP status an error carries (``status_code`` attribute or its response)."""
    status = getattr(error, "status_code", None)
    if status is None:
        status = getattr(getattr(error, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def is_context_overflow(error: BaseException) -> bool:
    """True when the prompt (plus the requested completion) did not fit the model's window."""
    if any(cls.__name__ == "ContextWindowExceededError" for cls in type(error).__mro__):
        return True
    return _CONTEXT_OVERFLOW.search(str(error)) is not None


def is_transient(error: BaseException) -> bool:
    """True for failures a retry may cure: 408, 429, 5xx, timeouts, connection errors;
    never for a context-window overflow, whatever status it came with."""
    if is_context_overflow(error):
        return False
    if isinstance(error, TimeoutError | ConnectionError):
        return True
    status = status_of(error)
    if status is not None and (status in _TRANSIENT_STATUS or status >= 500):
        return True
    if status is not None and 400 <= status < 500:
        return False
    return any(cls.__name__ in _TRANSIENT_TYPES for cls in type(error).__mro__)


def retry_after_seconds(error: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``Retry-After`` as seconds
    or an HTTP date), or None. Looks at litellm's ``litellm_response_headers`` and at the
    error's HTTP response."""
    for headers in (
        getattr(error, "litellm_response_headers", None),
        getattr(getattr(error, "response", None), "headers", None),
    ):
        if headers is None or not hasattr(headers, "get"):
            continue
        milliseconds = _number(_header(headers, "retry-after-ms"))
        if milliseconds is not None:
            return max(0.0, milliseconds / 1000.0)
        seconds = parse_retry_after(_header(headers, "retry-after"))
        if seconds is not None:
            return max(0.0, seconds)
    return None


def parse_retry_after(value: object, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` value (delta-seconds, or an HTTP date measured from ``now``) as
    seconds, unclamped; None when absent or unreadable. Shared by the model client and
    the webhook sink."""
    seconds = _number(value)
    if seconds is None and isinstance(value, str):
        seconds = _http_date_delay(value, now)
    return seconds


def backoff_delay(
    attempt: int, base_s: float, max_s: float, rng: random.Random, retry_after: float | None = None
) -> float:
    """Seconds to wait after failed ``attempt`` (1-based).

    A server's ``Retry-After`` wins, capped at ``max_s``. Otherwise exponential backoff with
    "equal jitter": half of ``min(max_s, base_s * 2**(attempt-1))`` plus a uniform draw over
    the other half, so concurrent clients spread out but never retry immediately.
    """
    if retry_after is not None:
        return min(max_s, retry_after)
    if base_s <= 0:
        return 0.0
    # the exponent is capped: endless retries must not overflow (2**60 outgrows any max_s)
    ceiling = min(max_s, base_s * 2.0 ** min(attempt - 1, 60))
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


def describe_error(error: BaseException) -> str:
    """One line: status, error class and the first line of its message (without litellm's
    repeated class-name prefixes), at most 300 characters."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = type(error).__name__
    text = _REDUNDANT_PREFIX.sub("", text, count=1)
    status = status_of(error)
    line = f"HTTP {status} {name}" if status is not None else name
    if text:
        line = f"{line}: {text}"
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


def _header(headers: Any, name: str) -> object:
    value = headers.get(name)
    if value is None and isinstance(headers, dict):  # a plain dict is case-sensitive
        value = next((v for k, v in headers.items() if str(k).lower() == name), None)
    return cast(object, value)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _http_date_delay(value: str, now: datetime | None = None) -> float | None:
    from email.utils import parsedate_to_datetime  # lazily: 14 ms to import, rarely needed

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - (now or datetime.now(tz=UTC))).total_seconds()
