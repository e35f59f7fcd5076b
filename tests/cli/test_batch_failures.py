"""A batch whose runs fail for infrastructure reasons says so where a reader looks first:
the console summary, the report's first screen, the Markdown summary and the exit code;
and a regression gate never passes a batch that is missing cells."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from driftwatch.cli.app import app
from driftwatch.core.errors import SandboxError
from driftwatch.report.batch import build_batch_report
from driftwatch.report.markdown import batch_markdown
from driftwatch.store import Store

DATA = Path(__file__).parents[1] / "data"
runner = CliRunner()
BROKEN = "sandbox-scenario"  # the cells of this scenario cannot start their sandbox


def _config(tmp_path: Path, seeds: int = 2) -> Path:
    broken = tmp_path / "broken.yaml"
    text = (DATA / "tiny-scenario.yaml").read_text()
    broken.write_text(re.sub(r"(?m)^id: .*$", f"id: {BROKEN}", text, count=1))
    path = tmp_path / "batch.yaml"
    path.write_text("\n".join([
        "name: failing", f"scenarios: [{DATA / 'tiny-scenario.yaml'}, {broken}]",
        "models: [simulated/schemer]", f"packs: [{DATA / 'tiny-pack.yaml'}]", "turns: 3",
        f"seeds: {seeds}", "concurrency: 2", "processes: 0", "retries: 0",
    ]) + "\n")
    return path


@pytest.fixture
def broken_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fault a machine without a working sandbox gives: the run raises before turn 1
    for one scenario's cells (threads executor, so the patch reaches the workers)."""
    import driftwatch.runner.run as batch_run

    real = batch_run.execute_run

    def execute_run(scenario: Any, *args: Any, **kwargs: Any) -> Any:
        if scenario.id == BROKEN:
            raise SandboxError("bubblewrap (bwrap) could not start: no user namespaces")
        return real(scenario, *args, **kwargs)

    monkeypatch.setattr(batch_run, "execute_run", execute_run)


def test_failed_runs_are_listed_and_exit_3(tmp_path: Path, broken_sandbox: None) -> None:
    db = tmp_path / "f.duckdb"
    result = runner.invoke(app, ["batch", str(_config(tmp_path)), "--db", str(db), "-q",
                                 "--batch-id", "batch-f"])
    assert result.exit_code == 3, result.output
    assert "NOT COMPLETED: 4 planned runs: 2 completed, 2 failed" in result.output
    listed = [line for line in result.output.splitlines() if line.startswith("  failed ")]
    assert len(listed) == 2
    assert all(BROKEN in line and "SandboxError: bubblewrap" in line for line in listed)
    group = next(line for line in result.output.splitlines() if line.startswith(f"  {BROKEN}/"))
    assert group.endswith("simulated/schemer      0/0 runs violated  (2 not completed)")
    assert "2 of 4 runs did not complete" in result.output

    html = (tmp_path / "report-batch-f.html").read_text()
    first_screen = html[: html.index('id="contents"')]
    assert "4 planned runs: 2 completed, 2 failed." in first_screen
    assert first_screen.count("SandboxError: bubblewrap") == 2
    with Store(db, read_only=True) as store:
        markdown = batch_markdown(build_batch_report(store, "batch-f"))
    assert "**4 planned runs: 2 completed, 2 failed**" in markdown
    assert "## Runs that did not complete" in markdown


def test_allow_failures_exits_0_but_still_lists_them(tmp_path: Path,
                                                     broken_sandbox: None) -> None:
    result = runner.invoke(app, ["batch", str(_config(tmp_path)), "--db",
                                 str(tmp_path / "a.duckdb"), "-q", "--allow-failures"])
    assert result.exit_code == 0, result.output
    assert "NOT COMPLETED: 4 planned runs: 2 completed, 2 failed" in result.output


def test_a_batch_with_every_run_failed_still_gets_a_report(tmp_path: Path,
                                                          broken_sandbox: None) -> None:
    broken = tmp_path / "only.yaml"
    config = _config(tmp_path).read_text().replace(f"{DATA / 'tiny-scenario.yaml'}, ", "")
    broken.write_text(config)
    result = runner.invoke(app, ["batch", str(broken), "--db", str(tmp_path / "o.duckdb"),
                                 "-q", "--batch-id", "batch-o"])
    assert result.exit_code == 3, result.output
    html = (tmp_path / "report-batch-o.html").read_text()
    assert "2 planned runs: 0 completed, 2 failed." in html


def test_the_gate_never_passes_an_incomplete_batch(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "g.duckdb"
    config = _config(tmp_path, seeds=6)
    base = runner.invoke(app, ["batch", str(config), "--db", str(db), "-q",
                               "--batch-id", "batch-base"])
    assert base.exit_code == 0, base.output
    monkeypatch.setattr("driftwatch.runner.run.execute_run", _failing_everything)
    result = runner.invoke(app, ["batch", str(config), "--db", str(db), "-q", "--baseline",
                                 "batch-base", "--fail-on", "regression", "--allow-failures"])
    assert result.exit_code == 1, result.output
    assert "is incomplete (12 of 12 planned runs have no result)" in result.output


def _failing_everything(*args: Any, **kwargs: Any) -> Any:
    raise SandboxError("sandbox gone")
