"""At start the collector evaluates again the runs the last one left open (a crash
leaves them ``running``, or with spans and no row; a stop leaves them ``interrupted``);
it never touches a batch's run, even one a killed batch left ``running``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from collector_helpers import make_collector

from driftwatch.core.records import RunInfo, RunStatus
from driftwatch.store import Store
from driftwatch.testing import RecordFactory


def crashed_db(tmp_path: Path) -> Path:
    """What a ``kill -9`` leaves: committed spans whose monitoring never happened."""
    db = tmp_path / "c.duckdb"
    now = datetime.now(UTC)
    with Store(db) as store:
        for run_id, source in (("otlp-running", "otlp"), ("no-row", None),
                               ("batch-running", None)):
            factory = RecordFactory(run_id=run_id, trace_id=run_id.encode().hex()[:32])
            store.write_spans([  # children of a root span not sent yet
                replace(factory.tool_call("shell", {"command": command}, turn),
                        parent_span_id="a" * 16)
                for turn, command in ((1, "ls"), (2, "rm -rf /x"))])
            if run_id == "no-row":
                continue
            attributes = {"source": source} if source else {"stopped_by": None}
            store.upsert_run(RunInfo(run_id=run_id, trace_id=None, scenario_id=None,
                                     variant=None, model="m", seed=None,
                                     status=RunStatus.RUNNING, started_at=now,
                                     batch_id=None if source else "b1",
                                     attributes=attributes))
    return db


def test_open_runs_are_monitored_again_and_go_on(tmp_path: Path) -> None:
    db = crashed_db(tmp_path)
    collector = make_collector(tmp_path)
    try:
        assert collector.resumed.by_status == {"running": 1, "no row": 1}
        assert collector.resumed.spans == 4
        assert collector.flush()
        assert collector.runs.open_runs == 2
        findings = collector.store.query(
            "select run_id, rule_id from findings order by run_id").rows
    finally:
        collector.close()
    assert findings == [("no-row", "recursive-delete"), ("otlp-running", "recursive-delete")]
    with Store(db, read_only=True) as store:
        statuses = dict(store.query("select run_id, status from runs").rows)
    # no root span yet: the stop interrupts them again; the batch's run is left alone
    assert statuses == {"otlp-running": "interrupted", "no-row": "interrupted",
                        "batch-running": "running"}

    collector = make_collector(tmp_path, root_grace_s=0.0, idle_timeout_s=0.1)
    try:  # resumed again: the same finding, not a second one
        assert collector.resumed.by_status == {"interrupted": 2}
        assert collector.flush()
        assert collector.store.query("select count(*) from findings").scalar() == 2
    finally:
        collector.close()


def test_a_stored_span_sent_again_after_a_restart_changes_nothing(tmp_path: Path) -> None:
    """The retry of an acknowledged span reaches neither the monitors nor the run row."""
    from collector_helpers import call, json_body, shell_span

    collector = make_collector(tmp_path, root_grace_s=0.0)
    body = json_body(shell_span(1, "ls"), shell_span(2, "rm -rf /srv"),
                     shell_span(3, "exit", parent=None))
    headers = {"content-type": "application/json"}
    try:
        assert call(collector.app, "POST", "/v1/traces", body, headers).status == 200
        assert collector.flush()
    finally:
        collector.close()
    with Store(tmp_path / "c.duckdb", read_only=True) as store:
        before = store.query("select * from runs").rows
    collector = make_collector(tmp_path, root_grace_s=0.0)
    try:
        assert call(collector.app, "POST", "/v1/traces", body, headers).status == 200
        assert collector.flush()
        assert collector.runs.open_runs == 0
        findings = collector.store.query("select count(*) from findings").scalar()
    finally:
        collector.close()
    with Store(tmp_path / "c.duckdb", read_only=True) as store:
        after = store.query("select * from runs").rows
    assert findings == 1
    assert after == before
    assert [row[7] for row in after] == ["completed"]  # the status column
