"""Retry classification, Retry-After parsing, backoff and error lines (no litellm, no I/O)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from driftwatch.core.retry import (
    backoff_delay,
    describe_error,
    is_transient,
    retry_after_seconds,
    status_of,
)


class StatusError(Exception):
    def __init__(self, status: int, message: str = "boom", headers: object = None) -> None:
        super().__init__(message)
        self.status_code = status
        self.litellm_response_headers = headers


class APIConnectionError(Exception):
    """Same name as the litellm/openai class: classified by name, without importing them."""


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (529, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
    ],
)
def test_transient_statuses(status: int, transient: bool) -> None:
    assert is_transient(StatusError(status)) is transient


def test_timeouts_and_connection_errors_are_transient() -> None:
    assert is_transient(TimeoutError())
    assert is_transient(ConnectionResetError())
    assert is_transient(APIConnectionError("refused"))
    assert is_transient(httpx.ReadTimeout("slow"))
    assert not is_transient(ValueError("bad"))


def test_status_is_read_from_the_error_or_its_response() -> None:
    response = httpx.Response(503, request=httpx.Request("POST", "http://127.0.0.1/v1"))
    error = httpx.HTTPStatusError("x", request=response.request, response=response)
    assert status_of(error) == 503
    assert status_of(ValueError()) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"Retry-After": "0.25"}, 0.25),
        (httpx.Headers({"Retry-After": "3"}), 3.0),
        ({"retry-after-ms": "150", "retry-after": "9"}, 0.15),
        ({"retry-after": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_header_forms(headers: object, expected: float | None) -> None:
    assert retry_after_seconds(StatusError(429, headers=headers)) == expected


def test_retry_after_http_date() -> None:
    when = format_datetime(datetime.now(tz=UTC) + timedelta(seconds=30), usegmt=True)
    seconds = retry_after_seconds(StatusError(429, headers={"Retry-After": when}))
    assert seconds is not None
    assert 25 < seconds <= 30


def test_backoff_grows_exponentially_with_equal_jitter_and_is_capped() -> None:
    rng = random.Random(0)
    for attempt, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8), (5, 10)], 1):
        assert low <= backoff_delay(attempt, 1.0, 10.0, rng) <= high
    assert backoff_delay(30, 1.0, 10.0, rng) <= 10.0


def test_backoff_honours_retry_after_up_to_the_cap_and_zero_base_means_no_wait() -> None:
    rng = random.Random(0)
    assert backoff_delay(1, 1.0, 30.0, rng, retry_after=0.1) == 0.1
    assert backoff_delay(1, 1.0, 30.0, rng, retry_after=600) == 30.0
    assert backoff_delay(3, 0.0, 30.0, rng) == 0.0


def test_backoff_is_deterministic_for_a_seeded_rng() -> None:
    def delays(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [backoff_delay(a, 1.0, 30.0, rng) for a in range(1, 5)]

    assert delays(4) == delays(4)
    assert delays(4) != delays(5)


def test_error_description_is_one_short_line_with_status() -> None:
    error = StatusError(
        500,
        "litellm.InternalServerError: InternalServerError: OpenAIException"
        " - upstream\nTraceback (most recent call last): ...",
    )
    line = describe_error(error)
    assert line == "HTTP 500 StatusError: OpenAIException - upstream"
    assert len(describe_error(StatusError(400, "x" * 1000))) <= 300
    assert describe_error(ValueError()) == "ValueError"


def test_context_overflow_is_never_retried_whatever_it_arrives_as() -> None:
    """llama.cpp's ValueError reaches us as litellm's APIConnectionError with status 500;
    retried, it fails identically (the issue's run retried it 5 times)."""
    from driftwatch.core.retry import is_context_overflow

    overflow = StatusError(500, "litellm.APIConnectionError: Requested tokens (10724) "
                                "exceed context window of 8192")
    assert is_context_overflow(overflow)
    assert not is_transient(overflow)
    assert not is_transient(APIConnectionError("Requested tokens (9000) exceed context "
                                               "window of 8192"))
    assert not is_transient(StatusError(400, "This model's maximum context length is 8192"))
    assert is_transient(StatusError(500, "upstream exploded"))
