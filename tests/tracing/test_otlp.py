"""OTLP protobuf and JSON requests → SpanRecords: strict per span, one path for both."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from driftwatch.tracing import span_to_record
from driftwatch.tracing.otlp import (
    OtlpDecodeError,
    records_from_otlp_json,
    records_from_otlp_protobuf,
)

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
PARENT = "eee19b7ec3c1b173"


def sdk_spans() -> list[Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("invoke_agent ops", kind=SpanKind.INTERNAL) as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.conversation.id", "conv-7")
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.request.model", "gpt-4o")
            chat.set_attribute("gen_ai.usage.input_tokens", 120)
            chat.set_attribute("gen_ai.response.finish_reasons", ["tool_calls"])
            chat.set_attribute("temperature", 0.25)
            chat.set_attribute("gen_ai.conversation.id", "conv-7")
            chat.add_event("gen_ai.choice", {"index": 0})
            chat.set_status(Status(StatusCode.ERROR, "rate limited"))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def test_protobuf_from_the_sdk_exporter_matches_in_process_conversion() -> None:
    spans = sdk_spans()
    data = encode_spans(spans).SerializeToString()
    decoded = records_from_otlp_protobuf(data)
    assert decoded.rejected == 0
    by_id = {record.span_id: record for record in decoded.records}
    for span in spans:
        expected = span_to_record(span)
        got = by_id[expected.span_id]
        assert got == expected


def test_protobuf_keeps_kind_status_events_and_resource() -> None:
    decoded = records_from_otlp_protobuf(encode_spans(sdk_spans()).SerializeToString())
    chat = next(r for r in decoded.records if r.operation == "chat")
    assert chat.kind == "CLIENT"
    assert (chat.status_code, chat.status_message) == ("ERROR", "rate limited")
    assert chat.events[0].name == "gen_ai.choice"
    assert chat.resource["service.name"] == "agent"
    assert chat.attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert chat.run_id == "conv-7"
    assert chat.input_tokens == 120


def test_garbage_bytes_are_not_a_request() -> None:
    with pytest.raises(OtlpDecodeError, match="not an OTLP"):
        records_from_otlp_protobuf(b"\xff\xff\xff\xff garbage")


def test_protobuf_span_with_short_ids_is_rejected_and_siblings_kept() -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    good = spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN), name="ok",
                     start_time_unix_nano=10, end_time_unix_nano=20)
    assert good.name == "ok"
    spans.add(trace_id=b"\x01\x02", span_id=bytes.fromhex(SPAN), name="bad",
              start_time_unix_nano=10, end_time_unix_nano=20)
    spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes(8), name="zero",
              start_time_unix_nano=10, end_time_unix_nano=20)
    decoded = records_from_otlp_protobuf(request.SerializeToString())
    assert [r.name for r in decoded.records] == ["ok"]
    assert decoded.rejected == 2
    assert "spans[1]: trace_id must be 16 bytes, got 2" in decoded.error_message
    assert "spans[2]: span_id is all zeros" in decoded.error_message


def json_span(**overrides: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": TRACE,
        "spanId": SPAN,
        "parentSpanId": PARENT,
        "name": "execute_tool write_file",
        "kind": 1,
        "startTimeUnixNano": "1767225600000000000",
        "endTimeUnixNano": "1767225600500000000",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
            {"key": "gen_ai.tool.name", "value": {"stringValue": "write_file"}},
            {"key": "driftwatch.turn", "value": {"intValue": "4"}},
            {"key": "score", "value": {"doubleValue": 0.5}},
            {"key": "ok", "value": {"boolValue": True}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"},
                                                                {"intValue": 2}]}}},
            {"key": "meta", "value": {"kvlistValue": {"values": [
                {"key": "k", "value": {"stringValue": "v"}}]}}},
            {"key": "blob", "value": {"bytesValue": "AAEC"}},
        ],
        "events": [{"timeUnixNano": "1767225600100000000", "name": "retry",
                    "attributes": [{"key": "n", "value": {"intValue": 1}}]}],
        "status": {"code": "STATUS_CODE_OK"},
    }
    span.update(overrides)
    return span


def json_request(*spans: dict[str, Any], resource: list[Any] | None = None) -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": resource if resource is not None else
                     [{"key": "service.name", "value": {"stringValue": "agent"}}]},
        "scopeSpans": [{"scope": {"name": "x"}, "spans": list(spans)}],
    }]}


def test_json_decodes_every_value_type_and_string_int64s() -> None:
    decoded = records_from_otlp_json(json_request(json_span()))
    assert decoded.rejected == 0
    record = decoded.records[0]
    assert (record.trace_id, record.parent_span_id) == (TRACE, PARENT)
    assert record.start_time_ns == 1767225600000000000
    assert (record.turn, record.tool_name) == (4, "write_file")
    assert (record.status_code, record.kind) == ("OK", "INTERNAL")
    assert record.attributes["tags"] == ["a", 2]
    assert record.attributes["meta"] == {"k": "v"}
    assert record.attributes["blob"] == "AAEC"
    assert record.events[0].attributes == {"n": 1}
    assert record.resource == {"service.name": "agent"}
    assert record.run_id == TRACE  # no run or conversation id: the trace


def test_json_accepts_snake_case_fields_and_enum_names() -> None:
    span = {"trace_id": TRACE, "span_id": SPAN, "name": "s", "kind": "SPAN_KIND_CLIENT",
            "start_time_unix_nano": 5, "end_time_unix_nano": 6,
            "attributes": [{"key": "a", "value": {"string_value": "x"}}]}
    decoded = records_from_otlp_json({"resource_spans": [{"scope_spans": [{"spans": [span]}]}]})
    assert decoded.records[0].kind == "CLIENT"
    assert decoded.records[0].attributes == {"a": "x"}


def test_json_request_equals_protobuf_request() -> None:
    spans = sdk_spans()
    from google.protobuf.json_format import MessageToDict

    message = encode_spans(spans)
    as_json = MessageToDict(message)
    # protobuf's JSON mapping writes bytes as base64; OTLP/JSON uses hex ids
    for resource_spans in as_json["resourceSpans"]:
        for scope in resource_spans["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        import base64

                        span[key] = base64.b64decode(span[key]).hex()
    from_json = records_from_otlp_json(json.loads(json.dumps(as_json))).records
    from_pb = records_from_otlp_protobuf(message.SerializeToString()).records
    assert sorted(from_json, key=lambda r: r.span_id) == sorted(from_pb, key=lambda r: r.span_id)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"traceId": "xyz"}, "traceId must be 32 hex digits"),
        ({"spanId": 12}, "spanId must be a hex string"),
        ({"startTimeUnixNano": None}, "startTime is missing"),
        ({"endTimeUnixNano": "5"}, "end time is before start time"),
        ({"startTimeUnixNano": "-5"}, "out of the uint64 range"),
        ({"name": 5}, "name must be a string"),
        ({"kind": 9}, "kind: unknown value 9"),
        ({"status": {"code": "STATUS_CODE_MAYBE"}}, "unknown value"),
        ({"attributes": [{"key": "a", "value": {"intValue": "1.5e3x"}}]}, "must be an integer"),
        ({"attributes": [{"key": "a", "value": {"stringValue": "a", "intValue": 1}}]},
         "more than one field"),
        ({"attributes": {"a": 1}}, "attributes must be a list"),
        ({"attributes": [{"key": "driftwatch.turn", "value": {"intValue": str(2**40)}}]},
         "driftwatch.turn 1099511627776 is out of range"),
        ({"attributes": [{"key": "a", "value": {"stringValue": "\ud800"}}]},
         "not valid UTF-8"),
        ({"events": [{"name": "e"}], "attributes": [{"key": "a", "value": {"bytesValue": "!!"}}]},
         "not base64"),
    ],
)
def test_json_malformed_span_is_rejected_with_its_reason(override: dict[str, Any],
                                                         reason: str) -> None:
    good = json_span(spanId="eee19b7ec3c1b175")
    decoded = records_from_otlp_json(json_request(json_span(**override), good))
    assert [r.span_id for r in decoded.records] == ["eee19b7ec3c1b175"]
    assert decoded.rejected == 1
    assert "resourceSpans[0].scopeSpans[0].spans[0]" in decoded.error_message
    assert reason in decoded.error_message


def test_malformed_resource_rejects_its_spans() -> None:
    decoded = records_from_otlp_json(json_request(json_span(), resource=[{"key": 1}]))
    assert decoded.records == []
    assert decoded.rejected == 1
    assert "resource" in decoded.error_message


@pytest.mark.parametrize("body", [[], "x", {"resourceSpans": {}},
                                  {"resourceSpans": [{"scopeSpans": 3}]}])
def test_json_that_is_not_a_trace_request_raises(body: Any) -> None:
    with pytest.raises(OtlpDecodeError):
        records_from_otlp_json(body)


def test_only_the_first_errors_are_listed() -> None:
    bad = [json_span(spanId=f"{n:016x}", name=n) for n in range(1, 30)]
    decoded = records_from_otlp_json(json_request(*bad))
    assert decoded.rejected == 29
    assert len(decoded.errors) == 10
    assert decoded.error_message.endswith("and 19 more")


def attrs(*pairs: tuple[str, Any]) -> list[dict[str, Any]]:
    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        return {"stringValue": v}

    return [{"key": k, "value": value(v)} for k, v in pairs]


@pytest.mark.parametrize(
    ("pairs", "run_id"),
    [
        ([("driftwatch.run.id", "run-1"), ("gen_ai.conversation.id", "c")], "run-1"),
        ([("gen_ai.conversation.id", "conv-9")], "conv-9"),
        ([("session.id", "sess-3")], "sess-3"),  # OpenInference's session
        ([], TRACE),
    ],
)
def test_run_id_is_run_then_conversation_then_trace(pairs: list[tuple[str, Any]],
                                                     run_id: str) -> None:
    decoded = records_from_otlp_json(json_request(json_span(attributes=attrs(*pairs))))
    assert decoded.records[0].run_id == run_id
