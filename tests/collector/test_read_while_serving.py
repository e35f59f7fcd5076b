"""``driftwatch stats`` works while ``serve`` holds the database (through its
``/v1/sql``, as ``sql`` does), and says the same as after the collector stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from serve_process import ServeProcess, wait_for

from driftwatch.collector.info import remote_query

pytestmark = [pytest.mark.slow, pytest.mark.network_loopback]

HERE = Path(__file__).parent


def _stats(db: Path, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRIFTWATCH_TOKEN": token} if token else dict(os.environ)
    return subprocess.run([sys.executable, "-m", "driftwatch", "stats", "--db", str(db),
                           "--format", "json"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_stats_reads_through_the_running_collector(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    server = ServeProcess(db, "--idle-timeout", "1", "--token", "tok")
    try:
        for conversation in ("conv-1", "conv-2"):
            subprocess.run([sys.executable, str(HERE / "otel_agent.py"),
                            f"{server.url}/v1/traces", "tok", conversation],
                           check=True, capture_output=True, timeout=120)
        finished = wait_for(lambda: remote_query(
            server.url, "select count(*) from runs where status = 'completed'",
            token="tok")[1][0][0] == 2, timeout_s=60)
        assert finished
        refused = _stats(db)  # the token is needed, as for sql
        assert refused.returncode != 0
        assert "token" in refused.stderr
        assert "lock" not in refused.stderr.lower()
        live = _stats(db, "tok")
        assert live.returncode == 0, live.stderr
    finally:
        server.stop()
    after = _stats(db)
    assert after.returncode == 0, after.stderr
    assert live.stdout == after.stdout
    assert '"runs": 2' in live.stdout
