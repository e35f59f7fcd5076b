"""The ingest queue: group commit, acknowledgement after the commit, bounded memory."""

from __future__ import annotations

import threading

import pyarrow as pa

from driftwatch.collector import IngestQueue
from driftwatch.core.records import SpanRecord
from driftwatch.testing import RecordFactory


class GatedStore:
    """Commits only when the test opens the gate; remembers each commit's size."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.commits: list[int] = []

    def write_span_table(self, table: pa.Table, *, json_checked: bool = False) -> int:
        assert json_checked  # the queue built the table from records
        self.gate.wait(30)
        self.commits.append(table.num_rows)
        return table.num_rows

    def checkpoint(self) -> None:
        return None


def spans(n: int) -> list[SpanRecord]:
    factory = RecordFactory()
    return [factory.record("s", 1) for _ in range(n)]


def test_full_queue_refuses_then_accepts_after_the_commit() -> None:
    store = GatedStore()
    committed: list[int] = []

    def on_committed(records: list[SpanRecord], table: pa.Table) -> None:
        assert table.num_rows == len(records)
        assert table.column("span_id").to_pylist() == [r.span_id for r in records]
        committed.append(len(records))

    queue = IngestQueue(store, on_committed=on_committed, max_pending=4)
    try:
        first = queue.offer(spans(3))
        assert first is not None
        assert queue.offer(spans(2)) is None  # 3 + 2 > 4: retry later
        second = queue.offer(spans(1))
        assert second is not None
        assert not first.done()  # not acknowledged before the commit
        store.gate.set()
        assert first.result(30) == 3
        assert second.result(30) == 1
        assert sum(committed) == 4
        assert queue.pending == 0
    finally:
        store.gate.set()
        queue.close()


def test_requests_waiting_together_are_committed_together() -> None:
    store = GatedStore()
    queue = IngestQueue(store, max_pending=1000)
    try:
        blocker = queue.offer(spans(1))  # the writer takes it and waits at the gate
        futures = [queue.offer(spans(10)) for _ in range(5)]
        store.gate.set()
        assert blocker is not None
        blocker.result(30)
        for future in futures:
            assert future is not None
            future.result(30)
        assert sum(store.commits) == 51
        assert len(store.commits) <= 3  # 1, then the five waiting requests in one group
    finally:
        store.gate.set()
        queue.close()


def test_a_request_larger_than_the_queue_is_taken_when_it_is_empty() -> None:
    store = GatedStore()
    store.gate.set()
    queue = IngestQueue(store, max_pending=4)
    try:
        future = queue.offer(spans(9))
        assert future is not None
        assert future.result(30) == 9
    finally:
        queue.close()


def test_closed_queue_refuses() -> None:
    queue = IngestQueue(GatedStore())
    queue.close()
    assert queue.offer(spans(1)) is None
