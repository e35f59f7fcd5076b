"""The webhook sink against a real loopback HTTP server: retries by kind of failure,
delivery status in the alerts table, and nothing lost while the webhook is down or the
process restarts."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hook_server import Reply, WebhookServer, alert_rows, free_port, store_finding, wait_until

from driftwatch.alert import PendingAlert, WebhookSink
from driftwatch.alert.retry import Backoff
from driftwatch.core import Finding, Severity
from driftwatch.store import Store

pytestmark = pytest.mark.network_loopback

FindingFactory = Callable[..., Finding]
ServerFactory = Callable[..., WebhookServer]


SinkFactory = Callable[..., WebhookSink]


@pytest.fixture
def fast_sink() -> Iterator[SinkFactory]:
    """``fast_sink(url, store, **options)``: a webhook with millisecond backoff
    (deterministic jitter), so retries are quick; closed after the test."""
    made: list[WebhookSink] = []

    def build(url: str, store: Store | None, **options: Any) -> WebhookSink:
        options.setdefault("backoff", Backoff(0.01, 0.05, random.Random(7)))
        options.setdefault("drain_s", 5.0)
        options.setdefault("recorder", store)
        made.append(WebhookSink(url, **options))
        return made[-1]

    yield build
    for sink in made:
        sink.close()


def test_finding_is_posted_once_and_recorded_sent(
    webhook_server: ServerFactory,
    memory_store: Store,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    server = webhook_server()
    finding = store_finding(memory_store, make_finding())
    sink = fast_sink(server.url, memory_store, headers={"X-Token": "t0"})
    sink.send([finding])
    assert sink.flush(20)
    sink.close()
    assert alert_rows(memory_store) == [(finding.finding_id, "sent", 1)]
    [request] = server.received
    assert request.headers["X-Token"] == "t0"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body["text"].startswith("[CRITICAL] oversight-config-modified run=run-000001")
    sent_at = memory_store.query("SELECT sent_at, error FROM alerts").rows[0]
    assert sent_at[0] is not None
    assert sent_at[1] is None


def test_server_error_is_retried_and_attempts_are_recorded(
    webhook_server: ServerFactory,
    memory_store: Store,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    server = webhook_server([Reply(500, body="boom"), Reply(500), Reply()])
    finding = store_finding(memory_store, make_finding())
    sink = fast_sink(server.url, memory_store)
    sink.send([finding])
    assert sink.flush(20)
    sink.close()
    assert alert_rows(memory_store) == [(finding.finding_id, "sent", 3)]
    assert len(server.received) == 3
    assert server.received[0].body == server.received[2].body


def test_rate_limit_waits_for_retry_after(
    webhook_server: ServerFactory,
    memory_store: Store,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    server = webhook_server([Reply(429, retry_after="1")])
    finding = store_finding(memory_store, make_finding())
    sink = fast_sink(server.url, memory_store)
    sink.send([finding])
    assert sink.flush(20)
    sink.close()
    assert alert_rows(memory_store) == [(finding.finding_id, "sent", 2)]
    first, second = server.received
    # the sink's own backoff is 10-50 ms: only the header explains a one-second wait
    assert second.at - first.at >= 0.95


def test_timeout_is_retried_then_sent(
    webhook_server: ServerFactory,
    memory_store: Store,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    server = webhook_server([Reply(delay_s=3.0)])
    finding = store_finding(memory_store, make_finding())
    sink = fast_sink(server.url, memory_store, timeout_s=0.3)
    sink.send([finding])
    assert sink.flush(20)
    sink.close()
    assert alert_rows(memory_store) == [(finding.finding_id, "sent", 2)]
    assert len(server.received) == 2


def test_request_failures_beyond_retries_end_failed_with_the_last_error(
    webhook_server: ServerFactory,
    memory_store: Store,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    server = webhook_server([Reply(500, body="still broken")] * 10)
    finding = store_finding(memory_store, make_finding())
    sink = fast_sink(server.url, memory_store, retries=2)
    sink.send([finding])
    assert sink.flush(20)
    sink.close()
    assert alert_rows(memory_store) == [(finding.finding_id, "failed", 3)]
    assert memory_store.query("SELECT error FROM alerts").scalar() == "HTTP 500: still broken"
    assert len(server.received) == 3
    assert (sink.sent, sink.failed) == (0, 1)


def test_client_error_fails_at_once_and_later_findings_still_go(
    webhook_server: ServerFactory,
    memory_store: Store,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    server = webhook_server([Reply(400, body="invalid_payload")])
    first = store_finding(memory_store, make_finding("first"))
    second = store_finding(memory_store, make_finding("second"))
    sink = fast_sink(server.url, memory_store)
    sink.send([first, second])
    assert sink.flush(20)
    sink.close()
    assert alert_rows(memory_store) == [
        (first.finding_id, "failed", 1),
        (second.finding_id, "sent", 1),
    ]
    errors = memory_store.query("SELECT error FROM alerts ORDER BY finding_id").column("error")
    assert errors == ["HTTP 400: invalid_payload", None]
    assert len(server.received) == 2


def test_down_webhook_loses_nothing_and_sends_each_finding_once_when_back(
    webhook_server: ServerFactory,
    memory_store: Store,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    port = free_port()
    findings = [store_finding(memory_store, make_finding(f"finding {n}")) for n in range(4)]
    sink = fast_sink(f"http://127.0.0.1:{port}/hook", memory_store, retries=0)
    sink.send(findings[:2])
    sink.send(findings[2:])

    def first_retried_twice() -> bool:
        return alert_rows(memory_store)[0][1:] >= ("retrying", 2)

    assert wait_until(first_retried_twice)
    # retries=0 does not apply: refused connections never use up an alert's retries
    assert {row[1] for row in alert_rows(memory_store)[1:]} == {"pending"}
    server = webhook_server(port=port)
    assert sink.flush(20)
    sink.close()
    rows = alert_rows(memory_store)
    assert [row[1] for row in rows] == ["sent"] * 4
    assert rows[0][2] > 2
    assert [row[2] for row in rows[1:]] == [1, 1, 1]
    assert server.texts == [
        f"[CRITICAL] oversight-config-modified run=run-000001 turn=4: finding {n}" for n in range(4)
    ]


def test_pending_alerts_are_sent_by_the_next_process(
    webhook_server: ServerFactory,
    tmp_path: Path,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    db = tmp_path / "traces.duckdb"
    down = f"http://127.0.0.1:{free_port()}/hook"
    with Store(db) as store:
        findings = [store_finding(store, make_finding(f"finding {n}")) for n in range(3)]
        sink = fast_sink(down, store, drain_s=0.3)
        sink.send(findings)
        assert wait_until(lambda: alert_rows(store)[0][1] == "retrying")
        sink.close()  # gives up draining: the store keeps them
        before = {row[0]: row[1:] for row in alert_rows(store)}
    assert before[findings[0].finding_id][0] == "retrying"
    assert before[findings[2].finding_id] == ("pending", 0)

    server = webhook_server()
    with Store(db) as store:
        sink = fast_sink(server.url, store)
        assert sink.flush(20)  # nothing sent to it in this process
        sink.close()
        rows = alert_rows(store)
    assert [row[1] for row in rows] == ["sent"] * 3
    assert rows[0][2] == before[findings[0].finding_id][1] + 1
    assert server.texts[0].endswith("finding 0")
    assert len(server.texts) == 3


def test_finding_stored_but_never_recorded_is_sent_after_a_crash(
    webhook_server: ServerFactory,
    memory_store: Store,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    """The engine stores a finding, then the sink records it as pending: a crash in
    between leaves a finding with no alert row, newer than the last one the sink saw."""
    server = webhook_server()
    seen = store_finding(memory_store, make_finding("seen"))
    memory_store.record_alert(
        f"{seen.finding_id}:webhook", seen.finding_id, "webhook", "sent", 1, seen.detected_at
    )
    later = make_finding(
        "stored just before the crash", detected_at=seen.detected_at.replace(minute=5)
    )
    quiet = make_finding(
        "below the sink's severity", severity=Severity.LOW, detected_at=later.detected_at
    )
    memory_store.write_findings([later, quiet])
    older = make_finding(
        "older than the last alert", detected_at=seen.detected_at.replace(year=2025)
    )
    memory_store.write_findings([older])
    sink = fast_sink(server.url, memory_store, min_severity="high")
    assert sink.flush(20)
    sink.close()
    assert server.texts == [
        "[CRITICAL] oversight-config-modified run=run-000001 turn=4: stored just before the crash"
    ]
    assert older.finding_id not in {row[0] for row in alert_rows(memory_store)}


def test_outbox_overflow_stays_in_the_store_and_is_delivered_in_order(
    webhook_server: ServerFactory,
    memory_store: Store,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    server = webhook_server([Reply(503)])  # holds the line while the queue overflows
    findings = [store_finding(memory_store, make_finding(f"finding {n}")) for n in range(7)]
    sink = fast_sink(server.url, memory_store, outbox_size=2)
    for finding in findings:
        sink.send([finding])
    assert sink.flush(20)
    sink.close()
    assert [row[1] for row in alert_rows(memory_store)] == ["sent"] * 7
    assert [text.rsplit(": ", 1)[1] for text in server.texts[1:]] == [
        f"finding {n}" for n in range(7)
    ]


def test_without_a_store_a_full_outbox_drops_and_counts(
    webhook_server: ServerFactory, make_finding: FindingFactory, fast_sink: SinkFactory
) -> None:
    server = webhook_server([Reply(delay_s=2.0)])  # long enough for a loaded machine
    sink = fast_sink(server.url, None, outbox_size=1)
    sink.send([make_finding("a")])
    assert wait_until(lambda: len(server.received) == 1)  # "a" is in flight
    sink.send([make_finding("b"), make_finding("c")])
    assert sink.flush(20)
    sink.close()
    assert sink.outbox.dropped == 1
    assert [text[-1] for text in server.texts] == ["a", "b"]


def test_send_returns_before_the_webhook_answers(
    webhook_server: ServerFactory,
    memory_store: Store,
    make_finding: FindingFactory,
    fast_sink: SinkFactory,
) -> None:
    server = webhook_server([Reply(delay_s=2.0)])
    finding = store_finding(memory_store, make_finding())
    sink = fast_sink(server.url, memory_store)
    sink.send([finding])
    # recorded as pending by send itself, before any answer
    assert alert_rows(memory_store) == [(finding.finding_id, "pending", 0)]
    assert sink.flush(20)
    sink.close()
    assert alert_rows(memory_store) == [(finding.finding_id, "sent", 1)]


def test_bad_url_and_options_are_refused() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        WebhookSink("ftp://example.org/hook")
    with pytest.raises(ValueError, match="timeout_s > 0"):
        WebhookSink("http://127.0.0.1:9/hook", timeout_s=0)


class CallCountingRecorder:
    """An AlertRecorder that keeps every call (no store behind it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], int]] = []

    def record(self, finding_id: str, sink: str, status: str, attempts: int, *_: Any) -> None:
        self.calls.append((status, [finding_id], attempts))

    def record_many(
        self, finding_ids: Sequence[str], sink: str, status: str, attempts: int, *_: Any
    ) -> None:
        self.calls.append((status, list(finding_ids), attempts))

    def pending(self, sink: str, limit: int) -> list[PendingAlert]:
        return []

    def unrecorded(self, sink: str, limit: int, min_level: int = 0) -> list[PendingAlert]:
        return []


def test_sent_statuses_are_recorded_in_batches_while_alerts_queue_up(
    webhook_server: ServerFactory, make_finding: FindingFactory, fast_sink: SinkFactory
) -> None:
    server = webhook_server([Reply(delay_s=0.5)])  # the rest queue up behind the first
    recorder = CallCountingRecorder()
    findings = [make_finding(f"finding {n}") for n in range(100)]
    sink = fast_sink(server.url, None, recorder=recorder)
    sink.send(findings)
    assert sink.flush(30)
    sent_calls = [call for call in recorder.calls if call[0] == "sent"]
    assert sorted(i for call in sent_calls for i in call[1]) == [f.finding_id for f in findings]
    assert len(sent_calls) < 10  # batches, not one write per alert
    assert [call[0] for call in recorder.calls[:1]] == ["pending"]
    assert len(server.received) == 100
