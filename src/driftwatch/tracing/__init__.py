"""OpenTelemetry wiring: a TracerProvider whose finished spans become SpanRecords for
the store and the monitors, a standard exporter into the store, optional OTLP export,
and deterministic ids for tests."""

from driftwatch.tracing.convert import span_to_record
from driftwatch.tracing.exporter import DuckDBSpanExporter
from driftwatch.tracing.ids import SequentialIdGenerator
from driftwatch.tracing.processor import (
    NullConsumer,
    RecordConsumer,
    RecordSpanProcessor,
    StoreWriter,
)
from driftwatch.tracing.setup import setup_tracing

__all__ = [
    "DuckDBSpanExporter",
    "NullConsumer",
    "RecordConsumer",
    "RecordSpanProcessor",
    "SequentialIdGenerator",
    "StoreWriter",
    "setup_tracing",
    "span_to_record",
]
