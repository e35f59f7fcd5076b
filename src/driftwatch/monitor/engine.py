"""The live monitor engine: spans in, findings out, without ever holding up the agent.

``submit`` only enqueues (on :class:`~driftwatch.core.batching.MicroBatcher`). One worker
thread takes micro-batches, groups them by run (arrival order kept), runs every monitor,
turns a monitor's exception into a ``monitor_error`` finding, then — in this order —
keeps the findings in memory, writes them to the store and hands them to each sink.

``end_run`` travels through the same queue as a marker, so a monitor sees all of a run's
records before its ``end_run``, and every monitor call happens on the worker thread.
"""

from __future__ import annotations

import statistics
import threading
import time
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

from driftwatch.core.batching import MicroBatcher
from driftwatch.core.clock import SYSTEM_CLOCK, Clock
from driftwatch.core.ids import DEFAULT_IDS, IdSource
from driftwatch.core.logging import get_logger
from driftwatch.core.protocols import FindingSink, NullSink
from driftwatch.core.records import Finding, SpanRecord
from driftwatch.monitor.base import BaseMonitor, BatchObserver, Monitor, error_finding

__all__ = ["FindingStore", "MonitorEngine"]

log = get_logger(__name__)


class FindingStore(Protocol):
    """What the engine needs from :class:`driftwatch.store.Store`. If the store also has
    ``record_alert``, one ``alerts`` row is written per finding a sink accepted."""

    def write_findings(self, findings: Sequence[Finding]) -> Any: ...


@dataclass(slots=True)
class _EndRun:
    run_id: str
    final_state: Mapping[str, Any] | None
    done: threading.Event = field(default_factory=threading.Event)
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class _RunContext:
    trace_id: str | None = None
    turn: int | None = None
    reported_errors: set[tuple[str, str, str]] = field(default_factory=set)


class MonitorEngine:
    """Runs monitors on a live stream of :class:`SpanRecord`. A ``RecordConsumer``
    (``submit``/``flush``/``close``), thread-safe, usable as a context manager.

    - ``submit`` never raises and blocks only as backpressure, when ``max_pending``
      records are already waiting. After ``close`` records are dropped (counted, logged).
    - A monitor exception becomes one ``monitor_error`` finding per run and distinct
      error (``rule_id`` = monitor name); the same error again in that run is only counted.
    - A failing store write or sink is logged; the other sinks still get the findings.
    - ``close`` stops the worker. Like every ``RecordConsumer`` it does not close what it
      was given (store, sinks, monitors) unless ``close_components=True``, in which case
      it closes the sinks and the monitors that have ``close`` (never the store).
    """

    def __init__(
        self,
        monitors: Sequence[Monitor],
        *,
        store: FindingStore | None = None,
        sinks: Sequence[FindingSink] = (),
        ids: IdSource = DEFAULT_IDS,
        clock: Clock = SYSTEM_CLOCK,
        max_batch: int = 512,
        max_delay_s: float = 0.02,
        max_pending: int = 100_000,
        record_alerts: bool = True,
        latency_window: int = 1024,
        close_components: bool = False,
    ) -> None:
        self._monitors = list(monitors)
        for item in self._monitors:
            if isinstance(item, BaseMonitor):
                item.bind(ids=ids, clock=clock)
        self._batch_capable = [isinstance(item, BatchObserver) for item in self._monitors]
        self._store = store
        self._sinks = [sink for sink in sinks if not isinstance(sink, NullSink)]
        self._ids = ids
        self._clock = clock
        self._record_alerts = record_alerts and hasattr(store, "record_alert")
        self._lock = threading.Lock()
        self._findings: list[Finding] = []
        self._records_seen = 0
        self._batches = 0
        self._dropped = 0
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self._runs: dict[str, _RunContext] = {}  # worker thread only
        self._closed = False
        self._close_components = close_components
        self._batcher: MicroBatcher[SpanRecord | _EndRun] = MicroBatcher(
            self._handle,
            name="driftwatch-monitor",
            max_batch=max_batch,
            max_delay_s=max_delay_s,
            max_pending=max_pending,
        )

    # --- producer side ------------------------------------------------------------------

    def submit(self, record: SpanRecord) -> None:
        """Enqueue one record. Never raises into the caller."""
        try:
            self._batcher.submit(record)
        except Exception:  # closed: the agent must not notice
            with self._lock:
                self._dropped += 1
                first = self._dropped == 1
            if first:
                log.warning("monitor engine is closed; dropping records")

    def submit_many(self, records: Sequence[SpanRecord]) -> None:
        for record in records:
            self.submit(record)

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Wait until every record submitted so far is evaluated, stored and sent."""
        return self._batcher.flush(timeout_s)

    def end_run(
        self,
        run_id: str,
        final_state: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = 60.0,
    ) -> list[Finding]:
        """Evaluate the run's pending records, then every monitor's ``end_run``; store and
        send what they find and return it. On timeout (or after ``close``) returns []
        (a late result is still stored and sent)."""
        marker = _EndRun(run_id, final_state)
        try:
            self._batcher.submit(marker)
        except Exception:
            log.warning("monitor engine is closed; end_run ignored", run_id=run_id)
            return []
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._batcher.flush(timeout_s)  # also tells the worker not to wait for a fuller batch
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not marker.done.wait(remaining):
            log.warning("end_run timed out", run_id=run_id, timeout_s=timeout_s)
            return []
        return list(marker.findings)

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Flush and stop the worker (and close monitors and sinks if the engine owns
        them, see ``close_components``). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._batcher.close(timeout_s)
        if self._close_components:
            self._close_components_now()

    def _close_components_now(self) -> None:
        for monitor in self._monitors:
            close = getattr(monitor, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("monitor close failed", monitor=getattr(monitor, "name", ""))
        for sink in self._sinks:
            try:
                sink.close()
            except Exception:
                log.exception("sink close failed", sink=getattr(sink, "name", repr(sink)))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- results and stats ------------------------------------------------------------

    def findings(self, run_id: str | None = None) -> list[Finding]:
        """Everything found so far (in memory, in delivery order), optionally for one run."""
        with self._lock:
            if run_id is None:
                return list(self._findings)
            return [item for item in self._findings if item.run_id == run_id]

    @property
    def monitors(self) -> list[Monitor]:
        return list(self._monitors)

    @property
    def records_seen(self) -> int:
        with self._lock:
            return self._records_seen

    @property
    def findings_count(self) -> int:
        with self._lock:
            return len(self._findings)

    @property
    def dropped(self) -> int:
        """Records submitted after ``close``."""
        with self._lock:
            return self._dropped

    @property
    def batch_latencies_s(self) -> list[float]:
        """Evaluation time of the last ``latency_window`` micro-batches (monitors +
        store + sinks), in seconds."""
        with self._lock:
            return list(self._latencies)

    def stats(self) -> dict[str, float | int]:
        latencies = sorted(self.batch_latencies_s)
        with self._lock:
            out: dict[str, float | int] = {
                "records_seen": self._records_seen,
                "findings": len(self._findings),
                "batches": self._batches,
                "dropped": self._dropped,
            }
        if latencies:
            out["batch_latency_p50_ms"] = statistics.median(latencies) * 1e3
            out["batch_latency_p95_ms"] = latencies[int(0.95 * (len(latencies) - 1))] * 1e3
            out["batch_latency_max_ms"] = latencies[-1] * 1e3
        return out

    # --- worker side --------------------------------------------------------------------

    def _handle(self, batch: Sequence[SpanRecord | _EndRun]) -> None:
        segment: list[SpanRecord] = []
        for item in batch:
            if isinstance(item, _EndRun):
                if segment:
                    self._evaluate(segment)
                    segment = []
                self._finish(item)
            else:
                segment.append(item)
        if segment:
            self._evaluate(segment)

    def _evaluate(self, records: list[SpanRecord]) -> None:
        started = time.perf_counter()
        by_run: dict[str, list[SpanRecord]] = {}
        for record in records:
            by_run.setdefault(record.run_id, []).append(record)
        for run_id, run_records in by_run.items():
            context = self._runs.get(run_id) or self._runs.setdefault(run_id, _RunContext())
            context.trace_id = context.trace_id or run_records[0].trace_id
            turns = [r.turn for r in run_records if r.turn is not None]
            if turns:
                context.turn = max(turns if context.turn is None else [*turns, context.turn])
        found: list[Finding] = []
        for monitor, batch_capable in zip(self._monitors, self._batch_capable, strict=True):
            if batch_capable:
                try:
                    per_run = monitor.observe_batch(by_run)  # type: ignore[attr-defined]
                    found.extend(item for items in per_run.values() for item in items)
                except Exception as exc:
                    for run_id in by_run:
                        found.extend(self._monitor_error(monitor, run_id, exc, "observe"))
                continue
            for run_id, run_records in by_run.items():
                try:
                    found.extend(monitor.observe(run_id, run_records))
                except Exception as exc:
                    found.extend(self._monitor_error(monitor, run_id, exc, "observe"))
        self._deliver(self._in_stream_order(found, by_run))
        elapsed = time.perf_counter() - started
        with self._lock:
            self._records_seen += len(records)
            self._batches += 1
            self._latencies.append(elapsed)

    @staticmethod
    def _in_stream_order(
        found: list[Finding], by_run: dict[str, list[SpanRecord]]
    ) -> list[Finding]:
        """Runs in first-arrival order, each run's findings in span order (monitor order
        for the same span); findings not tied to a span of this batch come last."""
        if len(found) < 2:
            return found
        run_position = {run_id: n for n, run_id in enumerate(by_run)}
        span_position = {
            (run_id, record.span_id): n
            for run_id, records in by_run.items()
            for n, record in enumerate(records)
        }
        last = len(span_position) + 1
        return sorted(
            found,
            key=lambda item: (
                run_position.get(item.run_id, len(run_position)),
                span_position.get((item.run_id, item.span_id or ""), last),
            ),
        )

    def _finish(self, marker: _EndRun) -> None:
        found: list[Finding] = []
        try:
            for monitor in self._monitors:
                try:
                    found.extend(monitor.end_run(marker.run_id, marker.final_state))
                except Exception as exc:
                    found.extend(self._monitor_error(monitor, marker.run_id, exc, "end_run"))
            self._deliver(found)
        finally:
            self._runs.pop(marker.run_id, None)
            marker.findings = found
            marker.done.set()

    def _monitor_error(
        self, monitor: Monitor, run_id: str, exc: Exception, phase: str
    ) -> list[Finding]:
        name = getattr(monitor, "name", "") or type(monitor).__name__
        context = self._runs.get(run_id) or self._runs.setdefault(run_id, _RunContext())
        key = (name, type(exc).__name__, str(exc))
        if key in context.reported_errors:
            return []
        context.reported_errors.add(key)
        log.warning("monitor raised", monitor=name, run_id=run_id, phase=phase, error=repr(exc))
        frames = traceback.extract_tb(exc.__traceback__)
        where = (
            f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else None
        )
        return [
            error_finding(
                monitor_name=name,
                monitor_spec=dict(getattr(monitor, "spec", None) or {"name": name, "args": {}}),
                run_id=run_id,
                rule_id=name,
                error_type=type(exc).__name__,
                error=str(exc),
                phase=phase,
                ids=self._ids,
                clock=self._clock,
                trace_id=context.trace_id,
                turn=context.turn,
                details={"where": where} if where else None,
            )
        ]

    def _deliver(self, findings: list[Finding]) -> None:
        if not findings:
            return
        with self._lock:
            self._findings.extend(findings)
        if self._store is not None:
            try:
                self._store.write_findings(findings)
            except Exception:
                log.exception("writing findings failed", count=len(findings))
        for sink in self._sinks:
            error: str | None = None
            try:
                sink.send(findings)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.exception("sink failed", sink=getattr(sink, "name", repr(sink)))
            if self._record_alerts:
                self._record_sent(sink, findings, error)

    def _record_sent(self, sink: FindingSink, findings: list[Finding], error: str | None) -> None:
        accepts = getattr(sink, "accepts", None)
        sent_at = self._clock.now()
        try:
            for item in findings:
                if callable(accepts) and not accepts(item):
                    continue
                self._store.record_alert(  # type: ignore[union-attr]
                    alert_id=f"{item.finding_id}:{sink.name}",
                    finding_id=item.finding_id,
                    sink=sink.name,
                    status="failed" if error else "sent",
                    attempts=1,
                    sent_at=sent_at,
                    error=error,
                )
        except Exception:
            log.exception("recording alerts failed", sink=sink.name)
