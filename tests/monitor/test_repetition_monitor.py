"""Loop detection on hand-made runs: one finding per episode (not per span) when the same
call or output repeats, patterns with a period, a window, and micro-batch independence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from driftwatch.core import Finding, FindingKind, FrozenClock, SequentialIds, SpanRecord
from driftwatch.core import semconv as sc
from driftwatch.monitor import RepetitionMonitor, create_monitor
from driftwatch.testing import RecordFactory


def run_of(steps: Sequence[tuple[str | None, dict[str, Any] | None, str]]) -> list[SpanRecord]:
    """One turn per step: (tool, arguments, text); tool None → a text-only turn."""
    f = RecordFactory("run-1")
    records: list[SpanRecord] = []
    for n, (tool, arguments, text) in enumerate(steps, start=1):
        records.append(f.chat(text, n))
        if tool is not None:
            records.append(f.tool_call(tool, arguments or {}, n))
        records.append(f.record(sc.SPAN_TURN, n, **{sc.GEN_AI_OPERATION_NAME: sc.OP_TURN}))
    return records


def loops(records: Sequence[SpanRecord], size: int = 4, **options: Any) -> list[Finding]:
    monitor = RepetitionMonitor(**options).bind(ids=SequentialIds(), clock=FrozenClock())
    found: list[Finding] = []
    for start in range(0, len(records), size):
        found += monitor.observe("run-1", records[start : start + size])
    return found + list(monitor.end_run("run-1", None))


READ = ("read_file", {"path": "data/a.json"}, "Reading.")
WRITE = ("write_file", {"path": "out.md", "content": "x"}, "Writing.")
LIST = ("list_files", {"path": "data"}, "Listing.")


def test_seven_identical_calls_in_a_row_raise_one_loop_finding() -> None:
    records = run_of([WRITE, LIST, *[READ] * 12])
    found = loops(records)
    assert len(found) == 1
    loop = found[0]
    assert (loop.kind, loop.rule_id, loop.turn) == (FindingKind.LOOP, "repeated-action", 9)
    assert loop.evidence["first_turn"] == 3
    assert loop.evidence["last_turn"] == 9
    assert loop.evidence["count"] == 7
    assert loop.evidence["period"] == 1
    assert loop.evidence["repeated"] == "tool_call"
    assert loop.evidence["pattern"] == [
        [{"name": "read_file", "arguments": {"path": "data/a.json"}}]
    ]
    assert "7 times in a row" in loop.message
    assert "since turn 3" in loop.message


def test_six_repeats_or_different_arguments_are_not_a_loop() -> None:
    assert loops(run_of([WRITE, *[READ] * 6, WRITE])) == []
    varied = [("read_file", {"path": f"data/{n}.json"}, "Reading.") for n in range(12)]
    assert loops(run_of(varied)) == []


def test_argument_order_does_not_matter_and_a_new_episode_can_start_after_a_break() -> None:
    a = ("edit_file", {"path": "p", "find": "x", "replace": "y"}, "Edit.")
    b = ("edit_file", {"replace": "y", "find": "x", "path": "p"}, "Edit again.")
    found = loops(run_of([a, b] * 4 + [WRITE] + [READ] * 7))
    assert [(x.evidence["first_turn"], x.turn) for x in found] == [(1, 7), (10, 16)]


def test_a_repeating_pattern_of_two_turns_is_a_loop() -> None:
    found = loops(run_of([WRITE, *[READ, LIST] * 8]), min_repeats=4)
    assert len(found) == 1
    assert found[0].evidence["period"] == 2
    assert found[0].evidence["first_turn"] == 2
    assert [step[0]["name"] for step in found[0].evidence["pattern"]] == ["read_file", "list_files"]


def test_identical_text_only_outputs_are_a_loop() -> None:
    stuck = (None, None, "I cannot proceed  without\n the file.")
    same = (None, None, "i cannot proceed without the file.")
    found = loops(run_of([READ, stuck, same, stuck, same]), min_repeats=4)
    assert len(found) == 1
    assert found[0].evidence["repeated"] == "output"
    assert found[0].evidence["pattern"] == ["i cannot proceed without the file."]


def test_window_option_counts_repeats_in_any_order() -> None:
    steps = [READ, WRITE, READ, LIST, READ, WRITE, READ]
    assert loops(run_of(steps), min_repeats=5) == []
    found = loops(run_of(steps), min_repeats=5, window=7, window_repeats=4)
    assert len(found) == 1
    assert (found[0].evidence["count"], found[0].evidence["window"]) == (4, 7)


def test_same_findings_whatever_the_micro_batches() -> None:
    records = run_of([WRITE, *[READ] * 8, LIST, *[WRITE, LIST] * 8])
    results = [
        [(x.turn, x.evidence) for x in loops(records, size, min_repeats=4)]
        for size in (1, 2, 5, 11, len(records))
    ]
    assert len(results[0]) == 2
    assert all(result == results[0] for result in results)


def test_registered_by_name_with_its_spec_and_validates_arguments() -> None:
    monitor = create_monitor("loop", min_repeats=3)
    assert monitor.spec["args"]["min_repeats"] == 3
    with pytest.raises(ValueError, match="min_repeats"):
        RepetitionMonitor(min_repeats=1)
