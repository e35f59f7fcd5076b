"""The ingest queue: group commit, acknowledgement after the commit, bounded memory."""

from __future__ import annotations

import threading

import pyarrow as pa

from driftwatch.collector import IngestQueue
from driftwatch.core.records import SpanRecord
from driftwatch.store.arrow import SPAN_SCHEMA, exact_span_table
from driftwatch.testing import RecordFactory


class GatedStore:
    """Commits only when the test opens the gate; remembers each commit's size."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.commits: list[int] = []

    def write_new_span_table(self, table: pa.Table, *, json_checked: bool = False) -> pa.Table:
        assert json_checked  # the decoder built the JSON columns
        assert table.select(SPAN_SCHEMA.names).schema == SPAN_SCHEMA
        self.gate.wait(30)
        self.commits.append(table.num_rows)
        return table

    def checkpoint(self) -> None:
        return None


def records(n: int) -> list[SpanRecord]:
    factory = RecordFactory()
    return [factory.record("s", 1) for _ in range(n)]


def spans(n: int) -> pa.Table:
    return exact_span_table(records(n))


def test_full_queue_refuses_then_accepts_after_the_commit() -> None:
    store = GatedStore()
    committed: list[int] = []

    def on_committed(table: pa.Table) -> None:
        committed.append(table)

    queue = IngestQueue(store, on_committed=on_committed, max_pending=4)
    first_spans, second_spans = spans(3), spans(1)
    try:
        first = queue.offer(first_spans)
        assert first is not None
        assert queue.offer(spans(2)) is None  # 3 + 2 > 4: retry later
        second = queue.offer(second_spans)
        assert second is not None
        assert not first.done()  # not acknowledged before the commit
        store.gate.set()
        assert first.result(30) == 3
        assert second.result(30) == 1
        assert sum(table.num_rows for table in committed) == 4
        # the hook gets the committed spans with every column, the exact times included
        assert pa.concat_tables(committed).equals(pa.concat_tables([first_spans, second_spans]))
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
