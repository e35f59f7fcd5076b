"""OTLP logs and metrics over HTTP: the real SDK exporters against the collector; GenAI
events stored and joined to their span's messages in either arrival order; the
monitors see the content when the events come first."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from collector_helpers import call, make_collector
from live_server import served
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from driftwatch.alert import AlertConfig
from driftwatch.collector import Collector, CollectorConfig, CollectorLimits
from driftwatch.monitor import RulePackMonitor

pytestmark = pytest.mark.network_loopback

PACK = """\
pack: said-rm
rules:
  - id: said-rm
    severity: high
    when: >-
      operation = 'chat'
      AND regexp_matches(coalesce(CAST(output_messages AS VARCHAR), ''), 'rm -rf')
    message: "the model proposed rm -rf"
"""


def _collector(tmp_path: Path) -> Collector:
    pack = tmp_path / "said-rm.yaml"
    pack.write_text(PACK)
    config = CollectorConfig(db=tmp_path / "c.duckdb", alerts=AlertConfig(), root_grace_s=0.0,
                             limits=CollectorLimits(max_body_bytes=1024 * 1024))
    return Collector(config, monitors=[RulePackMonitor([pack])])


def _providers(url: str) -> tuple[TracerProvider, LoggerProvider]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs")))
    return tracer_provider, logger_provider


def _chat_with_events(tracer_provider: TracerProvider, logger_provider: LoggerProvider) -> str:
    """One chat span whose content is only in legacy GenAI events; returns its span id."""
    logger = logger_provider.get_logger("agent")
    with tracer_provider.get_tracer("agent").start_as_current_span(
            "chat fake", attributes={"gen_ai.operation.name": "chat"}) as span:
        logger.emit(LogRecord(event_name="gen_ai.system.message",
                              body={"content": "never delete files"}))
        logger.emit(LogRecord(event_name="gen_ai.user.message", body={"content": "clean up"}))
        logger.emit(LogRecord(event_name="gen_ai.choice", body={
            "index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": "I will run rm -rf /data",
                        "tool_calls": [{"id": "call_1", "type": "function", "function": {
                            "name": "shell", "arguments": '{"command": "rm -rf /data"}'}}]}}))
        return format(span.get_span_context().span_id, "016x")


def _attributes(collector: Collector, span_id: str) -> dict[str, Any]:
    text = collector.store.query("select attributes from spans where span_id = ?",
                                 [span_id]).scalar()
    return dict(json.loads(text))


def _wait(predicate: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


EXPECTED_INPUT = [
    {"role": "system", "parts": [{"type": "text", "content": "never delete files"}]},
    {"role": "user", "parts": [{"type": "text", "content": "clean up"}]},
]
EXPECTED_OUTPUT = [{
    "role": "assistant", "finish_reason": "tool_calls",
    "parts": [{"type": "text", "content": "I will run rm -rf /data"},
              {"type": "tool_call", "id": "call_1", "name": "shell",
               "arguments": {"command": "rm -rf /data"}}],
}]


@pytest.mark.parametrize("logs_first", [True, False], ids=["logs-first", "span-first"])
def test_genai_events_become_the_span_messages_in_either_order(tmp_path: Path,
                                                               logs_first: bool) -> None:
    collector = _collector(tmp_path)
    try:
        with served(collector) as url:
            tracer_provider, logger_provider = _providers(url)
            span_id = _chat_with_events(tracer_provider, logger_provider)
            first, second = ((logger_provider, tracer_provider) if logs_first
                             else (tracer_provider, logger_provider))
            assert first.force_flush()
            first.shutdown()
            assert second.force_flush()
            second.shutdown()
        attributes = _attributes(collector, span_id)
        assert json.loads(attributes["gen_ai.input.messages"]) == EXPECTED_INPUT
        assert json.loads(attributes["gen_ai.output.messages"]) == EXPECTED_OUTPUT
        assert attributes["driftwatch.content.from_logs"] == ["gen_ai.input.messages",
                                                              "gen_ai.output.messages"]
        events = collector.store.query(
            "select event_name from logs where span_id = ? order by observed_time",
            [span_id]).column("event_name")
        assert events == ["gen_ai.system.message", "gen_ai.user.message", "gen_ai.choice"]
        assert collector.flush()
        findings = collector.store.query(
            "select rule_id from findings where span_id = ?", [span_id]).column("rule_id")
        # the monitors saw the content only when it arrived before the span
        assert findings == (["said-rm"] if logs_first else [])
    finally:
        collector.close()


def test_a_retried_logs_request_is_stored_once_and_the_span_not_changed_twice(
        tmp_path: Path) -> None:
    collector = make_collector(tmp_path)
    try:
        body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
            "timeUnixNano": "1700000000000000000", "eventName": "gen_ai.user.message",
            "traceId": "ab" * 16, "spanId": "cd" * 8,
            "body": {"kvlistValue": {"values": [{"key": "content",
                                                 "value": {"stringValue": "hi"}}]}},
        }]}]}]}).encode()
        for _ in range(2):
            response = call(collector.app, "POST", "/v1/logs", body,
                            {"content-type": "application/json"})
            assert response.status == 200
            assert response.json() == {}
        assert collector.store.query("select count(*) from logs").scalar() == 1
        row = collector.store.query("select body->>'content', trace_id from logs").rows[0]
        assert row == ("hi", "ab" * 16)
    finally:
        collector.close()


def test_a_malformed_log_record_is_rejected_and_its_siblings_kept(collector: Collector) -> None:
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1", "body": {"stringValue": "kept"}},
        {"timeUnixNano": "2", "traceId": "zz", "body": {"stringValue": "bad id"}},
    ]}]}]}).encode()
    response = call(collector.app, "POST", "/v1/logs", body, {"content-type": "application/json"})
    assert response.status == 200
    assert response.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    assert collector.store.query("select body->>'$' as b from logs").column("b") == ["kept"]


def test_a_body_that_is_not_a_logs_request_is_a_400(collector: Collector) -> None:
    response = call(collector.app, "POST", "/v1/logs", b"\xff\x00garbage",
                    {"content-type": "application/x-protobuf"})
    assert response.status == 400


def test_metrics_from_the_sdk_reader_are_accepted_and_counted(collector: Collector) -> None:
    with served(collector) as url:
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{url}/v1/metrics"), export_interval_millis=60_000)
        provider = MeterProvider(metric_readers=[reader])
        meter = provider.get_meter("agent")
        meter.create_counter("gen_ai.client.calls").add(2)
        meter.create_histogram("gen_ai.client.operation.duration").record(0.5)
        provider.shutdown()  # one final export: two metrics, one data point each
        page = call(collector.app, "GET", "/metrics").body.decode()
    counted = [line for line in page.splitlines()
               if line.startswith("driftwatch_metric_points_received_total")]
    assert counted == ["driftwatch_metric_points_received_total 2.0"]
    assert 'driftwatch_http_requests_total{code="200",path="/v1/metrics"}' in page


def test_logs_need_the_token_like_traces(tmp_path: Path) -> None:
    collector = make_collector(tmp_path, token="s3cret")
    try:
        response = call(collector.app, "POST", "/v1/logs", b"{}",
                        {"content-type": "application/json"})
        assert response.status == 401
        response = call(collector.app, "POST", "/v1/metrics", b"{}",
                        {"content-type": "application/json", "authorization": "Bearer s3cret"})
        assert response.status == 200
    finally:
        collector.close()
