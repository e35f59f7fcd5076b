"""The ``driftwatch`` command. Each command is a thin wrapper over a library call; heavy
packages (litellm, langgraph, duckdb) are imported inside the commands that need them."""

# function-level imports: start-up — every command imports what it runs when it runs, so each
# starts in ≤ 0.5 s (tests/cli/test_startup_imports.py)
from __future__ import annotations

from typing import Annotated

import typer

from driftwatch import __version__
from driftwatch.cli.batch import ExecutorName, FailOn
from driftwatch.cli.common import (
    DbOption,
    FormatOption,
    JsonAliasOption,
    OutputFormat,
    handle_errors,
    output_format,
    render_rows,
    require_extra,
    stop_on_sigterm,
)
from driftwatch.cli.imports import import_app
from driftwatch.cli.scenarios import scenarios_app

app = typer.Typer(
    name="driftwatch",
    help="Long-horizon agentic drift monitor: run scenarios, watch traces, query them in SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    # every command and group inherits these from the root context
    context_settings={"help_option_names": ["-h", "--help"]},
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
@stop_on_sigterm
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
    api_base: Annotated[
        str | None, typer.Option("--api-base", help="Base URL of an OpenAI-compatible server.")
    ] = None,
    tool_choice: Annotated[
        str | None, typer.Option("--tool-choice", help="auto, required or none (sent as is).")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Most tokens per model reply.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds per model call (default 60).")
    ] = None,
    model_option: Annotated[
        list[str] | None,
        typer.Option("--model-option", "-o", help="KEY=VALUE as in a batch config's "
                     "model_options (VALUE read as JSON when it parses; repeatable)."),
    ] = None,
) -> None:
    """Run one scenario and store its trace and findings.

    Example: driftwatch run oversight-config --model simulated/drifter --seed 1

    A local model: driftwatch run oversight-config -m llamacpp/smollm2 --max-tokens 128
    """
    from driftwatch.cli.runcmd import model_options_from_flags, run_command

    options = model_options_from_flags(api_base=api_base, tool_choice=tool_choice,
                                       max_tokens=max_tokens, timeout=timeout,
                                       pairs=model_option or [])
    raise typer.Exit(
        run_command(
            scenario=scenario, model=model, variant=variant, turns=turns, seed=seed, db=db,
            packs=pack, jsonl=jsonl, capture_content=not no_content, quiet=quiet,
            model_options=options,
        )
    )


TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="DRIFTWATCH_TOKEN",
                 help="Bearer token of the collector (default: $DRIFTWATCH_TOKEN).",
                 show_default=False),
]


@app.command()
@handle_errors
def sql(
    query: Annotated[str, typer.Argument(help="One read-only SQL statement.")],
    db: DbOption = None,
    fmt: FormatOption = OutputFormat.table,
    timeout: Annotated[float, typer.Option("--timeout", help="Time limit in seconds.")] = 30.0,
    token: TokenOption = None,
) -> None:
    """Query the trace store (views: runs, spans, findings, violations, tool_calls, turns, …).
    While `driftwatch serve` holds the database, the query goes through it (read-only).

    Example: driftwatch sql "select rule_id, severity, turn from violations order by turn"
    """
    from driftwatch.cli.collector import query_via_collector
    from driftwatch.core.errors import NotFoundError
    from driftwatch.core.settings import db_path

    path = db_path(db)
    if not path.exists():
        raise NotFoundError(f"{path}: no such database (run a scenario first, or pass --db)")
    remote = query_via_collector(path, query, token=token, timeout=timeout)
    if remote is not None:
        render_rows(remote[0], remote[1], fmt)
        return
    from driftwatch.store import safe_query

    result = safe_query(path, query, timeout_s=timeout)
    render_rows(result.columns, result.rows, fmt)


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port).")] = 4318,
    db: DbOption = None,
    token: TokenOption = None,
    pack: Annotated[
        list[str] | None,
        typer.Option("--pack", "-p", help="Rule pack id or path (repeatable; default: all "
                     "built-in packs)."),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="Post alerts to this URL (Slack-compatible).")
    ] = None,
    jsonl: Annotated[
        str | None, typer.Option("--jsonl", help="Also append findings to this JSONL file.")
    ] = None,
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="Alert on findings at least this severe.")
    ] = "low",
    cooldown: Annotated[
        float | None, typer.Option("--cooldown", help="Seconds between alerts of one rule.")
    ] = None,
    dedupe: Annotated[
        bool, typer.Option("--dedupe", help="Alert once per rule and run.")
    ] = False,
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", help="Seconds without spans that end a run.")
    ] = 30.0,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", help="Largest request body, before and after gzip.")
    ] = 16.0,
    allow_host: Annotated[
        list[str] | None,
        typer.Option("--allow-host", help="Host name clients may use to reach the collector "
                     "(repeatable; default: loopback names on a loopback bind, any name "
                     "otherwise; '*': any)."),
    ] = None,
    grpc_port: Annotated[
        int | None,
        typer.Option("--grpc-port", help="Also serve OTLP/gRPC on this port (4317 is the "
                     "usual one; 0: any free port), on the same address.",
                     show_default=False),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No alerts on the console.")] = False,
) -> None:
    """Receive OTLP traces, logs and metrics (HTTP; gRPC with --grpc-port) from any
    OpenTelemetry-instrumented agent, store them and run the monitors on them live
    (Ctrl-C stops it). A token is required unless the address is loopback; clients send
    `Authorization: Bearer <token>`.

    Example: driftwatch serve --port 4318 --grpc-port 4317 --webhook https://hooks.slack.com/services/...
    """
    require_extra("uvicorn", "driftwatch serve")
    if grpc_port is not None:
        require_extra("grpc", "driftwatch serve --grpc-port")
    from driftwatch.cli.collector import serve_command

    serve_command(host=host, port=port, db=db, token=token, packs=pack, webhook=webhook,
                  jsonl=jsonl, min_severity=min_severity, cooldown=cooldown, dedupe=dedupe,
                  idle_timeout=idle_timeout, max_body_mb=max_body_mb,
                  allowed_hosts=tuple(allow_host or ()), grpc_port=grpc_port, quiet=quiet)


@app.command()
@handle_errors
@stop_on_sigterm
def watch(
    url: Annotated[
        str | None, typer.Option("--url", help="Collector URL (default: the one serving --db, "
                                 "else http://127.0.0.1:4318).", show_default=False)
    ] = None,
    db: DbOption = None,
    token: TokenOption = None,
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="Show findings at least this severe.")
    ] = "low",
    limit: Annotated[
        int | None, typer.Option("--limit", help="Stop after this many findings.")
    ] = None,
) -> None:
    """Print findings live from a running collector, one line each (Ctrl-C stops it).

    Example: driftwatch watch --min-severity high
    """
    from driftwatch.cli.collector import watch_command

    watch_command(url=url, db=db, token=token, min_severity=min_severity, limit=limit)


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
    token: TokenOption = None,
) -> None:
    """Survival of "no violation yet", violation rates and pass^k per scenario × model ×
    variant, with 95% intervals, and each variant against control. While `driftwatch
    serve` holds the database, the queries go through it (read-only), as `sql` does.

    Example: driftwatch stats --scenario oversight-config
    """
    from driftwatch.cli.stats import stats_command

    stats_command(db=db, scenario=scenario, model=model, variant=variant, batch=batch,
                  fmt=fmt, at=at, token=token)


@app.command()
@handle_errors
@stop_on_sigterm
def batch(
    config: Annotated[
        str | None,
        typer.Argument(help="Batch config YAML (default: the built-in nightly suite)."),
    ] = None,
    db: DbOption = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", help="Finish this batch: run only its unfinished cells."),
    ] = None,
    executor: Annotated[
        ExecutorName, typer.Option("--executor", "-e", help="Where runs execute.")
    ] = ExecutorName.local,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster to join (with -e ray).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", help="Runs in flight at once.")
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option("--processes", help="Worker processes (0: threads in this process)."),
    ] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="Compare with this batch afterwards.")
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option("--fail-on", help="Exit 1 when the comparison finds a regression."),
    ] = FailOn.never,
    batch_id: Annotated[
        str | None, typer.Option("--batch-id", help="Id for the new batch (default: random).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    report: Annotated[
        bool,
        typer.Option("--report/--no-report",
                     help="Write the HTML report next to the database afterwards."),
    ] = True,
    allow_failures: Annotated[
        bool,
        typer.Option("--allow-failures",
                     help="Exit 0 even when runs errored or failed (they are still listed)."),
    ] = False,
) -> None:
    """Run a matrix of scenarios × variants × models × seeds into the store.

    Exit codes: 0 every run completed; 1 regression against --baseline (or an incomplete
    batch under the gate); 2 usage error; 3 runs errored or failed; 130 interrupted.

    Example: driftwatch batch nightly.yaml --baseline batch-1a2b3c --fail-on regression
    """
    if executor is ExecutorName.ray:
        require_extra("ray", "--executor ray")
    from driftwatch.cli.batch import batch_command

    raise typer.Exit(
        batch_command(
            config_path=config, db=db, resume=resume, executor=executor,
            ray_address=ray_address, concurrency=concurrency, processes=processes,
            baseline=baseline, fail_on=fail_on, batch_id=batch_id, quiet=quiet,
            report=report, allow_failures=allow_failures,
        )
    )


@app.command()
@handle_errors
def export(
    parquet: Annotated[
        str, typer.Option("--parquet", help="Directory for hive-partitioned Parquet.")
    ],
    db: DbOption = None,
    batch_id: Annotated[
        str | None, typer.Option("--batch", help="Export only this batch.")
    ] = None,
) -> None:
    """Export runs, spans, findings and alerts as Parquet partitioned by day and batch.

    Example: driftwatch export --parquet history/
    """
    from driftwatch.cli.batch import export_command

    raise typer.Exit(export_command(out_dir=parquet, db=db, batch=batch_id))


@app.command()
@handle_errors
@stop_on_sigterm
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
    fmt: FormatOption = OutputFormat.table,
    as_json: JsonAliasOption = False,
) -> None:
    """Replay a recorded run through the agent loop (model replay/FILE#RUN) with the
    monitors live.

    Example: driftwatch replay gpt-4o-airline.json#3-0 --pack taubench-airline
    """
    from driftwatch.cli.imports import replay_command

    replay_command(recording=recording, db=db, packs=pack, scenario_id=scenario_id,
                   fmt=output_format(fmt, as_json))


@app.command()
@handle_errors
def report(
    batch_id: Annotated[str, typer.Argument(help="The batch to report on.")],
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="Compare with this batch (better/worse).")
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="HTML file (default: report-BATCH_ID.html).")
    ] = None,
    markdown: Annotated[
        str | None, typer.Option("--markdown", help="Also write a Markdown summary ('-': stdout).")
    ] = None,
    db: DbOption = None,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Significance level of the baseline comparison.")
    ] = 0.05,
    max_runs: Annotated[
        int, typer.Option("--max-runs", help="Runs listed turn by turn per scenario × model.")
    ] = 5,
) -> None:
    """Write a self-contained HTML report of a batch (works offline), and optionally a
    Markdown summary for CI logs and pull requests.

    Example: driftwatch report batch-1a2b --baseline batch-0f9e --markdown -
    """
    from driftwatch.cli.report import report_command

    raise typer.Exit(
        report_command(batch_id=batch_id, baseline=baseline, out=out, markdown=markdown,
                       db=db, alpha=alpha, max_runs=max_runs)
    )


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
