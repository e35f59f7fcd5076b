"""The batch driver: plan the cells, keep the executor's slots full, write each finished
cell in one transaction (the single writer), enforce the batch budget, resume.

Resume: a batch's cells are recorded up front (``batch_cells``) with a run id derived
from (batch, cell). ``resume_batch`` runs the cells without a final status; since a
cell's run, spans, findings and status commit together, a completed cell is never rerun
and a cell the writer was killed in the middle of left nothing behind (its leftovers, if
any came from elsewhere, are purged before it runs again).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from driftwatch.batch.config import BatchConfig, Cell, cell_run_id, load_batch_config
from driftwatch.batch.executors import Executor
from driftwatch.batch.worker import CellResult, CellTask
from driftwatch.core.clock import SYSTEM_CLOCK, Clock
from driftwatch.core.errors import NotFoundError, UsageError
from driftwatch.core.ids import DEFAULT_IDS, IdSource
from driftwatch.core.logging import get_logger
from driftwatch.scenario import load_scenario
from driftwatch.store.ledger import (
    FINAL_STATUSES,
    SKIPPED,
    CellOutcome,
    CellRow,
    load_cells,
    mark_unfinished,
    plan_cells,
    purge_runs,
    record_cell,
    usage_so_far,
)

if TYPE_CHECKING:
    from driftwatch.scenario import Scenario
    from driftwatch.store import Store
    from driftwatch.store.ledger import CellRow

log = get_logger(__name__)


class ProgressReporter(Protocol):
    """Told about a batch as it goes; called from the driver thread only."""

    def start(self, batch_id: str, total: int, already_done: int) -> None: ...

    def update(self, tally: Tally, result: CellResult | None) -> None: ...

    def finish(self, tally: Tally) -> None: ...


@dataclass
class Tally:
    """Counts so far (this session's runs and the ones a resumed batch already had)."""

    total: int
    done: int = 0
    completed: int = 0
    errored: int = 0
    failed: int = 0
    running: int = 0
    violations: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)
    finished_here: int = 0

    @property
    def eta_s(self) -> float | None:
        """Remaining time at this session's pace; None before the first run ends."""
        if not self.finished_here:
            return None
        pace = (time.monotonic() - self.started) / self.finished_here
        return pace * (self.total - self.done)


@dataclass(frozen=True)
class BatchOutcome:
    batch_id: str
    status: str  # completed | budget_exhausted | interrupted
    tally: Tally
    stop_reason: str | None = None


def start_batch(
    store: Store,
    config: BatchConfig,
    scenarios: list[Scenario],
    cells: Sequence[Cell],
    *,
    source: str | None,
    batch_id: str | None = None,
    ids: IdSource = DEFAULT_IDS,
    clock: Clock = SYSTEM_CLOCK,
) -> str:
    """Record a new batch and its planned cells; returns the batch id."""
    batch_id = batch_id or ids.batch_id()
    stored = {"config": config.model_dump(mode="json"), "source": source,
              "scenarios": [spec.id for spec in scenarios]}
    store.upsert_batch(batch_id, config.name, "running", clock.now(), config=stored)
    plan_cells(store, batch_id, (
        CellRow(cell.key, cell.scenario.id, cell.variant, cell.model, cell.seed, config.turns,
                cell_run_id(batch_id, cell.key))
        for cell in cells), clock.now())
    return batch_id


def load_stored_batch(store: Store, batch_id: str) -> tuple[BatchConfig, list[Scenario]]:
    """The config a batch was started with, and its scenarios (loaded again from the
    config's source file, or by id for the built-in suite)."""
    rows = store.query("SELECT config FROM batches WHERE batch_id = ?", [batch_id]).rows
    if not rows:
        raise NotFoundError(f"no batch {batch_id!r} in {store.path}")
    raw = rows[0][0]
    stored: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else (raw or {})
    source = stored.get("source")
    if source and Path(source).is_file():
        return load_batch_config(source)
    try:
        config = BatchConfig.model_validate(stored.get("config", {}))
    except ValidationError as error:  # e.g. stored before secrets were refused in options
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise UsageError(f"cannot resume {batch_id}: its stored config is no longer valid "
                         f"({where}: {problem['msg']}); start a new batch") from None
    try:
        return config, [load_scenario(name) for name in stored.get("scenarios", [])]
    except UsageError as error:
        raise UsageError(f"cannot resume {batch_id}: {error}") from None


def run_batch(
    store: Store,
    batch_id: str,
    config: BatchConfig,
    scenarios: list[Scenario],
    executor: Executor,
    *,
    progress: ProgressReporter,
    clock: Clock = SYSTEM_CLOCK,
) -> BatchOutcome:
    """Run every cell of the batch that has no final status yet (all of them for a new
    batch) and record the batch's status. Ctrl-C stops it as ``interrupted`` (resumable)."""
    rows = load_cells(store, batch_id)
    if not rows:
        raise NotFoundError(f"batch {batch_id!r} has no planned cells")
    by_id = {spec.id: spec for spec in scenarios}
    todo = deque(row for row in rows if row.status not in FINAL_STATUSES)
    missing = sorted({row.scenario_id for row in todo} - set(by_id))
    if missing:
        raise UsageError(f"cannot run {batch_id}: scenarios not found: {', '.join(missing)}")
    purge_runs(store, [row.run_id for row in todo])
    tally = _tally_so_far(store, batch_id, len(rows))
    tally.tokens, tally.cost_usd = usage_so_far(store, batch_id)
    store.upsert_batch(batch_id, None, "running", clock.now())
    progress.start(batch_id, tally.total, tally.done)
    stop_reason: str | None = None
    status = "completed"
    try:
        while todo or executor.in_flight:
            stop_reason = stop_reason or _budget_spent(config, tally)
            while todo and not stop_reason and executor.in_flight < executor.slots:
                executor.submit(_task(batch_id, todo.popleft(), by_id, config))
            tally.running = executor.in_flight
            if not executor.in_flight:
                break
            for result in executor.completed(timeout_s=0.5):
                _record(store, batch_id, result, tally, clock)
                tally.running = executor.in_flight
                progress.update(tally, result)
            progress.update(tally, None)
    except KeyboardInterrupt:
        executor.close(cancel=True)
        status = "interrupted"
    else:
        executor.close()
    if stop_reason:
        mark_unfinished(store, batch_id, SKIPPED, clock.now())
        status = "budget_exhausted"
        log.warning("batch budget spent", batch_id=batch_id, reason=stop_reason)
    store.upsert_batch(batch_id, None, status, clock.now(),
                       ended_at=None if status == "interrupted" else clock.now())
    tally.running = 0
    progress.finish(tally)
    return BatchOutcome(batch_id, status, tally, stop_reason)


def _task(batch_id: str, row: CellRow, scenarios: dict[str, Scenario],
          config: BatchConfig) -> CellTask:
    return CellTask(
        batch_id=batch_id, cell_key=row.cell_key, run_id=row.run_id,
        scenario=scenarios[row.scenario_id], variant=row.variant, model=row.model,
        seed=row.seed, turns=row.turns,
        packs=tuple(config.packs) if config.packs is not None else None,
        timeout_s=config.timeout_s, retries=config.retries, limits=config.budgets.run,
        model_options=dict(config.model_options), capture_content=config.capture_content,
    )


def _record(store: Store, batch_id: str, result: CellResult, tally: Tally, clock: Clock) -> None:
    outcome = CellOutcome(
        status=result.status, attempts=result.attempts, error=result.error,
        input_tokens=result.input_tokens, output_tokens=result.output_tokens,
        cost_usd=result.cost_usd, wall_time_s=result.wall_time_s,
    )
    record_cell(store, batch_id, result.cell_key, run=result.run, spans=result.spans,
                findings=result.findings, outcome=outcome, now=clock.now())
    tally.done += 1
    tally.finished_here += 1
    setattr(tally, result.status, getattr(tally, result.status) + 1)
    tally.violations += result.violations
    tally.tokens += result.input_tokens + result.output_tokens
    tally.cost_usd += result.cost_usd


def _tally_so_far(store: Store, batch_id: str, total: int) -> Tally:
    tally = Tally(total=total)
    counts = store.query(
        "SELECT status, count(*) FROM batch_cells_t WHERE batch_id = ? "
        "AND status IN ('completed', 'errored', 'failed') GROUP BY status", [batch_id]).rows
    for status, count in counts:
        setattr(tally, str(status), int(count))
        tally.done += int(count)
    tally.violations = int(store.query(
        "SELECT count(*) FROM violations v JOIN runs r USING (run_id) WHERE r.batch_id = ?",
        [batch_id]).rows[0][0])
    return tally


def _budget_spent(config: BatchConfig, tally: Tally) -> str | None:
    """Why no new run may start, or None. Runs in flight are let finish."""
    limits = config.budgets.batch
    elapsed = time.monotonic() - tally.started
    if limits.wall_time_s is not None and elapsed >= limits.wall_time_s:
        return f"batch time limit: {elapsed:.0f}s >= {limits.wall_time_s:g}s"
    if limits.tokens is not None and tally.tokens >= limits.tokens:
        return f"batch token budget: {tally.tokens} >= {limits.tokens}"
    if limits.cost_usd is not None and tally.cost_usd >= limits.cost_usd:
        return f"batch cost budget: ${tally.cost_usd:.4f} >= ${limits.cost_usd:g}"
    return None
