"""OTLP JSON files (what the OpenTelemetry collector's file exporter writes): one
``ExportTraceServiceRequest`` per line → :class:`SpanRecord` objects.

Decoding is the collector's (``driftwatch.tracing.otlp``), made all-or-nothing. Spans are
grouped into runs by ``driftwatch.run.id`` (else ``gen_ai.conversation.id``, else the trace
id); the run row comes from the run's ``invoke_agent`` span when there is one.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from driftwatch.core import jsonfile
from driftwatch.core import semconv as sc
from driftwatch.core.errors import UsageError
from driftwatch.core.importer import KEYS_MATCH, ImportedRun, ImportFormatError, importer
from driftwatch.core.records import (
    RunInfo,
    RunStatus,
    SpanRecord,
    ns_to_datetime,
)
from driftwatch.tracing.otlp import OtlpDecodeError, records_from_otlp_json

__all__ = ["OtlpJsonImporter", "decode_request", "read_otlp_json"]

# the first line is an ExportTraceServiceRequest (a key inside a JSON string is escaped)
_FIRST_LINE: Final = re.compile(r'\s*\{[^\n]*?"resourceSpans"\s*:')


@importer("otlp-json")
class OtlpJsonImporter:
    """OTLP JSON lines as the OpenTelemetry collector's file exporter writes them."""

    def detect(self, path: Path, head: str) -> float:
        return KEYS_MATCH if _FIRST_LINE.match(head) else 0.0

    def load(self, path: Path, *, scenario_id: str | None = None,
             model: str | None = None) -> list[ImportedRun]:
        if scenario_id is not None or model is not None:
            raise UsageError(f"{path}: otlp-json spans name their own scenario and model "
                             "(--scenario-id and --model do not apply)")
        return read_otlp_json(path)


def read_otlp_json(path: Path) -> list[ImportedRun]:
    """Decode every line (blank lines skipped), then group the spans into runs. Raises
    :class:`ImportFormatError` naming the first bad line and field."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(str(path), None, "", f"cannot read: {exc}") from None
    records: list[SpanRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.extend(decode_request(jsonfile.loads(line)))
        except json.JSONDecodeError as exc:
            raise ImportFormatError(str(path), number, "line",
                                    f"not valid JSON ({exc.msg})") from None
        except jsonfile.JsonDepthError:
            raise ImportFormatError(str(path), number, "line", "nested deeper than "
                                    f"{jsonfile.MAX_DEPTH} levels") from None
        except ValueError as exc:
            field, _, problem = str(exc).partition(": ")
            raise ImportFormatError(str(path), number, field, problem) from None
    if not records:
        raise ImportFormatError(str(path), None, "", "no spans")
    return group_runs(records, batch_id=f"import-otlp-json-{path.stem}")


def decode_request(request: Any) -> list[SpanRecord]:
    """One ``ExportTraceServiceRequest`` through the collector's decoder
    (:func:`driftwatch.tracing.otlp.records_from_otlp_json`), strictly: where the collector
    would store the good spans and report the rejected ones, an import refuses the whole
    file. Raises ``ValueError("<field path>: <problem>")``."""
    try:
        decoded = records_from_otlp_json(request)
    except OtlpDecodeError as exc:
        raise ValueError(f"request: {exc}") from None
    if decoded.rejected:
        raise ValueError(decoded.errors[0])
    return decoded.records



def group_runs(records: list[SpanRecord], *, batch_id: str) -> list[ImportedRun]:
    """Spans grouped by run (file order kept), each with a run row built from its root
    (``invoke_agent``) span, or from the spans alone when the root is missing. A span
    without a run or conversation id joins the run named by another span of its trace
    (instrumentations often set ``session.id`` on the root span only)."""
    named: dict[str, str] = {}
    for record in records:
        if record.run_id != record.trace_id and (
                record.operation == sc.OP_INVOKE_AGENT or record.trace_id not in named):
            named[record.trace_id] = record.run_id
    by_run: dict[str, list[SpanRecord]] = {}
    for record in records:
        joined = record
        if record.run_id == record.trace_id and record.trace_id in named:
            joined = replace(record, run_id=named[record.trace_id])
        by_run.setdefault(joined.run_id, []).append(joined)
    return [_run(run_id, spans, batch_id) for run_id, spans in by_run.items()]


def _run(run_id: str, spans: list[SpanRecord], batch_id: str) -> ImportedRun:
    root = next((s for s in spans if s.operation == sc.OP_INVOKE_AGENT), None)
    attrs = root.attributes if root is not None else {}
    turns = max((s.turn for s in spans if s.turn is not None), default=0)
    errored = root is not None and root.status_code == "ERROR"
    seed = attrs.get(sc.DW_SEED)
    first = next((s for s in spans if s.attributes.get(sc.DW_SCENARIO_ID)), None)
    info = RunInfo(
        run_id=run_id, trace_id=(root or spans[0]).trace_id,
        scenario_id=attrs.get(sc.DW_SCENARIO_ID) or (first.attributes[sc.DW_SCENARIO_ID]
                                                     if first else None),
        variant=attrs.get(sc.DW_SCENARIO_VARIANT), model=(root.model if root else None),
        seed=seed if isinstance(seed, int) else None,
        status=RunStatus.ERRORED if errored else RunStatus.COMPLETED,
        started_at=ns_to_datetime(min(s.start_time_ns for s in spans)),
        ended_at=ns_to_datetime(max(s.end_time_ns for s in spans)),
        batch_id=attrs.get(sc.DW_BATCH_ID) or batch_id, turns=turns,
        error=root.status_message if errored and root is not None else None,
        attributes={"source": "otlp-json",
                    "tool_calls": sum(s.operation == sc.OP_EXECUTE_TOOL for s in spans),
                    "model_calls": sum(s.operation == sc.OP_CHAT for s in spans)},
    )
    return ImportedRun(info=info, spans=spans)
