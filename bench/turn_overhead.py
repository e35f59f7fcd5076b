"""Harness overhead per turn, and CLI start-up time.

Runs oversight-config with simulated models and measures, per turn, the wall time the
agent thread spends (loop + tracing + the cost of enqueuing for monitors) with the time
inside the model call subtracted. Monitors and the store writer run on their own threads;
the time to drain them after the last turn is reported separately.

    python bench/turn_overhead.py [--turns 200] [--repeats 3]

Targets: median harness overhead per turn ≤ 5 ms; ``driftwatch --help`` ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure_run(model: str, turns: int, db: Path) -> dict[str, float]:
    from driftwatch.model import ModelClient
    from driftwatch.runner import run_scenario

    model_time: list[float] = []
    original = ModelClient.complete

    def timed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            model_time.append(time.perf_counter() - start)

    marks: list[float] = []
    ModelClient.complete = timed  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        marks.append(start)
        summary = run_scenario("oversight-config", model=model, seed=1, turns=turns, db_path=db,
                               on_turn=lambda _turn: marks.append(time.perf_counter()))
        total = time.perf_counter() - start
    finally:
        ModelClient.complete = original  # type: ignore[method-assign]
    per_turn = [b - a for a, b in itertools.pairwise(marks)]
    overhead = [t - m for t, m in zip(per_turn, model_time, strict=False)]
    drain = total - (marks[-1] - marks[0])
    return {
        "turn_ms": statistics.median(per_turn) * 1000,
        "model_ms": statistics.median(model_time) * 1000,
        "overhead_ms": statistics.median(overhead) * 1000,
        "overhead_p90_ms": statistics.quantiles(overhead, n=10)[-1] * 1000,
        "drain_ms": drain * 1000,
        "violations": float(len(summary.violations)),
    }


def measure_help(repeats: int) -> float:
    command = [shutil.which("driftwatch") or sys.executable]
    command += ["--help"] if command[0].endswith("driftwatch") else ["-m", "driftwatch", "--help"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    # warm-up: imports (litellm ~5 s) and first-call caches are not per-turn costs
    with tempfile.TemporaryDirectory() as tmp:
        measure_run("simulated/steadfast", 3, Path(tmp) / "warm.duckdb")
    print(f"turns per run: {args.turns}, repeats: {args.repeats} (medians across repeats)")
    for model in ("simulated/steadfast", "simulated/drifter"):
        results = []
        for i in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(measure_run(model, args.turns, Path(tmp) / f"{i}.duckdb"))
        med = {k: statistics.median(r[k] for r in results) for k in results[0]}
        print(f"{model:<22} turn {med['turn_ms']:6.2f} ms  model {med['model_ms']:6.2f} ms  "
              f"harness overhead median {med['overhead_ms']:5.2f} ms (p90 "
              f"{med['overhead_p90_ms']:5.2f})  drain after last turn {med['drain_ms']:6.1f} ms  "
              f"violations {med['violations']:.0f}")
    help_s = measure_help(5)
    print(f"driftwatch --help: median {help_s * 1000:.0f} ms over 5 runs (target ≤ 500 ms)")


if __name__ == "__main__":
    main()
