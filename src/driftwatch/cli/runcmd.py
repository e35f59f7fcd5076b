"""``driftwatch run``: progress while the loop runs, a short summary after."""

# function-level imports: start-up — every command imports what it runs when it runs, so each
# starts in ≤ 0.5 s (tests/cli/test_startup_imports.py)
from __future__ import annotations

import json
import sys
from typing import Any

from driftwatch.cli.common import echo
from driftwatch.core import FindingSink
from driftwatch.core.errors import UsageError

# flag -> where it goes in model_options (the names a batch config uses)
_FLAGS = {"api_base": ("--api-base", None), "tool_choice": ("--tool-choice", "extra"),
          "max_tokens": ("--max-tokens", "extra"), "timeout_s": ("--timeout", None)}


def model_options_from_flags(
    *, api_base: str | None, tool_choice: str | None, max_tokens: int | None,
    timeout: float | None, pairs: list[str],
) -> dict[str, Any]:
    """The run's model options, validated the way a batch config's ``model_options`` are
    (before the run starts): a typo, a wrong type or a secret is one line naming the flag."""
    from pydantic import ValidationError  # start-up: pydantic is only needed for a run

    from driftwatch.batch.model_options import ModelOptions, find_secret

    top: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    flag_of: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--model-option {pair!r}: expected KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        target = top if key in ModelOptions.model_fields and key != "extra" else extra
        target[key] = value
        flag_of[key] = f"--model-option {key}"
    for name, value in (("api_base", api_base), ("tool_choice", tool_choice),
                        ("max_tokens", max_tokens), ("timeout_s", timeout)):
        if value is not None:
            flag, where = _FLAGS[name]
            (extra if where == "extra" else top)[name] = value
            flag_of[name] = flag
    if extra:
        top["extra"] = extra
    secret = find_secret(top)
    if secret:
        key = secret[-1] if secret[0] == "extra" else secret[0]
        raise UsageError(f"{flag_of.get(key, '--model-option ' + key)}: looks like a secret; "
                         "set the provider's environment variable instead")
    try:
        options = ModelOptions(**top)
    except ValidationError as error:
        first = error.errors()[0]
        loc = [str(part) for part in first["loc"]]
        key = loc[1] if loc[0] == "extra" and len(loc) > 1 else loc[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if loc[0] == "extra" and len(loc) == 1:  # the extra validator names the key itself
            key, _, message = message.partition(": ")
        raise UsageError(f"{flag_of.get(key, '--model-option ' + key)}: {message}") from None
    return options.model_dump(exclude_defaults=True)


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
    model_options: dict[str, Any] | None = None,
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
            model_options=model_options or None,
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
