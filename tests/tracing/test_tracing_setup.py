"""setup_tracing builds a private provider; OTLP export follows the standard variables."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from driftwatch.testing import RecordingConsumer
from driftwatch.tracing import RecordSpanProcessor, SequentialIdGenerator, setup_tracing


def _processors(provider: TracerProvider) -> list[SpanProcessor]:
    return list(provider._active_span_processor._span_processors)  # type: ignore[attr-defined]


def _otlp_exporter_names(provider: TracerProvider) -> list[str]:
    return [
        type(processor.span_exporter).__name__  # type: ignore[attr-defined]
        for processor in _processors(provider)
        if isinstance(processor, BatchSpanProcessor)
    ]


def test_setup_tracing_returns_a_new_provider_and_leaves_the_global_alone() -> None:
    before = trace.get_tracer_provider()
    provider = setup_tracing([RecordingConsumer()])
    assert trace.get_tracer_provider() is before
    assert provider is not before
    assert [type(p) for p in _processors(provider)] == [RecordSpanProcessor]
    assert provider.resource.attributes["service.name"] == "driftwatch"
    provider.shutdown()


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
)
def test_otlp_export_is_added_when_an_endpoint_variable_is_set(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://127.0.0.1:9/v1/traces")
    provider = setup_tracing([RecordingConsumer()])
    assert _otlp_exporter_names(provider) == ["OTLPSpanExporter"]
    provider.shutdown()  # nothing was exported, so nothing is sent


def test_otlp_export_is_off_without_endpoint_variables() -> None:
    provider = setup_tracing([RecordingConsumer()])
    assert _otlp_exporter_names(provider) == []
    provider.shutdown()


def test_explicit_otlp_flag_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    off = setup_tracing([RecordingConsumer()], otlp=False)
    assert _otlp_exporter_names(off) == []
    off.shutdown()
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    on = setup_tracing([RecordingConsumer()], otlp=True)
    assert _otlp_exporter_names(on) == ["OTLPSpanExporter"]
    on.shutdown()


def test_sequential_ids_increment_from_one() -> None:
    ids = SequentialIdGenerator()
    assert [ids.generate_trace_id(), ids.generate_trace_id()] == [1, 2]
    assert [ids.generate_span_id(), ids.generate_span_id()] == [1, 2]
    assert ids.is_trace_id_random() is False
