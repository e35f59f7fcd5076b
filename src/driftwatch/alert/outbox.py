"""The line of findings waiting for one sink: bounded in memory, persistent in the store.

The store is the source of truth. ``put`` records each finding as ``pending`` before it
is queued, so a finding the store accepted is either in memory or findable by SQL. When
memory is full, findings stay ``pending`` in the store only and are read back
(:meth:`AlertRecorder.pending`) once the queue drains; later findings queue behind them
in the store, so order holds. When a recorder is attached the same read runs at once
(before any new finding), so alerts left ``pending``/``retrying`` by a previous process
go first, with findings a crash left without any row (:meth:`AlertRecorder.unrecorded`).
Without a store the outbox is memory only: a full queue drops (counted, logged).

Thread-safety: ``put`` runs on the engine's worker thread, ``get``/``done`` on the sink's
delivery thread; all state is under one condition variable. Store reads and writes
happen outside it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from driftwatch.alert.recorder import PENDING, AlertRecorder, PendingAlert
from driftwatch.core.logging import get_logger
from driftwatch.core.records import Finding

__all__ = ["Outbox", "OutboxEntry"]

log = get_logger(__name__)


@dataclass(slots=True)
class OutboxEntry:
    finding: Finding
    attempts: int = 0


class Outbox:
    """FIFO of findings for the sink named ``sink_name``, at most ``capacity`` in memory.
    ``accepts`` filters findings read back from the store (the sink's severity rule)."""

    def __init__(
        self,
        sink_name: str,
        capacity: int,
        accepts: Callable[[Finding], bool],
        recorder: AlertRecorder | None = None,
        min_level: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"outbox capacity must be at least 1, got {capacity}")
        self.sink_name = sink_name
        self.capacity = capacity
        self.accepts = accepts
        self.min_level = min_level  # lets SQL skip findings ``accepts`` would refuse
        self.recorder: AlertRecorder | None = None
        self.dropped = 0
        self._queue: deque[OutboxEntry] = deque()
        self._known: set[str] = set()  # queued or in flight
        self._in_flight = 0
        self._unread_in_store = False
        self._left_in_store = 0  # findings ``put`` left to the store, ever
        self._changed = threading.Condition()
        if recorder is not None:
            self.attach(recorder)

    def attach(self, recorder: AlertRecorder) -> None:
        """Start recording through ``recorder`` and read back, now, what an earlier
        process left undelivered (before any new finding can be put, so the backlog
        keeps its place at the front)."""
        with self._changed:
            self.recorder = recorder
            self._unread_in_store = True
        self._read_store(after_crash=True)

    def put(self, findings: Sequence[Finding]) -> None:
        """Record each new finding as pending, then queue it if there is room."""
        with self._changed:
            new = [item for item in findings if item.finding_id not in self._known]
            self._known.update(item.finding_id for item in new)
            recorder = self.recorder
        if recorder is not None and new:
            recorder.record_many(
                [item.finding_id for item in new], self.sink_name, PENDING, 0, None
            )
        with self._changed:
            for item in new:
                # behind a backlog in the store, memory would jump the line
                behind = self._unread_in_store and recorder is not None
                if len(self._queue) < self.capacity and not behind:
                    self._queue.append(OutboxEntry(item))
                    continue
                self._known.discard(item.finding_id)
                if recorder is not None:
                    self._unread_in_store = True  # stays pending in the store
                    self._left_in_store += 1
                else:
                    self.dropped += 1
                    log.warning(
                        "alert outbox full, finding dropped",
                        sink=self.sink_name,
                        finding_id=item.finding_id,
                    )
            self._changed.notify_all()

    def get(self, timeout_s: float) -> OutboxEntry | None:
        """The next entry (now in flight until ``done``), or None after ``timeout_s``."""
        if self._needs_reading():
            self._read_store()
        with self._changed:
            if not self._queue:
                self._changed.wait(timeout_s)
            if not self._queue:
                return None
            self._in_flight += 1
            return self._queue.popleft()

    def done(self, entry: OutboxEntry) -> None:
        """The entry reached a final status (or is left to the store for later)."""
        with self._changed:
            self._in_flight -= 1
            self._known.discard(entry.finding.finding_id)
            self._changed.notify_all()

    def wait_idle(self, timeout_s: float | None) -> bool:
        """Block until nothing is queued, in flight or unread in the store."""
        with self._changed:
            return self._changed.wait_for(self._idle, timeout_s)

    def queued(self) -> int:
        """Entries waiting in memory (not in flight, not left in the store)."""
        with self._changed:
            return len(self._queue)

    def __len__(self) -> int:
        with self._changed:
            return len(self._queue) + self._in_flight

    def _idle(self) -> bool:
        return not self._queue and not self._in_flight and not self._unread_in_store

    def _needs_reading(self) -> bool:
        with self._changed:
            return self._unread_in_store and not self._queue and self.recorder is not None

    def _read_store(self, *, after_crash: bool = False) -> None:
        with self._changed:
            recorder = self.recorder
            left_before = self._left_in_store
        assert recorder is not None
        try:
            pending = recorder.pending(self.sink_name, self.capacity)
            unrecorded: list[PendingAlert] = []
            if after_crash:
                unrecorded = recorder.unrecorded(self.sink_name, self.capacity, self.min_level)
                unrecorded = [alert for alert in unrecorded if self.accepts(alert.finding)]
        except Exception:
            log.exception("reading pending alerts failed", sink=self.sink_name)
            with self._changed:
                self._unread_in_store = False  # retried on the next overflow or attach
            return
        with self._changed:
            for alert in [*pending, *unrecorded]:
                if alert.finding.finding_id in self._known:
                    continue
                self._known.add(alert.finding.finding_id)
                self._queue.append(OutboxEntry(alert.finding, alert.attempts))
            # read again when this page drains if it was full (there may be more) or if
            # ``put`` left findings to the store while this read was running
            self._unread_in_store = (
                len(pending) >= self.capacity or self._left_in_store != left_before
            )
            self._changed.notify_all()
        if pending or unrecorded:
            log.info(
                "alerts read back from the store",
                sink=self.sink_name,
                pending=len(pending),
                unrecorded=len(unrecorded),
            )
