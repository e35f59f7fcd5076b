"""A micro-batching worker: producers ``submit`` items without blocking on the work; one
thread hands them to a callback in batches. The store writer and the monitor engine are
both built on it, so in-process runs and the collector share one path.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from driftwatch.core.logging import get_logger

T = TypeVar("T")

log = get_logger(__name__)


class MicroBatcher(Generic[T]):
    """Collects items and calls ``handle(batch)`` from a single worker thread.

    - ``submit`` never drops an item. It blocks only when more than ``max_pending`` items
      wait (backpressure instead of unbounded memory).
    - A batch is handed over when ``max_batch`` items wait or ``max_delay_s`` has passed
      since the first of them arrived.
    - ``handle`` must not raise; if it does, the error is logged with the batch size and
      the worker goes on (the callback is responsible for turning failures into data).
    - ``flush`` returns once everything submitted before it has been handled.
    """

    def __init__(
        self,
        handle: Callable[[Sequence[T]], None],
        *,
        name: str,
        max_batch: int = 512,
        max_delay_s: float = 0.05,
        max_pending: int = 100_000,
    ) -> None:
        self._handle = handle
        self._max_batch = max_batch
        self._max_delay = max_delay_s
        self._max_pending = max_pending
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._submitted = 0
        self._handled = 0
        self._closed = False
        self._flush_requested = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._items)

    def submit(self, item: T) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("MicroBatcher is closed")
            while len(self._items) >= self._max_pending:
                self._cond.wait(0.1)
            self._items.append(item)
            self._submitted += 1
            if len(self._items) >= self._max_batch or len(self._items) == 1:
                self._cond.notify_all()

    def submit_many(self, items: Sequence[T]) -> None:
        """:meth:`submit` for many items, taking the lock once per chunk that fits."""
        start = 0
        while start < len(items):
            with self._cond:
                if self._closed:
                    raise RuntimeError("MicroBatcher is closed")
                while len(self._items) >= self._max_pending:
                    self._cond.wait(0.1)
                was_empty = not self._items
                chunk = items[start:start + self._max_pending - len(self._items)]
                self._items.extend(chunk)
                self._submitted += len(chunk)
                start += len(chunk)
                if was_empty or len(self._items) >= self._max_batch:
                    self._cond.notify_all()

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Wait until all items submitted so far are handled. False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            target = self._submitted
            self._flush_requested += 1
            self._cond.notify_all()
            try:
                while self._handled < target:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining if remaining is not None else 0.1)
            finally:
                self._flush_requested -= 1
        return True

    def close(self, timeout_s: float | None = 30.0) -> None:
        self.flush(timeout_s)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout_s)

    def _take(self) -> list[T] | None:
        with self._cond:
            while not self._items:
                if self._closed:
                    return None
                self._cond.wait()
            first_seen = time.monotonic()
            while (
                len(self._items) < self._max_batch
                and not self._closed
                and not self._flush_requested
            ):
                remaining = self._max_delay - (time.monotonic() - first_seen)
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            count = min(len(self._items), self._max_batch)
            batch = [self._items.popleft() for _ in range(count)]
            self._cond.notify_all()
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._handle(batch)
            except Exception:  # the worker must survive a bad batch
                log.exception("batch handler failed", batch_size=len(batch))
            with self._cond:
                self._handled += len(batch)
                self._cond.notify_all()
