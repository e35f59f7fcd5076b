"""Findings as JSON Lines: one ``Finding.to_dict()`` object per line, appended."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from driftwatch.alert.base import BaseSink
from driftwatch.alert.registry import sink
from driftwatch.core.records import Finding, Severity

__all__ = ["JsonlSink"]


@sink("jsonl")
class JsonlSink(BaseSink):
    """Appends to ``path`` (parent directories created). The file is opened on the first
    finding, kept open, and flushed after every batch; each batch is written with one
    ``write`` so concurrent readers see whole lines. ``close`` closes it; a later
    ``send`` opens it again."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        min_severity: Severity | str | int = Severity.INFO,
    ) -> None:
        super().__init__(min_severity=min_severity)
        self.path = Path(path)
        self._file: IO[str] | None = None
        self._file_lock = threading.Lock()

    def deliver(self, findings: Sequence[Finding]) -> None:
        text = "".join(
            json.dumps(finding.to_dict(), ensure_ascii=False, default=str) + "\n"
            for finding in findings
        )
        with self._file_lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(text)
            self._file.flush()

    def close(self) -> None:
        with self._file_lock:
            if self._file is not None:
                self._file.close()
                self._file = None
