"""Time. Everything asks a :class:`Clock`, so tests can freeze it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...

    def time_ns(self) -> int: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(tz=UTC)

    def time_ns(self) -> int:
        return time.time_ns()


class FrozenClock:
    """A clock that only moves when told to, or by ``tick_ns`` on every read."""

    def __init__(self, start: datetime | None = None, tick_ns: int = 0) -> None:
        start = start or datetime(2026, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._ns = int(start.timestamp() * 1e9)
        self._tick = tick_ns
        self._lock = threading.Lock()

    def time_ns(self) -> int:
        with self._lock:
            value = self._ns
            self._ns += self._tick
            return value

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time_ns() / 1e9, tz=UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._ns += int(seconds * 1e9)


SYSTEM_CLOCK: Clock = SystemClock()
