"""Where the engine's findings go, in order: the store, then each alert sink (with one
``alerts`` row per finding a sink accepted, when the store can record them; sinks with
``records_own_alerts`` — the webhook, dedupe/cooldown wrappers — write their own rows,
through the store given to their ``attach_recorder``); and the
finding the engine delivers when a monitor raises; closing what the engine owns.

Called only from the engine's worker thread (or from ``close`` once the worker stopped).
Nothing here raises: a failing store write or sink is logged, the other sinks still run.
"""

from __future__ import annotations

import hashlib
import json
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from driftwatch.core.clock import Clock
from driftwatch.core.ids import IdSource
from driftwatch.core.logging import get_logger
from driftwatch.core.protocols import FindingSink, NullSink
from driftwatch.core.records import Finding, SpanRecord
from driftwatch.monitor.base import error_finding

__all__ = [
    "FindingDelivery",
    "FindingStore",
    "close_components",
    "exception_finding",
    "finding_key",
    "in_stream_order",
    "stable_finding_id",
]

log = get_logger("driftwatch.monitor.engine.live")


class FindingStore(Protocol):
    """What the engine needs from :class:`driftwatch.store.Store`. If the store also has
    ``record_alert``, one ``alerts`` row is written per finding a sink accepted."""

    def write_findings(self, findings: Sequence[Finding]) -> Any: ...


class FindingDelivery:
    """Writes findings to the store, then hands them to each sink."""

    def __init__(
        self,
        store: FindingStore | None,
        sinks: Sequence[FindingSink],
        clock: Clock,
        *,
        record_alerts: bool,
    ) -> None:
        self.store = store
        self.sinks = [sink for sink in sinks if not isinstance(sink, NullSink)]
        self._clock = clock
        self._record_alerts = record_alerts and hasattr(store, "record_alert")
        self._self_recording = {id(sink) for sink in self.sinks if _records_own_alerts(sink)}
        if self._record_alerts:
            for sink in self.sinks:
                if id(sink) in self._self_recording:
                    _attach_store(sink, store)

    def deliver(self, findings: Sequence[Finding]) -> None:
        """Store, then send. A finding the store already had (same id: a replay after a
        crash, see ``MonitorEngine(stable_finding_ids=True)``) goes only to the sinks
        without an ``alerts`` row for it, so a replay neither repeats an alert nor loses
        one that a crash cut off between storing and sending."""
        if not findings:
            return
        sent_before: set[tuple[str, str]] | None = None
        if self.store is not None:
            sent_before = self._store(findings)
        rows: list[tuple[Any, ...]] = []
        for sink in self.sinks:
            batch = findings
            if sent_before:
                name = getattr(sink, "name", "")
                batch = [item for item in findings if (item.finding_id, name) not in sent_before]
                if not batch:
                    continue
            error: str | None = None
            try:
                sink.send(batch)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.exception("sink failed", sink=getattr(sink, "name", repr(sink)))
            if self._record_alerts and id(sink) not in self._self_recording:
                rows.extend(self._sent_rows(sink, batch, error))
        if rows:
            self._record(rows)

    def _store(self, findings: Sequence[Finding]) -> set[tuple[str, str]] | None:
        """Write the findings; return the (finding, sink) pairs already alerted among
        those stored before (None or empty: send every finding to every sink)."""
        write_new = getattr(self.store, "write_new_findings", None)
        try:
            if not callable(write_new):
                self.store.write_findings(findings)  # type: ignore[union-attr]
                return None
            new = write_new(findings)
            old = [item.finding_id for item in findings if item.finding_id not in new]
            if not old:
                return None
            alerted = getattr(self.store, "alerted", None)
            sent: set[tuple[str, str]] = alerted(old) if callable(alerted) else set()
            log.info("findings found again (a replay); alerting only where not sent",
                     count=len(old))
            return sent
        except Exception:
            log.exception("writing findings failed", count=len(findings))
            return None

    def _sent_rows(
        self, sink: FindingSink, findings: Sequence[Finding], error: str | None
    ) -> list[tuple[Any, ...]]:
        accepts = getattr(sink, "accepts", None)
        sent_at = self._clock.now()
        status = "failed" if error else "sent"
        return [
            (
                f"{item.finding_id}:{sink.name}",
                item.finding_id,
                sink.name,
                status,
                1,
                sent_at,
                error,
            )
            for item in findings
            if not callable(accepts) or accepts(item)
        ]

    def _record(self, rows: list[tuple[Any, ...]]) -> None:
        """Every sink's rows of one delivery in one statement when the store can (a
        single-row upsert costs milliseconds in DuckDB), after all sinks have sent."""
        batch = getattr(self.store, "record_alerts", None)
        try:
            if callable(batch):
                batch(rows)
                return
            for row in rows:
                self.store.record_alert(**dict(zip(_ALERT_COLUMNS, row, strict=True)))  # type: ignore[union-attr]
        except Exception:
            log.exception("recording alerts failed", sinks=sorted({row[2] for row in rows}))


_ALERT_COLUMNS = ("alert_id", "finding_id", "sink", "status", "attempts", "sent_at", "error")


def _records_own_alerts(sink: FindingSink) -> bool:
    return bool(getattr(sink, "records_own_alerts", False))


def _attach_store(sink: FindingSink, store: object) -> None:
    """Offer the store to a sink that records its own alerts (it keeps a recorder it
    already has)."""
    attach = getattr(sink, "attach_recorder", None)
    if not callable(attach):
        return
    try:
        attach(store)
    except Exception:
        log.exception("attaching the store to a sink failed", sink=getattr(sink, "name", ""))


def finding_key(finding: Finding) -> tuple[Any, ...]:
    """What a finding is about: two findings with the same key in one run differ only by
    their rank (the second recursive delete on the same span and turn, say)."""
    return (finding.run_id, finding.monitor, finding.rule_id, str(finding.kind),
            finding.span_id, finding.turn)


def stable_finding_id(key: tuple[Any, ...], rank: int) -> str:
    """A finding id from its :func:`finding_key` and rank: the same finding found again
    (a replay) gets the same id. ``f-`` and 32 hex digits, like random ids."""
    text = json.dumps([*key, rank], separators=(",", ":"), ensure_ascii=False)
    return "f-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def in_stream_order(
    found: list[Finding], by_run: Mapping[str, Sequence[SpanRecord]]
) -> list[Finding]:
    """Runs in first-arrival order, each run's findings in span order (monitor order for
    the same span); findings not tied to a span of this batch come last."""
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


def exception_finding(
    exc: Exception,
    monitor_name: str,
    monitor_spec: dict[str, Any],
    run_id: str,
    phase: str,
    ids: IdSource,
    clock: Clock,
    trace_id: str | None,
    turn: int | None,
) -> Finding:
    """The ``monitor_error`` finding for a monitor that raised (``rule_id`` = its name);
    the evidence says where (the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else None
    return error_finding(
        monitor_name=monitor_name,
        monitor_spec=monitor_spec,
        run_id=run_id,
        rule_id=monitor_name,
        error_type=type(exc).__name__,
        error=str(exc),
        phase=phase,
        ids=ids,
        clock=clock,
        trace_id=trace_id,
        turn=turn,
        details={"where": where} if where else None,
    )


def close_components(monitors: Sequence[object], sinks: Sequence[FindingSink]) -> None:
    """Close the monitors that have ``close``, then the sinks; log failures, never raise."""
    for monitor in monitors:
        close = getattr(monitor, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                log.exception("monitor close failed", monitor=getattr(monitor, "name", ""))
    for sink in sinks:
        try:
            sink.close()
        except Exception:
            log.exception("sink close failed", sink=getattr(sink, "name", repr(sink)))
