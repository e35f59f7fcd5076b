"""A span batch submitted to the engine (as the collector submits committed spans) is
converted to records once, and the rule packs read the rows of its own table instead of
converting the records back: once per batch, not once per micro-batch."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import pytest

from driftwatch.alert import AlertConfig
from driftwatch.collector import Collector, CollectorConfig
from driftwatch.core.records import Finding, SpanRecord
from driftwatch.monitor import BaseMonitor, EngineConfig, build_engine, resolve_packs
from driftwatch.store import PredicateEvaluator, arrow
from driftwatch.store.arrow import exact_span_table
from driftwatch.store.predicates import BatchEvaluation
from driftwatch.store.span_batch import SpanBatch
from driftwatch.testing import RecordFactory

PACK = "oversight-config"


def interleaved_runs(runs: int = 3, turns: int = 4) -> list[SpanRecord]:
    """Several runs' tool calls, interleaved, one oversight-config write each."""
    factories = [RecordFactory(run_id=f"run-{n}", scenario_id=PACK, trace_id=f"{n + 1:032x}")
                 for n in range(runs)]
    records: list[SpanRecord] = []
    for turn in range(1, turns + 1):
        for factory in factories:
            path = "/etc/oversight_config.yaml" if turn == 2 else f"/tmp/{turn}.txt"
            records.append(factory.tool_call("write_file", {"path": path}, turn))
    return records


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"records_to_arrow": 0, "records_from_arrow": 0}

    def counting(name: str) -> Callable[..., Any]:
        original = getattr(arrow, name)

        def count(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        return count

    for name in counts:
        monkeypatch.setattr(arrow, name, counting(name))
    return counts


@pytest.fixture
def evaluated(monkeypatch: pytest.MonkeyPatch) -> list[tuple[type, bool]]:
    """Per rule-pack evaluation: the type of what it was given, and whether that had an
    Arrow table without converting records."""
    seen: list[tuple[type, bool]] = []
    original = PredicateEvaluator.evaluate_all

    def spy(self: PredicateEvaluator, records: Sequence[SpanRecord], *,
            only: Collection[str] | None = None,
            extra: Sequence[SpanRecord] = ()) -> BatchEvaluation:
        seen.append((type(records), isinstance(records, SpanBatch) and records.has_table))
        return original(self, records, only=only, extra=extra)

    monkeypatch.setattr(PredicateEvaluator, "evaluate_all", spy)
    return seen


def content(findings: Sequence[Finding]) -> list[tuple[Any, ...]]:
    return sorted((f.monitor, f.rule_id, f.run_id, f.span_id, f.turn, f.message)
                  for f in findings)


def findings_of(submit: Callable[[Any], None], engine: Any, records: list[SpanRecord]) -> list[
        Finding]:
    submit(records)
    for run_id in dict.fromkeys(r.run_id for r in records):
        engine.end_run(run_id)
    return list(engine.findings())


def test_a_batch_is_converted_once_and_its_table_reaches_the_rule_packs(
        conversions: dict[str, int], evaluated: list[tuple[type, bool]]) -> None:
    records = interleaved_runs()
    # micro-batches of 5: the batch's rows reach the monitors in several rounds
    config = EngineConfig(packs=tuple(resolve_packs([PACK])), max_batch=5)
    with build_engine(config) as engine:
        table = exact_span_table(records)
        conversions.update(records_to_arrow=0, records_from_arrow=0)
        found = findings_of(lambda rs: engine.submit_batch(SpanBatch.from_table(table)),
                            engine, records)
    assert conversions == {"records_to_arrow": 0, "records_from_arrow": 1}
    assert evaluated
    assert all(kind is SpanBatch and has_table for kind, has_table in evaluated)

    with build_engine(config) as engine:  # the same spans as records: the same findings
        expected = findings_of(engine.submit_many, engine, records)
    assert content(found) == content(expected)
    assert any(f.rule_id == "oversight-config-modified" for f in found)


def test_the_collector_converts_committed_spans_once_for_its_monitors(
        conversions: dict[str, int], evaluated: list[tuple[type, bool]],
        tmp_path: Path) -> None:
    collector = Collector(CollectorConfig(db=tmp_path / "c.duckdb", packs=(PACK,),
                                          alerts=AlertConfig(), monitor_process=False))
    try:
        table = exact_span_table(interleaved_runs())
        conversions.update(records_to_arrow=0, records_from_arrow=0)
        future = collector.ingest.offer(table)
        assert future is not None
        assert future.result(30) == table.num_rows
        assert collector.flush(30)
    finally:
        collector.close()
    assert conversions == {"records_to_arrow": 0, "records_from_arrow": 1}
    assert evaluated
    assert all(kind is SpanBatch and has_table for kind, has_table in evaluated)


class Order(BaseMonitor):
    """Keeps the span ids it is shown, and whether each round's Arrow rows match."""

    name = "order"

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.tables_match: list[bool] = []
        self.kept: list[Sequence[SpanRecord]] = []

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        self.kept.append(records)  # as a monitor keeping a run's last records would
        self.seen.extend(record.span_id for record in records)
        if isinstance(records, SpanBatch):
            ids = records.table.column("span_id").to_pylist()
            self.tables_match.append(ids == [record.span_id for record in records])
        return ()


def test_a_batch_submitted_again_reaches_the_monitors_in_submission_order() -> None:
    factory = RecordFactory(run_id="run-1")
    first = factory.tool_call("read_file", {"path": "a"}, 1)
    batch = SpanBatch.from_table(exact_span_table(
        [factory.tool_call("read_file", {"path": str(n)}, 1) for n in range(3)]))
    order = Order()
    with build_engine(EngineConfig(max_batch=3), monitors=[order]) as engine:
        engine.submit(first)
        engine.submit_batch(batch)
        engine.submit_batch(batch)  # a replay: the same rows again, rounds cut elsewhere
        assert engine.flush(30)
    ids = [record.span_id for record in batch]
    assert order.seen == [first.span_id, *ids, *ids]
    assert order.tables_match
    assert all(order.tables_match)


def test_records_a_monitor_keeps_do_not_keep_the_submitted_batch_alive() -> None:
    factory = RecordFactory(run_id="run-1")
    batch = SpanBatch.from_table(exact_span_table(
        [factory.tool_call("read_file", {"path": str(n)}, 1) for n in range(4)]))
    source = weakref.ref(batch)
    order = Order()
    with build_engine(EngineConfig(), monitors=[order]) as engine:
        engine.submit_batch(batch)
        assert engine.flush(30)
    del batch
    gc.collect()
    assert source() is None
    assert [len(kept) for kept in order.kept] == [4]
    assert order.kept[0][0].span_id == f"{1:016x}"
