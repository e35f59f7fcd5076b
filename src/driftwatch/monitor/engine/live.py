"""The live monitor engine: spans in, findings out, without ever holding up the agent.

``submit`` only enqueues (on :class:`~driftwatch.core.microbatch.MicroBatcher`). One worker
thread takes micro-batches, groups them by run (arrival order kept), runs every monitor,
turns a monitor's exception into a ``monitor_error`` finding, then — in this order —
keeps the findings in memory, writes them to the store and hands them to each sink.

``end_run`` travels through the same queue as a marker, so a monitor sees all of a run's
records before its ``end_run``, and every monitor call happens on the worker thread.

After each round (every monitor has seen a micro-batch) the round's findings are shown to
the :class:`~driftwatch.monitor.base.FindingObserver` monitors (drift over violations).
Findings a :class:`~driftwatch.monitor.base.DeferredFindings` monitor (the LLM judge)
hands in from its own threads wait in an inbox that the worker drains before each batch
and at each ``end_run``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import repeat
from types import TracebackType
from typing import Any, Self, cast

from driftwatch.core.clock import SYSTEM_CLOCK, Clock
from driftwatch.core.ids import DEFAULT_IDS, IdSource
from driftwatch.core.logging import get_logger
from driftwatch.core.microbatch import MicroBatcher
from driftwatch.core.protocols import FindingSink
from driftwatch.core.records import Finding, SpanRecord
from driftwatch.monitor.base import (
    BaseMonitor,
    BatchObserver,
    DeferredFindings,
    FindingObserver,
    Monitor,
)
from driftwatch.monitor.engine.delivery import (
    FindingDelivery,
    FindingStore,
    close_components,
    exception_finding,
    finding_key,
    in_stream_order,
    stable_finding_id,
)
from driftwatch.store.span_batch import Row, SpanBatch

__all__ = ["FindingStore", "MonitorEngine"]

log = get_logger(__name__)


@dataclass(slots=True)
class _EndRun:
    """A run's end, in the queue after its records. ``discard``: forget the run instead
    (its end-of-run findings are dropped), then call ``then`` on the worker."""

    run_id: str
    final_state: Mapping[str, Any] | None
    done: threading.Event = field(default_factory=threading.Event)
    findings: list[Finding] = field(default_factory=list)
    discard: bool = False
    then: Callable[[], object] | None = None


class _Wake:
    """Queued when deferred findings arrive, so an idle worker drains the inbox."""

    __slots__ = ()


@dataclass(slots=True)
class _RunContext:
    trace_id: str | None = None
    turn: int | None = None
    reported_errors: set[tuple[str, str, str]] = field(default_factory=set)
    occurrences: dict[tuple[Any, ...], int] = field(default_factory=dict)


# A record of a SpanBatch, queued with its batch and row: the worker hands the monitors
# per-run sub-batches whose table is taken from the submitted batch's table.
_Row = Row
_Item = SpanRecord | _Row | _EndRun | _Wake


def _by_run(items: Sequence[SpanRecord | _Row]) -> dict[str, Sequence[SpanRecord]]:
    """Each run's records in arrival order (runs in first-arrival order): a list for
    submitted records, a :class:`SpanBatch` taken from the submitted batches for rows."""
    if not any(type(item) is tuple for item in items):  # records only (in-process runs)
        records: dict[str, list[SpanRecord]] = {}
        for record in cast(Sequence[SpanRecord], items):
            records.setdefault(record.run_id, []).append(record)
        return cast(dict[str, Sequence[SpanRecord]], records)
    grouped: dict[str, list[SpanRecord | _Row]] = {}
    for item in items:
        run_id = item[0].run_id if isinstance(item, tuple) else item.run_id
        grouped.setdefault(run_id, []).append(item)
    out: dict[str, Sequence[SpanRecord]] = {}
    for run_id, members in grouped.items():
        if all(isinstance(item, tuple) for item in members):
            out[run_id] = SpanBatch.gather(cast(list[_Row], members))
        else:  # a mix of both: the rule packs convert the records once per micro-batch
            out[run_id] = [item[0] if isinstance(item, tuple) else item for item in members]
    return out


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
    - ``stable_finding_ids=True`` replaces each finding's id with one derived from what
      it is about (run, monitor, rule, kind, span, turn, and its rank among the run's
      findings with that key), so evaluating a run's spans again from its start — a
      collector resuming after a crash — gives the same ids, and the store keeps one.
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
        keep_findings: bool = True,
        stable_finding_ids: bool = False,
    ) -> None:
        self._monitors = list(monitors)
        self._stable_ids = stable_finding_ids
        for item in self._monitors:
            if isinstance(item, BaseMonitor):
                item.bind(ids=ids, clock=clock)
        self._batch_capable = [isinstance(item, BatchObserver) for item in self._monitors]
        self._observers = [item for item in self._monitors if isinstance(item, FindingObserver)]
        self._delivery = FindingDelivery(store, sinks, clock, record_alerts=record_alerts)
        self._ids = ids
        self._clock = clock
        self._lock = threading.Lock()
        self._findings: list[Finding] = []
        self._keep_findings = keep_findings  # False: a long-lived engine (the collector)
        self._findings_count = 0
        self._inbox: deque[Finding] = deque()  # deferred findings: any thread → worker
        self._records_seen = 0
        self._batches = 0
        self._dropped = 0
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self._runs: dict[str, _RunContext] = {}  # worker thread only
        self._closed = False
        self._close_components = close_components
        self._batcher: MicroBatcher[_Item] = MicroBatcher(
            self._handle,
            name="driftwatch-monitor",
            max_batch=max_batch,
            max_delay_s=max_delay_s,
            max_pending=max_pending,
        )
        for item in self._monitors:
            if isinstance(item, DeferredFindings):
                item.bind_delivery(self._post_deferred)

    # --- producer side ------------------------------------------------------------------

    def submit(self, record: SpanRecord) -> None:
        """Enqueue one record. Never raises into the caller."""
        try:
            self._batcher.submit(record)
        except Exception:  # closed: the agent must not notice
            self._drop(1)

    def submit_many(self, records: Sequence[SpanRecord]) -> None:
        """:meth:`submit` for many records (one lock per chunk, not per record)."""
        try:
            self._batcher.submit_many(records)
        except Exception:  # closed: the agent must not notice
            self._drop(len(records))

    def submit_batch(self, batch: SpanBatch) -> None:
        """:meth:`submit_many` for a :class:`SpanBatch`: its records are built here (if
        they are not already) and each micro-batch the monitors see takes its Arrow
        rows from ``batch.table`` instead of converting the records back."""
        records = batch.records
        try:
            self._batcher.submit_many(list(zip(records, repeat(batch), range(len(records)))))
        except Exception:  # closed: the caller must not notice
            self._drop(len(records))

    def _drop(self, count: int) -> None:
        """Count records refused after ``close``; warn once."""
        with self._lock:
            first = self._dropped == 0
            self._dropped += count
        if first:
            log.warning("monitor engine is closed; dropping records")

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
        send what they find (with the run's deferred findings still in the inbox) and
        return it. On timeout (or after ``close``) returns [] (a late result is still
        stored and sent)."""
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

    def request_end_run(self, run_id: str, final_state: Mapping[str, Any] | None = None) -> bool:
        """Queue the run's end without waiting for it: evaluated after the records
        submitted before, its findings stored and sent like the others (``flush`` waits
        for it). False after ``close``. Ends many runs with one wait."""
        try:
            self._batcher.submit(_EndRun(run_id, final_state))
        except Exception:
            log.warning("monitor engine is closed; end_run ignored", run_id=run_id)
            return False
        return True

    def discard_run(self, run_ids: Sequence[str],
                    then: Callable[[], object] | None = None) -> bool:
        """Forget these runs after the records submitted before (each monitor's
        ``end_run`` is called and what it finds dropped, the run's deferred findings
        too), then call ``then`` on the worker thread, before any record submitted after.
        Used when a collector run is re-keyed: its spans are evaluated again under the
        new run id. Does not wait; False after ``close``."""
        markers = [_EndRun(run_id, None, discard=True) for run_id in run_ids]
        if markers:
            markers[-1].then = then
        try:
            self._batcher.submit_many(markers)
        except Exception:
            log.warning("monitor engine is closed; discard_run ignored", runs=list(run_ids))
            return False
        return True

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Flush and stop the worker (and close monitors and sinks if the engine owns
        them, see ``close_components``). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._batcher.close(timeout_s)
        if self._close_components:
            close_components(self._monitors, self._delivery.sinks)
        late = self._take_inbox()  # the worker has stopped: deliver here
        if late:
            log.warning("deferred findings arrived at close", count=len(late))
            self._deliver(late)

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
        """Everything found so far (in memory, in delivery order), optionally for one run;
        always empty with ``keep_findings=False`` (they are only stored and sent)."""
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
            return self._findings_count

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
                "findings": self._findings_count,
                "batches": self._batches,
                "dropped": self._dropped,
            }
        if latencies:
            out["batch_latency_p50_ms"] = statistics.median(latencies) * 1e3
            out["batch_latency_p95_ms"] = latencies[int(0.95 * (len(latencies) - 1))] * 1e3
            out["batch_latency_max_ms"] = latencies[-1] * 1e3
        return out

    # --- deferred findings (any thread) -------------------------------------------------

    def _post_deferred(self, findings: Sequence[Finding]) -> None:
        """What :class:`DeferredFindings` monitors deliver to: park the findings and wake
        the worker. Never raises; blocks only as backpressure (a full queue)."""
        if not findings:
            return
        with self._lock:
            was_empty = not self._inbox
            self._inbox.extend(findings)
        if not was_empty:  # a wake-up is already queued, or the worker is draining
            return
        try:
            self._batcher.submit(_Wake())
        except Exception:  # closed: close() delivers what is left in the inbox
            log.warning("monitor engine is closed; deferred findings wait for close")

    def _take_inbox(self) -> list[Finding]:
        with self._lock:
            taken = list(self._inbox)
            self._inbox.clear()
        return taken

    # --- worker side --------------------------------------------------------------------

    def _handle(self, batch: Sequence[_Item]) -> None:
        self._deliver(self._take_inbox())
        segment: list[SpanRecord | _Row] = []
        for item in batch:
            if isinstance(item, _Wake):
                continue
            if isinstance(item, _EndRun):
                if segment:
                    self._evaluate(segment)
                    segment = []
                self._finish(item)
            else:
                segment.append(item)
        if segment:
            self._evaluate(segment)

    def _evaluate(self, records: list[SpanRecord | _Row]) -> None:
        started = time.perf_counter()
        by_run = _by_run(records)
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
        if self._observers:
            found.extend(self._observe_findings(found, by_run))
        self._deliver(in_stream_order(found, by_run))
        for run_records in by_run.values():
            if isinstance(run_records, SpanBatch):  # made by SpanBatch.gather for this round
                run_records.release()  # monitors may keep them; not the source batch
        elapsed = time.perf_counter() - started
        with self._lock:
            self._records_seen += len(records)
            self._batches += 1
            self._latencies.append(elapsed)

    def _observe_findings(
        self, found: list[Finding], by_run: dict[str, Sequence[SpanRecord]]
    ) -> list[Finding]:
        """Show each run's findings of this round to the finding observers."""
        per_run: dict[str, list[Finding]] = {run_id: [] for run_id in by_run}
        for item in found:
            per_run.setdefault(item.run_id, []).append(item)
        out: list[Finding] = []
        for observer in self._observers:
            for run_id, items in per_run.items():
                try:
                    out.extend(cast(FindingObserver, observer).observe_findings(run_id, items))
                except Exception as exc:
                    out.extend(self._monitor_error(observer, run_id, exc, "observe_findings"))
        return out

    def _finish(self, marker: _EndRun) -> None:
        if marker.discard:
            self._discard(marker)
            return
        found: list[Finding] = []
        try:
            for monitor in self._monitors:
                try:
                    found.extend(monitor.end_run(marker.run_id, marker.final_state))
                except Exception as exc:
                    found.extend(self._monitor_error(monitor, marker.run_id, exc, "end_run"))
            deferred = self._take_inbox()  # a judge's end_run has stopped delivering this run
            found = [item for item in deferred if item.run_id == marker.run_id] + found
            self._deliver([item for item in deferred if item.run_id != marker.run_id] + found)
        finally:
            self._runs.pop(marker.run_id, None)
            marker.findings = found
            marker.done.set()

    def _discard(self, marker: _EndRun) -> None:
        try:
            for monitor in self._monitors:
                try:
                    monitor.end_run(marker.run_id, None)
                except Exception:
                    log.debug("end_run of a discarded run raised", run_id=marker.run_id,
                              monitor=getattr(monitor, "name", ""))
            deferred = self._take_inbox()
            self._deliver([item for item in deferred if item.run_id != marker.run_id])
            self._runs.pop(marker.run_id, None)
            if marker.then is not None:
                try:
                    marker.then()
                except Exception:
                    log.exception("after discarding a run", run_id=marker.run_id)
        finally:
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
        spec = dict(getattr(monitor, "spec", None) or {"name": name, "args": {}})
        return [
            exception_finding(
                exc,
                name,
                spec,
                run_id,
                phase,
                self._ids,
                self._clock,
                context.trace_id,
                context.turn,
            )
        ]

    def _stable(self, finding: Finding) -> Finding:
        context = self._runs.get(finding.run_id)
        if context is None:
            context = self._runs.setdefault(finding.run_id, _RunContext())
        key = finding_key(finding)
        rank = context.occurrences.get(key, 0)
        context.occurrences[key] = rank + 1
        return replace(finding, finding_id=stable_finding_id(key, rank))

    def _deliver(self, findings: list[Finding]) -> None:
        if not findings:
            return
        if self._stable_ids:
            findings = [self._stable(item) for item in findings]
        with self._lock:
            self._findings_count += len(findings)
            if self._keep_findings:
                self._findings.extend(findings)
        self._delivery.deliver(findings)
