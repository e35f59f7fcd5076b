"""The three OTLP signals as the collector takes them, whatever the transport.

One :class:`Signal` per export service (traces, logs, metrics): how a request body
decodes (protobuf or OTLP/JSON), how it is handed to the writer, and the export
response (with ``partial_success`` when items were rejected). The HTTP routes
(:mod:`driftwatch.collector.app`) and the gRPC services
(:mod:`driftwatch.collector.grpc`) both go through :class:`Signals`, so both keep one
durability contract: a request is answered OK only once what it carried is committed
to the store (metrics are counted, not stored: answered once counted).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from driftwatch.collector.body import parse_json
from driftwatch.collector.ingest import IngestQueue
from driftwatch.collector.metrics import CollectorMetrics
from driftwatch.tracing.otlp import (
    OtlpDecoded,
    table_from_otlp_json,
    table_from_otlp_protobuf,
)
from driftwatch.tracing.otlp_signals import (
    logs_from_json,
    logs_from_protobuf,
    metrics_from_json,
    metrics_from_protobuf,
)

__all__ = ["SIGNALS", "Export", "Signal", "Signals"]


@dataclass(slots=True)
class Export:
    """One decoded request: ``table`` to store (None for metrics), ``items`` it holds
    (spans, log records or data points), and the rejected ones."""

    table: pa.Table | None
    items: int
    rejected: int = 0
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class Signal:
    """``name`` (traces, logs, metrics), its OTLP/HTTP path, its gRPC service and the
    protobuf module and message names of its export response."""

    name: str
    path: str
    service: str
    response_module: str
    response: str
    partial: str
    rejected_field: str
    rejected_json: str


SIGNALS: Final = {
    "traces": Signal("traces", "/v1/traces", "opentelemetry.proto.collector.trace.v1.TraceService",
                     "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
                     "ExportTraceServiceResponse", "ExportTracePartialSuccess",
                     "rejected_spans", "rejectedSpans"),
    "logs": Signal("logs", "/v1/logs", "opentelemetry.proto.collector.logs.v1.LogsService",
                   "opentelemetry.proto.collector.logs.v1.logs_service_pb2",
                   "ExportLogsServiceResponse", "ExportLogsPartialSuccess",
                   "rejected_log_records", "rejectedLogRecords"),
    "metrics": Signal("metrics", "/v1/metrics",
                      "opentelemetry.proto.collector.metrics.v1.MetricsService",
                      "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2",
                      "ExportMetricsServiceResponse", "ExportMetricsPartialSuccess",
                      "rejected_data_points", "rejectedDataPoints"),
}


def _from_decoded(decoded: OtlpDecoded) -> Export:
    table = decoded.table
    assert table is not None  # the table decoders always give one
    return Export(table, table.num_rows, decoded.rejected, decoded.error_message)


class Signals:
    """Decoding, submission and the responses of the three signals for one collector.
    ``write_logs(table)`` stores log records (on the writer thread)."""

    def __init__(self, ingest: IngestQueue, metrics: CollectorMetrics,
                 write_logs: Callable[[pa.Table], int]) -> None:
        self._ingest = ingest
        self._metrics = metrics
        self._write_logs = write_logs

    @staticmethod
    def decode(signal: Signal, body: bytes, protobuf: bool) -> Export:
        """Raises :class:`~driftwatch.tracing.otlp.OtlpDecodeError` (a 400 / INVALID_ARGUMENT)
        and ``RecursionError`` for JSON nested too deeply."""
        if signal.name == "traces":
            return _from_decoded(table_from_otlp_protobuf(body) if protobuf
                                 else table_from_otlp_json(_parse(body)))
        if signal.name == "logs":
            return _from_decoded(logs_from_protobuf(body) if protobuf
                                 else logs_from_json(_parse(body)))
        counted = metrics_from_protobuf(body) if protobuf else metrics_from_json(_parse(body))
        return Export(None, counted.points)

    def submit(self, signal: Signal, export: Export) -> Future[int] | None:
        """Hand a request's table to the writer; the future resolves once committed.
        None when the queue is full (answer "retry later")."""
        if export.table is None:
            done: Future[int] = Future()
            done.set_result(export.items)
            return done
        if signal.name == "traces":
            return self._ingest.offer(export.table)
        return self._ingest.offer_write(export.table, self._write_logs)

    def acknowledged(self, signal: Signal, export: Export) -> None:
        """Count what was acknowledged."""
        if signal.name == "traces":
            self._metrics.spans_received.inc(export.items)
            if export.rejected:
                self._metrics.spans_rejected.inc(export.rejected)
        elif signal.name == "logs":
            self._metrics.log_records_received.inc(export.items)
            if export.rejected:
                self._metrics.log_records_rejected.inc(export.rejected)
        else:
            self._metrics.metric_points_received.inc(export.items)

    @staticmethod
    def response(signal: Signal, export: Export, protobuf: bool) -> bytes:
        """The export response body, in the request's encoding."""
        if protobuf:
            # start-up: protobuf response types load on the first protobuf request
            import importlib

            module: Any = importlib.import_module(signal.response_module)
            response = getattr(module, signal.response)()
            if export.rejected:
                partial = getattr(module, signal.partial)(error_message=export.error_message)
                setattr(partial, signal.rejected_field, export.rejected)
                response.partial_success.CopyFrom(partial)
            return bytes(response.SerializeToString())
        if not export.rejected:
            return b"{}"
        payload = {"partialSuccess": {signal.rejected_json: str(export.rejected),
                                      "errorMessage": export.error_message}}
        return json.dumps(payload, ensure_ascii=False).encode()


def _parse(body: bytes) -> Any:
    return parse_json(body)
