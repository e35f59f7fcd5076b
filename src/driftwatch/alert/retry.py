"""How a webhook answer is judged, and how long to wait before the next try.

Three kinds of failure, because they call for different patience:

* *unavailable*: the endpoint cannot take anything now (connection refused, connect
  timeout, 429, 502, 503, 504). Not the alert's fault, so it does not use up the alert's
  retries: the sink waits (backoff, or ``Retry-After``) and tries the same alert again,
  for as long as it runs. This is what makes "a down webhook loses no finding" true.
* *retryable*: something went wrong with this request (read timeout, dropped connection,
  other 5xx, 408). Retried up to ``retries`` times, then ``failed``.
* *rejected*: any other 4xx (or a redirect): sending it again will not help; ``failed``.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import httpx

from driftwatch.core.retry import backoff_delay
from driftwatch.core.retry import parse_retry_after as parse_header_value

__all__ = ["Backoff", "Outcome", "OutcomeKind", "classify_error", "classify_response"]

UNAVAILABLE_STATUSES: Final = frozenset({429, 502, 503, 504})
RETRYABLE_STATUSES: Final = frozenset({408})
RETRY_AFTER_CAP_S: Final = 600.0  # a hostile or broken header cannot park the sink longer


class OutcomeKind(enum.Enum):
    SENT = "sent"
    UNAVAILABLE = "unavailable"
    RETRYABLE = "retryable"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    error: str | None = None
    retry_after_s: float | None = None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), capped; None if absent
    or unreadable."""
    seconds = parse_header_value(value.strip(), now) if value else None
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def classify_response(response: httpx.Response) -> Outcome:
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(OutcomeKind.SENT)
    body = response.text[:200].strip()
    error = f"HTTP {code}" + (f": {body}" if body else "")
    if code in UNAVAILABLE_STATUSES:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return Outcome(OutcomeKind.UNAVAILABLE, error, retry_after)
    if code >= 500 or code in RETRYABLE_STATUSES:
        return Outcome(OutcomeKind.RETRYABLE, error)
    return Outcome(OutcomeKind.REJECTED, error)


def classify_error(exc: httpx.HTTPError) -> Outcome:
    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return Outcome(OutcomeKind.UNAVAILABLE, error)
    if isinstance(exc, httpx.TransportError):
        return Outcome(OutcomeKind.RETRYABLE, error)
    return Outcome(OutcomeKind.REJECTED, error)  # e.g. an invalid URL


class Backoff:
    """Exponential backoff with jitter: the n-th wait (n ≥ 1) is
    ``min(max_s, base_s · 2^(n-1))`` scaled by a random factor in [0.5, 1], so many
    clients do not retry in step. ``Retry-After`` overrides it."""

    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self._rng = rng or random.Random()

    def delay(self, failures: int, retry_after_s: float | None = None) -> float:
        if retry_after_s is not None:
            return retry_after_s  # the server's word, not capped at max_s (parse caps it)
        # an endpoint that is down is retried for as long as we run (backoff_delay caps)
        return backoff_delay(max(failures, 1), self.base_s, self.max_s, self._rng)
