"""``Store.upsert_runs``: many runs in one statement, with upsert_run's rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from driftwatch.core.records import RunInfo, RunStatus
from driftwatch.store import Store

STARTED = datetime(2026, 1, 1, tzinfo=UTC)


def info(run_id: str, **more: object) -> RunInfo:
    base = RunInfo(run_id=run_id, trace_id="t" + run_id, scenario_id=None, variant=None,
                   model="m", seed=None, status=RunStatus.RUNNING, started_at=STARTED)
    return replace(base, **more)  # type: ignore[arg-type]


def test_upsert_runs_inserts_then_updates_like_upsert_run() -> None:
    with Store() as store:
        store.upsert_runs([info("a", attributes={"source": "otlp"}), info("b", seed=3)])
        later = datetime(2026, 1, 2, tzinfo=UTC)
        store.upsert_runs([info("a", status=RunStatus.COMPLETED, model=None, turns=4,
                                started_at=later, ended_at=later)])
        rows = store.query("select run_id, status, model, seed, turns, started_at, ended_at "
                           "from runs order by run_id").rows
    assert rows == [("a", "completed", "m", None, 4, STARTED, datetime(2026, 1, 2, tzinfo=UTC)),
                    ("b", "running", "m", 3, 0, STARTED, None)]


def test_repeated_run_id_in_one_call_keeps_the_last() -> None:
    with Store() as store:
        store.upsert_runs([info("a", turns=1), info("a", turns=2)])
        store.upsert_runs([])
        assert store.query("select turns from runs").rows == [(2,)]
