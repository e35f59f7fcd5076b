"""Alert sinks: where findings go after they are stored."""

from driftwatch.alert.base import BaseSink
from driftwatch.alert.config import AlertConfig, WebhookConfig, build_sinks
from driftwatch.alert.console import ConsoleSink
from driftwatch.alert.jsonl import JsonlSink
from driftwatch.alert.prometheus import PrometheusSink
from driftwatch.alert.recorder import AlertRecorder, CountingRecorder, PendingAlert, StoreRecorder
from driftwatch.alert.registry import create_sink, registered_sinks, sink
from driftwatch.alert.webhook import WebhookSink
from driftwatch.alert.wrappers import CooldownSink, DedupeSink, ForwardingSink, RecordedSink

__all__ = [
    "AlertConfig",
    "AlertRecorder",
    "BaseSink",
    "ConsoleSink",
    "CooldownSink",
    "CountingRecorder",
    "DedupeSink",
    "ForwardingSink",
    "JsonlSink",
    "PendingAlert",
    "PrometheusSink",
    "RecordedSink",
    "StoreRecorder",
    "WebhookConfig",
    "WebhookSink",
    "build_sinks",
    "create_sink",
    "registered_sinks",
    "sink",
]
