"""SIGTERM stops ``driftwatch run`` like Ctrl-C: the spans so far are flushed, the run is
stored as failed with "interrupted", one line on stderr, exit 130, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from driftwatch.store import Store


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_run_and_keeps_its_spans(tmp_path: Path, signum: int) -> None:
    db = tmp_path / "run.duckdb"
    process = subprocess.Popen(
        [sys.executable, "-m", "driftwatch", "run", "oversight-config", "--model",
         "simulated/drifter", "--turns", "5000", "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_COLOR": "1"})
    assert process.stderr is not None
    for line in process.stderr:  # the first finding: turns are being recorded
        if "oversight-config-modified" in line:
            break
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.rstrip().splitlines()[-1] == "interrupted"
    with Store(db, read_only=True) as store:
        assert store.query("select status, error from runs").rows == [("failed", "interrupted")]
        assert store.query("select count(*) from spans").scalar() > 0
