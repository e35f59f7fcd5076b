"""Collector fixtures (helpers in ``collector_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from collector_helpers import make_collector

from driftwatch.collector import Collector


@pytest.fixture(autouse=True)
def _no_token_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWATCH_TOKEN", raising=False)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    c = make_collector(tmp_path)
    yield c
    c.close()
