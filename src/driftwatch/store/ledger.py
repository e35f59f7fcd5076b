"""The batch ledger: one ``batch_cells_t`` row per planned cell, and the one-transaction
write of a finished cell (its run, spans, findings and final status together).

``driftwatch batch --resume`` reads the ledger to run only the cells without a final
status; because a cell's data and its status commit together, a cell is either
complete in the store or absent from it, whatever moment the writer was killed at.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import pyarrow as pa

from driftwatch.core.records import Finding, RunInfo
from driftwatch.store.db import Store

PENDING: Final = "pending"
SKIPPED: Final = "skipped"  # not run: a batch budget ran out (``--resume`` runs it)
FINAL_STATUSES: Final = frozenset({"completed", "errored", "failed"})

# every planned cell in one statement: the lists are unnested side by side
_INSERT_CELLS: Final = """
INSERT INTO batch_cells_t (batch_id, cell_key, scenario_id, variant, model, seed, turns,
                           run_id, status, updated_at)
SELECT ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
       unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]),
       unnest(?::VARCHAR[]), ?
ON CONFLICT (batch_id, cell_key) DO NOTHING
"""
_FINISH_CELL: Final = """
UPDATE batch_cells_t SET status = ?, attempts = ?, error = ?, input_tokens = ?,
       output_tokens = ?, cost_usd = ?, wall_time_s = ?, updated_at = ?
WHERE batch_id = ? AND cell_key = ?
"""
_MARK_CELLS: Final = """
UPDATE batch_cells_t SET status = ?, updated_at = ?
WHERE batch_id = ? AND status NOT IN ('completed', 'errored', 'failed')
"""
# Cells' leftovers from a writer that was not transactional (or a hand-edited store):
# removed before the cells run again, so no span of a cell can be stored twice. Each
# statement takes the list of run ids.
_PURGE_RUNS: Final = (
    "DELETE FROM span_keys_t WHERE span_key IN (SELECT md5_number(trace_id || ':' || span_id)"
    " FROM spans_t WHERE list_contains(?, run_id))",
    "DELETE FROM spans_t WHERE list_contains(?, run_id)",
    "DELETE FROM alerts_t WHERE finding_id IN (SELECT finding_id FROM findings_t"
    " WHERE list_contains(?, run_id))",
    "DELETE FROM findings_t WHERE list_contains(?, run_id)",
)


@dataclass(frozen=True, slots=True)
class CellRow:
    """A planned cell as the ledger holds it."""

    cell_key: str
    scenario_id: str
    variant: str
    model: str
    seed: int
    turns: int | None
    run_id: str
    status: str = PENDING


@dataclass(frozen=True, slots=True)
class CellOutcome:
    """How a cell ended, with what it used (tokens, cost, wall time)."""

    status: str
    attempts: int
    error: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    wall_time_s: float


def plan_cells(store: Store, batch_id: str, cells: Iterable[CellRow], now: datetime) -> None:
    """Record the planned cells (those already recorded keep their status)."""
    planned = list(cells)
    if not planned:
        return
    columns = [[getattr(cell, name) for cell in planned]
               for name in ("cell_key", "scenario_id", "variant", "model", "seed", "turns",
                            "run_id", "status")]
    with store.transaction():
        store.execute(_INSERT_CELLS, [batch_id, *columns, now])


def load_cells(store: Store, batch_id: str) -> list[CellRow]:
    """Every cell of the batch, in plan order (the cell key sorts as planned)."""
    rows = store.query(
        "SELECT cell_key, scenario_id, variant, model, seed, turns, run_id, status "
        "FROM batch_cells_t WHERE batch_id = ? ORDER BY cell_key",
        [batch_id],
    ).rows
    return [CellRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]),
                    None if r[5] is None else int(r[5]), str(r[6]), str(r[7])) for r in rows]


def usage_so_far(store: Store, batch_id: str) -> tuple[int, float]:
    """Tokens (input + output) and cost the batch's finished cells used."""
    row = store.query(
        "SELECT coalesce(sum(input_tokens + output_tokens), 0), coalesce(sum(cost_usd), 0) "
        "FROM batch_cells_t WHERE batch_id = ?",
        [batch_id],
    ).rows[0]
    return int(row[0]), float(row[1])


def purge_runs(store: Store, run_ids: Sequence[str]) -> None:
    """Remove any spans and findings stored for these runs (see ``_PURGE_RUNS``)."""
    if not run_ids:
        return
    with store.transaction():
        for statement in _PURGE_RUNS:
            store.execute(statement, [list(run_ids)])


def record_cell(
    store: Store,
    batch_id: str,
    cell_key: str,
    *,
    run: RunInfo | None,
    spans: pa.Table | None,
    findings: Sequence[Finding],
    outcome: CellOutcome,
    now: datetime,
) -> None:
    """Store a finished cell's run, spans and findings and its final status, atomically."""
    with store.transaction():
        if spans is not None and spans.num_rows:
            store.write_span_table(spans, json_checked=True)
        if findings:
            store.write_findings(findings)
        if run is not None:
            store.upsert_run(run)
        store.execute(_FINISH_CELL, [
            outcome.status, outcome.attempts, outcome.error, outcome.input_tokens,
            outcome.output_tokens, outcome.cost_usd, outcome.wall_time_s, now,
            batch_id, cell_key,
        ])


def mark_unfinished(store: Store, batch_id: str, status: str, now: datetime) -> None:
    """Give every cell without a final status ``status`` (e.g. ``skipped``)."""
    store.execute(_MARK_CELLS, [status, now, batch_id])
