"""``@sink`` records name and creation arguments; ``create_sink`` builds by name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from driftwatch.alert import BaseSink, ConsoleSink, JsonlSink, create_sink, registered_sinks, sink
from driftwatch.core import Finding, FindingSink, NotFoundError, Severity


@sink("test_memory")
class MemorySink(BaseSink):
    def __init__(self, capacity: int = 10, min_severity: Severity = Severity.INFO) -> None:
        super().__init__(min_severity=min_severity)
        self.capacity = capacity
        self.kept: list[Finding] = []

    def deliver(self, findings: Sequence[Finding]) -> None:
        self.kept = [*self.kept, *findings][-self.capacity :]


def test_create_sink_by_name_records_the_spec(tmp_path: Path) -> None:
    created = create_sink("jsonl", path=tmp_path / "out.jsonl", min_severity="high")
    assert isinstance(created, JsonlSink)
    assert created.name == "jsonl"
    assert created.min_severity is Severity.HIGH
    assert created.spec == {
        "name": "jsonl",
        "args": {"path": str(tmp_path / "out.jsonl"), "min_severity": "high"},
    }


def test_built_in_sinks_are_registered_and_satisfy_the_protocol(tmp_path: Path) -> None:
    assert {"console", "jsonl", "test_memory"} <= set(registered_sinks())
    assert isinstance(ConsoleSink(), FindingSink)
    assert isinstance(JsonlSink(tmp_path / "x.jsonl"), FindingSink)


def test_decorated_user_sink_gets_name_spec_and_filtering() -> None:
    created = create_sink("test_memory", capacity=2)
    assert isinstance(created, MemorySink)
    assert created.spec == {"name": "test_memory", "args": {"capacity": 2, "min_severity": 10}}


def test_unknown_sink_lists_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match=r"unknown sink 'slack' \(known: .*console.*jsonl"):
        create_sink("slack")
