"""``driftwatch sql`` looks for a running collector without importing the collector's
server (uvicorn, the app, the alert sinks): that import was half a second of every
query's start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_sql_on_a_file_imports_only_the_collector_discovery(tmp_path: Path) -> None:
    from driftwatch.store import Store

    db = tmp_path / "empty.duckdb"
    Store(db).close()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "driftwatch", "sql", "select 1 as x",
         "--db", str(db), "--format", "csv"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "x\n1\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "driftwatch.collector.info" in imported
    heavy = {"uvicorn", "driftwatch.collector.app", "driftwatch.collector.service",
             "driftwatch.alert", "litellm", "langgraph"}
    assert not heavy & imported
