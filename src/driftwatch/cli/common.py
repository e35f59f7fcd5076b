"""Options shared by several commands, output formatting, and error handling."""

from __future__ import annotations

import csv
import functools
import io
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from driftwatch.core.errors import DriftwatchError
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
FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output format.")
]


def echo(text: str, *, err: bool = False, multiline: bool = False) -> None:
    """``typer.echo`` for text that may hold what a model or a sender wrote: control
    characters are shown escaped (:func:`driftwatch.core.terminal.printable`), never sent
    to the terminal. One line unless ``multiline``."""
    typer.echo(printable(text, multiline=multiline), err=err)


def fail(message: str, code: int = 1) -> typer.Exit:
    # error text can quote a provider, a file or a sender: it too stays one inert line
    echo(f"error: {message}", err=True)
    return typer.Exit(code)


def handle_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Our errors become one line on stderr and their exit code; never a traceback."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except DriftwatchError as exc:
            raise fail(str(exc), exc.exit_code) from None
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
