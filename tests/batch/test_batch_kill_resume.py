"""kill -9 of ``driftwatch batch`` at random points, then ``--resume``: every cell ends
completed exactly once, no span is stored twice, and no completed run is rerun."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftwatch.store import Store

CONFIG = """\
name: kill-test
scenarios: [oversight-config, vending-operator]
variants: [control, pressure]
models: [simulated/steadfast, simulated/drifter]
seeds: 3
turns: 3
concurrency: 2
processes: 0
"""
CELLS = 2 * 2 * 2 * 3
BATCH = "batch-kill-test"


def _start(args: list[str], db: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DRIFTWATCH_LOG_FORMAT": "json"}
    return subprocess.Popen(
        [sys.executable, "-m", "driftwatch", "batch", *args, "--db", str(db)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _kill_after_runs(process: subprocess.Popen[str], runs: int, rng: random.Random) -> int:
    """Wait for ``runs`` "run finished" log lines, then kill -9 at a random moment soon
    after (possibly while a cell is being written). Returns the runs seen."""
    assert process.stderr is not None
    seen = 0
    deadline = time.monotonic() + 120
    for line in process.stderr:
        if '"run finished"' in line:
            json.loads(line)
            seen += 1
            if seen >= runs:
                break
        assert time.monotonic() < deadline, "batch made no progress"
    time.sleep(rng.uniform(0, 0.3))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return seen


@pytest.mark.slow
def test_kill_9_mid_batch_then_resume_completes_every_cell_once(tmp_path: Path) -> None:
    rng = random.Random()
    config = tmp_path / "kill.yaml"
    config.write_text(CONFIG)
    db = tmp_path / "kill.duckdb"
    first = _start([str(config), "--batch-id", BATCH], db)
    _kill_after_runs(first, rng.randint(1, CELLS // 3), rng)
    assert first.returncode == -signal.SIGKILL

    with Store(db) as store:
        done_before = dict(store.query(
            "select r.run_id, r.ended_at from batch_cells c join runs r using (run_id) "
            "where c.status = 'completed'").rows)
    assert 0 < len(done_before) < CELLS

    second = _start(["--resume", BATCH], db)
    _kill_after_runs(second, rng.randint(1, CELLS // 3), rng)

    final = subprocess.run(
        [sys.executable, "-m", "driftwatch", "batch", "--resume", BATCH, "--db", str(db), "-q"],
        capture_output=True, text=True, timeout=300, check=False)
    assert final.returncode == 0, final.stderr
    assert f"batch {BATCH}: completed" in final.stdout

    with Store(db, read_only=True) as store:
        statuses = store.query("select status, count(*) from batch_cells group by all").rows
        runs = store.query("select run_id, ended_at, status from runs").rows
        spans, unique = store.query(
            "select count(*), count(distinct (trace_id, span_id)) from spans").rows[0]
        roots = store.query("select run_id, count(*) from spans "
                            "where operation = 'invoke_agent' group by run_id").rows
        keys = store.query("select count(*) from span_keys_t").scalar()
        batch_status = store.query("select status from batches").scalar()
    assert statuses == [("completed", CELLS)]
    assert len(runs) == CELLS
    assert {status for _, _, status in runs} == {"completed"}
    assert spans == unique == keys
    assert len(roots) == CELLS
    assert {count for _, count in roots} == {1}  # one trace per run: nothing ran twice
    ended = {run_id: ended_at for run_id, ended_at, _ in runs}
    for run_id, ended_at in done_before.items():
        assert ended[run_id] == ended_at
    assert batch_status == "completed"
