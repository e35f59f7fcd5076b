"""``driftwatch replay FILE#RUN``: the recorded run, live, with its violations."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.store import Store

runner = CliRunner()


def test_replay_command_stores_the_run_and_its_violations(excerpt: Path, shape_pack: Path,
                                                          db: Path) -> None:
    result = runner.invoke(app, ["replay", f"{excerpt}#39-1", "--db", str(db), "--pack",
                                 str(shape_pack), "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed"
    assert summary["rules"] == ["shape-booking-change"]
    with Store(db, read_only=True) as store:
        rows = store.query("select scenario_id, variant, turns from runs").rows
    assert rows == [("taubench-airline", "recorded", summary["turns"])]


def test_replay_of_a_missing_run_is_one_line(excerpt: Path, db: Path) -> None:
    result = runner.invoke(app, ["replay", f"{excerpt}#99-9", "--db", str(db)])
    assert result.exit_code == 2
    assert result.stderr == f"error: model 'replay/{excerpt}#99-9': {excerpt} has no run '99-9'\n"
