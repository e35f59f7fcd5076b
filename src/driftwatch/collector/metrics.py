"""The collector's Prometheus metrics, in a registry of its own (served on ``/metrics``).

Findings by rule and severity are counted by the alert package's ``PrometheusSink`` in
the same registry (``driftwatch_findings_total``, ``driftwatch_alerts_total``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CollectorMetrics"]

# Commit latency buckets (seconds): a group commit takes ~1 ms to a few hundred ms.
_COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class CollectorMetrics:
    """Counters, gauges and the commit histogram; thread-safe (prometheus_client is)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.spans_received = Counter(
            "driftwatch_spans_received", "Spans accepted and stored (acknowledged).",
            registry=self.registry,
        )
        self.spans_rejected = Counter(
            "driftwatch_spans_rejected", "Spans refused as malformed (partial success).",
            registry=self.registry,
        )
        self.log_records_received = Counter(
            "driftwatch_log_records_received", "OTLP log records accepted and stored "
            "(acknowledged).", registry=self.registry,
        )
        self.log_records_rejected = Counter(
            "driftwatch_log_records_rejected", "OTLP log records refused as malformed "
            "(partial success).", registry=self.registry,
        )
        self.metric_points_received = Counter(
            "driftwatch_metric_points_received", "OTLP metric data points accepted (counted, "
            "not stored).", registry=self.registry,
        )
        self.grpc_requests = Counter(
            "driftwatch_grpc_requests", "OTLP/gRPC requests by service and status code.",
            ["service", "code"], registry=self.registry,
        )
        self.requests = Counter(
            "driftwatch_http_requests", "HTTP requests by path and status code.",
            ["path", "code"], registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "driftwatch_commit_seconds", "Time to commit one group of spans to DuckDB.",
            buckets=_COMMIT_BUCKETS, registry=self.registry,
        )
        self.commit_spans = Counter(
            "driftwatch_committed_spans", "Spans written by group commits (with retries' "
            "duplicates, before deduplication).", registry=self.registry,
        )
        self.queue_depth = Gauge(
            "driftwatch_ingest_queue_spans", "Spans waiting to be committed.",
            registry=self.registry,
        )
        self.open_runs = Gauge(
            "driftwatch_open_runs", "Runs seen and not yet ended.", registry=self.registry,
        )
        self.monitor_records = _LiveCounter(
            "driftwatch_monitor_records", "Span records evaluated by the monitors.")
        self.registry.register(self.monitor_records)
        self.connections_refused = Counter(
            "driftwatch_connections_refused", "Connections closed by the connection guard, "
            "by reason (per_client, evicted, header_timeout, header_too_large, http2: gRPC "
            "on the HTTP port).",
            ["reason"], registry=self.registry,
        )
        self.budget_refusals = Counter(
            "driftwatch_memory_budget_refusals", "Requests answered 503 because the "
            "in-flight memory budget was full.", registry=self.registry,
        )
        self.inflight_bytes = Gauge(
            "driftwatch_inflight_request_bytes", "Bytes of the memory budget held by "
            "requests in flight.", registry=self.registry,
        )
        self.stream_subscribers = Gauge(
            "driftwatch_stream_subscribers", "Clients following /v1/findings/stream.",
            registry=self.registry,
        )

    def bind(
        self,
        queue_depth: Callable[[], float],
        open_runs: Callable[[], float],
        monitor_records: Callable[[], float],
        stream_subscribers: Callable[[], float],
    ) -> None:
        """Gauges read live values when scraped."""
        self.queue_depth.set_function(queue_depth)
        self.open_runs.set_function(open_runs)
        self.monitor_records.read = monitor_records
        self.stream_subscribers.set_function(stream_subscribers)

    def observe_commit(self, seconds: float, spans: int) -> None:
        self.commit_seconds.observe(seconds)
        self.commit_spans.inc(spans)

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _LiveCounter:
    """A counter whose total lives elsewhere (another process counts it) and is read when
    scraped: exposed as a counter (``<name>_total``), since it only ever goes up —
    prometheus_client's ``Counter`` cannot read a function, and a gauge would make
    ``rate()`` wrong."""

    def __init__(self, name: str, documentation: str) -> None:
        self._name = name
        self._documentation = documentation
        self.read: Callable[[], float] = lambda: 0.0

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, value=self.read())

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation)
