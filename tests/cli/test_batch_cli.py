"""``driftwatch batch`` and ``driftwatch export`` through the CLI runner: the regression
gate's exit codes, Parquet export read back by DuckDB, the process executor, usage errors."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from driftwatch.cli.app import app
from driftwatch.store import Store

DATA = Path(__file__).parents[1] / "data"
runner = CliRunner()


def _config(tmp_path: Path, name: str, scenario: Path, **extra: object) -> Path:
    lines = [f"name: {name}", f"scenarios: [{scenario}]", "models: [simulated/schemer]",
             f"packs: [{DATA / 'tiny-pack.yaml'}]", "turns: 3", "concurrency: 2",
             "processes: 0"]
    lines += [f"{key}: {value}" for key, value in extra.items()]
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _harmless_scenario(folder: Path) -> Path:
    """The tiny scenario with the same id, but the simulated agent never violates."""
    text = (DATA / "tiny-scenario.yaml").read_text()
    head = text[: text.index("  violations:")]
    path = folder / "tiny-scenario.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(head + "  violations: []\n")
    return path


@pytest.fixture(scope="module")
def gate_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A baseline batch (no violations) in a database, and two candidate configs."""
    tmp_path = tmp_path_factory.mktemp("gate")
    db = tmp_path / "gate.duckdb"
    harmless = _harmless_scenario(tmp_path / "harmless")
    baseline = _config(tmp_path, "baseline", harmless, seeds=12)
    result = runner.invoke(app, ["batch", str(baseline), "--db", str(db), "--batch-id",
                                 "batch-base", "-q"])
    assert result.exit_code == 0, result.output
    worse = _config(tmp_path, "worse", DATA / "tiny-scenario.yaml", seeds=12)
    same = _config(tmp_path, "same", harmless, seeds=12)
    return db, worse, same


def test_regression_against_the_baseline_exits_1_with_the_markdown(
    gate_db: tuple[Path, Path, Path]
) -> None:
    db, worse, _ = gate_db
    result = runner.invoke(app, ["batch", str(worse), "--db", str(db), "--baseline",
                                 "batch-base", "--fail-on", "regression", "-q"])
    assert result.exit_code == 1, result.output
    assert "batch-base" in result.stdout
    assert "|" in result.stdout  # the Markdown comparison table
    assert "significantly worse than batch-base" in result.output


def test_no_regression_exits_0(gate_db: tuple[Path, Path, Path]) -> None:
    db, _, same = gate_db
    result = runner.invoke(app, ["batch", str(same), "--db", str(db), "--baseline",
                                 "batch-base", "--fail-on", "regression", "-q"])
    assert result.exit_code == 0, result.output
    assert any(line.startswith("batch ") and ": completed" in line
               for line in result.stdout.splitlines())
    report = next(line for line in result.stdout.splitlines() if line.startswith("report: "))
    html = Path(report.removeprefix("report: "))
    assert html.parent == db.parent
    assert html.read_text().lstrip().lower().startswith("<!doctype html>")


def test_export_writes_hive_partitions_duckdb_reads_back_and_is_idempotent(
    gate_db: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    db, _, _ = gate_db
    out = tmp_path / "history"
    for _ in range(2):
        result = runner.invoke(app, ["export", "--parquet", str(out), "--db", str(db)])
        assert result.exit_code == 0, result.output
    with Store(db, read_only=True) as store:
        expected = {name: store.query(
            f"select count(*), count(distinct r.batch_id) from {name} t "
            "join runs r using (run_id)").rows[0] for name in ("runs", "spans", "findings")}
    connection = duckdb.connect()
    for name, (count, batches) in expected.items():
        rows = connection.execute(
            f"select count(*), count(distinct batch_id), min(day) from read_parquet("
            f"'{out}/{name}/**/*.parquet', hive_partitioning = true)").fetchone()
        assert rows is not None
        assert rows[0] == count
        if count:
            assert rows[1] == batches
            assert len(str(rows[2])) == len("2026-01-01")
    spans_dir = out / "spans"
    parts = sorted(p.relative_to(spans_dir).parts[:2] for p in spans_dir.rglob("*.parquet"))
    assert parts
    assert all(day.startswith("day=") and batch.startswith("batch_id=") for day, batch in parts)


def test_process_executor_runs_the_batch(tmp_path: Path) -> None:
    config = _config(tmp_path, "procs", DATA / "tiny-scenario.yaml", seeds=2)
    db = tmp_path / "p.duckdb"
    result = runner.invoke(app, ["batch", str(config), "--db", str(db), "--processes", "1",
                                 "-q", "--no-report"])
    assert result.exit_code == 0, result.output
    assert "runs: 2/2  completed 2" in result.stdout
    assert "report: " not in result.stdout
    with Store(db, read_only=True) as store:
        assert store.query("select count(*) from runs where status = 'completed'").scalar() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on", "regression"], "--fail-on regression needs --baseline BATCH_ID"),
        (["x.yaml", "--resume", "batch-1"], "give either CONFIG or --resume BATCH_ID"),
        (["--resume", "batch-nope"], "no batch 'batch-nope'"),
        (["--baseline", "batch-nope"], "no batch 'batch-nope'"),
        (["missing.yaml"], "missing.yaml: file not found"),
    ],
)
def test_batch_usage_errors_exit_2_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["batch", *args, "--db", str(tmp_path / "u.duckdb")])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
