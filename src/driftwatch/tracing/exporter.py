"""A standard OpenTelemetry exporter into the store, for pipelines built the usual way
(``BatchSpanProcessor(DuckDBSpanExporter(store))``)."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from driftwatch.core.logging import get_logger
from driftwatch.store import Store
from driftwatch.store.span_batch import SpanBatch
from driftwatch.tracing.convert import span_to_record

log = get_logger(__name__)


class DuckDBSpanExporter(SpanExporter):
    """Writes each exported batch as one Arrow insert (idempotent on trace and span id).

    ``export`` is called by the SDK's processor thread; it returns ``FAILURE`` instead
    of raising. The store is closed by :meth:`shutdown` only when ``close_store``.
    """

    def __init__(self, store: Store, *, close_store: bool = False) -> None:
        self._store = store
        self._close_store = close_store
        self._shutdown = False
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        try:
            self._store.write_span_batch(SpanBatch.from_records(
                [span_to_record(span) for span in spans]))
        except Exception as error:
            log.error("span export failed", batch_size=len(spans), error=str(error))
            return SpanExportResult.FAILURE
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        if self._close_store:
            self._store.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True  # every export is written before it returns
