"""RecordSpanProcessor fans each span out once; StoreWriter batches into the store."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest
from opentelemetry.sdk.trace import TracerProvider

from driftwatch.core.errors import StoreError
from driftwatch.core.records import SpanRecord
from driftwatch.store import Store
from driftwatch.testing import RecordFactory, RecordingConsumer
from driftwatch.tracing import NullConsumer, RecordConsumer, RecordSpanProcessor, StoreWriter


class CountingConsumer(RecordingConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.closes = 0

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        self.flushes += 1
        return True

    def close(self, timeout_s: float | None = 30.0) -> None:
        self.closes += 1


class ExplodingConsumer:
    def submit(self, record: SpanRecord) -> None:
        raise RuntimeError("boom")

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        raise RuntimeError("boom")

    def close(self) -> None:
        raise RuntimeError("boom")


def _provider(*consumers: RecordConsumer) -> tuple[TracerProvider, RecordSpanProcessor]:
    processor = RecordSpanProcessor(consumers)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider, processor


def test_every_consumer_receives_the_same_record_once() -> None:
    first, second = CountingConsumer(), CountingConsumer()
    provider, _ = _provider(first, second)
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    assert len(first.records) == 1
    assert first.records[0] is second.records[0]
    provider.shutdown()


def test_a_failing_consumer_neither_raises_nor_starves_the_others() -> None:
    healthy = CountingConsumer()
    provider, _ = _provider(ExplodingConsumer(), healthy)
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    assert len(healthy.records) == 1
    assert provider.force_flush() is False  # the exploding flush counts as not flushed
    assert healthy.flushes == 1
    provider.shutdown()
    assert healthy.closes == 1


def test_force_flush_flushes_and_shutdown_closes_each_consumer_once() -> None:
    consumer = CountingConsumer()
    provider, processor = _provider(consumer)
    assert provider.force_flush() is True
    assert consumer.flushes == 1
    provider.shutdown()
    processor.shutdown()
    assert consumer.closes == 1


def test_spans_ending_after_shutdown_are_ignored() -> None:
    consumer = CountingConsumer()
    provider, processor = _provider(consumer)
    span = provider.get_tracer("t").start_span("late")
    processor.shutdown()
    span.end()
    assert consumer.records == []


def test_null_consumer_and_store_writer_are_record_consumers(store: Store) -> None:
    writer = StoreWriter(store)
    assert isinstance(NullConsumer(), RecordConsumer)
    assert isinstance(writer, RecordConsumer)
    writer.close()


def test_store_writer_writes_submitted_records_in_batches(store: Store) -> None:
    factory = RecordFactory(run_id="run-1")
    writer = StoreWriter(store, max_batch=8, max_delay_s=0.01)
    records = [factory.chat("hello", turn=n) for n in range(20)]
    for record in records:
        writer.submit(record)
    writer.submit(records[0])  # a re-sent span is stored once
    assert writer.flush(10) is True
    assert (writer.written, writer.inserted, writer.failed) == (21, 20, 0)
    assert store.query("SELECT count(*) FROM spans").scalar() == 20
    writer.close()


class FlakyStore:
    """Fails the first ``failures`` writes, then records what it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.batches: list[int] = []
        self.calls = 0
        self._lock = threading.Lock()

    def write_span_table(self, table: pa.Table, *, json_checked: bool = False) -> int:
        with self._lock:
            self.calls += 1
            if self.calls <= self.failures:
                raise StoreError("disk full")
            self.batches.append(table.num_rows)
            return int(table.num_rows)


def test_store_writer_retries_a_failed_write() -> None:
    flaky = FlakyStore(failures=2)
    writer = StoreWriter(flaky, retries=2, retry_delay_s=0.001)  # type: ignore[arg-type]
    writer.submit(RecordFactory().chat("x", turn=0))
    assert writer.flush(10)
    assert (writer.written, writer.failed, flaky.calls) == (1, 0, 3)
    writer.close()


def test_store_writer_gives_up_after_retries_without_raising() -> None:
    flaky = FlakyStore(failures=10)
    writer = StoreWriter(flaky, retries=1, retry_delay_s=0.001)  # type: ignore[arg-type]
    factory = RecordFactory()
    writer.submit(factory.chat("x", turn=0))
    writer.submit(factory.chat("y", turn=0))
    assert writer.flush(10)
    assert (writer.written, writer.failed) == (0, 2)
    writer.close()


def test_store_writer_drops_records_after_close_without_raising(store: Store) -> None:
    writer = StoreWriter(store)
    writer.close()
    writer.close()
    writer.submit(RecordFactory().chat("late", turn=0))
    assert writer.failed == 1


def test_closing_the_writer_writes_what_is_pending_and_keeps_the_store_open(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "w.duckdb") as store:
        writer = StoreWriter(store, max_batch=1000, max_delay_s=5.0)
        factory = RecordFactory()
        for turn in range(5):
            writer.submit(factory.chat("x", turn=turn))
        writer.close()
        assert store.query("SELECT count(*) FROM spans").scalar() == 5


@pytest.mark.parametrize("batch_size", [1, 512])
def test_store_writer_handles_any_batch_size(store: Store, batch_size: int) -> None:
    writer = StoreWriter(store, max_batch=batch_size)
    factory = RecordFactory()
    for turn in range(3):
        writer.submit(factory.chat("x", turn=turn))
    writer.close()
    assert writer.inserted == 3
