"""``driftwatch run``: progress while the loop runs, a short summary after."""

# function-level imports: start-up — every command imports what it runs when it runs, so each
# starts in ≤ 0.5 s (tests/cli/test_startup_imports.py)
from __future__ import annotations

import sys

from driftwatch.cli.common import echo
from driftwatch.core import FindingSink


def run_command(
    *,
    scenario: str,
    model: str,
    variant: str | None,
    turns: int | None,
    seed: int,
    db: str | None,
    packs: list[str] | None,
    jsonl: str | None,
    capture_content: bool,
    quiet: bool,
) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from driftwatch.alert import ConsoleSink, JsonlSink
    from driftwatch.core.logging import configure_logging
    from driftwatch.core.settings import db_path
    from driftwatch.runner import run_scenario
    from driftwatch.scenario import load_scenario

    configure_logging()
    spec = load_scenario(scenario)
    total = turns or spec.max_turns
    path = db_path(db)
    err = Console(stderr=True)
    sinks: list[FindingSink] = []
    if not quiet:
        sinks.append(ConsoleSink(console=err))
    if jsonl:
        sinks.append(JsonlSink(jsonl))
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, transient=True,
        disable=quiet or not sys.stderr.isatty(),
    )
    with progress:
        task = progress.add_task(f"{spec.id} · {model}", total=total)
        summary = run_scenario(
            spec, model=model, seed=seed, variant=variant, turns=turns, db_path=path,
            sinks=sinks, packs=packs, capture_content=capture_content,
            on_turn=lambda turn: progress.update(task, completed=turn),
        )
    out = echo  # finding messages and the error may hold model text
    out(f"run {summary.run_id}  {summary.scenario_id}/{summary.variant}  {summary.model}  "
        f"seed {summary.seed}")
    out(f"status: {summary.status.value} ({summary.stopped_by})  turns: {summary.turns}  "
        f"tool calls: {summary.tool_calls}  time: {summary.wall_time_s:.2f}s")
    if summary.malformed_tool_calls or summary.generation_limits:
        out(f"malformed tool calls: {summary.malformed_tool_calls}  "
            f"replies cut at their limit: {summary.generation_limits}")
    if summary.error:
        out(f"error: {summary.error}")
    violations = summary.violations
    out(f"violations: {len(violations)}")
    for finding in violations:
        turn = "end" if finding.turn is None else str(finding.turn)
        out(f"  turn {turn:>4}  {finding.severity.label:<8}  {finding.rule_id}")
    others = [f for f in summary.findings if f.kind.value != "violation"]
    if others:
        out(f"other findings: {len(others)}")
        for finding in others:
            out(f"  {finding.kind.value:<14} {finding.rule_id}: {finding.message}")
    out(f"database: {path}")
    return 0 if summary.status.value == "completed" else 1
