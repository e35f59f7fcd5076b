"""The span processor that feeds driftwatch, the consumer contracts, and the store writer.

One code path from span to finding: a finished SDK span is converted once to a
:class:`SpanRecord`. Consumers that take batches (the store writer, the monitor engine,
a batch worker's recorder) get the records micro-batched as one
:class:`~driftwatch.store.span_batch.SpanBatch` each, whose Arrow table is built once, on
the processor's own thread, and shared: the writer inserts it, the rule packs' SQL reads
it. Consumers that take records get each one as its span ends.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from typing import Protocol, cast, runtime_checkable

import pyarrow as pa
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from driftwatch.core.logging import get_logger
from driftwatch.core.microbatch import MicroBatcher
from driftwatch.core.records import SpanRecord
from driftwatch.store import Store
from driftwatch.store.span_batch import Row, SpanBatch
from driftwatch.tracing.convert import span_to_record

log = get_logger(__name__)


@runtime_checkable
class RecordConsumer(Protocol):
    """Receives every finished span as a :class:`SpanRecord`.

    - ``submit(record)`` is called from the thread that ended the span (usually the
      agent's), once per span. It must return quickly: enqueue, no I/O. Waiting is only
      allowed as bounded backpressure. It must not raise (the processor logs and drops
      what a consumer raises, but the agent must never depend on that) and must not
      mutate the record, which every consumer shares. After ``close`` it drops records.
    - ``flush(timeout_s)`` blocks until everything submitted before the call has been
      processed; False when the time ran out. Called from any thread.
    - ``close()`` flushes and releases the consumer's own resources (not ones it was
      given, such as a :class:`Store`); called once, at shutdown.
    """

    def submit(self, record: SpanRecord) -> None: ...

    def flush(self, timeout_s: float | None = 30.0) -> bool: ...

    def close(self) -> None: ...


@runtime_checkable
class BatchConsumer(Protocol):
    """Receives finished spans as :class:`SpanBatch`\\ es (records and table both built).

    ``submit_batch(batch)`` is called from the processor's batching thread, in span-end
    order, and must return quickly as ``RecordConsumer.submit`` must; the batch is shared
    and read-only. ``flush`` and ``close`` are as for :class:`RecordConsumer`. A consumer
    with ``submit_batch`` gets only batches, never single records.
    """

    def submit_batch(self, batch: SpanBatch) -> None: ...

    def flush(self, timeout_s: float | None = 30.0) -> bool: ...

    def close(self) -> None: ...


class NullConsumer:
    """Drops every record: tracing on, storage and monitoring off."""

    def submit(self, record: SpanRecord) -> None:
        return None

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        return True

    def close(self) -> None:
        return None


class RecordSpanProcessor(SpanProcessor):
    """Converts each ended span once; submits the record to every record consumer and
    micro-batches it for the batch consumers.

    ``on_end`` runs on the thread that ends the span and does no I/O (enqueueing only);
    it never raises (a span that cannot be converted, or a consumer that raises, is
    logged). A consumer that fails does not stop the others. Batches are handed over
    when ``max_batch`` records wait or ``max_delay_s`` has passed (the engine's and the
    writer's own batching follow; both take their tables from these batches).
    """

    def __init__(
        self,
        consumers: Sequence[RecordConsumer | BatchConsumer],
        *,
        max_batch: int = 512,
        max_delay_s: float = 0.01,
        max_pending: int = 100_000,
    ) -> None:
        self._consumers = tuple(consumers)
        self._record_consumers = tuple(
            c for c in consumers if not callable(getattr(c, "submit_batch", None)))
        self._batch_consumers = tuple(
            c for c in consumers if callable(getattr(c, "submit_batch", None)))
        self._batcher: MicroBatcher[SpanRecord] | None = (
            MicroBatcher(self._dispatch, name="driftwatch-span-batches", max_batch=max_batch,
                         max_delay_s=max_delay_s, max_pending=max_pending)
            if self._batch_consumers else None
        )
        self._shutdown = False
        self._lock = threading.Lock()

    @property
    def consumers(self) -> tuple[RecordConsumer | BatchConsumer, ...]:
        return self._consumers

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._shutdown:
            return
        try:
            record = span_to_record(span)
        except Exception:  # a malformed span must not reach the agent
            log.exception("span conversion failed", span_name=span.name)
            return
        for consumer in self._record_consumers:
            try:
                consumer.submit(record)  # type: ignore[union-attr]
            except Exception:  # a consumer's failure must not reach the agent
                log.exception("record consumer failed", consumer=type(consumer).__name__)
        if self._batcher is not None:
            try:
                self._batcher.submit(record)
            except RuntimeError:  # closed between the check above and now
                log.warning("span dropped: the span processor is shut down")

    def _dispatch(self, records: Sequence[SpanRecord]) -> None:
        """Batching thread: one SpanBatch with its table built here, before it is shared
        (a batch builds a missing form unlocked). A record that cannot be converted
        leaves the batch without a table: each consumer that needs one then fails and
        counts it as it would have on its own."""
        batch = SpanBatch.from_records(list(records))
        try:
            batch.table  # noqa: B018 - built now, on this thread
        except Exception as error:
            log.error("span batch conversion failed", batch_size=len(records), error=str(error))
        for consumer in self._batch_consumers:
            try:
                consumer.submit_batch(batch)  # type: ignore[union-attr]
            except Exception:
                log.exception("batch consumer failed", consumer=type(consumer).__name__)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush every consumer within the total time; True when all finished."""
        deadline = time.monotonic() + timeout_millis / 1000
        flushed = self._batcher.flush(timeout_millis / 1000) if self._batcher else True
        for consumer in self._consumers:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                flushed = consumer.flush(remaining) and flushed
            except Exception:
                log.exception("record consumer flush failed", consumer=type(consumer).__name__)
                flushed = False
        return flushed

    def shutdown(self) -> None:
        """Close every consumer, once."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
        if self._batcher is not None:
            self._batcher.close()  # hands over what is pending first
        for consumer in self._consumers:
            try:
                consumer.close()
            except Exception:
                log.exception("record consumer close failed", consumer=type(consumer).__name__)


def _span_batch(items: Sequence[SpanRecord | Row]) -> SpanBatch:
    """One SpanBatch of ``items`` in order: runs of rows taken from their batches, runs of
    plain records converted together."""
    if not any(type(item) is tuple for item in items):  # records only: bench/ingest, imports
        return SpanBatch.from_records(cast(Sequence[SpanRecord], items))
    segments: list[SpanBatch] = []
    run: list[SpanRecord | Row] = []
    for item in items:
        if run and (type(item) is tuple) != (type(run[-1]) is tuple):
            segments.append(_segment(run))
            run = []
        run.append(item)
    if run:
        segments.append(_segment(run))
    return SpanBatch.concat(segments)


def _segment(items: list[SpanRecord | Row]) -> SpanBatch:
    if type(items[0]) is tuple:
        return SpanBatch.gather(cast(list[Row], items))
    return SpanBatch.from_records(cast(list[SpanRecord], items))


class StoreWriter:
    """A :class:`RecordConsumer` that writes records to a :class:`Store` in batches.

    ``submit`` only enqueues (it blocks only when ``max_pending`` records already wait:
    backpressure rather than unbounded memory). A :class:`MicroBatcher` hands over a
    batch when ``max_batch`` records wait or ``max_delay_s`` has passed; its thread
    converts the batch to Arrow while a second thread inserts the previous one with one
    idempotent statement (:meth:`Store.write_span_table`), so under load conversion
    (Python) and insertion (DuckDB, outside the GIL) overlap. A failed insert is retried
    ``retries`` times with a growing pause, then logged and counted in ``failed``;
    nothing is ever raised into the agent. The store is not closed by :meth:`close`.

    Counters (read them after :meth:`flush`): ``written`` records accepted by the store,
    ``inserted`` rows newly stored (duplicates excluded), ``failed`` records given up on.

    After ``idle_checkpoint_s`` without a batch, the store is checkpointed (the store
    lets the WAL grow during bursts, see :mod:`driftwatch.store.db`).

    ``max_batch`` defaults to 16,384: under bulk load larger batches amortise DuckDB's
    per-statement cost (bench/ingest.py, 200,000 spans, quietest run: 512 → 24k spans/s,
    4,096 → 50k, 16,384 → 65k, 65,536 → 46k, with four times the memory per batch);
    under a trickle ``max_delay_s`` bounds the latency, so small batches cost nothing.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 16_384,
        max_delay_s: float = 0.05,
        max_pending: int = 100_000,
        retries: int = 2,
        retry_delay_s: float = 0.05,
        idle_checkpoint_s: float | None = 1.0,
    ) -> None:
        self._store = store
        self._idle_checkpoint_s = idle_checkpoint_s
        self._inserted_since_checkpoint = 0
        self._retries = retries
        self._retry_delay_s = retry_delay_s
        self._state = threading.Condition()
        self.written = 0
        self.inserted = 0
        self.failed = 0
        self._closed = False
        self._tables_queued = 0
        self._tables_done = 0
        # Two converted batches may wait for the inserting thread; then the converting
        # thread waits too, and submit's backpressure takes over.
        self._tables: queue.Queue[tuple[pa.Table, int] | None] = queue.Queue(maxsize=2)
        self._inserter = threading.Thread(
            target=self._insert_loop, name="driftwatch-store-insert", daemon=True
        )
        self._inserter.start()
        self._batcher: MicroBatcher[SpanRecord | Row] = MicroBatcher(
            self._convert,
            name="driftwatch-store-writer",
            max_batch=max_batch,
            max_delay_s=max_delay_s,
            max_pending=max_pending,
        )

    def submit(self, record: SpanRecord) -> None:
        try:
            self._batcher.submit(record)
        except RuntimeError:  # closed: drop, count, never raise into the agent
            with self._state:
                self.failed += 1

    def submit_batch(self, batch: SpanBatch) -> None:
        """Queue a batch's spans; the table inserted is taken from ``batch.table`` (one
        Arrow take per source batch), not converted from the records again."""
        rows: list[SpanRecord | Row] = [
            (record, batch, index) for index, record in enumerate(batch.records)]
        try:
            self._batcher.submit_many(rows)
        except RuntimeError:  # closed: drop, count, never raise into the agent
            with self._state:
                self.failed += len(rows)

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Wait until every record submitted so far is stored (or given up on)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if not self._batcher.flush(timeout_s):
            return False
        with self._state:
            target = self._tables_queued
            while self._tables_done < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._state.wait(remaining)
        return True

    def close(self, timeout_s: float | None = 30.0) -> None:
        """Write what is pending (waiting up to ``timeout_s``) and stop both threads."""
        with self._state:
            if self._closed:
                return
            self._closed = True
        self._batcher.close(timeout_s)
        self._tables.put(None)
        self._inserter.join(timeout_s)

    def _convert(self, batch: Sequence[SpanRecord | Row]) -> None:
        """MicroBatcher thread: records → Arrow (rows of submitted batches: taken from
        their tables), then queue for the inserting thread."""
        try:
            table = _span_batch(batch).table
        except Exception as error:  # a record that cannot be converted fails its batch
            log.error("span batch conversion failed", batch_size=len(batch), error=str(error))
            with self._state:
                self.failed += len(batch)
            return
        with self._state:
            self._tables_queued += 1
        self._tables.put((table, len(batch)))

    def _insert_loop(self) -> None:
        while True:
            try:
                item = self._tables.get(timeout=self._idle_checkpoint_s)
            except queue.Empty:
                self._checkpoint_if_needed()
                continue
            if item is None:
                return
            table, count = item
            self._insert(table, count)
            with self._state:
                self._tables_done += 1
                self._state.notify_all()

    def _checkpoint_if_needed(self) -> None:
        """Ingest is idle: checkpoint now rather than in the middle of the next burst."""
        if not self._inserted_since_checkpoint:
            return
        self._inserted_since_checkpoint = 0
        try:
            self._store.checkpoint()
        except Exception as error:  # opportunistic: DuckDB checkpoints later anyway
            log.debug("idle checkpoint failed", error=str(error))

    def _insert(self, table: pa.Table, count: int) -> None:
        delay = self._retry_delay_s
        for attempt in range(self._retries + 1):
            try:
                inserted = self._store.write_span_table(table, json_checked=True)
            except Exception as error:
                if attempt < self._retries:
                    time.sleep(delay)
                    delay *= 4
                    continue
                log.error(
                    "span batch dropped after retries",
                    batch_size=count,
                    attempts=attempt + 1,
                    error=str(error),
                )
                with self._state:
                    self.failed += count
                return
            with self._state:
                self.written += count
                self.inserted += inserted
            self._inserted_since_checkpoint += inserted
            return
