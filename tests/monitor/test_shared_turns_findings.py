"""The default monitors find exactly the same with one shared turn grouping as each with
its own: on the tau-bench excerpt, the collector benchmark's synthetic spans (with a
violation) and simulated agents (drift, loop, say–do), driven as the engine drives them
and as the benchmark harness does (each monitor ends lagging runs, then observes)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from driftwatch.core import FrozenClock, SequentialIds, SpanRecord
from driftwatch.core.records import Finding
from driftwatch.importers.conversation import conversation_spans
from driftwatch.importers.taubench import read_taubench
from driftwatch.monitor import (
    DriftMonitor,
    GoalDriftMonitor,
    MonitorEngine,
    RepetitionMonitor,
    RulePackMonitor,
    SayDoMonitor,
    builtin_pack_paths,
    default_monitors,
    resolve_packs,
)
from driftwatch.monitor.base import BaseMonitor, BatchObserver, FindingObserver, Monitor
from driftwatch.monitor.rules.rulepack import RulePack
from driftwatch.monitor.turngroup import SharesTurns
from driftwatch.testing import RecordingConsumer, RecordingSink
from driftwatch.tracing.otlp import records_from_otlp_protobuf

ROOT = Path(__file__).parents[2]
EXCERPT = ROOT / "tests" / "data" / "taubench" / "gpt-4o-airline-excerpt.json"
Runs = list[list[SpanRecord]]


def _bench_module() -> Any:
    path = ROOT / "bench" / "collector.py"
    spec = importlib.util.spec_from_file_location("bench_collector", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _by_run(records: Sequence[SpanRecord]) -> Runs:
    runs: dict[str, list[SpanRecord]] = {}
    for record in records:
        runs.setdefault(record.run_id, []).append(record)
    return list(runs.values())


@pytest.fixture(scope="module")
def taubench() -> tuple[list[RulePack], Runs]:
    runs = [conversation_spans(c, i).spans for i, c in enumerate(read_taubench(EXCERPT))]
    return resolve_packs(["taubench-airline"]), runs


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[RulePack], Runs]:
    module = _bench_module()
    pack = tmp_path_factory.mktemp("bench") / "bench.yaml"
    pack.write_text(module.BENCH_PACK)
    records = [
        record
        for number in range(3)
        for record in records_from_otlp_protobuf(
            module.encode_request(number, violation=True)[0]
        ).records
    ]
    return resolve_packs([*builtin_pack_paths(), pack]), _by_run(records)


@pytest.fixture(scope="module")
def simulated() -> tuple[list[RulePack], Runs]:
    from driftwatch.agent import run_agent
    from driftwatch.model import ModelClient
    from driftwatch.scenario import load_scenario
    from driftwatch.tracing import setup_tracing

    scenario = load_scenario("oversight-config")
    runs: Runs = []
    for profile, seed in (("drifter", 1), ("looper", 0), ("schemer", 0), ("schemer", 1)):
        consumer = RecordingConsumer()
        provider = setup_tracing([consumer], otlp=False)
        run_agent(
            scenario,
            model=ModelClient(f"simulated/{profile}", seed=seed),
            tracer=provider.get_tracer("test"),
            run_id=f"{profile}-{seed}",
            seed=seed,
            variant="pressure",
        )
        provider.shutdown()
        runs.append(consumer.records)
    return resolve_packs(["oversight-config"]), runs


def own_groupings(packs: Sequence[RulePack]) -> list[Monitor]:
    """The default monitors, each with a turn grouping of its own."""
    return [RulePackMonitor(packs), DriftMonitor(), GoalDriftMonitor(), RepetitionMonitor(),
            SayDoMonitor()]


def rounds(runs: Runs, chunk: int) -> Iterator[list[SpanRecord]]:
    """Micro-batches that interleave the runs, ``chunk`` records of each run at a time
    (turns are cut across rounds)."""
    position = 0
    while any(position < len(run) for run in runs):
        yield [record for run in runs for record in run[position : position + chunk]]
        position += chunk


def drive(monitors: Sequence[Monitor], runs: Runs, *, chunk: int, lag: int | None) -> list[Finding]:
    """Call the monitors as the engine does (``lag`` None: every monitor observes a round,
    then the finding observers, then runs whose records are all in end), or as the
    benchmark harness does (each monitor ends the runs first seen ``lag`` rounds ago,
    then observes the round; records of a run after its end start it again)."""
    ids, clock = SequentialIds(), FrozenClock()
    for item in monitors:
        assert isinstance(item, BaseMonitor)
        item.bind(ids=ids, clock=clock)
    last_round = {run[0].run_id: (len(run) - 1) // chunk for run in runs}
    found: list[Finding] = []
    seen: list[list[str]] = []
    for index, records in enumerate(rounds(runs, chunk)):
        by_run: dict[str, list[SpanRecord]] = {}
        for record in records:
            by_run.setdefault(record.run_id, []).append(record)
        seen.append(list(by_run))
        ended = seen.pop(0) if lag is not None and len(seen) > lag else []
        round_found: list[Finding] = []
        for item in monitors:
            for run_id in ended:
                found.extend(item.end_run(run_id, None))
            if isinstance(item, BatchObserver):
                round_found.extend(f for fs in item.observe_batch(by_run).values() for f in fs)
            else:
                for run_id, run_records in by_run.items():
                    round_found.extend(item.observe(run_id, run_records))
        found.extend(round_found)
        for item in monitors:
            if isinstance(item, FindingObserver):
                for run_id in by_run:
                    mine = [f for f in round_found if f.run_id == run_id]
                    found.extend(item.observe_findings(run_id, mine))
        if lag is None:
            for run_id in [r for r, last in last_round.items() if last == index]:
                for item in monitors:
                    found.extend(item.end_run(run_id, None))
    for run_ids in seen:
        for item in monitors:
            for run_id in run_ids:
                found.extend(item.end_run(run_id, None))
    return found


def content(findings: Sequence[Finding]) -> list[tuple[object, ...]]:
    return [(f.monitor, f.rule_id, f.run_id, f.span_id, f.turn, f.kind.value, f.severity.label,
             f.message, json.dumps(f.evidence, sort_keys=True, default=str)) for f in findings]


def test_default_monitors_share_one_grouping() -> None:
    monitors = [m for m in default_monitors(resolve_packs(["oversight-config"]))
                if isinstance(m, SharesTurns)]
    assert {m.name for m in monitors} == {"drift", "goal_drift", "loop", "say_do"}
    assert len({id(m._turn_feed.grouping) for m in monitors}) == 1
    alone = [m for m in own_groupings(()) if isinstance(m, SharesTurns)]
    assert len({id(m._turn_feed.grouping) for m in alone}) == len(alone)


@pytest.mark.parametrize("data", ["taubench", "bench", "simulated"])
@pytest.mark.parametrize(("chunk", "lag"), [(7, None), (64, None), (5, 1), (64, 2)])
def test_shared_turns_find_the_same_as_own_turns(
    data: str, chunk: int, lag: int | None, request: pytest.FixtureRequest
) -> None:
    packs, runs = request.getfixturevalue(data)
    shared = drive(default_monitors(packs), runs, chunk=chunk, lag=lag)
    alone = drive(own_groupings(packs), runs, chunk=chunk, lag=lag)
    assert content(shared) == content(alone)
    monitors = {f.monitor for f in alone}
    assert "rule_pack" in monitors
    if data == "simulated" and lag is None:  # a lag ends runs early: no episodes
        assert {"drift", "loop", "say_do"} <= monitors, monitors


def test_the_engine_finds_the_same_with_shared_turns(
    simulated: tuple[list[RulePack], Runs],
) -> None:
    packs, runs = simulated
    results = []
    for monitors in (default_monitors(packs), own_groupings(packs)):
        sink = RecordingSink()
        with MonitorEngine(monitors, sinks=[sink], ids=SequentialIds(),
                           clock=FrozenClock()) as engine:
            for run in runs:
                engine.submit_many(run)
                engine.end_run(run[0].run_id)
        results.append(sorted(content(sink.findings)))
    assert results[0] == results[1]
    assert results[0]
