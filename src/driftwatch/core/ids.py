"""Identifiers. Random by default; :class:`SequentialIds` gives incrementing ids for
deterministic tests (see :mod:`driftwatch.testing`)."""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from typing import Protocol


class IdSource(Protocol):
    def run_id(self) -> str: ...
    def batch_id(self) -> str: ...
    def finding_id(self) -> str: ...


class RandomIds:
    def run_id(self) -> str:
        return "run-" + uuid.uuid4().hex[:16]

    def batch_id(self) -> str:
        return "batch-" + uuid.uuid4().hex[:12]

    def finding_id(self) -> str:
        return "f-" + uuid.uuid4().hex


class SequentialIds:
    """Incrementing ids: ``run-000001`` …; thread-safe."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def _next(self) -> int:
        with self._lock:
            return next(self._counter)

    def run_id(self) -> str:
        return f"run-{self._next():06d}"

    def batch_id(self) -> str:
        return f"batch-{self._next():06d}"

    def finding_id(self) -> str:
        return f"f-{self._next():08d}"


def random_hex(nbytes: int) -> str:
    return os.urandom(nbytes).hex()


DEFAULT_IDS: IdSource = RandomIds()
