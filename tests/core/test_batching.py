"""The micro-batcher hands every item over exactly once, in order, off the caller's thread."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from driftwatch.core import MicroBatcher


def test_every_item_is_handled_once_in_order_and_batched() -> None:
    batches: list[list[int]] = []
    batcher: MicroBatcher[int] = MicroBatcher(lambda b: batches.append(list(b)), name="t",
                                              max_batch=64, max_delay_s=0.5)
    for i in range(1000):
        batcher.submit(i)
    assert batcher.flush(5)
    assert [i for b in batches for i in b] == list(range(1000))
    assert max(len(b) for b in batches) <= 64
    batcher.close()


def test_handler_runs_on_the_worker_thread() -> None:
    seen: list[str] = []
    batcher: MicroBatcher[int] = MicroBatcher(
        lambda b: seen.append(threading.current_thread().name), name="worker-x")
    batcher.submit(1)
    batcher.flush(5)
    batcher.close()
    assert seen == ["worker-x"]


def test_a_failing_handler_does_not_stop_the_worker() -> None:
    handled: list[int] = []

    def handle(batch: Sequence[int]) -> None:
        if 0 in batch:
            raise RuntimeError("boom")
        handled.extend(batch)

    batcher: MicroBatcher[int] = MicroBatcher(handle, name="t", max_batch=1)
    batcher.submit(0)
    batcher.submit(1)
    assert batcher.flush(5)
    batcher.close()
    assert handled == [1]


def test_submit_blocks_only_past_max_pending() -> None:
    release = threading.Event()
    batcher: MicroBatcher[int] = MicroBatcher(lambda b: release.wait(5), name="t",
                                              max_batch=1, max_pending=2)
    for i in range(3):  # one in the handler, two pending
        batcher.submit(i)
    blocked = threading.Thread(target=batcher.submit, args=(99,))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()
    release.set()
    blocked.join(5)
    assert not blocked.is_alive()
    batcher.close()


def test_submit_many_keeps_order_and_waits_for_room_when_over_max_pending() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def handle(batch: Sequence[int]) -> None:
        gate.wait(10)
        batches.append(list(batch))

    batcher: MicroBatcher[int] = MicroBatcher(handle, name="t", max_batch=8,
                                              max_delay_s=0.01, max_pending=16)
    done = threading.Event()

    def produce() -> None:
        batcher.submit_many(list(range(100)))  # more than max_pending: waits for room
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert not done.wait(0.3)  # the handler is stuck, so the queue stays full
    assert batcher.pending <= 16
    gate.set()
    producer.join(10)
    assert done.is_set()
    assert batcher.flush(10)
    assert [i for b in batches for i in b] == list(range(100))
    assert max(len(b) for b in batches) <= 8
    batcher.close()
