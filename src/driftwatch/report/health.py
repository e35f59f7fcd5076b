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

from driftwatch.report.contents import BatchHealth, CellProblem
from driftwatch.report.summary import QueryableStore

__all__ = ["load_batch_health"]

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
