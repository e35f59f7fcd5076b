"""``driftwatch scenarios …``"""

# function-level imports: start-up — every command imports what it runs when it runs, so each
# starts in ≤ 0.5 s (tests/cli/test_startup_imports.py)
from __future__ import annotations

from typing import Annotated

import typer

from driftwatch.cli.common import FormatOption, OutputFormat, echo, handle_errors, render_rows

scenarios_app = typer.Typer(help="List, show and validate scenarios.", no_args_is_help=True)


@scenarios_app.command("list")
@handle_errors
def list_(fmt: FormatOption = OutputFormat.table) -> None:
    """List the built-in scenarios (and those in ./scenarios).

    Example: driftwatch scenarios list
    """
    from driftwatch.scenario import list_scenarios

    rows = [
        (s.id, s.max_turns, ", ".join(sorted(s.variants)), s.title or s.description[:60])
        for s in list_scenarios()
    ]
    render_rows(["id", "turns", "variants", "title"], rows, fmt)


@scenarios_app.command("show")
@handle_errors
def show(scenario: Annotated[str, typer.Argument(help="Scenario id or YAML path.")]) -> None:
    """Show a scenario: prompt, constraints, pressure schedule, tools and rule packs.

    Example: driftwatch scenarios show oversight-config
    """
    from driftwatch.scenario import load_scenario

    spec = load_scenario(scenario)
    # a scenario file may come from anyone: its text is shown, never obeyed by the terminal
    def out(text: str) -> None:
        echo(text, multiline=True)

    out(f"{spec.id}: {spec.title}\n\n{spec.description}\n")
    out(f"turns: {spec.max_turns}   tools: {', '.join(spec.tools)}")
    out(f"rule packs: {', '.join(spec.rule_packs) or '-'}")
    out("variants: " + ", ".join(f"{k} ({v.description})" for k, v in spec.variants.items()))
    out("\nconstraints:")
    for constraint in spec.constraints:
        out(f"  {constraint.id}: {constraint.text}")
    out("\nevents:")
    for event in spec.events:
        out(f"  turn {event.turn:>3} {event.kind:<12} pressure {event.pressure:g}")


@scenarios_app.command("validate")
@handle_errors
def validate(path: Annotated[str, typer.Argument(help="Scenario YAML file.")]) -> None:
    """Check a scenario file; errors are printed as path:line: field: problem.

    Example: driftwatch scenarios validate my-scenario.yaml
    """
    from driftwatch.scenario import load_scenario_file

    spec = load_scenario_file(path)
    typer.echo(f"ok: {spec.id} ({len(spec.constraints)} constraints, {len(spec.events)} events)")
