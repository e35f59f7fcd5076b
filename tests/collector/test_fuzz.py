"""Fuzzed and malformed bodies never crash the collector and never store garbage."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from collector_helpers import call, json_body, make_collector, shell_span
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftwatch.collector import Collector

ANSWERS = {200, 400, 413, 415}
PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    collector = make_collector(tmp_path_factory.mktemp("fuzz"))
    yield collector
    collector.close()


def assert_store_clean(collector: Collector) -> None:
    rows = collector.store.query("select trace_id, span_id, name, run_id from spans").rows
    for trace, span, name, run_id in rows:
        assert re.fullmatch(r"[0-9a-f]{32}", trace)
        assert re.fullmatch(r"[0-9a-f]{16}", span)
        assert isinstance(name, str)
        assert run_id


def valid_protobuf() -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for index in range(1, 6):
        span = spans.add(trace_id=bytes.fromhex("ef" * 16), span_id=index.to_bytes(8, "big"),
                         name=f"span {index}", start_time_unix_nano=100,
                         end_time_unix_nano=200)
        attribute = span.attributes.add(key="gen_ai.tool.call.arguments")
        attribute.value.string_value = json.dumps({"command": "x" * index})
    return request.SerializeToString()


@FUZZ
@given(body=st.binary(max_size=2048), content=st.sampled_from([PROTOBUF, JSON]),
       gzipped=st.booleans())
def test_random_bytes(fuzz_collector: Collector, body: bytes, content: dict[str, str],
                      gzipped: bool) -> None:
    headers = {**content, "content-encoding": "gzip"} if gzipped else content
    response = call(fuzz_collector.app, "POST", "/v1/traces", body, headers)
    assert response.status in ANSWERS
    assert_store_clean(fuzz_collector)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(valid_protobuf()) - 1),
       flip=st.integers(min_value=0, max_value=255))
def test_truncated_or_corrupted_protobuf(fuzz_collector: Collector, cut: int, flip: int) -> None:
    original = valid_protobuf()
    for body in (original[:cut], original[:cut] + bytes([flip]) + original[cut + 1:]):
        response = call(fuzz_collector.app, "POST", "/v1/traces", body, PROTOBUF)
        assert response.status in ANSWERS
    assert_store_clean(fuzz_collector)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
otlp_keys = st.sampled_from(["traceId", "spanId", "name", "startTimeUnixNano",
                             "endTimeUnixNano", "attributes", "kind", "status", "events",
                             "parentSpanId"])


@FUZZ
@given(top=json_values)
def test_json_of_any_shape(fuzz_collector: Collector, top: Any) -> None:
    response = call(fuzz_collector.app, "POST", "/v1/traces", json.dumps(top).encode(), JSON)
    assert response.status in ANSWERS
    assert_store_clean(fuzz_collector)


@FUZZ
@given(key=otlp_keys, value=json_values, n=st.integers(min_value=1, max_value=10**6))
def test_otlp_json_with_one_field_replaced(fuzz_collector: Collector, key: str, value: Any,
                                           n: int) -> None:
    span = shell_span(n, "ls", trace="9a" * 16)
    span[key] = value
    before = fuzz_collector.store.query("select count(*) from spans").scalar()
    response = call(fuzz_collector.app, "POST", "/v1/traces", json_body(span), JSON)
    assert response.status == 200  # a bad span is rejected, the request is still answered
    after = fuzz_collector.store.query("select count(*) from spans").scalar()
    rejected = int(response.json().get("partialSuccess", {}).get("rejectedSpans", 0))
    assert rejected in (0, 1)
    assert (after - before) + rejected <= 1  # stored (or a retry of a stored span) or rejected
    assert_store_clean(fuzz_collector)


def test_gzip_bomb_is_refused_without_inflating_it(tmp_path: Path) -> None:
    collector = make_collector(tmp_path)
    try:
        bomb = gzip.compress(b"{" * (collector.app.limits.max_body_bytes * 20))
        response = call(collector.app, "POST", "/v1/traces", bomb,
                        {**JSON, "content-encoding": "gzip"})
        assert response.status == 413
    finally:
        collector.close()


def test_deeply_nested_json_is_a_400(tmp_path: Path) -> None:
    collector = make_collector(tmp_path)
    try:
        body = b"[" * 5000 + b"]" * 5000
        response = call(collector.app, "POST", "/v1/traces", body, JSON)
        assert response.status == 400
    finally:
        collector.close()
