"""A memory budget in bytes, shared by every request in flight.

Span counts do not bound memory: one span can carry 15 MB. The collector reserves bytes
here for each request body while it is read, for its decoding, and for the decoded
table until the spans are committed and handed to the monitors; a request that does not
fit is answered 503 with Retry-After (the same backpressure as a full ingest queue).
A request larger than the whole budget is let through when nothing else is in flight
(the body size limit bounds it), so it is never refused forever. Thread-safe.
"""

from __future__ import annotations

import threading

__all__ = ["ByteBudget"]


class ByteBudget:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._used = 0
        self._lock = threading.Lock()
        self.refused = 0

    @property
    def used(self) -> int:
        return self._used

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes; False (and nothing taken) when they do not fit."""
        if size <= 0:
            return True
        with self._lock:
            if self._used and self._used + size > self.capacity:
                self.refused += 1
                return False
            self._used += size
            return True

    def release(self, size: int) -> None:
        if size <= 0:
            return
        with self._lock:
            self._used = max(0, self._used - size)
