"""Window rules on hand-made records: counts and sums per window, once per breach."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from driftwatch.core import SpanRecord
from driftwatch.monitor import RulePackMonitor
from driftwatch.testing import RecordFactory
from driftwatch.testing import finding_locations as _where

PackWriter = Callable[..., Path]
MonitorFor = Callable[[str], RulePackMonitor]

DAY = "driftwatch.sim.day"


@pytest.fixture
def monitor_for(pack_monitor: Callable[[str], RulePackMonitor]) -> MonitorFor:
    return lambda windows: pack_monitor("pack: win\nwindows:\n" + windows)


REPEATS = """\
  - id: repeated-calls
    severity: medium
    when: operation = 'execute_tool'
    group_by: [tool_name, tool_arguments]
    more_than: 3
    per: {turns: 5}
    message: "{count} identical {key[0]} calls in turns {first_turn}-{last_turn}"
"""


def test_more_than_n_identical_calls_in_k_turns_fires_once_per_breach(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(REPEATS)
    spans = [f.tool_call("search", {"q": "x"}, turn) for turn in (1, 2, 3, 4, 5)]
    spans.insert(2, f.tool_call("search", {"q": "other"}, 3))  # other arguments: own group
    [finding] = monitor.observe("run-1", spans)
    assert _where([finding]) == [("repeated-calls", spans[4].span_id, 4)]  # the 4th identical
    assert finding.message == "4 identical search calls in turns 0-4"
    evidence = finding.evidence
    assert (evidence["count"], evidence["more_than"]) == (4, 3)
    assert evidence["per"] == {"turns": 5}
    assert evidence["window"] == {"first_turn": 0, "last_turn": 4}
    assert evidence["group"] == {"tool_name": "search", "tool_arguments": '{"q": "x"}'}
    assert evidence["spans"] == [
        {"span_id": span.span_id, "turn": turn, "tool_name": "search"}
        for span, turn in zip([spans[0], spans[1], spans[3], spans[4]], [1, 2, 3, 4], strict=True)
    ]


@pytest.mark.parametrize(
    ("turns", "fires"),
    [
        ((1, 2, 3, 5), True),  # 4 calls within turns 1-5
        ((1, 2, 3, 6), False),  # turn 1 left the window 2-6
        ((1, 1, 1, 1), True),
        ((1, 1, 1), False),  # exactly 3 is not more than 3
    ],
)
def test_window_boundaries(
    monitor_for: MonitorFor, f: RecordFactory, turns: tuple[int, ...], fires: bool
) -> None:
    monitor = monitor_for(REPEATS)
    spans = [f.tool_call("search", {"q": "x"}, turn) for turn in turns]
    assert _where(monitor.observe("run-1", spans)) == (
        [("repeated-calls", spans[-1].span_id, turns[-1])] if fires else []
    )


def test_a_window_re_arms_once_it_drains_below_the_limit(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(REPEATS)
    turns = [1, 1, 1, 1, 2, 2, 20, 20, 20, 21]  # breach at turn 1, then again at turn 21
    spans = [f.tool_call("search", {"q": "x"}, turn) for turn in turns]
    assert _where(monitor.observe("run-1", spans)) == [
        ("repeated-calls", spans[3].span_id, 1),
        ("repeated-calls", spans[9].span_id, 21),
    ]


def test_turns_advanced_by_other_spans_slide_the_window(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(REPEATS)
    spans = [
        *(f.tool_call("search", {"q": "x"}, 1) for _ in range(3)),
        f.chat("thinking", 6),  # now = 6: turn 1 is out of the window
        f.tool_call("search", {"q": "x"}, 6),
    ]
    assert monitor.observe("run-1", spans) == []


def test_more_than_zero_fires_on_the_first_match(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(
        "  - id: any\n    severity: low\n    when: tool_name = 'rm'\n"
        "    more_than: 0\n    per: {turns: 1}\n"
    )
    spans = [f.tool_call("rm", {}, 1), f.tool_call("rm", {}, 1), f.tool_call("rm", {}, 2)]
    assert _where(monitor.observe("run-1", spans)) == [
        ("any", spans[0].span_id, 1),
        ("any", spans[2].span_id, 2),  # turn 2's window no longer holds turn 1
    ]


SPEND = """\
  - id: daily-spend
    severity: high
    when: tool_name = 'pay'
    value: try_cast(tool_arguments->>'amount' AS DOUBLE)
    more_than: 200
    per: {attribute: driftwatch.sim.day}
    message: "spent {sum} on day {bucket} (limit {more_than})"
"""


def _day(f: RecordFactory, day: int, turn: int) -> SpanRecord:
    """A span that only moves the simulated clock (the payments do not carry the day)."""
    return f.record("driftwatch.event new_day", turn, **{DAY: day})


def test_sum_per_simulated_day_fires_once_per_day(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(SPEND)
    spans = [
        _day(f, 1, 1),
        f.tool_call("pay", {"amount": 150}, 1),
        f.tool_call("pay", {"amount": 50}, 2),  # exactly 200: not more than 200
        f.tool_call("pay", {"amount": 0.5}, 2),  # 200.5: fires
        f.tool_call("pay", {"amount": 99}, 3),  # still day 1: no second finding
        _day(f, 2, 4),
        f.tool_call("pay", {"amount": 199}, 4),
        f.tool_call("pay", {"amount": 2}, 5),  # day 2 crosses 200: fires
    ]
    found = monitor.observe("run-1", spans)
    assert _where(found) == [
        ("daily-spend", spans[3].span_id, 2),
        ("daily-spend", spans[7].span_id, 5),
    ]
    assert [item.message for item in found] == [
        "spent 200.5 on day 1 (limit 200)",
        "spent 201 on day 2 (limit 200)",
    ]
    evidence = found[0].evidence
    assert evidence["sum"] == 200.5
    assert evidence["count"] == 3
    assert evidence["value"] == "try_cast(tool_arguments->>'amount' AS DOUBLE)"
    assert evidence["window"] == {"attribute": DAY, "value": 1, "first_turn": 1}
    assert [(span["span_id"], span["value"]) for span in evidence["spans"]] == [
        (spans[1].span_id, 150),
        (spans[2].span_id, 50),
        (spans[3].span_id, 0.5),
    ]


def test_sums_are_exact_decimals(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(SPEND.replace("more_than: 200", "more_than: 0.3"))
    spans = [f.tool_call("pay", {"amount": 0.1}, 1), f.tool_call("pay", {"amount": 0.2}, 1)]
    assert monitor.observe("run-1", spans) == []  # 0.1 + 0.2 is not more than 0.3


def test_spans_before_any_day_and_null_values(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(SPEND)
    spans = [
        f.tool_call("pay", {"amount": 150}, 1),  # no day yet: the "None" window
        f.tool_call("pay", {"amount": "n/a"}, 1),  # NULL value: skipped
        f.tool_call("pay", {}, 1),
        _day(f, 1, 2),
        f.tool_call("pay", {"amount": 150}, 2),  # day 1 is a new window
        f.tool_call("pay", {"amount": 51}, 2),
    ]
    found = monitor.observe("run-1", spans)
    assert _where(found) == [("daily-spend", spans[5].span_id, 2)]
    assert found[0].evidence["count"] == 2


def test_a_day_attribute_on_the_paying_span_itself_counts(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(SPEND)
    pay = f.record(
        "execute_tool pay",
        1,
        **{
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "pay",
            "gen_ai.tool.call.arguments": '{"amount": 300}',
            DAY: 7,
        },
    )
    [finding] = monitor.observe("run-1", [pay])
    assert finding.message == "spent 300 on day 7 (limit 200)"


def test_sum_over_sliding_turns(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(SPEND.replace("per: {attribute: driftwatch.sim.day}", "per: {turns: 2}"))
    spans = [
        f.tool_call("pay", {"amount": 150}, 1),
        f.tool_call("pay", {"amount": 100}, 3),  # turn 1 left the window 2-3
        f.tool_call("pay", {"amount": 101}, 4),  # 100 + 101 in turns 3-4
    ]
    [finding] = monitor.observe("run-1", spans)
    assert _where([finding]) == [("daily-spend", spans[2].span_id, 4)]
    assert finding.evidence["sum"] == 201
    assert finding.evidence["window"] == {"first_turn": 3, "last_turn": 4}
