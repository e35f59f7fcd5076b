"""The Ray executor on a local two-CPU cluster: runs execute as Ray tasks and their spans
come back to the driver, the single writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftwatch.batch.config import expand_cells, load_batch_config
from driftwatch.batch.driver import run_batch, start_batch
from driftwatch.batch.executors import RayExecutor
from driftwatch.batch.progress import QuietProgress
from driftwatch.store import Store

ray = pytest.importorskip("ray")
DATA = Path(__file__).parents[1] / "data"


@pytest.mark.slow
def test_ray_executor_runs_every_cell_and_the_driver_stores_the_spans(tmp_path: Path) -> None:
    config_path = tmp_path / "ray.yaml"
    config_path.write_text(
        f"scenarios: [{DATA / 'tiny-scenario.yaml'}]\nmodels: [simulated/schemer]\n"
        f"packs: [{DATA / 'tiny-pack.yaml'}]\nseeds: 4\nturns: 3\nconcurrency: 2\n")
    config, scenarios = load_batch_config(config_path)
    executor = RayExecutor(concurrency=2, init_options={"num_cpus": 2})
    with Store(tmp_path / "ray.duckdb") as store:
        batch_id = start_batch(store, config, scenarios, expand_cells(config, scenarios),
                               source=str(config_path))
        outcome = run_batch(store, batch_id, config, scenarios, executor,
                            progress=QuietProgress())
        runs = store.query("select status, turns from runs").rows
        spans, unique, traces = store.query(
            "select count(*), count(distinct (trace_id, span_id)), count(distinct trace_id) "
            "from spans").rows[0]
        violations = store.query("select count(*) from violations").scalar()
    assert not ray.is_initialized()  # the executor shut down the cluster it started
    assert outcome.status == "completed"
    assert runs == [("completed", 3)] * 4
    assert spans == unique > 4 * 3
    assert traces == 4
    assert violations == outcome.tally.violations > 0
