"""Runs whose process ended without saying so.

``driftwatch run`` writes its run row as ``running`` when the run starts and again when it
ends. A process killed in between (``kill -9``, the OOM killer, a CI job's timeout, a hung
model call that only SIGKILL stops) never writes the second row, and the run stayed
``running`` forever. So the starting row names its process (host and pid), and every later
``driftwatch run`` on the same database first closes the runs of processes that are gone:
status ``failed``, an error saying what happened, ``ended_at`` the end of its last span.

Only rows of this host are judged (a pid means nothing elsewhere), and only rows that say
which process they belong to (batch cells are written once, when they end, by the batch
driver; collector runs have no process of ours).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from driftwatch.core import RunInfo, RunStatus

__all__ = ["PROCESS_KEY", "close_abandoned_runs", "process_marker"]

PROCESS_KEY: Final = "process"


def process_marker() -> dict[str, Any]:
    """The run attribute that names the process writing it."""
    return {PROCESS_KEY: {"host": socket.gethostname(), "pid": os.getpid()}}


def close_abandoned_runs(store: Any, now: datetime) -> list[str]:
    """Mark ``failed`` every ``running`` run of this host whose process no longer exists;
    returns their ids."""
    rows = store.query(
        "SELECT run_id, started_at, turns, attributes, "
        "(SELECT max(end_time) FROM spans s WHERE s.run_id = r.run_id) AS last_span "
        "FROM runs r WHERE status = 'running'").rows
    host = socket.gethostname()
    closed: list[str] = []
    for run_id, started_at, turns, attributes, last_span in rows:
        attrs = _as_dict(attributes)
        process = attrs.get(PROCESS_KEY)
        if not isinstance(process, dict) or process.get("host") != host:
            continue
        pid = process.get("pid")
        if not isinstance(pid, int) or pid == os.getpid() or _alive(pid):
            continue
        info = RunInfo(run_id=str(run_id), trace_id=None, scenario_id=None, variant=None,
                       model=None, seed=None, status=RunStatus.RUNNING, started_at=started_at)
        store.upsert_run(replace(
            info, status=RunStatus.FAILED, turns=int(turns or 0),
            ended_at=last_span or started_at or now, attributes=attrs,
            error=f"process {pid} ended while the run was running (killed or crashed)"))
        closed.append(str(run_id))
    return closed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return _not_a_zombie(pid)


def _not_a_zombie(pid: int) -> bool:
    """A killed child that its parent has not reaped yet still answers kill(pid, 0)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:  # no /proc (not Linux): trust kill()
        return True


def _as_dict(value: object) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}
