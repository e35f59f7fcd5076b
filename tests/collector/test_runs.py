"""Runs from outside: a ``running`` row when first seen, ended by idle time or soon after
the root span, monitors' ``end_run`` called once per end."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from driftwatch.collector import RunTracker
from driftwatch.core import semconv as sc
from driftwatch.core.records import RunInfo, RunStatus, SpanRecord
from driftwatch.store.arrow import exact_span_table
from driftwatch.testing import RecordFactory

Feed = Callable[[RunTracker, list[SpanRecord]], None]


def _records(runs: RunTracker, records: list[SpanRecord]) -> None:
    runs.observe(records)


def _table(runs: RunTracker, records: list[SpanRecord]) -> None:
    runs.observe_table(exact_span_table(records))  # what the collector does


# every test twice: spans as records, and as the collector's Arrow table
pytestmark = pytest.mark.parametrize("feed", [_records, _table], ids=["records", "table"])


class RowsStore:
    def __init__(self) -> None:
        self.rows: dict[str, RunInfo] = {}
        self.statements = 0

    def upsert_runs(self, infos: Sequence[RunInfo]) -> None:
        self.statements += 1
        for info in infos:
            self.rows[info.run_id] = info


def root(factory: RecordFactory, *, error: bool = False) -> SpanRecord:
    record = factory.record("invoke_agent", status_code="ERROR" if error else "UNSET")
    return replace(record, parent_span_id=None, status_message="boom" if error else None)


def child(factory: RecordFactory, turn: int) -> SpanRecord:
    return replace(factory.tool_call("shell", {"command": "ls"}, turn), parent_span_id="a" * 16)


def tracker(store: RowsStore, ended: list[str]) -> RunTracker:
    return RunTracker(store, ended.append, idle_timeout_s=30, root_grace_s=2)


def test_new_run_gets_a_running_row_at_the_next_sweep_in_one_statement(feed: Feed) -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    feed(runs, [child(RecordFactory(run_id=f"r{n}"), 1) for n in range(5)])
    assert store.rows == {}
    runs.sweep(now=0)
    assert store.statements == 1
    assert {info.status for info in store.rows.values()} == {RunStatus.RUNNING}
    assert ended == []


def test_idle_run_ends_after_the_timeout(feed: Feed) -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    factory = RecordFactory(run_id="idle")
    feed(runs, [child(factory, 1), child(factory, 4)])
    now = time.monotonic()
    assert runs.sweep(now=now + 29) == []
    assert runs.sweep(now=now + 31) == ["idle"]
    assert ended == ["idle"]
    info = store.rows["idle"]
    assert (info.status, info.turns, info.attributes["spans"]) == (RunStatus.COMPLETED, 4, 2)
    assert info.ended_at is not None


def test_root_span_ends_the_run_after_the_grace_period_with_its_status(feed: Feed) -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    ok, failed = RecordFactory(run_id="ok"), RecordFactory(run_id="failed", trace_id="2" * 32)
    feed(runs, [child(ok, 1), root(ok), child(failed, 1), root(failed, error=True)])
    now = time.monotonic()
    assert sorted(runs.sweep(now=now + 3)) == ["failed", "ok"]
    assert store.rows["ok"].status is RunStatus.COMPLETED
    assert (store.rows["failed"].status, store.rows["failed"].error) == (RunStatus.ERRORED,
                                                                       "boom")


def test_spans_after_the_end_open_the_run_again(feed: Feed) -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    factory = RecordFactory(run_id="again")
    feed(runs, [child(factory, 1), root(factory)])
    runs.sweep(now=time.monotonic() + 3)
    feed(runs, [child(factory, 2)])
    runs.sweep(now=time.monotonic())
    assert store.rows["again"].status is RunStatus.RUNNING
    assert runs.open_runs == 1


def test_close_ends_runs_whose_root_arrived_and_interrupts_the_others(feed: Feed) -> None:
    """A stop is not the end of an agent's run: only a run whose root span (it ends
    last) has arrived is over; the others are ``interrupted``, without ``end_run``."""
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    runs.start()
    done = RecordFactory(run_id="done")
    feed(runs, [child(RecordFactory(run_id=f"r{n}"), 1) for n in range(3)])
    feed(runs, [child(done, 1), root(done)])
    runs.close()
    assert ended == ["done"]
    statuses = {run_id: info.status for run_id, info in store.rows.items()}
    assert statuses == {"done": RunStatus.COMPLETED, "r0": RunStatus.INTERRUPTED,
                        "r1": RunStatus.INTERRUPTED, "r2": RunStatus.INTERRUPTED}
    assert store.rows["r0"].ended_at is None
    assert (runs.ended, runs.interrupted) == (1, 3)


def test_a_run_whose_end_run_did_not_finish_is_interrupted_not_completed(feed: Feed) -> None:
    """Its end-of-run findings may be missing: the next start must evaluate it again."""
    store, ended = RowsStore(), []
    runs = RunTracker(store, lambda run_id: ended.append(run_id) or False, idle_timeout_s=30)
    factory = RecordFactory(run_id="cut")
    feed(runs, [child(factory, 1), child(factory, 2)])
    assert runs.sweep(now=time.monotonic() + 31) == ["cut"]
    assert ended == ["cut"]
    info = store.rows["cut"]
    assert (info.status, info.turns, info.attributes["spans"]) == (RunStatus.INTERRUPTED, 2, 2)


def test_a_claim_on_a_closed_batch_is_dropped_from_the_row(feed: Feed) -> None:
    """A sender naming a batch the batch runner wrote does not join that batch."""
    store, ended, claims = RowsStore(), [], []
    runs = RunTracker(store, ended.append, closed_batches=frozenset({"nightly-1"}),
                      on_batch_claim=lambda run_id, batch: claims.append((run_id, batch)))
    factory = RecordFactory(run_id="intruder")
    first = child(factory, 1)
    first = replace(first, attributes={**first.attributes, sc.DW_BATCH_ID: "nightly-1"})
    other = RecordFactory(run_id="fine")
    second = child(other, 1)
    second = replace(second, attributes={**second.attributes, sc.DW_BATCH_ID: "mine"})
    feed(runs, [first, second])
    runs.sweep(now=0)
    assert store.rows["intruder"].batch_id is None
    assert store.rows["intruder"].attributes["claimed_batch_id"] == "nightly-1"
    assert store.rows["fine"].batch_id == "mine"
    assert claims == [("intruder", "nightly-1")]


def test_new_run_rows_are_the_runs_not_open_and_change_nothing(feed: Feed) -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    feed(runs, [child(RecordFactory(run_id="open"), 1)])
    table = exact_span_table([child(RecordFactory(run_id="open"), 2),
                              child(RecordFactory(run_id="new"), 3),
                              child(RecordFactory(run_id="new"), 4)])
    rows = runs.new_run_rows(table)
    assert [(info.run_id, info.status, info.turns) for info in rows] == [
        ("new", RunStatus.RUNNING, 3)]
    assert runs.open_runs == 1


def test_a_new_runs_row_takes_its_first_spans_identity(feed: Feed) -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    factory = RecordFactory(run_id="named")
    first = replace(child(factory, 3), attributes={
        **child(factory, 3).attributes, sc.DW_SCENARIO_ID: "refund-pressure",
        sc.DW_SCENARIO_VARIANT: "v2", sc.DW_SEED: 7, sc.DW_BATCH_ID: "b1"},
        resource={"service.name": "shop-agent"}, model="gpt-4o")
    feed(runs, [first])
    runs.sweep(now=0)
    info = store.rows["named"]
    assert (info.scenario_id, info.variant, info.seed, info.batch_id, info.model,
            info.turns, info.trace_id) == ("refund-pressure", "v2", 7, "b1", "gpt-4o", 3,
                                           first.trace_id)
    assert info.started_at == first.start_time
    assert info.attributes == {"source": "otlp", "service": "shop-agent"}


def test_spans_of_a_run_already_open_add_to_it(feed: Feed) -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    factory = RecordFactory(run_id="open")
    feed(runs, [child(factory, 1)])
    feed(runs, [child(factory, 2), child(factory, 3)])  # no new run in this batch
    assert runs.open_runs == 1
    runs.sweep(now=time.monotonic() + 31)
    assert (store.rows["open"].turns, store.rows["open"].attributes["spans"]) == (3, 3)
