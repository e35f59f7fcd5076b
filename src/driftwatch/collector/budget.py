"""A memory budget in bytes, shared by every request in flight.

Span counts do not bound memory: one span can carry 15 MB. The collector reserves bytes
here for each request body while it is read, for its decoding, and for the decoded
table until the spans are committed and handed to the monitors; a request that does not
fit is answered 503 with Retry-After (the same backpressure as a full ingest queue).
(:func:`bounded_for_monitors` bounds what the monitors keep of each span.)
A request larger than the whole budget is let through when nothing else is in flight
(the body size limit bounds it), so it is never refused forever. Large requests (over
``small_bytes`` in all) may use the budget but its last ``small_share``, which is kept
for small ones: a flood of 15 MB requests does not turn away ordinary senders.
Thread-safe.
"""

from __future__ import annotations

import threading
from typing import Any, Final

import pyarrow as pa

__all__ = ["MONITOR_VALUE_CHARS", "ByteBudget", "bounded_for_monitors"]

MONITOR_VALUE_CHARS: Final = 1024 * 1024


class ByteBudget:
    def __init__(self, capacity: int, *, small_bytes: int = 1024 * 1024,
                 small_share: float = 0.125) -> None:
        self.capacity = capacity
        self.small_bytes = small_bytes
        self._large_capacity = int(capacity * (1 - small_share))
        self._used = 0
        self._lock = threading.Lock()
        self.refused = 0

    @property
    def used(self) -> int:
        return self._used

    def reserve(self, size: int, request_total: int = 0) -> bool:
        """Take ``size`` more bytes for a request that then holds ``request_total``;
        False (and nothing taken) when they do not fit."""
        if size <= 0:
            return True
        capacity = self.capacity if request_total <= self.small_bytes else self._large_capacity
        with self._lock:
            if self._used and self._used + size > capacity:
                self.refused += 1
                return False
            self._used += size
            return True

    def release(self, size: int) -> None:
        if size <= 0:
            return
        with self._lock:
            self._used = max(0, self._used - size)


def bounded_for_monitors(table: pa.Table, max_value_chars: int = MONITOR_VALUE_CHARS
                         ) -> pa.Table:
    """``table`` with every string value longer than ``max_value_chars`` inside the
    ``attributes`` and ``events`` JSON (and ``status_message``) cut to that length plus
    a marker, for the monitors only (the store keeps the full span).

    The monitors keep a run's spans in their state until the run ends, so what they
    hold grows with the bytes of open runs; cutting oversized values bounds it by the
    number of values, not their size. A rule can therefore not match past the first
    ``max_value_chars`` characters of one value (1 MiB by default). Rows without an
    oversized JSON column are not touched (one vectorised length check)."""
    # start-up: pyarrow.compute loads its kernels only when a table is cut
    import pyarrow.compute as pc

    out = table
    for name in ("attributes", "events", "status_message"):
        if name not in out.column_names:
            continue
        column = out.column(name)
        long_rows = pc.greater(pc.binary_length(column), max_value_chars)
        if not pc.any(long_rows).as_py():
            continue
        values = column.to_pylist()
        flags = long_rows.to_pylist()
        for index, flagged in enumerate(flags):
            if flagged and values[index] is not None:
                values[index] = _cut(values[index], max_value_chars,
                                     json_text=name != "status_message")
        position = out.column_names.index(name)
        out = out.set_column(position, out.schema.field(position), pa.array(values, pa.string()))
    return out


def _cut(text: str, max_chars: int, *, json_text: bool) -> str:
    if not json_text:
        return _marked(text, max_chars)
    import orjson  # start-up: orjson only for values over the cut size

    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _marked(text, max_chars)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _marked(item, max_chars) if len(item) > max_chars else item
        if isinstance(item, dict):
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [walk(inner) for inner in item]
        return item

    return orjson.dumps(walk(value)).decode()


def _marked(text: str, max_chars: int) -> str:
    return f"{text[:max_chars]}…[{len(text) - max_chars} characters not monitored]"
