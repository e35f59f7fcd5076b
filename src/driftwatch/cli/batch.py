"""``driftwatch batch`` and ``driftwatch export``: the library calls behind the commands."""

# function-level imports: start-up — every command imports what it runs when it runs, so each
# starts in ≤ 0.5 s (tests/cli/test_startup_imports.py)
from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from driftwatch.core.errors import UsageError

if TYPE_CHECKING:
    from driftwatch.batch.config import BatchConfig
    from driftwatch.batch.driver import BatchOutcome, ProgressReporter
    from driftwatch.batch.executors import Executor
    from driftwatch.report.contents import BatchHealth
    from driftwatch.store import Store

EXIT_REGRESSION = 1  # distinct from usage errors (2)
EXIT_RUNS_FAILED = 3  # runs errored or failed (unless --allow-failures)
EXIT_INTERRUPTED = 130
SHOWN_PROBLEMS = 20  # problem cells listed in the console summary


class ExecutorName(StrEnum):
    local = "local"
    ray = "ray"


class FailOn(StrEnum):
    regression = "regression"
    never = "never"


def batch_command(
    *,
    config_path: str | None,
    db: str | None,
    resume: str | None,
    executor: ExecutorName,
    ray_address: str | None,
    concurrency: int | None,
    processes: int | None,
    baseline: str | None,
    fail_on: FailOn,
    batch_id: str | None,
    quiet: bool,
    report: bool = True,
    allow_failures: bool = False,
) -> int:
    from driftwatch.batch.config import expand_cells, load_batch_config, nightly_config
    from driftwatch.batch.driver import load_stored_batch, run_batch, start_batch
    from driftwatch.core.settings import db_path
    from driftwatch.report.health import load_batch_health
    from driftwatch.store import Store

    if resume and config_path:
        raise UsageError("give either CONFIG or --resume BATCH_ID, not both")
    if fail_on is FailOn.regression and not baseline:
        raise UsageError("--fail-on regression needs --baseline BATCH_ID")
    path = db_path(db)
    with Store(path) as store:
        if baseline:
            _require_batch(store, baseline)
        if resume:
            config, scenarios = load_stored_batch(store, resume)
            the_batch = resume
        else:
            config, scenarios = (load_batch_config(config_path) if config_path
                                 else nightly_config())
            source = str(Path(config_path).resolve()) if config_path else None
            the_batch = start_batch(store, config, scenarios, expand_cells(config, scenarios),
                                    source=source, batch_id=batch_id)
        config = _with_overrides(config, concurrency, processes)
        outcome = run_batch(store, the_batch, config, scenarios,
                            _executor(executor, config, ray_address),
                            progress=_progress(quiet))
        health = load_batch_health(store, outcome.batch_id, limit=SHOWN_PROBLEMS)
        _print_summary(store, outcome, path, health)
        if report and outcome.tally.done:
            _write_report(store, outcome.batch_id, baseline, path)
        if outcome.status == "interrupted":
            return EXIT_INTERRUPTED
        if baseline:
            gate = _gate(store, outcome.batch_id, baseline, fail_on, health)
            if gate:
                return gate
        if not health.ok and not allow_failures:
            typer.echo(f"error: {health.unsuccessful} of {health.planned} runs did not "
                       "complete (listed above; --allow-failures to exit 0)", err=True)
            return EXIT_RUNS_FAILED
    return 0


def _require_batch(store: Store, batch_id: str) -> None:
    from driftwatch.core.errors import NotFoundError

    if not store.query("SELECT 1 FROM batches WHERE batch_id = ?", [batch_id]).rows:
        raise NotFoundError(f"no batch {batch_id!r} in {store.path} (--baseline)")


def _with_overrides(config: BatchConfig, concurrency: int | None,
                    processes: int | None) -> BatchConfig:
    update: dict[str, int] = {}
    if concurrency is not None:
        if concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        update["concurrency"] = concurrency
    if processes is not None:
        if processes < 0:
            raise UsageError("--processes must be 0 (threads) or more")
        update["processes"] = processes
    return config.model_copy(update=update) if update else config


def _executor(name: ExecutorName, config: BatchConfig, ray_address: str | None) -> Executor:
    from driftwatch.batch.executors import LocalExecutor, RayExecutor, default_processes

    if name is ExecutorName.ray:
        return RayExecutor(concurrency=config.concurrency, address=ray_address)
    if ray_address:
        raise UsageError("--ray-address needs --executor ray")
    processes = config.processes
    if processes is None:
        processes = default_processes(config.concurrency, config.models)
    return LocalExecutor(concurrency=config.concurrency, processes=processes)


def _progress(quiet: bool) -> ProgressReporter:
    from driftwatch.batch.progress import LogProgress, QuietProgress, RichProgress
    from driftwatch.core.logging import configure_logging

    if quiet:
        return QuietProgress()
    if sys.stderr.isatty() and not os.environ.get("DRIFTWATCH_LOG_FORMAT"):
        return RichProgress()
    configure_logging("info")
    return LogProgress()


def _print_summary(store: Store, outcome: BatchOutcome, path: Path,
                   health: BatchHealth) -> None:
    tally = outcome.tally
    out = typer.echo
    out(f"batch {outcome.batch_id}: {outcome.status}"
        + (f" ({outcome.stop_reason})" if outcome.stop_reason else ""))
    out(f"runs: {tally.done}/{tally.total}  completed {tally.completed}  errored "
        f"{tally.errored}  failed {tally.failed}  violations {tally.violations}")
    rows = store.query(
        "SELECT c.scenario_id, c.model, c.variant, "
        "count(*) FILTER (c.status IN ('completed', 'errored')) AS finished, "
        "count(o.first_violation_turn) FILTER (c.status IN ('completed', 'errored')), "
        "count(*) FILTER (c.status NOT IN ('completed', 'errored')) AS unfinished "
        "FROM batch_cells c LEFT JOIN run_outcomes o USING (run_id) WHERE c.batch_id = ? "
        "GROUP BY ALL ORDER BY ALL", [outcome.batch_id]).rows
    width = max((len(f"{r[0]}/{r[2]}") for r in rows), default=0)
    for scenario, model, variant, finished, violating, unfinished in rows:
        failed = f"  ({unfinished} not completed)" if unfinished else ""
        out(f"  {f'{scenario}/{variant}':<{width}}  {model:<22} "
            f"{violating}/{finished} runs violated{failed}")
    if not health.ok:
        _print_problems(health, outcome.batch_id)
    out(f"database: {path}")
    if outcome.status in ("interrupted", "budget_exhausted"):
        out(f"resume: driftwatch batch --resume {outcome.batch_id} --db {path}")


def _print_problems(health: BatchHealth, batch_id: str) -> None:
    """The cells that did not complete, failed ones first, each with its error; on stderr
    too when stdout is not a terminal, so a log that keeps only errors still has them."""
    from driftwatch.alert.console import plain

    lines = [f"NOT COMPLETED: {health.headline()}"]
    width = max(len(problem.label) for problem in health.problems) if health.problems else 0
    for problem in health.problems:
        error = plain(problem.error or "")[:160] or "(no error recorded)"
        lines.append(f"  {problem.status:<8} {problem.label:<{width}}  {error}")
    hidden = health.ended_badly - len(health.problems)
    if hidden > 0:
        lines.append(f"  … and {hidden} more: driftwatch sql \"select * from batch_cells "
                     f"where batch_id = '{batch_id}' and status in ('failed', 'errored')\"")
    for line in lines:
        typer.echo(line)
    if not sys.stdout.isatty():
        typer.echo(lines[0], err=True)


def _write_report(store: Store, batch_id: str, baseline: str | None, db: Path) -> None:
    """The batch's HTML report next to the database. A report that cannot be built is a
    warning: the batch itself is stored and the gate still runs."""
    from driftwatch.cli.report import default_out, write_atomically
    from driftwatch.core.errors import DriftwatchError
    from driftwatch.report.batch import build_batch_report
    from driftwatch.report.html import render_html

    target = db.parent / default_out(batch_id).name
    try:
        report = build_batch_report(store, batch_id, baseline_id=baseline)
        write_atomically(target, render_html(report))
    except DriftwatchError as error:
        typer.echo(f"warning: no report: {error}", err=True)
        return
    typer.echo(f"report: {target}")


def _gate(store: Store, batch_id: str, baseline: str, fail_on: FailOn,
          health: BatchHealth) -> int:
    """Compare with the baseline; the Markdown summary is printed either way, and a
    significant regression exits 1 when ``--fail-on regression``. The gate never passes a
    batch that is missing cells: fewer runs would only make a regression harder to see."""
    from driftwatch.report.baseline import compare_batches
    from driftwatch.report.markdown import comparison_markdown

    if fail_on is FailOn.regression and health.missing:
        typer.echo(f"gate: {batch_id} is incomplete ({health.missing} of {health.planned} "
                   "planned runs have no result); a regression gate cannot pass it", err=True)
        return EXIT_REGRESSION
    comparison = compare_batches(store, batch_id, baseline)
    typer.echo(comparison_markdown(comparison))
    if comparison.regressed and fail_on is FailOn.regression:
        typer.echo(f"regression: {batch_id} is significantly worse than {baseline}", err=True)
        return EXIT_REGRESSION
    return 0


def export_command(*, out_dir: str, db: str | None, batch: str | None) -> int:
    from driftwatch.core.errors import NotFoundError
    from driftwatch.core.settings import db_path
    from driftwatch.store import Store
    from driftwatch.store.export import export_parquet

    path = db_path(db)
    if not path.exists():
        raise NotFoundError(f"{path}: no such database (run a batch first, or pass --db)")
    with Store(path, read_only=True) as store:
        counts = export_parquet(store, out_dir, batch_id=batch)
    for table, rows in counts.items():
        typer.echo(f"{table}: {rows} rows")
    typer.echo(f"parquet: {out_dir} (read with read_parquet('{out_dir}/spans/**/*.parquet', "
               "hive_partitioning=true))")
    return 0
