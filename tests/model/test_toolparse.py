"""Tool calls written as text: the shapes small models write, and the ones that are
malformed (counted by the caller, never raised)."""

from __future__ import annotations

import json

import pytest

from driftwatch.model.toolparse import NO_TOOL, TextCall, call_schema, parse_text_call

TOOLS = {"read_file", "write_file"}


@pytest.mark.parametrize(
    "text",
    [
        '{"tool": "read_file", "arguments": {"path": "a.txt"}}',
        '{"name": "read_file", "arguments": {"path": "a.txt"}}',
        '{"name": "read_file", "parameters": {"path": "a.txt"}}',
        '{"function": {"name": "read_file", "arguments": "{\\"path\\": \\"a.txt\\"}"}}',
        'I will read it.\n```json\n{"tool": "read_file", "arguments": {"path": "a.txt"}}\n```',
        'Sure: {"tool": "read_file", "arguments": {"path": "a.txt"}} done',
    ],
)
def test_the_shapes_models_write_are_one_call(text: str) -> None:
    assert parse_text_call(text, TOOLS) == TextCall(name="read_file",
                                                    arguments={"path": "a.txt"})


def test_plain_text_and_the_json_answer_form_are_messages() -> None:
    assert parse_text_call("All done.", TOOLS) == TextCall(message="All done.")
    answer = json.dumps({"tool": NO_TOOL, "message": "All done."})
    assert parse_text_call(answer, TOOLS) == TextCall(message="All done.")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"tool": "rm_rf", "arguments": {}}', "unknown tool 'rm_rf'"),
        ('{"tool": "read_file", "arguments": "{broken"}',
         "arguments of read_file are not valid JSON"),
        ('{"tool": "read_file", "arguments": [1]}',
         "arguments of read_file are not a JSON object"),
        ('{"tool": "read_file", "arguments": {"path": ', "a tool call that is not valid JSON"),
        ('{"arguments": {"path": "a"}}', "a JSON object without a tool name"),
    ],
)
def test_attempted_calls_that_cannot_be_read_are_malformed(text: str, reason: str) -> None:
    assert parse_text_call(text, TOOLS) == TextCall(malformed=reason)


def test_the_schema_admits_each_tool_and_the_answer_form() -> None:
    tools = [{"type": "function", "function": {
        "name": name, "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}
        for name in sorted(TOOLS)]
    schema = call_schema(tools)
    consts = [choice["properties"]["tool"]["const"] for choice in schema["anyOf"]]
    assert consts == ["read_file", "write_file", NO_TOOL]
    assert all(choice["additionalProperties"] is False for choice in schema["anyOf"])
