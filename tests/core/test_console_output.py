"""Console output on a real terminal (a pty): structlog's console lines and rich output
respect NO_COLOR, and log values that hold escape sequences are shown, not obeyed."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys

import pytest

LOG = ("from driftwatch.core.logging import configure_logging, get_logger\n"
       "configure_logging('info')\n"
       "get_logger('t').warning('retry \\x1b]52;c;aGk=\\x07 \\x9b2J', error='\\x1b[2J')\n")
SINK = ("from driftwatch.alert import ConsoleSink\n"
        "from driftwatch.core.records import Finding, FindingKind, Severity\n"
        "from datetime import UTC, datetime\n"
        "ConsoleSink().send([Finding(finding_id='f', run_id='r', trace_id=None, span_id=None,\n"
        "    turn=1, monitor='t', rule_id='x', kind=FindingKind.VIOLATION,\n"
        "    severity=Severity.CRITICAL, message='m', evidence={},\n"
        "    detected_at=datetime.now(UTC))])\n")


def on_a_terminal(code: str, **env: str) -> str:
    """Run ``code`` with stdout and stderr on a pseudo-terminal; return what it printed."""
    leader, follower = pty.openpty()
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("NO_COLOR", "FORCE_COLOR", "DRIFTWATCH_LOG_FORMAT", "TERM")}
    environment |= {"TERM": "xterm-256color", "COLUMNS": "200", **env}
    process = subprocess.Popen([sys.executable, "-c", code], stdout=follower, stderr=follower,
                               stdin=subprocess.DEVNULL, env=environment)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=30)
    os.close(leader)
    assert process.returncode == 0, b"".join(chunks)
    return b"".join(chunks).decode("utf-8", "replace")


def test_console_log_lines_are_coloured_on_a_terminal_without_no_color() -> None:
    assert "\x1b[" in on_a_terminal(LOG)


@pytest.mark.parametrize("code", [LOG, SINK], ids=["structlog", "rich"])
def test_no_color_turns_colour_off_on_a_terminal(code: str) -> None:
    output = on_a_terminal(code, NO_COLOR="1")
    assert output.strip()
    assert not colours(output)


def test_rich_output_is_coloured_without_no_color() -> None:
    assert colours(on_a_terminal(SINK))


def colours(output: str) -> list[str]:
    """The SGR colour parameters in ``output`` (bold and the like are not colour)."""
    found = []
    for params in re.findall(r"\x1b\[([0-9;]*)m", output):
        codes = [int(p) for p in params.split(";") if p]
        found += [str(c) for c in codes if 30 <= c <= 49 or 90 <= c <= 107]
    return found


def test_an_empty_no_color_keeps_colour() -> None:
    """no-color.org: only a non-empty value counts."""
    assert "\x1b[" in on_a_terminal(LOG, NO_COLOR="")


def test_escape_sequences_in_log_values_are_shown_not_obeyed() -> None:
    output = on_a_terminal(LOG, NO_COLOR="1")
    assert "retry \\x1b]52;c;aGk=\\x07 \\x9b2J" in output
    assert "error='\\x1b[2J'" in output
    assert "\x1b]52" not in output
    assert "\x9b" not in output
