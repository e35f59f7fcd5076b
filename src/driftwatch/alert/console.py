"""Findings as one line each on a terminal.

Messages may hold text a model wrote, so nothing in a finding is parsed as rich markup
(``[bold]`` prints as written) and control characters — including ANSI escapes and
newlines — are shown escaped, so one finding is always one line and cannot restyle or
move the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from driftwatch.alert.base import BaseSink
from driftwatch.alert.registry import sink
from driftwatch.core.records import Finding, Severity
from driftwatch.core.terminal import printable

__all__ = ["SEVERITY_STYLES", "ConsoleSink", "plain"]

SEVERITY_STYLES: dict[Severity, str] = {
    Severity.INFO: "dim",
    Severity.LOW: "cyan",
    Severity.MEDIUM: "yellow",
    Severity.HIGH: "bold red",
    Severity.CRITICAL: "bold white on red",
}


def plain(text: str) -> str:
    """``text`` on one line with every control character shown as an escape (the CLI's
    one rule for terminal text, :func:`driftwatch.core.terminal.printable`)."""
    return printable(text)


@sink("console")
class ConsoleSink(BaseSink):
    """Prints ``SEVERITY rule-id run=… turn=… message`` per finding, coloured by
    severity. Writes to stderr unless given a console, so stdout stays for data."""

    def __init__(
        self,
        console: Console | None = None,
        min_severity: Severity | str | int = Severity.LOW,
    ) -> None:
        super().__init__(min_severity=min_severity)
        self.console = console or Console(stderr=True)

    def render(self, finding: Finding) -> Text:
        """The line for one finding, as a rich Text (never parsed as markup)."""
        style = SEVERITY_STYLES.get(finding.severity, "")
        turn = "-" if finding.turn is None else str(finding.turn)
        return Text.assemble(
            (f"{finding.severity.label.upper():<8}", style),
            " ",
            (plain(finding.rule_id), "bold"),
            f" run={plain(finding.run_id)} turn={turn} ",
            plain(finding.message),
        )

    def deliver(self, findings: Sequence[Finding]) -> None:
        for finding in findings:
            self.console.print(self.render(finding), highlight=False, soft_wrap=True)
