"""GenAI events → span message attributes: the current details event, the older
per-message events, and which side wins when both carry a key."""

from __future__ import annotations

import json

from driftwatch.tracing.genai_events import FROM_LOGS, content_from_events, merge_content

DETAILS = "gen_ai.client.inference.operation.details"


def test_the_details_event_gives_its_structured_messages_as_json_text() -> None:
    inputs = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    attributes = json.dumps({"gen_ai.input.messages": inputs,
                             "gen_ai.system_instructions": [{"type": "text", "content": "be"}]})
    content = content_from_events([(DETAILS, 5, None, attributes)])
    assert json.loads(content["gen_ai.input.messages"]) == inputs
    assert json.loads(content["gen_ai.system_instructions"]) == [{"type": "text",
                                                                  "content": "be"}]
    assert "gen_ai.output.messages" not in content


def test_legacy_tool_message_and_choices_in_index_order() -> None:
    events = [
        ("gen_ai.tool.message", 1, json.dumps({"id": "c1", "content": "ok"}), None),
        ("gen_ai.choice", 2, json.dumps({"index": 1, "message": {"content": "second"}}), None),
        ("gen_ai.choice", 3, json.dumps({"index": 0, "message": {"content": "first"}}), None),
    ]
    content = content_from_events(events)
    assert json.loads(content["gen_ai.input.messages"]) == [
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1",
                                    "response": "ok"}]}]
    outputs = json.loads(content["gen_ai.output.messages"])
    assert [m["parts"][0]["content"] for m in outputs] == ["first", "second"]


def test_the_span_own_attribute_wins_and_event_filled_keys_are_refilled() -> None:
    span = json.dumps({"gen_ai.output.messages": "[\"from the span\"]"})
    merged = merge_content(span, {"gen_ai.output.messages": "[]",
                                  "gen_ai.input.messages": "[1]"})
    assert merged is not None
    attributes = json.loads(merged)
    assert attributes["gen_ai.output.messages"] == "[\"from the span\"]"
    assert attributes[FROM_LOGS] == ["gen_ai.input.messages"]
    again = json.loads(merge_content(merged, {"gen_ai.input.messages": "[1, 2]"}) or "{}")
    assert again["gen_ai.input.messages"] == "[1, 2]"
    assert merge_content(json.dumps(again), {"gen_ai.input.messages": "[1, 2]"}) is None
    assert merge_content(span, {}) is None
