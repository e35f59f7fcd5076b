"""``driftwatch report``: one batch as a self-contained HTML page and a Markdown summary."""

# function-level imports: start-up — every command imports what it runs when it runs, so each
# starts in ≤ 0.5 s (tests/cli/test_startup_imports.py)
from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import typer


def default_out(batch_id: str) -> Path:
    """``report-<batch id>.html`` in the working directory, the id made filename-safe."""
    return Path(f"report-{re.sub(r'[^A-Za-z0-9._-]+', '_', batch_id)}.html")


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory, so a reader (or a CI upload)
    never sees half a report."""
    from driftwatch.core.errors import UsageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        # mkstemp makes the file 0600; a report is meant to be shared like any new file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except OSError as error:
        raise UsageError(f"{path}: cannot write: {error.strerror or error}") from None


def report_command(*, batch_id: str, baseline: str | None, out: str | None,
                   markdown: str | None, db: str | None, alpha: float,
                   max_runs: int) -> int:
    from driftwatch.core.errors import NotFoundError, UsageError
    from driftwatch.core.settings import db_path
    from driftwatch.core.terminal import printable
    from driftwatch.report.batch import build_batch_report
    from driftwatch.report.html import render_html
    from driftwatch.report.markdown import batch_markdown
    from driftwatch.store import Store

    if max_runs < 0:
        raise UsageError("--max-runs must be 0 or more")
    path = db_path(db)
    if not path.exists():
        raise NotFoundError(f"{path}: no such database (run a batch first, or pass --db)")
    with Store(path, read_only=True) as store:
        report = build_batch_report(store, batch_id, baseline_id=baseline, alpha=alpha,
                                    max_runs=max_runs)
    html_path = Path(out) if out else default_out(batch_id)
    write_atomically(html_path, render_html(report))
    typer.echo(f"wrote {html_path}", err=True)
    # the Markdown quotes finding messages (model text): escape sequences have no place
    # in it, on a terminal, in a CI log or in a file someone will cat
    text = printable(batch_markdown(report), multiline=True) if markdown else ""
    if markdown == "-":
        sys.stdout.write(text)
    elif markdown:
        write_atomically(Path(markdown), text)
        typer.echo(f"wrote {markdown}", err=True)
    return 0
