"""Which webhook failures are retried and how long the sink waits; what the recorder and
the sink's spec keep."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from driftwatch.alert import StoreRecorder, WebhookSink
from driftwatch.alert.retry import (
    RETRY_AFTER_CAP_S,
    Backoff,
    OutcomeKind,
    classify_error,
    classify_response,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, OutcomeKind.SENT),
        (204, OutcomeKind.SENT),
        (429, OutcomeKind.UNAVAILABLE),
        (502, OutcomeKind.UNAVAILABLE),
        (503, OutcomeKind.UNAVAILABLE),
        (504, OutcomeKind.UNAVAILABLE),
        (500, OutcomeKind.RETRYABLE),
        (408, OutcomeKind.RETRYABLE),
        (400, OutcomeKind.REJECTED),
        (404, OutcomeKind.REJECTED),
        (301, OutcomeKind.REJECTED),
    ],
)
def test_responses_are_classified_by_status(status: int, kind: OutcomeKind) -> None:
    assert classify_response(httpx.Response(status, text="x")).kind is kind


def test_connection_refused_is_unavailable_and_read_timeout_retryable() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/hook")
    refused = classify_error(httpx.ConnectError("refused", request=request))
    timeout = classify_error(httpx.ReadTimeout("slow", request=request))
    assert (refused.kind, refused.error) == (OutcomeKind.UNAVAILABLE, "ConnectError: refused")
    assert timeout.kind is OutcomeKind.RETRYABLE


def test_retry_after_in_seconds_or_as_a_date_and_capped() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:07 GMT", now) == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("99999") == RETRY_AFTER_CAP_S
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(1))
    for failures, full in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0), (500, 4.0)]:
        delay = backoff.delay(failures)
        assert full / 2 <= delay <= full
    assert backoff.delay(3, retry_after_s=10.0) == 10.0


class BatchStore:
    def __init__(self) -> None:
        self.batches: list[list[tuple[Any, ...]]] = []
        self.rows: list[tuple[Any, ...]] = []

    def record_alert(self, *args: Any, **kwargs: Any) -> None:
        self.rows.append(tuple(kwargs.values()))

    def record_alerts(self, rows: list[tuple[Any, ...]]) -> None:
        self.batches.append(rows)


def test_recorder_writes_many_statuses_in_one_batch_when_the_store_can() -> None:
    store = BatchStore()
    StoreRecorder(store).record_many(["f1", "f2"], "webhook", "pending", 0, None)
    assert store.batches == [
        [
            ("f1:webhook", "f1", "webhook", "pending", 0, None, None),
            ("f2:webhook", "f2", "webhook", "pending", 0, None, None),
        ]
    ]
    assert store.rows == []


def test_spec_does_not_keep_the_webhook_secret() -> None:
    sink = WebhookSink(
        "https://user:pw@hooks.slack.com/services/T0/B0/SECRET", headers={"Authorization": "t"}
    )
    try:
        args = sink.spec["args"]
        assert sink.spec["name"] == "webhook"
        assert args["url"] == "https://hooks.slack.com/…"
        assert args["headers"] == {"Authorization": "***"}
        assert "SECRET" not in repr(sink.spec)
    finally:
        sink.close()
