"""Executors: where a batch's cells run. The driver stays the single writer.

- :class:`LocalExecutor` with ``processes > 0``: a spawn process pool. Our per-turn cost
  is CPU-bound Python (harness, litellm's simulated path, monitors), so processes are
  what uses more than one core; each worker ships its run back to the driver.
- :class:`LocalExecutor` with ``processes == 0``: threads in the driver process, for
  hosted models whose calls are I/O-bound (many runs in flight, one core is plenty).
- :class:`RayExecutor`: the same worker function as Ray tasks on a cluster.

Contract (``Executor``): ``submit`` never blocks (the driver keeps at most ``slots``
tasks in flight); ``completed`` blocks up to ``timeout_s`` and returns the results
finished since the last call; a task that crashed its worker comes back as a
``failed`` :class:`CellResult`, never as an exception. All calls come from the driver.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
from typing import Any, Protocol

from driftwatch.batch.worker import STOPPING, CellResult, CellTask, execute_cell, worker_init
from driftwatch.core.errors import UsageError


class Executor(Protocol):
    slots: int

    def submit(self, task: CellTask) -> None: ...

    def completed(self, timeout_s: float) -> list[CellResult]: ...

    @property
    def in_flight(self) -> int: ...

    def close(self, *, cancel: bool = False) -> None: ...


def crashed(task: CellTask, error: BaseException) -> CellResult:
    """The result of a task whose worker died or could not run it."""
    return CellResult(cell_key=task.cell_key, status="failed", attempts=1,
                      error=f"worker: {type(error).__name__}: {error}", run=None, spans=None,
                      findings=[])


class LocalExecutor:
    """A process pool (``processes > 0``) or a thread pool (``processes == 0``)."""

    def __init__(self, *, concurrency: int, processes: int) -> None:
        self.processes = processes
        self.slots = processes if processes > 0 else concurrency
        self._pool: cf.Executor
        self._worker_pids: Any = None
        if processes > 0:
            context = multiprocessing.get_context("spawn")
            self._worker_pids = context.SimpleQueue()
            self._pool = cf.ProcessPoolExecutor(
                max_workers=processes, mp_context=context,
                initializer=worker_init, initargs=(os.getpid(), self._worker_pids),
            )
        else:
            STOPPING.clear()  # a batch interrupted earlier in this process is over
            self._pool = cf.ThreadPoolExecutor(max_workers=concurrency,
                                               thread_name_prefix="driftwatch-run")
        self._futures: dict[cf.Future[CellResult], CellTask] = {}

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    def submit(self, task: CellTask) -> None:
        self._futures[self._pool.submit(execute_cell, task)] = task

    def completed(self, timeout_s: float) -> list[CellResult]:
        if not self._futures:
            return []
        done, _ = cf.wait(self._futures, timeout=timeout_s, return_when=cf.FIRST_COMPLETED)
        results = []
        for future in done:
            task = self._futures.pop(future)
            try:
                results.append(future.result())
            except Exception as error:  # BrokenProcessPool, a result that did not pickle
                results.append(crashed(task, error))
        return results

    def close(self, *, cancel: bool = False) -> None:
        """Wait for the pool, or with ``cancel`` drop queued cells and stop running ones
        now: worker processes are killed (their runs were not recorded and the ledger
        reruns them on ``--resume``); runs in threads stop at their next turn."""
        if cancel:
            STOPPING.set()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        if cancel and self._worker_pids is not None:
            while not self._worker_pids.empty():
                pid = self._worker_pids.get()
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


class RayExecutor:
    """Cells as Ray tasks (``num_cpus=1`` each); results come back to the driver."""

    def __init__(self, *, concurrency: int, address: str | None = None,
                 init_options: dict[str, Any] | None = None) -> None:
        try:
            import ray  # optional dependency: the [ray] extra
        except ImportError:
            raise UsageError(
                "--executor ray needs Ray: pip install 'driftwatch[ray]'") from None
        self._ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            options.update(init_options or {})
            ray.init(address=address, **options)
        self.slots = concurrency
        self._remote = ray.remote(num_cpus=1, max_retries=1)(execute_cell)
        self._refs: dict[Any, CellTask] = {}

    @property
    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, task: CellTask) -> None:
        self._refs[self._remote.remote(task)] = task

    def completed(self, timeout_s: float) -> list[CellResult]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout_s)
        if ready:  # take whatever else is ready too, without waiting
            more, _ = self._ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
            ready = list(dict.fromkeys([*ready, *more]))
        results = []
        for ref in ready:
            task = self._refs.pop(ref)
            try:
                results.append(self._ray.get(ref))
            except Exception as error:  # the task or its worker died
                results.append(crashed(task, error))
        return results

    def close(self, *, cancel: bool = False) -> None:
        if cancel:
            for ref in self._refs:
                self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started_here:
            self._ray.shutdown()


def default_processes(concurrency: int, models: list[str]) -> int:
    """Processes for CPU-bound simulated models (up to the CPUs), threads (0) as soon as
    one model is a hosted one: its calls wait on the network, not the CPU."""
    if all(model.startswith("simulated/") for model in models):
        return max(1, min(concurrency, os.cpu_count() or 1))
    return 0
