"""SpanRecord normalises aliases and derives the typed columns from attributes."""

from __future__ import annotations

from datetime import UTC

import pytest

from driftwatch.core import Severity, SpanRecord


def make(**attributes: object) -> SpanRecord:
    return SpanRecord.create(trace_id="a" * 32, span_id="b" * 16, name="chat x",
                             start_time_ns=1_700_000_000_000_000_000,
                             end_time_ns=1_700_000_000_250_000_000, attributes=attributes)


def test_aliases_are_renamed_to_current_genai_names() -> None:
    record = make(**{"gen_ai.system": "openai", "gen_ai.usage.prompt_tokens": 12,
                     "llm.token_count.completion": 3})
    assert record.provider == "openai"
    assert record.input_tokens == 12
    assert record.output_tokens == 3
    assert "gen_ai.system" not in record.attributes


def test_current_name_wins_over_alias() -> None:
    record = make(**{"gen_ai.system": "old", "gen_ai.provider.name": "new"})
    assert record.provider == "new"


def test_run_id_prefers_driftwatch_then_conversation_then_trace() -> None:
    assert make(**{"driftwatch.run.id": "r1", "gen_ai.conversation.id": "c"}).run_id == "r1"
    assert make(**{"gen_ai.conversation.id": "c"}).run_id == "c"
    assert make().run_id == "a" * 32


def test_times_are_timezone_aware_and_duration_in_ms() -> None:
    record = make()
    assert record.start_time.tzinfo is UTC
    assert record.duration_ms == pytest.approx(250.0)


def test_tool_arguments_parse_json_and_tolerate_garbage() -> None:
    assert make(**{"gen_ai.tool.call.arguments": '{"path": "x"}'}).tool_arguments() == {"path": "x"}
    assert make(**{"gen_ai.tool.call.arguments": "{oops"}).tool_arguments() == {}
    assert make(**{"driftwatch.turn": "7"}).turn == 7


@pytest.mark.parametrize(
    ("text", "level"), [("high", Severity.HIGH), ("CRITICAL", Severity.CRITICAL)]
)
def test_severity_parses_names(text: str, level: Severity) -> None:
    assert Severity.parse(text) is level


def test_unknown_severity_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="allowed: info, low, medium, high, critical"):
        Severity.parse("urgent")
