"""``driftwatch serve`` stops cleanly on SIGTERM and SIGINT — sent to it alone (``kill``,
``docker stop``) or to its whole process group (a terminal's Ctrl-C, ``systemd``): exit
code 0, one summary line, no traceback, no error-level log; every acknowledged span is
stored, a run whose root span arrived is ended, one still open is ``interrupted`` and
the next start resumes it; the monitor process is gone."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest
from collector_helpers import POLICY, json_body, shell_span
from serve_process import ServeProcess, wait_for

from driftwatch.collector.info import info_path
from driftwatch.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.network_loopback]

JSON = {"content-type": "application/json"}


def post(url: str, body: bytes) -> int:
    return httpx.post(f"{url}/v1/traces", content=body, headers=JSON, timeout=30).status_code


def error_lines(stderr: str) -> list[str]:
    """Log lines at error level or above (JSON lines: stderr is not a terminal)."""
    found = []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
            found.append(line)
    return found


def gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_exits_0_quietly_and_keeps_every_acknowledged_span(
        tmp_path: Path, signum: signal.Signals, group: bool) -> None:
    db = tmp_path / "c.duckdb"
    server = ServeProcess(db, "--pack", str(POLICY), new_session=group)
    [child] = server.monitor_pids()
    # run-done: its root span arrived (the run is over); run-open: still going
    done = [shell_span(1, "ls", run="run-done", trace="d" * 32),
            shell_span(2, "rm -rf /srv", run="run-done", trace="d" * 32),
            shell_span(3, "exit", run="run-done", trace="d" * 32, parent=None)]
    still_open = [shell_span(n, "rm -rf /tmp" if n == 2 else "ls", run="run-open",
                             trace="e" * 32) for n in range(1, 5)]
    assert post(server.url, json_body(*done)) == 200
    assert post(server.url, json_body(*still_open)) == 200
    if group:
        os.killpg(server.process.pid, signum)
    else:
        server.process.send_signal(signum)
    _, stderr = server.process.communicate(timeout=120)

    assert server.process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "never retrieved" not in stderr
    assert error_lines(stderr) == []
    assert stderr.strip().splitlines()[-1] == (
        f"driftwatch collector stopped ({signum.name}): 7 spans stored; runs: 1 ended, "
        "1 interrupted (resumed at the next start)")
    assert wait_for(lambda: gone(child), timeout_s=30)
    assert not info_path(db).exists()
    with Store(db, read_only=True) as store:
        assert store.query("select count(*) from spans").scalar() == 7
        runs = dict(store.query("select run_id, status from runs").rows)
        findings = store.query("select run_id, rule_id from findings order by run_id").rows
    assert runs == {"run-done": "completed", "run-open": "interrupted"}
    assert findings == [("run-done", "recursive-delete"), ("run-open", "recursive-delete")]

    # the next start picks the interrupted run up where it was: its last span arrives,
    # its monitors still know its first four, the run ends; nothing is found twice
    server = ServeProcess(db, "--pack", str(POLICY), "--idle-timeout", "1")
    try:
        assert post(server.url, json_body(
            shell_span(5, "exit", run="run-open", trace="e" * 32, parent=None))) == 200
        assert wait_for(lambda: "driftwatch_open_runs 0.0" in server.metrics(), timeout_s=60)
    finally:
        _, stderr = server.stop()
    assert server.process.returncode == 0, stderr
    assert error_lines(stderr) == []
    with Store(db, read_only=True) as store:
        runs = dict(store.query("select run_id, status from runs").rows)
        turns = store.query("select turns from runs where run_id = 'run-open'").scalar()
        assert store.query("select count(*) from findings").scalar() == 2
    assert runs == {"run-done": "completed", "run-open": "completed"}
    assert turns == 5
