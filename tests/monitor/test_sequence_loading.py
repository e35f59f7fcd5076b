"""Sequence and window sections of rule packs: the format, and every error as
``path:line: field: problem``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from driftwatch.core import SpecError
from driftwatch.monitor import (
    SequencePattern,
    load_rule_pack,
    load_rule_packs,
)

PackWriter = Callable[..., Path]

FULL = """\
pack: full
rules:
  - id: any-delete
    severity: low
    when: tool_name = 'delete_file'
sequences:
  - id: write-without-read
    severity: medium
    description: A file is written that was not read first.
    pattern: b_without_earlier_a
    a: tool_name = 'read_file'
    b: tool_name = 'write_file'
    same: ["tool_arguments->>'path'"]
    reset_on: tool_name = 'delete_file'
    message: "{b[tool_name]} {key[0]} at turn {turn}"
  - id: complaint-unanswered
    severity: high
    pattern: a_not_followed_by_b
    a: event_kind = 'complaint'
    b: tool_name = 'refund'
    within_turns: 2
  - id: claims-after-error
    severity: high
    pattern: b_directly_after_a
    a: operation = 'execute_tool' AND status_code = 'ERROR'
    b: operation = 'chat' AND output_messages::VARCHAR ILIKE '%success%'
    among: operation = 'chat'
windows:
  - id: repeated-calls
    severity: medium
    when: operation = 'execute_tool'
    group_by: [tool_name, tool_arguments]
    more_than: 3
    per: {turns: 5}
  - id: daily-spend
    severity: high
    when: tool_name = 'pay'
    value: try_cast(tool_arguments->>'amount' AS DOUBLE)
    more_than: 200.5
    per: {attribute: driftwatch.sim.day}
final_state:
  - id: done
    severity: low
    expect: 'true'
"""


def _error(path: Path, load: Callable[[Path], object] = load_rule_pack) -> str:
    # try/except rather than pytest.raises(...) as info: a kept traceback would hold the
    # store's module-global DuckDB connection alive until interpreter exit
    try:
        load(path)
    except SpecError as error:
        return str(error)
    raise AssertionError(f"{path} loaded without a SpecError")


def test_every_rule_kind_loads_with_its_fields(write_pack: PackWriter) -> None:
    pack = load_rule_pack(write_pack(FULL))
    assert [rule.id for rule in pack.rules] == ["any-delete"]
    first, second, third = pack.sequences
    assert first.pattern is SequencePattern.B_WITHOUT_EARLIER_A
    assert first.same == ["tool_arguments->>'path'"]
    assert first.reset_on == "tool_name = 'delete_file'"
    assert first.within_turns is None
    assert second.within_turns == 2
    assert third.among == "operation = 'chat'"
    repeated, spend = pack.windows
    assert repeated.group_by == ["tool_name", "tool_arguments"]
    assert (repeated.more_than, repeated.per.turns, repeated.value) == (3, 5, None)
    assert (spend.more_than, spend.per.attribute) == (200.5, "driftwatch.sim.day")
    assert [check.id for check in pack.final_state] == ["done"]


def test_packs_without_the_new_sections_still_load(oversight_pack: Path) -> None:
    pack = load_rule_pack(oversight_pack)
    assert (pack.sequences, pack.windows) == ([], [])


def _sequence(body: str) -> str:
    return "pack: p\nsequences:\n  - id: s1\n    severity: high\n" + body


def _window(body: str) -> str:
    return "pack: p\nwindows:\n  - id: w1\n    severity: high\n" + body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            _sequence("    pattern: a_then_b\n    a: tool_nme = 'x'\n    b: 'true'\n"),
            ":6: sequences[0].a: invalid SQL predicate: ",
            id="bad-column-in-a",
        ),
        pytest.param(
            _sequence("    pattern: a_then_b\n    a: 'true'\n    b: tool_name = = 1\n"),
            ":7: sequences[0].b: invalid SQL predicate: ",
            id="syntax-error-in-b",
        ),
        pytest.param(
            _sequence("    pattern: a_then_b\n    a: 'true'\n    b: tool_name\n"),
            ":7: sequences[0].b: invalid SQL predicate: predicate must be a boolean",
            id="b-not-boolean",
        ),
        pytest.param(
            _sequence(
                "    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n"
                "    same:\n      - tool_name\n      - no_such(column)\n"
            ),
            ":10: sequences[0].same[1]: invalid SQL expression: ",
            id="bad-same-expression",
        ),
        pytest.param(
            _sequence(
                "    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n    reset_on: 'x = '\n"
            ),
            ":8: sequences[0].reset_on: invalid SQL predicate: ",
            id="bad-reset",
        ),
        pytest.param(
            _sequence("    pattern: a_before_b\n    a: 'true'\n    b: 'true'\n"),
            ":5: sequences[0].pattern: Input should be 'b_without_earlier_a'",
            id="unknown-pattern",
        ),
        pytest.param(
            _sequence("    pattern: a_not_followed_by_b\n    a: 'true'\n    b: 'true'\n"),
            ":3: sequences[0].within_turns: required for pattern a_not_followed_by_b",
            id="within-required",
        ),
        pytest.param(
            _sequence(
                "    pattern: b_directly_after_a\n    a: 'true'\n    b: 'true'\n"
                "    within_turns: 1\n"
            ),
            ":8: sequences[0].within_turns: not allowed for pattern b_directly_after_a",
            id="within-not-allowed",
        ),
        pytest.param(
            _sequence(
                "    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n    within_turns: -1\n"
            ),
            ":8: sequences[0].within_turns: Input should be greater than or equal to 0",
            id="negative-within",
        ),
        pytest.param(
            _sequence("    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n    among: 'true'\n"),
            ":8: sequences[0].among: only allowed for pattern b_directly_after_a",
            id="among-not-allowed",
        ),
        pytest.param(
            _sequence("    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n    whithin: 2\n"),
            ":8: sequences[0].whithin: unknown field",
            id="unknown-field",
        ),
        pytest.param(
            _window("    when: 'true'\n    more_than: 1\n    per: {turns: 0}\n"),
            ":7: windows[0].per.turns: Input should be greater than or equal to 1",
            id="window-k-zero",
        ),
        pytest.param(
            _window("    when: 'true'\n    more_than: -1\n    per: {turns: 2}\n"),
            ":6: windows[0].more_than: Input should be greater than or equal to 0",
            id="negative-n",
        ),
        pytest.param(
            _window("    when: 'true'\n    more_than: 1\n    per: {turns: 2, attribute: x}\n"),
            ":7: windows[0].per: give exactly one of turns or attribute",
            id="per-both",
        ),
        pytest.param(
            _window("    when: 'true'\n    more_than: 1\n    per: {}\n"),
            ":7: windows[0].per: give exactly one of turns or attribute",
            id="per-neither",
        ),
        pytest.param(
            _window("    when: 'true'\n    more_than: 1\n"),
            ":3: windows[0].per: Field required",
            id="per-missing",
        ),
        pytest.param(
            _window(
                "    when: 'true'\n    value: tool_arguments->>'amount'\n"
                "    more_than: 1\n    per: {turns: 2}\n"
            ),
            ":6: windows[0].value: invalid SQL expression: expression must be numeric, got VARCHAR",
            id="value-not-numeric",
        ),
        pytest.param(
            _window(
                "    when: 'true'\n    group_by: [tool_nme]\n    more_than: 1\n"
                "    per: {turns: 2}\n"
            ),
            ":6: windows[0].group_by[0]: invalid SQL expression: ",
            id="bad-group-by",
        ),
        pytest.param(
            _window("    when: 'true'\n    more_than: 1\n    per: {days: 1}\n"),
            ":7: windows[0].per.days: unknown field",
            id="unknown-per-field",
        ),
    ],
)
def test_problems_point_at_their_line_and_field(
    write_pack: PackWriter, text: str, expected: str
) -> None:
    path = write_pack(text)
    assert _error(path).startswith(f"{path}{expected}")


def test_one_bad_predicate_among_many_names_its_line(write_pack: PackWriter) -> None:
    text = FULL.replace("b: tool_name = 'refund'", "b: tool_name = 'refund' AND amount > 1")
    path = write_pack(text)
    message = _error(path)
    assert message.startswith(f"{path}:20: sequences[1].b: invalid SQL predicate: ")
    assert '"amount"' in message


def test_rule_ids_are_unique_across_all_sections(write_pack: PackWriter) -> None:
    path = write_pack(
        "pack: p\nrules:\n  - id: r1\n    severity: low\n    when: 'true'\n"
        "windows:\n  - id: r1\n    severity: low\n    when: 'true'\n    more_than: 1\n"
        "    per: {turns: 1}\n"
    )
    assert _error(path) == f"{path}:7: windows[0].id: duplicate rule id 'r1' (also in {path}:3)"


def test_sequence_ids_clash_across_packs(write_pack: PackWriter) -> None:
    first = write_pack(FULL, "a.yaml")
    second = write_pack(
        _sequence("    pattern: a_then_b\n    a: 'true'\n    b: 'true'\n").replace(
            "s1", "any-delete"
        ),
        "b.yaml",
    )
    message = _error(first, lambda _: load_rule_packs([first, second]))
    assert message == (
        f"{second}:3: sequences[0].id: duplicate rule id 'any-delete' (also in {first}:3)"
    )
