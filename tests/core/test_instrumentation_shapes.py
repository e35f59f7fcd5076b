"""What the normaliser makes of the spans real instrumentations sent (recorded fixtures,
tests/data/instrumentations): object arguments, plain results, call ids, operations."""

from __future__ import annotations

import json

import pytest
from tests.instrumentation_fixtures import ALL, CALLS, LANGGRAPH, RESULTS, load

from driftwatch.core import semconv as sc
from driftwatch.core.records import normalize_attributes
from driftwatch.core.toolcalls import requested_tool_calls


def _arguments(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.parametrize("name", ALL)
def test_every_chat_span_carries_its_requested_tool_call(name: str) -> None:
    """litellm's calls live in gen_ai.completion.0.function_call.* next to empty output
    messages; they must survive normalisation like everyone else's."""
    chats = [r for r in load(name) if r.operation == sc.OP_CHAT]
    requested = [call for chat in chats for call in requested_tool_calls(chat.attributes)]
    assert [(call.name, _arguments(call.arguments)) for call in requested] == CALLS
    assert not any(key.startswith("gen_ai.completion.") for chat in chats
                   for key in chat.attributes)


def test_litellm_empty_parts_get_the_flattened_call() -> None:
    first = next(r for r in load("litellm-otel") if r.operation == sc.OP_CHAT)
    (message,) = json.loads(first.attributes[sc.GEN_AI_OUTPUT_MESSAGES])
    assert message == {"role": "assistant", "finish_reason": "tool_calls", "parts": [
        {"type": "tool_call", "id": None, "name": "read_file",
         "arguments": {"path": "config.yaml"}}]}


@pytest.mark.parametrize("name", LANGGRAPH)
def test_langchain_tool_spans_have_call_ids_and_plain_results(name: str) -> None:
    tools = [r for r in load(name) if r.operation == sc.OP_EXECUTE_TOOL]
    assert [t.tool_name for t in tools] == [call[0] for call in CALLS]
    assert [t.attributes[sc.GEN_AI_TOOL_CALL_ID] for t in tools] == [
        "call_read", "call_write", "call_shell"]
    assert [t.attributes[sc.GEN_AI_TOOL_CALL_RESULT] for t in tools] == RESULTS


def test_openllmetry_langchain_callback_blob_becomes_the_arguments() -> None:
    tools = [r for r in load("openllmetry-langchain") if r.operation == sc.OP_EXECUTE_TOOL]
    assert [t.tool_arguments() for t in tools] == [call[1] for call in CALLS]
    assert not any(sc.DW_TOOL_ARGUMENTS_FALLBACK_KEY in t.attributes for t in tools)


def test_openinference_langchain_bare_input_is_a_marked_fallback() -> None:
    """A one-argument tool's input arrives as a bare string: stored as {"input": …} and
    marked, so the declared parameter name can replace the key (store view, rules)."""
    tools = [r for r in load("openinference-langchain") if r.operation == sc.OP_EXECUTE_TOOL]
    assert [t.tool_arguments() for t in tools] == [
        {"input": "config.yaml"}, CALLS[1][1], {"input": "rm -rf build"}]
    assert [t.attributes.get(sc.DW_TOOL_ARGUMENTS_FALLBACK_KEY) for t in tools] == [
        "input", None, "input"]


def test_openllmetry_workflow_and_create_agent_operations() -> None:
    records = load("openllmetry-langchain")
    by_kind = {r.attributes.get("traceloop.span.kind"): r.operation for r in records}
    assert by_kind["workflow"] == sc.OP_INVOKE_AGENT
    assert by_kind["task"] == sc.OP_EXECUTE_TASK
    (create,) = [r for r in records if r.name.startswith("create_agent")]
    assert create.operation == sc.OP_CREATE_AGENT  # not a second invoke_agent


def test_traceloop_kinds_without_an_operation() -> None:
    """Older OpenLLMetry (and traceloop-sdk's decorators) send only traceloop.span.kind."""
    assert normalize_attributes({"traceloop.span.kind": "workflow"})[
        sc.GEN_AI_OPERATION_NAME] == sc.OP_INVOKE_AGENT
    assert normalize_attributes({"traceloop.span.kind": "task"})[
        sc.GEN_AI_OPERATION_NAME] == sc.OP_EXECUTE_TASK


@pytest.mark.parametrize(("raw", "plain"), [
    ('"just text"', "just text"),
    ('{"output": {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages",'
     ' "ToolMessage"], "kwargs": {"content": "42", "type": "tool", "tool_call_id": "c"}}}',
     "42"),
    ('{"type": "tool", "data": {"content": "42", "type": "tool", "tool_call_id": "c"}}', "42"),
    ('{"rows": 3}', '{"rows": 3}'),  # a real JSON result stays as it is
])
def test_tool_results_are_plain_values(raw: str, plain: str) -> None:
    attributes = normalize_attributes({"traceloop.span.kind": "tool",
                                       "traceloop.entity.output": raw})
    assert attributes[sc.GEN_AI_TOOL_CALL_RESULT] == plain


def test_hostile_shapes_never_raise() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    attributes = normalize_attributes({
        "traceloop.span.kind": "tool",
        "gen_ai.tool.call.arguments": deep,
        "gen_ai.tool.call.result": deep,
        "gen_ai.output.messages": deep,
        "gen_ai.completion.0.function_call.name": "x",
    })
    assert attributes[sc.GEN_AI_OPERATION_NAME] == sc.OP_EXECUTE_TOOL
    assert requested_tool_calls({sc.GEN_AI_OUTPUT_MESSAGES: deep}) == []
    blob = json.dumps({"input_str": "{" * 50_000, "inputs": {}, "kwargs": {}})
    assert json.loads(normalize_attributes({"traceloop.span.kind": "tool",
                                            "gen_ai.tool.call.arguments": blob})[
        sc.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"input": "{" * 50_000}
