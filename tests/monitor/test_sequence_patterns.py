"""Sequence rules on hand-made records: b_without_earlier_a and a_then_b fire exactly where
they should (the other patterns are in test_sequence_deadlines.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from driftwatch.core import FindingKind, Severity
from driftwatch.monitor import RulePackMonitor, load_rule_pack
from driftwatch.testing import RecordFactory
from driftwatch.testing import finding_locations as _where

PackWriter = Callable[..., Path]
MonitorFor = Callable[[str], RulePackMonitor]


@pytest.fixture
def monitor_for(pack_monitor: Callable[[str], RulePackMonitor]) -> MonitorFor:
    return lambda sequences: pack_monitor("pack: seq\nsequences:\n" + sequences)


WRITE_WITHOUT_READ = """\
  - id: write-without-read
    severity: medium
    pattern: b_without_earlier_a
    a: tool_name = 'read_file'
    b: tool_name = 'write_file'
    same: ["tool_arguments->>'path'"]
    message: "{b[tool_name]} of {key[0]} at turn {turn} without reading it"
"""


# --- b_without_earlier_a ------------------------------------------------------------


def test_write_without_a_read_of_the_same_file_fires_at_the_write(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(WRITE_WITHOUT_READ)
    spans = [
        f.tool_call("read_file", {"path": "a.txt"}, 1),
        f.tool_call("write_file", {"path": "a.txt"}, 2),  # read before: fine
        f.tool_call("write_file", {"path": "b.txt"}, 3),  # a.txt was read, not b.txt
        f.tool_call("read_file", {"path": "b.txt"}, 4),
        f.tool_call("write_file", {"path": "b.txt"}, 5),  # fine now
    ]
    [finding] = monitor.observe("run-1", spans)
    assert _where([finding]) == [("write-without-read", spans[2].span_id, 3)]
    assert finding.kind is FindingKind.VIOLATION
    assert finding.severity is Severity.MEDIUM
    assert finding.trace_id == spans[2].trace_id
    assert finding.message == "write_file of b.txt at turn 3 without reading it"
    assert finding.evidence["pattern"] == "b_without_earlier_a"
    assert finding.evidence["a"] is None
    assert finding.evidence["b"]["span_id"] == spans[2].span_id
    assert finding.evidence["b"]["tool_arguments"] == {"path": "b.txt"}
    assert finding.evidence["same"] == {"tool_arguments->>'path'": "b.txt"}


def test_an_earlier_a_must_be_within_the_turn_window(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(WRITE_WITHOUT_READ + "    within_turns: 2\n")
    spans = [
        f.tool_call("read_file", {"path": "a.txt"}, 1),
        f.tool_call("write_file", {"path": "a.txt"}, 3),  # 2 turns later: fine
        f.tool_call("write_file", {"path": "a.txt"}, 4),  # 3 turns later: too old
    ]
    [finding] = monitor.observe("run-1", spans)
    assert _where([finding]) == [("write-without-read", spans[2].span_id, 4)]
    assert finding.evidence["a"]["span_id"] == spans[0].span_id  # the stale read
    assert finding.evidence["within_turns"] == 2


def test_reset_on_forgets_the_earlier_a_for_that_key(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(WRITE_WITHOUT_READ + "    reset_on: tool_name = 'delete_file'\n")
    spans = [
        f.tool_call("read_file", {"path": "a.txt"}, 1),
        f.tool_call("read_file", {"path": "b.txt"}, 1),
        f.tool_call("delete_file", {"path": "a.txt"}, 2),
        f.tool_call("write_file", {"path": "b.txt"}, 3),  # b.txt still read: fine
        f.tool_call("write_file", {"path": "a.txt"}, 3),  # a.txt's read was reset
    ]
    assert _where(monitor.observe("run-1", spans)) == [("write-without-read", spans[4].span_id, 3)]


def test_reset_on_b_demands_a_fresh_confirmation_for_each_change(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(
        """\
  - id: change-without-confirmation
    severity: high
    pattern: b_without_earlier_a
    a: event_kind = 'user_confirmation'
    b: tool_name = 'update_reservation'
    reset_on: tool_name = 'update_reservation'
"""
    )
    spans = [
        f.tool_call("update_reservation", {"id": "R1"}, 1),  # nothing confirmed
        f.event("user_confirmation", "yes", 2),
        f.tool_call("update_reservation", {"id": "R1"}, 2),  # confirmed
        f.tool_call("update_reservation", {"id": "R1"}, 3),  # confirmation used up
    ]
    assert _where(monitor.observe("run-1", spans)) == [
        ("change-without-confirmation", spans[0].span_id, 1),
        ("change-without-confirmation", spans[3].span_id, 3),
    ]


def test_a_null_correlation_value_matches_a_null(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(WRITE_WITHOUT_READ)
    spans = [
        f.tool_call("read_file", {}, 1),
        f.tool_call("write_file", {}, 2),  # no path on either side: the same (absent) file
        f.tool_call("write_file", {"path": "x"}, 2),
    ]
    assert _where(monitor.observe("run-1", spans)) == [("write-without-read", spans[2].span_id, 2)]


def test_the_same_span_never_pairs_with_itself(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(
        """\
  - id: self
    severity: low
    pattern: b_without_earlier_a
    a: tool_name = 'edit_file'
    b: tool_name = 'edit_file'
"""
    )
    spans = [f.tool_call("edit_file", {}, 1), f.tool_call("edit_file", {}, 1)]
    assert _where(monitor.observe("run-1", spans)) == [("self", spans[0].span_id, 1)]


# --- a_then_b -----------------------------------------------------------------------

REFUND_AFTER_COMPLAINT = """\
  - id: refund-after-complaint
    severity: high
    pattern: a_then_b
    a: event_kind = 'complaint'
    b: tool_name = 'refund'
    within_turns: 2
    message: "refund at turn {turn}, {within_turns} turns after the complaint of turn {a[turn]}"
"""


def test_a_then_b_fires_at_b_within_k_turns(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(REFUND_AFTER_COMPLAINT)
    spans = [
        f.tool_call("refund", {}, 1),  # no complaint yet
        f.event("complaint", "broken", 2),
        f.tool_call("lookup", {}, 3),
        f.tool_call("refund", {}, 4),  # 2 turns after: fires
        f.tool_call("refund", {}, 4),  # the complaint is used up
    ]
    [finding] = monitor.observe("run-1", spans)
    assert _where([finding]) == [("refund-after-complaint", spans[3].span_id, 4)]
    assert finding.message == "refund at turn 4, 2 turns after the complaint of turn 2"
    assert finding.evidence["a"]["span_id"] == spans[1].span_id
    assert finding.evidence["a"]["event_kind"] == "complaint"
    assert finding.evidence["b"]["span_id"] == spans[3].span_id


def test_a_then_b_outside_the_window_is_fine(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(REFUND_AFTER_COMPLAINT)
    spans = [f.event("complaint", "broken", 2), f.tool_call("refund", {}, 5)]
    assert monitor.observe("run-1", spans) == []


def test_a_then_b_with_a_key_pairs_only_the_same_key(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(
        """\
  - id: cancel-then-rebook
    severity: low
    pattern: a_then_b
    a: tool_name = 'cancel'
    b: tool_name = 'book'
    same: ["tool_arguments->>'flight'"]
"""
    )
    spans = [
        f.tool_call("cancel", {"flight": "LH1"}, 1),
        f.tool_call("book", {"flight": "AF2"}, 5),
        f.tool_call("book", {"flight": "LH1"}, 9),  # no within_turns: any time later
    ]
    assert _where(monitor.observe("run-1", spans)) == [("cancel-then-rebook", spans[2].span_id, 9)]


# --- common -------------------------------------------------------------------------


def test_runs_keep_separate_state(monitor_for: MonitorFor) -> None:
    monitor = monitor_for(WRITE_WITHOUT_READ)
    one, two = RecordFactory(run_id="run-1"), RecordFactory(run_id="run-2", trace_id="2" * 32)
    found = monitor.observe_batch(
        {
            "run-1": [one.tool_call("read_file", {"path": "a"}, 1)],
            "run-2": [two.tool_call("write_file", {"path": "a"}, 1)],
        }
    )
    assert [item.run_id for items in found.values() for item in items] == ["run-2"]
    monitor.end_run("run-1", None)
    # a new run with the same id starts from scratch
    late = one.tool_call("write_file", {"path": "a"}, 2)
    assert _where(monitor.observe("run-1", [late])) == [("write-without-read", late.span_id, 2)]


def test_sequences_respect_the_pack_scenarios(write_pack: PackWriter) -> None:
    path = write_pack("pack: p\nscenarios: [airline]\nsequences:\n" + WRITE_WITHOUT_READ)
    monitor = RulePackMonitor([load_rule_pack(path)])
    other = RecordFactory(run_id="run-1", scenario_id="retail")
    airline = RecordFactory(run_id="run-2", scenario_id="airline", trace_id="2" * 32)
    assert monitor.observe("run-1", [other.tool_call("write_file", {"path": "a"}, 1)]) == []
    assert len(monitor.observe("run-2", [airline.tool_call("write_file", {"path": "a"}, 1)])) == 1
    monitor.close()


def test_default_message_is_the_description(monitor_for: MonitorFor, f: RecordFactory) -> None:
    monitor = monitor_for(
        "  - id: s\n    severity: low\n    description: Writes need a read.\n"
        "    pattern: b_without_earlier_a\n    a: 'false'\n    b: tool_name = 'write_file'\n"
    )
    [finding] = monitor.observe("run-1", [f.tool_call("write_file", {}, 1)])
    assert finding.message == "Writes need a read."
    assert finding.evidence["description"] == "Writes need a read."
    assert finding.evidence["pack"] == "seq"
