"""JsonlSink: one valid JSON object per finding, appended, parent dirs created lazily."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from driftwatch.alert import JsonlSink
from driftwatch.core import Finding, Severity

FindingFactory = Callable[..., Finding]


def test_writes_one_json_line_per_finding(tmp_path: Path, make_finding: FindingFactory) -> None:
    path = tmp_path / "alerts" / "nested" / "findings.jsonl"
    sink = JsonlSink(path)
    assert not path.parent.exists()  # opened lazily
    first, second = make_finding(), make_finding('quote " and\nnewline [bold]')
    sink.send([first, second])
    # flushed per batch: readable before close
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [first.to_dict(), second.to_dict()]
    sink.close()


def test_appends_across_batches_and_reopens_after_close(
    tmp_path: Path, make_finding: FindingFactory
) -> None:
    path = tmp_path / "findings.jsonl"
    path.write_text('{"existing": true}\n', encoding="utf-8")
    sink = JsonlSink(path)
    sink.send([make_finding()])
    sink.close()
    sink.send([make_finding()])
    sink.close()
    sink.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert all(isinstance(json.loads(line), dict) for line in lines)


def test_filters_by_minimum_severity(tmp_path: Path, make_finding: FindingFactory) -> None:
    path = tmp_path / "findings.jsonl"
    sink = JsonlSink(path, min_severity=Severity.HIGH)
    sink.send([make_finding(severity=Severity.LOW)])
    assert not path.exists()
    sink.send([make_finding(severity=Severity.LOW), make_finding(severity=Severity.HIGH)])
    sink.close()
    [line] = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["severity"] == "high"


def test_unwritable_path_is_logged_not_raised(tmp_path: Path, make_finding: FindingFactory) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    sink = JsonlSink(blocker / "findings.jsonl")
    sink.send([make_finding()])
    assert sink.failures == 1
    sink.close()
