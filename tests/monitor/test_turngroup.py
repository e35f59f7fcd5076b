"""One turn grouping shared by several monitors: every feed sees the same turns, state
is dropped at the end of the run, and a monitor that raises does not upset the others."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from driftwatch.core import SpanRecord
from driftwatch.core import semconv as sc
from driftwatch.core.records import Finding
from driftwatch.monitor import MonitorEngine, RepetitionMonitor
from driftwatch.monitor.base import BaseMonitor
from driftwatch.monitor.turngroup import SharesTurns, TurnGrouping
from driftwatch.monitor.turns import Turn, TurnTracker
from driftwatch.testing import RecordFactory


def turn_span(f: RecordFactory, turn: int) -> SpanRecord:
    return f.record(sc.SPAN_TURN, turn, **{sc.GEN_AI_OPERATION_NAME: sc.OP_TURN})


def numbers(turns: Sequence[Turn]) -> list[int]:
    return [turn.number for turn in turns]


def test_two_feeds_get_the_same_turn_objects() -> None:
    f, grouping = RecordFactory(), TurnGrouping()
    first, second = grouping.feed(), grouping.feed()
    batch = [f.chat("a", 1), f.tool_call("x", {}, 1), turn_span(f, 1), f.chat("b", 2)]
    turns = first.add("run-test", batch)
    assert numbers(turns) == [1]
    assert second.add("run-test", batch) is turns
    assert second.turn_of_span("run-test", batch[0].span_id) == 1
    finished = first.finish("run-test")
    assert numbers(finished) == [2]
    assert second.finish("run-test") is finished


def test_a_copy_of_the_same_records_counts_as_the_same_batch() -> None:
    f, grouping = RecordFactory(), TurnGrouping()
    first, second = grouping.feed(), grouping.feed()
    batch = [f.chat("a", 1), turn_span(f, 1)]
    assert second.add("run-test", list(batch)) is first.add("run-test", batch)


def test_one_feed_groups_the_same_list_twice_as_a_tracker_would() -> None:
    f = RecordFactory()
    feed, tracker = TurnGrouping().feed(), TurnTracker()
    batch = [f.chat("a", 1), f.chat("b", 2)]
    for _ in range(2):
        assert numbers(feed.add("run-test", batch)) == numbers(tracker.add(batch))
    assert numbers(feed.finish("run-test")) == numbers(tracker.finish())


def test_the_run_is_dropped_once_every_reader_has_finished_it() -> None:
    f, grouping = RecordFactory(), TurnGrouping()
    first, second = grouping.feed(), grouping.feed()
    batch = [f.chat("a", 1)]
    first.add("run-test", batch)
    second.add("run-test", batch)
    first.finish("run-test")
    assert grouping.open_runs == 1  # the second feed has not had its end yet
    second.finish("run-test")
    assert grouping.open_runs == 0
    assert second.finish("run-test") == []


def test_a_reader_that_never_finishes_holds_at_most_max_ending_runs() -> None:
    f, grouping = RecordFactory(), TurnGrouping(max_ending=2)
    first, straggler = grouping.feed(), grouping.feed()
    for number in range(5):
        batch = [f.record("x", 1)]
        first.add(f"run-{number}", batch)
        straggler.add(f"run-{number}", batch)
        first.finish(f"run-{number}")
    assert grouping.open_runs == 2


def test_records_after_a_feeds_end_start_the_run_again_for_that_feed() -> None:
    f, grouping = RecordFactory(), TurnGrouping()
    first, second = grouping.feed(), grouping.feed()
    early, late = [f.chat("a", 1)], [f.chat("b", 2)]
    first.add("run-test", early)
    second.add("run-test", early)
    assert numbers(first.finish("run-test")) == [1]
    assert first.add("run-test", late) == []  # a new grouping, as a new tracker
    assert numbers(second.finish("run-test")) == [1]  # its end is still the first one
    assert second.add("run-test", late) == []
    assert numbers(first.finish("run-test")) == [2]
    assert numbers(second.finish("run-test")) == [2]
    assert grouping.open_runs == 0


def test_a_grouping_error_is_raised_to_every_feed_of_that_batch() -> None:
    grouping = TurnGrouping()
    first, second = grouping.feed(), grouping.feed()
    broken: list[Any] = [object()]  # not a record: the tracker fails on it
    with pytest.raises(AttributeError) as caught:
        first.add("run-test", broken)
    with pytest.raises(AttributeError) as again:
        second.add("run-test", broken)
    assert again.value is caught.value


def test_share_turns_after_records_is_refused() -> None:
    f, monitor = RecordFactory(), RepetitionMonitor()
    monitor.observe("run-test", [f.chat("a", 1)])
    with pytest.raises(RuntimeError, match="before the monitor sees records"):
        monitor.share_turns(TurnGrouping())


class _Raises(BaseMonitor, SharesTurns):
    """Reads its turns on some rounds and raises before reading them on others."""

    name = "raises"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        self.calls += 1
        if self.calls % 2:
            raise RuntimeError("boom")
        self._turn_feed.add(run_id, records)
        raise RuntimeError("boom after reading")

    def end_run(self, run_id: str, final_state: Mapping[str, Any] | None) -> Sequence[Finding]:
        self._turn_feed.finish(run_id)
        raise RuntimeError("boom at the end")


def _looping_run(f: RecordFactory) -> list[SpanRecord]:
    return [
        record
        for turn in range(1, 13)
        for record in (f.tool_call("read_file", {"path": "a"}, turn), turn_span(f, turn))
    ]


def loop_findings(monitors: list[BaseMonitor]) -> list[tuple[object, ...]]:
    records = _looping_run(RecordFactory())
    with MonitorEngine(monitors) as engine:
        for start in range(0, len(records), 3):
            engine.submit_many(records[start : start + 3])
            engine.flush()
        engine.end_run("run-test")
        found = engine.findings("run-test")
    return [(f.rule_id, f.turn, f.span_id, f.message) for f in found if f.monitor == "loop"]


def test_a_raising_monitor_does_not_upset_the_others_sharing_its_turns() -> None:
    alone = loop_findings([RepetitionMonitor()])
    grouping = TurnGrouping()
    shared: list[BaseMonitor] = [_Raises(), RepetitionMonitor(), _Raises()]
    for item in shared:
        assert isinstance(item, SharesTurns)
        item.share_turns(grouping)
    assert alone
    assert loop_findings(shared) == alone
    assert grouping.open_runs == 0
