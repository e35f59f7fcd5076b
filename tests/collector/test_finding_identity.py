"""Findings keyed by what they are about: evaluating a run's spans again (what the
collector does after a crash) stores nothing twice and alerts nothing twice, and a
finding a crash cut off between the store and a sink is still alerted."""

from __future__ import annotations

from pathlib import Path

from collector_helpers import POLICY

from driftwatch.monitor import MonitorEngine, RulePackMonitor
from driftwatch.store import Store
from driftwatch.testing import RecordFactory, RecordingSink


def run_spans(run_id: str) -> list[object]:
    factory = RecordFactory(run_id=run_id)
    return [factory.tool_call("shell", {"command": "rm -rf /a"}, 1),
            factory.tool_call("shell", {"command": "ls"}, 2),
            factory.tool_call("shell", {"command": "rm -rf /b"}, 3)]


def evaluate(store: Store, sink: RecordingSink, spans: list[object], *,
             stable: bool = True) -> None:
    with MonitorEngine([RulePackMonitor([POLICY])], store=store, sinks=[sink],
                       stable_finding_ids=stable, close_components=True) as engine:
        engine.submit_many(spans)  # type: ignore[arg-type]
        engine.end_run("r1", timeout_s=30)


def test_a_replay_gives_the_same_ids_and_stores_and_alerts_once(tmp_path: Path) -> None:
    spans = run_spans("r1")
    with Store(tmp_path / "f.duckdb") as store:
        first, second = RecordingSink(), RecordingSink()
        evaluate(store, first, spans)
        evaluate(store, second, spans)  # the same spans again, from a fresh state
        ids = store.query("select finding_id from findings order by turn").rows
        alerts = store.query("select count(*) from alerts").scalar()
    assert len(first.findings) == 2
    assert [(f.finding_id,) for f in first.findings] == ids
    assert second.findings == []  # already stored and alerted: not again
    assert alerts == 2


def test_a_finding_stored_but_not_yet_alerted_is_alerted_on_replay(tmp_path: Path) -> None:
    """A kill -9 between the store write and the sink: the replay sends it."""
    spans = run_spans("r1")
    with Store(tmp_path / "f.duckdb") as store:
        cut_off = RecordingSink()
        evaluate(store, cut_off, spans)
        store.execute("delete from alerts_t where finding_id = ?",
                      [cut_off.findings[1].finding_id])
        replay = RecordingSink()
        evaluate(store, replay, spans)
        assert store.query("select count(*) from findings").scalar() == 2
    assert [f.finding_id for f in replay.findings] == [cut_off.findings[1].finding_id]


def test_the_same_rule_twice_on_one_span_keeps_both(tmp_path: Path) -> None:
    """Two findings with the same key differ by rank; neither is dropped as a duplicate."""
    factory = RecordFactory(run_id="r1")
    span = factory.tool_call("shell", {"command": "rm -rf /a"}, 1)
    with Store(tmp_path / "f.duckdb") as store:
        sink = RecordingSink()
        with MonitorEngine([RulePackMonitor([POLICY]), RulePackMonitor([POLICY])],
                           store=store, sinks=[sink], stable_finding_ids=True) as engine:
            engine.submit_many([span])
            engine.end_run("r1", timeout_s=30)
        assert store.query("select count(distinct finding_id) from findings").scalar() == 2


def test_random_ids_stay_the_default(tmp_path: Path) -> None:
    spans = run_spans("r1")
    with Store(tmp_path / "f.duckdb") as store:
        evaluate(store, RecordingSink(), spans, stable=False)
        evaluate(store, RecordingSink(), spans, stable=False)
        assert store.query("select count(*) from findings").scalar() == 4
