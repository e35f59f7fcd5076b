"""Importers: recorded agent runs from other tools into the store as ordinary traces.

Each format is one module with one ``@importer("name")`` class (a detector and a loader;
the contract is :class:`~driftwatch.core.importer.Importer`) and one import line below,
which registers it. Every importer validates the whole file first
(:class:`ImportFormatError` names the record and field), then :func:`store_runs` writes
everything in one transaction and runs the monitors over it. The span shape is
documented in ``docs/importers.md``.
"""

from driftwatch.core.conversation import Conversation
from driftwatch.core.importer import (
    ImportedRun,
    Importer,
    ImportFormatError,
    detect_importer,
    get_importer,
    importer,
    read_conversations,
    registered_importers,
)
from driftwatch.importers.conversation import conversation_spans
from driftwatch.importers.openai_jsonl import OpenAIJsonlImporter
from driftwatch.importers.otlp_json import OtlpJsonImporter
from driftwatch.importers.store_runs import ImportSummary, monitor_runs, store_runs
from driftwatch.importers.taubench import TauBenchImporter

__all__ = [
    "Conversation",
    "ImportFormatError",
    "ImportSummary",
    "ImportedRun",
    "Importer",
    "OpenAIJsonlImporter",
    "OtlpJsonImporter",
    "TauBenchImporter",
    "conversation_spans",
    "detect_importer",
    "get_importer",
    "importer",
    "monitor_runs",
    "read_conversations",
    "registered_importers",
    "store_runs",
]
