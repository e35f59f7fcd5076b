"""Did every planned cell of a batch produce a run? Read from the ``batch_cells`` view.

A batch whose runs failed for infrastructure reasons (a sandbox that cannot start, a bad
option, a crashed worker) must say so where a reader looks first: the console summary,
the report's first screen and the exit code. Statistics only see finished runs, so
without this a report over 126 of 144 runs reads like a report over all of them.

Cell statuses: ``completed``; ``errored`` (the run ended early: a provider error after
retries, a budget or time limit — its turns still count as a censored run); ``failed``
(no usable run at all); ``pending``/``skipped``/``running`` (not run, e.g. after an
interruption or an exhausted budget).
"""

from __future__ import annotations

from dataclasses import dataclass

from driftwatch.report.compare import QueryableStore

__all__ = ["BatchHealth", "CellProblem", "load_batch_health"]

_CELLS = """
SELECT status, count(*) FROM batch_cells WHERE batch_id = ? GROUP BY status
"""
_PROBLEMS = """
SELECT cell_key, run_id, scenario_id, variant, model, seed, status, attempts, error
FROM batch_cells
WHERE batch_id = ? AND status IN ('failed', 'errored')
ORDER BY status = 'failed' DESC, scenario_id, variant, model, seed
LIMIT ?
"""


@dataclass(frozen=True)
class CellProblem:
    """A planned cell that did not complete, with the error it ended on."""

    cell_key: str
    run_id: str
    scenario_id: str
    variant: str
    model: str
    seed: int
    status: str
    attempts: int
    error: str | None

    @property
    def label(self) -> str:
        return f"{self.scenario_id}/{self.variant} {self.model} seed {self.seed}"


@dataclass(frozen=True)
class BatchHealth:
    """Planned cells by outcome, and the first ``limit`` cells that ran and did not
    complete, each with its error (failed ones first; cells not run are only counted)."""

    planned: int
    completed: int
    errored: int
    failed: int
    problems: tuple[CellProblem, ...]

    @property
    def not_run(self) -> int:
        """Cells with no final status: never started, interrupted or skipped."""
        return self.planned - self.completed - self.errored - self.failed

    @property
    def missing(self) -> int:
        """Cells without a finished run (failed or not run): a gate cannot trust the batch."""
        return self.failed + self.not_run

    @property
    def unsuccessful(self) -> int:
        """Cells that did not complete normally (errored, failed or not run)."""
        return self.planned - self.completed

    @property
    def ended_badly(self) -> int:
        """Cells that ran and errored or failed (the ones :attr:`problems` lists)."""
        return self.errored + self.failed

    @property
    def ok(self) -> bool:
        return self.unsuccessful == 0

    def headline(self) -> str:
        """One line: ``144 planned runs: 126 completed, 18 failed``."""
        parts = [f"{self.completed} completed"]
        for count, word in ((self.errored, "errored"), (self.failed, "failed"),
                            (self.not_run, "not run")):
            if count:
                parts.append(f"{count} {word}")
        return f"{self.planned} planned runs: " + ", ".join(parts)


def load_batch_health(store: QueryableStore, batch_id: str, *, limit: int = 50) -> BatchHealth:
    """The batch's cells by status and its first ``limit`` problem cells. A batch with no
    ledger (runs imported or written outside ``driftwatch batch``) has 0 planned cells."""
    counts = {str(status): int(count)
              for status, count in store.query(_CELLS, [batch_id]).rows}
    problems = tuple(
        CellProblem(cell_key=row[0], run_id=row[1], scenario_id=row[2], variant=row[3],
                    model=row[4], seed=int(row[5]), status=row[6], attempts=int(row[7] or 0),
                    error=row[8])
        for row in store.query(_PROBLEMS, [batch_id, limit]).rows
    )
    return BatchHealth(planned=sum(counts.values()), completed=counts.get("completed", 0),
                       errored=counts.get("errored", 0), failed=counts.get("failed", 0),
                       problems=problems)
