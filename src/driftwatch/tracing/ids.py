"""Deterministic span and trace ids for tests (incrementing, like logfire.testing)."""

from __future__ import annotations

import itertools
import threading

from opentelemetry.sdk.trace.id_generator import IdGenerator


class SequentialIdGenerator(IdGenerator):
    """Trace ids 1, 2, 3 … and span ids 1, 2, 3 … (each its own counter); thread-safe.

    Rendered as hex in records: trace ``00000000000000000000000000000001``, span
    ``0000000000000001``. Not random, so ratio-based samplers must not be used with it.
    """

    def __init__(self) -> None:
        self._trace_ids = itertools.count(1)
        self._span_ids = itertools.count(1)
        self._lock = threading.Lock()

    def generate_trace_id(self) -> int:
        with self._lock:
            return next(self._trace_ids)

    def generate_span_id(self) -> int:
        with self._lock:
            return next(self._span_ids)

    def is_trace_id_random(self) -> bool:
        return False
