"""Building the TracerProvider every driftwatch run uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator

from driftwatch.core.settings import otlp_configured
from driftwatch.tracing.processor import RecordConsumer, RecordSpanProcessor


def setup_tracing(
    consumers: Sequence[RecordConsumer],
    *,
    service_name: str = "driftwatch",
    otlp: bool | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    id_generator: IdGenerator | None = None,
) -> TracerProvider:
    """A new TracerProvider (the global one is left alone) whose spans go to
    ``consumers`` through one :class:`RecordSpanProcessor`.

    OTLP export is added when ``otlp`` is True, or when it is None and
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set:
    a ``BatchSpanProcessor(OTLPSpanExporter())`` over HTTP, configured by the standard
    ``OTEL_EXPORTER_OTLP_*`` variables. Creating it makes no network call.

    ``provider.shutdown()`` flushes and closes the consumers (and the OTLP exporter).
    """
    attributes: dict[str, Any] = {"service.name": service_name}
    attributes.update(resource_attributes or {})
    provider = TracerProvider(resource=Resource.create(attributes), id_generator=id_generator)
    provider.add_span_processor(RecordSpanProcessor(consumers))
    if otlp is None:
        otlp = otlp_configured()
    if otlp:
        # imported lazily: the exporter pulls in requests and protobuf
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
