"""The standard-pipeline exporter writes each exported batch to the store."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from driftwatch.store import Store
from driftwatch.tracing import DuckDBSpanExporter, SequentialIdGenerator


def test_batch_span_processor_exports_into_the_store(store: Store) -> None:
    exporter = DuckDBSpanExporter(store)
    provider = TracerProvider(id_generator=SequentialIdGenerator())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("invoke_agent demo"):
        for turn in range(3):
            with tracer.start_as_current_span(
                "driftwatch.turn", attributes={"driftwatch.turn": turn}
            ):
                pass
    assert provider.force_flush()
    provider.shutdown()
    assert exporter.exported == 4
    assert store.query("SELECT count(*) FROM spans").scalar() == 4
    assert not store.closed  # the exporter does not own the store


def test_export_reports_failure_instead_of_raising() -> None:
    store = Store(":memory:")
    exporter = DuckDBSpanExporter(store, close_store=True)
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("x")
    span.end()
    store.close()
    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    exporter.shutdown()
    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
