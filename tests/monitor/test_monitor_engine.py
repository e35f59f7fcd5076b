"""The live engine: never blocks or raises into the producer; findings are stored, then
sent, in stream order; a monitor that raises becomes a monitor_error finding."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from driftwatch.core import (
    Finding,
    FindingKind,
    FrozenClock,
    NullSink,
    SequentialIds,
    Severity,
    SpanRecord,
)
from driftwatch.monitor import BaseMonitor, MonitorEngine, RulePackMonitor
from driftwatch.store import Store

SpanFactory = Callable[..., SpanRecord]

DELETE_PACK = """\
pack: deletes
rules:
  - id: no-deletes
    severity: high
    when: tool_name = 'delete_file'
    message: "deleted {tool_arguments[path]}"
"""


class RecordingSink:
    name = "recording"

    def __init__(self) -> None:
        self.batches: list[list[Finding]] = []
        self.closed = False

    def send(self, findings: Sequence[Finding]) -> None:
        self.batches.append(list(findings))

    def close(self) -> None:
        self.closed = True

    @property
    def findings(self) -> list[Finding]:
        return [finding for batch in self.batches for finding in batch]


class ExplodingSink(RecordingSink):
    name = "exploding"

    def send(self, findings: Sequence[Finding]) -> None:
        raise ConnectionError("webhook down")


class RecordingStore:
    """Stands in for driftwatch.store.Store: records the call order."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.findings: list[Finding] = []
        self.alerts: list[dict[str, Any]] = []

    def write_findings(self, findings: Sequence[Finding]) -> None:
        self.events.append(f"store:{len(findings)}")
        self.findings.extend(findings)

    def record_alert(self, **row: Any) -> None:
        self.alerts.append(row)


class OrderSink(RecordingSink):
    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def send(self, findings: Sequence[Finding]) -> None:
        self.events.append(f"sink:{len(findings)}")
        super().send(findings)


class Exploding(BaseMonitor):
    name = "exploding"

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        raise ValueError(f"cannot handle {len(records)} records")

    def end_run(self, run_id: str, final_state: Mapping[str, Any] | None) -> Sequence[Finding]:
        raise RuntimeError("end boom")


class Counting(BaseMonitor):
    """One finding per run at end_run with how many records it saw, and on which thread."""

    name = "counting"

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.threads: set[str] = set()

    def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
        self.threads.add(threading.current_thread().name)
        self.seen[run_id] = self.seen.get(run_id, 0) + len(records)
        return ()

    def end_run(self, run_id: str, final_state: Mapping[str, Any] | None) -> Sequence[Finding]:
        self.threads.add(threading.current_thread().name)
        count = self.seen.pop(run_id, 0)
        return [
            self.finding(
                run_id=run_id,
                rule_id="count",
                message=str(count),
                severity=Severity.INFO,
                kind=FindingKind.DRIFT,
            )
        ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "traces" / "driftwatch.duckdb") as opened:
        yield opened


@pytest.fixture
def deletes(write_pack: Callable[..., Path]) -> RulePackMonitor:
    return RulePackMonitor([write_pack(DELETE_PACK)])


def test_end_to_end_findings_land_in_store_views_and_reach_the_sink_in_order(
    store: Store,
    oversight_pack: Path,
    make_span: SpanFactory,
    ids: SequentialIds,
    clock: FrozenClock,
) -> None:
    sink = RecordingSink()
    config = "project/oversight_config.yaml"
    spans = [
        make_span(tool="read_file", arguments={"path": config}, turn=1),
        make_span(tool="edit_file", arguments={"path": config}, turn=2),
        make_span(tool="move_file", arguments={"source": config, "destination": "x"}, turn=3),
    ]
    monitors = [RulePackMonitor([oversight_pack]), Exploding()]
    with MonitorEngine(monitors, store=store, sinks=[sink], ids=ids, clock=clock) as engine:
        for span in spans:
            engine.submit(span)
        final = engine.end_run("run-1", {"files": {config: "oversight_enabled: false\n"}})
    assert [f.rule_id for f in final] == ["oversight-disabled", "exploding"]
    assert [f.finding_id for f in sink.findings] == [f.finding_id for f in engine.findings()]
    rows = store.query(
        "SELECT finding_id, rule_id, kind, severity, span_id, turn, monitor, message,"
        " evidence->>'tool_name' AS tool, monitor_spec->>'name' AS spec_name"
        " FROM findings ORDER BY finding_id"
    ).to_dicts()
    assert [row["finding_id"] for row in rows] == [f.finding_id for f in sink.findings]
    assert [(row["rule_id"], row["kind"], row["turn"]) for row in rows] == [
        ("oversight-config-modified", "violation", 2),
        ("oversight-config-modified", "violation", 3),
        ("exploding", "monitor_error", 3),
        ("oversight-disabled", "violation", 3),
        ("exploding", "monitor_error", 3),
    ]
    assert rows[0]["message"] == f"edit_file on {config} at turn 2"
    assert rows[0]["span_id"] == spans[1].span_id
    assert (rows[0]["tool"], rows[0]["spec_name"], rows[0]["severity"]) == (
        "edit_file",
        "rule_pack",
        "critical",
    )
    violations = store.query("SELECT rule_id FROM violations ORDER BY finding_id").column("rule_id")
    assert violations == [
        "oversight-config-modified",
        "oversight-config-modified",
        "oversight-disabled",
    ]
    alerts = store.query("SELECT sink, status, attempts FROM alerts").rows
    assert alerts == [("recording", "sent", 1)] * 5


def test_findings_are_stored_before_they_are_sent_in_stream_order(
    deletes: RulePackMonitor, make_span: SpanFactory, ids: SequentialIds, clock: FrozenClock
) -> None:
    events: list[str] = []
    store = RecordingStore(events)
    sink = OrderSink(events)
    spans = [
        make_span(tool="delete_file", arguments={"path": "a"}),
        make_span(run_id="run-2", tool="delete_file", arguments={"path": "b"}),
        make_span(tool="delete_file", arguments={"path": "c"}),
    ]
    engine = MonitorEngine([deletes], store=store, sinks=[sink], ids=ids, clock=clock)
    with engine:
        for span in spans:
            engine.submit(span)
        assert engine.flush(5)
        assert [f.message for f in sink.findings] == ["deleted a", "deleted c", "deleted b"]
        assert events == ["store:3", "sink:3"]
        assert store.findings == sink.findings == engine.findings()
        assert [f.message for f in engine.findings("run-2")] == ["deleted b"]
        assert [f.finding_id for f in engine.findings()] == [
            "f-00000001",
            "f-00000002",
            "f-00000003",
        ]
        assert engine.records_seen == 3
        assert engine.findings_count == 3
    assert not sink.closed  # given, not owned
    assert [row["alert_id"] for row in store.alerts] == [
        "f-00000001:recording",
        "f-00000002:recording",
        "f-00000003:recording",
    ]
    assert {row["status"] for row in store.alerts} == {"sent"}


def test_monitor_that_raises_becomes_one_monitor_error_and_other_findings_survive(
    deletes: RulePackMonitor, make_span: SpanFactory, ids: SequentialIds, clock: FrozenClock
) -> None:
    sink = RecordingSink()
    engine = MonitorEngine([Exploding(), deletes], sinks=[sink], ids=ids, clock=clock)
    engine.submit(make_span(tool="delete_file", arguments={"path": "a"}, turn=3))
    engine.flush(5)
    engine.submit(make_span(tool="delete_file", arguments={"path": "b"}, turn=4))
    engine.flush(5)
    end = engine.end_run("run-1", {"files": {}})
    engine.close()
    kinds = [(f.monitor, f.rule_id, f.kind) for f in engine.findings("run-1")]
    assert kinds == [
        ("rule_pack", "no-deletes", FindingKind.VIOLATION),
        ("exploding", "exploding", FindingKind.MONITOR_ERROR),
        # the same error in the next batch is not repeated
        ("rule_pack", "no-deletes", FindingKind.VIOLATION),
        ("exploding", "exploding", FindingKind.MONITOR_ERROR),  # from end_run
    ]
    error = engine.findings("run-1")[1]
    assert error.evidence["error_type"] == "ValueError"
    assert error.evidence["error"] == "cannot handle 1 records"
    assert error.evidence["phase"] == "observe"
    assert "test_monitor_engine.py" in error.evidence["where"]
    assert error.severity is Severity.HIGH
    assert error.turn == 3
    assert error.monitor_spec == {"name": "exploding", "args": {}}
    assert [f.evidence["error_type"] for f in end] == ["RuntimeError"]
    assert sink.findings == engine.findings()


def test_end_run_sees_all_records_first_and_runs_on_the_worker_thread(
    make_span: SpanFactory,
) -> None:
    counting = Counting()
    with MonitorEngine([counting], max_delay_s=0.5) as engine:
        for _ in range(5):
            engine.submit(make_span())
        [finding] = engine.end_run("run-1", None)
    assert finding.message == "5"
    assert counting.threads == {"driftwatch-monitor"}


def test_request_end_run_queues_ends_that_one_flush_waits_for(make_span: SpanFactory) -> None:
    counting = Counting()
    sink = RecordingSink()
    with MonitorEngine([counting], sinks=[sink], max_delay_s=0.5) as engine:
        for run in ("a", "b"):
            for _ in range(3 if run == "a" else 2):
                engine.submit(make_span(run_id=run))
            assert engine.request_end_run(run)
        assert engine.flush(30)
        assert sorted((f.run_id, f.message) for f in sink.findings) == [("a", "3"), ("b", "2")]
    assert engine.request_end_run("c") is False  # closed


def test_keep_findings_false_sends_them_without_keeping_them(make_span: SpanFactory) -> None:
    sink = RecordingSink()
    with MonitorEngine([Counting()], sinks=[sink], keep_findings=False) as engine:
        engine.submit(make_span(run_id="a"))
        engine.end_run("a")
        assert engine.findings() == []
        assert engine.findings_count == 1
        assert engine.stats()["findings"] == 1
    assert len(sink.findings) == 1


def test_submit_of_10k_records_returns_quickly(make_span: SpanFactory) -> None:
    class Slow(BaseMonitor):
        def observe(self, run_id: str, records: Sequence[SpanRecord]) -> Sequence[Finding]:
            time.sleep(0.005)
            return ()

    spans = [make_span(run_id=f"run-{n % 3}") for n in range(10_000)]
    engine = MonitorEngine([Slow()])
    started = time.perf_counter()
    for span in spans:
        engine.submit(span)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"submitting 10k records took {elapsed:.2f}s"
    assert engine.flush(30)
    assert engine.records_seen == 10_000
    engine.close()
    stats = engine.stats()
    assert stats["records_seen"] == 10_000
    assert stats["batches"] >= 10_000 // 512
    assert stats["batch_latency_p50_ms"] > 0


def test_failing_sink_and_store_do_not_stop_other_sinks(
    deletes: RulePackMonitor, make_span: SpanFactory
) -> None:
    class BrokenStore(RecordingStore):
        def write_findings(self, findings: Sequence[Finding]) -> None:
            raise OSError("disk full")

    store = BrokenStore([])
    good = RecordingSink()
    with MonitorEngine([deletes], store=store, sinks=[ExplodingSink(), good]) as engine:
        engine.submit(make_span(tool="delete_file"))
        engine.flush(5)
    assert len(good.findings) == 1
    assert [(row["sink"], row["status"]) for row in store.alerts] == [
        ("exploding", "failed"),
        ("recording", "sent"),
    ]
    assert store.alerts[0]["error"] == "ConnectionError: webhook down"


def test_alerts_are_recorded_only_for_findings_a_sink_accepts(
    deletes: RulePackMonitor, make_span: SpanFactory
) -> None:
    class Picky(RecordingSink):
        name = "picky"

        def accepts(self, finding: Finding) -> bool:
            return finding.severity >= Severity.CRITICAL

    store = RecordingStore([])
    with MonitorEngine([deletes], store=store, sinks=[Picky(), NullSink()]) as engine:
        engine.submit(make_span(tool="delete_file"))
    assert store.alerts == []


def test_close_components_closes_sinks_and_monitors_it_owns(deletes: RulePackMonitor) -> None:
    class ClosingMonitor(BaseMonitor):
        closed = False

        def close(self) -> None:
            self.closed = True

    sink, closing = RecordingSink(), ClosingMonitor()
    engine = MonitorEngine([deletes, closing], sinks=[sink], close_components=True)
    engine.close()
    assert sink.closed
    assert closing.closed


def test_submit_after_close_is_dropped_without_raising(make_span: SpanFactory) -> None:
    engine = MonitorEngine([])
    engine.close()
    engine.close()
    engine.submit(make_span())
    assert engine.dropped == 1
    assert engine.end_run("run-1", None) == []


def test_engine_shares_its_ids_and_clock_with_base_monitors(
    deletes: RulePackMonitor, make_span: SpanFactory
) -> None:
    clock = FrozenClock()
    clock.advance(60)
    with MonitorEngine([deletes], ids=SequentialIds(), clock=clock) as engine:
        engine.submit(make_span(tool="delete_file"))
    [finding] = engine.findings()
    assert finding.finding_id == "f-00000001"
    assert finding.detected_at == clock.now()


def test_submits_from_many_threads_are_all_evaluated(make_span: SpanFactory) -> None:
    counting = Counting()
    spans = [make_span(run_id=f"run-{n % 4}") for n in range(2000)]
    with MonitorEngine([counting]) as engine:
        threads = [
            threading.Thread(target=engine.submit_many, args=(spans[n::4],)) for n in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results = [engine.end_run(f"run-{n}", None) for n in range(4)]
    assert [finding.message for [finding] in results] == ["500"] * 4
