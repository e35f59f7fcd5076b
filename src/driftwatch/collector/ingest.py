"""Durable ingest: the one thread that writes spans, with group commit and a bounded queue.

Request handlers call :meth:`IngestQueue.offer` with a request's decoded spans, as an
Arrow table (``SPAN_SCHEMA`` plus the exact nanosecond times, see
:func:`~driftwatch.tracing.otlp.table_from_otlp_protobuf`). The writer thread takes
everything waiting (several requests, up to ``max_batch`` spans), joins it into one
table and writes it with one idempotent statement
(:meth:`Store.write_span_table`, deduplicated on trace and span id) and only then
completes each request's future: a request is acknowledged once its spans are committed
to DuckDB, whose write-ahead log survives a ``kill -9`` of this process. Group commit is
what keeps one commit per request from limiting throughput.

After the commit and before the acknowledgement, the spans stored for the first time
(not a retry of a stored span, which changes nothing) go to
the :class:`~driftwatch.collector.runs.RunTracker` (``runs`` rows, end of run) and to the
monitors, so monitors only ever see spans that are stored, and a 200 means the
monitors have them queued.

Memory is bounded: ``offer`` refuses (returns None) when ``max_pending`` spans already
wait, and the HTTP layer answers 503 with Retry-After.

Other writes of a request (an OTLP logs request's records) go through the same thread
with :meth:`IngestQueue.offer_write`, in arrival order with the span groups, under the
same bound and the same contract: the future resolves once the write committed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from driftwatch.core.logging import get_logger

__all__ = ["IngestQueue", "SpanStore"]

log = get_logger(__name__)


class SpanStore(Protocol):
    """What the writer needs from :class:`driftwatch.store.Store`."""

    def write_new_span_table(self, table: pa.Table, *,
                             json_checked: bool = False) -> pa.Table: ...

    def checkpoint(self) -> None: ...


@dataclass(slots=True)
class _Pending:
    table: pa.Table
    future: Future[int]
    write: Callable[[pa.Table], int] | None = None  # not spans: offer_write's callable


class IngestQueue:
    """Bounded queue + writer thread. ``on_committed(table)`` is called on the writer
    thread after each commit with the spans just stored for the first time (the monitor
    engine and run tracker hang off it; it may block, which is backpressure).
    ``prepare(table)`` may rewrite a group before it is written (the run guard, see
    :mod:`driftwatch.collector.closed_runs`); ``enrich(table)`` then may add to the spans'
    attributes (the GenAI events that arrived before them, see
    :mod:`driftwatch.collector.logs`); ``in_commit(new)`` writes what must commit with
    the new spans (their runs' rows), in the same transaction when the store has
    ``transaction()``. ``observe_commit(seconds, spans)`` feeds metrics."""

    def __init__(
        self,
        store: SpanStore,
        *,
        on_committed: Callable[[pa.Table], None] | None = None,
        prepare: Callable[[pa.Table], pa.Table] | None = None,
        enrich: Callable[[pa.Table], pa.Table] | None = None,
        in_commit: Callable[[pa.Table], None] | None = None,
        observe_commit: Callable[[float, int], None] | None = None,
        max_pending: int = 65_536,
        max_batch: int = 16_384,
        idle_checkpoint_s: float = 1.0,
        retries: int = 2,
    ) -> None:
        self._store = store
        self._on_committed = on_committed
        self._prepare = prepare
        self._enrich = enrich
        self._in_commit = in_commit
        self._observe_commit = observe_commit
        self.max_pending = max_pending
        self._max_batch = max_batch
        self._idle_checkpoint_s = idle_checkpoint_s
        self._retries = retries
        self._queue: deque[_Pending] = deque()
        self._pending_spans = 0
        self._cond = threading.Condition()
        self._closed = False
        self._dirty = False
        self.committed = 0  # spans written, a retry's duplicates included
        self.stored = 0  # spans stored for the first time
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="driftwatch-ingest", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Spans accepted for writing and not yet committed (the queue depth)."""
        return self._pending_spans

    def offer(self, table: pa.Table) -> Future[int] | None:
        """Queue one request's spans (a table as the module docstring says; columns past
        ``SPAN_SCHEMA`` go to ``on_committed``, not to the store). The future resolves to
        the number of spans in the request once they are committed (or fails if the
        store refuses them). Returns None when the queue is full or closed: the caller
        answers "retry later". A request larger than ``max_pending`` is taken when the
        queue is empty (the body size limit bounds it), so it is never refused forever."""
        return self._enqueue(table, None)

    def offer_write(self, table: pa.Table, write: Callable[[pa.Table], int]
                    ) -> Future[int] | None:
        """Queue ``write(table)`` (not spans: e.g. log records) for the writer thread,
        counted as ``table.num_rows`` against ``max_pending``. The future resolves to
        what ``write`` returned once it did (or fails with its error, after the same
        retries as a span group). None when the queue is full or closed."""
        return self._enqueue(table, write)

    def _enqueue(self, table: pa.Table,
                 write: Callable[[pa.Table], int] | None) -> Future[int] | None:
        future: Future[int] = Future()
        count = table.num_rows
        if not count:
            future.set_result(0)
            return future
        with self._cond:
            pending = self._pending_spans
            if self._closed or (pending and pending + count > self.max_pending):
                return None
            self._queue.append(_Pending(table, future, write))
            self._pending_spans += count
            self._cond.notify()
        return future

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Commit what is queued, then stop the writer. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout_s)

    def _take(self) -> list[_Pending] | None:
        """The next group to commit; [] after an idle wait; None once closed and empty."""
        with self._cond:
            if not self._queue and not self._closed:
                self._cond.wait(self._idle_checkpoint_s)
            if not self._queue:
                return None if self._closed else []
            taken = [self._queue.popleft()]
            if taken[0].write is not None:
                return taken  # alone: it is not a span table to join
            count = taken[0].table.num_rows
            while (self._queue and self._queue[0].write is None
                   and count + self._queue[0].table.num_rows <= self._max_batch):
                item = self._queue.popleft()
                taken.append(item)
                count += item.table.num_rows
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            if not taken:
                self._checkpoint_if_dirty()
                continue
            if taken[0].write is not None:
                self._run_write(taken[0])
                continue
            table = (taken[0].table if len(taken) == 1
                     else pa.concat_tables([item.table for item in taken]))
            count = table.num_rows
            new, error = self._write(table)
            if new is not None and new.num_rows and self._on_committed is not None:
                try:  # before the acknowledgement: a 200 means "stored and being monitored"
                    self._on_committed(new)
                except Exception:
                    log.exception("after-commit hook failed", spans=new.num_rows)
            with self._cond:
                self._pending_spans -= count
            for item in taken:
                if error is None:
                    item.future.set_result(item.table.num_rows)
                else:
                    item.future.set_exception(error)

    def _run_write(self, item: _Pending) -> None:
        assert item.write is not None
        delay = 0.05
        result: int | None = None
        error: Exception | None = None
        for attempt in range(self._retries + 1):
            try:
                result = item.write(item.table)
                error = None
                self._dirty = True
                break
            except Exception as failure:
                error = failure
                if attempt < self._retries:
                    time.sleep(delay)
                    delay *= 4
        with self._cond:
            self._pending_spans -= item.table.num_rows
        if error is None:
            item.future.set_result(int(result or 0))
        else:
            log.error("write not stored", records=item.table.num_rows, error=str(error))
            item.future.set_exception(error)

    def _write(self, table: pa.Table) -> tuple[pa.Table | None, Exception | None]:
        """Store ``table``; returns the rows stored for the first time, or the error."""
        count = table.num_rows
        delay = 0.05
        for attempt in range(self._retries + 1):
            started = time.perf_counter()
            try:
                new = self._commit(table)
            except Exception as error:
                if attempt < self._retries:
                    time.sleep(delay)
                    delay *= 4
                    continue
                log.error("span batch not stored", spans=count, error=str(error))
                self.failed += count
                return None, error
            if self._observe_commit is not None:
                self._observe_commit(time.perf_counter() - started, count)
            self.committed += count
            self.stored += new.num_rows
            self._dirty = True
            return new, None
        return None, None  # pragma: no cover - the loop always returns

    def _commit(self, table: pa.Table) -> pa.Table:
        prepared = table if self._prepare is None else self._prepare(table)
        if self._enrich is not None:
            prepared = self._enrich(prepared)
        transaction = getattr(self._store, "transaction", None)
        if self._in_commit is None:
            return self._store.write_new_span_table(prepared, json_checked=True)
        if not callable(transaction):
            new = self._store.write_new_span_table(prepared, json_checked=True)
            if new.num_rows:
                self._in_commit(new)
            return new
        with transaction():
            new = self._store.write_new_span_table(prepared, json_checked=True)
            if new.num_rows:
                self._in_commit(new)
        return new

    def _checkpoint_if_dirty(self) -> None:
        """Idle: fold the WAL into the file now rather than in the middle of a burst."""
        if not self._dirty:
            return
        self._dirty = False
        try:
            self._store.checkpoint()
        except Exception as error:  # opportunistic; DuckDB checkpoints later anyway
            log.debug("idle checkpoint failed", error=str(error))
