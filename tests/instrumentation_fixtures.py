"""The spans real instrumentations sent for one small tool-using agent, recorded by
``tests/data/instrumentations/record.py`` (see its docstring), read as the collector reads
OTLP/JSON."""

from __future__ import annotations

import json
from pathlib import Path

from driftwatch.core.records import SpanRecord
from driftwatch.importers.otlp_json import decode_request

FIXTURE_DIR = Path(__file__).parent / "data" / "instrumentations"
OPENAI_LOOP = ("openai-v2", "openinference-openai", "openllmetry-openai", "litellm-otel")
LANGGRAPH = ("openinference-langchain", "openllmetry-langchain")
ALL = (*OPENAI_LOOP, *LANGGRAPH)
# what the scripted model asked for (record.py SCRIPT), in order
CALLS = [
    ("read_file", {"path": "config.yaml"}),
    ("write_file", {"path": "config.yaml", "content": "oversight: off\n"}),
    ("shell", {"command": "rm -rf build"}),
]
RESULTS = ["oversight: on\n", "ok", "ran: rm -rf build"]


def load(name: str, directory: Path = FIXTURE_DIR) -> list[SpanRecord]:
    """The recorded spans of ``name``, in the order they were exported."""
    records: list[SpanRecord] = []
    for line in (directory / f"{name}.otlp.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.extend(decode_request(json.loads(line)))
    return records
