"""Live findings for ``GET /v1/findings/stream`` (``driftwatch watch``).

:class:`FindingBroadcast` is one more sink on the engine: it hands each finding, as one
JSON line, to every connected subscriber's queue on the server's event loop. A slow
subscriber never holds up the engine: its queue is bounded and, when full, the oldest
lines are dropped (and counted). Lines are ``Finding.to_dict()`` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from driftwatch.alert.base import BaseSink
from driftwatch.core.records import Finding, FindingKind, Severity

__all__ = ["FindingBroadcast", "Subscription", "finding_from_dict"]


class Subscription:
    """One client's queue of JSON lines, filtered by severity."""

    def __init__(self, loop: asyncio.AbstractEventLoop, min_severity: Severity,
                 max_lines: int) -> None:
        self.loop = loop
        self.min_severity = min_severity
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(max_lines)
        self.dropped = 0

    def put(self, line: bytes) -> None:
        """Event-loop thread only."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(line)


class FindingBroadcast(BaseSink):
    """A sink that fans findings out to the stream's subscribers (never blocks)."""

    name = "stream"
    records_own_alerts = True  # a live view, not a destination: no ``alerts`` rows

    def __init__(self, max_lines: int = 1000) -> None:
        super().__init__(min_severity=Severity.INFO)
        self._max_lines = max_lines
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self, loop: asyncio.AbstractEventLoop,
                  min_severity: Severity) -> Subscription:
        subscription = Subscription(loop, min_severity, self._max_lines)
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def deliver(self, findings: Sequence[Finding]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        if not subscribers:
            return
        lines = [
            (finding.severity,
             json.dumps(finding.to_dict(), ensure_ascii=False, default=str).encode() + b"\n")
            for finding in findings
        ]
        for subscription in subscribers:
            for severity, line in lines:
                if severity >= subscription.min_severity:
                    try:
                        subscription.loop.call_soon_threadsafe(subscription.put, line)
                    except RuntimeError:  # the loop is closed: the server is stopping
                        return


def finding_from_dict(data: Mapping[str, Any]) -> Finding:
    """The inverse of ``Finding.to_dict`` (for ``driftwatch watch``). Raises
    ``KeyError``/``ValueError`` on a line that is not a finding."""
    turn = data.get("turn")
    return Finding(
        finding_id=str(data["finding_id"]),
        run_id=str(data["run_id"]),
        trace_id=data.get("trace_id"),
        span_id=data.get("span_id"),
        turn=int(turn) if turn is not None else None,
        monitor=str(data.get("monitor", "")),
        rule_id=str(data["rule_id"]),
        kind=FindingKind(data.get("kind", "violation")),
        severity=Severity.parse(data["severity"]),
        message=str(data.get("message", "")),
        evidence=dict(data.get("evidence") or {}),
        detected_at=datetime.fromisoformat(str(data["detected_at"])),
        monitor_spec=dict(data.get("monitor_spec") or {}),
    )
