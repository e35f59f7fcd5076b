"""Batch benchmark: ~1,000 runs × 50 turns on simulated models, end to end.

Runs a real batch (every built-in scenario × control/pressure × simulated/steadfast and
simulated/drifter × N seeds) through the local process executor into a temp-file
DuckDB, and prints:

- wall time in all (target: ≤ 10 minutes for 1,000 runs × 50 turns on 2 cores);
- throughput (runs/s, turns/s);
- harness overhead per turn: a worker's wall time per run divided by its turns
  (median, p90), i.e. everything driftwatch does per turn (agent loop, litellm's
  simulated path, tracing, monitors) since the simulated model itself costs ~nothing;
- CPU seconds of the workers and of the driver (the single writer), per turn, and the
  wall time they imply on an idle machine (the machine this runs on is often shared).

    python bench/batch.py                    # 1,024 runs × 50 turns, 2 processes
    python bench/batch.py --seeds 4 --turns 20 --processes 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from driftwatch.batch.config import BatchConfig, expand_cells
from driftwatch.batch.driver import Tally, run_batch, start_batch
from driftwatch.batch.executors import LocalExecutor
from driftwatch.batch.progress import QuietProgress
from driftwatch.batch.worker import CellResult
from driftwatch.scenario import list_scenarios
from driftwatch.store import Store


class _Timer(QuietProgress):
    """Counts finished runs and prints a line every 10% (the bench's only progress)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.next_report = 0.1

    def update(self, tally: Tally, result: CellResult | None) -> None:
        if result is not None and tally.done / tally.total >= self.next_report:
            self.next_report += 0.1
            print(f"  {tally.done}/{tally.total} runs  {time.perf_counter() - self.started:.0f}s",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=32, help="seeds per cell (32 → 1,024 runs)")
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    scenarios = list_scenarios()
    config = BatchConfig(
        name="bench", scenarios=[spec.id for spec in scenarios],
        variants=["control", "pressure"], models=["simulated/steadfast", "simulated/drifter"],
        seeds=args.seeds, turns=args.turns, concurrency=args.processes,
        processes=args.processes, retries=0,
    )
    cells = expand_cells(config, scenarios)
    print(f"{len(cells)} runs × {args.turns} turns, {args.processes} processes, "
          f"load before: {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "bench.duckdb") as store:
        batch_id = start_batch(store, config, scenarios, cells, source=None)
        executor = LocalExecutor(concurrency=args.processes, processes=args.processes)
        started, cpu_before = time.perf_counter(), os.times()
        outcome = run_batch(store, batch_id, config, scenarios, executor, progress=_Timer())
        wall, cpu_after = time.perf_counter() - started, os.times()
        rows = store.query(
            "SELECT c.wall_time_s, r.turns FROM batch_cells c JOIN runs r USING (run_id) "
            "WHERE r.turns > 0").rows
        spans = store.query("SELECT count(*) FROM spans").scalar()
        # the spans sit in the write-ahead log until a checkpoint: the file alone read 0 MB
        store.checkpoint()
        size_mb = sum(path.stat().st_size for path in Path(folder).glob("bench.duckdb*")) / 1e6
    per_turn_ms = sorted(1000 * seconds / turns for seconds, turns in rows)
    run_s = [seconds for seconds, _ in rows]
    turns = sum(turns for _, turns in rows)
    tally = outcome.tally
    print(f"status: {outcome.status}  completed {tally.completed}  errored {tally.errored}  "
          f"failed {tally.failed}  violations {tally.violations}  spans {spans}  "
          f"db {size_mb:.0f} MB")
    print(f"wall time: {wall:.0f}s ({wall / 60:.1f} min) for {len(rows)} runs, {turns} turns")
    print(f"throughput: {len(rows) / wall:.2f} runs/s, {turns / wall:.0f} turns/s")
    print(f"harness per turn (worker wall / turn): median {statistics.median(per_turn_ms):.1f} ms"
          f", p90 {per_turn_ms[int(0.9 * len(per_turn_ms))]:.1f} ms")
    print(f"run wall in a worker: median {statistics.median(run_s):.2f}s; "
          f"ideal batch wall at that pace: {sum(run_s) / args.processes:.0f}s "
          f"(ratio actual/ideal {wall / (sum(run_s) / args.processes):.2f})")
    # CPU of the driver (the single writer) and of the reaped worker processes: what the
    # batch costs regardless of what else the machine is doing.
    driver_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    worker_cpu = ((cpu_after.children_user + cpu_after.children_system)
                  - (cpu_before.children_user + cpu_before.children_system))
    total_cpu = driver_cpu + worker_cpu
    print(f"cpu: workers {worker_cpu:.0f}s, driver {driver_cpu:.0f}s; "
          f"{1000 * total_cpu / turns:.1f} ms CPU per turn in all "
          f"({1000 * worker_cpu / turns:.1f} in workers, {1000 * driver_cpu / turns:.1f} writing)")
    print(f"projected wall on an idle {args.processes}-core machine: "
          f"{total_cpu / args.processes:.0f}s; for 1,000 runs × 50 turns: "
          f"{total_cpu / turns * 50_000 / args.processes / 60:.1f} min")
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
