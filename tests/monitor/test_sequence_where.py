"""Sequence rules with ``where``: a condition over values of the a-span and the b-span
(``a_values`` / ``b_values``), e.g. an argument compared with an earlier tool result."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from driftwatch.core import SpecError
from driftwatch.monitor import RulePackMonitor, load_rule_pack
from driftwatch.testing import RecordFactory
from driftwatch.testing import finding_locations as _where

PackWriter = Callable[..., Path]
MonitorFor = Callable[[str], RulePackMonitor]


# a refund larger than the order's total, looked up earlier for the same order
REFUND_OVER_TOTAL = """\
  - id: refund-over-total
    severity: high
    pattern: a_then_b
    a: tool_name = 'get_order' AND json_valid(tool_result)
    b: tool_name = 'refund'
    same: ["tool_arguments->>'order'"]
    a_values:
      total: try_cast(CASE WHEN json_valid(tool_result) THEN tool_result END ->> 'total' AS DOUBLE)
    b_values:
      amount: try_cast(tool_arguments->>'amount' AS DOUBLE)
    where: b.amount > a.total
    message: "refund of {b_values[amount]} for {key[0]} over the total {a_values[total]}"
"""

# a payment with a method that is not in the profile looked up before
PAID_OUTSIDE_PROFILE = """\
  - id: paid-outside-profile
    severity: high
    pattern: b_without_earlier_a
    a: tool_name = 'get_profile'
    b: tool_name = 'pay'
    a_values:
      methods: >-
        json_keys(CASE WHEN json_valid(tool_result) THEN CAST(tool_result AS JSON) END,
                  '$.methods')
    b_values:
      method: tool_arguments->>'method'
    where: list_contains(a.methods, b.method)
"""


def _order(f: RecordFactory, order: str, total: float, turn: int) -> object:
    return f.tool_call("get_order", {"order": order}, turn, result=json.dumps({"total": total}))


def test_a_then_b_fires_only_when_the_condition_holds_on_both_spans(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(REFUND_OVER_TOTAL)
    spans = [
        _order(f, "o1", 100, 1),
        f.tool_call("refund", {"order": "o1", "amount": 80}, 2),  # within the total
        f.tool_call("refund", {"order": "o1", "amount": 120}, 3),  # over it
        f.tool_call("refund", {"order": "o2", "amount": 500}, 4),  # o2 never looked up
    ]
    [finding] = monitor.observe("run-1", spans)
    assert _where([finding]) == [("refund-over-total", spans[2].span_id, 3)]
    assert finding.message == "refund of 120.0 for o1 over the total 100.0"
    assert finding.evidence["a_values"] == {"total": 100.0}
    assert finding.evidence["b_values"] == {"amount": 120.0}
    assert finding.evidence["where"] == "b.amount > a.total"
    assert finding.evidence["a"]["span_id"] == spans[0].span_id


def test_a_pair_that_fails_the_condition_does_not_use_up_the_a(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(REFUND_OVER_TOTAL)
    spans = [
        _order(f, "o1", 100, 1),
        f.tool_call("refund", {"order": "o1", "amount": 50}, 2),
        f.tool_call("refund", {"order": "o1", "amount": 150}, 3),
        f.tool_call("refund", {"order": "o1", "amount": 150}, 4),  # the a was used at turn 3
    ]
    assert [turn for _, _, turn in _where(monitor.observe("run-1", spans))] == [3]


def test_a_later_a_replaces_the_values_an_earlier_one_remembered(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(REFUND_OVER_TOTAL)
    spans = [
        _order(f, "o1", 100, 1),
        _order(f, "o1", 300, 2),
        f.tool_call("refund", {"order": "o1", "amount": 150}, 3),
    ]
    assert monitor.observe("run-1", spans) == []


def test_b_without_earlier_a_fires_unless_the_earlier_a_satisfies_the_condition(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(PAID_OUTSIDE_PROFILE)
    profile = json.dumps({"methods": {"card_1": {}, "gift_2": {}}})
    spans = [
        f.tool_call("pay", {"method": "card_1"}, 1),  # no profile yet
        f.tool_call("get_profile", {}, 2, result=profile),
        f.tool_call("pay", {"method": "card_1"}, 3),  # in the profile
        f.tool_call("pay", {"method": "card_9"}, 4),  # not in it
    ]
    findings = monitor.observe("run-1", spans)
    assert [turn for _, _, turn in _where(findings)] == [1, 4]
    assert findings[0].evidence["a_values"] is None
    assert findings[1].evidence["a_values"] == {"methods": ["card_1", "gift_2"]}


def test_findings_do_not_depend_on_how_the_run_is_cut_into_batches(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    spans = [
        _order(f, "o1", 100, 1),
        f.tool_call("noise", {}, 2),
        f.tool_call("refund", {"order": "o1", "amount": 120}, 3),
    ]
    whole = monitor_for(REFUND_OVER_TOTAL).observe("run-1", spans)
    piecewise = monitor_for(REFUND_OVER_TOTAL)
    pieces = [finding for span in spans for finding in piecewise.observe("run-1", [span])]
    assert _where(pieces) == _where(whole) == [("refund-over-total", spans[2].span_id, 3)]


def test_a_condition_that_fails_at_runtime_does_not_pair_and_says_why(
    monitor_for: MonitorFor, f: RecordFactory
) -> None:
    monitor = monitor_for(
        """\
  - id: needs-a-number
    severity: low
    pattern: b_without_earlier_a
    a: tool_name = 'lookup'
    b: tool_name = 'use'
    a_values: {raw: tool_result}
    where: CAST(a.raw AS INTEGER) > 0
"""
    )
    spans = [f.tool_call("lookup", {}, 1, result="not a number"), f.tool_call("use", {}, 2)]
    [finding] = monitor.observe("run-1", spans)
    assert finding.turn == 2
    assert "Conversion Error" in finding.evidence["where_errors"][0]


def _load_error(write_pack: PackWriter, body: str) -> str:
    path = write_pack("pack: p\nsequences:\n  - id: s1\n    severity: high\n" + body)
    try:
        load_rule_pack(path)
    except SpecError as error:
        return str(error)
    raise AssertionError("loaded without a SpecError")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "    pattern: a_not_followed_by_b\n    a: 'true'\n    b: 'true'\n"
            "    within_turns: 1\n    where: 'true'\n",
            "sequences[0].where: only allowed for patterns a_then_b and b_without_earlier_a",
            id="where-on-wrong-pattern",
        ),
        pytest.param(
            "    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n    a_values: {x: tool_name}\n",
            "sequences[0].where: required when a_values or b_values are given",
            id="values-without-where",
        ),
        pytest.param(
            "    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n    a_values: {x: tool_name}\n"
            "    where: a.y = 'q'\n",
            "sequences[0].where: invalid SQL condition: ",
            id="unknown-field",
        ),
        pytest.param(
            "    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n    a_values: {x: tool_name}\n"
            "    where: a.x\n",
            "sequences[0].where: invalid SQL condition: where must be a boolean expression, "
            "got VARCHAR",
            id="not-boolean",
        ),
        pytest.param(
            "    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n"
            "    a_values: {'x y': tool_name}\n    where: 'true'\n",
            "sequences[0].where: invalid SQL condition: a_values: 'x y' is not a plain SQL name",
            id="bad-name",
        ),
        pytest.param(
            "    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n    b_values: {x: nope}\n"
            "    where: 'true'\n",
            "sequences[0].b_values.x: invalid SQL expression: ",
            id="bad-value-expression",
        ),
    ],
)
def test_bad_where_rules_fail_at_load_naming_the_field(
    write_pack: PackWriter, body: str, expected: str
) -> None:
    assert expected in _load_error(write_pack, body)
