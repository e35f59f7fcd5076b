"""Findings POSTed to a webhook (Slack-compatible JSON), one request per finding.

``send`` never waits on the network: it records each finding as ``pending`` and queues
it in an :class:`~driftwatch.alert.outbox.Outbox`; one background thread delivers in
order, with timeouts and retries (see :mod:`driftwatch.alert.retry` for which failures
are retried and how patiently), and records every attempt in the ``alerts`` table
(``retrying`` with the last error, then ``sent`` or ``failed``, with ``attempts``).

Guarantee, with a recorder (the store): every finding the sink accepted is delivered at
least once or ends ``failed`` with a reason; a webhook that is down only delays it. What
is still ``pending``/``retrying`` at close (or at a crash) is sent by the next process
that opens the store with a webhook sink of the same name. A crash between a successful
POST and recording ``sent`` sends that one finding again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from driftwatch.alert.base import BaseSink
from driftwatch.alert.outbox import Outbox, OutboxEntry
from driftwatch.alert.recorder import FAILED, RETRYING, SENT, AlertRecorder, as_recorder
from driftwatch.alert.registry import sink
from driftwatch.alert.retry import Backoff, Outcome, OutcomeKind, classify_error, classify_response
from driftwatch.alert.slack import finding_payload
from driftwatch.core.clock import SYSTEM_CLOCK, Clock
from driftwatch.core.logging import get_logger
from driftwatch.core.records import Finding, Severity

__all__ = ["WebhookSink"]

log = get_logger(__name__)

_POLL_S: Final = 0.2
USER_AGENT: Final = "driftwatch-webhook/1"
# Sent statuses are recorded in batches of up to this many while more alerts are queued
# (a single-row upsert costs milliseconds in DuckDB), and as soon as the queue is empty.
SENT_BATCH: Final = 64


def check_webhook_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL; ValueError naming the problem otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"webhook url must be an absolute http(s) URL, got {url!r}")
    return url


def redacted_url(url: str) -> str:
    """``scheme://host[:port]/…``: enough to tell webhooks apart in logs, no token."""
    parts = urlsplit(url)
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{rest}"


@sink("webhook")
class WebhookSink(BaseSink):
    """POSTs each accepted finding to ``url``. ``retries`` bounds retries of request
    failures (timeouts, 5xx); an unavailable endpoint (refused, 429, 502-504) is retried
    until it answers. Waits grow from ``backoff_s`` to ``max_backoff_s`` with jitter;
    ``Retry-After`` is honoured. ``close`` keeps delivering for up to ``drain_s``, then
    leaves the rest ``pending`` in the store."""

    records_own_alerts = True

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        headers: Mapping[str, str] | None = None,
        recorder: object | None = None,
        min_severity: Severity | str | int = Severity.INFO,
        name: str = "webhook",
        outbox_size: int = 10_000,
        drain_s: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
        backoff: Backoff | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(min_severity=min_severity)
        if timeout_s <= 0 or retries < 0 or backoff_s < 0 or max_backoff_s < backoff_s:
            raise ValueError(
                "webhook needs timeout_s > 0, retries >= 0 and 0 <= backoff_s <= max_backoff_s"
            )
        self.url = check_webhook_url(url)
        self.name = name
        self.retries = retries
        self.drain_s = drain_s
        self.sent = 0
        self.failed = 0
        self._clock = clock
        self._backoff = backoff or Backoff(backoff_s, max_backoff_s)
        self._client = httpx.Client(
            timeout=timeout_s,
            headers={"user-agent": USER_AGENT, **dict(headers or {})},
            follow_redirects=False,
            transport=transport,
        )
        self.outbox = Outbox(name, outbox_size, self.accepts, min_level=int(self.min_severity))
        self._closing = threading.Event()  # deliver what is queued, then stop
        self._halt = threading.Event()  # stop now; the store keeps the rest
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._recorder: AlertRecorder | None = None
        self._sent: dict[int, list[str]] = {}  # attempts → finding ids not yet recorded
        self._sent_count = 0
        if recorder is not None:
            self.attach_recorder(recorder)

    # --- the sink contract ------------------------------------------------------------

    def attach_recorder(self, recorder: object) -> None:
        """Record delivery status through ``recorder`` (a store or an AlertRecorder) and
        read back what earlier processes left pending. Ignored if one is attached."""
        if self._recorder is not None:
            return
        self._recorder = as_recorder(recorder)
        self.outbox.attach(self._recorder)
        self._start()

    def deliver(self, findings: Sequence[Finding]) -> None:
        if self._closing.is_set():
            raise RuntimeError(f"webhook sink {self.name} is closed")
        self._start()
        self.outbox.put(findings)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything queued reached a final status (True) or the timeout."""
        return self.outbox.wait_idle(timeout_s)

    def close(self) -> None:
        """Deliver what is queued for up to ``drain_s``, then stop. Idempotent."""
        self._closing.set()
        thread = self._thread
        if thread is not None:
            thread.join(self.drain_s)
            self._halt.set()
            thread.join()
        left = len(self.outbox)
        if left:
            where = "pending in the store" if self._recorder is not None else "lost"
            log.warning(
                "webhook closed with undelivered alerts", sink=self.name, count=left, left=where
            )
        self._client.close()

    @property
    def spec(self) -> dict[str, Any]:
        """As registered, minus secrets: a webhook URL's path and query (Slack's carry the
        token) and header values are redacted."""
        spec = dict(BaseSink.spec.fget(self))  # type: ignore[attr-defined]
        args = dict(spec.get("args", {}))
        if "url" in args:
            args["url"] = redacted_url(str(args["url"]))
        if args.get("headers"):
            args["headers"] = dict.fromkeys(args["headers"], "***")
        return {**spec, "args": args}

    @spec.setter
    def spec(self, value: dict[str, Any]) -> None:
        self._spec = value

    # --- the delivery thread ----------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"driftwatch-{self.name}", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        try:
            while not self._halt.is_set():
                entry = self.outbox.get(_POLL_S)
                if entry is None:
                    if self._closing.is_set() and not len(self.outbox):
                        return
                    continue
                self._deliver_and_release(entry)
        finally:
            self._record_sent()

    def _deliver_and_release(self, entry: OutboxEntry) -> None:
        try:
            self._deliver_entry(entry)
        except Exception:  # never let the thread die: the rest would wait forever
            log.exception("webhook delivery crashed", finding_id=entry.finding.finding_id)
        finally:
            # before the queue runs dry, so a read of the store never sees a sent alert
            # as pending
            if self._sent_count >= SENT_BATCH or self.outbox.queued() == 0:
                self._record_sent()
            self.outbox.done(entry)

    def _deliver_entry(self, entry: OutboxEntry) -> None:
        """Try until the entry is final or the sink halts (then it stays in the store)."""
        failures = 0
        for_this_request = 0
        while True:
            entry.attempts += 1
            outcome = self._post(entry.finding)
            if outcome.kind is OutcomeKind.SENT:
                self.sent += 1
                self._sent.setdefault(entry.attempts, []).append(entry.finding.finding_id)
                self._sent_count += 1
                return
            failures += 1
            if outcome.kind is OutcomeKind.RETRYABLE:
                for_this_request += 1
            if outcome.kind is OutcomeKind.REJECTED or for_this_request > self.retries:
                self.failed += 1
                self._record(entry, FAILED, outcome.error)
                log.warning(
                    "webhook alert failed",
                    sink=self.name,
                    error=outcome.error,
                    attempts=entry.attempts,
                )
                return
            self._record(entry, RETRYING, outcome.error)
            if self._halt.wait(self._backoff.delay(failures, outcome.retry_after_s)):
                return

    def _post(self, finding: Finding) -> Outcome:
        try:
            response = self._client.post(self.url, json=finding_payload(finding))
        except httpx.HTTPError as exc:
            return classify_error(exc)
        return classify_response(response)

    def _record_sent(self) -> None:
        """Record the alerts sent since the last call, one batch per attempt count. A
        crash before this sends them again (at least once)."""
        sent, self._sent, self._sent_count = self._sent, {}, 0
        if self._recorder is None or not sent:
            return
        at = self._clock.now()
        try:
            for attempts, finding_ids in sent.items():
                self._recorder.record_many(finding_ids, self.name, SENT, attempts, at)
        except Exception:
            log.exception("recording sent alerts failed", sink=self.name)

    def _record(self, entry: OutboxEntry, status: str, error: str | None) -> None:
        if self._recorder is None:
            return
        try:
            self._recorder.record(
                entry.finding.finding_id,
                self.name,
                status,
                entry.attempts,
                self._clock.now(),
                error,
            )
        except Exception:
            log.exception("recording alert status failed", sink=self.name, status=status)
