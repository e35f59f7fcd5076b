"""Shared records, ids, clock, errors, settings and wire names. Imports only stdlib,
pydantic and structlog."""

from driftwatch.core.clock import SYSTEM_CLOCK, Clock, FrozenClock, SystemClock
from driftwatch.core.errors import (
    DriftwatchError,
    ModelError,
    NotFoundError,
    QueryError,
    SandboxError,
    SpecError,
    StoreError,
    UsageError,
)
from driftwatch.core.ids import DEFAULT_IDS, IdSource, RandomIds, SequentialIds
from driftwatch.core.microbatch import MicroBatcher
from driftwatch.core.protocols import FindingSink, NullSink
from driftwatch.core.records import (
    Finding,
    FindingKind,
    RunInfo,
    RunStatus,
    Severity,
    SpanEvent,
    SpanKind,
    SpanRecord,
    normalize_attributes,
    ns_to_datetime,
)

__all__ = [
    "DEFAULT_IDS",
    "SYSTEM_CLOCK",
    "Clock",
    "DriftwatchError",
    "Finding",
    "FindingKind",
    "FindingSink",
    "FrozenClock",
    "IdSource",
    "MicroBatcher",
    "ModelError",
    "NotFoundError",
    "NullSink",
    "QueryError",
    "RandomIds",
    "RunInfo",
    "RunStatus",
    "SandboxError",
    "SequentialIds",
    "Severity",
    "SpanEvent",
    "SpanKind",
    "SpanRecord",
    "SpecError",
    "StoreError",
    "SystemClock",
    "UsageError",
    "normalize_attributes",
    "ns_to_datetime",
]
