"""The collector's decoder, protobuf straight to Arrow, against the record decoder: for
any request, the same table (what the collector stores and sends to its monitors) and
the same rejections."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from driftwatch.core import semconv as sc
from driftwatch.store.arrow import exact_span_table
from driftwatch.tracing.otlp import (
    OtlpDecoded,
    OtlpDecodeError,
    records_from_otlp_protobuf,
    table_from_otlp_protobuf,
)

KEYS = [sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL,
        sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_TOOL_NAME, sc.DW_TURN, sc.DW_RUN_ID,
        sc.GEN_AI_CONVERSATION_ID, sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_TOOL_CALL_ARGUMENTS,
        "gen_ai.system", "gen_ai.usage.prompt_tokens", "llm.usage.completion_tokens",
        "gen_ai.prompt.0.role", "gen_ai.prompt.0.content", "gen_ai.completion.0.content",
        "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
        "session.id", "service.name", "other"]

scalars = st.one_of(
    st.text(max_size=12).map(lambda v: ("string_value", v)),
    st.integers(min_value=-10, max_value=10**6).map(lambda v: ("int_value", v)),
    st.sampled_from([2**31, 2**63 - 1, -(2**63)]).map(lambda v: ("int_value", v)),
    st.booleans().map(lambda v: ("bool_value", v)),
    st.floats().map(lambda v: ("double_value", v)),
    st.binary(max_size=6).map(lambda v: ("bytes_value", v)),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3).map(lambda v: ("array_value", v))
    | st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=3).map(
        lambda v: ("kvlist_value", v)),
    max_leaves=6,
)
attributes = st.lists(st.tuples(st.sampled_from(KEYS), values | st.none()), max_size=8)


def set_value(target: AnyValue, value: tuple[str, Any]) -> None:
    kind, payload = value
    if kind == "array_value":
        for item in payload:
            set_value(target.array_value.values.add(), item)
        target.array_value.SetInParent()
    elif kind == "kvlist_value":
        for key, item in payload:
            set_value(target.kvlist_value.values.add(key=key).value, item)
        target.kvlist_value.SetInParent()
    else:
        setattr(target, kind, payload)


def add_attributes(container: Any, pairs: list[tuple[str, Any]]) -> None:
    for key, value in pairs:
        attribute = container.add(key=key)
        if value is not None:  # None: an attribute with an empty AnyValue
            set_value(attribute.value, value)


def span_strategy(*, good_ids: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Spans with any content; with ``good_ids``, ids, times, kind and status that pass
    (so rows are compared), else with every kind of bad one too."""
    if good_ids:
        ids = {"trace_id": st.sampled_from([b"\x01" * 16, b"\x02" * 16]),
               "span_id": st.binary(min_size=8, max_size=8).filter(any),
               "parent": st.sampled_from([b"", b"\x04" * 8]),
               "start": st.integers(min_value=1, max_value=2**62),
               "duration": st.integers(min_value=0, max_value=10**9),
               "kind": st.integers(min_value=0, max_value=5),
               "code": st.integers(min_value=0, max_value=2)}
    else:
        ids = {"trace_id": st.sampled_from([b"\x01" * 16, b"\x00" * 16, b"\x03" * 15]),
               "span_id": st.binary(max_size=9),
               "parent": st.sampled_from([b"", b"\x04" * 8, b"\x05" * 3]),
               "start": st.integers(min_value=0, max_value=2**63),
               "duration": st.integers(min_value=-5, max_value=10**9),
               "kind": st.integers(min_value=0, max_value=7),
               "code": st.integers(min_value=0, max_value=3)}
    return st.fixed_dictionaries({
        **ids,
        "message": st.text(max_size=5),
        "name": st.text(max_size=8),
        "attributes": attributes,
        "events": st.lists(st.tuples(st.text(max_size=4), attributes), max_size=2),
    })


def requests(*, good_ids: bool) -> st.SearchStrategy[Any]:
    return st.lists(st.tuples(attributes, st.lists(span_strategy(good_ids=good_ids),
                                                   max_size=6)), max_size=3)


def encode(resources: list[tuple[list[Any], list[dict[str, Any]]]]) -> bytes:
    request = ExportTraceServiceRequest()
    for resource, items in resources:
        resource_spans = request.resource_spans.add()
        add_attributes(resource_spans.resource.attributes, resource)
        scope = resource_spans.scope_spans.add()
        for item in items:
            span = scope.spans.add(
                trace_id=item["trace_id"], span_id=item["span_id"],
                parent_span_id=item["parent"], name=item["name"],
                start_time_unix_nano=item["start"],
                end_time_unix_nano=max(0, min(2**64 - 1, item["start"] + item["duration"])),
            )
            span.kind = item["kind"]  # type: ignore[assignment]
            span.status.code = item["code"]  # type: ignore[assignment]
            span.status.message = item["message"]
            add_attributes(span.attributes, item["attributes"])
            for name, event_attributes in item["events"]:
                event = span.events.add(name=name, time_unix_nano=item["start"])
                add_attributes(event.attributes, event_attributes)
    return request.SerializeToString()


def assert_same(body: bytes) -> OtlpDecoded:
    try:
        by_records = records_from_otlp_protobuf(body)
    except OtlpDecodeError as error:
        expected = str(error)
    else:
        by_table = table_from_otlp_protobuf(body)
        assert by_table.records == []
        assert by_table.table is not None
        assert by_table.table.equals(exact_span_table(by_records.records))
        assert (by_table.rejected, by_table.errors) == (by_records.rejected,
                                                        by_records.errors)
        return by_table
    with pytest.raises(OtlpDecodeError) as raised:
        table_from_otlp_protobuf(body)
    assert str(raised.value) == expected
    return OtlpDecoded()


@settings(max_examples=300, deadline=None)
@given(resources=requests(good_ids=False))
def test_any_request_gives_the_table_of_its_records(
    resources: list[tuple[list[Any], list[dict[str, Any]]]],
) -> None:
    assert_same(encode(resources))


@settings(max_examples=200, deadline=None)
@given(resources=requests(good_ids=True))
def test_requests_of_good_spans_give_the_table_of_their_records(
    resources: list[tuple[list[Any], list[dict[str, Any]]]],
) -> None:
    decoded = assert_same(encode(resources))
    # only a turn or token count out of range rejects one of these spans
    assert all(error.endswith("is out of range") for error in decoded.errors)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=512))
def test_any_bytes_give_the_same_table_or_the_same_error(body: bytes) -> None:
    assert_same(body)


def test_a_good_request_has_rows_and_a_bad_span_is_rejected_by_both() -> None:
    good = {"trace_id": b"\x01" * 16, "span_id": b"\x02" * 8, "parent": b"", "start": 10,
            "duration": 5, "kind": 1, "code": 0, "message": "", "name": "chat",
            "attributes": [(sc.GEN_AI_OPERATION_NAME, ("string_value", "chat")),
                           (sc.DW_TURN, ("int_value", 3))], "events": []}
    body = encode([([("service.name", ("string_value", "a"))],
                    [good, {**good, "span_id": b"\x02" * 3}])])
    decoded = table_from_otlp_protobuf(body)
    assert decoded.table is not None
    assert decoded.table.column("turn").to_pylist() == [3]
    assert decoded.table.column("start_time_ns").to_pylist() == [10]
    assert decoded.rejected == 1
    assert_same(body)
