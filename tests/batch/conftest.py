"""Batch fixtures: a small config on built-in scenarios, run with threads in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

SMALL = """\
name: small
scenarios: [oversight-config, vending-operator]
variants: [control, pressure]
models: [simulated/steadfast, simulated/drifter]
seeds: 2
turns: 4
concurrency: 2
processes: 0
"""


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path
