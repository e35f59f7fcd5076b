"""The batch driver in-process (thread executor): every cell once, budgets, retries of
provider faults, resume without reruns or duplicate spans."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftwatch.batch.config import BatchConfig, expand_cells, load_batch_config
from driftwatch.batch.driver import BatchOutcome, load_stored_batch, run_batch, start_batch
from driftwatch.batch.executors import LocalExecutor
from driftwatch.batch.progress import QuietProgress
from driftwatch.store import Store
from driftwatch.testing import RecordFactory
from driftwatch.testing.fake_openai import FakeOpenAIServer, Fault

DATA = Path(__file__).parents[1] / "data"


def _run(store: Store, config: BatchConfig, scenarios: list, batch_id: str | None = None
         ) -> BatchOutcome:
    if batch_id is None:
        batch_id = start_batch(store, config, scenarios, expand_cells(config, scenarios),
                               source=None)
    executor = LocalExecutor(concurrency=config.concurrency, processes=0)
    return run_batch(store, batch_id, config, scenarios, executor, progress=QuietProgress())


def _cells(store: Store, batch_id: str) -> dict[str, tuple]:
    rows = store.query("select cell_key, status, attempts, error, run_id from batch_cells "
                       "where batch_id = ?", [batch_id]).rows
    return {row[0]: row[1:] for row in rows}


def test_every_cell_runs_once_and_lands_in_the_store(tmp_path: Path, small_config: Path) -> None:
    config, scenarios = load_batch_config(small_config)
    with Store(tmp_path / "b.duckdb") as store:
        outcome = _run(store, config, scenarios)
        assert outcome.status == "completed"
        assert (outcome.tally.done, outcome.tally.completed) == (16, 16)
        cells = _cells(store, outcome.batch_id)
        assert {status for status, *_ in cells.values()} == {"completed"}
        runs = store.query("select run_id, status, turns, batch_id from runs").rows
        assert sorted(r[0] for r in runs) == sorted(c[3] for c in cells.values())
        assert {(r[1], r[2], r[3]) for r in runs} == {("completed", 4, outcome.batch_id)}
        spans, unique = store.query(
            "select count(*), count(distinct (trace_id, span_id)) from spans").rows[0]
        assert spans == unique > 16 * 4
        assert store.query("select count(distinct run_id) from spans").scalar() == 16
        status = store.query("select status from batches where batch_id = ?",
                             [outcome.batch_id]).scalar()
        assert status == "completed"
        assert outcome.tally.violations == store.query(
            "select count(*) from violations").scalar()


def test_batch_budget_skips_the_rest_and_resume_finishes_only_those(
    tmp_path: Path, small_config: Path
) -> None:
    config, scenarios = load_batch_config(small_config)
    tight = BatchConfig.model_validate({
        **config.model_dump(), "concurrency": 1, "budgets": {"batch": {"tokens": 1}}})
    with Store(tmp_path / "b.duckdb") as store:
        first = _run(store, tight, scenarios)
        assert first.status == "budget_exhausted"
        cells = _cells(store, first.batch_id)
        done = {key: c for key, c in cells.items() if c[0] == "completed"}
        assert len(done) == 1
        assert sum(1 for c in cells.values() if c[0] == "skipped") == 15
        ended = dict(store.query("select run_id, ended_at from runs").rows)
        # a leftover span of an unfinished cell (as a non-transactional writer might leave)
        pending_run = next(c[3] for c in cells.values() if c[0] == "skipped")
        store.write_spans([RecordFactory(run_id=pending_run).record("leftover", 1)])

        resumed = _run(store, config, scenarios, batch_id=first.batch_id)
        assert resumed.status == "completed"
        assert resumed.tally.finished_here == 15
        assert resumed.tally.done == 16
        after = dict(store.query("select run_id, ended_at from runs").rows)
        assert len(after) == 16
        for run_id, ended_at in ended.items():
            assert after[run_id] == ended_at  # the completed cell was not rerun
        assert store.query("select count(*) from spans where name = 'leftover'").scalar() == 0
        spans, unique = store.query(
            "select count(*), count(distinct (trace_id, span_id)) from spans").rows[0]
        assert spans == unique


def test_resume_reloads_the_stored_config(tmp_path: Path, small_config: Path) -> None:
    config, scenarios = load_batch_config(small_config)
    with Store(tmp_path / "b.duckdb") as store:
        batch_id = start_batch(store, config, scenarios, expand_cells(config, scenarios),
                               source=None)  # no file to reread: the stored JSON is used
        stored, specs = load_stored_batch(store, batch_id)
    assert stored == config
    assert [spec.id for spec in specs] == ["oversight-config", "vending-operator"]


def test_provider_faults_are_retried_and_a_run_that_keeps_failing_is_errored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test")  # a key in model_options is refused
    # cell 1: all three attempts fail; cell 2: the first attempt fails, the second passes
    script = [Fault.status(503)] * 4 + [{"content": "Tidying the notes."}] * 10
    with FakeOpenAIServer(script) as server:
        path = tmp_path / "fake.yaml"
        path.write_text(
            f"scenarios: [{DATA / 'tiny-scenario.yaml'}]\nmodels: [openai/fake-model]\n"
            "seeds: 2\nturns: 2\nconcurrency: 1\nprocesses: 0\nretries: 2\n"
            f"model_options: {{api_base: '{server.base_url}', max_retries: 0}}\n")
        config, scenarios = load_batch_config(path)
        with Store(tmp_path / "b.duckdb") as store:
            outcome = _run(store, config, scenarios)
            cells = sorted(_cells(store, outcome.batch_id).items())
            runs = dict(store.query("select run_id, status from runs").rows)
    assert outcome.status == "completed"
    (_, first), (_, second) = cells
    assert first[:2] == ("errored", 3)
    assert "503" in first[2]
    assert "after 3 attempts" in first[2]
    assert second[:3] == ("completed", 2, None)
    assert runs == {first[3]: "errored", second[3]: "completed"}


def test_run_token_budget_stops_the_run_as_errored_without_retry(
    tmp_path: Path, small_config: Path
) -> None:
    config, scenarios = load_batch_config(small_config)
    limited = BatchConfig.model_validate({
        **config.model_dump(), "scenarios": ["oversight-config"], "models": ["simulated/drifter"],
        "variants": ["pressure"], "seeds": 1, "turns": 30,
        "budgets": {"run": {"tokens": 1500}}})
    with Store(tmp_path / "b.duckdb") as store:
        outcome = _run(store, limited, scenarios[:1])
        (status, attempts, error, run_id), = _cells(store, outcome.batch_id).values()
        turns = store.query("select turns from runs where run_id = ?", [run_id]).scalar()
    assert (status, attempts) == ("errored", 1)
    assert error.startswith("run token budget:")
    assert 0 < turns < 30
