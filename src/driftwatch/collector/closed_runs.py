"""Runs closed to the collector: a span may not change a run the collector did not write.

Any OTLP sender may name any run id (``driftwatch.run.id``, ``gen_ai.conversation.id``).
Runs written by the batch runner, ``driftwatch run`` or an import (their ``runs`` row has
no ``attributes.source = 'otlp'``) are finished records: their model, turns, findings
and ``run_outcomes`` (the regression gate's input) must not move because a span claimed
their id. Such a span is still stored, for audit, but in a run of its own trace (the run
a span without a run key gets), with the claimed id kept in the span's attributes
(``driftwatch.collector.claimed_run_id``) and in that run's row; each one is counted
(``driftwatch_spans_reassigned_total``) and logged. A span that *is* part of the closed
run (same trace and span id, a re-send) is a duplicate and changes nothing.

The set of closed runs is read once at start: while the collector runs it is the only
writer of the database, so no other process adds runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from driftwatch.collector.runs import CLAIMED_RUN_ATTRIBUTE, OTLP_SOURCE
from driftwatch.core.logging import get_logger
from driftwatch.store.arrow import column_values

__all__ = ["RunGuard", "closed_batches", "closed_runs"]

log = get_logger(__name__)

_CLOSED_RUNS = ("SELECT run_id FROM runs_t "
                "WHERE (attributes->>'source') IS DISTINCT FROM $source")
_CLOSED_BATCHES = "SELECT batch_id FROM batches_t"


def closed_runs(store: object) -> list[str]:
    """Run ids whose rows the collector did not write."""
    rows = store.query(_CLOSED_RUNS, {"source": OTLP_SOURCE}).rows  # type: ignore[attr-defined]
    return [str(row[0]) for row in rows]


def closed_batches(store: object) -> frozenset[str]:
    """Batch ids written by the batch runner or an import (the collector writes none)."""
    return frozenset(str(row[0]) for row in store.query(_CLOSED_BATCHES).rows)  # type: ignore[attr-defined]


class RunGuard:
    """``prepare(table)`` moves spans that claim a closed run into their trace's run.
    ``on_reassigned(claimed_run_id, spans)`` is told about each claim (metrics)."""

    def __init__(self, closed: Iterable[str],
                 on_reassigned: Callable[[str, int], None] | None = None) -> None:
        self._closed_ids = set(closed)
        self._closed = pa.array(sorted(self._closed_ids), pa.string())
        self._on_reassigned = on_reassigned
        self._pending: dict[tuple[str, str], str] = {}  # (trace, span) → claimed run
        self.reassigned = 0

    def is_closed(self, run_id: str) -> bool:
        return run_id in self._closed_ids

    def committed(self, new: pa.Table) -> None:
        """After the write (writer thread), with the spans stored for the first time:
        count and log the claims among them (a re-send of a closed run's own span is a
        duplicate, stored nowhere, and not a claim)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        claims: dict[str, int] = {}
        for key in zip(column_values(new.column("trace_id")),
                       column_values(new.column("span_id")), strict=True):
            claimed = pending.get(key)
            if claimed is not None:
                claims[claimed] = claims.get(claimed, 0) + 1
        for claimed, count in claims.items():
            log.warning("spans claimed a run closed to the collector; stored in their "
                        "trace's run instead", claimed_run_id=claimed, spans=count)
            if self._on_reassigned is not None:
                self._on_reassigned(claimed, count)
        self.reassigned += sum(claims.values())

    def prepare(self, table: pa.Table) -> pa.Table:
        """Before the write (writer thread): the group with claiming spans moved."""
        self._pending = {}
        if not len(self._closed) or not table.num_rows:
            return table
        mask = pc.is_in(table.column("run_id"), value_set=self._closed)
        if not pc.any(mask).as_py():
            return table
        flags = (mask.combine_chunks() if isinstance(mask, pa.ChunkedArray)
                 else mask).to_pylist()
        run_ids = column_values(table.column("run_id"))
        trace_ids = column_values(table.column("trace_id"))
        attributes = column_values(table.column("attributes"))
        pending: dict[tuple[str, str], str] = {}
        span_ids = column_values(table.column("span_id"))
        for index, flagged in enumerate(flags):
            if not flagged:
                continue
            claimed = run_ids[index]
            pending[(trace_ids[index], span_ids[index])] = claimed
            own = trace_ids[index]  # the run of a span without a run key is its trace
            run_ids[index] = own if own not in self._closed_ids else f"reassigned-{own}"
            attributes[index] = _with_claim(attributes[index], claimed)
        self._pending = pending
        table = table.set_column(table.schema.get_field_index("run_id"), "run_id",
                                 pa.array(run_ids, pa.string()))
        index = table.schema.get_field_index("attributes")
        return table.set_column(index, table.schema.field(index),
                                pa.array(attributes, table.schema.field(index).type))


def _with_claim(text: str | None, claimed: str) -> str:
    try:
        attributes = json.loads(text) if text else {}
    except ValueError:
        attributes = {}
    if not isinstance(attributes, dict):
        attributes = {}
    attributes[CLAIMED_RUN_ATTRIBUTE] = claimed
    return json.dumps(attributes, separators=(",", ":"), ensure_ascii=False)
