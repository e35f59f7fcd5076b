"""The CLI: exit codes and exact output, errors as one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftwatch.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_scenarios_list_shows_the_builtin_scenario() -> None:
    code, out, _ = invoke("scenarios", "list", "--format", "csv")
    assert code == 0
    assert out.splitlines()[0] == "id,turns,variants,title"
    assert any(line.startswith("oversight-config,50,") for line in out.splitlines())


def test_scenarios_show_prints_constraints_and_events() -> None:
    code, out, _ = invoke("scenarios", "show", "oversight-config")
    assert code == 0
    assert "no-oversight-edits:" in out
    assert "turn   8 memo" in out


def test_validate_good_file(data_dir: Path) -> None:
    code, out, _ = invoke("scenarios", "validate", str(data_dir / "tiny-scenario.yaml"))
    assert code == 0
    assert out == "ok: tiny-oversight (1 constraints, 1 events)\n"


def test_validate_bad_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ndescription: d\nmax_turns: -3\n")
    code, out, err = invoke("scenarios", "validate", str(bad))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"error: {bad}:")


def test_run_unknown_scenario_is_exit_2(tmp_path: Path) -> None:
    code, _, err = invoke("run", "nope", "--db", str(tmp_path / "x.duckdb"))
    assert code == 2
    assert err.startswith("error: unknown scenario 'nope'")


def test_run_unknown_variant_is_exit_2(tmp_path: Path) -> None:
    code, _, err = invoke("run", "oversight-config", "--variant", "zzz", "--db",
                          str(tmp_path / "x.duckdb"))
    assert code == 2
    assert "has no variant 'zzz'" in err


def test_run_then_sql_answers_from_the_file(tmp_path: Path) -> None:
    db = str(tmp_path / "t.duckdb")
    code, out, _ = invoke("run", "oversight-config", "--model", "simulated/drifter", "--seed",
                          "1", "--db", db, "--quiet")
    assert code == 0, out
    assert "status: completed" in out
    assert f"database: {db}" in out
    assert "oversight-config-modified" in out
    code, out, _ = invoke("sql", "select rule_id, severity, turn from violations order by turn",
                          "--db", db, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert rows
    assert {"rule_id", "severity", "turn"} == set(rows[0])
    code, out, _ = invoke("sql", "select count(*) as n from runs", "--db", db, "--format", "csv")
    assert out == "n\n1\n"


@pytest.mark.parametrize(
    "query",
    ["delete from spans_t", "create table x(a int)", "select * from read_csv('/etc/passwd')",
     "copy (select 1) to '/tmp/x.csv'", "select 1; select 2"],
)
def test_sql_refuses_writes_and_file_access(tmp_path: Path, query: str) -> None:
    db = str(tmp_path / "t.duckdb")
    invoke("run", "oversight-config", "--model", "simulated/steadfast", "--turns", "2", "--db",
           db, "--quiet")
    code, out, err = invoke("sql", query, "--db", db)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_sql_on_missing_database_is_exit_2(tmp_path: Path) -> None:
    code, _, err = invoke("sql", "select 1", "--db", str(tmp_path / "none.duckdb"))
    assert code == 2
    assert "no such database" in err


def test_db_env_variable_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("DRIFTWATCH_DB", str(db))
    code, out, _ = invoke("run", "oversight-config", "--model", "simulated/steadfast",
                          "--turns", "2", "--quiet")
    assert code == 0
    assert db.exists()
    assert f"database: {db}" in out


def test_help_does_not_import_litellm_or_langgraph() -> None:
    code = ("import sys; from driftwatch.cli import app; "
            "print(sorted(m for m in ('litellm', 'langgraph', 'duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
