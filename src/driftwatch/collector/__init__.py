"""The OTLP/HTTP collector behind ``driftwatch serve``: durable ingest, the same monitors
as in-process runs, live SQL and findings for other processes.

The names below are loaded on first use: ``driftwatch sql`` and ``watch`` only need
:mod:`driftwatch.collector.info` to find a running collector, and importing the whole
server (uvicorn, the app, the alert sinks) cost them half a second of start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftwatch.core.lazy import lazy_exports

if TYPE_CHECKING:
    from driftwatch.collector.app import CollectorApp, CollectorLimits
    from driftwatch.collector.guard import GuardLimits
    from driftwatch.collector.info import CollectorInfo, read_info, remote_query, stream_lines
    from driftwatch.collector.ingest import IngestQueue
    from driftwatch.collector.metrics import CollectorMetrics
    from driftwatch.collector.origin import is_loopback
    from driftwatch.collector.runs import RunTracker
    from driftwatch.collector.server import check_bind, serve
    from driftwatch.collector.service import Collector, CollectorConfig
    from driftwatch.collector.stream import FindingBroadcast, finding_from_dict

_HOMES = {
    "CollectorApp": "app", "CollectorLimits": "app", "GuardLimits": "guard",
    "CollectorInfo": "info", "read_info": "info", "remote_query": "info",
    "stream_lines": "info", "IngestQueue": "ingest", "CollectorMetrics": "metrics",
    "RunTracker": "runs", "check_bind": "server", "is_loopback": "origin", "serve": "server",
    "Collector": "service", "CollectorConfig": "service", "FindingBroadcast": "stream",
    "finding_from_dict": "stream",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
