"""Fixtures for the importer tests: the tau-bench excerpt, the shape-check pack, a store."""

from __future__ import annotations

from pathlib import Path

import pytest

TAUBENCH = Path(__file__).resolve().parents[1] / "data" / "taubench"


@pytest.fixture
def excerpt() -> Path:
    """12 recorded GPT-4o airline runs (6 rewards 1, 6 rewards 0) cut from the shared set."""
    return TAUBENCH / "gpt-4o-airline-excerpt.json"


@pytest.fixture
def shape_pack() -> Path:
    return TAUBENCH / "shape-check-pack.yaml"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"
