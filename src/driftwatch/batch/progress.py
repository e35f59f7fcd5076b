"""Batch progress: a live rich display on a terminal, one JSON log line per finished run
otherwise (cron, CI, Docker logs), or nothing."""

from __future__ import annotations

from typing import Any

from driftwatch.batch.driver import Tally
from driftwatch.batch.worker import CellResult
from driftwatch.core.logging import get_logger

log = get_logger("driftwatch.batch")


def _eta(tally: Tally) -> str:
    eta = tally.eta_s
    if eta is None:
        return "?"
    minutes, seconds = divmod(int(eta), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class QuietProgress:
    def start(self, batch_id: str, total: int, already_done: int) -> None:
        return None

    def update(self, tally: Tally, result: CellResult | None) -> None:
        return None

    def finish(self, tally: Tally) -> None:
        return None


class LogProgress:
    """A structlog ``info`` line when the batch starts, per finished run, and at the end."""

    def start(self, batch_id: str, total: int, already_done: int) -> None:
        log.info("batch started", batch_id=batch_id, runs=total, already_done=already_done)

    def update(self, tally: Tally, result: CellResult | None) -> None:
        if result is None:
            return
        fields: dict[str, Any] = {
            "cell": result.cell_key, "status": result.status, "attempts": result.attempts,
            "violations": result.violations, "seconds": round(result.wall_time_s, 2),
            "done": tally.done, "total": tally.total, "failed": tally.failed + tally.errored,
            "running": tally.running, "violations_so_far": tally.violations, "eta": _eta(tally),
        }
        if result.error:
            fields["error"] = result.error
        if result.status in ("failed", "errored"):
            log.warning("run did not complete", **fields)
        else:
            log.info("run finished", **fields)

    def finish(self, tally: Tally) -> None:
        log.info("batch finished", done=tally.done, total=tally.total,
                 completed=tally.completed, errored=tally.errored, failed=tally.failed,
                 violations=tally.violations)


class RichProgress:
    """A progress bar with done/failed/running, violations so far and the ETA (stderr)."""

    def __init__(self) -> None:
        from rich.console import Console  # start-up: rich loads only when a terminal shows progress
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"), console=Console(stderr=True),
            transient=False,
        )
        self._task: Any = None

    def start(self, batch_id: str, total: int, already_done: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task(batch_id, total=total, completed=already_done,
                                             detail="")

    def update(self, tally: Tally, result: CellResult | None) -> None:
        failed = tally.failed + tally.errored
        detail = (f"failed {failed}  running {tally.running}  violations {tally.violations}"
                  f"  ETA {_eta(tally)}")
        self._progress.update(self._task, completed=tally.done, detail=detail)
        if result is not None and result.status != "completed":
            from rich.text import Text  # the error may quote a provider: no markup

            line = Text.assemble((result.status, "yellow"), f": {result.cell_key}: {result.error}")
            self._progress.console.print(line, highlight=False)

    def finish(self, tally: Tally) -> None:
        self._progress.stop()
