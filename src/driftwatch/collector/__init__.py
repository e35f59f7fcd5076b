"""The OTLP/HTTP collector behind ``driftwatch serve``: durable ingest, the same monitors
as in-process runs, live SQL and findings for other processes."""

from driftwatch.collector.app import CollectorApp, CollectorLimits
from driftwatch.collector.guard import GuardLimits
from driftwatch.collector.info import CollectorInfo, read_info, remote_query, stream_lines
from driftwatch.collector.ingest import IngestQueue
from driftwatch.collector.metrics import CollectorMetrics
from driftwatch.collector.runs import RunTracker
from driftwatch.collector.server import check_bind, is_loopback, serve
from driftwatch.collector.service import Collector, CollectorConfig
from driftwatch.collector.stream import FindingBroadcast, finding_from_dict

__all__ = [
    "Collector",
    "CollectorApp",
    "CollectorConfig",
    "CollectorInfo",
    "CollectorLimits",
    "CollectorMetrics",
    "FindingBroadcast",
    "GuardLimits",
    "IngestQueue",
    "RunTracker",
    "check_bind",
    "finding_from_dict",
    "is_loopback",
    "read_info",
    "remote_query",
    "serve",
    "stream_lines",
]
