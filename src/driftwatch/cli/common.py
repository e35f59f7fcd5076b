"""Options shared by several commands, output formatting, and error handling."""

# function-level imports: start-up — every command imports what it runs when it runs, so each
# starts in ≤ 0.5 s (tests/cli/test_startup_imports.py)
from __future__ import annotations

import csv
import functools
import importlib.util
import io
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any, Final, ParamSpec, TypeVar

import typer

from driftwatch.core.errors import DriftwatchError, UsageError
from driftwatch.core.terminal import printable

P = ParamSpec("P")
R = TypeVar("R")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="DuckDB file (default: $DRIFTWATCH_DB, else traces/driftwatch.duckdb).",
        show_default=False,
    ),
]
# The one output-format option of every command that prints data or a summary.
FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output format: table, json or csv.",
                 case_sensitive=False),
]
# The older spelling of some commands, kept working but no longer shown in --help.
JsonAliasOption = Annotated[
    bool, typer.Option("--json", hidden=True, help="Same as --format json.")
]


def output_format(fmt: OutputFormat, as_json: bool = False) -> OutputFormat:
    """``--format``, or json when the hidden ``--json`` alias was given."""
    return OutputFormat.json if as_json else fmt


def render_summary(data: dict[str, Any], line: str, fmt: OutputFormat) -> None:
    """A command's one-record summary: ``line`` for people (table), the record as one
    JSON object, or a CSV header and row."""
    if fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
    elif fmt is OutputFormat.csv:
        render_rows(list(data), [list(data.values())], fmt)
    else:
        echo(line)


def echo(text: str, *, err: bool = False, multiline: bool = False) -> None:
    """``typer.echo`` for text that may hold what a model or a sender wrote: control
    characters are shown escaped (:func:`driftwatch.core.terminal.printable`), never sent
    to the terminal. One line unless ``multiline``."""
    typer.echo(printable(text, multiline=multiline), err=err)


def fail(message: str, code: int = 1) -> typer.Exit:
    # error text can quote a provider, a file or a sender: it too stays one inert line
    echo(f"error: {message}", err=True)
    return typer.Exit(code)


# optional dependency (top-level module) -> the pyproject extra that installs it
EXTRAS: Final = {"uvicorn": "collector", "grpc": "collector", "ray": "ray", "llama_cpp": "local"}


def missing_extra(module: str, feature: str) -> UsageError:
    extra = EXTRAS[module]
    return UsageError(f'{feature} needs the {extra} extra: pip install "driftwatch[{extra}]"')


def require_extra(module: str, feature: str) -> None:
    """Fail with one line naming the extra to install when ``module`` is missing; checked
    before anything slow or stateful starts (found, not imported: cheap)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or half-removed module
        found = False
    if not found:
        raise missing_extra(module, feature)


def handle_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Our errors become one line on stderr and their exit code; never a traceback. A
    missing optional dependency anywhere below becomes its install hint."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except DriftwatchError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except ModuleNotFoundError as exc:
            module = (exc.name or "").partition(".")[0]
            if module not in EXTRAS:
                raise  # a broken installation: the traceback is the useful report
            error = missing_extra(module, f"driftwatch {function.__name__.rstrip('_')}")
            raise fail(str(error), error.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM under stop_on_sigterm
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def stop_on_sigterm(function: Callable[P, R]) -> Callable[P, R]:
    """SIGTERM (what systemd, Docker and Kubernetes send) stops the command the way Ctrl-C
    does: as a KeyboardInterrupt in the main thread, so the command stores what finished,
    stops its workers and says so in one line, instead of dying mid-write. Not for
    ``serve``: the ASGI server handles its own signals."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if threading.current_thread() is not threading.main_thread():
            return function(*args, **kwargs)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            return function(*args, **kwargs)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return wrapper


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _cell(value: Any) -> str:
    """A table or CSV cell: text as it is (newlines and tabs kept, the CSV writer quotes
    them), every other control character escaped; JSON output is exact instead."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)  # escapes control characters itself
    return printable(str(value), multiline=True)


def render_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: OutputFormat) -> None:
    """Print a result set to stdout in the chosen format."""
    if fmt is OutputFormat.json:
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        sys.stdout.write(json.dumps(records, default=str, indent=2) + "\n")
    elif fmt is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([printable(column) for column in columns])
        writer.writerows([[_cell(v) for v in row] for row in rows])
        sys.stdout.write(buffer.getvalue())
    else:
        from rich.console import Console
        from rich.table import Column, Table
        from rich.text import Text

        # headers as Text too: a column alias like "[red]x" is not rich markup
        table = Table(*(Column(header=Text(printable(column))) for column in columns),
                      show_lines=False)
        for row in rows:
            table.add_row(*(Text(_cell(v)) for v in row))
        # on a terminal fit the screen; in a pipe or file never wrap cells
        width = None if sys.stdout.isatty() else 100_000
        Console(width=width).print(table)
        sys.stdout.flush()
        typer.echo(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", err=True)
