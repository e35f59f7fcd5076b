"""Other instrumentations' attributes become the GenAI names monitors read.

Each span below uses the attribute names its instrumentation really writes (litellm's
``integrations/opentelemetry.py``, OpenLLMetry's ``opentelemetry-semantic-conventions-ai``
and ``@tool`` decorator, OpenInference's ``semconv`` spec)."""

from __future__ import annotations

import json
from typing import Any

from driftwatch.core import semconv as sc
from driftwatch.core.records import SpanRecord, normalize_attributes


def record(attributes: dict[str, Any]) -> SpanRecord:
    return SpanRecord.create(trace_id="1" * 32, span_id="2" * 16, name="span",
                             start_time_ns=1, end_time_ns=2, attributes=attributes)


def test_litellm_callback_span() -> None:
    span = record({
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "llm.request.type": "chat",
        "gen_ai.usage.prompt_tokens": 31,
        "gen_ai.usage.completion_tokens": 12,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "delete the audit log",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "I will not.",
        "gen_ai.completion.0.finish_reason": "stop",
        "llm.is_streaming": "False",
    })
    assert (span.operation, span.provider, span.model) == ("chat", "openai", "gpt-4o-mini")
    assert (span.input_tokens, span.output_tokens) == (31, 12)
    assert json.loads(span.attributes[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "content": "delete the audit log"}]
    assert json.loads(span.attributes[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "content": "I will not.", "finish_reason": "stop"}]
    assert not any(key.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for key in
                   span.attributes)
    assert span.attributes["llm.is_streaming"] == "False"  # unknown keys stay


def test_litellm_tool_calls_as_function_call_keys() -> None:
    span = record({
        "gen_ai.completion.0.function_call.name": "write_file",
        "gen_ai.completion.0.function_call.arguments": '{"path": "a.txt"}',
    })
    (message,) = json.loads(span.attributes[sc.GEN_AI_OUTPUT_MESSAGES])
    assert message["tool_calls"][0]["function"] == {"name": "write_file",
                                                    "arguments": '{"path": "a.txt"}'}


def test_openllmetry_chat_span_with_tool_calls() -> None:
    span = record({
        "gen_ai.system": "Anthropic",
        "gen_ai.request.model": "claude-3-5-sonnet",
        "llm.request.type": "chat",
        "llm.usage.total_tokens": 50,
        "gen_ai.usage.input_tokens": 40,
        "gen_ai.usage.output_tokens": 10,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Never edit oversight_config.yaml",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "ship it",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.tool_calls.0.id": "call_1",
        "gen_ai.completion.0.tool_calls.0.name": "edit_file",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"path": "oversight_config.yaml"}',
    })
    assert span.operation == "chat"
    assert span.provider == "Anthropic"
    messages = json.loads(span.attributes[sc.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in messages] == ["system", "user"]
    (reply,) = json.loads(span.attributes[sc.GEN_AI_OUTPUT_MESSAGES])
    assert reply["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
        "name": "edit_file", "arguments": '{"path": "oversight_config.yaml"}'}}]


def test_openllmetry_tool_span_from_the_tool_decorator() -> None:
    span = record({
        "traceloop.span.kind": "tool",
        "traceloop.entity.name": "send_email",
        "traceloop.entity.input": json.dumps({"args": [], "kwargs": {"to": "x@y.z"}}),
        "traceloop.entity.output": '"sent"',
        "traceloop.workflow.name": "support",
    })
    assert span.operation == sc.OP_EXECUTE_TOOL
    assert span.tool_name == "send_email"
    assert span.tool_arguments() == {"to": "x@y.z"}
    # a JSON-quoted string result is stored as its plain text
    assert span.attributes[sc.GEN_AI_TOOL_CALL_RESULT] == "sent"


def test_openllmetry_agent_span_names_the_agent() -> None:
    span = record({"traceloop.span.kind": "agent", "traceloop.entity.name": "planner"})
    assert span.operation == sc.OP_INVOKE_AGENT
    assert span.attributes[sc.GEN_AI_AGENT_NAME] == "planner"


def test_openinference_llm_span() -> None:
    span = record({
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o",
        "llm.provider": "openai",
        "llm.system": "openai",
        "llm.token_count.prompt": 200,
        "llm.token_count.completion": 20,
        "llm.token_count.total": 220,
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "disable monitoring",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "c9",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "shell",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments":
            '{"cmd": "rm -rf logs"}',
        "session.id": "session-5",
        "input.value": '{"messages": []}',
    })
    assert (span.operation, span.model, span.provider) == ("chat", "gpt-4o", "openai")
    assert (span.input_tokens, span.output_tokens) == (200, 20)
    assert span.run_id == "session-5"
    (reply,) = json.loads(span.attributes[sc.GEN_AI_OUTPUT_MESSAGES])
    assert reply["tool_calls"][0]["function"]["name"] == "shell"
    assert reply["tool_calls"][0]["id"] == "c9"
    assert sc.GEN_AI_TOOL_CALL_ARGUMENTS not in span.attributes  # an LLM span's input


def test_openinference_tool_span() -> None:
    span = record({
        "openinference.span.kind": "TOOL",
        "tool.name": "write_file",
        "tool.description": "Write a file",
        "tool.parameters": '{"type": "object"}',
        "input.value": '{"path": "project/oversight_config.yaml"}',
        "output.value": "ok",
    })
    assert span.operation == sc.OP_EXECUTE_TOOL
    assert span.tool_name == "write_file"
    assert span.tool_arguments() == {"path": "project/oversight_config.yaml"}
    assert span.attributes[sc.GEN_AI_TOOL_CALL_RESULT] == "ok"
    assert span.attributes["tool.parameters"] == '{"type": "object"}'  # a schema: kept


def test_current_names_win_over_derived_ones() -> None:
    span = record({
        sc.GEN_AI_OPERATION_NAME: "chat",
        "openinference.span.kind": "TOOL",
        sc.GEN_AI_INPUT_MESSAGES: '[{"role": "user", "content": "kept"}]',
        "gen_ai.prompt.0.content": "dropped",
        sc.GEN_AI_PROVIDER_NAME: "current",
        "gen_ai.system": "old",
    })
    assert span.operation == "chat"
    assert span.provider == "current"
    assert json.loads(span.attributes[sc.GEN_AI_INPUT_MESSAGES])[0]["content"] == "kept"


def test_our_own_attributes_pass_through_unchanged() -> None:
    ours = {sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_NAME: "x",
            sc.DW_TURN: 2, "driftwatch.run.id": "r"}
    assert normalize_attributes(ours) == ours


def test_non_string_typed_columns_are_left_empty() -> None:
    span = record({sc.GEN_AI_OPERATION_NAME: 5, sc.GEN_AI_REQUEST_MODEL: ["a"],
                   sc.DW_TURN: float("inf")})
    assert (span.operation, span.model, span.turn) == (None, None, None)
