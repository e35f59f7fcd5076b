"""Tracing fixtures: a temp-file store and a consumer that keeps what it receives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from driftwatch.store import Store
from driftwatch.testing import RecordingConsumer


@pytest.fixture
def recording() -> RecordingConsumer:
    return RecordingConsumer()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "traces" / "driftwatch.duckdb") as opened:
        yield opened
