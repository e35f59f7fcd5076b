"""The OTLP/HTTP surface, driven in-process: status codes, encodings, partial success,
auth, limits, SQL, metrics, and what reaches the store and the monitors."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import pytest
from collector_helpers import (
    TOKEN,
    call,
    gzipped,
    json_body,
    make_collector,
    shell_span,
)
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from driftwatch.collector import Collector, CollectorLimits
from driftwatch.core.errors import StoreError

JSON = {"content-type": "application/json"}
PROTOBUF = {"content-type": "application/x-protobuf"}


def count(collector: Collector, sql: str) -> int:
    value = collector.store.query(sql).scalar()
    assert isinstance(value, int)
    return value


def protobuf_body(n: int) -> bytes:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for index in range(1, n + 1):
        spans.add(trace_id=bytes.fromhex("cd" * 16), span_id=index.to_bytes(8, "big"),
                  name=f"span {index}", start_time_unix_nano=10, end_time_unix_nano=20)
    return request.SerializeToString()


def test_json_request_is_stored_before_the_200(collector: Collector) -> None:
    response = call(collector.app, "POST", "/v1/traces",
                    json_body(shell_span(1, "ls"), shell_span(2, "pwd")), JSON)
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    assert count(collector, "select count(*) from spans") == 2


def test_protobuf_request_gets_a_protobuf_answer(collector: Collector) -> None:
    response = call(collector.app, "POST", "/v1/traces", protobuf_body(3), PROTOBUF)
    assert response.status == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    parsed = ExportTraceServiceResponse.FromString(response.body)
    assert not parsed.HasField("partial_success")
    assert count(collector, "select count(*) from spans") == 3


def test_gzip_body_is_accepted(collector: Collector) -> None:
    response = call(collector.app, "POST", "/v1/traces", gzipped(protobuf_body(2)),
                    {**PROTOBUF, "content-encoding": "gzip"})
    assert response.status == 200
    assert count(collector, "select count(*) from spans") == 2


def test_partial_success_reports_rejected_spans(collector: Collector) -> None:
    bad = shell_span(2, "ls")
    bad["traceId"] = "nothex"
    response = call(collector.app, "POST", "/v1/traces", json_body(shell_span(1, "ls"), bad),
                    JSON)
    assert response.status == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "traceId must be 32 hex digits" in partial["errorMessage"]
    assert count(collector, "select count(*) from spans") == 1


def test_protobuf_partial_success(collector: Collector) -> None:
    request = ExportTraceServiceRequest.FromString(protobuf_body(2))
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = b"\x01"
    response = call(collector.app, "POST", "/v1/traces", request.SerializeToString(), PROTOBUF)
    parsed = ExportTraceServiceResponse.FromString(response.body)
    assert parsed.partial_success.rejected_spans == 1
    assert "trace_id must be 16 bytes" in parsed.partial_success.error_message


def test_retried_request_is_stored_once(collector: Collector) -> None:
    body = json_body(shell_span(1, "ls"), shell_span(2, "ls"))
    for _ in range(3):
        assert call(collector.app, "POST", "/v1/traces", body, JSON).status == 200
    assert count(collector, "select count(*) from spans") == 2


def test_malformed_bodies_are_400_with_a_status_message(collector: Collector) -> None:
    response = call(collector.app, "POST", "/v1/traces", b"\x0a\xff\xff", PROTOBUF)
    assert response.status == 400
    assert "not an OTLP" in Status.FromString(response.body).message
    response = call(collector.app, "POST", "/v1/traces", b"{not json", JSON)
    assert response.status == 400
    assert "not valid JSON" in response.json()["message"]
    response = call(collector.app, "POST", "/v1/traces", b"not gzip",
                    {**JSON, "content-encoding": "gzip"})
    assert response.status == 400
    assert count(collector, "select count(*) from spans") == 0


def test_wrong_content_type_or_encoding_is_415(collector: Collector) -> None:
    assert call(collector.app, "POST", "/v1/traces", b"x", {"content-type": "text/plain"}
                ).status == 415
    assert call(collector.app, "POST", "/v1/traces", b"x", {**JSON, "content-encoding": "br"}
                ).status == 415


def test_body_over_the_limit_is_413_before_and_after_gzip(collector: Collector) -> None:
    limit = collector.app.limits.max_body_bytes
    big = b" " * (limit + 1)
    assert call(collector.app, "POST", "/v1/traces", big, JSON).status == 413
    declared = {**JSON, "content-length": str(limit + 1)}
    assert call(collector.app, "POST", "/v1/traces", b"", declared).status == 413
    bomb = gzip.compress(b"\0" * (limit * 50))
    assert len(bomb) < limit
    response = call(collector.app, "POST", "/v1/traces", bomb,
                    {**JSON, "content-encoding": "gzip"})
    assert response.status == 413


def test_token_is_required_when_configured(tmp_path: Path) -> None:
    collector = make_collector(tmp_path, token=TOKEN)
    try:
        body = json_body(shell_span(1, "ls"))
        assert call(collector.app, "POST", "/v1/traces", body, JSON).status == 401
        wrong = {**JSON, "authorization": "Bearer nope"}
        response = call(collector.app, "POST", "/v1/traces", body, wrong)
        assert response.status == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert call(collector.app, "GET", "/metrics").status == 401
        assert call(collector.app, "POST", "/v1/sql", b'{"sql": "select 1"}', JSON).status == 401
        assert call(collector.app, "GET", "/healthz").status == 200
        right = {**JSON, "authorization": f"Bearer {TOKEN}"}
        assert call(collector.app, "POST", "/v1/traces", body, right).status == 200
        assert count(collector, "select count(*) from spans") == 1
    finally:
        collector.close()


def test_full_queue_answers_503_with_retry_after(collector: Collector,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector.ingest, "offer", lambda records: None)
    response = call(collector.app, "POST", "/v1/traces", json_body(shell_span(1, "ls")), JSON)
    assert response.status == 503
    assert response.headers["retry-after"] == "1"
    assert count(collector, "select count(*) from spans") == 0


def test_failing_store_answers_503_and_stores_nothing(collector: Collector,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(table: object, **options: object) -> object:
        raise StoreError("disk full")

    monkeypatch.setattr(collector.store, "write_new_span_table", refuse)
    response = call(collector.app, "POST", "/v1/traces", json_body(shell_span(1, "ls")), JSON)
    assert response.status == 503
    assert "disk full" in response.json()["message"]


def test_unknown_path_and_method(collector: Collector) -> None:
    assert call(collector.app, "GET", "/v1/profiles").status == 404
    assert call(collector.app, "GET", "/v1/logs").status == 405
    assert call(collector.app, "GET", "/v1/traces").status == 405


def test_violation_reaches_the_findings_and_the_runs_row(tmp_path: Path) -> None:
    collector = make_collector(tmp_path, root_grace_s=0.0)
    try:
        body = json_body(shell_span(1, "ls"), shell_span(2, "rm -rf /srv"),
                         shell_span(3, "done", parent=None))
        assert call(collector.app, "POST", "/v1/traces", body, JSON).status == 200
        assert collector.flush()
        rows = collector.store.query("select rule_id, run_id, turn from findings").rows
        assert rows == [("recursive-delete", "run-a", 2)]
        deadline = time.monotonic() + 10
        status: list[Any] = []
        while time.monotonic() < deadline:  # the sweeper ends the run (its root arrived)
            status = collector.store.query("select status, turns from runs").rows
            if status == [("completed", 3)]:
                break
            time.sleep(0.05)
        assert status == [("completed", 3)]
    finally:
        collector.close()


def test_sql_endpoint_is_read_only(collector: Collector) -> None:
    call(collector.app, "POST", "/v1/traces", json_body(shell_span(1, "ls")), JSON)
    response = call(collector.app, "POST", "/v1/sql",
                    json.dumps({"sql": "select tool_name, turn from spans"}).encode(), JSON)
    assert response.status == 200
    assert response.json() == {"columns": ["tool_name", "turn"], "rows": [["shell", 1]],
                               "truncated": False}
    for bad in ("delete from spans_t", "select * from read_csv('/etc/passwd')",
                "select 1; select 2"):
        response = call(collector.app, "POST", "/v1/sql", json.dumps({"sql": bad}).encode(),
                        JSON)
        assert response.status == 400, bad
    assert call(collector.app, "POST", "/v1/sql", b'{"query": 1}', JSON).status == 400
    assert count(collector, "select count(*) from spans") == 1


def test_metrics_count_spans_and_requests(collector: Collector) -> None:
    bad = shell_span(2, "ls")
    bad["name"] = 3
    call(collector.app, "POST", "/v1/traces", json_body(shell_span(1, "ls"), bad), JSON)
    page = call(collector.app, "GET", "/metrics").body.decode()
    assert "driftwatch_spans_received_total 1.0" in page
    assert "driftwatch_spans_rejected_total 1.0" in page
    assert 'driftwatch_http_requests_total{code="200",path="/v1/traces"} 1.0' in page
    assert "driftwatch_commit_seconds_count 1.0" in page
    assert "driftwatch_ingest_queue_spans 0.0" in page


def test_findings_are_counted_by_rule_and_severity(collector: Collector) -> None:
    call(collector.app, "POST", "/v1/traces", json_body(shell_span(1, "rm -rf x")), JSON)
    assert collector.flush()
    page = call(collector.app, "GET", "/metrics").body.decode()
    assert 'driftwatch_findings_total{rule_id="recursive-delete",severity="high"} 1.0' in page


def test_limits_default_to_sixteen_megabytes() -> None:
    assert CollectorLimits().max_body_bytes == 16 * 1024 * 1024
