"""Importers: recorded agent runs from other tools into the store as ordinary traces.

Every importer validates the whole file first (:class:`ImportFormatError` names the record
and field), then :func:`store_runs` writes everything in one transaction and runs the
monitors over it. The span shape is documented in ``docs/importers.md``.
"""

from driftwatch.importers.conversation import (
    Conversation,
    ImportedRun,
    ImportFormatError,
    conversation_spans,
)
from driftwatch.importers.store_runs import ImportSummary, monitor_runs, store_runs

__all__ = [
    "Conversation",
    "ImportFormatError",
    "ImportSummary",
    "ImportedRun",
    "conversation_spans",
    "monitor_runs",
    "store_runs",
]
