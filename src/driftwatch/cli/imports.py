"""``driftwatch import …``: recorded runs from other tools' files into the store, with
the monitors run over them (see ``docs/importers.md``). The formats are the importer
registry's (:mod:`driftwatch.core.importer`): ``import FILE`` detects the format,
``import NAME FILE`` (or ``--importer NAME``) names it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from typer.core import TyperGroup

from driftwatch.cli.common import (
    DbOption,
    FormatOption,
    JsonAliasOption,
    OutputFormat,
    handle_errors,
    output_format,
    render_rows,
    render_summary,
)
from driftwatch.core.errors import NotFoundError
from driftwatch.core.settings import db_path

AUTO: Final = "auto"


class _DetectingGroup(TyperGroup):
    """``driftwatch import FILE`` is ``driftwatch import auto FILE``: a first word that
    names no subcommand is taken as the file, unless it names a registered importer
    without a subcommand of its own (a plugin): ``import NAME FILE`` is then
    ``import auto --importer NAME FILE``."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            # the registry (importlib.metadata, plugins) loads on this path only: start-up time
            from driftwatch.core.importer import registered_importers

            named = args[0] in registered_importers() and len(args) > 1
            args = [AUTO, "--importer", args[0], *args[1:]] if named else [AUTO, *args]
        return super().resolve_command(ctx, args)


import_app = typer.Typer(
    cls=_DetectingGroup,
    help="Import recorded agent runs as traces (monitors run over them). "
         "`driftwatch import FILE` detects the format; `driftwatch import NAME FILE` names it.",
    no_args_is_help=True,
)

PathArgument = Annotated[Path, typer.Argument(help="The file to import.")]
PackOption = Annotated[
    list[str] | None,
    typer.Option("--pack", "-p", help="Rule pack id or path to run as well (repeatable)."),
]
ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Model string for the runs.")
]
ScenarioOption = Annotated[
    str | None, typer.Option("--scenario-id", help="Scenario id for the runs.")
]
ImporterOption = Annotated[
    str | None,
    typer.Option("--importer", help="The format's importer name (default: detected)."),
]


def _import(name: str | None, path: Path, db: str | None, packs: list[str] | None,
            fmt: OutputFormat, *, scenario_id: str | None = None,
            model: str | None = None) -> None:
    # the importers pull in the store and the OTLP decoder: only for this command
    from driftwatch.importers import (
        ImportedRun,
        conversation_spans,
        detect_importer,
        get_importer,
        store_runs,
    )

    if not path.is_file():
        raise NotFoundError(f"{path}: no such file")
    found = get_importer(name) if name is not None else detect_importer(path)
    loaded = found.load(path, scenario_id=scenario_id, model=model)  # validates everything
    runs = [item if isinstance(item, ImportedRun) else conversation_spans(item, index)
            for index, item in enumerate(loaded)]
    summary = store_runs(runs, source=found.name, path=path, db_path=db_path(db),
                         packs=list(packs or ()))
    data = summary.as_dict()
    render_summary(data, f"{path}: {data['imported']} run(s) imported, {data['skipped']} "
                   f"already stored; {data['spans']} spans, {data['violations']} violations "
                   f"in {data['flagged_runs']} run(s)", fmt)


@import_app.command(AUTO)
@handle_errors
def auto(path: PathArgument, importer: ImporterOption = None, db: DbOption = None,
         model: ModelOption = None, scenario_id: ScenarioOption = None,
         pack: PackOption = None, fmt: FormatOption = OutputFormat.table,
         as_json: JsonAliasOption = False) -> None:
    """A file in any registered format, detected from its first records (`auto` may be
    left out); --importer names the format instead.

    Example: driftwatch import gpt-4o-airline.json --pack taubench-airline
    """
    _import(importer, path, db, pack, output_format(fmt, as_json), scenario_id=scenario_id,
            model=model)


@import_app.command("tau-bench")
@handle_errors
def tau_bench(path: PathArgument, db: DbOption = None, model: ModelOption = None,
              scenario_id: ScenarioOption = None, pack: PackOption = None,
              fmt: FormatOption = OutputFormat.table, as_json: JsonAliasOption = False) -> None:
    """A tau-bench results file (JSON list of {task_id, trial, reward, info, traj}).

    Example: driftwatch import tau-bench gpt-4o-airline.json --pack taubench-airline
    """
    _import("tau-bench", path, db, pack, output_format(fmt, as_json), scenario_id=scenario_id,
            model=model)


@import_app.command("openai-jsonl")
@handle_errors
def openai_jsonl(path: PathArgument, db: DbOption = None, model: ModelOption = None,
                 scenario_id: ScenarioOption = None, pack: PackOption = None,
                 fmt: FormatOption = OutputFormat.table, as_json: JsonAliasOption = False) -> None:
    """OpenAI chat conversations, one {"messages": [...], ...} object per line.

    Example: driftwatch import openai-jsonl chats.jsonl --model openai/gpt-4o
    """
    _import("openai-jsonl", path, db, pack, output_format(fmt, as_json),
            scenario_id=scenario_id, model=model)


@import_app.command("otlp-json")
@handle_errors
def otlp_json(path: PathArgument, db: DbOption = None, pack: PackOption = None,
              fmt: FormatOption = OutputFormat.table, as_json: JsonAliasOption = False) -> None:
    """OTLP JSON lines as the OpenTelemetry file exporter writes them.

    Example: driftwatch import otlp-json traces.jsonl
    """
    _import("otlp-json", path, db, pack, output_format(fmt, as_json))


def evaluate_command(*, db: str | None, label: str, positive: str, batch: str | None,
                     scenario: str | None, packs: list[str] | None, fmt: str) -> None:
    """``driftwatch evaluate``: load, evaluate, print a summary table and the per-rule
    table (or one JSON object)."""
    # the store (DuckDB) and the statistics load only for this command (start-up time)
    from driftwatch.report.evaluate import evaluate_runs, load_labelled_runs
    from driftwatch.store import Store

    path = db_path(db)
    if not path.exists():
        raise NotFoundError(f"{path}: no such database (import or run first, or pass --db)")
    with Store(path, read_only=True) as store:
        runs = load_labelled_runs(store, label=label, positive=positive, batch=batch,
                                  scenario=scenario, packs=list(packs or ()))
    result = evaluate_runs(runs, label=label, positive_value=positive)
    if fmt == OutputFormat.json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    render_rows(["metric", "value", "95% interval"], _summary_rows(result), OutputFormat(fmt))
    if fmt == OutputFormat.csv:
        typer.echo("")  # two CSV tables, one blank line apart (as `stats` does)
    render_rows(["rule", "runs flagged", "positive", "precision", "95% interval"],
                [[r.rule_id, r.flagged, r.positive, _num(r.precision),
                  _interval((r.precision_low, r.precision_high))] for r in result.rules],
                OutputFormat(fmt))


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _interval(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f"{bounds[0]:.3f}–{bounds[1]:.3f}"


def _summary_rows(result: Any) -> list[list[Any]]:
    return [
        ["runs with the label", result.runs, ""],
        [f"positive ({result.label} = {result.positive_value})", result.positives, ""],
        ["flagged & positive (TP)", result.true_positive, ""],
        ["flagged & negative (FP)", result.false_positive, ""],
        ["not flagged & positive (FN)", result.false_negative, ""],
        ["not flagged & negative (TN)", result.true_negative, ""],
        ["precision", _num(result.precision), _interval(result.precision_interval)],
        ["recall", _num(result.recall), _interval(result.recall_interval)],
        ["F1", _num(result.f1), ""],
        ["accuracy", _num(result.accuracy), ""],
        ["AUROC (violation score)", _num(result.auroc), ""],
    ]


def replay_command(*, recording: str, db: str | None, packs: list[str] | None,
                   scenario_id: str | None, fmt: OutputFormat) -> None:
    """``driftwatch replay``: one recorded run through the agent loop, monitors live."""
    # the agent loop (langgraph, litellm) loads only for this command (start-up time)
    from driftwatch.model.replay import replay_scenario
    from driftwatch.runner.run import run_scenario

    model = recording if recording.startswith("replay/") else f"replay/{recording}"
    scenario = replay_scenario(model, scenario_id=scenario_id)
    summary = run_scenario(scenario, model=model, db_path=db_path(db),
                           packs=list(packs) if packs else None)
    rules = sorted({f.rule_id for f in summary.violations})
    data = {"run_id": summary.run_id, "status": summary.status.value, "turns": summary.turns,
            "tool_calls": summary.tool_calls, "violations": len(summary.violations),
            "rules": rules}
    render_summary(data, f"{summary.run_id}: {summary.turns} turns, {summary.tool_calls} tool "
                   f"calls, {len(summary.violations)} violations "
                   f"({', '.join(rules) or 'none'})", fmt)
