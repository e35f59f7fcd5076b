"""Replay vs import on a whole tau-bench file: do the monitors find the same violations?

Imports every recorded run (spans built from the file) and replays every run through the
agent loop (model ``replay/<file>#<task>-<trial>``), both with the same packs, then compares
(rule, turn) multisets run by run. Prints how many runs agree, the first disagreements,
and the median seconds per run for building + monitoring an import vs a live replay.

    python bench/replay_vs_import.py /work/shared/data/tau-bench/gpt-4o-airline.json \
        --pack taubench-airline
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from driftwatch.importers import conversation_spans, monitor_runs
from driftwatch.importers.taubench import read_taubench
from driftwatch.model.replay import replay_scenario
from driftwatch.runner.run import run_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--pack", action="append", default=[])
    parser.add_argument("--limit", type=int, default=0, help="only the first N runs")
    args = parser.parse_args()
    conversations = read_taubench(args.path)
    if args.limit:
        conversations = conversations[: args.limit]
    agree, disagreements = 0, []
    import_s, replay_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for index, conversation in enumerate(conversations):
            started = time.perf_counter()
            imported = monitor_runs([conversation_spans(conversation, index)], args.pack)
            import_s.append(time.perf_counter() - started)
            selector = conversation.run_id.removeprefix(f"taubench-{args.path.stem}-")
            model = f"replay/{args.path}#{selector}"
            started = time.perf_counter()
            summary = run_scenario(replay_scenario(model), model=model, packs=args.pack,
                                   db_path=Path(tmp) / f"{index}.duckdb")
            replay_s.append(time.perf_counter() - started)
            want = Counter((f.rule_id, f.turn) for f in imported if f.kind.value == "violation")
            got = Counter((f.rule_id, f.turn) for f in summary.violations)
            if want == got:
                agree += 1
            else:
                disagreements.append((conversation.run_id, want - got, got - want))
    print(f"runs: {len(conversations)}  same violations: {agree}")
    for run_id, missing, extra in disagreements[:10]:
        print(f"  {run_id}: only imported {dict(missing)}  only replayed {dict(extra)}")
    print(f"median s/run  import+monitor: {statistics.median(import_s):.3f}  "
          f"replay: {statistics.median(replay_s):.3f}  "
          f"ratio: {statistics.median(replay_s) / statistics.median(import_s):.1f}")


if __name__ == "__main__":
    main()
