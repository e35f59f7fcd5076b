"""Message templates never raise and never follow attributes; evidence is bounded."""

from __future__ import annotations

from collections.abc import Callable

from driftwatch.core import SpanRecord
from driftwatch.monitor import record_columns, safe_format
from driftwatch.monitor.evidence import truncate_strings, truncate_text

SpanFactory = Callable[..., SpanRecord]

VALUES = {"tool_name": "write_file", "turn": 3, "tool_arguments": {"path": "a.txt"}, "none": None}


def test_placeholders_are_filled_from_columns_and_json_keys() -> None:
    template = "{tool_name} on {tool_arguments[path]} at turn {turn}"
    assert safe_format(template, VALUES) == "write_file on a.txt at turn 3"


def test_missing_keys_and_none_values_leave_the_placeholder() -> None:
    template = "{nope} {tool_arguments[source]} {none} {turn[0]} {turn:>4}"
    assert safe_format(template, VALUES) == "{nope} {tool_arguments[source]} {none} {turn[0]}    3"


def test_attribute_access_and_positional_fields_are_not_followed() -> None:
    template = "{tool_name.__class__} {} {0} {tool_name!r}"
    assert safe_format(template, VALUES) == "{tool_name.__class__} {} {0} 'write_file'"


def test_bad_format_spec_and_malformed_template_do_not_raise() -> None:
    assert safe_format("{turn:%Y} ok", VALUES) == "{turn:%Y} ok"
    assert safe_format("unbalanced {tool_name", VALUES) == "unbalanced {tool_name"
    assert safe_format("literal {{braces}} {turn}", VALUES) == "literal {braces} 3"


def test_dict_values_render_as_json_and_messages_are_capped() -> None:
    assert safe_format("{tool_arguments}", VALUES) == '{"path": "a.txt"}'
    long = safe_format("{x}", {"x": "a" * 5000})
    assert long.startswith("a" * 1000 + "… [4000 chars truncated]")


def test_truncation_counts_utf8_bytes_and_never_splits_a_character() -> None:
    assert truncate_text("é" * 10, 5) == "éé… [15 bytes truncated]"
    assert truncate_strings({"a": ["x" * 10, 1]}, 4) == {"a": ["xxxx… [6 bytes truncated]", 1]}


def test_record_columns_expose_derived_columns(make_span: SpanFactory) -> None:
    span = make_span(tool="write_file", arguments={"path": "p"}, result="done", turn=2)
    columns = record_columns(span)
    assert columns["tool_arguments"] == {"path": "p"}
    assert columns["tool_result"] == "done"
    assert columns["scenario_id"] == "oversight-config"
    assert columns["turn"] == 2
    assert columns["operation"] == "execute_tool"


def test_non_json_tool_arguments_are_kept_as_text(make_span: SpanFactory) -> None:
    span = make_span(tool="run_shell", arguments="rm -rf /")
    assert record_columns(span)["tool_arguments"] == "rm -rf /"
