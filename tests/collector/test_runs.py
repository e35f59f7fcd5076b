"""Runs from outside: a ``running`` row when first seen, ended by idle time or soon after
the root span, monitors' ``end_run`` called once per end."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from driftwatch.collector import RunTracker
from driftwatch.core.records import RunInfo, RunStatus, SpanRecord
from driftwatch.testing import RecordFactory


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


def test_new_run_gets_a_running_row_at_the_next_sweep_in_one_statement() -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    runs.observe([child(RecordFactory(run_id=f"r{n}"), 1) for n in range(5)])
    assert store.rows == {}
    runs.sweep(now=0)
    assert store.statements == 1
    assert {info.status for info in store.rows.values()} == {RunStatus.RUNNING}
    assert ended == []


def test_idle_run_ends_after_the_timeout() -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    factory = RecordFactory(run_id="idle")
    runs.observe([child(factory, 1), child(factory, 4)])
    now = time.monotonic()
    assert runs.sweep(now=now + 29) == []
    assert runs.sweep(now=now + 31) == ["idle"]
    assert ended == ["idle"]
    info = store.rows["idle"]
    assert (info.status, info.turns, info.attributes["spans"]) == (RunStatus.COMPLETED, 4, 2)
    assert info.ended_at is not None


def test_root_span_ends_the_run_after_the_grace_period_with_its_status() -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    ok, failed = RecordFactory(run_id="ok"), RecordFactory(run_id="failed", trace_id="2" * 32)
    runs.observe([child(ok, 1), root(ok), child(failed, 1), root(failed, error=True)])
    now = time.monotonic()
    assert sorted(runs.sweep(now=now + 3)) == ["failed", "ok"]
    assert store.rows["ok"].status is RunStatus.COMPLETED
    assert (store.rows["failed"].status, store.rows["failed"].error) == (RunStatus.ERRORED,
                                                                       "boom")


def test_spans_after_the_end_open_the_run_again() -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    factory = RecordFactory(run_id="again")
    runs.observe([child(factory, 1), root(factory)])
    runs.sweep(now=time.monotonic() + 3)
    runs.observe([child(factory, 2)])
    runs.sweep(now=time.monotonic())
    assert store.rows["again"].status is RunStatus.RUNNING
    assert runs.open_runs == 1


def test_close_ends_every_open_run() -> None:
    store, ended = RowsStore(), []
    runs = tracker(store, ended)
    runs.start()
    runs.observe([child(RecordFactory(run_id=f"r{n}"), 1) for n in range(3)])
    runs.close()
    assert sorted(ended) == ["r0", "r1", "r2"]
    assert {info.status for info in store.rows.values()} == {RunStatus.COMPLETED}
