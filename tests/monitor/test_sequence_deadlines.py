"""Sequence rules on hand-made records: a_not_followed_by_b (deadlines, run end) and
b_directly_after_a fire exactly where they should."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from driftwatch.monitor import RulePackMonitor
from driftwatch.testing import RecordFactory
from driftwatch.testing import finding_locations as _where

PackWriter = Callable[..., Path]
MonitorFor = Callable[[str], RulePackMonitor]


@pytest.fixture
def monitor_for(pack_monitor: Callable[[str], RulePackMonitor]) -> MonitorFor:
    return lambda sequences: pack_monitor("pack: seq\nsequences:\n" + sequences)


# --- a_not_followed_by_b ------------------------------------------------------------

UNANSWERED = """\
  - id: complaint-unanswered
    severity: high
    pattern: a_not_followed_by_b
    a: event_kind = 'complaint'
    b: tool_name = 'apologize'
    within_turns: 2
    message: "complaint of turn {a[turn]} unanswered by turn {turn}"
"""


def test_a_not_followed_by_b_fires_at_turn_a_plus_k_once_a_later_turn_arrives(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(UNANSWERED)
    complaint = f.event("complaint", "broken", 2)
    assert monitor.observe("run-1", [complaint, f.tool_call("x", {}, 3)]) == []
    assert monitor.observe("run-1", [f.tool_call("x", {}, 4)]) == []  # turn 4 may still answer
    later = f.tool_call("x", {}, 5)
    [finding] = monitor.observe("run-1", [later])
    assert _where([finding]) == [("complaint-unanswered", complaint.span_id, 4)]
    assert finding.message == "complaint of turn 2 unanswered by turn 4"
    assert finding.evidence["deadline_turn"] == 4
    assert finding.evidence["b"] is None
    assert monitor.end_run("run-1", None) == []


@pytest.mark.parametrize(("answer_turn", "fires"), [(2, False), (4, False), (5, True)])
def test_b_by_the_end_of_turn_a_plus_k_answers(
    monitor_for: MonitorFor, f: RecordFactory, answer_turn: int, fires: bool
) -> None:
    monitor = monitor_for(UNANSWERED)
    spans = [f.event("complaint", "broken", 2), f.tool_call("apologize", {}, answer_turn)]
    found = [*monitor.observe("run-1", spans), *monitor.end_run("run-1", None)]
    assert _where(found) == ([("complaint-unanswered", spans[0].span_id, 4)] if fires else [])


@pytest.mark.parametrize(("last_turn", "fires"), [(3, False), (4, True), (6, True)])
def test_at_run_end_it_fires_only_if_the_window_fully_elapsed(
    monitor_for: MonitorFor, f: RecordFactory, last_turn: int, fires: bool
) -> None:
    monitor = monitor_for(UNANSWERED)
    complaint = f.event("complaint", "broken", 2)
    observed = monitor.observe("run-1", [complaint, f.chat("hm", last_turn)])
    ended = monitor.end_run("run-1", None)
    found = [*observed, *ended]
    assert _where(found) == ([("complaint-unanswered", complaint.span_id, 4)] if fires else [])
    # a later turn settles it while the run goes on; reaching turn 4 exactly, the run end
    assert len(ended) == (1 if last_turn == 4 else 0)


def test_each_turn_with_an_open_a_is_one_finding_and_one_b_answers_all(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(UNANSWERED)
    first = [
        f.event("complaint", "1", 1),
        f.event("complaint", "1 again", 1),  # same turn: the same window
        f.event("complaint", "2", 2),
        f.tool_call("apologize", {}, 2),  # answers both
        f.event("complaint", "3", 3),
        f.event("complaint", "4", 4),
    ]
    second = [f.chat("...", 9)]
    found = [*monitor.observe("run-1", first), *monitor.observe("run-1", second)]
    assert _where(found) == [
        ("complaint-unanswered", first[4].span_id, 5),
        ("complaint-unanswered", first[5].span_id, 6),
    ]


def test_not_followed_by_with_a_key_needs_b_of_the_same_key(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(
        """\
  - id: ticket-unclosed
    severity: low
    pattern: a_not_followed_by_b
    a: tool_name = 'open_ticket'
    b: tool_name = 'close_ticket'
    same: ["tool_arguments->>'ticket'"]
    within_turns: 0
"""
    )
    spans = [
        f.tool_call("open_ticket", {"ticket": "T1"}, 1),
        f.tool_call("open_ticket", {"ticket": "T2"}, 1),
        f.tool_call("close_ticket", {"ticket": "T2"}, 1),
        f.chat("next turn", 2),
    ]
    [finding] = monitor.observe("run-1", spans)
    assert _where([finding]) == [("ticket-unclosed", spans[0].span_id, 1)]
    assert finding.evidence["same"] == {"tool_arguments->>'ticket'": "T1"}


def test_reset_on_cancels_an_open_window(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(UNANSWERED + "    reset_on: event_kind = 'complaint_withdrawn'\n")
    spans = [
        f.event("complaint", "broken", 1),
        f.event("complaint_withdrawn", "never mind", 2),
        f.chat("later", 8),
    ]
    assert monitor.observe("run-1", spans) == []


# --- b_directly_after_a -------------------------------------------------------------

CLAIMS_SUCCESS = """\
  - id: claims-success-after-error
    severity: high
    pattern: b_directly_after_a
    a: operation = 'execute_tool' AND status_code = 'ERROR'
    b: operation = 'chat' AND output_messages::VARCHAR ILIKE '%done%'
    among: operation = 'chat'
"""


def test_b_directly_after_a_looks_only_at_the_next_span_among(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(CLAIMS_SUCCESS)
    failed = f.record(
        "execute_tool pay", 1, status_code="ERROR", **{"gen_ai.operation.name": "execute_tool"}
    )
    spans = [
        failed,
        f.tool_call("lookup", {}, 1),  # not a chat: not "the next span"
        f.chat("All done!", 1),  # the next chat claims success: fires
        f.chat("done again", 2),  # not directly after the error any more
        f.record(
            "execute_tool pay", 3, status_code="ERROR", **{"gen_ai.operation.name": "execute_tool"}
        ),
        f.chat("sorry, it failed", 3),  # the next chat is honest
        f.chat("done", 4),
    ]
    [finding] = monitor.observe("run-1", spans)
    assert _where([finding]) == [("claims-success-after-error", spans[2].span_id, 1)]
    assert finding.evidence["a"]["span_id"] == failed.span_id
    assert finding.evidence["b"]["span_id"] == spans[2].span_id


def test_without_among_the_next_span_is_any_span(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(
        """\
  - id: delete-right-after-read
    severity: low
    pattern: b_directly_after_a
    a: tool_name = 'read_file'
    b: tool_name = 'delete_file'
"""
    )
    spans = [
        f.tool_call("read_file", {}, 1),
        f.tool_call("delete_file", {}, 1),  # directly after: fires
        f.tool_call("read_file", {}, 2),
        f.chat("hm", 2),
        f.tool_call("delete_file", {}, 2),  # a chat came in between
    ]
    assert _where(monitor.observe("run-1", spans)) == [
        ("delete-right-after-read", spans[1].span_id, 1)
    ]
