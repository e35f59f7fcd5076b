"""Alert sinks: where findings go after they are stored."""

from driftwatch.alert.base import BaseSink
from driftwatch.alert.console import ConsoleSink
from driftwatch.alert.jsonl import JsonlSink
from driftwatch.alert.registry import create_sink, registered_sinks, sink

__all__ = [
    "BaseSink",
    "ConsoleSink",
    "JsonlSink",
    "create_sink",
    "registered_sinks",
    "sink",
]
