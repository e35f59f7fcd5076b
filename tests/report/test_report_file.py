"""The report file: written whole, and readable like any other new file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from driftwatch.cli.report import write_atomically


def test_report_file_has_the_umask_permissions_not_mkstemps_0600(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        target = tmp_path / "out" / "report.html"
        write_atomically(target, "<html></html>")
    finally:
        os.umask(previous)
    assert target.read_text(encoding="utf-8") == "<html></html>"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]
