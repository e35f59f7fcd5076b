"""A run whose process is killed (kill -9: no handler runs) does not stay ``running``: the
next run on the same database closes it as failed, naming the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from driftwatch.runner import run_scenario
from driftwatch.store import Store

KILLED_AT_TURN_2 = textwrap.dedent("""
    import os, signal, sys
    from driftwatch.runner import run_scenario

    def die(turn):
        if turn == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    run_scenario("oversight-config", model="simulated/drifter", turns=50, db_path=sys.argv[1],
                 on_turn=die)
""")


@pytest.mark.slow
def test_a_killed_run_is_closed_as_failed_by_the_next_run(tmp_path: Path) -> None:
    db = tmp_path / "runs.duckdb"
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_TURN_2, str(db)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == -9, killed.stderr
    with Store(db) as store:
        assert store.query("select status from runs").rows == [("running",)]
    run_scenario("oversight-config", model="simulated/steadfast", turns=1, db_path=db)
    with Store(db, read_only=True) as store:
        rows = store.query("select model, status, error, ended_at is not null from runs "
                           "order by started_at").rows
    assert rows[0][:2] == ("simulated/drifter", "failed")
    assert rows[0][2].startswith("process ")
    assert "ended while the run was running" in rows[0][2]
    assert rows[0][3] is True
    assert rows[1][:2] == ("simulated/steadfast", "completed")


def test_a_run_of_a_live_process_is_left_running(tmp_path: Path) -> None:
    """This process is alive: its own running row (as a concurrent run would see it) stays."""
    from datetime import UTC, datetime

    from driftwatch.core import RunInfo, RunStatus
    from driftwatch.runner.abandoned import close_abandoned_runs, process_marker

    with Store(tmp_path / "live.duckdb") as store:
        store.upsert_run(RunInfo(run_id="r1", trace_id=None, scenario_id="s", variant="v",
                                 model="m", seed=0, status=RunStatus.RUNNING,
                                 started_at=datetime.now(UTC), attributes=process_marker()))
        # a row of a process on another host is not ours to judge either
        store.upsert_run(RunInfo(run_id="r2", trace_id=None, scenario_id="s", variant="v",
                                 model="m", seed=0, status=RunStatus.RUNNING,
                                 started_at=datetime.now(UTC),
                                 attributes={"process": {"host": "elsewhere", "pid": 1}}))
        assert close_abandoned_runs(store, datetime.now(UTC)) == []
        assert store.query("select count(*) from runs where status = 'running'").scalar() == 2
