"""A time limit for DuckDB queries: interrupt the connection from a timer thread."""

from __future__ import annotations

import threading
from types import TracebackType

import duckdb


class Watchdog:
    """Interrupts ``connection`` once ``timeout_s`` has passed, and again every 50 ms
    until stopped (an interrupt that lands between two DuckDB calls would be lost)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, timeout_s: float | None) -> None:
        self._connection = connection
        self._timeout_s = timeout_s
        self._done = threading.Event()
        self.fired = False
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Watchdog:
        if self._timeout_s is not None:
            self._thread = threading.Thread(
                target=self._watch, name="driftwatch-sql-watchdog", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self) -> None:
        assert self._timeout_s is not None
        if self._done.wait(self._timeout_s):
            return
        self.fired = True
        while not self._done.is_set():
            self._connection.interrupt()
            self._done.wait(0.05)
