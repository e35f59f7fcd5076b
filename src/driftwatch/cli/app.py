"""The ``driftwatch`` command. Each command is a thin wrapper over a library call; heavy
packages (litellm, langgraph, duckdb) are imported inside the commands that need them."""

from __future__ import annotations

from typing import Annotated

import typer

from driftwatch import __version__
from driftwatch.cli.common import DbOption, FormatOption, OutputFormat, handle_errors, render_rows
from driftwatch.cli.imports import import_app
from driftwatch.cli.scenarios import scenarios_app

app = typer.Typer(
    name="driftwatch",
    help="Long-horizon agentic drift monitor: run scenarios, watch traces, query them in SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(scenarios_app, name="scenarios")
app.add_typer(import_app, name="import")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"driftwatch {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Long-horizon agentic drift monitor: run scenarios, watch traces, query them in SQL."""


@app.command()
@handle_errors
def run(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario id or path to a YAML file.")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="litellm model string, or simulated/<profile>.")
    ] = "simulated/drifter",
    variant: Annotated[
        str | None,
        typer.Option("--variant", "-v", help="Scenario variant (default: the scenario's)."),
    ] = None,
    turns: Annotated[
        int | None,
        typer.Option("--turns", "-t", help="Number of turns (default: the scenario's)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Seed for the model and sampling.")] = 0,
    db: DbOption = None,
    pack: Annotated[
        list[str] | None,
        typer.Option(
            "--pack", "-p", help="Rule pack id or path (repeatable; default: the scenario's)."
        ),
    ] = None,
    jsonl: Annotated[
        str | None, typer.Option("--jsonl", help="Also append findings to this JSONL file.")
    ] = None,
    no_content: Annotated[
        bool, typer.Option("--no-content", help="Do not record message content in spans.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No live alerts or progress.")
    ] = False,
) -> None:
    """Run one scenario and store its trace and findings.

    Example: driftwatch run oversight-config --model simulated/drifter --seed 1
    """
    from driftwatch.cli.runcmd import run_command

    raise typer.Exit(
        run_command(
            scenario=scenario, model=model, variant=variant, turns=turns, seed=seed, db=db,
            packs=pack, jsonl=jsonl, capture_content=not no_content, quiet=quiet,
        )
    )


@app.command()
@handle_errors
def sql(
    query: Annotated[str, typer.Argument(help="One read-only SQL statement.")],
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
    timeout: Annotated[float, typer.Option("--timeout", help="Time limit in seconds.")] = 30.0,
) -> None:
    """Query the trace store (views: runs, spans, findings, violations, tool_calls, turns, …).

    Example: driftwatch sql "select rule_id, severity, turn from violations order by turn"
    """
    from driftwatch.core.errors import NotFoundError
    from driftwatch.core.settings import db_path
    from driftwatch.store import safe_query

    path = db_path(db)
    if not path.exists():
        raise NotFoundError(f"{path}: no such database (run a scenario first, or pass --db)")
    result = safe_query(path, query, timeout_s=timeout)
    render_rows(result.columns, result.rows, fmt)


@app.command()
@handle_errors
def stats(
    scenario: Annotated[str | None, typer.Option("--scenario", help="Scenario id.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model string.")] = None,
    variant: Annotated[str | None, typer.Option("--variant", "-v", help="Variant.")] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="Batch id.")] = None,
    at: Annotated[
        list[int] | None, typer.Option("--at", help="Turns to show survival at (repeatable).")
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Survival of "no violation yet", violation rates and pass^k per scenario × model ×
    variant, with 95% intervals, and each variant against control.

    Example: driftwatch stats --scenario oversight-config
    """
    from driftwatch.cli.stats import stats_command

    stats_command(db=db, scenario=scenario, model=model, variant=variant, batch=batch,
                  fmt=fmt, at=at)


@app.command()
@handle_errors
def replay(
    recording: Annotated[
        str, typer.Argument(help="FILE[#<task>-<trial>] (tau-bench) or FILE[#<id>] (JSONL).")
    ],
    db: DbOption = None,
    pack: Annotated[
        list[str] | None,
        typer.Option("--pack", "-p", help="Rule pack id or path (repeatable)."),
    ] = None,
    scenario_id: Annotated[
        str | None, typer.Option("--scenario-id", help="Scenario id for the run.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Replay a recorded run through the agent loop (model replay/FILE#RUN) with the
    monitors live.

    Example: driftwatch replay gpt-4o-airline.json#3-0 --pack taubench-airline
    """
    from driftwatch.cli.imports import replay_command

    replay_command(recording=recording, db=db, packs=pack, scenario_id=scenario_id,
                   as_json=as_json)


@app.command()
@handle_errors
def evaluate(
    label: Annotated[str, typer.Option("--label", help="Run attribute holding the label.")],
    positive: Annotated[
        str, typer.Option("--positive", help="Label value of the positive class.")
    ] = "true",
    batch: Annotated[str | None, typer.Option("--batch", help="Batch id.")] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="Scenario id.")] = None,
    pack: Annotated[
        list[str] | None,
        typer.Option("--pack", "-p", help="Count only this rule pack's violations (repeatable)."),
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """How flagged runs (at least one violation) relate to a run label: confusion matrix,
    precision, recall, F1, AUROC of the violation score, per-rule counts.

    Example: driftwatch evaluate --label label.success --positive false
    """
    from driftwatch.cli.imports import evaluate_command

    evaluate_command(db=db, label=label, positive=positive, batch=batch, scenario=scenario,
                     packs=pack, fmt=fmt)


def main() -> None:
    app()
