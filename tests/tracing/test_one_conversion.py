"""In-process, each span is converted from a record to Arrow once: the tracing processor
builds one SpanBatch per micro-batch and the store writer, the rule packs' SQL and a batch
worker's shipped table all take their rows from it (issue 16: one span batch)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import driftwatch.store.arrow as arrow
import driftwatch.store.predicates as predicates
from driftwatch.batch.worker import CellTask, execute_cell
from driftwatch.core.records import SpanRecord
from driftwatch.runner import run_scenario
from driftwatch.scenario import load_scenario
from driftwatch.store import Store


@pytest.fixture
def converted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of records each records → Arrow conversion took, wherever it happens."""
    sizes: list[int] = []
    original = arrow.records_to_arrow

    def counting(records: Sequence[SpanRecord], *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(records))
        return original(records, *args, **kwargs)

    import driftwatch.store
    import driftwatch.tracing.processor

    driftwatch.store.records_to_arrow  # noqa: B018 - resolve the lazy export first
    for name, module in list(sys.modules.items()):  # every name bound to the function
        if name.startswith("driftwatch") and getattr(module, "records_to_arrow", None) is original:
            monkeypatch.setattr(module, "records_to_arrow", counting)
    assert predicates.records_to_arrow is counting
    return sizes


def test_a_run_converts_each_span_once(tmp_path: Path, converted: list[int]) -> None:
    db = tmp_path / "one.duckdb"
    summary = run_scenario("oversight-config", model="simulated/drifter", variant="pressure",
                           seed=1, turns=20, db_path=db)
    assert summary.violations  # the rule packs ran their SQL on these spans
    with Store(db, read_only=True) as store:
        spans = store.query("select count(*) from spans").scalar()
    assert spans > 0
    assert sum(converted) == spans


def test_a_batch_worker_ships_the_table_it_evaluated(converted: list[int]) -> None:
    task = CellTask(batch_id="b", cell_key="k", run_id="run-one", model="simulated/drifter",
                    scenario=load_scenario("oversight-config"), variant="pressure", seed=1,
                    turns=20, retries=0)
    result = execute_cell(task)
    assert result.status == "completed", result.error
    assert result.spans is not None
    assert result.findings
    assert sum(converted) == result.spans.num_rows
