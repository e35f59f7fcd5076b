"""Alert delivery records: one ``alerts`` row per (finding, sink), written through a
recorder, so SQL tells what happened to every finding a sink accepted.

Statuses: ``pending`` (accepted, not yet tried), ``retrying`` (tried, will be tried
again), ``sent``, ``failed`` (given up) and ``suppressed`` (dedupe or cooldown held it
back). ``pending`` and ``retrying`` are not final: a sink with an outbox reads them back
after a restart (:meth:`StoreRecorder.pending`). The store is the source of truth; the
alert package reaches it only through the small protocol below (it never imports
``driftwatch.store``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from driftwatch.core.logging import get_logger
from driftwatch.core.records import Finding, FindingKind, Severity

__all__ = [
    "FAILED",
    "FINAL_STATUSES",
    "PENDING",
    "RETRYING",
    "SENT",
    "SUPPRESSED",
    "AlertRecorder",
    "CountingRecorder",
    "PendingAlert",
    "StoreRecorder",
    "alert_id",
    "as_recorder",
]

log = get_logger(__name__)

PENDING: Final = "pending"
RETRYING: Final = "retrying"
SENT: Final = "sent"
FAILED: Final = "failed"
SUPPRESSED: Final = "suppressed"
FINAL_STATUSES: Final = frozenset({SENT, FAILED, SUPPRESSED})


def alert_id(finding_id: str, sink_name: str) -> str:
    """The ``alerts`` key: one row per finding and sink."""
    return f"{finding_id}:{sink_name}"


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """A finding whose delivery to a sink is not final, and the attempts made so far."""

    finding: Finding
    attempts: int


class AlertRecorder(Protocol):
    """Where sinks write delivery status. Implementations must be thread-safe: a sink's
    background thread records while the engine's worker thread records new findings."""

    def record(
        self,
        finding_id: str,
        sink: str,
        status: str,
        attempts: int,
        at: datetime | None,
        error: str | None = None,
    ) -> None: ...

    def record_many(
        self,
        finding_ids: Sequence[str],
        sink: str,
        status: str,
        attempts: int,
        at: datetime | None,
        error: str | None = None,
    ) -> None:
        """The same status for several findings (one statement when the store can)."""
        ...

    def pending(self, sink: str, limit: int) -> list[PendingAlert]:
        """Non-final alerts of ``sink`` in detection order, oldest first."""
        ...

    def unrecorded(self, sink: str, limit: int, min_level: int = 0) -> list[PendingAlert]:
        """Findings at or above severity level ``min_level``, stored no earlier than the
        newest one ``sink`` has an alert row for, without one of their own (a crash
        between storing and recording them)."""
        ...


class RawAlertStore(Protocol):
    """The part of :class:`driftwatch.store.Store` the recorder uses."""

    def record_alert(
        self,
        alert_id: str,
        finding_id: str | None,
        sink: str,
        status: str,
        attempts: int,
        sent_at: datetime | None,
        error: str | None = None,
    ) -> None: ...


_FINDING_COLUMNS: Final = """
f.finding_id, f.run_id, f.trace_id, f.span_id, f.turn, f.monitor, f.rule_id, f.kind,
f.severity, f.message, CAST(f.evidence AS VARCHAR) AS evidence, f.detected_at,
CAST(f.monitor_spec AS VARCHAR) AS monitor_spec"""

_PENDING_SQL: Final = f"""
SELECT {_FINDING_COLUMNS}, a.attempts
FROM alerts a JOIN findings f USING (finding_id)
WHERE a.sink = $sink AND a.status IN ('pending', 'retrying')
ORDER BY f.detected_at, f.finding_id
LIMIT $limit
"""

# The engine stores a finding a moment before the sink records it as pending; a crash
# in between must not lose it. So: findings stored no earlier than the newest finding
# this sink has a row for, without a row of their own. A sink new to this database has
# no rows, so nothing old is replayed.
_UNRECORDED_SQL: Final = f"""
WITH mine AS (SELECT finding_id FROM alerts WHERE sink = $sink)
SELECT {_FINDING_COLUMNS}, 0 AS attempts
FROM findings f ANTI JOIN mine USING (finding_id)
WHERE f.severity_level >= $min_level
  AND f.detected_at >= (SELECT max(g.detected_at) FROM findings g SEMI JOIN mine USING (finding_id))
ORDER BY f.detected_at, f.finding_id
LIMIT $limit
"""


def _json(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {"value": value}


def _finding_from_row(row: dict[str, Any]) -> Finding:
    return Finding(
        finding_id=row["finding_id"],
        run_id=row["run_id"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        turn=row["turn"],
        monitor=row["monitor"],
        rule_id=row["rule_id"],
        kind=FindingKind(row["kind"]),
        severity=Severity.parse(row["severity"]),
        message=row["message"] or "",
        evidence=_json(row["evidence"]),
        detected_at=row["detected_at"],
        monitor_spec=_json(row["monitor_spec"]),
    )


class StoreRecorder:
    """Records into a store's ``alerts`` table; reads pending alerts back with SQL when
    the store can be queried (a :class:`driftwatch.store.Store` can)."""

    def __init__(self, store: RawAlertStore) -> None:
        self.store = store

    def record(
        self,
        finding_id: str,
        sink: str,
        status: str,
        attempts: int,
        at: datetime | None,
        error: str | None = None,
    ) -> None:
        self.store.record_alert(
            alert_id=alert_id(finding_id, sink),
            finding_id=finding_id,
            sink=sink,
            status=status,
            attempts=attempts,
            sent_at=at,
            error=error,
        )

    def record_many(
        self,
        finding_ids: Sequence[str],
        sink: str,
        status: str,
        attempts: int,
        at: datetime | None,
        error: str | None = None,
    ) -> None:
        """One batch upsert if the store has ``record_alerts`` (a single-row upsert costs
        milliseconds on a loaded machine), else row by row."""
        batch = getattr(self.store, "record_alerts", None)
        if not callable(batch):
            for finding_id in finding_ids:
                self.record(finding_id, sink, status, attempts, at, error)
            return
        batch(
            [
                (alert_id(finding_id, sink), finding_id, sink, status, attempts, at, error)
                for finding_id in finding_ids
            ]
        )

    def pending(self, sink: str, limit: int) -> list[PendingAlert]:
        return self._read(_PENDING_SQL, sink, limit)

    def unrecorded(self, sink: str, limit: int, min_level: int = 0) -> list[PendingAlert]:
        return self._read(_UNRECORDED_SQL, sink, limit, min_level=min_level)

    def _read(self, sql: str, sink: str, limit: int, **more: int) -> list[PendingAlert]:
        query = getattr(self.store, "query", None)
        if not callable(query):
            return []
        rows = query(sql, {"sink": sink, "limit": limit, **more}).to_dicts()
        return [PendingAlert(_finding_from_row(row), int(row["attempts"])) for row in rows]


StatusListener = Callable[[str, str], None]


class CountingRecorder:
    """Tells listeners (sink, status) for every status recorded (the Prometheus sink
    counts them), then records into ``inner`` if there is one."""

    def __init__(
        self, inner: AlertRecorder | None, listeners: Sequence[StatusListener] = ()
    ) -> None:
        self.inner = inner
        self.listeners = list(listeners)

    def record(
        self,
        finding_id: str,
        sink: str,
        status: str,
        attempts: int,
        at: datetime | None,
        error: str | None = None,
    ) -> None:
        for listener in self.listeners:
            try:
                listener(sink, status)
            except Exception:
                log.exception("alert status listener failed", sink=sink)
        if self.inner is not None:
            self.inner.record(finding_id, sink, status, attempts, at, error)

    def record_many(
        self,
        finding_ids: Sequence[str],
        sink: str,
        status: str,
        attempts: int,
        at: datetime | None,
        error: str | None = None,
    ) -> None:
        for listener in self.listeners:
            try:
                for _ in finding_ids:
                    listener(sink, status)
            except Exception:
                log.exception("alert status listener failed", sink=sink)
        if self.inner is not None:
            self.inner.record_many(finding_ids, sink, status, attempts, at, error)

    def pending(self, sink: str, limit: int) -> list[PendingAlert]:
        return [] if self.inner is None else self.inner.pending(sink, limit)

    def unrecorded(self, sink: str, limit: int, min_level: int = 0) -> list[PendingAlert]:
        return [] if self.inner is None else self.inner.unrecorded(sink, limit, min_level)


def as_recorder(target: object) -> AlertRecorder:
    """A recorder as is; a store (anything with ``record_alert``) wrapped in
    :class:`StoreRecorder`."""
    if hasattr(target, "pending") and hasattr(target, "record_many"):
        return target  # type: ignore[return-value]
    if hasattr(target, "record_alert"):
        return StoreRecorder(target)
    raise TypeError(f"cannot record alerts into {type(target).__name__}")
