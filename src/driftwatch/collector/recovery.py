"""Resuming monitoring at start: the runs the previous collector left open.

Spans are durable (acknowledged only once committed), monitor state is not: it lives in
memory. A run whose row says ``running`` (the collector died: ``kill -9``, OOM, power),
``interrupted`` (it stopped while the run was open) or that has spans but no row is
evaluated again here, before the collector accepts new spans: its committed spans, in
the order they were committed, go through the same path as live ones (run tracker and
monitors), so the monitors rebuild their state and the run goes on, ending as usual.

Findings are keyed by what they are about (``MonitorEngine(stable_finding_ids=True)``),
so a finding already stored before the stop is stored once and not alerted again; one
the stop cut off (spans committed, monitoring not done) is stored and alerted now.

Only the collector's own runs (``attributes.source = 'otlp'``) are resumed: a batch's
or an import's run is closed to the collector (see :mod:`driftwatch.collector.closed_runs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from driftwatch.collector.runs import OTLP_SOURCE
from driftwatch.core.logging import get_logger
from driftwatch.store.arrow import SPAN_SCHEMA

__all__ = ["Resumed", "replay_runs", "resume_open_runs"]

log = get_logger(__name__)

_OPEN_RUNS = """
SELECT s.run_id, coalesce(r.status, 'no row') AS status
FROM (SELECT DISTINCT run_id FROM spans_t) s
LEFT JOIN runs_t r USING (run_id)
WHERE r.run_id IS NULL
   OR ((r.attributes->>'source') = $source AND r.status IN ('running', 'interrupted'))
ORDER BY s.run_id
"""
# rowid order is commit order: the order the live monitors saw the spans in
_RUN_SPANS = (f"SELECT {', '.join(SPAN_SCHEMA.names)} FROM spans_t "
              "WHERE run_id IN (SELECT unnest($ids)) ORDER BY rowid")


@dataclass(frozen=True, slots=True)
class Resumed:
    """What :func:`resume_open_runs` found: runs by the status they were left in, and
    the spans evaluated again."""

    by_status: dict[str, int]
    spans: int

    @property
    def runs(self) -> int:
        return sum(self.by_status.values())

    @property
    def unclean(self) -> bool:
        """Left by a collector that did not stop cleanly (``running`` or no row)."""
        return any(status != "interrupted" for status in self.by_status)


def resume_open_runs(store: Any, feed: Callable[[pa.Table], None], *,
                     runs_per_chunk: int = 256) -> Resumed:
    """Find the open runs and ``feed`` their committed spans (``SPAN_SCHEMA`` tables,
    ``runs_per_chunk`` runs at a time, each run's spans in commit order)."""
    rows = store.query(_OPEN_RUNS, {"source": OTLP_SOURCE}).rows
    by_status: dict[str, int] = {}
    for _, status in rows:
        by_status[str(status)] = by_status.get(str(status), 0) + 1
    spans = replay_runs(store, [str(run_id) for run_id, _ in rows], feed,
                        runs_per_chunk=runs_per_chunk)
    resumed = Resumed(by_status, spans)
    if resumed.runs:
        report = log.warning if resumed.unclean else log.info
        report("resuming runs left open by the previous collector", runs=resumed.runs,
               spans=spans, **{status.replace(" ", "_"): n for status, n in by_status.items()})
    return resumed


def replay_runs(store: Any, run_ids: list[str], feed: Callable[[pa.Table], None], *,
                runs_per_chunk: int = 256) -> int:
    """``feed`` the committed spans of ``run_ids`` (``SPAN_SCHEMA`` tables, a chunk of
    runs at a time, each run's spans in commit order); returns how many."""
    spans = 0
    for start in range(0, len(run_ids), runs_per_chunk):
        table = store.arrow(_RUN_SPANS, {"ids": run_ids[start:start + runs_per_chunk]})
        table = pa.Table.from_arrays(
            [column.cast(field.type) for column, field in zip(table.columns, SPAN_SCHEMA,
                                                              strict=True)],
            schema=SPAN_SCHEMA,
        )
        spans += table.num_rows
        if table.num_rows:
            feed(table)
    return spans
