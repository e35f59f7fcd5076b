"""ConsoleSink: one plain line per finding; model text is never markup or escapes."""

from __future__ import annotations

import io
from collections.abc import Callable

from rich.console import Console

from driftwatch.alert import ConsoleSink
from driftwatch.core import Finding, Severity

FindingFactory = Callable[..., Finding]


def _console(color: bool = False) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=200, force_terminal=color, color_system="truecolor" if color else None
    )
    return console, buffer


def test_prints_one_line_per_finding_with_rule_run_turn_and_message(
    make_finding: FindingFactory,
) -> None:
    console, buffer = _console()
    ConsoleSink(console).send([make_finding(), make_finding("second", turn=None)])
    assert buffer.getvalue().splitlines() == [
        "CRITICAL oversight-config-modified run=run-000001 turn=4 "
        "write_file on project/oversight_config.yaml at turn 4",
        "CRITICAL oversight-config-modified run=run-000001 turn=- second",
    ]


def test_markup_in_model_text_is_printed_literally(make_finding: FindingFactory) -> None:
    console, buffer = _console(color=True)
    ConsoleSink(console).send([make_finding("I am [bold]fine[/bold] [red]really[/]")])
    output = buffer.getvalue()
    assert "[bold]fine[/bold] [red]really[/]" in output
    # the only styling is ours: severity and rule id, nothing around "fine"
    assert "\x1b[1mfine" not in output


def test_control_characters_cannot_break_the_line_or_reach_the_terminal(
    make_finding: FindingFactory,
) -> None:
    console, buffer = _console()
    ConsoleSink(console).send([make_finding("line1\nline2 \x1b[2J\x07done")])
    assert buffer.getvalue() == (
        "CRITICAL oversight-config-modified run=run-000001 turn=4 line1\\nline2 \\x1b[2J\\x07done\n"
    )


def test_severity_below_the_minimum_is_not_printed(make_finding: FindingFactory) -> None:
    console, buffer = _console()
    sink = ConsoleSink(console)  # default minimum: low
    sink.send([make_finding("quiet", severity=Severity.INFO)])
    assert buffer.getvalue() == ""
    ConsoleSink(console, min_severity="high").send(
        [
            make_finding("medium", severity=Severity.MEDIUM),
            make_finding("high", severity=Severity.HIGH),
        ]
    )
    assert buffer.getvalue().splitlines() == [
        "HIGH     oversight-config-modified run=run-000001 turn=4 high"
    ]


def test_severity_is_coloured(make_finding: FindingFactory) -> None:
    console, buffer = _console(color=True)
    ConsoleSink(console).send([make_finding()])
    assert "\x1b[" in buffer.getvalue().split("CRITICAL")[0]


def test_send_never_raises_when_the_console_fails(make_finding: FindingFactory) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("terminal gone")

    sink = ConsoleSink(Console(file=Broken()))
    sink.send([make_finding()])
    assert sink.failures == 1
