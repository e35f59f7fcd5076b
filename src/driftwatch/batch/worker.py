"""What a batch worker does with one cell: run it (retrying provider faults), within its
run budget, and hand back everything it produced, without touching the database.

:func:`execute_cell` runs in a worker process (local executor), a thread, or a Ray task;
its :class:`CellResult` (run row, spans as one Arrow table, findings) travels back to the
driver, the batch's single writer. Monitors run in the worker, next to the spans.
"""

# function-level imports: start-up — the driver imports this module for CellTask and CellResult,
# only workers load the run machinery (runner, monitors, litellm) and the process-control modules
from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from driftwatch.batch.config import Limits
from driftwatch.core import semconv as sc
from driftwatch.core.logging import get_logger
from driftwatch.core.records import Finding, RunInfo, RunStatus, SpanRecord
from driftwatch.store.span_batch import SpanBatch

if TYPE_CHECKING:
    import pyarrow as pa

    from driftwatch.monitor import RulePack
    from driftwatch.scenario import Scenario

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CellTask:
    """Everything a worker needs to run one cell (picklable)."""

    batch_id: str
    cell_key: str
    run_id: str
    scenario: Scenario
    variant: str
    model: str
    seed: int
    turns: int | None = None
    packs: tuple[str, ...] | None = None
    timeout_s: float | None = None
    retries: int = 2
    limits: Limits = field(default_factory=Limits)
    model_options: dict[str, Any] = field(default_factory=dict)
    capture_content: bool = True


@dataclass(slots=True)
class CellResult:
    """What one cell produced. ``status`` is the run's final status (``completed``,
    ``errored``: a provider kept failing or a run budget ran out, ``failed``: an
    exception); ``spans`` is None when nothing was recorded."""

    cell_key: str
    status: str
    attempts: int
    error: str | None
    run: RunInfo | None
    spans: pa.Table | None
    findings: list[Finding]
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    wall_time_s: float = 0.0

    @property
    def violations(self) -> int:
        return sum(1 for item in self.findings if item.kind.value == "violation")


class RunAborted(Exception):
    """Raised between turns when a run is over its budget or time limit."""


class _UsageCounter:
    """RecordConsumer: each span's tokens and cost, counted on the thread that ends it."""

    def __init__(self, recorder: _CellRecorder) -> None:
        self._recorder = recorder

    def submit(self, record: SpanRecord) -> None:
        self._recorder.count(record)

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        return True

    def close(self) -> None:
        return None


class _CellRecorder:
    """The run target of a worker: keeps span batches, findings and the latest run row in
    memory, and counts tokens and cost as spans end (for the run budget)."""

    def __init__(self) -> None:
        self.batches: list[SpanBatch] = []
        self.findings: list[Finding] = []
        self.run: RunInfo | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost_usd = 0.0
        self._lock = threading.Lock()
        self._usage = _UsageCounter(self)

    # RunTarget
    @property
    def consumers(self) -> Sequence[Any]:
        # usage per span as it ends (the budget is checked between turns), spans in
        # batches whose tables the monitors' tables are: shipped without converting again
        return [self._usage, self]

    @property
    def finding_store(self) -> _CellRecorder:
        return self

    def record_run(self, info: RunInfo) -> None:
        self.run = info

    # BatchConsumer
    def submit_batch(self, batch: SpanBatch) -> None:
        with self._lock:
            self.batches.append(batch)

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        return True

    def close(self) -> None:
        return None

    def count(self, record: SpanRecord) -> None:
        cost = record.attributes.get(sc.DW_MODEL_COST_USD)
        with self._lock:
            self.input_tokens += record.input_tokens or 0
            self.output_tokens += record.output_tokens or 0
            if isinstance(cost, int | float):
                self.cost_usd += float(cost)

    # FindingStore
    def write_findings(self, findings: Sequence[Finding]) -> int:
        with self._lock:
            self.findings.extend(findings)
        return len(findings)


STOPPING = threading.Event()
"""Set by the driver when a batch is interrupted: runs in this process (the thread
executor's) stop at their next turn instead of holding the exit for minutes."""


class _RunGuard:
    """``on_turn`` callback: stops the run between turns once a run limit is passed or
    the batch is stopping."""

    def __init__(self, limits: Limits, timeout_s: float | None, recorder: _CellRecorder) -> None:
        self._limits = limits
        self._timeout_s = timeout_s
        self._recorder = recorder
        self._started = time.monotonic()
        self.turns = 0

    def __call__(self, turn: int) -> None:
        self.turns = turn
        if STOPPING.is_set():
            raise RunAborted(f"batch interrupted after turn {turn}")
        used = self._recorder
        elapsed = time.monotonic() - self._started
        tokens = used.input_tokens + used.output_tokens
        wall = min(x for x in (self._limits.wall_time_s, self._timeout_s, float("inf"))
                   if x is not None)
        if elapsed > wall:
            raise RunAborted(f"run time limit: {elapsed:.1f}s > {wall:g}s after turn {turn}")
        if self._limits.tokens is not None and tokens > self._limits.tokens:
            raise RunAborted(f"run token budget: {tokens} > {self._limits.tokens} "
                             f"after turn {turn}")
        if self._limits.cost_usd is not None and used.cost_usd > self._limits.cost_usd:
            raise RunAborted(f"run cost budget: ${used.cost_usd:.4f} > "
                             f"${self._limits.cost_usd:g} after turn {turn}")


@functools.lru_cache(maxsize=64)
def _packs(names: tuple[str, ...]) -> Sequence[RulePack]:
    """Rule packs by id, loaded once per worker (loading every pack file to find one by id
    costs ~0.4 s; a batch asks for the same few packs hundreds of times)."""
    from driftwatch.monitor import resolve_packs

    return tuple(resolve_packs(names))


def _cached_resolve(names: Sequence[str]) -> Sequence[RulePack]:
    return _packs(tuple(names))


def execute_cell(task: CellTask) -> CellResult:
    """Run one cell; a run a provider failed (status ``errored``) is rerun up to
    ``task.retries`` times under the same run id, and only the last attempt is kept."""
    started = time.perf_counter()
    errors: list[str] = []
    for attempt in range(1, task.retries + 2):
        result, retryable = _attempt(task, _CellRecorder(), attempt)
        if result.status != RunStatus.ERRORED.value or not retryable or attempt > task.retries:
            break
        errors.append(result.error or "")
    if errors and result.run is not None:
        attributes = {**result.run.attributes, "attempts": result.attempts,
                      "retried_errors": errors}
        result.run = replace(result.run, attributes=attributes)
    if errors and result.status != RunStatus.COMPLETED.value:
        result.error = f"{result.error} (after {result.attempts} attempts)"
    result.wall_time_s = time.perf_counter() - started
    return result


def _attempt(task: CellTask, recorder: _CellRecorder, attempt: int) -> tuple[CellResult, bool]:
    """One attempt, and whether an ``errored`` outcome may be retried (not when a budget
    or time limit stopped it: a rerun would pass it again)."""
    from driftwatch.runner.run import execute_run

    guard = _RunGuard(task.limits, task.timeout_s, recorder)
    retryable = True
    try:
        summary = execute_run(
            task.scenario, recorder, model=task.model, seed=task.seed, variant=task.variant,
            turns=task.turns, packs=task.packs, batch_id=task.batch_id, run_id=task.run_id,
            capture_content=task.capture_content, on_turn=guard,
            model_options=dict(task.model_options), otlp=False, resolve=_cached_resolve,
        )
        status, error = summary.status, summary.error
    except RunAborted as abort:
        status, error, retryable = RunStatus.ERRORED, str(abort), False
        if recorder.run is not None:
            recorder.run = replace(recorder.run, status=status, error=error, turns=guard.turns)
    except Exception as exc:  # a bug or a bad option: recorded, the batch goes on
        status, error, retryable = RunStatus.FAILED, f"{type(exc).__name__}: {exc}", False
    result = CellResult(
        cell_key=task.cell_key, status=status.value, attempts=attempt, error=error,
        run=recorder.run, spans=_span_table(recorder.batches), findings=recorder.findings,
        input_tokens=recorder.input_tokens, output_tokens=recorder.output_tokens,
        cost_usd=recorder.cost_usd,
    )
    return result, retryable


def _span_table(batches: list[SpanBatch]) -> pa.Table | None:
    if not any(len(batch) for batch in batches):
        return None
    return SpanBatch.concat(batches).table


def worker_init(parent_pid: int, pids: Any = None) -> None:
    """Process-pool initializer: tell the driver this worker's pid (``pids``, a
    multiprocessing queue: an interrupted batch kills its workers instead of waiting for
    their runs), die with the driver (a kill -9 of ``driftwatch batch`` must not leave
    workers running: the kernel's parent-death signal on Linux, a watcher thread
    elsewhere), exit without interpreter finalization (the worker holds nothing to flush,
    and DuckDB's bindings print spurious "leaked" reports at finalization), and pay the
    heavy imports (litellm, langgraph ≈ 10 s) up front with a one-turn run."""
    import atexit

    if pids is not None:
        pids.put(os.getpid())
    _die_with_parent()
    if os.getppid() != parent_pid:  # the driver died before the signal was armed
        os._exit(1)
    watcher = threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True,
                               name="driftwatch-parent-watch")
    watcher.start()
    atexit.register(_exit_now)
    try:
        from driftwatch.scenario import load_scenario

        execute_cell(CellTask(batch_id="warm-up", cell_key="warm-up", run_id="run-warm-up",
                              scenario=load_scenario("oversight-config"), variant="control",
                              model="simulated/steadfast", seed=0, turns=1, retries=0))
    except Exception as error:  # the first real run will report the problem
        log.warning("worker warm-up failed", error=str(error))


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process the moment its parent exits (prctl
    PR_SET_PDEATHSIG); elsewhere the watcher thread does it within half a second."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here: the watcher thread covers it
        pass


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _exit_with_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)
