"""Helpers for testing driftwatch and your own monitors: hand-made records, a recording
consumer and finding sink, comparable span dicts, a frozen clock and incrementing ids.
The loopback fake OpenAI server is in :mod:`driftwatch.testing.fake_openai`."""

from driftwatch.core import FrozenClock, SequentialIds
from driftwatch.testing.records import (
    VOLATILE_ATTRIBUTES,
    RecordFactory,
    RecordingConsumer,
    RecordingSink,
    finding_locations,
    span_dicts,
)

__all__ = [
    "VOLATILE_ATTRIBUTES",
    "FrozenClock",
    "RecordFactory",
    "RecordingConsumer",
    "RecordingSink",
    "SequentialIds",
    "finding_locations",
    "span_dicts",
]
